//! Compression detection, decompressing readers and compressing writers.
//!
//! Detection is by magic bytes only (gzip `1f 8b`, zstd frame `28 b5 2f fd` or a skippable
//! frame `5? 2a 4d 18`); anything else is treated as uncompressed. Media types are not consulted:
//! registries and archives mislabel layers often enough that Docker and containerd also sniff.

use std::io::{self, BufReader, Read, Write};

pub use berth_types::Compression;

use crate::pgzip::ParGzWriter;

/// Buffer size for the reader under a decompressor. Large enough that the decompressor's reads
/// are cheap; small enough to be irrelevant for memory.
const READ_BUF: usize = 256 * 1024;

/// Number of bytes [`detect`] looks at.
pub const MAGIC_LEN: usize = 4;

/// Detects the compression of a stream from its first bytes (at least [`MAGIC_LEN`] when the
/// stream has that many).
pub fn detect(head: &[u8]) -> Compression {
    match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        // A zstd skippable frame (zstd:chunked and seekable formats start with one).
        [m, 0x2a, 0x4d, 0x18, ..] if m & 0xf0 == 0x50 => Compression::Zstd,
        _ => Compression::None,
    }
}

/// A reader that has had its first bytes read for sniffing and replays them.
pub struct Sniffed<R> {
    head: [u8; MAGIC_LEN],
    len: usize,
    pos: usize,
    inner: R,
}

impl<R: Read> Sniffed<R> {
    /// Reads up to [`MAGIC_LEN`] bytes from `inner` (fewer only at end of stream) and detects
    /// the compression. Nothing is lost: reading the returned value yields the whole stream.
    pub fn new(mut inner: R) -> io::Result<(Compression, Sniffed<R>)> {
        let mut head = [0u8; MAGIC_LEN];
        let mut len = 0;
        while len < MAGIC_LEN {
            let Some(buf) = head.get_mut(len..) else { break };
            match inner.read(buf) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let c = detect(head.get(..len).unwrap_or_default());
        Ok((c, Sniffed { head, len, pos: 0, inner }))
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The inner reader. Sniffed bytes not yet replayed are dropped.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Sniffed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.len {
            let rest = self.head.get(self.pos..self.len).unwrap_or_default();
            let n = rest.len().min(buf.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// A decompressing reader for any of the layer compressions.
///
/// Gzip input may have several members (as `pigz` and `cat a.gz b.gz` produce); each member's
/// CRC and size are checked, and a stream that ends before a member's trailer is an
/// `UnexpectedEof` error. Zstd input may have several frames (and skippable frames).
/// Bytes after the end of the compressed data are an error for gzip (as in Go's reader).
pub enum Decoder<R: Read> {
    None(Sniffed<R>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<BufReader<Sniffed<R>>>>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<Sniffed<R>>>),
}

impl<R: Read> Decoder<R> {
    /// Sniffs the compression of `inner` and wraps it in the matching decompressor.
    pub fn new(inner: R) -> io::Result<Decoder<R>> {
        let (c, s) = Sniffed::new(inner)?;
        Decoder::with_compression(s, c)
    }

    /// Wraps an already sniffed stream in the decompressor for `c` (which may differ from what
    /// was sniffed, when the caller insists on a media type).
    pub fn with_compression(s: Sniffed<R>, c: Compression) -> io::Result<Decoder<R>> {
        Ok(match c {
            Compression::None => Decoder::None(s),
            Compression::Gzip => {
                Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(READ_BUF, s))))
            }
            Compression::Zstd => {
                Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(READ_BUF, s))?)
            }
        })
    }

    pub fn compression(&self) -> Compression {
        match self {
            Decoder::None(_) => Compression::None,
            Decoder::Gzip(_) => Compression::Gzip,
            Decoder::Zstd(_) => Compression::Zstd,
        }
    }

    /// The underlying (compressed) reader. Bytes buffered but not yet decompressed are dropped,
    /// so call this only after reading to the end.
    pub fn into_inner(self) -> R {
        match self {
            Decoder::None(s) => s.into_inner(),
            Decoder::Gzip(d) => d.into_inner().into_inner().into_inner(),
            Decoder::Zstd(d) => d.finish().into_inner().into_inner(),
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::None(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

/// The compressions an archive given to `ADD` or `load` may have: the layer compressions plus
/// xz and bzip2 (BuildKit's and Docker's `DecompressStream` formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveCompression {
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

impl ArchiveCompression {
    /// Detects the compression from the first [`MAGIC_LEN`] bytes.
    pub fn detect(head: &[u8]) -> ArchiveCompression {
        match head {
            [0xfd, b'7', b'z', b'X', ..] => ArchiveCompression::Xz,
            // "BZh" and the block size digit.
            [b'B', b'Z', b'h', b'1'..=b'9', ..] => ArchiveCompression::Bzip2,
            _ => match detect(head) {
                Compression::None => ArchiveCompression::None,
                Compression::Gzip => ArchiveCompression::Gzip,
                Compression::Zstd => ArchiveCompression::Zstd,
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ArchiveCompression::None => "uncompressed",
            ArchiveCompression::Gzip => "gzip",
            ArchiveCompression::Zstd => "zstd",
            ArchiveCompression::Xz => "xz",
            ArchiveCompression::Bzip2 => "bzip2",
        }
    }
}

/// Sniffs `inner` and wraps it in the matching decompressor, for any [`ArchiveCompression`].
/// Everything is decoded in-process (no external programs), and a corrupt or truncated stream
/// is a read error, never silently shortened output. Concatenated streams (pigz, pbzip2,
/// `cat a.xz b.xz`) are read to their end.
pub fn decode_any<R: Read + Send + 'static>(inner: R) -> io::Result<(ArchiveCompression, Box<dyn Read + Send>)> {
    let (_, s) = Sniffed::new(inner)?;
    let c = ArchiveCompression::detect(s.head.get(..s.len).unwrap_or_default());
    let r: Box<dyn Read + Send> = match c {
        ArchiveCompression::None => Box::new(s),
        ArchiveCompression::Gzip => Box::new(Decoder::with_compression(s, Compression::Gzip)?),
        ArchiveCompression::Zstd => Box::new(Decoder::with_compression(s, Compression::Zstd)?),
        ArchiveCompression::Xz => {
            // The memory limit bounds the dictionary a hostile header may ask for (xz -9 needs
            // 64 MiB; 1 GiB leaves room for any real archive).
            Box::new(lzma_rust2::XzReader::new_mem_limit(BufReader::with_capacity(READ_BUF, s), true, 1024 * 1024))
        }
        ArchiveCompression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(BufReader::with_capacity(READ_BUF, s))),
    };
    Ok((c, r))
}

/// Settings for compressing a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressOptions {
    pub compression: Compression,
    /// Gzip: 0–9 (default 6, Docker's `gzip.DefaultCompression`); zstd: 1–22 (default 3).
    /// `None` picks the default for the compression.
    pub level: Option<i32>,
    /// Worker threads (at least 1). The output does not depend on this: the same input and
    /// level give the same bytes for any thread count, so digests are stable.
    pub threads: usize,
}

impl CompressOptions {
    pub fn new(compression: Compression) -> CompressOptions {
        CompressOptions { compression, level: None, threads: default_threads() }
    }
}

/// The number of CPUs we may use (at least 1).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// A compressing writer. Call [`Encoder::finish`] to write the trailer; dropping it without
/// finishing leaves a truncated stream.
pub enum Encoder<W: Write> {
    None(W),
    Gzip(Box<ParGzWriter<W>>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    pub fn new(inner: W, opts: &CompressOptions) -> io::Result<Encoder<W>> {
        let threads = opts.threads.max(1);
        Ok(match opts.compression {
            Compression::None => Encoder::None(inner),
            Compression::Gzip => {
                let level = opts.level.unwrap_or(6).clamp(0, 9) as u32;
                Encoder::Gzip(Box::new(ParGzWriter::new(inner, level, threads)))
            }
            Compression::Zstd => {
                let level = opts.level.unwrap_or(3).clamp(1, 22);
                let mut e = zstd::stream::write::Encoder::new(inner, level)?;
                // Always use the multi-threaded mode, even with one worker: libzstd's MT output
                // depends on the parameters, not on the number of workers, whereas its
                // single-threaded mode (0 workers) produces different bytes.
                e.multithread(u32::try_from(threads).unwrap_or(1))?;
                e.include_checksum(true)?;
                Encoder::Zstd(e)
            }
        })
    }

    /// Flushes everything, writes the trailer and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(w) => (*w).finish(),
            Encoder::Zstd(w) => w.finish(),
        }
    }

    pub fn get_ref(&self) -> &W {
        match self {
            Encoder::None(w) => w,
            Encoder::Gzip(w) => w.get_ref(),
            Encoder::Zstd(w) => w.get_ref(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(w) => w.write(buf),
            Encoder::Zstd(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.write_all(buf),
            Encoder::Gzip(w) => w.write_all(buf),
            Encoder::Zstd(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(w) => w.flush(),
            Encoder::Zstd(w) => w.flush(),
        }
    }
}

/// Reads `r` to its end, discarding the data; returns the number of bytes.
pub(crate) fn drain<R: Read + ?Sized>(r: &mut R) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i * 7 + i / 1000) % 251) as u8).collect()
    }

    fn encode(data: &[u8], c: Compression, level: Option<i32>, threads: usize) -> Vec<u8> {
        let mut e = Encoder::new(Vec::new(), &CompressOptions { compression: c, level, threads }).unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode(data: &[u8]) -> io::Result<(Compression, Vec<u8>)> {
        let mut d = Decoder::new(data)?;
        let mut out = Vec::new();
        d.read_to_end(&mut out)?;
        Ok((d.compression(), out))
    }

    /// Runs `cmd args` with `input` on stdin; returns (success, stdout).
    fn pipe(cmd: &str, args: &[&str], input: &[u8]) -> (bool, Vec<u8>) {
        let mut child = Command::new(cmd)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd} must be installed (scripts/ci/install-deps.sh): {e}"));
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let t = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        t.join().unwrap();
        (out.status.success(), out.stdout)
    }

    #[test]
    fn decode_any_reads_xz_bzip2_gzip_zstd_and_plain_in_process() {
        let data = sample(400_000);
        let twice = [data.clone(), data.clone()].concat();
        let mut cases = vec![(ArchiveCompression::None, data.clone(), data.clone())];
        cases.push((ArchiveCompression::Gzip, encode(&data, Compression::Gzip, None, 1), data.clone()));
        cases.push((ArchiveCompression::Zstd, encode(&data, Compression::Zstd, None, 1), data.clone()));
        // The host programs only make the fixtures; decoding never runs them.
        let (ok, xz) = pipe("xz", &["-c"], &data);
        assert!(ok);
        let (ok, bz) = pipe("bzip2", &["-c"], &data);
        assert!(ok);
        cases.push((ArchiveCompression::Xz, xz.clone(), data.clone()));
        cases.push((ArchiveCompression::Bzip2, bz.clone(), data.clone()));
        // Concatenated streams are read to the end.
        cases.push((ArchiveCompression::Xz, [xz.clone(), xz].concat(), twice.clone()));
        cases.push((ArchiveCompression::Bzip2, [bz.clone(), bz].concat(), twice));
        for (c, z, want) in cases {
            let (got, mut r) = decode_any(std::io::Cursor::new(z)).unwrap();
            assert_eq!(got, c);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out.len(), want.len(), "{}", c.name());
            assert!(out == want, "{}", c.name());
        }
    }

    #[test]
    fn decode_any_fails_on_corrupt_or_truncated_input() {
        let data = sample(300_000);
        let (_, xz) = pipe("xz", &["-c"], &data);
        let (_, bz) = pipe("bzip2", &["-c"], &data);
        for z in [xz, bz] {
            let mut cut = z.clone();
            cut.truncate(z.len() / 2);
            let mut flipped = z.clone();
            let mid = z.len() / 2;
            flipped[mid] ^= 0x55;
            for bad in [cut, flipped] {
                let (_, mut r) = decode_any(std::io::Cursor::new(bad)).unwrap();
                let mut out = Vec::new();
                assert!(r.read_to_end(&mut out).is_err());
            }
        }
    }

    #[test]
    fn detect_magic() {
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(detect(&[0x50, 0x2a, 0x4d, 0x18]), Compression::Zstd);
        assert_eq!(detect(b"usr/"), Compression::None);
        assert_eq!(detect(&[0x1f]), Compression::None);
        assert_eq!(detect(&[]), Compression::None);
    }

    #[test]
    fn roundtrip_all() {
        let data = sample(700_000);
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            for threads in [1, 2] {
                let z = encode(&data, c, None, threads);
                let (got_c, out) = decode(&z).unwrap();
                assert_eq!(got_c, c);
                assert_eq!(out, data);
            }
        }
        // Tiny inputs (shorter than the magic) still decode.
        for n in 0..5 {
            let (c, out) = decode(&sample(n)).unwrap();
            assert_eq!((c, out), (Compression::None, sample(n)));
        }
    }

    #[test]
    fn zstd_output_independent_of_threads() {
        let data = sample(3_000_000);
        assert_eq!(encode(&data, Compression::Zstd, Some(3), 1), encode(&data, Compression::Zstd, Some(3), 2));
    }

    #[test]
    fn gnu_gzip_and_zstd_read_ours() {
        let data = sample(1_500_000);
        for threads in [1, 2] {
            let z = encode(&data, Compression::Gzip, Some(6), threads);
            assert!(pipe("gzip", &["-t"], &z).0, "gzip -t rejected our stream");
            let (ok, out) = pipe("zcat", &[], &z);
            assert!(ok);
            assert_eq!(out, data);
            let (ok, out) = pipe("pigz", &["-dc"], &z);
            assert!(ok);
            assert_eq!(out, data);
            let z = encode(&data, Compression::Zstd, None, threads);
            let (ok, out) = pipe("zstd", &["-dc"], &z);
            assert!(ok);
            assert_eq!(out, data);
        }
    }

    #[test]
    fn we_read_gnu_gzip_pigz_zstd_and_multi_member() {
        let data = sample(900_000);
        let (ok, gz) = pipe("gzip", &["-c", "-6"], &data);
        assert!(ok);
        assert_eq!(decode(&gz).unwrap(), (Compression::Gzip, data.clone()));
        let (ok, pz) = pipe("pigz", &["-c", "-p", "2"], &data);
        assert!(ok);
        assert_eq!(decode(&pz).unwrap(), (Compression::Gzip, data.clone()));
        let (ok, zs) = pipe("zstd", &["-c", "-3"], &data);
        assert!(ok);
        assert_eq!(decode(&zs).unwrap(), (Compression::Zstd, data.clone()));
        // Two gzip members and two zstd frames.
        let mut two = gz.clone();
        two.extend_from_slice(&encode(b"tail", Compression::Gzip, None, 1));
        let mut want = data.clone();
        want.extend_from_slice(b"tail");
        assert_eq!(decode(&two).unwrap().1, want);
        let mut two = zs.clone();
        two.extend_from_slice(&encode(b"tail", Compression::Zstd, None, 1));
        assert_eq!(decode(&two).unwrap().1, want);
    }

    #[test]
    fn truncated_and_corrupt_are_errors() {
        let data = sample(300_000);
        for c in [Compression::Gzip, Compression::Zstd] {
            let z = encode(&data, c, None, 1);
            for cut in [z.len() - 1, z.len() - 5, z.len() / 2, 11] {
                assert!(decode(&z[..cut]).is_err(), "{c:?} cut at {cut} accepted");
            }
        }
        let mut z = encode(&data, Compression::Gzip, None, 1);
        let n = z.len();
        z[n - 6] ^= 1; // CRC
        assert!(decode(&z).is_err());
        let mut z = encode(&data, Compression::Gzip, None, 1);
        z.extend_from_slice(b"garbage!");
        assert!(decode(&z).is_err(), "trailing garbage after gzip accepted");
    }
}
