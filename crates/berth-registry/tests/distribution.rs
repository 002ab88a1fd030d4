//! Integration tests against the real CNCF distribution registry (Debian's docker-registry
//! 2.8), started per test on a free loopback port by berth-testkit. They fail loudly when the
//! registry binary is missing (scripts/ci/install-deps.sh installs it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_config::{AuthEntry, CertsDirs};
use berth_registry::{BlobSource, Client, ClientOptions, PushOptions, PushOutcome, RetryPolicy, StaticCredentials};
use berth_testkit::distribution::{Distribution, Mode, free_port};
use berth_testkit::pki::{self, TestPki};
use berth_testkit::token::{TokenServer, TokenServerConfig};
use berth_testkit::{digest_of, random_blob};
use berth_types::{Digest, Reference, media};
use bytes::Bytes;
use serde_json::json;

fn opts() -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy { base_delay: Duration::from_millis(20), ..RetryPolicy::default() },
        certs: CertsDirs(vec![]),
        ..ClientOptions::default()
    }
}

fn r(host: &str, s: &str) -> Reference {
    Reference::parse_normalized(&format!("{host}/{s}")).unwrap()
}

struct Image {
    layers: Vec<(Digest, Bytes)>,
    config: (Digest, Bytes),
    manifest: Bytes,
}

fn random_image(seed: u64, sizes: &[usize]) -> Image {
    let layers: Vec<(Digest, Bytes)> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let b = Bytes::from(random_blob(seed * 100 + i as u64, *n));
            (digest_of(&b), b)
        })
        .collect();
    let config = Bytes::from(
        json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|(d, _)| d.to_string()).collect::<Vec<_>>()},
        })
        .to_string(),
    );
    let config = (digest_of(&config), config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": config.0.to_string(), "size": config.1.len()},
        "layers": layers.iter().map(|(d, b)| json!({"mediaType": media::OCI_LAYER_GZIP, "digest": d.to_string(), "size": b.len()})).collect::<Vec<_>>(),
    });
    Image { layers, config, manifest: Bytes::from(manifest.to_string()) }
}

async fn push_image(c: &Client, target: &Reference, img: &Image, o: &PushOptions) -> Vec<PushOutcome> {
    let mut outs = Vec::new();
    for (d, b) in img.layers.iter().chain(std::iter::once(&img.config)) {
        outs.push(c.push_blob(target, d, b.len() as u64, &BlobSource::bytes(b.clone()), o).await.unwrap());
    }
    let d = c.put_manifest(target, img.manifest.clone(), media::OCI_MANIFEST).await.unwrap();
    assert_eq!(d, digest_of(&img.manifest));
    outs
}

async fn verify_pull(c: &Client, target: &Reference, img: &Image) {
    let m = c.get_manifest(target).await.unwrap();
    assert_eq!(m.bytes, img.manifest);
    assert_eq!(m.media_type, media::OCI_MANIFEST);
    let by_digest = c.get_manifest(&target.with_digest(m.digest.clone()).without_tag()).await.unwrap();
    assert_eq!(by_digest.digest, m.digest);
    for (d, b) in img.layers.iter().chain(std::iter::once(&img.config)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("blob");
        c.pull_blob_to_file(target, d, Some(b.len() as u64), &p).await.unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b.as_ref());
    }
}

#[tokio::test]
async fn plain_push_pull_chunked_mount_tags_catalog_skopeo() {
    let reg = Distribution::start(Mode::Plain).unwrap();
    let c = Client::new(opts());
    // Loopback is insecure: HTTPS is tried first and the plain port makes us fall back to HTTP.
    assert_eq!(c.ping(&reg.host).await.unwrap().scheme, "http");
    let img = random_image(1, &[1 << 20, 5 << 20, 300_000]);
    let a = r(&reg.host, "berth/mono:v1");
    let outs = push_image(&c, &a, &img, &PushOptions::default()).await;
    assert!(outs.iter().all(|o| *o == PushOutcome::Uploaded { chunked: false }), "{outs:?}");
    verify_pull(&c, &a, &img).await;
    // Chunked push of another image.
    let img2 = random_image(2, &[3 << 20, 100_000]);
    let b = r(&reg.host, "berth/chunked:v1");
    let o = PushOptions { chunked: true, chunk_size: 1 << 20, ..PushOptions::default() };
    let outs = push_image(&c, &b, &img2, &o).await;
    assert!(outs.iter().all(|o| *o == PushOutcome::Uploaded { chunked: true }), "{outs:?}");
    verify_pull(&c, &b, &img2).await;
    // Mount the first image's blobs into a third repository; re-push is a no-op.
    let m = r(&reg.host, "berth/mounted:v1");
    let o = PushOptions { mount_from: vec!["berth/mono".into()], ..PushOptions::default() };
    let outs = push_image(&c, &m, &img, &o).await;
    assert!(outs.iter().all(|o| *o == PushOutcome::Mounted { from: "berth/mono".into() }), "{outs:?}");
    let outs = push_image(&c, &m, &img, &PushOptions::default()).await;
    assert!(outs.iter().all(|o| *o == PushOutcome::Exists), "{outs:?}");
    verify_pull(&c, &m, &img).await;
    // Tags and catalog (paginated with n=1).
    c.put_manifest(&r(&reg.host, "berth/mono:v2"), img.manifest.clone(), media::OCI_MANIFEST).await.unwrap();
    assert_eq!(c.list_tags(&a).await.unwrap(), ["v1", "v2"]);
    assert_eq!(c.catalog(&reg.host, 1, None).await.unwrap(), ["berth/chunked", "berth/mono", "berth/mounted"]);
    let hits = c.search(&reg.host, "mou", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    // Errors in Docker's words.
    let e = c.get_manifest(&r(&reg.host, "berth/mono:nope")).await.unwrap_err().to_string();
    assert_eq!(e, format!("manifest for {}/berth/mono:nope not found: manifest unknown: manifest unknown", reg.host));
    assert!(c.head_manifest(&a).await.unwrap().is_some());
    // Interop: skopeo reads what we pushed.
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{}/berth/mono:v1", reg.host)])
        .output()
        .expect("skopeo is installed by scripts/ci/install-deps.sh");
    assert!(out.status.success(), "skopeo: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, img.manifest.as_ref());
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{}/berth/chunked:v1", reg.host)])
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn htpasswd_basic_auth_and_login() {
    let reg = Distribution::start(Mode::Htpasswd { user: "testuser".into(), password: "testpassword".into() }).unwrap();
    let anon = Client::new(opts());
    let img = random_image(3, &[200_000]);
    let t = r(&reg.host, "basic/app:1");
    let e = anon.get_manifest(&t).await.unwrap_err().to_string();
    assert!(e.contains("unauthorized") && e.contains(&format!("berth login {}", reg.host)), "{e}");
    let e = anon.login(&reg.host, "testuser", "wrong").await.unwrap_err().to_string();
    assert!(e.contains("unauthorized"), "{e}");
    let ok = anon.login(&reg.host, "testuser", "testpassword").await.unwrap();
    assert_eq!(ok.identity_token, None);
    let creds = StaticCredentials::default().with(&reg.host, AuthEntry::basic("testuser", "testpassword"));
    let c = Client::new(ClientOptions { credentials: Arc::new(creds), ..opts() });
    push_image(&c, &t, &img, &PushOptions::default()).await;
    verify_pull(&c, &t, &img).await;
}

#[tokio::test]
async fn tls_with_certs_d_and_mtls() {
    let pkidir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(pkidir.path()).unwrap();
    let tls = Distribution::start(Mode::Tls { pki: pki.clone() }).unwrap();
    let mtls = Distribution::start(Mode::Mtls { pki: pki.clone() }).unwrap();
    // Verification on (as for a non-loopback registry): unknown CA fails with a certs.d hint.
    let strict = Client::new(ClientOptions { insecure_loopback: false, ..opts() });
    let e = strict.ping(&tls.host).await.unwrap_err().to_string();
    assert!(e.contains("certificate") && e.contains("certs.d"), "{e}");
    // A TLS client against a plain-HTTP registry gets the HTTP-vs-HTTPS hint.
    let plain = Distribution::start(Mode::Plain).unwrap();
    let e = strict.ping(&plain.host).await.unwrap_err().to_string();
    assert!(e.contains("server gave HTTP response to HTTPS client") && e.contains("insecure-registries"), "{e}");
    // certs.d with the CA: verified TLS works.
    let certs = tempfile::tempdir().unwrap();
    pki.certs_d(certs.path(), &tls.host, false).unwrap();
    pki.certs_d(certs.path(), &mtls.host, true).unwrap();
    let c =
        Client::new(ClientOptions { insecure_loopback: false, certs: CertsDirs(vec![certs.path().into()]), ..opts() });
    assert_eq!(c.ping(&tls.host).await.unwrap().scheme, "https");
    let img = random_image(4, &[400_000, 10_000]);
    push_image(&c, &r(&tls.host, "tls/app:1"), &img, &PushOptions::default()).await;
    verify_pull(&c, &r(&tls.host, "tls/app:1"), &img).await;
    // mTLS: with the client pair from certs.d it works; without it the handshake fails.
    push_image(&c, &r(&mtls.host, "mtls/app:1"), &img, &PushOptions::default()).await;
    verify_pull(&c, &r(&mtls.host, "mtls/app:1"), &img).await;
    let nocert = tempfile::tempdir().unwrap();
    pki.certs_d(nocert.path(), &mtls.host, false).unwrap();
    let c2 =
        Client::new(ClientOptions { insecure_loopback: false, certs: CertsDirs(vec![nocert.path().into()]), ..opts() });
    assert!(c2.get_manifest(&r(&mtls.host, "mtls/app:1")).await.is_err());
}

#[tokio::test]
async fn token_auth_with_our_token_server() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = pki::self_signed_ca(dir.path(), "signer", "berth-token-signer").unwrap();
    let port = free_port().unwrap();
    let ts = TokenServer::start(TokenServerConfig {
        listen: format!("127.0.0.1:{port}"),
        issuer: "berth-test-issuer".into(),
        service: "berth-test-registry".into(),
        key_pem: std::fs::read(&key).unwrap(),
        users: HashMap::from([("testuser".to_string(), "testpassword".to_string())]),
        expires_in: 300,
    })
    .await
    .unwrap();
    let reg = Distribution::start(Mode::Token {
        realm: ts.realm(),
        service: "berth-test-registry".into(),
        issuer: "berth-test-issuer".into(),
        rootcertbundle: cert,
    })
    .unwrap();
    let anon = Client::new(opts());
    let t = r(&reg.host, "tok/app:1");
    let e = anon.get_manifest(&t).await.unwrap_err().to_string();
    assert!(e.contains("unauthorized"), "{e}");
    // login: the OAuth2 password grant gives a refresh token (identity token).
    let out = anon.login(&reg.host, "testuser", "testpassword").await.unwrap();
    let identity = out.identity_token.expect("refresh token from the POST password grant");
    assert!(anon.login(&reg.host, "testuser", "bad").await.is_err());
    // Push and pull with username/password (GET token flow with Basic).
    let creds = StaticCredentials::default().with(&reg.host, AuthEntry::basic("testuser", "testpassword"));
    let c = Client::new(ClientOptions { credentials: Arc::new(creds), ..opts() });
    let img = random_image(5, &[700_000, 20_000]);
    push_image(&c, &t, &img, &PushOptions::default()).await;
    verify_pull(&c, &t, &img).await;
    // Identity token only: the refresh-token POST flow; mount needs a two-repository token.
    let e = AuthEntry { identity_token: Some(identity), ..AuthEntry::default() };
    let idc =
        Client::new(ClientOptions { credentials: Arc::new(StaticCredentials::default().with(&reg.host, e)), ..opts() });
    let m = r(&reg.host, "tok/other:1");
    let o = PushOptions { mount_from: vec!["tok/app".into()], ..PushOptions::default() };
    let outs = push_image(&idc, &m, &img, &o).await;
    assert!(outs.iter().all(|o| *o == PushOutcome::Mounted { from: "tok/app".into() }), "{outs:?}");
    verify_pull(&idc, &m, &img).await;
    let log = ts.requests();
    assert!(log.iter().any(|l| l.starts_with("POST password testuser")), "{log:?}");
    assert!(
        log.iter().any(|l| l.starts_with("POST refresh_token testuser")
            && l.contains("repository:tok/app:pull")
            && l.contains("repository:tok/other:pull,push")),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.starts_with("GET testuser")), "{log:?}");
}

/// Throughput figures (printed; run with `--nocapture` to see them). Asserts only correctness.
#[tokio::test]
async fn throughput_local_registry() {
    let reg = Distribution::start(Mode::Plain).unwrap();
    let c = Client::new(opts());
    let size = 64 << 20;
    let data = Bytes::from(random_blob(42, size));
    let d = digest_of(&data);
    let mb = size as f64 / 1e6;
    let t = Instant::now();
    c.push_blob(&r(&reg.host, "perf/mono"), &d, size as u64, &BlobSource::bytes(data.clone()), &PushOptions::default())
        .await
        .unwrap();
    let mono = mb / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let o = PushOptions { chunked: true, chunk_size: 8 << 20, ..PushOptions::default() };
    c.push_blob(&r(&reg.host, "perf/chunked"), &d, size as u64, &BlobSource::bytes(data.clone()), &o).await.unwrap();
    let chunked = mb / t.elapsed().as_secs_f64();
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    c.pull_blob_to_file(&r(&reg.host, "perf/mono"), &d, Some(size as u64), &dir.path().join("b")).await.unwrap();
    let pull = mb / t.elapsed().as_secs_f64();
    eprintln!(
        "throughput (64 MiB blob, local distribution 2.8): push monolithic {mono:.0} MB/s, push chunked (8 MiB) {chunked:.0} MB/s, pull to file {pull:.0} MB/s"
    );
}
