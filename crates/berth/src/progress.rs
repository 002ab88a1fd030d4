//! Adapts copy-pipeline events to docker's pull/push progress lines.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_output::progress::{Action, LayerStatus, TransferProgress};
use berth_transport::{BlobStatus, Observer};
use berth_types::Digest;

/// Which wording to use.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Pull,
    Push,
    /// cp: pull-style wording.
    Copy,
    /// load: only `Loading layer [==>]` bars (on a terminal), as docker load shows.
    Load,
}

pub struct TransferObserver {
    pub progress: TransferProgress,
    dir: Direction,
    seen: Mutex<HashMap<Digest, bool>>,
}

impl TransferObserver {
    pub fn new(progress: TransferProgress, dir: Direction) -> TransferObserver {
        TransferObserver { progress, dir, seen: Mutex::new(HashMap::new()) }
    }
}

impl Observer for TransferObserver {
    fn blob(&self, digest: &Digest, is_layer: bool, status: BlobStatus) {
        // Docker shows layers only (the config is not a line of its own).
        if !is_layer {
            return;
        }
        let id = digest.short();
        if self.dir == Direction::Load {
            if let BlobStatus::Transferring { done, total } = status {
                self.progress.bytes(id, Action::Loading, done, total);
            }
            return;
        }
        let push = self.dir == Direction::Push;
        match status {
            BlobStatus::Waiting => {
                let first = self.seen.lock().map(|mut s| s.insert(digest.clone(), true).is_none()).unwrap_or(true);
                if first {
                    self.progress.status(id, if push { &LayerStatus::Preparing } else { &LayerStatus::PullingFsLayer });
                }
            }
            BlobStatus::Exists => self
                .progress
                .status(id, if push { &LayerStatus::LayerAlreadyExists } else { &LayerStatus::AlreadyExists }),
            BlobStatus::Mounted { from } => self.progress.status(id, &LayerStatus::MountedFrom(from)),
            BlobStatus::Transferring { done, total } => {
                self.progress.bytes(id, if push { Action::Pushing } else { Action::Downloading }, done, total)
            }
            BlobStatus::Verifying => self.progress.status(id, &LayerStatus::VerifyingChecksum),
            BlobStatus::Done => self.progress.status(id, &LayerStatus::DownloadComplete),
            BlobStatus::Extracting { done, total } => self.progress.bytes(id, Action::Extracting, done, total),
            BlobStatus::Complete => {
                self.progress.status(id, if push { &LayerStatus::Pushed } else { &LayerStatus::PullComplete })
            }
        }
    }
}
