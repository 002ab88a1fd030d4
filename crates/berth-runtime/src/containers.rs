//! Container lifecycle operations for the CLI, daemonless: every call reads and writes
//! the records under `<root>/containers/<id>/` (see [`crate::state`]).
//!
//! `start` of a detached container spawns the supervisor (see [`crate::supervisor`]);
//! attached `start` runs the container in the calling process (same threading contract
//! as [`crate::run()`]). `stop`, `kill`, `wait`, `list`, `logs` only signal pids and read
//! files, so they are safe from any thread.

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio as PStdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::config::{ContainerConfig, NetworkMode};
use crate::error::{Error, IoCtx, Result};
use crate::exec::{ExecConfig, exec_in};
use crate::logs::{LogEntry, LogOptions, LogWriter, read_logs};
use crate::run::{RunObserver, RunOutcome, RuntimeOptions, Stdio, run};
use crate::state::{ContainerDir, ContainerRecord, ContainerState, HealthLogEntry, Status, ZERO_TIME};
use crate::util::{atomic_write, now_rfc3339};

/// Parse a signal name (`TERM`, `SIGTERM`, `9`).
pub fn parse_signal(s: &str) -> Result<Signal> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::BadSignal(s.into()));
    }
    let up = t.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<Signal>().map_err(|_| Error::BadSignal(s.into()))
}

/// Summary for `ps`/`inspect`.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    pub record: ContainerRecord,
    pub state: ContainerState,
}

/// Handle on a directory of container records.
#[derive(Debug, Clone)]
pub struct Containers {
    root: PathBuf,
}

/// Signals process `pid` only if it is the one that started at `start` (from the state file):
/// a pidfd is opened first, then the start time checked, then the signal sent through the
/// pidfd, so a pid reused between the check and the signal can never receive it. `ESRCH` when
/// the process is gone or the pid was reused.
pub(crate) fn signal_process(pid: i32, start: u64, sig: i32) -> nix::Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    if pid <= 0 {
        return Err(nix::Error::ESRCH);
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = nix::Error::last();
        if e != nix::Error::ENOSYS {
            return Err(e);
        }
        // Kernels before 5.3: check, then signal (a small window remains).
        if !crate::private::same_process(pid, start) {
            return Err(nix::Error::ESRCH);
        }
        return nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::try_from(sig)?);
    }
    // SAFETY: `fd` is a new descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    if !crate::private::same_process(pid, start) {
        return Err(nix::Error::ESRCH);
    }
    use std::os::fd::AsRawFd;
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), sig, std::ptr::null::<libc::siginfo_t>(), 0)
    };
    if r < 0 { Err(nix::Error::last()) } else { Ok(()) }
}

impl Containers {
    /// `root` holds `containers/<id>/`. Created on demand.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Containers { root: root.into() }
    }

    fn dir(&self, id: &str) -> ContainerDir {
        ContainerDir::new(&self.root, id)
    }

    fn existing(&self, id: &str) -> Result<ContainerDir> {
        let d = self.dir(id);
        if !d.exists() {
            return Err(Error::NoSuchContainer { id: id.into() });
        }
        Ok(d)
    }

    /// Record a new container (status `created`); nothing runs yet.
    pub fn create(
        &self,
        id: &str,
        name: Option<&str>,
        config: &ContainerConfig,
        runtime: &RuntimeOptions,
    ) -> Result<()> {
        let d = self.dir(id);
        if d.exists() {
            return Err(Error::AlreadyExists { id: id.into() });
        }
        fs::create_dir_all(&d.dir).ctx("create", &d.dir)?;
        let _l = d.lock()?;
        let rec = ContainerRecord {
            id: id.into(),
            name: name.map(str::to_owned),
            created: now_rfc3339(),
            config: config.clone(),
            runtime: runtime.clone(),
        };
        let data = serde_json::to_vec_pretty(&rec).map_err(|e| Error::Json { path: d.config_path(), source: e })?;
        atomic_write(&d.config_path(), &data, 0o600)?;
        d.write_state(&ContainerState {
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            ..Default::default()
        })
    }

    /// `container:ID` becomes the running container's network namespace; every other
    /// mode is returned as is.
    pub fn resolve_network(&self, cfg: &ContainerConfig) -> Result<ContainerConfig> {
        let NetworkMode::Container(target) = &cfg.network else {
            return Ok(cfg.clone());
        };
        let info = self.inspect(target)?;
        if info.state.status != Status::Running || !info.state.main_alive() {
            return Err(Error::WrongState {
                id: target.clone(),
                state: info.state.status.as_str().into(),
                hint: "cannot join the network of a container that is not running",
            });
        }
        let mut out = cfg.clone();
        out.network = NetworkMode::Netns(PathBuf::from(format!("/proc/{}/ns/net", info.state.pid)));
        Ok(out)
    }

    /// The record and state, with the "died while nobody was looking" check applied.
    pub fn inspect(&self, id: &str) -> Result<ContainerInfo> {
        let d = self.existing(id)?;
        let record = d.read_record()?;
        let state = self.refresh(&d, &record)?;
        Ok(ContainerInfo { record, state })
    }

    /// If state says running but neither the container nor its supervisor exists, the
    /// container died unobserved: mark it exited (code 255 unless known) and clean up.
    fn refresh(&self, d: &ContainerDir, rec: &ContainerRecord) -> Result<ContainerState> {
        let st = d.read_state()?;
        if st.status != Status::Running || st.main_alive() || st.supervisor_alive() {
            return Ok(st);
        }
        let _l = d.lock()?;
        let mut st = d.read_state()?;
        if st.status == Status::Running && !st.main_alive() && !st.supervisor_alive() {
            st.status = Status::Exited;
            st.exit_code = 255;
            st.error = "container process died while berth was not looking".into();
            st.finished_at = now_rfc3339();
            st.pid = 0;
            st.supervisor_pid = 0;
            st.network = None;
            d.write_state(&st)?;
            cleanup_orphan(&rec.runtime, &rec.id);
        }
        Ok(st)
    }

    /// Gives container `id` a new name (its record's `Name`). The caller checks that no other
    /// container has it; the record is replaced atomically under the container's lock.
    pub fn rename(&self, id: &str, name: &str) -> Result<()> {
        let d = self.existing(id)?;
        let _l = d.lock()?;
        let mut rec = d.read_record()?;
        rec.name = Some(name.to_owned());
        let data = serde_json::to_vec_pretty(&rec).map_err(|e| Error::Json { path: d.config_path(), source: e })?;
        atomic_write(&d.config_path(), &data, 0o600)
    }

    /// All containers (sorted by creation time, newest first).
    pub fn list(&self) -> Result<Vec<ContainerInfo>> {
        let base = self.root.join("containers");
        let rd = match fs::read_dir(&base) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(Error::io("read dir", base, e)),
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if !self.dir(&id).config_path().exists() {
                // Being created (or a create that was killed before its record was written).
                continue;
            }
            match self.inspect(&id) {
                Ok(i) => out.push(i),
                Err(Error::NoSuchContainer { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| b.record.created.cmp(&a.record.created));
        Ok(out)
    }

    /// Start detached: spawn the supervisor and return the container's pid once it runs
    /// (or the start error: 125/126/127 semantics via [`Error::exit_code`]).
    pub fn start_detached(&self, id: &str) -> Result<i32> {
        let d = self.existing(id)?;
        let rec = d.read_record()?;
        let _start = d.start_lock()?;
        {
            let _l = d.lock()?;
            let mut st = d.read_state()?;
            if st.status == Status::Running && (st.main_alive() || st.supervisor_alive()) {
                return Ok(st.pid);
            }
            if st.manually_stopped {
                st.manually_stopped = false;
                d.write_state(&st)?;
            }
        }
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
        // The write end must survive exec in the supervisor: clear CLOEXEC on it only.
        let wfd = w.as_raw_fd();
        nix::fcntl::fcntl(wfd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))
            .map_err(|e| Error::sys("fcntl", e))?;
        let child = Command::new(&rec.runtime.helper_exe)
            .arg(crate::hidden::SUPERVISOR_ARG)
            .arg(&self.root)
            .arg(id)
            .arg(wfd.to_string())
            .stdin(PStdio::null())
            .stdout(PStdio::null())
            .stderr(PStdio::null())
            .spawn()
            .map_err(|e| Error::Supervisor {
                id: id.into(),
                message: format!("cannot execute {}: {e}", rec.runtime.helper_exe.display()),
            })?;
        drop(w);
        let mut msg = String::new();
        let mut f = fs::File::from(r);
        let _ = f.read_to_string(&mut msg);
        // The supervisor stays running; it is re-parented when we exit. Don't reap it.
        std::mem::forget(child);
        let msg = msg.trim();
        if let Some(pid) = msg.strip_prefix("ok ") {
            return pid
                .parse()
                .map_err(|_| Error::Supervisor { id: id.into(), message: format!("bad ready message {msg:?}") });
        }
        if let Some(rest) = msg.strip_prefix("err ") {
            let (code, text) = rest.split_once(' ').unwrap_or(("125", rest));
            return Err(match code {
                "127" => Error::CommandNotFound { message: text.into() },
                "126" => Error::CommandNotExecutable { message: text.into() },
                _ => Error::Supervisor { id: id.into(), message: text.into() },
            });
        }
        Err(Error::Supervisor { id: id.into(), message: "supervisor exited without starting the container".into() })
    }

    /// Start attached, in this process: records state and logs. [`Stdio::Inherit`] is
    /// turned into [`Stdio::Tee`] so the output reaches both the terminal and `json.log`
    /// (`berth logs` works after a foreground run, as with Docker); `Capture` callbacks
    /// see the lines that are logged; `Fds` output is not logged.
    pub fn start_attached(&self, id: &str, stdio: Stdio<'_>) -> Result<RunOutcome> {
        let d = self.existing(id)?;
        let rec = d.read_record()?;
        {
            let _start = d.start_lock()?;
            let st = d.read_state()?;
            if st.status == Status::Running && (st.main_alive() || st.supervisor_alive()) {
                return Err(Error::WrongState {
                    id: id.into(),
                    state: "running".into(),
                    hint: "the container is already running",
                });
            }
        }
        struct Obs<'a>(&'a ContainerDir);
        impl RunObserver for Obs<'_> {
            fn started(&mut self, pid: i32) {
                let _ = self.0.update_state(|st| {
                    st.status = Status::Running;
                    st.pid = pid;
                    st.pid_start = crate::private::process_start_time(pid).unwrap_or(0);
                    st.exit_code = 0;
                    st.started_at = now_rfc3339();
                    st.finished_at = ZERO_TIME.into();
                    st.supervisor_pid = std::process::id() as i32;
                    st.supervisor_pid_start = crate::private::process_start_time(st.supervisor_pid).unwrap_or(0);
                });
            }
            fn network(&mut self, net: &crate::net::NetState) {
                let n = net.clone();
                let _ = self.0.update_state(|st| st.network = Some(n));
            }
        }
        let mut rec = rec;
        rec.config = self.resolve_network(&rec.config)?;
        let mut log = LogWriter::open(&d.log_path())?;
        let res = match stdio {
            Stdio::Capture(cb) => {
                let mut both = |s: crate::io::Stream, l: &[u8]| {
                    log.write(s, l);
                    cb(s, l);
                };
                run(&rec.runtime, id, &rec.config, Stdio::Capture(&mut both), &mut Obs(&d))
            }
            Stdio::Inherit => {
                let mut to_log = |s: crate::io::Stream, l: &[u8]| log.write(s, l);
                run(&rec.runtime, id, &rec.config, Stdio::Tee(&mut to_log), &mut Obs(&d))
            }
            Stdio::Tee(cb) => {
                let mut both = |s: crate::io::Stream, l: &[u8]| {
                    log.write(s, l);
                    cb(s, l);
                };
                run(&rec.runtime, id, &rec.config, Stdio::Tee(&mut both), &mut Obs(&d))
            }
            other => run(&rec.runtime, id, &rec.config, other, &mut Obs(&d)),
        };
        d.update_state(|st| {
            st.status = Status::Exited;
            st.finished_at = now_rfc3339();
            st.pid = 0;
            st.supervisor_pid = 0;
            st.network = None;
            match &res {
                Ok(o) => {
                    st.exit_code = o.exit_code;
                    st.oom_killed = o.oom_killed;
                }
                Err(e) => {
                    st.exit_code = e.exit_code();
                    st.error = e.to_string();
                }
            }
        })?;
        res
    }

    /// Block until the container is not running; returns its exit code.
    pub fn wait(&self, id: &str) -> Result<i32> {
        loop {
            let i = self.inspect(id)?;
            if i.state.status != Status::Running {
                return Ok(i.state.exit_code);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_timeout(&self, id: &str, t: Duration) -> Result<bool> {
        let t0 = Instant::now();
        while t0.elapsed() < t {
            if self.inspect(id)?.state.status != Status::Running {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(false)
    }

    /// Send `signal` to the container's main process.
    pub fn kill(&self, id: &str, signal: &str) -> Result<()> {
        let sig = parse_signal(signal)?;
        let i = self.inspect(id)?;
        if i.state.status != Status::Running {
            return Err(Error::WrongState {
                id: id.into(),
                state: i.state.status.as_str().into(),
                hint: "only running containers can be signalled",
            });
        }
        // A container the user stops or kills is not restarted by its restart policy.
        if !i.record.config.restart_policy.name.is_empty() {
            let _ = self.existing(id)?.update_state(|st| st.manually_stopped = true);
        }
        signal_process(i.state.pid, i.state.pid_start, sig as i32).map_err(|e| match e {
            nix::Error::ESRCH => Error::WrongState {
                id: id.into(),
                state: "exited".into(),
                hint: "its process is gone (the pid now belongs to another process or to none)",
            },
            e => Error::sys("kill", e),
        })
    }

    /// Docker's stop: StopSignal (default SIGTERM), then SIGKILL after `timeout`
    /// (default: the container's `stop_timeout`, else 10 s).
    pub fn stop(&self, id: &str, timeout: Option<Duration>) -> Result<()> {
        let i = self.inspect(id)?;
        if i.state.status != Status::Running {
            return Ok(());
        }
        let sig = i.record.config.stop_signal.as_deref().unwrap_or("SIGTERM");
        let t = timeout.or(i.record.config.stop_timeout.map(Duration::from_secs)).unwrap_or(Duration::from_secs(10));
        let _ = self.kill(id, sig);
        if self.wait_timeout(id, t)? {
            return Ok(());
        }
        let _ = self.kill(id, "SIGKILL");
        if self.wait_timeout(id, Duration::from_secs(10))? {
            return Ok(());
        }
        Err(Error::WrongState {
            id: id.into(),
            state: "running".into(),
            hint: "the container did not exit after SIGKILL",
        })
    }

    /// Remove the record. A running container is refused unless `force` (then killed).
    pub fn remove(&self, id: &str, force: bool) -> Result<()> {
        let i = self.inspect(id)?;
        if i.state.status == Status::Running {
            if !force {
                return Err(Error::WrongState {
                    id: id.into(),
                    state: "running".into(),
                    hint: "stop the container before removing it, or use force",
                });
            }
            let _ = self.kill(id, "SIGKILL");
            self.wait_timeout(id, Duration::from_secs(10))?;
        }
        let d = self.dir(id);
        {
            let _l = d.lock()?;
            cleanup_orphan(&i.record.runtime, id);
        }
        fs::remove_dir_all(&d.dir).ctx("remove", &d.dir)
    }

    /// Read the json-file log; with `follow`, until the container stops.
    pub fn logs(&self, id: &str, opts: &LogOptions, out: &mut dyn FnMut(&LogEntry)) -> Result<()> {
        let d = self.existing(id)?;
        let mut running = || self.inspect(id).map(|i| i.state.status == Status::Running).unwrap_or(false);
        read_logs(&d.log_path(), opts, &mut running, out)
    }

    /// `exec` in a running container. Same threading contract as [`crate::run()`].
    pub fn exec(&self, id: &str, ex: &ExecConfig, stdio: Stdio<'_>) -> Result<RunOutcome> {
        let i = self.inspect(id)?;
        if i.state.status != Status::Running {
            return Err(Error::WrongState {
                id: id.into(),
                state: i.state.status.as_str().into(),
                hint: "start the container first",
            });
        }
        let rootfs = i.state.rootfs.clone().unwrap_or_else(|| PathBuf::from("/"));
        exec_in(&i.record.runtime, id, &i.record.config, &rootfs, ex, stdio, &mut ())
    }

    /// Run the health check once now and record it (`docker inspect` shows it).
    pub fn health_check(&self, id: &str) -> Result<HealthLogEntry> {
        crate::health::run_probe(&self.root, id)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Best effort: remove a dead container's runtime leftovers (libcontainer state and
/// cgroup, rootfs mount, scratch files).
pub(crate) fn cleanup_orphan(opts: &RuntimeOptions, id: &str) {
    if let crate::run::Backend::External(rt) = &opts.backend
        && opts.state_root.join("runc").join(id).exists()
    {
        let _ = Command::new(rt)
            .arg("--root")
            .arg(opts.state_root.join("runc"))
            .args(["delete", "--force", id])
            .stdout(PStdio::null())
            .stderr(PStdio::null())
            .status();
    }
    let lc = opts.lc_root().join(id);
    if lc.exists()
        && let Ok(mut c) = libcontainer::container::Container::load(lc.clone())
    {
        let _ = c.delete(true);
    }
    let scratch = opts.scratch_dir(id);
    let rootfs = scratch.join("rootfs");
    let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
    crate::net::remove_netns(&scratch.join("netns"));
    for f in
        ["bundle/config.json", "resolv.conf", "hosts", "hostname", "console.sock", "runc.pid", "process.json", "owner"]
    {
        let _ = fs::remove_file(scratch.join(f));
    }
    for d in ["bundle", "rootfs", "rootfs.empty", ""] {
        let _ = fs::remove_dir(scratch.join(d));
    }
}

/// Keep `OwnedFd` in the public signature space (re-export for callers building
/// [`Stdio::Fds`]).
pub type Fd = OwnedFd;

#[cfg(test)]
mod signal_tests {
    use super::signal_process;

    #[test]
    fn a_recycled_pid_is_never_signalled() {
        let mut child = std::process::Command::new("sleep").arg("100").spawn().unwrap();
        let pid = child.id() as i32;
        let start = crate::private::process_start_time(pid).unwrap();
        // The state file names another process that once had this pid.
        assert_eq!(signal_process(pid, start + 7, libc::SIGKILL), Err(nix::Error::ESRCH));
        assert!(child.try_wait().unwrap().is_none(), "the wrong process was signalled");
        signal_process(pid, start, libc::SIGKILL).unwrap();
        let st = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(libc::SIGKILL));
        // Gone (reaped): ESRCH, never a stray signal.
        assert_eq!(signal_process(pid, start, libc::SIGKILL), Err(nix::Error::ESRCH));
    }
}
