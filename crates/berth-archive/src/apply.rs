//! Applying a layer (a tar stream, any compression) to a directory.
//!
//! Safety model: every path is normalized lexically (a `..` that climbs above the root is an
//! error) and then resolved by the kernel with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`
//! from a descriptor of the target directory, for the parent directory only. The final component
//! is always handled with `*at` calls that do not follow it (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`,
//! `unlinkat`, `mkdirat`, `symlinkat`, `linkat` without `AT_SYMLINK_FOLLOW`). Symlinks in parent
//! components are followed *inside* the target, exactly as Docker's chrooted unpack and
//! containerd's `fs.RootPath` do: `a -> /etc` followed by `a/passwd` writes `<target>/etc/passwd`.
//! Nothing outside the target can be created, modified, linked to or deleted.
//!
//! On error the target is left partially applied: callers unpack into a fresh directory and only
//! mark it complete after success.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{
    AtFlags, CWD, Dir, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags, chownat, fchmod, fchown,
    fsetxattr, fstat, futimens, linkat, lsetxattr, mkdirat, mknodat, openat, openat2, statat, symlinkat, unlinkat,
    utimensat,
};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};

use crate::compress::{Decoder, drain};
use crate::error::{Error, Result, lossy};
use crate::tar::{EntryKind, Header, TarReader, normalize_path, split_parent};

/// How whiteouts are materialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// The target already holds the lower layers: `.wh.NAME` deletes `NAME`, `.wh..wh..opq`
    /// deletes everything in the directory that this layer did not add.
    Flatten,
    /// The target is this layer's own directory, to be an overlayfs lower: `.wh.NAME` becomes a
    /// char 0/0 device, `.wh..wh..opq` the `<prefix>.overlay.opaque=y` xattr.
    Overlay(OverlayXattr),
    /// A plain archive, not a layer (`docker cp`, a user's tar): `.wh.` names are ordinary
    /// entries, created as they are.
    None,
}

/// The xattr namespace overlayfs reads: `trusted` normally, `user` with the `userxattr` mount
/// option (rootless).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayXattr {
    Trusted,
    User,
}

impl OverlayXattr {
    fn opaque(self) -> &'static str {
        match self {
            OverlayXattr::Trusted => "trusted.overlay.opaque",
            OverlayXattr::User => "user.overlay.opaque",
        }
    }
}

/// Options for [`apply_layer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOptions {
    pub whiteouts: WhiteoutMode,
    /// Create char/block device nodes from the layer. Off by default: they are recorded in
    /// [`ApplyReport::skipped`] so the caller can warn.
    pub create_devices: bool,
    /// Set owners from the archive (numeric ids). Default: when running as root.
    pub preserve_ownership: bool,
    /// Restore extended attributes. `trusted.overlay.*` and `user.overlay.*` are never restored.
    pub xattrs: bool,
    /// Refuse a layer whose files add up to more than this many bytes (apparent sizes, holes
    /// included). Default [`LayerLimits::from_env`].
    pub max_expanded: Option<u64>,
    /// Refuse a layer whose apparent size passes [`SPARSE_RATIO_FLOOR`] and is more than this
    /// many times the tar stream read so far: only sparse entries can do that (a plain tar
    /// holds every byte it unpacks), and only a bomb needs to.
    pub max_sparse_ratio: Option<u64>,
}

/// Default limit on a layer's expanded size: 64 GiB.
pub const DEFAULT_MAX_LAYER_SIZE: u64 = 64 << 30;
/// Default limit on apparent size per tar byte for sparse layers.
pub const DEFAULT_MAX_SPARSE_RATIO: u64 = 1000;
/// The sparse ratio check applies only past this apparent size (1 GiB).
pub const SPARSE_RATIO_FLOOR: u64 = 1 << 30;

/// The expansion limits, read from the environment: `BERTH_MAX_LAYER_SIZE` (bytes, or with a
/// `k`/`m`/`g`/`t` binary suffix; `0` = no limit; default 64 GiB) and `BERTH_MAX_LAYER_RATIO`
/// (`0` = no check; default 1000).
pub struct LayerLimits;

impl LayerLimits {
    /// `(max_expanded, max_sparse_ratio)`. An unparsable value falls back to the default (and
    /// is logged) rather than disabling the protection.
    pub fn from_env() -> (Option<u64>, Option<u64>) {
        let get = |name: &str, default: u64| -> Option<u64> {
            let v = match std::env::var(name) {
                Ok(v) => v,
                Err(_) => return Some(default),
            };
            match parse_size(&v) {
                Some(0) => None,
                Some(n) => Some(n),
                None => {
                    tracing::warn!("{name}={v:?} is not a size; using the default {default}");
                    Some(default)
                }
            }
        };
        (get("BERTH_MAX_LAYER_SIZE", DEFAULT_MAX_LAYER_SIZE), get("BERTH_MAX_LAYER_RATIO", DEFAULT_MAX_SPARSE_RATIO))
    }
}

/// `123`, `64g`, `64GiB`, `512M`, `1.5t` (binary units).
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix("ib").or_else(|| t.strip_suffix('b')).unwrap_or(&t);
    let (num, mul) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1u64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        't' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let v: f64 = num.trim().parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let n = v * mul as f64;
    if n >= u64::MAX as f64 { Some(u64::MAX) } else { Some(n as u64) }
}

impl Default for ApplyOptions {
    fn default() -> Self {
        let (max_expanded, max_sparse_ratio) = LayerLimits::from_env();
        ApplyOptions {
            whiteouts: WhiteoutMode::Flatten,
            create_devices: false,
            preserve_ownership: rustix::process::geteuid().is_root(),
            xattrs: true,
            max_expanded,
            max_sparse_ratio,
        }
    }
}

/// Why an entry (or part of one) was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A char or block device and `create_devices` is off.
    Device { kind: EntryKind, major: u32, minor: u32 },
    /// An xattr the filesystem or our privileges refused.
    Xattr { name: String, error: String },
    /// An xattr we never restore (`*.overlay.*`).
    OverlayXattr { name: String },
    /// aufs metadata (`.wh..wh.plnk` and friends).
    AufsMeta,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: String,
    pub reason: SkipReason,
}

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Archive entries processed (including whiteouts and skipped ones).
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub fifos: u64,
    pub devices: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
    /// Regular file content bytes written.
    pub bytes: u64,
    /// Uncompressed tar stream bytes read (including any trailing padding).
    pub tar_bytes: u64,
    /// Whether the tar end-of-archive marker was present.
    pub end_marker: bool,
    /// Skipped items, at most [`MAX_SKIPPED`]; `skipped_total` counts all.
    pub skipped: Vec<Skipped>,
    pub skipped_total: u64,
}

pub const MAX_SKIPPED: usize = 1000;

/// Applies a layer blob (gzip, zstd or plain tar, sniffed) to `target`, which must exist.
/// Reads `layer` to its end (so trailers are checked and any digesting reader underneath sees
/// every byte). Not thread-safe with respect to other writers of `target`.
pub fn apply_layer<R: Read>(target: &Path, layer: R, opts: &ApplyOptions) -> Result<ApplyReport> {
    let dec = Decoder::new(layer).map_err(|e| Error::Read { offset: 0, source: e })?;
    let (report, mut dec) = apply_tar_inner(target, dec, opts)?;
    drain(&mut dec).map_err(|e| Error::Read { offset: report.tar_bytes, source: e })?;
    let mut raw = dec.into_inner();
    drain(&mut raw).map_err(|e| Error::Read { offset: report.tar_bytes, source: e })?;
    Ok(report)
}

/// Applies an uncompressed tar stream to `target` and reads the stream to its end.
pub fn apply_tar<R: Read>(target: &Path, tar: R, opts: &ApplyOptions) -> Result<ApplyReport> {
    let (mut report, mut rest) = apply_tar_inner(target, tar, opts)?;
    let n = drain(&mut rest).map_err(|e| Error::Read { offset: report.tar_bytes, source: e })?;
    report.tar_bytes += n;
    Ok(report)
}

fn apply_tar_inner<R: Read>(target: &Path, tar: R, opts: &ApplyOptions) -> Result<(ApplyReport, R)> {
    let mut a = Applier::new(target, opts)?;
    let mut reader = TarReader::new(tar);
    while let Some(mut entry) = reader.next_entry()? {
        a.report.entries += 1;
        let h = std::mem::replace(&mut entry.header, Header::new(Vec::new(), EntryKind::File));
        a.entry(&h, &mut entry)?;
    }
    a.finish_dirs();
    a.report.end_marker = reader.saw_end_marker();
    a.report.tar_bytes = reader.position();
    Ok((a.report, reader.into_inner()))
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

struct CachedDir {
    path: Vec<u8>,
    fd: Rc<OwnedFd>,
    sgid: bool,
    gid: u32,
}

struct Applier<'o> {
    opts: &'o ApplyOptions,
    root: Rc<OwnedFd>,
    euid: u32,
    egid: u32,
    umask: u32,
    cache: Option<CachedDir>,
    /// Paths this layer created (and their ancestors): whiteouts and opaque markers only
    /// apply to lower layers.
    ours: HashSet<Vec<u8>>,
    dir_times: Vec<(Vec<u8>, i64, u32)>,
    buf: Vec<u8>,
    report: ApplyReport,
}

/// Reads the process umask from /proc (no way to read it without changing it otherwise).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Umask:")).and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        // Unknown: assume everything may be masked, so modes are always set explicitly.
        .unwrap_or(0o777)
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

impl<'o> Applier<'o> {
    fn new(target: &Path, opts: &'o ApplyOptions) -> Result<Applier<'o>> {
        let root = openat(CWD, target, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::Target { path: target.to_path_buf(), op: "open", source: errno_io(e) })?;
        // Fail early and clearly on kernels without openat2 (< 5.6).
        if let Err(e) = openat2(&root, ".", OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), RESOLVE) {
            return Err(Error::Target {
                path: target.to_path_buf(),
                op: "openat2 (needs Linux 5.6 or later)",
                source: errno_io(e),
            });
        }
        Ok(Applier {
            opts,
            root: Rc::new(root),
            euid: rustix::process::geteuid().as_raw(),
            egid: rustix::process::getegid().as_raw(),
            umask: current_umask(),
            cache: None,
            ours: HashSet::new(),
            dir_times: Vec::new(),
            buf: vec![0u8; 1 << 20],
            report: ApplyReport::default(),
        })
    }

    fn skip(&mut self, path: &[u8], reason: SkipReason) {
        self.report.skipped_total += 1;
        if self.report.skipped.len() < MAX_SKIPPED {
            self.report.skipped.push(Skipped { path: lossy(path), reason });
        }
    }

    /// Opens directory `rel` (normalized, relative) inside the root, following symlinks only
    /// inside the root. With `create`, missing directories are created (0755, like Docker).
    fn dir(&mut self, rel: &[u8], create: bool) -> io::Result<(Rc<OwnedFd>, bool, u32)> {
        if let Some(c) = &self.cache
            && c.path == rel
        {
            return Ok((Rc::clone(&c.fd), c.sgid, c.gid));
        }
        let fd = if rel.is_empty() {
            Rc::clone(&self.root)
        } else {
            match self.open_path(rel) {
                Ok(fd) => Rc::new(fd),
                Err(e) if e == Errno::NOENT && create => Rc::new(self.mkdir_all(rel)?),
                Err(e) => return Err(errno_io(e)),
            }
        };
        let st = fstat(&*fd).map_err(errno_io)?;
        let sgid = st.st_mode & libc::S_ISGID != 0;
        let gid = st.st_gid;
        self.cache = Some(CachedDir { path: rel.to_vec(), fd: Rc::clone(&fd), sgid, gid });
        Ok((fd, sgid, gid))
    }

    fn open_path(&self, rel: &[u8]) -> std::result::Result<OwnedFd, Errno> {
        let mut tries = 0;
        loop {
            match openat2(&*self.root, rel, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty(), RESOLVE)
            {
                // EAGAIN: a concurrent rename raced with the `..` checks; retry a few times.
                Err(Errno::AGAIN) if tries < 16 => tries += 1,
                r => return r,
            }
        }
    }

    /// Creates the missing directories of `rel` (whose full path does not resolve): finds the
    /// longest existing prefix by bisection (resolution is monotonic), then creates the rest one
    /// component at a time below it. The new components are directories we just made, so they
    /// are opened with `O_NOFOLLOW`.
    fn mkdir_all(&mut self, rel: &[u8]) -> io::Result<OwnedFd> {
        let comps: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
        let prefix = |n: usize| comps.get(..n).unwrap_or_default().join(&b'/');
        let (mut lo, mut hi) = (0usize, comps.len());
        let mut cur: Rc<OwnedFd> = Rc::clone(&self.root);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match self.open_path(&prefix(mid)) {
                Ok(fd) => {
                    lo = mid;
                    cur = Rc::new(fd);
                }
                Err(Errno::NOENT) => hi = mid,
                Err(e) => return Err(errno_io(e)),
            }
        }
        for (i, comp) in comps.iter().enumerate().skip(lo) {
            match mkdirat(&*cur, *comp, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(errno_io(e)),
            }
            self.ours.insert(prefix(i + 1));
            let next = openat(
                &*cur,
                *comp,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno_io)?;
            cur = Rc::new(next);
        }
        Rc::try_unwrap(cur).or_else(|rc| rustix::io::dup(&*rc).map_err(errno_io))
    }

    fn mark_ours(&mut self, path: &[u8]) {
        // Ancestors too, so an opaque marker processed later keeps the way to this entry.
        let mut p = path;
        while !p.is_empty() {
            if !self.ours.insert(p.to_vec()) {
                break;
            }
            p = split_parent(p).0;
        }
    }

    fn entry<R: Read>(&mut self, h: &Header, data: &mut crate::tar::Entry<'_, R>) -> Result<()> {
        let ctx = |op: &'static str| {
            move |e: io::Error| Error::Apply { path: h.display_path(), offset: h.offset, op, source: e }
        };
        let path = normalize_path(&h.path).map_err(|p| Error::UnsafePath {
            path: h.display_path(),
            offset: h.offset,
            reason: p.as_str(),
        })?;
        if path.is_empty() {
            if h.kind != EntryKind::Dir {
                return Err(Error::UnsafePath {
                    path: h.display_path(),
                    offset: h.offset,
                    reason: "a non-directory entry for the root",
                });
            }
            return self.root_dir(h).map_err(ctx("set root directory metadata"));
        }
        let (parent, name) = split_parent(&path);
        if self.opts.whiteouts != WhiteoutMode::None
            && let Some(wh) = name.strip_prefix(b".wh.")
        {
            return self.whiteout(h, parent, wh);
        }
        match h.kind {
            EntryKind::Dir => self.make_dir(h, &path, parent, name).map_err(ctx("create directory"))?,
            EntryKind::File => self.make_file(h, parent, name, data)?,
            EntryKind::Symlink => self.make_symlink(h, parent, name).map_err(ctx("create symlink"))?,
            EntryKind::Hardlink => self.make_hardlink(h, parent, name)?,
            EntryKind::Fifo | EntryKind::Char | EntryKind::Block => {
                if h.kind != EntryKind::Fifo && !self.opts.create_devices {
                    self.skip(&h.path, SkipReason::Device { kind: h.kind, major: h.dev_major, minor: h.dev_minor });
                    return Ok(());
                }
                self.make_node(h, parent, name).map_err(ctx("create node"))?;
            }
        }
        self.mark_ours(&path);
        Ok(())
    }

    fn root_dir(&mut self, h: &Header) -> io::Result<()> {
        let fd = openat(&*self.root, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(errno_io)?;
        self.owner_mode_xattrs(&fd, h, None, true)?;
        self.dir_times.push((Vec::new(), h.mtime, h.mtime_nsec));
        self.report.dirs += 1;
        Ok(())
    }

    /// Removes whatever is at `name` in `dir` (recursively for directories).
    fn remove_existing(&mut self, dir: &OwnedFd, name: &[u8]) -> io::Result<()> {
        match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                // The cached parent may live inside what we remove.
                self.cache = None;
                remove_all(dir, name)
            }
            Ok(_) => unlinkat(dir, name, AtFlags::empty()).map_err(errno_io),
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(errno_io(e)),
        }
    }

    /// The owner to set, if any. `fresh` is `Some((parent sgid, parent gid))` for an object we
    /// just created (its owner is then known: our euid, and our egid or the setgid parent's gid),
    /// `None` for an existing one (always chowned).
    fn need_chown(&self, h: &Header, fresh: Option<(bool, u32)>) -> io::Result<Option<(Uid, Gid)>> {
        if !self.opts.preserve_ownership {
            return Ok(None);
        }
        let (uid, gid) = ids(h)?;
        if let Some((parent_sgid, parent_gid)) = fresh {
            let new_gid = if parent_sgid { parent_gid } else { self.egid };
            if uid == self.euid && gid == new_gid {
                return Ok(None);
            }
        }
        Ok(Some((Uid::from_raw(uid), Gid::from_raw(gid))))
    }

    /// Sets owner, mode and xattrs on an open file or directory. `fresh` is `Some(parent sgid,
    /// parent gid)` when we just created it with the right mode (so chown/chmod can often be
    /// skipped), `None` for an existing object.
    fn owner_mode_xattrs(
        &mut self,
        fd: &OwnedFd,
        h: &Header,
        fresh: Option<(bool, u32)>,
        is_dir: bool,
    ) -> io::Result<()> {
        let sgid = fresh.is_some_and(|(s, _)| s);
        if let Some((u, g)) = self.need_chown(h, fresh)? {
            fchown(fd, Some(u), Some(g)).map_err(errno_io)?;
        }
        let mode = h.mode & 0o7777;
        // chown clears setuid/setgid, so modes with those bits are always set (after chown).
        let need_chmod = fresh.is_none() || mode & self.umask != 0 || mode & 0o6000 != 0 || (is_dir && sgid);
        if need_chmod {
            fchmod(fd, Mode::from_raw_mode(mode)).map_err(errno_io)?;
        }
        if self.opts.xattrs {
            for (k, v) in &h.xattrs {
                if k.starts_with(b"trusted.overlay.") || k.starts_with(b"user.overlay.") {
                    self.skip(&h.path, SkipReason::OverlayXattr { name: lossy(k) });
                    continue;
                }
                if let Err(e) = fsetxattr(fd, k.as_slice(), v, XattrFlags::empty()) {
                    self.xattr_error(h, k, e)?;
                }
            }
        }
        Ok(())
    }

    fn xattr_error(&mut self, h: &Header, name: &[u8], e: Errno) -> io::Result<()> {
        match e {
            Errno::NOSPC | Errno::IO | Errno::DQUOT => Err(errno_io(e)),
            _ => {
                self.skip(&h.path, SkipReason::Xattr { name: lossy(name), error: errno_io(e).to_string() });
                Ok(())
            }
        }
    }

    fn make_dir(&mut self, h: &Header, path: &[u8], parent: &[u8], name: &[u8]) -> io::Result<()> {
        let (pfd, sgid, pgid) = self.dir(parent, true)?;
        let mode = Mode::from_raw_mode(h.mode & 0o1777);
        let mut fresh = Some((sgid, pgid));
        let mut make_opaque = false;
        match mkdirat(&*pfd, name, mode) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                let st = statat(&*pfd, name, AtFlags::SYMLINK_NOFOLLOW).map_err(errno_io)?;
                let ft = FileType::from_raw_mode(st.st_mode);
                if ft == FileType::Directory {
                    fresh = None;
                } else {
                    // In overlay mode a whiteout replaced by a directory in the same layer
                    // means "new directory hiding the lower one": make it opaque.
                    if let WhiteoutMode::Overlay(_) = self.opts.whiteouts {
                        make_opaque = ft == FileType::CharacterDevice && st.st_rdev == 0;
                    }
                    self.remove_existing(&pfd, name)?;
                    mkdirat(&*pfd, name, mode).map_err(errno_io)?;
                }
            }
            Err(e) => return Err(errno_io(e)),
        }
        let fd =
            openat(&*pfd, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                .map_err(errno_io)?;
        self.owner_mode_xattrs(&fd, h, fresh, true)?;
        if make_opaque && let WhiteoutMode::Overlay(x) = self.opts.whiteouts {
            fsetxattr(&fd, x.opaque(), b"y", XattrFlags::empty()).map_err(errno_io)?;
        }
        self.dir_times.push((path.to_vec(), h.mtime, h.mtime_nsec));
        self.report.dirs += 1;
        Ok(())
    }

    /// Refuses the layer when `expanded` (apparent bytes so far) passes a limit.
    fn check_expansion(&self, h: &Header, expanded: u64, tar_pos: u64) -> Result<()> {
        if let Some(max) = self.opts.max_expanded
            && expanded > max
        {
            return Err(Error::TooLarge {
                path: h.display_path(),
                offset: h.offset,
                what: format!(
                    "the layer expands to more than {max} bytes, the limit (set BERTH_MAX_LAYER_SIZE to change it)"
                ),
            });
        }
        if let Some(ratio) = self.opts.max_sparse_ratio
            && expanded > SPARSE_RATIO_FLOOR
            && expanded / ratio > tar_pos.max(1)
        {
            return Err(Error::TooLarge {
                path: h.display_path(),
                offset: h.offset,
                what: format!(
                    "sparse files expand {tar_pos} archive bytes to more than {expanded} bytes, over the \
                     limit of {ratio} times (set BERTH_MAX_LAYER_RATIO to change it, 0 to disable)"
                ),
            });
        }
        Ok(())
    }

    fn make_file<R: Read>(
        &mut self,
        h: &Header,
        parent: &[u8],
        name: &[u8],
        data: &mut crate::tar::Entry<'_, R>,
    ) -> Result<()> {
        // Checked before anything is written: a sparse header announces its full size.
        self.check_expansion(h, self.report.bytes.saturating_add(h.size), data.position())?;
        let ctx = |op: &'static str| {
            move |e: io::Error| Error::Apply { path: h.display_path(), offset: h.offset, op, source: e }
        };
        let (pfd, sgid, pgid) = self.dir(parent, true).map_err(ctx("open parent directory"))?;
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(h.mode & 0o7777);
        let fd = match openat(&*pfd, name, flags, mode) {
            Ok(fd) => fd,
            Err(Errno::EXIST) => {
                self.remove_existing(&pfd, name).map_err(ctx("replace existing"))?;
                openat(&*pfd, name, flags, mode).map_err(|e| ctx("create file")(errno_io(e)))?
            }
            Err(e) => return Err(ctx("create file")(errno_io(e))),
        };
        let mut f = File::from(fd);
        // Runs of zeros (whole aligned blocks) become holes, as GNU tar -S and containers/
        // storage do: sparse files in a layer stay sparse whatever the archive format says.
        // Holes of sparse entries are skipped, never produced as zeros: a few KiB of archive
        // may describe terabytes of holes.
        let skip_zeros = h.size >= HOLE_BLOCK as u64 || h.sparse.is_some();
        let mut holes = false;
        let mut fpos = 0u64;
        let mut written = 0u64;
        loop {
            let hole = data.skip_hole();
            if hole > 0 {
                written += hole;
                holes = true;
                continue;
            }
            let n = match data.read_until_hole(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(ctx("read data")(e)),
                Err(e) => return Err(Error::Read { offset: h.offset, source: e }),
            };
            let chunk = self.buf.get(..n).unwrap_or_default();
            if skip_zeros {
                holes |= write_sparse(&mut f, chunk, written, &mut fpos).map_err(ctx("write data"))?;
            } else {
                f.write_all(chunk).map_err(ctx("write data"))?;
            }
            written += n as u64;
        }
        if written != h.size {
            return Err(ctx("read data")(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("entry has {written} bytes, header says {}", h.size),
            )));
        }
        if holes {
            f.set_len(h.size).map_err(ctx("write data"))?;
        }
        let fd = OwnedFd::from(f);
        self.owner_mode_xattrs(&fd, h, Some((sgid, pgid)), false).map_err(ctx("set metadata"))?;
        futimens(&fd, &times(h)).map_err(|e| ctx("set times")(errno_io(e)))?;
        self.report.files += 1;
        self.report.bytes += written;
        Ok(())
    }

    fn make_symlink(&mut self, h: &Header, parent: &[u8], name: &[u8]) -> io::Result<()> {
        if h.link.is_empty() || h.link.contains(&0) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "empty symlink target"));
        }
        let (pfd, _, _) = self.dir(parent, true)?;
        match symlinkat(h.link.as_slice(), &*pfd, name) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                self.remove_existing(&pfd, name)?;
                symlinkat(h.link.as_slice(), &*pfd, name).map_err(errno_io)?;
            }
            Err(e) => return Err(errno_io(e)),
        }
        self.lmeta(&pfd, h, name)?;
        self.report.symlinks += 1;
        Ok(())
    }

    /// Owner, xattrs and times of something we cannot open (symlink, fifo, device).
    fn lmeta(&mut self, pfd: &OwnedFd, h: &Header, name: &[u8]) -> io::Result<()> {
        if self.opts.preserve_ownership {
            // Always: a new node in a setgid directory does not get our egid.
            let (u, g) = ids(h)?;
            chownat(pfd, name, Some(Uid::from_raw(u)), Some(Gid::from_raw(g)), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(errno_io)?;
        }
        if self.opts.xattrs && !h.xattrs.is_empty() {
            // No lsetxattrat before Linux 6.13: go through the parent's descriptor in /proc,
            // which pins the directory; the final component is not followed (lsetxattr).
            use std::os::fd::AsRawFd;
            let mut p = format!("/proc/self/fd/{}/", pfd.as_raw_fd()).into_bytes();
            p.extend_from_slice(name);
            for (k, v) in &h.xattrs {
                if k.starts_with(b"trusted.overlay.") || k.starts_with(b"user.overlay.") {
                    self.skip(&h.path, SkipReason::OverlayXattr { name: lossy(k) });
                    continue;
                }
                if let Err(e) = lsetxattr(p.as_slice(), k.as_slice(), v, XattrFlags::empty()) {
                    self.xattr_error(h, k, e)?;
                }
            }
        }
        utimensat(pfd, name, &times(h), AtFlags::SYMLINK_NOFOLLOW).map_err(errno_io)
    }

    fn make_hardlink(&mut self, h: &Header, parent: &[u8], name: &[u8]) -> Result<()> {
        let ctx = |op: &'static str| {
            move |e: io::Error| Error::Apply { path: h.display_path(), offset: h.offset, op, source: e }
        };
        let target = normalize_path(&h.link).map_err(|p| Error::UnsafePath {
            path: h.display_path(),
            offset: h.offset,
            reason: match p {
                crate::tar::PathProblem::Escapes => "hardlink target leads outside the root",
                p => p.as_str(),
            },
        })?;
        if target.is_empty() {
            return Err(Error::UnsafePath { path: h.display_path(), offset: h.offset, reason: "hardlink to the root" });
        }
        let (tparent, tname) = split_parent(&target);
        let missing =
            || io::Error::new(io::ErrorKind::NotFound, format!("target {:?} does not exist (yet)", lossy(&h.link)));
        let (tfd, _, _) = self.dir(tparent, false).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => ctx("hardlink")(missing()),
            _ => ctx("resolve hardlink target")(e),
        })?;
        let (pfd, _, _) = self.dir(parent, true).map_err(ctx("open parent directory"))?;
        match linkat(&*tfd, tname, &*pfd, name, AtFlags::empty()) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                let a = statat(&*tfd, tname, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| ctx("hardlink")(errno_io(e)))?;
                let b = statat(&*pfd, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| ctx("hardlink")(errno_io(e)))?;
                if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) {
                    self.remove_existing(&pfd, name).map_err(ctx("replace existing"))?;
                    // Removing a directory may have dropped the cached descriptors' validity.
                    let (tfd, _, _) = self.dir(tparent, false).map_err(ctx("resolve hardlink target"))?;
                    let (pfd, _, _) = self.dir(parent, true).map_err(ctx("open parent directory"))?;
                    linkat(&*tfd, tname, &*pfd, name, AtFlags::empty()).map_err(|e| ctx("hardlink")(errno_io(e)))?;
                }
            }
            Err(Errno::NOENT) => return Err(ctx("hardlink")(missing())),
            Err(e) => return Err(ctx("hardlink")(errno_io(e))),
        }
        self.report.hardlinks += 1;
        Ok(())
    }

    fn make_node(&mut self, h: &Header, parent: &[u8], name: &[u8]) -> io::Result<()> {
        let (pfd, _, _) = self.dir(parent, true)?;
        let (ft, dev) = match h.kind {
            EntryKind::Char => (FileType::CharacterDevice, rustix::fs::makedev(h.dev_major, h.dev_minor)),
            EntryKind::Block => (FileType::BlockDevice, rustix::fs::makedev(h.dev_major, h.dev_minor)),
            _ => (FileType::Fifo, 0),
        };
        let mode = Mode::from_raw_mode(h.mode & 0o7777);
        match mknodat(&*pfd, name, ft, mode, dev) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                self.remove_existing(&pfd, name)?;
                mknodat(&*pfd, name, ft, mode, dev).map_err(errno_io)?;
            }
            Err(e) => return Err(errno_io(e)),
        }
        // Mode: mknod applies the umask; there is no lchmod, but the node was just created
        // by us in a directory only we write to, so fchmodat on the name is fine.
        if h.mode & self.umask != 0 || h.mode & 0o6000 != 0 {
            rustix::fs::chmodat(&*pfd, name, mode, AtFlags::empty()).map_err(errno_io)?;
        }
        self.lmeta(&pfd, h, name)?;
        if h.kind == EntryKind::Fifo {
            self.report.fifos += 1;
        } else {
            self.report.devices += 1;
        }
        Ok(())
    }

    fn whiteout(&mut self, h: &Header, parent: &[u8], wh: &[u8]) -> Result<()> {
        let ctx = |op: &'static str| {
            move |e: io::Error| Error::Apply { path: h.display_path(), offset: h.offset, op, source: e }
        };
        if wh == b".wh..opq" {
            return self.opaque(parent).map_err(ctx("opaque directory"));
        }
        if wh.starts_with(b".wh.") {
            self.skip(&h.path, SkipReason::AufsMeta);
            return Ok(());
        }
        if wh.is_empty() || wh == b"." || wh == b".." {
            return Err(Error::UnsafePath {
                path: h.display_path(),
                offset: h.offset,
                reason: "invalid whiteout name",
            });
        }
        let mut full = parent.to_vec();
        if !full.is_empty() {
            full.push(b'/');
        }
        full.extend_from_slice(wh);
        self.report.whiteouts += 1;
        if self.ours.contains(&full) {
            // A whiteout only hides lower layers, never this layer's own entries.
            return Ok(());
        }
        match self.opts.whiteouts {
            // Not reached: entries are only whiteouts in the layer modes.
            WhiteoutMode::None => {}
            WhiteoutMode::Flatten => {
                let pfd = match self.dir(parent, false) {
                    Ok((fd, _, _)) => fd,
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => return Ok(()),
                    Err(e) => return Err(ctx("resolve whiteout parent")(e)),
                };
                self.remove_existing(&pfd, wh).map_err(ctx("remove whited-out path"))?;
            }
            WhiteoutMode::Overlay(_) => {
                let (pfd, _, _) = self.dir(parent, true).map_err(ctx("open parent directory"))?;
                match mknodat(&*pfd, wh, FileType::CharacterDevice, Mode::empty(), 0) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(ctx("create whiteout device")(errno_io(e))),
                }
                let mut t = h.clone();
                t.mode = 0;
                t.xattrs.clear();
                self.lmeta(&pfd, &t, wh).map_err(ctx("set whiteout metadata"))?;
            }
        }
        Ok(())
    }

    fn opaque(&mut self, dir: &[u8]) -> io::Result<()> {
        self.report.opaque_dirs += 1;
        match self.opts.whiteouts {
            WhiteoutMode::None => Ok(()),
            WhiteoutMode::Flatten => {
                let dfd = match self.dir(dir, false) {
                    Ok((fd, _, _)) => fd,
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
                    Err(e) => return Err(e),
                };
                self.cache = None;
                clear_lower(&dfd, dir, &self.ours)
            }
            WhiteoutMode::Overlay(x) => {
                let (pfd, _, _) = self.dir(dir, true)?;
                let fd = openat(&*pfd, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                    .map_err(errno_io)?;
                self.mark_ours(dir);
                fsetxattr(&fd, x.opaque(), b"y", XattrFlags::empty()).map_err(errno_io)
            }
        }
    }

    /// Sets directory times last, since creating entries in a directory changes its mtime.
    fn finish_dirs(&mut self) {
        let list = std::mem::take(&mut self.dir_times);
        for (path, s, ns) in list {
            let t = Timestamps {
                last_access: Timespec { tv_sec: s, tv_nsec: i64::from(ns) },
                last_modification: Timespec { tv_sec: s, tv_nsec: i64::from(ns) },
            };
            if path.is_empty() {
                let _ = utimensat(&*self.root, ".", &t, AtFlags::empty());
                continue;
            }
            let (parent, name) = split_parent(&path);
            // A directory removed or replaced later in the layer is simply gone: ignore.
            if let Ok((pfd, _, _)) = self.dir(parent, false) {
                let _ = utimensat(&*pfd, name, &t, AtFlags::SYMLINK_NOFOLLOW);
            }
        }
    }
}

/// Granularity of hole detection.
const HOLE_BLOCK: usize = 32 * 1024;

/// Writes `chunk` (which starts at file offset `at`, a multiple of `HOLE_BLOCK` except maybe
/// for the last chunk) skipping all-zero blocks. Returns whether a hole was left.
fn write_sparse(f: &mut File, chunk: &[u8], at: u64, fpos: &mut u64) -> io::Result<bool> {
    let mut holes = false;
    let mut pending: Option<usize> = None; // start of a run of data blocks not yet written
    let mut i = 0;
    while i < chunk.len() {
        let end = (i + HOLE_BLOCK).min(chunk.len());
        let block = chunk.get(i..end).unwrap_or_default();
        let zero = block.len() == HOLE_BLOCK && block.iter().all(|&b| b == 0);
        if zero {
            if let Some(s) = pending.take() {
                f.write_all(chunk.get(s..i).unwrap_or_default())?;
                *fpos = at + i as u64;
            }
            holes = true;
        } else if pending.is_none() {
            if *fpos != at + i as u64 {
                f.seek(SeekFrom::Start(at + i as u64))?;
            }
            pending = Some(i);
        }
        i = end;
    }
    if let Some(s) = pending {
        f.write_all(chunk.get(s..).unwrap_or_default())?;
        *fpos = at + chunk.len() as u64;
    }
    Ok(holes)
}

/// Numeric owner of an entry; ids that do not fit (or are -1, "no change") are an error.
fn ids(h: &Header) -> io::Result<(u32, u32)> {
    let ok = |v: u64| u32::try_from(v).ok().filter(|&v| v != u32::MAX);
    match (ok(h.uid), ok(h.gid)) {
        (Some(u), Some(g)) => Ok((u, g)),
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, format!("uid/gid {}:{} out of range", h.uid, h.gid))),
    }
}

fn times(h: &Header) -> Timestamps {
    let ts = Timespec { tv_sec: h.mtime, tv_nsec: i64::from(h.mtime_nsec) };
    Timestamps { last_access: ts, last_modification: ts }
}

/// Removes every child of `dfd` whose path (relative to the root, `dir/child`) is not in
/// `ours`, recursing into directories that are ours.
fn clear_lower(dfd: &OwnedFd, dir: &[u8], ours: &HashSet<Vec<u8>>) -> io::Result<()> {
    let rfd =
        openat(dfd, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(errno_io)?;
    let mut names: Vec<(Vec<u8>, FileType)> = Vec::new();
    let mut d = Dir::read_from(&rfd).map_err(errno_io)?;
    while let Some(ent) = d.read() {
        let ent = ent.map_err(errno_io)?;
        let n = ent.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        names.push((n.to_vec(), ent.file_type()));
    }
    for (n, ft) in names {
        let mut p = dir.to_vec();
        if !p.is_empty() {
            p.push(b'/');
        }
        p.extend_from_slice(&n);
        if ours.contains(&p) {
            if ft == FileType::Directory {
                let sub = openat(
                    &rfd,
                    n.as_slice(),
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(errno_io)?;
                clear_lower(&sub, &p, ours)?;
            }
        } else {
            let is_dir = match ft {
                FileType::Unknown => statat(&rfd, n.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
                    .map_err(errno_io)?,
                ft => ft == FileType::Directory,
            };
            if is_dir {
                remove_all(&rfd, &n)?;
            } else {
                unlinkat(&rfd, n.as_slice(), AtFlags::empty()).map_err(errno_io)?;
            }
        }
    }
    Ok(())
}

/// Removes `name` in `dir` and, for a directory, everything below it, never following
/// symlinks. Iterative, holding one directory descriptor at a time (it climbs back with `..`),
/// so a hostile, arbitrarily deep tree (built through symlink shortcuts) can exhaust neither
/// the stack nor the descriptor table.
pub(crate) fn remove_all(dir: &impl AsFd, name: &[u8]) -> io::Result<()> {
    let dflags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut cur = match openat(dir, name, dflags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOTDIR) | Err(Errno::LOOP) => return unlinkat(dir, name, AtFlags::empty()).map_err(errno_io),
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(errno_io(e)),
    };
    // Names from `dir` down to `cur`.
    let mut names: Vec<Vec<u8>> = vec![name.to_vec()];
    loop {
        // Unlink every non-directory; stop at the first (possible) directory.
        let mut sub: Option<Vec<u8>> = None;
        {
            let mut d = Dir::read_from(&cur).map_err(errno_io)?;
            while let Some(ent) = d.read() {
                let ent = ent.map_err(errno_io)?;
                let n = ent.file_name().to_bytes();
                if n == b"." || n == b".." {
                    continue;
                }
                if matches!(ent.file_type(), FileType::Directory | FileType::Unknown) {
                    sub = Some(n.to_vec());
                    break;
                }
                match unlinkat(&cur, n, AtFlags::empty()) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(e) => return Err(errno_io(e)),
                }
            }
        }
        match sub {
            Some(n) => match openat(&cur, n.as_slice(), dflags, Mode::empty()) {
                Ok(fd) => {
                    names.push(n);
                    cur = fd;
                }
                Err(Errno::NOTDIR) | Err(Errno::LOOP) => {
                    unlinkat(&cur, n.as_slice(), AtFlags::empty()).map_err(errno_io)?
                }
                Err(Errno::NOENT) => {}
                Err(e) => return Err(errno_io(e)),
            },
            None => {
                let done = names.pop().unwrap_or_default();
                if names.is_empty() {
                    drop(cur);
                    return match unlinkat(dir, name, AtFlags::REMOVEDIR) {
                        Ok(()) | Err(Errno::NOENT) => Ok(()),
                        Err(e) => Err(errno_io(e)),
                    };
                }
                let parent = openat(&cur, "..", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                    .map_err(errno_io)?;
                match unlinkat(&parent, done.as_slice(), AtFlags::REMOVEDIR) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(e) => return Err(errno_io(e)),
                }
                cur = parent;
            }
        }
    }
}
