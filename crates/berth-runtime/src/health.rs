//! HEALTHCHECK: probes run with `exec` in the container, Docker's state machine
//! (starting → healthy/unhealthy, FailingStreak, start period, start interval, retries,
//! last 5 results with output capped at 4 KiB).
//!
//! The supervisor starts `<exe> __berth-health <root> <id>` (routed to
//! [`health_main`]) when the container starts and kills it when the container exits, so
//! probes never block log copying.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::HealthConfig;
use crate::error::{Error, Result};
use crate::exec::{ExecConfig, exec_in};
use crate::io::Stream;
use crate::run::{RunObserver, Stdio};
use crate::state::{ContainerDir, HealthLogEntry, Status};
use crate::util::now_rfc3339;

const MAX_OUTPUT: usize = 4096;
const MAX_LOG: usize = 5;

struct Deadline {
    pid: i32,
}

impl RunObserver for Deadline {
    fn started(&mut self, pid: i32) {
        self.pid = pid;
    }
}

/// Run one probe now and record it. Returns the entry.
pub fn run_probe(root: &Path, id: &str) -> Result<HealthLogEntry> {
    let cdir = ContainerDir::new(root, id);
    let rec = cdir.read_record()?;
    let st = cdir.read_state()?;
    if st.status != Status::Running {
        return Err(Error::WrongState {
            id: id.into(),
            state: st.status.as_str().into(),
            hint: "health checks run only in running containers",
        });
    }
    let hc = rec.config.healthcheck.clone().unwrap_or_default();
    let Some(cmd) = hc.command() else {
        return Err(Error::InvalidConfig(format!("container {id} has no health check")));
    };
    let rootfs = st.rootfs.clone().unwrap_or_else(|| PathBuf::from("/"));
    let start = now_rfc3339();
    let mut output = Vec::new();
    let timeout = Duration::from_nanos(hc.timeout_ns());
    let t0 = Instant::now();
    let mut obs = Deadline { pid: 0 };
    let watchdog = WatchdogGuard::arm(timeout);
    let res = {
        let mut cb = |_: Stream, l: &[u8]| {
            if output.len() < MAX_OUTPUT {
                output.extend_from_slice(l);
            }
        };
        exec_in(
            &rec.runtime,
            id,
            &rec.config,
            &rootfs,
            &ExecConfig { args: cmd, ..Default::default() },
            Stdio::Capture(&mut cb),
            &mut obs,
        )
    };
    drop(watchdog);
    let timed_out = t0.elapsed() >= timeout;
    let (code, out) = match res {
        Ok(_) if timed_out => (-1, format!("Health check exceeded timeout ({}s)", timeout.as_secs())),
        Ok(o) => (o.exit_code, String::from_utf8_lossy(&output).into_owned()),
        Err(e) => (e.exit_code(), e.to_string()),
    };
    let mut out = out;
    out.truncate(MAX_OUTPUT);
    let entry = HealthLogEntry { start, end: now_rfc3339(), exit_code: code, output: out };
    record(&cdir, &hc, &entry)?;
    Ok(entry)
}

/// Kills the probe when it exceeds its timeout: a forked sleeper that SIGKILLs the
/// health process's other children (the probe) when the time is up. A thread cannot be
/// used because `exec` forks with raw clone3 (see the threading contract).
struct WatchdogGuard {
    child: Option<nix::unistd::Pid>,
}

impl WatchdogGuard {
    fn arm(timeout: Duration) -> Self {
        let me = nix::unistd::getpid();
        // SAFETY: the health process is single threaded; the child only sleeps and
        // signals, then _exits.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => {
                std::thread::sleep(timeout);
                // Kill our parent's probe: every child of the parent that is not us.
                if let Ok(s) = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")) {
                    let mine = std::process::id().to_string();
                    for p in s.split_whitespace().filter(|p| *p != mine) {
                        if let Ok(pid) = p.parse::<i32>() {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                    }
                }
                // SAFETY: _exit in a forked child.
                unsafe { libc::_exit(0) }
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => WatchdogGuard { child: Some(child) },
            Err(_) => WatchdogGuard { child: None },
        }
    }
}

impl Drop for WatchdogGuard {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            let _ = nix::sys::signal::kill(c, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(c, None);
        }
    }
}

/// Apply Docker's state machine for one result.
pub(crate) fn record(cdir: &ContainerDir, hc: &HealthConfig, e: &HealthLogEntry) -> Result<()> {
    cdir.update_state(|st| {
        let started = chrono::DateTime::parse_from_rfc3339(&st.started_at).ok();
        let in_start_period = started.is_some_and(|s| {
            let el = chrono::Utc::now().signed_duration_since(s);
            el.num_nanoseconds().unwrap_or(i64::MAX) < hc.start_period as i64
        });
        let h =
            st.health.get_or_insert_with(|| crate::state::Health { status: "starting".into(), ..Default::default() });
        h.log.push(e.clone());
        if h.log.len() > MAX_LOG {
            let n = h.log.len() - MAX_LOG;
            h.log.drain(..n);
        }
        if e.exit_code == 0 {
            h.status = "healthy".into();
            h.failing_streak = 0;
        } else if in_start_period && h.status == "starting" {
            // Failures during the start period do not count.
        } else {
            h.failing_streak += 1;
            if h.failing_streak >= hc.retries_n() {
                h.status = "unhealthy".into();
            }
        }
    })?;
    Ok(())
}

/// Entry point for `<exe> __berth-health <root> <id>`: probe on schedule while the
/// container runs.
pub fn health_main(args: &[String]) -> i32 {
    let (Some(root), Some(id)) = (args.first(), args.get(1)) else {
        return 2;
    };
    // Die with the supervisor (it kills us on a normal exit; this covers SIGKILL).
    // SAFETY: prctl(PR_SET_PDEATHSIG) has no memory-safety preconditions.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let parent = nix::unistd::getppid();
    let root = PathBuf::from(root);
    let cdir = ContainerDir::new(&root, id);
    let Ok(rec) = cdir.read_record() else {
        return 1;
    };
    let hc = rec.config.healthcheck.clone().unwrap_or_default();
    let t0 = Instant::now();
    loop {
        let starting = cdir.read_state().ok().and_then(|s| s.health.map(|h| h.status == "starting")).unwrap_or(false);
        let in_start = t0.elapsed() < Duration::from_nanos(hc.start_period);
        let wait =
            if starting && in_start && hc.start_interval > 0 { hc.start_interval_ns() } else { hc.interval_ns() };
        std::thread::sleep(Duration::from_nanos(wait));
        match cdir.read_state() {
            Ok(s) if s.status == Status::Running && nix::unistd::getppid() == parent => {}
            _ => return 0,
        }
        let _ = run_probe(&root, id);
    }
}
