//! High-level, Docker-shaped container configuration (the input of this crate).
//! Everything is plain data and serializable: the same struct is stored in a
//! container's record and handed to the supervisor.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::rootfs::RootfsSource;

/// One container's configuration, as `docker run` flags plus image config fields.
/// The caller merges the image config (Env, WorkingDir, User, Entrypoint+Cmd, StopSignal,
/// Healthcheck) into this before calling.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerConfig {
    /// The container's root filesystem.
    pub rootfs: RootfsSource,
    /// Command and arguments (entrypoint + cmd). Must not be empty.
    pub args: Vec<String>,
    /// `KEY=value` entries. `PATH` defaults to Docker's when missing, `HOSTNAME` and
    /// `HOME` are added as Docker does, `TERM=xterm` with `tty`.
    pub env: Vec<String>,
    /// Working directory inside the container; created (root-owned, 0755) if missing.
    pub working_dir: Option<String>,
    /// `--user`: `name`, `uid`, `uid:gid`, `name:group`… resolved in the rootfs.
    pub user: Option<String>,
    /// `--group-add`.
    pub group_add: Vec<String>,
    /// Hostname; defaults to the first 12 characters of the container id.
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub mounts: Vec<MountSpec>,
    pub network: NetworkMode,
    /// `-p`/`-P`: ports published from the host to the container (bridge networks only).
    pub publish: Vec<crate::net::PortMapping>,
    /// `--network-alias`: extra names the container has on a user-defined network.
    pub network_aliases: Vec<String>,
    /// `--ip`: the container's address on a user-defined network.
    pub ip: Option<String>,
    /// The container's name (without `/`), used for name resolution on user networks.
    pub name: Option<String>,
    /// DNS settings written to the container's /etc/resolv.conf (private network only).
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--add-host name:ip` entries for /etc/hosts.
    pub extra_hosts: Vec<(String, String)>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    /// `--read-only`: the root filesystem is mounted read-only.
    pub read_only: bool,
    /// `--memory` in bytes.
    pub memory: Option<i64>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--ulimit`; values above the host's hard limit are clamped to it.
    pub ulimits: Vec<Ulimit>,
    /// `--shm-size` in bytes (default 64 MiB).
    pub shm_size: Option<u64>,
    pub seccomp: SeccompMode,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--init`: run a minimal reaper as PID 1.
    pub init: bool,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub interactive: bool,
    /// `STOPSIGNAL` / `--stop-signal` (name or number); default SIGTERM.
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds; default 10.
    pub stop_timeout: Option<u64>,
    pub healthcheck: Option<HealthConfig>,
    /// `--sysctl`.
    pub sysctls: Vec<(String, String)>,
    /// `--rm` for detached containers: the supervisor removes the record after the exit.
    /// (Foreground callers remove it themselves.)
    pub auto_remove: bool,
    /// Free-form annotations stored in the spec.
    pub annotations: Vec<(String, String)>,
    /// `--restart`: what the supervisor does when the container exits.
    pub restart_policy: RestartPolicy,
    /// `--cpu-shares` (relative weight, cgroup v1 shares).
    pub cpu_shares: Option<u64>,
    /// `--cpus`: CFS quota and period in microseconds.
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    /// `--cpuset-cpus` (`0-3`, `0,1`).
    pub cpuset_cpus: Option<String>,
    /// `--memory-swap` in bytes (memory plus swap; -1 unlimited).
    pub memory_swap: Option<i64>,
}

/// Docker's restart policies.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// `no` (or empty), `always`, `unless-stopped`, `on-failure`.
    pub name: String,
    /// `on-failure:N`: at most N restarts (0: no limit).
    pub maximum_retry_count: u32,
}

impl RestartPolicy {
    /// Whether a container that exited with `code` after `restarts` restarts should run
    /// again (a stop or kill by the user is excluded by the caller).
    pub fn should_restart(&self, code: i32, restarts: u32) -> bool {
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => code != 0 && (self.maximum_retry_count == 0 || restarts < self.maximum_retry_count),
            _ => false,
        }
    }
}

impl Default for ContainerConfig {
    fn default() -> Self {
        ContainerConfig {
            rootfs: RootfsSource::Path(PathBuf::new()),
            args: Vec::new(),
            env: Vec::new(),
            working_dir: None,
            user: None,
            group_add: Vec::new(),
            hostname: None,
            domainname: None,
            mounts: Vec::new(),
            network: NetworkMode::default(),
            publish: Vec::new(),
            network_aliases: Vec::new(),
            ip: None,
            name: None,
            dns: Vec::new(),
            dns_search: Vec::new(),
            dns_options: Vec::new(),
            extra_hosts: Vec::new(),
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            privileged: false,
            read_only: false,
            memory: None,
            pids_limit: None,
            ulimits: Vec::new(),
            shm_size: None,
            seccomp: SeccompMode::default(),
            no_new_privileges: false,
            init: false,
            tty: false,
            interactive: false,
            stop_signal: None,
            stop_timeout: None,
            healthcheck: None,
            sysctls: Vec::new(),
            auto_remove: false,
            annotations: Vec::new(),
            restart_policy: RestartPolicy::default(),
            cpu_shares: None,
            cpu_quota: None,
            cpu_period: None,
            cpuset_cpus: None,
            memory_swap: None,
        }
    }
}

/// `--network`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Share the host's network namespace; /etc/resolv.conf is the host's.
    #[default]
    Host,
    /// A private network namespace with only loopback (up), like `--network none`.
    None,
    /// A private network namespace attached to a bridge in the berth netns (see
    /// [`crate::net`]): the default `bridge` network or a user-defined one.
    Bridge(crate::net::NetworkSpec),
    /// `container:ID`: share the network namespace of another container (resolved to
    /// [`NetworkMode::Netns`] by [`crate::Containers`] when the container starts).
    Container(String),
    /// Join an existing network namespace (a path such as `/proc/PID/ns/net`).
    Netns(PathBuf),
}

impl NetworkMode {
    /// Docker's `HostConfig.NetworkMode` spelling.
    pub fn docker_name(&self) -> String {
        match self {
            NetworkMode::Host => "host".into(),
            NetworkMode::None => "none".into(),
            NetworkMode::Bridge(n) => n.name.clone(),
            NetworkMode::Container(id) => format!("container:{id}"),
            NetworkMode::Netns(p) => format!("ns:{}", p.display()),
        }
    }
    /// Whether the container gets a network namespace of its own (not the host's, not
    /// another container's).
    pub fn is_private(&self) -> bool {
        matches!(self, NetworkMode::None | NetworkMode::Bridge(_))
    }
}

/// A mount added to the container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum MountSpec {
    /// Bind mount of a host file or directory (`-v /src:/dst[:ro]`, `--mount type=bind`,
    /// or a build cache directory). The source must exist.
    Bind {
        source: PathBuf,
        target: String,
        #[serde(default)]
        readonly: bool,
    },
    /// `--tmpfs /dst[:size=…,mode=…]`.
    Tmpfs {
        target: String,
        #[serde(default)]
        size: Option<u64>,
        #[serde(default)]
        mode: Option<u32>,
    },
}

/// `--ulimit name=soft[:hard]`; name as Docker spells it (`nofile`, `nproc`, `core`…).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// Seccomp confinement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SeccompMode {
    /// Docker's default profile (allow-list; see `seccomp.rs`).
    #[default]
    Default,
    /// `--security-opt seccomp=unconfined`.
    Unconfined,
    /// A Docker-format JSON profile file.
    Profile(PathBuf),
}

/// HEALTHCHECK settings (durations in nanoseconds, as in the image config).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `["CMD", args…]`, `["CMD-SHELL", "cmd"]` or `["NONE"]`.
    pub test: Vec<String>,
    pub interval: u64,
    pub timeout: u64,
    pub start_period: u64,
    pub start_interval: u64,
    pub retries: u32,
}

impl HealthConfig {
    pub(crate) fn interval_ns(&self) -> u64 {
        if self.interval == 0 { 30_000_000_000 } else { self.interval }
    }
    pub(crate) fn timeout_ns(&self) -> u64 {
        if self.timeout == 0 { 30_000_000_000 } else { self.timeout }
    }
    pub(crate) fn start_interval_ns(&self) -> u64 {
        if self.start_interval == 0 { 5_000_000_000 } else { self.start_interval }
    }
    pub(crate) fn retries_n(&self) -> u32 {
        if self.retries == 0 { 3 } else { self.retries }
    }
    /// The command to run for the probe, or `None` for `NONE`/empty.
    pub(crate) fn command(&self) -> Option<Vec<String>> {
        match self.test.first().map(String::as_str) {
            Some("CMD") => Some(self.test.get(1..).unwrap_or_default().to_vec()),
            Some("CMD-SHELL") => {
                Some(vec!["/bin/sh".into(), "-c".into(), self.test.get(1..).unwrap_or_default().join(" ")])
            }
            _ => None,
        }
    }
}

/// Docker's default PATH.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
