//! The workload executor that libcontainer runs inside the container, just before the
//! user's command: Docker-style command lookup (126/127 with Docker's messages), signal
//! state reset, and the optional `--init` reaper.
//!
//! Runs in the container's init process (a clone of the calling process, single
//! threaded, already in the container's namespaces, with the user, capabilities and
//! seccomp filter applied).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use oci_spec::runtime::Spec;

/// Marker put in validation errors so the parent can map them to 126/127.
pub(crate) const MARK_127: &str = "berth-exec-127: ";
pub(crate) const MARK_126: &str = "berth-exec-126: ";

#[derive(Clone)]
pub(crate) struct BerthExecutor {
    pub init: bool,
    /// Initial pty size (rows, cols), applied to the container's terminal before the
    /// command starts (libcontainer ignores `process.consoleSize`; setting it from the
    /// host after start would race with the command's first `TIOCGWINSZ`).
    pub winsize: Option<(u16, u16)>,
}

/// Docker's lookup: `Ok(path)` or `(exit code, message)`.
pub(crate) fn lookup(arg0: &str, path_var: &str, root: &Path) -> std::result::Result<PathBuf, (i32, String)> {
    let check = |p: &Path| -> std::result::Result<(), (i32, String)> {
        match std::fs::metadata(p) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Err((126, format!("exec: {arg0:?}: permission denied")))
            }
            Err(_) => Err((127, format!("exec: {arg0:?}: stat {arg0}: no such file or directory"))),
            Ok(m) if m.is_dir() => Err((126, format!("exec: {arg0:?}: is a directory"))),
            Ok(m) if m.permissions().mode() & 0o111 == 0 => Err((126, format!("exec: {arg0:?}: permission denied"))),
            Ok(_) => Ok(()),
        }
    };
    if arg0.contains('/') {
        let p = if root == Path::new("/") {
            PathBuf::from(arg0)
        } else {
            crate::util::resolve_in_root(root, Path::new(arg0))
        };
        check(&p)?;
        return Ok(PathBuf::from(arg0));
    }
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let p = Path::new(dir).join(arg0);
        let host = if root == Path::new("/") { p.clone() } else { crate::util::resolve_in_root(root, &p) };
        if check(&host).is_ok() {
            return Ok(p);
        }
    }
    Err((127, format!("exec: {arg0:?}: executable file not found in $PATH")))
}

fn spec_args_env(spec: &Spec) -> (Vec<String>, String) {
    let p = spec.process().as_ref();
    let args = p.and_then(|p| p.args().clone()).unwrap_or_default();
    let path = p
        .and_then(|p| p.env().as_ref())
        .and_then(|e| e.iter().find_map(|v| v.strip_prefix("PATH=").map(str::to_owned)))
        .unwrap_or_else(|| crate::config::DEFAULT_PATH.to_owned());
    (args, path)
}

/// The command's environment, straight from the spec (we always set HOME there).
/// Never read or written through `std::env`: that takes a process-wide lock which
/// another thread of the caller may have held when libcontainer cloned us.
fn spec_env(spec: &Spec) -> Vec<String> {
    spec.process().as_ref().and_then(|p| p.env().clone()).unwrap_or_default()
}

/// Write to stderr without std's stderr lock (see [`spec_env`] for why).
fn raw_eprint(msg: &str) {
    // SAFETY: fd 2 is the container's stderr for the duration of the call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(2) };
    let _ = nix::unistd::write(fd, msg.as_bytes());
}

fn to_cstrings<'a>(v: impl Iterator<Item = &'a [u8]>) -> Vec<CString> {
    v.filter_map(|s| CString::new(s).ok()).collect()
}

/// Unblock every signal and restore default dispositions, so the command does not
/// inherit the parent's blocked forwarding signals.
pub(crate) fn reset_signals() {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    for s in Signal::iterator() {
        if matches!(s, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: restoring the default disposition has no preconditions.
        unsafe {
            let _ = nix::sys::signal::signal(s, nix::sys::signal::SigHandler::SigDfl);
        }
    }
}

fn exec_or_exit(path: &Path, args: &[String], env: &[String]) -> ! {
    let cpath = CString::new(path.as_os_str().as_bytes()).unwrap_or_default();
    let argv = to_cstrings(args.iter().map(|s| s.as_bytes()));
    let envp = to_cstrings(env.iter().map(|s| s.as_bytes()));
    let err = nix::unistd::execve(&cpath, &argv, &envp).err();
    let arg0 = args.first().map(String::as_str).unwrap_or_default();
    let (code, msg) = match err {
        Some(nix::Error::EACCES) | Some(nix::Error::EPERM) => (126, "permission denied"),
        Some(nix::Error::ENOEXEC) => (126, "exec format error"),
        Some(nix::Error::ENOENT) => (127, "no such file or directory"),
        _ => (126, "cannot execute"),
    };
    raw_eprint(&format!("exec: {arg0:?}: {msg}\n"));
    // SAFETY: _exit is always safe; we must not run destructors of the cloned parent state.
    unsafe { libc::_exit(code) }
}

impl Executor for BerthExecutor {
    /// The environment is taken from the spec in [`Executor::exec`]; libcontainer's
    /// default would rewrite `std::env` (a lock) in the freshly cloned process.
    fn setup_envs(
        &self,
        _envs: std::collections::HashMap<String, String>,
    ) -> Result<(), libcontainer::workload::ExecutorSetEnvsError> {
        Ok(())
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let (args, path) = spec_args_env(spec);
        let Some(arg0) = args.first() else {
            return Err(ExecutorValidationError::ArgValidationError(format!("{MARK_127}no command specified")));
        };
        match lookup(arg0, &path, Path::new("/")) {
            Ok(_) => Ok(()),
            Err((126, m)) => Err(ExecutorValidationError::ArgValidationError(format!("{MARK_126}{m}"))),
            Err((_, m)) => Err(ExecutorValidationError::ArgValidationError(format!("{MARK_127}{m}"))),
        }
    }

    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let (args, path) = spec_args_env(spec);
        let arg0 = args.first().cloned().unwrap_or_default();
        let resolved = lookup(&arg0, &path, Path::new("/")).map_err(|(_, m)| ExecutorError::Other(m))?;
        if let Some((rows, cols)) = self.winsize {
            let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
            // SAFETY: TIOCSWINSZ reads a winsize we own; fd 0 is the container's pty.
            unsafe { libc::ioctl(0, libc::TIOCSWINSZ, &ws) };
        }
        let env = spec_env(spec);
        if self.init {
            run_init(&resolved, &args, &env);
        }
        reset_signals();
        exec_or_exit(&resolved, &args, &env)
    }
}

/// `--init`: stay as PID 1, run the command as a child, forward signals to it, reap
/// every zombie, and exit with the command's status (128+N when killed by signal N).
fn run_init(path: &Path, args: &[String], env: &[String]) -> ! {
    let all = SigSet::all();
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&all), None);
    // SAFETY: the process is single threaded here (a fresh clone).
    let child = match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let _ = nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0));
            // Give the terminal (if any) to the command's process group, like tini.
            // SAFETY: tcsetpgrp on fd 0 with our own pgid; failure is harmless.
            unsafe {
                libc::signal(libc::SIGTTOU, libc::SIG_IGN);
                libc::tcsetpgrp(0, libc::getpid());
            }
            reset_signals();
            exec_or_exit(path, args, env)
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
        Err(e) => {
            raw_eprint(&format!("berth-init: fork: {e}\n"));
            // SAFETY: see exec_or_exit.
            unsafe { libc::_exit(125) }
        }
    };
    loop {
        let sig = match all.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(child, sig);
            continue;
        }
        loop {
            match nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                Ok(nix::sys::wait::WaitStatus::Exited(pid, code)) if pid == child => {
                    // SAFETY: see exec_or_exit.
                    unsafe { libc::_exit(code) }
                }
                Ok(nix::sys::wait::WaitStatus::Signaled(pid, s, _)) if pid == child => {
                    // SAFETY: see exec_or_exit.
                    unsafe { libc::_exit(128 + s as i32) }
                }
                Ok(nix::sys::wait::WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
}

/// Map a libcontainer error text carrying our marker to a typed error.
pub(crate) fn classify(text: &str) -> Option<crate::Error> {
    if let Some(i) = text.find(MARK_127) {
        let msg = text[i + MARK_127.len()..].lines().next().unwrap_or_default();
        return Some(crate::Error::CommandNotFound { message: msg.to_owned() });
    }
    if let Some(i) = text.find(MARK_126) {
        let msg = text[i + MARK_126.len()..].lines().next().unwrap_or_default();
        return Some(crate::Error::CommandNotExecutable { message: msg.to_owned() });
    }
    None
}
