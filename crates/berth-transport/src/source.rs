//! Image sources: read-only views of a medium that yield manifests and blob streams.
//!
//! Contract: sources do **not** promise verified bytes. [`Source::open_blob`] streams whatever
//! the medium holds; the sink hashes the stream and refuses it unless it matches the descriptor
//! (see `sink`). [`Source::read_manifest`] does verify, because callers parse the result.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use berth_store::Store;
use berth_types::{Compression, Descriptor, Digest, ImageConfig, Manifest, ManifestDoc, Reference, media};
use serde::Deserialize;
use tokio::io::AsyncRead;

use crate::endpoint::Endpoint;
use crate::layout::{Files, blob_name};
use crate::registry::RegistrySource;
use crate::{Result, TransportError};

/// A byte stream of a blob; unverified until the sink has hashed it.
pub type BlobRead = Box<dyn AsyncRead + Send + Unpin>;

/// A top-level image or index found at a source, with the names it carries there.
#[derive(Debug, Clone)]
pub struct Root {
    pub desc: Descriptor,
    pub bytes: Vec<u8>,
    pub names: Vec<Reference>,
}

pub enum Source {
    Layout(LayoutSource),
    DockerArchive(DockerArchiveSource),
    Registry(Box<RegistrySource>),
}

impl Source {
    /// Opens a file- or store-backed source. Registry sources are made with
    /// [`RegistrySource::new`] because they need a client.
    pub fn open_local(ep: &Endpoint, store: Option<&Store>) -> Result<Source> {
        match ep {
            Endpoint::Store(name) => {
                let store =
                    store.ok_or_else(|| TransportError::Unsupported("the local store is not available".into()))?;
                Ok(Source::Layout(LayoutSource::from_store(store, name)?))
            }
            Endpoint::OciDir { path, tag } => {
                if !path.join("index.json").is_file() {
                    return Err(TransportError::BadArchive {
                        what: "OCI layout",
                        path: path.clone(),
                        detail: "no index.json (not an OCI image layout directory)".into(),
                    });
                }
                Ok(Source::Layout(LayoutSource::new(Files::Dir(path.clone()), ep.to_string(), tag.clone())))
            }
            Endpoint::OciArchive { path, tag } => {
                Ok(Source::Layout(LayoutSource::new(Files::index_tar(path)?, ep.to_string(), tag.clone())))
            }
            Endpoint::DockerArchive { path, reference } => Ok(DockerArchiveSource::open(path, reference.clone())?),
            Endpoint::Registry(_) => Err(TransportError::Unsupported("registry sources need a client".into())),
        }
    }

    /// A human-readable location for messages.
    pub fn location(&self) -> String {
        match self {
            Source::Layout(l) => l.location.clone(),
            Source::DockerArchive(d) => d.location.clone(),
            Source::Registry(r) => r.location(),
        }
    }

    /// The images (or indexes) this source offers, after applying its selector.
    pub async fn roots(&self) -> Result<Vec<Root>> {
        match self {
            Source::Layout(l) => l.roots(),
            Source::DockerArchive(d) => Ok(d.roots.clone()),
            Source::Registry(r) => Ok(vec![r.root().await?]),
        }
    }

    /// Reads and verifies a manifest (a child of an index).
    pub async fn read_manifest(&self, d: &Descriptor) -> Result<Vec<u8>> {
        let bytes = match self {
            Source::Layout(l) => l.files.read_small(&blob_name(&d.digest))?,
            Source::DockerArchive(a) => match a.synthetic.get(&d.digest) {
                Some(b) => b.clone(),
                None => a.files.read_small(&blob_name(&d.digest))?,
            },
            Source::Registry(r) => return r.read_manifest(d).await,
        };
        verify_bytes(d, &bytes)?;
        Ok(bytes)
    }

    /// Reads and verifies a small blob (an image config).
    pub async fn read_small_blob(&self, d: &Descriptor) -> Result<Vec<u8>> {
        let bytes = match self {
            Source::Registry(r) => r.read_small_blob(d).await?,
            _ => {
                let mut r = self.open_blob(d).await?;
                let mut v = Vec::new();
                tokio::io::AsyncReadExt::read_to_end(
                    &mut tokio::io::AsyncReadExt::take(&mut r, berth_types::MAX_MANIFEST_SIZE * 4),
                    &mut v,
                )
                .await
                .map_err(|e| TransportError::Stream { context: format!("reading {}", d.digest), source: e })?;
                v
            }
        };
        verify_bytes(d, &bytes)?;
        Ok(bytes)
    }

    /// Streams a blob (unverified; see the module contract).
    pub async fn open_blob(&self, d: &Descriptor) -> Result<BlobRead> {
        let (files, name) = match self {
            Source::Layout(l) => (&l.files, blob_name(&d.digest)),
            Source::DockerArchive(a) => match a.paths.get(&d.digest) {
                Some(p) => (&a.files, p.clone()),
                None => (&a.files, blob_name(&d.digest)),
            },
            Source::Registry(r) => return r.open_blob(d).await,
        };
        if !files.exists(&name) {
            return Err(TransportError::BlobMissing { location: self.location(), digest: d.digest.clone() });
        }
        let (f, size) = files.open(&name)?;
        let f = tokio::fs::File::from_std(f);
        Ok(Box::new(tokio::io::AsyncReadExt::take(tokio::io::BufReader::with_capacity(1 << 20, f), size)))
    }

    /// A re-openable view of a blob for uploads (retries and resumes read it again from an
    /// offset). Local media seek; a registry source downloads again and skips.
    pub fn reopenable(&self, d: &Descriptor) -> Result<berth_registry::BlobSource> {
        use berth_registry::{BlobSource, BoxAsyncRead};
        match self {
            Source::Registry(r) => {
                let client = r.client().clone();
                let reference = r.reference();
                let digest = d.digest.clone();
                let size = d.size;
                Ok(BlobSource::from_fn(move |offset| {
                    let client = client.clone();
                    let reference = reference.clone();
                    let digest = digest.clone();
                    Box::pin(async move {
                        let mut rd = client.get_blob(&reference, &digest, Some(size)).await.map_err(|e| e.into_io())?;
                        if offset > 0 {
                            tokio::io::copy(
                                &mut tokio::io::AsyncReadExt::take(&mut rd, offset),
                                &mut tokio::io::sink(),
                            )
                            .await?;
                        }
                        Ok(Box::pin(rd) as BoxAsyncRead)
                    })
                }))
            }
            Source::Layout(_) | Source::DockerArchive(_) => {
                let (files, name) = match self {
                    Source::Layout(l) => (l.files.clone(), blob_name(&d.digest)),
                    Source::DockerArchive(a) => {
                        (a.files.clone(), a.paths.get(&d.digest).cloned().unwrap_or_else(|| blob_name(&d.digest)))
                    }
                    Source::Registry(_) => return Err(TransportError::Unsupported("unreachable".into())),
                };
                if !files.exists(&name) {
                    return Err(TransportError::BlobMissing { location: self.location(), digest: d.digest.clone() });
                }
                let files = std::sync::Arc::new(files);
                Ok(BlobSource::from_fn(move |offset| {
                    let files = files.clone();
                    let name = name.clone();
                    Box::pin(async move {
                        let (mut f, size) = files.open(&name).map_err(|e| std::io::Error::other(e.to_string()))?;
                        use std::io::Seek;
                        f.seek(std::io::SeekFrom::Current(offset as i64))?;
                        let f = tokio::fs::File::from_std(f);
                        Ok(Box::pin(tokio::io::AsyncReadExt::take(f, size.saturating_sub(offset))) as BoxAsyncRead)
                    })
                }))
            }
        }
    }

    /// When source and sink are the same registry, the repository blobs can be mounted from.
    pub fn registry_repo(&self) -> Option<(String, String)> {
        match self {
            Source::Registry(r) => Some((r.reference().domain().to_string(), r.reference().path().to_string())),
            _ => None,
        }
    }

    /// Whether blobs are local files (cheap to re-read), as opposed to a network stream.
    pub fn is_local(&self) -> bool {
        !matches!(self, Source::Registry(_))
    }
}

pub(crate) fn verify_bytes(d: &Descriptor, bytes: &[u8]) -> Result<()> {
    let mut h = d.digest.algorithm().hasher();
    h.update(bytes);
    let actual = h.finish();
    if actual != d.digest {
        return Err(TransportError::DigestMismatch { digest: d.digest.clone(), actual });
    }
    Ok(())
}

/// An OCI image layout (directory, tar, or berth's store) with an optional selector.
pub struct LayoutSource {
    files: Files,
    location: String,
    selector: Selector,
}

enum Selector {
    /// Entries whose `org.opencontainers.image.ref.name` (or containerd name) equals this.
    Tag(String),
    /// A resolved store entry.
    Entry(Box<Root>),
    All,
}

impl LayoutSource {
    /// A source holding exactly one blob, from a file (recompressed layers).
    pub(crate) fn single_file(path: &Path, digest: &Digest) -> LayoutSource {
        LayoutSource {
            files: Files::Single { name: blob_name(digest), path: path.to_path_buf() },
            location: path.display().to_string(),
            selector: Selector::All,
        }
    }

    fn new(files: Files, location: String, tag: Option<String>) -> LayoutSource {
        LayoutSource { files, location, selector: tag.map(Selector::Tag).unwrap_or(Selector::All) }
    }

    fn from_store(store: &Store, name: &str) -> Result<LayoutSource> {
        let rec = store.find_image(name)?;
        let wanted = Reference::parse_normalized(name).ok().map(|r| r.with_default_tag());
        // Prefer the entry of the name the user gave; else any entry of that image.
        let entry = wanted
            .as_ref()
            .and_then(|w| rec.entries.iter().find(|e| e.reference().as_ref() == Some(w)))
            .or_else(|| rec.entries.first())
            .ok_or_else(|| berth_store::StoreError::NoSuchImage(name.to_string()))?;
        let mut desc = entry.descriptor.clone();
        desc.annotations = None;
        let bytes = store.read_blob(&desc.digest)?;
        let names = match wanted {
            Some(w) if rec.repo_tags.contains(&w) => vec![w],
            _ => Vec::new(),
        };
        Ok(LayoutSource {
            files: Files::Dir(store.root().to_path_buf()),
            location: format!("berth:{name}"),
            selector: Selector::Entry(Box::new(Root { desc, bytes, names })),
        })
    }

    fn roots(&self) -> Result<Vec<Root>> {
        if let Selector::Entry(r) = &self.selector {
            return Ok(vec![(**r).clone()]);
        }
        #[derive(Deserialize)]
        struct IndexFile {
            manifests: Vec<Descriptor>,
        }
        let raw = self.files.read_small("index.json")?;
        let idx: IndexFile = serde_json::from_slice(&raw).map_err(|e| TransportError::BadArchive {
            what: "index.json",
            path: self.files.location().to_path_buf(),
            detail: e.to_string(),
        })?;
        let mut out = Vec::new();
        let mut available = Vec::new();
        for d in idx.manifests {
            let ref_name = d.annotation(berth_store::ANNOTATION_REF_NAME).map(str::to_string);
            let cname = d.annotation("io.containerd.image.name").map(str::to_string);
            available.push(ref_name.clone().or(cname.clone()).unwrap_or_else(|| d.digest.to_string()));
            if let Selector::Tag(t) = &self.selector
                && ref_name.as_deref() != Some(t.as_str())
                && cname.as_deref() != Some(t.as_str())
            {
                continue;
            }
            let names: Vec<Reference> = cname
                .iter()
                .chain(ref_name.iter().filter(|n| n.contains('/') || n.contains('.')))
                .filter_map(|n| Reference::parse_normalized(n).ok())
                .filter(|r| r.tag().is_some() || r.digest().is_some())
                .take(1)
                .collect();
            let mut desc = d.clone();
            desc.annotations = None;
            let bytes = self.files.read_small(&blob_name(&d.digest))?;
            verify_bytes(&desc, &bytes)?;
            out.push(Root { desc, bytes, names });
        }
        if out.is_empty() {
            let available = if available.is_empty() { "nothing".to_string() } else { available.join(", ") };
            return Err(match &self.selector {
                Selector::Tag(t) => {
                    TransportError::NoSuchName { location: self.location.clone(), name: t.clone(), available }
                }
                _ => TransportError::BadArchive {
                    what: "OCI layout",
                    path: self.files.location().to_path_buf(),
                    detail: "index.json lists no images".into(),
                },
            });
        }
        Ok(out)
    }
}

/// A `docker save` archive (legacy `manifest.json` layout, with or without the OCI layout that
/// Docker 25+ adds). Images are exposed as synthetic Docker schema 2 manifests whose layer
/// descriptors point at the archive's layer files.
pub struct DockerArchiveSource {
    files: Files,
    location: String,
    roots: Vec<Root>,
    /// digest → file path inside the archive, for blobs not stored under `blobs/`.
    paths: BTreeMap<Digest, String>,
    /// Synthetic manifests by digest.
    synthetic: BTreeMap<Digest, Vec<u8>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl DockerArchiveSource {
    fn open(path: &Path, selector: Option<Reference>) -> Result<Source> {
        let files = Files::index_tar(path)?;
        let location = format!("docker-archive:{}", path.display());
        let bad =
            |detail: String| TransportError::BadArchive { what: "docker archive", path: path.to_path_buf(), detail };
        // Docker 25+ saves a multi-platform image as an index in the OCI layout, with
        // manifest.json describing one platform only: read the layout then, to keep every one.
        let layout_has_index = files.exists("index.json")
            && files.exists("oci-layout")
            && files
                .read_small("index.json")
                .ok()
                .and_then(|raw| serde_json::from_slice::<berth_types::Index>(&raw).ok())
                .is_some_and(|i| i.manifests.iter().any(|d| media::kind(&d.media_type) == media::Kind::Index));
        if !files.exists("manifest.json") || layout_has_index {
            if files.exists("index.json") && files.exists("oci-layout") {
                // An OCI archive given as docker-archive: read it as what it is.
                let tag = selector.map(|r| r.to_string());
                return Ok(Source::Layout(LayoutSource::new(files, location, tag)));
            }
            return Err(bad("no manifest.json (not a docker save archive)".into()));
        }
        let raw = files.read_small("manifest.json")?;
        let entries: Vec<ArchiveEntry> =
            serde_json::from_slice(&raw).map_err(|e| bad(format!("manifest.json: {e}")))?;
        let mut src =
            DockerArchiveSource { files, location, roots: vec![], paths: BTreeMap::new(), synthetic: BTreeMap::new() };
        let mut available = Vec::new();
        for e in entries {
            let names: Vec<Reference> = e
                .repo_tags
                .clone()
                .unwrap_or_default()
                .iter()
                .filter_map(|t| Reference::parse_normalized(t).ok().map(Reference::with_default_tag))
                .collect();
            available.extend(names.iter().map(|n| n.familiar()));
            if let Some(sel) = &selector
                && !names.contains(sel)
            {
                continue;
            }
            let root = src.synthesize(&e, names)?;
            src.roots.push(root);
        }
        if src.roots.is_empty() {
            return Err(match selector {
                Some(s) => TransportError::NoSuchName {
                    location: src.location.clone(),
                    name: s.familiar(),
                    available: if available.is_empty() { "untagged images only".into() } else { available.join(", ") },
                },
                None => bad("manifest.json lists no images".into()),
            });
        }
        Ok(Source::DockerArchive(src))
    }

    /// Builds a schema 2 manifest for one archive entry. Layer digests: a layer stored under
    /// `blobs/sha256/<hex>` has that digest; an uncompressed layer elsewhere has its diffID as
    /// digest (the sink verifies it while ingesting); a compressed one is hashed here.
    fn synthesize(&mut self, e: &ArchiveEntry, names: Vec<Reference>) -> Result<Root> {
        let loc = self.files.location().to_path_buf();
        let bad = |detail: String| TransportError::BadArchive { what: "docker archive", path: loc.clone(), detail };
        let config_path = crate::layout::normalize(Path::new(&e.config))
            .ok_or_else(|| bad(format!("bad config path {:?}", e.config)))?;
        let config_bytes = self.files.read_small(&config_path)?;
        let config_digest = Digest::sha256_of(&config_bytes);
        let config: ImageConfig =
            ImageConfig::parse(&config_bytes).map_err(|err| bad(format!("{}: {err}", e.config)))?;
        if config.rootfs.diff_ids.len() != e.layers.len() {
            return Err(bad(format!(
                "{} lists {} layers but its config has {} diffIDs",
                e.config,
                e.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        self.paths.insert(config_digest.clone(), config_path);
        let mut layers = Vec::new();
        for (l, diff_id) in e.layers.iter().zip(&config.rootfs.diff_ids) {
            let p = crate::layout::normalize(Path::new(l)).ok_or_else(|| bad(format!("bad layer path {l:?}")))?;
            let size = self.files.size(&p).ok_or_else(|| bad(format!("layer {l} is missing")))?;
            let (mut f, _) = self.files.open(&p)?;
            let mut head = [0u8; 8];
            let n = read_up_to(&mut f, &mut head).map_err(|err| TransportError::io(&loc, err))?;
            let compression = berth_archive::compress::detect(head.get(..n).unwrap_or(&[]));
            let from_name = p.strip_prefix("blobs/sha256/").and_then(|h| Digest::from_sha256_hex(h).ok());
            let digest = match (from_name, compression) {
                (Some(d), _) => d,
                (None, Compression::None) => diff_id.clone(),
                (None, _) => {
                    let (f, size) = self.files.open(&p)?;
                    let mut r = berth_types::DigestReader::new(f.take(size), berth_types::Algorithm::Sha256);
                    std::io::copy(&mut r, &mut std::io::sink()).map_err(|err| TransportError::io(&loc, err))?;
                    r.digest()
                }
            };
            self.paths.insert(digest.clone(), p);
            layers.push(Descriptor::new(media::layer_type(true, compression), digest, size));
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::DOCKER_MANIFEST.to_string()),
            artifact_type: None,
            config: Descriptor::new(media::DOCKER_CONFIG, config_digest, config_bytes.len() as u64),
            layers,
            subject: None,
            annotations: None,
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|err| bad(err.to_string()))?;
        let digest = Digest::sha256_of(&bytes);
        self.synthetic.insert(digest.clone(), bytes.clone());
        let desc = Descriptor::new(media::DOCKER_MANIFEST, digest, bytes.len() as u64);
        // Make the synthetic manifest parseable like any other.
        let _ = ManifestDoc::parse(&bytes, media::DOCKER_MANIFEST)?;
        Ok(Root { desc, bytes, names })
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(buf.get_mut(n..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
