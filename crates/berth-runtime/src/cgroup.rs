//! Reading cgroup facts for a container (OOM kills, limits), on v1, hybrid and v2 hosts.

use std::path::PathBuf;

/// Candidate directories of the memory controller for `cgroups_path` (`/berth/<id>`).
fn memory_dirs(cgroups_path: &str) -> Vec<PathBuf> {
    let rel = cgroups_path.trim_start_matches('/');
    vec![PathBuf::from("/sys/fs/cgroup/memory").join(rel), PathBuf::from("/sys/fs/cgroup").join(rel)]
}

/// Whether the kernel OOM-killed a process in this cgroup (read before it is removed).
pub fn oom_killed(cgroups_path: &str) -> bool {
    for d in memory_dirs(cgroups_path) {
        for (file, key) in [("memory.oom_control", "oom_kill "), ("memory.events", "oom_kill ")] {
            if let Ok(s) = std::fs::read_to_string(d.join(file)) {
                for l in s.lines() {
                    if let Some(v) = l.strip_prefix(key)
                        && v.trim().parse::<u64>().unwrap_or(0) > 0
                    {
                        return true;
                    }
                }
            }
        }
    }
    false
}

/// Whether any cgroup directory for `cgroups_path` still exists (leak check for tests).
pub fn exists(cgroups_path: &str) -> bool {
    let rel = cgroups_path.trim_start_matches('/');
    let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") else {
        return false;
    };
    if PathBuf::from("/sys/fs/cgroup").join(rel).join("cgroup.procs").exists() {
        return true;
    }
    rd.flatten().any(|e| e.path().join(rel).is_dir())
}
