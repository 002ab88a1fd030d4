//! The one copy pipeline behind pull, push, save, load and cp.
//!
//! Order of work for an image: resolve the top-level document; for an index pick the platform
//! (or take all with `all_platforms`); read and verify the config; transfer the layers with
//! bounded parallelism (skipping what the sink has, mounting across repositories when both ends
//! are one registry); the config; the manifest last; then the sink names the result. A sink never
//! holds a manifest whose blobs it lacks.

use std::sync::Arc;

use berth_types::{Descriptor, Digest, ImageConfig, ManifestDoc, Platform, Reference, media};
use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::observer::{BlobStatus, Observer};
use crate::sink::{BlobRole, Finished, Sink};
use crate::source::{Root, Source};
use crate::{Result, TransportError};

#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Platform to pick from an index (default: the host).
    pub platform: Option<Platform>,
    /// Copy every platform of an index (`--all`).
    pub all_platforms: bool,
    /// Blobs transferred at once.
    pub max_concurrent: usize,
    /// Names to give at the destination; when empty, the names the source carries.
    pub names: Vec<Reference>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions { platform: None, all_platforms: false, max_concurrent: 3, names: Vec::new() }
    }
}

/// What one root became at the destination.
#[derive(Debug, Clone)]
pub struct Copied {
    /// What the sink received and named (platform manifest, or the index with `--all`).
    pub finished: Finished,
    /// The platform manifest descriptor (for a single-platform copy).
    pub manifest: Option<Descriptor>,
    /// The top-level digest at the source (index digest when a platform was picked).
    pub source_digest: Digest,
    /// Whether any blob had to be transferred (Docker's "Downloaded newer image" vs "up to date").
    pub transferred: bool,
}

/// Copies every root the source offers (after its selector) into the sink.
pub async fn copy_all(src: &Source, dst: &Sink, opts: &CopyOptions, obs: Arc<dyn Observer>) -> Result<Vec<Copied>> {
    let roots = src.roots().await?;
    let mut out = Vec::new();
    for root in &roots {
        out.push(copy_root(src, root, dst, opts, obs.clone()).await?);
    }
    let finished: Vec<Finished> = out.iter().map(|c| c.finished.clone()).collect();
    dst.finish(&finished).await?;
    Ok(out)
}

/// Copies exactly one root; fails when the source offers several (name the one you want).
pub async fn copy_one(src: &Source, dst: &Sink, opts: &CopyOptions, obs: Arc<dyn Observer>) -> Result<Copied> {
    let roots = src.roots().await?;
    let root = match roots.as_slice() {
        [one] => one,
        _ => {
            let available: Vec<String> = roots
                .iter()
                .map(|r| r.names.first().map(|n| n.familiar()).unwrap_or_else(|| r.desc.digest.to_string()))
                .collect();
            return Err(TransportError::Ambiguous {
                location: src.location(),
                count: roots.len(),
                available: available.join(", "),
            });
        }
    };
    let c = copy_root(src, root, dst, opts, obs).await?;
    dst.finish(std::slice::from_ref(&c.finished)).await?;
    Ok(c)
}

/// Copies one root without finishing the sink; call [`Sink::finish`] once after all roots (e.g.
/// several images saved into one archive).
pub async fn copy_root(
    src: &Source,
    root: &Root,
    dst: &Sink,
    opts: &CopyOptions,
    obs: Arc<dyn Observer>,
) -> Result<Copied> {
    let (doc, mt) = ManifestDoc::parse(&root.bytes, &root.desc.media_type)?;
    let mut top = root.desc.clone();
    top.media_type = mt;
    let names = if opts.names.is_empty() { root.names.clone() } else { opts.names.clone() };
    let top_name = names.first();
    match doc {
        ManifestDoc::Image(_) => {
            let (config, layers, transferred) = copy_image(src, &top, &root.bytes, dst, opts, obs, top_name).await?;
            Ok(Copied {
                finished: Finished {
                    desc: top.clone(),
                    config: Some(config),
                    layers,
                    names,
                    source_digest: registry_digest(src, &top),
                },
                manifest: Some(top.clone()),
                source_digest: top.digest,
                transferred,
            })
        }
        ManifestDoc::Index(idx) if opts.all_platforms => {
            let mut transferred = false;
            for child in &idx.manifests {
                let bytes = src.read_manifest(child).await?;
                match ManifestDoc::parse(&bytes, &child.media_type)? {
                    (ManifestDoc::Image(_), mt) => {
                        let mut c = child.clone();
                        c.media_type = mt;
                        let (_, _, t) = copy_image(src, &c, &bytes, dst, opts, obs.clone(), None).await?;
                        transferred |= t;
                    }
                    (ManifestDoc::Index(_), _) => {
                        return Err(TransportError::Unsupported(format!(
                            "nested index {} is not supported",
                            child.digest
                        )));
                    }
                }
            }
            dst.put_manifest(&top, &root.bytes, top_name).await?;
            Ok(Copied {
                finished: Finished {
                    desc: top.clone(),
                    config: None,
                    layers: vec![],
                    names,
                    source_digest: registry_digest(src, &top),
                },
                manifest: None,
                source_digest: top.digest,
                transferred,
            })
        }
        ManifestDoc::Index(idx) => {
            let want = opts.platform.clone().unwrap_or_else(Platform::host);
            let child = idx.select(&want)?.clone();
            obs.note(&format!("{want}: {}", child.digest));
            let bytes = src.read_manifest(&child).await?;
            let (doc, mt) = ManifestDoc::parse(&bytes, &child.media_type)?;
            if !matches!(doc, ManifestDoc::Image(_)) {
                return Err(TransportError::Unsupported(format!("nested index {} is not supported", child.digest)));
            }
            let mut c = child.clone();
            c.media_type = mt;
            c.platform = None;
            c.annotations = None;
            let (config, layers, transferred) = copy_image(src, &c, &bytes, dst, opts, obs, top_name).await?;
            Ok(Copied {
                finished: Finished {
                    desc: c.clone(),
                    config: Some(config),
                    layers,
                    names,
                    source_digest: registry_digest(src, &top),
                },
                manifest: Some(c),
                source_digest: top.digest,
                transferred,
            })
        }
    }
}

/// Copies one platform image: layers, config, manifest. Returns (config digest, layers,
/// whether anything was transferred).
async fn copy_image(
    src: &Source,
    desc: &Descriptor,
    bytes: &[u8],
    dst: &Sink,
    opts: &CopyOptions,
    obs: Arc<dyn Observer>,
    name: Option<&Reference>,
) -> Result<(Digest, Vec<Descriptor>, bool)> {
    let (ManifestDoc::Image(m), _) = ManifestDoc::parse(bytes, &desc.media_type)? else {
        return Err(TransportError::Unsupported(format!("{} is not an image manifest", desc.digest)));
    };
    let config_bytes = src.read_small_blob(&m.config).await?;
    let config = ImageConfig::parse(&config_bytes).map_err(|e| TransportError::BadArchive {
        what: "image config",
        path: src.location().into(),
        detail: format!("{}: {e}", m.config.digest),
    })?;
    if config.rootfs.diff_ids.len() != m.layers.len() {
        return Err(TransportError::BadArchive {
            what: "image",
            path: src.location().into(),
            detail: format!(
                "manifest {} has {} layers but its config lists {} diffIDs",
                desc.digest,
                m.layers.len(),
                config.rootfs.diff_ids.len()
            ),
        });
    }
    for l in &m.layers {
        if media::kind(&l.media_type) == media::Kind::Other {
            return Err(TransportError::Unsupported(format!(
                "layer {} has unsupported media type {}",
                l.digest, l.media_type
            )));
        }
        obs.blob(&l.digest, true, BlobStatus::Waiting);
    }
    let concurrency = opts.max_concurrent.max(1).min(dst.max_concurrency());
    let jobs: Vec<(Descriptor, Digest)> =
        m.layers.iter().cloned().zip(config.rootfs.diff_ids.iter().cloned()).collect();
    let transferred: Vec<bool> = stream::iter(jobs.into_iter().map(|(l, diff_id)| {
        let obs = obs.clone();
        async move { copy_blob(src, dst, &l, BlobRole::Layer { diff_id }, obs).await }
    }))
    .buffer_unordered(concurrency)
    .try_collect()
    .await?;
    let config_new = copy_blob(src, dst, &m.config, BlobRole::Config, obs.clone()).await?;
    dst.put_manifest(desc, bytes, name).await?;
    Ok((m.config.digest.clone(), m.layers.clone(), config_new || transferred.iter().any(|t| *t)))
}

/// Transfers one blob unless the sink has it. Returns whether bytes were moved.
async fn copy_blob(src: &Source, dst: &Sink, d: &Descriptor, role: BlobRole, obs: Arc<dyn Observer>) -> Result<bool> {
    let is_layer = matches!(role, BlobRole::Layer { .. });
    if dst.has_blob(d, &role).await? {
        obs.blob(&d.digest, is_layer, BlobStatus::Exists);
        return Ok(false);
    }
    if let Sink::Registry(reg) = dst {
        // Uploads need a re-readable source; mounts are tried when both ends are one registry.
        let mount = src.registry_repo().filter(|(host, _)| reg.same_registry(host)).map(|(_, repo)| repo);
        let source = src.reopenable(d)?;
        return match reg.push(d, source, mount, obs.clone(), is_layer).await? {
            berth_registry::PushOutcome::Exists => {
                obs.blob(&d.digest, is_layer, BlobStatus::Exists);
                Ok(false)
            }
            berth_registry::PushOutcome::Mounted { from } => {
                obs.blob(&d.digest, is_layer, BlobStatus::Mounted { from });
                Ok(false)
            }
            berth_registry::PushOutcome::Uploaded { .. } => {
                obs.blob(&d.digest, is_layer, BlobStatus::Complete);
                Ok(true)
            }
        };
    }
    let r = src.open_blob(d).await?;
    obs.blob(&d.digest, is_layer, BlobStatus::Transferring { done: 0, total: d.size });
    dst.put_blob(d, &role, r, obs.clone()).await?;
    obs.blob(&d.digest, is_layer, BlobStatus::Complete);
    Ok(true)
}

/// Docker records `repo@digest` (RepoDigests) only for content that came from a registry.
fn registry_digest(src: &Source, top: &Descriptor) -> Option<Digest> {
    src.registry_repo().map(|_| top.digest.clone())
}
