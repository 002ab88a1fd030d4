//! A full disk (issue 9, reliability): a pull and a build into a store on a small tmpfs fail
//! with an error that says the disk is full and where, leave a sound store with no temp files,
//! and a prune frees the space. Needs root (mount); skipped visibly otherwise.

mod common;

use std::process::Command;

use common::*;

struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: needs root to mount a tmpfs");
            return None;
        }
        let d = tempdir("enospc");
        let st =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(d.path()).status();
        assert!(st.expect("run mount").success());
        Some(Tmpfs(d))
    }
    fn used(&self) -> u64 {
        du(self.0.path())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_fails_cleanly_and_prune_frees_it() {
    let big = fixture("library/debian:bookworm");
    let small = fixture("library/busybox:latest");
    let Some(fs) = Tmpfs::mount("8m") else { return };
    let mut b = Berth::new();
    b.root = fs.0.path().join("root");
    let out = b.run_args(["pull", &big]);
    assert!(!out.success(), "a pull larger than the disk succeeded");
    assert!(out.stderr.contains("No space left on device"), "{}", out.stderr);
    assert!(out.stderr.contains("the disk is full"), "{}", out.stderr);
    assert!(out.stderr.contains(&b.root.display().to_string()), "the error says where: {}", out.stderr);
    b.check_store();
    assert!(b.temp_files().is_empty(), "temp files left: {:?}", b.temp_files());
    // A small image fits; a build that writes more than the space left fails the same way.
    b.pull(&small);
    let ctx = tempdir("ctx");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {small}\nRUN dd if=/dev/urandom of=/big bs=1M count=16\n"),
    )
    .unwrap();
    let out = b.run_args(["build", "-t", "full:1", ctx.path().to_str().unwrap()]);
    assert!(!out.success(), "a build larger than the disk succeeded");
    assert!(out.stderr.contains("No space left on device"), "{}", out.stderr);
    b.check_store();
    let before = fs.used();
    b.ok_args(["rmi", &small]);
    b.ok("image prune -a -f");
    b.ok("builder prune -a -f");
    assert!(fs.used() < before, "prune freed nothing ({before} bytes used before)");
    b.check_store();
    // And the store works again.
    b.pull(&small);
    b.check_store();
}
