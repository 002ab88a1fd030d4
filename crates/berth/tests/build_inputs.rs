//! Build inputs that cannot be tricked (issue 9, point 3 and 7; issue 14's "no host programs"):
//! `.dockerignore` applies to what a symlinked source resolves to, cache keys follow symlink
//! targets, `ADD <URL>` names files safely and downloads through berth's own HTTP client, and
//! xz/bzip2 archives are read without host programs (builds and loads with an empty `PATH`).

mod build_common;
mod common;

use std::process::Command;

use build_common::*;
use common::*;

/// A command of `b` run with an empty `PATH`: no host program (curl, xz, bzip2, gzip, tar) can
/// be found.
fn no_path(b: &Berth, args: &[&str]) -> Command {
    let mut c = b.cmd(args);
    c.env("PATH", "");
    c
}

fn build_no_path(b: &Berth, ctx: &std::path::Path, args: &[&str]) -> Run {
    let mut c = no_path(b, &["build", "--progress=plain"]);
    c.args(args).arg(ctx);
    run_cmd(c)
}

/// A small tree packed as `name` (tar piped through `compressor`, made with the host tools
/// here; berth itself never runs them).
fn packed_tree(dir: &std::path::Path, name: &str, compressor: &str) {
    let src = dir.join("tree-src");
    std::fs::create_dir_all(src.join("sub")).expect("mkdir");
    std::fs::write(src.join("top.txt"), "top\n").expect("write");
    std::fs::write(src.join("sub/inner.txt"), "inner\n").expect("write");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("tar -C '{}' -cf - top.txt sub | {compressor} > '{}'", src.display(), dir.join(name).display()))
        .status()
        .expect("tar");
    assert!(out.success());
    std::fs::remove_dir_all(&src).expect("rm");
}

#[test]
fn dockerignore_applies_to_what_a_symlink_resolves_to() {
    let b = builder();
    let ctx = Ctx::new("FROM busybox\nCOPY link /x\n");
    ctx.file(".dockerignore", "secret.txt\nprivate\n")
        .file("secret.txt", "TOP-SECRET\n")
        .file("private/key", "KEY\n")
        .file("public.txt", "public\n")
        .symlink("link", "secret.txt");
    let r = build(&b, ctx.path(), &[]).code(1);
    r.stderr_has("not found");
    assert!(!r.stderr.contains("TOP-SECRET"));
    // Through an absolute link into an ignored directory, and through a chain of links.
    for (df, link, target) in [
        ("FROM busybox\nCOPY keylink /k\n", "keylink", "/private/key"),
        ("FROM busybox\nCOPY chain /c\n", "chain", "link"),
        ("FROM busybox\nCOPY dirlink/ /d/\n", "dirlink", "private"),
    ] {
        let c2 = Ctx::new(df);
        c2.file(".dockerignore", "secret.txt\nprivate\n")
            .file("secret.txt", "TOP-SECRET\n")
            .file("private/key", "KEY\n")
            .symlink("link", "secret.txt")
            .symlink(link, target);
        build(&b, c2.path(), &[]).code(1).stderr_has("not found");
    }
    // A link to a file the context does contain is followed, as before.
    let ok = Ctx::new("FROM busybox\nCOPY link /x\n");
    ok.file(".dockerignore", "secret.txt\n").file("public.txt", "public\n").symlink("link", "public.txt");
    let t = tag("symlink-ok");
    build_ok(&b, ok.path(), &["-t", &t]);
    assert_eq!(saved(&b, &t).fs.text("/x"), "public\n");
}

#[test]
fn a_symlinked_source_whose_target_changed_misses_the_cache() {
    let b = builder();
    let ctx = Ctx::new("FROM busybox\nCOPY link /x\nCOPY dirlink/ /d/\n");
    ctx.file("a.txt", "one\n")
        .file("b.txt", "bee\n")
        .file("dir/f", "f1\n")
        .symlink("link", "a.txt")
        .symlink("dirlink", "dir");
    let t = tag("symlink-cache");
    build_ok(&b, ctx.path(), &["-t", &t]);
    assert_eq!(saved(&b, &t).fs.text("/x"), "one\n");
    // The target's content changes; the link does not.
    std::fs::write(ctx.path().join("a.txt"), "two\n").expect("write");
    std::fs::write(ctx.path().join("dir/f"), "f2\n").expect("write");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let s = saved(&b, &t);
    assert_eq!(s.fs.text("/x"), "two\n", "a stale layer was reused");
    assert_eq!(s.fs.text("/d/f"), "f2\n", "a stale layer was reused");
    // The link is pointed elsewhere.
    std::fs::remove_file(ctx.path().join("link")).expect("rm");
    std::os::unix::fs::symlink("b.txt", ctx.path().join("link")).expect("ln");
    build_ok(&b, ctx.path(), &["-t", &t]);
    assert_eq!(saved(&b, &t).fs.text("/x"), "bee\n");
    // Unchanged: fully cached.
    let r = build_ok(&b, ctx.path(), &["-t", &t]);
    assert!(was_cached(&r.stderr, "COPY link /x"), "{}", r.stderr);
}

#[test]
fn add_url_names_files_safely_and_uses_no_host_program() {
    let b = builder();
    let srv_dir = tempdir("http");
    std::fs::write(srv_dir.path().join("file.txt"), b"payload\n").expect("write");
    std::fs::write(srv_dir.path().join("big.bin"), vec![7u8; 4096]).expect("write");
    // A fixed Last-Modified (python's http.server sends the file's mtime).
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .write(true)
        .open(srv_dir.path().join("file.txt"))
        .expect("open")
        .set_modified(when)
        .expect("mtime");
    packed_tree(srv_dir.path(), "remote.tar.xz", "xz");
    let srv = HttpServer::start(srv_dir.path());

    // Something an escape would destroy: a file in the store's tmp (the build root's parent).
    std::fs::create_dir_all(b.root.join("tmp")).expect("mkdir");
    let marker = b.root.join("tmp/keep-me");
    std::fs::write(&marker, "x").expect("write");
    for odd in ["x/..", "x/../", "x/.", "%2e%2e"] {
        let ctx = Ctx::new(&format!("FROM busybox\nADD {} /\n", srv.url(odd)));
        let r = build_no_path(&b, ctx.path(), &[]).code(1);
        r.stderr_has("cannot name a file");
        assert!(marker.exists(), "ADD {odd} removed files outside its operation");
    }

    let sum = sha256_bytes(b"payload\n");
    let ctx = Ctx::new(&format!(
        "FROM busybox\nADD --checksum={sum} {file} /dl/\nADD {root} /idx/\nADD {xz} /remote/\n",
        file = srv.url("file.txt"),
        root = srv.url("/"),
        xz = srv.url("remote.tar.xz"),
    ));
    let t = tag("add-url-safe");
    let r = build_no_path(&b, ctx.path(), &["-t", &t]);
    let r = r.ok();
    let _ = r;
    let s = saved(&b, &t);
    assert_eq!(s.fs.text("/dl/file.txt"), "payload\n");
    assert_eq!(s.fs.get("/dl/file.txt").mtime, 1_600_000_000, "Last-Modified becomes the mtime, as in BuildKit");
    assert!(s.fs.has("/idx/__unnamed__"), "an empty last segment is BuildKit's __unnamed__");
    assert!(s.fs.has("/remote/remote.tar.xz"), "remote archives are not extracted");

    // A wrong checksum, a missing file and a download over the size limit fail cleanly.
    let bad =
        Ctx::new(&format!("FROM busybox\nADD --checksum=sha256:{} {} /dl/\n", "0".repeat(64), srv.url("file.txt")));
    build_no_path(&b, bad.path(), &[]).code(1).stderr_has("digest mismatch");
    let missing = Ctx::new(&format!("FROM busybox\nADD {} /dl/\n", srv.url("nope.txt")));
    build_no_path(&b, missing.path(), &[]).code(1).stderr_has("404");
    let big = Ctx::new(&format!("FROM busybox\nADD {} /dl/\n", srv.url("big.bin")));
    let mut c = no_path(&b, &["build", "--progress=plain"]);
    c.env("BERTH_ADD_MAX_BYTES", "1000").arg(big.path());
    run_cmd(c).code(1).stderr_has("1000-byte limit");
    assert!(marker.exists());
}

#[test]
fn add_extracts_xz_and_bzip2_without_host_programs() {
    let b = builder();
    let ctx =
        Ctx::new("FROM busybox\nADD t.tar.xz /xz/\nADD t.tar.bz2 /bz2/\nADD t.tar.gz /gz/\nADD t.tar.zst /zst/\n");
    packed_tree(ctx.path(), "t.tar.xz", "xz");
    packed_tree(ctx.path(), "t.tar.bz2", "bzip2");
    packed_tree(ctx.path(), "t.tar.gz", "gzip");
    packed_tree(ctx.path(), "t.tar.zst", "zstd");
    let t = tag("add-xz-bz2");
    build_no_path(&b, ctx.path(), &["-t", &t]).ok();
    let s = saved(&b, &t);
    for d in ["/xz", "/bz2", "/gz", "/zst"] {
        assert_eq!(s.fs.text(&format!("{d}/top.txt")), "top\n", "{d} extracted");
        assert_eq!(s.fs.text(&format!("{d}/sub/inner.txt")), "inner\n", "{d} extracted");
    }
    // A truncated xz archive (valid start, broken end) fails the step instead of being copied
    // or half-extracted silently.
    let bad = Ctx::new("FROM busybox\nADD big.tar.xz /x/\n");
    let src = bad.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("a"), berth_testkit::random_blob(3, 2 << 20)).expect("write");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("tar -C '{}' -cf - a | xz -0 > '{}'", src.display(), bad.path().join("full.xz").display()))
        .status()
        .expect("tar");
    assert!(st.success());
    std::fs::remove_dir_all(&src).expect("rm");
    let full = std::fs::read(bad.path().join("full.xz")).expect("read");
    std::fs::write(bad.path().join("big.tar.xz"), &full[..full.len() * 2 / 3]).expect("write");
    std::fs::remove_file(bad.path().join("full.xz")).expect("rm");
    build_no_path(&b, bad.path(), &[]).code(1);
}

#[test]
fn load_reads_xz_and_bzip2_archives_without_host_programs() {
    let b = builder();
    let ctx = Ctx::new("FROM busybox\nCOPY f /f\n");
    ctx.file("f", "loaded\n");
    let t = tag("load-xz");
    build_ok(&b, ctx.path(), &["-t", &t]);
    let dir = tempdir("load");
    let tar = dir.path().join("img.tar");
    b.ok_args(["save", "-o", tar.to_str().unwrap_or_default(), &t]);
    for (ext, prog) in [("xz", "xz"), ("bz2", "bzip2")] {
        let out = dir.path().join(format!("img.tar.{ext}"));
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!("{prog} -c '{}' > '{}'", tar.display(), out.display()))
            .status()
            .expect("compress");
        assert!(st.success());
        let fresh = Berth::new();
        run_cmd(no_path(&fresh, &["load", "-i", out.to_str().unwrap_or_default()])).ok().stdout_has(&t);
        assert!(!fresh.image_ids().is_empty());
        // A corrupt archive is an error, not a silent copy.
        let mut data = std::fs::read(&out).expect("read");
        let mid = data.len() / 2;
        data[mid] ^= 0x55;
        let broken = dir.path().join(format!("broken.tar.{ext}"));
        std::fs::write(&broken, data).expect("write");
        run_cmd(no_path(&Berth::new(), &["load", "-i", broken.to_str().unwrap_or_default()])).code(1);
    }
}

#[test]
fn import_url_of_an_xz_tarball_uses_no_host_program() {
    let srv_dir = tempdir("http-import");
    packed_tree(srv_dir.path(), "rootfs.tar.xz", "xz");
    let srv = HttpServer::start(srv_dir.path());
    let b = Berth::new();
    let name = tag("import-url");
    run_cmd(no_path(&b, &["import", &srv.url("rootfs.tar.xz"), &name])).ok();
    assert_eq!(b.image_ids().len(), 1);
    run_cmd(no_path(&b, &["import", &srv.url("missing.tar"), &name])).code(1).stderr_has("404");
}
