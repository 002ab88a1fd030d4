//! Writing a build result as an image in the store.

use std::collections::BTreeMap;

use berth_store::Store;
use berth_types::{Descriptor, Digest, Manifest, media};

use crate::cache::State;
use crate::error::{BuildError, Result};

/// Writes the config and an OCI manifest for `state` (with `labels` added) into the store and
/// returns the manifest descriptor and the image ID. Base-image layers keep their compressed
/// blobs; build layers are uncompressed tars.
pub fn export_image(store: &Store, state: &State, labels: &BTreeMap<String, String>) -> Result<(Descriptor, Digest)> {
    let mut config = state.config.clone();
    // Docker-daemon fields of a base image do not describe this image (a cache image's records
    // are the one extra kept).
    config.extra.retain(|k, _| k == crate::cache::CACHE_CONFIG_KEY);
    if !labels.is_empty() {
        let l = config.config_mut().labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in labels {
            l.insert(k.clone(), v.clone());
        }
    }
    if config.created.is_none() {
        config.created = config.history.last().and_then(|h| h.created.clone());
    }
    let config_bytes =
        serde_json::to_vec(&config).map_err(|e| BuildError::Other(format!("encoding image config: {e}")))?;
    let config_digest = store.put_blob_bytes(&config_bytes, None)?;
    let layers = state
        .layers
        .iter()
        .map(|l| {
            let mut d = l.blob.clone();
            if let media::Kind::Layer(c) = media::kind(&d.media_type) {
                d.media_type = media::layer_type(false, c).to_string();
            }
            d.annotations = None;
            d.platform = None;
            d
        })
        .collect();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        artifact_type: None,
        config: Descriptor::new(media::OCI_CONFIG, config_digest.clone(), config_bytes.len() as u64),
        layers,
        subject: None,
        annotations: None,
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|e| BuildError::Other(format!("encoding manifest: {e}")))?;
    let digest = store.put_blob_bytes(&bytes, None)?;
    Ok((Descriptor::new(media::OCI_MANIFEST, digest, bytes.len() as u64), config_digest))
}

/// Applies `--change` instructions (`docker commit`/`docker import`): CMD, ENTRYPOINT, ENV,
/// EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL, HEALTHCHECK, SHELL. Each change is
/// one Dockerfile line; errors name it.
pub fn apply_changes(config: &mut berth_types::ImageConfig, changes: &[String]) -> Result<()> {
    use berth_dockerfile::Instruction as I;
    let mut cmd_set = false;
    for ch in changes {
        let node = berth_dockerfile::parse_trigger(ch)
            .map_err(|e| BuildError::Other(format!("invalid change {ch:?}: {e}")))?;
        let cmd = berth_dockerfile::parse_instruction(&node)
            .map_err(|e| BuildError::Other(format!("invalid change {ch:?}: {e}")))?;
        match &cmd.instruction {
            I::Cmd(_)
            | I::Entrypoint(_)
            | I::Env { .. }
            | I::Expose { .. }
            | I::Label { .. }
            | I::Onbuild { .. }
            | I::User { .. }
            | I::Volume { .. }
            | I::Stopsignal { .. }
            | I::Healthcheck(_)
            | I::Shell { .. } => {
                let shell = config
                    .config
                    .as_ref()
                    .and_then(|c| c.shell.clone())
                    .unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string()]);
                crate::solve::apply_metadata(config, &cmd.instruction, &shell, &mut cmd_set)?;
            }
            I::Workdir { path } => {
                let cur = config.config.as_ref().and_then(|c| c.working_dir.clone()).unwrap_or_else(|| "/".into());
                let p =
                    if path.starts_with('/') { path.clone() } else { format!("{}/{path}", cur.trim_end_matches('/')) };
                config.config_mut().working_dir = Some(berth_dockerfile::clean_path(&p));
            }
            other => {
                return Err(BuildError::Other(format!(
                    "{} is not a valid change command (use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR)",
                    other.name()
                )));
            }
        }
    }
    Ok(())
}
