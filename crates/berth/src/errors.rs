//! Error rendering and docker's exit codes: 0 success, 1 errors, 125 usage errors (and berth's
//! own failures in `run`), 126/127 for commands that cannot run, 128+N for signals.

use std::process::ExitCode;

/// An error that carries a specific exit code (e.g. a container's own exit status).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

/// A hint printed after the error, when we know the fix.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Hinted {
    pub error: anyhow::Error,
    pub hint: String,
}

pub fn hinted(error: impl Into<anyhow::Error>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Hinted { error: error.into(), hint: hint.into() })
}

/// An error with a specific exit code and a hint.
pub fn hinted_exit(code: u8, message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    let message = message.into();
    hinted(anyhow::anyhow!(message.clone()), hint).context(Exit { code, message })
}

pub fn exit_with(code: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Exit { code, message: message.into() })
}

/// When `e` comes from a full disk (ENOSPC, or a quota: EDQUOT), a hint that says so and
/// where: the filesystem holding the store, its free space, and how to free some.
pub fn disk_full_hint(e: &anyhow::Error, root: &std::path::Path) -> Option<String> {
    let full = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().and_then(|io| io.raw_os_error()).is_some_and(|n| n == 28 || n == 122) || {
            let s = c.to_string();
            s.contains("(os error 28)") || s.contains("(os error 122)") || s.contains("No space left on device")
        }
    });
    if !full {
        return None;
    }
    let free = free_bytes(root).map(|n| format!(" ({} free now)", berth_output::units::human_size(n as f64)));
    Some(format!(
        "the disk is full: the filesystem holding the store {}{} has no space left. Nothing incomplete was kept; \
         free space with 'berth image prune -a' and 'berth builder prune -a', or use --root on a larger filesystem",
        root.display(),
        free.unwrap_or_default()
    ))
}

fn free_bytes(p: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a valid C string; statvfs fills `st` when it returns 0.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: initialised by the successful call above.
    let st = unsafe { st.assume_init() };
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Prints `Error: …` (the whole cause chain on one line, as docker does) and returns the exit
/// code.
pub fn render_error(e: &anyhow::Error) -> u8 {
    let mut code = 1;
    let mut hint = None;
    for cause in e.chain() {
        if let Some(x) = cause.downcast_ref::<Exit>() {
            code = x.code;
            if x.message.is_empty() {
                return code;
            }
        }
        if let Some(h) = cause.downcast_ref::<Hinted>()
            && hint.is_none()
        {
            hint = Some(h.hint.clone());
        }
    }
    eprintln!("Error: {}", chain_text(e));
    if let Some(h) = hint {
        eprintln!("\nhint: {h}");
    }
    code
}

/// The cause chain on one line (`a: b: c`), each cause said once: libraries' errors often put
/// their source's text in their own message *and* return it as `source()`, and wrappers
/// (anyhow contexts, `io::Error::other`) repeat a message verbatim; a cause whose text the line
/// already contains is skipped.
pub fn chain_text(e: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut push = |s: String| {
        let s = s.trim();
        if s.is_empty() || line.contains(s) {
            return;
        }
        // A cause that contains everything said so far (a wrapper that repeats its source's
        // text, then adds to it) replaces it.
        if !line.is_empty() && s.contains(line.as_str()) {
            line = s.to_string();
            return;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(s);
    };
    for cause in e.chain() {
        // A Hinted error is not a `source` chain link: print the chain of the error it wraps.
        if let Some(h) = cause.downcast_ref::<Hinted>() {
            for inner in h.error.chain() {
                push(inner.to_string());
            }
            continue;
        }
        push(cause.to_string());
    }
    line
}

/// Renders a clap error like docker's flag errors: the message, then "See 'berth X --help'.",
/// exit code 125. `--help` exits 0.
pub fn clap_exit(e: clap::Error, args: &[String]) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
            // docker's wording for the most common mistake.
            let unknown = match (e.kind(), e.get(clap::error::ContextKind::InvalidArg)) {
                (ErrorKind::UnknownArgument, Some(clap::error::ContextValue::String(a))) if a.starts_with('-') => {
                    Some(format!("unknown flag: {}", a.split('=').next().unwrap_or(a)))
                }
                _ => None,
            };
            let first = unknown.as_deref().unwrap_or(first);
            // The command word: the first argument that is neither a flag nor the value of a
            // global flag that takes one (`--root DIR`).
            let mut cmd: Vec<&str> = Vec::new();
            let mut it = args.iter().skip(1);
            while let Some(a) = it.next() {
                if matches!(a.as_str(), "--root" | "--config" | "-l" | "--log-level") {
                    it.next();
                } else if !a.starts_with('-') {
                    cmd.push(a);
                    break;
                }
            }
            eprintln!("berth: {first}");
            let see =
                if cmd.is_empty() { "berth --help".to_string() } else { format!("berth {} --help", cmd.join(" ")) };
            eprintln!("See '{see}'.");
            ExitCode::from(125)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("tar entry \"a\": unsafe path: escapes")]
    struct Inner;

    /// Says its source's text *and* returns it as `source()`, as many library errors do.
    #[derive(Debug, thiserror::Error)]
    #[error("applying layer sha256:1: {0}")]
    struct Outer(#[source] Inner);

    #[test]
    fn each_cause_is_said_once() {
        let e = anyhow::Error::new(Outer(Inner));
        assert_eq!(chain_text(&e), "applying layer sha256:1: tar entry \"a\": unsafe path: escapes");
        // A wrapper that repeats the whole chain verbatim (io::Error::other) adds nothing.
        let io = std::io::Error::other(Outer(Inner));
        let e = anyhow::Error::new(io).context("pulling x");
        assert_eq!(chain_text(&e), "pulling x: applying layer sha256:1: tar entry \"a\": unsafe path: escapes");
        // Hints are not part of the line.
        let e = hinted(anyhow::anyhow!("denied"), "log in");
        assert_eq!(chain_text(&e), "denied");
    }
}
