//! The Dockerfile frontend: parser, shell-word expansion, typed instructions,
//! stages and ARGs, .dockerignore, lints.
//!
//! BuildKit (moby/buildkit `frontend/dockerfile`, moby/patternmatcher,
//! tonistiigi/fsutil) is the reference for every behaviour and message.
//! See `docs/dev/dockerfile-frontend.md` for the API overview and the
//! conformance status.

pub mod dockerignore;
pub mod error;
pub mod instructions;
pub mod lint;
pub mod parser;
pub mod plan;
pub mod render;
pub mod shell;
mod util;

pub use error::{Error, LineRange, Result};
pub use parser::{Dockerfile, Heredoc, Node, dump_ast, parse, parse_trigger};
pub use shell::{Env, Lexer, NoEnv, Processed, ShellError};
pub use util::{clean_path, go_quote, suggest};
