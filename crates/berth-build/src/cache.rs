//! The build cache: content-addressed step results.
//!
//! A cache key is a sha256 over everything that determines a step's result: the parent state's
//! key, the instruction (expanded), the build arguments it uses, and for COPY/ADD the content of
//! exactly the files it reads. A record stores the resulting state (layer list and full image
//! config, history included), so a hit restores the state bit for bit and a fully cached
//! rebuild yields the same image ID.
//!
//! Records are small JSON files under `<root>/buildcache/records/`, written atomically; layers
//! live in the image store (blob + unpacked snapshot) and are GC roots while a record
//! references them.

use std::path::{Path, PathBuf};

use berth_store::{Roots, Store};
use berth_types::{Descriptor, Digest, ImageConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{BuildError, Result};

/// One layer of a build state: the blob (compressed for base-image layers, uncompressed for
/// built ones) and its diffID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRef {
    pub blob: Descriptor,
    pub diff_id: Digest,
}

/// A filesystem + config state after some step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub key: String,
    pub layers: Vec<LayerRef>,
    pub config: ImageConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub state: State,
    /// Human description of the step (for `builder du`).
    pub description: String,
    pub created: i64,
    pub last_used: i64,
    /// Bytes of the layer this step added (0 for metadata-only steps).
    pub size: u64,
}

/// Incremental cache-key builder.
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    pub fn new(kind: &str) -> KeyBuilder {
        let mut h = Sha256::new();
        h.update(b"berth-build-cache-v1\0");
        h.update(kind.as_bytes());
        h.update([0]);
        KeyBuilder(h)
    }
    pub fn add(mut self, part: &str) -> KeyBuilder {
        self.0.update((part.len() as u64).to_le_bytes());
        self.0.update(part.as_bytes());
        self
    }
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// The persistent cache, rooted in the store directory.
#[derive(Clone)]
pub struct Cache {
    dir: PathBuf,
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Cache {
    pub fn open(store: &Store) -> Result<Cache> {
        let dir = store.root().join("buildcache");
        for d in ["records", "mounts", "statcache"] {
            let p = dir.join(d);
            std::fs::create_dir_all(&p).map_err(|e| BuildError::io(&p, e))?;
        }
        Ok(Cache { dir })
    }

    pub fn stat_dir(&self) -> PathBuf {
        self.dir.join("statcache")
    }

    /// Directory for `RUN --mount=type=cache,id=ID` (persists across builds).
    pub fn mount_dir(&self, id: &str) -> PathBuf {
        self.dir.join("mounts").join(hex::encode(Sha256::digest(id.as_bytes())))
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.dir.join("records").join(format!("{key}.json"))
    }

    /// Looks up a record whose layers are all still present in the store.
    pub fn get(&self, store: &Store, key: &str) -> Option<Record> {
        let b = std::fs::read(self.record_path(key)).ok()?;
        let mut r: Record = serde_json::from_slice(&b).ok()?;
        let complete = r.state.layers.iter().all(|l| store.has_blob(&l.blob.digest) && store.has_snapshot(&l.diff_id));
        if !complete {
            return None;
        }
        r.last_used = now();
        let _ = self.write(key, &r);
        Some(r)
    }

    pub fn put(&self, key: &str, r: &Record) -> Result<()> {
        self.write(key, r)
    }

    fn write(&self, key: &str, r: &Record) -> Result<()> {
        let p = self.record_path(key);
        let bytes = serde_json::to_vec(r).map_err(|e| BuildError::Other(format!("encoding cache record: {e}")))?;
        let tmp = p.with_extension(format!("tmp{}-{}", std::process::id(), unique()));
        std::fs::write(&tmp, bytes).map_err(|e| BuildError::io(&tmp, e))?;
        std::fs::rename(&tmp, &p).map_err(|e| BuildError::io(&p, e))
    }

    /// All records (unreadable ones are skipped).
    pub fn records(&self) -> Vec<(String, Record)> {
        let dir = self.dir.join("records");
        let Ok(rd) = std::fs::read_dir(&dir) else { return vec![] };
        rd.flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let key = name.strip_suffix(".json")?.to_string();
                let r: Record = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
                Some((key, r))
            })
            .collect()
    }

    pub fn remove(&self, key: &str) {
        let _ = std::fs::remove_file(self.record_path(key));
    }

    /// Content the cache keeps alive in the store.
    pub fn roots(&self) -> Roots {
        let mut roots = Roots::default();
        for (_, r) in self.records() {
            for l in r.state.layers {
                roots.blobs.insert(l.blob.digest);
                roots.snapshots.insert(l.diff_id);
            }
        }
        roots
    }

    /// Bytes of cache mounts.
    pub fn mounts_size(&self) -> u64 {
        dir_size(&self.dir.join("mounts"))
    }

    pub fn clear_mounts(&self) -> Result<()> {
        let p = self.dir.join("mounts");
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(|e| BuildError::io(&p, e))?;
        }
        std::fs::create_dir_all(&p).map_err(|e| BuildError::io(&p, e))
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                stack.push(e.path());
            } else {
                total += md.len();
            }
        }
    }
    total
}
