//! containers-policy.json(5): which images may be pulled, and with which signatures.
//!
//! The file is looked up as containers/image does: the explicit `--signature-policy FILE`, else
//! `$HOME/.config/containers/policy.json`, else `/etc/containers/policy.json`. Without any file
//! berth accepts every image (Docker has no such policy).
//!
//! Requirements for an image in the `docker` transport are those of the most specific scope in
//! `transports.docker` — `REPO:TAG` or `REPO@DIGEST`, then `REPO`, each parent namespace, the
//! registry host, wildcard domains (`*.example.com`, `*.com`), then the transport's `""` entry —
//! else `default`. Every requirement must hold.
//!
//! Supported: `insecureAcceptAnything`, `reject`, and `sigstoreSigned` with `keyPath`,
//! `keyPaths`, `keyData`, `keyDatas` and `signedIdentity`. `signedBy` (GPG), and sigstore's
//! Fulcio, PKI and Rekor options, are refused with an error saying so, never silently skipped.
//!
//! One deliberate difference: under `matchRepoDigestOrExact` (the default), a signature whose
//! identity names only the repository — what `cosign sign` writes — is accepted for a tagged
//! pull when the repository matches. The signature still binds the manifest digest the tag
//! resolved to; containers/image would demand `matchRepository` for such signatures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use berth_types::{Digest, Reference};
use serde::Deserialize;
use serde_json::Value;

use crate::cosign::{StoredSignature, check_signatures};
use crate::error::{Result, SignError};
use crate::key::PublicKey;
use crate::payload::SimpleSigning;

/// The system-wide policy file.
pub const SYSTEM_POLICY: &str = "/etc/containers/policy.json";

/// A parsed policy file.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Where it came from (for messages).
    pub path: String,
    default: Vec<Value>,
    transports: BTreeMap<String, BTreeMap<String, Vec<Value>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    default: Vec<Value>,
    #[serde(default)]
    transports: BTreeMap<String, BTreeMap<String, Vec<Value>>>,
}

/// One requirement, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    InsecureAcceptAnything,
    Reject,
    SigstoreSigned { keys: Vec<KeySource>, identity: SignedIdentity },
}

/// Where a `sigstoreSigned` key comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySource {
    Path(PathBuf),
    /// `keyData`: the PEM, base64-encoded in the policy.
    Data(Vec<u8>),
}

/// `signedIdentity`: how the signature's `docker-reference` must relate to the pulled name.
#[derive(Debug, Clone, PartialEq)]
pub enum SignedIdentity {
    MatchExact,
    MatchRepoDigestOrExact,
    MatchRepository,
    ExactReference(String),
    ExactRepository(String),
    RemapIdentity { prefix: String, signed_prefix: String },
}

/// The requirements that apply to one image and where they came from.
#[derive(Debug, Clone)]
pub struct Applicable {
    /// `transports.docker["SCOPE"]` or `default`.
    pub rule: String,
    pub requirements: Vec<Requirement>,
}

impl Applicable {
    /// Whether anything must be checked (false: every requirement is insecureAcceptAnything).
    pub fn needs_signatures(&self) -> bool {
        self.requirements.iter().any(|r| !matches!(r, Requirement::InsecureAcceptAnything))
    }
}

fn perr(path: &str, message: impl Into<String>) -> SignError {
    SignError::Policy { path: path.to_string(), message: message.into() }
}

impl Policy {
    /// Finds and reads the policy: `explicit`, else `home`/.config/containers/policy.json,
    /// else [`SYSTEM_POLICY`]; `Ok(None)` when none of them exists.
    pub fn load(explicit: Option<&Path>, home: Option<&Path>) -> Result<Option<Policy>> {
        let mut candidates = Vec::new();
        if let Some(p) = explicit {
            let bytes = std::fs::read(p).map_err(|source| SignError::Io { path: p.to_path_buf(), source })?;
            return Policy::parse(&bytes, &p.display().to_string()).map(Some);
        }
        if let Some(h) = home {
            candidates.push(h.join(".config/containers/policy.json"));
        }
        candidates.push(PathBuf::from(SYSTEM_POLICY));
        for c in candidates {
            match std::fs::read(&c) {
                Ok(bytes) => return Policy::parse(&bytes, &c.display().to_string()).map(Some),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(SignError::Io { path: c, source }),
            }
        }
        Ok(None)
    }

    /// Parses a policy file's contents; `path` names it in errors.
    pub fn parse(bytes: &[u8], path: &str) -> Result<Policy> {
        let raw: RawPolicy = serde_json::from_slice(bytes).map_err(|e| perr(path, format!("invalid policy: {e}")))?;
        if raw.default.is_empty() {
            return Err(perr(path, "\"default\" must list at least one requirement"));
        }
        Ok(Policy { path: path.to_string(), default: raw.default, transports: raw.transports })
    }

    /// The requirements for `r` in the `docker` transport (see the module documentation).
    pub fn applicable(&self, r: &Reference) -> Result<Applicable> {
        let (rule, raw) = match self.transports.get("docker") {
            Some(scopes) => match docker_scopes(r).into_iter().find_map(|s| scopes.get(&s).map(|v| (s, v))) {
                Some((scope, v)) => (format!("transports.docker[{scope:?}]"), v),
                None => ("default".to_string(), &self.default),
            },
            None => ("default".to_string(), &self.default),
        };
        let requirements = raw
            .iter()
            .map(|v| parse_requirement(v).map_err(|m| perr(&self.path, format!("{rule}: {m}"))))
            .collect::<Result<Vec<_>>>()?;
        if requirements.is_empty() {
            return Err(perr(&self.path, format!("{rule}: an empty list of requirements")));
        }
        Ok(Applicable { rule, requirements })
    }

    /// Refuses `r` when one of its requirements is `reject` (no need to ask the registry).
    pub fn check_reject(&self, r: &Reference, app: &Applicable) -> Result<()> {
        if app.requirements.contains(&Requirement::Reject) {
            return Err(SignError::Refused {
                reference: r.familiar(),
                policy: self.path.clone(),
                rule: app.rule.clone(),
                reason: "the rule is \"reject\"".into(),
            });
        }
        Ok(())
    }

    /// Checks `r` (resolved to the manifest `digest`) against its requirements, with
    /// `signatures` the cosign signatures stored for `digest`. `Ok(())` means accepted; a
    /// refusal names the policy file and rule.
    pub fn check(
        &self,
        r: &Reference,
        digest: &Digest,
        app: &Applicable,
        signatures: &[StoredSignature],
    ) -> Result<()> {
        let refuse = |reason: String| SignError::Refused {
            reference: r.familiar(),
            policy: self.path.clone(),
            rule: app.rule.clone(),
            reason,
        };
        for req in &app.requirements {
            match req {
                Requirement::InsecureAcceptAnything => {}
                Requirement::Reject => return Err(refuse("the rule is \"reject\"".into())),
                Requirement::SigstoreSigned { keys, identity } => {
                    let keys = keys.iter().map(|k| load_key(k, &self.path)).collect::<Result<Vec<_>>>()?;
                    if signatures.is_empty() {
                        return Err(refuse(format!(
                            "a sigstore signature is required, and {digest} has none (no {} tag)",
                            crate::cosign::signature_tag(digest)
                        )));
                    }
                    let (ok, reasons) =
                        check_signatures(signatures, &keys, digest, &|p| identity_accepts(identity, r, p));
                    if ok.is_empty() {
                        return Err(refuse(format!(
                            "no signature is valid for the rule's keys and signedIdentity: {}",
                            reasons.join("; ")
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

fn load_key(k: &KeySource, policy: &str) -> Result<PublicKey> {
    match k {
        KeySource::Path(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| SignError::Io { path: p.clone(), source })?;
            PublicKey::from_pem(&text, &p.display().to_string())
        }
        KeySource::Data(d) => PublicKey::from_pem(&String::from_utf8_lossy(d), &format!("{policy}: keyData")),
    }
}

/// The scopes tried for `r` in `transports.docker`, most specific first (containers/image's
/// `PolicyConfigurationIdentity` followed by its namespaces).
pub fn docker_scopes(r: &Reference) -> Vec<String> {
    let name = r.repository();
    let mut out = Vec::new();
    match (r.digest(), r.tag()) {
        (Some(d), _) => out.push(format!("{name}@{d}")),
        (None, Some(t)) => out.push(format!("{name}:{t}")),
        (None, None) => {}
    }
    let mut n = name.as_str();
    loop {
        out.push(n.to_string());
        match n.rfind('/') {
            Some(i) => n = &n[..i],
            None => break,
        }
    }
    let mut host = n.split(':').next().unwrap_or(n);
    while let Some(i) = host.find('.') {
        host = &host[i + 1..];
        out.push(format!("*.{host}"));
    }
    out.push(String::new());
    out
}

fn str_field(v: &Value, key: &str) -> std::result::Result<Option<String>, String> {
    match v.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn str_list(v: &Value, key: &str) -> std::result::Result<Vec<String>, String> {
    match v.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => {
            a.iter().map(|x| x.as_str().map(str::to_string).ok_or_else(|| format!("{key} must list strings"))).collect()
        }
        Some(_) => Err(format!("{key} must be a list of strings")),
    }
}

/// Parses one requirement object.
pub fn parse_requirement(v: &Value) -> std::result::Result<Requirement, String> {
    let kind = v.get("type").and_then(Value::as_str).ok_or("a requirement without \"type\"")?;
    match kind {
        "insecureAcceptAnything" => Ok(Requirement::InsecureAcceptAnything),
        "reject" => Ok(Requirement::Reject),
        "signedBy" => Err("requires GPG signatures (\"signedBy\"), which berth does not support; \
             berth verifies sigstore (cosign) signatures only (\"sigstoreSigned\")"
            .into()),
        "sigstoreSigned" => {
            for unsupported in [
                "fulcio",
                "pki",
                "rekorPublicKeyPath",
                "rekorPublicKeyPaths",
                "rekorPublicKeyData",
                "rekorPublicKeyDatas",
            ] {
                if v.get(unsupported).is_some() {
                    return Err(format!(
                        "sigstoreSigned with {unsupported:?} is not supported: berth verifies key-based signatures only (no Fulcio, PKI or Rekor)"
                    ));
                }
            }
            let mut keys: Vec<KeySource> = Vec::new();
            keys.extend(str_field(v, "keyPath")?.map(|p| KeySource::Path(PathBuf::from(p))));
            keys.extend(str_list(v, "keyPaths")?.into_iter().map(|p| KeySource::Path(PathBuf::from(p))));
            let mut datas = str_list(v, "keyDatas")?;
            datas.extend(str_field(v, "keyData")?);
            for d in datas {
                keys.push(KeySource::Data(B64.decode(d.trim()).map_err(|e| format!("keyData is not base64: {e}"))?));
            }
            if keys.is_empty() {
                return Err("sigstoreSigned needs keyPath, keyPaths, keyData or keyDatas".into());
            }
            let identity = match v.get("signedIdentity") {
                None => SignedIdentity::MatchRepoDigestOrExact,
                Some(id) => parse_identity(id)?,
            };
            Ok(Requirement::SigstoreSigned { keys, identity })
        }
        other => Err(format!("unknown requirement type {other:?}")),
    }
}

fn parse_identity(v: &Value) -> std::result::Result<SignedIdentity, String> {
    let kind = v.get("type").and_then(Value::as_str).ok_or("a signedIdentity without \"type\"")?;
    Ok(match kind {
        "matchExact" => SignedIdentity::MatchExact,
        "matchRepoDigestOrExact" => SignedIdentity::MatchRepoDigestOrExact,
        "matchRepository" => SignedIdentity::MatchRepository,
        "exactReference" => SignedIdentity::ExactReference(
            str_field(v, "dockerReference")?.ok_or("exactReference needs dockerReference")?,
        ),
        "exactRepository" => SignedIdentity::ExactRepository(
            str_field(v, "dockerRepository")?.ok_or("exactRepository needs dockerRepository")?,
        ),
        "remapIdentity" => SignedIdentity::RemapIdentity {
            prefix: str_field(v, "prefix")?.ok_or("remapIdentity needs prefix")?,
            signed_prefix: str_field(v, "signedPrefix")?.ok_or("remapIdentity needs signedPrefix")?,
        },
        other => return Err(format!("unknown signedIdentity type {other:?}")),
    })
}

fn parse_ref(s: &str) -> Option<Reference> {
    Reference::parse_normalized(s).ok()
}

fn name_only(r: &Reference) -> bool {
    r.tag().is_none() && r.digest().is_none()
}

fn same_exact(a: &Reference, b: &Reference) -> bool {
    a.repository() == b.repository() && a.tag() == b.tag() && a.digest() == b.digest()
}

/// Whether `identity` accepts payload `p` for the image pulled as `intended`.
pub fn identity_accepts(identity: &SignedIdentity, intended: &Reference, p: &SimpleSigning) -> bool {
    let Some(signed) = parse_ref(&p.critical.identity.docker_reference) else {
        return false;
    };
    match identity {
        SignedIdentity::MatchExact => !name_only(&signed) && same_exact(&signed, intended),
        SignedIdentity::MatchRepoDigestOrExact => repo_digest_or_exact(intended, &signed),
        SignedIdentity::MatchRepository => signed.repository() == intended.repository(),
        SignedIdentity::ExactReference(want) => {
            parse_ref(want).is_some_and(|w| !name_only(&signed) && same_exact(&signed, &w))
        }
        SignedIdentity::ExactRepository(want) => parse_ref(want).is_some_and(|w| signed.repository() == w.repository()),
        SignedIdentity::RemapIdentity { prefix, signed_prefix } => {
            let full = intended.to_string();
            let remapped = match full.strip_prefix(prefix.as_str()) {
                // The prefix must end at a path or tag boundary, as containers/image requires.
                Some(rest) if rest.is_empty() || rest.starts_with(['/', ':', '@']) || prefix.ends_with('/') => {
                    parse_ref(&format!("{signed_prefix}{rest}"))
                }
                _ => None,
            };
            repo_digest_or_exact(remapped.as_ref().unwrap_or(intended), &signed)
        }
    }
}

fn repo_digest_or_exact(intended: &Reference, signed: &Reference) -> bool {
    if intended.digest().is_some() {
        return signed.repository() == intended.repository();
    }
    if name_only(signed) {
        // cosign's identity (repository only): see the module documentation.
        return signed.repository() == intended.repository();
    }
    same_exact(signed, intended)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        Reference::parse_normalized(s).unwrap()
    }

    #[test]
    fn scopes_most_specific_first() {
        assert_eq!(
            docker_scopes(&r("registry.example.com:5000/ns/app:1")),
            vec![
                "registry.example.com:5000/ns/app:1",
                "registry.example.com:5000/ns/app",
                "registry.example.com:5000/ns",
                "registry.example.com:5000",
                "*.example.com",
                "*.com",
                "",
            ]
        );
        assert_eq!(docker_scopes(&r("busybox:1"))[..2], ["docker.io/library/busybox:1", "docker.io/library/busybox"]);
    }

    const POLICY: &str = r#"{
        "default": [{"type": "reject"}],
        "transports": {
            "docker-daemon": {"": [{"type": "insecureAcceptAnything"}]},
            "docker": {
                "localhost:5000/open": [{"type": "insecureAcceptAnything"}],
                "localhost:5000/signed": [{"type": "sigstoreSigned", "keyPath": "/k.pub",
                    "signedIdentity": {"type": "matchRepository"}}],
                "localhost:5000/gpg": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg"}],
                "*.example.com": [{"type": "insecureAcceptAnything"}]
            }
        }
    }"#;

    #[test]
    fn lookup_per_scope() {
        let p = Policy::parse(POLICY.as_bytes(), "policy.json").unwrap();
        let a = p.applicable(&r("localhost:5000/open:1")).unwrap();
        assert_eq!(a.rule, r#"transports.docker["localhost:5000/open"]"#);
        assert!(!a.needs_signatures());
        let a = p.applicable(&r("localhost:5000/signed:1")).unwrap();
        assert!(matches!(
            &a.requirements[0],
            Requirement::SigstoreSigned { identity: SignedIdentity::MatchRepository, .. }
        ));
        let a = p.applicable(&r("a.b.example.com/x:1")).unwrap();
        assert_eq!(a.rule, r#"transports.docker["*.example.com"]"#);
        let a = p.applicable(&r("localhost:5000/other")).unwrap();
        assert_eq!(a.rule, "default");
        assert_eq!(a.requirements, vec![Requirement::Reject]);
        let e = p.applicable(&r("localhost:5000/gpg:1")).unwrap_err().to_string();
        assert!(e.contains("GPG") && e.contains("policy.json"), "{e}");
    }

    #[test]
    fn reject_names_the_rule() {
        let p = Policy::parse(POLICY.as_bytes(), "policy.json").unwrap();
        let img = r("localhost:5000/other:1");
        let a = p.applicable(&img).unwrap();
        let d = Digest::sha256_of(b"x");
        let e = p.check(&img, &d, &a, &[]).unwrap_err().to_string();
        assert!(e.contains("policy.json") && e.contains("default") && e.contains("reject"), "{e}");
    }

    #[test]
    fn debian_default_accepts_anything() {
        let p = Policy::parse(br#"{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker-daemon":{"":[{"type":"insecureAcceptAnything"}]}}}"#, "p").unwrap();
        assert!(!p.applicable(&r("busybox")).unwrap().needs_signatures());
    }

    #[test]
    fn unknown_fields_are_errors() {
        assert!(Policy::parse(br#"{"default":[{"type":"reject"}],"extra":1}"#, "p").is_err());
        let p = Policy::parse(br#"{"default":[{"type":"sigstoreSigned","keyPath":"/k","fulcio":{}}]}"#, "p").unwrap();
        assert!(p.applicable(&r("a")).unwrap_err().to_string().contains("Fulcio"));
    }

    fn payload(identity: &str) -> SimpleSigning {
        let mut p = SimpleSigning::new(&r("x"), &Digest::sha256_of(b"m"), Default::default());
        p.critical.identity.docker_reference = identity.to_string();
        p
    }

    #[test]
    fn signed_identities() {
        use SignedIdentity::*;
        let tagged = r("localhost:5000/app:1");
        let by_digest = r(&format!("localhost:5000/app@{}", Digest::sha256_of(b"m")));
        let repo_only = payload("localhost:5000/app");
        let with_tag = payload("localhost:5000/app:1");
        let other_tag = payload("localhost:5000/app:2");
        let other_repo = payload("localhost:5000/other");
        assert!(identity_accepts(&MatchRepoDigestOrExact, &tagged, &with_tag));
        assert!(!identity_accepts(&MatchRepoDigestOrExact, &tagged, &other_tag));
        assert!(identity_accepts(&MatchRepoDigestOrExact, &tagged, &repo_only));
        assert!(identity_accepts(&MatchRepoDigestOrExact, &by_digest, &other_tag));
        assert!(!identity_accepts(&MatchRepoDigestOrExact, &tagged, &other_repo));
        assert!(identity_accepts(&MatchExact, &tagged, &with_tag));
        assert!(!identity_accepts(&MatchExact, &tagged, &repo_only));
        assert!(identity_accepts(&MatchRepository, &tagged, &other_tag));
        assert!(!identity_accepts(&MatchRepository, &tagged, &other_repo));
        assert!(identity_accepts(&ExactRepository("localhost:5000/other".into()), &tagged, &other_repo));
        assert!(identity_accepts(&ExactReference("localhost:5000/app:2".into()), &tagged, &other_tag));
        assert!(!identity_accepts(&ExactReference("localhost:5000/app:2".into()), &tagged, &with_tag));
        let remap =
            RemapIdentity { prefix: "mirror.local:5000/app".into(), signed_prefix: "localhost:5000/app".into() };
        assert!(identity_accepts(&remap, &r("mirror.local:5000/app:1"), &with_tag));
        assert!(!identity_accepts(&remap, &r("mirror.local:5000/app:1"), &other_tag));
    }
}
