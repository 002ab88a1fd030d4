//! Container records on disk (podman/conmon style, no daemon):
//!
//! ```text
//! <root>/containers/<id>/
//!     config.json   ContainerRecord (config + runtime options), written once at create
//!     state.json    ContainerState (Docker's State shape), replaced atomically
//!     json.log      Docker json-file log lines
//!     lock          flock(2) target: one writer per container at a time
//! ```
//! Writers take the container lock, read, modify, and replace state.json atomically
//! (temp + fsync + rename). Readers never lock: they always see a whole file.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::ContainerConfig;
use crate::error::{Error, IoCtx, Result};
use crate::run::RuntimeOptions;
use crate::util::atomic_write;

/// What `create` stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerRecord {
    pub id: String,
    pub name: Option<String>,
    /// RFC 3339.
    pub created: String,
    pub config: ContainerConfig,
    pub runtime: RuntimeOptions,
}

/// Lifecycle status, as Docker names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

/// One health probe result (Docker keeps the last 5).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthLogEntry {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// Docker's `State.Health`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthLogEntry>,
}

/// Docker's `State`, plus what berth needs to find the container again.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub health: Option<Health>,
    /// pid of the supervisor holding the container's stdio (0 when attached/none).
    pub supervisor_pid: i32,
    /// Start time of `pid` (field 22 of `/proc/PID/stat`): with the pid it names one process,
    /// so a pid reused after the container died is never taken for it (0: unknown, older
    /// records).
    pub pid_start: u64,
    /// Start time of `supervisor_pid`, likewise.
    pub supervisor_pid_start: u64,
    /// The rootfs path while running (for `exec -u` lookups).
    pub rootfs: Option<PathBuf>,
    /// The container's network while running (bridge networks): address, gateway and
    /// published ports, as `inspect`, `port` and `ps` show them.
    pub network: Option<crate::net::NetState>,
    /// Times the supervisor restarted the container under its restart policy.
    pub restart_count: u32,
    /// Set by `stop`/`kill` from the user: the restart policy does not apply to this exit.
    pub manually_stopped: bool,
}

impl ContainerState {
    /// Whether the container's main process still runs (the same process, not a reuse of
    /// its pid).
    pub fn main_alive(&self) -> bool {
        crate::util::pid_alive(self.pid) && crate::private::same_process(self.pid, self.pid_start)
    }

    /// Whether the supervisor still runs (same rule).
    pub fn supervisor_alive(&self) -> bool {
        crate::util::pid_alive(self.supervisor_pid)
            && crate::private::same_process(self.supervisor_pid, self.supervisor_pid_start)
    }
}

pub(crate) const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Exclusive per-container lock, released on drop.
pub struct ContainerLock {
    _file: File,
}

/// Paths of one container's record.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    pub dir: PathBuf,
}

impl ContainerDir {
    pub fn new(root: &Path, id: &str) -> Self {
        ContainerDir { dir: root.join("containers").join(id) }
    }
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("json.log")
    }
    pub fn exists(&self) -> bool {
        self.config_path().exists()
    }

    pub fn lock(&self) -> Result<ContainerLock> {
        self.lock_file("lock")
    }

    /// Serializes `start` of one container across processes (held while a supervisor is
    /// being started; independent of the state lock, which the supervisor needs).
    pub fn start_lock(&self) -> Result<ContainerLock> {
        self.lock_file("start.lock")
    }

    fn lock_file(&self, name: &str) -> Result<ContainerLock> {
        let p = self.dir.join(name);
        let f = OpenOptions::new().create(true).truncate(false).write(true).open(&p).ctx("open lock", &p)?;
        f.lock().ctx("lock", &p)?;
        Ok(ContainerLock { _file: f })
    }

    pub fn read_record(&self) -> Result<ContainerRecord> {
        read_json(&self.config_path())
    }

    pub fn read_state(&self) -> Result<ContainerState> {
        match fs::read(self.state_path()) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(ContainerState { finished_at: ZERO_TIME.into(), started_at: ZERO_TIME.into(), ..Default::default() })
            }
            Err(e) => Err(Error::io("read", self.state_path(), e)),
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Json { path: self.state_path(), source: e }),
        }
    }

    /// Write state.json atomically. Callers hold [`ContainerDir::lock`].
    pub fn write_state(&self, st: &ContainerState) -> Result<()> {
        let data = serde_json::to_vec_pretty(st).map_err(|e| Error::Json { path: self.state_path(), source: e })?;
        atomic_write(&self.state_path(), &data, 0o644)
    }

    /// Lock, read, modify, write.
    pub fn update_state(&self, f: impl FnOnce(&mut ContainerState)) -> Result<ContainerState> {
        let _l = self.lock()?;
        let mut st = self.read_state()?;
        f(&mut st);
        self.write_state(&st)?;
        Ok(st)
    }
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T> {
    let b = fs::read(p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NoSuchContainer {
                id: p
                    .parent()
                    .and_then(|d| d.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            }
        } else {
            Error::io("read", p, e)
        }
    })?;
    serde_json::from_slice(&b).map_err(|e| Error::Json { path: p.to_path_buf(), source: e })
}
