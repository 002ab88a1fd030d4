//! Simulated pull and build, for checking the renderers in a real terminal:
//! `cargo run -p berth-output --example progress_demo -- pull|build [plain|tty]`.

use std::thread::sleep;
use std::time::Duration;

use berth_output::progress::build::{BuildMode, BuildProgress, LogStream};
use berth_output::progress::transfer::{Action, LayerStatus, TransferProgress};

fn pull() {
    let p = TransferProgress::stderr(false);
    p.message("Using default tag: latest");
    p.id_message("latest", "Pulling from library/demo");
    let sizes = [31_400_000u64, 5_800_000, 220_000, 58_400_000];
    let ids = ["a3ed95caeb02", "236608c7b546", "79b2f47ad444", "45b194cca635"];
    for id in &ids[..3] {
        p.status(id, &LayerStatus::PullingFsLayer);
    }
    p.status(ids[3], &LayerStatus::AlreadyExists);
    let threads: Vec<_> = ids[..3]
        .iter()
        .zip(sizes)
        .map(|(id, total)| {
            let l = p.layer(id);
            std::thread::spawn(move || {
                let mut done = 0;
                while done < total {
                    done = (done + total / 40).min(total);
                    l.bytes(Action::Downloading, done, total);
                    sleep(Duration::from_millis(25));
                }
                l.status(&LayerStatus::VerifyingChecksum);
                l.status(&LayerStatus::DownloadComplete);
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    for (id, total) in ids[..3].iter().zip(sizes) {
        p.bytes(id, Action::Extracting, total / 2, total);
        sleep(Duration::from_millis(100));
        p.status(id, &LayerStatus::PullComplete);
    }
    p.message("Digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    p.message("Status: Downloaded newer image for demo:latest");
}

fn build(mode: BuildMode) {
    let p = BuildProgress::stderr(mode);
    p.start("def", "[internal] load build definition from Dockerfile");
    p.status("def", "transferring dockerfile: 312B", 0, 0, true);
    p.done("def");
    p.cached("from", "[base 1/3] FROM docker.io/library/alpine:3.20");
    let stages: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|s| {
            let p = p.clone();
            std::thread::spawn(move || {
                let id = format!("run-{s}");
                p.start(&id, &format!("[stage-{s} 2/3] RUN for i in $(seq 1 20); do echo step $i; sleep 0.1; done"));
                for i in 1..=20 {
                    p.log(&id, LogStream::Stdout, format!("step {i} of stage {s}\n").as_bytes());
                    sleep(Duration::from_millis(100));
                }
                p.done(&id);
            })
        })
        .collect();
    for t in stages {
        let _ = t.join();
    }
    p.start("fail", "[base 3/3] RUN false");
    p.log("fail", LogStream::Stderr, b"something went wrong\n");
    sleep(Duration::from_millis(300));
    p.error("fail", "process \"/bin/sh -c false\" did not complete successfully: exit code: 1");
    p.finish();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("build") => {
            let mode = match args.get(2).map(String::as_str) {
                Some("plain") => BuildMode::Plain,
                Some("rawjson") => BuildMode::RawJson,
                _ => BuildMode::Tty,
            };
            build(mode)
        }
        _ => pull(),
    }
}
