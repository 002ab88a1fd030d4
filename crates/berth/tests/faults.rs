//! The binary against berth-testkit's in-process fake registry with injected faults: corrupt
//! and truncated blobs, 5xx and 429 answers, dropped connections, garbage and oversized
//! manifests, missing blobs. A failed pull must name what failed and store nothing; a transient
//! fault must be retried or resumed.

mod common;

use std::time::{Duration, Instant};

use berth_testkit::fake::{FakeRegistry, Fault};
use common::*;
use serde_json::json;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A one-layer image (gzip layer of ~2 MB) built with tar and gzip.
struct Img {
    config: Vec<u8>,
    config_digest: String,
    layer: Vec<u8>,
    layer_digest: String,
    manifest: Vec<u8>,
}

fn make_image(seed: u64) -> Img {
    let dir = tempdir("fault-img");
    let root = dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("data")).expect("mkdir");
    std::fs::write(root.join("data/random.bin"), berth_testkit::random_blob(seed, 2 << 20)).expect("write");
    std::fs::write(root.join("data/hello.txt"), format!("hello {seed}\n")).expect("write");
    let tar = dir.path().join("layer.tar");
    let mut c = std::process::Command::new("tar");
    c.args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@1704067200", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".");
    run_cmd(c).ok();
    let diff_id = sha256_file(&tar);
    let mut c = std::process::Command::new("gzip");
    c.args(["-n", "-1"]).arg(&tar);
    run_cmd(c).ok();
    let layer = std::fs::read(dir.path().join("layer.tar.gz")).expect("read layer");
    let layer_digest = berth_testkit::digest_of(&layer).to_string();
    let config = serde_json::to_vec(&json!({
        "architecture": host_arch(), "os": "linux", "created": "2025-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2025-01-01T00:00:00Z", "created_by": "fault fixture"}]
    }))
    .expect("config");
    let config_digest = berth_testkit::digest_of(&config).to_string();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}]
    }))
    .expect("manifest");
    Img { config, config_digest, layer, layer_digest, manifest }
}

/// A fake registry on its own runtime (the test thread stays free to run the binary).
struct Fake {
    _rt: tokio::runtime::Runtime,
    reg: FakeRegistry,
    img: Img,
}

impl Fake {
    fn start() -> Fake {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let reg = rt.block_on(FakeRegistry::start()).expect("start fake registry");
        Fake { _rt: rt, reg, img: make_image(7) }
    }

    /// Publishes the image as `repo:tag` (blobs correct) and returns the reference.
    fn publish(&self, repo: &str, tag: &str) -> String {
        self.reg.put_blob(repo, self.img.config.clone());
        self.reg.put_blob(repo, self.img.layer.clone());
        self.reg.put_manifest(repo, tag, OCI_MANIFEST, self.img.manifest.clone());
        format!("{}/{repo}:{tag}", self.reg.host())
    }

    fn layer_path(&self) -> String {
        format!("/blobs/{}", self.img.layer_digest)
    }

    fn blob_gets(&self) -> Vec<berth_testkit::fake::Logged> {
        self.reg
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.path.contains(&self.img.layer_digest))
            .collect()
    }
}

/// The pull failed cleanly: exit 1, nothing named, no layer blob, store checks clean.
#[track_caller]
fn assert_nothing_stored(b: &Berth, f: &Fake) {
    assert!(b.image_ids().is_empty(), "a failed pull left an image");
    let blob = b.root.join("blobs/sha256").join(f.img.layer_digest.trim_start_matches("sha256:"));
    assert!(!blob.exists(), "the bad layer was stored: {}", blob.display());
    let r = b.check_store();
    assert!(!r.stdout.contains("problem"), "{}", r.stdout);
    assert!(b.temp_files().is_empty(), "temp files left: {:#?}", b.temp_files());
}

#[track_caller]
fn assert_pulled(b: &Berth, f: &Fake, reference: &str) {
    assert_eq!(b.image_ids(), vec![f.img.config_digest.clone()], "pulled {reference}");
    b.check_store();
}

#[test]
fn wrong_digest_blob_is_refused() {
    let f = Fake::start();
    let repo = "faults/wrong-digest";
    f.reg.put_blob(repo, f.img.config.clone());
    // A valid gzip layer of another image under this layer's digest: it unpacks fine, so only
    // the digest check can catch it. (A flipped byte breaks gzip first: see the next test.)
    f.reg.put_blob_with_digest(repo, &f.img.layer_digest, make_image(99).layer);
    f.reg.put_manifest(repo, "v1", OCI_MANIFEST, f.img.manifest.clone());
    let reference = format!("{}/{repo}:v1", f.reg.host());
    let b = Berth::new();
    let r = b.run(&format!("pull {reference}")).code(1);
    r.stderr_has(&f.img.layer_digest);
    assert_nothing_stored(&b, &f);
}

#[test]
fn corrupted_body_every_time_fails() {
    let f = Fake::start();
    let reference = f.publish("faults/corrupt", "v1");
    f.reg.fault(Some("GET"), &f.layer_path(), Fault::Corrupt, 1000);
    let b = Berth::new();
    let r = b.run(&format!("pull {reference}")).code(1);
    r.stderr_has(&f.img.layer_digest);
    assert_nothing_stored(&b, &f);
}

#[test]
fn truncated_body_once_is_resumed() {
    let f = Fake::start();
    let reference = f.publish("faults/truncated-once", "v1");
    f.reg.fault(Some("GET"), &f.layer_path(), Fault::Truncate(500_000), 1);
    let b = Berth::new();
    b.ok(&format!("pull {reference}"));
    assert_pulled(&b, &f, &reference);
    let gets = f.blob_gets();
    assert!(gets.len() >= 2, "one retry at least: {gets:#?}");
    assert!(
        gets.iter().skip(1).any(|g| g.range.as_deref().is_some_and(|r| r.starts_with("bytes=") && r != "bytes=0-")),
        "resumed with Range: {gets:#?}"
    );
}

#[test]
fn truncated_body_every_time_fails() {
    let f = Fake::start();
    let reference = f.publish("faults/truncated", "v1");
    // No progress at all: every answer claims the full length and closes at once.
    f.reg.fault(Some("GET"), &f.layer_path(), Fault::Truncate(0), 1000);
    let b = Berth::new();
    let t = Instant::now();
    let r = b.run(&format!("pull {reference}")).code(1);
    assert!(t.elapsed() < Duration::from_secs(90), "gave up in {:?}", t.elapsed());
    r.stderr_has(&f.img.layer_digest);
    assert_nothing_stored(&b, &f);
}

#[test]
fn dropped_connection_is_resumed() {
    let f = Fake::start();
    let reference = f.publish("faults/drop", "v1");
    f.reg.fault(Some("GET"), &f.layer_path(), Fault::DropAfter(300_000), 2);
    let b = Berth::new();
    b.ok(&format!("pull {reference}"));
    assert_pulled(&b, &f, &reference);
}

#[test]
fn server_errors_then_success() {
    let f = Fake::start();
    let reference = f.publish("faults/5xx", "v1");
    f.reg.fault(Some("GET"), "/manifests/", Fault::status(500), 1);
    f.reg.fault(Some("GET"), &f.layer_path(), Fault::status(503), 2);
    f.reg.fault(Some("GET"), &format!("/blobs/{}", f.img.config_digest), Fault::status(502), 1);
    let b = Berth::new();
    let r = b.ok(&format!("pull {reference}"));
    assert_eq!(r.lines().last(), Some(&reference));
    assert_pulled(&b, &f, &reference);
    assert!(f.blob_gets().len() >= 3, "503 twice, then the body");
}

#[test]
fn server_errors_forever_fail_naming_the_status() {
    let f = Fake::start();
    let reference = f.publish("faults/5xx-forever", "v1");
    f.reg.fault(Some("GET"), &f.layer_path(), Fault::status(503), 1000);
    let b = Berth::new();
    let r = b.run(&format!("pull {reference}")).code(1);
    assert!(r.stderr.contains("503") || r.stderr.to_lowercase().contains("unavailable"), "{}", r.stderr);
    r.stderr_has(&f.img.layer_digest);
    assert_nothing_stored(&b, &f);
}

#[test]
fn too_many_requests_honours_retry_after() {
    let f = Fake::start();
    let reference = f.publish("faults/429", "v1");
    f.reg.fault(Some("GET"), "/manifests/", Fault::too_many(2), 1);
    let b = Berth::new();
    let t = Instant::now();
    b.ok(&format!("pull {reference}"));
    assert!(t.elapsed() >= Duration::from_secs(2), "waited for Retry-After: {:?}", t.elapsed());
    assert_pulled(&b, &f, &reference);

    // A reset far away: fail at once, saying so.
    let f2 = Fake::start();
    let reference = f2.publish("faults/429-long", "v1");
    f2.reg.fault(None, "/manifests/", Fault::too_many(3600), 1000);
    let b = Berth::new();
    let t = Instant::now();
    let r = b.run(&format!("pull {reference}")).code(1);
    assert!(t.elapsed() < Duration::from_secs(30), "did not wait an hour: {:?}", t.elapsed());
    let e = r.stderr.to_lowercase();
    assert!(e.contains("toomanyrequests") || e.contains("429") || e.contains("rate"), "{}", r.stderr);
    assert!(b.image_ids().is_empty());
}

#[test]
fn garbage_manifest_fails_naming_the_reference() {
    let f = Fake::start();
    let repo = "faults/garbage";
    f.reg.put_manifest(repo, "v1", OCI_MANIFEST, &b"<html>this is not a manifest</html>"[..]);
    let reference = format!("{}/{repo}:v1", f.reg.host());
    let b = Berth::new();
    let r = b.run(&format!("pull {reference}")).code(1);
    assert!(r.stderr.contains(repo), "error names the reference: {}", r.stderr);
    assert!(b.image_ids().is_empty());
    b.check_store();

    // Valid JSON of the wrong shape.
    f.reg.put_manifest(repo, "v2", OCI_MANIFEST, &br#"{"schemaVersion": 2, "layers": "nope"}"#[..]);
    let r = b.run(&format!("pull {}/{repo}:v2", f.reg.host())).code(1);
    assert!(r.stderr.contains(repo), "{}", r.stderr);
    assert!(b.image_ids().is_empty());
}

#[test]
fn oversized_manifest_is_refused() {
    let f = Fake::start();
    let repo = "faults/huge";
    let mut m: serde_json::Value = serde_json::from_slice(&f.img.manifest).expect("json");
    m["annotations"] = json!({"padding": "x".repeat(5 << 20)});
    f.reg.put_manifest(repo, "v1", OCI_MANIFEST, serde_json::to_vec(&m).expect("json"));
    let b = Berth::new();
    let r = b.run(&format!("pull {}/{repo}:v1", f.reg.host())).code(1);
    let e = r.stderr.to_lowercase();
    assert!(e.contains("too large") || e.contains("4 mib") || e.contains("4194304"), "{}", r.stderr);
    assert!(b.image_ids().is_empty());
}

#[test]
fn manifest_pointing_at_a_missing_blob() {
    let f = Fake::start();
    let repo = "faults/missing";
    f.reg.put_blob(repo, f.img.config.clone());
    f.reg.put_manifest(repo, "v1", OCI_MANIFEST, f.img.manifest.clone());
    let b = Berth::new();
    let r = b.run(&format!("pull {}/{repo}:v1", f.reg.host())).code(1);
    r.stderr_has(&f.img.layer_digest);
    assert_nothing_stored(&b, &f);
}

#[test]
fn unauthorized_without_credentials_hints_login() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let reg = rt.block_on(FakeRegistry::start()).expect("fake").with_token_auth("alice", "secret");
    let img = make_image(8);
    reg.put_blob("private/app", img.config.clone());
    reg.put_blob("private/app", img.layer.clone());
    reg.put_manifest("private/app", "v1", OCI_MANIFEST, img.manifest.clone());
    let host = reg.host();
    let b = Berth::new();
    let r = b.run(&format!("pull {host}/private/app:v1")).code(1);
    r.stderr_has(&format!("berth login {host}"));
    // With credentials (token flow through the fake's GET-only /token endpoint) it works.
    b.run_stdin(&format!("login -u alice --password-stdin {host}"), b"secret\n").ok();
    b.ok(&format!("pull {host}/private/app:v1"));
    assert_eq!(b.image_ids(), vec![img.config_digest]);
}

/// Credentials go only to the registry's origin: a push whose upload `Location` is on another
/// origin (a storage service) sends the upload there without `Authorization` (that origin
/// answers 400 to any), and the push succeeds.
#[test]
fn push_sends_no_credentials_to_an_upload_location_on_another_origin() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let reg = rt.block_on(FakeRegistry::start()).expect("fake").with_token_auth("alice", "secret");
    let other = rt.block_on(reg.serve_uploads_elsewhere()).expect("second origin");
    let host = reg.host();
    let b = Berth::new();
    let dir = tempdir("push-origin");
    let tar = dir.path().join("layer.tar");
    {
        let mut w = tar::Builder::new(std::fs::File::create(&tar).expect("create"));
        let data = berth_testkit::random_blob(99, 200_000);
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        w.append_data(&mut h, "blob.bin", data.as_slice()).expect("append");
        w.finish().expect("finish");
    }
    let image = format!("{host}/private/pushed:v1");
    b.ok_args(["import", tar.to_str().unwrap_or_default(), &image]);
    b.run_stdin(&format!("login -u alice --password-stdin {host}"), b"secret\n").ok();
    b.ok(&format!("push {image}"));
    let log = reg.requests();
    let foreign: Vec<_> = log.iter().filter(|q| q.foreign).collect();
    assert!(!foreign.is_empty(), "the uploads went to {other}: {log:?}");
    assert!(foreign.iter().all(|q| q.authorization.is_none()), "{foreign:?}");
    assert!(log.iter().any(|q| !q.foreign && q.authorization.as_deref().is_some_and(|a| a.starts_with("Bearer "))));
    // The pushed image pulls back.
    let fresh = Berth::new();
    fresh.run_stdin(&format!("login -u alice --password-stdin {host}"), b"secret\n").ok();
    fresh.ok(&format!("pull {image}"));
}
