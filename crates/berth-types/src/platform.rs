//! Platforms (`os/arch[/variant]`), normalized and matched as containerd's `platforms` package
//! does, so that `--platform linux/arm64`, `linux/aarch64` and `linux/arm64/v8` agree.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64")]
    Format(String),
    #[error("unknown operating system or architecture {0:?} in platform {1:?}")]
    Unknown(String, String),
}

/// An OCI platform. `os_version` and `os_features` only matter for Windows images and are kept so
/// that descriptors round-trip.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Option::is_none")]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: arch.to_string(),
            os: os.to_string(),
            os_version: None,
            os_features: None,
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
        }
        .normalized()
    }

    /// The platform berth runs on (always linux; architecture from the build target).
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform::new("linux", arch, variant)
    }

    /// Parses `os[/arch[/variant]]` (or just `arch`, as containerd allows), normalizing aliases.
    pub fn parse(s: &str) -> Result<Platform, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| {
            p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        }) {
            return Err(PlatformError::Format(s.to_string()));
        }
        let lower: Vec<String> = parts.iter().map(|p| p.to_lowercase()).collect();
        let p = match lower.as_slice() {
            [one] => {
                if is_known_os(one) {
                    Platform::new(one, Platform::host().architecture.as_str(), None)
                } else if is_known_arch(&normalize_arch(one, "").0) {
                    Platform::new("linux", one, None)
                } else {
                    return Err(PlatformError::Unknown(one.clone(), s.to_string()));
                }
            }
            [os, arch] => Platform::new(os, arch, None),
            [os, arch, variant] => Platform::new(os, arch, Some(variant)),
            _ => return Err(PlatformError::Format(s.to_string())),
        };
        if !is_known_os(&p.os) {
            return Err(PlatformError::Unknown(p.os.clone(), s.to_string()));
        }
        Ok(p)
    }

    /// Applies containerd's normalization of architecture aliases and default variants.
    pub fn normalized(mut self) -> Platform {
        self.os = self.os.to_lowercase();
        if self.os == "macos" {
            self.os = "darwin".to_string();
        }
        let (arch, variant) = normalize_arch(&self.architecture.to_lowercase(), self.variant.as_deref().unwrap_or(""));
        self.architecture = arch;
        self.variant = if variant.is_empty() { None } else { Some(variant) };
        self
    }

    /// Whether an image for `other` can run on (is acceptable for) this requested platform.
    ///
    /// Follows containerd's `platforms.Only`: arm64 accepts v8 (also unset); arm/v7 accepts v7,
    /// v6, v5; amd64 accepts any amd64 variant up to the requested one.
    pub fn matches(&self, other: &Platform) -> bool {
        let a = self.clone().normalized();
        let b = other.clone().normalized();
        if a.os != b.os || a.architecture != b.architecture {
            return false;
        }
        let want = a.variant.as_deref().unwrap_or("");
        let have = b.variant.as_deref().unwrap_or("");
        if want == have {
            return true;
        }
        match a.architecture.as_str() {
            "arm64" => (want == "v8" || want.is_empty()) && (have == "v8" || have.is_empty()),
            "arm" => {
                let order = ["v8", "v7", "v6", "v5"];
                let wi = order.iter().position(|v| *v == want);
                let hi = order.iter().position(|v| *v == have);
                matches!((wi, hi), (Some(w), Some(h)) if h >= w)
            }
            "amd64" => {
                let level = |v: &str| match v {
                    "" | "v1" => 1,
                    "v2" => 2,
                    "v3" => 3,
                    "v4" => 4,
                    _ => 99,
                };
                level(have) <= level(want)
            }
            _ => want.is_empty(),
        }
    }

    /// Preference of a matching candidate (lower is better), so an exact variant wins.
    pub fn match_rank(&self, other: &Platform) -> usize {
        let want = self.clone().normalized();
        let have = other.clone().normalized();
        if want.variant == have.variant { 0 } else { 1 }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

fn is_known_os(os: &str) -> bool {
    matches!(
        os,
        "linux"
            | "windows"
            | "darwin"
            | "macos"
            | "freebsd"
            | "netbsd"
            | "openbsd"
            | "solaris"
            | "illumos"
            | "aix"
            | "android"
            | "dragonfly"
            | "ios"
            | "js"
            | "plan9"
            | "wasip1"
    )
}

fn is_known_arch(arch: &str) -> bool {
    matches!(
        arch,
        "386"
            | "amd64"
            | "arm"
            | "arm64"
            | "ppc64"
            | "ppc64le"
            | "mips"
            | "mipsle"
            | "mips64"
            | "mips64le"
            | "s390x"
            | "riscv64"
            | "loong64"
            | "wasm"
    )
}

fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (a, v) = match (arch, variant) {
        ("i386" | "i686" | "x86", _) => ("386", ""),
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64", if v == "v1" { "" } else { v }),
        // containerd (1.7+) and BuildKit: arm64's only variant, v8, is the default and dropped,
        // so `linux/arm64` prints as such and TARGETVARIANT is empty. Index entries keep what
        // they say (matching treats "" and v8 alike).
        ("aarch64" | "arm64", v) => ("arm64", if v == "8" || v == "v8" || v == "v8.0" { "" } else { v }),
        ("armhf", _) => ("arm", "v7"),
        ("armel", _) => ("arm", "v6"),
        ("arm", "") | ("arm", "7") => ("arm", "v7"),
        ("arm", "5") => ("arm", "v5"),
        ("arm", "6") => ("arm", "v6"),
        ("arm", "8") => ("arm", "v8"),
        (a, v) => (a, v),
    };
    (a.to_string(), v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_normalize() {
        assert_eq!(Platform::parse("linux/amd64").unwrap().to_string(), "linux/amd64");
        assert_eq!(Platform::parse("linux/x86_64").unwrap().to_string(), "linux/amd64");
        assert_eq!(Platform::parse("linux/arm64").unwrap().to_string(), "linux/arm64");
        assert_eq!(Platform::parse("linux/arm64/v8").unwrap().to_string(), "linux/arm64");
        assert_eq!(Platform::parse("linux/aarch64").unwrap().to_string(), "linux/arm64");
        assert_eq!(Platform::parse("linux/arm").unwrap().to_string(), "linux/arm/v7");
        assert_eq!(Platform::parse("Linux/ARM/v6").unwrap().to_string(), "linux/arm/v6");
        assert_eq!(Platform::parse("arm64").unwrap().to_string(), "linux/arm64");
        assert!(Platform::parse("linux/").is_err());
        assert!(Platform::parse("plan10/amd64").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }

    #[test]
    fn matching() {
        let want = Platform::parse("linux/arm64").unwrap();
        assert!(want.matches(&Platform { architecture: "arm64".into(), os: "linux".into(), ..Default::default() }));
        assert!(!want.matches(&Platform::parse("linux/amd64").unwrap()));
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(v7.matches(&Platform::parse("linux/arm/v6").unwrap()));
        assert!(!Platform::parse("linux/arm/v6").unwrap().matches(&v7));
        assert!(Platform::parse("linux/amd64").unwrap().matches(&Platform::parse("linux/amd64").unwrap()));
        assert!(!Platform::parse("linux/amd64").unwrap().matches(&Platform::parse("windows/amd64").unwrap()));
    }

    #[test]
    fn serde_shape() {
        let p = Platform::parse("linux/arm64").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"architecture":"arm64","os":"linux"}"#);
    }
}
