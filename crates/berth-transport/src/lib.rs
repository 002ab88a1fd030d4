//! Sources and sinks for every medium (registry, the local store, OCI layout directory, OCI
//! archive, docker-archive) and the one copy pipeline that moves images between them. Pull,
//! push, save, load and `berth cp` are all [`copy`] with different ends.

pub mod copy;
pub mod endpoint;
mod error;
pub mod index;
pub mod layout;
pub mod lists;
pub mod observer;
pub mod recompress;
pub mod registry;
pub mod sink;
pub mod source;
pub mod unpack;

pub use copy::{Copied, CopyOptions, copy_all, copy_one, copy_root};
pub use endpoint::Endpoint;
pub use error::{Result, TransportError};
pub use observer::{BlobStatus, Observer, Quiet};
pub use sink::{ArchiveFormat, ArchiveSink, BlobRole, Finished, OciDirSink, Sink, StoreSink};
pub use source::{BlobRead, Root, Source};
