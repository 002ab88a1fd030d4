//! Credentials and the Docker token flow.
//!
//! * Anonymous, `Basic` (credentials on every request) and `Bearer` (token server) challenges.
//! * Token requests follow docker/distribution's client: with an identity token (OAuth2 refresh
//!   token) → `POST realm` form `grant_type=refresh_token`; otherwise `GET realm?service=&scope=…`
//!   with Basic credentials when we have them. `login` uses `POST grant_type=password` with
//!   `access_type=offline` first and falls back to `GET …&offline_token=true` when the token
//!   server does not support the POST flow (404/405/400), as Docker does.
//! * Tokens are cached per (registry, sorted scope set) until shortly before they expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_config::AuthEntry;
use serde::Deserialize;

use crate::error::{ApiError, Diagnostic, RegistryError, Result, redact_url};

/// Where the registry client gets credentials for a host. Implementations may block (credential
/// helpers run processes); the client calls them from `spawn_blocking`.
pub trait CredentialProvider: Send + Sync + 'static {
    /// Credentials for registry `host` (`registry-1.docker.io`, `localhost:5000`), or `None`.
    fn get(&self, host: &str) -> std::result::Result<Option<AuthEntry>, berth_config::ConfigError>;
}

impl CredentialProvider for berth_config::Keychain {
    fn get(&self, host: &str) -> std::result::Result<Option<AuthEntry>, berth_config::ConfigError> {
        berth_config::Keychain::get(self, host, None)
    }
}

/// No credentials: anonymous access everywhere.
#[derive(Debug, Default, Clone)]
pub struct Anonymous;

impl CredentialProvider for Anonymous {
    fn get(&self, _: &str) -> std::result::Result<Option<AuthEntry>, berth_config::ConfigError> {
        Ok(None)
    }
}

/// Fixed credentials per host (tests, `--username/--password` style callers).
#[derive(Debug, Default, Clone)]
pub struct StaticCredentials(pub HashMap<String, AuthEntry>);

impl StaticCredentials {
    pub fn with(mut self, host: &str, entry: AuthEntry) -> StaticCredentials {
        self.0.insert(host.to_string(), entry);
        self
    }
}

impl CredentialProvider for StaticCredentials {
    fn get(&self, host: &str) -> std::result::Result<Option<AuthEntry>, berth_config::ConfigError> {
        Ok(self.0.get(host).cloned())
    }
}

/// The scheme a registry asked for in its `/v2/` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthScheme {
    None,
    Basic,
    Bearer { realm: String, service: Option<String> },
}

impl AuthScheme {
    pub(crate) fn from_challenges(ch: &[crate::challenge::Challenge]) -> AuthScheme {
        if let Some(b) = ch.iter().find(|c| c.scheme == "bearer")
            && let Some(realm) = b.param("realm")
        {
            return AuthScheme::Bearer { realm: realm.to_string(), service: b.param("service").map(str::to_string) };
        }
        if ch.iter().any(|c| c.scheme == "basic") {
            return AuthScheme::Basic;
        }
        AuthScheme::None
    }
}

/// A repository scope string: `repository:NAME:pull` etc.
pub fn repo_scope(repository: &str, actions: &str) -> String {
    format!("repository:{repository}:{actions}")
}

/// The catalog scope.
pub const CATALOG_SCOPE: &str = "registry:catalog:*";

#[derive(Debug, Clone)]
struct CachedToken {
    token: String,
    expires: Instant,
}

/// What a token endpoint answered.
#[derive(Debug, Clone, Default)]
pub struct TokenResponse {
    pub token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Duration,
}

#[derive(Deserialize)]
struct RawToken {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Token cache shared by all hosts of one client. Thread safe.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    map: Mutex<HashMap<(String, String), CachedToken>>,
}

impl TokenCache {
    pub(crate) fn key(scopes: &[String]) -> String {
        let mut s: Vec<&str> = scopes.iter().map(String::as_str).collect();
        s.sort_unstable();
        s.dedup();
        s.join(" ")
    }

    pub(crate) fn get(&self, host: &str, scopes: &[String]) -> Option<String> {
        let map = self.map.lock().ok()?;
        let t = map.get(&(host.to_string(), Self::key(scopes)))?;
        (t.expires > Instant::now()).then(|| t.token.clone())
    }

    pub(crate) fn put(&self, host: &str, scopes: &[String], token: &str, expires_in: Duration) {
        // Renew a little early so a token never expires in flight; never cache for < 1 s.
        let margin = (expires_in / 10).min(Duration::from_secs(30));
        let life = expires_in.saturating_sub(margin).max(Duration::from_secs(1));
        if let Ok(mut map) = self.map.lock() {
            map.insert(
                (host.to_string(), Self::key(scopes)),
                CachedToken { token: token.into(), expires: Instant::now() + life },
            );
        }
    }

    pub(crate) fn forget(&self, host: &str, scopes: &[String]) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&(host.to_string(), Self::key(scopes)));
        }
    }
}

/// How to ask the token server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenMode {
    /// Normal request: refresh-token POST if we have an identity token, else GET.
    Normal,
    /// `login`: ask for a refresh token (POST password grant, then GET offline_token).
    Login,
}

pub(crate) const CLIENT_ID: &str = "berth";

/// Fetches a token from `realm`. `http` is a client suited to the realm's host.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    registry_host: &str,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    creds: Option<&AuthEntry>,
    mode: TokenMode,
) -> Result<TokenResponse> {
    let realm_url = url::Url::parse(realm).map_err(|e| RegistryError::Token {
        host: registry_host.to_string(),
        message: format!("invalid token realm {realm:?}: {e}"),
    })?;
    if let Some(c) = creds {
        if let Some(rt) = &c.registry_token {
            // A registry token is a bearer token to use as is (Docker's `registrytoken`).
            return Ok(TokenResponse { token: rt.clone(), refresh_token: None, expires_in: Duration::from_secs(60) });
        }
        if let Some(refresh) = &c.identity_token {
            return post_token(
                http,
                registry_host,
                &realm_url,
                service,
                scopes,
                &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
            )
            .await;
        }
        if mode == TokenMode::Login {
            let r = post_token(
                http,
                registry_host,
                &realm_url,
                service,
                scopes,
                &[
                    ("grant_type", "password"),
                    ("username", &c.username),
                    ("password", &c.password),
                    ("access_type", "offline"),
                ],
            )
            .await;
            match &r {
                // Token servers without the OAuth2 POST flow: fall back to GET, as Docker does.
                Err(RegistryError::Api(a)) if matches!(a.status, 400 | 404 | 405) => {}
                _ => return r,
            }
        }
    }
    get_token(http, registry_host, &realm_url, service, scopes, creds, mode == TokenMode::Login).await
}

async fn get_token(
    http: &reqwest::Client,
    registry_host: &str,
    realm: &url::Url,
    service: Option<&str>,
    scopes: &[String],
    creds: Option<&AuthEntry>,
    offline: bool,
) -> Result<TokenResponse> {
    let mut u = realm.clone();
    {
        let mut q = u.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        for s in scopes {
            q.append_pair("scope", s);
        }
        if offline {
            q.append_pair("offline_token", "true");
            q.append_pair("client_id", CLIENT_ID);
        }
    }
    let mut req = http.get(u.clone());
    if let Some(c) = creds.filter(|c| !c.username.is_empty() || !c.password.is_empty()) {
        req = req.basic_auth(&c.username, Some(&c.password));
    }
    let resp = req.send().await.map_err(|e| crate::client::transport_error("GET", &u, registry_host, e))?;
    parse_token_response(resp, "GET", &u, registry_host).await
}

async fn post_token(
    http: &reqwest::Client,
    registry_host: &str,
    realm: &url::Url,
    service: Option<&str>,
    scopes: &[String],
    extra: &[(&str, &str)],
) -> Result<TokenResponse> {
    let scope = scopes.join(" ");
    let mut form: Vec<(&str, &str)> = vec![("client_id", CLIENT_ID)];
    if let Some(s) = service {
        form.push(("service", s));
    }
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    form.extend_from_slice(extra);
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let resp = http
        .post(realm.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| crate::client::transport_error("POST", realm, registry_host, e))?;
    parse_token_response(resp, "POST", realm, registry_host).await
}

async fn parse_token_response(
    resp: reqwest::Response,
    method: &str,
    u: &url::Url,
    host: &str,
) -> Result<TokenResponse> {
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        let mut e = crate::client::api_error(resp, method, host).await;
        e.url = redact_url(u);
        e.subject = Some(format!("fetching token from {}", redact_url(u)));
        return Err(RegistryError::Api(Box::new(e)));
    }
    let body = crate::client::read_limited(resp, 1 << 20, method, u).await?;
    let raw: RawToken = serde_json::from_slice(&body).map_err(|e| RegistryError::Token {
        host: host.to_string(),
        message: format!("token server {} answered invalid JSON: {e}", redact_url(u)),
    })?;
    let token = if raw.access_token.is_empty() { raw.token } else { raw.access_token };
    if token.is_empty() {
        return Err(RegistryError::Token {
            host: host.to_string(),
            message: format!("token server {} answered without a token", redact_url(u)),
        });
    }
    // The spec's default is 60 s when expires_in is missing or too small.
    let secs = raw.expires_in.unwrap_or(60).max(60);
    Ok(TokenResponse {
        token,
        refresh_token: raw.refresh_token.filter(|t| !t.is_empty()),
        expires_in: Duration::from_secs(secs),
    })
}

/// Unauthorized error for `host` with Docker's wording.
pub(crate) fn unauthorized(host: &str, method: &str, url: &url::Url, errors: Vec<Diagnostic>) -> RegistryError {
    RegistryError::Api(Box::new(ApiError {
        status: 401,
        method: method.to_string(),
        url: redact_url(url),
        host: host.to_string(),
        errors,
        retry_after: None,
        subject: None,
    }))
}

/// Shared handle type for credentials.
pub type SharedCredentials = Arc<dyn CredentialProvider>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_choice_and_cache() {
        let ch = crate::challenge::parse(r#"Basic realm="x", Bearer realm="https://a/t",service="s""#);
        assert_eq!(
            AuthScheme::from_challenges(&ch),
            AuthScheme::Bearer { realm: "https://a/t".into(), service: Some("s".into()) }
        );
        assert_eq!(AuthScheme::from_challenges(&crate::challenge::parse("Basic realm=x")), AuthScheme::Basic);
        assert_eq!(AuthScheme::from_challenges(&[]), AuthScheme::None);
        let c = TokenCache::default();
        let a = vec!["repository:a:pull".to_string(), "repository:b:pull,push".to_string()];
        let b = vec!["repository:b:pull,push".to_string(), "repository:a:pull".to_string()];
        c.put("h", &a, "tok", Duration::from_secs(300));
        assert_eq!(c.get("h", &b).as_deref(), Some("tok"));
        assert_eq!(c.get("other", &b), None);
        c.forget("h", &a);
        assert_eq!(c.get("h", &b), None);
    }
}
