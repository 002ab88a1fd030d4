//! Image sinks: media that accept blobs and manifests, then record names.
//!
//! Contract: `put_blob` hashes the stream it is given and fails — leaving nothing visible in the
//! destination store or directory — unless the content matches the descriptor's digest and size.
//! Archive sinks write into a temporary file that replaces the destination only in `finish`.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_store::Store;
use berth_types::{Algorithm, Compression, Descriptor, Digest, DigestReader, Reference, media};
use serde::Serialize;
use tokio_util::io::SyncIoBridge;

use crate::layout::blob_name;
use crate::observer::{BlobStatus, Observer};
use crate::registry::RegistrySink;
use crate::source::BlobRead;
use crate::{Result, TransportError};

/// What a blob is, as far as a sink cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobRole {
    Config,
    /// A layer with the diffID the image config claims for it.
    Layer {
        diff_id: Digest,
    },
}

/// An image the sink should name when finishing.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The top-level descriptor written (manifest, or index for multi-platform copies).
    pub desc: Descriptor,
    /// The platform manifest's config digest (image ID), when single-platform.
    pub config: Option<Digest>,
    /// Layer descriptors of the platform manifest (for docker-archive's manifest.json).
    pub layers: Vec<Descriptor>,
    pub names: Vec<Reference>,
    /// The digest the image had at the source's top level (index digest for a platform pick),
    /// recorded as `repo@digest` in the store.
    pub source_digest: Option<Digest>,
}

pub enum Sink {
    Store(StoreSink),
    OciDir(OciDirSink),
    Archive(ArchiveSink),
    Registry(Box<RegistrySink>),
}

impl Sink {
    /// How many blobs may be written at once.
    pub fn max_concurrency(&self) -> usize {
        match self {
            Sink::Archive(_) => 1,
            _ => usize::MAX,
        }
    }

    pub fn location(&self) -> String {
        match self {
            Sink::Store(_) => "the local store".into(),
            Sink::OciDir(d) => format!("oci:{}", d.dir.display()),
            Sink::Archive(a) => a.dest.display().to_string(),
            Sink::Registry(r) => r.location(),
        }
    }

    /// Whether the destination already has the blob. For the store, a layer counts only once it
    /// is also unpacked; a stored-but-not-unpacked layer is unpacked here from the local copy.
    pub async fn has_blob(&self, d: &Descriptor, role: &BlobRole) -> Result<bool> {
        match self {
            Sink::Store(s) => s.has_blob(d, role).await,
            Sink::OciDir(s) => Ok(s.dir.join(blob_name(&d.digest)).is_file()),
            Sink::Archive(a) => Ok(a.written.lock().map(|w| w.contains(&d.digest)).unwrap_or(false)),
            Sink::Registry(r) => r.has_blob(d).await,
        }
    }

    /// Stores a blob from `r`, verifying it (see the module contract).
    pub async fn put_blob(&self, d: &Descriptor, role: &BlobRole, r: BlobRead, obs: Arc<dyn Observer>) -> Result<()> {
        match self {
            Sink::Store(s) => s.put_blob(d, role, r, obs).await,
            Sink::OciDir(s) => s.put_blob(d, r, obs).await,
            Sink::Archive(a) => a.put_blob(d, r, obs).await,
            Sink::Registry(_) => {
                drop((r, obs));
                Err(TransportError::Unsupported("registry uploads go through RegistrySink::push".into()))
            }
        }
    }

    /// Stores a manifest (or index) document.
    pub async fn put_manifest(&self, d: &Descriptor, bytes: &[u8], top_level_name: Option<&Reference>) -> Result<()> {
        crate::source::verify_bytes(d, bytes)?;
        match self {
            Sink::Store(s) => {
                s.store.put_blob_bytes(bytes, Some(&d.digest))?;
                Ok(())
            }
            Sink::OciDir(s) => s.write_blob_bytes(&d.digest, bytes),
            Sink::Archive(a) => a.write_bytes(&blob_name(&d.digest), bytes, Some(&d.digest)),
            Sink::Registry(r) => r.put_manifest(d, bytes, top_level_name).await.map(|_| ()),
        }
    }

    /// Records names and writes the metadata that makes the destination complete.
    pub async fn finish(&self, images: &[Finished]) -> Result<()> {
        match self {
            Sink::Store(s) => s.finish(images),
            Sink::OciDir(s) => s.finish(images),
            Sink::Archive(a) => a.finish(images),
            Sink::Registry(_) => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The local store.

pub struct StoreSink {
    pub(crate) store: Store,
    /// Held for the sink's lifetime so garbage collection cannot remove new, not yet named
    /// content.
    _gc: berth_store::LockGuard,
}

impl StoreSink {
    pub fn new(store: &Store) -> Result<StoreSink> {
        Ok(StoreSink { store: store.clone(), _gc: store.gc_guard()? })
    }

    async fn has_blob(&self, d: &Descriptor, role: &BlobRole) -> Result<bool> {
        if !self.store.has_blob(&d.digest) {
            return Ok(false);
        }
        let BlobRole::Layer { diff_id } = role else { return Ok(true) };
        if self.store.has_snapshot(diff_id) {
            return Ok(true);
        }
        // Stored but not unpacked (e.g. written by another tool into the layout): unpack it from
        // the local file.
        let store = self.store.clone();
        let desc = d.clone();
        let diff = diff_id.clone();
        spawn_blocking(move || {
            let f = store.open_blob(&desc.digest)?;
            let expect = crate::unpack::Expect { digest: Some(&desc.digest), size: None, diff_id: Some(&diff) };
            crate::unpack::ingest_layer(&store, std::io::BufReader::with_capacity(1 << 20, f), &expect)
                .map_err(|e| TransportError::Layer { digest: desc.digest.clone(), source: Box::new(e) })?;
            Ok(())
        })
        .await?;
        Ok(true)
    }

    async fn put_blob(&self, d: &Descriptor, role: &BlobRole, r: BlobRead, obs: Arc<dyn Observer>) -> Result<()> {
        let store = self.store.clone();
        let desc = d.clone();
        let role = role.clone();
        spawn_blocking(move || {
            let bridge = SyncIoBridge::new(r);
            match role {
                BlobRole::Config => {
                    let mut counted = Counted::new(bridge, &desc, false, obs.clone());
                    store.put_blob_reader(&mut counted, Some(&desc.digest), Some(desc.size))?;
                    Ok(())
                }
                BlobRole::Layer { diff_id } => {
                    // One pass: download, blob file, decompression, digests and unpacking.
                    let counted = Counted::new(bridge, &desc, true, obs.clone());
                    let expect = crate::unpack::Expect {
                        digest: Some(&desc.digest),
                        size: Some(desc.size),
                        diff_id: Some(&diff_id),
                    };
                    crate::unpack::ingest_layer(&store, counted, &expect)
                        .map_err(|e| TransportError::Layer { digest: desc.digest.clone(), source: Box::new(e) })?;
                    obs.blob(&desc.digest, true, BlobStatus::Verifying);
                    Ok(())
                }
            }
        })
        .await
    }

    fn finish(&self, images: &[Finished]) -> Result<()> {
        for img in images {
            for n in &img.names {
                self.store.set_ref(n, img.desc.clone())?;
                // Also remember `repo@digest`, as Docker's RepoDigests, for registry pulls.
                if let Some(sd) = &img.source_digest {
                    self.store.set_ref(&n.repo_only().with_digest(sd.clone()), img.desc.clone())?;
                }
            }
            if img.names.is_empty() {
                let now = berth_store::now_rfc3339();
                let desc = img.desc.clone();
                self.store.update_refs(|t| {
                    t.keep_dangling(&desc, &now);
                    Ok(())
                })?;
            }
        }
        Ok(())
    }
}

/// Reader adapter reporting transfer progress.
struct Counted<R> {
    inner: R,
    digest: Digest,
    total: u64,
    done: u64,
    last: u64,
    is_layer: bool,
    obs: Arc<dyn Observer>,
}

impl<R> Counted<R> {
    fn new(inner: R, d: &Descriptor, is_layer: bool, obs: Arc<dyn Observer>) -> Self {
        Counted { inner, digest: d.digest.clone(), total: d.size, done: 0, last: 0, is_layer, obs }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        // Report every 512 KiB and at the end; renderers throttle further.
        if n == 0 || self.done - self.last >= 512 * 1024 {
            self.last = self.done;
            self.obs.blob(&self.digest, self.is_layer, BlobStatus::Transferring { done: self.done, total: self.total });
        }
        Ok(n)
    }
}

pub(crate) async fn spawn_blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| TransportError::Join(e.to_string()))?
}

// ---------------------------------------------------------------------------------------------
// OCI layout directory.

pub struct OciDirSink {
    dir: PathBuf,
    tag: Option<String>,
}

impl OciDirSink {
    pub fn new(dir: &Path, tag: Option<String>) -> Result<OciDirSink> {
        for sub in ["blobs/sha256", ".tmp"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(|e| TransportError::io(&p, e))?;
        }
        let layout = dir.join("oci-layout");
        if !layout.exists() {
            std::fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)
                .map_err(|e| TransportError::io(&layout, e))?;
        }
        Ok(OciDirSink { dir: dir.to_path_buf(), tag })
    }

    fn tmp(&self) -> PathBuf {
        self.dir.join(".tmp").join(format!("{}-{}", std::process::id(), unique()))
    }

    async fn put_blob(&self, d: &Descriptor, r: BlobRead, obs: Arc<dyn Observer>) -> Result<()> {
        let dest = self.dir.join(blob_name(&d.digest));
        let tmp = self.tmp();
        let desc = d.clone();
        spawn_blocking(move || {
            let res = (|| {
                let mut f = File::create(&tmp).map_err(|e| TransportError::io(&tmp, e))?;
                let counted = Counted::new(SyncIoBridge::new(r), &desc, true, obs.clone());
                let mut dr = DigestReader::new(counted, desc.digest.algorithm());
                std::io::copy(&mut dr, &mut f).map_err(|e| TransportError::io(&tmp, e))?;
                verify_stream(&desc, &dr.digest(), dr.count())?;
                f.sync_all().map_err(|e| TransportError::io(&tmp, e))?;
                std::fs::rename(&tmp, &dest).map_err(|e| TransportError::io(&dest, e))
            })();
            if res.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            res
        })
        .await
    }

    fn write_blob_bytes(&self, d: &Digest, bytes: &[u8]) -> Result<()> {
        let dest = self.dir.join(blob_name(d));
        write_file_atomic(&self.tmp(), &dest, bytes)
    }

    fn finish(&self, images: &[Finished]) -> Result<()> {
        let path = self.dir.join("index.json");
        let mut index: serde_json::Value = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| TransportError::BadArchive {
                what: "index.json",
                path: path.clone(),
                detail: e.to_string(),
            })?,
            Err(_) => serde_json::json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": []}),
        };
        let mut manifests: Vec<Descriptor> =
            index.get("manifests").cloned().and_then(|m| serde_json::from_value(m).ok()).unwrap_or_default();
        for img in images {
            let mut d = img.desc.clone();
            if let Some(t) = &self.tag {
                manifests.retain(|m| m.annotation(berth_store::ANNOTATION_REF_NAME) != Some(t.as_str()));
                d.annotations = Some(BTreeMap::from([(berth_store::ANNOTATION_REF_NAME.to_string(), t.clone())]));
            } else {
                manifests.retain(|m| !(m.digest == d.digest && m.annotations.is_none()));
            }
            manifests.push(d);
        }
        index["manifests"] = serde_json::to_value(&manifests).map_err(|e| TransportError::BadArchive {
            what: "index.json",
            path: path.clone(),
            detail: e.to_string(),
        })?;
        let bytes = serde_json::to_vec(&index).map_err(|e| TransportError::BadArchive {
            what: "index.json",
            path: path.clone(),
            detail: e.to_string(),
        })?;
        write_file_atomic(&self.tmp(), &path, &bytes)?;
        let _ = std::fs::remove_dir(self.dir.join(".tmp"));
        Ok(())
    }
}

fn verify_stream(d: &Descriptor, actual: &Digest, n: u64) -> Result<()> {
    if n != d.size {
        return Err(TransportError::Store(berth_store::StoreError::SizeMismatch {
            digest: d.digest.clone(),
            expected: d.size,
            actual: n,
        }));
    }
    if actual != &d.digest {
        return Err(TransportError::DigestMismatch { digest: d.digest.clone(), actual: actual.clone() });
    }
    Ok(())
}

fn write_file_atomic(tmp: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let res = (|| {
        let mut f = File::create(tmp).map_err(|e| TransportError::io(tmp, e))?;
        f.write_all(bytes).map_err(|e| TransportError::io(tmp, e))?;
        f.sync_all().map_err(|e| TransportError::io(tmp, e))?;
        std::fs::rename(tmp, dest).map_err(|e| TransportError::io(dest, e))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    res
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------------
// Archives: oci-archive and docker-archive (`docker save` format).

/// Which archive format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// A tar of an OCI image layout.
    Oci,
    /// What `docker save` writes since Docker 25: `manifest.json` + `repositories` (read by every
    /// docker and podman version) plus an OCI layout (`index.json`, `oci-layout`, `blobs/`).
    Docker,
}

type BoxWrite = Box<dyn Write + Send>;

pub struct ArchiveSink {
    format: ArchiveFormat,
    /// Final path, or "-" for stdout.
    dest: PathBuf,
    tmp: Option<PathBuf>,
    tar: Mutex<Option<tar::Builder<BoxWrite>>>,
    written: Mutex<HashSet<Digest>>,
    /// Tag for `oci-archive:FILE:TAG`.
    tag: Option<String>,
}

impl ArchiveSink {
    /// Writes to `dest` (atomically: a temp file renamed in `finish`), or to `out` when given
    /// (e.g. stdout).
    pub fn new(format: ArchiveFormat, dest: &Path, out: Option<BoxWrite>, tag: Option<String>) -> Result<ArchiveSink> {
        let (w, tmp): (BoxWrite, Option<PathBuf>) = match out {
            Some(w) => (w, None),
            None => {
                let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                let name =
                    dest.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "archive".into());
                let tmp = dir.join(format!(".{name}.{}-{}.tmp", std::process::id(), unique()));
                let f = File::create(&tmp).map_err(|e| TransportError::io(&tmp, e))?;
                (Box::new(std::io::BufWriter::with_capacity(1 << 20, f)), Some(tmp))
            }
        };
        let mut b = tar::Builder::new(w);
        b.mode(tar::HeaderMode::Deterministic);
        let sink = ArchiveSink {
            format,
            dest: dest.to_path_buf(),
            tmp,
            tar: Mutex::new(Some(b)),
            written: Mutex::new(HashSet::new()),
            tag,
        };
        sink.write_dir("blobs/")?;
        sink.write_dir("blobs/sha256/")?;
        Ok(sink)
    }

    fn with_tar<T>(&self, f: impl FnOnce(&mut tar::Builder<BoxWrite>) -> std::io::Result<T>) -> Result<T> {
        let mut g = self.tar.lock().map_err(|_| TransportError::Join("archive writer poisoned".into()))?;
        let b = g.as_mut().ok_or_else(|| TransportError::Join("archive already finished".into()))?;
        f(b).map_err(|e| TransportError::io(&self.dest, e))
    }

    fn write_dir(&self, name: &str) -> Result<()> {
        self.with_tar(|b| {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(0);
            b.append_data(&mut h, name, std::io::empty())
        })
    }

    fn write_bytes(&self, name: &str, bytes: &[u8], digest: Option<&Digest>) -> Result<()> {
        if let Some(d) = digest
            && !self.written.lock().map(|mut w| w.insert(d.clone())).unwrap_or(true)
        {
            return Ok(());
        }
        self.with_tar(|b| {
            let mut h = file_header(bytes.len() as u64);
            b.append_data(&mut h, name, bytes)
        })
    }

    async fn put_blob(&self, d: &Descriptor, r: BlobRead, obs: Arc<dyn Observer>) -> Result<()> {
        if self.written.lock().map(|w| w.contains(&d.digest)).unwrap_or(false) {
            return Ok(());
        }
        // The tar builder is synchronous; bridge the async stream in a blocking section.
        // Concurrency for archive sinks is 1, so holding the lock here does not serialize
        // anything that could otherwise run in parallel.
        let desc = d.clone();
        let name = blob_name(&d.digest);
        let this: &ArchiveSink = self;
        let res = tokio::task::block_in_place(|| {
            let counted = Counted::new(SyncIoBridge::new(r), &desc, true, obs.clone());
            let mut dr = DigestReader::new(counted, desc.digest.algorithm());
            let mut limited = (&mut dr).take(desc.size);
            this.with_tar(|b| {
                let mut h = file_header(desc.size);
                b.append_data(&mut h, &name, &mut limited)
            })?;
            let mut extra = [0u8; 1];
            let more = dr.read(&mut extra).map_err(|e| TransportError::io(&this.dest, e))?;
            verify_stream(&desc, &dr.digest(), dr.count() + more as u64)
        });
        res?;
        if let Ok(mut w) = self.written.lock() {
            w.insert(d.digest.clone());
        }
        Ok(())
    }

    fn finish(&self, images: &[Finished]) -> Result<()> {
        let mut index_entries: Vec<Descriptor> = Vec::new();
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct ManifestEntry {
            config: String,
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let mut manifest_json: Vec<ManifestEntry> = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for img in images {
            if img.names.is_empty() {
                let mut d = img.desc.clone();
                if let Some(t) = &self.tag {
                    d.annotations = Some(BTreeMap::from([(berth_store::ANNOTATION_REF_NAME.to_string(), t.clone())]));
                }
                index_entries.push(d);
            }
            for n in &img.names {
                let mut d = img.desc.clone();
                let mut ann = BTreeMap::new();
                match self.format {
                    ArchiveFormat::Docker => {
                        ann.insert("io.containerd.image.name".to_string(), n.to_string());
                        if let Some(t) = n.tag() {
                            ann.insert(berth_store::ANNOTATION_REF_NAME.to_string(), t.to_string());
                        }
                    }
                    ArchiveFormat::Oci => {
                        let v = self.tag.clone().unwrap_or_else(|| n.to_string());
                        ann.insert(berth_store::ANNOTATION_REF_NAME.to_string(), v);
                    }
                }
                d.annotations = Some(ann);
                index_entries.push(d);
            }
            if self.format == ArchiveFormat::Docker {
                let Some(config) = &img.config else {
                    return Err(TransportError::Unsupported(
                        "docker-archive holds single-platform images only; choose one with --platform".into(),
                    ));
                };
                let tags: Vec<String> = img.names.iter().filter(|n| n.tag().is_some()).map(|n| n.familiar()).collect();
                manifest_json.push(ManifestEntry {
                    config: blob_name(config),
                    repo_tags: if tags.is_empty() { None } else { Some(tags) },
                    layers: img.layers.iter().map(|l| blob_name(&l.digest)).collect(),
                });
                if let Some(top) = img.layers.last() {
                    for n in img.names.iter() {
                        if let Some(t) = n.tag() {
                            repositories
                                .entry(n.familiar_repository())
                                .or_default()
                                .insert(t.to_string(), top.digest.hex().to_string());
                        }
                    }
                }
            }
        }
        let json = |v: &dyn erased::Ser| v.to_vec().map_err(|e| TransportError::Join(e.to_string()));
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": index_entries,
        });
        self.write_bytes("index.json", &json(&index)?, None)?;
        self.write_bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#, None)?;
        if self.format == ArchiveFormat::Docker {
            self.write_bytes("manifest.json", &json(&manifest_json)?, None)?;
            if !repositories.is_empty() {
                self.write_bytes("repositories", &json(&repositories)?, None)?;
            }
        }
        let builder = self
            .tar
            .lock()
            .map_err(|_| TransportError::Join("archive writer poisoned".into()))?
            .take()
            .ok_or_else(|| TransportError::Join("archive already finished".into()))?;
        let mut w = builder.into_inner().map_err(|e| TransportError::io(&self.dest, e))?;
        w.flush().map_err(|e| TransportError::io(&self.dest, e))?;
        drop(w);
        if let Some(tmp) = &self.tmp {
            let f = File::open(tmp).map_err(|e| TransportError::io(tmp, e))?;
            f.sync_all().map_err(|e| TransportError::io(tmp, e))?;
            std::fs::rename(tmp, &self.dest).map_err(|e| TransportError::io(&self.dest, e))?;
        }
        Ok(())
    }
}

impl Drop for ArchiveSink {
    fn drop(&mut self) {
        // An unfinished archive is never left at the destination.
        if let Some(tmp) = &self.tmp
            && tmp.exists()
        {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Tiny helper so `finish` can serialize values of different types through one closure.
mod erased {
    pub trait Ser {
        fn to_vec(&self) -> Result<Vec<u8>, serde_json::Error>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_vec(&self) -> Result<Vec<u8>, serde_json::Error> {
            serde_json::to_vec(self)
        }
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send + Sync>() {}
    is_send::<ArchiveSink>();
    is_send::<StoreSink>();
    let _ = (Algorithm::Sha256, Compression::None);
}
