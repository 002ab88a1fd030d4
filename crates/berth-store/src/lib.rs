//! The local image store.
//!
//! # Layout
//!
//! The store root is an [OCI image layout] that skopeo (`oci:ROOT:REF`) and umoci can read,
//! plus berth's own directories next to it:
//!
//! ```text
//! ROOT/
//!   oci-layout              {"imageLayoutVersion":"1.0.0"}
//!   index.json              the reference table (see `refs`): one descriptor per name
//!   blobs/sha256/<hex>      content-addressed blobs, verified before they are renamed in
//!   snapshots/<hex>/        layers unpacked for overlayfs, keyed by diffID (see `snapshots`)
//!   meta/                   small derived facts (which compressed blob a diffID came from)
//!   locks/                  flock files
//!   tmp/                    in-flight writes, named `<pid>-<n>`; stale ones are removed
//! ```
//!
//! # Crash safety and concurrency
//!
//! Every file is written to `tmp/`, fsynced, renamed into place, and its directory fsynced, so a
//! `kill -9` leaves either the old or the new content. Blobs are immutable and verified before
//! the rename, so concurrent writers of the same blob are harmless. `index.json` is changed only
//! under the exclusive `refs` lock by read-modify-write. Operations that write content not yet
//! reachable from a ref (pull, load, build) hold the `gc` lock shared; garbage collection holds
//! it exclusively, so it never deletes content a concurrent writer is about to reference.
//!
//! [OCI image layout]: https://github.com/opencontainers/image-spec/blob/main/image-layout.md

mod blobs;
mod error;
mod fsutil;
mod gc;
mod images;
mod lock;
mod meta;
mod refs;
mod snapshots;

use std::path::{Path, PathBuf};

pub use blobs::BlobWriter;
pub use error::StoreError;
pub use fsutil::{owner_prefix, process_start_time, unmount_below};
pub use gc::{CheckReport, GcReport, Roots};
pub use images::{ImageRecord, LocalImage, Lookup};
pub use lock::LockGuard;
pub use refs::{ANNOTATION_REF_NAME, RefEntry, RefTable, now_rfc3339};
pub use snapshots::{SnapshotInfo, TempSnapshot};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on a store root. Cheap to clone; every method may be called from any thread and from
/// several processes at once (see the module docs for the locking rules).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `root`, makes it private to its owner, and
    /// removes temp files and mounts left by dead processes.
    ///
    /// Privacy: the root and its top-level directories are 0700 (an existing store's modes are
    /// fixed here), and so is every snapshot directory, so that other local users can reach
    /// nothing below: not the setuid binaries of unpacked layers, not a layer root that an
    /// image made world-writable, not the blobs. Only those directories are checked, so opening
    /// stays cheap however many files the layers hold.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        fsutil::private_dir(&root)?;
        for dir in ["blobs", "blobs/sha256", "snapshots", "meta", "locks", "tmp"] {
            fsutil::private_dir(&root.join(dir))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            fsutil::write_atomic(&root.join("tmp"), &layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            let store = Store { root: root.clone() };
            let _g = store.lock_refs()?;
            if !index.exists() {
                store.write_ref_table(&RefTable::default())?;
            }
        }
        let store = Store { root };
        store.fix_snapshot_modes();
        store.clean_stale_tmp();
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
}

#[cfg(test)]
mod tests;
