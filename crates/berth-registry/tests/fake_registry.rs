//! Fault-injection tests against the in-process fake registry (berth-testkit).

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_config::AuthEntry;
use berth_registry::{
    BlobSource, Client, ClientOptions, PushOptions, PushOutcome, RegistryError, RetryPolicy, StaticCredentials,
};
use berth_testkit::fake::{FakeRegistry, Fault};
use berth_testkit::{digest_of, random_blob};
use berth_types::{Digest, Reference, media};
use bytes::Bytes;
use tokio::io::AsyncReadExt as _;

fn opts() -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy {
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            ..RetryPolicy::default()
        },
        certs: berth_config::CertsDirs(vec![]),
        ..ClientOptions::default()
    }
}

fn client() -> Client {
    Client::new(opts())
}

fn r(host: &str, s: &str) -> Reference {
    Reference::parse_normalized(&format!("{host}/{s}")).unwrap()
}

fn d(s: &str) -> Digest {
    Digest::parse(s).unwrap()
}

async fn pull(c: &Client, repo: &Reference, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>, std::io::Error> {
    let mut rd = c.get_blob(repo, digest, size).await.map_err(|e| e.into_io())?;
    let mut out = Vec::new();
    rd.read_to_end(&mut out).await?;
    Ok(out)
}

#[tokio::test]
async fn resume_after_dropped_connection_and_truncation() {
    let f = FakeRegistry::start().await.unwrap();
    let data = random_blob(1, 3 << 20);
    let dg = f.put_blob("a/b", data.clone());
    f.fault(Some("GET"), "/blobs/", Fault::DropAfter(1 << 20), 1);
    f.fault(Some("GET"), "/blobs/", Fault::Truncate(100_000), 1);
    let c = client();
    let repo = r(&f.host(), "a/b");
    let got = pull(&c, &repo, &d(&dg), Some(data.len() as u64)).await.unwrap();
    assert_eq!(got, data);
    let ranges: Vec<_> = f.requests().into_iter().filter(|q| q.path.contains("/blobs/")).map(|q| q.range).collect();
    assert_eq!(ranges.len(), 3, "{ranges:?}");
    assert_eq!(ranges[0], None);
    assert_eq!(ranges[1].as_deref(), Some("bytes=1048576-"));
    assert_eq!(ranges[2].as_deref(), Some("bytes=1148576-"));
}

#[tokio::test]
async fn resume_copes_with_ignored_and_wrong_ranges() {
    let f = FakeRegistry::start().await.unwrap();
    let data = random_blob(2, 1 << 20);
    let dg = f.put_blob("x", data.clone());
    // Drop, then a 200 to the ranged retry (skip), drop again, then a wrong Content-Range.
    f.fault(Some("GET"), "/blobs/", Fault::DropAfter(300_000), 1);
    f.fault(Some("GET"), "/blobs/", Fault::IgnoreRange, 1);
    let c = client();
    let got = pull(&c, &r(&f.host(), "x"), &d(&dg), None).await.unwrap();
    assert_eq!(got, data);
    f.clear_requests();
    f.fault(Some("GET"), "/blobs/", Fault::DropAfter(300_000), 1);
    f.fault(Some("GET"), "/blobs/", Fault::WrongContentRange, 1);
    let got = pull(&c, &r(&f.host(), "x"), &d(&dg), Some(data.len() as u64)).await.unwrap();
    assert_eq!(got, data);
    // After the bad Content-Range the client stops using ranges and restarts from 0.
    let ranges: Vec<_> = f.requests().into_iter().map(|q| q.range).collect();
    assert_eq!(ranges.last().unwrap(), &None, "{ranges:?}");
}

#[tokio::test]
async fn corruption_is_an_error_instead_of_eof() {
    let f = FakeRegistry::start().await.unwrap();
    let data = random_blob(3, 200_000);
    let dg = f.put_blob("x", data.clone());
    f.fault(Some("GET"), "/blobs/", Fault::Corrupt, 1);
    let c = client();
    let e = pull(&c, &r(&f.host(), "x"), &d(&dg), Some(data.len() as u64)).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    assert!(matches!(RegistryError::from_io(&e), Some(RegistryError::DigestMismatch { .. })), "{e}");
    // A blob stored under the wrong digest; and a size that does not match the descriptor.
    let wrong = digest_of(b"something else").to_string();
    f.put_blob_with_digest("x", &wrong, data.clone());
    let e = pull(&c, &r(&f.host(), "x"), &d(&wrong), None).await.unwrap_err();
    assert!(e.to_string().contains("digest mismatch"), "{e}");
    let e = pull(&c, &r(&f.host(), "x"), &d(&dg), Some(10)).await.unwrap_err();
    assert!(e.to_string().contains("size mismatch"), "{e}");
    // pull_blob_to_file leaves nothing behind on failure.
    let dir = tempfile::tempdir().unwrap();
    f.fault(Some("GET"), "/blobs/", Fault::Corrupt, 1);
    let dest = dir.path().join("blob");
    assert!(c.pull_blob_to_file(&r(&f.host(), "x"), &d(&dg), None, &dest).await.is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert_eq!(c.pull_blob_to_file(&r(&f.host(), "x"), &d(&dg), None, &dest).await.unwrap(), data.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
}

#[tokio::test]
async fn retries_5xx_and_honours_retry_after() {
    let f = FakeRegistry::start().await.unwrap();
    let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let dg = f.put_manifest("r", "t", media::OCI_INDEX, &m[..]);
    f.fault(Some("GET"), "/manifests/", Fault::status(503), 2);
    let c = client();
    let got = c.get_manifest(&r(&f.host(), "r:t")).await.unwrap();
    assert_eq!(got.digest.to_string(), dg);
    assert_eq!(got.media_type, media::OCI_INDEX);
    f.fault(Some("GET"), "/manifests/", Fault::too_many(1), 1);
    let t = Instant::now();
    c.get_manifest(&r(&f.host(), "r:t")).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(950), "{:?}", t.elapsed());
    // A long Retry-After is not waited for; the message shows the reset time.
    f.fault(Some("GET"), "/manifests/", Fault::too_many(7200), 1);
    let e = c.get_manifest(&r(&f.host(), "r:t")).await.unwrap_err().to_string();
    assert!(e.contains("toomanyrequests: slow down") && e.contains("limit resets in 7200s"), "{e}");
    // Persistent 500s give up after the policy's attempts.
    f.fault(None, "/manifests/", Fault::status(500), 100);
    let e = c.get_manifest(&r(&f.host(), "r:t")).await.unwrap_err();
    assert_eq!(e.status(), Some(500));
    f.clear_faults();
}

#[tokio::test]
async fn read_timeout_resumes() {
    let f = FakeRegistry::start().await.unwrap();
    let data = random_blob(4, 100_000);
    let dg = f.put_blob("x", data.clone());
    f.fault(Some("GET"), "/blobs/", Fault::Stall(Duration::from_secs(3)), 1);
    let c = Client::new(ClientOptions { read_timeout: Duration::from_millis(300), ..opts() });
    let t = Instant::now();
    assert_eq!(pull(&c, &r(&f.host(), "x"), &d(&dg), None).await.unwrap(), data);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[tokio::test]
async fn manifest_errors() {
    let f = FakeRegistry::start().await.unwrap();
    let c = client();
    let host = f.host();
    let e = c.get_manifest(&r(&host, "nope:missing")).await.unwrap_err().to_string();
    assert_eq!(e, format!("manifest for {host}/nope:missing not found: manifest unknown: manifest unknown"));
    let big = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[],"pad":"{}"}}"#,
        media::OCI_INDEX,
        "x".repeat(5 << 20)
    );
    f.put_manifest("r", "big", media::OCI_INDEX, big);
    let e = c.get_manifest(&r(&host, "r:big")).await.unwrap_err();
    assert!(matches!(e, RegistryError::ManifestTooLarge { .. }), "{e}");
    // Without Content-Length the cap is enforced by counting.
    f.fault(Some("GET"), "/manifests/big", Fault::NoContentLength, 1);
    let e = c.get_manifest(&r(&host, "r:big")).await.unwrap_err();
    assert!(matches!(e, RegistryError::ManifestTooLarge { .. }), "{e}");
    assert!(f.requests().iter().any(|q| q.path.ends_with("/manifests/big")));
    f.put_manifest("r", "garbage", media::OCI_MANIFEST, "{not json");
    let e = c.get_manifest(&r(&host, "r:garbage")).await.unwrap_err();
    assert!(matches!(e, RegistryError::Manifest { .. }), "{e}");
    f.put_manifest("r", "v1", media::DOCKER_MANIFEST_V1_SIGNED, r#"{"schemaVersion":1,"fsLayers":[]}"#);
    let e = c.get_manifest(&r(&host, "r:v1")).await.unwrap_err().to_string();
    assert!(e.contains("schema 1"), "{e}");
    // By-digest fetch whose body does not hash to the digest.
    let wrong = digest_of(b"other");
    f.put_manifest("r", &wrong.to_string(), media::OCI_INDEX, r#"{"schemaVersion":2,"manifests":[]}"#);
    let e = c.get_manifest(&r(&host, &format!("r@{wrong}"))).await.unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    // HEAD: exists / missing.
    assert!(c.head_manifest(&r(&host, "r:big")).await.unwrap().is_some());
    assert!(c.head_manifest(&r(&host, "r:absent")).await.unwrap().is_none());
}

#[tokio::test]
async fn token_auth_and_redirect_strip_authorization() {
    let f = FakeRegistry::start().await.unwrap().with_token_auth("alice", "pw");
    let cdn = FakeRegistry::start().await.unwrap();
    let data = random_blob(5, 500_000);
    let dg = f.put_blob("team/app", data.clone());
    cdn.put_blob("whatever", data.clone());
    f.redirect_blobs_to(&format!("http://{}", cdn.host()));
    let host = f.host();
    let anon = client();
    let e = anon.blob_exists(&r(&host, "team/app"), &d(&dg)).await.unwrap_err().to_string();
    assert!(e.contains("unauthorized") && e.contains(&format!("berth login {host}")), "{e}");
    let creds = StaticCredentials::default().with(&host, AuthEntry::basic("alice", "pw"));
    let c = Client::new(ClientOptions { credentials: Arc::new(creds), ..opts() });
    assert_eq!(pull(&c, &r(&host, "team/app"), &d(&dg), Some(data.len() as u64)).await.unwrap(), data);
    // The registry saw the bearer token; the CDN did not (it answers 400 if it does).
    assert!(
        f.requests().iter().any(|q| q.authorization.as_deref().is_some_and(|a| a.starts_with("Bearer fake-alice-")))
    );
    assert!(cdn.requests().iter().all(|q| q.authorization.is_none()));
    // A resume after a drop at the CDN goes through the registry again.
    cdn.fault(Some("GET"), "/blobs/", Fault::DropAfter(100_000), 1);
    assert_eq!(pull(&c, &r(&host, "team/app"), &d(&dg), None).await.unwrap(), data);
    // Wrong password: the token server's 401 becomes an unauthorized error.
    let bad = StaticCredentials::default().with(&host, AuthEntry::basic("alice", "wrong"));
    let c = Client::new(ClientOptions { credentials: Arc::new(bad), ..opts() });
    assert!(c.login(&host, "alice", "wrong").await.is_err());
    assert!(c.get_manifest(&r(&host, "team/app:x")).await.is_err());
    let ok = client().login(&host, "alice", "pw").await.unwrap();
    assert_eq!(ok.identity_token, None);
}

#[tokio::test]
async fn uploads_monolithic_chunked_fallback_resume_and_mount() {
    let f = FakeRegistry::start().await.unwrap();
    let host = f.host();
    let c = client();
    let data = Bytes::from(random_blob(6, 2_500_000));
    let dg = digest_of(&data);
    let src = BlobSource::bytes(data.clone());
    let repo = r(&host, "up/one");
    let out = c.push_blob(&repo, &dg, data.len() as u64, &src, &PushOptions::default()).await.unwrap();
    assert_eq!(out, PushOutcome::Uploaded { chunked: false });
    assert!(f.has_blob("up/one", &dg.to_string()));
    assert_eq!(
        c.push_blob(&repo, &dg, data.len() as u64, &src, &PushOptions::default()).await.unwrap(),
        PushOutcome::Exists
    );
    // Mount into another repository (201), and a mount that the registry refuses (202 → upload).
    let other = r(&host, "up/two");
    let o = PushOptions { mount_from: vec!["up/one".into()], ..PushOptions::default() };
    assert_eq!(
        c.push_blob(&other, &dg, data.len() as u64, &src, &o).await.unwrap(),
        PushOutcome::Mounted { from: "up/one".into() }
    );
    let data2 = Bytes::from(random_blob(7, 1_000_000));
    let dg2 = digest_of(&data2);
    let o = PushOptions { mount_from: vec!["up/absent".into()], ..PushOptions::default() };
    let out = c.push_blob(&other, &dg2, data2.len() as u64, &BlobSource::bytes(data2.clone()), &o).await.unwrap();
    assert_eq!(out, PushOutcome::Uploaded { chunked: false });
    // Chunked with a dropped PATCH: resume from the registry's Range.
    let data3 = Bytes::from(random_blob(8, 3_000_000));
    let dg3 = digest_of(&data3);
    f.fault(Some("PATCH"), "/blobs/uploads/", Fault::status(503), 1);
    let o = PushOptions { chunked: true, chunk_size: 1 << 20, ..PushOptions::default() };
    let out = c
        .push_blob(&r(&host, "up/three"), &dg3, data3.len() as u64, &BlobSource::bytes(data3.clone()), &o)
        .await
        .unwrap();
    assert_eq!(out, PushOutcome::Uploaded { chunked: true });
    assert_eq!(f.blob(&dg3.to_string()).unwrap(), data3);
    let patches: Vec<_> = f.requests().into_iter().filter(|q| q.method == "PATCH").map(|q| q.content_range).collect();
    assert!(patches.len() >= 4, "{patches:?}");
    assert!(
        f.requests().iter().any(|q| q.method == "GET" && q.path.contains("/blobs/uploads/")),
        "status query after failure"
    );
    // Monolithic refused with 413: falls back to chunks.
    f.refuse_monolithic(true);
    let data4 = Bytes::from(random_blob(9, 600_000));
    let dg4 = digest_of(&data4);
    let out = c
        .push_blob(
            &r(&host, "up/four"),
            &dg4,
            data4.len() as u64,
            &BlobSource::bytes(data4.clone()),
            &PushOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(out, PushOutcome::Uploaded { chunked: true });
    f.refuse_monolithic(false);
    // Monolithic PUT dropping mid-body is retried with a new session.
    let data5 = Bytes::from(random_blob(10, 700_000));
    let dg5 = digest_of(&data5);
    f.fault(Some("PUT"), "/blobs/uploads/", Fault::status(502), 2);
    let out = c
        .push_blob(&r(&host, "up/five"), &dg5, data5.len() as u64, &BlobSource::bytes(data5), &PushOptions::default())
        .await
        .unwrap();
    assert_eq!(out, PushOutcome::Uploaded { chunked: false });
    // A wrong digest is rejected by the registry and not retried.
    let e = c
        .push_blob(
            &r(&host, "up/six"),
            &digest_of(b"x"),
            3,
            &BlobSource::bytes(Bytes::from_static(b"abc")),
            &PushOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    // From a file, reopened at offsets.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("blob");
    let data6 = random_blob(11, 1_500_000);
    std::fs::write(&p, &data6).unwrap();
    let dg6 = digest_of(&data6);
    let o = PushOptions { chunked: true, chunk_size: 500_000, ..PushOptions::default() };
    c.push_blob(&r(&host, "up/seven"), &dg6, data6.len() as u64, &BlobSource::file(&p), &o).await.unwrap();
    assert_eq!(f.blob(&dg6.to_string()).unwrap(), data6);
}

#[tokio::test]
async fn tags_catalog_and_search() {
    let f = FakeRegistry::start().await.unwrap();
    let host = f.host();
    for t in ["a", "b", "c", "d", "e"] {
        f.put_manifest("lib/x", t, media::OCI_INDEX, format!(r#"{{"schemaVersion":2,"manifests":[],"t":"{t}"}}"#));
    }
    f.put_manifest("lib/y", "1", media::OCI_INDEX, r#"{"schemaVersion":2,"manifests":[]}"#);
    f.put_manifest("other/z", "1", media::OCI_INDEX, r#"{"schemaVersion":2,"manifests":[]}"#);
    let c = client();
    assert_eq!(c.list_tags(&r(&host, "lib/x")).await.unwrap(), ["a", "b", "c", "d", "e"]);
    assert_eq!(c.catalog(&host, 1, None).await.unwrap(), ["lib/x", "lib/y", "other/z"]);
    assert_eq!(c.catalog(&host, 1, Some(2)).await.unwrap(), ["lib/x", "lib/y"]);
    let hits = c.search(&host, "lib", 10).await.unwrap();
    assert_eq!(hits.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["lib/x", "lib/y"]);
    let link_pages = f.requests().iter().filter(|q| q.path == "/v2/_catalog").count();
    assert!(link_pages >= 3);
    // Docker Hub-shaped search against the fake's /v1/search.
    f.set_search_results(vec![serde_json::json!({
        "name": "busybox", "description": "Busybox base image.", "star_count": 3000, "is_official": true, "is_automated": false
    })]);
    let hub = Client::new(ClientOptions { hub_search_url: format!("http://{host}/v1/search"), ..opts() });
    let hits = hub.search("docker.io", "busy", 25).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].is_official && hits[0].star_count == 3000);
}

#[tokio::test]
async fn connection_refused_names_the_host() {
    let port = berth_testkit::distribution::free_port().unwrap();
    let host = format!("127.0.0.1:{port}");
    let e = client().ping(&host).await.unwrap_err().to_string();
    assert!(e.contains(&host) && e.contains("connection refused"), "{e}");
}

/// Credentials go only to the registry's origin: an upload `Location` on another origin (a
/// storage service) gets the PATCH/PUT without `Authorization` (the second origin answers 400
/// if it sees one), for monolithic and chunked uploads alike.
#[tokio::test]
async fn upload_location_on_another_origin_gets_no_credentials() {
    let f = FakeRegistry::start().await.unwrap().with_token_auth("alice", "pw");
    let other = f.serve_uploads_elsewhere().await.unwrap();
    let host = f.host();
    let creds = StaticCredentials::default().with(&host, AuthEntry::basic("alice", "pw"));
    let c = Client::new(ClientOptions { credentials: Arc::new(creds), ..opts() });
    for (i, chunked) in [(0u64, false), (1, true)] {
        let data = Bytes::from(random_blob(40 + i, 300_000));
        let dg = digest_of(&data);
        let po = PushOptions { chunked, chunk_size: 100_000, ..PushOptions::default() };
        let (repo, src) = (r(&host, "team/up"), BlobSource::bytes(data.clone()));
        let out = c.push_blob(&repo, &dg, data.len() as u64, &src, &po).await.unwrap();
        assert_eq!(out, PushOutcome::Uploaded { chunked });
        assert!(f.has_blob("team/up", &dg.to_string()));
    }
    let log = f.requests();
    let foreign: Vec<_> = log.iter().filter(|q| q.foreign).collect();
    assert!(foreign.len() >= 3, "the uploads went to {other}: {log:?}");
    assert!(foreign.iter().all(|q| q.authorization.is_none()), "{foreign:?}");
    // The registry's own origin still got the token.
    assert!(log.iter().any(|q| !q.foreign && q.authorization.as_deref().is_some_and(|a| a.starts_with("Bearer "))));
}

/// A token realm over plain HTTP on a host that is not insecure is refused before any
/// credentials are sent.
#[tokio::test]
async fn plain_http_token_realm_of_a_secure_host_is_refused() {
    let f = FakeRegistry::start().await.unwrap().with_token_auth("alice", "pw");
    let realm_srv = FakeRegistry::start().await.unwrap();
    f.set_token_realm(&format!("http://{}/token", realm_srv.host()));
    let host = f.host();
    // Only the registry itself is insecure; loopback is not implicitly so.
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("daemon.json");
    std::fs::write(&conf, format!(r#"{{"insecure-registries":["{host}"]}}"#)).unwrap();
    let registries = berth_config::RegistriesConfig::load_from(&[conf], &[]).unwrap();
    let creds = StaticCredentials::default().with(&host, AuthEntry::basic("alice", "pw"));
    let c = Client::new(ClientOptions {
        credentials: Arc::new(creds),
        registries: Arc::new(registries),
        insecure_loopback: false,
        ..opts()
    });
    let e = c.get_manifest(&r(&host, "team/app:x")).await.unwrap_err();
    assert!(matches!(e, RegistryError::Downgrade { .. }), "{e}");
    assert!(e.to_string().contains("token service"), "{e}");
    assert!(realm_srv.requests().is_empty(), "{:?}", realm_srv.requests());
}
