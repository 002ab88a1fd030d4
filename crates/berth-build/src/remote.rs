//! Remote build contexts as BuildKit resolves them: git repositories (through the git CLI, so
//! the host's git and ssh configuration apply) and the URL forms that name them.
//!
//! Contracts:
//! - [`GitUrl::parse`] recognises `git://…`, `git@host:path`, `ssh://…`, and `http(s)://…` whose
//!   path ends in `.git`; the fragment is `ref[:subdir]`.
//! - [`checkout`] writes the commit's tree (submodules included) into a directory; `.git` is
//!   removed unless `keep_git_dir` (BUILDKIT_CONTEXT_KEEP_GIT_DIR). The result names the commit,
//!   so that a rebuild of the same commit and subdir gives the same context.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{BuildError, Result};

/// A git context URL split into remote, ref and subdirectory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitUrl {
    pub remote: String,
    pub reference: Option<String>,
    pub subdir: Option<String>,
}

impl GitUrl {
    /// `None` when `s` does not name a git repository.
    pub fn parse(s: &str) -> Option<GitUrl> {
        let (base, fragment) = match s.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (s, None),
        };
        let is_git = base.starts_with("git://")
            || base.starts_with("git@")
            || base.starts_with("ssh://")
            || ((base.starts_with("https://") || base.starts_with("http://"))
                && base.trim_end_matches('/').ends_with(".git"));
        if !is_git {
            return None;
        }
        let (reference, subdir) = match fragment {
            None => (None, None),
            Some(f) => {
                let (r, d) = match f.split_once(':') {
                    Some((r, d)) => (r, Some(d)),
                    None => (f, None),
                };
                let r = (!r.is_empty()).then(|| r.to_string());
                let d = d.map(|d| d.trim_matches('/').to_string()).filter(|d| !d.is_empty() && d != ".");
                (r, d)
            }
        };
        Some(GitUrl { remote: base.to_string(), reference, subdir })
    }
}

/// A checked-out git context.
#[derive(Debug)]
pub struct Checkout {
    /// The context directory (the subdir of the work tree, when one was asked for).
    pub dir: PathBuf,
    /// The commit checked out.
    pub commit: String,
}

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        // Never prompt for credentials in the middle of a build.
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BuildError::Other(format!("git contexts need the git CLI: running git: {e}")))?;
    if !out.status.success() {
        return Err(BuildError::Other(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn looks_like_commit(r: &str) -> bool {
    r.len() >= 7 && r.len() <= 64 && r.chars().all(|c| c.is_ascii_hexdigit())
}

/// Fetches `url` into `work` (an empty directory) and checks out its ref.
pub fn checkout(url: &GitUrl, work: &Path, keep_git_dir: bool) -> Result<Checkout> {
    git(work, &["init", "-q"])?;
    git(work, &["remote", "add", "origin", &url.remote])?;
    let wanted = url.reference.clone().unwrap_or_else(|| "HEAD".to_string());
    // A shallow fetch of the ref first; dumb HTTP servers and commits not advertised by the
    // server need a full fetch.
    let shallow = git(work, &["fetch", "-q", "--depth", "1", "origin", &wanted]);
    let target = match shallow {
        Ok(_) => "FETCH_HEAD".to_string(),
        Err(first) => {
            git(work, &["fetch", "-q", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*"])
                .map_err(|e| BuildError::Other(format!("fetching {}: {e} (after: {first})", url.remote)))?;
            if url.reference.is_none() {
                let head = git(work, &["ls-remote", "--symref", "origin", "HEAD"]).unwrap_or_default();
                head.lines()
                    .find_map(|l| l.strip_prefix("ref: refs/heads/"))
                    .and_then(|l| l.split_whitespace().next())
                    .map(|b| format!("origin/{b}"))
                    .unwrap_or_else(|| "origin/HEAD".to_string())
            } else if looks_like_commit(&wanted) {
                wanted.clone()
            } else if git(work, &["rev-parse", "-q", "--verify", &format!("refs/tags/{wanted}^{{commit}}")]).is_ok() {
                format!("refs/tags/{wanted}")
            } else {
                format!("origin/{}", wanted.trim_start_matches("refs/heads/"))
            }
        }
    };
    git(work, &["-c", "advice.detachedHead=false", "checkout", "-q", &format!("{target}^{{commit}}")])
        .map_err(|e| BuildError::Other(format!("{}: ref {wanted:?} not found: {e}", url.remote)))?;
    let commit = git(work, &["rev-parse", "HEAD"])?;
    if work.join(".gitmodules").exists() {
        git(work, &["submodule", "update", "--init", "--recursive"])?;
    }
    if !keep_git_dir {
        let g = work.join(".git");
        std::fs::remove_dir_all(&g).map_err(|e| BuildError::io(&g, e))?;
    }
    let dir = match &url.subdir {
        Some(d) => {
            if d.split('/').any(|c| c == "..") {
                return Err(BuildError::Other(format!("{}: invalid subdirectory {d:?}", url.remote)));
            }
            let p = work.join(d);
            if !p.is_dir() {
                return Err(BuildError::Other(format!("{}: subdirectory {d:?} not found at {commit}", url.remote)));
            }
            p
        }
        None => work.to_path_buf(),
    };
    Ok(Checkout { dir, commit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_url_forms() {
        let u = GitUrl::parse("https://host/org/repo.git#v1:sub/dir").unwrap();
        assert_eq!(u.remote, "https://host/org/repo.git");
        assert_eq!(u.reference.as_deref(), Some("v1"));
        assert_eq!(u.subdir.as_deref(), Some("sub/dir"));
        let u = GitUrl::parse("git@github.com:org/repo.git#main").unwrap();
        assert_eq!(
            (u.remote.as_str(), u.reference.as_deref(), u.subdir),
            ("git@github.com:org/repo.git", Some("main"), None)
        );
        let u = GitUrl::parse("git://127.0.0.1:1/r#:d").unwrap();
        assert_eq!((u.reference, u.subdir.as_deref()), (None, Some("d")));
        assert!(GitUrl::parse("https://host/context.tar.gz").is_none());
        assert!(GitUrl::parse("./dir").is_none());
    }
}
