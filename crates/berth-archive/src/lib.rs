//! Compression detection and codecs, digesting readers, and safe layer tar apply/produce.
//!
//! Everything here is synchronous `std::io` and streams: no function holds a whole layer in
//! memory. Async callers run it under `spawn_blocking`.

pub mod compress;
pub mod error;
pub mod pgzip;
pub mod stream;
pub mod tar;

pub use compress::{CompressOptions, Compression, Decoder, Encoder, detect};
pub use error::{Error, Result};
pub use stream::{LayerDigests, LayerReader, LayerWriter};
