//! `kill -9` anywhere (issue 9, reliability): a pull, a load and a build are killed at random
//! moments, again and again; after each kill `system check` must find a sound store (stale
//! temp files and mounts of the dead process are cleaned by the next berth process), and at
//! the end a pull, a build and a run must work. Also: concurrent pulls, builds, tag/rmi loops
//! and prunes on one store.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A small pseudo-random sequence (no dependency; the seed is printed for reruns).
struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("BERTH_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
        });
        eprintln!("kill -9 seed: {seed} (BERTH_KILL_SEED={seed} to repeat)");
        Rng(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn spawn(b: &Berth, args: &[&str]) -> Child {
    use std::os::unix::process::CommandExt;
    // Its own process group, so that a kill can take its helpers too.
    b.cmd(args).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0).spawn().expect("spawn berth")
}

/// Runs `args`, kills it with SIGKILL after `ms` (if still running) — with `group`, its whole
/// process group (the RUN helper dies too, leaving its mounts); whether it was killed.
fn kill_after(b: &Berth, args: &[&str], ms: u64, group: bool) -> bool {
    let mut child = spawn(b, args);
    let deadline = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if group {
        // SAFETY: kill(2) on the process group we created.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    } else {
        let _ = child.kill();
    }
    let _ = child.wait();
    true
}

/// No mount of the store's layers remains once the killed process's helper (which gets
/// SIGTERM when its parent dies, and cleans up) is gone; each berth command run meanwhile
/// cleans the leftovers of dead processes.
fn no_leftover_mounts(b: &Berth) {
    let root = b.root.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let left: Vec<String> = info.lines().filter(|l| l.contains(&root)).map(str::to_string).collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "mounts left by a killed berth process:\n{}", left.join("\n"));
        std::thread::sleep(Duration::from_millis(200));
        b.ok("images");
    }
}

#[test]
fn kill_9_at_random_moments_leaves_a_sound_store() {
    let img = fixture("library/busybox:latest");
    let b = Berth::new();
    let mut rng = Rng::new();
    // Material for load and build.
    let seed = Berth::new();
    seed.pull(&img);
    let archive = seed.dir.path().join("busybox.tar");
    seed.ok_args(["save", "-o", archive.to_str().unwrap(), &img]);
    let ctx = tempdir("ctx");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {img}\nRUN dd if=/dev/urandom of=/blob bs=1k count=4096 && sleep 0.3\nCOPY . /ctx\n"),
    )
    .unwrap();
    let mut kills = 0;
    let mut round = 0;
    while kills < 12 && round < 60 {
        round += 1;
        let ms = 5 + rng.below(1500);
        let which = rng.below(3);
        let group = rng.below(2) == 0;
        let killed = match which {
            0 => kill_after(&b, &["pull", &img], ms, group),
            1 => kill_after(&b, &["load", "-i", archive.to_str().unwrap()], ms, group),
            _ => kill_after(&b, &["build", "--no-cache", "-t", "k9:latest", ctx.path().to_str().unwrap()], ms, group),
        };
        kills += killed as u32;
        b.check_store();
        no_leftover_mounts(&b);
        // Every few rounds, start over from an empty store so that pulls and loads are killed
        // while they write, not only after they are done.
        if rng.below(3) == 0 {
            let _ = b.run("rmi -f k9:latest");
            let _ = b.run_args(["rmi", "-f", &img]);
            b.ok("image prune -a -f");
            b.ok("builder prune -a -f");
            b.check_store();
        }
    }
    assert!(kills >= 12, "only {kills} of {round} operations were still running at their kill point");
    // The store is usable: pull, build, run.
    b.pull(&img);
    b.ok_args(["build", "-t", "k9:latest", ctx.path().to_str().unwrap()]);
    let out = b.ok_args(["run", "--rm", "k9:latest", "cat", "/ctx/Dockerfile"]);
    assert!(out.stdout.contains("FROM"), "{}", out.stdout);
    b.check_store();
    assert!(b.temp_files().is_empty(), "temp files left: {:?}", b.temp_files());
}

#[test]
fn pulls_builds_tags_and_prunes_at_once() {
    let img = fixture("library/busybox:latest");
    let b = Berth::new();
    b.pull(&img);
    let ctx = tempdir("ctx");
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {img}\nARG N\nRUN echo $N > /n\n")).unwrap();
    let root = b.root.clone();
    let dir = b.dir.path().to_path_buf();
    let config = b.config.clone();
    let _ = (&root, &dir, &config);
    std::thread::scope(|s| {
        let b = &b;
        let img = img.as_str();
        let ctx = ctx.path().to_str().unwrap();
        let mut hs = Vec::new();
        for i in 0..3 {
            hs.push(s.spawn(move || {
                for j in 0..3 {
                    let t = format!("cc{i}:{j}");
                    b.ok_args(["build", "--build-arg", &format!("N={i}{j}"), "-t", &t, ctx]);
                }
            }));
        }
        hs.push(s.spawn(move || {
            for _ in 0..4 {
                b.pull(img);
            }
        }));
        hs.push(s.spawn(move || {
            for j in 0..10 {
                let t = format!("alias:{j}");
                b.ok_args(["tag", img, &t]);
                b.ok_args(["rmi", &t]);
            }
        }));
        hs.push(s.spawn(move || {
            for _ in 0..4 {
                b.ok("image prune -f");
                b.ok("builder prune -f");
            }
        }));
        for h in hs {
            h.join().expect("a worker failed");
        }
    });
    b.check_store();
    for i in 0..3 {
        for j in 0..3 {
            let out = b.ok_args(["run", "--rm", &format!("cc{i}:{j}"), "cat", "/n"]);
            assert_eq!(out.stdout.trim(), format!("{i}{j}"));
        }
    }
}
