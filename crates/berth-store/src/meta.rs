//! Small derived facts about layers, kept so work is not redone:
//! - which diffID (uncompressed digest) a compressed blob has, so a pull can say
//!   "Already exists" and a push can reuse an existing compressed blob instead of recompressing
//!   (which also keeps pushed digests stable);
//! - the compressed blobs known for a diffID, per compression.
//!
//! Files under `meta/` are written atomically; losing one only costs recomputation.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_types::{Compression, Digest};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::{Result, Store, StoreError};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct DiffIdInfo {
    /// compression name → compressed blob digest
    #[serde(default)]
    blobs: BTreeMap<String, Digest>,
}

impl Store {
    fn meta_path(&self, kind: &str, d: &Digest) -> PathBuf {
        self.root.join("meta").join(kind).join(format!("{}-{}", d.algorithm().as_str(), d.hex()))
    }

    /// Records that the blob `compressed` (with `compression`) decompresses to `diff_id`.
    pub fn record_layer(&self, compressed: &Digest, compression: Compression, diff_id: &Digest) -> Result<()> {
        let p = self.meta_path("blob-diffid", compressed);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        if std::fs::read_to_string(&p).ok().as_deref() != Some(diff_id.to_string().as_str()) {
            write_atomic(&self.tmp_dir(), &p, diff_id.to_string().as_bytes())?;
        }
        let _g = self.named_lock("meta")?;
        let q = self.meta_path("diffid-blobs", diff_id);
        if let Some(dir) = q.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        let mut info: DiffIdInfo =
            std::fs::read(&q).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        if info.blobs.get(compression.name()) != Some(compressed) {
            info.blobs.insert(compression.name().to_string(), compressed.clone());
            let bytes = serde_json::to_vec(&info).map_err(|e| StoreError::Corrupt {
                what: "layer metadata",
                path: q.clone(),
                detail: e.to_string(),
            })?;
            write_atomic(&self.tmp_dir(), &q, &bytes)?;
        }
        Ok(())
    }

    /// The diffID of a compressed blob, if known.
    pub fn diff_id_of(&self, compressed: &Digest) -> Option<Digest> {
        let s = std::fs::read_to_string(self.meta_path("blob-diffid", compressed)).ok()?;
        Digest::parse(s.trim()).ok()
    }

    /// A stored compressed blob for `diff_id` with the given compression, if one is known and
    /// still present.
    pub fn compressed_blob_for(&self, diff_id: &Digest, compression: Compression) -> Option<Digest> {
        let b = std::fs::read(self.meta_path("diffid-blobs", diff_id)).ok()?;
        let info: DiffIdInfo = serde_json::from_slice(&b).ok()?;
        info.blobs.get(compression.name()).filter(|d| self.has_blob(d)).cloned()
    }

    pub(crate) fn forget_blob_meta(&self, d: &Digest) {
        let _ = std::fs::remove_file(self.meta_path("blob-diffid", d));
    }

    pub(crate) fn forget_diffid_meta(&self, d: &Digest) {
        let _ = std::fs::remove_file(self.meta_path("diffid-blobs", d));
    }
}
