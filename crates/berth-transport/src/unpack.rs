//! Streaming layer ingest: decompress, hash and unpack in one pass.

use std::io::Read;
use std::path::Path;

use berth_archive::apply::{ApplyOptions, OverlayXattr, WhiteoutMode};
use berth_archive::stream::{LayerReader, ReadAhead};
use berth_store::SnapshotInfo;
use berth_types::{Compression, Digest};

use crate::{Result, TransportError};

/// Digests of one layer blob, measured while unpacking it.
#[derive(Debug, Clone)]
pub struct Measured {
    pub compressed: Digest,
    pub compressed_size: u64,
    pub diff_id: Digest,
    pub compression: Compression,
}

/// Unpacks a layer blob (any compression) into `dest` in overlay form, reading `blob` to its
/// end so that the digests cover every byte. The caller compares the digests with what it
/// expects before trusting `dest`.
///
/// Decompression and both digests run on a read-ahead thread while this thread creates the
/// files, so one layer uses two cores. The reader is handed back (for the caller's tee).
pub fn unpack_layer<R: Read + Send + 'static>(blob: R, dest: &Path) -> Result<(R, Measured, SnapshotInfo)> {
    let lr = LayerReader::new(blob).map_err(|e| TransportError::io(dest, e))?;
    let compression = lr.compression();
    let mut ahead = ReadAhead::new(lr, 1 << 20, 4).map_err(|e| TransportError::io(dest, e))?;
    let opts = ApplyOptions { whiteouts: WhiteoutMode::Overlay(OverlayXattr::Trusted), ..ApplyOptions::default() };
    // apply_tar reads the uncompressed stream to its end; finish() drains the compressed side,
    // so the digests cover the whole blob.
    let applied = berth_archive::apply::apply_tar(dest, &mut ahead, &opts);
    let lr = ahead.finish().map_err(|e| TransportError::io(dest, e))?;
    let report = applied?;
    let (r, d) = lr.finish().map_err(|e| TransportError::io(dest, e))?;
    Ok((
        r,
        Measured { compressed: d.digest, compressed_size: d.size, diff_id: d.diff_id, compression },
        SnapshotInfo { size: report.bytes, entries: report.entries, created: berth_store::now_rfc3339() },
    ))
}
