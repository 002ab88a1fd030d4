//! Descriptors, image manifests and indexes (OCI and Docker schema 2 share one shape).
//!
//! Contract: a manifest that came from elsewhere is stored and hashed as its **raw bytes**; these
//! structs are for reading fields and for writing manifests berth creates. Re-serializing a pulled
//! manifest would change its digest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::media;
use crate::platform::Platform;

/// Manifests larger than this are refused (the limit containerd and Docker use).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
            artifact_type: None,
        }
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref().and_then(|a| a.get(key)).map(String::as_str)
    }
}

/// An image manifest (OCI `image.manifest.v1` or Docker `distribution.manifest.v2`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index (OCI `image.index.v1`) or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is {size} bytes, larger than the {MAX_MANIFEST_SIZE}-byte limit")]
    TooLarge { size: u64 },
    #[error("unsupported manifest media type {0:?}")]
    UnsupportedType(String),
    #[error(
        "image uses the deprecated Docker Image Format v1 (schema 1), which is not supported; \
         push it again with a current tool to convert it"
    )]
    SchemaV1,
    #[error("malformed {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("no matching manifest for {wanted} in the manifest list entries; available platforms: {available}")]
    NoMatchingPlatform { wanted: String, available: String },
}

/// A parsed manifest document of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // short-lived values; boxing would only add noise at every match
pub enum ManifestDoc {
    Image(Manifest),
    Index(Index),
}

impl ManifestDoc {
    /// Parses raw manifest bytes. `content_type` is what the registry or archive said (may be
    /// empty); the `mediaType` field inside the document wins when present.
    pub fn parse(bytes: &[u8], content_type: &str) -> Result<(ManifestDoc, String), ManifestError> {
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(ManifestError::TooLarge { size: bytes.len() as u64 });
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            #[serde(default)]
            schema_version: Option<u32>,
            #[serde(default)]
            media_type: Option<String>,
            #[serde(default)]
            manifests: Option<serde_json::Value>,
            #[serde(default)]
            config: Option<serde_json::Value>,
        }
        let probe: Probe =
            serde_json::from_slice(bytes).map_err(|source| ManifestError::Json { what: "manifest", source })?;
        if probe.schema_version == Some(1) {
            return Err(ManifestError::SchemaV1);
        }
        let ct = content_type.split(';').next().unwrap_or("").trim();
        let mt = match probe.media_type.as_deref() {
            Some(m) if !m.is_empty() => m.to_string(),
            _ if !ct.is_empty() && ct != "application/json" && ct != "text/plain" => ct.to_string(),
            // An OCI document without mediaType: decide by shape.
            _ if probe.manifests.is_some() => media::OCI_INDEX.to_string(),
            _ if probe.config.is_some() => media::OCI_MANIFEST.to_string(),
            _ => return Err(ManifestError::UnsupportedType(ct.to_string())),
        };
        match media::kind(&mt) {
            media::Kind::Manifest => {
                let m: Manifest = serde_json::from_slice(bytes)
                    .map_err(|source| ManifestError::Json { what: "image manifest", source })?;
                Ok((ManifestDoc::Image(m), mt))
            }
            media::Kind::Index => {
                let i: Index = serde_json::from_slice(bytes)
                    .map_err(|source| ManifestError::Json { what: "image index", source })?;
                Ok((ManifestDoc::Index(i), mt))
            }
            _ if mt == media::DOCKER_MANIFEST_V1 || mt == media::DOCKER_MANIFEST_V1_SIGNED => {
                Err(ManifestError::SchemaV1)
            }
            _ => Err(ManifestError::UnsupportedType(mt)),
        }
    }
}

impl Index {
    /// Picks the manifest for `wanted` (best variant match first), or a
    /// [`ManifestError::NoMatchingPlatform`] listing what exists. Attestation manifests
    /// (`unknown/unknown`) are ignored.
    pub fn select(&self, wanted: &Platform) -> Result<&Descriptor, ManifestError> {
        let mut best: Option<(&Descriptor, usize)> = None;
        for d in &self.manifests {
            if media::kind(&d.media_type) != media::Kind::Manifest {
                continue;
            }
            let Some(p) = &d.platform else { continue };
            if wanted.matches(p) {
                let rank = wanted.match_rank(p);
                if best.is_none_or(|(_, r)| rank < r) {
                    best = Some((d, rank));
                }
            }
        }
        best.map(|(d, _)| d).ok_or_else(|| ManifestError::NoMatchingPlatform {
            wanted: wanted.to_string(),
            available: self.platforms().join(", "),
        })
    }

    /// The platforms listed by this index (excluding attestation entries).
    pub fn platforms(&self) -> Vec<String> {
        self.manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .filter(|p| p.os != "unknown")
            .map(|p| p.clone().normalized().to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::sha256_of(&[n])
    }

    #[test]
    fn parse_docker_and_oci() {
        let m = Manifest {
            schema_version: 2,
            media_type: Some(media::DOCKER_MANIFEST.into()),
            artifact_type: None,
            config: Descriptor::new(media::DOCKER_CONFIG, d(1), 10),
            layers: vec![Descriptor::new(media::DOCKER_LAYER_GZIP, d(2), 20)],
            subject: None,
            annotations: None,
        };
        let bytes = serde_json::to_vec(&m).unwrap();
        let (doc, mt) = ManifestDoc::parse(&bytes, "").unwrap();
        assert_eq!(mt, media::DOCKER_MANIFEST);
        assert_eq!(doc, ManifestDoc::Image(m));
        // OCI without mediaType field: content type or shape decides.
        let raw = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","digest":"{}","size":1}},"layers":[]}}"#,
            media::OCI_CONFIG,
            d(3)
        );
        let (_, mt) = ManifestDoc::parse(raw.as_bytes(), "").unwrap();
        assert_eq!(mt, media::OCI_MANIFEST);
        assert!(matches!(
            ManifestDoc::parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, ""),
            Err(ManifestError::SchemaV1)
        ));
        assert!(matches!(ManifestDoc::parse(b"garbage", ""), Err(ManifestError::Json { .. })));
        let big = vec![b' '; (MAX_MANIFEST_SIZE + 1) as usize];
        assert!(matches!(ManifestDoc::parse(&big, ""), Err(ManifestError::TooLarge { .. })));
    }

    #[test]
    fn select_platform() {
        let entry = |p: &str, n: u8| {
            let mut x = Descriptor::new(media::OCI_MANIFEST, d(n), 1);
            x.platform = Some(Platform::parse(p).unwrap());
            x
        };
        let mut att = Descriptor::new(media::OCI_MANIFEST, d(9), 1);
        att.platform = Some(Platform { os: "unknown".into(), architecture: "unknown".into(), ..Default::default() });
        let idx = Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.into()),
            artifact_type: None,
            manifests: vec![entry("linux/amd64", 1), entry("linux/arm64", 2), entry("linux/arm/v7", 3), att],
            subject: None,
            annotations: None,
        };
        assert_eq!(idx.select(&Platform::parse("linux/arm64").unwrap()).unwrap().digest, d(2));
        assert_eq!(idx.select(&Platform::parse("linux/amd64").unwrap()).unwrap().digest, d(1));
        let err = idx.select(&Platform::parse("linux/s390x").unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no matching manifest for linux/s390x in the manifest list entries; available platforms: linux/amd64, linux/arm64, linux/arm/v7"
        );
    }
}
