//! Compression detection and codecs, digesting readers, and safe layer tar apply/produce.
//!
//! Everything here is synchronous `std::io` and streams: no function holds a whole layer in
//! memory. Async callers run it under `spawn_blocking`.

pub mod apply;
pub mod build;
pub mod compress;
pub mod diff;
pub mod error;
pub mod flatten;
pub mod pgzip;
pub mod stream;
pub mod tar;

pub use apply::{ApplyOptions, ApplyReport, OverlayXattr, SkipReason, Skipped, WhiteoutMode, apply_layer, apply_tar};
pub use build::{Content, LayerBuilder, LayerEntry, TreeOptions, WriteReport, write_tree};
pub use compress::{ArchiveCompression, CompressOptions, Compression, Decoder, Encoder, decode_any, detect};
pub use diff::{DiffOptions, overlay_diff, tree_diff};
pub use error::{Error, Result};
pub use flatten::{FlattenReport, flatten};
pub use stream::{LayerDigests, LayerReader, LayerWriter, ReadAhead, WriteBehind};
pub use tar::{EntryKind, Header, TarReader, TarWriter, normalize_path};
