//! Everything berth prints that has a defined shape: Docker's `--format` templates and tables,
//! human units, and progress displays (pull/push per-layer lines, BuildKit-style build output).
//!
//! - [`template`]: Go `text/template` with docker/cli's functions ([`Template`]).
//! - [`format`]: list commands' `table`/`json`/template output ([`write_list`], [`ListFormatter`])
//!   and inspect output ([`write_inspect`]).
//! - [`tabwriter`]: Go's `text/tabwriter` as docker/cli configures it.
//! - [`units`]: go-units sizes and durations, Go time and duration strings.
//! - [`term`]: terminal detection, width, colour policy.
//! - [`progress`]: pull/push and build progress renderers.
//!
//! See `docs/dev/output.md` for the design and the Docker behaviours reproduced.

pub mod format;
pub mod progress;
pub mod tabwriter;
pub mod template;
pub mod term;
pub mod units;

pub use format::{InspectError, ListFormat, ListFormatter, write_inspect, write_inspect_typed, write_list};
pub use progress::{BuildMode, BuildProgress, TransferProgress};
pub use template::{IMAGE_INSPECT_TYPES, NilKind, Template, TemplateError};
