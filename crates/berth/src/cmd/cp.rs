//! `cp`: docker's copy of files and directories between a container and the host
//! (`berth cp CONTAINER:SRC DEST|-`, `berth cp SRC|- CONTAINER:DEST`).
//!
//! Paths in the container are resolved by the kernel inside the container's root
//! (`openat2(RESOLVE_IN_ROOT)`), so a symlink in the container (`/data -> /`) can never lead
//! outside it; the tar that carries the files is extracted by berth-archive's applier, which
//! resolves every entry inside its target the same way. A running container is reached through
//! `/proc/PID/root` (its mounts, volumes included); a stopped one through its overlay, mounted
//! for the copy (read-only to copy out, with its upper directory to copy in).

use std::io::{IsTerminal, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use berth_archive::{ApplyOptions, LayerBuilder, TarWriter, TreeOptions, WhiteoutMode, apply_tar};
use berth_runtime::{ContainerInfo, RootfsSource, Status};
use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, ResolveFlags, openat, openat2, readlinkat, statat};

use crate::cli_ext::ContainerCpArgs;
use crate::ctx::Ctx;
use crate::errors::exit_with;

/// One side of `cp` as typed.
#[derive(Debug, PartialEq, Eq)]
enum Side {
    Local(String),
    Container { name: String, path: String },
}

/// docker's `splitCpArg`: an absolute path, or one whose part before the first `:` starts
/// with `.`, is local (`./a:b`); otherwise `NAME:PATH` names a container.
fn split_arg(arg: &str) -> Side {
    if arg.starts_with('/') {
        return Side::Local(arg.to_string());
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => Side::Container { name: c.to_string(), path: p.to_string() },
        _ => Side::Local(arg.to_string()),
    }
}

/// What a source is, and how its name lands at the destination.
struct SrcInfo {
    is_dir: bool,
    /// The source path ends in `/.`: copy the directory's contents, not the directory.
    contents_only: bool,
    /// The last component (the name the copy gets inside an existing destination directory).
    base: String,
}

/// Where the tar is extracted and under which top-level name.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    /// Extract into the destination itself (an existing directory) rather than its parent.
    into_dest: bool,
    /// Top-level name of the entries; empty for a directory's contents.
    top: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DestKind {
    Missing,
    Dir,
    Other,
}

/// docker's rules (`archive.CopyInfoDestinationPath`) for where a source lands.
fn plan(src: &SrcInfo, dest: DestKind, dest_path: &str, dest_display: &str) -> Result<Plan> {
    let dest_base = last_component(dest_path);
    match dest {
        DestKind::Dir if src.is_dir && src.contents_only => Ok(Plan { into_dest: true, top: String::new() }),
        DestKind::Dir => Ok(Plan { into_dest: true, top: src.base.clone() }),
        DestKind::Other if src.is_dir => Err(exit_with(
            1,
            format!("cannot copy a directory to a file: {dest_display} exists and is not a directory"),
        )),
        DestKind::Other => Ok(Plan { into_dest: false, top: dest_base }),
        DestKind::Missing if !src.is_dir && (dest_path.ends_with('/') || dest_path.ends_with("/.")) => {
            Err(exit_with(1, format!("destination directory {dest_display} does not exist")))
        }
        DestKind::Missing => Ok(Plan { into_dest: false, top: dest_base }),
    }
}

/// `p` without trailing slashes and `/.` components.
fn trim_tail(p: &str) -> &str {
    let mut t = p;
    loop {
        let n = t.trim_end_matches('/');
        let n = n.strip_suffix("/.").unwrap_or(n);
        if n == t {
            return t;
        }
        t = n;
    }
}

/// The last component of a path, ignoring trailing slashes and `/.`.
fn last_component(p: &str) -> String {
    let t = trim_tail(p);
    if t == "." {
        return String::new();
    }
    t.rsplit('/').next().unwrap_or("").to_string()
}

/// The directory part of a path (`.` or `/` when there is none), ignoring trailing slashes
/// and `/.`.
fn parent_of(p: &str) -> String {
    let t = trim_tail(p);
    match t.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) => t[..i].to_string(),
        None if p.starts_with('/') => "/".to_string(),
        None => ".".to_string(),
    }
}

fn src_info(path: &str, is_dir: bool) -> Result<SrcInfo> {
    let contents_only = path.ends_with("/.") || path == "." || path.trim_end_matches('/').is_empty();
    if !is_dir && (path.ends_with('/') || path.ends_with("/.")) {
        return Err(exit_with(1, format!("{path}: not a directory")));
    }
    Ok(SrcInfo { is_dir, contents_only, base: last_component(path) })
}

pub fn cp(ctx: &Ctx, a: &ContainerCpArgs) -> Result<i32> {
    match (split_arg(&a.source), split_arg(&a.destination)) {
        (Side::Container { .. }, Side::Container { .. }) => {
            Err(exit_with(1, "copying between containers is not supported"))
        }
        (Side::Local(_), Side::Local(_)) => Err(exit_with(1, "must specify at least one container source")),
        (Side::Container { name, path }, Side::Local(dest)) => copy_out(ctx, a, &name, &path, &dest),
        (Side::Local(src), Side::Container { name, path }) => copy_in(ctx, a, &src, &name, &path),
    }
}

/// The container's root as a directory descriptor, plus whatever keeps it valid.
struct ContainerRoot {
    fd: OwnedFd,
    _mount: Option<(berth_runtime::MountedRootfs, tempfile::TempDir)>,
}

fn open_root(ctx: &Ctx, info: &ContainerInfo, writable: bool) -> Result<ContainerRoot> {
    if info.state.status == Status::Running && info.state.pid > 0 {
        let p = format!("/proc/{}/root", info.state.pid);
        let fd = openat(CWD, p.as_str(), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| anyhow!("opening the root of container {}: {p}: {e}", info.record.id))?;
        return Ok(ContainerRoot { fd, _mount: None });
    }
    let (m, t) = if writable {
        // The container's own overlay, upper included, so the copy is one of its changes.
        let RootfsSource::Layers(_) = &info.record.config.rootfs else {
            return Err(anyhow!("container {} has no layered root filesystem", info.record.id));
        };
        let target = tempfile::Builder::new().prefix("berth-cp-").tempdir_in(ctx.store()?.root().join("tmp"))?;
        let m = berth_runtime::mount_rootfs(&info.record.config.rootfs, target.path())?;
        (m, target)
    } else {
        crate::cmd::containers::mount_container_fs(ctx, info)?
    };
    let fd = openat(CWD, m.path(), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| anyhow!("opening {}: {e}", m.path().display()))?;
    Ok(ContainerRoot { fd, _mount: Some((m, t)) })
}

const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Opens directory `path` of the container (symlinks followed inside its root).
fn open_dir_in(root: &OwnedFd, path: &str) -> std::io::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    openat2(root, rel, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty(), IN_ROOT)
        .map_err(|e| std::io::Error::from_raw_os_error(e.raw_os_error()))
}

/// A file of the container, as a parent directory descriptor and a final name that is not
/// followed; `/proc/self/fd/N/NAME` reaches it without leaving the container's root.
struct Located {
    dir: OwnedFd,
    name: String,
    kind: Option<FileType>,
}

impl Located {
    fn path(&self) -> PathBuf {
        let p = PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_raw_fd()));
        if self.name.is_empty() { p } else { p.join(&self.name) }
    }
}

/// Finds `path` in the container: parents resolved inside the root; the last component
/// followed too when `follow` (`-L`), again inside the root.
fn locate(root: &OwnedFd, path: &str, follow: bool, display: &str) -> Result<Located> {
    let mut path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
    for _ in 0..40 {
        let name = last_component(&path);
        let dir = open_dir_in(root, &parent_of(&path)).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOENT) || e.raw_os_error() == Some(libc::ENOTDIR) {
                exit_with(1, format!("Could not find the file {} in container {display}", path))
            } else {
                anyhow!("{display}:{path}: {e}")
            }
        })?;
        let (name, kind) = if name.is_empty() || name == "." {
            (String::new(), Some(FileType::Directory))
        } else {
            match statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => (name, Some(FileType::from_raw_mode(st.st_mode))),
                Err(rustix::io::Errno::NOENT) => (name, None),
                Err(e) => return Err(anyhow!("{display}:{path}: {e}")),
            }
        };
        if follow && kind == Some(FileType::Symlink) {
            let target = readlinkat(&dir, name.as_str(), Vec::new()).map_err(|e| anyhow!("{display}:{path}: {e}"))?;
            let target = String::from_utf8_lossy(target.as_bytes()).into_owned();
            path = if target.starts_with('/') { target } else { format!("{}/{target}", parent_of(&path)) };
            continue;
        }
        return Ok(Located { dir, name, kind });
    }
    Err(exit_with(1, format!("{display}: too many levels of symbolic links")))
}

fn find_container(ctx: &Ctx, name: &str) -> Result<ContainerInfo> {
    if name.is_empty() {
        return Err(exit_with(1, "must specify a container name before ':'"));
    }
    crate::cmd::containers::find(ctx, name)
}

/// Adds `src` to `b` as `top` (its contents at the top level when `top` is empty).
fn add_source(b: &mut LayerBuilder, top: &str, src: &Path, follow_top: bool) -> Result<()> {
    let opts = TreeOptions { no_xattrs: true, ..Default::default() };
    let md = if follow_top { std::fs::metadata(src) } else { std::fs::symlink_metadata(src) }
        .with_context(|| format!("{}", src.display()))?;
    if top.is_empty() {
        b.add_tree(b"", src)?;
        return Ok(());
    }
    b.add(berth_archive::build::entry_from_disk(top.as_bytes(), src, &md, &opts)?)?;
    if md.is_dir() {
        b.add_tree(top.as_bytes(), src)?;
    }
    Ok(())
}

/// Streams the tar of `b` into `write`, in a thread, while `read` consumes it.
fn pipe_through<T>(b: LayerBuilder, read: impl FnOnce(std::io::PipeReader) -> Result<T>) -> Result<T> {
    let (r, w) = std::io::pipe()?;
    std::thread::scope(|s| {
        let writer = s.spawn(move || -> Result<()> {
            let mut tw = TarWriter::new(std::io::BufWriter::with_capacity(1 << 20, w));
            b.write(&mut tw)?;
            tw.finish()?.flush()?;
            Ok(())
        });
        let got = read(r);
        let wrote = writer.join().map_err(|_| anyhow!("the archive writer panicked"))?;
        // The reader's error is the cause when both fail (a closed pipe fails the writer).
        let got = got?;
        wrote?;
        Ok(got)
    })
}

fn apply_opts(a: &ContainerCpArgs) -> ApplyOptions {
    ApplyOptions {
        whiteouts: WhiteoutMode::None,
        // docker: files get the invoking user's (copy out) or the container root's (copy in)
        // owner, unless -a keeps the source's.
        preserve_ownership: a.archive,
        xattrs: false,
        create_devices: rustix::process::geteuid().is_root(),
        ..ApplyOptions::default()
    }
}

fn report(a: &ContainerCpArgs, bytes: u64, to: &str) {
    // docker prints this only when stderr is a terminal.
    if !a.quiet && std::io::stderr().is_terminal() {
        eprintln!("Successfully copied {} to {to}", berth_output::units::human_size(bytes as f64));
    }
}

fn copy_out(ctx: &Ctx, a: &ContainerCpArgs, name: &str, path: &str, dest: &str) -> Result<i32> {
    let info = find_container(ctx, name)?;
    let root = open_root(ctx, &info, false)?;
    let loc = locate(&root.fd, path, a.follow_link, name)?;
    let Some(kind) = loc.kind else {
        return Err(exit_with(1, format!("Could not find the file {path} in container {name}")));
    };
    let src = src_info(path, kind == FileType::Directory)?;
    let src_path = loc.path();
    if dest == "-" {
        let mut b = LayerBuilder::new(TreeOptions { no_xattrs: true, ..Default::default() });
        let top = if src.base.is_empty() || src.base == "." { String::new() } else { src.base.clone() };
        add_source(&mut b, &top, &src_path, false)?;
        let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        let mut tw = TarWriter::new(out);
        b.write(&mut tw)?;
        tw.finish()?.flush()?;
        return Ok(0);
    }
    let dest_kind = match std::fs::metadata(dest) {
        Ok(m) if m.is_dir() => DestKind::Dir,
        Ok(_) => DestKind::Other,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DestKind::Missing,
        Err(e) => return Err(anyhow!("{dest}: {e}")),
    };
    let p = plan(&src, dest_kind, dest, dest)?;
    let target = if p.into_dest { PathBuf::from(dest) } else { PathBuf::from(parent_of(dest)) };
    if !target.is_dir() {
        return Err(exit_with(1, format!("destination directory {} does not exist", target.display())));
    }
    let mut b = LayerBuilder::new(TreeOptions { no_xattrs: true, ..Default::default() });
    add_source(&mut b, &p.top, &src_path, false)?;
    let opts = apply_opts(a);
    let r = pipe_through(b, |r| Ok(apply_tar(&target, r, &opts)?))?;
    report(a, r.tar_bytes, dest);
    Ok(0)
}

fn copy_in(ctx: &Ctx, a: &ContainerCpArgs, src: &str, name: &str, path: &str) -> Result<i32> {
    let info = find_container(ctx, name)?;
    let display = format!("{name}:{path}");
    let root = open_root(ctx, &info, true)?;
    // The destination, symlinks followed inside the container's root (docker resolves it).
    let dest = locate(&root.fd, path, true, name)?;
    let dest_kind = match dest.kind {
        None => DestKind::Missing,
        Some(FileType::Directory) => DestKind::Dir,
        Some(_) => DestKind::Other,
    };
    let opts = apply_opts(a);
    if src == "-" {
        // A tar stream on stdin, extracted into an existing directory.
        if dest_kind != DestKind::Dir {
            return Err(exit_with(1, format!("destination \"{display}\" must be a directory")));
        }
        let target = dest.path();
        let stdin = std::io::stdin().lock();
        let dec = berth_archive::Decoder::new(stdin).context("reading the archive on stdin")?;
        let r = apply_tar(&target, dec, &opts)?;
        report(a, r.tar_bytes, &display);
        return Ok(0);
    }
    let src_md = if a.follow_link { std::fs::metadata(src) } else { std::fs::symlink_metadata(src) }
        .map_err(|e| exit_with(1, format!("{src}: {e}")))?;
    let s = src_info(src, src_md.is_dir())?;
    let mut p = plan(&s, dest_kind, path, &display)?;
    if !p.into_dest && !dest.name.is_empty() {
        // The name the destination resolved to (a symlink to a file names its target).
        p.top = dest.name.clone();
    }
    let target = if p.into_dest {
        dest.path()
    } else {
        // The destination's parent directory (it must exist): the located entry's directory.
        PathBuf::from(format!("/proc/self/fd/{}", dest.dir.as_raw_fd()))
    };
    let mut b = LayerBuilder::new(TreeOptions { no_xattrs: true, ..Default::default() });
    add_source(&mut b, &p.top, Path::new(src), a.follow_link)?;
    let r = pipe_through(b, |r| Ok(apply_tar(&target, r, &opts)?))?;
    report(a, r.tar_bytes, &display);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_docker_style() {
        assert_eq!(split_arg("web:/etc/hosts"), Side::Container { name: "web".into(), path: "/etc/hosts".into() });
        assert_eq!(split_arg("/abs/a:b"), Side::Local("/abs/a:b".into()));
        assert_eq!(split_arg("./a:b"), Side::Local("./a:b".into()));
        assert_eq!(split_arg("file.txt"), Side::Local("file.txt".into()));
        assert_eq!(split_arg("-"), Side::Local("-".into()));
    }

    #[test]
    fn path_parts() {
        assert_eq!(last_component("/a/b/"), "b");
        assert_eq!(last_component("/a/b/."), "b");
        assert_eq!(last_component("/"), "");
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("a"), ".");
        assert_eq!(parent_of("a/b/"), "a");
        assert_eq!(parent_of("/data/."), "/");
        assert_eq!(last_component("/data/./"), "data");
    }

    #[test]
    fn docker_destination_rules() {
        let file = SrcInfo { is_dir: false, contents_only: false, base: "f".into() };
        let dir = SrcInfo { is_dir: true, contents_only: false, base: "d".into() };
        let contents = SrcInfo { is_dir: true, contents_only: true, base: "d".into() };
        let p = |s: &SrcInfo, k, d: &str| plan(s, k, d, d).ok();
        assert_eq!(p(&file, DestKind::Dir, "/t"), Some(Plan { into_dest: true, top: "f".into() }));
        assert_eq!(p(&file, DestKind::Other, "/t/x"), Some(Plan { into_dest: false, top: "x".into() }));
        assert_eq!(p(&file, DestKind::Missing, "/t/new"), Some(Plan { into_dest: false, top: "new".into() }));
        assert_eq!(p(&file, DestKind::Missing, "/t/new/"), None);
        assert_eq!(p(&dir, DestKind::Dir, "/t"), Some(Plan { into_dest: true, top: "d".into() }));
        assert_eq!(p(&dir, DestKind::Other, "/t/x"), None);
        assert_eq!(p(&dir, DestKind::Missing, "/t/new"), Some(Plan { into_dest: false, top: "new".into() }));
        assert_eq!(p(&contents, DestKind::Dir, "/t"), Some(Plan { into_dest: true, top: String::new() }));
        assert!(src_info("/etc/hosts/", false).is_err());
        assert!(src_info("/etc/.", true).is_ok_and(|s| s.contents_only));
    }
}
