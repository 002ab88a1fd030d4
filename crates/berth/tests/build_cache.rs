//! `berth build` cache and determinism: an unchanged rebuild is all CACHED with the same image
//! ID; a changed context file reruns from the first step that reads it; SOURCE_DATE_EPOCH gives
//! identical digests from clean stores; independent stages run in parallel; a cached secret
//! build never stores the secret.

mod build_common;
mod common;

use std::time::Instant;

use build_common::*;
use common::*;

const APP: &str = r#"FROM busybox
WORKDIR /app
COPY deps.txt /app/
RUN cat /proc/sys/kernel/random/uuid > /app/deps-installed
COPY src/ /app/src/
RUN cat /proc/sys/kernel/random/uuid > /app/built
COPY README.md /app/
ENV MODE=prod
CMD ["cat", "/app/built"]
"#;

fn app_ctx() -> Ctx {
    let c = Ctx::new(APP);
    c.file("deps.txt", "dep==1\n").file("src/main.py", "print('v1')\n").file("src/util.py", "x = 1\n");
    c.file("README.md", "readme\n");
    c
}

#[test]
fn unchanged_rebuild_is_cached_and_same_id() {
    let b = builder();
    let ctx = app_ctx();
    let t = tag("cache-same");
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    assert!(!r.stderr.contains("CACHED"), "cold build printed CACHED:\n{}", r.stderr);
    let id = image_id(&b, &t);
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    assert!(executed_steps(&r.stderr).is_empty(), "a rebuild ran steps: {:?}\n{}", executed_steps(&r.stderr), r.stderr);
    assert_eq!(image_id(&b, &t), id, "a fully cached rebuild gives the same image ID");
    // Also from a fresh invocation under another tag, and with a touched (not changed) file:
    // the cache is keyed by content, not mtimes.
    std::thread::sleep(std::time::Duration::from_millis(20));
    ctx.file("src/main.py", "print('v1')\n");
    let id2 = build_id(&b, ctx.path(), &["-t", &tag("cache-same2")]);
    assert_eq!(id2, id, "rewriting a file with the same content keeps the cache");
}

#[test]
fn changed_file_reruns_from_first_step_that_reads_it() {
    let b = builder();
    let ctx = app_ctx();
    let t = tag("cache-change");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let before = saved(&b, &t);

    ctx.file("src/main.py", "print('v2')\n");
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    let ran = executed_steps(&r.stderr);
    assert!(was_cached(&r.stderr, "COPY deps.txt /app/"), "{}", r.stderr);
    assert!(was_cached(&r.stderr, "> /app/deps-installed"), "{}", r.stderr);
    assert!(ran.iter().any(|s| s.contains("COPY src/ /app/src/")), "{ran:?}");
    assert!(ran.iter().any(|s| s.contains("> /app/built")), "{ran:?}");
    assert!(ran.iter().any(|s| s.contains("COPY README.md")), "steps after a miss rerun: {ran:?}");
    let after = saved(&b, &t);
    assert_eq!(before.fs.text("/app/deps-installed"), after.fs.text("/app/deps-installed"), "cached RUN kept");
    assert_ne!(before.fs.text("/app/built"), after.fs.text("/app/built"), "RUN after the change reran");
    assert_eq!(after.fs.text("/app/src/main.py"), "print('v2')\n");
    // Layers before the change are reused byte for byte.
    assert_eq!(before.layers[..3], after.layers[..3]);

    // Changing the first file reruns everything after FROM/WORKDIR.
    ctx.file("deps.txt", "dep==2\n");
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    assert!(!was_cached(&r.stderr, "COPY deps.txt /app/"), "{}", r.stderr);
    assert!(!was_cached(&r.stderr, "> /app/deps-installed"), "{}", r.stderr);
    // A new file in a copied directory, a mode change, and a new ignored file.
    ctx.file("src/new.py", "new\n");
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    assert!(was_cached(&r.stderr, "> /app/deps-installed") && !was_cached(&r.stderr, "COPY src/"), "{}", r.stderr);
    ctx.mode("src/new.py", 0o755);
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    assert!(!was_cached(&r.stderr, "COPY src/"), "a mode change invalidates COPY: {}", r.stderr);
    // A file the build never reads does not invalidate anything.
    ctx.file("unrelated.txt", "x\n");
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    assert!(executed_steps(&r.stderr).is_empty(), "{:?}", executed_steps(&r.stderr));
}

#[test]
fn build_arg_changes_invalidate_only_steps_that_use_them() {
    let b = builder();
    let ctx = Ctx::new(
        "FROM busybox\nARG UNUSED\nRUN cat /proc/sys/kernel/random/uuid > /a\nARG USED\nRUN echo $USED > /b\n",
    );
    let t = tag("cache-args");
    build_ok(&b, ctx.path(), &["-t", &t, "--build-arg", "USED=1"]);
    let r = build_ok(&b, ctx.path(), &["-t", &t, "--build-arg", "USED=2"]);
    assert!(was_cached(&r.stderr, "> /a"), "{}", r.stderr);
    assert!(!was_cached(&r.stderr, "> /b"), "{}", r.stderr);
    assert_eq!(saved(&b, &t).fs.text("/b"), "2\n");
    let r = build_ok(&b, ctx.path(), &["-t", &t, "--build-arg", "USED=2", "--build-arg", "UNUSED=x"]);
    // BuildKit: a declared ARG is in the environment of later RUNs, so UNUSED reruns both.
    assert!(!was_cached(&r.stderr, "> /a"), "{}", r.stderr);
}

#[test]
fn source_date_epoch_gives_identical_digests_from_clean_stores() {
    let ctx = Ctx::new(
        r#"FROM busybox AS dep
RUN echo dep > /dep && mkdir -p /d/e && touch /d/e/f

FROM busybox
WORKDIR /app
COPY --from=dep /dep /app/dep
COPY files/ /app/files/
RUN echo built > /app/built && mkdir /app/made
ADD arch.tar.gz /app/x/
COPY <<EOF /app/heredoc.txt
inline
EOF
LABEL v=1
"#,
    );
    ctx.file("files/a.txt", "a\n").file("files/b/c.txt", "c\n");
    ctx.sh("mkdir t && echo in > t/in && tar -C t -czf arch.tar.gz . && rm -rf t");
    let epoch = "1700000000";
    let build_once = |via_env: bool| {
        // Fresh context mtimes each time: they must not matter.
        ctx.file("files/a.txt", "a\n");
        let b = builder();
        let t = tag("sde");
        let mut c = b.cmd(["build", "--progress=plain", "-t", &t]);
        if via_env {
            c.env("SOURCE_DATE_EPOCH", epoch);
        } else {
            c.args(["--build-arg", &format!("SOURCE_DATE_EPOCH={epoch}")]);
        }
        c.arg(ctx.path());
        run_cmd(c).ok();
        let id = image_id(&b, &t);
        let s = saved(&b, &t);
        (b, id, s)
    };
    let (_b1, id1, s1) = build_once(false);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (_b2, id2, s2) = build_once(true);
    assert_eq!(s1.config["created"], "2023-11-14T22:13:20Z");
    for h in s1.config["history"].as_array().expect("history") {
        if h["comment"] == "buildkit.dockerfile.v0" {
            assert_eq!(h["created"], "2023-11-14T22:13:20Z", "{h}");
        }
    }
    // Every entry written by the build has an mtime no newer than the epoch.
    for layer in &s1.layers[1..] {
        for e in tar::Archive::new(&layer[..]).entries().expect("entries") {
            let e = e.expect("entry");
            let m = e.header().mtime().unwrap_or(0);
            assert!(m <= 1_700_000_000, "{} has mtime {m}", String::from_utf8_lossy(&e.path_bytes()));
        }
    }
    let differing: Vec<usize> =
        (0..s1.layers.len().min(s2.layers.len())).filter(|i| s1.layers[*i] != s2.layers[*i]).collect();
    assert!(differing.is_empty() && s1.layers.len() == s2.layers.len(), "layers differ: {differing:?}");
    assert_eq!(id1, id2, "two clean builds with SOURCE_DATE_EPOCH give the same image ID");
}

#[test]
fn independent_stages_run_in_parallel() {
    let b = builder();
    // Each stage records the system uptime (one clock for every container) before and after
    // its 2 s sleep, so overlap is checked independently of the machine's load.
    let ctx = Ctx::new(
        r#"FROM busybox AS a
RUN cut -d' ' -f1 /proc/uptime > /a && sleep 2 && cut -d' ' -f1 /proc/uptime >> /a

FROM busybox AS b
RUN cut -d' ' -f1 /proc/uptime > /b && sleep 2 && cut -d' ' -f1 /proc/uptime >> /b

FROM busybox
COPY --from=a /a /a
COPY --from=b /b /b
"#,
    );
    // Warm the base image first so only the stages are timed.
    build_ok(&b, Ctx::new("FROM busybox\n").path(), &[]);
    let t = tag("parallel");
    let start = Instant::now();
    build_ok(&b, ctx.path(), &["-t", &t]);
    let took = start.elapsed();
    let s = saved(&b, &t);
    let times = |p: &str| -> (f64, f64) {
        let v: Vec<f64> = s.fs.text(p).lines().filter_map(|l| l.trim().parse().ok()).collect();
        assert_eq!(v.len(), 2, "{p}: {v:?}");
        (v[0], v[1])
    };
    let (a0, a1) = times("/a");
    let (b0, b1) = times("/b");
    assert!(a0.max(b0) < a1.min(b1), "the stages did not overlap: a {a0}..{a1}, b {b0}..{b1}");
    let span = a1.max(b1) - a0.min(b0);
    assert!(span < 4.0, "two independent 2 s stages spanned {span:.2} s (not parallel)");
    // The whole build's wall time is not asserted: on the shared 2-core machine it includes
    // process start-up and export under other developers' load (the overlap above is what
    // proves parallelism); it is printed for the record.
    eprintln!("parallel build: {took:?} wall, stages spanned {span:.2} s");
}

#[test]
fn cache_survives_and_builder_prune_clears_it() {
    let b = builder();
    let ctx = app_ctx();
    let t = tag("prune");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let df = b.ok("system df").stdout;
    assert!(df.contains("Build Cache"), "{df}");
    b.ok("builder prune -af");
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    assert!(!r.stderr.contains("CACHED"), "after builder prune -af nothing is cached:\n{}", r.stderr);
    b.check_store();
}

#[test]
fn cache_to_and_from_a_local_directory() {
    let ctx = Ctx::new("FROM busybox\nCOPY a.txt /a.txt\nRUN cat /proc/sys/kernel/random/uuid > /uuid\n");
    ctx.file("a.txt", "a\n");
    let dir = tempdir("cache-dir");
    let dest = dir.path().join("cache");
    let a = builder();
    let ta = tag("cache-export");
    build_ok(&a, ctx.path(), &["-t", &ta, "--cache-to", &format!("type=local,dest={},mode=max", dest.display())]);
    assert!(dest.join("index.json").is_file() || dest.read_dir().map(|mut d| d.next().is_some()).unwrap_or(false));
    let first = saved(&a, &ta);

    // A fresh store importing the cache runs nothing and gets the same layers.
    let b = builder();
    let tb = tag("cache-import");
    let r = build_ok(&b, ctx.path(), &["-t", &tb, "--cache-from", &format!("type=local,src={}", dest.display())]);
    assert!(executed_steps(&r.stderr).is_empty(), "with --cache-from every step is cached:\n{}", r.stderr);
    let second = saved(&b, &tb);
    assert_eq!(first.fs.text("/uuid"), second.fs.text("/uuid"), "the RUN's result came from the cache");
    assert_eq!(image_id(&a, &ta), image_id(&b, &tb), "same image ID from the imported cache");
    b.check_store();
}

#[test]
fn builder_prune_filters_and_system_df() {
    let b = builder();
    let ctx = app_ctx();
    let t = tag("prune-filters");
    build_ok(&b, ctx.path(), &["-t", &t]);
    // Recent records survive `until=1h` and a generous --keep-storage.
    b.ok_args(["builder", "prune", "-af", "--filter", "until=1h"]);
    b.ok_args(["builder", "prune", "-af", "--keep-storage", "10GB"]);
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    assert!(executed_steps(&r.stderr).is_empty(), "{}", r.stderr);
    let df = b.ok("system df").stdout;
    let line = df.lines().find(|l| l.starts_with("Build Cache")).unwrap_or_else(|| panic!("{df}"));
    assert!(!line.contains(" 0B "), "the build cache is accounted: {line}");
    // --keep-storage 0 removes everything.
    b.ok_args(["builder", "prune", "-af", "--keep-storage", "0"]);
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    assert!(!r.stderr.contains("CACHED"), "{}", r.stderr);
    b.check_store();
}

/// Build layers are stored uncompressed (the tar's digest is the diffID); compression happens
/// when an image leaves the machine.
#[test]
fn build_layers_are_stored_uncompressed() {
    let b = builder();
    let ctx = Ctx::new("FROM busybox\nCOPY a.txt /a.txt\nRUN echo x > /x\n");
    ctx.file("a.txt", "a\n");
    let t = tag("uncompressed");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let v = b.inspect(&t);
    let digest = v["Descriptor"]["digest"].as_str().expect("manifest digest").to_string();
    let manifest = read_json(&b.root.join("blobs/sha256").join(digest.trim_start_matches("sha256:")));
    let layers = manifest["layers"].as_array().expect("layers");
    let diff_ids = v["RootFS"]["Layers"].as_array().expect("diff ids");
    assert_eq!(layers.len(), 3);
    for (l, d) in layers.iter().zip(diff_ids).skip(1) {
        assert_eq!(l["mediaType"], "application/vnd.oci.image.layer.v1.tar", "{l}");
        assert_eq!(&l["digest"], d, "an uncompressed layer's digest is its diffID");
    }
}

/// After a build, the cache is collected down to BERTH_BUILDER_KEEP_STORAGE (least recently
/// used first, as BuildKit's default policy): the image built stays whole, the older build's
/// cache is gone, and the store checks clean. Without the variable nothing is collected here
/// (the budget is 10% of the filesystem).
#[test]
fn build_cache_is_collected_down_to_the_budget_after_a_build() {
    let mut b = builder();
    let ctx = Ctx::new("FROM busybox\nCOPY a.txt /a.txt\nRUN head -c 300000 /dev/urandom > /blob\n");
    ctx.file("a.txt", "one\n");
    let t1 = tag("autogc-one");
    build_ok(&b, ctx.path(), &["-t", &t1]);
    let r = build_ok(&b, ctx.path(), &["-t", &t1]);
    assert!(executed_steps(&r.stderr).is_empty(), "no budget set: the cache stays\n{}", r.stderr);
    // A 1 kB budget: after the next build every record is collected (each layer is larger),
    // so rebuilding the first context runs its steps again.
    b.env("BERTH_BUILDER_KEEP_STORAGE", "1kB");
    ctx.file("a.txt", "two\n");
    let t2 = tag("autogc-two");
    build_ok(&b, ctx.path(), &["-t", &t2]);
    ctx.file("a.txt", "one\n");
    let r = build_ok(&b, ctx.path(), &["-t", &t1]);
    assert!(!executed_steps(&r.stderr).is_empty(), "the first build's cache was collected\n{}", r.stderr);
    // Both images are still whole.
    for t in [&t1, &t2] {
        let v = b.inspect(t);
        assert_eq!(v["RootFS"]["Layers"].as_array().map(|a| a.len()), Some(3), "{t}");
    }
    b.check_store();
    // 0 disables the collection.
    b.env("BERTH_BUILDER_KEEP_STORAGE", "0");
    build_ok(&b, ctx.path(), &["-t", &t1]);
    let r = build_ok(&b, ctx.path(), &["-t", &t1]);
    assert!(executed_steps(&r.stderr).is_empty(), "{}", r.stderr);
}
