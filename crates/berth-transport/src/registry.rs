//! Registry source and sink (filled in on top of berth-registry).

use std::sync::Arc;

use berth_types::{Descriptor, Reference};

use crate::observer::Observer;
use crate::source::{BlobRead, Root};
use crate::{Result, TransportError};

pub struct RegistrySource {
    reference: Reference,
}

impl RegistrySource {
    pub fn reference(&self) -> &Reference {
        &self.reference
    }
    pub fn location(&self) -> String {
        format!("docker://{}", self.reference)
    }
    pub async fn root(&self) -> Result<Root> {
        Err(TransportError::Unsupported("registry transport not wired yet".into()))
    }
    pub async fn read_manifest(&self, _d: &Descriptor) -> Result<Vec<u8>> {
        Err(TransportError::Unsupported("registry transport not wired yet".into()))
    }
    pub async fn read_small_blob(&self, _d: &Descriptor) -> Result<Vec<u8>> {
        Err(TransportError::Unsupported("registry transport not wired yet".into()))
    }
    pub async fn open_blob(&self, _d: &Descriptor) -> Result<BlobRead> {
        Err(TransportError::Unsupported("registry transport not wired yet".into()))
    }
}

pub struct RegistrySink {
    reference: Reference,
}

impl RegistrySink {
    pub fn location(&self) -> String {
        format!("docker://{}", self.reference)
    }
    pub fn same_registry(&self, host: &str) -> bool {
        self.reference.domain() == host
    }
    pub async fn has_blob(&self, _d: &Descriptor) -> Result<bool> {
        Ok(false)
    }
    pub async fn mount(&self, _d: &Descriptor, _from: &str) -> Result<bool> {
        Ok(false)
    }
    pub async fn put_blob(&self, _d: &Descriptor, _r: BlobRead, _obs: Arc<dyn Observer>) -> Result<()> {
        Err(TransportError::Unsupported("registry transport not wired yet".into()))
    }
    pub async fn put_manifest(&self, _d: &Descriptor, _bytes: &[u8], _name: Option<&Reference>) -> Result<()> {
        Err(TransportError::Unsupported("registry transport not wired yet".into()))
    }
}
