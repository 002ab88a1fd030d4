use std::path::{Path, PathBuf};

use berth_types::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("blob digest mismatch: expected {expected}, got {actual} ({size} bytes)")]
    DigestMismatch { expected: Digest, actual: Digest, size: u64 },
    #[error("blob {digest} has {actual} bytes, expected {expected}")]
    SizeMismatch { digest: Digest, expected: u64, actual: u64 },
    #[error("blob {0} is not in the store")]
    BlobUnknown(Digest),
    #[error("blob {digest} is {size} bytes, too large to read into memory (limit {limit})")]
    BlobTooLarge { digest: Digest, size: u64, limit: u64 },
    #[error("corrupt {what} in the store ({path}): {detail}; run 'berth system check'")]
    Corrupt { what: &'static str, path: PathBuf, detail: String },
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("ambiguous image ID prefix {0}: it matches several images")]
    Ambiguous(String),
    #[error(transparent)]
    Manifest(#[from] berth_types::ManifestError),
    #[error("invalid image config {digest}: {source}")]
    Config {
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io { path: path.to_path_buf(), source }
    }

    /// True when the error means "not found" (an unknown image or blob).
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NoSuchImage(_) | StoreError::BlobUnknown(_))
    }
}
