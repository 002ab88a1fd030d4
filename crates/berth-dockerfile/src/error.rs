//! Typed errors of the frontend. Every error that comes from a Dockerfile
//! carries the 1-based, inclusive line range of the offending instruction,
//! which [`crate::render::render_error`] uses to print BuildKit-style context.

use serde::Serialize;

/// A 1-based inclusive range of physical lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct LineRange {
    pub start: usize,
    pub end: usize,
}

impl LineRange {
    pub fn new(start: usize, end: usize) -> Self {
        LineRange { start, end: end.max(start) }
    }
    pub fn line(l: usize) -> Self {
        LineRange { start: l, end: l }
    }
}

/// Errors from parsing, validating or resolving a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Low-level syntax: directives, JSON arrays, heredocs, ENV/LABEL form,
    /// a file with no instructions.
    #[error("{message}")]
    Parse { message: String, range: Option<LineRange> },
    /// An instruction keyword BuildKit does not know.
    #[error("{message}")]
    UnknownInstruction { instruction: String, message: String, range: LineRange },
    /// Wrong arguments for a known instruction.
    #[error("{message}")]
    Instruction { instruction: String, message: String, range: LineRange },
    /// Unknown, repeated or malformed `--flag`.
    #[error("{message}")]
    Flag { instruction: String, message: String, range: LineRange },
    /// Variable expansion failed (`${X:?msg}`, bad substitution).
    #[error("{message}")]
    Expand { message: String, range: LineRange },
    /// Stages: unknown target, stage used before definition, cycles,
    /// no stages.
    #[error("{message}")]
    Stage { message: String, range: Option<LineRange> },
    /// `check=error=true` turned lint warnings into a failure.
    #[error("{message}")]
    Lint { message: String },
}

impl Error {
    /// The Dockerfile lines the error refers to, if any.
    pub fn range(&self) -> Option<LineRange> {
        match self {
            Error::Parse { range, .. } | Error::Stage { range, .. } => *range,
            Error::UnknownInstruction { range, .. }
            | Error::Instruction { range, .. }
            | Error::Flag { range, .. }
            | Error::Expand { range, .. } => Some(*range),
            Error::Lint { .. } => None,
        }
    }

    /// The message without location.
    pub fn message(&self) -> &str {
        match self {
            Error::Parse { message, .. }
            | Error::UnknownInstruction { message, .. }
            | Error::Instruction { message, .. }
            | Error::Flag { message, .. }
            | Error::Expand { message, .. }
            | Error::Stage { message, .. }
            | Error::Lint { message } => message,
        }
    }

    pub(crate) fn parse(message: impl Into<String>, range: Option<LineRange>) -> Self {
        Error::Parse { message: message.into(), range }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
