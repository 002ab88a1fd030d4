//! Compression detection and codecs, digesting readers, and safe layer tar apply/produce.
