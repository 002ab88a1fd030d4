//! File operations for COPY/ADD/WORKDIR inside a (mounted) root filesystem.
//!
//! Safety: every destination path is resolved *inside* the root with [`secure_join`]: symlinks
//! are followed as if the root were `/`, so `COPY x /link/` where `/link -> /etc` writes to
//! `<root>/etc`, never to the host's `/etc`, and `..` cannot climb out.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use crate::error::{BuildError, Result};

/// Resolves `path` (absolute inside the container) against `root` without escaping it.
/// Missing components are appended literally. The result always starts with `root`.
pub fn secure_join(root: &Path, path: &str) -> PathBuf {
    let mut resolved = PathBuf::new(); // relative to root
    let mut pending: Vec<std::ffi::OsString> = Path::new(path).components().rev().filter_map(comp_name).collect();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        if c == "." {
            continue;
        }
        let candidate = resolved.join(&c);
        match fs::symlink_metadata(root.join(&candidate)) {
            Ok(md) if md.file_type().is_symlink() && links < 255 => {
                links += 1;
                let target = fs::read_link(root.join(&candidate)).unwrap_or_default();
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                // Push the target's components in front of what remains.
                let comps: Vec<std::ffi::OsString> = target.components().filter_map(comp_name).collect();
                for t in comps.into_iter().rev() {
                    pending.push(t);
                }
            }
            _ => resolved = candidate,
        }
    }
    root.join(resolved)
}

fn comp_name(c: Component<'_>) -> Option<std::ffi::OsString> {
    match c {
        Component::Normal(s) => Some(s.to_os_string()),
        Component::ParentDir => Some("..".into()),
        Component::CurDir => Some(".".into()),
        _ => None,
    }
}

/// Ownership and permission overrides for copied entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attrs {
    /// `uid:gid` for every copied entry; `None` keeps the source's owner (BuildKit keeps it
    /// for `COPY --from` and archive entries; context files are passed as `Some((0, 0))`).
    pub owner: Option<(u32, u32)>,
    /// `--chmod` as an octal mode; symbolic modes are applied per entry.
    pub chmod: Option<Chmod>,
}

#[derive(Debug, Clone, Copy)]
pub enum Chmod {
    Octal(u32),
    /// Pre-parsed symbolic clauses, applied to each entry's mode.
    Symbolic(SymbolicMode),
}

/// A parsed symbolic mode like `u+rwx,g=rx,o-w` (as chmod(1)).
#[derive(Debug, Clone, Copy)]
pub struct SymbolicMode {
    clauses: [(u8, u8, u32, bool); 8],
    n: usize,
}

impl SymbolicMode {
    pub fn parse(s: &str) -> Option<SymbolicMode> {
        let mut clauses = [(0u8, 0u8, 0u32, false); 8];
        let mut n = 0;
        for part in s.split(',') {
            let bytes = part.as_bytes();
            let op_pos = bytes.iter().position(|b| matches!(b, b'+' | b'-' | b'='))?;
            let who = &bytes[..op_pos];
            let mut who_mask = 0u8;
            for w in who {
                who_mask |= match w {
                    b'u' => 4,
                    b'g' => 2,
                    b'o' => 1,
                    b'a' => 7,
                    _ => return None,
                };
            }
            if who_mask == 0 {
                who_mask = 7;
            }
            let op = bytes[op_pos];
            let mut perm = 0u32;
            let mut conditional_x = false;
            for p in &bytes[op_pos + 1..] {
                match p {
                    b'r' => perm |= 4,
                    b'w' => perm |= 2,
                    b'x' => perm |= 1,
                    b'X' => conditional_x = true,
                    _ => return None,
                }
            }
            if n >= clauses.len() {
                return None;
            }
            clauses[n] = (who_mask, op, perm, conditional_x);
            n += 1;
        }
        Some(SymbolicMode { clauses, n })
    }

    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let mut m = mode & 0o7777;
        for &(who, op, perm, cx) in &self.clauses[..self.n] {
            let mut p = perm;
            if cx && (is_dir || m & 0o111 != 0) {
                p |= 1;
            }
            for (bit, shift) in [(4u8, 6u32), (2, 3), (1, 0)] {
                if who & bit == 0 {
                    continue;
                }
                let bits = p << shift;
                match op {
                    b'+' => m |= bits,
                    b'-' => m &= !bits,
                    _ => m = (m & !(0o7 << shift)) | bits,
                }
            }
        }
        m
    }
}

impl Attrs {
    fn chown(&self, p: &Path, md: &fs::Metadata) -> Result<()> {
        let (uid, gid) = self.owner.unwrap_or((md.uid(), md.gid()));
        lchown(p, uid, gid)
    }

    fn mode_for(&self, mode: u32, is_dir: bool) -> u32 {
        match self.chmod {
            None => mode & 0o7777,
            Some(Chmod::Octal(m)) => m,
            Some(Chmod::Symbolic(s)) => s.apply(mode, is_dir),
        }
    }
}

fn lchown(p: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).map_err(|e| BuildError::io(p, e))
}

fn set_times(p: &Path, md: &fs::Metadata) {
    let ts = [
        libc::timespec { tv_sec: md.atime(), tv_nsec: md.atime_nsec() },
        libc::timespec { tv_sec: md.mtime(), tv_nsec: md.mtime_nsec() },
    ];
    if let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) {
        // SAFETY: valid C string and a two-element timespec array.
        unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    }
}

/// Creates `dir` (inside an already secure-joined path) and missing parents, owned by
/// `uid:gid`, mode 0755.
pub fn mkdir_all(dir: &Path, uid: u32, gid: u32) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        mkdir_all(parent, uid, gid)?;
    }
    match fs::symlink_metadata(dir) {
        Ok(md) if md.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(BuildError::Other(format!(
                "cannot create directory {}: a file with that name exists",
                dir.display()
            )));
        }
        Err(_) => {}
    }
    fs::create_dir(dir).map_err(|e| BuildError::io(dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(|e| BuildError::io(dir, e))?;
    lchown(dir, uid, gid)
}

/// Copies one entry (file, symlink, or a whole directory tree) from `src` to `dst`,
/// replacing what is at `dst` unless both are directories (then contents merge). `filter`
/// decides, by path relative to `src`, whether a descendant is copied.
pub fn copy_entry(src: &Path, dst: &Path, attrs: &Attrs, filter: &Filter<'_>) -> Result<u64> {
    copy_rec(src, dst, "", attrs, filter, true)
}

/// Decides, by path relative to the copied source, whether an entry is copied. Shared by the
/// copying threads.
pub type Filter<'a> = dyn Fn(&str) -> bool + Sync + 'a;

/// Copies the entries *inside* directory `src` into the existing directory `dst`, leaving
/// `dst`'s own mode, owner and times alone: BuildKit (fsutil's copy with CopyDirContents) does
/// not apply the source directory's metadata to the top-level destination, which keeps its
/// metadata when it existed and is a fresh 0755 directory otherwise.
pub fn copy_dir_contents(src: &Path, dst: &Path, attrs: &Attrs, filter: &Filter<'_>) -> Result<u64> {
    copy_children(src, dst, "", attrs, filter, true)
}

/// Copies the entries of directory `src` (relative path `rel`) into the directory `dst`.
/// With `parallel`, the first level with several entries is shared among threads (one per
/// core, at most 4): creating files is system time bound, and the threads work in different
/// directories, so a large COPY is close to twice as fast on two cores. Below that level each
/// thread works alone. The result does not depend on the order (layer tars are sorted).
fn copy_children(src: &Path, dst: &Path, rel: &str, attrs: &Attrs, filter: &Filter<'_>, parallel: bool) -> Result<u64> {
    let mut names: Vec<(std::ffi::OsString, String)> = Vec::new();
    for e in fs::read_dir(src).map_err(|e| BuildError::io(src, e))?.flatten() {
        let name = e.file_name();
        let child_rel = if rel.is_empty() {
            name.to_string_lossy().to_string()
        } else {
            format!("{rel}/{}", name.to_string_lossy())
        };
        if filter(&child_rel) {
            names.push((name, child_rel));
        }
    }
    names.sort();
    // available_parallelism reads cgroup files: once per process, not once per directory.
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let threads = *THREADS.get_or_init(|| std::thread::available_parallelism().map(|n| n.get().min(4)).unwrap_or(1));
    if !parallel || threads < 2 || names.len() < 2 {
        let mut bytes = 0;
        for (name, child_rel) in &names {
            bytes += copy_rec(&src.join(name), &dst.join(name), child_rel, attrs, filter, parallel)?;
        }
        return Ok(bytes);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<u64>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut bytes = 0;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((name, child_rel)) = names.get(i) else { return Ok(bytes) };
                        match copy_rec(&src.join(name), &dst.join(name), child_rel, attrs, filter, false) {
                            Ok(b) => bytes += b,
                            Err(e) => {
                                // Stop the other workers too.
                                next.store(names.len(), std::sync::atomic::Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err(BuildError::Other("a copying thread panicked".into()))))
            .collect()
    });
    let mut bytes = 0;
    for r in results {
        bytes += r?;
    }
    Ok(bytes)
}

/// Puts back a directory's mode and owner (after an archive whose `.` entry carried its own)
/// and sets its mtime to now, as adding entries to it does.
pub fn restore_dir_meta(p: &Path, md: &fs::Metadata) -> Result<()> {
    fs::set_permissions(p, fs::Permissions::from_mode(md.mode() & 0o7777)).map_err(|e| BuildError::io(p, e))?;
    lchown(p, md.uid(), md.gid())?;
    let now = [
        libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW },
        libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW },
    ];
    if let Some(c) = cpath(p) {
        // SAFETY: valid C string and a two-element timespec array.
        unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), now.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    }
    Ok(())
}

fn copy_rec(src: &Path, dst: &Path, rel: &str, attrs: &Attrs, filter: &Filter<'_>, parallel: bool) -> Result<u64> {
    let md = fs::symlink_metadata(src).map_err(|e| BuildError::io(src, e))?;
    let ft = md.file_type();
    let mut bytes = 0;
    if ft.is_dir() {
        match fs::symlink_metadata(dst) {
            Ok(d) if d.is_dir() => {}
            Ok(_) => {
                fs::remove_file(dst).map_err(|e| BuildError::io(dst, e))?;
                fs::create_dir(dst).map_err(|e| BuildError::io(dst, e))?;
            }
            Err(_) => fs::create_dir(dst).map_err(|e| BuildError::io(dst, e))?,
        }
        bytes += copy_children(src, dst, rel, attrs, filter, parallel)?;
        fs::set_permissions(dst, fs::Permissions::from_mode(attrs.mode_for(md.mode(), true)))
            .map_err(|e| BuildError::io(dst, e))?;
        attrs.chown(dst, &md)?;
        if let (Ok(s), Ok(d)) = (fs::File::open(src), fs::File::open(dst)) {
            copy_xattrs(&s, &d);
        }
        set_times(dst, &md);
        return Ok(bytes);
    }
    if ft.is_file() {
        return copy_file(src, dst, &md, attrs);
    }
    remove_existing(dst)?;
    if ft.is_symlink() {
        let target = fs::read_link(src).map_err(|e| BuildError::io(src, e))?;
        symlink(&target, dst).map_err(|e| BuildError::io(dst, e))?;
        attrs.chown(dst, &md)?;
        set_times(dst, &md);
        return Ok(0);
    }
    // fifos and device nodes (possible when copying from another stage's root).
    let c = std::ffi::CString::new(dst.as_os_str().as_bytes())
        .map_err(|_| BuildError::Other(format!("invalid path {}", dst.display())))?;
    // SAFETY: mknod with a valid C string path.
    let r = unsafe { libc::mknod(c.as_ptr(), md.mode() as libc::mode_t, md.rdev() as libc::dev_t) };
    if r != 0 {
        return Err(BuildError::io(dst, std::io::Error::last_os_error()));
    }
    attrs.chown(dst, &md)?;
    Ok(0)
}

/// Copies a regular file, then sets owner, mode, xattrs and times through the open
/// descriptors: one path lookup per side instead of six (each lookup through an overlay mount
/// may search every lower layer; a 10,000-file COPY spent a third of its time there). The
/// destination is created exclusively, so whatever is in the way is only looked at when
/// something is.
fn copy_file(src: &Path, dst: &Path, md: &fs::Metadata, attrs: &Attrs) -> Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let s = fs::File::open(src).map_err(|e| BuildError::io(src, e))?;
    let create = || fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(dst);
    let mut d = match create() {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            remove_existing(dst)?;
            create().map_err(|e| BuildError::io(dst, e))?
        }
        Err(e) => return Err(BuildError::io(dst, e)),
    };
    // File to File: std uses copy_file_range, so the bytes never enter user space.
    let bytes = std::io::copy(&mut &s, &mut d).map_err(|e| BuildError::io(dst, e))?;
    let (uid, gid) = attrs.owner.unwrap_or((md.uid(), md.gid()));
    // chown before chmod: chown clears set-id bits.
    std::os::unix::fs::fchown(&d, Some(uid), Some(gid)).map_err(|e| BuildError::io(dst, e))?;
    d.set_permissions(fs::Permissions::from_mode(attrs.mode_for(md.mode(), false)))
        .map_err(|e| BuildError::io(dst, e))?;
    copy_xattrs(&s, &d);
    let times = fs::FileTimes::new()
        .set_accessed(md.accessed().unwrap_or(std::time::UNIX_EPOCH))
        .set_modified(md.modified().unwrap_or(std::time::UNIX_EPOCH));
    d.set_times(times).map_err(|e| BuildError::io(dst, e))?;
    Ok(bytes)
}

/// Copies extended attributes (except overlayfs' own) between open files or directories;
/// best effort, as a filesystem without xattr support has none to copy.
fn copy_xattrs(src: &fs::File, dst: &fs::File) {
    use std::os::fd::AsRawFd;
    let mut names = vec![0u8; 4096];
    // SAFETY: buffer pointer and length are valid; the descriptor is open.
    let n = unsafe { libc::flistxattr(src.as_raw_fd(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return;
    }
    names.truncate(n as usize);
    let mut val = vec![0u8; 65536];
    for name in names.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        let Ok(cname) = std::ffi::CString::new(name) else { continue };
        // SAFETY: valid C string, buffer and descriptors.
        unsafe {
            let r = libc::fgetxattr(src.as_raw_fd(), cname.as_ptr(), val.as_mut_ptr().cast(), val.len());
            if r >= 0 {
                libc::fsetxattr(dst.as_raw_fd(), cname.as_ptr(), val.as_ptr().cast(), r as usize, 0);
            }
        }
    }
}

fn remove_existing(p: &Path) -> Result<()> {
    // Only a path that names an entry (its last component a normal name) may be removed: a
    // path ending in `..` or `/` names a directory above or the destination itself.
    if !matches!(p.components().next_back(), Some(Component::Normal(_))) {
        return Err(BuildError::Other(format!("refusing to replace {}: not a file name", p.display())));
    }
    match fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(p).map_err(|e| BuildError::io(p, e)),
        Ok(_) => fs::remove_file(p).map_err(|e| BuildError::io(p, e)),
        Err(_) => Ok(()),
    }
}

fn cpath(p: &Path) -> Option<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_bytes()).ok()
}

/// Copies the file `src` (a temp file) to a new file at `dst` with the given mode, owner and
/// modification time, streaming (ADD of URLs).
pub fn install_file(src: &Path, dst: &Path, mode: u32, uid: u32, gid: u32, mtime: Option<i64>) -> Result<()> {
    remove_existing(dst)?;
    fs::copy(src, dst).map_err(|e| BuildError::io(dst, e))?;
    finish_file(dst, mode, uid, gid, mtime)
}

fn finish_file(dst: &Path, mode: u32, uid: u32, gid: u32, mtime: Option<i64>) -> Result<()> {
    fs::set_permissions(dst, fs::Permissions::from_mode(mode)).map_err(|e| BuildError::io(dst, e))?;
    lchown(dst, uid, gid)?;
    if let Some(t) = mtime {
        let ts = [libc::timespec { tv_sec: t, tv_nsec: 0 }, libc::timespec { tv_sec: t, tv_nsec: 0 }];
        if let Some(c) = cpath(dst) {
            // SAFETY: valid path and timespec array.
            unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
        }
    }
    Ok(())
}

/// Writes `data` as a new file at `dst` (heredoc sources).
pub fn write_file(dst: &Path, data: &[u8], mode: u32, uid: u32, gid: u32, mtime: Option<i64>) -> Result<()> {
    remove_existing(dst)?;
    fs::write(dst, data).map_err(|e| BuildError::io(dst, e))?;
    finish_file(dst, mode, uid, gid, mtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_join_stays_inside() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("real")).unwrap();
        symlink("/etc", r.join("abs")).unwrap();
        symlink("../../..", r.join("real/up")).unwrap();
        symlink("real", r.join("rel")).unwrap();
        assert_eq!(secure_join(r, "/abs/passwd"), r.join("etc/passwd"));
        assert_eq!(secure_join(r, "/real/up/x"), r.join("x"));
        assert_eq!(secure_join(r, "/../../x"), r.join("x"));
        assert_eq!(secure_join(r, "/rel/y"), r.join("real/y"));
        assert_eq!(secure_join(r, "a/b/../c"), r.join("a/c"));
    }

    #[test]
    fn symbolic_modes() {
        let s = SymbolicMode::parse("u+x,g-w,o=r").unwrap();
        assert_eq!(s.apply(0o664, false), 0o744);
        let a = SymbolicMode::parse("a+X").unwrap();
        assert_eq!(a.apply(0o644, true), 0o755);
        assert_eq!(a.apply(0o644, false), 0o644);
        assert!(SymbolicMode::parse("z+x").is_none());
    }

    #[test]
    fn parallel_copy_matches_the_source_and_applies_attrs_and_filter() {
        let t = tempfile::tempdir().unwrap();
        let (src, dst) = (t.path().join("src"), t.path().join("dst"));
        for d in 0..12 {
            let dir = src.join(format!("d{d:02}"));
            fs::create_dir_all(dir.join("sub")).unwrap();
            for f in 0..5 {
                fs::write(dir.join(format!("f{f}")), format!("{d}/{f}")).unwrap();
            }
            fs::write(dir.join("sub/x"), "x").unwrap();
            fs::set_permissions(dir.join("f0"), fs::Permissions::from_mode(0o751)).unwrap();
            symlink("f1", dir.join("link")).unwrap();
        }
        fs::write(src.join("skip.txt"), "no").unwrap();
        fs::create_dir(&dst).unwrap();
        // A file in the way is replaced.
        fs::create_dir(dst.join("d03")).unwrap();
        fs::write(dst.join("d03/f2"), "old").unwrap();
        let attrs = Attrs { owner: Some((1000, 1001)), chmod: None };
        let bytes = copy_dir_contents(&src, &dst, &attrs, &|rel: &str| rel != "skip.txt" && rel != "d05/sub").unwrap();
        assert!(!dst.join("skip.txt").exists() && !dst.join("d05/sub").exists());
        assert_eq!(fs::read_to_string(dst.join("d03/f2")).unwrap(), "3/2");
        assert_eq!(fs::read_link(dst.join("d07/link")).unwrap(), Path::new("f1"));
        let md = fs::metadata(dst.join("d11/f0")).unwrap();
        assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (0o751, 1000, 1001));
        let smd = fs::metadata(src.join("d11/f0")).unwrap();
        assert_eq!((md.mtime(), md.mtime_nsec()), (smd.mtime(), smd.mtime_nsec()));
        assert_eq!(fs::read_to_string(dst.join("d00/sub/x")).unwrap(), "x");
        // 12 dirs × 5 files of 3 or 4 bytes, plus 11 "x" (d05/sub filtered out).
        let expected: u64 = (0..12).map(|d: u64| 5 * (if d < 10 { 3 } else { 4 })).sum::<u64>() + 11;
        assert_eq!(bytes, expected);
    }

    #[test]
    fn parallel_copy_reports_an_error_and_stops() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        for d in 0..6 {
            fs::create_dir_all(src.join(format!("d{d}"))).unwrap();
            fs::write(src.join(format!("d{d}/f")), "f").unwrap();
        }
        // The destination directory does not exist: every worker fails to create its entry.
        let missing = t.path().join("missing");
        let e = copy_dir_contents(&src, &missing, &Attrs::default(), &|_: &str| true).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        assert!(!missing.exists());
    }
}
