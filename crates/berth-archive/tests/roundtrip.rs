//! dir → tar → apply → identical tree, plus interop with GNU tar both ways.

mod common;

use std::process::Command;

use berth_archive::{ApplyOptions, TreeOptions, apply_layer, apply_tar, write_tree};
use common::*;

fn opts() -> ApplyOptions {
    ApplyOptions { create_devices: true, ..ApplyOptions::default() }
}

#[test]
fn roundtrip_rich_tree() {
    assert!(is_root(), "these tests run as root (CI runs as root)");
    let src = tempfile::tempdir().unwrap();
    rich_tree(src.path());
    // A device node too.
    rustix::fs::mknodat(
        rustix::fs::CWD,
        src.path().join("null"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    set_mtime(&src.path().join("null"), 1_500_000_000);
    let (tar, report) = write_tree(src.path(), Vec::new(), &TreeOptions::default()).unwrap();
    assert_eq!(report.hardlinks, 2);
    let dst = tempfile::tempdir().unwrap();
    let r = apply_tar(dst.path(), tar.as_slice(), &opts()).unwrap();
    assert!(r.end_marker);
    assert_eq!(r.hardlinks, 2);
    assert_eq!(r.devices, 1);
    assert_eq!(r.skipped_total, 0, "{:?}", r.skipped);
    let a = snapshot(src.path());
    let b = snapshot(dst.path());
    for (k, v) in &a {
        assert_eq!(Some(v), b.get(k), "{k}");
    }
    assert_eq!(a.len(), b.len());
    // The sparse file stays sparse.
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(dst.path().join("sparse")).unwrap();
    assert!(md.blocks() * 512 < 1 << 20, "sparse file was materialized: {} blocks", md.blocks());

    // Deterministic: the same tree gives the same bytes; re-archiving the copy too.
    let (tar2, _) = write_tree(src.path(), Vec::new(), &TreeOptions::default()).unwrap();
    assert_eq!(tar, tar2);
    let (tar3, _) = write_tree(dst.path(), Vec::new(), &TreeOptions::default()).unwrap();
    assert_eq!(tar, tar3);
}

#[test]
fn devices_skipped_by_default() {
    let src = tempfile::tempdir().unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        src.path().join("null"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    std::fs::write(src.path().join("f"), b"x").unwrap();
    let (tar, _) = write_tree(src.path(), Vec::new(), &TreeOptions::default()).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let r = apply_tar(dst.path(), tar.as_slice(), &ApplyOptions::default()).unwrap();
    assert_eq!(r.skipped_total, 1);
    assert!(matches!(r.skipped[0].reason, berth_archive::SkipReason::Device { major: 1, minor: 3, .. }));
    assert!(!dst.path().join("null").exists());
    assert!(dst.path().join("f").exists());
}

#[test]
fn source_date_epoch_clamps() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("new"), b"x").unwrap();
    std::fs::write(src.path().join("old"), b"y").unwrap();
    set_mtime(&src.path().join("new"), 2_000_000_000);
    set_mtime(&src.path().join("old"), 1_000_000_000);
    let o = TreeOptions { source_date_epoch: Some(1_500_000_000), ..TreeOptions::default() };
    let (tar, _) = write_tree(src.path(), Vec::new(), &o).unwrap();
    let dst = tempfile::tempdir().unwrap();
    apply_tar(dst.path(), tar.as_slice(), &opts()).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(dst.path().join("new")).unwrap().mtime(), 1_500_000_000);
    assert_eq!(std::fs::metadata(dst.path().join("old")).unwrap().mtime(), 1_000_000_000);
}

fn gnu_tar(args: &[&str]) {
    let out = Command::new("tar").args(args).output().unwrap();
    assert!(out.status.success(), "tar {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn gnu_tar_extracts_ours_identically() {
    let src = tempfile::tempdir().unwrap();
    rich_tree(src.path());
    let (tar, _) = write_tree(src.path(), Vec::new(), &TreeOptions::default()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let tarfile = work.path().join("l.tar");
    std::fs::write(&tarfile, &tar).unwrap();
    let dst = work.path().join("x");
    std::fs::create_dir(&dst).unwrap();
    gnu_tar(&[
        "-x",
        "-f",
        tarfile.to_str().unwrap(),
        "-C",
        dst.to_str().unwrap(),
        "--xattrs",
        "--xattrs-include=*",
        "--numeric-owner",
        "-p",
        "--same-owner",
    ]);
    // GNU tar restores directory times too (from its own delayed list): compare them.
    let o = SnapOpts::default();
    let a = snapshot_with(src.path(), &o);
    let b = snapshot_with(&dst, &o);
    for (k, v) in &a {
        assert_eq!(Some(v), b.get(k), "{k}");
    }
    assert_eq!(a.len(), b.len());
}

#[test]
fn we_apply_gnu_tar_archives_identically() {
    let src = tempfile::tempdir().unwrap();
    rich_tree(src.path());
    let work = tempfile::tempdir().unwrap();
    for (fmt, comp) in [("gnu", ""), ("posix", "-z"), ("posix", "--zstd")] {
        let tarfile = work.path().join(format!("g-{fmt}{comp}.tar"));
        let mut args = vec!["-c", "-f", tarfile.to_str().unwrap(), "-C", src.path().to_str().unwrap()];
        let f = format!("--format={fmt}");
        args.extend([f.as_str(), "--xattrs", "--xattrs-include=*", "--numeric-owner", "-S", "--sort=name"]);
        if !comp.is_empty() {
            args.push(comp);
        }
        args.push(".");
        gnu_tar(&args);
        let dst = work.path().join(format!("d-{fmt}{comp}"));
        std::fs::create_dir(&dst).unwrap();
        let r = apply_layer(&dst, std::fs::File::open(&tarfile).unwrap(), &opts()).unwrap();
        assert!(r.end_marker);
        let a = snapshot(src.path());
        let mut b = snapshot(&dst);
        // GNU tar archives "./" itself; its metadata is applied to the target root, which
        // snapshot does not look at. Everything else must match.
        b.remove("");
        for (k, v) in &a {
            assert_eq!(Some(v), b.get(k), "{fmt}{comp}: {k}");
        }
        assert_eq!(a.len(), b.len(), "{fmt}{comp}");
    }
}
