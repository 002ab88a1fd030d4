//! Errors of berth-sign. Each names the file, reference or rule concerned; hints are data.

use std::path::PathBuf;

/// What went wrong while handling keys, signatures or a signature policy.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{what}: {message}")]
    Key { what: String, message: String },
    #[error("{what}: decrypting the private key failed: wrong password?")]
    WrongPassword { what: String },
    #[error("{0}")]
    Crypto(String),
    #[error("{path}: {message}")]
    Policy { path: String, message: String },
    #[error("{0}")]
    Registry(#[from] Box<berth_registry::RegistryError>),
    #[error("{what}: {message}")]
    Format { what: String, message: String },
    /// Verification found no valid signature; `reasons` says why each candidate failed.
    #[error("no matching signatures for {reference}{}", reasons_text(.reasons))]
    NoMatchingSignatures { reference: String, reasons: Vec<String> },
    /// A policy rule refused an image.
    #[error("{reference}: refused by the signature policy {policy} ({rule}): {reason}")]
    Refused { reference: String, policy: String, rule: String, reason: String },
}

fn reasons_text(r: &[String]) -> String {
    if r.is_empty() { String::new() } else { format!(":\n{}", r.join("\n")) }
}

impl From<berth_registry::RegistryError> for SignError {
    fn from(e: berth_registry::RegistryError) -> Self {
        SignError::Registry(Box::new(e))
    }
}

pub type Result<T, E = SignError> = std::result::Result<T, E>;
