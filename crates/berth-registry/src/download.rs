//! Plain HTTP(S) downloads for `ADD <URL>` and `import URL`, through the same connection
//! settings as registry traffic: environment proxies (never for loopback), certs.d roots and
//! client certificates, `insecure-registries` (HTTPS without verification for such hosts) and the
//! redirect policy (no HTTPS → HTTP downgrade unless the target is insecure). No credentials are
//! ever attached: the URL is not a registry.

use std::io::{Seek as _, Write as _};
use std::time::SystemTime;

use reqwest::header::{CONTENT_LENGTH, ETAG, LAST_MODIFIED};
use url::Url;

use crate::client::{Client, api_error, host_port, transport_error};
use crate::error::{RegistryError, Result, redact_url};

/// What a download produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// Bytes written.
    pub size: u64,
    /// The response's `Last-Modified`, when it had a valid one.
    pub last_modified: Option<SystemTime>,
    pub etag: Option<String>,
    /// The URL after redirects.
    pub final_url: String,
}

impl Client {
    /// Downloads `url` (http or https) into `out` from its start, streaming, and fails once more
    /// than `limit` bytes arrive (or are announced). Transport failures and retryable statuses
    /// are retried from the beginning (the file is truncated first). The response body is never
    /// decompressed.
    pub async fn download(&self, url: &str, out: &mut std::fs::File, limit: u64) -> Result<Downloaded> {
        let u = Url::parse(url).map_err(|e| RegistryError::Other(format!("invalid URL {url:?}: {e}")))?;
        if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
            return Err(RegistryError::Other(format!("unsupported URL {}: only http and https", redact_url(&u))));
        }
        let host = host_port(&u);
        let http = self.build_http(&host, u.scheme() == "https" && self.is_insecure(&host))?;
        let policy = self.options().retry.clone();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let err = match self.download_once(&http, &u, &host, out, limit).await {
                Ok(d) => return Ok(d),
                Err(e) => e,
            };
            if !err.is_retryable() || attempt >= policy.max_attempts {
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

    async fn download_once(
        &self,
        http: &reqwest::Client,
        u: &Url,
        host: &str,
        out: &mut std::fs::File,
        limit: u64,
    ) -> Result<Downloaded> {
        let io = |e: std::io::Error| RegistryError::Io {
            context: format!("writing the download of {}", redact_url(u)),
            source: e,
        };
        out.set_len(0).map_err(io)?;
        out.rewind().map_err(io)?;
        let mut resp = http.get(u.clone()).send().await.map_err(|e| transport_error("GET", u, host, e))?;
        let status = resp.status().as_u16();
        if matches!(status, 408 | 429 | 500 | 502 | 503 | 504) {
            // Retryable: keep the API error (with Retry-After) for the retry loop.
            return Err(RegistryError::Api(Box::new(api_error(resp, "GET", host).await)));
        }
        if !resp.status().is_success() {
            // BuildKit's wording for a failed HTTP source.
            return Err(RegistryError::BadResponse {
                method: "GET".into(),
                url: redact_url(u),
                message: format!("invalid response status {status}"),
            });
        }
        let too_large = || RegistryError::DownloadTooLarge { url: redact_url(u), limit };
        let announced = resp.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if announced.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let header = |name| resp.headers().get(name).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok());
        let last_modified = header(LAST_MODIFIED).and_then(|v| httpdate::parse_http_date(v).ok());
        let etag = header(ETAG).map(str::to_string);
        let final_url = redact_url(resp.url());
        let mut size = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error("GET", u, host, e))? {
            size += chunk.len() as u64;
            if size > limit {
                return Err(too_large());
            }
            out.write_all(&chunk).map_err(io)?;
        }
        if let Some(n) = announced
            && n != size
        {
            return Err(RegistryError::SizeMismatch { what: redact_url(u), expected: n, actual: size });
        }
        out.flush().map_err(io)?;
        Ok(Downloaded { size, last_modified, etag, final_url })
    }
}

/// Seconds since the epoch of `t` (negative before 1970), for setting a file's mtime.
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}
