//! Progress events of the copy pipeline. The binary renders them as `docker pull`/`push` lines.

use berth_types::Digest;

/// What happened to one blob (layer or config) during a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobStatus {
    /// Queued behind the concurrency limit.
    Waiting,
    /// The destination already has it.
    Exists,
    /// The registry mounted it from another repository.
    Mounted { from: String },
    /// Bytes moved so far of the total.
    Transferring { done: u64, total: u64 },
    /// All bytes moved; checking the digest.
    Verifying,
    /// Verified and stored (for pulls: the download is complete).
    Done,
    /// Unpacking into the local store (bytes of the blob consumed so far).
    Extracting { done: u64, total: u64 },
    /// Fully in place (pull complete / pushed).
    Complete,
}

/// Receives progress events. Called from several tasks at once.
pub trait Observer: Send + Sync {
    fn blob(&self, digest: &Digest, is_layer: bool, status: BlobStatus);
    /// A free-form note (e.g. which platform was chosen).
    fn note(&self, _msg: &str) {}
}

/// Discards everything.
pub struct Quiet;

impl Observer for Quiet {
    fn blob(&self, _: &Digest, _: bool, _: BlobStatus) {}
}
