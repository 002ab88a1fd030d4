//! An in-process fake OCI registry with fault injection.
//!
//! It implements enough of the distribution API for client tests: `/v2/`, manifests (GET, HEAD,
//! PUT by tag or digest), blobs (GET with `Range`, HEAD), uploads (POST with `mount`/`from`,
//! PATCH with `Content-Range`, PUT `?digest=`, GET status), tags list and catalog with `n`/`last`
//! pagination and `Link` headers, and a Docker Hub-like `/v1/search`. With
//! [`FakeRegistry::with_token_auth`] it answers 401 with a Bearer challenge whose realm is its own
//! `/token` endpoint.
//!
//! Faults are rules matched on method and a path substring and consumed in order; see [`Fault`].
//! Every request is logged ([`FakeRegistry::requests`]) for assertions.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;

use crate::KitError;
use crate::http::{Handler, Req, Resp, Server, delayed, failing, full, response};

/// A fault to inject into a matching response.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status, headers and body instead of the real response.
    Status { status: u16, headers: Vec<(String, String)>, body: String },
    /// Send the first `n` bytes of the real body, then drop the connection.
    DropAfter(usize),
    /// For a ranged GET: answer 206 with a `Content-Range` starting one byte after the asked
    /// offset (and the body from there).
    WrongContentRange,
    /// For a ranged GET: ignore the range and send the whole body with 200.
    IgnoreRange,
    /// Flip one byte in the middle of the body.
    Corrupt,
    /// Wait this long before sending the body (read-timeout tests).
    Stall(Duration),
    /// Claim a larger `Content-Length` than the body and close early (truncated body).
    Truncate(usize),
    /// Send the body chunked, without `Content-Length` (size caps must count bytes).
    NoContentLength,
}

impl Fault {
    pub fn status(status: u16) -> Fault {
        Fault::Status { status, headers: vec![], body: String::new() }
    }

    /// 429 with `Retry-After: secs`.
    pub fn too_many(secs: u64) -> Fault {
        Fault::Status {
            status: 429,
            headers: vec![("Retry-After".into(), secs.to_string())],
            body: r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#.into(),
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    method: Option<String>,
    path: String,
    fault: Fault,
    remaining: usize,
}

/// A logged request.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub range: Option<String>,
    pub content_range: Option<String>,
    pub body_len: usize,
    /// Received by the second origin of [`FakeRegistry::serve_uploads_elsewhere`].
    pub foreign: bool,
}

#[derive(Debug, Default)]
struct Upload {
    repo: String,
    data: Vec<u8>,
}

#[derive(Default)]
struct State {
    blobs: HashMap<String, Bytes>,
    /// repo → digest set (blobs are visible per repository, as in distribution).
    repo_blobs: HashMap<String, std::collections::HashSet<String>>,
    /// repo → reference (tag or digest) → (content type, bytes).
    manifests: HashMap<String, BTreeMap<String, (String, Bytes)>>,
    uploads: HashMap<String, Upload>,
    next_upload: u64,
    rules: Vec<Rule>,
    log: Vec<Logged>,
    /// Token auth: (user, password) accepted at /token; None = no auth at all.
    token_auth: Option<(String, String)>,
    /// Redirect blob GETs to this base URL (another server).
    redirect_blobs: Option<String>,
    /// Refuse monolithic PUTs with a body (to exercise the chunked fallback).
    refuse_monolithic: bool,
    /// Upload sessions live at this other origin (`http://127.0.0.1:PORT`), as with registries
    /// that hand uploads to a storage service.
    upload_base: Option<String>,
    /// The Bearer challenge's realm, when not this server's own `/token`.
    realm: Option<String>,
    search: Vec<serde_json::Value>,
}

/// The fake registry. Clone the handle freely; the server stops when the last handle drops.
#[derive(Clone)]
pub struct FakeRegistry {
    state: Arc<Mutex<State>>,
    server: Arc<Server>,
    /// Further origins serving the same state (see [`FakeRegistry::serve_uploads_elsewhere`]).
    others: Arc<Mutex<Vec<Server>>>,
}

fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    match s.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn sha256(data: &[u8]) -> String {
    berth_types::Digest::sha256_of(data).to_string()
}

fn err_body(code: &str, msg: &str) -> String {
    serde_json::json!({"errors":[{"code":code,"message":msg}]}).to_string()
}

fn json_resp(status: u16, code: &str, msg: &str) -> Resp {
    response(status, &[("Content-Type", "application/json".to_string())], full(err_body(code, msg)))
}

impl FakeRegistry {
    /// Starts an anonymous fake registry on a free loopback port.
    pub async fn start() -> Result<FakeRegistry, KitError> {
        let state: Arc<Mutex<State>> = Arc::default();
        let st = state.clone();
        let handler: Handler = Arc::new(move |req| {
            let st = st.clone();
            Box::pin(async move { handle(&st, req, false).await })
        });
        let server = Server::start("127.0.0.1:0", handler).await?;
        Ok(FakeRegistry { state, server: Arc::new(server), others: Arc::default() })
    }

    /// Starts a second origin (another loopback port) that serves this registry's upload
    /// sessions, and makes upload POSTs answer with an absolute `Location` there. The second
    /// origin needs no auth and answers 400 to any request carrying `Authorization`: a client
    /// must not send the registry's credentials to another origin. Returns its `127.0.0.1:PORT`.
    pub async fn serve_uploads_elsewhere(&self) -> Result<String, KitError> {
        let st = self.state.clone();
        let handler: Handler = Arc::new(move |req| {
            let st = st.clone();
            Box::pin(async move { handle(&st, req, true).await })
        });
        let server = Server::start("127.0.0.1:0", handler).await?;
        let host = server.host();
        lock(&self.state).upload_base = Some(format!("http://{host}"));
        match self.others.lock() {
            Ok(mut g) => g.push(server),
            Err(p) => p.into_inner().push(server),
        }
        Ok(host)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.server.host()
    }

    /// Requires a bearer token from this server's `/token`, which accepts `user`/`password`.
    pub fn with_token_auth(self, user: &str, password: &str) -> FakeRegistry {
        lock(&self.state).token_auth = Some((user.into(), password.into()));
        self
    }

    /// Redirects blob GETs to `base` + `/blobs/<digest>` (serve them with another fake).
    pub fn redirect_blobs_to(&self, base: &str) {
        lock(&self.state).redirect_blobs = Some(base.trim_end_matches('/').to_string());
    }

    /// Names `realm` as the token service in Bearer challenges instead of this server's own
    /// `/token` (client tests of where credentials may go).
    pub fn set_token_realm(&self, realm: &str) {
        lock(&self.state).realm = Some(realm.to_string());
    }

    /// Answers 413 to monolithic uploads so clients must fall back to chunks.
    pub fn refuse_monolithic(&self, on: bool) {
        lock(&self.state).refuse_monolithic = on;
    }

    /// Adds a fault for the next `times` requests whose method matches (`None` = any) and whose
    /// path contains `path`.
    pub fn fault(&self, method: Option<&str>, path: &str, fault: Fault, times: usize) {
        lock(&self.state).rules.push(Rule {
            method: method.map(str::to_string),
            path: path.into(),
            fault,
            remaining: times,
        });
    }

    pub fn clear_faults(&self) {
        lock(&self.state).rules.clear();
    }

    /// Stores a blob in `repo`; returns its digest.
    pub fn put_blob(&self, repo: &str, data: impl Into<Bytes>) -> String {
        let data = data.into();
        let d = sha256(&data);
        let mut s = lock(&self.state);
        s.blobs.insert(d.clone(), data);
        s.repo_blobs.entry(repo.into()).or_default().insert(d.clone());
        d
    }

    /// Stores a blob under a digest that does not match its bytes (corruption tests).
    pub fn put_blob_with_digest(&self, repo: &str, digest: &str, data: impl Into<Bytes>) {
        let mut s = lock(&self.state);
        s.blobs.insert(digest.into(), data.into());
        s.repo_blobs.entry(repo.into()).or_default().insert(digest.into());
    }

    pub fn blob(&self, digest: &str) -> Option<Bytes> {
        lock(&self.state).blobs.get(digest).cloned()
    }

    pub fn has_blob(&self, repo: &str, digest: &str) -> bool {
        lock(&self.state).repo_blobs.get(repo).is_some_and(|s| s.contains(digest))
    }

    /// Stores a manifest under `reference` (tag or digest) and under its digest.
    pub fn put_manifest(&self, repo: &str, reference: &str, content_type: &str, data: impl Into<Bytes>) -> String {
        let data = data.into();
        let d = sha256(&data);
        let mut s = lock(&self.state);
        let m = s.manifests.entry(repo.into()).or_default();
        m.insert(reference.into(), (content_type.into(), data.clone()));
        m.insert(d.clone(), (content_type.into(), data));
        d
    }

    /// Sets the Docker Hub-like search results served at `/v1/search`.
    pub fn set_search_results(&self, results: Vec<serde_json::Value>) {
        lock(&self.state).search = results;
    }

    pub fn requests(&self) -> Vec<Logged> {
        lock(&self.state).log.clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.state).log.clear();
    }
}

/// Splits `/v2/<name>/<kind>/<rest>` at the last API keyword.
fn split_api(path: &str) -> Option<(String, &'static str, String)> {
    let p = path.strip_prefix("/v2/")?;
    for kw in ["/blobs/uploads/", "/blobs/uploads", "/manifests/", "/blobs/", "/tags/list"] {
        if let Some(i) = p.rfind(kw) {
            let name = p.get(..i)?.to_string();
            let rest = p.get(i + kw.len()..)?.to_string();
            let kind = match kw {
                "/blobs/uploads/" | "/blobs/uploads" => "uploads",
                "/manifests/" => "manifests",
                "/blobs/" => "blobs",
                _ => "tags",
            };
            return Some((name, kind, rest));
        }
    }
    None
}

fn take_fault(st: &Mutex<State>, req: &Req) -> Option<Fault> {
    let mut s = lock(st);
    let m = req.method.as_str().to_string();
    let path = req.path().to_string();
    let pos = s
        .rules
        .iter()
        .position(|r| r.remaining > 0 && r.method.as_ref().is_none_or(|x| *x == m) && path.contains(&r.path))?;
    let rule = s.rules.get_mut(pos)?;
    rule.remaining -= 1;
    let f = rule.fault.clone();
    if rule.remaining == 0 {
        s.rules.remove(pos);
    }
    Some(f)
}

fn parse_range(h: Option<&str>) -> Option<u64> {
    h?.trim().strip_prefix("bytes=")?.split('-').next()?.trim().parse().ok()
}

async fn handle(st: &Mutex<State>, req: Req, foreign: bool) -> Resp {
    {
        let mut s = lock(st);
        s.log.push(Logged {
            method: req.method.to_string(),
            path: req.path().to_string(),
            query: req.uri.query().unwrap_or("").to_string(),
            authorization: req.header("authorization").map(str::to_string),
            range: req.header("range").map(str::to_string),
            content_range: req.header("content-range").map(str::to_string),
            body_len: req.body.len(),
            foreign,
        });
    }
    let fault = take_fault(st, &req);
    if let Some(Fault::Status { status, headers, body }) = &fault {
        let h: Vec<(&str, String)> = headers.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        return response(*status, &h, full(body.clone()));
    }
    let path = req.path().to_string();
    if path == "/token" {
        return token(st, &req);
    }
    if path == "/v1/search" {
        let q = req.query("q").unwrap_or_default();
        let results: Vec<_> = lock(st)
            .search
            .iter()
            .filter(|r| r.get("name").and_then(|n| n.as_str()).is_some_and(|n| n.contains(&q)))
            .cloned()
            .collect();
        let body = serde_json::json!({"num_pages":1,"num_results":results.len(),"page":1,"query":q,"results":results});
        return response(200, &[("Content-Type", "application/json".into())], full(body.to_string()));
    }
    if let Some(d) = path.strip_prefix("/blobs/") {
        // Redirect target ("CDN"): serves blobs by digest, never wants Authorization.
        if req.header("authorization").is_some() {
            return json_resp(400, "DENIED", "authorization header leaked to the blob CDN");
        }
        let b = lock(st).blobs.get(d).cloned();
        return match b {
            Some(b) => serve_bytes(&req, b, fault, "application/octet-stream"),
            None => json_resp(404, "BLOB_UNKNOWN", "blob unknown to registry"),
        };
    }
    if foreign {
        // The other origin: credentials of the registry must never arrive here.
        if req.header("authorization").is_some() {
            return json_resp(400, "DENIED", "authorization header leaked to another origin");
        }
    } else if let Some(resp) = check_auth(st, &req) {
        return resp;
    }
    if path == "/v2/" || path == "/v2" {
        return response(200, &[("Docker-Distribution-API-Version", "registry/2.0".into())], full("{}"));
    }
    if path == "/v2/_catalog" {
        let names: Vec<String> =
            lock(st).manifests.keys().cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        return paginate(&req, names, "repositories", "/v2/_catalog");
    }
    let Some((name, kind, rest)) = split_api(&path) else {
        return json_resp(404, "NAME_UNKNOWN", "unknown path");
    };
    match (kind, req.method.as_str()) {
        ("manifests", "GET" | "HEAD") => {
            let m = lock(st).manifests.get(&name).and_then(|m| m.get(&rest)).cloned();
            match m {
                Some((ct, data)) => {
                    let d = sha256(&data);
                    let mut r = serve_bytes(&req, data, fault, &ct);
                    if let Ok(v) = hyper::header::HeaderValue::from_str(&d) {
                        r.headers_mut().insert("docker-content-digest", v);
                    }
                    r
                }
                None => json_resp(404, "MANIFEST_UNKNOWN", "manifest unknown"),
            }
        }
        ("manifests", "PUT") => {
            let ct = req.header("content-type").unwrap_or("").to_string();
            let d = sha256(&req.body);
            let mut s = lock(st);
            let m = s.manifests.entry(name.clone()).or_default();
            m.insert(rest.clone(), (ct.clone(), req.body.clone()));
            m.insert(d.clone(), (ct, req.body.clone()));
            response(
                201,
                &[("Docker-Content-Digest", d.clone()), ("Location", format!("/v2/{name}/manifests/{d}"))],
                full(""),
            )
        }
        ("blobs", "GET" | "HEAD") => {
            let (b, redirect) = {
                let s = lock(st);
                let visible = s.repo_blobs.get(&name).is_some_and(|x| x.contains(&rest));
                (if visible { s.blobs.get(&rest).cloned() } else { None }, s.redirect_blobs.clone())
            };
            match (b, redirect) {
                (Some(_), Some(base)) if req.method == hyper::Method::GET => {
                    response(307, &[("Location", format!("{base}/blobs/{rest}"))], full(""))
                }
                (Some(b), _) => {
                    let mut r = serve_bytes(&req, b, fault, "application/octet-stream");
                    if let Ok(v) = hyper::header::HeaderValue::from_str(&rest) {
                        r.headers_mut().insert("docker-content-digest", v);
                    }
                    r
                }
                (None, _) => json_resp(404, "BLOB_UNKNOWN", "blob unknown to registry"),
            }
        }
        ("tags", "GET") => {
            let tags: Vec<String> = lock(st)
                .manifests
                .get(&name)
                .map(|m| m.keys().filter(|k| !k.starts_with("sha256:")).cloned().collect())
                .unwrap_or_default();
            paginate(&req, tags, "tags", &format!("/v2/{name}/tags/list"))
        }
        ("uploads", "POST") => {
            let mut s = lock(st);
            if let (Some(mount), Some(from)) = (req.query("mount"), req.query("from")) {
                let ok = s.repo_blobs.get(&from).is_some_and(|x| x.contains(&mount)) && s.blobs.contains_key(&mount);
                if ok {
                    s.repo_blobs.entry(name.clone()).or_default().insert(mount.clone());
                    return response(
                        201,
                        &[("Location", format!("/v2/{name}/blobs/{mount}")), ("Docker-Content-Digest", mount)],
                        full(""),
                    );
                }
            }
            s.next_upload += 1;
            let id = format!("u{}", s.next_upload);
            s.uploads.insert(id.clone(), Upload { repo: name.clone(), data: Vec::new() });
            // A relative Location, as distribution behind some proxies sends (or an absolute
            // one on the upload origin).
            let base = s.upload_base.clone().unwrap_or_default();
            response(
                202,
                &[("Location", format!("{base}/v2/{name}/blobs/uploads/{id}?_state=opaque")), ("Range", "0-0".into())],
                full(""),
            )
        }
        ("uploads", "PATCH") => {
            let mut s = lock(st);
            let Some(up) = s.uploads.get_mut(&rest) else {
                return json_resp(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown");
            };
            if let Some(cr) = req.header("content-range") {
                let start: Option<u64> = cr.split('-').next().and_then(|x| x.trim().parse().ok());
                if start != Some(up.data.len() as u64) {
                    return response(416, &[("Range", format!("0-{}", up.data.len().saturating_sub(1)))], full(""));
                }
            }
            up.data.extend_from_slice(&req.body);
            let end = up.data.len().saturating_sub(1);
            response(
                202,
                &[("Location", format!("/v2/{name}/blobs/uploads/{rest}")), ("Range", format!("0-{end}"))],
                full(""),
            )
        }
        ("uploads", "GET") => {
            let s = lock(st);
            match s.uploads.get(&rest) {
                Some(up) => response(
                    204,
                    &[
                        ("Location", format!("/v2/{name}/blobs/uploads/{rest}")),
                        ("Range", format!("0-{}", up.data.len().saturating_sub(1))),
                    ],
                    full(""),
                ),
                None => json_resp(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown"),
            }
        }
        ("uploads", "PUT") => {
            let mut s = lock(st);
            if s.refuse_monolithic && !req.body.is_empty() && s.uploads.get(&rest).is_some_and(|u| u.data.is_empty()) {
                return json_resp(413, "SIZE_INVALID", "monolithic uploads disabled");
            }
            let Some(mut up) = s.uploads.remove(&rest) else {
                return json_resp(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown");
            };
            up.data.extend_from_slice(&req.body);
            let want = req.query("digest").unwrap_or_default();
            let got = sha256(&up.data);
            if want != got {
                return json_resp(400, "DIGEST_INVALID", "provided digest did not match uploaded content");
            }
            s.blobs.insert(got.clone(), Bytes::from(up.data));
            s.repo_blobs.entry(up.repo.clone()).or_default().insert(got.clone());
            response(
                201,
                &[("Docker-Content-Digest", got.clone()), ("Location", format!("/v2/{name}/blobs/{got}"))],
                full(""),
            )
        }
        _ => json_resp(405, "UNSUPPORTED", "unsupported"),
    }
}

fn serve_bytes(req: &Req, data: Bytes, fault: Option<Fault>, ct: &str) -> Resp {
    let total = data.len() as u64;
    let head = req.method == hyper::Method::HEAD;
    let mut start = parse_range(req.header("range")).unwrap_or(0).min(total);
    let ranged = req.header("range").is_some();
    let mut status = if ranged { 206 } else { 200 };
    match &fault {
        Some(Fault::IgnoreRange) => {
            start = 0;
            status = 200;
        }
        Some(Fault::WrongContentRange) if ranged => start = (start + 1).min(total),
        _ => {}
    }
    let mut body = data.slice(usize::try_from(start).unwrap_or(0)..);
    if let Some(Fault::Corrupt) = fault
        && !body.is_empty()
    {
        let mut v = body.to_vec();
        let mid = v.len() / 2;
        if let Some(b) = v.get_mut(mid) {
            *b ^= 0xff;
        }
        body = Bytes::from(v);
    }
    let mut headers = vec![("Content-Type", ct.to_string())];
    if !matches!(fault, Some(Fault::NoContentLength)) {
        headers.push(("Content-Length", body.len().to_string()));
    }
    if status == 206 {
        headers.push(("Content-Range", format!("bytes {start}-{}/{total}", total.saturating_sub(1))));
    }
    if head {
        return response(status, &headers, full(""));
    }
    let b = match fault {
        Some(Fault::DropAfter(n)) => failing(body.slice(..n.min(body.len()))),
        Some(Fault::Truncate(n)) => failing(body.slice(..n.min(body.len()))),
        Some(Fault::Stall(d)) => delayed(body, d),
        Some(Fault::NoContentLength) => delayed(body, Duration::ZERO),
        _ => full(body),
    };
    response(status, &headers, b)
}

fn paginate(req: &Req, mut items: Vec<String>, key: &str, path: &str) -> Resp {
    items.sort();
    if let Some(last) = req.query("last") {
        items.retain(|t| *t > last);
    }
    let n: Option<usize> = req.query("n").and_then(|n| n.parse().ok());
    let mut headers = vec![("Content-Type", "application/json".to_string())];
    if let Some(n) = n
        && items.len() > n
    {
        items.truncate(n);
        if let Some(last) = items.last() {
            headers.push(("Link", format!("<{path}?n={n}&last={last}>; rel=\"next\"")));
        }
    }
    let body = serde_json::json!({ key: items }).to_string();
    response(200, &headers, full(body))
}

fn check_auth(st: &Mutex<State>, req: &Req) -> Option<Resp> {
    let (user, _) = lock(st).token_auth.clone()?;
    let ok = req.header("authorization").is_some_and(|a| a.starts_with(&format!("Bearer fake-{user}-")));
    if ok {
        return None;
    }
    let host = req.header("host").unwrap_or("127.0.0.1");
    let realm = lock(st).realm.clone().unwrap_or_else(|| format!("http://{host}/token"));
    let chal = format!(r#"Bearer realm="{realm}",service="fake-registry""#);
    Some(response(
        401,
        &[("WWW-Authenticate", chal), ("Content-Type", "application/json".into())],
        full(err_body("UNAUTHORIZED", "authentication required")),
    ))
}

fn token(st: &Mutex<State>, req: &Req) -> Resp {
    let Some((user, pass)) = lock(st).token_auth.clone() else {
        return json_resp(404, "UNSUPPORTED", "no token auth");
    };
    if req.method != hyper::Method::GET {
        // A GET-only token server, like many in the wild: clients must fall back from POST.
        return json_resp(405, "UNSUPPORTED", "method not allowed");
    }
    let basic = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    if basic.as_deref() != Some(&format!("{user}:{pass}")) {
        return json_resp(401, "UNAUTHORIZED", "bad credentials");
    }
    let scopes = req.query_all("scope").join(" ");
    let body = serde_json::json!({"token": format!("fake-{user}-{}", scopes.len()), "expires_in": 300});
    response(200, &[("Content-Type", "application/json".into())], full(body.to_string()))
}
