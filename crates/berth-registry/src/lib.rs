//! OCI distribution registry client on reqwest + tokio (rustls; no transparent decompression, so
//! blob bytes are never altered).
//!
//! Entry point: [`Client`] (cheap to clone, `Send + Sync`). Operations:
//! * [`Client::ping`], [`Client::login`];
//! * manifests: [`Client::get_manifest`] (verified, size-capped), [`Client::head_manifest`],
//!   [`Client::put_manifest`];
//! * blobs: [`Client::blob_exists`], [`Client::blob_stream`] / [`Client::get_blob`] (verified,
//!   resumable; corruption is an error in place of EOF), [`Client::pull_blob_to_file`];
//! * uploads: [`Client::push_blob`] from a re-openable [`BlobSource`] (HEAD-first, mount,
//!   monolithic or chunked with fallbacks and resume);
//! * listing: [`Client::list_tags`], [`Client::catalog`], [`Client::search`];
//! * plain downloads (`ADD <URL>`, `import URL`): [`Client::download`], with the same proxies,
//!   certs.d, insecure settings and redirect policy as registries.
//!
//! Scheme choice (documented in docs/registries.md): HTTPS with certificate verification by
//! default; for insecure registries (loopback, `insecure-registries`, registries.conf
//! `insecure = true`) HTTPS without verification first, then plain HTTP, as Docker does.
//!
//! Credentials come from a [`CredentialProvider`] (berth-config's `Keychain` implements it);
//! per-host TLS material from certs.d; proxies from `HTTP(S)_PROXY`/`NO_PROXY` (either case),
//! never for loopback registries.

pub mod auth;
pub mod blob;
pub mod catalog;
pub mod challenge;
pub mod client;
pub mod download;
pub mod error;
pub mod limit;
pub mod manifest;
pub mod retry;
pub mod upload;

pub use auth::{Anonymous, AuthScheme, CredentialProvider, StaticCredentials};
pub use blob::BlobReader;
pub use catalog::SearchResult;
pub use client::{Client, ClientOptions, LoginOutcome, PingInfo};
pub use download::Downloaded;
pub use error::{ApiError, Diagnostic, RegistryError, Result};
pub use limit::Limiter;
pub use manifest::{FetchedManifest, ManifestInfo};
pub use retry::RetryPolicy;
pub use upload::{BlobSource, BoxAsyncRead, PushOptions, PushOutcome};
