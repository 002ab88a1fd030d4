//! Small filesystem helpers: atomic writes, path resolution inside a rootfs, ids.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, IoCtx, Result};

/// Write `data` to `path` atomically: temp file in the same directory, fsync, rename,
/// fsync the directory. Readers never see a partial file.
pub fn atomic_write(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().ok_or_else(|| Error::InvalidConfig(format!("{} has no parent", path.display())))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), nanos()));
    let res = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).ctx("create", &tmp)?;
        f.write_all(data).ctx("write", &tmp)?;
        f.sync_all().ctx("fsync", &tmp)?;
        fs::rename(&tmp, path).ctx("rename", path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// Resolve `path` (absolute, as seen inside the container) under `root`, following
/// symlinks but never leaving `root` (like `chroot` + `realpath`). The final component
/// need not exist. Used for /etc/passwd lookups, the working directory and mount points.
pub fn resolve_in_root(root: &Path, path: &Path) -> PathBuf {
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .rev()
        .collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            parts.pop();
            continue;
        }
        let mut cand = root.to_path_buf();
        cand.extend(parts.iter());
        cand.push(&part);
        match fs::read_link(&cand) {
            Ok(target) if links < 40 => {
                links += 1;
                if target.is_absolute() {
                    parts.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => parts.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(parts.iter());
    out
}

/// A 64-hex-digit random id, like Docker's container ids.
pub fn random_id() -> String {
    let mut buf = [0u8; 32];
    let ok = File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf)).is_ok();
    if !ok {
        let n = nanos() ^ (std::process::id() as u128) << 64;
        buf[..16].copy_from_slice(&n.to_le_bytes());
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Current time as RFC 3339 with nanoseconds, UTC (`2026-11-27T07:49:26.123456789Z`).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Whether `pid` exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X"),
        Err(_) => false,
    }
}

/// Open (creating, 0600) and exclusively flock `p`; unlocked when the file is dropped.
pub(crate) fn lock_file(p: &Path) -> Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(p)
        .map_err(|e| Error::io("open lock", p, e))?;
    f.lock().map_err(|e| Error::io("lock", p, e))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_stays_in_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("/usr/bin", root.join("bin")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("usr/esc")).unwrap();
        assert_eq!(resolve_in_root(root, Path::new("/bin/sh")), root.join("usr/bin/sh"));
        assert_eq!(resolve_in_root(root, Path::new("/usr/esc/passwd")), root.join("etc/passwd"));
        assert_eq!(resolve_in_root(root, Path::new("/../x")), root.join("x"));
    }

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.json");
        atomic_write(&p, b"one", 0o644).unwrap();
        atomic_write(&p, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
