//! Generating the OCI runtime spec (`config.json`) from a [`ContainerConfig`], with
//! Docker's defaults: mounts, devices, capabilities, masked paths, seccomp, rlimits.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde_json::{Value, json};

use crate::config::{ContainerConfig, DEFAULT_PATH, MountSpec, NetworkMode, SeccompMode};
use crate::error::{Error, Result};
use crate::user::ExecUser;

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel knows (for `ALL` and `--privileged`).
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

fn normalize_cap(c: &str) -> String {
    let up = c.trim().to_ascii_uppercase();
    if up == "ALL" || up.starts_with("CAP_") { up } else { format!("CAP_{up}") }
}

/// Capabilities in our own bounding set (a container cannot get more; some hosts and
/// sandboxes drop e.g. CAP_SYS_RESOURCE). `ALL_CAPS` is in capability-number order.
pub fn host_caps() -> Vec<String> {
    let bnd = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("CapBnd:")).and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS.iter().enumerate().filter(|(i, _)| bnd & (1u64 << i) != 0).map(|(_, c)| c.to_string()).collect()
}

/// The effective capability list after Docker's `--cap-add`/`--cap-drop` rules
/// (drop is applied first, `ALL` allowed on either side; `--privileged` = all that the
/// host bounding set allows).
pub fn effective_caps(cfg: &ContainerConfig) -> Result<Vec<String>> {
    let host = host_caps();
    if cfg.privileged {
        return Ok(host);
    }
    let add: Vec<String> = cfg.cap_add.iter().map(|c| normalize_cap(c)).collect();
    let drop: Vec<String> = cfg.cap_drop.iter().map(|c| normalize_cap(c)).collect();
    for c in add.iter().chain(drop.iter()) {
        if c != "ALL" && !ALL_CAPS.contains(&c.as_str()) {
            return Err(Error::InvalidConfig(format!(
                "unknown capability: {c:?} (use names like NET_ADMIN or CAP_NET_ADMIN)"
            )));
        }
    }
    let mut caps: Vec<String> = if add.iter().any(|c| c == "ALL") {
        host.clone()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    if drop.iter().any(|c| c == "ALL") {
        caps.clear();
    } else {
        caps.retain(|c| !drop.contains(c));
    }
    for c in add {
        if c != "ALL" && !caps.contains(&c) {
            if !host.contains(&c) {
                return Err(Error::InvalidConfig(format!(
                    "cannot add capability {c}: berth itself does not hold it (not in its bounding set)"
                )));
            }
            caps.push(c);
        }
    }
    caps.retain(|c| host.contains(c));
    Ok(caps)
}

/// Files bind-mounted over /etc/resolv.conf, /etc/hosts and /etc/hostname.
#[derive(Debug, Clone)]
pub struct EtcFiles {
    pub resolv_conf: PathBuf,
    pub hosts: PathBuf,
    pub hostname: PathBuf,
}

/// Inputs of [`build_spec`] that are not in the high-level config.
/// Whether `/sys/fs/cgroup` is a cgroup2 filesystem (unified mode), as Docker decides.
// `f_type`'s integer type differs between architectures; the cast is needed on some.
#[allow(clippy::unnecessary_cast)]
pub fn cgroup_v2_unified() -> bool {
    rustix::fs::statfs("/sys/fs/cgroup").is_ok_and(|s| s.f_type as i64 == 0x6367_7270)
}

pub struct SpecInputs<'a> {
    pub id: &'a str,
    pub rootfs: &'a Path,
    pub user: &'a ExecUser,
    pub etc: &'a EtcFiles,
    /// cgroups path, e.g. `/berth/<id>`.
    pub cgroups_path: String,
    /// A network namespace to join (prepared by berth), instead of a new empty one or
    /// the host's.
    pub netns: Option<&'a Path>,
}

fn rlimit_name(n: &str) -> Option<&'static str> {
    Some(match n {
        "core" => "RLIMIT_CORE",
        "cpu" => "RLIMIT_CPU",
        "data" => "RLIMIT_DATA",
        "fsize" => "RLIMIT_FSIZE",
        "locks" => "RLIMIT_LOCKS",
        "memlock" => "RLIMIT_MEMLOCK",
        "msgqueue" => "RLIMIT_MSGQUEUE",
        "nice" => "RLIMIT_NICE",
        "nofile" => "RLIMIT_NOFILE",
        "nproc" => "RLIMIT_NPROC",
        "rss" => "RLIMIT_RSS",
        "rtprio" => "RLIMIT_RTPRIO",
        "rttime" => "RLIMIT_RTTIME",
        "sigpending" => "RLIMIT_SIGPENDING",
        "stack" => "RLIMIT_STACK",
        "as" => "RLIMIT_AS",
        _ => return None,
    })
}

fn host_nofile_hard() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map(|(_, h)| h).unwrap_or(1024)
}

/// Docker's environment: the given entries, `PATH` defaulted, `HOSTNAME`, `HOME`, `TERM`.
pub fn container_env(cfg: &ContainerConfig, hostname: &str, user: &ExecUser) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let has = |env: &[String], k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    if !has(&cfg.env, "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env.push(format!("HOSTNAME={hostname}"));
    if cfg.tty {
        env.push("TERM=xterm".into());
    }
    for e in &cfg.env {
        let k = e.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(k));
        env.push(e.clone());
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={}", user.home));
    }
    env
}

/// The hostname a container gets: the configured one or the id's first 12 characters.
pub fn hostname_for(cfg: &ContainerConfig, id: &str) -> String {
    match &cfg.hostname {
        Some(h) if !h.is_empty() => h.clone(),
        _ => id.chars().take(12).collect(),
    }
}

fn bind(dst: &str, src: &Path, ro: bool) -> Value {
    let mut opts = vec!["rbind", "rprivate"];
    if ro {
        opts.push("ro");
    }
    json!({"destination": dst, "type": "bind", "source": src, "options": opts})
}

/// Build the runtime spec. The result is what both libcontainer and runc consume.
pub fn build_spec(cfg: &ContainerConfig, inp: &SpecInputs<'_>) -> Result<Spec> {
    if cfg.args.is_empty() {
        return Err(Error::InvalidConfig("no command specified (the image has no CMD or ENTRYPOINT)".into()));
    }
    let caps = effective_caps(cfg)?;
    let hostname = hostname_for(cfg, inp.id);
    let env = container_env(cfg, &hostname, inp.user);
    let hard = host_nofile_hard();
    let nofile = hard.min(1_048_576);
    let mut rlimits: Vec<Value> = vec![json!({"type": "RLIMIT_NOFILE", "soft": nofile, "hard": nofile})];
    for u in &cfg.ulimits {
        let name =
            rlimit_name(&u.name).ok_or_else(|| Error::InvalidConfig(format!("invalid ulimit name {:?}", u.name)))?;
        let (mut soft, mut h) = (u.soft, u.hard.max(u.soft));
        if name == "RLIMIT_NOFILE" {
            // Never ask for more than the host allows: the kernel would refuse it.
            h = h.min(hard);
            soft = soft.min(h);
        }
        rlimits.retain(|r| r["type"] != name);
        rlimits.push(json!({"type": name, "soft": soft, "hard": h}));
    }
    let cwd = cfg.working_dir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(Error::InvalidConfig(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }

    let mut process = json!({
        "terminal": cfg.tty,
        "user": {"uid": inp.user.uid, "gid": inp.user.gid},
        "args": cfg.args,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": rlimits,
    });
    // Only when set: libcontainer treats a present `false` like `true` when ordering the
    // seccomp load, and would then load the filter after dropping CAP_SYS_ADMIN (EACCES).
    if cfg.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    if !inp.user.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(inp.user.additional_gids);
    }

    let shm = cfg.shm_size.unwrap_or(64 * 1024 * 1024);
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if cfg.privileged {"rw"} else {"ro"}]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if cfg.privileged {"rw"} else {"ro"}]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
    ];
    let user_targets: Vec<String> = cfg
        .mounts
        .iter()
        .map(|m| match m {
            MountSpec::Bind { target, .. } | MountSpec::Tmpfs { target, .. } => target.clone(),
        })
        .collect();
    for (dst, src) in [
        ("/etc/resolv.conf", &inp.etc.resolv_conf),
        ("/etc/hostname", &inp.etc.hostname),
        ("/etc/hosts", &inp.etc.hosts),
    ] {
        if !user_targets.iter().any(|t| t == dst) {
            mounts.push(bind(dst, src, false));
        }
    }
    for m in &cfg.mounts {
        match m {
            MountSpec::Bind { source, target, readonly } => {
                if !target.starts_with('/') {
                    return Err(Error::InvalidConfig(format!(
                        "invalid mount target {target:?}: must be an absolute path"
                    )));
                }
                if !source.exists() {
                    return Err(Error::InvalidConfig(format!(
                        "invalid mount config: bind source path does not exist: {}",
                        source.display()
                    )));
                }
                mounts.push(bind(target, source, *readonly));
            }
            MountSpec::Tmpfs { target, size, mode } => {
                let mut opts = vec!["nosuid".to_string(), "nodev".to_string(), "noexec".into()];
                if let Some(s) = size {
                    opts.push(format!("size={s}"));
                }
                opts.push(format!("mode={:o}", mode.unwrap_or(0o1777)));
                mounts.push(json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": opts}));
            }
        }
    }

    let mut namespaces =
        vec![json!({"type": "pid"}), json!({"type": "ipc"}), json!({"type": "uts"}), json!({"type": "mount"})];
    if let Some(p) = inp.netns {
        namespaces.push(json!({"type": "network", "path": p}));
    } else if cfg.network == NetworkMode::None {
        namespaces.push(json!({"type": "network"}));
    }
    // Docker's default cgroup namespace mode: private on a cgroup v2 (unified) host, the
    // host's on a v1 or hybrid host (cgroup namespaces do not virtualise v1 hierarchies well).
    if cgroup_v2_unified() {
        namespaces.push(json!({"type": "cgroup"}));
    }

    let mut resources = json!({});
    if cfg.privileged {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
    } else {
        let mut devs = vec![json!({"allow": false, "access": "rwm"})];
        for (t, maj, min, acc) in [
            ("c", None, None, "m"),
            ("b", None, None, "m"),
            ("c", Some(1), Some(3), "rwm"),
            ("c", Some(1), Some(8), "rwm"),
            ("c", Some(1), Some(7), "rwm"),
            ("c", Some(5), Some(0), "rwm"),
            ("c", Some(1), Some(5), "rwm"),
            ("c", Some(1), Some(9), "rwm"),
            ("c", Some(5), Some(1), "rwm"),
            ("c", Some(136), None, "rwm"),
            ("c", Some(5), Some(2), "rwm"),
            ("c", Some(10), Some(200), "rwm"),
        ] {
            let mut d = json!({"allow": true, "type": t, "access": acc});
            if let Some(m) = maj {
                d["major"] = json!(m);
            }
            if let Some(m) = min {
                d["minor"] = json!(m);
            }
            devs.push(d);
        }
        resources["devices"] = json!(devs);
    }
    if let Some(m) = cfg.memory {
        resources["memory"] = json!({"limit": m});
    }
    if let Some(sw) = cfg.memory_swap {
        resources["memory"]["swap"] = json!(sw);
    }
    let mut cpu = serde_json::Map::new();
    if let Some(s) = cfg.cpu_shares {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(q) = cfg.cpu_quota {
        cpu.insert("quota".into(), json!(q));
    }
    if let Some(p) = cfg.cpu_period {
        cpu.insert("period".into(), json!(p));
    }
    if let Some(c) = &cfg.cpuset_cpus {
        cpu.insert("cpus".into(), json!(c));
    }
    if !cpu.is_empty() {
        resources["cpu"] = serde_json::Value::Object(cpu);
    }
    if let Some(p) = cfg.pids_limit {
        resources["pids"] = json!({"limit": p});
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": inp.cgroups_path,
    });
    if !cfg.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        match &cfg.seccomp {
            SeccompMode::Default => {
                let entry = cfg.args.first().and_then(|a| {
                    let path = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
                    crate::executor::lookup(a, path, inp.rootfs)
                        .ok()
                        .map(|p| crate::util::resolve_in_root(inp.rootfs, &p))
                });
                let compat = crate::seccomp::needs_compat32(inp.rootfs, entry.as_deref());
                linux["seccomp"] = crate::seccomp::default_profile(&caps, compat);
            }
            SeccompMode::Unconfined => {}
            SeccompMode::Profile(p) => {
                let raw = std::fs::read(p).map_err(|e| Error::io("read seccomp profile", p, e))?;
                let v: Value = serde_json::from_slice(&raw).map_err(|e| Error::Json { path: p.clone(), source: e })?;
                linux["seccomp"] = crate::seccomp::from_docker_profile(&v, &caps);
            }
        }
    } else {
        linux["devices"] = json!(host_devices());
    }
    if !cfg.sysctls.is_empty() {
        let m: serde_json::Map<String, Value> = cfg.sysctls.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        linux["sysctl"] = Value::Object(m);
    }

    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": inp.rootfs, "readonly": cfg.read_only},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
    });
    if let Some(d) = &cfg.domainname {
        spec["domainname"] = json!(d);
    }
    if !cfg.annotations.is_empty() {
        let m: serde_json::Map<String, Value> = cfg.annotations.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        spec["annotations"] = Value::Object(m);
    }
    serde_json::from_value(spec).map_err(|e| Error::Spec(e.to_string()))
}

/// Host devices for `--privileged` (all char/block devices under /dev, not recursive
/// into /dev/pts).
fn host_devices() -> Vec<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let ft = md.file_type();
            if ft.is_dir() {
                if !matches!(p.to_str(), Some("/dev/pts" | "/dev/shm" | "/dev/mqueue")) {
                    stack.push(p);
                }
                continue;
            }
            let kind = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else {
                continue;
            };
            if matches!(p.to_str(), Some("/dev/console" | "/dev/ptmx" | "/dev/tty")) {
                continue;
            }
            let rdev = md.rdev();
            out.push(json!({
                "path": p, "type": kind,
                "major": nix::sys::stat::major(rdev), "minor": nix::sys::stat::minor(rdev),
                "fileMode": md.mode() & 0o7777, "uid": md.uid(), "gid": md.gid(),
            }));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;

    fn user() -> ExecUser {
        ExecUser { uid: 0, gid: 0, additional_gids: vec![], home: "/root".into() }
    }

    #[test]
    fn caps_rules() {
        let mut c = ContainerConfig::default();
        assert_eq!(effective_caps(&c).unwrap().len(), DEFAULT_CAPS.len());
        c.cap_drop = vec!["chown".into()];
        c.cap_add = vec!["NET_ADMIN".into()];
        let caps = effective_caps(&c).unwrap();
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        c.cap_drop = vec!["ALL".into()];
        c.cap_add = vec!["CAP_KILL".into()];
        assert_eq!(effective_caps(&c).unwrap(), vec!["CAP_KILL".to_string()]);
        c.cap_add = vec!["BOGUS".into()];
        assert!(effective_caps(&c).is_err());
    }

    #[test]
    fn env_defaults() {
        let mut c = ContainerConfig::default();
        c.env = vec!["FOO=1".into(), "HOME=/x".into()];
        let e = container_env(&c, "h", &user());
        assert!(e.contains(&format!("PATH={DEFAULT_PATH}")));
        assert!(e.contains(&"HOSTNAME=h".to_string()));
        assert!(e.contains(&"HOME=/x".to_string()));
        c.env = vec!["PATH=/bin".into()];
        let e = container_env(&c, "h", &user());
        assert!(e.contains(&"HOME=/root".to_string()));
        assert_eq!(e.iter().filter(|x| x.starts_with("PATH=")).count(), 1);
    }

    #[test]
    fn spec_parses() {
        let mut c = ContainerConfig::default();
        c.args = vec!["true".into()];
        c.memory = Some(64 << 20);
        c.pids_limit = Some(20);
        c.ulimits = vec![crate::config::Ulimit { name: "nofile".into(), soft: 10_000_000, hard: 10_000_000 }];
        c.mounts = vec![MountSpec::Tmpfs { target: "/t".into(), size: Some(1 << 20), mode: Some(0o700) }];
        let etc = EtcFiles { resolv_conf: "/r".into(), hosts: "/h".into(), hostname: "/n".into() };
        let s = build_spec(
            &c,
            &SpecInputs {
                id: "abcdefabcdef0000",
                rootfs: Path::new("/tmp/rootfs"),
                user: &user(),
                etc: &etc,
                cgroups_path: "/berth/x".into(),
                netns: None,
            },
        )
        .unwrap();
        assert_eq!(s.hostname().as_deref(), Some("abcdefabcdef"));
        let rl = s.process().as_ref().unwrap().rlimits().clone().unwrap();
        let hard = host_nofile_hard();
        assert!(rl.iter().all(|r| r.hard() <= hard));
        assert!(s.linux().as_ref().unwrap().seccomp().is_some());
    }
}

#[cfg(test)]
mod cgroupns_tests {
    #[test]
    fn cgroup_mode_is_detected_like_docker() {
        // This test host may be v1, hybrid or v2: compare with what the filesystem type says.
        let out = std::process::Command::new("stat").args(["-fc", "%T", "/sys/fs/cgroup"]).output().unwrap();
        let t = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(super::cgroup_v2_unified(), t == "cgroup2fs", "stat says {t}");
    }
}
