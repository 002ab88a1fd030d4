//! Image references, digests, platforms and the OCI/Docker manifest, index and config types.
