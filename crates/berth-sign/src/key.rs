//! cosign-compatible key pairs.
//!
//! A private key is ECDSA P-256 in PKCS#8 DER, stored either
//! - encrypted as cosign writes it: PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (older cosign:
//!   `ENCRYPTED COSIGN PRIVATE KEY`) around JSON `{"kdf":{"name":"scrypt","params":{"N","r","p"},
//!   "salt"},"cipher":{"name":"nacl/secretbox","nonce"},"ciphertext"}` (base64 fields; the key
//!   is scrypt(password, salt) of 32 bytes; the ciphertext is NaCl secretbox, tag first); or
//! - unencrypted: PEM `PRIVATE KEY` (PKCS#8) or `EC PRIVATE KEY` (SEC1).
//!
//! A public key is PEM `PUBLIC KEY` (X.509 SubjectPublicKeyInfo). Signatures are ECDSA P-256
//! with SHA-256 over the payload bytes, ASN.1 DER encoded, as cosign makes them.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead, KeyInit};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SignError};

/// PEM label cosign 2 writes for encrypted private keys.
pub const ENCRYPTED_SIGSTORE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM label of older cosign releases (still read).
pub const ENCRYPTED_COSIGN_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

// cosign's parameters (go-securesystemslib `encrypted`); decryption accepts no others, so that
// a hostile key file cannot ask for an unbounded amount of memory or time.
const SCRYPT_N: u64 = 32768;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// One PEM block: its label and decoded contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pem {
    pub label: String,
    pub der: Vec<u8>,
}

/// Parses the first PEM block of `text`; `what` names the source in errors.
pub fn parse_pem(text: &str, what: &str) -> Result<Pem> {
    let bad = |m: &str| SignError::Key { what: what.to_string(), message: m.to_string() };
    let start = text.find("-----BEGIN ").ok_or_else(|| bad("no PEM block found"))?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or_else(|| bad("malformed PEM header"))?;
    let label = rest[..label_end].to_string();
    let body = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let end = body.find(&end_marker).ok_or_else(|| bad(&format!("no {end_marker:?} line")))?;
    let b64: String = body[..end]
        .lines()
        .filter(|l| !l.contains(':')) // RFC 1421 headers (Proc-Type…) are not ours
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = B64.decode(b64.as_bytes()).map_err(|e| bad(&format!("invalid base64 in the PEM block: {e}")))?;
    Ok(Pem { label, der })
}

/// Renders one PEM block (64-column lines, as Go's encoding/pem writes).
pub fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

#[derive(Serialize, Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

fn random(len: usize) -> Result<Vec<u8>> {
    let mut v = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut v).map_err(|_| SignError::Crypto("the system random generator failed".into()))?;
    Ok(v)
}

fn derive(password: &[u8], salt: &[u8], n: u64, r: u32, p: u32) -> Result<[u8; 32]> {
    let log_n = n.trailing_zeros() as u8;
    let params = scrypt::Params::new(log_n, r, p, 32).map_err(|e| SignError::Crypto(format!("scrypt: {e}")))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut key).map_err(|e| SignError::Crypto(format!("scrypt: {e}")))?;
    Ok(key)
}

/// Encrypts `plaintext` (a PKCS#8 DER key) with `password` in cosign's JSON envelope.
pub fn encrypt(plaintext: &[u8], password: &[u8]) -> Result<Vec<u8>> {
    let salt = random(SALT_LEN)?;
    let nonce = random(NONCE_LEN)?;
    let key = derive(password, &salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)?;
    let cipher = XSalsa20Poly1305::new((&key).into());
    // crypto_secretbox puts the Poly1305 tag first, exactly as NaCl's secretbox.Seal does.
    let sealed = cipher
        .encrypt(nonce.as_slice().into(), plaintext)
        .map_err(|_| SignError::Crypto("secretbox encryption failed".into()))?;
    let env = Encrypted {
        kdf: Kdf {
            name: "scrypt".into(),
            params: ScryptParams { n: SCRYPT_N, r: SCRYPT_R, p: SCRYPT_P },
            salt: B64.encode(&salt),
        },
        cipher: Cipher { name: "nacl/secretbox".into(), nonce: B64.encode(&nonce) },
        ciphertext: B64.encode(&sealed),
    };
    serde_json::to_vec(&env).map_err(|e| SignError::Crypto(format!("encoding the key: {e}")))
}

/// Decrypts cosign's JSON envelope; `what` names the key file in errors.
pub fn decrypt(envelope: &[u8], password: &[u8], what: &str) -> Result<Vec<u8>> {
    let bad = |m: String| SignError::Key { what: what.to_string(), message: m };
    let env: Encrypted =
        serde_json::from_slice(envelope).map_err(|e| bad(format!("not a cosign encrypted key: {e}")))?;
    if env.kdf.name != "scrypt" {
        return Err(bad(format!("unsupported key derivation {:?} (cosign uses scrypt)", env.kdf.name)));
    }
    if env.cipher.name != "nacl/secretbox" {
        return Err(bad(format!("unsupported cipher {:?} (cosign uses nacl/secretbox)", env.cipher.name)));
    }
    let ScryptParams { n, r, p } = env.kdf.params;
    if (n, r, p) != (SCRYPT_N, SCRYPT_R, SCRYPT_P) {
        return Err(bad(format!("unexpected scrypt parameters N={n} r={r} p={p} (cosign uses N=32768 r=8 p=1)")));
    }
    let salt = B64.decode(&env.kdf.salt).map_err(|e| bad(format!("invalid salt: {e}")))?;
    let nonce = B64.decode(&env.cipher.nonce).map_err(|e| bad(format!("invalid nonce: {e}")))?;
    if nonce.len() != NONCE_LEN {
        return Err(bad(format!("the nonce has {} bytes, not {NONCE_LEN}", nonce.len())));
    }
    let sealed = B64.decode(&env.ciphertext).map_err(|e| bad(format!("invalid ciphertext: {e}")))?;
    let key = derive(password, &salt, n, r, p)?;
    let cipher = XSalsa20Poly1305::new((&key).into());
    cipher
        .decrypt(nonce.as_slice().into(), sealed.as_slice())
        .map_err(|_| SignError::WrongPassword { what: what.to_string() })
}

/// A freshly generated key pair, as files would hold it.
#[derive(Debug, Clone)]
pub struct GeneratedKeys {
    /// `ENCRYPTED SIGSTORE PRIVATE KEY` PEM.
    pub private_pem: String,
    /// `PUBLIC KEY` PEM.
    pub public_pem: String,
}

/// Generates an ECDSA P-256 key pair and encrypts the private half with `password` (which may be
/// empty, as cosign allows).
pub fn generate(password: &[u8]) -> Result<GeneratedKeys> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| SignError::Crypto("generating an ECDSA P-256 key failed".into()))?;
    let key = SigningKey::from_der(pkcs8.as_ref(), "the generated key")?;
    let envelope = encrypt(pkcs8.as_ref(), password)?;
    Ok(GeneratedKeys {
        private_pem: to_pem(ENCRYPTED_SIGSTORE_LABEL, &envelope),
        public_pem: key.public_key().to_pem(),
    })
}

/// An ECDSA P-256 private key.
pub struct SigningKey {
    pair: EcdsaKeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A PKCS#8 or SEC1 DER key.
    pub fn from_der(der: &[u8], what: &str) -> Result<SigningKey> {
        let pair = EcdsaKeyPair::from_private_key_der(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, der).map_err(|e| {
            SignError::Key { what: what.to_string(), message: format!("not an ECDSA P-256 private key ({e})") }
        })?;
        Ok(SigningKey { pair })
    }

    /// Reads a PEM private key: cosign's encrypted format (asking `password` for the password
    /// only then), or an unencrypted PKCS#8/SEC1 key.
    pub fn from_pem(text: &str, what: &str, password: &mut dyn FnMut() -> Result<Vec<u8>>) -> Result<SigningKey> {
        let pem = parse_pem(text, what)?;
        match pem.label.as_str() {
            ENCRYPTED_SIGSTORE_LABEL | ENCRYPTED_COSIGN_LABEL => {
                let pw = password()?;
                let der = decrypt(&pem.der, &pw, what)?;
                SigningKey::from_der(&der, what)
            }
            "PRIVATE KEY" | "EC PRIVATE KEY" => SigningKey::from_der(&pem.der, what),
            other => Err(SignError::Key {
                what: what.to_string(),
                message: format!("unsupported PEM block {other:?} (want a cosign or PKCS#8 EC P-256 private key)"),
            }),
        }
    }

    /// Signs `msg`: ECDSA P-256, SHA-256, DER signature.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let rng = SystemRandom::new();
        let s = self.pair.sign(&rng, msg).map_err(|_| SignError::Crypto("signing failed".into()))?;
        Ok(s.as_ref().to_vec())
    }

    pub fn public_key(&self) -> PublicKey {
        match self.pair.public_key().as_der() {
            Ok(der) => PublicKey { spki: der.as_ref().to_vec() },
            // aws-lc only fails to encode a key it could not have parsed; keep the raw point,
            // which verification accepts too.
            Err(_) => PublicKey { spki: self.pair.public_key().as_ref().to_vec() },
        }
    }
}

/// An ECDSA P-256 public key (SubjectPublicKeyInfo DER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    spki: Vec<u8>,
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY`; `what` names the source in errors.
    pub fn from_pem(text: &str, what: &str) -> Result<PublicKey> {
        let pem = parse_pem(text, what)?;
        if pem.label != "PUBLIC KEY" {
            return Err(SignError::Key {
                what: what.to_string(),
                message: format!("PEM block {:?} is not a PUBLIC KEY", pem.label),
            });
        }
        let key = PublicKey { spki: pem.der };
        // Reject keys of other types now rather than at every verification.
        let probe = aws_lc_rs::signature::ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_ASN1, &key.spki);
        if probe.is_err() {
            return Err(SignError::Key {
                what: what.to_string(),
                message: "not an ECDSA P-256 public key (berth verifies cosign's default key type only)".into(),
            });
        }
        Ok(key)
    }

    pub fn to_pem(&self) -> String {
        to_pem("PUBLIC KEY", &self.spki)
    }

    pub fn der(&self) -> &[u8] {
        &self.spki
    }

    /// Whether `signature` (DER ECDSA) is valid for `msg`.
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_ASN1, &self.spki).verify(msg, signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_sign_verify_round_trip() {
        let keys = generate(b"secret").unwrap();
        assert!(keys.private_pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let pem = parse_pem(&keys.private_pem, "k").unwrap();
        let env: serde_json::Value = serde_json::from_slice(&pem.der).unwrap();
        assert_eq!(env["kdf"]["name"], "scrypt");
        assert_eq!(env["kdf"]["params"]["N"], 32768);
        assert_eq!(env["kdf"]["params"]["r"], 8);
        assert_eq!(env["kdf"]["params"]["p"], 1);
        assert_eq!(env["cipher"]["name"], "nacl/secretbox");
        assert_eq!(B64.decode(env["kdf"]["salt"].as_str().unwrap()).unwrap().len(), 32);
        assert_eq!(B64.decode(env["cipher"]["nonce"].as_str().unwrap()).unwrap().len(), 24);
        let key = SigningKey::from_pem(&keys.private_pem, "k", &mut || Ok(b"secret".to_vec())).unwrap();
        let public = PublicKey::from_pem(&keys.public_pem, "p").unwrap();
        assert_eq!(key.public_key(), public);
        let s = key.sign(b"payload").unwrap();
        assert!(public.verify(b"payload", &s));
        assert!(!public.verify(b"other", &s));
        let other = generate(b"").unwrap();
        assert!(!PublicKey::from_pem(&other.public_pem, "o").unwrap().verify(b"payload", &s));
    }

    #[test]
    fn wrong_password_is_named() {
        let keys = generate(b"right").unwrap();
        let e = SigningKey::from_pem(&keys.private_pem, "cosign.key", &mut || Ok(b"wrong".to_vec())).unwrap_err();
        assert!(matches!(e, SignError::WrongPassword { .. }), "{e}");
        assert!(e.to_string().contains("cosign.key"));
    }

    #[test]
    fn old_cosign_label_and_plain_pkcs8_are_read() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let plain = to_pem("PRIVATE KEY", pkcs8.as_ref());
        let k = SigningKey::from_pem(&plain, "plain", &mut || panic!("no password for a plain key")).unwrap();
        let env = encrypt(pkcs8.as_ref(), b"pw").unwrap();
        let old = to_pem(ENCRYPTED_COSIGN_LABEL, &env);
        let k2 = SigningKey::from_pem(&old, "old", &mut || Ok(b"pw".to_vec())).unwrap();
        assert_eq!(k.public_key(), k2.public_key());
    }

    #[test]
    fn hostile_scrypt_parameters_are_refused() {
        let env = br#"{"kdf":{"name":"scrypt","params":{"N":4294967296,"r":8,"p":1},"salt":"AA=="},"cipher":{"name":"nacl/secretbox","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"ciphertext":"AA=="}"#;
        let e = decrypt(env, b"", "k").unwrap_err();
        assert!(e.to_string().contains("unexpected scrypt parameters"), "{e}");
    }

    #[test]
    fn pem_round_trip() {
        let der: Vec<u8> = (0..200u8).collect();
        let text = to_pem("PUBLIC KEY", &der);
        assert!(text.lines().all(|l| l.len() <= 64));
        assert_eq!(parse_pem(&text, "x").unwrap(), Pem { label: "PUBLIC KEY".into(), der });
    }
}
