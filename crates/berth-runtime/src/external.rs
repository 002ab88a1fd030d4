//! The escape hatch: run the container with an external OCI runtime binary that speaks
//! runc's CLI (`runc run`/`create`/`start`/`kill`/`delete`).

use std::fs;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio as PStdio};

use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use serde_json::json;

use crate::config::{ContainerConfig, NetworkMode};
use crate::error::{Error, IoCtx, Result};
use crate::io::{MaskGuard, forward_set};
use crate::run::{Prepared, RunObserver, RunOutcome, RuntimeOptions, Stdio, pump, wire};

fn rt_err(rt: &Path, message: String) -> Error {
    Error::External { runtime: rt.to_path_buf(), message }
}

/// Check the command exists in the rootfs before starting (runc would only print an
/// error and exit 1; Docker reports 126/127).
fn precheck(cfg: &ContainerConfig, prep: &Prepared) -> Result<()> {
    let spec =
        oci_spec::runtime::Spec::load(prep.bundle.join("config.json")).map_err(|e| Error::Spec(e.to_string()))?;
    let env = spec.process().as_ref().and_then(|p| p.env().clone()).unwrap_or_default();
    let path = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(crate::config::DEFAULT_PATH);
    let arg0 = cfg.args.first().map(String::as_str).unwrap_or_default();
    match crate::executor::lookup(arg0, path, &prep.rootfs_path) {
        Ok(_) => Ok(()),
        Err((126, m)) => Err(Error::CommandNotExecutable { message: m }),
        Err((_, m)) => Err(Error::CommandNotFound { message: m }),
    }
}

/// Add the loopback-up prestart hook (the helper binary's hidden entry point).
fn add_hooks(opts: &RuntimeOptions, cfg: &ContainerConfig, prep: &Prepared) -> Result<()> {
    if cfg.network != NetworkMode::None {
        return Ok(());
    }
    let p = prep.bundle.join("config.json");
    let raw = fs::read(&p).ctx("read", &p)?;
    let mut v: serde_json::Value =
        serde_json::from_slice(&raw).map_err(|e| Error::Json { path: p.clone(), source: e })?;
    v["hooks"] = json!({"createRuntime": [{
        "path": opts.helper_exe,
        "args": [opts.helper_exe.to_string_lossy(), crate::hidden::HOOK_ARG, "loopback-up"],
    }]});
    crate::private::write_private(&p, &serde_json::to_vec(&v).map_err(|e| Error::Spec(e.to_string()))?)
}

fn to_stdio(f: Option<OwnedFd>) -> PStdio {
    match f {
        Some(f) => PStdio::from(f),
        None => PStdio::inherit(),
    }
}

pub(crate) fn run_external(
    opts: &RuntimeOptions,
    rt: &Path,
    id: &str,
    cfg: &ContainerConfig,
    prep: &Prepared,
    mut stdio: Stdio<'_>,
    observer: &mut dyn RunObserver,
) -> Result<RunOutcome> {
    precheck(cfg, prep)?;
    add_hooks(opts, cfg, prep)?;
    let set = forward_set();
    let _mask = MaskGuard::block(&set)?;
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| Error::sys("signalfd", e))?;
    let w = wire(cfg, &mut stdio)?;
    let root = opts.state_root.join("runc");
    let pid_file = prep.scratch.join("runc.pid");
    let _ = fs::remove_file(&pid_file);
    let mut cmd = Command::new(rt);
    cmd.arg("--root")
        .arg(&root)
        .arg("run")
        .arg("--bundle")
        .arg(&prep.bundle)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(id)
        .stdin(to_stdio(w.child_stdin))
        .stdout(to_stdio(w.child_stdout))
        .stderr(to_stdio(w.child_stderr));
    let child = cmd.spawn().map_err(|e| rt_err(rt, format!("cannot execute: {e}")))?;
    let pid = Pid::from_raw(child.id() as i32);
    // Report "started" only once the runtime has created the container (it writes the
    // pid file then), so an immediate `exec` finds it. Signals still go to runc, which
    // forwards them.
    let t0 = std::time::Instant::now();
    let mut container_pid = None;
    while t0.elapsed() < std::time::Duration::from_secs(30) {
        if let Some(p) = fs::read_to_string(&pid_file).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            container_pid = Some(p);
            break;
        }
        if !crate::util::pid_alive(pid.as_raw()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    if let Some(n) = &prep.net {
        n.start_forwarding()?;
        observer.network(&n.state);
    }
    observer.started(container_pid.unwrap_or(pid.as_raw()));
    let out = pump(cfg, pid, &sfd, None, w.out_r, w.err_r, stdio);
    let _ = fs::remove_file(&pid_file);
    let out = out?;
    let oom = cfg.memory.is_some() && crate::cgroup::oom_killed(&prep.cgroups_path);
    Ok(RunOutcome { oom_killed: oom, ..out })
}
