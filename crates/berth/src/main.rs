//! The `berth` binary: argument parsing, error rendering and exit codes. Command logic lives in
//! `cmd/`; everything substantial lives in the library crates.

mod cli;
mod cli_ext;
mod cmd;
mod ctx;
mod docs;
mod errors;
mod progress;
mod render;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::ctx::Ctx;
use crate::errors::render_error;

fn main() -> ExitCode {
    // The runtime re-executes this binary for container supervisors, RUN helpers and hooks;
    // those entry points must be routed before anything else happens.
    if let Some(code) = berth_runtime::hidden_main() {
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let args: Vec<String> = std::env::args().collect();
    let cli = match cli::command().try_get_matches_from(&args).and_then(|m| {
        use clap::FromArgMatches;
        Cli::from_arg_matches(&m)
    }) {
        Ok(c) => c,
        Err(e) => return errors::clap_exit(e, &args),
    };
    if cli.global.version {
        println!(
            "berth version {}, build {}",
            env!("CARGO_PKG_VERSION"),
            option_env!("BERTH_GIT_COMMIT").unwrap_or("dev")
        );
        return ExitCode::SUCCESS;
    }
    init_logging(&cli.global);
    let Some(command) = cli.command else {
        // Like docker: no command prints the help and exits 0.
        let _ = cli::command().print_help();
        return ExitCode::SUCCESS;
    };
    let ctx = Ctx::new(cli.global.clone());
    match cmd::dispatch(&ctx, command) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            let e = match errors::disk_full_hint(&e, &ctx.root) {
                Some(h) => errors::hinted(e, h),
                None => e,
            };
            let code = render_error(&e);
            ExitCode::from(code)
        }
    }
}

fn init_logging(g: &cli::Global) {
    let level = if g.debug {
        "debug".to_string()
    } else {
        match g.log_level.as_deref() {
            Some("fatal") => "error".to_string(),
            Some(l) => l.to_string(),
            None => std::env::var("BERTH_LOG").unwrap_or_else(|_| "warn".to_string()),
        }
    };
    // libcontainer logs its own (expected) cgroup-controller warnings and errors that berth
    // reports itself; keep them for --debug only.
    let quiet_libs = if level == "debug" || level == "trace" { "" } else { ",libcontainer=off,libcgroups=off" };
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{level},hyper=warn,reqwest=warn,rustls=warn,h2=warn{quiet_libs}"
    ))
    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
    let _ = Command::Version; // keep the enum referenced for docs
}
