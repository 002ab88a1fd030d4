//! Registry source and sink on top of berth-registry.
//!
//! Blobs read from a registry are verified by the client itself (a mismatch is an error in
//! place of EOF), and again by whichever sink stores them. Uploads need a source that can be
//! re-read (retries, chunked resume), so pushes go through [`Reopen`] rather than a one-shot
//! stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use berth_registry::{BlobSource, Client, PushOptions, PushOutcome, RegistryError};
use berth_types::{Descriptor, Digest, Reference};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::observer::{BlobStatus, Observer};
use crate::source::{BlobRead, Root};
use crate::{Result, TransportError};

impl From<RegistryError> for TransportError {
    fn from(e: RegistryError) -> Self {
        TransportError::Registry(Box::new(e))
    }
}

pub struct RegistrySource {
    client: Client,
    /// What the user asked for (names in the store use it).
    requested: Reference,
    /// Where content actually comes from: the first mirror that answered, or the registry.
    active: std::sync::RwLock<Reference>,
    /// Mirrors to try first (configured `registry-mirrors` / registries.conf mirrors).
    mirrors: Vec<Reference>,
}

impl RegistrySource {
    /// A source for `reference`. Pulls try the configured mirrors of its registry first and
    /// fall back to the registry itself, as Docker does with `registry-mirrors`.
    pub fn new(client: Client, reference: Reference) -> RegistrySource {
        let name = format!("{}/{}", reference.domain(), reference.path());
        let mirrors = client
            .options()
            .registries
            .mirrors(&name)
            .into_iter()
            .filter(|m| !m.digest_only || reference.digest().is_some())
            .filter_map(|m| {
                let loc = m.location.trim_end_matches('/');
                let loc = loc.split_once("://").map(|(_, r)| r).unwrap_or(loc);
                let mut s = format!("{loc}/{}", reference.path());
                if let Some(t) = reference.tag() {
                    s.push(':');
                    s.push_str(t);
                }
                if let Some(d) = reference.digest() {
                    s.push('@');
                    s.push_str(&d.to_string());
                }
                Reference::parse(&s).ok()
            })
            .collect();
        RegistrySource { client, requested: reference.clone(), active: std::sync::RwLock::new(reference), mirrors }
    }

    /// Where content is read from (a mirror once one answered).
    pub fn reference(&self) -> Reference {
        self.active.read().map(|r| r.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    /// What was asked for.
    pub fn requested(&self) -> &Reference {
        &self.requested
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn location(&self) -> String {
        format!("docker://{}", self.requested)
    }

    /// Fetches the top-level manifest, trying mirrors first; the first that answers becomes
    /// the source of every later read.
    pub async fn root(&self) -> Result<Root> {
        let mut chosen = None;
        for m in &self.mirrors {
            match self.client.get_manifest(m).await {
                Ok(x) => {
                    chosen = Some((m.clone(), x));
                    break;
                }
                Err(e) => tracing::debug!("mirror {m} failed, trying the next source: {e}"),
            }
        }
        let (from, m) = match chosen {
            Some(x) => x,
            None => (self.requested.clone(), self.client.get_manifest(&self.requested).await?),
        };
        match self.active.write() {
            Ok(mut g) => *g = from,
            Err(e) => *e.into_inner() = from,
        }
        let desc = Descriptor::new(&m.media_type, m.digest, m.bytes.len() as u64);
        let names = if self.requested.tag().is_some() { vec![self.requested.without_digest()] } else { vec![] };
        Ok(Root { desc, bytes: m.bytes.to_vec(), names })
    }

    pub async fn read_manifest(&self, d: &Descriptor) -> Result<Vec<u8>> {
        let r = self.reference().repo_only().with_digest(d.digest.clone());
        Ok(self.client.get_manifest(&r).await?.bytes.to_vec())
    }

    pub async fn read_small_blob(&self, d: &Descriptor) -> Result<Vec<u8>> {
        let mut r = self.client.get_blob(&self.reference(), &d.digest, Some(d.size)).await?;
        let mut v = Vec::with_capacity(d.size.min(1 << 24) as usize);
        (&mut r)
            .take(berth_types::MAX_MANIFEST_SIZE * 4)
            .read_to_end(&mut v)
            .await
            .map_err(|e| TransportError::Stream { context: format!("reading {}", d.digest), source: e })?;
        Ok(v)
    }

    pub async fn open_blob(&self, d: &Descriptor) -> Result<BlobRead> {
        Ok(Box::new(self.client.get_blob(&self.reference(), &d.digest, Some(d.size)).await?))
    }
}

pub struct RegistrySink {
    client: Client,
    reference: Reference,
    /// Repositories (same registry) blobs may be mounted from.
    mount_from: Vec<String>,
}

/// How to re-read a blob for an upload attempt at some offset.
pub type Reopen = BlobSource;

impl RegistrySink {
    pub fn new(client: Client, reference: Reference) -> RegistrySink {
        RegistrySink { client, reference, mount_from: Vec::new() }
    }

    /// Adds repositories of the same registry to try cross-repository mounts from (e.g. the
    /// repositories an image was pulled from).
    pub fn with_mount_candidates(mut self, repos: Vec<String>) -> RegistrySink {
        self.mount_from = repos;
        self
    }

    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    pub fn location(&self) -> String {
        format!("docker://{}", self.reference)
    }

    pub fn same_registry(&self, domain: &str) -> bool {
        self.reference.domain() == domain
    }

    pub async fn has_blob(&self, d: &Descriptor) -> Result<bool> {
        Ok(self.client.blob_exists(&self.reference, &d.digest).await?.is_some())
    }

    /// Uploads a blob (HEAD first, then mount candidates, then monolithic/chunked upload).
    pub async fn push(
        &self,
        d: &Descriptor,
        source: Reopen,
        extra_mount: Option<String>,
        obs: Arc<dyn Observer>,
        is_layer: bool,
    ) -> Result<PushOutcome> {
        let mut mount_from = self.mount_from.clone();
        if let Some(m) = extra_mount
            && !mount_from.contains(&m)
        {
            mount_from.insert(0, m);
        }
        mount_from.retain(|m| m != self.reference.path());
        let counted = counting_source(source, d.digest.clone(), d.size, is_layer, obs);
        let opts = PushOptions { mount_from, check_exists: false, ..PushOptions::default() };
        Ok(self.client.push_blob(&self.reference, &d.digest, d.size, &counted, &opts).await?)
    }

    pub async fn put_manifest(&self, d: &Descriptor, bytes: &[u8], name: Option<&Reference>) -> Result<Digest> {
        // Children of an index are put by digest; the top level by the tag being pushed.
        let target = match name {
            Some(n) if n.tag().is_some() => self
                .reference
                .repo_only()
                .with_tag(n.tag().unwrap_or("latest"))
                .map_err(|e| TransportError::Unsupported(e.to_string()))?,
            _ => self.reference.repo_only().with_digest(d.digest.clone()),
        };
        Ok(self.client.put_manifest(&target, bytes::Bytes::copy_from_slice(bytes), &d.media_type).await?)
    }
}

/// Wraps a re-openable source so every attempt's bytes are reported as upload progress.
fn counting_source(
    inner: BlobSource,
    digest: Digest,
    total: u64,
    is_layer: bool,
    obs: Arc<dyn Observer>,
) -> BlobSource {
    BlobSource::from_fn(move |offset| {
        let inner = inner.clone();
        let digest = digest.clone();
        let obs = obs.clone();
        Box::pin(async move {
            let r = inner.open(offset).await?;
            Ok(Box::pin(Counting { inner: r, digest, done: offset, last: offset, total, is_layer, obs })
                as berth_registry::BoxAsyncRead)
        })
    })
}

struct Counting {
    inner: berth_registry::BoxAsyncRead,
    digest: Digest,
    done: u64,
    last: u64,
    total: u64,
    is_layer: bool,
    obs: Arc<dyn Observer>,
}

impl AsyncRead for Counting {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = self.inner.as_mut().poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let n = (buf.filled().len() - before) as u64;
            self.done += n;
            if n == 0 || self.done - self.last >= 512 * 1024 {
                self.last = self.done;
                self.obs.blob(
                    &self.digest,
                    self.is_layer,
                    BlobStatus::Transferring { done: self.done, total: self.total },
                );
            }
        }
        r
    }
}
