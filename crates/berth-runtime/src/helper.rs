//! Running a container from a multi-threaded process (the builder under tokio): the
//! container is run by a fresh single-threaded helper process
//! (`<helper_exe> __berth-run <request.json>`), whose stdout/stderr are pipes we read
//! line by line. Spawning uses `std::process::Command` (fork+exec), which is safe from
//! any thread; libcontainer's own forks then happen in the helper.

use std::fs;
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Command, Stdio as PStdio};

use serde::{Deserialize, Serialize};

use crate::config::ContainerConfig;
use crate::error::{Error, IoCtx, Result};
use crate::io::{LineBuf, Stream};
use crate::run::{RunOutcome, RuntimeOptions, Stdio, run};

#[derive(Serialize, Deserialize)]
struct Request {
    opts: RuntimeOptions,
    id: String,
    config: ContainerConfig,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Reply {
    Ok(RunOutcome),
    Err { code: i32, message: String },
}

/// Run `cfg` in a helper process and stream its output lines to `on_line`. Blocking;
/// safe to call from any thread (e.g. `tokio::task::spawn_blocking`). To cancel, send
/// SIGTERM/SIGINT to the pid passed to `on_spawn`: the helper forwards it to the
/// container and cleans up. `cfg.tty` is not supported here.
pub fn run_in_helper(
    opts: &RuntimeOptions,
    id: &str,
    cfg: &ContainerConfig,
    on_spawn: &mut dyn FnMut(u32),
    on_line: &mut dyn FnMut(Stream, &[u8]),
) -> Result<RunOutcome> {
    let dir = opts.scratch_dir(id);
    // The scratch directory first, naming us as its owner: if we are killed, the next berth
    // process finds the request and the helper's mounts by it (see `private`).
    crate::private::private_state_dirs(&opts.state_root, &["c"])?;
    crate::private::private_dir(&dir)?;
    crate::private::add_owner(&dir, std::process::id() as i32)?;
    let req_path = dir.with_extension("request.json");
    let res_path = dir.with_extension("result.json");
    let req = Request { opts: opts.clone(), id: id.into(), config: ContainerConfig { tty: false, ..cfg.clone() } };
    let data = serde_json::to_vec(&req).map_err(|e| Error::Spec(e.to_string()))?;
    crate::private::write_private(&req_path, &data)?;
    let _ = fs::remove_file(&res_path);
    let mut child = Command::new(&opts.helper_exe)
        .arg(crate::hidden::RUN_ARG)
        .arg(&req_path)
        .stdin(PStdio::null())
        .stdout(PStdio::piped())
        .stderr(PStdio::piped())
        .spawn()
        .map_err(|e| Error::Supervisor {
            id: id.into(),
            message: format!("cannot execute {}: {e}", opts.helper_exe.display()),
        })?;
    on_spawn(child.id());
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let (mut lo, mut le) = (LineBuf::default(), LineBuf::default());
    let mut buf = vec![0u8; 32 * 1024];
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    while out.is_some() || err.is_some() {
        let mut fds = Vec::new();
        if let Some(o) = &out {
            fds.push((Stream::Stdout, PollFd::new(o.as_fd(), PollFlags::POLLIN)));
        }
        if let Some(e) = &err {
            fds.push((Stream::Stderr, PollFd::new(e.as_fd(), PollFlags::POLLIN)));
        }
        let mut pf: Vec<PollFd> = fds.iter().map(|(_, f)| *f).collect();
        match poll(&mut pf, PollTimeout::NONE) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", e)),
        }
        let ready: Vec<Stream> = fds
            .iter()
            .zip(pf.iter())
            .filter(|(_, p)| p.revents().is_some_and(|r| !r.is_empty()))
            .map(|((s, _), _)| *s)
            .collect();
        drop(pf);
        drop(fds);
        for s in ready {
            let (slot, lb) = match s {
                Stream::Stdout => (out.as_ref().map(|f| f.as_raw_fd()), &mut lo),
                Stream::Stderr => (err.as_ref().map(|f| f.as_raw_fd()), &mut le),
            };
            let Some(fd) = slot else { continue };
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) | Err(_) => {
                    lb.flush(|l| on_line(s, l));
                    match s {
                        Stream::Stdout => out = None,
                        Stream::Stderr => err = None,
                    }
                }
                Ok(n) => lb.push(buf.get(..n).unwrap_or_default(), |l| on_line(s, l)),
            }
        }
    }
    let status = child.wait().ctx("wait for helper", &opts.helper_exe)?;
    let _ = fs::remove_file(&req_path);
    let reply = fs::read(&res_path);
    let _ = fs::remove_file(&res_path);
    match reply.ok().and_then(|b| serde_json::from_slice::<Reply>(&b).ok()) {
        Some(Reply::Ok(o)) => Ok(o),
        Some(Reply::Err { code: 127, message }) => Err(Error::CommandNotFound { message }),
        Some(Reply::Err { code: 126, message }) => Err(Error::CommandNotExecutable { message }),
        Some(Reply::Err { message, .. }) => Err(Error::Supervisor { id: id.into(), message }),
        None => {
            Err(Error::Supervisor { id: id.into(), message: format!("run helper ended without a result ({status})") })
        }
    }
}

/// Entry point for `<exe> __berth-run <request.json>`.
pub(crate) fn run_main(args: &[String]) -> i32 {
    // If the caller dies, stop the container (SIGTERM is forwarded to it) and clean up.
    // SAFETY: prctl(PR_SET_PDEATHSIG) has no memory-safety preconditions.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
    let Some(req_path) = args.first().map(std::path::PathBuf::from) else {
        return 2;
    };
    let res_path = req_path.with_file_name(
        req_path.file_name().map(|n| n.to_string_lossy().replace("request.json", "result.json")).unwrap_or_default(),
    );
    let reply = match fs::read(&req_path).map_err(|e| Error::io("read", &req_path, e)).and_then(|b| {
        serde_json::from_slice::<Request>(&b).map_err(|e| Error::Json { path: req_path.clone(), source: e })
    }) {
        Ok(req) => match run(&req.opts, &req.id, &req.config, Stdio::Inherit, &mut ()) {
            Ok(o) => Reply::Ok(o),
            Err(e) => Reply::Err { code: e.exit_code(), message: e.to_string() },
        },
        Err(e) => Reply::Err { code: e.exit_code(), message: e.to_string() },
    };
    let data = serde_json::to_vec(&reply).unwrap_or_default();
    match crate::util::atomic_write(&res_path, &data, 0o600) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}
