//! Crash-safe file helpers.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Result, StoreError};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique name in a tmp dir: `<pid>-<counter>-<nanos>`; the pid lets a later process tell
/// whether the writer is still alive.
pub(crate) fn tmp_name(tmp: &Path, suffix: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    tmp.join(format!("{}-{}-{}{}", std::process::id(), n, nanos, suffix))
}

/// Writes `data` to `dest` atomically: temp file in `tmp`, fsync, rename, fsync the directory.
pub(crate) fn write_atomic(tmp: &Path, dest: &Path, data: &[u8]) -> Result<()> {
    let t = tmp_name(tmp, ".w");
    let res = (|| {
        let mut f = File::create(&t).map_err(|e| StoreError::io(&t, e))?;
        f.write_all(data).map_err(|e| StoreError::io(&t, e))?;
        f.sync_all().map_err(|e| StoreError::io(&t, e))?;
        std::fs::rename(&t, dest).map_err(|e| StoreError::io(dest, e))?;
        sync_parent(dest)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&t);
    }
    res
}

pub(crate) fn sync_parent(p: &Path) -> Result<()> {
    if let Some(parent) = p.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| StoreError::io(dir, e))?;
    d.sync_all().map_err(|e| StoreError::io(dir, e))
}

/// Whether a process with this pid exists (used to tell stale temp files from live ones).
pub(crate) fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes a file or a directory tree, ignoring "not found". Directories may contain read-only
/// subdirectories (image layers often do), so permissions are fixed on the way.
pub(crate) fn remove_all(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => match std::fs::remove_dir_all(p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        },
        Ok(_) => match std::fs::remove_file(p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            r => r,
        },
    }
}
