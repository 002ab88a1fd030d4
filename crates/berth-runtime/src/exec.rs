//! `exec`: a new process in a running container's namespaces and cgroup.

use std::fs;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use serde_json::json;

use crate::config::ContainerConfig;
use crate::error::{Error, IoCtx, Result};
use crate::executor::BerthExecutor;
use crate::io::{MaskGuard, copy_winsize, forward_set, is_tty, recv_fd};
use crate::run::{Backend, RunObserver, RunOutcome, RuntimeOptions, Stdio, err_chain, lc_err, pump, wire};
use crate::spec::container_env;

/// `docker exec` options.
#[derive(Debug, Clone, Default)]
pub struct ExecConfig {
    pub args: Vec<String>,
    /// Extra `KEY=value` on top of the container's environment.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub privileged: bool,
}

/// Run `exec` in the container `id` (state under `opts.state_root`) whose rootfs (as
/// seen on the host) is `rootfs`. Same threading contract as [`crate::run()`].
pub fn exec_in(
    opts: &RuntimeOptions,
    id: &str,
    cfg: &ContainerConfig,
    rootfs: &Path,
    ex: &ExecConfig,
    stdio: Stdio<'_>,
    observer: &mut dyn RunObserver,
) -> Result<RunOutcome> {
    if ex.args.is_empty() {
        return Err(Error::InvalidConfig("exec needs a command".into()));
    }
    let user_spec = ex.user.clone().or_else(|| cfg.user.clone()).unwrap_or_default();
    let user = crate::user::resolve_user(rootfs, &user_spec, &cfg.group_add)?;
    let mut env_cfg = cfg.clone();
    env_cfg.env.extend(ex.env.iter().cloned());
    env_cfg.tty = ex.tty;
    let hostname = crate::spec::hostname_for(cfg, id);
    let env = container_env(&env_cfg, &hostname, &user);
    let mut caps_cfg = cfg.clone();
    caps_cfg.privileged |= ex.privileged;
    let caps = crate::spec::effective_caps(&caps_cfg)?;
    let cwd = ex
        .working_dir
        .clone()
        .or_else(|| cfg.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let mut process = json!({
        "terminal": ex.tty,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": ex.args,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
    });
    if !user.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(user.additional_gids);
    }
    if cfg.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    let dir = opts.scratch_dir(id).join(format!("exec-{}", &crate::util::random_id()[..12]));
    crate::private::private_dir(&dir)?;
    let pfile = dir.join("process.json");
    crate::private::write_private(&pfile, process.to_string().as_bytes())?;
    let res = match &opts.backend {
        Backend::Embedded => exec_embedded(opts, id, ex, &dir, &pfile, stdio, observer),
        Backend::External(rt) => exec_external(opts, rt, id, ex, &pfile, stdio, observer),
    };
    let _ = fs::remove_file(&pfile);
    let _ = fs::remove_file(dir.join("console.sock"));
    let _ = fs::remove_dir(&dir);
    res
}

fn exec_embedded(
    opts: &RuntimeOptions,
    id: &str,
    ex: &ExecConfig,
    dir: &Path,
    pfile: &Path,
    mut stdio: Stdio<'_>,
    observer: &mut dyn RunObserver,
) -> Result<RunOutcome> {
    let set = forward_set();
    let _mask = MaskGuard::block(&set)?;
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| Error::sys("signalfd", e))?;
    let tcfg = ContainerConfig { tty: ex.tty, interactive: ex.interactive, ..Default::default() };
    let w = wire(&tcfg, &mut stdio)?;
    let sock = dir.join("console.sock");
    let listener = if ex.tty { Some(UnixListener::bind(&sock).ctx("bind console socket", &sock)?) } else { None };
    let mut b = ContainerBuilder::new(id.to_owned(), SyscallType::default())
        .with_executor(BerthExecutor {
            init: false,
            winsize: if ex.tty && stdio.is_terminal_like() { crate::io::host_winsize() } else { None },
        })
        .with_root_path(opts.lc_root())
        .map_err(|e| lc_err(id, err_chain(&e)))?;
    if let Some(f) = w.child_stdin {
        b = b.with_stdin(f);
    }
    if let Some(f) = w.child_stdout {
        b = b.with_stdout(f);
    }
    if let Some(f) = w.child_stderr {
        b = b.with_stderr(f);
    }
    if ex.tty {
        b = b.with_console_socket(Some(&sock));
    }
    let pid =
        b.as_tenant().with_process(Some(pfile)).with_detach(ex.tty).build().map_err(|e| lc_err(id, err_chain(&e)))?;
    let master = match listener {
        Some(l) => {
            let (c, _) = l.accept().ctx("accept console socket", &sock)?;
            Some(recv_fd(c.as_fd())?)
        }
        None => None,
    };
    if let Some(m) = &master
        && stdio.is_terminal_like()
    {
        copy_winsize(if is_tty(0) { 0 } else { 1 }, m.as_raw_fd());
    }
    observer.started(pid.as_raw());
    pump(&tcfg, pid, &sfd, master, w.out_r, w.err_r, stdio)
}

fn exec_external(
    opts: &RuntimeOptions,
    rt: &PathBuf,
    id: &str,
    ex: &ExecConfig,
    pfile: &Path,
    mut stdio: Stdio<'_>,
    observer: &mut dyn RunObserver,
) -> Result<RunOutcome> {
    let set = forward_set();
    let _mask = MaskGuard::block(&set)?;
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| Error::sys("signalfd", e))?;
    let tcfg = ContainerConfig { tty: ex.tty, interactive: ex.interactive, ..Default::default() };
    let w = wire(&tcfg, &mut stdio)?;
    let to = |f: Option<std::os::fd::OwnedFd>| match f {
        Some(f) => std::process::Stdio::from(f),
        None => std::process::Stdio::inherit(),
    };
    let child = std::process::Command::new(rt)
        .arg("--root")
        .arg(opts.state_root.join("runc"))
        .arg("exec")
        .arg("--process")
        .arg(pfile)
        .arg(id)
        .stdin(to(w.child_stdin))
        .stdout(to(w.child_stdout))
        .stderr(to(w.child_stderr))
        .spawn()
        .map_err(|e| Error::External { runtime: rt.clone(), message: format!("cannot execute: {e}") })?;
    let pid = Pid::from_raw(child.id() as i32);
    observer.started(pid.as_raw());
    pump(&tcfg, pid, &sfd, None, w.out_r, w.err_r, stdio)
}
