//! Inter-process locks on files under `locks/` (flock via `std::fs::File::lock`).

use std::fs::{File, OpenOptions};
use std::path::Path;

use crate::{Result, Store, StoreError};

/// Holds a lock until dropped.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

fn open_lock(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| StoreError::io(path, e))
}

impl Store {
    /// Exclusive lock for read-modify-write of `index.json`. Hold it briefly.
    pub(crate) fn lock_refs(&self) -> Result<LockGuard> {
        self.lock("refs", true)
    }

    /// Shared lock held by anything that writes content not yet reachable from a ref (pull, load,
    /// build), so that garbage collection cannot delete it meanwhile.
    pub fn gc_guard(&self) -> Result<LockGuard> {
        self.lock("gc", false)
    }

    /// Exclusive lock taken by garbage collection.
    pub(crate) fn gc_exclusive(&self) -> Result<LockGuard> {
        self.lock("gc", true)
    }

    /// The exclusive gc lock if it is free now.
    pub(crate) fn try_gc_exclusive(&self) -> Result<Option<LockGuard>> {
        let (path, f) = self.lock_file("gc")?;
        match f.try_lock() {
            Ok(()) => Ok(Some(LockGuard { _file: f })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io(&path, e)),
        }
    }

    /// A named exclusive lock for other subsystems (the build cache, containers).
    pub fn named_lock(&self, name: &str) -> Result<LockGuard> {
        self.lock(name, true)
    }

    fn lock_file(&self, name: &str) -> Result<(std::path::PathBuf, File)> {
        let path = self.root.join("locks").join(format!("{name}.lock"));
        let f = open_lock(&path)?;
        Ok((path, f))
    }

    fn lock(&self, name: &str, exclusive: bool) -> Result<LockGuard> {
        let (path, f) = self.lock_file(name)?;
        let r = if exclusive { f.lock() } else { f.lock_shared() };
        r.map_err(|e| StoreError::io(&path, e))?;
        Ok(LockGuard { _file: f })
    }
}
