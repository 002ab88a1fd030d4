//! Blob downloads: HEAD, and a verified, resumable streamed GET.
//!
//! Contract of [`BlobReader`] (and [`Client::blob_stream`]):
//! * every byte is hashed; at the end the digest (and the size, when known) is compared with the
//!   descriptor and a mismatch is returned as an **error instead of EOF**, so a consumer never
//!   sees a successful end of a corrupted blob (it must still discard what it wrote);
//! * a dropped connection, a read timeout or a premature end is resumed with
//!   `Range: bytes=N-`; a `206` must carry a `Content-Range` starting at or before `N` (extra
//!   bytes are skipped); a `200` restarts the body and the first `N` bytes are skipped;
//! * 5xx/429 (with `Retry-After`) and timeouts are retried with bounded exponential backoff; the
//!   attempt budget is reset whenever progress was made;
//! * redirects (CDNs) are followed by reqwest, which drops `Authorization` on cross-host hops.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use berth_types::{Digest, Hasher, Reference};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt as _};
use reqwest::Method;
use reqwest::header::{CONTENT_RANGE, RANGE};
use tokio::io::{AsyncRead, AsyncWriteExt as _, ReadBuf};
use url::Url;

use crate::auth::repo_scope;
use crate::client::{Client, Host, api_error, transport_error};
use crate::error::{RegistryError, Result};

/// Hard cap on resumes for one blob, whatever progress is made (a server that drops every few
/// bytes must not keep us busy forever).
const MAX_RESUMES: u32 = 1000;

impl Client {
    /// HEADs a blob: `Ok(Some(size))` when it exists in `repo`, `Ok(None)` on 404.
    pub async fn blob_exists(&self, repo: &Reference, digest: &Digest) -> Result<Option<u64>> {
        let host = self.host(repo.registry_host()).await?;
        let url = host.url(&format!("v2/{}/blobs/{digest}", repo.path()))?;
        let scopes = [repo_scope(repo.path(), "pull")];
        let resp = self.execute(&host, &scopes, Method::HEAD, &url, &|b| b, true).await?;
        match resp.status().as_u16() {
            200..=299 => Ok(Some(resp.content_length().unwrap_or(0))),
            404 => Ok(None),
            _ => {
                let mut e = api_error(resp, "HEAD", &host.name).await;
                e.subject = Some(format!("checking blob {digest} in {}", repo.familiar_repository()));
                Err(RegistryError::Api(Box::new(e)))
            }
        }
    }

    /// Opens a verified, resumable blob stream (see the module contract). `size` is the
    /// descriptor size when known. The first request is made here, so "blob unknown" and auth
    /// errors surface from this call.
    pub async fn blob_stream(
        &self,
        repo: &Reference,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        let host = self.host(repo.registry_host()).await?;
        let url = host.url(&format!("v2/{}/blobs/{digest}", repo.path()))?;
        let mut st = BlobState {
            client: self.clone(),
            host,
            url,
            scopes: vec![repo_scope(repo.path(), "pull")],
            digest: digest.clone(),
            what: format!("blob {digest}"),
            size,
            hasher: Some(digest.algorithm().hasher()),
            received: 0,
            skip: 0,
            body: None,
            failures: 0,
            resumes: 0,
            use_range: true,
            done: false,
        };
        st.ensure_open().await?;
        Ok(futures_util::stream::unfold(st, |mut st| async move { st.next().await.map(|item| (item, st)) }).boxed())
    }

    /// Like [`Client::blob_stream`], as an `AsyncRead`. Errors come out as `io::Error`s that
    /// carry the [`RegistryError`] (see [`RegistryError::from_io`]); a digest mismatch is an
    /// `InvalidData` error in place of EOF.
    pub async fn get_blob(&self, repo: &Reference, digest: &Digest, size: Option<u64>) -> Result<BlobReader> {
        // Fused: readers may poll again after EOF (e.g. a drain after the end), which an unfold
        // stream forbids.
        Ok(BlobReader { stream: self.blob_stream(repo, digest, size).await?.fuse().boxed(), chunk: Bytes::new() })
    }

    /// Downloads a blob into `dest` atomically: a temp file next to it, renamed into place only
    /// after the digest (and size) verified, then the directory is fsynced. Returns the size.
    pub async fn pull_blob_to_file(
        &self,
        repo: &Reference,
        digest: &Digest,
        size: Option<u64>,
        dest: &Path,
    ) -> Result<u64> {
        let dir = dest.parent().unwrap_or_else(|| Path::new(".")).to_path_buf();
        let io_err = |context: String| move |source| RegistryError::Io { context, source };
        let tmp = tempfile::Builder::new()
            .prefix(".berth-blob-")
            .tempfile_in(&dir)
            .map_err(io_err(format!("creating a temp file in {}", dir.display())))?;
        let (std_file, tmp_path) = tmp.into_parts();
        let mut file = tokio::fs::File::from_std(std_file);
        let mut stream = self.blob_stream(repo, digest, size).await?;
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            n += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io_err(format!("writing {}", tmp_path.display())))?;
        }
        file.sync_all().await.map_err(io_err(format!("syncing {}", tmp_path.display())))?;
        drop(file);
        tmp_path
            .persist(dest)
            .map_err(|e| RegistryError::Io { context: format!("renaming into {}", dest.display()), source: e.error })?;
        if let Ok(d) = std::fs::File::open(&dir) {
            d.sync_all().map_err(io_err(format!("syncing {}", dir.display())))?;
        }
        Ok(n)
    }
}

struct BlobState {
    client: Client,
    host: Arc<Host>,
    url: Url,
    scopes: Vec<String>,
    digest: Digest,
    what: String,
    size: Option<u64>,
    hasher: Option<Hasher>,
    /// Bytes hashed and handed out so far.
    received: u64,
    /// Bytes to drop from the current body before handing out (after a 200 restart or an
    /// earlier-than-asked `Content-Range`).
    skip: u64,
    body: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    /// Consecutive failures without progress.
    failures: u32,
    resumes: u32,
    use_range: bool,
    done: bool,
}

/// Parses `bytes START-END/TOTAL` (or `bytes START-END/*`) into START.
fn content_range_start(v: &str) -> Option<u64> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    rest.split('-').next()?.trim().parse().ok()
}

impl BlobState {
    /// Sends the GET (with `Range` when resuming) and installs its body.
    async fn open(&mut self) -> Result<()> {
        let range = (self.received > 0 && self.use_range).then(|| format!("bytes={}-", self.received));
        let prep = move |b: reqwest::RequestBuilder| match &range {
            Some(r) => b.header(RANGE, r.as_str()),
            None => b,
        };
        // Retries are counted by `recover`, so one budget covers statuses, connects and bodies.
        let resp = self.client.execute(&self.host, &self.scopes, Method::GET, &self.url, &prep, false).await?;
        let status = resp.status().as_u16();
        match status {
            200 => self.skip = self.received,
            206 => {
                let start =
                    resp.headers().get(CONTENT_RANGE).and_then(|v| v.to_str().ok()).and_then(content_range_start);
                match start {
                    Some(s) if s <= self.received => self.skip = self.received - s,
                    _ => {
                        // A range we did not ask for: stop using ranges and restart from 0.
                        self.use_range = false;
                        return Err(RegistryError::BadResponse {
                            method: "GET".into(),
                            url: crate::error::redact_url(&self.url),
                            message: format!(
                                "{}: 206 response with Content-Range {:?} when asking for bytes={}-",
                                self.what,
                                resp.headers().get(CONTENT_RANGE).and_then(|v| v.to_str().ok()).unwrap_or(""),
                                self.received
                            ),
                        });
                    }
                }
            }
            _ => {
                let mut e = api_error(resp, "GET", &self.host.name).await;
                e.subject = Some(format!("fetching {}", self.what));
                return Err(RegistryError::Api(Box::new(e)));
            }
        }
        self.body = Some(resp.bytes_stream().boxed());
        Ok(())
    }

    /// Opens the body, retrying within the policy.
    async fn ensure_open(&mut self) -> Result<()> {
        loop {
            match self.open().await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if let Some(e) = self.recover(e).await {
                        return Err(e);
                    }
                }
            }
        }
    }

    fn finish(&mut self) -> Option<Result<Bytes>> {
        self.done = true;
        let actual = self.hasher.take().map(Hasher::finish)?;
        if let Some(size) = self.size
            && size != self.received
        {
            return Some(Err(RegistryError::SizeMismatch {
                what: self.what.clone(),
                expected: size,
                actual: self.received,
            }));
        }
        if actual != self.digest {
            return Some(Err(RegistryError::DigestMismatch {
                what: self.what.clone(),
                expected: self.digest.clone(),
                actual,
            }));
        }
        None
    }

    /// Records a failure and waits before the next attempt, or gives up with `err`.
    async fn recover(&mut self, err: RegistryError) -> Option<RegistryError> {
        self.body = None;
        self.failures += 1;
        self.resumes += 1;
        let policy = &self.client.options().retry;
        let bad_range = matches!(err, RegistryError::BadResponse { .. }) && !self.use_range;
        if !(err.is_retryable() || bad_range) || self.failures >= policy.max_attempts || self.resumes > MAX_RESUMES {
            return Some(err);
        }
        match policy.delay(self.failures, err.retry_after()) {
            Some(d) => {
                tracing::debug!("{}: {err}; resuming at byte {} in {d:?}", self.what, self.received);
                tokio::time::sleep(d).await;
                None
            }
            None => Some(err),
        }
    }

    async fn next(&mut self) -> Option<Result<Bytes>> {
        loop {
            if self.done {
                return None;
            }
            if self.body.is_none()
                && let Err(e) = self.ensure_open().await
            {
                self.done = true;
                return Some(Err(e));
            }
            let Some(body) = self.body.as_mut() else { continue };
            match body.next().await {
                Some(Ok(mut chunk)) => {
                    if self.skip > 0 {
                        let n = (self.skip as usize).min(chunk.len());
                        let _ = chunk.split_to(n);
                        self.skip -= n as u64;
                    }
                    if chunk.is_empty() {
                        continue;
                    }
                    if let Some(size) = self.size
                        && self.received + chunk.len() as u64 > size
                    {
                        self.done = true;
                        return Some(Err(RegistryError::SizeMismatch {
                            what: self.what.clone(),
                            expected: size,
                            actual: self.received + chunk.len() as u64,
                        }));
                    }
                    if let Some(h) = self.hasher.as_mut() {
                        h.update(&chunk);
                    }
                    self.received += chunk.len() as u64;
                    self.failures = 0;
                    return Some(Ok(chunk));
                }
                Some(Err(e)) => {
                    let err = transport_error("GET", &self.url, &self.host.name, e);
                    if let Some(e) = self.recover(err).await {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                None => {
                    self.body = None;
                    let short = self.size.is_some_and(|s| self.received < s) || self.skip > 0;
                    if short {
                        // The server ended the body early without an error: resume.
                        let err = RegistryError::Io {
                            context: format!("{}: connection closed at byte {}", self.what, self.received),
                            source: io::Error::from(io::ErrorKind::UnexpectedEof),
                        };
                        if let Some(e) = self.recover(err).await {
                            self.done = true;
                            return Some(Err(e));
                        }
                        continue;
                    }
                    return self.finish();
                }
            }
        }
    }
}

/// An `AsyncRead` over a verified blob stream. See the module contract.
pub struct BlobReader {
    stream: BoxStream<'static, Result<Bytes>>,
    chunk: Bytes,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader").finish_non_exhaustive()
    }
}

impl AsyncRead for BlobReader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            if !self.chunk.is_empty() {
                let n = self.chunk.len().min(buf.remaining());
                let part = self.chunk.split_to(n);
                buf.put_slice(&part);
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut self.stream).poll_next(cx) {
                Poll::Ready(Some(Ok(c))) => self.chunk = c,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e.into_io())),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_range() {
        assert_eq!(super::content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(super::content_range_start("bytes 0-0/*"), Some(0));
        assert_eq!(super::content_range_start("items 1-2"), None);
    }
}
