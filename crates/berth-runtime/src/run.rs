//! Foreground runs: prepare rootfs + bundle, start the container (embedded libcontainer
//! or an external OCI runtime), pump its I/O, forward signals, wait, clean up.
//!
//! # Threading contract
//! libcontainer creates the container with raw `clone3` calls and runs Rust code in the
//! children before `exec`. Call [`run`] (and [`crate::exec_in`]) from a process that has
//! **no other threads running** — e.g. the `berth run` path before any tokio runtime is
//! started. A multi-threaded caller (the builder) must use [`crate::run_in_helper`],
//! which re-executes the helper binary and runs the container there. The calling
//! thread's signal mask is changed during the run and restored afterwards.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::signal::Signal;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::config::{ContainerConfig, NetworkMode};
use crate::error::{Error, IoCtx, Result};
use crate::executor::{BerthExecutor, classify};
use crate::io::{LineBuf, MaskGuard, RawMode, Stream, copy_winsize, forward_set, is_tty, recv_fd, write_all};
use crate::rootfs::{MountedRootfs, RootfsSource, mount_rootfs};
use crate::spec::{SpecInputs, build_spec, hostname_for};
use crate::util::resolve_in_root;

/// Which OCI runtime runs the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// youki's libcontainer, in-process (default, fastest).
    #[default]
    Embedded,
    /// An external runtime binary with runc's CLI (`runc`, `crun`, `youki`).
    External(PathBuf),
}

/// Process-wide runtime settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeOptions {
    pub backend: Backend,
    /// Scratch and runtime state (bundles, rootfs mount points, libcontainer state).
    /// Should be on tmpfs and short (unix socket paths live under it). Default `/run/berth`.
    pub state_root: PathBuf,
    /// Parent cgroup name; containers get `/<cgroup_parent>/<id>`. Default `berth`.
    pub cgroup_parent: String,
    /// Binary that routes the hidden entry points ([`crate::hidden_main`]); used for the
    /// supervisor, the run helper and OCI hooks. Default `/proc/self/exe`.
    pub helper_exe: PathBuf,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            backend: Backend::Embedded,
            state_root: PathBuf::from("/run/berth"),
            cgroup_parent: "berth".into(),
            helper_exe: std::fs::read_link("/proc/self/exe").unwrap_or_else(|_| PathBuf::from("/proc/self/exe")),
        }
    }
}

impl RuntimeOptions {
    pub(crate) fn scratch_dir(&self, id: &str) -> PathBuf {
        self.state_root.join("c").join(id)
    }
    pub(crate) fn lc_root(&self) -> PathBuf {
        self.state_root.join("lc")
    }
    /// The container's cgroup path (`/<parent>/<id>`), relative to each hierarchy's root.
    pub fn cgroups_path(&self, id: &str) -> String {
        format!("/{}/{}", self.cgroup_parent, id)
    }
}

/// Where the container's stdio goes.
pub enum Stdio<'a> {
    /// Our own stdin/stdout/stderr (stdin only with `interactive`, else /dev/null). With
    /// `tty` a pty is proxied to them, our terminal in raw mode.
    Inherit,
    /// stdin /dev/null, stdout and stderr split into lines for the callback.
    Capture(&'a mut dyn FnMut(Stream, &[u8])),
    /// Like `Inherit` (our terminal, stdin with `interactive`, raw mode with `tty`), but
    /// output goes through pipes: raw chunks are written to our stdout/stderr at once and
    /// complete lines are also given to the callback (attached runs that are logged).
    Tee(&'a mut dyn FnMut(Stream, &[u8])),
    /// Explicit descriptors (stdin `None` = /dev/null). Not supported with `tty`.
    Fds { stdin: Option<OwnedFd>, stdout: OwnedFd, stderr: OwnedFd },
}

impl Stdio<'_> {
    /// Whether our own terminal is the container's (raw mode, stdin, window size).
    pub(crate) fn is_terminal_like(&self) -> bool {
        matches!(self, Stdio::Inherit | Stdio::Tee(_))
    }
}

/// How a container's command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// Docker's exit status: the command's code, or 128+N when killed by signal N.
    pub exit_code: i32,
    /// The signal that killed the command, if any.
    pub signal: Option<i32>,
    /// The cgroup recorded an OOM kill.
    pub oom_killed: bool,
}

impl RunOutcome {
    fn from_status(ws: WaitStatus) -> Option<Self> {
        match ws {
            WaitStatus::Exited(_, c) => Some(RunOutcome { exit_code: c, signal: None, oom_killed: false }),
            WaitStatus::Signaled(_, s, _) => {
                Some(RunOutcome { exit_code: 128 + s as i32, signal: Some(s as i32), oom_killed: false })
            }
            _ => None,
        }
    }
}

/// Everything prepared on the host before the runtime is called.
pub(crate) struct Prepared {
    pub scratch: PathBuf,
    pub bundle: PathBuf,
    pub rootfs: Option<MountedRootfs>,
    pub rootfs_path: PathBuf,
    /// Paths (relative to the rootfs) that did not exist before the run and may be created
    /// by the runtime as mount points; removed afterwards when still empty.
    pub created_mountpoints: Vec<PathBuf>,
    pub cgroups_path: String,
    /// The container's own network (bridge networks); torn down with the run.
    pub net: Option<crate::net::Attachment>,
}

impl Prepared {
    /// Undo everything: remove mount points the runtime created, unmount, remove scratch.
    pub fn cleanup(mut self) -> Result<()> {
        for rel in self.created_mountpoints.iter().rev() {
            let p = self.rootfs_path.join(rel);
            if let Ok(m) = fs::symlink_metadata(&p) {
                if m.is_dir() {
                    let _ = fs::remove_dir(&p);
                } else if m.is_file() && m.len() == 0 {
                    let _ = fs::remove_file(&p);
                }
            }
        }
        drop(self.net.take());
        let res = match self.rootfs.take() {
            Some(r) => r.unmount(),
            None => Ok(()),
        };
        // Never remove_dir_all: only our own files, so a still-mounted rootfs is safe.
        let _ = fs::remove_file(self.bundle.join("config.json"));
        for f in ["resolv.conf", "hosts", "hostname", "console.sock", "process.json", "runc.pid", "owner"] {
            let _ = fs::remove_file(self.scratch.join(f));
        }
        let _ = fs::remove_dir(&self.bundle);
        let _ = fs::remove_dir(self.scratch.join("rootfs"));
        let _ = fs::remove_dir(self.scratch.join("rootfs.empty"));
        let _ = fs::remove_dir(&self.scratch);
        res
    }
}

/// The chain of components of `dst` (inside `root`) that do not exist yet.
fn missing_chain(root: &Path, dst: &str) -> Vec<PathBuf> {
    let resolved = resolve_in_root(root, Path::new(dst));
    let Ok(rel) = resolved.strip_prefix(root) else {
        return vec![];
    };
    let mut out = Vec::new();
    let mut cur = PathBuf::new();
    for c in rel.components() {
        cur.push(c);
        if out.is_empty() && fs::symlink_metadata(root.join(&cur)).is_ok() {
            continue;
        }
        out.push(cur.clone());
    }
    out
}

/// Mount the rootfs, resolve the user, create the working dir, write /etc files and the
/// bundle's config.json.
pub(crate) fn prepare(opts: &RuntimeOptions, id: &str, cfg: &ContainerConfig) -> Result<Prepared> {
    let scratch = opts.scratch_dir(id);
    crate::private::private_state_dirs(&opts.state_root, &["c"])?;
    crate::private::private_dir(&scratch)?;
    crate::private::add_owner(&scratch, std::process::id() as i32)?;
    let net = match &cfg.network {
        NetworkMode::Bridge(n) => {
            match crate::net::Attachment::create(&opts.state_root, &scratch, id, n, cfg, &hostname_for(cfg, id)) {
                Ok(a) => Some(a),
                Err(e) => {
                    let _ = fs::remove_dir(&scratch);
                    return Err(e);
                }
            }
        }
        NetworkMode::Container(c) => {
            return Err(Error::InvalidConfig(format!("network container:{c} was not resolved before the run")));
        }
        _ => None,
    };
    let source = match &cfg.rootfs {
        RootfsSource::Path(p) => RootfsSource::Path(fs::canonicalize(p).ctx("resolve rootfs path", p)?),
        other => other.clone(),
    };
    let rootfs = mount_rootfs(&source, &scratch.join("rootfs"))?;
    let mut prep = Prepared {
        bundle: scratch.join("bundle"),
        rootfs_path: rootfs.path().to_path_buf(),
        rootfs: Some(rootfs),
        scratch,
        created_mountpoints: Vec::new(),
        cgroups_path: opts.cgroups_path(id),
        net,
    };
    match prepare_inner(opts, id, cfg, &mut prep) {
        Ok(()) => Ok(prep),
        Err(e) => {
            let _ = prep.cleanup();
            Err(e)
        }
    }
}

fn prepare_inner(opts: &RuntimeOptions, id: &str, cfg: &ContainerConfig, prep: &mut Prepared) -> Result<()> {
    let _ = opts;
    let root = prep.rootfs_path.clone();
    if !root.is_dir() {
        return Err(Error::InvalidConfig(format!("rootfs {} is not a directory", root.display())));
    }
    let user = crate::user::resolve_user(&root, cfg.user.as_deref().unwrap_or(""), &cfg.group_add)?;
    if let Some(wd) = cfg.working_dir.as_deref().filter(|w| w.starts_with('/')) {
        let p = resolve_in_root(&root, Path::new(wd));
        if !p.exists() {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new().recursive(true).mode(0o755).create(&p).ctx("create working directory", &p)?;
        }
    }
    let hostname = hostname_for(cfg, id);
    let etc = crate::etc::write_etc_files(&prep.scratch, cfg, &hostname, prep.net.as_ref())?;
    let netns = match (&cfg.network, &prep.net) {
        (_, Some(a)) => Some(a.netns_path.clone()),
        (NetworkMode::Netns(p), None) => Some(p.clone()),
        _ => None,
    };
    let spec = build_spec(
        cfg,
        &SpecInputs {
            id,
            rootfs: &root,
            user: &user,
            etc: &etc,
            cgroups_path: prep.cgroups_path.clone(),
            netns: netns.as_deref(),
        },
    )?;
    let mut created = Vec::new();
    for m in spec.mounts().iter().flatten() {
        if let Some(d) = m.destination().to_str() {
            for p in missing_chain(&root, d) {
                if !created.contains(&p) {
                    created.push(p);
                }
            }
        }
    }
    prep.created_mountpoints = created;
    crate::private::private_dir(&prep.bundle)?;
    let cfg_path = prep.bundle.join("config.json");
    let data = serde_json::to_vec(&spec).map_err(|e| Error::Spec(e.to_string()))?;
    crate::private::write_private(&cfg_path, &data)?;
    Ok(())
}

/// Stage timings on stderr when `BERTH_RUNTIME_TIMING` is set (benchmarking aid).
pub(crate) struct Timing(Option<std::cell::Cell<Instant>>);

impl Timing {
    pub fn new() -> Self {
        Timing(std::env::var_os("BERTH_RUNTIME_TIMING").map(|_| std::cell::Cell::new(Instant::now())))
    }
    pub fn mark(&self, what: &str) {
        if let Some(c) = &self.0 {
            let now = Instant::now();
            eprintln!("berth-runtime timing: {what}: {:.2} ms", (now - c.get()).as_secs_f64() * 1e3);
            c.set(now);
        }
    }
}

/// Hooks for callers that track the container (the supervisor records state).
pub trait RunObserver {
    /// The command is about to start; `pid` is its host pid.
    fn started(&mut self, _pid: i32) {}
    /// The container's network is up (bridge networks; called before `started`).
    fn network(&mut self, _net: &crate::net::NetState) {}
}

impl RunObserver for () {}

/// Run `cfg` in the foreground and return its exit status. See the module docs for the
/// threading contract. `id` must be unique among running containers
/// (`[A-Za-z0-9_.+-]`); use [`crate::util::random_id`].
pub fn run(
    opts: &RuntimeOptions,
    id: &str,
    cfg: &ContainerConfig,
    stdio: Stdio<'_>,
    observer: &mut dyn RunObserver,
) -> Result<RunOutcome> {
    if matches!(stdio, Stdio::Fds { .. }) && cfg.tty && !matches!(opts.backend, Backend::Embedded) {
        return Err(Error::InvalidConfig("tty with explicit descriptors needs the embedded runtime".into()));
    }
    let t = Timing::new();
    let prep = prepare(opts, id, cfg)?;
    t.mark("prepare (rootfs, user, etc files, spec)");
    let res = match &opts.backend {
        Backend::Embedded => run_embedded(opts, id, cfg, &prep, stdio, observer),
        Backend::External(rt) => crate::external::run_external(opts, rt, id, cfg, &prep, stdio, observer),
    };
    t.mark("run");
    let cleanup = prep.cleanup();
    t.mark("cleanup");
    let out = res?;
    cleanup?;
    Ok(out)
}

pub(crate) fn lc_err(id: &str, e: impl std::fmt::Display) -> Error {
    let text = e.to_string();
    classify(&text).unwrap_or(Error::Libcontainer { id: id.to_owned(), message: text })
}

/// Full error text of a libcontainer error including its sources.
pub(crate) fn err_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Bring `lo` up in the network namespace of `pid` (Docker's `--network none` has a
/// working loopback; a fresh netns has it down). Done on a short-lived thread because
/// setns affects only the calling thread.
pub(crate) fn loopback_up(pid: i32) -> Result<()> {
    let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let ns = fs::File::open(&path).ctx("open", &path)?;
    let h = std::thread::spawn(move || -> std::result::Result<(), nix::Error> {
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
        // SAFETY: plain ioctls on a socket we own with a zeroed ifreq.
        unsafe {
            let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if s < 0 {
                return Err(nix::Error::last());
            }
            let mut ifr: libc::ifreq = std::mem::zeroed();
            for (i, b) in b"lo\0".iter().enumerate() {
                ifr.ifr_name[i] = *b as libc::c_char;
            }
            let mut r = libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr);
            if r == 0 {
                ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
                r = libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr);
            }
            let err = nix::Error::last();
            libc::close(s);
            if r != 0 {
                return Err(err);
            }
        }
        Ok(())
    });
    match h.join() {
        Ok(r) => r.map_err(|e| Error::sys("bring up loopback in the container", e)),
        Err(_) => Err(Error::InvalidConfig("loopback setup thread panicked".into())),
    }
}

fn dev_null(write: bool) -> Result<OwnedFd> {
    let f = fs::OpenOptions::new().read(!write).write(write).open("/dev/null").ctx("open", "/dev/null")?;
    Ok(f.into())
}

fn dup_fd(fd: i32) -> Result<OwnedFd> {
    // SAFETY: fd is one of our stdio descriptors, valid for the duration of the call.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    b.try_clone_to_owned().ctx("dup stdio", format!("fd {fd}"))
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))
}

fn set_nonblock(fd: BorrowedFd<'_>) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    if let Ok(fl) = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL) {
        let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK));
    }
}

/// Container stdio wiring before start, and what the I/O loop must pump afterwards.
pub(crate) struct Wiring {
    pub child_stdin: Option<OwnedFd>,
    pub child_stdout: Option<OwnedFd>,
    pub child_stderr: Option<OwnedFd>,
    /// Our read ends of the capture pipes.
    pub out_r: Option<OwnedFd>,
    pub err_r: Option<OwnedFd>,
}

pub(crate) fn wire(cfg: &ContainerConfig, stdio: &mut Stdio<'_>) -> Result<Wiring> {
    let mut w = Wiring { child_stdin: None, child_stdout: None, child_stderr: None, out_r: None, err_r: None };
    if cfg.tty {
        return Ok(w);
    }
    match stdio {
        Stdio::Inherit => {
            w.child_stdin = Some(if cfg.interactive { dup_fd(0)? } else { dev_null(false)? });
        }
        Stdio::Capture(_) | Stdio::Tee(_) => {
            let tee = matches!(stdio, Stdio::Tee(_));
            w.child_stdin = Some(if tee && cfg.interactive { dup_fd(0)? } else { dev_null(false)? });
            let (r, wr) = pipe()?;
            w.out_r = Some(r);
            w.child_stdout = Some(wr);
            let (r, wr) = pipe()?;
            w.err_r = Some(r);
            w.child_stderr = Some(wr);
        }
        Stdio::Fds { stdin, stdout, stderr } => {
            w.child_stdin = Some(match stdin.take() {
                Some(f) => f,
                None => dev_null(false)?,
            });
            w.child_stdout = Some(stdout.try_clone().ctx("dup", "stdout")?);
            w.child_stderr = Some(stderr.try_clone().ctx("dup", "stderr")?);
        }
    }
    Ok(w)
}

fn run_embedded(
    opts: &RuntimeOptions,
    id: &str,
    cfg: &ContainerConfig,
    prep: &Prepared,
    mut stdio: Stdio<'_>,
    observer: &mut dyn RunObserver,
) -> Result<RunOutcome> {
    let set = forward_set();
    let _mask = MaskGuard::block(&set)?;
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| Error::sys("signalfd", e))?;
    let wiring = wire(cfg, &mut stdio)?;
    let lc_root = crate::private::private_state_dirs(&opts.state_root, &["lc"])?;
    let sock_path = prep.scratch.join("console.sock");
    let listener = if cfg.tty {
        let _ = fs::remove_file(&sock_path);
        Some(UnixListener::bind(&sock_path).ctx("bind console socket", &sock_path)?)
    } else {
        None
    };
    let mut builder = ContainerBuilder::new(id.to_owned(), SyscallType::default())
        .with_executor(BerthExecutor {
            init: cfg.init,
            winsize: if cfg.tty && stdio.is_terminal_like() { crate::io::host_winsize() } else { None },
        })
        .with_root_path(&lc_root)
        .map_err(|e| lc_err(id, err_chain(&e)))?;
    if let Some(f) = wiring.child_stdin {
        builder = builder.with_stdin(f);
    }
    if let Some(f) = wiring.child_stdout {
        builder = builder.with_stdout(f);
    }
    if let Some(f) = wiring.child_stderr {
        builder = builder.with_stderr(f);
    }
    if cfg.tty {
        builder = builder.with_console_socket(Some(&sock_path));
    }
    let t = Timing::new();
    let mut container = builder
        .as_init(&prep.bundle)
        .with_systemd(false)
        .with_detach(cfg.tty)
        .build()
        .map_err(|e| lc_err(id, err_chain(&e)))?;
    t.mark("libcontainer build (create)");
    let res = drive_embedded(cfg, &mut container, listener, &sfd, wiring.out_r, wiring.err_r, stdio, observer, prep);
    t.mark("start + wait");
    let oom = cfg.memory.is_some() && crate::cgroup::oom_killed(&prep.cgroups_path);
    if let Err(e) = container.delete(true) {
        tracing::warn!("delete container {id}: {e}");
    }
    t.mark("libcontainer delete");
    res.map(|mut o| {
        o.oom_killed = oom;
        o
    })
}

#[allow(clippy::too_many_arguments)]
fn drive_embedded(
    cfg: &ContainerConfig,
    container: &mut Container,
    listener: Option<UnixListener>,
    sfd: &SignalFd,
    out_r: Option<OwnedFd>,
    err_r: Option<OwnedFd>,
    stdio: Stdio<'_>,
    observer: &mut dyn RunObserver,
    prep: &Prepared,
) -> Result<RunOutcome> {
    let id = container.id().to_owned();
    let pid = container.pid().ok_or_else(|| lc_err(&id, "container has no init pid"))?;
    // The container's init owns the scratch directory too: while it runs, its rootfs mount is
    // not a leftover even if we are killed.
    let _ = crate::private::add_owner(&prep.scratch, pid.as_raw());
    let master = match listener {
        Some(l) => {
            let (conn, _) = l.accept().ctx("accept console socket", prep.scratch.join("console.sock"))?;
            Some(recv_fd(conn.as_fd())?)
        }
        None => None,
    };
    if cfg.network == NetworkMode::None {
        loopback_up(pid.as_raw())?;
    }
    if let Some(m) = &master
        && stdio.is_terminal_like()
    {
        let src = if is_tty(0) { 0 } else { 1 };
        copy_winsize(src, m.as_raw_fd());
    }
    container.start().map_err(|e| lc_err(&id, err_chain(&e)))?;
    if let Some(n) = &prep.net {
        n.start_forwarding()?;
        observer.network(&n.state);
    }
    observer.started(pid.as_raw());
    pump(cfg, pid, sfd, master, out_r, err_r, stdio)
}

/// The foreground loop: forward signals, copy streams, wait for `pid`.
pub(crate) fn pump(
    cfg: &ContainerConfig,
    pid: Pid,
    sfd: &SignalFd,
    master: Option<OwnedFd>,
    out_r: Option<OwnedFd>,
    err_r: Option<OwnedFd>,
    mut stdio: Stdio<'_>,
) -> Result<RunOutcome> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let inherit = stdio.is_terminal_like();
    let _raw = if master.is_some() && inherit && is_tty(0) { RawMode::enter(0) } else { None };
    let mut stdin_open = master.is_some() && inherit && cfg.interactive;
    for fd in [&master, &out_r, &err_r].into_iter().flatten() {
        set_nonblock(fd.as_fd());
    }
    let mut out_open = out_r.is_some() || master.is_some();
    let mut err_open = err_r.is_some();
    let mut lb_out = LineBuf::default();
    let mut lb_err = LineBuf::default();
    let mut status: Option<RunOutcome> = None;
    let mut exited_at: Option<Instant> = None;
    let mut buf = vec![0u8; 32 * 1024];
    // SAFETY: fd 0/1/2 are our stdio, valid for the whole call.
    let (fd0, fd1, fd2) = unsafe { (BorrowedFd::borrow_raw(0), BorrowedFd::borrow_raw(1), BorrowedFd::borrow_raw(2)) };
    let emit = |s: Stream, data: &[u8], lb: &mut LineBuf, stdio: &mut Stdio<'_>| match stdio {
        Stdio::Capture(cb) => lb.push(data, |l| cb(s, l)),
        Stdio::Tee(cb) => {
            write_all(if s == Stream::Stderr { fd2 } else { fd1 }, data);
            lb.push(data, |l| cb(s, l));
        }
        Stdio::Fds { stdout, .. } => {
            write_all(stdout.as_fd(), data);
        }
        Stdio::Inherit => {
            write_all(fd1, data);
        }
    };
    loop {
        if let Some(t) = exited_at
            && ((!out_open && !err_open) || t.elapsed() > Duration::from_secs(2))
        {
            break;
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let mut idx_out = None;
        let mut idx_err = None;
        let mut idx_in = None;
        if out_open {
            let f = master.as_ref().or(out_r.as_ref());
            if let Some(f) = f {
                idx_out = Some(fds.len());
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            }
        }
        if err_open && let Some(f) = &err_r {
            idx_err = Some(fds.len());
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open && exited_at.is_none() {
            idx_in = Some(fds.len());
            fds.push(PollFd::new(fd0, PollFlags::POLLIN));
        }
        let timeout = if exited_at.is_some() { 100u16 } else { 1000u16 };
        match poll(&mut fds, PollTimeout::from(timeout)) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", e)),
        }
        let ready = |i: Option<usize>, fds: &[PollFd]| {
            i.and_then(|i| fds.get(i)).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty())
        };
        let (r_sig, r_out, r_err, r_in) =
            (ready(Some(0), &fds), ready(idx_out, &fds), ready(idx_err, &fds), ready(idx_in, &fds));
        drop(fds);
        if r_out {
            let f = master.as_ref().or(out_r.as_ref());
            if let Some(f) = f {
                match nix::unistd::read(f.as_raw_fd(), &mut buf) {
                    Ok(0) | Err(nix::Error::EIO) => out_open = false,
                    Ok(n) => emit(Stream::Stdout, &buf[..n], &mut lb_out, &mut stdio),
                    Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
                    Err(_) => out_open = false,
                }
            }
        }
        if r_err && let Some(f) = &err_r {
            match nix::unistd::read(f.as_raw_fd(), &mut buf) {
                Ok(0) => err_open = false,
                Ok(n) => emit(Stream::Stderr, &buf[..n], &mut lb_err, &mut stdio),
                Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
                Err(_) => err_open = false,
            }
        }
        if r_in && let Some(m) = &master {
            match nix::unistd::read(0, &mut buf) {
                Ok(0) => {
                    // EOF on a non-terminal stdin: send EOT so a shell reading the pty ends.
                    write_all(m.as_fd(), &[4]);
                    stdin_open = false;
                }
                Ok(n) => {
                    write_all(m.as_fd(), &buf[..n]);
                }
                Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
                Err(_) => stdin_open = false,
            }
        }
        if r_sig {
            while let Ok(Some(si)) = sfd.read_signal() {
                let signo = si.ssi_signo as i32;
                if signo == libc::SIGCHLD {
                    continue;
                }
                if signo == libc::SIGWINCH {
                    if let Some(m) = &master {
                        copy_winsize(if is_tty(0) { 0 } else { 1 }, m.as_raw_fd());
                    }
                    continue;
                }
                if let Ok(sig) = Signal::try_from(signo) {
                    let _ = nix::sys::signal::kill(pid, sig);
                }
            }
        }
        if status.is_none() {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(ws) => {
                    if let Some(o) = RunOutcome::from_status(ws) {
                        status = Some(o);
                        exited_at = Some(Instant::now());
                    }
                }
                Err(nix::Error::ECHILD) => {
                    // Not our child (external runtime) or already reaped.
                    if !crate::util::pid_alive(pid.as_raw()) {
                        status = Some(RunOutcome { exit_code: 0, signal: None, oom_killed: false });
                        exited_at = Some(Instant::now());
                    }
                }
                Err(_) => {}
            }
        }
    }
    if let Stdio::Capture(cb) | Stdio::Tee(cb) = &mut stdio {
        lb_out.flush(|l| cb(Stream::Stdout, l));
        lb_err.flush(|l| cb(Stream::Stderr, l));
    }
    status.ok_or_else(|| Error::InvalidConfig("container exit status unknown".into()))
}
