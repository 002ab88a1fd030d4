//! The container's root filesystem: an overlayfs of read-only layer directories plus a
//! writable upper, or a copy when overlayfs is unavailable.
//!
//! **Layer order: bottom-first** (`lower[0]` is the base image's first layer, exactly the
//! order of an image manifest's `layers`). The last entry is the top-most layer.
//! Layers must be unpacked in overlayfs format (whiteouts as 0/0 character devices,
//! opaque directories marked with `trusted.overlay.opaque=y`).

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoCtx, Result};

/// How to build the rootfs from layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RootfsMode {
    /// overlayfs, falling back to [`RootfsMode::Copy`] when the kernel refuses overlay.
    #[default]
    Auto,
    /// overlayfs only.
    Overlay,
    /// Copy every layer into `upper` (applying whiteouts) and use `upper` itself as the
    /// rootfs. Slow for big images and doubles disk use, and the upper then holds the
    /// whole tree, not a diff: a builder must compute changes by comparing with the
    /// layers. Works on any filesystem (no overlay, no xattrs needed).
    Copy,
}

/// Layers to stack for a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerStack {
    /// Read-only layer directories, **bottom-first**.
    pub lower: Vec<PathBuf>,
    /// Writable upper directory (created if missing). Receives the container's changes.
    /// `None` gives a read-only overlay of the lowers.
    pub upper: Option<PathBuf>,
    /// overlayfs work directory, on the same filesystem as `upper` (created if missing).
    pub work: Option<PathBuf>,
    #[serde(default)]
    pub mode: RootfsMode,
    /// Mount the overlay with `volatile` (kernel ≥ 5.10): no sync of the upper filesystem on
    /// every fsync and, above all, none on unmount (~0.2 s after writing 200 MB). Only for
    /// uppers whose owner syncs them itself and never remounts them after a crash, as the
    /// builder does (it syncs a committed snapshot and removes the work directory); a
    /// container's upper must survive a power loss and keeps the default.
    #[serde(default)]
    pub volatile: bool,
}

/// Where the container's root comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RootfsSource {
    /// A directory the caller already prepared; used as is and never unmounted by us.
    Path(PathBuf),
    /// Layers that the runtime mounts for the duration of the run.
    Layers(LayerStack),
}

/// A mounted (or copied) rootfs. Unmounts on drop (lazily, `MNT_DETACH`), so error and
/// Ctrl-C paths that unwind normally leave no mount behind; call [`MountedRootfs::unmount`]
/// to see errors.
#[derive(Debug)]
pub struct MountedRootfs {
    path: PathBuf,
    mounted: bool,
    link_dir: Option<PathBuf>,
}

impl MountedRootfs {
    /// The directory to use as the container's root.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A rootfs that needs no mount (already prepared by the caller).
    pub fn unmanaged(path: PathBuf) -> Self {
        MountedRootfs { path, mounted: false, link_dir: None }
    }

    /// Unmount now, reporting errors.
    pub fn unmount(mut self) -> Result<()> {
        self.do_unmount()
    }

    fn do_unmount(&mut self) -> Result<()> {
        if let Some(d) = self.link_dir.take() {
            let _ = fs::remove_dir_all(d);
        }
        if !self.mounted {
            return Ok(());
        }
        self.mounted = false;
        match nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
            Err(e) => Err(Error::Mount { kind: "umount", target: self.path.clone(), source: e.into(), hint: "" }),
        }
    }
}

impl Drop for MountedRootfs {
    fn drop(&mut self) {
        let _ = self.do_unmount();
    }
}

/// Prepare `source` at `target` (a directory, created if missing).
///
/// For [`RootfsSource::Path`] nothing is mounted and the caller's path is returned.
/// For layers: overlayfs via the new mount API (`fsopen`/`fsconfig lowerdir+`, no 4 KiB
/// option limit, kernel ≥ 6.8), else classic `mount(2)` with the option string, using
/// short symlinked layer paths when the string would exceed a page; in
/// [`RootfsMode::Copy`] (or `Auto` when overlay fails) the layers are copied into upper.
pub fn mount_rootfs(source: &RootfsSource, target: &Path) -> Result<MountedRootfs> {
    let stack = match source {
        RootfsSource::Path(p) => return Ok(MountedRootfs::unmanaged(p.clone())),
        RootfsSource::Layers(s) => s,
    };
    for l in &stack.lower {
        if !l.is_dir() {
            return Err(Error::InvalidConfig(format!("layer directory {} does not exist", l.display())));
        }
    }
    if stack.mode == RootfsMode::Copy {
        return copy_rootfs(stack);
    }
    let mounted = match mount_overlay(stack, target) {
        // A kernel older than 5.10 refuses the option: the mount works without it.
        Err(_) if stack.volatile => mount_overlay(&LayerStack { volatile: false, ..stack.clone() }, target),
        r => r,
    };
    match mounted {
        Ok(m) => Ok(m),
        Err(e) if stack.mode == RootfsMode::Auto && is_overlay_unsupported(&e) => {
            tracing::warn!("overlayfs unavailable ({e}); copying layers instead");
            copy_rootfs(stack)
        }
        Err(e) => Err(e),
    }
}

fn is_overlay_unsupported(e: &Error) -> bool {
    matches!(e, Error::Mount { source, .. } if matches!(source.raw_os_error(), Some(libc::ENODEV) | Some(libc::EINVAL) | Some(libc::EPERM) | Some(libc::ENOSYS)))
}

fn mount_err(target: &Path, source: std::io::Error) -> Error {
    Error::Mount {
        kind: "overlay",
        target: target.to_path_buf(),
        source,
        hint: " (is the overlay module loaded, and are upper and work on the same non-overlay filesystem?)",
    }
}

fn mount_overlay(stack: &LayerStack, target: &Path) -> Result<MountedRootfs> {
    fs::create_dir_all(target).ctx("create rootfs mount point", target)?;
    if let (Some(u), Some(w)) = (&stack.upper, &stack.work) {
        fs::create_dir_all(u).ctx("create upper dir", u)?;
        fs::create_dir_all(w).ctx("create work dir", w)?;
    }
    let has_upper = stack.upper.is_some() && stack.work.is_some();
    if stack.lower.is_empty() && !has_upper {
        return Err(Error::InvalidConfig("rootfs has no layers".into()));
    }
    // The same layer twice (two build steps with identical diffs): overlayfs refuses a lower
    // used twice (ELOOP). Only the topmost copy is kept: it re-applies every path, whiteout
    // and opaque marker of the lower copy, so the merged view is the same.
    let mut lowers: Vec<PathBuf> = Vec::with_capacity(stack.lower.len());
    for l in stack.lower.iter().rev() {
        if !lowers.contains(l) {
            lowers.push(l.clone());
        }
    }
    // overlayfs needs two lowers when there is no upper; a single layer is a bind mount.
    if let (false, [src]) = (has_upper, lowers.as_slice()) {
        bind_ro(src, target)?;
        return Ok(MountedRootfs { path: target.to_path_buf(), mounted: true, link_dir: None });
    }
    // An empty lower set with an upper: overlay needs one lower, so use an empty dir.
    let mut link_dir = None;
    if lowers.is_empty() {
        let empty = target.with_extension("empty");
        fs::create_dir_all(&empty).ctx("create empty lower", &empty)?;
        lowers.push(empty);
    }
    if let Err(e) = mount_overlay_fsconfig(&lowers, stack, target) {
        tracing::debug!("fsconfig overlay mount failed ({e}); trying mount(2)");
        link_dir = mount_overlay_legacy(&lowers, stack, target)?;
    }
    Ok(MountedRootfs { path: target.to_path_buf(), mounted: true, link_dir })
}

/// Classic `mount(2)`; lowers top-first. Returns the short-link dir when one was needed.
fn mount_overlay_legacy(lowers: &[PathBuf], stack: &LayerStack, target: &Path) -> Result<Option<PathBuf>> {
    let mut link_dir = None;
    let mut data = overlay_data(lowers, stack);
    if data.len() >= 4000 {
        let dir = short_link_dir(lowers)?;
        let short: Vec<PathBuf> = (0..lowers.len()).map(|i| dir.join(i.to_string())).collect();
        data = overlay_data(&short, stack);
        link_dir = Some(dir);
    }
    if let Err(e) =
        nix::mount::mount(Some("overlay"), target, Some("overlay"), nix::mount::MsFlags::empty(), Some(data.as_str()))
    {
        if let Some(d) = &link_dir {
            let _ = fs::remove_dir_all(d);
        }
        return Err(mount_err(target, e.into()));
    }
    Ok(link_dir)
}

/// Test hook: mount with the old API (bottom-first lowers), bypassing `fsconfig`.
#[doc(hidden)]
pub fn mount_overlay_legacy_for_test(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<MountedRootfs> {
    for d in [upper, work, target] {
        fs::create_dir_all(d).ctx("create", d)?;
    }
    let stack = LayerStack {
        lower: lower.to_vec(),
        upper: Some(upper.to_path_buf()),
        work: Some(work.to_path_buf()),
        mode: RootfsMode::Overlay,
        volatile: false,
    };
    let lowers: Vec<PathBuf> = lower.iter().rev().cloned().collect();
    let link_dir = mount_overlay_legacy(&lowers, &stack, target)?;
    Ok(MountedRootfs { path: target.to_path_buf(), mounted: true, link_dir })
}

fn escape_opt(p: &Path) -> String {
    let s = p.to_string_lossy();
    s.replace('\\', "\\\\").replace(':', "\\:").replace(',', "\\,")
}

fn overlay_data(lowers: &[PathBuf], stack: &LayerStack) -> String {
    let mut s = String::from("lowerdir=");
    s.push_str(&lowers.iter().map(|p| escape_opt(p)).collect::<Vec<_>>().join(":"));
    if let (Some(u), Some(w)) = (&stack.upper, &stack.work) {
        s.push_str(&format!(",upperdir={},workdir={}", escape_opt(u), escape_opt(w)));
        if stack.volatile {
            s.push_str(",volatile");
        }
    }
    s
}

/// Docker's trick for many layers with the old mount API: short symlinks to each layer.
fn short_link_dir(lowers: &[PathBuf]) -> Result<PathBuf> {
    let parent = crate::private::private_state_dirs(Path::new("/run/berth"), &["l"])?;
    let dir = parent.join(&crate::util::random_id()[..10]);
    crate::private::private_dir(&dir)?;
    for (i, l) in lowers.iter().enumerate() {
        let link = dir.join(i.to_string());
        std::os::unix::fs::symlink(l, &link).ctx("symlink layer", &link)?;
    }
    Ok(dir)
}

fn mount_overlay_fsconfig(lowers: &[PathBuf], stack: &LayerStack, target: &Path) -> Result<()> {
    use rustix::mount::*;
    let io = |e: rustix::io::Errno| std::io::Error::from_raw_os_error(e.raw_os_error());
    let fsfd = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| mount_err(target, io(e)))?;
    for l in lowers {
        fsconfig_set_string(&fsfd, "lowerdir+", l.as_path()).map_err(|e| mount_err(l, io(e)))?;
    }
    if let (Some(u), Some(w)) = (&stack.upper, &stack.work) {
        fsconfig_set_string(&fsfd, "upperdir", u.as_path()).map_err(|e| mount_err(u, io(e)))?;
        fsconfig_set_string(&fsfd, "workdir", w.as_path()).map_err(|e| mount_err(w, io(e)))?;
        if stack.volatile {
            fsconfig_set_flag(&fsfd, "volatile").map_err(|e| mount_err(target, io(e)))?;
        }
    }
    fsconfig_create(&fsfd).map_err(|e| mount_err(target, io(e)))?;
    let mfd =
        fsmount(&fsfd, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty()).map_err(|e| mount_err(target, io(e)))?;
    move_mount(&mfd, "", rustix::fs::CWD, target, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
        .map_err(|e| mount_err(target, io(e)))?;
    Ok(())
}

fn bind_ro(src: &Path, target: &Path) -> Result<()> {
    use nix::mount::{MsFlags, mount};
    let err = |e: nix::Error| Error::Mount { kind: "bind", target: target.to_path_buf(), source: e.into(), hint: "" };
    mount(Some(src), target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>).map_err(err)?;
    mount(None::<&str>, target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None::<&str>)
        .map_err(err)
}

const COPIED_MARKER: &str = ".berth-rootfs-copied";

fn copy_rootfs(stack: &LayerStack) -> Result<MountedRootfs> {
    let upper = stack
        .upper
        .as_ref()
        .ok_or_else(|| Error::InvalidConfig("copy mode needs an upper directory to copy the layers into".into()))?;
    fs::create_dir_all(upper).ctx("create upper dir", upper)?;
    let marker = upper.join(COPIED_MARKER);
    if !marker.exists() {
        for l in &stack.lower {
            copy_layer(l, upper)?;
        }
        fs::write(&marker, b"").ctx("write", &marker)?;
    }
    Ok(MountedRootfs::unmanaged(upper.clone()))
}

fn lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = [0u8; 64];
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return None;
    }
    buf.get(..r as usize).map(|b| b.to_vec())
}

fn remove_any(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).ctx("remove", p),
        Ok(_) => fs::remove_file(p).ctx("remove", p),
        Err(_) => Ok(()),
    }
}

/// Apply one overlay-format layer onto `dst` (copy fallback).
pub(crate) fn copy_layer(src: &Path, dst: &Path) -> Result<()> {
    let rd = fs::read_dir(src).ctx("read dir", src)?;
    for ent in rd {
        let ent = ent.ctx("read dir", src)?;
        let sp = ent.path();
        let dp = dst.join(ent.file_name());
        let md = fs::symlink_metadata(&sp).ctx("stat", &sp)?;
        let ft = md.file_type();
        if ft.is_char_device() && md.rdev() == 0 {
            remove_any(&dp)?;
            continue;
        }
        if ft.is_dir() {
            let opaque = lgetxattr(&sp, "trusted.overlay.opaque").is_some_and(|v| v == b"y");
            let existing = fs::symlink_metadata(&dp).ok();
            if opaque || existing.as_ref().is_some_and(|m| !m.is_dir()) {
                remove_any(&dp)?;
            }
            if fs::symlink_metadata(&dp).is_err() {
                fs::create_dir(&dp).ctx("mkdir", &dp)?;
            }
            copy_layer(&sp, &dp)?;
            set_meta(&dp, &md)?;
            continue;
        }
        remove_any(&dp)?;
        if ft.is_symlink() {
            let t = fs::read_link(&sp).ctx("readlink", &sp)?;
            std::os::unix::fs::symlink(&t, &dp).ctx("symlink", &dp)?;
            let _ = nix::unistd::fchownat(
                None,
                &dp,
                Some(md.uid().into()),
                Some(md.gid().into()),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            );
            continue;
        }
        if ft.is_file() {
            fs::copy(&sp, &dp).ctx("copy", &dp)?;
        } else {
            let kind = if ft.is_char_device() {
                nix::sys::stat::SFlag::S_IFCHR
            } else if ft.is_block_device() {
                nix::sys::stat::SFlag::S_IFBLK
            } else if ft.is_fifo() {
                nix::sys::stat::SFlag::S_IFIFO
            } else {
                continue; // sockets are not part of images
            };
            nix::sys::stat::mknod(&dp, kind, nix::sys::stat::Mode::from_bits_truncate(md.mode() & 0o7777), md.rdev())
                .map_err(|e| Error::io("mknod", &dp, e.into()))?;
        }
        set_meta(&dp, &md)?;
    }
    Ok(())
}

fn set_meta(p: &Path, md: &fs::Metadata) -> Result<()> {
    nix::unistd::chown(p, Some(md.uid().into()), Some(md.gid().into())).map_err(|e| Error::io("chown", p, e.into()))?;
    fs::set_permissions(p, fs::Permissions::from_mode(md.mode() & 0o7777)).ctx("chmod", p)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_string_escapes() {
        let s = LayerStack {
            lower: vec![],
            upper: Some("/u".into()),
            work: Some("/w".into()),
            mode: RootfsMode::Auto,
            volatile: false,
        };
        let d = overlay_data(&[PathBuf::from("/a:b"), PathBuf::from("/c,d")], &s);
        assert_eq!(d, "lowerdir=/a\\:b:/c\\,d,upperdir=/u,workdir=/w");
    }

    #[test]
    fn copy_applies_whiteouts() {
        let d = tempfile::tempdir().unwrap();
        let (l1, l2, up) = (d.path().join("l1"), d.path().join("l2"), d.path().join("up"));
        fs::create_dir_all(l1.join("etc")).unwrap();
        fs::write(l1.join("etc/a"), "a").unwrap();
        fs::write(l1.join("etc/b"), "b").unwrap();
        fs::create_dir_all(l2.join("etc")).unwrap();
        nix::sys::stat::mknod(&l2.join("etc/a"), nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0)
            .unwrap();
        fs::write(l2.join("etc/c"), "c").unwrap();
        let m = copy_rootfs(&LayerStack {
            lower: vec![l1, l2],
            upper: Some(up.clone()),
            work: None,
            mode: RootfsMode::Copy,
            volatile: false,
        })
        .unwrap();
        assert_eq!(m.path(), up.as_path());
        assert!(!up.join("etc/a").exists());
        assert_eq!(fs::read_to_string(up.join("etc/b")).unwrap(), "b");
        assert_eq!(fs::read_to_string(up.join("etc/c")).unwrap(), "c");
    }

    #[test]
    fn a_layer_twice_in_the_stack_mounts() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED: needs root to mount overlayfs");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let (l1, l2, t) = (d.path().join("l1"), d.path().join("l2"), d.path().join("t"));
        fs::create_dir_all(&l1).unwrap();
        fs::create_dir_all(&l2).unwrap();
        fs::write(l1.join("a"), "1").unwrap();
        fs::write(l2.join("a"), "2").unwrap();
        fs::write(l2.join("b"), "b").unwrap();
        let m = mount_overlay(
            &LayerStack {
                lower: vec![l2.clone(), l1.clone(), l2.clone(), l1.clone()],
                upper: None,
                work: None,
                mode: RootfsMode::Overlay,
                volatile: false,
            },
            &t,
        )
        .unwrap();
        assert_eq!(fs::read_to_string(t.join("a")).unwrap(), "1", "the topmost copy wins");
        assert_eq!(fs::read_to_string(t.join("b")).unwrap(), "b");
        m.unmount().unwrap();
    }
}
