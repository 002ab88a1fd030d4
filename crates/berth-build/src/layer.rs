//! Committing a build step's upper directory as a layer.

use berth_archive::{TarWriter, TreeOptions, WriteBehind, overlay_diff};
use berth_store::{SnapshotInfo, Store, TempSnapshot};
use berth_types::{Compression, Descriptor, Digest, media};

use crate::error::{BuildError, Result};

/// Writes the layer tar of an overlay upper directory (uncompressed: compression happens on
/// export), stores it as a blob whose digest is the diffID, and keeps the directory itself as
/// the unpacked snapshot (an upper dir is already in overlay-lower format). A step that
/// changed nothing still gets a layer, the empty tar (diffID sha256:5f70bf18…): BuildKit
/// exports one for every RUN/COPY/ADD/WORKDIR snapshot, empty or not (Docker 20.10's BuildKit
/// and current buildx both write it; a WORKDIR of an existing directory is the common case).
/// The `Option` is always `Some`.
pub fn commit_upper(
    store: &Store,
    snap: TempSnapshot,
    epoch: Option<i64>,
) -> Result<(Option<(Descriptor, Digest)>, u64)> {
    let fs = snap.fs();
    if let Some(work) = fs.parent().map(|p| p.join("work")) {
        let _ = std::fs::remove_dir_all(work);
    }
    // The upper directory is final: flush it while the tar is made.
    let early_sync = snap.flush_in_background();
    let builder = overlay_diff(&fs, &TreeOptions { source_date_epoch: epoch, no_xattrs: false })?;
    let entries = builder.len() as u64;
    // The tar is made here (files read, headers written) while another core hashes and
    // writes the blob.
    let blob = WriteBehind::new(store.blob_writer()?, 1 << 20, 4).map_err(|e| BuildError::io(&fs, e))?;
    let mut tw = TarWriter::new(blob);
    let report = builder.write(&mut tw)?;
    let blob = tw.finish()?.finish().map_err(|e| BuildError::io(&fs, e))?;
    let size = blob.count();
    let digest = blob.commit(None, None)?;
    store.record_layer(&digest, Compression::None, &digest)?;
    let _ = early_sync.join();
    snap.commit(&digest, &SnapshotInfo { size: report.bytes, entries, created: berth_store::now_rfc3339() })?;
    Ok((Some((Descriptor::new(media::OCI_LAYER, digest.clone(), size), digest)), report.bytes))
}
