//! buildx inputs and outputs: every `berth build` flag is implemented or refused (a walk over
//! `--help`), tar streams on stdout, `-o type=image,name=…,push=true` without -t,
//! `--metadata-file` against the registry, SSH forwarding (`--ssh default`, key files, the
//! missing-key error), and the inline cache reused from a fresh store.

mod build_common;
mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use build_common::*;
use common::*;

/// Names of the files in a tar stream.
fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .expect("tar")
        .map(|e| e.expect("entry").path().expect("path").to_string_lossy().trim_start_matches("./").to_string())
        .collect()
}

/// What one flag of the walk must do.
enum Expect {
    /// The build succeeds (the flag's effect is checked elsewhere in the build tests, or here).
    Ok,
    /// The build fails, saying this.
    Refused(&'static str),
}

#[test]
fn every_build_flag_is_implemented_or_refused() {
    let b = builder();
    let ctx = Ctx::new("FROM scratch\nARG A=1\nCOPY a /a\n");
    ctx.file("a", "a\n");
    let dir = tempdir("walk");
    let out = dir.path().join("out");
    let iid = dir.path().join("iid");
    let md = dir.path().join("md.json");
    let named = tempdir("walk-named");
    let cache_dir = dir.path().join("cache");
    let p = |x: &Path| x.display().to_string();
    let plat = format!("linux/{}", host_arch());
    // Every flag of `berth build --help`, with a value and what must happen.
    let table: Vec<(&str, Vec<String>, Expect)> = vec![
        ("--add-host", vec!["--add-host=h:1.2.3.4".into()], Expect::Ok),
        ("--build-arg", vec!["--build-arg=A=2".into()], Expect::Ok),
        ("--build-context", vec![format!("--build-context=n={}", p(named.path()))], Expect::Ok),
        ("--cache-from", vec![format!("--cache-from=type=local,src={}", p(&cache_dir))], Expect::Ok),
        ("--cache-to", vec![format!("--cache-to=type=local,dest={}", p(&cache_dir))], Expect::Ok),
        ("--call", vec!["--call=targets".into()], Expect::Ok),
        ("--check", vec!["--check".into()], Expect::Ok),
        ("--file", vec!["--file".into(), p(&ctx.path().join("Dockerfile"))], Expect::Ok),
        ("--iidfile", vec!["--iidfile".into(), p(&iid)], Expect::Ok),
        ("--label", vec!["--label=x=y".into()], Expect::Ok),
        ("--load", vec!["--load".into()], Expect::Ok),
        ("--metadata-file", vec!["--metadata-file".into(), p(&md)], Expect::Ok),
        ("--network", vec!["--network=none".into()], Expect::Ok),
        ("--no-cache", vec!["--no-cache".into()], Expect::Ok),
        ("--no-cache-filter", vec!["--no-cache-filter=x".into()], Expect::Ok),
        ("--output", vec![format!("--output=type=local,dest={}", p(&out))], Expect::Ok),
        ("--platform", vec![format!("--platform={plat}")], Expect::Ok),
        ("--print", vec!["--print=outline".into()], Expect::Ok),
        ("--progress", vec!["--progress=plain".into()], Expect::Ok),
        ("--pull", vec!["--pull".into()], Expect::Ok),
        ("--push", vec!["--push".into()], Expect::Refused("needs a name")),
        ("--quiet", vec!["--quiet".into()], Expect::Ok),
        ("--secret", vec![format!("--secret=id=s,src={}", p(&ctx.path().join("a")))], Expect::Ok),
        ("--ssh", vec!["--ssh=default".into()], Expect::Refused("SSH_AUTH_SOCK")),
        ("--tag", vec!["--tag".into(), tag("walk")], Expect::Ok),
        ("--target", vec!["--target=nope".into()], Expect::Refused("nope")),
        ("--runtime", vec!["--runtime=/nonexistent/runc".into()], Expect::Ok),
        ("--allow", vec!["--allow=security.insecure".into()], Expect::Refused("does not support --allow")),
        ("--builder", vec!["--builder=other".into()], Expect::Refused("does not support --builder")),
        ("--cgroup-parent", vec!["--cgroup-parent=x".into()], Expect::Refused("does not support --cgroup-parent")),
        ("--shm-size", vec!["--shm-size=1g".into()], Expect::Refused("does not support --shm-size")),
        ("--ulimit", vec!["--ulimit=nofile=1:1".into()], Expect::Refused("does not support --ulimit")),
    ];
    let help = b.ok("build --help").stdout;
    let mut flags: Vec<String> = Vec::new();
    for line in help.lines() {
        for w in line.split(|c: char| c.is_whitespace() || c == ',') {
            let w = w.split('=').next().unwrap_or_default();
            if w.starts_with("--") && w.len() > 2 && !flags.iter().any(|f| f == w) {
                flags.push(w.to_string());
            }
        }
    }
    // Global options and --help are not build flags.
    flags.retain(|f| !matches!(f.as_str(), "--help" | "--root" | "--config" | "--signature-policy"));
    assert!(flags.len() > 25, "parsed the flags of build --help: {flags:?}\n{help}");
    for f in &flags {
        let Some((_, args, expect)) = table.iter().find(|(n, _, _)| n == f) else {
            panic!("`berth build {f}` has no entry in this walk: add how it is implemented or refused");
        };
        let mut c = b.cmd(["build"]);
        c.args(args).arg(ctx.path()).stdin(Stdio::null());
        let r = run_cmd(c);
        match expect {
            Expect::Ok => assert!(r.success(), "berth build {args:?} failed:\n{}", r.all()),
            Expect::Refused(msg) => {
                assert!(!r.success(), "berth build {args:?} must fail");
                assert!(r.stderr.contains(msg), "berth build {args:?}: expected {msg:?} in:\n{}", r.stderr);
            }
        }
    }
    // A few effects of the walk, for flags no other test file covers.
    assert_eq!(std::fs::read_to_string(out.join("a")).expect("local output"), "a\n");
    let meta = read_json(&md);
    assert!(meta["containerimage.digest"].as_str().unwrap_or_default().starts_with("sha256:"), "{meta}");
    // Output attributes berth does not implement are refused, not dropped.
    let r = build(&b, ctx.path(), &["-o", "type=image,compression=zstd"]).fails();
    assert!(r.stderr.contains("does not support the \"compression\" attribute"), "{}", r.stderr);
    let r = build(&b, ctx.path(), &["--cache-to", "type=registry,ref=x/y,compression=zstd"]).fails();
    assert!(r.stderr.contains("does not support the \"compression\" attribute"), "{}", r.stderr);
    build(&b, ctx.path(), &["--cache-to", "type=gha"]).fails();
    let r = build(&b, ctx.path(), &["--call=lint"]).fails();
    assert!(r.stderr.contains("--call=lint"), "{}", r.stderr);
}

#[test]
fn tar_outputs_on_stdout() {
    let b = builder();
    let ctx = Ctx::new("FROM scratch\nCOPY a /a\nCOPY d/ /d/\n");
    ctx.file("a", "a\n").file("d/b", "b\n");
    for args in [vec!["-o", "-"], vec!["-o", "type=tar,dest=-"]] {
        let mut c = b.cmd(["build", "--progress=plain"]);
        c.args(&args).arg(ctx.path()).stdin(Stdio::null());
        let out = c.output().expect("run berth");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let names = tar_names(&out.stdout);
        assert!(names.iter().any(|n| n == "a") && names.iter().any(|n| n == "d/b"), "{args:?}: {names:?}");
        assert!(!Path::new("-").exists(), "no directory named -");
    }
    // An image archive on stdout, loadable.
    let mut c = b.cmd(["build", "-q", "-o", "type=docker,dest=-", "-t", &tag("stdout-docker")]);
    c.arg(ctx.path()).stdin(Stdio::null());
    let out = c.output().expect("run berth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(tar_names(&out.stdout).iter().any(|n| n == "manifest.json"));
    // Two outputs cannot share stdout.
    build(&b, ctx.path(), &["-o", "-", "-o", "type=docker,dest=-"]).fails();
    // type=local needs a directory.
    let r = build(&b, ctx.path(), &["-o", "type=local,dest=-"]).fails();
    assert!(r.stderr.contains("type=tar,dest=-"), "{}", r.stderr);
}

#[test]
fn named_image_output_pushes_and_metadata_matches_the_registry() {
    let b = builder();
    let reg = require(Reg::Plain);
    let repo = format!("{reg}/{}", unique_repo("bx-named").to_lowercase());
    let ctx = Ctx::new("FROM busybox\nCOPY a /a\n");
    ctx.file("a", &repo);
    let md = b.dir.path().join("metadata.json");
    let mut c = b.cmd(["build", "-q", "--metadata-file"]);
    c.arg(&md).arg("-o").arg(format!("type=image,name={repo}:one,{repo}:two,push=true")).arg(ctx.path());
    let r = run_cmd(c).ok();
    let id = r.lines().last().cloned().unwrap_or_default();
    let meta = read_json(&md);
    for t in ["one", "two"] {
        let remote = skopeo_inspect(&format!("{repo}:{t}"), &[]);
        assert_eq!(meta["containerimage.digest"], remote["Digest"], "{t}: {meta}");
    }
    assert_eq!(meta["containerimage.descriptor"]["digest"], meta["containerimage.digest"]);
    assert!(meta["containerimage.descriptor"]["size"].as_u64().unwrap_or(0) > 0);
    assert_eq!(meta["containerimage.config.digest"].as_str(), Some(id.as_str()), "{meta}");
    assert_eq!(meta["image.name"].as_str(), Some(format!("{repo}:one,{repo}:two").as_str()));
    assert!(meta["buildx.build.ref"].as_str().unwrap_or_default().starts_with("berth/"));
    let config = skopeo_inspect(&format!("{repo}:one"), &["--config"]);
    assert_eq!(format!("{}", meta["containerimage.config.digest"]).trim_matches('"'), id);
    assert!(config["rootfs"]["diff_ids"].as_array().is_some_and(|d| d.len() == 2), "{config}");

    // type=registry is type=image with push=true; quoted names as buildx documents them.
    let mut c = b.cmd(["build", "-q", "-o"]);
    c.arg(format!("type=registry,\"name={repo}:three\"")).arg(ctx.path());
    run_cmd(c).ok();
    assert_eq!(skopeo_inspect(&format!("{repo}:three"), &[])["Digest"], meta["containerimage.digest"]);
    // A push without any name is an error, not a no-op.
    let r = build(&b, ctx.path(), &["-o", "type=image,push=true"]).fails();
    assert!(r.stderr.contains("needs a name"), "{}", r.stderr);
}

/// A directory holding the host's `ssh-add` and the libraries it loads, to bind into a RUN
/// (the busybox fixture has no ssh client). Returns (dir, loader path inside it).
fn ssh_add_tools() -> Option<(tempfile::TempDir, String)> {
    let ssh_add = Path::new("/usr/bin/ssh-add");
    if !ssh_add.exists() {
        return None;
    }
    let ldd = Command::new("ldd").arg(ssh_add).output().ok()?;
    let text = String::from_utf8_lossy(&ldd.stdout).to_string();
    let dir = tempdir("ssh-tools");
    let mut loader = None;
    let mut files = vec![ssh_add.to_path_buf()];
    for w in text.split_whitespace() {
        if w.starts_with('/') {
            files.push(w.into());
            if w.contains("ld-linux") {
                loader = Some(w.to_string());
            }
        }
    }
    for f in files {
        let dst = dir.path().join(f.strip_prefix("/").ok()?);
        std::fs::create_dir_all(dst.parent()?).ok()?;
        std::fs::copy(&f, &dst).ok()?;
    }
    Some((dir, loader?))
}

#[test]
fn ssh_forwarding_from_key_files_and_the_default_agent() {
    need_tool("ssh-keygen");
    need_tool("ssh-agent");
    let b = builder();
    let keys = tempdir("ssh-keys");
    let key = keys.path().join("id_test");
    run_cmd({
        let mut c = Command::new("ssh-keygen");
        c.args(["-q", "-t", "ed25519", "-N", "", "-C", "berth-ssh-test", "-f"]).arg(&key);
        c
    })
    .ok();
    let fp = run_cmd({
        let mut c = Command::new("ssh-keygen");
        c.arg("-lf").arg(key.with_extension("pub"));
        c
    })
    .ok()
    .stdout;
    let fp = fp.split_whitespace().nth(1).expect("fingerprint").to_string();
    let (tools, loader) = ssh_add_tools().expect("the host's ssh-add and its libraries");
    let lib_path = "/t/lib/x86_64-linux-gnu:/t/usr/lib/x86_64-linux-gnu:/t/lib:/t/usr/lib:/t/lib64";
    let df = format!(
        "FROM busybox\nRUN --mount=type=ssh,id=mykey,mode=0600 --mount=type=bind,from=tools,target=/t \
         test -S \"$SSH_AUTH_SOCK\" && echo sock=$SSH_AUTH_SOCK > /sock && \
         /t{loader} --library-path {lib_path} /t/usr/bin/ssh-add -l > /keys\n"
    );
    let ctx = Ctx::new(&df);
    let t = tag("ssh-key");
    let named = format!("tools={}", tools.path().display());
    let r =
        build_ok(&b, ctx.path(), &["--ssh", &format!("mykey={}", key.display()), "--build-context", &named, "-t", &t]);
    assert!(!r.all().contains("PRIVATE KEY"), "no key material in the logs");
    let keys_seen = run_sh(&b, &t, "cat /keys");
    assert!(keys_seen.contains(&fp) && keys_seen.contains("berth-ssh-test"), "{keys_seen} vs {fp}");
    assert_eq!(run_sh(&b, &t, "cat /sock").trim(), "sock=/run/buildkit/ssh_agent.0");
    // The socket is not left in the image, and the agent berth started is gone.
    assert_eq!(run_sh(&b, &t, "ls -A /run 2>/dev/null | wc -l").trim(), "0");
    let ps = Command::new("ps").args(["-eo", "args"]).output().expect("ps");
    let store = b.root.display().to_string();
    assert!(
        !String::from_utf8_lossy(&ps.stdout).lines().any(|l| l.contains("ssh-agent") && l.contains(&store)),
        "the build's ssh-agent was killed"
    );

    // --ssh default forwards $SSH_AUTH_SOCK: an agent of the test's own holding the key.
    let agent_dir = tempdir("ssh-agent");
    let sock = agent_dir.path().join("a.sock");
    let mut agent =
        Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock).stdout(Stdio::null()).spawn().expect("agent");
    for _ in 0..200 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    run_cmd({
        let mut c = Command::new("ssh-add");
        c.arg(&key).env("SSH_AUTH_SOCK", &sock).stdin(Stdio::null());
        c
    })
    .ok();
    let df2 = format!(
        "FROM busybox\nRUN --mount=type=ssh,target=/agent.sock,uid=1000,mode=0660 --mount=type=bind,from=tools,target=/t \
         stat -c '%u %a' /agent.sock > /owner && \
         /t{loader} --library-path {lib_path} /t/usr/bin/ssh-add -l > /keys\n"
    );
    let ctx2 = Ctx::new(&df2);
    let t2 = tag("ssh-default");
    let mut c = b.cmd(["build", "--progress=plain", "--ssh", "default", "--build-context", &named, "-t", &t2]);
    c.arg(ctx2.path()).env("SSH_AUTH_SOCK", &sock);
    run_cmd(c).ok();
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(run_sh(&b, &t2, "cat /keys").contains(&fp));
    assert_eq!(run_sh(&b, &t2, "cat /owner").trim(), "1000 660");

    // A required ssh mount with no matching --ssh fails with BuildKit's message; an optional one
    // runs without SSH_AUTH_SOCK.
    let ctx3 = Ctx::new("FROM busybox\nRUN --mount=type=ssh,id=deploy,required=true true\n");
    let r = build(&b, ctx3.path(), &[]).fails();
    assert!(r.stderr.contains("no SSH key \"deploy\" forwarded from the client"), "{}", r.stderr);
    let ctx4 = Ctx::new("FROM busybox\nRUN --mount=type=ssh,required=false echo \"[$SSH_AUTH_SOCK]\" > /s\n");
    let t4 = tag("ssh-optional");
    build_ok(&b, ctx4.path(), &["-t", &t4]);
    assert_eq!(run_sh(&b, &t4, "cat /s").trim(), "[]");
    // A key file that is not there is an error before the build starts.
    let r = build(&b, ctx4.path(), &["--ssh", "default=/nonexistent/key"]).fails();
    assert!(r.stderr.contains("/nonexistent/key"), "{}", r.stderr);
}

#[test]
fn inline_cache_is_reused_from_a_fresh_store() {
    let reg = require(Reg::Plain);
    let repo = format!("{reg}/{}", unique_repo("bx-inline").to_lowercase());
    let ctx = Ctx::new("FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n");
    let b = builder();
    let first = build_ok(&b, ctx.path(), &["--cache-to", "type=inline", "-t", &format!("{repo}:1"), "--push"]);
    assert!(first.success());
    let config = skopeo_inspect(&format!("{repo}:1"), &["--config", "--raw"]);
    assert!(config.as_object().is_some_and(|o| o.keys().any(|k| k.contains("cache"))), "cache records in the config");
    // A fresh store: nothing local, the cache comes from the pushed image.
    let fresh = builder();
    let reuse = tag("inline-reuse");
    let r = build_ok(&fresh, ctx.path(), &["--cache-from", &format!("{repo}:1"), "-t", &reuse]);
    assert!(was_cached(&r.stderr, "echo one"), "{}", r.stderr);
    assert!(was_cached(&r.stderr, "echo two"), "{}", r.stderr);
    assert_eq!(run_sh(&fresh, &reuse, "cat /one /two"), "one\ntwo\n");
    // type=registry,ref= reads the same records.
    let fresh2 = builder();
    let r = build_ok(&fresh2, ctx.path(), &["--cache-from", &format!("type=registry,ref={repo}:1")]);
    assert!(was_cached(&r.stderr, "echo two"), "{}", r.stderr);
}
