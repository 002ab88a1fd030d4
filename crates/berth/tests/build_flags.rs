//! `berth build` flags as Docker/buildx define them: tags, -f, stdin contexts, --target and
//! skipped stages, --no-cache(-filter), --pull, progress output, -q, --iidfile, --label,
//! exporters, --check/--print, .dockerignore, errors, --platform, and the result in podman.

mod build_common;
mod common;

use std::process::Command;

use build_common::*;
use common::*;

#[test]
fn tags_iidfile_label_and_quiet() {
    let b = builder();
    let ctx = Ctx::new("FROM busybox\nLABEL from.file=1\nRUN echo q > /q\n");
    let (t1, t2) = (tag("multi-a"), tag("multi-b"));
    let iid = b.dir.path().join("iid.txt");
    let mut c =
        b.cmd(["build", "-q", "-t", &t1, "-t", &t2, "--label", "from.flag=yes", "--label", "from.file=overridden"]);
    c.arg("--iidfile").arg(&iid).arg(ctx.path());
    let r = run_cmd(c).ok();
    let lines = r.lines();
    assert_eq!(lines.len(), 1, "-q prints only the image ID: {:?}", r.stdout);
    let id = &lines[0];
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert!(!r.stderr.contains("#1 "), "-q prints no progress: {}", r.stderr);
    assert_eq!(std::fs::read_to_string(&iid).expect("iidfile").trim(), id.as_str());
    assert_eq!(&image_id(&b, &t1), id);
    assert_eq!(&image_id(&b, &t2), id, "both tags name the image");
    let labels = &b.inspect(&t1)["Config"]["Labels"];
    assert_eq!(labels["from.flag"], "yes");
    assert_eq!(labels["from.file"], "overridden", "--label overrides a LABEL of the Dockerfile");
}

#[test]
fn dockerfile_flag_outside_context_and_stdin_forms() {
    let b = builder();
    let ctx = Ctx::new("FROM busybox\nRUN echo default > /which\n");
    ctx.file("data.txt", "context data\n");
    // -f with a path outside the context.
    let outside = tempdir("df-outside");
    let df = outside.path().join("Custom.Dockerfile");
    std::fs::write(&df, "FROM busybox\nCOPY data.txt /data.txt\nRUN echo outside > /which\n").expect("write");
    let t = tag("f-outside");
    let mut c = b.cmd(["build", "-q", "-t", &t, "-f"]);
    c.arg(&df).arg(ctx.path());
    run_cmd(c).ok();
    let s = saved(&b, &t);
    assert_eq!(s.fs.text("/which"), "outside\n");
    assert_eq!(s.fs.text("/data.txt"), "context data\n");

    // -f - : the Dockerfile from stdin, the context from the directory.
    let t = tag("f-stdin");
    let mut c = b.cmd(["build", "-q", "-t", &t, "-f", "-"]);
    c.arg(ctx.path());
    run_with_stdin(c, b"FROM busybox\nCOPY data.txt /from-stdin-df.txt\n").ok();
    assert_eq!(saved(&b, &t).fs.text("/from-stdin-df.txt"), "context data\n");

    // `-` : a Dockerfile on stdin and no context at all.
    let t = tag("dash");
    let r = run_with_stdin(b.cmd(["build", "-q", "-t", &t, "-"]), b"FROM busybox\nRUN echo nocontext > /n\n").ok();
    assert!(r.stdout.trim().starts_with("sha256:"));
    assert_eq!(saved(&b, &t).fs.text("/n"), "nocontext\n");
    let r = run_with_stdin(b.cmd(["build", "-q", "-"]), b"FROM busybox\nCOPY data.txt /x\n");
    r.code(1);

    // A tar on stdin is the context (with its Dockerfile).
    let mut tar = Command::new("tar");
    tar.arg("-C").arg(ctx.path()).args(["-cf", "-", "."]);
    let tar_bytes = tar.output().expect("tar").stdout;
    let t = tag("tar-stdin");
    run_with_stdin(b.cmd(["build", "-q", "-t", &t, "-"]), &tar_bytes).ok();
    assert_eq!(saved(&b, &t).fs.text("/which"), "default\n");
    // ... also gzip-compressed.
    let mut gz = Command::new("sh");
    gz.arg("-c").arg(format!("tar -C {} -czf - .", ctx.path().display()));
    let gz_bytes = gz.output().expect("tar z").stdout;
    let t = tag("tgz-stdin");
    run_with_stdin(b.cmd(["build", "-q", "-t", &t, "-"]), &gz_bytes).ok();
    assert!(saved(&b, &t).fs.has("/which"));
}

#[test]
fn target_builds_only_needed_stages() {
    let b = builder();
    let ctx = Ctx::new(
        r#"FROM busybox AS broken
RUN echo broken-ran && false

FROM busybox AS dep
RUN echo dep > /dep

FROM busybox AS unrelated
RUN sleep 30

FROM busybox AS app
COPY --from=dep /dep /dep
RUN echo app > /app

FROM app AS test
RUN echo test > /test
"#,
    );
    // --target app: broken, unrelated and test are not built.
    let t = tag("target-app");
    let start = std::time::Instant::now();
    let r = build_ok(&b, ctx.path(), &["--target", "app", "-t", &t]);
    assert!(start.elapsed().as_secs() < 25, "the unneeded `sleep 30` stage ran");
    assert!(!r.stderr.contains("broken-ran") && !r.stderr.contains("[broken"), "{}", r.stderr);
    assert!(!r.stderr.contains("[unrelated") && !r.stderr.contains("[test"), "{}", r.stderr);
    let s = saved(&b, &t);
    assert!(s.fs.has("/app") && s.fs.has("/dep") && !s.fs.has("/test"));
    // Without --target the last stage is built, still skipping what it does not need.
    let t = tag("target-default");
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    assert!(!r.stderr.contains("broken-ran"), "{}", r.stderr);
    assert!(saved(&b, &t).fs.has("/test"));
    // An unknown target is an error.
    let r = build(&b, ctx.path(), &["--target", "nope"]).code(1);
    assert!(r.stderr.contains("nope"), "{}", r.stderr);
}

#[test]
fn no_cache_and_no_cache_filter_rerun() {
    let b = builder();
    let ctx = Ctx::new(
        r#"FROM busybox AS base
RUN cat /proc/sys/kernel/random/uuid > /base-uuid

FROM base AS final
RUN cat /proc/sys/kernel/random/uuid > /final-uuid
"#,
    );
    let t = tag("nocache");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let first = saved(&b, &t);
    let id1 = image_id(&b, &t);

    // Cached rebuild: same ID, every step CACHED.
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    assert!(executed_steps(&r.stderr).is_empty(), "{}", r.stderr);
    assert_eq!(image_id(&b, &t), id1);

    // --no-cache reruns every step.
    let r = build_ok(&b, ctx.path(), &["--no-cache", "-t", &t]);
    assert!(!r.stderr.contains("CACHED"), "--no-cache printed CACHED:\n{}", r.stderr);
    let second = saved(&b, &t);
    assert_ne!(first.fs.text("/base-uuid"), second.fs.text("/base-uuid"), "--no-cache really reran the RUN");
    assert_ne!(first.fs.text("/final-uuid"), second.fs.text("/final-uuid"));
    assert_ne!(image_id(&b, &t), id1);

    // --no-cache-filter final: base is cached, final reruns.
    let r = build_ok(&b, ctx.path(), &["--no-cache-filter", "final", "-t", &t]);
    assert!(was_cached(&r.stderr, "RUN cat /proc/sys/kernel/random/uuid > /base-uuid"), "{}", r.stderr);
    assert!(!was_cached(&r.stderr, "> /final-uuid"), "{}", r.stderr);
    let third = saved(&b, &t);
    assert_eq!(second.fs.text("/base-uuid"), third.fs.text("/base-uuid"));
    assert_ne!(second.fs.text("/final-uuid"), third.fs.text("/final-uuid"));
}

#[test]
fn pull_refreshes_the_base_image() {
    let b = builder();
    let plain = require(Reg::Plain);
    let busybox = fixture("library/busybox:latest");
    let nginx = fixture("library/nginx:latest");
    let repo = format!("{plain}/{}", unique_repo("pull-base"));
    let reference = format!("{repo}:latest");
    let copy = |from: &str| {
        skopeo([
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{from}"),
            &format!("docker://{reference}"),
        ])
        .ok();
    };
    copy(&busybox);
    let ctx = Ctx::new(&format!(
        "FROM {reference}\nRUN ls /usr/share/nginx/html/index.html > /seen 2>&1 || echo absent > /seen\n"
    ));
    let t = tag("pull");
    build_ok(&b, ctx.path(), &["-t", &t]);
    assert_eq!(saved(&b, &t).fs.text("/seen"), "absent\n");
    // The tag moves in the registry; without --pull the local copy is used...
    copy(&nginx);
    build_ok(&b, ctx.path(), &["-t", &t]);
    assert_eq!(saved(&b, &t).fs.text("/seen"), "absent\n", "without --pull the stored base is used");
    // ... with --pull the new base is fetched.
    build_ok(&b, ctx.path(), &["--pull", "-t", &t]);
    assert_eq!(saved(&b, &t).fs.text("/seen"), "/usr/share/nginx/html/index.html\n", "--pull fetched the moved tag");
}

#[test]
fn plain_progress_output_shape() {
    let b = builder();
    let ctx = Ctx::new(
        r#"FROM busybox AS builder
RUN echo built > /built && echo "to stdout"
COPY a.txt /a.txt

FROM busybox
COPY --from=builder /built /built
RUN echo final
"#,
    );
    ctx.file("a.txt", "a\n");
    let t = tag("progress");
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    let err = &r.stderr;
    assert!(r.stdout.is_empty(), "progress goes to stderr, stdout is data: {:?}", r.stdout);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.first().is_some_and(|l| *l == "#1 [internal] load build definition from Dockerfile"), "{err}");
    assert!(lines.iter().any(|l| l.starts_with("#1 transferring dockerfile")), "{err}");
    assert!(
        lines.iter().any(|l| l.ends_with("[internal] load metadata for docker.io/library/busybox:latest")),
        "{err}"
    );
    assert!(lines.iter().any(|l| l.ends_with("[internal] load build context")), "{err}");
    assert!(lines.iter().any(|l| l.contains("transferring context")), "{err}");
    let names = vertex_names(err);
    for want in [
        "[builder 1/3] FROM docker.io/library/busybox:latest",
        "[builder 2/3] RUN echo built > /built && echo \"to stdout\"",
        "[builder 3/3] COPY a.txt /a.txt",
        "[stage-1 2/3] COPY --from=builder /built /built",
        "[stage-1 3/3] RUN echo final",
    ] {
        assert!(names.iter().any(|n| n.starts_with(want)), "no vertex {want:?} in {names:#?}\n{err}");
    }
    // Command output is shown with the vertex number and a timestamp.
    let run_vertex = lines
        .iter()
        .find(|l| l.contains("[builder 2/3] RUN"))
        .and_then(|l| l.split_whitespace().next())
        .expect("RUN vertex")
        .to_string();
    let out_re = lines.iter().any(|l| {
        l.starts_with(&format!("{run_vertex} "))
            && l.split_whitespace().nth(1).is_some_and(|t| t.parse::<f64>().is_ok())
            && l.ends_with("to stdout")
    });
    assert!(out_re, "RUN output line `{run_vertex} 0.123 to stdout` missing:\n{err}");
    let done = lines.iter().any(|l| {
        l.starts_with(&format!("{run_vertex} DONE "))
            && l.trim_end().ends_with('s')
            && l.split_whitespace().nth(2).is_some_and(|d| d.trim_end_matches('s').parse::<f64>().is_ok())
    });
    assert!(done, "`{run_vertex} DONE 0.1s` missing:\n{err}");
    assert!(lines.iter().any(|l| l.ends_with("exporting to image")), "{err}");
    assert!(err.contains("writing image sha256:"), "{err}");
    assert!(err.contains(&format!("naming to docker.io/{t}")), "{err}");
    // Vertices are numbered #1, #2, ... without gaps.
    let mut nums: Vec<u32> = lines
        .iter()
        .filter_map(|l| l.strip_prefix('#'))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|n| n.parse().ok())
        .collect();
    nums.sort();
    nums.dedup();
    assert_eq!(nums, (1..=nums.len() as u32).collect::<Vec<_>>(), "{err}");

    // Cached rebuild prints CACHED for every step.
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    for step in ["RUN echo built", "COPY a.txt /a.txt", "COPY --from=builder", "RUN echo final"] {
        assert!(was_cached(&r.stderr, step), "{step} not CACHED:\n{}", r.stderr);
    }
    // BUILDKIT_PROGRESS=plain works like --progress=plain; quiet prints nothing.
    let mut c = b.cmd(["build", "-t", &t]);
    c.arg(ctx.path()).env("BUILDKIT_PROGRESS", "plain");
    let r = run_cmd(c).ok();
    assert!(r.stderr.contains("#1 [internal] load build definition"), "{}", r.stderr);
    let mut c = b.cmd(["build", "--progress=quiet", "-t", &t]);
    c.arg(ctx.path());
    let r = run_cmd(c).ok();
    assert!(!r.stderr.contains("#1 "), "{}", r.stderr);
    let mut c = b.cmd(["build", "--progress=rawjson", "-t", &t]);
    c.arg(ctx.path());
    let r = run_cmd(c).ok();
    let first = r.stderr.lines().next().unwrap_or_default();
    assert!(serde_json::from_str::<Value>(first).is_ok(), "rawjson: {}", r.stderr);
}

#[test]
fn exporters_docker_oci_tar_local() {
    let b = builder();
    let ctx = Ctx::new(
        "FROM busybox\nRUN mkdir /out && echo exported > /out/file && ln -s file /out/link\nCMD [\"cat\", \"/out/file\"]\n",
    );
    let dir = tempdir("exports");
    let d = dir.path();
    let t = tag("export");
    let docker = d.join("docker.tar");
    let oci = d.join("oci.tar");
    let tarf = d.join("fs.tar");
    let local = d.join("local");
    build_ok(&b, ctx.path(), &["-t", &t, "-o", &format!("type=docker,dest={}", docker.display())]);
    build_ok(&b, ctx.path(), &["-t", &t, "-o", &format!("type=oci,dest={}", oci.display())]);
    build_ok(&b, ctx.path(), &["-o", &format!("type=tar,dest={}", tarf.display())]);
    build_ok(&b, ctx.path(), &["-o", &format!("type=local,dest={}", local.display())]);

    // docker: a docker-archive skopeo reads, with the image under its tag.
    let s = read_docker_archive(&docker, 0);
    assert_eq!(s.fs.text("/out/file"), "exported\n");
    let tags = strings(&s.manifest["RepoTags"]);
    assert!(tags.iter().any(|x| x.ends_with(&t)), "RepoTags {tags:?}");
    let info = skopeo(["inspect", &format!("docker-archive:{}", docker.display())]).ok().json();
    assert_eq!(info["Layers"].as_array().map(Vec::len), Some(2));
    // oci: an OCI archive.
    let members = tar_listing(&oci).join("\n");
    assert!(members.contains("oci-layout") && members.contains("index.json"), "{members}");
    let info = skopeo(["inspect", &format!("oci-archive:{}", oci.display())]).ok().json();
    assert_eq!(info["Layers"].as_array().map(Vec::len), Some(2));
    let cfg = skopeo(["inspect", "--config", &format!("oci-archive:{}", oci.display())]).ok().json();
    assert_eq!(strings(&cfg["config"]["Cmd"]), vec!["cat", "/out/file"]);
    // tar: the final filesystem as one tar.
    let listing = tar_listing(&tarf);
    assert!(listing.iter().any(|l| l.ends_with("out/file")), "{listing:#?}");
    assert!(listing.iter().any(|l| l.contains("out/link -> file")), "{listing:#?}");
    assert!(listing.iter().any(|l| l.ends_with("bin/busybox")), "{listing:#?}");
    // local: the filesystem in a directory.
    assert_eq!(std::fs::read_to_string(local.join("out/file")).expect("local export"), "exported\n");
    assert_eq!(std::fs::read_link(local.join("out/link")).expect("link").to_string_lossy(), "file");
    assert!(local.join("bin/busybox").is_file());
}

#[test]
fn check_and_print_subrequests() {
    let b = builder();
    let good = Ctx::new("FROM busybox AS base\nARG VERSION=1.0\nRUN true\n\nFROM base AS final\nRUN true\n");
    let r = b.ok_args(["build", "--check", &good.path().display().to_string()]);
    assert!(r.all().contains("Check complete, no warnings found"), "{}", r.all());

    let bad = Ctx::new("FROM busybox as base\nMAINTAINER someone\nRUN true\n");
    let r = b.run_args(["build", "--check", &bad.path().display().to_string()]).code(1);
    for rule in ["FromAsCasing", "MaintainerDeprecated", "Dockerfile:1", "Dockerfile:2"] {
        assert!(r.all().contains(rule), "--check output lacks {rule}:\n{}", r.all());
    }
    // --check does not build.
    assert!(b.ok("images -q").stdout.trim().is_empty(), "--check built an image");

    // UndefinedVar judges a stage once its base image is local (its Env may define the
    // variable): a global ARG not redeclared in the stage is undefined there, PATH is not.
    let uv = Ctx::new("ARG ENVIRONMENT=production\nFROM busybox\nENV NODE_ENV=${ENVIRONMENT} P=${PATH}\n");
    build_ok(&b, uv.path(), &[]);
    let r = b.run_args(["build", "--check", &uv.path().display().to_string()]).code(1);
    assert!(r.all().contains("UndefinedVar") && r.all().contains("'$ENVIRONMENT'"), "{}", r.all());
    assert!(!r.all().contains("'$PATH'"), "PATH is in busybox's Env:\n{}", r.all());

    let r = b.ok_args(["build", "--print=targets", &good.path().display().to_string()]);
    assert!(r.stdout.contains("base") && r.stdout.contains("final (default)"), "{}", r.stdout);
    let r = b.ok_args(["build", "--print=outline", &good.path().display().to_string()]);
    assert!(r.stdout.contains("VERSION") && r.stdout.contains("1.0"), "{}", r.stdout);
}

#[test]
fn dockerignore_is_honoured() {
    let b = builder();
    let ctx = Ctx::new("FROM busybox\nCOPY . /ctx/\n");
    ctx.file(
        ".dockerignore",
        "# comment\n*.log\n!keep.log\nsecrets/\nnode_modules\n**/*.tmp\nDockerfile\n.dockerignore\n",
    );
    ctx.file("app.py", "print(1)\n").file("debug.log", "x").file("keep.log", "keep\n");
    ctx.file("secrets/key", "k").file("node_modules/m/index.js", "m").file("src/deep/x.tmp", "t");
    ctx.file("src/deep/ok.txt", "ok\n");
    let t = tag("ignore");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let s = saved(&b, &t);
    let got: Vec<String> = s.fs.under("/ctx");
    assert_eq!(
        got,
        vec!["/ctx/app.py", "/ctx/keep.log", "/ctx/src", "/ctx/src/deep", "/ctx/src/deep/ok.txt"],
        "ignored files are absent (the Dockerfile itself was still read)"
    );
    // A change to an ignored file does not invalidate the cache.
    ctx.file("debug.log", "changed");
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    assert!(was_cached(&r.stderr, "COPY . /ctx/"), "{}", r.stderr);
    // <Dockerfile>.dockerignore next to the Dockerfile wins.
    ctx.file("Custom.Dockerfile", "FROM busybox\nCOPY . /ctx/\n");
    ctx.file("Custom.Dockerfile.dockerignore", "*\n!app.py\n");
    let t2 = tag("ignore2");
    build_ok(&b, ctx.path(), &["-f", &ctx.path().join("Custom.Dockerfile").display().to_string(), "-t", &t2]);
    assert_eq!(saved(&b, &t2).fs.under("/ctx"), vec!["/ctx/app.py"]);
}

#[test]
fn failing_run_reports_lines_command_and_exit_code() {
    let b = builder();
    let ctx = Ctx::new("FROM busybox\nRUN echo ok\nRUN echo about to fail && \\\n    exit 3\nRUN echo never\n");
    let r = build(&b, ctx.path(), &[]).code(1);
    let err = &r.stderr;
    assert!(
        err.contains("ERROR: failed to solve: process \"/bin/sh -c echo about to fail &&     exit 3\" did not complete successfully: exit code: 3"),
        "{err}"
    );
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains(">>> RUN echo about to fail && \\"), "{err}");
    assert!(err.contains(">>>     exit 3"), "{err}");
    assert!(err.contains("about to fail"), "the command output is shown: {err}");
    assert!(!vertex_names(err).iter().any(|n| n.contains("RUN echo never")), "a step after the failure ran: {err}");
    let repos = b.ok("images -a --format {{.Repository}}").lines();
    assert_eq!(repos, vec!["busybox"], "a failed build leaves no image but its base");
    assert!(b.temp_files().is_empty(), "a failed build leaves temp files: {:?}", b.temp_files());

    // Exec form.
    let ctx = Ctx::new("FROM busybox\nRUN [\"sh\", \"-c\", \"exit 7\"]\n");
    let r = build(&b, ctx.path(), &[]).code(1);
    assert!(
        r.stderr
            .contains("ERROR: failed to solve: process \"sh -c exit 7\" did not complete successfully: exit code: 7"),
        "{}",
        r.stderr
    );
}

#[test]
fn malformed_dockerfiles_report_line_numbers() {
    let b = builder();
    for (df, line, needle) in [
        ("FROM busybox\nRUN true\nFOO bar\n", 3, "unknown instruction: FOO"),
        ("FROM busybox\nCOPY onlyone\n", 2, "COPY requires at least two arguments"),
        ("FROM busybox\nRUN true\nHEALTHCHECK --interval=bogus CMD true\n", 3, "bogus"),
        ("FROM busybox\nEXPOSE 80\nSTOPSIGNAL\n", 3, "STOPSIGNAL"),
    ] {
        let ctx = Ctx::new(df);
        let r = build(&b, ctx.path(), &[]).code(1);
        assert!(r.stderr.contains(&format!("Dockerfile:{line}")), "{df:?}: no Dockerfile:{line} in\n{}", r.stderr);
        assert!(r.stderr.contains(needle), "{df:?}: no {needle:?} in\n{}", r.stderr);
        assert!(r.stderr.contains("ERROR"), "{}", r.stderr);
    }
    let ctx = Ctx::new("ARG X=1\n");
    let r = build(&b, ctx.path(), &[]).code(1);
    assert!(r.stderr.contains("no stages"), "{}", r.stderr);
    // A missing Dockerfile.
    let empty = tempdir("noctx");
    let r = build(&b, empty.path(), &[]).code(1);
    assert!(r.stderr.to_lowercase().contains("dockerfile"), "{}", r.stderr);
}

/// The host's platform builds; a foreign platform whose RUN steps no emulator can run is refused
/// before the build starts, naming the platform and how to install one (multi-platform builds
/// with emulation are in tests/multiplatform.rs).
#[test]
fn platform_host_ok_other_without_emulator_refused() {
    let b = builder();
    let ctx = Ctx::new("FROM busybox\nARG TARGETARCH\nRUN echo $TARGETARCH > /arch\n");
    let t = tag("platform");
    build_ok(&b, ctx.path(), &["--platform", &format!("linux/{}", host_arch()), "-t", &t]);
    assert_eq!(saved(&b, &t).fs.text("/arch"), format!("{}\n", host_arch()));
    let Some(other) = ["linux/s390x", "linux/riscv64", "linux/mips64le"].into_iter().find(|p| {
        let q = match *p {
            "linux/s390x" => "s390x",
            "linux/riscv64" => "riscv64",
            _ => "mips64el",
        };
        !std::path::Path::new(&format!("/proc/sys/fs/binfmt_misc/qemu-{q}")).exists()
    }) else {
        eprintln!("SKIPPED: every candidate platform has an emulator registered");
        return;
    };
    let r = build(&b, ctx.path(), &["--platform", other]).code(1);
    assert!(r.stderr.contains(other), "{}", r.stderr);
    assert!(r.stderr.contains("qemu-user-static"), "{}", r.stderr);
}

#[test]
fn result_runs_in_podman() {
    let b = builder();
    let podman = Podman::new();
    let ctx = Ctx::new(
        r#"FROM busybox
WORKDIR /app
COPY hello.sh /app/hello.sh
RUN chmod +x /app/hello.sh
ENV GREETING=hi
USER nobody
ENTRYPOINT ["/app/hello.sh"]
CMD ["from-cmd"]
"#,
    );
    ctx.file("hello.sh", "#!/bin/sh\necho \"$GREETING $1 $(id -u) $(pwd)\"\n");
    let t = tag("podman");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let mut save = b.cmd(["save", &t]);
    save.stdout(std::process::Stdio::piped());
    let out = save.output().expect("berth save");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    run_with_stdin(podman.cmd(["load"]), &out.stdout).ok();
    let r = podman.run(["run", "--rm", "--network", "none", &format!("docker.io/{t}")]).ok();
    assert_eq!(r.stdout.trim(), "hi from-cmd 65534 /app");
    let r = podman.run(["run", "--rm", "--network", "none", &format!("docker.io/{t}"), "arg"]).ok();
    assert_eq!(r.stdout.trim(), "hi arg 65534 /app");
}

#[test]
fn result_runs_in_docker() {
    let b = builder();
    let (host, bin) = dockerd();
    let client = tempdir("docker-client");
    let ctx = Ctx::new("FROM busybox\nCOPY hello.txt /hello.txt\nUSER nobody\nCMD [\"cat\", \"/hello.txt\"]\n");
    ctx.file("hello.txt", "hello from berth\n");
    let t = tag("docker-run");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let mut save = b.cmd(["save", &t]);
    save.stdout(std::process::Stdio::piped());
    let out = save.output().expect("berth save");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let docker = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.args(args).env("DOCKER_HOST", &host).env("DOCKER_CONFIG", client.path());
        c
    };
    run_with_stdin(docker(&["load"]), &out.stdout).ok();
    let r = run_cmd(docker(&["run", "--rm", "--network", "none", &t])).ok();
    let _ = run_cmd(docker(&["rmi", "-f", &t]));
    assert_eq!(r.stdout, "hello from berth\n");
}

#[test]
fn build_contexts_directory_and_image() {
    let b = builder();
    let plain = require(Reg::Plain);
    fixture("library/nginx:latest");
    let extra = tempdir("extra-ctx");
    std::fs::write(extra.path().join("data.txt"), "from the named context\n").expect("write");
    std::fs::write(extra.path().join("other.txt"), "other\n").expect("write");
    let ctx = Ctx::new(
        r#"FROM mybase
COPY --from=extra /data.txt /from-dir.txt
COPY --from=extra . /extra-all/
COPY --from=web /usr/share/nginx/html/index.html /from-image.html
RUN --mount=type=bind,from=extra,target=/mnt cat /mnt/other.txt > /bound.txt
"#,
    );
    let t = tag("named-ctx");
    build_ok(
        &b,
        ctx.path(),
        &[
            "-t",
            &t,
            "--build-context",
            &format!("extra={}", extra.path().display()),
            "--build-context",
            &format!("web=docker-image://{plain}/library/nginx:latest"),
            "--build-context",
            &format!("mybase=docker-image://{plain}/library/busybox:latest"),
        ],
    );
    let s = saved(&b, &t);
    assert_eq!(s.fs.text("/from-dir.txt"), "from the named context\n");
    assert_eq!(s.fs.text("/extra-all/other.txt"), "other\n");
    assert!(s.fs.text("/from-image.html").contains("Welcome to nginx!"));
    assert_eq!(s.fs.text("/bound.txt"), "other\n");
    assert!(s.fs.has("/bin/busybox"), "FROM mybase was replaced by the docker-image:// context");
    // A changed file in the named context invalidates the steps that read it.
    std::fs::write(extra.path().join("data.txt"), "changed\n").expect("write");
    let r = build_ok(
        &b,
        ctx.path(),
        &[
            "-t",
            &t,
            "--build-context",
            &format!("extra={}", extra.path().display()),
            "--build-context",
            &format!("web=docker-image://{plain}/library/nginx:latest"),
            "--build-context",
            &format!("mybase=docker-image://{plain}/library/busybox:latest"),
        ],
    );
    assert!(!was_cached(&r.stderr, "COPY --from=extra /data.txt"), "{}", r.stderr);
    assert_eq!(saved(&b, &t).fs.text("/from-dir.txt"), "changed\n");
}

/// Ctrl-C (SIGINT to the foreground process group, as a terminal sends it) during a RUN stops
/// the build with BuildKit's message and exit status 130, and leaves no mounts, no container
/// processes and no half-written state: the store checks clean and the next build works.
#[test]
fn ctrl_c_stops_cleanly() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let b = builder();
    let marker = format!("{}", 40 + std::process::id() % 50);
    let ctx = Ctx::new(&format!(
        "FROM busybox\nCOPY big.bin /big.bin\nRUN echo started && sleep {marker}.123 && echo never > /never\n"
    ));
    ctx.file("big.bin", vec![7u8; 4 << 20]);
    let mut c = b.cmd(["build", "--progress=plain", "-t", &tag("ctrlc")]);
    c.arg(ctx.path()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    c.process_group(0);
    let mut child = c.spawn().expect("spawn berth build");
    let pgid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let line = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("build output");
        if line.ends_with(" started") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the RUN did not start");
    }
    let sleeping = || {
        run_cmd({
            let mut p = Command::new("pgrep");
            p.args(["-f", &format!("sleep {marker}.123")]);
            p
        })
        .stdout
        .trim()
        .to_string()
    };
    assert!(!sleeping().is_empty(), "the RUN's sleep is not running");
    // Ctrl-C: SIGINT to the build's own process group (never a pid from a variable that could
    // be empty or 0: the group is the spawned berth's, which process_group(0) made its leader).
    let pgid = i32::try_from(pgid).expect("pid fits i32");
    assert!(pgid > 1, "bad process group {pgid}");
    let stat = std::fs::read_to_string(format!("/proc/{pgid}/stat")).expect("berth's /proc stat");
    let pgrp = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(2)).unwrap_or_default();
    assert_eq!(pgrp, pgid.to_string(), "berth is not the leader of its own process group");
    // SAFETY: kill(2) with a negative pid signals exactly that process group.
    let rc = unsafe { libc::kill(-pgid, libc::SIGINT) };
    assert_eq!(rc, 0, "kill(-{pgid}, SIGINT) failed");
    let status = child.wait().expect("wait berth");
    let err = reader.join().expect("reader");
    assert_eq!(status.code(), Some(130), "exit status after Ctrl-C:\n{err}");
    assert!(err.contains("ERROR: failed to solve: build canceled") || err.contains("canceled"), "{err}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(sleeping().is_empty(), "the container process survived Ctrl-C: {}", sleeping());
    let root = b.root.display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("mounts");
    let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&root)).collect();
    assert!(left.is_empty(), "mounts left under the store: {left:#?}");
    b.check_store();
    assert!(b.temp_files().is_empty(), "temp files left: {:?}", b.temp_files());
    assert!(!b.ok("images --format {{.Repository}}").stdout.contains("ctrlc"), "a canceled build tagged an image");
    // The store is usable: the COPY is cached, and a build without the sleep completes.
    let ctx2 = Ctx::new("FROM busybox\nCOPY big.bin /big.bin\nRUN echo after > /after\n");
    ctx2.file("big.bin", vec![7u8; 4 << 20]);
    let r = build_ok(&b, ctx2.path(), &[]);
    assert!(was_cached(&r.stderr, "COPY big.bin /big.bin"), "{}", r.stderr);
}
