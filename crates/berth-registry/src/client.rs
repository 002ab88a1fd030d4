//! The registry client: per-host connection settings, `/v2/` ping and scheme choice, and
//! authenticated, retried request execution. Operations live in `manifest`, `blob`, `upload`
//! and `catalog`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_config::{AuthEntry, CertsDirs, RegistriesConfig};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response};
use tokio::sync::OnceCell;
use url::Url;

use crate::auth::{self, AuthScheme, CredentialProvider, TokenCache, TokenMode};
use crate::challenge;
use crate::error::{ApiError, Diagnostic, RegistryError, Result, redact_url};
use crate::retry::RetryPolicy;

/// Settings for a [`Client`]. `Default` gives anonymous access, no registry configuration and
/// the certs.d roots from the environment.
#[derive(Clone)]
pub struct ClientOptions {
    pub user_agent: String,
    pub credentials: Arc<dyn CredentialProvider>,
    pub registries: Arc<RegistriesConfig>,
    pub certs: CertsDirs,
    pub connect_timeout: Duration,
    /// Idle time allowed between two reads of a response body (not a total timeout: multi-GB
    /// layers must be able to take as long as they need).
    pub read_timeout: Duration,
    pub retry: RetryPolicy,
    /// Treat loopback registries as insecure (HTTPS without verification, then HTTP), as Docker
    /// does. Tests of certificate verification turn it off.
    pub insecure_loopback: bool,
    /// Docker Hub's search endpoint (overridable for tests).
    pub hub_search_url: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            credentials: Arc::new(auth::Anonymous),
            registries: Arc::new(RegistriesConfig::default()),
            certs: CertsDirs::from_env(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            insecure_loopback: true,
            hub_search_url: "https://index.docker.io/v1/search".into(),
        }
    }
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("user_agent", &self.user_agent)
            .field("certs", &self.certs)
            .field("read_timeout", &self.read_timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// A registry host after the `/v2/` ping.
#[derive(Debug)]
pub(crate) struct Host {
    /// `host[:port]` as in references.
    pub name: String,
    /// `scheme://host[:port]/`.
    pub base: Url,
    pub http: reqwest::Client,
    pub auth: AuthScheme,
}

impl Host {
    pub(crate) fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path)
            .map_err(|e| RegistryError::Other(format!("{}: invalid request path {path:?}: {e}", self.name)))
    }
}

/// Facts from a `/v2/` ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingInfo {
    /// `https` or `http`.
    pub scheme: String,
    pub auth: AuthScheme,
}

/// What a successful [`Client::login`] learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginOutcome {
    /// A refresh token to store as `identitytoken` instead of the password, when the token
    /// server issued one.
    pub identity_token: Option<String>,
}

struct Inner {
    opts: ClientOptions,
    tokens: TokenCache,
    hosts: Mutex<HashMap<String, Arc<OnceCell<Arc<Host>>>>>,
    realm_clients: Mutex<HashMap<String, reqwest::Client>>,
}

/// An OCI distribution client. Cheap to clone (an `Arc` inside), `Send + Sync`; clones share the
/// connection pools, the ping results and the token cache. Every method may be called
/// concurrently; limiting parallelism is the caller's job (see [`crate::Limiter`]).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("opts", &self.inner.opts).finish_non_exhaustive()
    }
}

pub(crate) fn is_loopback(host: &str) -> bool {
    berth_config::registries::is_loopback_host(host)
}

/// `host[:port]` of a URL as registry configuration names hosts.
pub(crate) fn host_port(u: &Url) -> String {
    let h = u.host_str().unwrap_or_default();
    match u.port() {
        Some(p) => format!("{h}:{p}"),
        None => h.to_string(),
    }
}

/// Whether `a` and `b` are the same origin (scheme, host and port): the only case in which a
/// registry's credentials may be sent to `b`.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// Whether `host` may be reached over plain HTTP under `opts` (see [`Client::is_insecure`]).
fn insecure_under(opts: &ClientOptions, host: &str) -> bool {
    if is_loopback(host) {
        opts.insecure_loopback || opts.registries.is_insecure_configured(host)
    } else {
        opts.registries.is_insecure(host)
    }
}

/// The redirect policy of every registry connection: at most 10 hops (reqwest's default), and
/// never from HTTPS to plain HTTP unless the target host is configured insecure. reqwest itself
/// drops `Authorization` on every hop that changes scheme, host or port.
fn redirect_policy(opts: &ClientOptions) -> reqwest::redirect::Policy {
    let opts = opts.clone();
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > 10 {
            return attempt.error("too many redirects");
        }
        let downgrade = attempt.url().scheme() == "http"
            && attempt.previous().last().is_some_and(|p| p.scheme() == "https")
            && !insecure_under(&opts, &host_port(attempt.url()));
        if downgrade {
            let msg = format!("refusing a redirect from HTTPS to plain HTTP ({})", redact_url(attempt.url()));
            return attempt.error(msg);
        }
        attempt.follow()
    })
}

/// Deepest message of an error chain, which is where reqwest/hyper/rustls put the useful part.
fn root_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    let mut msg = cur.to_string();
    while let Some(next) = cur.source() {
        cur = next;
        msg = cur.to_string();
    }
    msg
}

/// Turns a reqwest failure into a [`RegistryError`] with a hint where we know the fix.
pub(crate) fn transport_error(method: &str, url: &Url, host: &str, e: reqwest::Error) -> RegistryError {
    let root = root_message(&e);
    let lower = root.to_lowercase();
    let is_https = url.scheme() == "https";
    if e.is_connect()
        || (is_https && (lower.contains("tls") || lower.contains("certificate") || lower.contains("handshake")))
    {
        let (message, hint) = if is_https && (lower.contains("invalidcontenttype") || lower.contains("corrupt message"))
        {
            (
                "server gave HTTP response to HTTPS client".to_string(),
                Some(format!(
                    "if {host} is a plain-HTTP registry, add it to \"insecure-registries\" in \
                     ~/.config/berth/registries.json or /etc/berth/registries.json (see docs/registries.md)"
                )),
            )
        } else if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("unknown issuer") {
            (
                format!("x509: certificate verification failed: {root}"),
                Some(format!(
                    "put the registry's CA certificate in /etc/docker/certs.d/{host}/ca.crt, or add {host} to \
                     \"insecure-registries\" (see docs/registries.md)"
                )),
            )
        } else if lower.contains("connection refused") {
            (format!("connection refused (is a registry listening at {host}?)"), None)
        } else {
            (format!("cannot connect: {root}"), None)
        };
        return RegistryError::Connect { host: host.to_string(), url: redact_url(url), message, hint, source: e };
    }
    let message = if e.is_timeout() { format!("timed out: {root}") } else { root };
    RegistryError::Http { method: method.to_string(), url: redact_url(url), message, source: e }
}

/// Parses `Retry-After` (seconds) or Docker Hub's `ratelimit-reset` (epoch seconds).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let num = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse::<u64>().ok());
    if let Some(s) = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(s));
    }
    let reset = num("ratelimit-reset").or_else(|| num("x-ratelimit-reset"))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(if reset > 1_000_000_000 { reset.saturating_sub(now) } else { reset }))
}

/// Builds an [`ApiError`] from an error response, reading at most 64 KiB of its body.
pub(crate) async fn api_error(resp: Response, method: &str, host: &str) -> ApiError {
    let status = resp.status().as_u16();
    let url = redact_url(resp.url());
    let retry_after = retry_after(resp.headers());
    let u = resp.url().clone();
    // HEAD responses have no body; an unreadable body still leaves a useful status error.
    let body = if method == "HEAD" {
        Bytes::new()
    } else {
        read_limited(resp, 64 * 1024, method, &u).await.unwrap_or_default()
    };
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Diagnostic>,
    }
    let errors = serde_json::from_slice::<Body>(&body).map(|b| b.errors).unwrap_or_default();
    ApiError { status, method: method.to_string(), url, host: host.to_string(), errors, retry_after, subject: None }
}

/// Reads a whole (small) body, failing once more than `limit` bytes arrive, whatever the
/// `Content-Length` said.
pub(crate) async fn read_limited(resp: Response, limit: u64, method: &str, url: &Url) -> Result<Bytes> {
    if let Some(len) = resp.content_length()
        && len > limit
    {
        return Err(RegistryError::BadResponse {
            method: method.into(),
            url: redact_url(url),
            message: format!("response of {len} bytes exceeds the {limit}-byte limit"),
        });
    }
    let mut buf = BytesMut::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RegistryError::Http {
            method: method.into(),
            url: redact_url(url),
            message: format!("reading response: {}", root_message(&e)),
            source: e,
        })?;
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(RegistryError::BadResponse {
                method: method.into(),
                url: redact_url(url),
                message: format!("response exceeds the {limit}-byte limit"),
            });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

impl Client {
    pub fn new(opts: ClientOptions) -> Client {
        Client {
            inner: Arc::new(Inner {
                opts,
                tokens: TokenCache::default(),
                hosts: Mutex::new(HashMap::new()),
                realm_clients: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }

    /// Whether `host` may use plain HTTP or unverified TLS.
    pub fn is_insecure(&self, host: &str) -> bool {
        insecure_under(&self.inner.opts, host)
    }

    pub(crate) fn build_http(&self, host: &str, accept_invalid_certs: bool) -> Result<reqwest::Client> {
        let o = &self.inner.opts;
        let tls = o.certs.for_host(host)?;
        let mut b = reqwest::Client::builder()
            .user_agent(o.user_agent.clone())
            .connect_timeout(o.connect_timeout)
            .read_timeout(o.read_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(redirect_policy(o))
            .tcp_nodelay(true);
        if is_loopback(host) {
            // Environment proxies never apply to loopback registries (reqwest does not exempt
            // them by itself; NO_PROXY handles everything else).
            b = b.no_proxy();
        }
        let mut roots = Vec::new();
        for (path, pem) in &tls.ca_roots {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| RegistryError::Tls {
                host: host.to_string(),
                message: format!("invalid CA certificate {}: {e}", path.display()),
            })?;
            roots.extend(certs);
        }
        if !roots.is_empty() {
            b = b.tls_certs_merge(roots);
        }
        if let Some(pair) = &tls.client {
            let mut pem = pair.cert_pem.clone();
            pem.push(b'\n');
            pem.extend_from_slice(&pair.key_pem);
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| RegistryError::Tls {
                host: host.to_string(),
                message: format!(
                    "invalid client certificate {} / key {}: {e}",
                    pair.cert_path.display(),
                    pair.key_path.display()
                ),
            })?;
            b = b.identity(id);
        }
        if accept_invalid_certs {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        b.build()
            .map_err(|e| RegistryError::Tls { host: host.to_string(), message: format!("building HTTP client: {e}") })
    }

    /// Pings `host` (`/v2/`) and picks the scheme: HTTPS with verification for secure hosts;
    /// for insecure hosts HTTPS without verification first, then plain HTTP (Docker's order).
    async fn probe(&self, name: &str) -> Result<Host> {
        // registries.conf `location` remaps a whole registry host (`prefix = "a.example"`,
        // `location = "localhost:5001"`): requests go to the location, credentials and names
        // stay those of `name`.
        let target = self.location_of(name);
        let insecure = self.is_insecure(&target);
        let mut last_err = None;
        for scheme in if insecure { &["https", "http"][..] } else { &["https"][..] } {
            let http = self.build_http(&target, insecure && *scheme == "https")?;
            let base = Url::parse(&format!("{scheme}://{target}/"))
                .map_err(|e| RegistryError::Other(format!("invalid registry host {name:?}: {e}")))?;
            let ping = base.join("v2/").map_err(|e| RegistryError::Other(format!("{name}: {e}")))?;
            match self.ping_once(&http, &ping, name).await {
                Ok(auth) => return Ok(Host { name: name.to_string(), base, http, auth }),
                Err(e) => {
                    tracing::debug!("ping {}: {e}", redact_url(&ping));
                    // Only a transport failure moves on to the next scheme.
                    if !matches!(e, RegistryError::Connect { .. } | RegistryError::Http { .. }) {
                        return Err(e);
                    }
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| RegistryError::Other(format!("{name}: no scheme to try"))))
    }

    async fn ping_once(&self, http: &reqwest::Client, ping: &Url, name: &str) -> Result<AuthScheme> {
        let policy = &self.inner.opts.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = http.get(ping.clone()).send().await;
            let err = match r {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 401 {
                        let ch: Vec<_> = resp
                            .headers()
                            .get_all(WWW_AUTHENTICATE)
                            .iter()
                            .filter_map(|v| v.to_str().ok())
                            .flat_map(challenge::parse)
                            .collect();
                        return Ok(AuthScheme::from_challenges(&ch));
                    }
                    if (200..300).contains(&status) || status == 404 || status == 403 {
                        // 404/403: not a spec registry root, but requests may still work.
                        return Ok(AuthScheme::None);
                    }
                    let e = RegistryError::Api(Box::new(api_error(resp, "GET", name).await));
                    if !e.is_retryable() {
                        return Err(e);
                    }
                    e
                }
                Err(e) => {
                    let e = transport_error("GET", ping, name, e);
                    // A refused connection or TLS mismatch will not fix itself within a retry.
                    if matches!(e, RegistryError::Connect { .. }) {
                        return Err(e);
                    }
                    e
                }
            };
            match policy.delay(attempt, err.retry_after()) {
                Some(d) if attempt < policy.max_attempts && err.is_retryable() => tokio::time::sleep(d).await,
                _ => return Err(err),
            }
        }
    }

    /// Where requests for registry `name` really go (registries.conf `location` of an entry whose
    /// prefix is exactly this host), else `name`.
    fn location_of(&self, name: &str) -> String {
        match self.inner.opts.registries.find(name) {
            Some(e)
                if e.prefix == name && !e.location.is_empty() && e.location != name && !e.location.contains('/') =>
            {
                e.location.clone()
            }
            _ => name.to_string(),
        }
    }

    /// The pinged host, cached for the life of the client.
    pub(crate) async fn host(&self, name: &str) -> Result<Arc<Host>> {
        let cell = {
            let mut map = self.inner.hosts.lock().map_err(|_| RegistryError::Other("host cache poisoned".into()))?;
            map.entry(name.to_string()).or_insert_with(|| Arc::new(OnceCell::new())).clone()
        };
        cell.get_or_try_init(|| async { self.probe(name).await.map(Arc::new) }).await.cloned()
    }

    /// Pings `host` and reports the scheme and auth method in use.
    pub async fn ping(&self, host: &str) -> Result<PingInfo> {
        let h = self.host(host).await?;
        Ok(PingInfo { scheme: h.base.scheme().to_string(), auth: h.auth.clone() })
    }

    pub(crate) async fn credentials(&self, host: &str) -> Result<Option<AuthEntry>> {
        let provider = self.inner.opts.credentials.clone();
        let h = host.to_string();
        tokio::task::spawn_blocking(move || provider.get(&h))
            .await
            .map_err(|e| RegistryError::Other(format!("credential lookup for {host} failed: {e}")))?
            .map_err(RegistryError::Config)
    }

    /// The client for a token realm. A realm over plain HTTP is refused unless its host is
    /// insecure (configured, or loopback when loopback counts as insecure): the token request
    /// carries the registry's credentials.
    fn realm_client(&self, host: &Host, realm: &str) -> Result<reqwest::Client> {
        let Ok(realm_url) = Url::parse(realm) else { return Ok(host.http.clone()) };
        if realm_url.host_str().is_none() {
            return Ok(host.http.clone());
        }
        let rh = host_port(&realm_url);
        if realm_url.scheme() == "http" && !self.is_insecure(&rh) {
            return Err(RegistryError::Downgrade {
                host: host.name.clone(),
                what: "the token service".into(),
                url: redact_url(&realm_url),
            });
        }
        if rh == host.name {
            return Ok(host.http.clone());
        }
        let mut map =
            self.inner.realm_clients.lock().map_err(|_| RegistryError::Other("client cache poisoned".into()))?;
        if let Some(c) = map.get(&rh) {
            return Ok(c.clone());
        }
        let c = self.build_http(&rh, self.is_insecure(&rh))?;
        map.insert(rh, c.clone());
        Ok(c)
    }

    /// A bearer token for `scopes` on `host` (cached).
    pub(crate) async fn token(
        &self,
        host: &Host,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<String> {
        if let Some(t) = self.inner.tokens.get(&host.name, scopes) {
            return Ok(t);
        }
        let creds = self.credentials(&host.name).await?;
        let http = self.realm_client(host, realm)?;
        let t = auth::fetch_token(&http, &host.name, realm, service, scopes, creds.as_ref(), TokenMode::Normal).await?;
        self.inner.tokens.put(&host.name, scopes, &t.token, t.expires_in);
        Ok(t.token)
    }

    /// Adds the `Authorization` header `host` needs for `scopes`.
    pub(crate) async fn authorize(
        &self,
        host: &Host,
        scopes: &[String],
        req: RequestBuilder,
    ) -> Result<RequestBuilder> {
        match &host.auth {
            AuthScheme::None => Ok(req),
            AuthScheme::Basic => Ok(match self.credentials(&host.name).await? {
                Some(c) if !c.username.is_empty() || !c.password.is_empty() => {
                    req.basic_auth(c.username, Some(c.password))
                }
                _ => req,
            }),
            AuthScheme::Bearer { realm, service } => {
                let t = self.token(host, realm, service.as_deref(), scopes).await?;
                Ok(req.header(AUTHORIZATION, format!("Bearer {t}")))
            }
        }
    }

    /// Sends a request built by `prepare`, with auth, a single re-authentication on 401 and, when
    /// `retry` is set, retries of transport failures and retryable statuses. Returns the response
    /// whatever its status, except 401 (an error). `prepare` is called once per attempt, so
    /// bodies must be cheap to rebuild (`Bytes`).
    pub(crate) async fn execute(
        &self,
        host: &Host,
        scopes: &[String],
        method: Method,
        url: &Url,
        prepare: &(dyn Fn(RequestBuilder) -> RequestBuilder + Send + Sync),
        retry: bool,
    ) -> Result<Response> {
        let policy = &self.inner.opts.retry;
        let mut attempt = 0u32;
        let mut reauthed = false;
        // Credentials go only to the registry's own origin: an upload Location or a link on
        // another host (storage, CDN) gets the request without them. Plain HTTP is allowed only
        // where the registry itself is reached over HTTP or the target is insecure.
        let own = same_origin(url, &host.base);
        if url.scheme() == "http" && host.base.scheme() == "https" && !self.is_insecure(&host_port(url)) {
            return Err(RegistryError::Downgrade {
                host: host.name.clone(),
                what: format!("{method}"),
                url: redact_url(url),
            });
        }
        loop {
            attempt += 1;
            let req = prepare(host.http.request(method.clone(), url.clone()));
            let req = if own { self.authorize(host, scopes, req).await? } else { req };
            let err = match req.send().await {
                Err(e) => transport_error(method.as_str(), url, &host.name, e),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 401 {
                        if own && !reauthed && matches!(host.auth, AuthScheme::Bearer { .. }) {
                            // Expired or revoked token: forget it and try once more.
                            reauthed = true;
                            self.inner.tokens.forget(&host.name, scopes);
                            continue;
                        }
                        let e = api_error(resp, method.as_str(), &host.name).await;
                        return Err(auth::unauthorized(&host.name, method.as_str(), url, e.errors));
                    }
                    if !retry || !matches!(status, 408 | 429 | 500 | 502 | 503 | 504) {
                        return Ok(resp);
                    }
                    RegistryError::Api(Box::new(api_error(resp, method.as_str(), &host.name).await))
                }
            };
            if !retry || !err.is_retryable() || attempt >= policy.max_attempts {
                return Err(err);
            }
            match policy.delay(attempt, err.retry_after()) {
                Some(d) => {
                    tracing::debug!("{err}; retrying in {d:?} (attempt {attempt}/{})", policy.max_attempts);
                    tokio::time::sleep(d).await;
                }
                None => return Err(err),
            }
        }
    }

    /// Checks credentials against `host` as `docker login` does and returns an identity token when
    /// the token server issued a refresh token. Nothing is stored: the caller saves the result
    /// with `berth_config::Keychain::store`.
    pub async fn login(&self, host: &str, username: &str, password: &str) -> Result<LoginOutcome> {
        // A fresh ping: the cached one may predate a registry reconfiguration.
        let h = self.probe(host).await?;
        let creds = AuthEntry::basic(username, password);
        let v2 = h.url("v2/")?;
        match &h.auth {
            AuthScheme::None => Ok(LoginOutcome::default()),
            AuthScheme::Basic => {
                let resp = h
                    .http
                    .get(v2.clone())
                    .basic_auth(username, Some(password))
                    .send()
                    .await
                    .map_err(|e| transport_error("GET", &v2, host, e))?;
                check_login(resp, host, &v2).await.map(|_| LoginOutcome::default())
            }
            AuthScheme::Bearer { realm, service } => {
                let http = self.realm_client(&h, realm)?;
                let t = auth::fetch_token(&http, host, realm, service.as_deref(), &[], Some(&creds), TokenMode::Login)
                    .await
                    .map_err(|e| match e {
                        RegistryError::Api(a) if a.status == 401 || a.status == 403 => {
                            auth::unauthorized(host, "GET", &v2, a.errors)
                        }
                        other => other,
                    })?;
                let resp = h
                    .http
                    .get(v2.clone())
                    .header(AUTHORIZATION, format!("Bearer {}", t.token))
                    .send()
                    .await
                    .map_err(|e| transport_error("GET", &v2, host, e))?;
                check_login(resp, host, &v2).await?;
                Ok(LoginOutcome { identity_token: t.refresh_token })
            }
        }
    }
}

async fn check_login(resp: Response, host: &str, v2: &Url) -> Result<()> {
    match resp.status().as_u16() {
        200..=299 => Ok(()),
        401 => {
            let e = api_error(resp, "GET", host).await;
            Err(auth::unauthorized(host, "GET", v2, e.errors))
        }
        _ => Err(RegistryError::Api(Box::new(api_error(resp, "GET", host).await))),
    }
}
