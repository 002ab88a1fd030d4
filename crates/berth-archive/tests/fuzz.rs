//! Mutation fuzzing of the reader, the applier and flatten: arbitrary bytes must give `Ok` or
//! an error, never a panic, a hang or a write outside the target. Deterministic (fixed seeds) so
//! failures reproduce; set BERTH_FUZZ_ITERS for a longer run.

mod common;

use std::io::Write;

use berth_archive::{ApplyOptions, OverlayXattr, TarReader, TarWriter, WhiteoutMode, apply_layer, flatten};
use common::E::*;
use common::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let long = "x".repeat(150);
    vec![
        layer(&[Dir("a"), File("a/f", b"hello"), Sym("a/s", "../etc"), Link("a/h", "a/f"), Fifo("p"), Char("c", 1, 3)]),
        layer(&[File(".wh.a", b""), Dir("d"), File("d/.wh..wh..opq", b""), File(&format!("d/{long}"), &[9u8; 700])]),
        layer(&[Sym("up", "/"), File("up/etc/x", b"1"), Link("l", "up/etc/x"), File("../x", b"")]),
        {
            let mut h = berth_archive::Header::new(b"xattr".to_vec(), berth_archive::EntryKind::File);
            h.xattrs.insert(b"user.a".to_vec(), b"b".to_vec());
            h.uid = 5_000_000;
            h.mtime = -1;
            h.mtime_nsec = 5;
            layer(&[Raw(h, vec![])])
        },
    ]
}

fn fix_checksums(t: &mut [u8]) {
    for b in t.chunks_mut(512) {
        if b.len() == 512 && &b[257..262] == b"ustar" {
            b[148..156].copy_from_slice(b"        ");
            let sum: u32 = b.iter().map(|&c| c as u32).sum();
            b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        }
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut t = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        if t.is_empty() {
            break;
        }
        match rng.below(7) {
            0 => {
                let i = rng.below(t.len());
                t[i] = rng.next() as u8;
            }
            1 => {
                // A numeric header field gets a random octal or base-256 value.
                let blk = rng.below(t.len() / 512) * 512;
                let (off, len) = [(100, 8), (108, 8), (116, 8), (124, 12), (136, 12), (329, 8), (337, 8)][rng.below(7)];
                if blk + off + len <= t.len() {
                    if rng.below(2) == 0 {
                        let v = format!("{:0w$o}", rng.next() >> rng.below(64), w = len - 1);
                        let v = &v.as_bytes()[v.len() - (len - 1)..];
                        t[blk + off..blk + off + len - 1].copy_from_slice(v);
                    } else {
                        t[blk + off] = 0x80 | (rng.next() as u8 & 0x7f);
                        for i in 1..len {
                            t[blk + off + i] = rng.next() as u8;
                        }
                    }
                }
            }
            2 => {
                // Change a type flag.
                let blk = rng.below(t.len() / 512) * 512;
                if blk + 156 < t.len() {
                    t[blk + 156] = b"0123456789xgLKSDVMN\0"[rng.below(20)];
                }
            }
            3 => {
                let n = rng.below(t.len());
                t.truncate(n);
            }
            4 => {
                // Splice a block from another seed.
                let o = &seeds[rng.below(seeds.len())];
                let src = rng.below(o.len() / 512) * 512;
                let dst = rng.below(t.len() / 512 + 1) * 512;
                if src + 512 <= o.len() && dst <= t.len() {
                    let block = o[src..src + 512].to_vec();
                    t.splice(dst..dst, block);
                }
            }
            5 => {
                // Path bytes: slashes, dots and NULs.
                let blk = rng.below(t.len() / 512) * 512;
                if blk + 100 <= t.len() {
                    let i = blk + rng.below(100);
                    t[i] = b"/.\0a"[rng.below(4)];
                }
            }
            _ => {
                let i = rng.below(t.len() + 1);
                let junk: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                t.splice(i..i, junk);
            }
        }
    }
    if rng.below(4) != 0 {
        fix_checksums(&mut t);
    }
    t
}

#[test]
fn fuzz_reader_apply_flatten() {
    let iters: usize = std::env::var("BERTH_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1500);
    let seeds = seeds();
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() { tempfile::tempdir_in(shm).unwrap() } else { tempfile::tempdir().unwrap() };
    let outside = base.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"s").unwrap();
    let before = snapshot(&outside);
    let (mut ok, mut err) = (0, 0);
    for i in 0..iters {
        let data = mutate(&mut rng, &seeds);
        // Sometimes compress the mutated tar, sometimes corrupt the compressed stream too.
        let blob = match rng.below(4) {
            0 => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&data).unwrap();
                let mut z = e.finish().unwrap();
                if rng.below(2) == 0 && !z.is_empty() {
                    let j = rng.below(z.len());
                    z[j] ^= 1 << rng.below(8);
                }
                z
            }
            _ => data.clone(),
        };
        // The reader alone.
        let mut r = TarReader::new(data.as_slice());
        let mut n = 0;
        while let Ok(Some(mut e)) = r.next_entry() {
            let _ = std::io::copy(&mut e, &mut std::io::sink());
            n += 1;
            assert!(n < 100_000, "runaway reader");
        }
        // Apply, in both modes.
        let target = base.path().join(format!("t{i}"));
        std::fs::create_dir(&target).unwrap();
        let mode = if i % 2 == 0 { WhiteoutMode::Flatten } else { WhiteoutMode::Overlay(OverlayXattr::Trusted) };
        let o = ApplyOptions { whiteouts: mode, create_devices: i % 3 == 0, ..Default::default() };
        match apply_layer(&target, blob.as_slice(), &o) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                err += 1;
            }
        }
        let _ = std::fs::remove_dir_all(&target);
        // Flatten a two-layer stack of this and a valid seed.
        let stack = [seeds[i % seeds.len()].clone(), data];
        let mut tw = TarWriter::new(Vec::new());
        let _ = flatten(2, |k| Ok(stack[k].as_slice()), &mut tw);
    }
    assert_eq!(snapshot(&outside), before);
    let mut top: Vec<_> = std::fs::read_dir(base.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    top.sort();
    assert_eq!(top, ["outside"]);
    eprintln!("fuzz: {iters} inputs, {ok} applied, {err} rejected");
    assert!(ok > iters / 20 && err > iters / 20, "mutations too weak or too strong: {ok} ok, {err} errors");
}

#[test]
fn random_bytes() {
    let mut rng = Rng(42);
    let t = tempfile::tempdir().unwrap();
    for len in [0usize, 1, 3, 4, 511, 512, 513, 1024, 10_000] {
        for prefix in [&[][..], &[0x1f, 0x8b, 8, 0][..], &[0x28, 0xb5, 0x2f, 0xfd][..]] {
            let mut v = prefix.to_vec();
            v.extend((0..len).map(|_| rng.next() as u8));
            let _ = apply_layer(t.path(), v.as_slice(), &ApplyOptions::default());
        }
    }
    // Empty input is an empty layer.
    assert!(apply_layer(t.path(), &[][..], &ApplyOptions::default()).is_ok());
}
