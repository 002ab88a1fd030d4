//! Command implementations. Each returns the process exit code.

pub mod archive;
mod build;
mod build_io;
pub mod containers;
mod cp;
mod ctr_ext;
pub mod ctr_ops;
pub mod deep;
pub mod events;
pub mod images;
mod manifest;
pub mod network;
pub mod registry;
mod run_ext;
mod sign;
mod system;
pub mod volumes;

use anyhow::Result;

use crate::cli::{BuilderCmd, BuildxCmd, Command, ContainerCmd, DebugCmd, HealthcheckCmd, ImageCmd, KeyCmd, SystemCmd};
use crate::ctx::Ctx;
use crate::errors::exit_with;

pub fn dispatch(ctx: &Ctx, cmd: Command) -> Result<i32> {
    match cmd {
        Command::Images(a) | Command::Image(ImageCmd::Ls(a)) => images::images(ctx, &a),
        Command::Inspect(a) => images::inspect(ctx, &a),
        Command::Run(a) | Command::Container(ContainerCmd::Run(a)) => containers::run(ctx, &a),
        Command::Create(a) | Command::Container(ContainerCmd::Create(a)) => containers::create(ctx, &a),
        Command::Start(a) | Command::Container(ContainerCmd::Start(a)) => containers::start(ctx, &a),
        Command::Ps(a) | Command::Container(ContainerCmd::Ls(a)) => containers::ps(ctx, &a),
        Command::Port(a) | Command::Container(ContainerCmd::Port(a)) => network::port(ctx, &a),
        Command::Network(c) => network::dispatch(ctx, c),
        Command::Logs(a) | Command::Container(ContainerCmd::Logs(a)) => containers::logs(ctx, &a),
        Command::Stop(a) | Command::Container(ContainerCmd::Stop(a)) => containers::stop(ctx, &a),
        Command::Kill(a) | Command::Container(ContainerCmd::Kill(a)) => containers::kill(ctx, &a),
        Command::Wait(a) | Command::Container(ContainerCmd::Wait(a)) => containers::wait(ctx, &a),
        Command::Rm(a) | Command::Container(ContainerCmd::Rm(a)) => containers::rm(ctx, &a),
        Command::Container(ContainerCmd::Prune(a)) => containers::prune(ctx, &a),
        Command::Pause(a) | Command::Container(ContainerCmd::Pause(a)) => ctr_ops::pause(ctx, &a),
        Command::Unpause(a) | Command::Container(ContainerCmd::Unpause(a)) => ctr_ops::unpause(ctx, &a),
        Command::Top(a) | Command::Container(ContainerCmd::Top(a)) => ctr_ops::top(ctx, &a),
        Command::Diff(a) | Command::Container(ContainerCmd::Diff(a)) => ctr_ops::diff(ctx, &a),
        Command::Stats(a) | Command::Container(ContainerCmd::Stats(a)) => ctr_ops::stats(ctx, &a),
        Command::Volume(v) => volumes::dispatch(ctx, v),
        Command::System(SystemCmd::Prune(a)) => volumes::system_prune(ctx, &a),
        Command::Completion(a) => crate::docs::completion(&a),
        Command::Man(a) => crate::docs::man(&a),
        Command::Events(a) | Command::System(SystemCmd::Events(a)) => events::events(ctx, &a),
        Command::Restart(a) | Command::Container(ContainerCmd::Restart(a)) => ctr_ext::restart(ctx, &a),
        Command::Rename(a) | Command::Container(ContainerCmd::Rename(a)) => ctr_ext::rename(ctx, &a),
        Command::Exec(a) | Command::Container(ContainerCmd::Exec(a)) => containers::exec(ctx, &a),
        Command::Export(a) | Command::Container(ContainerCmd::Export(a)) => containers::export(ctx, &a),
        Command::Import(a) | Command::Image(ImageCmd::Import(a)) => containers::import(ctx, &a),
        Command::Commit(a) | Command::Container(ContainerCmd::Commit(a)) => containers::commit(ctx, &a),
        Command::Container(ContainerCmd::Inspect(a)) => {
            images::inspect(ctx, &crate::cli::InspectArgs { kind: Some("container".into()), ..a })
        }
        Command::Healthcheck(HealthcheckCmd::Run(a)) => containers::healthcheck_run(ctx, &a),
        Command::Image(ImageCmd::Inspect(a)) => images::inspect(ctx, &a),
        Command::History(a) | Command::Image(ImageCmd::History(a)) => images::history(ctx, &a),
        Command::Tag(a) | Command::Image(ImageCmd::Tag(a)) => images::tag(ctx, &a),
        Command::Rmi(a) | Command::Image(ImageCmd::Rm(a)) => images::rmi(ctx, &a),
        Command::Image(ImageCmd::Prune(a)) => images::prune(ctx, &a),
        Command::Save(a) | Command::Image(ImageCmd::Save(a)) => archive::save(ctx, &a),
        Command::Load(a) | Command::Image(ImageCmd::Load(a)) => archive::load(ctx, &a),
        Command::Cp(a) | Command::Container(ContainerCmd::Cp(a)) => cp::cp(ctx, &a),
        Command::Image(ImageCmd::Copy(a)) => archive::copy(ctx, &a),
        Command::Pull(a) | Command::Image(ImageCmd::Pull(a)) => registry::pull(ctx, &a),
        Command::Build(a)
        | Command::Image(ImageCmd::Build(a))
        | Command::Builder(BuilderCmd::Build(a))
        | Command::Buildx(BuildxCmd::Build(a)) => build::build(ctx, &a),
        Command::Buildx(BuildxCmd::Imagetools(c)) => manifest::imagetools(ctx, c),
        Command::Manifest(c) => manifest::manifest(ctx, c),
        Command::Push(a) | Command::Image(ImageCmd::Push(a)) => registry::push(ctx, &a),
        Command::Login(a) => registry::login(ctx, &a),
        Command::Logout(a) => registry::logout(ctx, &a),
        Command::Search(a) => registry::search(ctx, &a),
        Command::Key(KeyCmd::Generate(a)) => sign::key_generate(&a),
        Command::Sign(a) => sign::sign(ctx, &a),
        Command::Verify(a) => sign::verify(ctx, &a),
        Command::System(SystemCmd::Check(a)) => system::check(ctx, &a),
        Command::System(SystemCmd::Df(a)) => system::df(ctx, &a),
        Command::Info(a) | Command::System(SystemCmd::Info(a)) => system::info(ctx, &a),
        Command::Builder(BuilderCmd::Prune(a)) => system::builder_prune(ctx, &a),
        Command::Builder(BuilderCmd::Du(a)) => system::builder_du(ctx, &a),
        Command::Version(a) => system::version(ctx, &a),
        Command::Debug(DebugCmd::DockerfileAst { file }) => {
            let src = if file.as_os_str() == "-" {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
                v
            } else {
                std::fs::read(&file).map_err(|e| exit_with(1, format!("{}: {e}", file.display())))?
            };
            match berth_dockerfile::dump_ast(&src) {
                Ok(text) => {
                    print!("{text}");
                    Ok(0)
                }
                Err(e) => {
                    let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                    eprint!("{}", berth_dockerfile::render_error(&e, &String::from_utf8_lossy(&src), &name));
                    Ok(1)
                }
            }
        }
        other => Err(not_yet(command_name(&other))),
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Build(_) | Command::Buildx(_) | Command::Builder(_) => "build",
        Command::Pull(_) => "pull",
        Command::Push(_) => "push",
        Command::Login(_) => "login",
        Command::Logout(_) => "logout",
        Command::Search(_) => "search",
        _ => "this command",
    }
}

fn not_yet(what: &str) -> anyhow::Error {
    exit_with(1, format!("'{what}' is not available in this build of berth yet"))
}

/// Asks "[y/N]" on the terminal; non-interactive stdin counts as "no".
pub fn confirm(warning: &str) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    // docker writes the prompt to stdout.
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        // Like docker: read a line anyway (scripts pipe "y").
    }
    let mut line = String::new();
    if stdin.lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}
