//! cosign-compatible signing and verification of images, and the containers signature policy
//! (`policy.json`) that pulls enforce.
//!
//! - [`key`]: key pairs in cosign's formats (encrypted or PKCS#8 private keys, PEM public keys);
//! - [`payload`]: the "simple signing" payload cosign signs;
//! - [`cosign`]: signatures stored as cosign stores them (`sha256-<hex>.sig` manifests) and
//!   their verification;
//! - [`policy`]: containers-policy.json(5), evaluated per transport and scope.
//!
//! Keyless signing (Fulcio certificates, Rekor transparency log) is out of scope: berth talks to
//! no network but the registry.

pub mod error;
pub mod key;

pub use error::{Result, SignError};
pub mod cosign;
pub mod payload;
pub mod policy;

pub use key::{GeneratedKeys, PublicKey, SigningKey};
pub use policy::Policy;
