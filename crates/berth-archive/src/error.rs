//! Typed errors. Every error that concerns a tar entry names the entry (as read from the archive,
//! lossily decoded) and the byte offset of its header in the uncompressed tar stream.

use std::io;
use std::path::PathBuf;

/// Errors from reading, applying or producing archives.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the (decompressed) archive stream failed, including decompression errors and
    /// truncated compressed input.
    #[error("reading archive at offset {offset}: {source}")]
    Read {
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// The archive ended in the middle of a header or of an entry's data.
    #[error("archive is truncated at offset {offset}: {what}")]
    Truncated { offset: u64, what: &'static str },
    /// A header or extended header that does not parse.
    #[error("malformed tar header at offset {offset}: {reason}")]
    Malformed { offset: u64, reason: String },
    /// A header is valid but describes something we do not handle.
    #[error("tar entry {path:?} at offset {offset}: unsupported: {what}")]
    Unsupported { path: String, offset: u64, what: String },
    /// An entry name or link target that would leave the target directory, or is otherwise unusable.
    #[error("tar entry {path:?} at offset {offset}: unsafe path: {reason}")]
    UnsafePath { path: String, offset: u64, reason: &'static str },
    /// The layer expands past a configured limit (a decompression or sparse-file bomb).
    #[error("tar entry {path:?} at offset {offset}: refused: {what}")]
    TooLarge { path: String, offset: u64, what: String },
    /// A filesystem operation for an entry failed while applying.
    #[error("tar entry {path:?} at offset {offset}: {op}: {source}")]
    Apply {
        path: String,
        offset: u64,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// Opening or preparing the target directory failed.
    #[error("target directory {path}: {op}: {source}")]
    Target {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// Reading a source file or directory while producing a layer failed.
    #[error("{path}: {op}: {source}")]
    Source {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// A source file changed size while it was being archived.
    #[error("{path}: file changed size while being archived (expected {expected} bytes, got {actual})")]
    SourceChanged { path: PathBuf, expected: u64, actual: u64 },
    /// An entry that cannot be written to a tar stream.
    #[error("cannot archive {path:?}: {reason}")]
    InvalidEntry { path: String, reason: String },
    /// Two entries with the same path were added to a layer.
    #[error("duplicate entry {path:?} in layer")]
    Duplicate { path: String },
    /// An overlayfs upper directory uses a feature a layer cannot express.
    #[error(
        "{path}: overlay feature not supported in layer diffs: {what} (hint: mount overlayfs with redirect_dir=off,metacopy=off,index=off)"
    )]
    OverlayFeature { path: PathBuf, what: String },
    /// Writing the output stream failed.
    #[error("writing archive: {0}")]
    Write(#[source] io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Lossy display form of a raw entry name, for error messages.
#[allow(dead_code)]
pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
