//! Signatures stored as cosign stores them.
//!
//! The signatures of manifest `sha256:HEX` in a repository live in the same repository under
//! the tag `sha256-HEX.sig`: an OCI image manifest whose config is a minimal image config (the
//! layers' digests as `rootfs.diff_ids`, as go-containerregistry writes when cosign appends a
//! layer to an empty image) and whose layers are the simple-signing payloads
//! (`application/vnd.dev.cosign.simplesigning.v1+json`), each with its base64 DER signature in
//! the annotation `dev.cosignproject.cosign/signature`. Signing appends a layer; a payload
//! already signed with the same signature is not added twice.
//!
//! Where the registry implements the OCI 1.1 referrers API, [`sign`] also pushes the signature
//! as a referrer of the image (cosign's `--registry-referrers-mode=oci-1-1` shape: artifact
//! type `application/vnd.dev.cosign.artifact.sig.v1+json`, an empty config, `subject`).
//! Registries without the API are detected and skipped.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use berth_registry::{BlobSource, Client, PushOptions};
use berth_types::{Descriptor, Digest, Manifest, ManifestDoc, Reference, media};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;

use crate::error::{Result, SignError};
use crate::key::{PublicKey, SigningKey};
use crate::payload::{SimpleSigning, cosign_repository_name};

/// Media type of a signature layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Artifact type of a signature pushed as an OCI 1.1 referrer.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// Largest payload berth reads (cosign's are a few hundred bytes).
const MAX_PAYLOAD: u64 = 1 << 20;

/// The tag cosign stores `digest`'s signatures under.
pub fn signature_tag(digest: &Digest) -> String {
    format!("{}-{}.sig", digest.algorithm().as_str(), digest.hex())
}

/// One signature read from a registry (not yet verified).
#[derive(Debug, Clone)]
pub struct StoredSignature {
    pub payload: Vec<u8>,
    /// Decoded DER signature; `None` when the annotation is missing or not base64.
    pub signature: Option<Vec<u8>>,
}

/// What [`sign`] did for one manifest.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The signed manifest's digest.
    pub digest: Digest,
    /// Where the signature was written (`repo:sha256-HEX.sig`).
    pub signature_ref: Reference,
    /// Whether the registry also holds it as an OCI 1.1 referrer.
    pub referrer: bool,
    /// False when the same signature was already there.
    pub added: bool,
}

/// Options of [`sign`].
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// `--annotation k=v`: the payload's `optional` map.
    pub annotations: Map<String, Value>,
    /// `--recursive`: an index's platform manifests are signed too.
    pub recursive: bool,
}

fn sig_config(layers: &[Descriptor]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.to_string()).collect();
    // go-containerregistry's ConfigFile of `mutate.AppendLayers(empty.Image, …)`, field order
    // as Go writes it.
    let history: Vec<Value> = layers.iter().map(|_| json!({"created": "0001-01-01T00:00:00Z"})).collect();
    let cfg = json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": history,
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    });
    serde_json::to_vec(&cfg).unwrap_or_default()
}

fn manifest_bytes(m: &Manifest) -> Result<Vec<u8>> {
    serde_json::to_vec(m).map_err(|e| SignError::Format { what: "signature manifest".into(), message: e.to_string() })
}

async fn push_bytes(client: &Client, repo: &Reference, bytes: &[u8]) -> Result<Digest> {
    let digest = Digest::sha256_of(bytes);
    client
        .push_blob(
            repo,
            &digest,
            bytes.len() as u64,
            &BlobSource::bytes(Bytes::copy_from_slice(bytes)),
            &PushOptions::default(),
        )
        .await?;
    Ok(digest)
}

/// Reads the `.sig` manifest of `digest` in `repo`, `None` when there is none.
async fn fetch_sig_manifest(client: &Client, repo: &Reference, digest: &Digest) -> Result<Option<Manifest>> {
    let tag_ref = repo
        .with_tag(&signature_tag(digest))
        .map_err(|e| SignError::Format { what: repo.repository(), message: e.to_string() })?;
    match client.get_manifest(&tag_ref).await {
        Ok(f) => match ManifestDoc::parse(&f.bytes, &f.media_type) {
            Ok((ManifestDoc::Image(m), _)) => Ok(Some(m)),
            Ok((ManifestDoc::Index(_), _)) => Err(SignError::Format {
                what: tag_ref.familiar(),
                message: "is an index, not a cosign signature manifest".into(),
            }),
            Err(e) => Err(SignError::Format { what: tag_ref.familiar(), message: e.to_string() }),
        },
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn read_small_blob(client: &Client, repo: &Reference, d: &Descriptor) -> Result<Vec<u8>> {
    if d.size > MAX_PAYLOAD {
        return Err(SignError::Format {
            what: format!("signature payload {}", d.digest),
            message: format!("{} bytes is more than a signature payload can be", d.size),
        });
    }
    let mut r = client.get_blob(repo, &d.digest, Some(d.size)).await?;
    let mut buf = Vec::with_capacity(d.size as usize);
    (&mut r)
        .take(MAX_PAYLOAD + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| SignError::Format { what: format!("signature payload {}", d.digest), message: e.to_string() })?;
    if Digest::sha256_of(&buf) != d.digest {
        return Err(SignError::Format {
            what: format!("signature payload {}", d.digest),
            message: "content does not match its digest".into(),
        });
    }
    Ok(buf)
}

/// The signatures stored for `digest` in `repo`'s repository (empty when none).
pub async fn fetch_signatures(client: &Client, repo: &Reference, digest: &Digest) -> Result<Vec<StoredSignature>> {
    let repo = repo.repo_only();
    let Some(m) = fetch_sig_manifest(client, &repo, digest).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for layer in m.layers.iter().filter(|l| l.media_type == SIMPLE_SIGNING_MEDIA_TYPE) {
        let payload = read_small_blob(client, &repo, layer).await?;
        let signature = layer
            .annotations
            .as_ref()
            .and_then(|a| a.get(SIGNATURE_ANNOTATION))
            .and_then(|s| B64.decode(s.trim()).ok());
        out.push(StoredSignature { payload, signature });
    }
    Ok(out)
}

/// Signs `target` (as named: tag or digest) with `key` and stores the signature as cosign does;
/// see the module documentation. Returns one entry per manifest signed.
pub async fn sign(client: &Client, target: &Reference, key: &SigningKey, opts: &SignOptions) -> Result<Vec<Signed>> {
    let fetched = client.get_manifest(target).await?;
    let mut digests = vec![fetched.digest.clone()];
    if opts.recursive
        && let Ok((ManifestDoc::Index(ix), _)) = ManifestDoc::parse(&fetched.bytes, &fetched.media_type)
    {
        digests.extend(ix.manifests.iter().map(|d| d.digest.clone()));
    }
    let repo = target.repo_only();
    let mut out = Vec::new();
    for digest in digests {
        out.push(sign_one(client, &repo, &digest, key, &opts.annotations).await?);
    }
    Ok(out)
}

async fn sign_one(
    client: &Client,
    repo: &Reference,
    digest: &Digest,
    key: &SigningKey,
    annotations: &Map<String, Value>,
) -> Result<Signed> {
    let payload = SimpleSigning::new(repo, digest, annotations.clone()).to_bytes()?;
    let signature = B64.encode(key.sign(&payload)?);
    let payload_digest = push_bytes(client, repo, &payload).await?;
    let mut layer = Descriptor::new(SIMPLE_SIGNING_MEDIA_TYPE, payload_digest, payload.len() as u64);
    layer.annotations = Some(BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), signature)]));

    let existing = fetch_sig_manifest(client, repo, digest).await?;
    let mut layers = existing.map(|m| m.layers).unwrap_or_default();
    // ECDSA signatures are randomised, so "already signed" means this payload verified with
    // this key; then the new signature adds nothing.
    let public = key.public_key();
    let mut already = false;
    for l in layers.iter().filter(|l| l.digest == layer.digest) {
        let sig = l.annotations.as_ref().and_then(|a| a.get(SIGNATURE_ANNOTATION)).and_then(|s| B64.decode(s).ok());
        if sig.is_some_and(|s| public.verify(&payload, &s)) {
            already = true;
        }
    }
    let signature_ref = repo
        .with_tag(&signature_tag(digest))
        .map_err(|e| SignError::Format { what: repo.repository(), message: e.to_string() })?;
    if !already {
        layers.push(layer.clone());
        let config = sig_config(&layers);
        let config_digest = push_bytes(client, repo, &config).await?;
        let m = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            artifact_type: None,
            config: Descriptor::new(media::OCI_CONFIG, config_digest, config.len() as u64),
            layers,
            subject: None,
            annotations: None,
        };
        client.put_manifest(&signature_ref, Bytes::from(manifest_bytes(&m)?), media::OCI_MANIFEST).await?;
    }
    let referrer = push_referrer(client, repo, digest, &layer).await?;
    Ok(Signed { digest: digest.clone(), signature_ref, referrer, added: !already })
}

/// Pushes the signature as an OCI 1.1 referrer when the registry has the referrers API.
async fn push_referrer(client: &Client, repo: &Reference, digest: &Digest, layer: &Descriptor) -> Result<bool> {
    if client.referrers(repo, digest).await?.is_none() {
        return Ok(false);
    }
    let subject_info = client.head_manifest(&repo.with_digest(digest.clone())).await?;
    let Some(info) = subject_info else { return Ok(false) };
    let empty = b"{}";
    let empty_digest = push_bytes(client, repo, empty).await?;
    let m = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        artifact_type: Some(SIGNATURE_ARTIFACT_TYPE.to_string()),
        config: Descriptor::new(media::OCI_EMPTY, empty_digest, empty.len() as u64),
        layers: vec![layer.clone()],
        subject: Some(Descriptor::new(&info.media_type, digest.clone(), info.size)),
        annotations: None,
    };
    let bytes = manifest_bytes(&m)?;
    let d = Digest::sha256_of(&bytes);
    client.put_manifest(&repo.with_digest(d), Bytes::from(bytes), media::OCI_MANIFEST).await?;
    Ok(true)
}

/// Whether the payload's identity names `image`'s repository. cosign writes the repository
/// without tag (Docker Hub as `index.docker.io`); containers' signatures may carry a tag.
pub fn identity_matches_repository(p: &SimpleSigning, image: &Reference) -> bool {
    match Reference::parse_normalized(&p.critical.identity.docker_reference) {
        Ok(signed) => signed.repository() == image.repository(),
        Err(_) => false,
    }
}

/// Checks `stored` signatures of the manifest `digest` against `keys`: a signature counts when
/// one key verifies it over the payload bytes, the payload names `digest`, and `identity`
/// accepts the payload. Returns the verified payloads (in storage order) and, for the others,
/// why each failed.
pub fn check_signatures(
    stored: &[StoredSignature],
    keys: &[PublicKey],
    digest: &Digest,
    identity: &dyn Fn(&SimpleSigning) -> bool,
) -> (Vec<SimpleSigning>, Vec<String>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (i, s) in stored.iter().enumerate() {
        let n = i + 1;
        let Some(sig) = &s.signature else {
            failed.push(format!("signature {n}: no {SIGNATURE_ANNOTATION} annotation"));
            continue;
        };
        if !keys.iter().any(|k| k.verify(&s.payload, sig)) {
            failed.push(format!("signature {n}: invalid signature when validating with the given key"));
            continue;
        }
        let p = match SimpleSigning::parse(&s.payload, &format!("signature {n}")) {
            Ok(p) => p,
            Err(e) => {
                failed.push(e.to_string());
                continue;
            }
        };
        if p.critical.image.docker_manifest_digest != digest.to_string() {
            failed.push(format!(
                "signature {n}: the payload signs {}, not {digest}",
                p.critical.image.docker_manifest_digest
            ));
            continue;
        }
        if !identity(&p) {
            failed.push(format!(
                "signature {n}: the payload's identity {:?} does not match the image",
                p.critical.identity.docker_reference
            ));
            continue;
        }
        ok.push(p);
    }
    (ok, failed)
}

/// What [`verify`] found.
#[derive(Debug, Clone)]
pub struct Verified {
    pub digest: Digest,
    pub payloads: Vec<SimpleSigning>,
}

/// `verify --key`: resolves `image`, reads its cosign signatures and checks them with `key`;
/// the payload must name the image's digest and its repository. Errors with the reasons when no
/// signature passes.
pub async fn verify(client: &Client, image: &Reference, key: &PublicKey) -> Result<Verified> {
    let fetched = client.get_manifest(image).await?;
    let stored = fetch_signatures(client, image, &fetched.digest).await?;
    if stored.is_empty() {
        return Err(SignError::NoMatchingSignatures {
            reference: image.familiar(),
            reasons: vec![format!("no signatures found (no {} tag)", signature_tag(&fetched.digest))],
        });
    }
    let (payloads, reasons) = check_signatures(&stored, std::slice::from_ref(key), &fetched.digest, &|p| {
        identity_matches_repository(p, image)
    });
    if payloads.is_empty() {
        return Err(SignError::NoMatchingSignatures { reference: image.familiar(), reasons });
    }
    Ok(Verified { digest: fetched.digest, payloads })
}

/// The repository name cosign writes for `r` (re-exported for renderers).
pub fn repository_name(r: &Reference) -> String {
    cosign_repository_name(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::generate;

    fn digest(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    #[test]
    fn tag_scheme() {
        assert_eq!(signature_tag(&digest('a')), format!("sha256-{}.sig", "a".repeat(64)));
    }

    #[test]
    fn config_lists_layers_as_diff_ids() {
        let l = Descriptor::new(SIMPLE_SIGNING_MEDIA_TYPE, digest('b'), 10);
        let v: Value = serde_json::from_slice(&sig_config(&[l])).unwrap();
        assert_eq!(v["rootfs"]["diff_ids"][0], format!("sha256:{}", "b".repeat(64)));
        assert_eq!(v["history"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn check_signatures_sorts_good_from_bad() {
        let keys = generate(b"").unwrap();
        let key = SigningKey::from_pem(&keys.private_pem, "k", &mut || Ok(Vec::new())).unwrap();
        let public = key.public_key();
        let r = Reference::parse_normalized("localhost:5000/app:1").unwrap();
        let good = SimpleSigning::new(&r, &digest('a'), Map::new()).to_bytes().unwrap();
        let other_digest = SimpleSigning::new(&r, &digest('c'), Map::new()).to_bytes().unwrap();
        let stored = vec![
            StoredSignature { payload: good.clone(), signature: Some(key.sign(&good).unwrap()) },
            StoredSignature { payload: good.clone(), signature: Some(key.sign(b"x").unwrap()) },
            StoredSignature { payload: other_digest.clone(), signature: Some(key.sign(&other_digest).unwrap()) },
            StoredSignature { payload: good.clone(), signature: None },
        ];
        let (ok, bad) = check_signatures(&stored, &[public], &digest('a'), &|p| identity_matches_repository(p, &r));
        assert_eq!(ok.len(), 1);
        assert_eq!(bad.len(), 3, "{bad:?}");
        let elsewhere = Reference::parse_normalized("localhost:5000/other").unwrap();
        let (ok, _) = check_signatures(&stored[..1], &[key.public_key()], &digest('a'), &|p| {
            identity_matches_repository(p, &elsewhere)
        });
        assert!(ok.is_empty());
    }
}
