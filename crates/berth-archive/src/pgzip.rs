//! Block-parallel gzip compression (the pigz scheme).
//!
//! The input is cut into fixed-size blocks. Each block is deflated independently, primed with
//! the last 32 KiB of the previous block as a preset dictionary (so the ratio stays within a
//! fraction of a percent of a single-stream deflate), and ended with a sync flush, which
//! byte-aligns it; the last block is ended with a final block. The concatenation is one valid
//! deflate stream inside one gzip member, readable by any gzip reader.
//!
//! Determinism: the bytes depend only on the input, the level and the block size, never on the
//! number of threads or on timing. A single thread compresses the same blocks inline. The gzip
//! header is Go's (`compress/gzip`): no name, mtime 0, OS 255, XFL by level.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression as Level, Crc, FlushCompress, Status};

/// Uncompressed bytes per block (pigz's default).
pub const BLOCK_SIZE: usize = 128 * 1024;
/// Deflate's window: the dictionary carried from one block to the next.
const DICT_SIZE: usize = 32 * 1024;

struct Job {
    data: Vec<u8>,
    dict: Vec<u8>,
    last: bool,
    reply: SyncSender<io::Result<Vec<u8>>>,
}

struct Pool {
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_pending: usize,
}

/// A gzip writer that compresses blocks on `threads` worker threads (inline when 1).
///
/// Not `Sync`; it may be moved between threads if `W: Send`. `flush` only flushes the inner
/// writer: forcing a block boundary would make the output depend on call patterns.
pub struct ParGzWriter<W: Write> {
    inner: W,
    level: u32,
    buf: Vec<u8>,
    dict: Vec<u8>,
    crc: Crc,
    header_written: bool,
    pool: Option<Pool>,
    /// Compressor for inline (single-thread) mode.
    local: Option<Compress>,
}

impl<W: Write> ParGzWriter<W> {
    pub fn new(inner: W, level: u32, threads: usize) -> ParGzWriter<W> {
        let level = level.min(9);
        let threads = threads.max(1);
        // If no worker thread could be started, compress inline: same bytes, just slower.
        let pool = (threads > 1).then(|| Pool::new(threads, level)).filter(|p| !p.workers.is_empty());
        ParGzWriter {
            inner,
            level,
            buf: Vec::with_capacity(BLOCK_SIZE),
            dict: Vec::new(),
            crc: Crc::new(),
            header_written: false,
            local: pool.is_none().then(|| Compress::new(Level::new(level), false)),
            pool,
        }
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            let xfl = match self.level {
                9 => 2,
                1 => 4,
                _ => 0,
            };
            self.inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Hands the buffered block to the compressor and writes whatever output is ready.
    fn submit(&mut self, last: bool) -> io::Result<()> {
        self.write_header()?;
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(if last { 0 } else { BLOCK_SIZE }));
        let next_dict = data.get(data.len().saturating_sub(DICT_SIZE)..).unwrap_or_default().to_vec();
        let dict = std::mem::replace(&mut self.dict, next_dict);
        if let Some(c) = self.local.as_mut() {
            let out = compress_block(c, &data, &dict, last)?;
            return self.inner.write_all(&out);
        }
        let Some(pool) = self.pool.as_mut() else { return Err(io::Error::other("gzip writer already finished")) };
        let (tx, rx) = sync_channel(1);
        let jobs = pool.jobs.as_ref().ok_or_else(|| io::Error::other("gzip writer already finished"))?;
        jobs.send(Job { data, dict, last, reply: tx }).map_err(|_| worker_died())?;
        pool.pending.push_back(rx);
        // Keep at most `max_pending` blocks in flight; write completed ones in order.
        while let Some(front) = pool.pending.front() {
            let res = if pool.pending.len() > pool.max_pending || last {
                front.recv().map_err(|_| worker_died())?
            } else {
                match front.try_recv() {
                    Ok(r) => r,
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return Err(worker_died()),
                }
            };
            pool.pending.pop_front();
            self.inner.write_all(&res?)?;
        }
        Ok(())
    }

    /// Compresses the rest, writes the gzip trailer, stops the workers and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        let trailer = {
            let mut t = [0u8; 8];
            t[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
            t[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
            t
        };
        self.inner.write_all(&trailer)?;
        self.inner.flush()?;
        let ParGzWriter { inner, pool, .. } = self;
        drop(pool);
        Ok(inner)
    }
}

impl<W: Write> Write for ParGzWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let total = data.len();
        self.crc.update(data);
        while !data.is_empty() {
            let room = BLOCK_SIZE - self.buf.len();
            let (now, rest) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(now);
            data = rest;
            if self.buf.len() == BLOCK_SIZE {
                self.submit(false)?;
            }
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn worker_died() -> io::Error {
    io::Error::other("gzip compression worker thread exited unexpectedly")
}

impl Pool {
    fn new(threads: usize, level: u32) -> Pool {
        let (tx, rx) = sync_channel::<Job>(threads * 2);
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                std::thread::Builder::new().name("berth-gzip".into()).spawn(move || worker(rx, level))
            })
            .filter_map(Result::ok)
            .collect();
        Pool { jobs: Some(tx), workers, pending: VecDeque::new(), max_pending: threads * 2 }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the job channel makes every worker's `recv` fail, so they exit.
        self.jobs = None;
        self.pending.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(rx: Arc<Mutex<Receiver<Job>>>, level: u32) {
    let mut c = Compress::new(Level::new(level), false);
    loop {
        let job = {
            let Ok(guard) = rx.lock() else { return };
            match guard.recv() {
                Ok(j) => j,
                Err(_) => return,
            }
        };
        let out = compress_block(&mut c, &job.data, &job.dict, job.last);
        // The writer may have gone away (error path); nothing to do then.
        let _ = job.reply.send(out);
    }
}

/// Deflates one block: primed with `dict`, ended with a sync flush (or the final block).
fn compress_block(c: &mut Compress, data: &[u8], dict: &[u8], last: bool) -> io::Result<Vec<u8>> {
    c.reset();
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 64);
    let start = c.total_in();
    loop {
        let consumed = usize::try_from(c.total_in() - start).unwrap_or(usize::MAX);
        let input = data.get(consumed..).unwrap_or_default();
        let status = c.compress_vec(input, &mut out, flush).map_err(io::Error::other)?;
        let all_in = usize::try_from(c.total_in() - start).unwrap_or(usize::MAX) >= data.len();
        let done = match (last, status) {
            (true, Status::StreamEnd) => true,
            (true, _) => false,
            // With a sync flush, deflate is done when it consumed everything and still had
            // room left in the output (otherwise more flush output may be pending).
            (false, _) => all_in && out.len() < out.capacity(),
        };
        if done {
            return Ok(out);
        }
        out.reserve(64 * 1024);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Half random, half text-like data, deterministic.
    pub(crate) fn sample(n: usize) -> Vec<u8> {
        let mut x = 0x9e3779b97f4a7c15u64;
        let words: &[&[u8]] = &[b"layer ", b"tar ", b"gzip ", b"berth\n", b"0123 ", b"image "];
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (v.len() / 50_000) % 2 == 0 {
                v.extend_from_slice(&x.to_le_bytes());
            } else {
                v.extend_from_slice(words[(x % words.len() as u64) as usize]);
            }
        }
        v.truncate(n);
        v
    }

    fn gz(data: &[u8], level: u32, threads: usize, chunk: usize) -> Vec<u8> {
        let mut w = ParGzWriter::new(Vec::new(), level, threads);
        for c in data.chunks(chunk.max(1)) {
            w.write_all(c).unwrap();
        }
        w.finish().unwrap()
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn roundtrip_and_deterministic_across_threads_and_write_sizes() {
        for n in [0, 1, 1000, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, 3 * BLOCK_SIZE, 1_000_003] {
            let data = sample(n);
            let a = gz(&data, 6, 1, 4096);
            let b = gz(&data, 6, 2, 7777);
            let c = gz(&data, 6, 4, 1 << 20);
            assert_eq!(a, b, "n={n}");
            assert_eq!(a, c, "n={n}");
            assert_eq!(gunzip(&a), data, "n={n}");
            assert_eq!(&a[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        }
    }

    #[test]
    fn all_levels_decode() {
        let data = sample(400_000);
        for level in 0..=9 {
            let z = gz(&data, level, 2, 65536);
            assert_eq!(gunzip(&z), data, "level {level}");
        }
    }

    #[test]
    fn ratio_close_to_single_stream() {
        let data = sample(2_000_000);
        let par = gz(&data, 6, 2, 1 << 16).len();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(&data).unwrap();
        let single = e.finish().unwrap().len();
        assert!((par as f64) < single as f64 * 1.01, "par {par} single {single}");
    }
}
