//! Multi-platform images in the local store: a name points at an index (OCI image index or
//! Docker manifest list) and holds the platforms fetched so far. Kept in one place so that the
//! image core can take it over.

use berth_store::Store;
use berth_types::{Descriptor, Digest, Index, ManifestDoc, Platform, media};

use crate::{Result, TransportError};

/// What the store holds of one platform of a stored index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredPlatform {
    /// The index's manifest for the platform is stored with every layer unpacked.
    Complete(Descriptor),
    /// The index lists the platform but its image is not (entirely) in the store.
    Missing(Descriptor),
}

/// Reads the index a store entry points at (`None` when the entry is a single manifest).
pub fn stored_index(store: &Store, desc: &Descriptor) -> Result<Option<Index>> {
    if media::kind(&desc.media_type) != media::Kind::Index {
        return Ok(None);
    }
    let bytes = store.read_blob(&desc.digest)?;
    match ManifestDoc::parse(&bytes, &desc.media_type)? {
        (ManifestDoc::Index(i), _) => Ok(Some(i)),
        (ManifestDoc::Image(_), _) => Ok(None),
    }
}

/// Which of `idx`'s manifests serves `want`, and whether the store holds it entirely.
/// Fails with the index's platforms listed when none matches.
pub fn stored_platform(store: &Store, idx: &Index, want: &Platform) -> Result<StoredPlatform> {
    let child = idx.select(want)?.clone();
    Ok(if image_complete(store, &child) { StoredPlatform::Complete(child) } else { StoredPlatform::Missing(child) })
}

/// True when the manifest, its config and every layer's snapshot are in the store.
pub fn image_complete(store: &Store, manifest: &Descriptor) -> bool {
    if !store.has_blob(&manifest.digest) {
        return false;
    }
    let Ok(img) = store.load_image(manifest) else { return false };
    img.diff_ids().iter().all(|d| store.has_snapshot(d))
}

/// The platforms of a stored index whose images are complete in the store, in index order.
pub fn present_platforms(store: &Store, idx: &Index) -> Vec<(Platform, Descriptor)> {
    idx.manifests
        .iter()
        .filter(|d| media::kind(&d.media_type) == media::Kind::Manifest)
        .filter_map(|d| d.platform.clone().filter(|p| p.os != "unknown").map(|p| (p, d.clone())))
        .filter(|(_, d)| image_complete(store, d))
        .collect()
}

/// Writes an index over `children` (each descriptor carrying its platform): OCI image index,
/// or a Docker manifest list with `docker` (`oci-mediatypes=false`). Returns its descriptor and
/// bytes; the caller stores or pushes them. Extra entries (e.g. attestation manifests) are
/// appended by the caller to `children` before this call.
pub fn write_index(children: &[Descriptor], docker: bool) -> Result<(Descriptor, Vec<u8>)> {
    write_index_with(children, docker, None)
}

/// The Docker schema 2 twin of a stored OCI image manifest (same config and layers, Docker
/// media types), stored; for `oci-mediatypes=false`. A Docker manifest is returned as is.
pub fn to_docker_manifest(store: &Store, desc: &Descriptor) -> Result<Descriptor> {
    if media::is_docker(&desc.media_type) {
        return Ok(desc.clone());
    }
    let bytes = store.read_blob(&desc.digest)?;
    let (ManifestDoc::Image(mut m), _) = ManifestDoc::parse(&bytes, &desc.media_type)? else {
        return Err(TransportError::Unsupported(format!("{} is not an image manifest", desc.digest)));
    };
    for l in &mut m.layers {
        match media::kind(&l.media_type) {
            media::Kind::Layer(berth_types::Compression::Zstd) => {
                return Err(TransportError::Unsupported(
                    "zstd layers have no Docker media type: use oci-mediatypes=true".into(),
                ));
            }
            media::Kind::Layer(c) => l.media_type = media::layer_type(true, c).to_string(),
            _ => {}
        }
    }
    m.config.media_type = media::DOCKER_CONFIG.to_string();
    m.media_type = Some(media::DOCKER_MANIFEST.to_string());
    m.annotations = None;
    let out = serde_json::to_vec(&m).map_err(|e| TransportError::Unsupported(e.to_string()))?;
    let digest = store.put_blob_bytes(&out, None)?;
    let mut d = Descriptor::new(media::DOCKER_MANIFEST, digest, out.len() as u64);
    d.platform = desc.platform.clone();
    Ok(d)
}

/// A stored multi-platform image made ready for a registry: one root per platform image the
/// store holds (layers compressed with `compression` where they were stored uncompressed) and
/// the index over them.
#[derive(Debug, Clone)]
pub struct IndexPush {
    pub children: Vec<crate::source::Root>,
    pub index: crate::source::Root,
    /// Platforms the index lists whose images are not in the store (left out of the pushed
    /// index, which then has a new digest).
    pub missing: Vec<String>,
}

/// Prepares the push of the index `desc` points at. The original index is pushed unchanged
/// (same digest) when every platform is stored and no layer needed compressing; otherwise a new
/// index of the same family lists the pushed manifests. Non-image entries (attestations) are
/// kept only when their content is stored.
pub fn prepare_push(
    store: &Store,
    desc: &Descriptor,
    idx: &Index,
    compression: berth_types::Compression,
) -> Result<IndexPush> {
    let mut children = Vec::new();
    let mut entries = Vec::new();
    let mut missing = Vec::new();
    for d in &idx.manifests {
        let is_image = media::kind(&d.media_type) == media::Kind::Manifest
            && d.platform.as_ref().is_none_or(|p| p.os != "unknown");
        if !is_image {
            if store.has_blob(&d.digest) && store.load_image(d).is_ok() {
                let bytes = store.read_blob(&d.digest)?;
                children.push(crate::source::Root { desc: d.clone(), bytes, names: vec![] });
                entries.push(d.clone());
            }
            continue;
        }
        if !image_complete(store, d) {
            missing
                .push(d.platform.as_ref().map(|p| p.clone().normalized().to_string()).unwrap_or(d.digest.to_string()));
            continue;
        }
        let img = store.load_image(d)?;
        let root = match crate::recompress::compressed_root(store, &img, compression, false)? {
            Some(r) => r,
            None => crate::source::Root { desc: d.clone(), bytes: store.read_blob(&d.digest)?, names: vec![] },
        };
        let mut e = d.clone();
        e.digest = root.desc.digest.clone();
        e.size = root.desc.size;
        e.media_type = root.desc.media_type.clone();
        entries.push(e);
        children.push(root);
    }
    if entries.is_empty() {
        return Err(TransportError::Unsupported(format!(
            "{}: no platform of this multi-platform image is in the store (pull one with --platform)",
            desc.digest
        )));
    }
    let unchanged = missing.is_empty() && entries.len() == idx.manifests.len();
    let unchanged = unchanged && entries.iter().zip(&idx.manifests).all(|(a, b)| a.digest == b.digest);
    let index = if unchanged {
        let mut d = desc.clone();
        d.annotations = None;
        crate::source::Root { desc: d, bytes: store.read_blob(&desc.digest)?, names: vec![] }
    } else {
        let docker = media::is_docker(&desc.media_type) && entries.iter().all(|e| media::is_docker(&e.media_type));
        let (d, bytes) = write_index_with(&entries, docker, idx.annotations.clone())?;
        store.put_blob_bytes(&bytes, Some(&d.digest))?;
        crate::source::Root { desc: d, bytes, names: vec![] }
    };
    Ok(IndexPush { children, index, missing })
}

fn write_index_with(
    children: &[Descriptor],
    docker: bool,
    annotations: Option<std::collections::BTreeMap<String, String>>,
) -> Result<(Descriptor, Vec<u8>)> {
    let mt = if docker { media::DOCKER_MANIFEST_LIST } else { media::OCI_INDEX };
    let idx = Index {
        schema_version: 2,
        media_type: Some(mt.to_string()),
        artifact_type: None,
        manifests: children.to_vec(),
        subject: None,
        annotations: if docker { None } else { annotations },
    };
    let bytes = serde_json::to_vec(&idx).map_err(|e| TransportError::Unsupported(e.to_string()))?;
    Ok((Descriptor::new(mt, Digest::sha256_of(&bytes), bytes.len() as u64), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_index_media_types() {
        let mut c = Descriptor::new(media::OCI_MANIFEST, Digest::sha256_of(b"x"), 1);
        c.platform = Some(Platform::parse("linux/arm64").unwrap());
        let (d, b) = write_index(std::slice::from_ref(&c), false).unwrap();
        assert_eq!(d.media_type, media::OCI_INDEX);
        assert_eq!(d.digest, Digest::sha256_of(&b));
        let (doc, _) = ManifestDoc::parse(&b, &d.media_type).unwrap();
        let ManifestDoc::Index(i) = doc else { panic!("not an index") };
        assert_eq!(i.manifests, vec![c.clone()]);
        let (d, _) = write_index(&[c], true).unwrap();
        assert_eq!(d.media_type, media::DOCKER_MANIFEST_LIST);
    }
}
