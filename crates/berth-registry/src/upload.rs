//! Blob uploads: HEAD-first skip, cross-repository mount, monolithic PUT (default) and chunked
//! PATCH, with fallbacks between the two and resume of chunked uploads.
//!
//! Contract: the caller supplies a [`BlobSource`] that can be opened again at any offset (retries
//! and resumes re-read it) and the blob's digest and size. The registry verifies the digest on
//! the final PUT; berth does not re-hash the source while uploading.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use berth_types::{Digest, Reference};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncSeekExt as _};
use url::Url;

use crate::auth::repo_scope;
use crate::client::{Client, Host, api_error};
use crate::error::{RegistryError, Result, redact_url};

/// A boxed reader, as returned by [`BlobSource`].
pub type BoxAsyncRead = Pin<Box<dyn AsyncRead + Send>>;

type OpenFn = dyn Fn(u64) -> BoxFuture<'static, io::Result<BoxAsyncRead>> + Send + Sync;

/// Where upload bytes come from: a factory that opens the blob at a byte offset. It is called once
/// per attempt (retries, resumes), so it must return the same bytes every time.
#[derive(Clone)]
pub struct BlobSource {
    open: Arc<OpenFn>,
}

impl std::fmt::Debug for BlobSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobSource").finish_non_exhaustive()
    }
}

impl BlobSource {
    /// A file on disk, opened and seeked for each attempt.
    pub fn file(path: impl Into<PathBuf>) -> BlobSource {
        let path: Arc<PathBuf> = Arc::new(path.into());
        BlobSource::from_fn(move |offset| {
            let path = path.clone();
            Box::pin(async move {
                let mut f = tokio::fs::File::open(&*path)
                    .await
                    .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))?;
                if offset > 0 {
                    f.seek(io::SeekFrom::Start(offset)).await?;
                }
                Ok(Box::pin(f) as BoxAsyncRead)
            })
        })
    }

    /// Bytes in memory (small blobs: configs, tests).
    pub fn bytes(data: Bytes) -> BlobSource {
        BlobSource::from_fn(move |offset| {
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
            let part = data.slice(start..);
            Box::pin(async move { Ok(Box::pin(io::Cursor::new(part)) as BoxAsyncRead) })
        })
    }

    /// Any factory: `f(offset)` returns a reader positioned at `offset`.
    pub fn from_fn(
        f: impl Fn(u64) -> BoxFuture<'static, io::Result<BoxAsyncRead>> + Send + Sync + 'static,
    ) -> BlobSource {
        BlobSource { open: Arc::new(f) }
    }

    pub async fn open(&self, offset: u64) -> io::Result<BoxAsyncRead> {
        (self.open)(offset).await
    }
}

/// Options for [`Client::push_blob`].
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Repositories (paths on the same registry) to try mounting from, in order.
    pub mount_from: Vec<String>,
    /// Upload in PATCH chunks instead of one PUT.
    pub chunked: bool,
    /// Chunk size for chunked uploads.
    pub chunk_size: u64,
    /// HEAD the blob first and skip the upload when it exists.
    pub check_exists: bool,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions { mount_from: Vec::new(), chunked: false, chunk_size: 16 << 20, check_exists: true }
    }
}

/// What [`Client::push_blob`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The blob was already in the repository.
    Exists,
    /// Mounted from another repository.
    Mounted { from: String },
    /// Uploaded (in chunks or in one PUT).
    Uploaded { chunked: bool },
}

fn location(resp: &reqwest::Response, host: &str) -> Result<Url> {
    let loc = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| RegistryError::BadResponse {
        method: "POST".into(),
        url: redact_url(resp.url()),
        message: format!("{host}: upload response without a Location header"),
    })?;
    resp.url().join(loc).map_err(|e| RegistryError::BadResponse {
        method: "POST".into(),
        url: redact_url(resp.url()),
        message: format!("invalid upload Location {loc:?}: {e}"),
    })
}

/// The next offset from an upload status `Range: 0-END` header. `0-0` is ambiguous in
/// distribution (nothing or one byte); `confirmed` breaks the tie.
fn range_next_offset(resp: &reqwest::Response, confirmed: u64) -> Option<u64> {
    let v = resp.headers().get("range")?.to_str().ok()?;
    let end: u64 = v.trim().trim_start_matches("bytes=").split('-').nth(1)?.trim().parse().ok()?;
    if end == 0 && confirmed == 0 { Some(0) } else { Some(end + 1) }
}

fn streaming_body(reader: BoxAsyncRead, len: u64) -> reqwest::Body {
    reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(reader.take(len), 256 * 1024))
}

/// Whether a failed monolithic PUT calls for a chunked attempt (and vice versa).
fn calls_for_other_mode(e: &RegistryError) -> bool {
    matches!(e.status(), Some(405 | 413 | 501))
}

impl Client {
    /// Pushes one blob into `repo` (see the module contract and [`PushOptions`]). Transient
    /// failures restart the upload with backoff (a monolithic attempt gets a fresh session; a
    /// chunked one resumes where the registry says it is).
    pub async fn push_blob(
        &self,
        repo: &Reference,
        digest: &Digest,
        size: u64,
        source: &BlobSource,
        opts: &PushOptions,
    ) -> Result<PushOutcome> {
        let host = self.host(repo.registry_host()).await?;
        let mut scopes = vec![repo_scope(repo.path(), "pull,push")];
        for from in &opts.mount_from {
            scopes.push(repo_scope(from, "pull"));
        }
        if opts.check_exists && self.blob_exists(repo, digest).await?.is_some() {
            return Ok(PushOutcome::Exists);
        }
        let uploads = host.url(&format!("v2/{}/blobs/uploads/", repo.path()))?;
        let mut session: Option<Url> = None;
        for from in &opts.mount_from {
            if from == repo.path() {
                continue;
            }
            let mut u = uploads.clone();
            u.query_pairs_mut().append_pair("mount", &digest.to_string()).append_pair("from", from);
            let resp = self.execute(&host, &scopes, Method::POST, &u, &|b| b.header(CONTENT_LENGTH, "0"), true).await?;
            match resp.status().as_u16() {
                201 => return Ok(PushOutcome::Mounted { from: from.clone() }),
                202 => {
                    // Not mountable (no access to `from`, or absent there): the registry opened a
                    // normal upload session; use it.
                    session = Some(location(&resp, &host.name)?);
                    break;
                }
                _ => {
                    let e = api_error(resp, "POST", &host.name).await;
                    tracing::debug!("mount of {digest} from {from} failed: {e}");
                }
            }
        }
        let policy = self.options().retry.clone();
        let mut chunked = opts.chunked;
        let mut switched = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let loc = match session.take() {
                Some(l) => l,
                None => self.start_upload(&host, &scopes, &uploads).await?,
            };
            let r = if chunked {
                self.upload_chunked(&host, &scopes, loc, digest, size, source, opts.chunk_size.max(1)).await
            } else {
                self.upload_monolithic(&host, &scopes, loc, digest, size, source).await
            };
            let err = match r {
                Ok(()) => return Ok(PushOutcome::Uploaded { chunked }),
                Err(e) => e,
            };
            if !switched && calls_for_other_mode(&err) {
                tracing::debug!("{err}; retrying the upload {}", if chunked { "in one PUT" } else { "in chunks" });
                switched = true;
                chunked = !chunked;
                continue;
            }
            if !err.is_retryable() || attempt >= policy.max_attempts {
                return Err(err);
            }
            match policy.delay(attempt, err.retry_after()) {
                Some(d) => tokio::time::sleep(d).await,
                None => return Err(err),
            }
        }
    }

    async fn start_upload(&self, host: &Host, scopes: &[String], uploads: &Url) -> Result<Url> {
        let resp = self.execute(host, scopes, Method::POST, uploads, &|b| b.header(CONTENT_LENGTH, "0"), true).await?;
        if resp.status().as_u16() != 202 {
            let mut e = api_error(resp, "POST", &host.name).await;
            e.subject = Some(format!("starting upload to {}", redact_url(uploads)));
            return Err(RegistryError::Api(Box::new(e)));
        }
        location(&resp, &host.name)
    }

    /// Sends one request whose body is a stream (not rebuildable): a 401 re-auth would find the
    /// body gone, so the error comes back and the caller's retry loop starts over.
    async fn send_stream(
        &self,
        host: &Host,
        scopes: &[String],
        method: Method,
        url: &Url,
        body: reqwest::Body,
        headers: Vec<(reqwest::header::HeaderName, String)>,
    ) -> Result<reqwest::Response> {
        let slot = Mutex::new(Some(body));
        let prep = move |mut b: reqwest::RequestBuilder| {
            for (k, v) in &headers {
                b = b.header(k.clone(), v.as_str());
            }
            match slot.lock().ok().and_then(|mut s| s.take()) {
                Some(body) => b.body(body),
                None => b.body(Bytes::new()),
            }
        };
        self.execute(host, scopes, method, url, &prep, false).await
    }

    async fn upload_monolithic(
        &self,
        host: &Host,
        scopes: &[String],
        loc: Url,
        digest: &Digest,
        size: u64,
        source: &BlobSource,
    ) -> Result<()> {
        let mut put = loc;
        put.query_pairs_mut().append_pair("digest", &digest.to_string());
        let reader = source
            .open(0)
            .await
            .map_err(|e| RegistryError::Io { context: format!("reading blob {digest}"), source: e })?;
        let headers = vec![(CONTENT_LENGTH, size.to_string()), (CONTENT_TYPE, "application/octet-stream".to_string())];
        let resp = self.send_stream(host, scopes, Method::PUT, &put, streaming_body(reader, size), headers).await?;
        if !resp.status().is_success() {
            let mut e = api_error(resp, "PUT", &host.name).await;
            e.subject = Some(format!("uploading blob {digest}"));
            return Err(RegistryError::Api(Box::new(e)));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload_chunked(
        &self,
        host: &Host,
        scopes: &[String],
        mut loc: Url,
        digest: &Digest,
        size: u64,
        source: &BlobSource,
        chunk_size: u64,
    ) -> Result<()> {
        let policy = self.options().retry.clone();
        let mut offset = 0u64;
        let mut failures = 0u32;
        while offset < size {
            let n = chunk_size.min(size - offset);
            let reader = source
                .open(offset)
                .await
                .map_err(|e| RegistryError::Io { context: format!("reading blob {digest}"), source: e })?;
            let headers = vec![
                (CONTENT_LENGTH, n.to_string()),
                (CONTENT_RANGE, format!("{}-{}", offset, offset + n - 1)),
                (CONTENT_TYPE, "application/octet-stream".to_string()),
            ];
            let r = self.send_stream(host, scopes, Method::PATCH, &loc, streaming_body(reader, n), headers).await;
            let err = match r {
                Ok(resp) if resp.status().as_u16() == 202 => {
                    let next = range_next_offset(&resp, offset + n).unwrap_or(offset + n);
                    loc = location(&resp, &host.name)?;
                    if next != offset + n {
                        tracing::debug!("registry reports {next} bytes after a chunk ending at {}", offset + n);
                    }
                    offset = next;
                    failures = 0;
                    continue;
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let mut e = api_error(resp, "PATCH", &host.name).await;
                    e.subject = Some(format!("uploading blob {digest} (chunk at {offset})"));
                    let e = RegistryError::Api(Box::new(e));
                    if status != 416 && !e.is_retryable() {
                        return Err(e);
                    }
                    e
                }
                Err(e) if e.is_retryable() => e,
                Err(e) => return Err(e),
            };
            failures += 1;
            if failures >= policy.max_attempts {
                return Err(err);
            }
            if let Some(d) = policy.delay(failures, err.retry_after()) {
                tokio::time::sleep(d).await;
            }
            // Ask the registry where the upload stands and continue from there.
            let resp = self.execute(host, scopes, Method::GET, &loc, &|b| b, true).await?;
            if resp.status().as_u16() != 204 {
                // The session is gone: let the caller start a new one.
                return Err(err);
            }
            offset = range_next_offset(&resp, offset).unwrap_or(0).min(size);
            if let Ok(l) = location(&resp, &host.name) {
                loc = l;
            }
            tracing::debug!("{err}; resuming chunked upload of {digest} at byte {offset}");
        }
        let mut put = loc;
        put.query_pairs_mut().append_pair("digest", &digest.to_string());
        let resp = self.execute(host, scopes, Method::PUT, &put, &|b| b.header(CONTENT_LENGTH, "0"), true).await?;
        if !resp.status().is_success() {
            let mut e = api_error(resp, "PUT", &host.name).await;
            e.subject = Some(format!("completing upload of blob {digest}"));
            return Err(RegistryError::Api(Box::new(e)));
        }
        Ok(())
    }
}
