//! Reading files of an image layout or archive, either from a directory or from a tar file
//! indexed once (entry path → byte range), so blobs are read in place without extracting.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use crate::{Result, TransportError};

/// Where a set of named files lives.
#[derive(Debug, Clone)]
pub enum Files {
    Dir(PathBuf),
    Tar {
        path: PathBuf,
        entries: HashMap<String, (u64, u64)>,
    },
    /// One file standing for one named entry (a recompressed layer in a temp file).
    Single {
        name: String,
        path: PathBuf,
    },
}

impl Files {
    /// Indexes a tar archive: one sequential pass over the headers (contents are skipped with
    /// seeks). Symlinks and hardlinks to other entries (as `docker save` writes for repeated
    /// layers) are resolved to their target's range. Entry names are normalized (`./a` → `a`).
    pub fn index_tar(path: &Path) -> Result<Files> {
        let f = File::open(path).map_err(|e| TransportError::io(path, e))?;
        let mut ar = tar::Archive::new(f);
        let mut entries = HashMap::new();
        let mut links: Vec<(String, String)> = Vec::new();
        let bad = |d: String| TransportError::BadArchive { what: "tar", path: path.to_path_buf(), detail: d };
        let it = ar.entries_with_seek().map_err(|e| bad(e.to_string()))?;
        for e in it {
            let e = e.map_err(|e| bad(e.to_string()))?;
            let name = match e.path() {
                Ok(p) => normalize(&p),
                Err(err) => return Err(bad(err.to_string())),
            };
            let Some(name) = name else { continue };
            let kind = e.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                if let Ok(Some(target)) = e.link_name() {
                    let target = if kind.is_symlink() {
                        let base = Path::new(&name).parent().unwrap_or(Path::new(""));
                        normalize(&base.join(target))
                    } else {
                        normalize(&target)
                    };
                    if let Some(t) = target {
                        links.push((name, t));
                    }
                }
                continue;
            }
            if kind.is_file() {
                entries.insert(name, (e.raw_file_position(), e.size()));
            }
        }
        // Resolve links (a few levels, in case of chains).
        for _ in 0..4 {
            for (name, target) in &links {
                if let Some(r) = entries.get(target).copied() {
                    entries.entry(name.clone()).or_insert(r);
                }
            }
        }
        Ok(Files::Tar { path: path.to_path_buf(), entries })
    }

    pub fn location(&self) -> &Path {
        match self {
            Files::Dir(p) => p,
            Files::Tar { path, .. } | Files::Single { path, .. } => path,
        }
    }

    pub fn exists(&self, name: &str) -> bool {
        match self {
            Files::Dir(p) => p.join(name).is_file(),
            Files::Tar { entries, .. } => entries.contains_key(name),
            Files::Single { name: n, path } => n == name && path.is_file(),
        }
    }

    /// Size of a file.
    pub fn size(&self, name: &str) -> Option<u64> {
        match self {
            Files::Dir(p) => std::fs::metadata(p.join(name)).ok().map(|m| m.len()),
            Files::Tar { entries, .. } => entries.get(name).map(|(_, s)| *s),
            Files::Single { name: n, path } => {
                (n == name).then(|| std::fs::metadata(path).ok().map(|m| m.len())).flatten()
            }
        }
    }

    /// Opens a file for reading: a reader limited to exactly its bytes.
    pub fn open(&self, name: &str) -> Result<(File, u64)> {
        match self {
            Files::Single { name: n, path } if n == name => {
                let f = File::open(path).map_err(|e| TransportError::io(path, e))?;
                let len = f.metadata().map_err(|e| TransportError::io(path, e))?.len();
                Ok((f, len))
            }
            Files::Single { path, .. } => Err(TransportError::BadArchive {
                what: "file",
                path: path.clone(),
                detail: format!("{name} is missing"),
            }),
            Files::Dir(p) => {
                let path = p.join(name);
                let f = File::open(&path).map_err(|e| TransportError::io(&path, e))?;
                let len = f.metadata().map_err(|e| TransportError::io(&path, e))?.len();
                Ok((f, len))
            }
            Files::Tar { path, entries } => {
                let (off, size) = entries.get(name).copied().ok_or_else(|| TransportError::BadArchive {
                    what: "file",
                    path: path.clone(),
                    detail: format!("{name} is missing"),
                })?;
                let mut f = File::open(path).map_err(|e| TransportError::io(path, e))?;
                f.seek(SeekFrom::Start(off)).map_err(|e| TransportError::io(path, e))?;
                Ok((f, size))
            }
        }
    }

    /// Reads a small file (JSON documents) into memory, refusing absurd sizes.
    pub fn read_small(&self, name: &str) -> Result<Vec<u8>> {
        let (f, size) = self.open(name)?;
        if size > 64 * 1024 * 1024 {
            return Err(TransportError::BadArchive {
                what: "metadata file",
                path: self.location().to_path_buf(),
                detail: format!("{name} is {size} bytes"),
            });
        }
        let mut v = Vec::with_capacity(size as usize);
        f.take(size).read_to_end(&mut v).map_err(|e| TransportError::io(self.location(), e))?;
        Ok(v)
    }
}

/// Normalizes an archive path to a relative, `/`-separated form without `.` components;
/// returns `None` for paths that climb out (`..`), which are never looked up.
pub(crate) fn normalize(p: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().to_string()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    if parts.is_empty() { None } else { Some(parts.join("/")) }
}

/// Path of a blob inside an OCI layout.
pub fn blob_name(d: &berth_types::Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().as_str(), d.hex())
}
