//! Frontend benchmarks (plain timing harness; run with
//! `cargo bench -p berth-dockerfile`):
//! 1. parse + plan a 1,000-instruction Dockerfile (target: well under 10 ms);
//! 2. walk a 10,000-file context through a 20-pattern `.dockerignore`
//!    (target: under 50 ms warm).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use berth_dockerfile::{PlanOptions, list_context, plan, read_ignore_file};

fn dockerfile(n: usize) -> String {
    let mut s = String::from("# syntax=docker/dockerfile:1\nARG BASE=alpine:3.20\nARG VERSION=1.2.3\n");
    let mut count = 0;
    let mut stage = 0;
    while count < n {
        if count % 100 == 0 {
            if stage == 0 {
                writeln!(s, "FROM ${{BASE}} AS s{stage}").ok();
            } else {
                writeln!(s, "FROM s{} AS s{stage}", stage - 1).ok();
            }
            writeln!(s, "ARG VERSION").ok();
            stage += 1;
            count += 2;
            continue;
        }
        match count % 7 {
            0 => writeln!(s, "ENV PATH_{count}=/opt/${{VERSION}}/bin:$PATH HOME_{count}=\"/home/u {count}\"").ok(),
            1 => writeln!(s, "RUN --mount=type=cache,target=/root/.cache/{count} set -e; \\\n    echo building {count} && make -j2 \\\n    install").ok(),
            2 => writeln!(s, "COPY --chown=1000:1000 --chmod=0644 src/{count}/*.go /app/${{VERSION}}/{count}/").ok(),
            3 => writeln!(s, "ARG OPT_{count}=${{VERSION%.*}}").ok(),
            4 => writeln!(s, "LABEL org.example.v{count}=\"${{VERSION}}\" other=x").ok(),
            5 => writeln!(s, "WORKDIR /w/${{OPT_{}:-none}}", count - 2).ok(),
            _ => writeln!(s, "RUN <<EOF\necho {count}\nEOF").ok(),
        };
        count += 1;
    }
    writeln!(s, "FROM scratch\nCOPY --from=s{} /app /app\nCMD [\"/app/run\"]", stage - 1).ok();
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench_plan() {
    let src = dockerfile(1000);
    let instrs = berth_dockerfile::parse(src.as_bytes()).map(|d| d.nodes.len()).unwrap_or(0);
    let opts = PlanOptions::default();
    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let p = plan(src.as_bytes(), &opts).expect("plan");
        times.push(t.elapsed());
        std::hint::black_box(p);
    }
    println!(
        "parse+plan {instrs} instructions ({} bytes): median {:.3} ms, min {:.3} ms",
        src.len(),
        median(times.clone()).as_secs_f64() * 1e3,
        times.iter().min().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );
}

const IGNORE: &str = "
# typical ignore file
.git
**/node_modules
*.log
**/*.tmp
build/
dist
!dist/keep.txt
coverage/**
**/__pycache__
*.pyc
.env
secrets/*
docs/**/*.md
!docs/README.md
target
vendor/**/testdata
**/.DS_Store
tmp?
cache[0-9]
Dockerfile.*
";

fn bench_walk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let mut files = 0;
    let tops = ["src", "node_modules", "docs", "dist", "vendor", "lib", "test", "coverage", "build", "pkg"];
    'outer: for (ti, top) in tops.iter().enumerate() {
        for d in 0..40 {
            let p = root.join(top).join(format!("d{d}")).join(if d % 3 == 0 { "testdata" } else { "x" });
            std::fs::create_dir_all(&p).expect("mkdir");
            for f in 0..25 {
                let name = match f % 5 {
                    0 => format!("f{f}.go"),
                    1 => format!("f{f}.md"),
                    2 => format!("f{f}.log"),
                    3 => format!("f{f}.tmp"),
                    _ => format!("f{f}.txt"),
                };
                std::fs::write(p.join(name), b"x").expect("write");
                files += 1;
                if files >= 10_000 {
                    break 'outer;
                }
            }
            let _ = ti;
        }
    }
    std::fs::write(root.join(".dockerignore"), IGNORE).expect("write");
    let patterns = read_ignore_file(IGNORE);
    assert_eq!(patterns.len(), 20, "pattern count");
    let t = Instant::now();
    for _ in 0..20 {
        std::hint::black_box(berth_dockerfile::PatternMatcher::new(&patterns).expect("patterns"));
    }
    println!("  compile 20 patterns: {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / 20.0);
    let mut times = Vec::new();
    let mut kept = 0;
    for i in 0..11 {
        let t = Instant::now();
        let entries = list_context(root, &patterns).expect("walk");
        let e = t.elapsed();
        if i > 0 {
            times.push(e);
        }
        kept = entries.len();
    }
    println!(
        "walk {files} files, 20 patterns (warm): median {:.2} ms, min {:.2} ms; {kept} entries kept",
        median(times.clone()).as_secs_f64() * 1e3,
        times.iter().min().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );
    let mut times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let entries = list_context(root, &[] as &[&str]).expect("walk");
        times.push(t.elapsed());
        std::hint::black_box(entries);
    }
    println!("walk {files} files, no patterns (warm): median {:.2} ms", median(times).as_secs_f64() * 1e3);
}

fn main() {
    // `cargo test --benches` passes `--bench`-less args; keep it quick then.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "plan" {
        bench_plan();
        breakdown();
    }
    if only.is_empty() || only == "walk" {
        bench_walk();
    }
}

#[allow(dead_code)]
fn breakdown() {
    let src = dockerfile(1000);
    let t = Instant::now();
    for _ in 0..20 {
        std::hint::black_box(berth_dockerfile::parse(src.as_bytes()).expect("parse"));
    }
    println!("  parse only: {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / 20.0);
    let t = Instant::now();
    for _ in 0..20 {
        std::hint::black_box(berth_dockerfile::parse_dockerfile(src.as_bytes()).expect("parse"));
    }
    println!("  parse + typed instructions: {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / 20.0);
}
