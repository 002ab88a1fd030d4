//! Typed errors for the runtime crate.

use std::path::PathBuf;

/// Errors returned by berth-runtime. Every variant names the object it failed on.
///
/// The CLI maps any `Error` to exit status 125 (berth's own failure), except
/// [`Error::CommandNotFound`] (127) and [`Error::CommandNotExecutable`] (126), which
/// mirror Docker's codes for a command that cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("mount {kind} on {target}: {source}{hint}")]
    Mount {
        kind: &'static str,
        target: PathBuf,
        #[source]
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("unable to find user {user}: no matching entries in passwd file")]
    UserNotFound { user: String },
    #[error("unable to find group {group}: no matching entries in group file")]
    GroupNotFound { group: String },
    #[error("{message}")]
    CommandNotFound { message: String },
    #[error("{message}")]
    CommandNotExecutable { message: String },
    #[error("generate runtime spec: {0}")]
    Spec(String),
    #[error("container runtime (libcontainer) for {id}: {message}")]
    Libcontainer { id: String, message: String },
    #[error("external runtime {runtime}: {message}")]
    External { runtime: PathBuf, message: String },
    #[error("no such container: {id}")]
    NoSuchContainer { id: String },
    #[error("container {id} is {state}: {hint}")]
    WrongState { id: String, state: String, hint: &'static str },
    #[error("container {id} already exists")]
    AlreadyExists { id: String },
    #[error("parse {path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("unknown signal {0:?}")]
    BadSignal(String),
    #[error("network: {what}: {message}")]
    Network { what: String, message: String },
    #[error("supervisor for {id} failed to start the container: {message}")]
    Supervisor { id: String, message: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }
    pub(crate) fn sys(op: &'static str, source: nix::Error) -> Self {
        Error::Sys { op, source }
    }

    /// Exit status Docker uses for this error when it prevents a container command from
    /// running: 127 (not found), 126 (cannot be invoked), else 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::CommandNotFound { .. } => 127,
            Error::CommandNotExecutable { .. } => 126,
            _ => 125,
        }
    }
}

/// Shorthand for mapping an `io::Error` with an operation and path.
pub(crate) trait IoCtx<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoCtx<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}
