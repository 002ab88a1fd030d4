//! Hostile archives: every escape trick must give a clear error or a safe result, and nothing
//! outside the target may change.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_archive::{ApplyOptions, EntryKind, Error, Header, apply_layer, apply_tar};
use common::E::*;
use common::*;

/// A sandbox: `base/target` (where we apply) and `base/outside` (must never change).
struct Sandbox {
    _t: tempfile::TempDir,
    base: PathBuf,
    target: PathBuf,
    outside: PathBuf,
    before: BTreeMap<String, Node>,
}

impl Sandbox {
    fn new() -> Sandbox {
        // tmpfs when available: ext4's inode allocator is slow right after mass deletions
        // (`recently_deleted`), which the deep-path case would hit.
        let shm = Path::new("/dev/shm");
        let t = if shm.is_dir() { tempfile::tempdir_in(shm).unwrap() } else { tempfile::tempdir().unwrap() };
        let base = t.path().to_path_buf();
        let target = base.join("target");
        let outside = base.join("outside");
        std::fs::create_dir(&target).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"do not touch").unwrap();
        std::fs::create_dir(outside.join("dir")).unwrap();
        std::fs::write(outside.join("dir/keep"), b"keep").unwrap();
        let before = snapshot(&base.join("outside"));
        Sandbox { _t: t, base, target, outside, before }
    }

    fn out(&self) -> String {
        self.outside.to_str().unwrap().to_string()
    }

    /// Applies and checks the outside is intact and nothing appeared next to the target.
    fn apply(&self, tar: &[u8]) -> Result<berth_archive::ApplyReport, Error> {
        let r = apply_tar(&self.target, tar, &ApplyOptions::default());
        self.check();
        r
    }

    fn check(&self) {
        assert_eq!(snapshot(&self.outside), self.before, "outside was modified");
        assert_eq!(std::fs::metadata(self.outside.join("secret")).unwrap().nlink(), 1, "outside file was hard-linked");
        let mut top: Vec<_> = std::fs::read_dir(&self.base).unwrap().map(|e| e.unwrap().file_name()).collect();
        top.sort();
        assert_eq!(top, ["outside", "target"], "something was created next to the target");
    }
}

fn unsafe_path(r: Result<berth_archive::ApplyReport, Error>) -> String {
    match r {
        Err(e @ Error::UnsafePath { .. }) => e.to_string(),
        other => panic!("expected an unsafe-path error, got {other:?}"),
    }
}

fn any_error(r: Result<berth_archive::ApplyReport, Error>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(rep) => panic!("expected an error, got {rep:?}"),
    }
}

#[test]
fn dotdot_components() {
    let s = Sandbox::new();
    let msg = unsafe_path(s.apply(&layer(&[File("../evil", b"x")])));
    assert!(msg.contains("../evil") && msg.contains("outside the root"), "{msg}");
    unsafe_path(s.apply(&layer(&[File("a/../../evil", b"x")])));
    unsafe_path(s.apply(&layer(&[Dir("a/b/../../../evil")])));
    unsafe_path(s.apply(&layer(&[Sym("../evil", "x")])));
    // `..` that stays inside is fine (Docker cleans it the same way).
    s.apply(&layer(&[File("a/../fine", b"x")])).unwrap();
    assert!(s.target.join("fine").exists());
}

#[test]
fn absolute_paths_land_inside() {
    let s = Sandbox::new();
    let abs = format!("{}/secret", s.out());
    s.apply(&layer(&[File(&abs, b"pwned"), File("/etc/abs", b"ok")])).unwrap();
    assert_eq!(std::fs::read(s.target.join("etc/abs")).unwrap(), b"ok");
    assert_eq!(std::fs::read(s.target.join(abs.trim_start_matches('/'))).unwrap(), b"pwned");
}

#[test]
fn symlink_parent_components() {
    // a -> <outside> (absolute), then a/secret: resolved inside the target, never outside.
    let s = Sandbox::new();
    let _ = s.apply(&layer(&[Sym("a", &s.out()), File("a/secret", b"pwned")]));
    // a -> ../../.. climbs at most to the target root.
    let s = Sandbox::new();
    s.apply(&layer(&[Sym("up", "../../../../.."), File("up/x", b"in root")])).unwrap();
    assert_eq!(std::fs::read(s.target.join("x")).unwrap(), b"in root");
    // a -> / then a/etc/passwd: the target's /etc/passwd.
    let s = Sandbox::new();
    s.apply(&layer(&[Dir("etc"), Sym("root", "/"), File("root/etc/passwd", b"mine")])).unwrap();
    assert_eq!(std::fs::read(s.target.join("etc/passwd")).unwrap(), b"mine");
    // Relative symlink to the outside through the target's parent.
    let s = Sandbox::new();
    let _ = s.apply(&layer(&[
        Sym("rel", "../outside"),
        File("rel/secret", b"pwned"),
        Dir("rel/dir"),
        File("rel/dir/new", b"x"),
    ]));
}

#[test]
fn directory_replaced_by_symlink_then_written_through() {
    let s = Sandbox::new();
    let _ = s.apply(&layer(&[
        Dir("d"),
        File("d/f", b"1"),
        Sym("d", &s.out()),
        File("d/secret", b"pwned"),
        File("d/dir/keep", b"pwned"),
    ]));
    let s = Sandbox::new();
    let _ = s.apply(&layer(&[Dir("d"), Sym("d", "../outside"), Dir("d/dir"), File("d/dir/keep", b"pwned")]));
}

#[test]
fn hardlink_escapes() {
    let s = Sandbox::new();
    let msg = unsafe_path(s.apply(&layer(&[Link("h", "../outside/secret")])));
    assert!(msg.contains("hardlink"), "{msg}");
    // Absolute target: resolved inside the target, where it does not exist.
    let s = Sandbox::new();
    let msg = any_error(s.apply(&layer(&[Link("h", &format!("{}/secret", s.out()))])));
    assert!(msg.contains("\"h\"") && msg.contains("does not exist"), "{msg}");
    // Through a symlink in the target's parent components.
    let s = Sandbox::new();
    any_error(s.apply(&layer(&[Sym("p", &s.out()), Link("h", "p/secret")])));
    let s = Sandbox::new();
    any_error(s.apply(&layer(&[Sym("p", "../outside"), Link("h", "p/secret")])));
    // To a symlink pointing outside: links the symlink itself, never its target.
    let s = Sandbox::new();
    s.apply(&layer(&[Sym("s", &format!("{}/secret", s.out())), Link("h", "s")])).unwrap();
    assert!(std::fs::symlink_metadata(s.target.join("h")).unwrap().file_type().is_symlink());
    // And writing a file over that symlink replaces it rather than writing through.
    s.apply(&layer(&[File("s", b"pwned"), File("h", b"pwned")])).unwrap();
    // Hardlink to a later entry, to a directory, to itself, to the root.
    let s = Sandbox::new();
    let msg = any_error(s.apply(&layer(&[Link("early", "later"), File("later", b"x")])));
    assert!(msg.contains("\"early\""), "{msg}");
    any_error(s.apply(&layer(&[Dir("dir"), Link("h2", "dir")])));
    any_error(s.apply(&layer(&[Link("self", "self")])));
    unsafe_path(s.apply(&layer(&[Link("r", "/")])));
}

#[test]
fn symlink_then_file_of_same_name_replaces_the_link() {
    let s = Sandbox::new();
    s.apply(&layer(&[Sym("s", &format!("{}/secret", s.out())), File("s", b"replaced")])).unwrap();
    assert_eq!(std::fs::read(s.target.join("s")).unwrap(), b"replaced");
    s.apply(&layer(&[Sym("x", &s.out()), Dir("x"), File("x/f", b"in")])).unwrap();
    assert!(std::fs::symlink_metadata(s.target.join("x")).unwrap().is_dir());
}

#[test]
fn whiteouts_through_symlinks_and_dot_names() {
    let s = Sandbox::new();
    s.apply(&layer(&[Sym("l", &s.out()), File("l/.wh.secret", b""), File("l/.wh..wh..opq", b"")])).unwrap();
    let s = Sandbox::new();
    s.apply(&layer(&[
        Sym("l", "../outside"),
        File("l/.wh.secret", b""),
        File("l/.wh.dir", b""),
        File("l/.wh..wh..opq", b""),
    ]))
    .unwrap();
    unsafe_path(s.apply(&layer(&[File(".wh..", b"")])));
    unsafe_path(s.apply(&layer(&[File("x/.wh...", b"")])));
    // `..wh.` as a directory component followed by `..` is just lexical.
    unsafe_path(s.apply(&layer(&[File("../.wh.outside", b"")])));
    // Overlay mode too.
    let s = Sandbox::new();
    let o = ApplyOptions {
        whiteouts: berth_archive::WhiteoutMode::Overlay(berth_archive::OverlayXattr::Trusted),
        ..Default::default()
    };
    let _ = apply_tar(
        &s.target,
        layer(&[Sym("l", &s.out()), File("l/.wh.secret", b""), File("l/.wh..wh..opq", b"")]).as_slice(),
        &o,
    );
    s.check();
}

#[test]
fn truncated_and_bomb_headers() {
    let s = Sandbox::new();
    // A file claiming 1 TiB with no data.
    let mut h = Header::new(b"big".to_vec(), EntryKind::File);
    h.size = 1 << 40;
    // TarWriter refuses a size without data: append with a short reader, ignore the error,
    // and keep what was written (the header and three bytes).
    let mut w = berth_archive::TarWriter::new(Vec::new());
    let _ = w.append(&h, &mut &b"abc"[..], Path::new("x"));
    let t = std::mem::take(w.get_mut());
    let msg = any_error(s.apply(&t));
    assert!(msg.contains("big"), "{msg}");
    // Truncated mid-data of a normal layer.
    let full = layer(&[File("f", &[1u8; 5000]), File("g", b"x")]);
    let msg = any_error(s.apply(&full[..3000]));
    assert!(msg.contains("\"f\"") && msg.contains("truncated"), "{msg}");
    // Truncated mid-header.
    any_error(s.apply(&full[..5632 + 100]));
    // Truncated gzip.
    let mut gz = Vec::new();
    {
        let mut w = berth_archive::LayerWriter::new(
            &mut gz,
            &berth_archive::CompressOptions::new(berth_archive::Compression::Gzip),
        )
        .unwrap();
        std::io::Write::write_all(&mut w, &full).unwrap();
        w.finish().unwrap();
    }
    let r = apply_layer(&s.target, &gz[..gz.len() - 4], &ApplyOptions::default());
    assert!(r.is_err(), "truncated gzip accepted");
    s.check();
}

#[test]
fn absurd_paths() {
    let s = Sandbox::new();
    let deep = "a/".repeat(3000) + "f";
    let msg = unsafe_path(s.apply(&layer(&[File(&deep, b"x")])));
    assert!(msg.contains("4096"), "{msg}");
    unsafe_path(s.apply(&layer(&[File(&"n".repeat(300), b"x")])));
    // Deep but legal: 2000 components of 1 byte.
    let ok = "b/".repeat(2000) + "f";
    s.apply(&layer(&[File(&ok, b"x")])).unwrap();
    // The root as a file or symlink.
    unsafe_path(s.apply(&layer(&[Sym("./", "/")])));
    unsafe_path(s.apply(&layer(&[File("/", b"")])));
    // "./" as a directory: applies metadata to the target root, fine.
    s.apply(&layer(&[DirMode("./", 0o755)])).unwrap();
}

#[test]
fn nul_in_names() {
    let s = Sandbox::new();
    // PAX path with a NUL.
    let rec = b"path=a\0b\n";
    let len = rec.len() + 3;
    let pax = format!("{len} ").into_bytes().into_iter().chain(rec.iter().copied()).collect::<Vec<u8>>();
    let mut h = Header::new(b"PaxHeaders.0/x".to_vec(), EntryKind::File);
    h.size = pax.len() as u64;
    let mut t = layer(&[Raw(h, pax), File("x", b"")]);
    // Turn the first header into a PAX header: type 'x' and fix the checksum.
    t[156] = b'x';
    fix_checksum(&mut t[..512]);
    let msg = any_error(s.apply(&t));
    assert!(msg.contains("NUL"), "{msg}");
    // A NUL inside a ustar name field simply ends the name.
    let mut t = layer(&[File("abcdef", b"x")]);
    t[3] = 0;
    fix_checksum(&mut t[..512]);
    s.apply(&t).unwrap();
    assert!(s.target.join("abc").exists());
}

fn fix_checksum(b: &mut [u8]) {
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&c| c as u32).sum();
    let s = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(s.as_bytes());
}

#[test]
fn duplicates_and_type_changes() {
    let s = Sandbox::new();
    s.apply(&layer(&[
        File("f", b"1"),
        File("f", b"2"),
        Dir("d"),
        File("d/x", b""),
        File("d", b"now a file"),
        File("g", b""),
        Dir("g"),
        Fifo("p"),
        File("p", b"file"),
    ]))
    .unwrap();
    assert_eq!(std::fs::read(s.target.join("f")).unwrap(), b"2");
    assert_eq!(std::fs::read(s.target.join("d")).unwrap(), b"now a file");
    assert!(s.target.join("g").is_dir());
    assert_eq!(std::fs::read(s.target.join("p")).unwrap(), b"file");
    // A file under a regular file.
    let msg = any_error(s.apply(&layer(&[File("plain", b""), File("plain/x", b"")])));
    assert!(msg.contains("plain/x"), "{msg}");
}

#[test]
fn device_nodes() {
    let s = Sandbox::new();
    let r = s.apply(&layer(&[Char("dev/sda", 8, 0), Char("dev/null", 1, 3), Fifo("dev/fifo")])).unwrap();
    assert_eq!(r.skipped_total, 2);
    assert!(!s.target.join("dev/sda").exists());
    assert!(s.target.join("dev/fifo").exists());
    let mut h = Header::new(b"blk".to_vec(), EntryKind::Block);
    h.dev_major = 8;
    let r = s.apply(&layer(&[Raw(h, vec![])])).unwrap();
    assert_eq!(r.skipped_total, 1);
    let o = ApplyOptions { create_devices: true, ..Default::default() };
    apply_tar(&s.target, layer(&[Char("dev/null", 1, 3)]).as_slice(), &o).unwrap();
    assert_eq!(std::fs::symlink_metadata(s.target.join("dev/null")).unwrap().rdev(), rustix::fs::makedev(1, 3));
}

#[test]
fn garbage_is_an_error() {
    let s = Sandbox::new();
    let g: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8 + 1).collect();
    let msg = any_error(s.apply(&g));
    assert!(msg.contains("checksum") || msg.contains("malformed"), "{msg}");
    // Extension header not followed by an entry.
    let t = layer(&[File("x", b"")]);
    let mut only_ext = t[..512].to_vec();
    only_ext[156] = b'L';
    fix_checksum(&mut only_ext);
    only_ext.extend_from_slice(&[0u8; 1024]);
    any_error(s.apply(&only_ext));
}
