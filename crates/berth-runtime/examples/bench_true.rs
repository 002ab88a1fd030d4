//! In-process start latency: run `true` N times through `berth_runtime::run` and print
//! mean/median/min. `cargo run --release -p berth-runtime --example bench_true -- ROOTFS [N] [--overlay] [--unconfined]`
//! (root). For whole-process numbers use hyperfine on `berth-runtime-helper run`.

use std::path::PathBuf;
use std::time::Instant;

use berth_runtime::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(rootfs) = args.first().map(PathBuf::from) else {
        eprintln!("usage: bench_true ROOTFS [N] [--overlay] [--unconfined]");
        std::process::exit(2);
    };
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let overlay = args.iter().any(|a| a == "--overlay");
    let opts = RuntimeOptions::default();
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 3 {
        let id = util::random_id();
        let scratch = PathBuf::from("/run/berth-bench").join(&id[..12]);
        let cfg = ContainerConfig {
            rootfs: if overlay {
                RootfsSource::Layers(LayerStack {
                    lower: vec![rootfs.clone()],
                    upper: Some(scratch.join("upper")),
                    work: Some(scratch.join("work")),
                    mode: RootfsMode::Overlay,
                    volatile: false,
                })
            } else {
                RootfsSource::Path(rootfs.clone())
            },
            read_only: !overlay,
            args: vec!["true".into()],
            seccomp: if args.iter().any(|a| a == "--unconfined") {
                SeccompMode::Unconfined
            } else {
                SeccompMode::Default
            },
            ..Default::default()
        };
        let t0 = Instant::now();
        let r = run(&opts, &id, &cfg, Stdio::Inherit, &mut ());
        let dt = t0.elapsed().as_secs_f64() * 1e3;
        let _ = std::fs::remove_dir_all(&scratch);
        match r {
            Ok(o) if o.exit_code == 0 => {}
            other => {
                eprintln!("run failed: {other:?}");
                std::process::exit(1);
            }
        }
        if i >= 3 {
            times.push(dt);
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
    let min = times.first().copied().unwrap_or(0.0);
    println!("runs={n} mean={mean:.2}ms median={median:.2}ms min={min:.2}ms");
}
