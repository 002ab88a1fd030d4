//! The detached-container supervisor (our conmon).
//!
//! `start` of a detached container re-executes the helper binary
//! (`RuntimeOptions::helper_exe`, default `/proc/self/exe`) as
//! `<exe> __berth-supervisor <root> <id> <ready-fd>`; the binary routes that to
//! [`supervisor_main`] through [`crate::hidden_main`]. The supervisor calls `setsid()`,
//! runs the container in the foreground of its own single-threaded process with the
//! container's output captured into `json.log`, records state transitions, starts the
//! health-check loop, and reports "started" (or the start error) on the ready pipe so
//! the CLI can return. It outlives the CLI and exits when the container exits, after
//! recording the exit code and cleaning up.

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio as PStdio};

use crate::error::Error;
use crate::io::Stream;
use crate::logs::LogWriter;
use crate::run::{RunObserver, Stdio, run};
use crate::state::{ContainerDir, Health, Status, ZERO_TIME};
use crate::util::now_rfc3339;

struct Observer<'a> {
    cdir: &'a ContainerDir,
    root: PathBuf,
    id: String,
    ready: Option<File>,
    health: Option<Child>,
    helper: PathBuf,
    has_health: bool,
    rootfs: PathBuf,
}

impl RunObserver for Observer<'_> {
    fn started(&mut self, pid: i32) {
        let has_health = self.has_health;
        let rootfs = self.rootfs.clone();
        let _ = self.cdir.update_state(|st| {
            st.status = Status::Running;
            st.pid = pid;
            st.pid_start = crate::private::process_start_time(pid).unwrap_or(0);
            st.exit_code = 0;
            st.error.clear();
            st.started_at = now_rfc3339();
            st.finished_at = ZERO_TIME.into();
            st.oom_killed = false;
            st.supervisor_pid = std::process::id() as i32;
            st.supervisor_pid_start = crate::private::process_start_time(st.supervisor_pid).unwrap_or(0);
            st.rootfs = Some(rootfs);
            st.health = has_health.then(|| Health { status: "starting".into(), failing_streak: 0, log: Vec::new() });
        });
        if has_health {
            self.health = Command::new(&self.helper)
                .arg(crate::hidden::HEALTH_ARG)
                .arg(&self.root)
                .arg(&self.id)
                .stdin(PStdio::null())
                .stdout(PStdio::null())
                .stderr(PStdio::null())
                .spawn()
                .ok();
        }
        if let Some(mut f) = self.ready.take() {
            let _ = writeln!(f, "ok {pid}");
        }
    }
    fn network(&mut self, net: &crate::net::NetState) {
        let n = net.clone();
        let _ = self.cdir.update_state(|st| st.network = Some(n));
    }
}

/// Entry point for `<exe> __berth-supervisor <root> <id> <ready-fd>`. Returns the
/// process exit status (0 when the container's exit was recorded).
pub fn supervisor_main(args: &[String]) -> i32 {
    let (Some(root), Some(id), Some(fd)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("berth supervisor: usage: <root> <id> <ready-fd>");
        return 2;
    };
    let fd: i32 = fd.parse().unwrap_or(-1);
    if fd > 2 {
        // Nothing we spawn (health loop, runtimes) may inherit the ready pipe, or the
        // CLI would wait for their exit.
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    }
    let ready = (fd > 2).then(|| {
        // SAFETY: the parent passed us this inherited pipe descriptor by number.
        unsafe { File::from_raw_fd(fd) }
    });
    let _ = nix::unistd::setsid();
    // Do not pin the caller's working directory (it may be unmounted later).
    let _ = std::env::set_current_dir("/");
    let root = PathBuf::from(root);
    let cdir = ContainerDir::new(&root, id);
    let mut ready = ready;
    let fail = |ready: &mut Option<File>, e: &Error| {
        let _ = cdir.update_state(|st| {
            st.status = Status::Exited;
            st.exit_code = e.exit_code();
            st.error = e.to_string();
            st.finished_at = now_rfc3339();
        });
        if let Some(f) = ready.as_mut() {
            let _ = writeln!(f, "err {} {}", e.exit_code(), e);
        }
    };
    let mut rec = match cdir.read_record() {
        Ok(r) => r,
        Err(e) => {
            fail(&mut ready, &e);
            return 1;
        }
    };
    match crate::containers::Containers::new(&root).resolve_network(&rec.config) {
        Ok(c) => rec.config = c,
        Err(e) => {
            fail(&mut ready, &e);
            return 1;
        }
    }
    let mut log = match LogWriter::open(&cdir.log_path()) {
        Ok(l) => l,
        Err(e) => {
            fail(&mut ready, &e);
            return 1;
        }
    };
    let rootfs = match &rec.config.rootfs {
        crate::rootfs::RootfsSource::Path(p) => p.clone(),
        crate::rootfs::RootfsSource::Layers(l) if l.mode == crate::rootfs::RootfsMode::Copy => {
            l.upper.clone().unwrap_or_default()
        }
        _ => rec.runtime.scratch_dir(id).join("rootfs"),
    };
    let mut obs = Observer {
        cdir: &cdir,
        root: root.clone(),
        id: id.clone(),
        ready: ready.take(),
        health: None,
        helper: rec.runtime.helper_exe.clone(),
        has_health: rec.config.healthcheck.as_ref().is_some_and(|h| h.command().is_some()),
        rootfs,
    };
    let mut cb = |s: Stream, l: &[u8]| log.write(s, l);
    // Docker's restart policies: run again after an exit the policy covers (never after a
    // stop or kill by the user), with docker's backoff (100 ms, doubling, at most 1 min).
    let mut delay = std::time::Duration::from_millis(100);
    let res = loop {
        let res = run(&rec.runtime, id, &rec.config, Stdio::Capture(&mut cb), &mut obs);
        if let Some(mut h) = obs.health.take() {
            let _ = h.kill();
            let _ = h.wait();
        }
        let Ok(out) = &res else { break res };
        let st = cdir.read_state().unwrap_or_default();
        if st.manually_stopped || !rec.config.restart_policy.should_restart(out.exit_code, st.restart_count) {
            break res;
        }
        let code = out.exit_code;
        let _ = cdir.update_state(|st| {
            st.exit_code = code;
            st.finished_at = now_rfc3339();
            st.restart_count += 1;
        });
        std::thread::sleep(delay);
        delay = (delay * 2).min(std::time::Duration::from_secs(60));
        if cdir.read_state().is_ok_and(|st| st.manually_stopped) {
            break res;
        }
    };
    match res {
        Ok(out) => {
            let _ = cdir.update_state(|st| {
                st.status = Status::Exited;
                st.exit_code = out.exit_code;
                st.oom_killed = out.oom_killed;
                st.finished_at = now_rfc3339();
                st.pid = 0;
                st.supervisor_pid = 0;
                st.rootfs = None;
                st.network = None;
            });
            if rec.config.auto_remove {
                let _ = crate::containers::Containers::new(&root).remove(id, true);
            }
            0
        }
        Err(e) => {
            let mut r = obs.ready.take();
            fail(&mut r, &e);
            1
        }
    }
}
