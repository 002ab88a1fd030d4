//! Test kit for registry code (dev-dependency only; never linked into the berth binary).
//!
//! * [`fake::FakeRegistry`]: an in-process OCI registry (blobs, manifests, monolithic and chunked
//!   uploads, mounts, tags/catalog pagination, Docker Hub-like search, optional token auth) with
//!   **fault injection**: error statuses, `Retry-After`, connections dropped mid-body, wrong
//!   `Content-Range`, ignored ranges, corrupted bodies, stalls, redirects to another host.
//! * [`token::TokenServer`]: a Docker token-auth server (ES256 JWTs with a libtrust `kid`) that the
//!   real distribution registry trusts; GET with Basic credentials, POST password and
//!   refresh-token grants, refresh tokens. Also the `berth-token-server` binary.
//! * [`distribution::Distribution`]: starts the real CNCF distribution registry
//!   (`/usr/bin/docker-registry`) on a free loopback port in plain, htpasswd, TLS, mTLS or token
//!   mode, with certificates made by `openssl`.
//! * [`random_blob`] and friends for test data.
//! * [`shared::shared_material`]: the corpora and the seed tour beside the repository, skipped
//!   visibly when absent (and a failure under CI).

pub mod distribution;
pub mod fake;
pub mod http;
pub mod pki;
pub mod shared;
pub mod token;

use berth_types::Digest;

/// Deterministic pseudo-random bytes (xorshift), `len` long, different per `seed`.
pub fn random_blob(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The sha256 digest of `data`.
pub fn digest_of(data: &[u8]) -> Digest {
    Digest::sha256_of(data)
}

/// Errors from the test kit's helpers.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

pub(crate) fn io_ctx(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> KitError {
    let context = context.into();
    move |source| KitError::Io { context, source }
}
