//! Image references, parsed and normalized exactly as Docker does
//! (github.com/distribution/reference `ParseNormalizedNamed`).
//!
//! Grammar (from distribution/reference):
//!
//! ```text
//! reference       := name [ ":" tag ] [ "@" digest ]
//! name            := [domain '/'] remote-name
//! domain          := host [':' port-number]
//! host            := domain-name | IPv4address | '[' IPv6address ']'
//! domain-name     := domain-component ['.' domain-component]*
//! domain-component:= /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! remote-name     := path-component ['/' path-component]*
//! path-component  := alpha-numeric [separator alpha-numeric]*
//! alpha-numeric   := /[a-z0-9]+/
//! separator       := /[_.]|__|[-]+/
//! tag             := /[\w][\w.-]{0,127}/
//! ```
//!
//! Normalization: a first path component is a registry host only if it contains `.` or `:`, is
//! `localhost`, or has an uppercase letter; otherwise the registry is `docker.io`, and a
//! single-component name on docker.io gets the `library/` prefix. `index.docker.io` is an alias of
//! `docker.io`. Without tag or digest, the tag `latest` is implied.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The canonical name of Docker Hub in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// The key under which Docker stores Docker Hub credentials in config.json.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";
/// The tag implied when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

const NAME_TOTAL_MAX: usize = 255;

/// Errors from parsing a reference. The texts are Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("invalid tag format")]
    InvalidTag,
    #[error("repository name must have at least one component")]
    NameEmpty,
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    #[error(transparent)]
    Digest(#[from] DigestError),
}

/// A fully normalized image reference: registry domain, repository path, and at least one of a tag
/// or a digest once [`Reference::with_default_tag`] has been applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes a reference the way `docker pull` does. No default tag is added: call
    /// [`Reference::with_default_tag`] when the command implies `latest`.
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        if is_64_hex(s) {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        // The tag and digest are part of the remainder; only the name must be lowercase.
        let remote_name = match remainder.find(':') {
            Some(i) => remainder.get(..i).unwrap_or(&remainder),
            None => &remainder,
        };
        if remote_name.to_lowercase() != remote_name {
            return Err(ReferenceError::Uppercase(remote_name.to_string()));
        }
        let full = format!("{domain}/{remainder}");
        let r = Reference::parse(&full)?;
        Ok(r)
    }

    /// Parses a fully qualified reference (`domain/path[:tag][@digest]`) without normalization.
    /// A reference whose first component is not a domain is still accepted (as distribution's
    /// `Parse` does) and stored with an empty domain.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::NameEmpty);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (rest, Some(d)),
            None => (s, None),
        };
        // The tag separator is the last ':' after the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest.get(last_slash..).and_then(|t| t.rfind(':')) {
            Some(i) => {
                let at = last_slash + i;
                (rest.get(..at).unwrap_or(rest), rest.get(at + 1..))
            }
            None => (rest, None),
        };
        let name_ok = valid_name(name);
        let tag_ok = tag.is_none_or(valid_tag);
        let digest_syntax_ok = digest.is_none_or(valid_digest_syntax);
        if !(name_ok && tag_ok && digest_syntax_ok) {
            // Distinguish an uppercase name from other format errors, as distribution does.
            let lower = s.to_lowercase();
            if lower != s && Reference::parse(&lower).is_ok() {
                return Err(ReferenceError::Uppercase(name.to_string()));
            }
            if name_ok && !tag_ok && digest_syntax_ok {
                return Err(ReferenceError::InvalidFormat);
            }
            return Err(ReferenceError::InvalidFormat);
        }
        if name.len() > NAME_TOTAL_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        let digest = digest.map(Digest::parse).transpose()?;
        let (domain, path) = match name.split_once('/') {
            Some((d, p)) if is_domain_like(d) => (d.to_string(), p.to_string()),
            _ => (String::new(), name.to_string()),
        };
        Ok(Reference { domain, path, tag: tag.map(str::to_string), digest })
    }

    /// Adds the `latest` tag when the reference has neither a tag nor a digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// Registry domain as written in references (`docker.io`, `localhost:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path inside the registry (`library/nginx`).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path`, the fully qualified repository name.
    pub fn repository(&self) -> String {
        if self.domain.is_empty() { self.path.clone() } else { format!("{}/{}", self.domain, self.path) }
    }

    /// The repository name as Docker shows it: `nginx`, `bitnami/nginx`, `localhost:5000/a/b`.
    pub fn familiar_repository(&self) -> String {
        if self.domain == DOCKER_HUB {
            match self.path.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.repository()
        }
    }

    /// The reference as Docker shows it (`nginx:latest`, `bitnami/nginx@sha256:…`).
    pub fn familiar(&self) -> String {
        self.format_with(self.familiar_repository())
    }

    /// The host to contact for the registry API (`registry-1.docker.io` for Docker Hub).
    pub fn registry_host(&self) -> &str {
        if self.domain == DOCKER_HUB { DOCKER_HUB_API_HOST } else { &self.domain }
    }

    /// Returns a copy with the given tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::InvalidTag);
        }
        Ok(Reference { domain: self.domain.clone(), path: self.path.clone(), tag: Some(tag.to_string()), digest: None })
    }

    /// Returns a copy with the given digest (keeping the tag, as `name:tag@digest`).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference { domain: self.domain.clone(), path: self.path.clone(), tag: self.tag.clone(), digest: Some(digest) }
    }

    /// Returns a copy without the tag.
    pub fn without_tag(&self) -> Reference {
        Reference { domain: self.domain.clone(), path: self.path.clone(), tag: None, digest: self.digest.clone() }
    }

    /// Returns a copy without the digest.
    pub fn without_digest(&self) -> Reference {
        Reference { domain: self.domain.clone(), path: self.path.clone(), tag: self.tag.clone(), digest: None }
    }

    /// Returns a copy without tag and digest.
    pub fn repo_only(&self) -> Reference {
        Reference { domain: self.domain.clone(), path: self.path.clone(), tag: None, digest: None }
    }

    /// `repo:tag` (full) when a tag is present.
    pub fn tagged_string(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{}", self.repository(), t))
    }

    fn format_with(&self, repo: String) -> String {
        let mut s = repo;
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form: `docker.io/library/nginx:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format_with(self.repository()))
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse_normalized(s)
    }
}

/// Splits a user-given name into (domain, remainder) the way Docker does, applying the
/// `docker.io` and `library/` defaults.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest)) if is_domain_like(first) => (first.to_string(), rest.to_string()),
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    if domain == "index.docker.io" {
        domain = DOCKER_HUB.to_string();
    }
    if domain == DOCKER_HUB && !remainder.contains('/') {
        remainder = format!("library/{remainder}");
    }
    (domain, remainder)
}

/// Docker's rule for "is this first path component a registry host".
fn is_domain_like(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first
}

fn is_64_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    match b.first() {
        Some(&c) if word(c) => b.len() <= 128 && b.iter().all(|&c| word(c) || c == b'.' || c == b'-'),
        _ => false,
    }
}

fn valid_digest_syntax(d: &str) -> bool {
    // digest := algorithm ':' hex; algorithm := [A-Za-z][A-Za-z0-9]*([+._-][A-Za-z][A-Za-z0-9]*)*
    // hex := [0-9a-fA-F]{32,}
    let Some((alg, hex)) = d.split_once(':') else { return false };
    let alg_ok = alg.split(['+', '.', '_', '-']).all(|c| {
        let b = c.as_bytes();
        matches!(b.first(), Some(c0) if c0.is_ascii_alphabetic()) && b.iter().all(|c| c.is_ascii_alphanumeric())
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `name := [domain '/'] remote-name`, where the domain is recognized only by the grammar.
fn valid_name(name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    // distribution's regexp tries the optional domain first; if the first component parses as a
    // domain *and* the rest is a valid path, fine; otherwise the whole thing must be a path.
    if let Some((first, rest)) = name.split_once('/')
        && valid_domain(first)
        && valid_path(rest)
    {
        return true;
    }
    valid_path(name)
}

fn valid_path(p: &str) -> bool {
    !p.is_empty() && p.split('/').all(valid_path_component)
}

fn valid_path_component(c: &str) -> bool {
    // alpha-numeric (separator alpha-numeric)*, separator = [_.] | __ | -+
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !b.first().is_some_and(|&x| alnum(x)) || !b.last().is_some_and(|&x| alnum(x)) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let x = b[i];
        if alnum(x) {
            i += 1;
            continue;
        }
        // a separator run
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &b[start..i];
        let ok = sep == b"." || sep == b"_" || sep == b"__" || sep.iter().all(|&s| s == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_domain(d: &str) -> bool {
    // host [':' port]
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else { return false };
        if !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') || v6.is_empty() {
            return false;
        }
        match after {
            "" => return true,
            a => match a.strip_prefix(':') {
                Some(p) => ("x", Some(p)),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b.first().is_some_and(|x| x.is_ascii_alphanumeric())
                && b.last().is_some_and(|x| x.is_ascii_alphanumeric())
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalizes_like_docker() {
        let cases: &[(&str, &str, &str)] = &[
            ("nginx", "docker.io/library/nginx:latest", "nginx:latest"),
            ("nginx:1.21", "docker.io/library/nginx:1.21", "nginx:1.21"),
            ("bitnami/nginx", "docker.io/bitnami/nginx:latest", "bitnami/nginx:latest"),
            ("library/nginx", "docker.io/library/nginx:latest", "nginx:latest"),
            ("docker.io/nginx", "docker.io/library/nginx:latest", "nginx:latest"),
            ("index.docker.io/nginx", "docker.io/library/nginx:latest", "nginx:latest"),
            (
                "gcr.io/google-containers/nginx",
                "gcr.io/google-containers/nginx:latest",
                "gcr.io/google-containers/nginx:latest",
            ),
            ("registry.redhat.io/ubi8/ubi", "registry.redhat.io/ubi8/ubi:latest", "registry.redhat.io/ubi8/ubi:latest"),
            ("localhost:5000/a/b:tag", "localhost:5000/a/b:tag", "localhost:5000/a/b:tag"),
            ("localhost/foo", "localhost/foo:latest", "localhost/foo:latest"),
            ("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"),
            ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest", "127.0.0.1:5000/x:latest"),
            ("[::1]:5000/x:y", "[::1]:5000/x:y", "[::1]:5000/x:y"),
            ("a-b__c.d/e", "a-b__c.d/e:latest", "a-b__c.d/e:latest"),
            ("foo/bar__baz", "docker.io/foo/bar__baz:latest", "foo/bar__baz:latest"),
            ("foo/a---b", "docker.io/foo/a---b:latest", "foo/a---b:latest"),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/myapp:latest",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/myapp:latest",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/myapp:latest",
            ),
        ];
        for (input, full, familiar) in cases {
            let r = Reference::parse_normalized(input).unwrap_or_else(|e| panic!("{input}: {e}")).with_default_tag();
            assert_eq!(r.to_string(), *full, "{input}");
            assert_eq!(r.familiar(), *familiar, "{input}");
        }
    }

    #[test]
    fn digests() {
        let r = Reference::parse_normalized(&format!("nginx@{D}")).unwrap().with_default_tag();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().map(|d| d.to_string()).as_deref(), Some(D));
        assert_eq!(r.to_string(), format!("docker.io/library/nginx@{D}"));
        let r = Reference::parse_normalized(&format!("nginx:1.21@{D}")).unwrap();
        assert_eq!(r.tag(), Some("1.21"));
        assert_eq!(r.familiar(), format!("nginx:1.21@{D}"));
        let r = Reference::parse_normalized(&format!("localhost:5000/x@{D}")).unwrap();
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.registry_host(), "localhost:5000");
        assert_eq!(Reference::parse_normalized("nginx").unwrap().registry_host(), DOCKER_HUB_API_HOST);
    }

    #[test]
    fn invalid_references() {
        let cases: &[(&str, &str)] = &[
            ("Nginx", "invalid reference format: repository name (library/Nginx) must be lowercase"),
            ("docker.io/Foo/bar", "invalid reference format: repository name (Foo/bar) must be lowercase"),
            ("nginx:", "invalid reference format"),
            ("nginx:-bad", "invalid reference format"),
            ("nginx:a:b", "invalid reference format"),
            (":tag", "invalid reference format"),
            ("", "invalid reference format"),
            ("a//b", "invalid reference format"),
            ("-foo", "invalid reference format"),
            ("foo-", "invalid reference format"),
            ("foo..bar", "invalid reference format"),
            ("foo@sha256:abc", "invalid reference format"),
            (
                "nginx@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
                "invalid checksum digest length: \"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85\"",
            ),
            ("nginx@md5:e3b0c44298fc1c149afbf4c8996fb924", "unsupported digest algorithm: \"md5\""),
            (
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "invalid repository name (e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855), cannot specify 64-byte hexadecimal strings",
            ),
        ];
        for (input, msg) in cases {
            match Reference::parse_normalized(input) {
                Ok(r) => panic!("{input:?} parsed as {r}"),
                Err(e) => assert_eq!(e.to_string(), *msg, "{input:?}"),
            }
        }
        let long = format!("a/{}", "b".repeat(260));
        assert_eq!(Reference::parse_normalized(&long).unwrap_err(), ReferenceError::NameTooLong);
        let longtag = format!("nginx:{}", "t".repeat(129));
        assert!(Reference::parse_normalized(&longtag).is_err());
    }

    #[test]
    fn tag_manipulation() {
        let r = Reference::parse_normalized("nginx:1.21").unwrap();
        assert_eq!(r.with_tag("latest").unwrap().familiar(), "nginx:latest");
        assert!(r.with_tag("-x").is_err());
        assert_eq!(r.repo_only().familiar(), "nginx");
        assert_eq!(r.tagged_string().as_deref(), Some("docker.io/library/nginx:1.21"));
    }
}
