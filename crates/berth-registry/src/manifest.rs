//! Manifests: GET/HEAD by tag or digest, PUT.
//!
//! Contract: [`Client::get_manifest`] returns the raw bytes, verified against the requested
//! digest (by-digest fetch) or against `Docker-Content-Digest` (by-tag fetch, when the header is
//! present), and refuses bodies over [`MAX_MANIFEST_SIZE`] while reading, whatever
//! `Content-Length` claimed. Schema 1 manifests are refused with a clear error.

use berth_types::{Digest, MAX_MANIFEST_SIZE, ManifestDoc, ManifestError, Reference, media};
use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use crate::auth::repo_scope;
use crate::client::{Client, api_error, read_limited};
use crate::error::{RegistryError, Result, redact_url};

/// A manifest as fetched: raw bytes (store and hash these, never a re-serialization), its media
/// type and its digest (verified).
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: Digest,
}

/// What a HEAD tells about a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// The manifest reference part (digest wins over tag; `latest` when neither).
pub(crate) fn manifest_ref(r: &Reference) -> String {
    match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => berth_types::reference::DEFAULT_TAG.to_string(),
    }
}

fn accept_header() -> String {
    media::MANIFEST_ACCEPT.join(", ")
}

fn header_digest(resp: &reqwest::Response) -> Option<Digest> {
    resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).and_then(|s| Digest::parse(s.trim()).ok())
}

impl Client {
    /// GETs a manifest (see the module contract). A 404 gives Docker's
    /// `manifest for X not found: manifest unknown: …`.
    pub async fn get_manifest(&self, r: &Reference) -> Result<FetchedManifest> {
        let host = self.host(r.registry_host()).await?;
        let mref = manifest_ref(r);
        let url = host.url(&format!("v2/{}/manifests/{mref}", r.path()))?;
        let scopes = [repo_scope(r.path(), "pull")];
        let accept = accept_header();
        let resp =
            self.execute(&host, &scopes, Method::GET, &url, &|b| b.header(ACCEPT, accept.as_str()), true).await?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let mut e = api_error(resp, "GET", &host.name).await;
            // 404 renders as Docker's "manifest for X not found: manifest unknown: …".
            e.subject = Some(if status == 404 {
                format!("manifest for {}", r.familiar())
            } else {
                format!("fetching manifest {}", r.familiar())
            });
            return Err(RegistryError::Api(Box::new(e)));
        }
        let content_type = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let announced = header_digest(&resp);
        let bytes = read_limited(resp, MAX_MANIFEST_SIZE, "GET", &url).await.map_err(|e| match e {
            RegistryError::BadResponse { .. } => {
                RegistryError::ManifestTooLarge { reference: r.familiar(), limit: MAX_MANIFEST_SIZE }
            }
            other => other,
        })?;
        let ct = content_type.split(';').next().unwrap_or("").trim();
        if ct == media::DOCKER_MANIFEST_V1 || ct == media::DOCKER_MANIFEST_V1_SIGNED {
            return Err(RegistryError::Manifest { reference: r.familiar(), source: ManifestError::SchemaV1 });
        }
        let (_, media_type) = ManifestDoc::parse(&bytes, &content_type)
            .map_err(|source| RegistryError::Manifest { reference: r.familiar(), source })?;
        let algorithm = r.digest().map(Digest::algorithm).unwrap_or(berth_types::Algorithm::Sha256);
        let mut h = algorithm.hasher();
        h.update(&bytes);
        let digest = h.finish();
        let what = format!("manifest {}", r.familiar());
        if let Some(want) = r.digest() {
            if *want != digest {
                return Err(RegistryError::DigestMismatch { what, expected: want.clone(), actual: digest });
            }
        } else if let Some(a) = announced
            && a.algorithm() == digest.algorithm()
            && a != digest
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("{what} (Docker-Content-Digest)"),
                expected: a,
                actual: digest,
            });
        }
        Ok(FetchedManifest { bytes, media_type, digest })
    }

    /// HEADs a manifest: `Ok(None)` when it does not exist. HEAD requests do not count against
    /// Docker Hub's pull limit, so use this for "is it up to date" checks. The digest comes from
    /// `Docker-Content-Digest` (or the reference, for by-digest checks).
    pub async fn head_manifest(&self, r: &Reference) -> Result<Option<ManifestInfo>> {
        let host = self.host(r.registry_host()).await?;
        let url = host.url(&format!("v2/{}/manifests/{}", r.path(), manifest_ref(r)))?;
        let scopes = [repo_scope(r.path(), "pull")];
        let accept = accept_header();
        let resp =
            self.execute(&host, &scopes, Method::HEAD, &url, &|b| b.header(ACCEPT, accept.as_str()), true).await?;
        match resp.status().as_u16() {
            404 => Ok(None),
            200..=299 => {
                let digest =
                    header_digest(&resp).or_else(|| r.digest().cloned()).ok_or_else(|| RegistryError::BadResponse {
                        method: "HEAD".into(),
                        url: redact_url(&url),
                        message: "no Docker-Content-Digest header in the response".into(),
                    })?;
                let media_type =
                    resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                Ok(Some(ManifestInfo { digest, media_type, size: resp.content_length().unwrap_or(0) }))
            }
            _ => {
                let mut e = api_error(resp, "HEAD", &host.name).await;
                e.subject = Some(format!("checking manifest {}", r.familiar()));
                Err(RegistryError::Api(Box::new(e)))
            }
        }
    }

    /// Lists the referrers of `digest` in `repo` through the OCI 1.1 referrers API
    /// (`GET /v2/<name>/referrers/<digest>`): the index's raw bytes, or `Ok(None)` when the
    /// registry does not implement the API (404 or 405, as distribution 2.x answers).
    pub async fn referrers(&self, repo: &Reference, digest: &Digest) -> Result<Option<Bytes>> {
        let host = self.host(repo.registry_host()).await?;
        let url = host.url(&format!("v2/{}/referrers/{digest}", repo.path()))?;
        let scopes = [repo_scope(repo.path(), "pull")];
        let resp =
            self.execute(&host, &scopes, Method::GET, &url, &|b| b.header(ACCEPT, media::OCI_INDEX), true).await?;
        match resp.status().as_u16() {
            200..=299 => {
                let ct = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let bytes = read_limited(resp, MAX_MANIFEST_SIZE, "GET", &url).await?;
                // A registry without the API may answer a catch-all 200 with something else.
                if !ct.starts_with(media::OCI_INDEX) {
                    return Ok(None);
                }
                Ok(Some(bytes))
            }
            404 | 405 => Ok(None),
            _ => {
                let mut e = api_error(resp, "GET", &host.name).await;
                e.subject = Some(format!("listing referrers of {digest} in {}", repo.familiar_repository()));
                Err(RegistryError::Api(Box::new(e)))
            }
        }
    }

    /// PUTs a manifest under the reference's tag (or digest) with `media_type` as Content-Type.
    /// Returns the sha256 digest of `bytes`, after checking it against the registry's
    /// `Docker-Content-Digest` when given. Blobs it references must already be pushed.
    pub async fn put_manifest(&self, r: &Reference, bytes: Bytes, media_type: &str) -> Result<Digest> {
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(RegistryError::ManifestTooLarge { reference: r.familiar(), limit: MAX_MANIFEST_SIZE });
        }
        let host = self.host(r.registry_host()).await?;
        let url = host.url(&format!("v2/{}/manifests/{}", r.path(), manifest_ref(r)))?;
        let scopes = [repo_scope(r.path(), "pull,push")];
        let mt = media_type.to_string();
        let body = bytes.clone();
        let resp = self
            .execute(
                &host,
                &scopes,
                Method::PUT,
                &url,
                &|b| b.header(CONTENT_TYPE, mt.as_str()).body(body.clone()),
                true,
            )
            .await?;
        if !(200..300).contains(&resp.status().as_u16()) {
            let mut e = api_error(resp, "PUT", &host.name).await;
            e.subject = Some(format!("pushing manifest {}", r.familiar()));
            return Err(RegistryError::Api(Box::new(e)));
        }
        let digest = Digest::sha256_of(&bytes);
        if let Some(a) = header_digest(&resp)
            && a.algorithm() == digest.algorithm()
            && a != digest
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("pushed manifest {} (Docker-Content-Digest)", r.familiar()),
                expected: digest,
                actual: a,
            });
        }
        Ok(digest)
    }
}
