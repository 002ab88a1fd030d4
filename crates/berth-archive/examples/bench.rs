//! Throughput measurements for docs/dev/archive.md. Not a test; run in release mode:
//!
//! ```text
//! cargo run --release -p berth-archive --example bench -- mktar OUT.tar DIR...
//! cargo run --release -p berth-archive --example bench -- compress IN.tar
//! cargo run --release -p berth-archive --example bench -- apply LAYER TARGET [overlay]
//! cargo run --release -p berth-archive --example bench -- flatten LAYER...
//! ```

use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use berth_archive::{
    ApplyOptions, CompressOptions, Compression, Decoder, LayerBuilder, LayerReader, LayerWriter, OverlayXattr,
    TarWriter, TreeOptions, WhiteoutMode, apply_layer, apply_tar, flatten,
};

fn mbs(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

/// CPU seconds (user + system, all threads) used by this process so far, from /proc.
/// The machine is shared with other builds, so CPU time is the stable measure.
fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

struct Clock(Instant, f64);
impl Clock {
    fn start() -> Clock {
        Clock(Instant::now(), cpu())
    }
    /// (wall seconds, cpu seconds)
    fn stop(&self) -> (f64, f64) {
        (self.0.elapsed().as_secs_f64(), cpu() - self.1)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match arg(0).as_str() {
        "mktar" => {
            let mut b = LayerBuilder::new(TreeOptions::default());
            for d in &args[2..] {
                let p = Path::new(d);
                let prefix = p.strip_prefix("/").unwrap_or(p);
                b.add_tree(prefix.as_os_str().as_encoded_bytes(), p).unwrap();
            }
            let n = b.len();
            let f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(arg(1)).unwrap());
            let mut tw = TarWriter::new(f);
            let t = Instant::now();
            let r = b.write(&mut tw).unwrap();
            let mut f = tw.finish().unwrap();
            f.flush().unwrap();
            println!(
                "{n} entries, {} file bytes, {} hardlinks, {:.2}s",
                r.bytes,
                r.hardlinks,
                t.elapsed().as_secs_f64()
            );
        }
        "compress" => {
            let data = std::fs::read(arg(1)).unwrap();
            let n = data.len() as u64;
            println!("input {:.1} MB", n as f64 / 1e6);
            let mut results: Vec<(String, Vec<u8>)> = Vec::new();
            for (name, c, level, threads) in [
                ("gzip-par L1 t1", Compression::Gzip, 1, 1),
                ("gzip-par L1 t2", Compression::Gzip, 1, 2),
                ("gzip-par L6 t1", Compression::Gzip, 6, 1),
                ("gzip-par L6 t2", Compression::Gzip, 6, 2),
                ("zstd L3 t1", Compression::Zstd, 3, 1),
                ("zstd L3 t2", Compression::Zstd, 3, 2),
            ] {
                let t = Clock::start();
                let mut w = LayerWriter::new(
                    Vec::with_capacity(data.len()),
                    &CompressOptions { compression: c, level: Some(level), threads },
                )
                .unwrap();
                w.write_all(&data).unwrap();
                let (out, d) = w.finish().unwrap();
                let (s, c) = t.stop();
                println!(
                    "{name:16} {:7.1} MB/s wall, {:7.1} MB per CPU-s, ratio {:.3} (incl. both sha256)",
                    mbs(n, s),
                    mbs(n, c),
                    d.size as f64 / n as f64
                );
                results.push((name.to_string(), out));
            }
            for level in [1, 6] {
                let t = Clock::start();
                let mut e =
                    flate2::write::GzEncoder::new(Vec::with_capacity(data.len()), flate2::Compression::new(level));
                e.write_all(&data).unwrap();
                let out = e.finish().unwrap();
                let (s, c) = t.stop();
                println!(
                    "flate2 single L{level} {:7.1} MB/s wall, {:7.1} MB per CPU-s, ratio {:.3}",
                    mbs(n, s),
                    mbs(n, c),
                    out.len() as f64 / n as f64
                );
            }
            for (name, blob) in &results {
                if name.ends_with("t1") {
                    let t = Clock::start();
                    let mut r = LayerReader::new(blob.as_slice()).unwrap();
                    std::io::copy(&mut r, &mut std::io::sink()).unwrap();
                    let (_, d) = r.finish().unwrap();
                    assert_eq!(d.diff_size, n);
                    let (s, c) = t.stop();
                    println!(
                        "decompress {name:16} {:7.1} MB/s wall, {:7.1} MB per CPU-s (uncompressed, incl. both sha256)",
                        mbs(n, s),
                        mbs(n, c)
                    );
                }
            }
            let t = Clock::start();
            let mut d = Decoder::new(results[3].1.as_slice()).unwrap();
            std::io::copy(&mut d, &mut std::io::sink()).unwrap();
            let (s, c) = t.stop();
            println!("decompress gzip L6 (no hashing) {:7.1} MB/s wall, {:7.1} MB per CPU-s", mbs(n, s), mbs(n, c));
        }
        "apply" => {
            let overlay = arg(3) == "overlay";
            let target = Path::new(&args[2]);
            std::fs::create_dir_all(target).unwrap();
            let o = ApplyOptions {
                whiteouts: if overlay { WhiteoutMode::Overlay(OverlayXattr::Trusted) } else { WhiteoutMode::Flatten },
                ..Default::default()
            };
            let f = std::fs::File::open(&args[1]).unwrap();
            let t = Clock::start();
            let (rep, d) = if args.iter().any(|a| a == "readahead") {
                let r = LayerReader::new(std::io::BufReader::with_capacity(1 << 20, f)).unwrap();
                let mut ra = berth_archive::ReadAhead::new(r, 1 << 20, 8).unwrap();
                let rep = apply_tar(target, &mut ra, &o).unwrap();
                (rep, ra.finish().unwrap().finish().unwrap().1)
            } else {
                let mut r = LayerReader::new(std::io::BufReader::with_capacity(1 << 20, f)).unwrap();
                let rep = apply_tar(target, &mut r, &o).unwrap();
                (rep, r.finish().unwrap().1)
            };
            let (s, c) = t.stop();
            let entries = rep.entries;
            println!(
                "apply {:.2}s wall {:.2}s cpu: {:.1} MB/s tar, {:.0} entries/s ({entries} entries, {} files, {:.1} MB content), blob {} MB {:?}",
                s,
                c,
                mbs(rep.tar_bytes, s),
                entries as f64 / s,
                rep.files,
                rep.bytes as f64 / 1e6,
                d.size / 1_000_000,
                d.compression
            );
        }
        "apply-plain" => {
            // apply_layer on a file without the digesting wrapper.
            let target = Path::new(&args[2]);
            std::fs::create_dir_all(target).unwrap();
            let f = std::fs::File::open(&args[1]).unwrap();
            let t = Instant::now();
            let rep =
                apply_layer(target, std::io::BufReader::with_capacity(1 << 20, f), &ApplyOptions::default()).unwrap();
            let s = t.elapsed().as_secs_f64();
            println!("apply {:.2}s: {:.1} MB/s, {:.0} entries/s", s, mbs(rep.tar_bytes, s), rep.entries as f64 / s);
        }
        "flatten" => {
            let layers: Vec<String> = args[1..].to_vec();
            let t = Clock::start();
            let mut tw = TarWriter::new(CountingSink(0));
            let rep = flatten(
                layers.len(),
                |i| std::fs::File::open(&layers[i]).map(|f| std::io::BufReader::with_capacity(1 << 20, f)),
                &mut tw,
            )
            .unwrap();
            let out = tw.finish().unwrap();
            let (s, c) = t.stop();
            println!("({c:.2} cpu-s)");
            let input: u64 = layers.iter().map(|l| std::fs::metadata(l).unwrap().len()).sum();
            println!(
                "flatten {:.2}s: {} layers, {} in / {} out entries, {:.1} MB out, {:.1} MB/s of output, {:.1} MB/s of input (blob bytes, read twice)",
                s,
                rep.layers,
                rep.entries_in,
                rep.entries_out,
                out.0 as f64 / 1e6,
                mbs(out.0, s),
                mbs(input, s)
            );
        }
        "read" => {
            // Decompress + parse + read every entry, no writes: the reader's own cost.
            let t = Instant::now();
            let f = std::fs::File::open(&args[1]).unwrap();
            let mut r =
                berth_archive::TarReader::new(Decoder::new(std::io::BufReader::with_capacity(1 << 20, f)).unwrap());
            let mut buf = vec![0u8; 1 << 20];
            let mut n = 0u64;
            while let Some(mut e) = r.next_entry().unwrap() {
                n += 1;
                while e.read(&mut buf).unwrap() > 0 {}
            }
            let s = t.elapsed().as_secs_f64();
            println!("read {:.2}s: {:.1} MB/s, {n} entries", s, mbs(r.position(), s));
        }
        _ => eprintln!("usage: bench mktar|compress|apply|apply-plain|flatten|read ..."),
    }
}

struct CountingSink(u64);
impl Write for CountingSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
