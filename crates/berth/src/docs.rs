//! Shell completions (clap_complete) and man pages (clap_mangen), both generated from the
//! clap definitions so they never drift from the flags berth accepts.

use anyhow::{Context, Result};

use crate::cli::{CompletionArgs, ManArgs};

pub fn completion(a: &CompletionArgs) -> Result<i32> {
    use clap_complete::Shell;
    let shell = match a.shell.as_str() {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        _ => Shell::Fish,
    };
    let mut cmd = crate::cli::command();
    // Into memory first: clap_complete panics when its writer fails (`| head`).
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "berth", &mut buf);
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(&buf).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        r => {
            r?;
            Ok(0)
        }
    }
}

/// Writes `berth.1` and one page per (sub)command, `berth-image-ls.1` style, skipping hidden
/// commands.
pub fn man(a: &ManArgs) -> Result<i32> {
    std::fs::create_dir_all(&a.output).with_context(|| a.output.display().to_string())?;
    let cmd = crate::cli::command();
    let mut n = 0;
    write_pages(&cmd, "berth", &a.output, &mut n)?;
    eprintln!("wrote {n} man pages to {}", a.output.display());
    Ok(0)
}

fn write_pages(cmd: &clap::Command, name: &str, dir: &std::path::Path, n: &mut usize) -> Result<()> {
    let page = cmd.clone().bin_name(name.replace('-', " ")).display_name(name.to_string());
    let mut buf = Vec::new();
    clap_mangen::Man::new(page).title(name.to_uppercase()).render(&mut buf)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buf).with_context(|| path.display().to_string())?;
    *n += 1;
    for sc in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        write_pages(sc, &format!("{name}-{}", sc.get_name()), dir, n)?;
    }
    Ok(())
}
