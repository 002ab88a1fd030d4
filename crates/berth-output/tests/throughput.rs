//! Throughput checks (ignored by default; run with
//! `cargo test -p berth-output --release --test throughput -- --ignored --nocapture`).
//! They print numbers for docs/dev/output.md and assert only generous bounds.

use std::io::Write;
use std::time::{Duration, Instant};

use berth_output::progress::build::{BuildMode, BuildOptions, BuildProgress, LogStream};
use berth_output::progress::transfer::{Action, TransferMode, TransferOptions, TransferProgress};
use berth_output::term::TermSize;
use serde_json::json;

struct Sink(u64);
impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
#[ignore]
fn table_rendering() {
    let rows: Vec<_> = (0..10_000)
        .map(|i| {
            json!({"Repository": format!("registry.example.com/team/app{i}"), "Tag": "latest",
                   "ID": format!("{i:012x}"), "CreatedSince": "2 days ago", "Size": "187MB",
                   "Digest": "<none>", "CreatedAt": "2024-03-01 10:04:05 +0000 UTC"})
        })
        .collect();
    let t0 = Instant::now();
    let mut out = Vec::new();
    berth_output::write_list(
        &mut out,
        None,
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}",
        &[("ID", "IMAGE ID")],
        &rows,
    )
    .unwrap();
    let dt = t0.elapsed();
    println!("table: 10000 rows in {dt:?} ({} bytes)", out.len());
    let t0 = Instant::now();
    let mut out = Vec::new();
    berth_output::write_list(&mut out, Some("json"), "table", &[], &rows).unwrap();
    println!("json lines: 10000 rows in {:?}", t0.elapsed());
    assert!(dt < Duration::from_secs(5));
}

#[test]
#[ignore]
fn transfer_bytes_calls() {
    for mode in [TransferMode::Tty, TransferMode::Plain] {
        let p = TransferProgress::new(
            Box::new(Sink(0)),
            TransferOptions {
                mode,
                size: TermSize::Fixed(120, 40),
                throttle: Duration::from_millis(100),
                show_eta: true,
            },
        );
        let n = 1_000_000u64;
        let t0 = Instant::now();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let l = p.layer(&format!("{t:012}"));
                std::thread::spawn(move || {
                    for i in 0..n / 4 {
                        l.bytes(Action::Downloading, i * 32_768, n / 4 * 32_768);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let dt = t0.elapsed();
        println!(
            "transfer {mode:?}: {n} byte reports from 4 threads in {dt:?} ({:.0} ns/report)",
            dt.as_nanos() as f64 / n as f64
        );
    }
}

#[test]
#[ignore]
fn build_log_lines() {
    for mode in [BuildMode::Plain, BuildMode::Tty, BuildMode::RawJson] {
        let mut opts = BuildOptions::stderr(mode);
        opts.size = TermSize::Fixed(120, 40);
        opts.color = true;
        let p = BuildProgress::new(Box::new(Sink(0)), opts);
        p.start("v", "[1/1] RUN make");
        let n = 200_000;
        let t0 = Instant::now();
        for i in 0..n {
            p.log("v", LogStream::Stdout, format!("compiling unit {i} of the build\n").as_bytes());
        }
        p.done("v");
        p.finish();
        let dt = t0.elapsed();
        println!("build {mode:?}: {n} log lines in {dt:?} ({:.0} ns/line)", dt.as_nanos() as f64 / n as f64);
    }
}
