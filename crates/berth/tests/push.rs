//! `berth push` to the plain CI registry, read back with skopeo (every blob verified by a copy).

mod common;

use common::*;
use serde_json::json;

/// Copies `reference` (plain registry) to an OCI dir with skopeo: this fetches and verifies
/// every blob. Returns the raw manifest.
#[track_caller]
fn verify_with_skopeo(reference: &str, dir: &std::path::Path) -> serde_json::Value {
    let dst = dir.join(format!("verify-{}", reference.replace(['/', ':', '@'], "_")));
    skopeo(["copy", "--src-tls-verify=false", &format!("docker://{reference}"), &format!("dir:{}", dst.display())])
        .ok();
    skopeo_raw(reference)
}

/// A fresh image (not from any registry) with an uncompressed layer of `size` pseudo-random
/// bytes plus a text file, loaded into `b` as `name`.
fn local_image(b: &Berth, name: &str, size: usize, seed: u64) -> String {
    let data = berth_testkit::random_blob(seed, size);
    let text = format!("seed {seed}\n").repeat(10_000);
    let (archive, id) = make_docker_archive(
        b.dir.path(),
        &format!("img{seed}"),
        Some(name),
        &[("data/random.bin", &data), ("data/text.txt", text.as_bytes())],
        json!({"Labels": {"seed": seed.to_string()}}),
        "2025-03-01T00:00:00Z",
    );
    b.ok(&format!("load -q -i {}", archive.display()));
    id
}

#[test]
fn push_new_image_then_already_exists_then_mount() {
    let host = require(Reg::Plain);
    let b = Berth::new();
    let repo = format!("{host}/{}", unique_repo("push"));
    let name = format!("{repo}:v1");
    let id = local_image(&b, &name, 3 << 20, 1);

    let r = b.ok(&format!("push {name}"));
    r.stdout_has(&format!("The push refers to repository [{repo}]"));
    r.stdout_has("Pushed");
    let last = r.lines().last().cloned().unwrap_or_default();
    let (tag, rest) = last.split_once(": digest: ").unwrap_or_else(|| panic!("last line {last:?}"));
    assert_eq!(tag, "v1");
    let (digest, size) = rest.split_once(" size: ").expect("size");
    let info = skopeo_inspect(&name, &[]);
    assert_eq!(info["Digest"].as_str(), Some(digest), "pushed digest is what the registry serves");
    let dir = tempdir("push-verify");
    let raw = verify_with_skopeo(&name, dir.path());
    assert_eq!(raw["config"]["digest"].as_str(), Some(id.as_str()), "config digest = image ID");
    let manifest_len =
        skopeo(["inspect", "--tls-verify=false", "--raw", &format!("docker://{name}")]).ok().stdout.len();
    assert_eq!(size.parse::<usize>().ok(), Some(manifest_len), "size is the manifest's");
    // The uncompressed layer was compressed on the fly (gzip by default).
    let layer_type = raw["layers"][0]["mediaType"].as_str().unwrap_or_default().to_string();
    assert!(layer_type.ends_with("gzip") || layer_type.ends_with("tar.gzip"), "{layer_type}");
    assert_eq!(
        skopeo_inspect(&name, &["--config"])["rootfs"]["diff_ids"],
        b.inspect(&name)["RootFS"]["Layers"],
        "diff IDs"
    );
    // RepoDigests records where it went.
    assert!(strings(&b.inspect(&name)["RepoDigests"]).contains(&format!("{repo}@{digest}")));

    // Again: everything is there; the same compressed bytes are reused, so the same digest.
    let r = b.ok(&format!("push {name}"));
    r.stdout_has("Layer already exists");
    assert!(!r.stdout.contains("Pushed"), "second push uploaded again:\n{}", r.stdout);
    assert_eq!(r.lines().last(), Some(&last));

    // Another repository on the same registry: blobs are mounted from the first one.
    let other = format!("{host}/{}:v1", unique_repo("push-mount"));
    b.ok(&format!("tag {name} {other}"));
    let r = b.ok(&format!("push {other}"));
    let from = repo.split_once('/').map(|(_, p)| p).unwrap_or_default();
    r.stdout_has(&format!("Mounted from {from}"));
    assert!(r.lines().last().is_some_and(|l| l.ends_with(&format!("digest: {digest} size: {size}"))), "{}", r.stdout);
    verify_with_skopeo(&other, dir.path());

    // A fresh store pulls it back to the same image.
    let c = Berth::new();
    c.pull(&other);
    assert_eq!(c.image_ids(), vec![id]);
    c.check_store();
}

#[test]
fn push_pulled_image_mounts_and_keeps_the_manifest() {
    let nginx = fixture("library/nginx:latest");
    let host = registries().plain.clone();
    let b = Berth::new();
    b.pull(&nginx);
    let target = format!("{host}/{}:copy", unique_repo("push-pulled"));
    b.ok(&format!("tag {nginx} {target}"));
    let r = b.ok(&format!("push {target}"));
    r.stdout_has("Mounted from library/nginx");
    let src = skopeo_inspect(&nginx, &[]);
    let dst = skopeo_inspect(&target, &[]);
    assert_eq!(dst["Digest"], src["Digest"], "no recompression: the manifest digest is preserved");
}

#[test]
fn push_zstd_quiet_and_all_tags() {
    let host = require(Reg::Plain);
    let b = Berth::new();
    let repo = format!("{host}/{}", unique_repo("push-zstd"));
    let id = local_image(&b, &format!("{repo}:z"), 1 << 20, 2);
    let r = b.ok(&format!("push -q --compression-format zstd {repo}:z"));
    assert_eq!(r.lines().len(), 1, "-q prints one line: {}", r.stdout);
    assert!(!r.stdout.contains("Pushed"), "-q shows no progress: {}", r.stdout);
    let dir = tempdir("push-zstd");
    let raw = verify_with_skopeo(&format!("{repo}:z"), dir.path());
    let t = raw["layers"][0]["mediaType"].as_str().unwrap_or_default();
    assert!(t.contains("zstd"), "layer type {t}");
    let c = Berth::new();
    c.pull(&format!("{repo}:z"));
    assert_eq!(c.image_ids(), vec![id.clone()]);

    // --all-tags pushes every tag of the repository.
    b.ok(&format!("tag {repo}:z {repo}:a1"));
    b.ok(&format!("tag {repo}:z {repo}:a2"));
    b.ok(&format!("push -a {repo}"));
    let tags = skopeo_inspect(&format!("{repo}:a1"), &[])["RepoTags"].clone();
    let mut tags = strings(&tags);
    tags.sort();
    assert_eq!(tags, vec!["a1", "a2", "z"]);
}

#[test]
fn slow_push_big_to_a_new_repository_from_a_loaded_archive() {
    // The big fixture, loaded from an archive and renamed so that no registry mount applies: a
    // full upload of 9 layers, read back and verified by skopeo.
    let big = fixture("library/big:latest");
    let a = Berth::new();
    a.pull(&big);
    let archive = a.dir.path().join("big.tar");
    a.ok(&format!("save -o {} {big}", archive.display()));
    let b = Berth::new();
    b.ok(&format!("load -q -i {}", archive.display()));
    let target = format!("{}/{}:full", registries().plain, unique_repo("push-big"));
    b.ok(&format!("tag {big} {target}"));
    b.ok(&format!("rmi {big}"));
    let r = b.ok(&format!("push {target}"));
    assert_eq!(r.stdout.matches(": Pushed").count(), 9, "{}", r.stdout);
    assert!(!r.stdout.contains("Mounted from"), "{}", r.stdout);
    let dir = tempdir("push-big");
    let raw = verify_with_skopeo(&target, dir.path());
    assert_eq!(raw["layers"].as_array().map(Vec::len), Some(9));
    assert_eq!(raw["config"]["digest"], b.inspect(&target)["Id"]);
}

#[test]
fn push_errors() {
    let host = require(Reg::Plain);
    let b = Berth::new();
    let r = b.run(&format!("push {host}/berth-it/not-here:v1")).code(1);
    r.stderr_has("An image does not exist locally with the tag");
    // A registry that is not listening: the error names the host.
    let busybox = fixture("library/busybox:latest");
    b.pull(&busybox);
    b.ok(&format!("tag {busybox} 127.0.0.1:1/x/y:z"));
    let r = b.run("push 127.0.0.1:1/x/y:z").code(1);
    r.stderr_has("127.0.0.1:1");
}
