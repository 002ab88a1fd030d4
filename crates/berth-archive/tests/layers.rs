//! Whiteouts and opaque directories in both modes, and flattening layer stacks.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use berth_archive::{
    ApplyOptions, CompressOptions, Compression, LayerWriter, OverlayXattr, TarWriter, WhiteoutMode, apply_layer,
    apply_tar, flatten,
};
use common::E::*;
use common::*;

fn flat() -> ApplyOptions {
    ApplyOptions::default()
}

fn overlay() -> ApplyOptions {
    ApplyOptions { whiteouts: WhiteoutMode::Overlay(OverlayXattr::Trusted), ..Default::default() }
}

fn lower() -> Vec<u8> {
    layer(&[
        Dir("a"),
        File("a/x", b"x"),
        File("a/y", b"y"),
        Dir("a/sub"),
        File("a/sub/z", b"z"),
        File("b", b"b"),
        Dir("c"),
        File("c/old", b"o"),
    ])
}

#[test]
fn flatten_mode_whiteouts() {
    let t = tempfile::tempdir().unwrap();
    apply_tar(t.path(), lower().as_slice(), &flat()).unwrap();
    let r = apply_tar(
        t.path(),
        layer(&[
            File("a/.wh.x", b""),
            File(".wh.b", b""),
            File("a/.wh.sub", b""),
            File(".wh.missing", b""),
            File("nope/.wh.x", b""),
        ])
        .as_slice(),
        &flat(),
    )
    .unwrap();
    assert_eq!(r.whiteouts, 5);
    assert_eq!(names(t.path()), ["a", "a/y", "c", "c/old"]);
    // Whiteout files themselves never appear.
    assert!(!t.path().join("a/.wh.x").exists());
}

#[test]
fn whiteouts_only_hide_lower_layers() {
    let t = tempfile::tempdir().unwrap();
    apply_tar(t.path(), lower().as_slice(), &flat()).unwrap();
    // The layer adds `n`, then whites it out: `n` stays. It also whites out `b` and recreates it.
    apply_tar(
        t.path(),
        layer(&[File("n", b"new"), File(".wh.n", b""), File(".wh.b", b""), File("b", b"B2")]).as_slice(),
        &flat(),
    )
    .unwrap();
    assert_eq!(std::fs::read(t.path().join("n")).unwrap(), b"new");
    assert_eq!(std::fs::read(t.path().join("b")).unwrap(), b"B2");
}

#[test]
fn flatten_mode_opaque() {
    let t = tempfile::tempdir().unwrap();
    apply_tar(t.path(), lower().as_slice(), &flat()).unwrap();
    // Marker first (Docker's order), and marker after a child of this layer: both keep only
    // this layer's entries.
    apply_tar(t.path(), layer(&[Dir("a"), File("a/.wh..wh..opq", b""), File("a/new", b"n")]).as_slice(), &flat())
        .unwrap();
    assert_eq!(names(t.path()), ["a", "a/new", "b", "c", "c/old"]);
    apply_tar(
        t.path(),
        layer(&[Dir("c"), File("c/fresh", b"f"), Dir("c/d"), File("c/.wh..wh..opq", b"")]).as_slice(),
        &flat(),
    )
    .unwrap();
    assert_eq!(names(t.path()), ["a", "a/new", "b", "c", "c/d", "c/fresh"]);
}

#[test]
fn overlay_mode_whiteouts_and_opaque() {
    let t = tempfile::tempdir().unwrap();
    let r = apply_tar(
        t.path(),
        layer(&[
            Dir("a"),
            File("a/.wh..wh..opq", b""),
            File("a/new", b"n"),
            File("a/.wh.x", b""),
            File("deep/er/.wh.gone", b""),
            File("aufs/.wh..wh.plnk", b""),
        ])
        .as_slice(),
        &overlay(),
    )
    .unwrap();
    assert_eq!(r.skipped_total, 1, "aufs metadata is skipped: {:?}", r.skipped);
    for p in ["a/x", "deep/er/gone"] {
        let md = std::fs::symlink_metadata(t.path().join(p)).unwrap();
        assert!(md.file_type().is_char_device() && md.rdev() == 0, "{p}");
    }
    assert_eq!(xattr_get(&t.path().join("a"), "trusted.overlay.opaque").unwrap(), b"y");
    assert!(xattr_get(&t.path().join("deep"), "trusted.overlay.opaque").is_err());
    // A whiteout then a directory of the same name in one layer: an opaque new directory.
    let t2 = tempfile::tempdir().unwrap();
    apply_tar(t2.path(), layer(&[File(".wh.d", b""), Dir("d"), File("d/f", b"")]).as_slice(), &overlay()).unwrap();
    assert!(std::fs::symlink_metadata(t2.path().join("d")).unwrap().is_dir());
    assert_eq!(xattr_get(&t2.path().join("d"), "trusted.overlay.opaque").unwrap(), b"y");
    // userxattr flavour.
    let t3 = tempfile::tempdir().unwrap();
    let o = ApplyOptions { whiteouts: WhiteoutMode::Overlay(OverlayXattr::User), ..Default::default() };
    apply_tar(t3.path(), layer(&[Dir("a"), File("a/.wh..wh..opq", b"")]).as_slice(), &o).unwrap();
    assert_eq!(xattr_get(&t3.path().join("a"), "user.overlay.opaque").unwrap(), b"y");
}

#[test]
fn overlay_xattrs_from_images_are_never_restored() {
    let t = tempfile::tempdir().unwrap();
    let mut h = berth_archive::Header::new(b"d".to_vec(), berth_archive::EntryKind::Dir);
    h.xattrs.insert(b"trusted.overlay.opaque".to_vec(), b"y".to_vec());
    h.xattrs.insert(b"user.overlay.redirect".to_vec(), b"/etc".to_vec());
    h.xattrs.insert(b"user.ok".to_vec(), b"1".to_vec());
    let r = apply_tar(t.path(), layer(&[Raw(h, vec![])]).as_slice(), &flat()).unwrap();
    assert_eq!(r.skipped_total, 2);
    assert!(xattr_get(&t.path().join("d"), "trusted.overlay.opaque").is_err());
    assert_eq!(xattr_get(&t.path().join("d"), "user.ok").unwrap(), b"1");
}

fn stack() -> Vec<Vec<u8>> {
    vec![
        layer(&[
            Dir("d"),
            Dir("d/sub"),
            File("d/f1", b"one"),
            File("d/sub/f2", b"two"),
            File("x", b"old x"),
            Link("hl", "x"),
            Dir("e"),
            File("e/k", b"k"),
            Sym("s", "d/f1"),
            Dir("opq"),
            File("opq/old1", b"1"),
            Dir("opq/old2"),
            File("opq/old2/z", b"z"),
            Fifo("fifo"),
        ]),
        layer(&[
            Dir("d"),
            File("d/.wh.f1", b""),
            File("x", b"new x"),
            File("e", b"e is a file now"),
            Dir("opq"),
            File("opq/.wh..wh..opq", b""),
            File("opq/new", b"n"),
            DirMode("d/sub", 0o700),
            Link("n2", "d/sub/f2"),
        ]),
        layer(&[File(".wh.d", b""), Dir("d"), File("d/again", b"again"), File(".wh.fifo", b""), Char("null", 1, 3)]),
    ]
}

#[test]
fn flatten_equals_sequential_apply() {
    let layers = stack();
    // Mix compressions: flatten sniffs each layer.
    let blobs: Vec<Vec<u8>> = layers
        .iter()
        .zip([Compression::None, Compression::Gzip, Compression::Zstd])
        .map(|(l, c)| {
            let mut w =
                LayerWriter::new(Vec::new(), &CompressOptions { compression: c, level: None, threads: 1 }).unwrap();
            std::io::Write::write_all(&mut w, l).unwrap();
            w.finish().unwrap().0
        })
        .collect();
    let seq = tempfile::tempdir().unwrap();
    let o = ApplyOptions { create_devices: true, ..flat() };
    for b in &blobs {
        apply_layer(seq.path(), b.as_slice(), &o).unwrap();
    }
    let mut tw = TarWriter::new(Vec::new());
    let rep = flatten(blobs.len(), |i| Ok(blobs[i].as_slice()), &mut tw).unwrap();
    let one = tw.finish().unwrap();
    assert!(rep.entries_out < rep.entries_in);
    let fl = tempfile::tempdir().unwrap();
    apply_tar(fl.path(), one.as_slice(), &o).unwrap();
    let so = SnapOpts { dir_mtimes: false, ..Default::default() };
    let (a, b) = (snapshot_with(seq.path(), &so), snapshot_with(fl.path(), &so));
    assert_eq!(a, b);
    // The hard link whose original was overwritten keeps the old content, and the one whose
    // original's directory was deleted keeps its data.
    assert_eq!(std::fs::read(fl.path().join("hl")).unwrap(), b"old x");
    assert_eq!(std::fs::read(fl.path().join("n2")).unwrap(), b"two");
    assert_eq!(names(fl.path()), ["d", "d/again", "e", "hl", "n2", "null", "opq", "opq/new", "s", "x"]);
    // Deterministic.
    let mut tw = TarWriter::new(Vec::new());
    flatten(blobs.len(), |i| Ok(blobs[i].as_slice()), &mut tw).unwrap();
    assert_eq!(tw.finish().unwrap(), one);
}

#[test]
fn flatten_detects_layers_changing_between_passes() {
    let layers = stack();
    let mut calls = 0;
    let mut tw = TarWriter::new(Vec::new());
    let r = flatten(
        layers.len(),
        |i| {
            calls += 1;
            // Second pass over layer 0 gets a different (shorter) layer.
            Ok(std::io::Cursor::new(if calls > layers.len() && i == 0 { layers[2].clone() } else { layers[i].clone() }))
        },
        &mut tw,
    );
    assert!(r.is_err());
}

#[test]
fn existing_directory_gets_the_new_owner_and_mode() {
    let t = tempfile::tempdir().unwrap();
    let mut d = berth_archive::Header::new(b"d".to_vec(), berth_archive::EntryKind::Dir);
    d.uid = 1000;
    d.gid = 1000;
    d.mode = 0o700;
    apply_tar(t.path(), layer(&[Raw(d.clone(), vec![])]).as_slice(), &flat()).unwrap();
    d.uid = 0;
    d.gid = 0;
    d.mode = 0o755;
    apply_tar(t.path(), layer(&[Raw(d, vec![]), File("d/f", b"")]).as_slice(), &flat()).unwrap();
    let md = std::fs::metadata(t.path().join("d")).unwrap();
    assert_eq!((md.uid(), md.gid(), md.mode() & 0o7777), (0, 0, 0o755));
    // Files and symlinks created in a setgid directory still get the archive's group.
    let mut sg = berth_archive::Header::new(b"sg".to_vec(), berth_archive::EntryKind::Dir);
    sg.gid = 50;
    sg.mode = 0o2775;
    apply_tar(
        t.path(),
        layer(&[Raw(sg, vec![]), File("sg/f", b""), Sym("sg/l", "f"), Dir("sg/sub")]).as_slice(),
        &flat(),
    )
    .unwrap();
    for p in ["sg/f", "sg/l", "sg/sub"] {
        assert_eq!(std::fs::symlink_metadata(t.path().join(p)).unwrap().gid(), 0, "{p}");
    }
    assert_eq!(std::fs::metadata(t.path().join("sg")).unwrap().mode() & 0o7777, 0o2775);
}

#[test]
fn whiteout_of_a_very_deep_tree() {
    // 5,000 levels, deeper than any single path may be, built through a symlink shortcut
    // every 1,000 levels; then one whiteout removes it all.
    let t = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
    let chunk = "d/".repeat(1000);
    let mut entries_owned: Vec<(String, Option<String>)> = Vec::new();
    let mut prefix = String::from("top/");
    for i in 0..5 {
        entries_owned.push((format!("{prefix}{chunk}x"), None));
        let real = format!("{prefix}{}", chunk.trim_end_matches('/'));
        entries_owned.push((format!("s{i}"), Some(format!("/{real}"))));
        prefix = format!("s{i}/");
    }
    let es: Vec<common::E> = entries_owned
        .iter()
        .map(|(p, l)| match l {
            None => File(p.as_str(), b"x"),
            Some(l) => Sym(p.as_str(), l.as_str()),
        })
        .collect();
    apply_tar(t.path(), layer(&es).as_slice(), &flat()).unwrap();
    apply_tar(t.path(), layer(&[File(".wh.top", b"")]).as_slice(), &flat()).unwrap();
    assert!(!t.path().join("top").exists());
}
