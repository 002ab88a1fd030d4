//! One-pass digesting pipelines for layer blobs.
//!
//! Pull: [`LayerReader`] reads a compressed blob, yields the uncompressed tar and computes the
//! blob digest (compressed bytes) and the diffID (uncompressed bytes) at the same time.
//! Push/build: [`LayerWriter`] takes tar bytes, compresses them and computes both as well.
//!
//! Neither verifies anything: the caller compares the digests after [`LayerReader::finish`]
//! (and must not trust or commit the output before that).

use std::io::{self, Read, Write};

use berth_types::{Algorithm, Compression, Digest, DigestReader, DigestWriter};

use crate::compress::{CompressOptions, Decoder, Encoder, Sniffed, drain};

/// Digests and sizes of a layer in both forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDigests {
    /// Digest of the blob as stored/transferred (compressed).
    pub digest: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Digest of the uncompressed tar (the OCI diffID).
    pub diff_id: Digest,
    /// Size of the uncompressed tar in bytes.
    pub diff_size: u64,
    pub compression: Compression,
}

/// Reads a (possibly compressed) layer blob and yields its uncompressed tar stream.
pub struct LayerReader<R: Read> {
    inner: DigestReader<Decoder<DigestReader<R>>>,
    compression: Compression,
}

impl<R: Read> LayerReader<R> {
    /// Sniffs the compression from the magic bytes.
    pub fn new(blob: R) -> io::Result<LayerReader<R>> {
        let d = Decoder::new(DigestReader::new(blob, Algorithm::Sha256))?;
        let compression = d.compression();
        Ok(LayerReader { inner: DigestReader::new(d, Algorithm::Sha256), compression })
    }

    /// Uses `compression` regardless of what the bytes look like.
    pub fn with_compression(blob: R, compression: Compression) -> io::Result<LayerReader<R>> {
        let (_, s) = Sniffed::new(DigestReader::new(blob, Algorithm::Sha256))?;
        let d = Decoder::with_compression(s, compression)?;
        Ok(LayerReader { inner: DigestReader::new(d, Algorithm::Sha256), compression })
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Reads the rest of both streams (so trailers and checksums are checked and every byte is
    /// hashed) and returns the digests. Trailing bytes after the compressed data are hashed as
    /// part of the blob (for gzip they are an error, as for Go's reader).
    pub fn finish(mut self) -> io::Result<(R, LayerDigests)> {
        drain(&mut self.inner)?;
        let compression = self.compression;
        let (dec, diff_id, diff_size) = self.inner.into_parts();
        let mut raw = dec.into_inner();
        drain(&mut raw)?;
        let (r, digest, size) = raw.into_parts();
        Ok((r, LayerDigests { digest, size, diff_id, diff_size, compression }))
    }
}

impl<R: Read> Read for LayerReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// Compresses a tar stream and computes the blob digest and diffID in the same pass.
pub struct LayerWriter<W: Write> {
    inner: DigestWriter<Encoder<DigestWriter<W>>>,
    compression: Compression,
}

impl<W: Write> LayerWriter<W> {
    pub fn new(out: W, opts: &CompressOptions) -> io::Result<LayerWriter<W>> {
        let e = Encoder::new(DigestWriter::new(out, Algorithm::Sha256), opts)?;
        Ok(LayerWriter { inner: DigestWriter::new(e, Algorithm::Sha256), compression: opts.compression })
    }

    /// Finishes compression and returns the writer (not flushed to disk: the caller fsyncs)
    /// and the digests.
    pub fn finish(self) -> io::Result<(W, LayerDigests)> {
        let (enc, diff_id, diff_size) = self.inner.into_parts();
        let (w, digest, size) = enc.finish()?.into_parts();
        Ok((w, LayerDigests { digest, size, diff_id, diff_size, compression: self.compression }))
    }
}

impl<W: Write> Write for LayerWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads `inner` on a helper thread, `depth` chunks of `chunk` bytes ahead of the consumer.
///
/// For pulls: wrap the [`LayerReader`] (decompression and both hashes) so that they run on one
/// core while [`crate::apply_tar`] writes files on the caller's thread. [`ReadAhead::finish`]
/// joins the thread and gives the reader back (to call `LayerReader::finish`).
pub struct ReadAhead<R: Read + Send + 'static> {
    rx: Option<std::sync::mpsc::Receiver<io::Result<Vec<u8>>>>,
    recycle: std::sync::mpsc::SyncSender<Vec<u8>>,
    handle: Option<std::thread::JoinHandle<R>>,
    cur: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: Read + Send + 'static> ReadAhead<R> {
    pub fn new(mut inner: R, chunk: usize, depth: usize) -> io::Result<ReadAhead<R>> {
        let depth = depth.max(1);
        let chunk = chunk.max(4096);
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(depth);
        let (recycle, spare) = std::sync::mpsc::sync_channel::<Vec<u8>>(depth + 2);
        let handle = std::thread::Builder::new().name("berth-readahead".into()).spawn(move || {
            loop {
                let mut buf = spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(chunk));
                buf.resize(chunk, 0);
                let mut n = 0;
                let res = loop {
                    if n == chunk {
                        break Ok(());
                    }
                    match inner.read(buf.get_mut(n..).unwrap_or_default()) {
                        Ok(0) => break Ok(()),
                        Ok(k) => n += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(n);
                let done = n == 0 || res.is_err();
                let msg = match res {
                    Ok(()) => Ok(buf),
                    Err(e) => Err(e),
                };
                // The consumer went away: stop reading.
                if tx.send(msg).is_err() || done {
                    return inner;
                }
            }
        })?;
        Ok(ReadAhead { rx: Some(rx), recycle, handle: Some(handle), cur: Vec::new(), pos: 0, eof: false })
    }

    /// Waits for the helper thread and returns the inner reader. Data not yet consumed is
    /// dropped; call it after reading to the end.
    pub fn finish(mut self) -> io::Result<R> {
        self.rx = None;
        let h = self.handle.take().ok_or_else(|| io::Error::other("read-ahead already finished"))?;
        h.join().map_err(|_| io::Error::other("read-ahead thread panicked"))
    }
}

impl<R: Read + Send + 'static> Read for ReadAhead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            if self.eof {
                return Ok(0);
            }
            let Some(rx) = self.rx.as_ref() else { return Ok(0) };
            match rx.recv() {
                Ok(Ok(next)) => {
                    if next.is_empty() {
                        self.eof = true;
                    }
                    let old = std::mem::replace(&mut self.cur, next);
                    let _ = self.recycle.try_send(old);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.eof = true;
                    return Err(e);
                }
                Err(_) => {
                    self.eof = true;
                    return Ok(0);
                }
            }
        }
        let avail = self.cur.get(self.pos..).unwrap_or_default();
        let n = avail.len().min(buf.len());
        if let (Some(d), Some(s)) = (buf.get_mut(..n), avail.get(..n)) {
            d.copy_from_slice(s);
        }
        self.pos += n;
        Ok(n)
    }
}

/// Writes to `inner` on a helper thread: the caller's writes fill `chunk`-byte buffers, and
/// up to `depth` full buffers wait for the thread.
///
/// For builds: the layer tar is produced (files read, headers made) on the caller's thread
/// while the blob writer hashes and writes on another core. [`WriteBehind::finish`] writes the
/// last buffer, joins the thread and gives the writer back. The first error of `inner` is
/// returned by the next `write` (or by `finish`); later data is dropped.
pub struct WriteBehind<W: Write + Send + 'static> {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    handle: Option<std::thread::JoinHandle<(W, io::Result<()>)>>,
    cur: Vec<u8>,
    chunk: usize,
}

impl<W: Write + Send + 'static> WriteBehind<W> {
    pub fn new(mut inner: W, chunk: usize, depth: usize) -> io::Result<WriteBehind<W>> {
        let chunk = chunk.max(4096);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(depth.max(1));
        let (recycle, spare) = std::sync::mpsc::sync_channel::<Vec<u8>>(depth.max(1) + 2);
        let handle = std::thread::Builder::new().name("berth-writebehind".into()).spawn(move || {
            for mut buf in rx {
                if let Err(e) = inner.write_all(&buf) {
                    // Dropping the receiver makes the next send fail: the caller stops.
                    return (inner, Err(e));
                }
                buf.clear();
                let _ = recycle.try_send(buf);
            }
            let r = inner.flush();
            (inner, r)
        })?;
        Ok(WriteBehind { tx: Some(tx), spare, handle: Some(handle), cur: Vec::with_capacity(chunk), chunk })
    }

    fn send_current(&mut self) -> io::Result<()> {
        let next = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(self.chunk));
        let full = std::mem::replace(&mut self.cur, next);
        let sent = self.tx.as_ref().map(|tx| tx.send(full).is_ok()).unwrap_or(false);
        if sent { Ok(()) } else { Err(self.thread_error()) }
    }

    /// The helper thread stopped early: join it for its error.
    fn thread_error(&mut self) -> io::Error {
        self.tx = None;
        match self.handle.take().map(|h| h.join()) {
            Some(Ok((_, Err(e)))) => e,
            Some(Err(_)) => io::Error::other("write-behind thread panicked"),
            _ => io::Error::other("write-behind thread stopped"),
        }
    }

    /// Writes what is buffered, waits for the thread and returns the inner writer (flushed).
    pub fn finish(mut self) -> io::Result<W> {
        if !self.cur.is_empty() {
            self.send_current()?;
        }
        self.tx = None;
        let h = self.handle.take().ok_or_else(|| io::Error::other("write-behind already finished"))?;
        let (w, r) = h.join().map_err(|_| io::Error::other("write-behind thread panicked"))?;
        r.map(|()| w)
    }
}

impl<W: Write + Send + 'static> Write for WriteBehind<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.chunk - self.cur.len();
        let n = room.min(buf.len());
        self.cur.extend_from_slice(buf.get(..n).unwrap_or_default());
        if self.cur.len() >= self.chunk {
            self.send_current()?;
        }
        Ok(n)
    }
    /// Buffers stay queued: `flush` cannot promise that `inner` has the bytes (`finish` does).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for WriteBehind<W> {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_ahead_passes_everything_through() {
        let data: Vec<u8> = (0..3_000_001u32).map(|i| (i % 251) as u8).collect();
        let blob = {
            let mut w = LayerWriter::new(Vec::new(), &CompressOptions::new(Compression::Gzip)).unwrap();
            w.write_all(&data).unwrap();
            w.finish().unwrap()
        };
        let r = LayerReader::new(std::io::Cursor::new(blob.0)).unwrap();
        let mut ra = ReadAhead::new(r, 65536, 4).unwrap();
        let mut out = Vec::new();
        ra.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        let (_, d) = ra.finish().unwrap().finish().unwrap();
        assert_eq!(d, blob.1);
        // Errors come through.
        let r = LayerReader::new(std::io::Cursor::new(vec![0x1f, 0x8b, 8, 0, 1, 2, 3])).unwrap();
        let mut ra = ReadAhead::new(r, 65536, 4).unwrap();
        assert!(ra.read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn write_behind_passes_everything_through_and_reports_errors() {
        let data: Vec<u8> = (0..3_000_001u32).map(|i| (i % 251) as u8).collect();
        let mut w = WriteBehind::new(Vec::new(), 65536, 4).unwrap();
        for piece in data.chunks(7777) {
            w.write_all(piece).unwrap();
        }
        assert_eq!(w.finish().unwrap(), data);
        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                if self.0 + b.len() > 200_000 {
                    return Err(io::Error::other("disk full"));
                }
                self.0 += b.len();
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = WriteBehind::new(Full(0), 65536, 2).unwrap();
        let r = (0..100).try_for_each(|_| w.write_all(&[0u8; 65536]));
        let e = r.err().or_else(|| w.finish().err()).expect("an error");
        assert_eq!(e.to_string(), "disk full");
    }

    #[test]
    fn digests_both_ways() {
        let tar: Vec<u8> = (0..200_000u32).map(|i| (i % 97) as u8).collect();
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut w =
                LayerWriter::new(Vec::new(), &CompressOptions { compression: c, level: None, threads: 2 }).unwrap();
            w.write_all(&tar).unwrap();
            let (blob, d) = w.finish().unwrap();
            assert_eq!(d.digest, Digest::sha256_of(&blob));
            assert_eq!(d.size, blob.len() as u64);
            assert_eq!(d.diff_id, Digest::sha256_of(&tar));
            assert_eq!(d.diff_size, tar.len() as u64);
            // Read half, then finish: finish drains the rest.
            let mut r = LayerReader::new(&blob[..]).unwrap();
            assert_eq!(r.compression(), c);
            let mut half = vec![0u8; 1000];
            r.read_exact(&mut half).unwrap();
            let (_, d2) = r.finish().unwrap();
            assert_eq!(d2, d);
        }
    }
}
