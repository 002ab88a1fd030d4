//! `key generate`, `sign`, `verify` and `--signature-policy` against the plain CI registry.
//! berth's signatures are checked independently of berth (openssl over the payload bytes), and
//! berth verifies a signature made with openssl and pushed with curl, as cosign would store it.

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use common::*;
use serde_json::{Value, json};

/// A fresh image pushed to the plain registry as `REPO:v1`; returns (reference, manifest digest).
fn pushed_image(b: &Berth, name: &str, seed: u64) -> (String, String) {
    let host = require(Reg::Plain);
    let reference = format!("{host}/{}:v1", unique_repo(name));
    let text = format!("seed {seed}\n");
    let (archive, _) = make_docker_archive(
        b.dir.path(),
        &format!("img{seed}"),
        Some(&reference),
        &[("data/seed.txt", text.as_bytes())],
        json!({"Labels": {"seed": seed.to_string()}}),
        "2025-03-01T00:00:00Z",
    );
    b.ok(&format!("load -q -i {}", archive.display()));
    let r = b.ok(&format!("push {reference}"));
    let last = r.lines().last().cloned().unwrap_or_default();
    let digest = last.split(": digest: ").nth(1).and_then(|s| s.split(' ').next()).unwrap_or_default().to_string();
    assert!(digest.starts_with("sha256:"), "push output {last:?}");
    (reference, digest)
}

fn tool(program: &str, args: &[&str], dir: &Path) -> Vec<u8> {
    let out = Command::new(program).args(args).current_dir(dir).output().expect("run tool");
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn http_get(url: &str, accept: &str) -> Vec<u8> {
    tool("curl", &["-fsS", "-H", &format!("Accept: {accept}"), url], Path::new("/"))
}

fn split(reference: &str) -> (&str, &str) {
    let (host, rest) = reference.split_once('/').expect("host");
    (host, rest.rsplit_once(':').map(|(r, _)| r).unwrap_or(rest))
}

fn sig_manifest(reference: &str, digest: &str) -> Value {
    let (host, repo) = split(reference);
    let tag = digest.replace(':', "-") + ".sig";
    let raw =
        http_get(&format!("http://{host}/v2/{repo}/manifests/{tag}"), "application/vnd.oci.image.manifest.v1+json");
    serde_json::from_slice(&raw).expect("signature manifest JSON")
}

fn push_blob(reference: &str, dir: &Path, file: &str) -> (String, usize) {
    let (host, repo) = split(reference);
    let data = std::fs::read(dir.join(file)).expect("read blob");
    let digest = format!("sha256:{}", hex(&sha2_256(&data)));
    let loc = tool(
        "curl",
        &[
            "-fsS",
            "-X",
            "POST",
            "-o",
            "/dev/null",
            "-w",
            "%header{location}",
            &format!("http://{host}/v2/{repo}/blobs/uploads/"),
        ],
        dir,
    );
    let loc = String::from_utf8(loc).expect("location");
    let url = if loc.starts_with("http") { loc } else { format!("http://{host}{loc}") };
    let sep = if url.contains('?') { '&' } else { '?' };
    tool(
        "curl",
        &[
            "-fsS",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{file}"),
            &format!("{url}{sep}digest={digest}"),
        ],
        dir,
    );
    (digest, data.len())
}

fn sha2_256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn generate_sign_verify_refuse_and_check_with_openssl() {
    let mut b = Berth::new();
    b.env("COSIGN_PASSWORD", "s3cret");
    let keys = tempdir("keys");
    let k = keys.path();
    b.ok_args(["key", "generate", "--output-prefix", &k.join("cosign").display().to_string()])
        .stderr_has("Private key written to");
    let private = std::fs::read_to_string(k.join("cosign.key")).expect("private key");
    assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"), "{private}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(k.join("cosign.key")).unwrap().permissions().mode() & 0o777, 0o600);
    // A second generate does not overwrite the pair.
    b.run_args(["key", "generate", "--output-prefix", &k.join("cosign").display().to_string()])
        .fails()
        .stderr_has("already exists");

    let (image, digest) = pushed_image(&b, "sign", 11);
    let key = k.join("cosign.key").display().to_string();
    let public = k.join("cosign.pub").display().to_string();
    b.ok_args(["sign", "--key", &key, "--annotation", "env=prod", &image]).stderr_has("Pushing signature to:");

    // verify: cosign's report, the payload on stdout.
    let v = b.ok_args(["verify", "--key", &public, &image]);
    v.stderr_has(&format!("Verification for {image} --"));
    v.stderr_has("The signatures were verified against the specified public key");
    let payloads: Value = serde_json::from_str(&v.stdout).expect("JSON array");
    assert_eq!(payloads.as_array().map(Vec::len), Some(1), "{payloads}");
    assert_eq!(payloads[0]["critical"]["image"]["docker-manifest-digest"], digest.as_str());
    assert_eq!(payloads[0]["critical"]["type"], "cosign container image signature");
    assert_eq!(payloads[0]["critical"]["identity"]["docker-reference"], image.rsplit_once(':').unwrap().0);
    assert_eq!(payloads[0]["optional"]["env"], "prod");
    // By digest too.
    let (repo, _) = image.rsplit_once(':').unwrap();
    b.ok_args(["verify", "--key", &public, &format!("{repo}@{digest}")]);

    // Another key, and an unsigned image, are refused.
    b.ok_args(["key", "generate", "--output-prefix", &k.join("other").display().to_string()]);
    b.run_args(["verify", "--key", &k.join("other.pub").display().to_string(), &image])
        .code(1)
        .stderr_has("no matching signatures");
    let (unsigned, _) = pushed_image(&b, "unsigned", 12);
    b.run_args(["verify", "--key", &public, &unsigned]).code(1).stderr_has("no signatures found");
    // A wrong password is named as such.
    let mut wrong = Berth::new();
    wrong.env("COSIGN_PASSWORD", "nope");
    wrong.run_args(["sign", "--key", &key, &image]).code(1).stderr_has("wrong password");

    // The stored signature, checked without berth: cosign's layout, openssl over the payload.
    let m = sig_manifest(&image, &digest);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    let layer = &m["layers"][0];
    assert_eq!(layer["mediaType"], "application/vnd.dev.cosign.simplesigning.v1+json");
    let (host, repo_path) = split(&image);
    let payload = http_get(&format!("http://{host}/v2/{repo_path}/blobs/{}", layer["digest"].as_str().unwrap()), "*/*");
    let sig_b64 = layer["annotations"]["dev.cosignproject.cosign/signature"].as_str().expect("signature annotation");
    let sig = base64::engine::general_purpose::STANDARD.decode(sig_b64).expect("base64");
    std::fs::write(k.join("payload.json"), &payload).unwrap();
    std::fs::write(k.join("sig.bin"), &sig).unwrap();
    let out =
        tool("openssl", &["dgst", "-sha256", "-verify", "cosign.pub", "-signature", "sig.bin", "payload.json"], k);
    assert!(String::from_utf8_lossy(&out).contains("Verified OK"));
    let config =
        http_get(&format!("http://{host}/v2/{repo_path}/blobs/{}", m["config"]["digest"].as_str().unwrap()), "*/*");
    let config: Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][0], layer["digest"]);

    // Signing again with another key appends a layer; verify still finds ours.
    let mut other = Berth::new();
    other.env("COSIGN_PASSWORD", "s3cret");
    other.ok_args(["sign", "--key", &k.join("other.key").display().to_string(), &image]);
    assert_eq!(sig_manifest(&image, &digest)["layers"].as_array().map(Vec::len), Some(2));
    b.ok_args(["verify", "--key", &public, &image]);
}

#[test]
fn verifies_a_signature_made_with_openssl_and_signs_with_a_pkcs8_key() {
    let b = Berth::new();
    let (image, digest) = pushed_image(&b, "openssl", 21);
    let dir = tempdir("openssl");
    let d = dir.path();
    tool("openssl", &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "k.pem"], d);
    tool("openssl", &["pkey", "-in", "k.pem", "-pubout", "-out", "k.pub"], d);
    let (repo, _) = image.rsplit_once(':').unwrap();
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{repo}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    );
    std::fs::write(d.join("payload.json"), &payload).unwrap();
    tool("openssl", &["dgst", "-sha256", "-sign", "k.pem", "-out", "sig.bin", "payload.json"], d);
    let sig = base64::engine::general_purpose::STANDARD.encode(std::fs::read(d.join("sig.bin")).unwrap());
    let (pdigest, psize) = push_blob(&image, d, "payload.json");
    let config =
        json!({"architecture": "", "os": "", "rootfs": {"type": "layers", "diff_ids": [pdigest]}, "config": {}});
    std::fs::write(d.join("config.json"), config.to_string()).unwrap();
    let (cdigest, csize) = push_blob(&image, d, "config.json");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": csize},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": pdigest, "size": psize,
            "annotations": {"dev.cosignproject.cosign/signature": sig}}]
    });
    std::fs::write(d.join("manifest.json"), manifest.to_string()).unwrap();
    let (host, repo_path) = split(&image);
    tool(
        "curl",
        &[
            "-fsS",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
            "@manifest.json",
            &format!("http://{host}/v2/{repo_path}/manifests/{}.sig", digest.replace(':', "-")),
        ],
        d,
    );
    let pubkey = d.join("k.pub").display().to_string();
    let v = b.ok_args(["verify", "--key", &pubkey, &image]);
    assert!(v.stdout.contains(&digest), "{}", v.stdout);

    // berth signs with the unencrypted PKCS#8 key (no password asked), openssl's public key verifies.
    let (image2, _) = pushed_image(&b, "pkcs8", 22);
    b.ok_args(["sign", "--key", &d.join("k.pem").display().to_string(), &image2]);
    b.ok_args(["verify", "--key", &pubkey, &image2]);
}

#[test]
fn pull_obeys_signature_policy() {
    let mut b = Berth::new();
    b.env("COSIGN_PASSWORD", "");
    let keys = tempdir("policy");
    let k = keys.path();
    b.ok_args(["key", "generate", "--output-prefix", &k.join("cosign").display().to_string()]);
    let (signed, _) = pushed_image(&b, "policy-signed", 31);
    let (unsigned, _) = pushed_image(&b, "policy-unsigned", 32);
    b.ok_args(["sign", "--key", &k.join("cosign.key").display().to_string(), &signed]);
    let signed_repo = signed.rsplit_once(':').unwrap().0.to_string();
    let host = require(Reg::Plain);
    let policy = json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {
            host.clone(): [{"type": "sigstoreSigned", "keyPath": k.join("cosign.pub")}],
            signed_repo.clone(): [{"type": "sigstoreSigned", "keyPath": k.join("cosign.pub"),
                "signedIdentity": {"type": "matchRepository"}}],
        }}
    });
    let pfile = k.join("policy.json");
    std::fs::write(&pfile, policy.to_string()).unwrap();
    let p = pfile.display().to_string();

    let fresh = Berth::new();
    fresh.ok_args(["pull", "--signature-policy", &p, &signed]);
    fresh.ok(&format!("inspect {signed}"));
    // Unsigned: refused, naming the file and the rule; nothing stored.
    fresh
        .run_args(["pull", "--signature-policy", &p, &unsigned])
        .code(1)
        .stderr_has(&format!("refused by the signature policy {p} (transports.docker[\"{host}\"])"));
    fresh.run(&format!("inspect {unsigned}")).fails();
    // The global flag position works too; a reject rule names itself.
    let reject = json!({"default": [{"type": "reject"}]});
    std::fs::write(k.join("reject.json"), reject.to_string()).unwrap();
    fresh
        .run_args(["--signature-policy", &k.join("reject.json").display().to_string(), "pull", &unsigned])
        .code(1)
        .stderr_has("(default): the rule is \"reject\"");
    // A signature by another key does not count.
    b.ok_args(["key", "generate", "--output-prefix", &k.join("other").display().to_string()]);
    b.ok_args(["sign", "--key", &k.join("other.key").display().to_string(), &unsigned]);
    fresh.run_args(["pull", "--signature-policy", &p, &unsigned]).code(1).stderr_has("no signature is valid");
    // GPG requirements are refused explicitly, never skipped.
    let gpg = json!({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/nonexistent.gpg"}]});
    std::fs::write(k.join("gpg.json"), gpg.to_string()).unwrap();
    fresh
        .run_args(["pull", "--signature-policy", &k.join("gpg.json").display().to_string(), &unsigned])
        .code(1)
        .stderr_has("GPG signatures");
    // An accept-anything policy (Debian's default) pulls anything.
    let open = json!({"default": [{"type": "insecureAcceptAnything"}]});
    std::fs::write(k.join("open.json"), open.to_string()).unwrap();
    fresh.ok_args(["pull", "--signature-policy", &k.join("open.json").display().to_string(), &unsigned]);
}

#[test]
fn build_base_images_obey_signature_policy() {
    let b = Berth::new();
    let (unsigned, _) = pushed_image(&b, "policy-base", 41);
    let dir = tempdir("policy-build");
    let d = dir.path();
    std::fs::write(d.join("Dockerfile"), format!("FROM {unsigned}\nLABEL x=1\n")).unwrap();
    std::fs::write(d.join("reject.json"), json!({"default": [{"type": "reject"}]}).to_string()).unwrap();
    std::fs::write(d.join("open.json"), json!({"default": [{"type": "insecureAcceptAnything"}]}).to_string()).unwrap();
    let fresh = Berth::new();
    let ctx = d.display().to_string();
    let r = fresh.run_args([
        "build",
        "--signature-policy",
        &d.join("reject.json").display().to_string(),
        "-t",
        "policy-built:1",
        &ctx,
    ]);
    assert!(!r.success(), "{}", r.all());
    assert!(r.all().contains("refused by the signature policy"), "{}", r.all());
    fresh.ok_args([
        "build",
        "--signature-policy",
        &d.join("open.json").display().to_string(),
        "-t",
        "policy-built:1",
        &ctx,
    ]);
}

#[test]
fn sign_recursive_signs_an_index_and_its_manifests() {
    let mut b = Berth::new();
    b.env("COSIGN_PASSWORD", "");
    let (image, digest) = pushed_image(&b, "index", 51);
    let (host, repo_path) = split(&image);
    let repo = image.rsplit_once(':').unwrap().0.to_string();
    let size = http_get(
        &format!("http://{host}/v2/{repo_path}/manifests/{digest}"),
        "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json",
    )
    .len();
    let raw = skopeo_raw(&image);
    let media_type = raw["mediaType"].as_str().unwrap_or("application/vnd.oci.image.manifest.v1+json").to_string();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": media_type, "digest": digest, "size": size,
            "platform": {"architecture": "amd64", "os": "linux"}}]
    });
    let dir = tempdir("index");
    std::fs::write(dir.path().join("index.json"), index.to_string()).unwrap();
    tool(
        "curl",
        &[
            "-fsS",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.index.v1+json",
            "--data-binary",
            "@index.json",
            &format!("http://{host}/v2/{repo_path}/manifests/multi"),
        ],
        dir.path(),
    );
    let keys = dir.path().join("k");
    b.ok_args(["key", "generate", "--output-prefix", &keys.display().to_string()]);
    let key = format!("{}.key", keys.display());
    let public = format!("{}.pub", keys.display());
    b.ok_args(["sign", "--key", &key, "--recursive", &format!("{repo}:multi")]);
    b.ok_args(["verify", "--key", &public, &format!("{repo}:multi")]);
    // The platform manifest was signed too (verified by digest).
    b.ok_args(["verify", "--key", &public, &format!("{repo}@{digest}")]);
}
