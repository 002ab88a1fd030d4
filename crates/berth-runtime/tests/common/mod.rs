#![allow(dead_code)]
//! Shared test helpers: a busybox rootfs built from /bin/busybox, unique ids, options.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use berth_runtime::*;

/// libcontainer clones the calling process with raw `clone3`: locks held by other
/// threads at that moment stay locked in the child (see the threading contract in
/// docs/dev/runtime.md). The test harness runs tests on several threads, so every test
/// that starts containers holds this for its whole duration.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static M: std::sync::Mutex<()> = std::sync::Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

/// Tests run real containers: they need root. Running them as non-root is a loud failure.
pub fn require_root() {
    assert!(nix::unistd::geteuid().is_root(), "berth-runtime integration tests need root (they run real containers)");
}

/// A read-only busybox layer shared by all tests of this process.
pub fn busybox_layer() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        require_root();
        let base = PathBuf::from("/tmp/berth-rt-test");
        let layer = base.join(format!("busybox-{}", std::process::id()));
        // Layers of earlier test processes that have exited (cargo nextest runs tests of this
        // crate as concurrent processes: never remove a live one's).
        let dead = |pid: &str| pid.parse::<u32>().is_ok_and(|p| !Path::new(&format!("/proc/{p}")).exists());
        if let Ok(rd) = std::fs::read_dir(&base) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.strip_prefix("busybox-").is_some_and(dead) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        // Container dirs (upper/work) of earlier test processes.
        if let Ok(rd) = std::fs::read_dir(base.join("c")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let pid = name.strip_prefix('t').and_then(|r| r.split('-').next()).unwrap_or("");
                if dead(pid) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        std::fs::create_dir_all(layer.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", layer.join("bin/busybox")).unwrap();
        // `busybox --install -s` would link to the host path of the binary; the rootfs
        // needs relative links.
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        assert!(list.status.success());
        for applet in String::from_utf8(list.stdout).unwrap().lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", layer.join("bin").join(applet)).unwrap();
            }
        }
        for d in ["etc", "tmp", "proc", "sys", "dev", "root", "home/alice"] {
            std::fs::create_dir_all(layer.join(d)).unwrap();
        }
        std::fs::write(
            layer.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            layer.join("etc/group"),
            "root:x:0:\nalice:x:1000:\nwheel:x:10:alice\nnogroup:x:65534:\n",
        )
        .unwrap();
        std::fs::write(layer.join("etc/noexec.sh"), "#!/bin/sh\necho hi\n").unwrap();
        layer
    })
    .clone()
}

pub fn tmp_base() -> PathBuf {
    busybox_layer().parent().unwrap().to_path_buf()
}

pub fn unique_id(tag: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("t{}-{}-{}", std::process::id(), tag, N.fetch_add(1, Ordering::SeqCst))
}

pub fn opts() -> RuntimeOptions {
    RuntimeOptions {
        backend: Backend::Embedded,
        state_root: PathBuf::from("/run/berth-test"),
        cgroup_parent: "berth-test".into(),
        helper_exe: PathBuf::from(env!("CARGO_BIN_EXE_berth-runtime-helper")),
    }
}

/// A layered rootfs with a fresh upper for one container.
pub fn layered(id: &str) -> (RootfsSource, PathBuf) {
    let dir = tmp_base().join("c").join(id);
    let upper = dir.join("upper");
    let src = RootfsSource::Layers(LayerStack {
        lower: vec![busybox_layer()],
        upper: Some(upper.clone()),
        work: Some(dir.join("work")),
        mode: RootfsMode::Overlay,
        volatile: false,
    });
    (src, upper)
}

pub fn config(id: &str, args: &[&str]) -> ContainerConfig {
    ContainerConfig { rootfs: layered(id).0, args: args.iter().map(|s| s.to_string()).collect(), ..Default::default() }
}

/// Run with captured output; returns (exit code, stdout, stderr).
pub fn run_capture(o: &RuntimeOptions, id: &str, cfg: &ContainerConfig) -> Result<(i32, String, String)> {
    let mut out = String::new();
    let mut err = String::new();
    let mut cb = |s: Stream, l: &[u8]| match s {
        Stream::Stdout => out.push_str(&String::from_utf8_lossy(l)),
        Stream::Stderr => err.push_str(&String::from_utf8_lossy(l)),
    };
    let r = berth_runtime::run(o, id, cfg, Stdio::Capture(&mut cb), &mut ())?;
    assert_no_leaks(o, id);
    Ok((r.exit_code, out, err))
}

/// No mount, cgroup or state directory may survive a run.
pub fn assert_no_leaks(o: &RuntimeOptions, id: &str) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(id), "mount leaked for {id}");
    assert!(!berth_runtime::cgroup::exists(&format!("/{}/{}", o.cgroup_parent, id)), "cgroup leaked for {id}");
    assert!(!o.state_root.join("lc").join(id).exists(), "libcontainer state leaked");
    assert!(!o.state_root.join("c").join(id).exists(), "scratch dir leaked");
    // The shared parent cgroup goes away with the last container (rmdir fails while
    // other tests still use it, which is fine).
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            let _ = std::fs::remove_dir(e.path().join(&o.cgroup_parent));
        }
    }
    let _ = std::fs::remove_dir(std::path::Path::new("/sys/fs/cgroup").join(&o.cgroup_parent));
}

pub fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}
