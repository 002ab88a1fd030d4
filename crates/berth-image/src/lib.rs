//! Read-only Image, Layer and Index views shared by every transport.
