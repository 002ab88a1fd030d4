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
    pub fn part(mut self, part: &str) -> KeyBuilder {
        self.0.update((part.len() as u64).to_le_bytes());
        self.0.update(part.as_bytes());
        self
    }
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// The persistent cache, rooted in the store directory, plus read-only imported caches
/// (`--cache-from type=local,src=DIR`).
#[derive(Clone)]
pub struct Cache {
    dir: PathBuf,
    imports: Vec<PathBuf>,
    /// Records imported from a registry cache image (their layers are already in the store).
    remote: Vec<std::collections::BTreeMap<String, Record>>,
}

/// File name of the record index in an exported cache directory.
const EXPORT_INDEX: &str = "berth-cache.json";

/// An exported cache directory: `berth-cache.json` (key → record) and `blobs/sha256/<hex>`
/// (the layer blobs the records use), so it can be copied or archived as a whole.
#[derive(Default, Serialize, Deserialize)]
struct Exported {
    records: std::collections::BTreeMap<String, Record>,
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
        Ok(Cache { dir, imports: Vec::new(), remote: Vec::new() })
    }

    /// Adds an exported cache directory to consult on local misses. A missing directory is
    /// not an error (the first build that exports it has nothing to import), as in BuildKit.
    pub fn with_import(mut self, dir: &Path) -> Cache {
        self.imports.push(dir.to_path_buf());
        self
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

    /// Looks up a record whose layers are all present in the store; on a local miss, imported
    /// caches are consulted and their layers brought into the store (verified and unpacked).
    pub fn get(&self, store: &Store, key: &str) -> Option<Record> {
        let local = std::fs::read(self.record_path(key)).ok().and_then(|b| serde_json::from_slice::<Record>(&b).ok());
        let mut r = match local {
            Some(r)
                if r.state.layers.iter().all(|l| store.has_blob(&l.blob.digest) && store.has_snapshot(&l.diff_id)) =>
            {
                r
            }
            _ => self.get_imported(store, key)?,
        };
        r.last_used = now();
        let _ = self.write(key, &r);
        Some(r)
    }

    /// Adds the records of a registry cache image already pulled into the store (see
    /// [`cache_image_config`]).
    pub fn with_remote(mut self, records: std::collections::BTreeMap<String, Record>) -> Cache {
        self.remote.push(records);
        self
    }

    fn get_imported(&self, store: &Store, key: &str) -> Option<Record> {
        for recs in &self.remote {
            let Some(r) = recs.get(key) else { continue };
            // The cache image travelled compressed: its layers are in the store under their
            // compressed digests. Point the record at whichever stored blob has the diffID.
            let mut r = r.clone();
            let mut ok = true;
            for l in &mut r.state.layers {
                if !store.has_snapshot(&l.diff_id) {
                    ok = false;
                    break;
                }
                if store.has_blob(&l.blob.digest) {
                    continue;
                }
                let found =
                    [berth_types::Compression::Gzip, berth_types::Compression::Zstd, berth_types::Compression::None]
                        .into_iter()
                        .find_map(|c| store.compressed_blob_for(&l.diff_id, c).map(|d| (c, d)));
                match found.and_then(|(c, d)| store.blob_size(&d).map(|size| (c, d, size))) {
                    Some((c, d, size)) => {
                        l.blob = berth_types::Descriptor::new(berth_types::media::layer_type(false, c), d, size)
                    }
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                return Some(r);
            }
        }
        for dir in &self.imports {
            let Ok(b) = std::fs::read(dir.join(EXPORT_INDEX)) else { continue };
            let Ok(ex) = serde_json::from_slice::<Exported>(&b) else {
                tracing::warn!("ignoring cache import {}: unreadable {EXPORT_INDEX}", dir.display());
                continue;
            };
            let Some(r) = ex.records.get(key) else { continue };
            let mut ok = true;
            for l in &r.state.layers {
                if store.has_blob(&l.blob.digest) && store.has_snapshot(&l.diff_id) {
                    continue;
                }
                if let Err(e) = import_layer(store, dir, l) {
                    tracing::warn!("cache import from {}: layer {}: {e}", dir.display(), l.blob.digest);
                    ok = false;
                    break;
                }
            }
            if ok {
                return Some(r.clone());
            }
        }
        None
    }

    /// Writes the records `keys` (and the layer blobs they use) to `dir` for `--cache-to
    /// type=local,dest=DIR`. Existing records there are kept (the directory accumulates).
    pub fn export(&self, store: &Store, dir: &Path, keys: &[String]) -> Result<usize> {
        std::fs::create_dir_all(dir.join("blobs/sha256")).map_err(|e| BuildError::io(dir, e))?;
        let idx_path = dir.join(EXPORT_INDEX);
        let mut ex: Exported =
            std::fs::read(&idx_path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        let mut n = 0;
        for k in keys {
            let Ok(b) = std::fs::read(self.record_path(k)) else { continue };
            let Ok(r) = serde_json::from_slice::<Record>(&b) else { continue };
            for l in &r.state.layers {
                let dest = dir.join("blobs").join(l.blob.digest.algorithm().as_str()).join(l.blob.digest.hex());
                if dest.is_file() {
                    continue;
                }
                let src = store.blob_path(&l.blob.digest);
                let tmp = dest.with_extension("tmp");
                std::fs::copy(&src, &tmp).map_err(|e| BuildError::io(&src, e))?;
                std::fs::rename(&tmp, &dest).map_err(|e| BuildError::io(&dest, e))?;
            }
            ex.records.insert(k.clone(), r);
            n += 1;
        }
        let bytes = serde_json::to_vec(&ex).map_err(|e| BuildError::Other(format!("encoding cache export: {e}")))?;
        let tmp = idx_path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(|e| BuildError::io(&tmp, e))?;
        std::fs::rename(&tmp, &idx_path).map_err(|e| BuildError::io(&idx_path, e))?;
        Ok(n)
    }

    /// Reads a local record without touching it or checking its layers.
    pub fn peek(&self, key: &str) -> Option<Record> {
        serde_json::from_slice(&std::fs::read(self.record_path(key)).ok()?).ok()
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

/// The key under which a registry cache image's config carries its records.
pub const CACHE_CONFIG_KEY: &str = "berth.buildcache.v1";

/// Builds the config and layer list of a *cache image*: an ordinary image (so the existing
/// pipeline pushes, pulls, verifies and unpacks it) whose layers are every layer the records
/// use and whose config carries the records under [`CACHE_CONFIG_KEY`].
pub fn cache_image(cache: &Cache, keys: &[String]) -> (berth_types::ImageConfig, Vec<LayerRef>) {
    let mut records = std::collections::BTreeMap::new();
    let mut layers: Vec<LayerRef> = Vec::new();
    for k in keys {
        let Some(r) = cache.peek(k) else { continue };
        for l in &r.state.layers {
            if !layers.iter().any(|x| x.blob.digest == l.blob.digest) {
                layers.push(l.clone());
            }
        }
        records.insert(k.clone(), r);
    }
    let p = berth_types::Platform::host();
    let mut config = berth_types::ImageConfig {
        architecture: p.architecture,
        os: p.os,
        rootfs: berth_types::RootFs {
            kind: "layers".into(),
            diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        },
        ..Default::default()
    };
    config.extra.insert(CACHE_CONFIG_KEY.to_string(), serde_json::to_value(&records).unwrap_or_default());
    (config, layers)
}

/// The records a cache image carries, if it is one.
pub fn records_of(config: &berth_types::ImageConfig) -> Option<std::collections::BTreeMap<String, Record>> {
    serde_json::from_value(config.extra.get(CACHE_CONFIG_KEY)?.clone()).ok()
}

/// Brings one layer of an imported cache into the store: the blob is verified while it is
/// unpacked, and both become visible only when digest and diffID match.
fn import_layer(store: &Store, dir: &Path, l: &LayerRef) -> Result<()> {
    let path = dir.join("blobs").join(l.blob.digest.algorithm().as_str()).join(l.blob.digest.hex());
    let f = std::fs::File::open(&path).map_err(|e| BuildError::io(&path, e))?;
    let expect =
        berth_transport::unpack::Expect { digest: Some(&l.blob.digest), size: None, diff_id: Some(&l.diff_id) };
    berth_transport::unpack::ingest_layer(store, std::io::BufReader::new(f), &expect)
        .map_err(|e| BuildError::Other(format!("{}: {e}", path.display())))?;
    Ok(())
}
