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
use crate::source::{BlobRead, Root, Source};
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
    /// Recompress every layer that is not already in this compression (`--dest-compress-format`).
    /// The manifest (and an index over it) is rewritten with the new layer digests.
    pub recompress: Option<berth_types::Compression>,
    /// With `all_platforms`: leave out platforms whose manifest the source lacks (a store
    /// holding some platforms of an index) instead of failing; the index written then lists
    /// only the platforms copied.
    pub skip_missing: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            platform: None,
            all_platforms: false,
            max_concurrent: 3,
            names: Vec::new(),
            recompress: None,
            skip_missing: false,
        }
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
            let (written, config, layers, transferred) =
                copy_image(src, &top, &root.bytes, dst, opts, obs, top_name).await?;
            Ok(Copied {
                finished: Finished {
                    desc: written.clone(),
                    config: Some(config),
                    layers,
                    names,
                    source_digest: registry_digest(src, &top),
                },
                manifest: Some(written),
                source_digest: top.digest,
                transferred,
            })
        }
        ManifestDoc::Index(idx) if opts.all_platforms => {
            let mut transferred = false;
            let mut new_children = Vec::new();
            let host = Platform::host();
            let mut default_image: Option<(Digest, Vec<Descriptor>)> = None;
            let mut default_is_host = false;
            for child in &idx.manifests {
                // Attestation manifests (platform unknown/unknown) are not images to unpack; the
                // store keeps them listed in the index without their content.
                if matches!(dst, Sink::Store(_)) && child.platform.as_ref().is_some_and(|p| p.os == "unknown") {
                    new_children.push(child.clone());
                    continue;
                }
                let bytes = match src.read_manifest(child).await {
                    Ok(b) => b,
                    Err(e) if opts.skip_missing => {
                        tracing::debug!(digest = %child.digest, error = %e, "platform not in the source; left out");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                match ManifestDoc::parse(&bytes, &child.media_type)? {
                    (ManifestDoc::Image(_), mt) => {
                        let mut c = child.clone();
                        c.media_type = mt;
                        let (written, config, layers, t) =
                            copy_image(src, &c, &bytes, dst, opts, obs.clone(), None).await?;
                        // The default platform's image (the host's, else the first) also
                        // describes the whole for docker-archive's manifest.json.
                        let is_host = child.platform.as_ref().is_some_and(|p| host.matches(p));
                        if default_image.is_none() || (is_host && !default_is_host) {
                            default_image = Some((config, layers));
                            default_is_host = is_host;
                        }
                        let mut nc = child.clone();
                        nc.digest = written.digest;
                        nc.size = written.size;
                        nc.media_type = written.media_type;
                        new_children.push(nc);
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
            let unchanged = new_children.len() == idx.manifests.len()
                && new_children.iter().zip(&idx.manifests).all(|(a, b)| a.digest == b.digest);
            let (top, index_bytes) = if unchanged {
                (top, root.bytes.clone())
            } else {
                // Recompressed or left-out children: a new index (OCI when any child turned
                // OCI).
                let any_oci = new_children.iter().any(|c| !media::is_docker(&c.media_type));
                let mt = if any_oci { media::OCI_INDEX.to_string() } else { top.media_type.clone() };
                let new_idx =
                    berth_types::Index { media_type: Some(mt.clone()), manifests: new_children, ..idx.clone() };
                let b = serde_json::to_vec(&new_idx).map_err(|e| TransportError::Unsupported(e.to_string()))?;
                (Descriptor::new(&mt, Digest::sha256_of(&b), b.len() as u64), b)
            };
            dst.put_manifest(&top, &index_bytes, top_name).await?;
            let (config, layers) = default_image.map(|(c, l)| (Some(c), l)).unwrap_or((None, vec![]));
            Ok(Copied {
                finished: Finished {
                    desc: top.clone(),
                    config,
                    layers,
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
            let (written, config, layers, transferred) = copy_image(src, &c, &bytes, dst, opts, obs, top_name).await?;
            // The local store keeps a multi-platform image under one name: the name points at
            // the index and holds the platforms fetched so far (a later `--platform` pull adds
            // one). Other sinks receive the one platform manifest, as before. A recompressed
            // child no longer matches the index, so then the manifest is named alone.
            let keep_index = matches!(dst, Sink::Store(_)) && written.digest == child.digest;
            let named = if keep_index {
                dst.put_manifest(&top, &root.bytes, None).await?;
                top.clone()
            } else {
                written.clone()
            };
            Ok(Copied {
                finished: Finished {
                    desc: named,
                    config: Some(config),
                    layers,
                    names,
                    source_digest: registry_digest(src, &top),
                },
                manifest: Some(written),
                source_digest: top.digest,
                transferred,
            })
        }
    }
}

/// Copies one platform image: layers, config, manifest. Returns (the manifest written — a new
/// one when layers were recompressed —, config digest, layers, whether anything was
/// transferred).
async fn copy_image(
    src: &Source,
    desc: &Descriptor,
    bytes: &[u8],
    dst: &Sink,
    opts: &CopyOptions,
    obs: Arc<dyn Observer>,
    name: Option<&Reference>,
) -> Result<(Descriptor, Digest, Vec<Descriptor>, bool)> {
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
    if let Some(want) = opts.recompress
        && m.layers.iter().any(|l| media::kind(&l.media_type) != media::Kind::Layer(want))
    {
        return copy_image_recompressed(src, desc, &m, &config, dst, want, obs, name).await;
    }
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
    Ok((desc.clone(), m.config.digest.clone(), m.layers.clone(), config_new || transferred.iter().any(|t| *t)))
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

/// The `--dest-compress-format` path: each layer not yet in `want` is decompressed and
/// recompressed into a temp file (its new digest is known only then), sent from there, and the
/// manifest is rewritten with the new descriptors. Recompression is deterministic, so the same
/// input gives the same digests on every copy.
#[allow(clippy::too_many_arguments)]
async fn copy_image_recompressed(
    src: &Source,
    desc: &Descriptor,
    m: &berth_types::Manifest,
    config: &ImageConfig,
    dst: &Sink,
    want: berth_types::Compression,
    obs: Arc<dyn Observer>,
    name: Option<&Reference>,
) -> Result<(Descriptor, Digest, Vec<Descriptor>, bool)> {
    // zstd has no registered Docker media type: the result is OCI.
    let docker = media::is_docker(&desc.media_type) && want != berth_types::Compression::Zstd;
    let tmp = tempfile::tempdir().map_err(|e| TransportError::io(std::env::temp_dir(), e))?;
    let mut layers = Vec::new();
    let mut transferred = false;
    for (i, (l, diff_id)) in m.layers.iter().zip(config.rootfs.diff_ids.iter()).enumerate() {
        let role = BlobRole::Layer { diff_id: diff_id.clone() };
        if media::kind(&l.media_type) == media::Kind::Layer(want) {
            let mut d = l.clone();
            d.media_type = media::layer_type(docker, want).to_string();
            transferred |= copy_blob(src, dst, l, role, obs.clone()).await?;
            layers.push(d);
            continue;
        }
        let path = tmp.path().join(format!("layer{i}"));
        let r = src.open_blob(l).await?;
        let (digest, size) = crate::sink::spawn_blocking({
            let path = path.clone();
            let l = l.clone();
            let diff_id = diff_id.clone();
            move || recompress_to_file(r, &l, &diff_id, want, &path)
        })
        .await?;
        let d = Descriptor::new(media::layer_type(docker, want), digest, size);
        let file_src = Source::Layout(crate::source::LayoutSource::single_file(&path, &d.digest));
        transferred |= copy_blob(&file_src, dst, &d, role, obs.clone()).await?;
        layers.push(d);
    }
    let config_new = copy_blob(src, dst, &m.config, BlobRole::Config, obs.clone()).await?;
    let mut cfg_desc = m.config.clone();
    cfg_desc.media_type = if docker { media::DOCKER_CONFIG } else { media::OCI_CONFIG }.to_string();
    let manifest_type = if docker { media::DOCKER_MANIFEST } else { media::OCI_MANIFEST };
    let new_m = berth_types::Manifest {
        schema_version: 2,
        media_type: Some(manifest_type.to_string()),
        artifact_type: None,
        config: cfg_desc,
        layers: layers.clone(),
        subject: None,
        annotations: m.annotations.clone(),
    };
    let bytes = serde_json::to_vec(&new_m).map_err(|e| TransportError::Unsupported(e.to_string()))?;
    let nd = Descriptor::new(manifest_type, Digest::sha256_of(&bytes), bytes.len() as u64);
    dst.put_manifest(&nd, &bytes, name).await?;
    Ok((nd, m.config.digest.clone(), layers, transferred || config_new))
}

/// Streams a layer blob through decompression and recompression into `path`, checking the
/// source digest and the diffID on the way. Returns the new blob's digest and size.
fn recompress_to_file(
    r: BlobRead,
    l: &Descriptor,
    diff_id: &Digest,
    want: berth_types::Compression,
    path: &std::path::Path,
) -> Result<(Digest, u64)> {
    use berth_archive::compress::{CompressOptions, Decoder};
    use berth_archive::stream::LayerWriter;
    let bridge = tokio_util::io::SyncIoBridge::new(r);
    let mut src =
        berth_types::DigestReader::new(std::io::BufReader::with_capacity(1 << 20, bridge), l.digest.algorithm());
    let f = std::fs::File::create(path).map_err(|e| TransportError::io(path, e))?;
    let (f, digests) = {
        let mut dec = Decoder::new(&mut src).map_err(|e| TransportError::io(path, e))?;
        let mut w = LayerWriter::new(std::io::BufWriter::with_capacity(1 << 20, f), &CompressOptions::new(want))
            .map_err(|e| TransportError::io(path, e))?;
        std::io::copy(&mut dec, &mut w).map_err(|e| TransportError::io(path, e))?;
        w.finish().map_err(|e| TransportError::io(path, e))?
    };
    std::io::copy(&mut src, &mut std::io::sink()).map_err(|e| TransportError::io(path, e))?;
    if src.digest() != l.digest {
        return Err(TransportError::DigestMismatch { digest: l.digest.clone(), actual: src.digest() });
    }
    if &digests.diff_id != diff_id {
        return Err(TransportError::DiffIdMismatch {
            digest: l.digest.clone(),
            expected: diff_id.clone(),
            actual: digests.diff_id,
        });
    }
    let f = f.into_inner().map_err(|e| TransportError::io(path, e.into_error()))?;
    f.sync_all().map_err(|e| TransportError::io(path, e))?;
    Ok((digests.digest, digests.size))
}
