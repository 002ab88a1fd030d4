//! Material that lives beside the repository, not in it: the conformance corpora (BuildKit's and
//! Docker's test data) and the seed tour, in `../shared/` next to the clone or in the directory
//! named by `BERTH_SHARED_DIR`.
//!
//! A user's clone usually has no `../shared/`. Tests that need it then skip, saying so on
//! stderr; under CI (`CI` set to anything but `false`/`0`/empty) a missing directory is a
//! failure, so CI can never skip them silently. `scripts/test.sh` checks the same paths up front
//! and lists the skipped suites in its summary.

use std::path::PathBuf;

/// The directory that holds the shared material: `$BERTH_SHARED_DIR`, else `<repo>/../shared`.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("BERTH_SHARED_DIR") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// True when running under CI, where missing shared material is an error.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `shared_dir()/rel` when `probe` (a path relative to it) exists. Otherwise: under CI, panics
/// with what is missing; elsewhere prints one `SKIPPED` line naming `suite`, what is missing and
/// how to provide it, and returns `None` (the caller returns early and the test passes).
pub fn shared_material(suite: &str, rel: &str, probe: &str) -> Option<PathBuf> {
    let base = shared_dir();
    let dir = base.join(rel);
    if dir.join(probe).exists() {
        return Some(dir);
    }
    let msg = format!(
        "{suite}: {} not found (set BERTH_SHARED_DIR to the directory that holds {rel}/, \
         or put the shared material beside the repository as ../shared)",
        dir.join(probe).display()
    );
    if under_ci() {
        panic!("{msg}; CI must not skip it");
    }
    eprintln!("SKIPPED {msg}");
    None
}
