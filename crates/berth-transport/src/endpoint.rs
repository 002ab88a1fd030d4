//! Transport references, as skopeo spells them: `docker://REF`, `oci:DIR[:TAG]`,
//! `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:REF]`, and the local store (`berth:REF`,
//! `containers-storage:REF`, or a bare reference).

use std::fmt;
use std::path::PathBuf;

use berth_types::{Reference, ReferenceError};

use crate::TransportError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A registry repository.
    Registry(Reference),
    /// berth's own store; the string is a name or image ID as the user typed it.
    Store(String),
    /// An OCI image layout directory; the tag selects an `org.opencontainers.image.ref.name`.
    OciDir { path: PathBuf, tag: Option<String> },
    /// A tar of an OCI image layout.
    OciArchive { path: PathBuf, tag: Option<String> },
    /// A `docker save` archive; the reference selects an image in it (source) or names the
    /// image written (sink).
    DockerArchive { path: PathBuf, reference: Option<Reference> },
}

impl Endpoint {
    /// Parses a transport reference. A string without a known transport prefix is an image in
    /// the local store.
    pub fn parse(s: &str) -> Result<Endpoint, TransportError> {
        let bad = |why: &str| TransportError::BadEndpoint { input: s.to_string(), reason: why.to_string() };
        if let Some(rest) = s.strip_prefix("docker://") {
            let r = Reference::parse_normalized(rest).map_err(|e: ReferenceError| bad(&e.to_string()))?;
            return Ok(Endpoint::Registry(r.with_default_tag()));
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            let (path, tag) = split_path_tag(rest);
            if path.is_empty() {
                return Err(bad("missing directory (oci:DIR[:TAG])"));
            }
            return Ok(Endpoint::OciDir { path: PathBuf::from(path), tag });
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (path, tag) = split_path_tag(rest);
            if path.is_empty() {
                return Err(bad("missing file (oci-archive:FILE[:TAG])"));
            }
            return Ok(Endpoint::OciArchive { path: PathBuf::from(path), tag });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (path, r) = split_path_tag(rest);
            if path.is_empty() {
                return Err(bad("missing file (docker-archive:FILE[:REF])"));
            }
            let reference = r
                .map(|r| Reference::parse_normalized(&r).map(Reference::with_default_tag))
                .transpose()
                .map_err(|e| bad(&e.to_string()))?;
            return Ok(Endpoint::DockerArchive { path: PathBuf::from(path), reference });
        }
        for prefix in ["berth:", "containers-storage:", "docker-daemon:"] {
            if let Some(rest) = s.strip_prefix(prefix) {
                if rest.is_empty() {
                    return Err(bad("missing image name"));
                }
                return Ok(Endpoint::Store(rest.to_string()));
            }
        }
        if let Some((scheme, _)) = s.split_once(':')
            && !scheme.contains(['/', '.'])
            && ["dir", "docker", "tarball", "sif"].contains(&scheme)
        {
            return Err(bad(&format!(
                "transport {scheme:?} is not supported (use docker://, oci:, oci-archive:, docker-archive: or berth:)"
            )));
        }
        Ok(Endpoint::Store(s.to_string()))
    }
}

/// Splits `PATH[:TAG]` at the first `:` (as skopeo does on Linux).
fn split_path_tag(s: &str) -> (String, Option<String>) {
    match s.split_once(':') {
        Some((p, t)) if !t.is_empty() => (p.to_string(), Some(t.to_string())),
        Some((p, _)) => (p.to_string(), None),
        None => (s.to_string(), None),
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Registry(r) => write!(f, "docker://{r}"),
            Endpoint::Store(s) => write!(f, "berth:{s}"),
            Endpoint::OciDir { path, tag } => {
                write!(f, "oci:{}{}", path.display(), tag.as_ref().map(|t| format!(":{t}")).unwrap_or_default())
            }
            Endpoint::OciArchive { path, tag } => {
                write!(f, "oci-archive:{}{}", path.display(), tag.as_ref().map(|t| format!(":{t}")).unwrap_or_default())
            }
            Endpoint::DockerArchive { path, reference } => write!(
                f,
                "docker-archive:{}{}",
                path.display(),
                reference.as_ref().map(|r| format!(":{}", r.familiar())).unwrap_or_default()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports() {
        assert_eq!(
            Endpoint::parse("docker://busybox").unwrap(),
            Endpoint::Registry(Reference::parse_normalized("busybox:latest").unwrap())
        );
        assert_eq!(
            Endpoint::parse("oci:/tmp/x:v1").unwrap(),
            Endpoint::OciDir { path: "/tmp/x".into(), tag: Some("v1".into()) }
        );
        assert_eq!(Endpoint::parse("oci:/tmp/x").unwrap(), Endpoint::OciDir { path: "/tmp/x".into(), tag: None });
        assert_eq!(
            Endpoint::parse("docker-archive:/a.tar:busybox").unwrap(),
            Endpoint::DockerArchive {
                path: "/a.tar".into(),
                reference: Some(Reference::parse_normalized("busybox:latest").unwrap())
            }
        );
        assert_eq!(Endpoint::parse("berth:busybox").unwrap(), Endpoint::Store("busybox".into()));
        assert_eq!(Endpoint::parse("localhost:5000/a:b").unwrap(), Endpoint::Store("localhost:5000/a:b".into()));
        assert!(Endpoint::parse("dir:/x").is_err());
        assert!(Endpoint::parse("docker://UPPER").is_err());
        assert!(Endpoint::parse("oci:").is_err());
    }
}
