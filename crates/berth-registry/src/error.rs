//! The registry error type: the distribution spec's error body plus HTTP context, with
//! Docker-like messages and hints.

use std::fmt;
use std::time::Duration;

use berth_types::Digest;

/// One entry of the spec's `{"errors": [{code, message, detail}]}` body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Diagnostic {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

impl fmt::Display for Diagnostic {
    /// Docker's errcode rendering: `manifest unknown: <message>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code.to_lowercase().replace('_', " ");
        match (code.is_empty(), self.message.is_empty()) {
            (true, true) => f.write_str("unknown error"),
            (true, false) => f.write_str(&self.message),
            (false, true) => f.write_str(&code),
            (false, false) => write!(f, "{code}: {}", self.message),
        }
    }
}

/// Well-known error codes (distribution spec and Docker Hub).
pub mod code {
    pub const BLOB_UNKNOWN: &str = "BLOB_UNKNOWN";
    pub const BLOB_UPLOAD_INVALID: &str = "BLOB_UPLOAD_INVALID";
    pub const BLOB_UPLOAD_UNKNOWN: &str = "BLOB_UPLOAD_UNKNOWN";
    pub const DIGEST_INVALID: &str = "DIGEST_INVALID";
    pub const MANIFEST_BLOB_UNKNOWN: &str = "MANIFEST_BLOB_UNKNOWN";
    pub const MANIFEST_INVALID: &str = "MANIFEST_INVALID";
    pub const MANIFEST_UNKNOWN: &str = "MANIFEST_UNKNOWN";
    pub const NAME_INVALID: &str = "NAME_INVALID";
    pub const NAME_UNKNOWN: &str = "NAME_UNKNOWN";
    pub const SIZE_INVALID: &str = "SIZE_INVALID";
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    pub const DENIED: &str = "DENIED";
    pub const UNSUPPORTED: &str = "UNSUPPORTED";
    pub const TOOMANYREQUESTS: &str = "TOOMANYREQUESTS";
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
}

/// An HTTP error response from a registry or token server.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub method: String,
    /// The request URL with credentials and opaque query values removed.
    pub url: String,
    /// The registry host (`localhost:5000`), for hints.
    pub host: String,
    pub errors: Vec<Diagnostic>,
    /// `Retry-After` (or Docker Hub's `ratelimit-reset`) turned into a delay.
    pub retry_after: Option<Duration>,
    /// What was being fetched, when a friendlier message exists (`manifest for x:y`).
    pub subject: Option<String>,
}

impl ApiError {
    pub fn has_code(&self, code: &str) -> bool {
        self.errors.iter().any(|d| d.code.eq_ignore_ascii_case(code))
    }

    fn diagnostics(&self) -> String {
        if self.errors.is_empty() {
            return match self.status {
                401 => "unauthorized: authentication required".into(),
                403 => "denied: requested access to the resource is denied".into(),
                404 => "not found".into(),
                429 => "toomanyrequests: too many requests".into(),
                s => format!("unexpected status code {s} {}", reason(s)),
            };
        }
        self.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    }
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let diags = self.diagnostics();
        match (self.status, &self.subject) {
            (404, Some(s)) if s.starts_with("manifest for ") => write!(f, "{s} not found: {diags}")?,
            (_, Some(s)) => write!(f, "{s}: {diags}")?,
            (_, None) => write!(f, "{} {}: {diags}", self.method, self.url)?,
        }
        if self.status == 429
            && let Some(d) = self.retry_after
        {
            write!(f, " (limit resets in {}s)", d.as_secs().max(1))?;
        }
        if self.status == 401 || self.has_code(code::UNAUTHORIZED) {
            write!(f, "; hint: run 'berth login {}'", self.host)?;
        }
        Ok(())
    }
}

/// Everything the registry client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Api(Box<ApiError>),
    #[error("{host}: {message}{}", hint.as_ref().map(|h| format!("; hint: {h}")).unwrap_or_default())]
    Connect {
        host: String,
        url: String,
        message: String,
        hint: Option<String>,
        #[source]
        source: reqwest::Error,
    },
    #[error("{method} {url}: {message}")]
    Http {
        method: String,
        url: String,
        message: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { what: String, expected: Digest, actual: Digest },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch { what: String, expected: u64, actual: u64 },
    #[error("manifest {reference} is larger than the {limit}-byte limit")]
    ManifestTooLarge { reference: String, limit: u64 },
    #[error("manifest {reference}: {source}")]
    Manifest {
        reference: String,
        #[source]
        source: berth_types::ManifestError,
    },
    #[error("{host}: {message}")]
    Token { host: String, message: String },
    #[error("{method} {url}: {message}")]
    BadResponse { method: String, url: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] berth_config::ConfigError),
    #[error("{host}: {message}")]
    Tls { host: String, message: String },
    /// A request the registry (or its token service) pointed at plain HTTP although the host is
    /// not configured insecure: credentials or content would travel in clear text.
    #[error(
        "{host}: refusing {what} {url} over plain HTTP; hint: add the host to insecure-registries (registries.conf `insecure = true`) if that is intended"
    )]
    Downgrade { host: String, what: String, url: String },
    #[error("{url}: the download is larger than the {limit}-byte limit")]
    DownloadTooLarge { url: String, limit: u64 },
    #[error("{0}")]
    Other(String),
}

impl RegistryError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Api(a) => Some(a.status),
            _ => None,
        }
    }

    pub fn api(&self) -> Option<&ApiError> {
        match self {
            RegistryError::Api(a) => Some(a),
            _ => None,
        }
    }

    /// Whether retrying the same request may succeed: 408/429/5xx (except 501), the
    /// `TOOMANYREQUESTS`/`UNAVAILABLE` codes, and transport failures (timeouts, resets, refused
    /// connections). Digest and size mismatches are not retryable at this level.
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Api(a) => {
                matches!(a.status, 408 | 429 | 500 | 502 | 503 | 504)
                    || a.has_code(code::TOOMANYREQUESTS)
                    || a.has_code(code::UNAVAILABLE)
            }
            RegistryError::Connect { source, .. } | RegistryError::Http { source, .. } => transport_retryable(source),
            RegistryError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }

    /// The delay the server asked for, if any.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.api().and_then(|a| a.retry_after)
    }

    /// Converts into an `io::Error` that keeps this error inside (recover it with
    /// [`RegistryError::from_io`]).
    pub fn into_io(self) -> std::io::Error {
        let kind = match &self {
            RegistryError::DigestMismatch { .. } | RegistryError::SizeMismatch { .. } => {
                std::io::ErrorKind::InvalidData
            }
            RegistryError::Io { source, .. } => source.kind(),
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, self)
    }

    /// The `RegistryError` inside an `io::Error` made by [`RegistryError::into_io`].
    pub fn from_io(e: &std::io::Error) -> Option<&RegistryError> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<RegistryError>())
    }
}

pub(crate) fn transport_retryable(e: &reqwest::Error) -> bool {
    e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() || e.is_decode()
}

/// Removes user info and opaque query values (upload state, signatures) from a URL for messages.
pub fn redact_url(u: &url::Url) -> String {
    let mut u = u.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if u.query().is_some() {
        let keep = ["digest", "mount", "from", "n", "last", "q", "scope", "service"];
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if keep.contains(&k.as_ref()) { v.into_owned() } else { "REDACTED".to_string() };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, errors: Vec<Diagnostic>, subject: Option<&str>) -> ApiError {
        ApiError {
            status,
            method: "GET".into(),
            url: "http://h:5000/v2/x/manifests/y".into(),
            host: "h:5000".into(),
            errors,
            retry_after: None,
            subject: subject.map(str::to_string),
        }
    }

    #[test]
    fn docker_like_messages() {
        let d = Diagnostic { code: "MANIFEST_UNKNOWN".into(), message: "manifest unknown".into(), detail: None };
        let e = api(404, vec![d], Some("manifest for h:5000/x:y"));
        assert_eq!(e.to_string(), "manifest for h:5000/x:y not found: manifest unknown: manifest unknown");
        let e = api(401, vec![], None);
        assert_eq!(
            e.to_string(),
            "GET http://h:5000/v2/x/manifests/y: unauthorized: authentication required; hint: run 'berth login h:5000'"
        );
        let mut e = api(429, vec![], Some("pulling x"));
        e.retry_after = Some(Duration::from_secs(30));
        assert_eq!(e.to_string(), "pulling x: toomanyrequests: too many requests (limit resets in 30s)");
        assert!(RegistryError::Api(Box::new(e)).is_retryable());
        assert_eq!(
            api(500, vec![], None).to_string(),
            "GET http://h:5000/v2/x/manifests/y: unexpected status code 500 Internal Server Error"
        );
        assert!(!RegistryError::Api(Box::new(api(404, vec![], None))).is_retryable());
        assert!(!RegistryError::Api(Box::new(api(501, vec![], None))).is_retryable());
    }

    #[test]
    fn redaction() {
        let u = url::Url::parse("https://u:p@h/v2/x/blobs/uploads/abc?_state=SECRET&digest=sha256:1").unwrap();
        let r = redact_url(&u);
        assert!(!r.contains("SECRET") && !r.contains("u:p"), "{r}");
        assert!(r.contains("digest=sha256"), "{r}");
    }
}
