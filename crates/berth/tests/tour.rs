//! The seed tour (`../shared/seed/docker-images.md`) end to end: runs `tests/tour/run.sh` with
//! this build's `berth` in place of docker. The script does the work and the assertions (see
//! docs/tour.md); this test makes `cargo test` run it and fails with the script's own report.
//!
//! Needs what the script needs: root, the CI registries and fixtures (the script starts and
//! builds them through scripts/ci), and network access to deb.debian.org, PyPI and npm for the
//! tour's RUN steps. It takes minutes, hence the `slow_` name (`scripts/test.sh --quick` skips it).
//! Nothing is skipped when something is missing, except the tour itself: a clone without the
//! shared material beside it (`../shared/seed/`, or `$BERTH_SHARED_DIR/seed/`) skips this test
//! with a `SKIPPED` line, and fails under CI. Otherwise the script bails out and says what.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn slow_seed_tour() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let Some(seed) = berth_testkit::shared::shared_material("seed tour", "seed", "docker-images.md") else {
        return;
    };
    let script = root.join("tests/tour/run.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .env("BERTH", env!("CARGO_BIN_EXE_berth"))
        .env("TOUR_MD", seed.join("docker-images.md"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    // Echo the TAP lines as they come (a run takes minutes) and keep them for the failure report.
    let mut lines = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            lines.push(line);
        }
    }
    let status = child.wait().expect("waiting for tests/tour/run.sh");
    if !status.success() {
        let failures: Vec<&String> =
            lines.iter().filter(|l| l.starts_with("not ok") || l.starts_with("Bail out!")).collect();
        let tail = lines.iter().rev().take(60).rev().cloned().collect::<Vec<_>>().join("\n");
        panic!(
            "tests/tour/run.sh failed ({status}):\n{}\n--- last lines of its output\n{tail}",
            failures.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
        );
    }
    assert!(lines.iter().any(|l| l.starts_with("1..")), "the script ended without its plan line");
}
