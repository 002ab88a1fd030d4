//! Image references, digests, platforms and the OCI/Docker manifest, index and config types.
//!
//! Pure data and parsing: no I/O, no async. Everything else in berth builds on these.

pub mod config;
pub mod digest;
pub mod manifest;
pub mod media;
pub mod platform;
pub mod reference;

pub use config::{ContainerConfig, HealthConfig, History, ImageConfig, RootFs};
pub use digest::{Algorithm, Digest, DigestError, DigestReader, DigestWriter, Hasher};
pub use manifest::{Descriptor, Index, MAX_MANIFEST_SIZE, Manifest, ManifestDoc, ManifestError};
pub use media::Compression;
pub use platform::{Platform, PlatformError};
pub use reference::{Reference, ReferenceError};
