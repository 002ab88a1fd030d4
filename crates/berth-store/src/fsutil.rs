//! Crash-safe file helpers.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Result, StoreError};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique name in a tmp dir: `<pid>@<start>-<counter>-<nanos>`; the pid and its start time
/// let a later process tell whether the writer is still alive (see [`owner_alive`]).
pub(crate) fn tmp_name(tmp: &Path, suffix: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    tmp.join(format!("{}{}-{}{}", owner_prefix(), n, nanos, suffix))
}

/// `<pid>@<start>-`: the prefix of every temp name this process creates in the store's `tmp/`.
pub fn owner_prefix() -> String {
    let pid = std::process::id();
    match process_start_time(pid) {
        Some(st) => format!("{pid}@{st}-"),
        None => format!("{pid}-"),
    }
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`, clock ticks since boot), or
/// `None` when there is no such process. With the pid it names one process for good: a pid
/// that is reused later has another start time.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&s)
}

/// Field 22 of a `/proc/PID/stat` line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from its last `)`.
pub(crate) fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// Whether the owner named by a temp entry's name (`<pid>@<start>-…`, or the older `<pid>-…`)
/// is still running. `None` when the name carries no owner (not ours to judge).
pub(crate) fn owner_alive(name: &str) -> Option<bool> {
    let first = name.split('-').next()?;
    let (pid, start) = match first.split_once('@') {
        Some((p, s)) => (p.parse::<u32>().ok()?, Some(s.parse::<u64>().ok()?)),
        None => (first.parse::<u32>().ok()?, None),
    };
    if pid == std::process::id() {
        return Some(true);
    }
    Some(match (process_start_time(pid), start) {
        (None, _) => false,
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
    })
}

/// Detaches every mount at or below `dir` (deepest first), so that removing `dir` cannot
/// reach into a mounted filesystem (an overlay left by a killed build, a bind mount) and a
/// busy mount point does not make the removal fail. Returns how many were detached.
pub fn unmount_below(dir: &Path) -> std::io::Result<usize> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return Ok(0) };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    let mut n = 0;
    for p in &points {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else { continue };
        // SAFETY: a valid C string; umount2 does not retain it.
        let r = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        if r == 0 {
            n += 1;
        } else {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINVAL) && e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e);
            }
        }
    }
    Ok(n)
}

/// `\040`-style octal escapes of mountinfo paths.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Creates `dir` (and missing parents) and makes it private to its owner (0700), fixing the
/// mode of an existing directory. Failure to chmod a directory we do not own is not an error
/// (the owner decides), but is logged.
pub(crate) fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {
            if m.permissions().mode() & 0o077 != 0
                && let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            {
                tracing::debug!(dir = %dir.display(), "cannot make private: {e}");
            }
            Ok(())
        }
        _ => {
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
            }
            match std::fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(StoreError::io(dir, e)),
            }
            // The umask may have narrowed it further, never widened it; nothing to fix.
            Ok(())
        }
    }
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
