//! Proxy environment handling. Its own test binary (= its own process), because it sets
//! process-wide environment variables; keep it to this one test.

use std::sync::Arc;

use berth_config::RegistriesConfig;
use berth_registry::{Client, ClientOptions, RetryPolicy};
use berth_testkit::fake::FakeRegistry;
use berth_types::{Reference, media};

#[tokio::test]
async fn env_proxies_no_proxy_and_loopback() {
    let registry = FakeRegistry::start().await.unwrap();
    registry.put_manifest("p/q", "t", media::OCI_INDEX, r#"{"schemaVersion":2,"manifests":[]}"#);
    // A second fake plays the forward proxy: it receives absolute-form requests and serves them.
    let proxy = FakeRegistry::start().await.unwrap();
    proxy.put_manifest("p/q", "t", media::OCI_INDEX, r#"{"schemaVersion":2,"manifests":[]}"#);
    // SAFETY: this test binary runs this single test; no other thread reads the environment
    // concurrently except the runtime's, which does not touch these variables.
    unsafe {
        std::env::set_var("http_proxy", format!("http://{}", proxy.host()));
        std::env::set_var("HTTPS_PROXY", format!("http://{}", proxy.host()));
        std::env::remove_var("NO_PROXY");
        std::env::remove_var("no_proxy");
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("registries.json");
    std::fs::write(&cfg, r#"{"insecure-registries":["registry.invalid"]}"#).unwrap();
    let regs = Arc::new(RegistriesConfig::load_from(&[cfg], &[]).unwrap());
    let opts = || ClientOptions {
        registries: regs.clone(),
        certs: berth_config::CertsDirs(vec![]),
        retry: RetryPolicy::none(),
        ..ClientOptions::default()
    };
    // 1. Loopback registries are never proxied, even with the variables set.
    let c = Client::new(opts());
    c.get_manifest(&Reference::parse_normalized(&format!("{}/p/q:t", registry.host())).unwrap()).await.unwrap();
    assert!(proxy.requests().is_empty(), "loopback request went through the proxy");
    // 2. Other hosts go through the proxy (lower-case http_proxy works).
    let c = Client::new(opts());
    c.get_manifest(&Reference::parse_normalized("registry.invalid/p/q:t").unwrap()).await.unwrap();
    assert!(proxy.requests().iter().any(|r| r.path.contains("/v2/p/q/manifests/t")), "{:?}", proxy.requests());
    // 3. no_proxy (lower-case) exempts the host: now it must be resolved directly, and fails.
    unsafe {
        std::env::set_var("no_proxy", "example.org, registry.invalid");
    }
    proxy.clear_requests();
    let c = Client::new(opts());
    let e = c.get_manifest(&Reference::parse_normalized("registry.invalid/p/q:t").unwrap()).await.unwrap_err();
    assert!(proxy.requests().is_empty(), "{e}");
}
