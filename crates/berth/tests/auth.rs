//! login/logout and private registries: htpasswd (basic), TLS and mTLS through certs.d
//! (`BERTH_CERTS_D`), bearer tokens (berth-testkit's token server), and credential helpers.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

fn busybox_in(b: &Berth) -> String {
    let busybox = fixture("library/busybox:latest");
    b.pull(&busybox);
    busybox
}

/// Logs in with --password-stdin; returns the run.
fn login(b: &Berth, host: &str, user: &str, password: &str) -> Run {
    b.run_stdin(&format!("login -u {user} --password-stdin {host}"), format!("{password}\n").as_bytes())
}

#[test]
fn htpasswd_login_push_pull_logout() {
    let host = require(Reg::Htpasswd);
    let reg = registries();
    let b = Berth::new();
    let busybox = busybox_in(&b);
    let target = format!("{host}/{}:v1", unique_repo("basic"));
    b.ok(&format!("tag {busybox} {target}"));

    // Without credentials: 401 with a hint.
    let r = b.run(&format!("push {target}")).code(1);
    assert!(r.stderr.contains("unauthorized") || r.stderr.contains("401"), "{}", r.stderr);
    r.stderr_has(&format!("berth login {host}"));

    // Wrong password: refused, nothing stored.
    let r = login(&b, &host, &reg.user, "wrong-password").code(1);
    r.stderr_has("401 Unauthorized");
    let cfg = std::fs::read_to_string(b.config_json()).unwrap_or_default();
    assert!(!cfg.contains(&host), "a failed login stored credentials: {cfg}");

    let r = login(&b, &host, &reg.user, &reg.password).ok();
    assert_eq!(r.lines(), vec!["Login Succeeded".to_string()]);
    r.stderr_has("WARNING! Your password will be stored unencrypted");
    let meta = std::fs::metadata(b.config_json()).expect("config.json written");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "config.json mode");
    let cfg = read_json(&b.config_json());
    let auth = cfg["auths"][&host]["auth"].as_str().unwrap_or_default().to_string();
    let decoded = {
        let mut c = std::process::Command::new("base64");
        c.arg("-d");
        run_with_stdin(c, auth.as_bytes()).ok().stdout
    };
    assert_eq!(decoded, format!("{}:{}", reg.user, reg.password));

    b.ok(&format!("push {target}")).stdout_has("Pushed");
    skopeo([
        "inspect",
        "--tls-verify=false",
        "--creds",
        &format!("{}:{}", reg.user, reg.password),
        &format!("docker://{target}"),
    ])
    .ok();

    // A second store with the same config pulls it.
    let mut c = Berth::new();
    c.config = b.config.clone();
    c.pull(&target);
    assert_eq!(c.image_ids(), b.image_ids().into_iter().take(1).collect::<Vec<_>>());

    // -p works too, with docker's warning.
    let r = b.run(&format!("login -u {} -p {} {host}", reg.user, reg.password)).ok();
    r.stderr_has("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");

    let r = b.ok(&format!("logout {host}"));
    assert_eq!(r.lines(), vec![format!("Removing login credentials for {host}")]);
    let cfg = read_json(&b.config_json());
    assert!(cfg["auths"].get(&host).is_none(), "logout left {cfg:#}");
    let r = b.ok(&format!("logout {host}"));
    assert_eq!(r.lines(), vec![format!("Not logged in to {host}")]);

    // Logged out: a private pull fails with the hint.
    let d = Berth::new();
    let r = d.run(&format!("pull {target}")).code(1);
    r.stderr_has(&format!("berth login {host}"));
    assert!(d.image_ids().is_empty());
}

#[test]
fn tls_registry_through_certs_d() {
    // Loopback registries are "insecure" for docker and berth alike: HTTPS is tried first
    // without verification, then HTTP. So on 127.0.0.1 the CA in certs.d is not required (the
    // CA check itself is covered by berth-registry's tests, which turn `insecure_loopback`
    // off); what must hold here is that the TLS-only registry is reached over HTTPS, with or
    // without our certs.d, and that skopeo verifying against our CA reads what berth pushed.
    let host = require(Reg::Tls);
    let mut b = Berth::new();
    let busybox = busybox_in(&b);
    let target = format!("{host}/{}:tls", unique_repo("tls"));
    b.ok(&format!("tag {busybox} {target}"));

    let empty = tempdir("empty-certs");
    b.env("BERTH_CERTS_D", empty.path().display().to_string());
    b.ok(&format!("push {target}")).stdout_has("Pushed");

    b.env("BERTH_CERTS_D", registries().certs_d.display().to_string());
    b.ok(&format!("push {target}")).stdout_has("Layer already exists");
    let cert_dir = registries().certs_d.join(&host).display().to_string();
    skopeo(["inspect", "--cert-dir", &cert_dir, &format!("docker://{target}")]).ok();
    let dir = tempdir("tls-copy");
    skopeo([
        "copy",
        "--src-cert-dir",
        &cert_dir,
        &format!("docker://{target}"),
        &format!("dir:{}", dir.path().join("x").display()),
    ])
    .ok();
    let c = Berth::new(); // BERTH_CERTS_D = the CI tree
    c.pull(&target);
    assert_eq!(c.image_ids().len(), 1);
    c.check_store();
}

#[test]
fn mtls_registry_needs_the_client_certificate() {
    let host = require(Reg::Mtls);
    let mut b = Berth::new();
    let busybox = busybox_in(&b);
    let target = format!("{host}/{}:mtls", unique_repo("mtls"));
    b.ok(&format!("tag {busybox} {target}"));

    // A certs.d with only the CA: the server refuses the handshake.
    let partial = tempdir("ca-only");
    std::fs::create_dir_all(partial.path().join(&host)).expect("mkdir");
    std::fs::copy(registries().certs_d.join(&host).join("ca.crt"), partial.path().join(&host).join("ca.crt"))
        .expect("copy ca.crt");
    b.env("BERTH_CERTS_D", partial.path().display().to_string());
    b.run(&format!("push {target}")).code(1);

    b.env("BERTH_CERTS_D", registries().certs_d.display().to_string());
    b.ok(&format!("push {target}"));
    let c = Berth::new();
    c.pull(&target);
    assert_eq!(c.image_ids().len(), 1);
}

#[test]
fn token_registry_login_push_pull() {
    let host = require(Reg::Token);
    let reg = registries();
    let b = Berth::new();
    let busybox = busybox_in(&b);
    let target = format!("{host}/{}:tok", unique_repo("token"));
    b.ok(&format!("tag {busybox} {target}"));

    // Anonymous tokens carry no access: push is refused.
    let r = b.run(&format!("push {target}")).code(1);
    assert!(
        r.stderr.contains("unauthorized") || r.stderr.contains("denied") || r.stderr.contains("401"),
        "{}",
        r.stderr
    );

    login(&b, &host, &reg.user, "nope").code(1);
    login(&b, &host, &reg.user, &reg.password).ok().stdout_has("Login Succeeded");
    let r = b.ok(&format!("push {target}"));
    r.stdout_has("Pushed");

    // Cross-repository mount with a token that covers both repositories.
    let second = format!("{host}/{}:tok", unique_repo("token-mount"));
    b.ok(&format!("tag {target} {second}"));
    b.ok(&format!("push {second}")).stdout_has("Mounted from");

    let mut c = Berth::new();
    c.config = b.config.clone();
    c.pull(&second);
    assert_eq!(c.image_ids().len(), 1);
    b.ok(&format!("logout {host}"));
    let d = Berth::new();
    d.run(&format!("pull {target}")).code(1).stderr_has("berth login");
}

/// A docker-credential-test helper (python3) keeping credentials in `$dir/store.json` and logging
/// every call to `$dir/calls.log`.
fn install_helper(dir: &std::path::Path) {
    let script = format!(
        r#"#!/usr/bin/env python3
import json, os, sys
d = {dir:?}
store = os.path.join(d, "store.json")
op = sys.argv[1]
data = json.load(open(store)) if os.path.exists(store) else {{}}
inp = sys.stdin.read()
open(os.path.join(d, "calls.log"), "a").write(op + " " + (inp.strip() if op != "store" else json.loads(inp)["ServerURL"]) + "\n")
if op == "store":
    c = json.loads(inp)
    data[c["ServerURL"]] = {{"Username": c["Username"], "Secret": c["Secret"]}}
    json.dump(data, open(store, "w"))
elif op == "get":
    url = inp.strip()
    if url not in data:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({{"ServerURL": url, "Username": data[url]["Username"], "Secret": data[url]["Secret"]}}))
elif op == "erase":
    data.pop(inp.strip(), None)
    json.dump(data, open(store, "w"))
elif op == "list":
    print(json.dumps({{k: v["Username"] for k, v in data.items()}}))
else:
    sys.exit(2)
"#,
        dir = dir.display().to_string()
    );
    let path = dir.join("docker-credential-test");
    std::fs::write(&path, script).expect("write helper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod helper");
}

#[test]
fn credential_helper_store_get_erase() {
    let host = require(Reg::Htpasswd);
    need_tool("python3");
    let reg = registries();
    let helper_dir = tempdir("helper");
    install_helper(helper_dir.path());
    let mut b = Berth::new();
    let path = format!("{}:{}", helper_dir.path().display(), std::env::var("PATH").unwrap_or_default());
    b.env("PATH", path);
    std::fs::write(b.config_json(), r#"{"credsStore": "test", "experimental": "keep-me"}"#).expect("config.json");
    let busybox = busybox_in(&b);
    let target = format!("{host}/{}:helper", unique_repo("helper"));
    b.ok(&format!("tag {busybox} {target}"));

    let r = login(&b, &host, &reg.user, &reg.password).ok();
    r.stdout_has("Login Succeeded");
    assert!(!r.stderr.contains("stored unencrypted"), "helper login warns about plain storage: {}", r.stderr);
    let stored = read_json(&helper_dir.path().join("store.json"));
    assert_eq!(stored[&host]["Secret"], reg.password.as_str(), "the helper got the password: {stored:#}");
    let cfg = std::fs::read_to_string(b.config_json()).expect("config.json");
    assert!(!cfg.contains(&reg.password), "password leaked into config.json: {cfg}");
    assert!(cfg.contains("keep-me"), "unknown keys preserved: {cfg}");

    b.ok(&format!("push {target}"));
    let calls = std::fs::read_to_string(helper_dir.path().join("calls.log")).expect("calls.log");
    assert!(calls.lines().any(|l| l == format!("get {host}")), "push asked the helper: {calls}");

    b.ok(&format!("logout {host}")).stdout_has(&format!("Removing login credentials for {host}"));
    let stored = read_json(&helper_dir.path().join("store.json"));
    assert!(stored.get(&host).is_none(), "logout erased from the helper: {stored:#}");
    let calls = std::fs::read_to_string(helper_dir.path().join("calls.log")).expect("calls.log");
    assert!(calls.lines().any(|l| l == format!("erase {host}")), "{calls}");

    // credHelpers per registry takes precedence over credsStore; a missing helper is reported.
    std::fs::write(b.config_json(), format!(r#"{{"credHelpers": {{"{host}": "missing"}}}}"#)).expect("config.json");
    let r = b.run(&format!("pull {target}"));
    assert!(r.stderr.contains("docker-credential-missing"), "{}", r.stderr);
}
