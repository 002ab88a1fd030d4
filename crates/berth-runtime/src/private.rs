//! Privacy and leftovers of the runtime state directory (`/run/berth` by default).
//!
//! Container requests, bundles and exec process files hold the container's environment, which
//! can carry secrets (`RUN --mount=type=secret,env=…`), and the rootfs mount points expose the
//! image's setuid binaries. So every directory berth creates there is 0700 and every file it
//! writes there is 0600: other local users can read or execute nothing below it.
//!
//! A process killed with `kill -9` cannot clean up its scratch directory (`c/<id>/`, with the
//! container's rootfs still mounted) nor its request files. Each scratch directory therefore
//! names its owners (pid and start time, one per line, in `c/<id>/owner`); the next berth
//! process that finds all owners gone detaches the mounts and removes the leftovers
//! ([`clean_stale_state`]).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{IoCtx, Result};

/// Creates `dir` (and missing parents) as 0700, and makes an existing one 0700.
pub fn private_dir(dir: &Path) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {
            if m.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).ctx("chmod 0700", dir)?;
            }
            Ok(())
        }
        _ => {
            if let Some(parent) = dir.parent() {
                fs::create_dir_all(parent).ctx("create", parent)?;
            }
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => private_dir_existing(dir),
                Err(e) => Err(e).ctx("create", dir),
            }
        }
    }
}

fn private_dir_existing(dir: &Path) -> Result<()> {
    let m = fs::symlink_metadata(dir).ctx("stat", dir)?;
    if m.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).ctx("chmod 0700", dir)?;
    }
    Ok(())
}

/// Makes the state root and the given subdirectories of it private; returns the last one.
pub(crate) fn private_state_dirs(state_root: &Path, subs: &[&str]) -> Result<PathBuf> {
    private_dir(state_root)?;
    let mut cur = state_root.to_path_buf();
    for s in subs {
        cur = cur.join(s);
        private_dir(&cur)?;
    }
    Ok(cur)
}

/// Writes `data` to `path` readable and writable by the owner only (0600), also when the file
/// existed with a wider mode.
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    let mut f =
        fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).ctx("create", path)?;
    f.set_permissions(fs::Permissions::from_mode(0o600)).ctx("chmod 0600", path)?;
    f.write_all(data).ctx("write", path)
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`, clock ticks since boot), or
/// `None` when there is no such process. Together with the pid it names one process: a reused
/// pid has another start time.
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&s)
}

/// Field 22 of a `/proc/PID/stat` line, counted from the last `)` (the command name may hold
/// spaces and parentheses).
pub(crate) fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// Whether the process `pid` that started at `start` (as recorded) is still the one running
/// under that pid. A record without a start time (`0`, older state files) trusts the pid.
pub fn same_process(pid: i32, start: u64) -> bool {
    match process_start_time(pid) {
        None => false,
        Some(now) => start == 0 || now == start,
    }
}

/// Records `pid` (with its start time) as an owner of the scratch directory `dir`.
pub(crate) fn add_owner(dir: &Path, pid: i32) -> Result<()> {
    let Some(start) = process_start_time(pid) else { return Ok(()) };
    let p = dir.join("owner");
    let mut f = fs::OpenOptions::new().append(true).create(true).mode(0o600).open(&p).ctx("create", &p)?;
    writeln!(f, "{pid} {start}").ctx("write", &p)
}

/// Whether any owner recorded in `dir/owner` still runs. A directory without an owner file
/// is judged alive (not ours to remove: written by an older berth, or just being created).
fn owners_alive(dir: &Path) -> bool {
    let Ok(s) = fs::read_to_string(dir.join("owner")) else { return true };
    let mut any = false;
    for l in s.lines() {
        let mut it = l.split_ascii_whitespace();
        let (Some(Ok(pid)), Some(Ok(start))) = (it.next().map(str::parse::<i32>), it.next().map(str::parse::<u64>))
        else {
            continue;
        };
        any = true;
        if pid as u32 == std::process::id() || same_process(pid, start) {
            return true;
        }
    }
    // An empty or unreadable owner list: a create that was killed right after mkdir.
    !any && dir_is_young(dir)
}

fn dir_is_young(dir: &Path) -> bool {
    fs::symlink_metadata(dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_none_or(|age| age < std::time::Duration::from_secs(60))
}

/// Finds scratch directories and request files under `state_root/c` whose owners are all
/// gone (killed with `kill -9`), detaches their mounts, and removes them together with the
/// libcontainer state of the same id. Cheap when there is nothing to do (one `readdir`).
/// Returns the ids cleaned.
pub fn clean_stale_state(state_root: &Path) -> Vec<String> {
    let c = state_root.join("c");
    let Ok(rd) = fs::read_dir(&c) else { return vec![] };
    let mut cleaned = Vec::new();
    let mut dirs = std::collections::HashSet::new();
    let mut files = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            dirs.insert(name.clone());
            let p = e.path();
            if owners_alive(&p) {
                continue;
            }
            if let Err(err) = detach_below(&p) {
                tracing::debug!(path = %p.display(), "leftover container state: cannot detach its mounts, keeping it: {err}");
                continue;
            }
            match fs::remove_dir_all(&p) {
                Ok(()) => {
                    tracing::debug!(path = %p.display(), "removed the state of a container whose berth process died");
                    let _ = fs::remove_dir_all(state_root.join("lc").join(&name));
                    cleaned.push(name);
                }
                Err(err) => tracing::debug!(path = %p.display(), "cannot remove leftover container state: {err}"),
            }
        } else {
            files.push((name, e.path()));
        }
    }
    for (name, p) in files {
        let Some(id) = name.strip_suffix(".request.json").or_else(|| name.strip_suffix(".result.json")) else {
            continue;
        };
        // The request is written after its scratch directory, and removed before it; a
        // request whose directory is gone (or was just cleaned) has no live owner.
        if (!dirs.contains(id) || cleaned.iter().any(|c| c == id)) && !file_is_young(&p) {
            let _ = fs::remove_file(&p);
            tracing::debug!(path = %p.display(), "removed a run request left by a dead process");
        }
    }
    cleaned
}

fn file_is_young(p: &Path) -> bool {
    fs::symlink_metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_none_or(|age| age < std::time::Duration::from_secs(5))
}

/// Detaches every mount at or below `dir`, deepest first.
fn detach_below(dir: &Path) -> std::io::Result<()> {
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    for p in points {
        match nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(e) => return Err(std::io::Error::from(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_parses_odd_command_names() {
        let line = "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(line), Some(987654));
        assert_eq!(parse_start_time("garbage"), None);
        assert_eq!(parse_start_time("1 (x) S 1"), None);
    }

    #[test]
    fn own_start_time_is_stable_and_recycled_pids_differ() {
        let me = std::process::id() as i32;
        let a = process_start_time(me).expect("own stat");
        assert_eq!(process_start_time(me), Some(a));
        assert!(same_process(me, a));
        assert!(!same_process(me, a + 1), "another start time is another process");
        assert!(!same_process(i32::MAX, 1));
    }

    #[test]
    fn private_files_and_dirs() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("state");
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        let c = private_state_dirs(&d, &["c"]).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(&c).unwrap().permissions().mode() & 0o777, 0o700);
        let f = c.join("x.request.json");
        fs::write(&f, b"old").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&f, b"{}").unwrap();
        assert_eq!(fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read(&f).unwrap(), b"{}");
    }

    #[test]
    fn stale_state_of_dead_owners_is_removed_live_kept() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let c = private_state_dirs(root, &["c"]).unwrap();
        // A dead owner: a pid with a start time that cannot match.
        let dead = c.join("dead");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("owner"), format!("{} 1\n", std::process::id() + 1_000_000)).unwrap();
        fs::create_dir(dead.join("bundle")).unwrap();
        fs::write(c.join("dead.request.json"), b"{}").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        fs::File::options().write(true).open(c.join("dead.request.json")).unwrap().set_modified(old).unwrap();
        private_state_dirs(root, &["lc", "dead"]).unwrap();
        // A live owner: this process.
        let live = c.join("live");
        fs::create_dir(&live).unwrap();
        add_owner(&live, std::process::id() as i32).unwrap();
        // No owner file: not judged.
        fs::create_dir(c.join("legacy")).unwrap();
        let cleaned = clean_stale_state(root);
        assert_eq!(cleaned, vec!["dead".to_string()]);
        assert!(!dead.exists());
        assert!(!c.join("dead.request.json").exists());
        assert!(!root.join("lc/dead").exists());
        assert!(live.exists());
        assert!(c.join("legacy").exists());
    }
}
