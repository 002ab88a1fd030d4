//! The Dockerfile frontend: parser, shell-word expansion, typed instructions,
//! stages and ARGs, .dockerignore, lints.
//!
//! BuildKit (moby/buildkit `frontend/dockerfile`, moby/patternmatcher,
//! tonistiigi/fsutil) is the reference for every behaviour and message.
//! See `docs/dev/dockerfile-frontend.md` for the API overview and the
//! conformance status.
//!
//! Typical use by the builder:
//!
//! ```
//! use berth_dockerfile::{plan, PlanOptions};
//! let p = plan(b"FROM alpine AS b\nRUN make\nFROM scratch\nCOPY --from=b /out /\n", &PlanOptions::default())?;
//! assert_eq!(p.stages.len(), 2);
//! # Ok::<(), berth_dockerfile::Error>(())
//! ```
//!
//! Nothing here panics on bad input; every function is pure except the
//! `.dockerignore` loader and context walker, which read the file system.

pub mod dockerignore;
pub mod error;
pub mod instructions;
pub mod lint;
pub mod outline;
pub mod parser;
pub mod plan;
pub mod render;
pub mod shell;
mod util;

pub use dockerignore::{
    Control, EntryKind, Filter, IgnoreFile, PatternError, PatternMatcher, WalkEntry, WalkError, list_context,
    load_ignore_file, read_ignore_file, walk_filtered,
};
pub use error::{Error, LineRange, Result};
pub use instructions::{Command, Instruction, Mount, parse_instruction};
pub use lint::{CheckConfig, LintOptions, LintReport, LintWarning, format_lint, lint};
pub use outline::{Outline, Target, format_outline, format_targets, outline, targets};
pub use parser::{Dockerfile, Heredoc, Node, dump_ast, parse, parse_trigger};
pub use plan::{Base, Plan, PlanOptions, PlannedStage, Platform, Source, Step, VarKind, parse_dockerfile, plan};
pub use render::{render_error, render_source};
pub use shell::{Env, Lexer, NoEnv, Processed, ShellError};
pub use util::{clean_path, go_quote, suggest};
