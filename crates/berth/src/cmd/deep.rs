//! `system check --deep`: every unpacked layer is unpacked again from its blob (whose
//! uncompressed stream must hash to the layer's diffID) and compared with the stored copy —
//! content, file types, modes, owners, link targets and device numbers, and no extra or
//! missing entries — so a layer changed after it was unpacked (a planted file, a replaced
//! binary, a chmod) is found.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_store::{CheckReport, Store};
use berth_types::{Compression, Digest};

/// Most differences reported per layer.
const MAX_PER_LAYER: usize = 20;

pub fn check_snapshots(store: &Store, r: &mut CheckReport) {
    let Ok(snaps) = store.snapshots() else { return };
    for d in snaps {
        if !store.has_snapshot(&d) {
            continue; // reported as incomplete by the plain check
        }
        let blob = [Compression::Gzip, Compression::Zstd, Compression::None]
            .into_iter()
            .find_map(|c| store.compressed_blob_for(&d, c));
        let Some(blob) = blob else {
            r.notes.push(format!("unpacked layer {d}: no blob of it in the store to compare with; not verified"));
            continue;
        };
        match verify(store, &d, &blob) {
            Ok(diffs) => {
                let n = diffs.len();
                for x in diffs.into_iter().take(MAX_PER_LAYER) {
                    r.problems.push(format!("unpacked layer {d}: {x} (tampered? remove the image and pull again)"));
                }
                if n > MAX_PER_LAYER {
                    r.problems.push(format!("unpacked layer {d}: {} more differences", n - MAX_PER_LAYER));
                }
            }
            Err(e) => r.problems.push(format!("unpacked layer {d}: cannot verify against blob {blob}: {e}")),
        }
    }
}

fn verify(store: &Store, diff_id: &Digest, blob: &Digest) -> anyhow::Result<Vec<String>> {
    let f = store.open_blob(blob)?;
    let fresh = tempfile::Builder::new()
        .prefix(&format!("{}deep-", berth_store::owner_prefix()))
        .tempdir_in(store.root().join("tmp"))?;
    let (_, measured, _) = berth_transport::unpack::unpack_layer(f, fresh.path())?;
    if &measured.diff_id != diff_id {
        return Ok(vec![format!("its blob {blob} unpacks to diffID {}, not {diff_id}", measured.diff_id)]);
    }
    let mut diffs = Vec::new();
    compare(&store.snapshot_fs(diff_id), fresh.path(), Path::new(""), &mut diffs)?;
    Ok(diffs)
}

fn names(dir: &Path) -> std::io::Result<std::collections::BTreeSet<std::ffi::OsString>> {
    Ok(fs::read_dir(dir)?.flatten().map(|e| e.file_name()).collect())
}

/// Compares `stored/rel` with `fresh/rel` (recursively for directories).
fn compare(stored: &Path, fresh: &Path, rel: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    if out.len() > MAX_PER_LAYER {
        return Ok(());
    }
    let (a, b) = (stored.join(rel), fresh.join(rel));
    let shown = if rel.as_os_str().is_empty() { "/".to_string() } else { format!("/{}", rel.display()) };
    let (ma, mb) = (fs::symlink_metadata(&a)?, fs::symlink_metadata(&b)?);
    if ma.file_type() != mb.file_type() {
        out.push(format!("{shown}: file type differs from the layer's"));
        return Ok(());
    }
    let (mut pa, mut pb) = (ma.mode() & 0o7777, mb.mode() & 0o7777);
    if rel.as_os_str().is_empty() {
        // The root's group/other write bits are cleared when a layer is committed.
        pa &= !0o022;
        pb &= !0o022;
    }
    if pa != pb && !ma.file_type().is_symlink() {
        out.push(format!("{shown}: mode {pa:04o}, the layer says {pb:04o}"));
    }
    if (ma.uid(), ma.gid()) != (mb.uid(), mb.gid()) {
        out.push(format!("{shown}: owner {}:{}, the layer says {}:{}", ma.uid(), ma.gid(), mb.uid(), mb.gid()));
    }
    let ft = ma.file_type();
    if ft.is_symlink() {
        if fs::read_link(&a)? != fs::read_link(&b)? {
            out.push(format!("{shown}: symlink target differs from the layer's"));
        }
    } else if ft.is_file() {
        if ma.len() != mb.len() || !same_content(&a, &b)? {
            out.push(format!("{shown}: content differs from the layer's"));
        }
    } else if ft.is_dir() {
        let (na, nb) = (names(&a)?, names(&b)?);
        for n in na.difference(&nb) {
            out.push(format!("{}: not in the layer", rel.join(n).display()));
        }
        for n in nb.difference(&na) {
            out.push(format!("{}: missing", rel.join(n).display()));
        }
        for n in na.intersection(&nb) {
            compare(stored, fresh, &rel.join(n), out)?;
        }
    } else if ma.rdev() != mb.rdev() {
        out.push(format!("{shown}: device number differs from the layer's"));
    }
    Ok(())
}

fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba.get(..n) != bb.get(..m) {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let Some(b) = buf.get_mut(n..) else { break };
        match f.read(b)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
