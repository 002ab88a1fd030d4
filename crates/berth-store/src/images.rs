//! Images as Docker shows them: reference entries grouped by image ID (the config digest).

use std::collections::BTreeMap;

use berth_types::{Descriptor, Digest, ImageConfig, Manifest, ManifestDoc, Platform, Reference, media};

use crate::refs::RefEntry;
use crate::{Result, Store, StoreError};

/// An image manifest resolved from the store, with its parsed config.
#[derive(Debug, Clone)]
pub struct LocalImage {
    /// Descriptor of the platform manifest.
    pub manifest_desc: Descriptor,
    pub manifest: Manifest,
    /// The config digest: Docker's image ID.
    pub id: Digest,
    pub config: ImageConfig,
    pub config_bytes: Vec<u8>,
}

impl LocalImage {
    pub fn diff_ids(&self) -> &[Digest] {
        &self.config.rootfs.diff_ids
    }

    /// The platform the image's config declares (linux and the host's architecture for the
    /// fields it leaves empty).
    pub fn platform(&self) -> Platform {
        let host = Platform::host();
        Platform::new(
            if self.config.os.is_empty() { "linux" } else { &self.config.os },
            if self.config.architecture.is_empty() { &host.architecture } else { &self.config.architecture },
            self.config.variant.as_deref(),
        )
    }

    /// True when the manifest uses Docker schema 2 media types.
    pub fn is_docker_format(&self) -> bool {
        media::is_docker(&self.manifest_desc.media_type)
    }
}

/// One image with every name that points at it.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    pub image: LocalImage,
    /// `repo:tag` references, in table order.
    pub repo_tags: Vec<Reference>,
    /// `repo@digest` references.
    pub repo_digests: Vec<Reference>,
    /// The table entries behind this image (named and dangling).
    pub entries: Vec<RefEntry>,
    /// Total unpacked size of the layers (Docker's `Size`).
    pub size: u64,
    /// Latest `LastTagTime` among the names.
    pub last_tag_time: Option<String>,
}

impl ImageRecord {
    pub fn id(&self) -> &Digest {
        &self.image.id
    }
    pub fn is_dangling(&self) -> bool {
        self.repo_tags.is_empty()
    }
}

/// What a user-given image string resolved to.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// A name in the reference table.
    Name(Reference),
    /// An image ID (full or unique prefix).
    Id(Digest),
}

impl Store {
    /// Resolves a descriptor (manifest or index) to a platform manifest present in the store.
    /// For an index, the wanted platform is chosen among the children that are present.
    pub fn resolve_manifest(&self, desc: &Descriptor, platform: Option<&Platform>) -> Result<Descriptor> {
        match media::kind(&desc.media_type) {
            media::Kind::Index => {
                let bytes = self.read_blob(&desc.digest)?;
                let (doc, _) = ManifestDoc::parse(&bytes, &desc.media_type)?;
                let ManifestDoc::Index(idx) = doc else {
                    return Err(corrupt(self, desc, "index descriptor points at a manifest"));
                };
                let present = berth_types::Index {
                    manifests: idx.manifests.iter().filter(|d| self.has_blob(&d.digest)).cloned().collect(),
                    ..idx.clone()
                };
                let want = platform.cloned().unwrap_or_else(Platform::host);
                match present.select(&want) {
                    Ok(d) => Ok(d.clone()),
                    // Without an explicit platform, any present child is acceptable.
                    Err(_) if platform.is_none() && !present.manifests.is_empty() => present
                        .manifests
                        .iter()
                        .find(|d| media::kind(&d.media_type) == media::Kind::Manifest)
                        .cloned()
                        .ok_or_else(|| corrupt(self, desc, "index has no image manifest")),
                    Err(e) => Err(e.into()),
                }
            }
            _ => Ok(desc.clone()),
        }
    }

    /// Loads the image behind a (platform) manifest descriptor.
    pub fn load_image(&self, desc: &Descriptor) -> Result<LocalImage> {
        let desc = self.resolve_manifest(desc, None)?;
        let bytes = self.read_blob(&desc.digest)?;
        let (doc, mt) = ManifestDoc::parse(&bytes, &desc.media_type)?;
        let ManifestDoc::Image(manifest) = doc else {
            return Err(corrupt(self, &desc, "expected an image manifest"));
        };
        let config_bytes = self.read_blob(&manifest.config.digest)?;
        let config = ImageConfig::parse(&config_bytes)
            .map_err(|source| StoreError::Config { digest: manifest.config.digest.clone(), source })?;
        let mut manifest_desc = desc.clone();
        manifest_desc.media_type = mt;
        Ok(LocalImage { id: manifest.config.digest.clone(), manifest_desc, manifest, config, config_bytes })
    }

    /// Unpacked size of an image's layers (falls back to compressed sizes for layers that are
    /// not unpacked).
    pub fn image_size(&self, img: &LocalImage) -> u64 {
        img.manifest
            .layers
            .iter()
            .zip(img.config.rootfs.diff_ids.iter().map(Some).chain(std::iter::repeat(None)))
            .map(|(l, diff)| diff.and_then(|d| self.snapshot_info(d)).map(|i| i.size).unwrap_or(l.size))
            .sum()
    }

    /// Every image in the store, grouped by ID, in the order their first entry appears.
    /// Entries whose content is missing or unreadable are skipped (see `berth system check`).
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let table = self.ref_table()?;
        let mut order: Vec<Digest> = Vec::new();
        let mut by_id: BTreeMap<Digest, ImageRecord> = BTreeMap::new();
        for e in &table.entries {
            let Ok(img) = self.load_image(&e.descriptor) else {
                tracing::debug!(digest = %e.descriptor.digest, "skipping unreadable store entry");
                continue;
            };
            let id = img.id.clone();
            let rec = by_id.entry(id.clone()).or_insert_with(|| {
                order.push(id.clone());
                let size = self.image_size(&img);
                ImageRecord {
                    image: img,
                    repo_tags: vec![],
                    repo_digests: vec![],
                    entries: vec![],
                    size,
                    last_tag_time: None,
                }
            });
            if let Some(r) = e.reference() {
                if r.digest().is_some() && r.tag().is_none() {
                    if !rec.repo_digests.contains(&r) {
                        rec.repo_digests.push(r);
                    }
                } else if r.tag().is_some() && !rec.repo_tags.contains(&r) {
                    rec.repo_tags.push(r);
                }
                if let Some(t) = e.tagged_at()
                    && rec.last_tag_time.as_deref().is_none_or(|cur| cur < t)
                {
                    rec.last_tag_time = Some(t.to_string());
                }
            }
            rec.entries.push(e.clone());
        }
        Ok(order.into_iter().filter_map(|id| by_id.remove(&id)).collect())
    }

    /// Resolves what a user typed (`nginx`, `nginx:1.21`, `localhost:5000/a@sha256:…`, a full or
    /// short image ID) the way Docker does: a full ID first, then a name in the table (with the
    /// default tag), then a unique ID prefix.
    pub fn lookup(&self, s: &str) -> Result<Lookup> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        let is_hex = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let images = self.images()?;
        if is_hex
            && hex.len() == 64
            && let Some(r) = images.iter().find(|r| r.id().hex() == hex)
        {
            return Ok(Lookup::Id(r.id().clone()));
        }
        if let Ok(r) = Reference::parse_normalized(s) {
            let r = r.with_default_tag();
            let table = self.ref_table()?;
            if table.get(&r).is_some() {
                return Ok(Lookup::Name(r));
            }
            // `name:tag@digest` is looked up by its digest part, as Docker does.
            if r.digest().is_some() && r.tag().is_some() {
                let d = r.without_tag();
                if table.get(&d).is_some() {
                    return Ok(Lookup::Name(d));
                }
            }
        }
        if is_hex {
            let matches: Vec<&ImageRecord> = images.iter().filter(|r| r.id().hex().starts_with(hex)).collect();
            match matches.as_slice() {
                [one] => return Ok(Lookup::Id(one.id().clone())),
                [] => {}
                _ => return Err(StoreError::Ambiguous(s.to_string())),
            }
        }
        Err(StoreError::NoSuchImage(s.to_string()))
    }

    /// Resolves a user string to the image it names, reading only that image when the string is
    /// a name in the table (the common case for `run` and `build`); IDs fall back to a scan.
    pub fn resolve_image(&self, s: &str, platform: Option<&Platform>) -> Result<LocalImage> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        let maybe_id = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !maybe_id && let Ok(r) = Reference::parse_normalized(s) {
            let r = r.with_default_tag();
            let table = self.ref_table()?;
            let entry = table.get(&r).or_else(|| if r.digest().is_some() { table.get(&r.without_tag()) } else { None });
            if let Some(e) = entry {
                let d = self.resolve_manifest(&e.descriptor, platform)?;
                return self.load_image(&d);
            }
            return Err(StoreError::NoSuchImage(s.to_string()));
        }
        let rec = self.find_image(s)?;
        let desc =
            rec.entries.first().map(|e| e.descriptor.clone()).ok_or_else(|| StoreError::NoSuchImage(s.to_string()))?;
        let d = self.resolve_manifest(&desc, platform)?;
        self.load_image(&d)
    }

    /// Resolves a user string to its image record.
    pub fn find_image(&self, s: &str) -> Result<ImageRecord> {
        let l = self.lookup(s)?;
        let images = self.images()?;
        let found = match &l {
            Lookup::Id(id) => images.into_iter().find(|r| r.id() == id),
            Lookup::Name(n) => images.into_iter().find(|r| r.repo_tags.contains(n) || r.repo_digests.contains(n)),
        };
        found.ok_or_else(|| StoreError::NoSuchImage(s.to_string()))
    }

    /// The table entry's descriptor for a name.
    pub fn ref_descriptor(&self, name: &Reference) -> Result<Option<Descriptor>> {
        Ok(self.ref_table()?.get(name).map(|e| e.descriptor.clone()))
    }
}

fn corrupt(store: &Store, desc: &Descriptor, detail: &str) -> StoreError {
    StoreError::Corrupt { what: "manifest", path: store.blob_path(&desc.digest), detail: detail.to_string() }
}
