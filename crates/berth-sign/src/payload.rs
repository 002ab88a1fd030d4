//! The "simple signing" payload cosign signs (sigstore's `payload.SimpleContainerImage`):
//!
//! ```json
//! {"critical":{"identity":{"docker-reference":"REPO"},"image":{"docker-manifest-digest":"sha256:…"},
//!  "type":"cosign container image signature"},"optional":{…}|null}
//! ```
//!
//! Go's encoding/json writes it in this field order and without spaces; berth writes the same
//! bytes so that the payload digest is what cosign would make.

use berth_types::{Digest, Reference};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Result, SignError};

/// The `critical.type` cosign writes.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";
/// The `critical.type` of containers' own simple signing (accepted when verifying).
pub const ATOMIC_SIGNATURE_TYPE: &str = "atomic container signature";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimpleSigning {
    pub critical: Critical,
    /// Annotations (`--annotation k=v`); `null` when none, as cosign writes.
    pub optional: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Critical {
    pub identity: Identity,
    pub image: Image,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

/// The repository name as cosign (go-containerregistry's `Repository.Name()`) writes it:
/// Docker Hub as `index.docker.io`, no tag, no digest.
pub fn cosign_repository_name(r: &Reference) -> String {
    let domain = if r.domain() == berth_types::reference::DOCKER_HUB { "index.docker.io" } else { r.domain() };
    format!("{domain}/{}", r.path())
}

impl SimpleSigning {
    /// cosign's payload for the image `digest` in `r`'s repository.
    pub fn new(r: &Reference, digest: &Digest, annotations: Map<String, Value>) -> SimpleSigning {
        SimpleSigning {
            critical: Critical {
                identity: Identity { docker_reference: cosign_repository_name(r) },
                image: Image { docker_manifest_digest: digest.to_string() },
                kind: COSIGN_SIGNATURE_TYPE.to_string(),
            },
            optional: if annotations.is_empty() { None } else { Some(annotations) },
        }
    }

    /// The exact bytes to sign.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| SignError::Format { what: "payload".into(), message: e.to_string() })
    }

    /// Parses a payload; `what` names it in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<SimpleSigning> {
        let p: SimpleSigning = serde_json::from_slice(bytes)
            .map_err(|e| SignError::Format { what: what.to_string(), message: format!("invalid payload: {e}") })?;
        if p.critical.kind != COSIGN_SIGNATURE_TYPE && p.critical.kind != ATOMIC_SIGNATURE_TYPE {
            return Err(SignError::Format {
                what: what.to_string(),
                message: format!("unknown signature type {:?}", p.critical.kind),
            });
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_bytes_match_cosign() {
        let r = Reference::parse_normalized("localhost:5000/app:1").unwrap();
        let d = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        let p = SimpleSigning::new(&r, &d, Map::new());
        let want = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"localhost:5000/app"}},"image":{{"docker-manifest-digest":"sha256:{}"}},"type":"cosign container image signature"}},"optional":null}}"#,
            "a".repeat(64)
        );
        assert_eq!(String::from_utf8(p.to_bytes().unwrap()).unwrap(), want);
        let mut ann = Map::new();
        ann.insert("env".into(), Value::String("prod".into()));
        let p2 = SimpleSigning::new(&r, &d, ann);
        assert!(String::from_utf8(p2.to_bytes().unwrap()).unwrap().ends_with(r#""optional":{"env":"prod"}}"#));
        assert_eq!(SimpleSigning::parse(&p2.to_bytes().unwrap(), "x").unwrap(), p2);
    }

    #[test]
    fn docker_hub_is_index_docker_io() {
        let r = Reference::parse_normalized("busybox").unwrap();
        assert_eq!(cosign_repository_name(&r), "index.docker.io/library/busybox");
    }

    #[test]
    fn unknown_type_is_refused() {
        let b = br#"{"critical":{"identity":{"docker-reference":"a/b"},"image":{"docker-manifest-digest":"sha256:x"},"type":"other"},"optional":null}"#;
        assert!(SimpleSigning::parse(b, "x").is_err());
    }
}
