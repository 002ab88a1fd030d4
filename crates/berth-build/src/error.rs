use std::path::PathBuf;

use berth_dockerfile::LineRange;

/// A build failure. Errors tied to a Dockerfile instruction carry its line range so the CLI can
/// print the offending lines as BuildKit does.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Dockerfile(#[from] berth_dockerfile::Error),
    #[error("{message}")]
    Step { message: String, range: Option<LineRange>, vertex: Option<String> },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    #[error(transparent)]
    Archive(#[from] berth_archive::Error),
    #[error(transparent)]
    Runtime(#[from] berth_runtime::Error),
    #[error("{0}")]
    Other(String),
    #[error("build canceled")]
    Canceled,
}

impl BuildError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> BuildError {
        BuildError::Io { path: path.into(), source }
    }

    pub(crate) fn step(message: impl Into<String>, range: &LineRange) -> BuildError {
        BuildError::Step { message: message.into(), range: Some(*range), vertex: None }
    }

    /// The Dockerfile lines this error is about, if any.
    pub fn range(&self) -> Option<LineRange> {
        match self {
            BuildError::Step { range, .. } => *range,
            BuildError::Dockerfile(e) => e.range(),
            _ => None,
        }
    }
}

pub type Result<T, E = BuildError> = std::result::Result<T, E>;
