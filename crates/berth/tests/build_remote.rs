//! Remote build contexts as BuildKit resolves them: a `git daemon` URL and a dumb-HTTP git URL
//! with `#ref:subdir`, a pinned commit, BUILDKIT_CONTEXT_KEEP_GIT_DIR, submodules, a tarball
//! URL, `-f` inside a remote context, named contexts from URLs, and full caching of a rebuild
//! of the same commit. Servers listen on 127.0.0.1 only (ports 17700-17799).

mod build_common;
mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use build_common::*;
use common::*;

/// A server process killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_port(port: u16) {
    for _ in 0..300 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

fn git(dir: &Path, args: &[&str]) -> String {
    let mut c = Command::new("git");
    c.arg("-C").arg(dir).args([
        "-c",
        "user.email=t@example.com",
        "-c",
        "user.name=t",
        "-c",
        "protocol.file.allow=always",
    ]);
    c.args(args);
    run_cmd(c).ok().stdout.trim().to_string()
}

/// A served directory of bare repositories: `repo.git` (Dockerfile and files under `sub/`,
/// tag v1 = "v1", main = "v2", a submodule `sub/mod` from `lib.git`) and `ctx.tar.gz`.
struct Fixture {
    dir: tempfile::TempDir,
    v1: String,
    _servers: Vec<Server>,
    git_port: u16,
    http_port: u16,
}

fn fixture(git_port: u16, http_port: u16) -> Fixture {
    need_tool("git");
    need_tool("python3");
    let dir = tempdir("remote-srv");
    let srv = dir.path().join("srv");
    std::fs::create_dir_all(&srv).expect("mkdir");
    // The submodule's repository.
    let lib = dir.path().join("lib");
    std::fs::create_dir_all(&lib).expect("mkdir");
    git(&lib, &["init", "-q", "-b", "main"]);
    std::fs::write(lib.join("libfile"), "from the submodule\n").expect("write");
    git(&lib, &["add", "-A"]);
    git(&lib, &["commit", "-qm", "lib"]);
    git(dir.path(), &["clone", "-q", "--bare", "lib", "srv/lib.git"]);
    // The main repository.
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("sub")).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("sub/Dockerfile"), "FROM busybox\nCOPY . /ctx/\n").expect("write");
    std::fs::write(repo.join("sub/Other.Dockerfile"), "FROM busybox\nCOPY f /other\n").expect("write");
    std::fs::write(repo.join("sub/f"), "v1\n").expect("write");
    std::fs::write(repo.join("Dockerfile"), "FROM busybox\nCOPY . /root-ctx/\n").expect("write");
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "one"]);
    git(&repo, &["tag", "v1"]);
    let v1 = git(&repo, &["rev-parse", "HEAD"]);
    std::fs::write(repo.join("sub/f"), "v2\n").expect("write");
    let lib_url = format!("{}", srv.join("lib.git").display());
    git(&repo, &["submodule", "add", "-q", &lib_url, "sub/mod"]);
    // Clones of the context fetch the submodule from the git daemon (git refuses file:// there).
    let served = format!("git://127.0.0.1:{git_port}/lib.git");
    git(&repo, &["config", "-f", ".gitmodules", "submodule.sub/mod.url", &served]);
    git(&repo, &["add", ".gitmodules"]);
    git(&repo, &["commit", "-qam", "two"]);
    git(dir.path(), &["clone", "-q", "--bare", "repo", "srv/repo.git"]);
    git(&srv.join("repo.git"), &["update-server-info"]);
    git(&srv.join("lib.git"), &["update-server-info"]);
    // A tarball context.
    let tar_src = dir.path().join("tarctx");
    std::fs::create_dir_all(&tar_src).expect("mkdir");
    std::fs::write(tar_src.join("Dockerfile"), "FROM busybox\nCOPY t /t\n").expect("write");
    std::fs::write(tar_src.join("t"), "from the tarball\n").expect("write");
    run_cmd({
        let mut c = Command::new("tar");
        c.arg("-C").arg(&tar_src).arg("-czf").arg(srv.join("ctx.tar.gz")).arg(".");
        c
    })
    .ok();
    // The same context as .tar.xz and .tar.bz2 (decoded by berth itself, no host program).
    for (flag, name) in [("-cJf", "ctx.tar.xz"), ("-cjf", "ctx.tar.bz2")] {
        run_cmd({
            let mut c = Command::new("tar");
            c.arg("-C").arg(&tar_src).arg(flag).arg(srv.join(name)).arg(".");
            c
        })
        .ok();
    }
    // git-daemon itself (the `git daemon` wrapper may fork it, and killing the wrapper would
    // leave it listening).
    let exec_path = run_cmd({
        let mut c = Command::new("git");
        c.arg("--exec-path");
        c
    })
    .ok()
    .stdout;
    let gd = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
        .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
        .arg(format!("--port={git_port}"))
        .arg(format!("--base-path={}", srv.display()))
        .arg(&srv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("git daemon");
    let http = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(http_port.to_string())
        .current_dir(&srv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 http.server");
    let servers = vec![Server(gd), Server(http)];
    wait_port(git_port);
    wait_port(http_port);
    Fixture { dir, v1, _servers: servers, git_port, http_port }
}

#[test]
fn git_contexts_from_git_daemon_and_dumb_http() {
    let f = fixture(17710, 17711);
    let b = builder();
    let _ = f.dir.path();
    // git daemon, a tag and a subdir.
    let t = tag("git-daemon");
    let url = format!("git://127.0.0.1:{}/repo.git#v1:sub", f.git_port);
    build_ok(&b, Path::new(&url), &["-t", &t]);
    assert_eq!(run_sh(&b, &t, "cat /ctx/f"), "v1\n");
    assert_eq!(run_sh(&b, &t, "ls -A /ctx | sort | tr '\\n' ' '"), "Dockerfile Other.Dockerfile f ");

    // Dumb HTTP, a branch, with the submodule; .git is not kept.
    let t = tag("git-http");
    let url = format!("http://127.0.0.1:{}/repo.git#main:sub", f.http_port);
    let first = build_ok(&b, Path::new(&url), &["-t", &t]);
    assert_eq!(run_sh(&b, &t, "cat /ctx/f /ctx/mod/libfile"), "v2\nfrom the submodule\n");
    assert_eq!(run_sh(&b, &t, "test -e /ctx/.git && echo yes || echo no").trim(), "no");
    assert!(!was_cached(&first.stderr, "COPY"));
    // The same commit again: fully cached.
    let again = build_ok(&b, Path::new(&url), &["-t", &t]);
    assert!(was_cached(&again.stderr, "COPY . /ctx/"), "{}", again.stderr);

    // A pinned commit SHA, the whole repository, the Dockerfile at its root, .git kept.
    let t = tag("git-sha");
    let url = format!("git://127.0.0.1:{}/repo.git#{}", f.git_port, f.v1);
    build_ok(&b, Path::new(&url), &["-t", &t, "--build-arg", "BUILDKIT_CONTEXT_KEEP_GIT_DIR=1"]);
    assert_eq!(run_sh(&b, &t, "cat /root-ctx/sub/f"), "v1\n");
    assert_eq!(run_sh(&b, &t, "test -d /root-ctx/.git && echo yes").trim(), "yes");

    // -f names a file inside the remote context.
    let t = tag("git-f");
    let url = format!("http://127.0.0.1:{}/repo.git#v1:sub", f.http_port);
    build_ok(&b, Path::new(&url), &["-t", &t, "-f", "Other.Dockerfile"]);
    assert_eq!(run_sh(&b, &t, "cat /other"), "v1\n");

    // A ref that does not exist fails and says which.
    let url = format!("git://127.0.0.1:{}/repo.git#nope", f.git_port);
    let r = build(&b, Path::new(&url), &[]).fails();
    assert!(r.stderr.contains("nope"), "{}", r.stderr);
}

#[test]
fn tarball_context_and_named_contexts_from_urls() {
    let f = fixture(17720, 17721);
    let b = builder();
    let t = tag("tar-url");
    let url = format!("http://127.0.0.1:{}/ctx.tar.gz", f.http_port);
    build_ok(&b, Path::new(&url), &["-t", &t]);
    assert_eq!(run_sh(&b, &t, "cat /t"), "from the tarball\n");
    for ext in ["xz", "bz2"] {
        let t = tag(&format!("tar-url-{ext}"));
        let url = format!("http://127.0.0.1:{}/ctx.tar.{ext}", f.http_port);
        build_ok(&b, Path::new(&url), &["-t", &t]);
        assert_eq!(run_sh(&b, &t, "cat /t"), "from the tarball\n", "{ext}");
    }
    // A missing tarball is an HTTP error.
    let r = build(&b, Path::new(&format!("http://127.0.0.1:{}/missing.tar", f.http_port)), &[]).fails();
    assert!(r.stderr.contains("404"), "{}", r.stderr);

    // Named contexts from a git URL and a tarball URL.
    let ctx = Ctx::new("FROM busybox\nCOPY --from=src f /from-git\nCOPY --from=tarball t /from-tar\n");
    let t = tag("named-urls");
    let git_ctx = format!("src=git://127.0.0.1:{}/repo.git#v1:sub", f.git_port);
    let tar_ctx = format!("tarball=http://127.0.0.1:{}/ctx.tar.gz", f.http_port);
    build_ok(&b, ctx.path(), &["-t", &t, "--build-context", &git_ctx, "--build-context", &tar_ctx]);
    assert_eq!(run_sh(&b, &t, "cat /from-git /from-tar"), "v1\nfrom the tarball\n");
}
