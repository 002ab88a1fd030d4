//! Stand-in for the berth binary, used by this crate's tests and benchmarks.
//!
//! * Hidden entry points (`__berth-supervisor`, `__berth-health`, `__berth-hook`) are
//!   routed exactly as the real binary must route them: `berth_runtime::hidden_main()`
//!   first thing in `main`.
//! * `run [-t] [-i] [--init] [--runtime PATH] [--overlay] [--seccomp-unconfined]
//!   [--network-none] ROOTFS CMD...` runs one
//!   foreground container with inherited stdio (like `berth run --rm`), for the pty tests
//!   and for `hyperfine`. Without `--overlay`, ROOTFS is used as is (read-only root).
//! * `exec [-t] [-i] STORE ID CMD...` runs `Containers::exec` with inherited stdio.
//! * `start STORE ID` runs `Containers::start_attached` with inherited stdio.

use std::path::PathBuf;

use berth_runtime::*;

fn main() {
    if let Some(code) = hidden_main() {
        std::process::exit(code);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("start") {
        let (Some(store), Some(id)) = (args.get(1), args.get(2)) else {
            eprintln!("usage: berth-runtime-helper start STORE ID");
            std::process::exit(2);
        };
        match Containers::new(store).start_attached(id, Stdio::Inherit) {
            Ok(o) => std::process::exit(o.exit_code),
            Err(e) => {
                eprintln!("berth-runtime-helper: {e}");
                std::process::exit(e.exit_code());
            }
        }
    }
    if args.first().map(String::as_str) == Some("exec") {
        exec_main(args.get(1..).unwrap_or_default());
    }
    if args.first().map(String::as_str) != Some("run") {
        eprintln!("usage: berth-runtime-helper run [-t] [-i] [--init] [--runtime PATH] [--overlay] ROOTFS CMD...");
        std::process::exit(2);
    }
    let mut cfg = ContainerConfig::default();
    let mut opts = RuntimeOptions::default();
    let mut overlay = false;
    let mut i = 1;
    while let Some(a) = args.get(i) {
        match a.as_str() {
            "-t" => cfg.tty = true,
            "-i" => cfg.interactive = true,
            "--init" => cfg.init = true,
            "--overlay" => overlay = true,
            "--seccomp-unconfined" => cfg.seccomp = SeccompMode::Unconfined,
            "--network-none" => cfg.network = NetworkMode::None,
            "--runtime" => {
                i += 1;
                opts.backend = Backend::External(PathBuf::from(args.get(i).cloned().unwrap_or_default()));
            }
            _ => break,
        }
        i += 1;
    }
    let Some(rootfs) = args.get(i).map(PathBuf::from) else {
        eprintln!("berth-runtime-helper: missing ROOTFS");
        std::process::exit(2);
    };
    cfg.args = args.get(i + 1..).unwrap_or_default().to_vec();
    let id = util::random_id();
    let scratch = PathBuf::from("/run/berth-helper").join(&id[..16]);
    cfg.rootfs = if overlay {
        RootfsSource::Layers(LayerStack {
            lower: vec![rootfs],
            upper: Some(scratch.join("upper")),
            work: Some(scratch.join("work")),
            mode: RootfsMode::Overlay,
            volatile: true,
        })
    } else {
        cfg.read_only = true;
        RootfsSource::Path(rootfs)
    };
    let res = run(&opts, &id, &cfg, Stdio::Inherit, &mut ());
    let _ = std::fs::remove_dir_all(&scratch);
    match res {
        Ok(o) => std::process::exit(o.exit_code),
        Err(e) => {
            eprintln!("berth-runtime-helper: {e}");
            std::process::exit(e.exit_code());
        }
    }
}

/// `exec [-t] [-i] STORE ID CMD...`: `docker exec` against a record store.
fn exec_main(args: &[String]) -> ! {
    let mut ex = ExecConfig::default();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        match a.as_str() {
            "-t" => ex.tty = true,
            "-i" => ex.interactive = true,
            _ => break,
        }
        i += 1;
    }
    let (Some(store), Some(id)) = (args.get(i), args.get(i + 1)) else {
        eprintln!("usage: berth-runtime-helper exec [-t] [-i] STORE ID CMD...");
        std::process::exit(2);
    };
    ex.args = args.get(i + 2..).unwrap_or_default().to_vec();
    match Containers::new(store).exec(id, &ex, Stdio::Inherit) {
        Ok(o) => std::process::exit(o.exit_code),
        Err(e) => {
            eprintln!("berth-runtime-helper: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
