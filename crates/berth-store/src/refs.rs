//! The reference table: `index.json` of the OCI layout.
//!
//! Each entry is a descriptor of a manifest (or an index, for multi-platform copies) with
//! annotations:
//! - `org.opencontainers.image.ref.name`: the fully qualified reference
//!   (`docker.io/library/nginx:latest`, or `docker.io/library/nginx@sha256:…` for a digest
//!   reference). Entries without it are dangling images (Docker's `<none>:<none>`), kept until
//!   pruned.
//! - `io.berth.tagged`: when the name was set (Docker's `Metadata.LastTagTime`).

use std::collections::BTreeMap;

use berth_types::{Descriptor, Digest, Index, Reference, media};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::{Result, Store, StoreError};

pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ANNOTATION_TAGGED: &str = "io.berth.tagged";

/// One row of the reference table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefEntry {
    pub descriptor: Descriptor,
}

impl RefEntry {
    pub fn new(name: Option<&Reference>, mut descriptor: Descriptor, tagged: &str) -> RefEntry {
        let ann = descriptor.annotations.get_or_insert_with(BTreeMap::new);
        ann.remove(ANNOTATION_REF_NAME);
        if let Some(n) = name {
            ann.insert(ANNOTATION_REF_NAME.to_string(), n.to_string());
        }
        ann.insert(ANNOTATION_TAGGED.to_string(), tagged.to_string());
        RefEntry { descriptor }
    }

    /// The full reference string, if this entry is named.
    pub fn name(&self) -> Option<&str> {
        self.descriptor.annotation(ANNOTATION_REF_NAME)
    }

    /// The parsed reference; entries with unparsable names (written by another tool) are `None`.
    pub fn reference(&self) -> Option<Reference> {
        self.name().and_then(|n| Reference::parse(n).ok())
    }

    pub fn tagged_at(&self) -> Option<&str> {
        self.descriptor.annotation(ANNOTATION_TAGGED)
    }

    pub fn digest(&self) -> &Digest {
        &self.descriptor.digest
    }
}

/// The whole table, as read from `index.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefTable {
    pub entries: Vec<RefEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexFile {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<String, String>>,
}

impl RefTable {
    /// The entry with exactly this full name.
    pub fn get(&self, name: &Reference) -> Option<&RefEntry> {
        let n = name.to_string();
        self.entries.iter().find(|e| e.name() == Some(n.as_str()))
    }

    /// Sets `name` to point at `desc`, returning the previous entry for that name. The previous
    /// target stays in the table as a dangling entry when no other entry references it, as
    /// Docker keeps an untagged image.
    pub fn set(&mut self, name: &Reference, desc: Descriptor, now: &str) -> Option<RefEntry> {
        let n = name.to_string();
        let old = self.entries.iter().position(|e| e.name() == Some(n.as_str())).map(|i| self.entries.remove(i));
        // A dangling entry for the same manifest is replaced by the named one.
        self.entries.retain(|e| !(e.name().is_none() && e.descriptor.digest == desc.digest));
        let digest = desc.digest.clone();
        self.entries.push(RefEntry::new(Some(name), desc, now));
        if let Some(o) = &old
            && o.descriptor.digest != digest
        {
            self.keep_dangling(&o.descriptor, now);
        }
        old
    }

    /// Removes the named entry (the caller decides whether its target should stay as dangling).
    pub fn remove(&mut self, name: &Reference) -> Option<RefEntry> {
        let n = name.to_string();
        let i = self.entries.iter().position(|e| e.name() == Some(n.as_str()))?;
        Some(self.entries.remove(i))
    }

    /// Adds an unnamed entry for `desc` unless some entry already references that manifest.
    pub fn keep_dangling(&mut self, desc: &Descriptor, now: &str) {
        if !self.entries.iter().any(|e| e.descriptor.digest == desc.digest) {
            let mut d = desc.clone();
            if let Some(a) = d.annotations.as_mut() {
                a.remove(ANNOTATION_REF_NAME);
            }
            self.entries.push(RefEntry::new(None, d, now));
        }
    }

    /// Removes every entry (named or not) whose descriptor has this digest.
    pub fn remove_digest(&mut self, d: &Digest) -> Vec<RefEntry> {
        let (gone, keep): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.entries).into_iter().partition(|e| &e.descriptor.digest == d);
        self.entries = keep;
        gone
    }

    fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let f = IndexFile {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.to_string()),
            manifests: self.entries.iter().map(|e| e.descriptor.clone()).collect(),
            annotations: None,
        };
        serde_json::to_vec(&f)
    }
}

impl Store {
    fn index_path(&self) -> std::path::PathBuf {
        self.root.join("index.json")
    }

    /// Reads the current reference table. No lock is needed: writers replace the file atomically.
    pub fn ref_table(&self) -> Result<RefTable> {
        let p = self.index_path();
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RefTable::default()),
            Err(e) => return Err(StoreError::io(&p, e)),
        };
        let f: IndexFile = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            what: "reference table",
            path: p.clone(),
            detail: e.to_string(),
        })?;
        Ok(RefTable { entries: f.manifests.into_iter().map(|descriptor| RefEntry { descriptor }).collect() })
    }

    pub(crate) fn write_ref_table(&self, t: &RefTable) -> Result<()> {
        let p = self.index_path();
        let bytes = t.to_json().map_err(|e| StoreError::Corrupt {
            what: "reference table",
            path: p.clone(),
            detail: e.to_string(),
        })?;
        write_atomic(&self.tmp_dir(), &p, &bytes)
    }

    /// Read-modify-write of the reference table under the exclusive refs lock. `f` sees the
    /// current table; the new table is written atomically when `f` succeeds and changed it.
    pub fn update_refs<R>(&self, f: impl FnOnce(&mut RefTable) -> Result<R>) -> Result<R> {
        let _g = self.lock_refs()?;
        let mut t = self.ref_table()?;
        let before = t.clone();
        let r = f(&mut t)?;
        if t != before {
            self.write_ref_table(&t)?;
        }
        Ok(r)
    }

    /// Points `name` at `desc` (a manifest or index that is already in the store).
    pub fn set_ref(&self, name: &Reference, desc: Descriptor) -> Result<Option<RefEntry>> {
        if !self.has_blob(&desc.digest) {
            return Err(StoreError::BlobUnknown(desc.digest));
        }
        let now = now_rfc3339();
        self.update_refs(|t| Ok(t.set(name, desc, &now)))
    }
}

/// Current time as RFC 3339 with nanoseconds, as Docker writes times.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl From<&RefTable> for Index {
    fn from(t: &RefTable) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.to_string()),
            artifact_type: None,
            manifests: t.entries.iter().map(|e| e.descriptor.clone()).collect(),
            subject: None,
            annotations: None,
        }
    }
}
