//! Least privilege of the store and the runtime state (issue 9, point 1), proven as another
//! local user: `berthprobe` (created when missing) can read nothing of the store, cannot
//! execute a setuid binary of an unpacked layer, cannot write into a layer root an image made
//! world-writable, and can read nothing under the runtime state directory. Needs root (to
//! create the user and switch to it); skipped visibly otherwise.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const PROBE: &str = "berthprobe";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Ensures the unprivileged user exists; false (test skipped) when not root.
fn probe_user() -> bool {
    if !is_root() {
        eprintln!("SKIPPED: needs root to create and switch to the user {PROBE}");
        return false;
    }
    let exists = Command::new("id").arg(PROBE).output().map(|o| o.status.success()).unwrap_or(false);
    if !exists {
        let st = Command::new("useradd").args(["-m", PROBE]).status().expect("run useradd");
        assert!(st.success(), "useradd -m {PROBE} failed");
    }
    true
}

/// Runs `args` as the probe user.
fn as_probe(args: &[&str]) -> std::process::Output {
    Command::new("runuser").args(["-u", PROBE, "--"]).args(args).output().expect("run runuser")
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o7777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// A store whose only barrier is its own mode: the test's temp dirs above it are opened up.
fn open_store() -> Berth {
    let b = Berth::new();
    chmod(b.dir.path(), 0o755);
    b
}

/// A layer with a setuid-root copy of `id` and a root directory of mode 0777.
fn hostile_layer(dir: &Path) -> PathBuf {
    let src = dir.join("layer");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy("/usr/bin/id", src.join("suid")).unwrap();
    chmod(&src.join("suid"), 0o4755);
    chmod(&src, 0o777);
    let tar = dir.join("layer.tar");
    let st =
        Command::new("tar").arg("-C").arg(&src).args(["--owner=0", "--group=0", "-cf"]).arg(&tar).arg(".").status();
    assert!(st.expect("run tar").success());
    tar
}

fn snapshot_dirs(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root.join("snapshots")).unwrap().flatten().map(|e| e.path()).collect()
}

#[test]
fn another_user_reaches_nothing_in_the_store() {
    if !probe_user() {
        return;
    }
    let b = open_store();
    let work = tempdir("layer");
    let tar = hostile_layer(work.path());
    b.ok_args(["import", tar.to_str().unwrap(), "probe:1"]);
    let root = b.root.clone();
    assert_eq!(mode(&root), 0o700, "store root");
    for d in ["blobs", "snapshots", "tmp", "locks", "meta"] {
        assert_eq!(mode(&root.join(d)), 0o700, "{d}");
    }
    let snaps = snapshot_dirs(&root);
    assert_eq!(snaps.len(), 1);
    let fs = snaps[0].join("fs");
    assert_eq!(mode(&snaps[0]), 0o700, "snapshot dir");
    assert_eq!(mode(&fs.join("suid")) & 0o4000, 0o4000, "the image's setuid bit is kept for containers");
    assert_eq!(mode(&fs) & 0o022, 0, "a layer root is never group/world-writable");
    // As another user: nothing can be listed, read, executed or written.
    let ls = as_probe(&["ls", root.to_str().unwrap()]);
    assert!(!ls.status.success(), "the probe user listed the store");
    let exe = as_probe(&[fs.join("suid").to_str().unwrap(), "-u"]);
    assert!(
        !exe.status.success(),
        "the probe user ran a setuid binary of a layer: {}",
        String::from_utf8_lossy(&exe.stdout)
    );
    let touch = as_probe(&["touch", fs.join("planted").to_str().unwrap()]);
    assert!(!touch.status.success(), "the probe user wrote into a layer");
    let cat = as_probe(&["cat", root.join("index.json").to_str().unwrap()]);
    assert!(!cat.status.success(), "the probe user read the reference table");

    // A store left by an older berth (0755 everywhere) is fixed by the next command.
    for d in ["", "blobs", "snapshots", "tmp"] {
        chmod(&root.join(d), 0o755);
    }
    chmod(&snaps[0], 0o755);
    b.ok("images");
    for d in ["", "blobs", "snapshots", "tmp"] {
        assert_eq!(mode(&root.join(d)), 0o700, "{d:?} fixed when the store was opened");
    }
    assert_eq!(mode(&snaps[0]), 0o700, "snapshot dir fixed when the store was opened");
    let exe = as_probe(&[fs.join("suid").to_str().unwrap(), "-u"]);
    assert!(!exe.status.success(), "setuid binary reachable after the fix");
    b.check_store();
}

#[test]
fn another_user_reads_nothing_of_the_runtime_state() {
    if !probe_user() {
        return;
    }
    let img = fixture("library/busybox:latest");
    let b = open_store();
    b.pull(&img);
    let id = b.ok_args(["run", "-d", "-e", "SECRET=hunter2", &img, "sleep", "60"]).lines()[0].clone();
    let state = Path::new("/run/berth");
    let scratch = state.join("c").join(&id);
    assert_eq!(mode(state), 0o700, "/run/berth");
    assert_eq!(mode(&state.join("c")), 0o700, "/run/berth/c");
    assert_eq!(mode(&scratch), 0o700, "the container's scratch dir");
    let bundle_cfg = scratch.join("bundle/config.json");
    assert_eq!(mode(&bundle_cfg), 0o600, "the bundle holds the environment");
    let cat = as_probe(&["cat", bundle_cfg.to_str().unwrap()]);
    assert!(!cat.status.success(), "the probe user read the bundle");
    let ls = as_probe(&["ls", scratch.join("rootfs").to_str().unwrap()]);
    assert!(!ls.status.success(), "the probe user reached the container's rootfs");
    b.ok_args(["rm", "-f", &id]);
}

#[test]
fn check_deep_finds_tampered_layers_and_plain_check_finds_abusable_modes() {
    let b = Berth::new();
    let work = tempdir("layer");
    let tar = hostile_layer(work.path());
    b.ok_args(["import", tar.to_str().unwrap(), "probe:1"]);
    let out = b.ok("system check --deep");
    assert!(out.stdout.contains("store OK"), "{}", out.stdout);
    let snaps = snapshot_dirs(&b.root);
    let fs = snaps[0].join("fs");
    // Tampering: a planted file, a replaced binary's content, a world-writable root.
    std::fs::write(fs.join("planted"), b"x").unwrap();
    std::fs::write(fs.join("suid"), b"#!/bin/sh\nid\n").unwrap();
    chmod(&fs.join("suid"), 0o4755);
    chmod(&fs, 0o777);
    let plain = b.run("system check");
    assert!(!plain.success(), "plain check missed a world-writable layer root");
    assert!(plain.stdout.contains("group/world-writable"), "{}", plain.stdout);
    let deep = b.run("system check --deep");
    assert!(!deep.success());
    assert!(deep.stdout.contains("planted: not in the layer"), "{}", deep.stdout);
    assert!(deep.stdout.contains("/suid: content differs"), "{}", deep.stdout);
}

#[test]
fn a_sparse_bomb_costs_no_time_and_is_refused_by_default() {
    let b = Berth::new();
    let work = tempdir("bomb");
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let f = std::fs::File::create(src.join("big")).unwrap();
    f.set_len(16 << 30).unwrap();
    let tar = work.path().join("bomb.tar");
    let st = Command::new("tar").arg("-C").arg(&src).args(["-S", "--format=pax", "-cf"]).arg(&tar).arg(".").status();
    assert!(st.expect("run tar").success());
    assert!(std::fs::metadata(&tar).unwrap().len() < 64 << 10);
    let out = b.run_args(["import", tar.to_str().unwrap(), "bomb:1"]);
    assert!(!out.success(), "a 16 GiB sparse file in a tiny layer was accepted by default");
    assert!(out.stderr.contains("bomb.tar") && out.stderr.contains("BERTH_MAX_LAYER_RATIO"), "{}", out.stderr);
    b.check_store();
    assert!(b.temp_files().is_empty(), "{:?}", b.temp_files());
    // Allowed explicitly: unpacked by seeking over the hole (no 16 GiB written); the size shown
    // is the apparent size, as Docker's.
    let mut b = b;
    b.env("BERTH_MAX_LAYER_RATIO", "0");
    b.ok_args(["import", tar.to_str().unwrap(), "bomb:1"]);
    let mut disk = 0;
    walk(&b.root, &mut |p| {
        use std::os::unix::fs::MetadataExt;
        disk += std::fs::symlink_metadata(p).map(|m| m.blocks() * 512).unwrap_or(0);
    });
    assert!(disk < 64 << 20, "the hole was written: {disk} bytes on disk");
    let size = b.ok_args(["images", "--format", "{{.Size}}", "bomb:1"]).stdout;
    assert!(size.trim().ends_with("GB"), "{size}");
    b.env("BERTH_MAX_LAYER_SIZE", "1g");
    let out = b.run_args(["import", tar.to_str().unwrap(), "bomb:2"]);
    assert!(!out.success() && out.stderr.contains("BERTH_MAX_LAYER_SIZE"), "{}", out.stderr);
}
