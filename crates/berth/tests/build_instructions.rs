//! `berth build`: every Dockerfile instruction with BuildKit's semantics, checked on the built
//! image (flattened from `berth save` by an independent reader), its config and history, and
//! by running it. Real containers, the CI registry as docker.io mirror.

mod build_common;
mod common;

use build_common::*;
use common::*;

/// A busybox image with a user and group whose ids differ (for --chown, USER and WORKDIR).
const USERS: &str = r#"RUN echo "app:x:4321:1234:app:/home/app:/bin/sh" >> /etc/passwd \
 && echo "appgrp:x:1234:" >> /etc/group && echo "other:x:777:" >> /etc/group"#;

fn history_created_by(s: &Saved) -> Vec<String> {
    s.config["history"]
        .as_array()
        .map(|a| a.iter().map(|h| h["created_by"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn from_mirror_scratch_stage_and_platform() {
    let b = builder();
    let ctx = Ctx::new(
        r#"FROM busybox AS base
RUN echo base > /base.txt

FROM scratch AS bare
COPY --from=base /base.txt /only.txt

FROM base AS derived
RUN cat /base.txt > /derived.txt

FROM --platform=$BUILDPLATFORM busybox AS plat
ARG TARGETPLATFORM
ARG BUILDPLATFORM
RUN echo "$BUILDPLATFORM $TARGETPLATFORM" > /plat.txt
"#,
    );
    let t_bare = tag("from-bare");
    let t_derived = tag("from-derived");
    let t_plat = tag("from-plat");
    let r = build_ok(&b, ctx.path(), &["--target", "bare", "-t", &t_bare]);
    assert!(r.stderr.contains("FROM docker.io/library/busybox:latest"), "{}", r.stderr);
    build_ok(&b, ctx.path(), &["--target", "derived", "-t", &t_derived]);
    build_ok(&b, ctx.path(), &["--target", "plat", "-t", &t_plat]);

    // The mirror really served docker.io/library/busybox: the base is in the store under its
    // canonical name.
    let imgs = b.ok("images --format {{.Repository}}:{{.Tag}}").stdout;
    assert!(imgs.lines().any(|l| l == "busybox:latest"), "{imgs}");

    let bare = saved(&b, &t_bare);
    let paths: Vec<&String> = bare.fs.entries.keys().collect();
    assert_eq!(paths, vec!["/", "/only.txt"], "FROM scratch holds only what was copied");
    assert_eq!(bare.fs.text("/only.txt"), "base\n");
    assert_eq!(bare.layers.len(), 1);
    assert_eq!(cfg(&bare)["Cmd"], Value::Null, "scratch has no Cmd");

    let derived = saved(&b, &t_derived);
    assert_eq!(derived.fs.text("/derived.txt"), "base\n");
    assert_eq!(derived.fs.text("/base.txt"), "base\n");
    assert!(derived.fs.has("/bin/busybox"));
    // busybox (1 layer) + base RUN + derived RUN
    assert_eq!(derived.layers.len(), 3);

    let plat = saved(&b, &t_plat);
    let host = format!("linux/{}", host_arch());
    assert_eq!(plat.fs.text("/plat.txt"), format!("{host} {host}\n"));
    assert_eq!(plat.config["architecture"], host_arch());
    assert_eq!(plat.config["os"], "linux");
}

#[test]
fn run_shell_exec_and_heredoc_forms() {
    let b = builder();
    let ctx = Ctx::new(
        r#"FROM busybox
RUN echo "shell $0" > /shell.txt
RUN ["/bin/sh", "-c", "echo exec $0 > /exec.txt"]
RUN ["/bin/busybox", "touch", "/exec-direct"]
RUN cat /etc/resolv.conf > /resolv.copy && cat /etc/hosts > /hosts.copy && hostname > /hostname.copy
RUN <<EOF
echo line1 > /heredoc.txt
echo line2 >> /heredoc.txt
EOF
RUN <<EOT sh
echo "second shell" > /heredoc2.txt
EOT
RUN cat <<EOF > /inline.txt
inline $HOME
EOF
RUN <<'EOF'
echo '$HOME stays' > /quoted.txt
EOF
RUN <<EOF
#!/bin/sh
echo shebang > /shebang.txt
EOF
RUN <<SCRIPT
#!/bin/cat
this line is printed by cat, not run by sh
SCRIPT
"#,
    );
    let t = tag("run-forms");
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    let s = saved(&b, &t);
    assert_eq!(s.fs.text("/shell.txt"), "shell /bin/sh\n");
    assert_eq!(s.fs.text("/exec.txt"), "exec /bin/sh\n");
    assert_eq!(s.fs.get("/exec-direct").kind, Kind::File);
    assert_eq!(s.fs.text("/heredoc.txt"), "line1\nline2\n");
    assert_eq!(s.fs.text("/heredoc2.txt"), "second shell\n");
    assert_eq!(s.fs.text("/inline.txt"), "inline /root\n");
    assert_eq!(s.fs.text("/quoted.txt"), "$HOME stays\n");
    assert_eq!(s.fs.text("/shebang.txt"), "shebang\n");
    // A heredoc with a shebang runs with its interpreter (BuildKit: /dev/pipes/NAME).
    assert!(r.stderr.contains("this line is printed by cat, not run by sh"), "{}", r.stderr);
    assert!(!s.fs.has("/dev/pipes"), "the heredoc script leaked into the image");
    let hist = history_created_by(&s);
    assert!(hist.iter().any(|h| h == "RUN /bin/sh -c echo \"shell $0\" > /shell.txt # buildkit"), "{hist:#?}");
    assert!(hist.iter().any(|h| h == "RUN /bin/busybox touch /exec-direct # buildkit"), "{hist:#?}");
    // RUN leaves neither resolv.conf/hosts content nor the mount points of /proc, /dev, /sys.
    // RUN sees the host's resolver and a hosts file with localhost, under BuildKit's hostname.
    assert!(s.fs.text("/resolv.copy").contains("nameserver"), "{}", s.fs.text("/resolv.copy"));
    assert!(s.fs.text("/hosts.copy").contains("localhost"), "{}", s.fs.text("/hosts.copy"));
    assert_eq!(s.fs.text("/hostname.copy"), "buildkitsandbox\n");
    for p in ["/etc/resolv.conf", "/etc/hosts", "/etc/hostname"] {
        assert!(!s.fs.has(p) || s.fs.get(p).size == 0, "{p} leaked into a layer: {:?}", s.fs.get(p));
    }
    for layer in &s.layers[1..] {
        let mut ar = tar::Archive::new(&layer[..]);
        for e in ar.entries().expect("entries") {
            let e = e.expect("entry");
            let p = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            assert!(
                !p.starts_with("proc/") && !p.starts_with("sys/") && !p.starts_with("dev/"),
                "a RUN layer holds {p}"
            );
        }
    }
}

#[test]
fn run_mounts_secret_cache_bind_tmpfs() {
    let b = builder();
    let secret = "s3cr3t-value-9c1f27";
    let ctx = Ctx::new(
        r#"FROM busybox
RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d' ' -f1 > /secret-file.sha
RUN --mount=type=secret,id=tok,target=/opt/tok,mode=0400 stat -c '%a' /opt/tok > /secret-mode && sha256sum /opt/tok | cut -d' ' -f1 > /secret-target.sha
RUN --mount=type=secret,id=envtok,env=MY_TOKEN printf %s "$MY_TOKEN" | sha256sum | cut -d' ' -f1 > /secret-env.sha
RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent && touch /optional-absent-ok
RUN --mount=type=cache,target=/var/cache/t sh -c 'echo run >> /var/cache/t/count; wc -l < /var/cache/t/count > /cache-count'
RUN --mount=type=bind,source=data,target=/mnt/data cat /mnt/data/in.txt > /bind.txt && (touch /mnt/data/x 2>/dev/null && echo rw || echo ro) > /bind-mode
RUN --mount=type=bind,source=data,target=/mnt/data,rw touch /mnt/data/scratch && echo done > /bind-rw
RUN --mount=type=tmpfs,target=/scratch echo tmp > /scratch/f && grep -q ' /scratch tmpfs' /proc/mounts && cat /scratch/f > /tmpfs.txt
"#,
    );
    ctx.file("data/in.txt", "bound\n");
    ctx.file("secret.txt", secret);
    let t = tag("run-mounts");
    let secret_arg = format!("id=tok,src={}", ctx.path().join("secret.txt").display());
    let mut c = b.cmd([
        "build",
        "--progress=plain",
        "-t",
        &t,
        "--secret",
        &secret_arg,
        "--secret",
        "id=envtok,env=BUILD_TOK_ENV",
    ]);
    c.arg(ctx.path()).env("BUILD_TOK_ENV", secret);
    let r = run_cmd(c).ok();
    assert!(!r.all().contains(secret), "the secret is printed in the build output");

    let s = saved(&b, &t);
    let want = sha256_bytes(secret.as_bytes()).trim_start_matches("sha256:").to_string();
    assert_eq!(s.fs.text("/secret-file.sha").trim(), want, "secret at /run/secrets/ID");
    assert_eq!(s.fs.text("/secret-target.sha").trim(), want, "secret at target=");
    assert_eq!(s.fs.text("/secret-mode").trim(), "400", "secret mode=");
    assert_eq!(s.fs.text("/secret-env.sha").trim(), want, "secret as env=");
    assert!(s.fs.has("/optional-absent-ok"));
    assert_eq!(s.fs.text("/cache-count").trim(), "1");
    assert!(!s.fs.has("/var/cache/t/count"), "cache mount content must not be in the image");
    assert_eq!(s.fs.text("/bind.txt"), "bound\n");
    assert_eq!(s.fs.text("/bind-mode").trim(), "ro", "bind mounts are read-only by default");
    assert_eq!(s.fs.text("/bind-rw").trim(), "done");
    assert!(!s.fs.has("/mnt/data/in.txt") && !s.fs.has("/mnt/data/scratch"), "bind content leaked");
    assert!(!ctx.path().join("data/scratch").exists(), "a rw bind mount wrote into the context");
    assert_eq!(s.fs.text("/tmpfs.txt"), "tmp\n");
    assert!(!s.fs.has("/scratch/f"), "tmpfs content leaked");

    // The secret is nowhere: no layer, no config/history, no inspect output, and no stub
    // holding it.
    for (i, l) in s.layers.iter().enumerate() {
        assert!(!contains_bytes(l, secret.as_bytes()), "layer {i} contains the secret");
    }
    let config_text = s.config.to_string();
    assert!(!config_text.contains(secret), "config/history contains the secret");
    assert!(!b.ok(&format!("inspect {t}")).stdout.contains(secret));
    assert!(!b.ok(&format!("history --no-trunc {t}")).stdout.contains(secret));
    for p in ["/run/secrets/tok", "/opt/tok"] {
        if s.fs.has(p) {
            assert_eq!(s.fs.get(p).size, 0, "{p} left in the image with content");
        }
    }

    // The cache mount persists across builds (even with --no-cache), keyed by its target.
    let t2 = tag("run-mounts2");
    let mut c = b.cmd([
        "build",
        "--progress=plain",
        "--no-cache",
        "-t",
        &t2,
        "--secret",
        &secret_arg,
        "--secret",
        "id=envtok,env=BUILD_TOK_ENV",
    ]);
    c.arg(ctx.path()).env("BUILD_TOK_ENV", secret);
    run_cmd(c).ok();
    assert_eq!(saved(&b, &t2).fs.text("/cache-count").trim(), "2", "cache mount content persists");
}

#[test]
fn required_secret_missing_fails() {
    let b = builder();
    let ctx = Ctx::new("FROM busybox\nRUN --mount=type=secret,id=need,required=true cat /run/secrets/need\n");
    let r = build(&b, ctx.path(), &[]).code(1);
    assert!(r.stderr.contains("need"), "{}", r.stderr);
}

#[test]
fn network_none_isolates_default_is_private_host_opts_in() {
    let b = builder();
    let ctx = Ctx::new(
        r#"FROM busybox
RUN --network=none ls /sys/class/net > /net-none.txt
RUN ls /sys/class/net > /net-default.txt
RUN --network=host ls /sys/class/net > /net-host.txt
"#,
    );
    let t = tag("net");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let s = saved(&b, &t);
    assert_eq!(s.fs.text("/net-none.txt"), "lo\n", "--network=none leaves only lo");
    let host_ifaces: Vec<String> = std::fs::read_dir("/sys/class/net")
        .expect("host /sys/class/net")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // The default is a private network (BuildKit's): loopback and one veth, not the host's.
    assert_eq!(s.fs.text("/net-default.txt"), "eth0\nlo\n", "the default RUN network is private");
    let host_text = s.fs.text("/net-host.txt");
    let host: Vec<&str> = host_text.lines().collect();
    assert_eq!(host.len(), host_ifaces.len(), "--network=host is the host's: {host:?} vs {host_ifaces:?}");

    // The build-wide flag.
    let ctx2 = Ctx::new("FROM busybox\nRUN ls /sys/class/net > /n.txt\n");
    let t2 = tag("net-flag");
    build_ok(&b, ctx2.path(), &["--network=none", "-t", &t2]);
    assert_eq!(saved(&b, &t2).fs.text("/n.txt"), "lo\n", "build --network=none");
}

#[test]
fn copy_paths_globs_dirs_and_slashes() {
    let b = builder();
    let ctx = Ctx::new(
        r#"FROM busybox
WORKDIR /work
COPY a.txt /file-no-slash
COPY a.txt /dir-slash/
COPY a.txt rel.txt
COPY a.txt b.txt ./multi/
COPY *.txt /glob/
COPY [ab].txt /class/
COPY src /src-contents
COPY src/ /src-slash/
COPY src/. /src-dot
COPY sub*/ /globdir/
COPY nomatch* a.txt /partial-glob/
COPY ["with space.txt", "/json dest/"]
COPY src/nested/deep.txt /exists-as-dir/
"#,
    );
    ctx.file("a.txt", "A\n").file("b.txt", "B\n").file("c.txt", "C\n").file("with space.txt", "S\n");
    ctx.file("src/top.txt", "top\n").file("src/nested/deep.txt", "deep\n");
    ctx.file("sub1/one.txt", "1\n").file("sub2/two.txt", "2\n");
    ctx.mode("src/top.txt", 0o755);
    let t = tag("copy-paths");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let s = saved(&b, &t);
    let fs = &s.fs;
    assert_eq!(fs.get("/file-no-slash").kind, Kind::File);
    assert_eq!(fs.text("/file-no-slash"), "A\n");
    assert_eq!(fs.text("/dir-slash/a.txt"), "A\n");
    assert_eq!(fs.text("/work/rel.txt"), "A\n", "relative dest is under WORKDIR");
    assert_eq!(fs.text("/work/multi/a.txt"), "A\n");
    assert_eq!(fs.text("/work/multi/b.txt"), "B\n");
    for f in ["a", "b", "c"] {
        assert!(fs.has(&format!("/glob/{f}.txt")), "glob copied {f}.txt");
    }
    assert!(fs.has("/class/a.txt") && fs.has("/class/b.txt") && !fs.has("/class/c.txt"));
    for d in ["/src-contents", "/src-slash", "/src-dot"] {
        assert_eq!(fs.text(&format!("{d}/top.txt")), "top\n", "{d}: a directory copies its contents");
        assert_eq!(fs.text(&format!("{d}/nested/deep.txt")), "deep\n");
        assert!(!fs.has(&format!("{d}/src")), "{d}: not the directory itself");
        assert_eq!(fs.get(&format!("{d}/top.txt")).mode, 0o755, "mode kept");
        assert_eq!(fs.get(&format!("{d}/top.txt")).uid, 0, "context files are root-owned");
    }
    assert_eq!(fs.text("/globdir/one.txt"), "1\n", "a glob matching directories copies their contents");
    assert_eq!(fs.text("/globdir/two.txt"), "2\n");
    assert_eq!(fs.text("/partial-glob/a.txt"), "A\n", "an empty wildcard is not an error next to others");
    assert_eq!(fs.text("/json dest/with space.txt"), "S\n");
    assert_eq!(fs.text("/exists-as-dir/deep.txt"), "deep\n");
    assert_eq!(fs.get("/work").kind, Kind::Dir);

    // A missing source fails with BuildKit's message.
    let bad = Ctx::new("FROM busybox\nCOPY missing.txt /x\n");
    let r = build(&b, bad.path(), &[]).code(1);
    assert!(r.stderr.contains("\"/missing.txt\": not found"), "{}", r.stderr);
}

#[test]
fn copy_symlinks_are_copied_as_symlinks() {
    let b = builder();
    let ctx = Ctx::new(
        r#"FROM busybox
COPY tree /tree/
COPY top-link /followed
"#,
    );
    ctx.file("tree/real.txt", "real\n").symlink("tree/rel-link", "real.txt").symlink("tree/abs-link", "/etc/passwd");
    ctx.symlink("tree/dangling", "does-not-exist").symlink("tree/dir-link", "../tree");
    ctx.file("target.txt", "target\n").symlink("top-link", "target.txt");
    let t = tag("copy-symlinks");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let s = saved(&b, &t);
    for (p, target) in [
        ("/tree/rel-link", "real.txt"),
        ("/tree/abs-link", "/etc/passwd"),
        ("/tree/dangling", "does-not-exist"),
        ("/tree/dir-link", "../tree"),
    ] {
        let e = s.fs.get(p);
        assert_eq!(e.kind, Kind::Symlink, "{p}");
        assert_eq!(e.link.as_deref(), Some(target), "{p}");
    }
    // A symlink named as the source itself is followed (BuildKit FollowSymlinks for sources).
    let f = s.fs.get("/followed");
    assert_eq!(f.kind, Kind::File, "{f:?}");
    assert_eq!(f.text(), "target\n");
}

#[test]
fn copy_chown_chmod_link_exclude_parents() {
    let b = builder();
    let ctx = Ctx::new(&format!(
        r#"FROM busybox
{USERS}
COPY --chown=app:appgrp files /owned-names/
COPY --chown=app files/one.txt /owned-user-only.txt
COPY --chown=4321:777 files/one.txt /owned-ids.txt
COPY --chown=555 files/one.txt /owned-uid-only.txt
COPY --chown=app:other files /new/deep/dir/
COPY --chmod=0640 files/one.txt /mode-octal.txt
COPY --chmod=755 files /mode-dir/
COPY --chmod=u=rwx,g=rx,o= files/one.txt /mode-symbolic.txt
COPY --chmod=go-r files/one.txt /mode-minus.txt
COPY --chmod=a+X files /mode-X/
COPY --link files/one.txt /linked/
COPY --link --chown=4321:1234 files /linked-owned/
COPY --exclude=*.log --exclude=skip files /excl/
COPY --parents files/sub/two.txt files/one.txt /par/
COPY --parents ./files/./sub/two.txt /par-dot/
"#
    ));
    ctx.file("files/one.txt", "1\n").file("files/sub/two.txt", "2\n").file("files/x.log", "log\n");
    ctx.file("files/skip/s.txt", "s\n").file("files/run.sh", "#!/bin/sh\n").mode("files/run.sh", 0o755);
    let t = tag("copy-flags");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let s = saved(&b, &t);
    let fs = &s.fs;
    let owner = |p: &str| (fs.get(p).uid, fs.get(p).gid);
    assert_eq!(owner("/owned-names/one.txt"), (4321, 1234));
    assert_eq!(owner("/owned-names/sub/two.txt"), (4321, 1234));
    assert_eq!(owner("/owned-names/sub"), (4321, 1234));
    assert_eq!(owner("/owned-user-only.txt"), (4321, 1234), "a user name alone implies its primary group");
    assert_eq!(owner("/owned-ids.txt"), (4321, 777));
    assert_eq!(owner("/owned-uid-only.txt"), (555, 555), "a numeric uid alone is also the gid");
    assert_eq!(owner("/new/deep/dir/one.txt"), (4321, 777));
    assert_eq!(owner("/new/deep/dir"), (4321, 777), "the created destination gets the owner");
    assert_eq!(owner("/new"), (4321, 777), "implied parents get the owner too (BuildKit)");
    assert_eq!(owner("/etc"), (0, 0), "existing directories keep their owner");

    assert_eq!(fs.get("/mode-octal.txt").mode, 0o640);
    assert_eq!(fs.get("/mode-dir/one.txt").mode, 0o755);
    assert_eq!(fs.get("/mode-dir/sub").mode, 0o755);
    assert_eq!(fs.get("/mode-symbolic.txt").mode, 0o750);
    assert_eq!(fs.get("/mode-minus.txt").mode, 0o600);
    assert_eq!(fs.get("/mode-X/one.txt").mode, 0o644, "X does not add x to a plain file");
    assert_eq!(fs.get("/mode-X/run.sh").mode, 0o755);
    assert_eq!(fs.get("/mode-X/sub").mode, 0o755);

    assert_eq!(fs.text("/linked/one.txt"), "1\n");
    assert_eq!(owner("/linked-owned/sub/two.txt"), (4321, 1234), "--link with numeric --chown");
    // A --link layer is independent of the layers below: it holds only the copied files (and
    // their parents), never a copy of what was underneath.
    let layer_hist: Vec<&Value> =
        s.config["history"].as_array().expect("history").iter().filter(|h| h["empty_layer"] != true).collect();
    let idx = layer_hist
        .iter()
        .position(|h| h["created_by"].as_str().unwrap_or_default().starts_with("COPY files/one.txt /linked/"))
        .expect("history entry of COPY --link");
    let mut names = Vec::new();
    for e in tar::Archive::new(&s.layers[idx][..]).entries().expect("entries") {
        names.push(String::from_utf8_lossy(&e.expect("entry").path_bytes()).trim_end_matches('/').to_string());
    }
    assert_eq!(names, vec!["linked", "linked/one.txt"], "the --link layer holds only its own files");

    assert!(fs.has("/excl/one.txt") && fs.has("/excl/sub/two.txt") && fs.has("/excl/run.sh"));
    assert!(!fs.has("/excl/x.log"), "--exclude=*.log");
    assert!(!fs.has("/excl/skip"), "--exclude=skip");

    assert_eq!(fs.text("/par/files/sub/two.txt"), "2\n", "--parents keeps the source path");
    assert_eq!(fs.text("/par/files/one.txt"), "1\n");
    assert_eq!(fs.text("/par-dot/sub/two.txt"), "2\n", "/./ marks where the kept part starts");
    assert!(!fs.has("/par-dot/files"));

    // Invalid chmod values fail.
    let bad = Ctx::new("FROM busybox\nCOPY --chmod=64a Dockerfile /x\n");
    build(&b, bad.path(), &[]).code(1);
    // An unknown user fails.
    let bad = Ctx::new("FROM busybox\nCOPY --chown=nosuchuser Dockerfile /x\n");
    let r = build(&b, bad.path(), &[]).code(1);
    assert!(r.stderr.contains("nosuchuser"), "{}", r.stderr);
}

#[test]
fn copy_from_stage_index_and_image() {
    let b = builder();
    let ctx = Ctx::new(
        r#"FROM busybox AS first
RUN mkdir -p /out/d && echo one > /out/d/f && chown -R 4321:1234 /out && ln -s d/f /out/l

FROM busybox AS second
RUN echo two > /two

FROM busybox
WORKDIR /dst
COPY --from=first /out /by-name/
COPY --from=0 /out/d/f /by-index.txt
COPY --from=second two relative-src.txt
COPY --from=busybox /etc/passwd /from-image-passwd
COPY --from=localhost:5000/library/nginx:latest /usr/share/nginx/html/index.html /from-registry.html
"#,
    );
    let t = tag("copy-from");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let s = saved(&b, &t);
    assert_eq!(s.fs.text("/by-name/d/f"), "one\n");
    let e = s.fs.get("/by-name/d/f");
    assert_eq!((e.uid, e.gid), (4321, 1234), "COPY --from keeps the source owner without --chown");
    assert_eq!(s.fs.get("/by-name/l").link.as_deref(), Some("d/f"));
    assert_eq!(s.fs.text("/by-index.txt"), "one\n");
    assert_eq!(s.fs.text("/dst/relative-src.txt"), "two\n", "a relative --from source is from the root");
    assert!(s.fs.text("/from-image-passwd").starts_with("root:"));
    assert!(s.fs.text("/from-registry.html").contains("Welcome to nginx!"));
    assert!(!s.fs.has("/two"), "stage content does not leak into the final stage");
}

#[test]
fn add_extracts_local_archives_not_copy() {
    let b = builder();
    let ctx = Ctx::new(
        r#"FROM busybox
ADD plain.tar /x-tar/
ADD tree.tar.gz /x-gz/
ADD tree.tar.xz /x-xz/
ADD tree.tar.zst /x-zst/
ADD tree.tar.bz2 /x-bz2/
ADD tree.tar.gz /x-gz-noslash
COPY tree.tar.gz /copied/
ADD notarchive.gz /plain/
ADD --chown=4321:1234 tree.tar.gz /x-owned/
"#,
    );
    ctx.file("t/top.txt", "top\n").file("t/dir/inner.txt", "inner\n").symlink("t/ln", "top.txt");
    ctx.sh(
        "tar --owner=1000 --group=1000 -C t -cf plain.tar . && tar -C t -czf tree.tar.gz . && tar -C t -cJf tree.tar.xz . \
         && tar -C t -cf - . | zstd -q -o tree.tar.zst && tar -C t -cjf tree.tar.bz2 . && printf '\\037\\213junk' > notarchive.gz && rm -rf t",
    );
    let t = tag("add-archives");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let s = saved(&b, &t);
    for d in ["/x-tar", "/x-gz", "/x-xz", "/x-zst", "/x-bz2", "/x-gz-noslash"] {
        assert_eq!(s.fs.text(&format!("{d}/top.txt")), "top\n", "{d}: archive extracted");
        assert_eq!(s.fs.text(&format!("{d}/dir/inner.txt")), "inner\n", "{d}");
        assert_eq!(s.fs.get(&format!("{d}/ln")).link.as_deref(), Some("top.txt"), "{d}");
    }
    let e = s.fs.get("/x-tar/top.txt");
    assert_eq!((e.uid, e.gid), (1000, 1000), "ADD keeps the owners recorded in the archive");
    assert!(s.fs.has("/copied/tree.tar.gz"), "COPY never extracts");
    assert!(s.fs.has("/plain/notarchive.gz"), "a file that is not an archive is copied");
    let e = s.fs.get("/x-owned/top.txt");
    assert_eq!((e.uid, e.gid), (4321, 1234), "ADD --chown applies to extracted files");
}

#[test]
fn add_url_with_checksum() {
    let b = builder();
    let srv_dir = tempdir("http");
    let payload = b"downloaded payload\n";
    std::fs::write(srv_dir.path().join("file.txt"), payload).expect("write");
    std::fs::create_dir_all(srv_dir.path().join("d")).expect("mkdir");
    std::fs::write(srv_dir.path().join("d/arch.tar.gz"), b"\x1f\x8bnot really").expect("write");
    let srv = HttpServer::start(srv_dir.path());
    let sum = sha256_bytes(payload);
    let ctx = Ctx::new(&format!(
        r#"FROM busybox
ADD --checksum={sum} {url} /dl/
ADD {url} /renamed.txt
ADD --chmod=0755 {url} /exec.txt
ADD {arch} /remote-archives-stay/
"#,
        url = srv.url("file.txt"),
        arch = srv.url("d/arch.tar.gz"),
    ));
    let t = tag("add-url");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let s = saved(&b, &t);
    assert_eq!(s.fs.text("/dl/file.txt").as_bytes(), payload);
    assert_eq!(s.fs.get("/dl/file.txt").mode, 0o600, "BuildKit writes URL downloads with 0600");
    assert_eq!(s.fs.text("/renamed.txt").as_bytes(), payload);
    assert_eq!(s.fs.get("/exec.txt").mode, 0o755);
    assert!(s.fs.has("/remote-archives-stay/arch.tar.gz"), "remote archives are not extracted");

    let bad =
        Ctx::new(&format!("FROM busybox\nADD --checksum=sha256:{} {} /dl/\n", "0".repeat(64), srv.url("file.txt")));
    let r = build(&b, bad.path(), &[]).code(1);
    assert!(r.stderr.to_lowercase().contains("checksum") || r.stderr.contains("digest"), "{}", r.stderr);

    let local = Ctx::new(&format!("FROM busybox\nADD --checksum={sum} Dockerfile /x\n"));
    build(&b, local.path(), &[]).code(1);
}

#[test]
fn hostile_paths_cannot_escape() {
    let b = builder();
    let marker = format!("berth-escape-{}-{}", std::process::id(), unique_repo("x").rsplit('-').next().unwrap_or("0"));
    let host_target = std::path::Path::new("/tmp").join(&marker);
    assert!(!host_target.exists());
    let ctx = Ctx::new(&format!(
        r#"FROM busybox
RUN ln -s /tmp /abs-link && ln -s ../../../../../../tmp /rel-link && mkdir -p /deep/a
COPY f.txt /abs-link/{marker}-1
COPY f.txt /rel-link/{marker}-2
COPY f.txt /deep/a/../../../../../tmp/{marker}-3
ADD evil.tar /deep/
WORKDIR /abs-link/{marker}-wd
"#
    ));
    ctx.file("f.txt", "payload\n");
    // An archive whose entries climb out with .. and through a symlink it creates itself.
    ctx.sh(&format!(
        "python3 - <<'PY'\nimport tarfile, io\nt = tarfile.open('evil.tar', 'w')\n\
def add(name, data=b'evil'):\n    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))\n\
add('../../../../tmp/{marker}-4')\n\
l = tarfile.TarInfo('up'); l.type = tarfile.SYMTYPE; l.linkname = '/tmp'; t.addfile(l)\n\
add('up/{marker}-5')\nt.close()\nPY"
    ));
    let t = tag("hostile");
    let r = build(&b, ctx.path(), &["-t", &t]);
    for i in 1..=5 {
        let p = std::path::Path::new("/tmp").join(format!("{marker}-{i}"));
        assert!(!p.exists(), "{} was written on the host", p.display());
    }
    assert!(!std::path::Path::new("/tmp").join(format!("{marker}-wd")).exists(), "WORKDIR escaped");
    // BuildKit resolves these inside the image root; the build may succeed (files land in the
    // image's /tmp) or refuse the archive, but never touch the host.
    if r.success() {
        let s = saved(&b, &t);
        assert_eq!(s.fs.text(&format!("/tmp/{marker}-1")), "payload\n");
        assert_eq!(s.fs.text(&format!("/tmp/{marker}-2")), "payload\n");
        assert_eq!(s.fs.text(&format!("/tmp/{marker}-3")), "payload\n");
        assert!(s.fs.get(&format!("/tmp/{marker}-wd")).kind == Kind::Dir);
    } else {
        assert!(r.stderr.contains("ERROR"), "{}", r.stderr);
    }
}

#[test]
fn env_arg_and_build_args() {
    let b = builder();
    let ctx = Ctx::new(
        r#"ARG BASE=busybox
ARG UNUSED_GLOBAL=g
FROM ${BASE}
ARG A=default-a
ARG B
ARG FROM_ENV
ENV E1=env1 E2="two words" E3=${A}-x
ENV LEGACY legacy value
RUN echo "$A|$B|$FROM_ENV|$E1|$E2|$E3|$LEGACY|${UNUSED_GLOBAL:-unset}" > /vars.txt
ARG A=redeclared
ENV A=env-wins
ARG A=arg-after-env
RUN echo "$A" > /shadow.txt
"#,
    );
    let t = tag("env-arg");
    let mut c = b.cmd(["build", "--progress=plain", "-t", &t, "--build-arg", "B=from-flag", "--build-arg", "FROM_ENV"]);
    c.arg(ctx.path()).env("FROM_ENV", "from-environment");
    run_cmd(c).ok();
    let s = saved(&b, &t);
    assert_eq!(
        s.fs.text("/vars.txt"),
        "default-a|from-flag|from-environment|env1|two words|default-a-x|legacy value|unset\n"
    );
    assert_eq!(
        s.fs.text("/shadow.txt"),
        "arg-after-env\n",
        "a later ARG sets the RUN environment (LLB AddEnv), as BuildKit"
    );
    let env = strings(&cfg(&s)["Env"]);
    for want in ["E1=env1", "E2=two words", "E3=default-a-x", "LEGACY=legacy value", "A=env-wins"] {
        assert!(env.iter().any(|e| e == want), "Env lacks {want}: {env:?}");
    }
    assert!(!env.iter().any(|e| e.starts_with("B=") || e.starts_with("FROM_ENV=")), "ARGs are not in Env: {env:?}");
    // Build args used by a RUN are recorded in its history entry (`|N k=v ...`).
    let hist = history_created_by(&s);
    assert!(
        hist.iter().any(|h| h.starts_with("RUN |3 A=default-a B=from-flag FROM_ENV=from-environment /bin/sh -c echo")),
        "{hist:#?}"
    );

    // --build-arg overrides a default.
    let t2 = tag("env-arg2");
    build_ok(&b, ctx.path(), &["-t", &t2, "--build-arg", "A=overridden", "--build-arg", "B=b"]);
    assert!(saved(&b, &t2).fs.text("/vars.txt").starts_with("overridden|b||"));
}

#[test]
fn metadata_instructions_in_config_and_history() {
    let b = builder();
    let ctx = Ctx::new(&format!(
        r#"FROM busybox
{USERS}
LABEL org.example.one=1 "org.example.two"="two words"
LABEL legacy spaced value
MAINTAINER Jane Doe <jane@example.com>
EXPOSE 80 443/tcp 53/udp 8000-8002
VOLUME /data /logs
VOLUME ["/cache"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --start-interval=2s --retries=4 CMD wget -q -O- http://localhost/ || exit 1
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/echo", "ep"]
CMD echo shell-form-cmd
USER app:appgrp
ONBUILD RUN echo triggered > /onbuild.txt
ONBUILD COPY trigger.txt /trigger.txt
"#
    ));
    let t = tag("metadata");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let s = saved(&b, &t);
    let c = cfg(&s);
    assert_eq!(c["Labels"]["org.example.one"], "1");
    assert_eq!(c["Labels"]["org.example.two"], "two words");
    assert_eq!(c["Labels"]["legacy"], "spaced value");
    assert_eq!(s.config["author"], "Jane Doe <jane@example.com>");
    let ports: Vec<&String> = c["ExposedPorts"].as_object().expect("ExposedPorts").keys().collect();
    for p in ["80/tcp", "443/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"] {
        assert!(ports.iter().any(|x| *x == p), "ExposedPorts lacks {p}: {ports:?}");
    }
    let vols: Vec<&String> = c["Volumes"].as_object().expect("Volumes").keys().collect();
    assert_eq!(vols.len(), 3, "{vols:?}");
    assert_eq!(c["StopSignal"], "SIGQUIT");
    let hc = &c["Healthcheck"];
    assert_eq!(strings(&hc["Test"]), vec!["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"]);
    assert_eq!(hc["Interval"], 30_000_000_000u64);
    assert_eq!(hc["Timeout"], 5_000_000_000u64);
    assert_eq!(hc["StartPeriod"], 10_000_000_000u64);
    assert_eq!(hc["StartInterval"], 2_000_000_000u64);
    assert_eq!(hc["Retries"], 4);
    assert_eq!(strings(&c["Shell"]), vec!["/bin/sh", "-ec"]);
    assert_eq!(strings(&c["Entrypoint"]), vec!["/bin/echo", "ep"]);
    assert_eq!(strings(&c["Cmd"]), vec!["/bin/sh", "-ec", "echo shell-form-cmd"], "shell form uses SHELL");
    assert_eq!(c["User"], "app:appgrp");
    assert_eq!(strings(&c["OnBuild"]), vec!["RUN echo triggered > /onbuild.txt", "COPY trigger.txt /trigger.txt"]);

    // History: metadata-only instructions are empty layers, as BuildKit writes them.
    let hist = s.config["history"].as_array().expect("history");
    let find = |prefix: &str| {
        hist.iter()
            .find(|h| h["created_by"].as_str().unwrap_or_default().starts_with(prefix))
            .unwrap_or_else(|| panic!("no history entry starting with {prefix:?}: {hist:#?}"))
    };
    for p in [
        "LABEL ",
        "MAINTAINER ",
        "EXPOSE ",
        "VOLUME ",
        "STOPSIGNAL ",
        "HEALTHCHECK ",
        "SHELL ",
        "ENTRYPOINT ",
        "CMD ",
        "USER ",
    ] {
        let h = find(p);
        assert_eq!(h["empty_layer"], true, "{p}: {h}");
        assert_eq!(h["comment"], "buildkit.dockerfile.v0", "{p}: {h}");
    }
    // BuildKit records no history for ONBUILD (dispatchOnbuild), and writes these as its
    // dispatchers format them.
    assert!(!hist.iter().any(|h| h["created_by"].as_str().unwrap_or_default().starts_with("ONBUILD")), "{hist:#?}");
    assert_eq!(find("LABEL ")["created_by"], "LABEL org.example.one=1 org.example.two=two words");
    assert_eq!(find("VOLUME ")["created_by"], "VOLUME [/data /logs]");
    assert!(hist.iter().any(|h| h["created_by"] == "VOLUME [/cache]"), "{hist:#?}");
    assert_eq!(find("SHELL ")["created_by"], "SHELL [/bin/sh -ec]");
    assert_eq!(
        find("HEALTHCHECK ")["created_by"],
        "HEALTHCHECK &{[\"CMD-SHELL\" \"wget -q -O- http://localhost/ || exit 1\"] \"30s\" \"5s\" \"10s\" \"2s\" '\\x04'}"
    );
    assert_eq!(find("CMD ")["created_by"], "CMD [\"/bin/sh\" \"-ec\" \"echo shell-form-cmd\"]");
    assert_eq!(find("ENTRYPOINT ")["created_by"], "ENTRYPOINT [\"/bin/echo\" \"ep\"]");
    assert_eq!(
        find("EXPOSE ")["created_by"],
        "EXPOSE map[443/tcp:{} 53/udp:{} 80/tcp:{} 8000/tcp:{} 8001/tcp:{} 8002/tcp:{}]"
    );
    let non_empty = hist.iter().filter(|h| h["empty_layer"] != true).count();
    assert_eq!(non_empty, s.layers.len(), "one non-empty history entry per layer");
    assert_eq!(s.config["rootfs"]["diff_ids"].as_array().map(Vec::len), Some(s.layers.len()));
}

#[test]
fn entrypoint_resets_inherited_cmd_and_healthcheck_none() {
    let b = builder();
    // busybox has Cmd ["sh"].
    let ctx = Ctx::new(
        r#"FROM busybox AS withhc
HEALTHCHECK CMD ["true"]

FROM withhc AS ep
ENTRYPOINT ["/bin/echo"]

FROM withhc AS cmd-then-ep
CMD ["kept"]
ENTRYPOINT ["/bin/echo"]

FROM withhc AS nohc
HEALTHCHECK NONE
"#,
    );
    let (t1, t2, t3) = (tag("ep"), tag("cmd-ep"), tag("nohc"));
    build_ok(&b, ctx.path(), &["--target", "ep", "-t", &t1]);
    build_ok(&b, ctx.path(), &["--target", "cmd-then-ep", "-t", &t2]);
    build_ok(&b, ctx.path(), &["--target", "nohc", "-t", &t3]);
    let c1 = b.inspect(&t1)["Config"].clone();
    assert_eq!(c1["Cmd"], Value::Null, "ENTRYPOINT resets an inherited CMD: {c1}");
    assert_eq!(strings(&c1["Healthcheck"]["Test"]), vec!["CMD", "true"], "HEALTHCHECK is inherited");
    let c2 = b.inspect(&t2)["Config"].clone();
    assert_eq!(strings(&c2["Cmd"]), vec!["kept"], "a CMD of the same stage survives ENTRYPOINT");
    let c3 = b.inspect(&t3)["Config"].clone();
    assert_eq!(strings(&c3["Healthcheck"]["Test"]), vec!["NONE"], "HEALTHCHECK NONE: {c3}");
    // The base's own CMD is still ["sh"] for the stage without ENTRYPOINT.
    assert_eq!(strings(&c3["Cmd"]), vec!["sh"]);
}

#[test]
fn workdir_is_created_and_owned_by_user() {
    let b = builder();
    let ctx = Ctx::new(&format!(
        r#"FROM busybox
{USERS}
WORKDIR /root-owned/a
USER app
WORKDIR /app-owned/b
WORKDIR c
USER 4321:777
WORKDIR /ids-owned
WORKDIR /tmp
RUN pwd > /tmp/pwd.txt
"#
    ));
    let t = tag("workdir");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let s = saved(&b, &t);
    let owner = |p: &str| (s.fs.get(p).uid, s.fs.get(p).gid, s.fs.get(p).kind);
    assert_eq!(owner("/root-owned/a"), (0, 0, Kind::Dir));
    assert_eq!(owner("/app-owned/b"), (4321, 1234, Kind::Dir), "WORKDIR is owned by USER (BuildKit)");
    assert_eq!(owner("/app-owned/b/c"), (4321, 1234, Kind::Dir), "relative WORKDIR");
    assert_eq!(owner("/ids-owned"), (4321, 777, Kind::Dir));
    assert_eq!(owner("/tmp").0, 0, "an existing directory keeps its owner");
    assert_eq!(s.fs.get("/tmp").mode, 0o1777);
    assert_eq!(cfg(&s)["WorkingDir"], "/tmp");
    assert_eq!(s.fs.text("/tmp/pwd.txt"), "/tmp\n");
}

#[test]
fn onbuild_triggers_run_in_child_and_are_cleared() {
    let b = builder();
    let parent = Ctx::new(
        r#"FROM busybox
ONBUILD RUN echo "triggered in child" > /from-trigger.txt
ONBUILD COPY child.txt /child-copy.txt
"#,
    );
    let tp = tag("onbuild-parent");
    build_ok(&b, parent.path(), &["-t", &tp]);
    let ps = saved(&b, &tp);
    assert!(!ps.fs.has("/from-trigger.txt"), "triggers do not run in the image that declares them");

    let child = Ctx::new(&format!("FROM {tp}\nRUN cat /from-trigger.txt /child-copy.txt > /both.txt\n"));
    child.file("child.txt", "child context\n");
    let tc = tag("onbuild-child");
    build_ok(&b, child.path(), &["-t", &tc]);
    let cs = saved(&b, &tc);
    assert_eq!(cs.fs.text("/both.txt"), "triggered in child\nchild context\n");
    let ob = &cfg(&cs)["OnBuild"];
    assert!(ob.is_null() || ob.as_array().is_some_and(|a| a.is_empty()), "triggers are cleared: {ob}");

    // A grandchild does not run them again.
    let grand = Ctx::new(&format!("FROM {tc}\nRUN test ! -e /child-copy.txt.again && echo ok > /grand.txt\n"));
    let tg = tag("onbuild-grand");
    build_ok(&b, grand.path(), &["-t", &tg]);
    assert_eq!(saved(&b, &tg).fs.text("/grand.txt"), "ok\n");
}
