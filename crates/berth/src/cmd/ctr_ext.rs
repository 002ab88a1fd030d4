//! Container commands added for docker CLI parity: `restart`, `rename`, `exec -d`.

use anyhow::Result;
use berth_runtime::Status;

use crate::cli::{ExecArgs, RenameArgs, RestartArgs};
use crate::cmd::containers::{containers, find};
use crate::ctx::Ctx;
use crate::errors::exit_with;

/// `restart`: stop (SIGTERM or `--signal`, then SIGKILL after `--timeout`) and start again
/// detached; a stopped container is just started. Prints each name, as docker does.
pub fn restart(ctx: &Ctx, a: &RestartArgs) -> Result<i32> {
    let c = containers(ctx)?;
    let mut failed = false;
    for name in &a.containers {
        let r = (|| -> Result<()> {
            let info = find(ctx, name)?;
            let id = &info.record.id;
            if info.state.status == Status::Running {
                crate::cmd::ctr_ops::thaw_if_paused(&info);
                if let Some(sig) = &a.signal {
                    c.kill(id, sig)?;
                }
                c.stop(id, a.time.map(|t| std::time::Duration::from_secs(t.max(0) as u64)))?;
            }
            c.start_detached(id)?;
            crate::cmd::events::container(ctx, "restart", &info);
            Ok(())
        })();
        match r {
            Ok(()) => println!("{name}"),
            Err(e) => {
                failed = true;
                eprintln!("Error: {}", crate::errors::chain_text(&e));
            }
        }
    }
    if failed { Err(exit_with(1, "")) } else { Ok(0) }
}

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphanumeric())
        && n.len() >= 2
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

pub fn rename(ctx: &Ctx, a: &RenameArgs) -> Result<i32> {
    let new = a.new_name.trim_start_matches('/');
    if !valid_name(new) {
        return Err(exit_with(
            1,
            format!("Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
        ));
    }
    let info = find(ctx, &a.container)?;
    if info.record.name.as_deref() == Some(new) {
        return Err(exit_with(1, "Renaming a container with the same name as its current name"));
    }
    let c = containers(ctx)?;
    if let Some(other) = c.list()?.iter().find(|o| o.record.name.as_deref() == Some(new)) {
        return Err(exit_with(
            1,
            format!(
                "Conflict. The container name \"/{new}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.record.id
            ),
        ));
    }
    c.rename(&info.record.id, new)?;
    if let Ok(renamed) = c.inspect(&info.record.id) {
        crate::cmd::events::container(ctx, "rename", &renamed);
    }
    Ok(0)
}

/// `exec -d`: the same exec, run by a detached copy of berth (its own session, stdio on
/// /dev/null) so this command returns at once, as docker's does.
pub fn exec_detached(ctx: &Ctx, a: &ExecArgs) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let (name, cmd) =
        a.container_and_command.split_first().ok_or_else(|| exit_with(125, "exec needs a container and a command"))?;
    let info = find(ctx, name)?;
    if info.state.status != Status::Running {
        return Err(exit_with(1, format!("container {} is not running", info.record.id)));
    }
    // docker accepts -dit: a detached exec has no terminal or stdin to attach, so -t/-i are moot.
    let exe = std::env::current_exe()?;
    let mut c = std::process::Command::new(exe);
    c.arg("--root").arg(&ctx.root).arg("--config").arg(&ctx.config_dir).arg("exec");
    for e in &a.env {
        c.arg("-e").arg(e);
    }
    for f in &a.env_file {
        c.arg("--env-file").arg(f);
    }
    if let Some(u) = &a.user {
        c.arg("-u").arg(u);
    }
    if let Some(w) = &a.workdir {
        c.arg("-w").arg(w);
    }
    if a.privileged {
        c.arg("--privileged");
    }
    c.arg(&info.record.id).args(cmd);
    c.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe; the child only calls it before exec.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    c.spawn().map_err(|e| exit_with(126, format!("starting the detached exec: {e}")))?;
    Ok(0)
}
