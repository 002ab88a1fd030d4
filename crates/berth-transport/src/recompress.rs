//! Making a stored image ready for a medium that wants compressed layers (push, or
//! `--dest-compress-format`): uncompressed layers (from builds, loads of plain archives) are
//! compressed once into the store, and the result is remembered per diffID, so the next push
//! reuses the same bytes and the same digests.

use berth_archive::compress::{CompressOptions, Decoder};
use berth_archive::stream::LayerWriter;
use berth_store::{LocalImage, Store};
use berth_types::{Compression, Descriptor, Manifest, media};

use crate::source::Root;
use crate::{Result, TransportError};

/// Returns a root whose layers all use `want` (when `force`) or are at least compressed with
/// `want` when they were uncompressed. The manifest is unchanged (same digest) when no layer
/// needs work. New blobs and the new manifest are written to the store; the config is kept.
pub fn compressed_root(store: &Store, img: &LocalImage, want: Compression, force: bool) -> Result<Option<Root>> {
    let needs = |l: &Descriptor| match media::kind(&l.media_type) {
        media::Kind::Layer(c) => c != want && (force || c == Compression::None),
        _ => false,
    };
    if !img.manifest.layers.iter().any(needs) {
        return Ok(None);
    }
    // Docker's manifest family has no registered zstd layer type; zstd implies OCI.
    let docker = img.is_docker_format() && want != Compression::Zstd;
    let mut layers = Vec::new();
    for (l, diff_id) in img.manifest.layers.iter().zip(img.config.rootfs.diff_ids.iter()) {
        if !needs(l) {
            let mut l = l.clone();
            if let media::Kind::Layer(c) = media::kind(&l.media_type) {
                l.media_type = media::layer_type(docker, c).to_string();
            }
            layers.push(l);
            continue;
        }
        let digest = match store.compressed_blob_for(diff_id, want) {
            Some(d) => d,
            None => compress_blob(store, &l.digest, diff_id, want)?,
        };
        let size = store
            .blob_size(&digest)
            .ok_or_else(|| TransportError::Store(berth_store::StoreError::BlobUnknown(digest.clone())))?;
        layers.push(Descriptor::new(media::layer_type(docker, want), digest, size));
    }
    let mut config = img.manifest.config.clone();
    config.media_type = if docker { media::DOCKER_CONFIG } else { media::OCI_CONFIG }.to_string();
    let m = Manifest {
        schema_version: 2,
        media_type: Some(if docker { media::DOCKER_MANIFEST } else { media::OCI_MANIFEST }.to_string()),
        artifact_type: None,
        config,
        layers,
        subject: None,
        annotations: img.manifest.annotations.clone(),
    };
    let bytes = serde_json::to_vec(&m).map_err(|e| TransportError::Unsupported(e.to_string()))?;
    let d = store.put_blob_bytes(&bytes, None)?;
    let desc = Descriptor::new(m.media_type.as_deref().unwrap_or(media::OCI_MANIFEST), d, bytes.len() as u64);
    Ok(Some(Root { desc, bytes, names: vec![] }))
}

/// Compresses a stored layer blob (whatever its compression) with `want`, storing the result.
fn compress_blob(
    store: &Store,
    src: &berth_types::Digest,
    diff_id: &berth_types::Digest,
    want: Compression,
) -> Result<berth_types::Digest> {
    let f = store.open_blob(src)?;
    let mut dec = Decoder::new(std::io::BufReader::with_capacity(1 << 20, f))
        .map_err(|e| TransportError::io(store.blob_path(src), e))?;
    let blob = store.blob_writer()?;
    let mut w =
        LayerWriter::new(blob, &CompressOptions::new(want)).map_err(|e| TransportError::io(store.blob_path(src), e))?;
    std::io::copy(&mut dec, &mut w).map_err(|e| TransportError::io(store.blob_path(src), e))?;
    let (blob, digests) = w.finish().map_err(|e| TransportError::io(store.blob_path(src), e))?;
    if &digests.diff_id != diff_id {
        return Err(TransportError::DiffIdMismatch {
            digest: src.clone(),
            expected: diff_id.clone(),
            actual: digests.diff_id,
        });
    }
    let d = blob.commit(Some(&digests.digest), Some(digests.size))?;
    store.record_layer(&d, want, diff_id)?;
    Ok(d)
}
