//! Which platforms this host can run: its own, the ones its CPU runs natively (386 on amd64,
//! arm on arm64 where the kernel allows), and those with a QEMU user-mode emulator registered
//! with binfmt_misc. Only registrations with the F (fix-binary) flag count: the kernel opens
//! their interpreter at registration, so it works inside a container's mount namespace, where
//! the host's /usr/libexec/qemu-binfmt is not visible.

use std::path::{Path, PathBuf};

use berth_types::Platform;

/// Where binfmt_misc is mounted.
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// The platforms an image may have for the host to run it, and why it cannot when it cannot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmulationError {
    #[error(
        "cannot run {platform} images on this {host} host: no emulator for {platform} is registered with binfmt_misc ({dir})"
    )]
    NoEmulator { platform: String, host: String, dir: PathBuf, hint: String },
    #[error(
        "the emulator for {platform} ({entry}) is registered without the F (fix-binary) flag, so containers cannot use it"
    )]
    NoFixBinary { platform: String, entry: PathBuf, hint: String },
}

impl EmulationError {
    /// How to fix it.
    pub fn hint(&self) -> &str {
        match self {
            EmulationError::NoEmulator { hint, .. } | EmulationError::NoFixBinary { hint, .. } => hint,
        }
    }
}

const INSTALL_HINT: &str = "install QEMU user emulation: apt-get install qemu-user-static binfmt-support (Debian/Ubuntu; \
     registers the emulators with the fix-binary flag); if /proc/sys/fs/binfmt_misc is empty, mount it first: \
     mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && update-binfmts --enable";

/// One binfmt_misc registration of a QEMU emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emulator {
    pub platform: Platform,
    pub entry: PathBuf,
    pub interpreter: String,
    pub fix_binary: bool,
    pub enabled: bool,
}

/// The QEMU architecture name (as in `qemu-aarch64`) for a platform.
fn qemu_arch(p: &Platform) -> Option<&'static str> {
    Some(match p.architecture.as_str() {
        "arm64" => "aarch64",
        "arm" => "arm",
        "386" => "i386",
        "amd64" => "x86_64",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64le" => "mips64el",
        "mips64" => "mips64",
        "loong64" => "loongarch64",
        _ => return None,
    })
}

fn platform_of_qemu(name: &str) -> Option<Platform> {
    let arch = name.strip_prefix("qemu-")?;
    let p = match arch {
        "aarch64" => "linux/arm64",
        "arm" => "linux/arm/v7",
        "i386" => "linux/386",
        "x86_64" => "linux/amd64",
        "ppc64le" => "linux/ppc64le",
        "s390x" => "linux/s390x",
        "riscv64" => "linux/riscv64",
        "mips64el" => "linux/mips64le",
        "mips64" => "linux/mips64",
        "loongarch64" => "linux/loong64",
        _ => return None,
    };
    Platform::parse(p).ok()
}

/// The QEMU emulators registered in `dir` (binfmt_misc), in name order.
pub fn emulators_in(dir: &Path) -> Vec<Emulator> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<Emulator> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let platform = platform_of_qemu(&name)?;
            let text = std::fs::read_to_string(e.path()).ok()?;
            let mut enabled = false;
            let mut interpreter = String::new();
            let mut fix_binary = false;
            for line in text.lines() {
                if line.trim() == "enabled" {
                    enabled = true;
                } else if let Some(i) = line.strip_prefix("interpreter ") {
                    interpreter = i.trim().to_string();
                } else if let Some(f) = line.strip_prefix("flags:") {
                    fix_binary = f.contains('F');
                }
            }
            Some(Emulator { platform, entry: e.path(), interpreter, fix_binary, enabled })
        })
        .collect();
    out.sort_by(|a, b| a.entry.cmp(&b.entry));
    out
}

/// Platforms the host CPU runs without emulation.
pub fn native_platforms() -> Vec<Platform> {
    let host = Platform::host();
    let mut v = vec![host.clone()];
    match host.architecture.as_str() {
        "amd64" => v.push(Platform::new("linux", "386", None)),
        "arm64" => v.push(Platform::new("linux", "arm", Some("v7"))),
        _ => {}
    }
    v
}

/// Every platform this host can run (natively or through a usable emulator), as
/// `berth system info` lists them.
pub fn runnable_platforms() -> Vec<Platform> {
    let mut v = native_platforms();
    for e in emulators_in(Path::new(BINFMT_DIR)) {
        if e.enabled && e.fix_binary && !v.iter().any(|p| p.matches(&e.platform)) {
            v.push(e.platform.clone());
            // An arm emulator runs every arm variant.
            if e.platform.architecture == "arm" {
                v.push(Platform::new("linux", "arm", Some("v6")));
            }
        }
    }
    v
}

/// Checks, before anything starts, that a container of `platform` can run here.
pub fn check_runnable(platform: &Platform) -> Result<(), EmulationError> {
    check_runnable_in(platform, Path::new(BINFMT_DIR))
}

fn check_runnable_in(platform: &Platform, dir: &Path) -> Result<(), EmulationError> {
    let want = platform.clone().normalized();
    if native_platforms().iter().any(|p| p.os == want.os && p.architecture == want.architecture) {
        return Ok(());
    }
    let emus = emulators_in(dir);
    let found = emus.iter().filter(|e| e.enabled).find(|e| e.platform.architecture == want.architecture);
    match found {
        Some(e) if e.fix_binary => Ok(()),
        Some(e) => Err(EmulationError::NoFixBinary {
            platform: want.to_string(),
            entry: e.entry.clone(),
            hint: format!(
                "re-register it with the F flag: apt-get install qemu-user-static binfmt-support registers qemu-{} so",
                qemu_arch(&want).unwrap_or("ARCH")
            ),
        }),
        None => Err(EmulationError::NoEmulator {
            platform: want.to_string(),
            host: Platform::host().to_string(),
            dir: dir.to_path_buf(),
            hint: INSTALL_HINT.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_registrations() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("qemu-aarch64"),
            "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\n",
        )
        .unwrap();
        std::fs::write(d.path().join("qemu-riscv64"), "enabled\ninterpreter /usr/bin/qemu-riscv64\nflags: P\n")
            .unwrap();
        std::fs::write(d.path().join("python3.11"), "enabled\ninterpreter /usr/bin/python3.11\nflags: \n").unwrap();
        let e = emulators_in(d.path());
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].platform.to_string(), "linux/arm64");
        assert!(e[0].fix_binary);
        assert!(!e[1].fix_binary);
        if Platform::host().architecture == "amd64" {
            assert!(check_runnable_in(&Platform::parse("linux/arm64").unwrap(), d.path()).is_ok());
            assert!(check_runnable_in(&Platform::parse("linux/386").unwrap(), d.path()).is_ok());
            let err = check_runnable_in(&Platform::parse("linux/riscv64").unwrap(), d.path()).unwrap_err();
            assert!(matches!(err, EmulationError::NoFixBinary { .. }), "{err}");
            let err = check_runnable_in(&Platform::parse("linux/s390x").unwrap(), d.path()).unwrap_err();
            assert!(err.to_string().contains("linux/s390x"), "{err}");
            assert!(err.hint().contains("qemu-user-static"), "{}", err.hint());
        }
    }
}
