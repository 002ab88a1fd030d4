//! Garbage collection and consistency checking.

use std::collections::HashSet;
use std::io::Read;

use berth_types::{Algorithm, Digest, DigestReader, ManifestDoc, media};

use crate::fsutil::remove_all;
use crate::{Result, Store, StoreError};

/// What a collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: Vec<Digest>,
    pub snapshots_removed: Vec<Digest>,
    /// Bytes freed (blob sizes plus unpacked layer sizes).
    pub bytes: u64,
}

/// Problems found by [`Store::check`]; empty lists mean a healthy store.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub blobs_checked: u64,
    pub bytes_checked: u64,
    pub refs_checked: u64,
    pub snapshots_checked: u64,
    /// Human-readable problems, each naming the object.
    pub problems: Vec<String>,
    /// Notes that are not errors (e.g. stale temp files cleaned).
    pub notes: Vec<String>,
}

/// Content that must survive a collection besides what the reference table reaches.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    pub blobs: HashSet<Digest>,
    pub snapshots: HashSet<Digest>,
}

impl Store {
    /// Marks everything reachable from the reference table (and `extra`).
    ///
    /// A manifest, index or config that is present but cannot be read or parsed is an error,
    /// not a dead end: treating it as empty would make its layers collectable while an image
    /// still names them. (A blob that is absent is skipped: an index lists platforms that were
    /// never pulled.) Extra roots of unknown type are walked leniently, as they may be any blob.
    pub fn reachable(&self, extra: &Roots) -> Result<Roots> {
        let mut keep = extra.clone();
        let table = self.ref_table()?;
        let mut stack: Vec<(Digest, String)> =
            table.entries.iter().map(|e| (e.descriptor.digest.clone(), e.descriptor.media_type.clone())).collect();
        // Extra manifest roots are walked too, so callers can root a whole image by its manifest.
        for d in &extra.blobs {
            stack.push((d.clone(), String::new()));
        }
        while let Some((d, mt)) = stack.pop() {
            if !keep.blobs.insert(d.clone()) && !extra.blobs.contains(&d) {
                continue;
            }
            let kind = media::kind(&mt);
            let strict = !mt.is_empty();
            if !(kind == media::Kind::Manifest || kind == media::Kind::Index || !strict) {
                continue;
            }
            let bytes = match self.read_blob(&d) {
                Ok(b) => b,
                Err(StoreError::BlobUnknown(_)) => continue,
                Err(_) if !strict => continue,
                Err(e) => return Err(e),
            };
            let doc = match ManifestDoc::parse(&bytes, &mt) {
                Ok((doc, _)) => doc,
                Err(_) if !strict => continue,
                Err(e) => {
                    return Err(StoreError::Corrupt {
                        what: "manifest",
                        path: self.blob_path(&d),
                        detail: format!("{e}; garbage collection stopped so that no layer of it is deleted"),
                    });
                }
            };
            match doc {
                ManifestDoc::Index(i) => {
                    for c in i.manifests {
                        stack.push((c.digest, c.media_type));
                    }
                }
                ManifestDoc::Image(m) => {
                    keep.blobs.insert(m.config.digest.clone());
                    for l in &m.layers {
                        keep.blobs.insert(l.digest.clone());
                    }
                    let cb = match self.read_blob(&m.config.digest) {
                        Ok(b) => b,
                        Err(StoreError::BlobUnknown(_)) => continue,
                        Err(e) => return Err(e),
                    };
                    match berth_types::ImageConfig::parse(&cb) {
                        Ok(cfg) => keep.snapshots.extend(cfg.rootfs.diff_ids),
                        Err(e) => {
                            return Err(StoreError::Corrupt {
                                what: "image config",
                                path: self.blob_path(&m.config.digest),
                                detail: format!("{e}; garbage collection stopped so that no layer of it is deleted"),
                            });
                        }
                    }
                }
            }
        }
        Ok(keep)
    }

    /// Deletes every blob and snapshot not reachable from the reference table or `extra`.
    /// Takes the gc lock exclusively, so it waits for in-flight pulls, loads and builds.
    pub fn gc(&self, extra: &Roots) -> Result<GcReport> {
        self.gc_with(|| Ok::<_, StoreError>(extra.clone()))
    }

    /// [`Store::gc`] with the extra roots computed by `roots` **after** the exclusive lock is
    /// taken: roots computed before it (containers, build cache records) could miss what a
    /// concurrent `run` or build adds while the collection waits for the lock.
    pub fn gc_with<E: From<StoreError>>(&self, roots: impl FnOnce() -> Result<Roots, E>) -> Result<GcReport, E> {
        let _g = self.gc_exclusive()?;
        let extra = roots()?;
        Ok(self.gc_locked(&extra)?)
    }

    /// [`Store::gc_with`] unless another process holds the gc lock (a pull, load or build
    /// writing content, or another collection): then `None`, at once, instead of waiting.
    pub fn try_gc_with<E: From<StoreError>>(
        &self,
        roots: impl FnOnce() -> Result<Roots, E>,
    ) -> Result<Option<GcReport>, E> {
        match self.try_gc_exclusive()? {
            Some(_g) => {
                let extra = roots()?;
                Ok(Some(self.gc_locked(&extra)?))
            }
            None => Ok(None),
        }
    }

    fn gc_locked(&self, extra: &Roots) -> Result<GcReport> {
        let keep = self.reachable(extra)?;
        let mut report = GcReport::default();
        for d in self.blobs()? {
            if keep.blobs.contains(&d) {
                continue;
            }
            let p = self.blob_path(&d);
            let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            match std::fs::remove_file(&p) {
                Ok(()) => {
                    report.bytes += size;
                    self.forget_blob_meta(&d);
                    report.blobs_removed.push(d);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&p, e)),
            }
        }
        for d in self.snapshots()? {
            if keep.snapshots.contains(&d) {
                continue;
            }
            let size = self.snapshot_info(&d).map(|i| i.size).unwrap_or(0);
            self.remove_snapshot(&d)?;
            self.forget_diffid_meta(&d);
            report.bytes += size;
            report.snapshots_removed.push(d);
        }
        Ok(report)
    }

    /// Every blob digest present.
    pub fn blobs(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join("blobs").join(alg.as_str());
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(&dir, e)),
            };
            for e in rd.flatten() {
                if let Some(n) = e.file_name().to_str()
                    && let Ok(d) = Digest::parse(&format!("{}:{n}", alg.as_str()))
                {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Verifies every blob's digest, every reference's reachable content, and snapshot
    /// completeness. Stale temp files of dead processes are removed (and noted).
    pub fn check(&self) -> Result<CheckReport> {
        let mut r = CheckReport::default();
        let tmp_before = std::fs::read_dir(self.tmp_dir()).map(|d| d.count()).unwrap_or(0);
        self.clean_stale_tmp();
        let tmp_after = std::fs::read_dir(self.tmp_dir()).map(|d| d.count()).unwrap_or(0);
        if tmp_before > tmp_after {
            r.notes.push(format!(
                "removed {} stale temporary file(s) left by interrupted operations",
                tmp_before - tmp_after
            ));
        }
        // Blob contents and stray files in blobs/.
        let dir = self.root.join("blobs").join("sha256");
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if Digest::from_sha256_hex(&name).is_err() {
                    r.problems.push(format!("unexpected file in blobs/sha256: {name}"));
                }
            }
        }
        for d in self.blobs()? {
            let p = self.blob_path(&d);
            let f = std::fs::File::open(&p).map_err(|e| StoreError::io(&p, e))?;
            let mut rd = DigestReader::new(std::io::BufReader::with_capacity(1 << 20, f), d.algorithm());
            let mut buf = vec![0u8; 1 << 20];
            loop {
                match rd.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        r.problems.push(format!("blob {d}: read error: {e}"));
                        break;
                    }
                }
            }
            r.blobs_checked += 1;
            r.bytes_checked += rd.count();
            let actual = rd.digest();
            if actual != d {
                r.problems.push(format!("blob {d}: content has digest {actual} (corrupt; remove it and pull again)"));
            }
        }
        // References.
        let table = match self.ref_table() {
            Ok(t) => t,
            Err(e) => {
                r.problems.push(e.to_string());
                return Ok(r);
            }
        };
        for e in &table.entries {
            r.refs_checked += 1;
            let name = e.name().unwrap_or("<none>").to_string();
            if e.name().is_some() && e.reference().is_none() {
                r.problems.push(format!("reference {name:?}: not a valid image reference"));
            }
            match self.load_image(&e.descriptor) {
                Ok(img) => {
                    for l in &img.manifest.layers {
                        if !self.has_blob(&l.digest) {
                            r.problems.push(format!("{name}: layer blob {} is missing", l.digest));
                        }
                    }
                    if img.manifest.layers.len() != img.config.rootfs.diff_ids.len() {
                        r.problems.push(format!(
                            "{name}: manifest has {} layers but config lists {} diffIDs",
                            img.manifest.layers.len(),
                            img.config.rootfs.diff_ids.len()
                        ));
                    }
                }
                Err(err) => r.problems.push(format!("{name}: {err}")),
            }
        }
        self.check_modes(&mut r);
        for d in self.snapshots()? {
            r.snapshots_checked += 1;
            if !self.has_snapshot(&d) {
                r.problems.push(format!(
                    "unpacked layer {d}: incomplete (no info.json); it will be removed by 'berth image prune'"
                ));
            }
        }
        Ok(r)
    }

    /// Modes other local users could abuse: a store directory they can enter, a snapshot
    /// directory they can enter, a layer root they can write (one `stat` each; cheap).
    fn check_modes(&self, r: &mut CheckReport) {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::symlink_metadata(p).ok().map(|m| m.permissions().mode() & 0o7777);
        for d in ["", "blobs", "snapshots", "tmp"] {
            let p = self.root.join(d);
            if let Some(m) = mode(&p)
                && m & 0o077 != 0
            {
                r.problems.push(format!(
                    "{} has mode {m:04o}: other users can reach the store (berth makes it 0700 when it opens the store; \
                     check who changed it)",
                    p.display()
                ));
            }
        }
        let Ok(rd) = std::fs::read_dir(self.root.join("snapshots")) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if let Some(m) = mode(&p)
                && m & 0o077 != 0
            {
                r.problems.push(format!("unpacked layer {}: directory mode {m:04o} lets other users in", p.display()));
            }
            if let Some(m) = mode(&p.join("fs"))
                && m & 0o022 != 0
            {
                r.problems.push(format!(
                    "unpacked layer {}: its root is group/world-writable (mode {m:04o}); the layer may have been \
                     tampered with: remove it with 'berth rmi' and pull again",
                    p.display()
                ));
            }
        }
    }

    /// Removes the whole store content (used by tests and `system reset`-like commands).
    pub fn wipe(&self) -> Result<()> {
        let _g = self.gc_exclusive()?;
        for d in ["blobs", "snapshots", "meta"] {
            let p = self.root.join(d);
            remove_all(&p).map_err(|e| StoreError::io(&p, e))?;
        }
        Ok(())
    }
}
