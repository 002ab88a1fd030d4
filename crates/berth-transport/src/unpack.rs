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

/// What a layer blob must be, when the caller knows (from a manifest and config).
#[derive(Debug, Clone, Default)]
pub struct Expect<'a> {
    pub digest: Option<&'a Digest>,
    pub size: Option<u64>,
    pub diff_id: Option<&'a Digest>,
}

/// Streams a layer blob into the store in one pass: the bytes go to a new blob file while they
/// are decompressed, hashed and unpacked into a new snapshot. Nothing becomes visible unless the
/// content matches `expect` (digest, size and diffID, when given); then the blob, the snapshot
/// and the diffID↔blob fact are committed. Returns what was measured.
///
/// Blocking; call from a plain thread or `spawn_blocking`.
pub fn ingest_layer<R: Read + Send + 'static>(
    store: &berth_store::Store,
    r: R,
    expect: &Expect<'_>,
) -> Result<Measured> {
    let blob = store.blob_writer()?;
    let snap = store.temp_snapshot()?;
    let (tee, m, info) = unpack_layer(Tee { inner: r, out: blob }, &snap.fs())?;
    let blob = tee.out;
    if let Some(size) = expect.size
        && m.compressed_size != size
    {
        return Err(TransportError::Store(berth_store::StoreError::SizeMismatch {
            digest: expect.digest.cloned().unwrap_or_else(|| m.compressed.clone()),
            expected: size,
            actual: m.compressed_size,
        }));
    }
    if let Some(d) = expect.digest
        && *d != m.compressed
    {
        return Err(TransportError::DigestMismatch { digest: d.clone(), actual: m.compressed.clone() });
    }
    if let Some(d) = expect.diff_id
        && *d != m.diff_id
    {
        return Err(TransportError::DiffIdMismatch {
            digest: m.compressed.clone(),
            expected: d.clone(),
            actual: m.diff_id.clone(),
        });
    }
    blob.commit(Some(&m.compressed), Some(m.compressed_size))?;
    snap.commit(&m.diff_id, &info)?;
    store.record_layer(&m.compressed, m.compression, &m.diff_id)?;
    Ok(m)
}

/// Copies everything read through it into `out`.
pub struct Tee<R, W> {
    pub inner: R,
    pub out: W,
}

impl<R: Read, W: std::io::Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(b) = buf.get(..n) {
            self.out.write_all(b)?;
        }
        Ok(n)
    }
}
