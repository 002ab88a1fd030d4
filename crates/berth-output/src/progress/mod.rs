//! Progress displays.
//!
//! - [`transfer`]: `docker pull`/`docker push` per-layer progress ([`TransferProgress`]).
//! - [`build`]: BuildKit-style build progress ([`BuildProgress`]) in plain, tty, rawjson and
//!   quiet modes.
//!
//! Both are handles that are cheap to clone and safe to use from many threads; neither fails the
//! operation it reports on when its output cannot be written.

pub mod build;
pub mod transfer;

pub use build::{BuildMode, BuildModeError, BuildOptions, BuildProgress, LogStream};
pub use transfer::{Action, LayerProgress, LayerStatus, TransferMode, TransferOptions, TransferProgress, short_id};
