//! Producing layer tars: a builder that sorts entries, detects hardlinks and clamps times, and
//! helpers that fill it from a directory tree.
//!
//! Output is deterministic: entries in path order (component by component, so a directory is
//! followed by its contents, as `filepath.Walk` gives), a `.wh..wh..opq` marker right after its
//! directory, mtimes in whole seconds (clamped to `SOURCE_DATE_EPOCH` when set), no atime or
//! ctime, empty uname/gname, and ustar headers with PAX only where needed.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, lossy};
use crate::tar::{EntryKind, Header, TarWriter, normalize_path};

/// Options shared by everything that turns files into entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeOptions {
    /// Clamp every mtime to this (`SOURCE_DATE_EPOCH`): never later than it.
    pub source_date_epoch: Option<i64>,
    /// Do not record extended attributes at all.
    pub no_xattrs: bool,
}

/// Where a regular file's bytes come from when the layer is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// No data (non-files, empty files, whiteouts).
    Empty,
    /// Small generated content held by the caller.
    Bytes(Vec<u8>),
    /// A file on disk, opened when the layer is written; its size must still be `header.size`.
    File(PathBuf),
}

/// One entry to put in a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    /// `header.path` is normalized by [`LayerBuilder::add`]; `header.offset` is ignored.
    pub header: Header,
    pub content: Content,
    /// `(st_dev, st_ino)` of a source file: regular files with the same identity become hard
    /// links to the first of them in output order.
    pub inode: Option<(u64, u64)>,
}

impl LayerEntry {
    pub fn new(header: Header, content: Content) -> LayerEntry {
        LayerEntry { header, content, inode: None }
    }
}

/// What [`LayerBuilder::write`] produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    pub entries: u64,
    pub hardlinks: u64,
    pub bytes: u64,
}

/// Collects entries (metadata and where to read content, never the content of files on disk)
/// and writes them in a canonical order. Not thread-safe; cheap to build.
#[derive(Debug, Default)]
pub struct LayerBuilder {
    opts: TreeOptions,
    entries: BTreeMap<Vec<u8>, LayerEntry>,
}

/// Sort key: `/` mapped to NUL (which never occurs in names), so that byte order is component
/// order; an opaque marker sorts right after its directory.
fn sort_key(path: &[u8]) -> Vec<u8> {
    let (parent, name) = crate::tar::split_parent(path);
    if name == b".wh..wh..opq" {
        let mut k: Vec<u8> = parent.iter().map(|&b| if b == b'/' { 0 } else { b }).collect();
        k.push(0);
        if !parent.is_empty() {
            k.push(0);
        }
        return k;
    }
    path.iter().map(|&b| if b == b'/' { 0 } else { b }).collect()
}

impl LayerBuilder {
    pub fn new(opts: TreeOptions) -> LayerBuilder {
        LayerBuilder { opts, entries: BTreeMap::new() }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds an entry. The path is normalized (an escaping or empty path is an error); adding
    /// the same path twice is [`Error::Duplicate`]. Use [`LayerBuilder::replace`] to overwrite.
    pub fn add(&mut self, mut e: LayerEntry) -> Result<()> {
        let path = self.check(&mut e)?;
        let key = sort_key(&path);
        if self.entries.contains_key(&key) {
            return Err(Error::Duplicate { path: lossy(&path) });
        }
        self.entries.insert(key, e);
        Ok(())
    }

    /// Adds or overwrites an entry.
    pub fn replace(&mut self, mut e: LayerEntry) -> Result<()> {
        let path = self.check(&mut e)?;
        self.entries.insert(sort_key(&path), e);
        Ok(())
    }

    /// Whether an entry with this (normalized) path was added.
    pub fn contains(&self, path: &[u8]) -> bool {
        normalize_path(path).map(|p| self.entries.contains_key(&sort_key(&p))).unwrap_or(false)
    }

    fn check(&self, e: &mut LayerEntry) -> Result<Vec<u8>> {
        let path = normalize_path(&e.header.path)
            .map_err(|p| Error::InvalidEntry { path: e.header.display_path(), reason: p.as_str().to_string() })?;
        if path.is_empty() {
            return Err(Error::InvalidEntry { path: e.header.display_path(), reason: "entry for the root".into() });
        }
        e.header.path = path.clone();
        if e.header.kind != EntryKind::File && e.content != Content::Empty {
            return Err(Error::InvalidEntry { path: lossy(&path), reason: "content for a non-file".into() });
        }
        if let Content::Bytes(b) = &e.content {
            e.header.size = b.len() as u64;
        }
        if e.content == Content::Empty && e.header.kind == EntryKind::File && e.header.size != 0 {
            return Err(Error::InvalidEntry { path: lossy(&path), reason: "file with a size but no content".into() });
        }
        Ok(path)
    }

    /// Adds the file at `source` (not followed if a symlink) as `archive_path`, with metadata
    /// from disk.
    pub fn add_path(&mut self, archive_path: &[u8], source: &Path) -> Result<()> {
        let md = std::fs::symlink_metadata(source).map_err(|e| Error::Source {
            path: source.to_path_buf(),
            op: "stat",
            source: e,
        })?;
        let e = entry_from_disk(archive_path, source, &md, &self.opts)?;
        self.add(e)
    }

    /// Adds everything below `dir` (not `dir` itself) under `prefix` (empty for the root).
    pub fn add_tree(&mut self, prefix: &[u8], dir: &Path) -> Result<()> {
        let opts = self.opts.clone();
        walk(dir, prefix, &mut |path, rel, md| {
            self.add(entry_from_disk(rel, path, md, &opts)?)?;
            Ok(true)
        })
    }

    /// Writes all entries to `out` in canonical order (the caller then calls `out.finish()`).
    pub fn write<W: Write>(self, out: &mut TarWriter<W>) -> Result<WriteReport> {
        let mut report = WriteReport::default();
        let mut first_of_inode: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
        let epoch = self.opts.source_date_epoch;
        for (_, mut e) in self.entries {
            let h = &mut e.header;
            h.mtime_nsec = 0;
            if let Some(epoch) = epoch
                && h.mtime > epoch
            {
                h.mtime = epoch;
            }
            if h.kind == EntryKind::File
                && let Some(id) = e.inode
            {
                if let Some(first) = first_of_inode.get(&id) {
                    h.kind = EntryKind::Hardlink;
                    h.link = first.clone();
                    h.size = 0;
                    out.append_header(h)?;
                    report.entries += 1;
                    report.hardlinks += 1;
                    continue;
                }
                first_of_inode.insert(id, h.path.clone());
            }
            match &e.content {
                Content::Empty => out.append_header(h)?,
                Content::Bytes(b) => out.append(h, &mut b.as_slice(), Path::new("<memory>"))?,
                Content::File(p) => {
                    let mut f = File::open(p).map_err(|e| Error::Source { path: p.clone(), op: "open", source: e })?;
                    out.append(h, &mut f as &mut dyn Read, p)?;
                }
            }
            report.entries += 1;
            report.bytes += h.size;
        }
        Ok(report)
    }
}

/// Reads the xattrs of `path` (not following symlinks), without overlayfs' private ones and
/// SELinux labels (host-specific; Docker and podman do not carry them either).
/// The names of `path`'s extended attributes (not following a symlink), NUL-separated as
/// `llistxattr` returns them; empty where the filesystem has no xattrs.
pub(crate) fn list_xattr_names(path: &Path) -> Result<Vec<u8>> {
    let err = |e: rustix::io::Errno| Error::Source {
        path: path.to_path_buf(),
        op: "list xattrs",
        source: std::io::Error::from_raw_os_error(e.raw_os_error()),
    };
    let mut names = vec![0u8; 4096];
    loop {
        match rustix::fs::llistxattr(path, &mut names[..]) {
            Ok(n) => {
                names.truncate(n);
                return Ok(names);
            }
            Err(rustix::io::Errno::RANGE) => {
                let need = rustix::fs::llistxattr_query(path).map_err(err)?;
                names.resize(need.max(names.len() * 2), 0);
            }
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(err(e)),
        }
    }
}

pub(crate) fn read_xattrs(path: &Path) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let err = |op, e: rustix::io::Errno| Error::Source {
        path: path.to_path_buf(),
        op,
        source: std::io::Error::from_raw_os_error(e.raw_os_error()),
    };
    let mut out = BTreeMap::new();
    for name in list_xattr_names(path)?.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if is_private_xattr(name) {
            continue;
        }
        let mut val = vec![0u8; 256];
        let len = loop {
            match rustix::fs::lgetxattr(path, name, &mut val[..]) {
                Ok(l) => break Some(l),
                Err(rustix::io::Errno::RANGE) => {
                    let need = rustix::fs::lgetxattr_query(path, name).map_err(|e| err("read xattr", e))?;
                    val.resize(need.max(val.len() * 2), 0);
                }
                // Removed between list and get.
                Err(rustix::io::Errno::NODATA) => break None,
                Err(e) => return Err(err("read xattr", e)),
            }
        };
        if let Some(len) = len {
            val.truncate(len);
            out.insert(name.to_vec(), val);
        }
    }
    Ok(out)
}

pub(crate) fn is_private_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") || name == b"security.selinux"
}

/// Builds an entry from a file on disk.
pub fn entry_from_disk(archive_path: &[u8], source: &Path, md: &Metadata, opts: &TreeOptions) -> Result<LayerEntry> {
    let mode = md.mode();
    let ft = md.file_type();
    use std::os::unix::fs::FileTypeExt;
    let kind = if ft.is_file() {
        EntryKind::File
    } else if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else if ft.is_char_device() {
        EntryKind::Char
    } else if ft.is_block_device() {
        EntryKind::Block
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else {
        return Err(Error::InvalidEntry {
            path: source.display().to_string(),
            reason: "sockets cannot be archived".into(),
        });
    };
    let mut h = Header::new(archive_path.to_vec(), kind);
    h.mode = mode & 0o7777;
    h.uid = u64::from(md.uid());
    h.gid = u64::from(md.gid());
    h.mtime = md.mtime();
    if kind == EntryKind::File {
        h.size = md.size();
    }
    if kind == EntryKind::Symlink {
        let t = std::fs::read_link(source).map_err(|e| Error::Source {
            path: source.to_path_buf(),
            op: "readlink",
            source: e,
        })?;
        h.link = t.as_os_str().as_bytes().to_vec();
    }
    if matches!(kind, EntryKind::Char | EntryKind::Block) {
        h.dev_major = rustix::fs::major(md.rdev());
        h.dev_minor = rustix::fs::minor(md.rdev());
    }
    if !opts.no_xattrs {
        h.xattrs = read_xattrs(source)?;
    }
    let content =
        if kind == EntryKind::File && h.size > 0 { Content::File(source.to_path_buf()) } else { Content::Empty };
    let inode = (kind == EntryKind::File && md.nlink() > 1).then(|| (md.dev(), md.ino()));
    Ok(LayerEntry { header: h, content, inode })
}

/// Walks `dir` depth-first in name order, calling `visit(path, rel, metadata)` for everything
/// below it; `rel` is `prefix/relative path`. Returning `Ok(false)` for a directory skips its
/// contents. Symlinks are never followed.
pub(crate) type Visitor<'a> = dyn FnMut(&Path, &[u8], &Metadata) -> Result<bool> + 'a;

pub(crate) fn walk(dir: &Path, prefix: &[u8], visit: &mut Visitor<'_>) -> Result<()> {
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)
        .map_err(|e| Error::Source { path: dir.to_path_buf(), op: "read directory", source: e })?
        .map(|r| r.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::Source { path: dir.to_path_buf(), op: "read directory", source: e })?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let md = std::fs::symlink_metadata(&path).map_err(|e| Error::Source {
            path: path.clone(),
            op: "stat",
            source: e,
        })?;
        let rel = join(prefix, OsStr::new(&name).as_bytes());
        let descend = visit(&path, &rel, &md)?;
        if md.is_dir() && descend {
            walk(&path, &rel, visit)?;
        }
    }
    Ok(())
}

pub(crate) fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    if !v.is_empty() {
        v.push(b'/');
    }
    v.extend_from_slice(name);
    v
}

/// Writes the tree under `dir` as a complete tar stream (with end marker) to `out`.
pub fn write_tree<W: Write>(dir: &Path, out: W, opts: &TreeOptions) -> Result<(W, WriteReport)> {
    let mut b = LayerBuilder::new(opts.clone());
    b.add_tree(b"", dir)?;
    let mut tw = TarWriter::new(out);
    let r = b.write(&mut tw)?;
    Ok((tw.finish()?, r))
}
