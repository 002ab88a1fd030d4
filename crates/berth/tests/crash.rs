//! Crash safety of the store: `kill -9` in the middle of a pull of library/big (≈375 MB
//! compressed, 9 layers), then `system check`, a rerun and another check; and concurrent pulls of
//! one image into one store. Slow (the big image): the test names start with `slow_` so a quick
//! local run can pass `--skip slow_`; scripts/test.sh runs them.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn spawn_pull(b: &Berth, img: &str) -> Child {
    b.cmd(["pull", "--max-concurrent-downloads", "3", img])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berth pull")
}

/// Bytes under `dir` (0 when missing).
fn bytes(dir: &std::path::Path) -> u64 {
    du(dir)
}

/// Waits until `ready(blobs_bytes, tmp_bytes)` holds, then SIGKILLs the pull. Panics if the
/// pull ends first (the scenario was not exercised).
fn kill_when(b: &Berth, img: &str, what: &str, ready: impl Fn(u64, u64) -> bool) {
    let mut child = spawn_pull(b, img);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let out = child.wait_with_output().expect("output");
            panic!(
                "the pull ended ({status}) before the kill point \"{what}\" (blobs {} B, tmp {} B): {}",
                bytes(&b.root.join("blobs")),
                bytes(&b.root.join("tmp")),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let blobs = bytes(&b.root.join("blobs"));
        let tmp = bytes(&b.root.join("tmp"));
        if ready(blobs, tmp) {
            child.kill().expect("SIGKILL"); // std's kill is SIGKILL
            let status = child.wait().expect("wait");
            assert!(!status.success(), "killed pull reported success");
            eprintln!("killed at \"{what}\": blobs {blobs} B, tmp {tmp} B");
            return;
        }
        assert!(Instant::now() < deadline, "kill point \"{what}\" never reached");
        std::thread::sleep(Duration::from_millis(15));
    }
}

/// `system check` passes, reports no problem and leaves no temporary files.
fn check_clean(b: &Berth, when: &str) {
    let r = b.check_store();
    assert!(!r.stdout.contains("problem"), "{when}: {}", r.stdout);
    let left = b.temp_files();
    assert!(left.is_empty(), "{when}: stale temp files after system check: {left:#?}");
}

#[test]
fn slow_kill_9_during_pull_then_check_and_rerun() {
    let img = fixture("library/big:latest");
    let b = Berth::new();
    // 1. Early: bytes in flight, nothing complete yet.
    kill_when(&b, &img, "first bytes in tmp", |blobs, tmp| tmp > 8 << 20 && blobs < 1 << 20);
    check_clean(&b, "after an early kill");
    assert!(b.image_ids().is_empty(), "an interrupted pull named an image");
    // 2. Middle: some layers complete, others in flight.
    kill_when(&b, &img, "some layers stored, others in flight", |blobs, tmp| blobs > 60 << 20 && tmp > 1 << 20);
    check_clean(&b, "after a kill in the middle");
    let blobs_before = bytes(&b.root.join("blobs"));
    assert!(blobs_before > 60 << 20, "verified layers were kept for the rerun ({blobs_before} B)");
    // 3. Late: most of it there.
    kill_when(&b, &img, "most layers stored", |blobs, _| blobs > 250 << 20);
    check_clean(&b, "after a late kill");
    assert!(b.image_ids().is_empty());

    // The rerun completes, reusing what was verified.
    let r = b.ok(&format!("pull {img}"));
    assert_eq!(r.lines().last(), Some(&img));
    r.stdout_has("Already exists");
    check_clean(&b, "after the rerun");
    let v = b.inspect(&img);
    let cfg = skopeo_inspect(&img, &["--config"]);
    assert_eq!(v["RootFS"]["Layers"], cfg["rootfs"]["diff_ids"]);
    assert_eq!(v["Id"], skopeo_raw(&img)["config"]["digest"]);
    // Everything is really there: a save reads every blob back.
    let out = b.dir.path().join("big.tar");
    b.ok(&format!("save -o {} {img}", out.display()));
    b.ok(&format!("rmi {img}"));
    check_clean(&b, "after rmi");
}

#[test]
fn slow_concurrent_pulls_of_one_image_into_one_store() {
    let img = fixture("library/big:latest");
    let b = Berth::new();
    let first = spawn_pull(&b, &img);
    let second = spawn_pull(&b, &img);
    let out1 = first.wait_with_output().expect("first pull");
    let out2 = second.wait_with_output().expect("second pull");
    for (n, out) in [(1, &out1), (2, &out2)] {
        assert!(out.status.success(), "pull {n} failed: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout.lines().last(), Some(img.as_str()), "pull {n}");
    }
    check_clean(&b, "after concurrent pulls");
    assert_eq!(b.image_ids().len(), 1);
    let small = fixture("library/busybox:latest");
    // And a concurrent pull of another image plus an rmi of the first.
    let p = spawn_pull(&b, &small);
    b.ok(&format!("rmi {img}"));
    assert!(p.wait_with_output().expect("pull").status.success());
    check_clean(&b, "after pull + rmi");
    assert_eq!(
        b.ok("images --format {{.Repository}}").lines(),
        vec![small.rsplit_once(':').map(|x| x.0.to_string()).unwrap_or_default()]
    );
}
