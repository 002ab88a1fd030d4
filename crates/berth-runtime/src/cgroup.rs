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

/// Whether the host runs the unified hierarchy only (cgroup v2).
fn unified_only() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The directory of `controller` (v1) for `cgroups_path`, or the unified one on v2 hosts.
fn controller_dir(controller: &str, cgroups_path: &str) -> PathBuf {
    let rel = cgroups_path.trim_start_matches('/');
    if unified_only() {
        PathBuf::from("/sys/fs/cgroup").join(rel)
    } else {
        PathBuf::from("/sys/fs/cgroup").join(controller).join(rel)
    }
}

fn io_ctx(p: &std::path::Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

/// Freezes (`true`) or thaws the container's cgroup (the freezer controller on v1,
/// `cgroup.freeze` on v2) and waits until the kernel reports the new state.
pub fn set_frozen(cgroups_path: &str, frozen: bool) -> std::io::Result<()> {
    let v2 = unified_only();
    let dir = controller_dir("freezer", cgroups_path);
    let (file, value) = if v2 {
        ("cgroup.freeze", if frozen { "1" } else { "0" })
    } else {
        ("freezer.state", if frozen { "FROZEN" } else { "THAWED" })
    };
    let p = dir.join(file);
    std::fs::write(&p, value).map_err(|e| io_ctx(&p, e))?;
    for _ in 0..1000 {
        if is_frozen(cgroups_path) == frozen {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{}: the freezer did not settle", p.display())))
}

/// Whether the container's cgroup is frozen (`pause`).
pub fn is_frozen(cgroups_path: &str) -> bool {
    let dir = controller_dir("freezer", cgroups_path);
    if unified_only() {
        return std::fs::read_to_string(dir.join("cgroup.events"))
            .map(|s| s.lines().any(|l| l.trim() == "frozen 1"))
            .unwrap_or(false);
    }
    std::fs::read_to_string(dir.join("freezer.state")).map(|s| s.trim() == "FROZEN").unwrap_or(false)
}

/// The pids in the container's cgroup (for `top`).
pub fn pids(cgroups_path: &str) -> std::io::Result<Vec<i32>> {
    let p = controller_dir("pids", cgroups_path).join("cgroup.procs");
    let s = std::fs::read_to_string(&p).map_err(|e| io_ctx(&p, e))?;
    Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Resource usage of a container's cgroup, as `stats` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time used, in nanoseconds.
    pub cpu_ns: u64,
    pub memory: u64,
    /// The memory limit; `None` when unlimited.
    pub memory_limit: Option<u64>,
    pub pids: u64,
    pub block_read: u64,
    pub block_write: u64,
}

fn read_u64(p: PathBuf) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Reads the container's current usage (fields it cannot read stay 0).
pub fn usage(cgroups_path: &str) -> Usage {
    let mut u = Usage::default();
    if unified_only() {
        let d = controller_dir("", cgroups_path);
        if let Ok(s) = std::fs::read_to_string(d.join("cpu.stat")) {
            u.cpu_ns = s
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec ").and_then(|v| v.trim().parse::<u64>().ok()))
                .unwrap_or(0)
                * 1000;
        }
        u.memory = read_u64(d.join("memory.current")).unwrap_or(0);
        u.memory_limit = read_u64(d.join("memory.max"));
        u.pids = read_u64(d.join("pids.current")).unwrap_or(0);
        if let Ok(s) = std::fs::read_to_string(d.join("io.stat")) {
            for f in s.split_whitespace() {
                if let Some(v) = f.strip_prefix("rbytes=").and_then(|v| v.parse::<u64>().ok()) {
                    u.block_read += v;
                }
                if let Some(v) = f.strip_prefix("wbytes=").and_then(|v| v.parse::<u64>().ok()) {
                    u.block_write += v;
                }
            }
        }
        return u;
    }
    u.cpu_ns = read_u64(controller_dir("cpuacct", cgroups_path).join("cpuacct.usage")).unwrap_or(0);
    let m = controller_dir("memory", cgroups_path);
    u.memory = read_u64(m.join("memory.usage_in_bytes")).unwrap_or(0);
    // v1 reports "unlimited" as a huge page-aligned number.
    u.memory_limit = read_u64(m.join("memory.limit_in_bytes")).filter(|l| *l < (1 << 62));
    u.pids = read_u64(controller_dir("pids", cgroups_path).join("pids.current")).unwrap_or(0);
    if let Ok(s) =
        std::fs::read_to_string(controller_dir("blkio", cgroups_path).join("blkio.throttle.io_service_bytes"))
    {
        for l in s.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if let [_, op, v] = f.as_slice() {
                let v = v.parse::<u64>().unwrap_or(0);
                match *op {
                    "Read" => u.block_read += v,
                    "Write" => u.block_write += v,
                    _ => {}
                }
            }
        }
    }
    u
}
