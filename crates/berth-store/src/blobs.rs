//! Content-addressed blobs under `blobs/<alg>/<hex>`.
//!
//! Contract: a blob is renamed into `blobs/` only after its digest (and size, when known) has
//! been verified by [`BlobWriter::commit`], so any file there is trusted by readers. Readers do
//! not re-hash on every read; `berth system check` does.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use berth_types::{Algorithm, Digest, DigestWriter};

use crate::fsutil::{self, tmp_name};
use crate::{Result, Store, StoreError};

/// Largest blob [`Store::read_blob`] will load into memory (manifests and configs).
pub const SMALL_BLOB_LIMIT: u64 = 16 * 1024 * 1024;

impl Store {
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join(d.algorithm().as_str()).join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Size of a stored blob, if present.
    pub fn blob_size(&self, d: &Digest) -> Option<u64> {
        std::fs::metadata(self.blob_path(d)).ok().filter(|m| m.is_file()).map(|m| m.len())
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.blob_path(d);
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::BlobUnknown(d.clone()),
            _ => StoreError::io(&p, e),
        })
    }

    /// Reads a small blob (manifest, config) into memory.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let mut f = self.open_blob(d)?;
        let size = f.metadata().map_err(|e| StoreError::io(&self.blob_path(d), e))?.len();
        if size > SMALL_BLOB_LIMIT {
            return Err(StoreError::BlobTooLarge { digest: d.clone(), size, limit: SMALL_BLOB_LIMIT });
        }
        let mut v = Vec::with_capacity(size as usize);
        f.read_to_end(&mut v).map_err(|e| StoreError::io(&self.blob_path(d), e))?;
        Ok(v)
    }

    /// Starts writing a new blob. Nothing is visible until [`BlobWriter::commit`].
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        BlobWriter::new(self.clone(), Algorithm::Sha256)
    }

    /// Writes an in-memory blob, verifying it against `expected` when given. Returns its digest.
    pub fn put_blob_bytes(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let alg = expected.map(|d| d.algorithm()).unwrap_or(Algorithm::Sha256);
        let actual = {
            let mut h = alg.hasher();
            h.update(data);
            h.finish()
        };
        if let Some(e) = expected
            && *e != actual
        {
            return Err(StoreError::DigestMismatch { expected: e.clone(), actual, size: data.len() as u64 });
        }
        if self.has_blob(&actual) {
            return Ok(actual);
        }
        let mut w = BlobWriter::new(self.clone(), alg)?;
        w.write_all(data).map_err(|e| StoreError::io(&w.tmp, e))?;
        w.commit(Some(&actual), Some(data.len() as u64))
    }

    /// Streams `r` into the store, verifying digest and size when given.
    pub fn put_blob_reader(
        &self,
        r: &mut dyn Read,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<(Digest, u64)> {
        let alg = expected.map(|d| d.algorithm()).unwrap_or(Algorithm::Sha256);
        let mut w = BlobWriter::new(self.clone(), alg)?;
        io::copy(r, &mut w).map_err(|e| StoreError::io(&w.tmp, e))?;
        let n = w.count();
        let d = w.commit(expected, size)?;
        Ok((d, n))
    }
}

/// A blob being written: a temp file plus a running hash. Dropping it without `commit` removes
/// the temp file.
pub struct BlobWriter {
    store: Store,
    tmp: PathBuf,
    inner: Option<DigestWriter<BufWriter<File>>>,
}

impl BlobWriter {
    fn new(store: Store, alg: Algorithm) -> Result<BlobWriter> {
        let tmp = tmp_name(&store.tmp_dir(), ".blob");
        let f = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        Ok(BlobWriter { store, tmp, inner: Some(DigestWriter::new(BufWriter::with_capacity(1 << 20, f), alg)) })
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.inner.as_ref().map(|w| w.count()).unwrap_or(0)
    }

    /// Path of the temp file (for error messages).
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// Verifies the content against `expected` (digest and size when given), fsyncs, and renames
    /// the blob into place. On a mismatch the temp file is removed and nothing enters the store.
    pub fn commit(mut self, expected: Option<&Digest>, size: Option<u64>) -> Result<Digest> {
        let Some(w) = self.inner.take() else {
            return Err(StoreError::io(&self.tmp, io::Error::other("blob writer already finished")));
        };
        let (buf, actual, n) = w.into_parts();
        let f = buf.into_inner().map_err(|e| StoreError::io(&self.tmp, e.into_error()))?;
        if let Some(s) = size
            && s != n
        {
            return Err(StoreError::SizeMismatch {
                digest: expected.cloned().unwrap_or(actual),
                expected: s,
                actual: n,
            });
        }
        if let Some(e) = expected
            && *e != actual
        {
            return Err(StoreError::DigestMismatch { expected: e.clone(), actual, size: n });
        }
        let dest = self.store.blob_path(&actual);
        if dest.is_file() {
            // Someone else stored the same content first; ours is identical.
            return Ok(actual);
        }
        f.sync_all().map_err(|e| StoreError::io(&self.tmp, e))?;
        drop(f);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
        }
        std::fs::rename(&self.tmp, &dest).map_err(|e| StoreError::io(&dest, e))?;
        fsutil::sync_parent(&dest)?;
        Ok(actual)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.as_mut() {
            Some(w) => w.write(buf),
            None => Err(io::Error::other("blob writer already finished")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // After a successful commit the temp path no longer exists; otherwise clean up.
        let _ = std::fs::remove_file(&self.tmp);
    }
}
