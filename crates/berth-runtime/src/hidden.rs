//! Hidden entry points of the berth binary.
//!
//! The binary must call [`hidden_main`] first thing in `main()`:
//! ```ignore
//! fn main() {
//!     if let Some(code) = berth_runtime::hidden_main() {
//!         std::process::exit(code);
//!     }
//!     // … normal CLI …
//! }
//! ```
//! It returns `None` unless `argv[1]` is one of our private markers, so it costs one
//! string compare. Markers: [`SUPERVISOR_ARG`] (detached container supervisor),
//! [`HOOK_ARG`] (OCI hook for external runtimes), [`HEALTH_ARG`] (health-check loop),
//! [`RUN_ARG`] (foreground run on behalf of a multi-threaded caller).

use std::io::Read;

pub const SUPERVISOR_ARG: &str = "__berth-supervisor";
pub const HOOK_ARG: &str = "__berth-hook";
pub const HEALTH_ARG: &str = "__berth-health";
pub const RUN_ARG: &str = "__berth-run";

/// Route a hidden invocation; `None` for a normal command line.
pub fn hidden_main() -> Option<i32> {
    let args: Vec<String> = std::env::args().collect();
    let marker = args.get(1)?.as_str();
    match marker {
        HOOK_ARG => Some(hook_main(args.get(2..).unwrap_or_default())),
        SUPERVISOR_ARG => Some(crate::supervisor::supervisor_main(args.get(2..).unwrap_or_default())),
        HEALTH_ARG => Some(crate::health::health_main(args.get(2..).unwrap_or_default())),
        RUN_ARG => Some(crate::helper::run_main(args.get(2..).unwrap_or_default())),
        _ => None,
    }
}

fn hook_main(args: &[String]) -> i32 {
    if args.first().map(String::as_str) != Some("loopback-up") {
        eprintln!("berth hook: unknown hook {args:?}");
        return 1;
    }
    let mut s = String::new();
    if std::io::stdin().read_to_string(&mut s).is_err() {
        return 1;
    }
    let pid = serde_json::from_str::<serde_json::Value>(&s).ok().and_then(|v| v["pid"].as_i64()).unwrap_or(0) as i32;
    match crate::run::loopback_up(pid) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth hook: {e}");
            1
        }
    }
}
