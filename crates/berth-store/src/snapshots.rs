//! Unpacked layers, one directory per diffID, in overlayfs "lower" format (whiteouts as 0/0
//! character devices, opaque directories as the `trusted.overlay.opaque` xattr) so that a
//! container's root is an overlay mount of its layers' `fs/` directories.
//!
//! Why eager, per-layer unpacking: a layer's unpacked form depends only on its own content, so
//! layers of one image unpack **in parallel** while they download, and are shared by every image
//! that has them. Pull therefore returns an image that is ready to run or build on, and the
//! first `run` pays nothing. (A flattening store must apply layers in order instead.)
//!
//! Crash safety: a snapshot is built under `tmp/`, the filesystem is synced, and the directory is
//! renamed to `snapshots/<alg>-<hex>`; a snapshot directory that exists is complete.

use std::path::{Path, PathBuf};

use berth_types::Digest;
use serde::{Deserialize, Serialize};

use crate::fsutil::{self, remove_all, tmp_name};
use crate::{Result, Store, StoreError};

/// Facts recorded when a snapshot is committed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Bytes of file content in the layer (Docker's layer size).
    pub size: u64,
    /// Number of entries in the layer tar.
    pub entries: u64,
    /// RFC 3339 time of unpacking.
    pub created: String,
}

impl Store {
    fn snapshot_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("snapshots").join(format!("{}-{}", diff_id.algorithm().as_str(), diff_id.hex()))
    }

    /// The `fs/` directory of a committed snapshot (usable as an overlay lower dir).
    pub fn snapshot_fs(&self, diff_id: &Digest) -> PathBuf {
        self.snapshot_path(diff_id).join("fs")
    }

    pub fn has_snapshot(&self, diff_id: &Digest) -> bool {
        self.snapshot_path(diff_id).join("info.json").is_file()
    }

    pub fn snapshot_info(&self, diff_id: &Digest) -> Option<SnapshotInfo> {
        let b = std::fs::read(self.snapshot_path(diff_id).join("info.json")).ok()?;
        serde_json::from_slice(&b).ok()
    }

    /// Starts a new snapshot; unpack into [`TempSnapshot::fs`] then [`TempSnapshot::commit`].
    pub fn temp_snapshot(&self) -> Result<TempSnapshot> {
        let dir = tmp_name(&self.tmp_dir(), ".snap");
        fsutil::private_dir(&dir)?;
        let fs = dir.join("fs");
        std::fs::create_dir_all(&fs).map_err(|e| StoreError::io(&fs, e))?;
        Ok(TempSnapshot { store: self.clone(), dir, committed: false })
    }

    /// Diff IDs of all committed snapshots.
    pub fn snapshots(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("snapshots");
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some((alg, hex)) = name.split_once('-')
                && let Ok(d) = Digest::parse(&format!("{alg}:{hex}"))
            {
                out.push(d);
            }
        }
        Ok(out)
    }

    pub(crate) fn remove_snapshot(&self, diff_id: &Digest) -> Result<()> {
        // Rename first so a half-deleted snapshot is never mistaken for a complete one.
        let p = self.snapshot_path(diff_id);
        let t = tmp_name(&self.tmp_dir(), ".del");
        match std::fs::rename(&p, &t) {
            Ok(()) => remove_all(&t).map_err(|e| StoreError::io(&t, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&p, e)),
        }
    }
}

/// A snapshot being unpacked. Dropping it without `commit` removes it.
pub struct TempSnapshot {
    store: Store,
    dir: PathBuf,
    committed: bool,
}

impl TempSnapshot {
    /// Where to unpack the layer.
    pub fn fs(&self) -> PathBuf {
        self.dir.join("fs")
    }

    /// Starts flushing the snapshot's filesystem to disk on another thread, so that the
    /// writeback overlaps the caller's next work (making the layer tar) and [`Self::commit`]'s
    /// own sync finds little left. Call it once the content is final; joining is optional
    /// (commit syncs regardless).
    pub fn flush_in_background(&self) -> std::thread::JoinHandle<()> {
        let dir = self.dir.clone();
        std::thread::spawn(move || {
            let _ = syncfs(&dir);
        })
    }

    /// Syncs the filesystem and moves the snapshot into place under `diff_id`. The caller must
    /// have verified that the unpacked content really has this diffID.
    pub fn commit(mut self, diff_id: &Digest, info: &SnapshotInfo) -> Result<()> {
        clamp_root_mode(&self.fs())?;
        let info_path = self.dir.join("info.json");
        let bytes = serde_json::to_vec(info).map_err(|e| StoreError::Corrupt {
            what: "snapshot info",
            path: info_path.clone(),
            detail: e.to_string(),
        })?;
        std::fs::write(&info_path, bytes).map_err(|e| StoreError::io(&info_path, e))?;
        syncfs(&self.dir)?;
        let dest = self.store.snapshot_path(diff_id);
        if dest.exists() {
            // Another process unpacked the same layer first.
            return Ok(());
        }
        match std::fs::rename(&self.dir, &dest) {
            Ok(()) => {}
            Err(_) if dest.exists() => return Ok(()),
            Err(e) => return Err(StoreError::io(&dest, e)),
        }
        self.committed = true;
        fsutil::sync_parent(&dest)
    }
}

impl Drop for TempSnapshot {
    fn drop(&mut self) {
        if !self.committed {
            let _ = remove_all(&self.dir);
        }
    }
}

/// Flushes the filesystem holding `p` (one call covers every file of an unpacked layer, much
/// cheaper than an fsync per file).
fn syncfs(p: &Path) -> Result<()> {
    let f = std::fs::File::open(p).map_err(|e| StoreError::io(p, e))?;
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs only reads the descriptor, which `f` keeps open for the duration.
    let r = unsafe { libc::syncfs(f.as_raw_fd()) };
    if r != 0 {
        return Err(StoreError::io(p, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Whether a mount whose mount point is not below `p` names `p` (as an overlay upper, work or
/// lower dir, or a bind source).
fn used_by_mount_elsewhere(mountinfo: &str, p: &Path) -> bool {
    let ps = p.to_string_lossy();
    mountinfo.lines().any(|l| {
        let point = l.split(' ').nth(4).unwrap_or("");
        !Path::new(point).starts_with(p)
            && l.match_indices(ps.as_ref()).any(|(i, _)| {
                // A whole path component: followed by `/`, `,`, ` `, `:` or the end.
                l.as_bytes().get(i + ps.len()).is_none_or(|c| matches!(c, b'/' | b',' | b' ' | b':'))
            })
    })
}

/// A layer's root directory takes its mode from the archive (`./` entry), so an image can ask
/// for a world-writable root. The container's `/` keeps the owner's bits, but group and others
/// lose write access: nobody but the store's owner may change a layer every later container
/// and build shares.
fn clamp_root_mode(fs: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let m = std::fs::symlink_metadata(fs).map_err(|e| StoreError::io(fs, e))?;
    let mode = m.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        std::fs::set_permissions(fs, std::fs::Permissions::from_mode(mode & !0o022))
            .map_err(|e| StoreError::io(fs, e))?;
    }
    Ok(())
}

impl Store {
    /// Makes every snapshot directory private (0700) and clamps world-writable layer roots; one
    /// `stat` per snapshot, nothing below (see [`Store::open`]).
    pub(crate) fn fix_snapshot_modes(&self) {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.root.join("snapshots");
        let Ok(rd) = std::fs::read_dir(&dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if let Ok(m) = std::fs::symlink_metadata(&p)
                && m.is_dir()
                && m.permissions().mode() & 0o077 != 0
            {
                let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700));
            }
        }
    }

    /// Removes temp files and directories whose writer process is gone (judged by pid and
    /// process start time, so a reused pid does not keep them alive), detaching any mount left
    /// below them first (a killed build's overlay) so that removal never reaches into a mount.
    pub(crate) fn clean_stale_tmp(&self) {
        let tmp = self.tmp_dir();
        let Ok(rd) = std::fs::read_dir(&tmp) else { return };
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(alive) = name.to_str().and_then(fsutil::owner_alive) else { continue };
            if alive {
                continue;
            }
            let p = e.path();
            if used_by_mount_elsewhere(&mountinfo, &p) {
                // The upper dir of a container still running after its berth process died
                // (its rootfs is mounted under the runtime state directory): kept until that
                // mount is gone.
                tracing::debug!(path = %p.display(), "leftover temp entry still used by a mount; kept");
                continue;
            }
            match fsutil::unmount_below(&p) {
                Ok(0) => {}
                Ok(n) => tracing::debug!(path = %p.display(), "detached {n} mount(s) left by a dead process"),
                Err(err) => {
                    tracing::debug!(path = %p.display(), "cannot detach a leftover mount, keeping it: {err}");
                    continue;
                }
            }
            match remove_all(&p) {
                Ok(()) => tracing::debug!(path = %p.display(), "removed a temp entry left by a dead process"),
                Err(err) => tracing::debug!(path = %p.display(), "cannot remove a leftover temp entry: {err}"),
            }
        }
    }
}

#[cfg(test)]
mod mount_tests {
    use super::used_by_mount_elsewhere;
    use std::path::Path;

    #[test]
    fn temp_entries_used_by_other_mounts_are_recognised() {
        let info = "53 27 0:42 / /run/berth/c/x/rootfs rw - overlay none rw,lowerdir=/s/root/snapshots/a/fs,upperdir=/s/root/tmp/1@2-0-3.snap/fs,workdir=/s/root/tmp/1@2-0-3.snap/work\n\
                    60 27 0:43 / /s/root/tmp/9@9-ro-x rw - overlay none rw,lowerdir=/s/root/snapshots/a/fs\n";
        assert!(used_by_mount_elsewhere(info, Path::new("/s/root/tmp/1@2-0-3.snap")));
        assert!(!used_by_mount_elsewhere(info, Path::new("/s/root/tmp/1@2-0-3")), "a prefix is not the path");
        assert!(!used_by_mount_elsewhere(info, Path::new("/s/root/tmp/9@9-ro-x")), "mounted below: detached, not kept");
    }
}
