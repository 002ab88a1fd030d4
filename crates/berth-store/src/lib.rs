//! The local content-addressed image store: blobs, refs, locks, garbage collection and unpacked layers.
