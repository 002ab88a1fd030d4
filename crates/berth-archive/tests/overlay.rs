//! Overlay upper diff with a real overlayfs mount, applied in both whiteout modes, and the naive
//! tree diff of the same change. Needs root (CI runs as root).

mod common;

use std::path::Path;
use std::process::Command;

use berth_archive::{
    ApplyOptions, DiffOptions, OverlayXattr, TarWriter, TreeOptions, WhiteoutMode, apply_tar, overlay_diff, tree_diff,
    write_tree,
};
use common::*;
use rustix::mount::{MountFlags, UnmountFlags, mount, unmount};

struct Mounted<'a>(&'a Path);
impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = unmount(self.0, UnmountFlags::DETACH);
    }
}

fn mount_overlay<'a>(lowers: &[&Path], upper: Option<(&Path, &Path)>, target: &'a Path) -> Mounted<'a> {
    let lower = lowers.iter().map(|p| p.to_str().unwrap()).collect::<Vec<_>>().join(":");
    let mut data = format!("lowerdir={lower},redirect_dir=off,metacopy=off,index=off");
    if let Some((u, w)) = upper {
        data.push_str(&format!(",upperdir={},workdir={}", u.display(), w.display()));
    }
    let data = std::ffi::CString::new(data).unwrap();
    mount("overlay", target, "overlay", MountFlags::empty(), data.as_c_str()).expect("mount overlayfs (needs root)");
    Mounted(target)
}

/// Copies a tree exactly (our writer + applier, tested in roundtrip.rs).
fn copy_tree(src: &Path, dst: &Path) {
    let (tar, _) = write_tree(src, Vec::new(), &TreeOptions::default()).unwrap();
    std::fs::create_dir_all(dst).unwrap();
    apply_tar(dst, tar.as_slice(), &ApplyOptions { create_devices: true, ..Default::default() }).unwrap();
}

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh").arg("-ec").arg(script).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
}

const CHANGES: &str = r#"
echo changed > etc/passwd
rm data/private
rm -r tmp
mv data/open data/opened
mv etc/empty etc/moved
chmod 700 bin
chown 5:6 bin/sgid
setfattr -n user.added -v yes bin/tool 2>/dev/null || python3 -c 'import os; os.setxattr("bin/tool", "user.added", b"yes")'
rm -r 'with space'
mkdir 'with space'
echo new > 'with space/inside'
mkdir -p new/deep
echo a > new/a
ln new/a new/deep/b
ln -s ../new/a new/link
mkfifo new/fifo
touch -d @1700000000 new/a new/link new/fifo
"#;

fn compare(
    want: &std::collections::BTreeMap<String, Node>,
    got: &std::collections::BTreeMap<String, Node>,
    what: &str,
) {
    for (k, v) in want {
        assert_eq!(Some(v), got.get(k), "{what}: {k}");
    }
    for k in got.keys() {
        assert!(want.contains_key(k), "{what}: unexpected {k}");
    }
}

#[test]
fn overlay_upper_diff_both_modes_and_naive_diff() {
    assert!(is_root(), "overlay tests need root");
    let t = tempfile::tempdir().unwrap();
    let (lower, upper, work, merged) =
        (t.path().join("lower"), t.path().join("upper"), t.path().join("work"), t.path().join("merged"));
    for d in [&lower, &upper, &work, &merged] {
        std::fs::create_dir(d).unwrap();
    }
    rich_tree(&lower);
    let want;
    {
        let _m = mount_overlay(&[&lower], Some((&upper, &work)), &merged);
        sh(&merged, CHANGES);
        // Snapshot through a copy: overlayfs reports merged-view inode numbers that differ from
        // those of a plain tree, and we want to compare plain trees.
        copy_tree(&merged, &t.path().join("expected"));
        want = snapshot(&t.path().join("expected"));
    }
    assert!(!want.contains_key("tmp") && want.contains_key("etc/moved") && want.contains_key("with space/inside"));

    // The diff, as a tar.
    let b = overlay_diff(&upper, &TreeOptions::default()).unwrap();
    let mut tw = TarWriter::new(Vec::new());
    b.write(&mut tw).unwrap();
    let layer = tw.finish().unwrap();
    let names = list_names(&layer);
    assert!(names.contains(&"tmp/../.wh.tmp".replace("tmp/../", "")), "{names:?}");
    assert!(names.contains(&"data/.wh.private".to_string()), "{names:?}");
    let opq = names.iter().position(|n| n == "with space/.wh..wh..opq").expect("opaque marker");
    assert_eq!(names[opq - 1], "with space/", "opaque marker must follow its directory");
    assert!(!names.iter().any(|n| n.contains("trusted.overlay")));

    // (a) Flatten mode onto a copy of the lower tree.
    let flat = t.path().join("flat");
    copy_tree(&lower, &flat);
    let r = apply_tar(&flat, layer.as_slice(), &ApplyOptions::default()).unwrap();
    assert!(r.whiteouts >= 4 && r.opaque_dirs == 1, "{r:?}");
    compare(&want, &snapshot(&flat), "flatten");

    // (b) Overlay mode into an empty layer directory, then mounted over the lower.
    let layer_dir = t.path().join("layer");
    std::fs::create_dir(&layer_dir).unwrap();
    let o = ApplyOptions { whiteouts: WhiteoutMode::Overlay(OverlayXattr::Trusted), ..Default::default() };
    apply_tar(&layer_dir, layer.as_slice(), &o).unwrap();
    {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let md = std::fs::symlink_metadata(layer_dir.join("data/private")).unwrap();
        assert!(md.file_type().is_char_device() && md.rdev() == 0);
        assert_eq!(xattr_get(&layer_dir.join("with space"), "trusted.overlay.opaque").unwrap(), b"y");
    }
    let merged2 = t.path().join("merged2");
    std::fs::create_dir(&merged2).unwrap();
    {
        let _m = mount_overlay(&[&layer_dir, &lower], None, &merged2);
        copy_tree(&merged2, &t.path().join("got2"));
    }
    compare(&want, &snapshot(&t.path().join("got2")), "overlay");

    // (c) The naive diff of lower vs expected gives a layer with the same effect.
    let b = tree_diff(&lower, &t.path().join("expected"), &DiffOptions::default()).unwrap();
    let mut tw = TarWriter::new(Vec::new());
    b.write(&mut tw).unwrap();
    let layer2 = tw.finish().unwrap();
    let flat2 = t.path().join("flat2");
    copy_tree(&lower, &flat2);
    apply_tar(&flat2, layer2.as_slice(), &ApplyOptions::default()).unwrap();
    compare(&want, &snapshot(&flat2), "naive diff");
    // Unchanged files are not in the naive diff.
    let names2 = list_names(&layer2);
    assert!(!names2.iter().any(|n| n == "bin/capped"), "{names2:?}");
    assert!(names2.iter().any(|n| n == "etc/.wh.empty"), "{names2:?}");
}

#[test]
fn naive_diff_content_compare() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::write(a.join("f"), b"aaaa").unwrap();
    set_mtime(&a.join("f"), 1_000_000_000);
    copy_tree(&a, &b);
    std::fs::write(b.join("f"), b"bbbb").unwrap();
    set_mtime(&b.join("f"), 1_000_000_000);
    set_mtime(&b, std::fs::metadata(&a).map(|m| std::os::unix::fs::MetadataExt::mtime(&m)).unwrap());
    let plain = tree_diff(&a, &b, &DiffOptions::default()).unwrap();
    assert!(plain.is_empty(), "metadata-only comparison cannot see this change");
    let deep = tree_diff(&a, &b, &DiffOptions { compare_content: true, ..Default::default() }).unwrap();
    assert!(deep.contains(b"f"));
}

fn list_names(tar: &[u8]) -> Vec<String> {
    let mut r = berth_archive::TarReader::new(tar);
    let mut v = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        v.push(String::from_utf8_lossy(&e.header.path).into_owned());
    }
    v
}
