//! OCI distribution registry client: auth, manifests, streamed and resumable blobs, uploads.
