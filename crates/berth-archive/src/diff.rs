//! Layer diffs: from an overlayfs upper directory, or by comparing two directory trees.
//!
//! Both return a [`LayerBuilder`] holding metadata and file paths (not content); the caller
//! writes it with [`LayerBuilder::write`] while the source trees are still in place and
//! unchanged.
//!
//! Whiteout entries are empty regular files named `.wh.NAME`, owned by 0:0, mode 0, with the
//! parent directory's mtime, so the same change gives the same entry from either diff.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::build::{Content, LayerBuilder, LayerEntry, TreeOptions, entry_from_disk, join, read_xattrs, walk};
use crate::error::{Error, Result};
use crate::tar::{EntryKind, Header};

fn whiteout_entry(rel_parent: &[u8], name: &[u8], parent_mtime: i64) -> LayerEntry {
    let mut n = b".wh.".to_vec();
    n.extend_from_slice(name);
    let mut h = Header::new(join(rel_parent, &n), EntryKind::File);
    h.mode = 0;
    h.mtime = parent_mtime;
    LayerEntry::new(h, Content::Empty)
}

fn opaque_entry(rel_dir: &[u8], mtime: i64) -> LayerEntry {
    let mut h = Header::new(join(rel_dir, b".wh..wh..opq"), EntryKind::File);
    h.mode = 0;
    h.mtime = mtime;
    LayerEntry::new(h, Content::Empty)
}

/// Reads one xattr; `None` if absent.
fn get_xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 4096];
    match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Ok(Some(buf))
        }
        Err(rustix::io::Errno::NODATA) | Err(rustix::io::Errno::NOTSUP) => Ok(None),
        Err(e) => Err(Error::Source {
            path: path.to_path_buf(),
            op: "read xattr",
            source: std::io::Error::from_raw_os_error(e.raw_os_error()),
        }),
    }
}

/// Whether `path` carries any `trusted.overlay.*` or `user.overlay.*` xattr.
fn has_overlay_xattrs(path: &Path) -> Result<bool> {
    let names = crate::build::list_xattr_names(path)?;
    Ok(names.split(|b| *b == 0).any(|n| n.starts_with(b"trusted.overlay.") || n.starts_with(b"user.overlay.")))
}

/// Which overlayfs xattr namespace the upper directory uses.
fn overlay_xattr(path: &Path, key: &str) -> Result<Option<Vec<u8>>> {
    if let Some(v) = get_xattr(path, &format!("trusted.overlay.{key}"))? {
        return Ok(Some(v));
    }
    get_xattr(path, &format!("user.overlay.{key}"))
}

/// Turns an overlayfs upper directory (after unmount, or while mounted but quiescent) into
/// layer entries: char 0/0 devices become `.wh.NAME`, `overlay.opaque=y` directories get a
/// `.wh..wh..opq` entry right after them, `trusted.overlay.*`/`user.overlay.*` xattrs are
/// dropped, every directory present in upper is included (metadata-only changes too, as Docker
/// does) and hard links inside the upper directory are kept.
///
/// The overlay must have been mounted with `redirect_dir=off` and `metacopy=off` (the
/// defaults on most kernels); a redirect or metacopy xattr is an [`Error::OverlayFeature`].
pub fn overlay_diff(upper: &Path, opts: &TreeOptions) -> Result<LayerBuilder> {
    let mut b = LayerBuilder::new(opts.clone());
    walk(upper, b"", &mut |path, rel, md| {
        let ft = md.file_type();
        if ft.is_char_device() && md.rdev() == 0 {
            let (parent, name) = crate::tar::split_parent(rel);
            let pm = std::fs::symlink_metadata(path.parent().unwrap_or(upper)).map(|m| m.mtime()).unwrap_or(0);
            b.add(whiteout_entry(parent, name, pm))?;
            return Ok(false);
        }
        // One listxattr tells whether any overlay xattr is there (almost never outside
        // directories): four getxattr calls per file cost a tenth of a large COPY.
        if !has_overlay_xattrs(path)? {
            b.add(entry_from_disk(rel, path, md, opts)?)?;
            return Ok(true);
        }
        for feature in ["redirect", "metacopy"] {
            if overlay_xattr(path, feature)?.is_some() {
                return Err(Error::OverlayFeature {
                    path: path.to_path_buf(),
                    what: format!("overlay.{feature} xattr"),
                });
            }
        }
        // Kernel 6.7+ "xattr whiteouts" (used with userxattr): an empty file with overlay.whiteout.
        if ft.is_file() && md.len() == 0 && overlay_xattr(path, "whiteout")?.is_some() {
            let (parent, name) = crate::tar::split_parent(rel);
            let pm = std::fs::symlink_metadata(path.parent().unwrap_or(upper)).map(|m| m.mtime()).unwrap_or(0);
            b.add(whiteout_entry(parent, name, pm))?;
            return Ok(false);
        }
        b.add(entry_from_disk(rel, path, md, opts)?)?;
        if ft.is_dir() && overlay_xattr(path, "opaque")?.as_deref() == Some(b"y") {
            b.add(opaque_entry(rel, md.mtime()))?;
        }
        Ok(true)
    })?;
    // Opaque root ("/.wh..wh..opq") cannot be expressed by overlayfs upper dirs: not handled.
    Ok(b)
}

/// Options for [`tree_diff`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffOptions {
    pub tree: TreeOptions,
    /// Compare file contents when all metadata (type, mode, owner, size, mtime to the
    /// nanosecond, xattrs) is equal. Off by default, like Docker's `ChangesDirs`: a tool that
    /// rewrites a file keeping size and exact mtime goes unnoticed then.
    pub compare_content: bool,
}

/// Compares `new` with `lower` (the non-overlay fallback) and returns the entries of a layer
/// that turns `lower` into `new`: added and changed paths (with their parent directories, as
/// an overlay upper has them), and a whiteout for each removed path (not for its contents).
/// Directory mtimes alone are not a change (Docker's rule). Not atomic with respect to
/// concurrent changes in either tree.
pub fn tree_diff(lower: &Path, new: &Path, opts: &DiffOptions) -> Result<LayerBuilder> {
    let mut b = LayerBuilder::new(opts.tree.clone());
    diff_dir(Some(lower), new, b"", opts, &mut b)?;
    Ok(b)
}

fn list(dir: &Path) -> Result<BTreeMap<OsString, Metadata>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::Source {
        path: dir.to_path_buf(),
        op: "read directory",
        source: e,
    })?;
    let mut out = BTreeMap::new();
    for e in rd {
        let e = e.map_err(|e| Error::Source { path: dir.to_path_buf(), op: "read directory", source: e })?;
        let p = e.path();
        let md = std::fs::symlink_metadata(&p).map_err(|e| Error::Source { path: p.clone(), op: "stat", source: e })?;
        out.insert(e.file_name(), md);
    }
    Ok(out)
}

/// Returns whether anything below `new` (relative `rel`) differs from `lower`.
fn diff_dir(lower: Option<&Path>, new: &Path, rel: &[u8], opts: &DiffOptions, b: &mut LayerBuilder) -> Result<bool> {
    let new_list = list(new)?;
    let lower_list = match lower {
        Some(l) => list(l)?,
        None => BTreeMap::new(),
    };
    let mut changed = false;
    let parent_mtime = std::fs::symlink_metadata(new).map(|m| m.mtime()).unwrap_or(0);
    for name in lower_list.keys() {
        if !new_list.contains_key(name) {
            b.add(whiteout_entry(rel, name.as_bytes(), parent_mtime))?;
            changed = true;
        }
    }
    for (name, md) in &new_list {
        let npath = new.join(name);
        let nrel = join(rel, name.as_bytes());
        let old = lower.and_then(|l| lower_list.get(name).map(|m| (l.join(name), m)));
        let same_kind = old.as_ref().is_some_and(|(_, om)| om.file_type() == md.file_type());
        if md.is_dir() {
            let sub_lower = if same_kind { old.as_ref().map(|(p, _)| p.as_path()) } else { None };
            let self_changed = match &old {
                Some((op, om)) if same_kind => meta_differs(op, om, &npath, md, opts)?,
                _ => true,
            };
            let below = diff_dir(sub_lower, &npath, &nrel, opts, b)?;
            if self_changed || below {
                b.add(entry_from_disk(&nrel, &npath, md, &opts.tree)?)?;
                changed = true;
            }
        } else {
            let differs = match &old {
                Some((op, om)) if same_kind => meta_differs(op, om, &npath, md, opts)?,
                _ => true,
            };
            if differs {
                b.add(entry_from_disk(&nrel, &npath, md, &opts.tree)?)?;
                changed = true;
            }
        }
    }
    Ok(changed)
}

fn meta_differs(op: &Path, om: &Metadata, np: &Path, nm: &Metadata, opts: &DiffOptions) -> Result<bool> {
    if om.mode() != nm.mode() || om.uid() != nm.uid() || om.gid() != nm.gid() {
        return Ok(true);
    }
    let ft = nm.file_type();
    if !ft.is_dir() && (om.mtime() != nm.mtime() || om.mtime_nsec() != nm.mtime_nsec()) {
        return Ok(true);
    }
    if ft.is_file() && om.size() != nm.size() {
        return Ok(true);
    }
    if (ft.is_char_device() || ft.is_block_device()) && om.rdev() != nm.rdev() {
        return Ok(true);
    }
    if ft.is_symlink() {
        let a =
            std::fs::read_link(op).map_err(|e| Error::Source { path: op.to_path_buf(), op: "readlink", source: e })?;
        let b =
            std::fs::read_link(np).map_err(|e| Error::Source { path: np.to_path_buf(), op: "readlink", source: e })?;
        if a != b {
            return Ok(true);
        }
    }
    if !opts.tree.no_xattrs && read_xattrs(op)? != read_xattrs(np)? {
        return Ok(true);
    }
    if ft.is_file() && opts.compare_content && nm.size() > 0 {
        return Ok(!same_content(op, np)?);
    }
    Ok(false)
}

fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let open =
        |p: &Path| std::fs::File::open(p).map_err(|e| Error::Source { path: p.to_path_buf(), op: "open", source: e });
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 256 * 1024], vec![0u8; 256 * 1024]);
    loop {
        let na =
            read_full(&mut fa, &mut ba).map_err(|e| Error::Source { path: a.to_path_buf(), op: "read", source: e })?;
        let nb =
            read_full(&mut fb, &mut bb).map_err(|e| Error::Source { path: b.to_path_buf(), op: "read", source: e })?;
        if na != nb || ba.get(..na) != bb.get(..nb) {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let Some(b) = buf.get_mut(n..) else { break };
        match r.read(b) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
