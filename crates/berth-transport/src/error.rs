use std::path::PathBuf;

use berth_types::Digest;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid image location {input:?}: {reason}")]
    BadEndpoint { input: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Stream {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    #[error(transparent)]
    Manifest(#[from] berth_types::ManifestError),
    #[error(transparent)]
    Archive(#[from] berth_archive::Error),
    #[error("{what} in {path}: {detail}")]
    BadArchive { what: &'static str, path: PathBuf, detail: String },
    #[error("{location}: no image named {name:?}; it holds: {available}")]
    NoSuchName { location: String, name: String, available: String },
    #[error("{location} holds {count} images; name the one you want ({available})")]
    Ambiguous { location: String, count: usize, available: String },
    #[error("{location}: blob {digest} not found")]
    BlobMissing { location: String, digest: Digest },
    #[error("blob {digest}: content has digest {actual}")]
    DigestMismatch { digest: Digest, actual: Digest },
    #[error("layer {digest}: uncompressed content has digest {actual}, but the image config says {expected}")]
    DiffIdMismatch { digest: Digest, expected: Digest, actual: Digest },
    /// Unpacking a layer failed (often because the blob is corrupt: a broken gzip stream shows
    /// before the digest check at the end can).
    #[error("layer {digest}: {source}")]
    Layer {
        digest: Digest,
        #[source]
        source: Box<TransportError>,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Registry(Box<berth_registry::RegistryError>),
    #[error("task failed: {0}")]
    Join(String),
}

impl TransportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> TransportError {
        TransportError::Io { path: path.into(), source }
    }
}

pub type Result<T, E = TransportError> = std::result::Result<T, E>;
