//! Running containers: OCI runtime spec generation, rootfs mounts, the embedded
//! libcontainer runtime and supervisor.
//!
//! See `docs/dev/runtime.md` for the contract (threading, hidden entry points).

pub mod config;
pub mod error;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod user;
pub mod util;

pub use config::*;
pub use error::{Error, Result};
pub use rootfs::{LayerStack, MountedRootfs, RootfsMode, RootfsSource, mount_rootfs};
pub use user::{ExecUser, resolve_user};
