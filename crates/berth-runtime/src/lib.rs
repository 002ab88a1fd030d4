//! Running containers: OCI runtime spec generation, rootfs mounts, the embedded
//! libcontainer runtime and supervisor.
//!
//! See `docs/dev/runtime.md` for the contract (threading, hidden entry points).

pub mod cgroup;
pub mod config;
pub mod emulation;
pub mod error;
mod etc;
mod executor;
mod external;
pub mod health;
mod helper;
mod hidden;
pub mod io;
pub mod net;
pub mod private;
pub mod rootfs;
pub mod run;
pub mod seccomp;
pub mod spec;
pub mod supervisor;
pub mod user;
pub mod util;

pub use config::*;
pub use error::{Error, Result};
pub use helper::run_in_helper;
pub use hidden::{HEALTH_ARG, HOOK_ARG, RUN_ARG, SUPERVISOR_ARG, hidden_main};
pub use io::Stream;
pub use rootfs::{LayerStack, MountedRootfs, RootfsMode, RootfsSource, mount_rootfs};
pub use run::{Backend, RunObserver, RunOutcome, RuntimeOptions, Stdio, run};
pub use user::{ExecUser, resolve_user};

pub mod containers;
pub mod exec;
pub mod logs;
pub mod state;

pub use containers::{ContainerInfo, Containers, parse_signal};
pub use exec::{ExecConfig, exec_in};
pub use logs::{LogEntry, LogOptions};
pub use state::{ContainerState, Health, HealthLogEntry, Status};
