//! Manifest lists assembled by hand (`berth manifest`, `berth buildx imagetools create`): the
//! entries are read from registries, kept in the local store until pushed (as Docker keeps them
//! under ~/.docker/manifests), and pushed with their blobs copied (or mounted) into the list's
//! repository.

use std::path::PathBuf;
use std::sync::Arc;

use berth_registry::Client;
use berth_store::Store;
use berth_types::{Descriptor, Digest, ImageConfig, Index, ManifestDoc, Platform, Reference, media};
use serde::{Deserialize, Serialize};

use crate::copy::{CopyOptions, copy_one};
use crate::observer::Observer;
use crate::registry::{RegistrySink, RegistrySource};
use crate::sink::Sink;
use crate::source::Source;
use crate::{Result, TransportError};

/// A manifest as a registry serves it, with its descriptor (an image manifest's descriptor
/// carries the platform its config declares).
#[derive(Debug, Clone)]
pub struct Remote {
    pub reference: Reference,
    pub desc: Descriptor,
    pub bytes: Vec<u8>,
    pub doc: ManifestDoc,
}

/// GETs `r`'s manifest; for an image manifest also its config, for the platform.
pub async fn fetch(client: &Client, r: &Reference) -> Result<Remote> {
    let m = client.get_manifest(r).await?;
    let (doc, mt) = ManifestDoc::parse(&m.bytes, &m.media_type)?;
    let mut desc = Descriptor::new(&mt, m.digest.clone(), m.bytes.len() as u64);
    if let ManifestDoc::Image(im) = &doc {
        let src = RegistrySource::new(client.clone(), r.clone());
        let cfg_bytes = src.read_small_blob(&im.config).await?;
        let cfg = ImageConfig::parse(&cfg_bytes).map_err(|e| TransportError::BadArchive {
            what: "image config",
            path: PathBuf::from(r.to_string()),
            detail: e.to_string(),
        })?;
        desc.platform = Some(Platform {
            architecture: cfg.architecture.clone(),
            os: cfg.os.clone(),
            os_version: cfg.os_version.clone(),
            os_features: cfg.os_features.clone(),
            variant: cfg.variant.clone(),
        });
    }
    Ok(Remote { reference: r.clone(), desc, bytes: m.bytes.to_vec(), doc })
}

/// One entry of a local manifest list: the image it was made from and its descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    /// The image reference given to `manifest create` (pinned by digest in `descriptor`).
    pub reference: String,
    pub descriptor: Descriptor,
}

/// A manifest list kept in the store until pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalList {
    pub name: String,
    pub entries: Vec<ListEntry>,
}

impl LocalList {
    /// The list document: a Docker manifest list when every entry is a Docker manifest (as
    /// `docker manifest push` writes), else an OCI image index.
    pub fn document(&self) -> Result<(Descriptor, Vec<u8>)> {
        let children: Vec<Descriptor> = self.entries.iter().map(|e| e.descriptor.clone()).collect();
        let docker = children.iter().all(|d| media::is_docker(&d.media_type));
        crate::index::write_index(&children, docker)
    }
}

/// The store's manifest lists (`<root>/manifest-lists/`), one JSON file per list.
pub struct ListStore {
    dir: PathBuf,
}

/// The file of a list: the hash of its full name (no escaping that two names could share);
/// the file records the name itself.
fn file_name(name: &Reference) -> String {
    format!("{}.json", Digest::sha256_of(name.to_string().as_bytes()).hex())
}

impl ListStore {
    pub fn open(store: &Store) -> ListStore {
        ListStore { dir: store.root().join("manifest-lists") }
    }

    pub fn load(&self, name: &Reference) -> Result<Option<LocalList>> {
        let p = self.dir.join(file_name(name));
        match std::fs::read(&p) {
            Ok(b) => {
                let l: LocalList = serde_json::from_slice(&b).map_err(|e| TransportError::BadArchive {
                    what: "manifest list",
                    path: p.clone(),
                    detail: e.to_string(),
                })?;
                Ok(if l.name == name.to_string() { Some(l) } else { None })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(TransportError::io(&p, e)),
        }
    }

    /// Writes the list atomically (temp file, fsync, rename), readable by the owner only.
    pub fn save(&self, list: &LocalList) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| TransportError::io(&self.dir, e))?;
        let name = Reference::parse_normalized(&list.name).map_err(|e| TransportError::Unsupported(e.to_string()))?;
        let p = self.dir.join(file_name(&name));
        let tmp = self.dir.join(format!(".{}.tmp-{}", file_name(&name), std::process::id()));
        let bytes = serde_json::to_vec_pretty(list).map_err(|e| TransportError::Unsupported(e.to_string()))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| TransportError::io(&tmp, e))?;
        f.write_all(&bytes).map_err(|e| TransportError::io(&tmp, e))?;
        f.sync_all().map_err(|e| TransportError::io(&tmp, e))?;
        std::fs::rename(&tmp, &p).map_err(|e| TransportError::io(&p, e))
    }

    /// Removes a list; false when there was none.
    pub fn remove(&self, name: &Reference) -> Result<bool> {
        if self.load(name)?.is_none() {
            return Ok(false);
        }
        let p = self.dir.join(file_name(name));
        std::fs::remove_file(&p).map_err(|e| TransportError::io(&p, e))?;
        Ok(true)
    }
}

/// Makes `src` (an image manifest or an index, by digest) and every blob it needs available
/// in `target`'s repository, by digest: blobs are mounted when both are on one registry,
/// copied otherwise. Returns whether bytes were moved.
pub async fn copy_into(client: &Client, src: &Reference, target: &Reference, obs: Arc<dyn Observer>) -> Result<bool> {
    let source = Source::Registry(Box::new(RegistrySource::new(client.clone(), src.clone())));
    let sink = Sink::Registry(Box::new(RegistrySink::new(client.clone(), target.repo_only())));
    // Named by digest only: nothing is tagged at the destination.
    let names = src.digest().map(|d| vec![target.repo_only().with_digest(d.clone())]).unwrap_or_default();
    let opts = CopyOptions { all_platforms: true, names, ..Default::default() };
    Ok(copy_one(&source, &sink, &opts, obs).await?.transferred)
}

/// `imagetools create`: the index over `sources` (images contribute their manifest, indexes
/// their entries), with `annotations` on the index (OCI only). Returns the document.
pub fn assemble(sources: &[Remote], annotations: &[(String, String)]) -> Result<(Descriptor, Vec<u8>)> {
    let mut children: Vec<Descriptor> = Vec::new();
    let mut push = |d: Descriptor| {
        if !children.iter().any(|c| c.digest == d.digest) {
            children.push(d);
        }
    };
    let mut all_docker = true;
    for s in sources {
        all_docker &= media::is_docker(&s.desc.media_type);
        match &s.doc {
            ManifestDoc::Index(i) => {
                for d in &i.manifests {
                    all_docker &= media::is_docker(&d.media_type);
                    push(d.clone());
                }
            }
            ManifestDoc::Image(_) => {
                let mut d = s.desc.clone();
                d.annotations = None;
                push(d);
            }
        }
    }
    // buildx writes a Docker list only when every source is Docker-typed and no annotation
    // asks for an OCI index.
    let docker = all_docker && annotations.is_empty();
    let mt = if docker { media::DOCKER_MANIFEST_LIST } else { media::OCI_INDEX };
    let idx = Index {
        schema_version: 2,
        media_type: Some(mt.to_string()),
        artifact_type: None,
        manifests: children,
        subject: None,
        annotations: if annotations.is_empty() { None } else { Some(annotations.iter().cloned().collect()) },
    };
    let bytes = serde_json::to_vec_pretty(&idx).map_err(|e| TransportError::Unsupported(e.to_string()))?;
    Ok((Descriptor::new(mt, Digest::sha256_of(&bytes), bytes.len() as u64), bytes))
}

/// Pushes a list document under `target` (a tag or digest reference).
pub async fn put_list(client: &Client, target: &Reference, desc: &Descriptor, bytes: &[u8]) -> Result<Digest> {
    Ok(client.put_manifest(target, bytes::Bytes::copy_from_slice(bytes), &desc.media_type).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(mt: &str, n: u8, platform: &str) -> Remote {
        let mut d = Descriptor::new(mt, Digest::sha256_of(&[n]), 10);
        d.platform = Some(Platform::parse(platform).unwrap());
        let m = berth_types::Manifest {
            schema_version: 2,
            media_type: Some(mt.into()),
            artifact_type: None,
            config: Descriptor::new(media::OCI_CONFIG, Digest::sha256_of(&[n, 1]), 1),
            layers: vec![],
            subject: None,
            annotations: None,
        };
        Remote {
            reference: Reference::parse_normalized("a/b:c").unwrap(),
            desc: d,
            bytes: vec![],
            doc: ManifestDoc::Image(m),
        }
    }

    #[test]
    fn assemble_picks_the_family_and_deduplicates() {
        let a = remote(media::DOCKER_MANIFEST, 1, "linux/amd64");
        let b = remote(media::DOCKER_MANIFEST, 2, "linux/arm64");
        let (d, bytes) = assemble(&[a.clone(), b.clone(), a.clone()], &[]).unwrap();
        assert_eq!(d.media_type, media::DOCKER_MANIFEST_LIST);
        let (ManifestDoc::Index(i), _) = ManifestDoc::parse(&bytes, &d.media_type).unwrap() else { panic!() };
        assert_eq!(i.manifests.len(), 2);
        let (d, bytes) = assemble(&[a, b], &[("org.opencontainers.image.title".into(), "x".into())]).unwrap();
        assert_eq!(d.media_type, media::OCI_INDEX);
        assert!(String::from_utf8_lossy(&bytes).contains("org.opencontainers.image.title"));
    }

    #[test]
    fn list_store_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ls = ListStore::open(&store);
        let name = Reference::parse_normalized("localhost:5000/app:1").unwrap();
        assert_eq!(ls.load(&name).unwrap(), None);
        let l = LocalList {
            name: name.to_string(),
            entries: vec![ListEntry {
                reference: "x".into(),
                descriptor: remote(media::OCI_MANIFEST, 1, "linux/amd64").desc,
            }],
        };
        ls.save(&l).unwrap();
        assert_eq!(ls.load(&name).unwrap(), Some(l.clone()));
        assert_eq!(l.document().unwrap().0.media_type, media::OCI_INDEX);
        assert!(ls.remove(&name).unwrap());
        assert!(!ls.remove(&name).unwrap());
    }
}
