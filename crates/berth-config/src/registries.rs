//! Registry settings: insecure registries, mirrors and blocked registries.
//!
//! Sources, all merged (see docs/registries.md for the user-facing description):
//!
//! * JSON files with Docker `daemon.json` keys: `insecure-registries` (hosts with optional port,
//!   or CIDRs), `registry-mirrors` (Docker Hub mirrors, as URLs), `max-concurrent-downloads`,
//!   `max-concurrent-uploads`. Defaults: `/etc/docker/daemon.json`, `/etc/berth/registries.json`,
//!   `$XDG_CONFIG_HOME/berth/registries.json`; `BERTH_REGISTRIES_CONFIG` (colon-separated)
//!   replaces the list. Other keys are ignored, so a whole daemon.json is a valid file. A file
//!   in that list named `*.conf`/`*.toml`, or whose content does not start with `{`, is read as
//!   a registries.conf instead.
//! * containers `registries.conf` (TOML, v2 `[[registry]]` tables and the v1
//!   `[registries.insecure]`/`[registries.block]` lists): `/etc/containers/registries.conf`, then
//!   `/etc/containers/registries.conf.d/*.conf` in name order, then
//!   `$XDG_CONFIG_HOME/containers/registries.conf`; `CONTAINERS_REGISTRIES_CONF` replaces the
//!   first file. Later entries with the same prefix replace earlier ones.
//!
//! Loopback registries (`localhost`, `127.0.0.0/8`, `::1`) are always insecure, as in Docker.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::env;

#[derive(Debug, thiserror::Error)]
pub enum RegistriesError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: invalid TOML: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("{path}: invalid insecure registry {value:?}: {reason}")]
    BadInsecure { path: PathBuf, value: String, reason: String },
    #[error("{path}: [[registry]] needs a \"prefix\" or a \"location\"")]
    MissingLocation { path: PathBuf },
}

/// A mirror of a registry (or of a namespace in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// `host[:port][/path]`, without scheme.
    pub location: String,
    /// Plain HTTP or unverified TLS allowed.
    pub insecure: bool,
    /// Use only for pulls by digest (registries.conf `mirror-by-digest-only` or
    /// `pull-from-mirror = "digest-only"`).
    pub digest_only: bool,
}

/// One `[[registry]]` table from registries.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    /// What references it applies to: `host[/path]` or `*.domain`.
    pub prefix: String,
    /// Where to actually go (`host[/path]`), replacing `prefix`.
    pub location: String,
    pub insecure: bool,
    pub blocked: bool,
    pub mirrors: Vec<Mirror>,
}

/// A parsed CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, b) = s.split_once('/')?;
        let addr: IpAddr = a.parse().ok()?;
        let bits: u8 = b.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (bits <= max).then_some(Cidr { addr, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
            let full = usize::from(bits / 8);
            let rest = bits % 8;
            if a.get(..full) != b.get(..full) {
                return false;
            }
            if rest == 0 {
                return true;
            }
            let mask = 0xffu8 << (8 - rest);
            matches!((a.get(full), b.get(full)), (Some(x), Some(y)) if x & mask == y & mask)
        }
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => prefix_eq(&n.octets(), &i.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(i)) => prefix_eq(&n.octets(), &i.octets(), self.bits),
            (IpAddr::V6(_), IpAddr::V4(i)) => self.contains(IpAddr::V6(i.to_ipv6_mapped())),
            _ => false,
        }
    }
}

/// Merged registry settings. Cheap to clone; immutable once loaded.
#[derive(Debug, Clone, Default)]
pub struct RegistriesConfig {
    insecure_hosts: Vec<String>,
    insecure_cidrs: Vec<Cidr>,
    /// `registry-mirrors` from the JSON files (Docker Hub only, as in Docker).
    hub_mirrors: Vec<Mirror>,
    registries: Vec<RegistryEntry>,
    /// registries.conf `unqualified-search-registries` (informational: berth always uses
    /// docker.io for short names, as Docker does).
    pub unqualified_search: Vec<String>,
    pub max_concurrent_downloads: Option<usize>,
    pub max_concurrent_uploads: Option<usize>,
    /// The files that existed and were read.
    pub sources: Vec<PathBuf>,
}

#[derive(Deserialize, Default)]
struct JsonFile {
    #[serde(rename = "insecure-registries", default)]
    insecure: Vec<String>,
    #[serde(rename = "registry-mirrors", default)]
    mirrors: Vec<String>,
    #[serde(rename = "max-concurrent-downloads", default)]
    downloads: Option<usize>,
    #[serde(rename = "max-concurrent-uploads", default)]
    uploads: Option<usize>,
}

#[derive(Deserialize, Default)]
struct ConfFile {
    #[serde(rename = "unqualified-search-registries", default)]
    unqualified: Option<Vec<String>>,
    #[serde(default)]
    registry: Vec<ConfRegistry>,
    #[serde(default)]
    registries: Option<ConfV1>,
}

#[derive(Deserialize, Default)]
struct ConfV1 {
    #[serde(default)]
    search: Option<ConfList>,
    #[serde(default)]
    insecure: Option<ConfList>,
    #[serde(default)]
    block: Option<ConfList>,
}

#[derive(Deserialize, Default)]
struct ConfList {
    #[serde(default)]
    registries: Vec<String>,
}

#[derive(Deserialize, Default)]
struct ConfRegistry {
    prefix: Option<String>,
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(rename = "mirror-by-digest-only", default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<ConfMirror>,
}

#[derive(Deserialize, Default)]
struct ConfMirror {
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(rename = "pull-from-mirror", default)]
    pull_from_mirror: Option<String>,
}

/// The JSON settings files read by default (or from `BERTH_REGISTRIES_CONFIG`).
pub fn default_json_files() -> Vec<PathBuf> {
    if let Some(v) = std::env::var_os(env::BERTH_REGISTRIES_CONFIG) {
        return std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect();
    }
    let mut v = vec![PathBuf::from("/etc/docker/daemon.json"), PathBuf::from("/etc/berth/registries.json")];
    if let Some(h) = env::xdg_config_home() {
        v.push(h.join("berth/registries.json"));
    }
    v
}

/// The registries.conf files read by default, in merge order.
pub fn default_conf_files() -> Vec<PathBuf> {
    let main = std::env::var_os(env::CONTAINERS_REGISTRIES_CONF)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/containers/registries.conf"));
    let mut v = vec![main];
    // The drop-in directory and the user file belong to the system configuration; an explicit
    // CONTAINERS_REGISTRIES_CONF means "this file only", as in containers/image.
    if std::env::var_os(env::CONTAINERS_REGISTRIES_CONF).is_none() {
        let mut dropins: Vec<PathBuf> = std::fs::read_dir("/etc/containers/registries.conf.d")
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        dropins.retain(|p| p.extension().is_some_and(|e| e == "conf"));
        dropins.sort();
        v.extend(dropins);
        if let Some(h) = env::xdg_config_home() {
            v.push(h.join("containers/registries.conf"));
        }
    }
    v
}

/// Whether `host[:port]` is `localhost`, in `127.0.0.0/8` or `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let h = strip_port(host);
    if h == "localhost" {
        return true;
    }
    h.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `host` without `:port` (IPv6 literals keep their brackets stripped).
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn strip_scheme(s: &str) -> (&str, bool) {
    if let Some(r) = s.strip_prefix("http://") {
        (r.trim_end_matches('/'), true)
    } else if let Some(r) = s.strip_prefix("https://") {
        (r.trim_end_matches('/'), false)
    } else {
        (s.trim_end_matches('/'), false)
    }
}

impl RegistriesConfig {
    /// Loads every default source (see the module docs). Missing files are skipped.
    pub fn load() -> Result<RegistriesConfig, RegistriesError> {
        RegistriesConfig::load_from(&default_json_files(), &default_conf_files())
    }

    /// Loads the given JSON (daemon.json-style) and registries.conf files; missing ones are
    /// skipped.
    pub fn load_from(json_files: &[PathBuf], conf_files: &[PathBuf]) -> Result<RegistriesConfig, RegistriesError> {
        let mut cfg = RegistriesConfig::default();
        for p in json_files {
            if let Some(bytes) = read_optional(p)? {
                // `BERTH_REGISTRIES_CONFIG` may list registries.conf files too (one variable
                // for a test's whole registry setup).
                if is_conf_file(p, &bytes) {
                    cfg.merge_conf(p, &String::from_utf8_lossy(&bytes))?;
                } else {
                    cfg.merge_json(p, &bytes)?;
                }
                cfg.sources.push(p.clone());
            }
        }
        for p in conf_files {
            if let Some(bytes) = read_optional(p)? {
                cfg.merge_conf(p, &String::from_utf8_lossy(&bytes))?;
                cfg.sources.push(p.clone());
            }
        }
        Ok(cfg)
    }

    fn merge_json(&mut self, path: &Path, bytes: &[u8]) -> Result<(), RegistriesError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let f: JsonFile = serde_json::from_slice(bytes)
            .map_err(|source| RegistriesError::Json { path: path.to_path_buf(), source })?;
        for i in f.insecure {
            self.add_insecure(path, &i)?;
        }
        for m in f.mirrors {
            let (loc, insecure) = strip_scheme(&m);
            if !loc.is_empty() {
                self.hub_mirrors.push(Mirror { location: loc.to_string(), insecure, digest_only: false });
            }
        }
        if f.downloads.is_some() {
            self.max_concurrent_downloads = f.downloads;
        }
        if f.uploads.is_some() {
            self.max_concurrent_uploads = f.uploads;
        }
        Ok(())
    }

    fn add_insecure(&mut self, path: &Path, value: &str) -> Result<(), RegistriesError> {
        let (v, _) = strip_scheme(value.trim());
        if v.is_empty() {
            return Err(RegistriesError::BadInsecure {
                path: path.into(),
                value: value.into(),
                reason: "empty".into(),
            });
        }
        if v.contains('/') {
            let c = Cidr::parse(v).ok_or_else(|| RegistriesError::BadInsecure {
                path: path.into(),
                value: value.into(),
                reason: "neither host[:port] nor a CIDR such as 10.0.0.0/8".into(),
            })?;
            self.insecure_cidrs.push(c);
        } else {
            self.insecure_hosts.push(v.to_string());
        }
        Ok(())
    }

    fn merge_conf(&mut self, path: &Path, text: &str) -> Result<(), RegistriesError> {
        let f: ConfFile = toml::from_str(text)
            .map_err(|e| RegistriesError::Toml { path: path.to_path_buf(), message: e.to_string() })?;
        if let Some(u) = f.unqualified {
            self.unqualified_search = u;
        }
        if let Some(v1) = f.registries {
            for r in v1.insecure.map(|l| l.registries).unwrap_or_default() {
                self.add_insecure(path, &r)?;
            }
            for r in v1.block.map(|l| l.registries).unwrap_or_default() {
                self.upsert(RegistryEntry {
                    prefix: r.clone(),
                    location: r,
                    insecure: false,
                    blocked: true,
                    mirrors: vec![],
                });
            }
            if let Some(s) = v1.search {
                self.unqualified_search = s.registries;
            }
        }
        for r in f.registry {
            let (prefix, location) = match (r.prefix, r.location) {
                (Some(p), Some(l)) => (p, l),
                (Some(p), None) => (p.clone(), p),
                (None, Some(l)) => (l.clone(), l),
                (None, None) => return Err(RegistriesError::MissingLocation { path: path.into() }),
            };
            let mirrors = r
                .mirror
                .into_iter()
                .map(|m| Mirror {
                    location: strip_scheme(&m.location).0.to_string(),
                    insecure: m.insecure,
                    digest_only: r.mirror_by_digest_only || m.pull_from_mirror.as_deref() == Some("digest-only"),
                })
                .collect();
            self.upsert(RegistryEntry {
                prefix: strip_scheme(&prefix).0.to_string(),
                location: strip_scheme(&location).0.to_string(),
                insecure: r.insecure,
                blocked: r.blocked,
                mirrors,
            });
        }
        Ok(())
    }

    fn upsert(&mut self, e: RegistryEntry) {
        self.registries.retain(|x| x.prefix != e.prefix);
        self.registries.push(e);
    }

    /// The registries.conf entry for a repository name (`host/path`, no tag): the longest
    /// matching prefix. `*.example.com` matches any subdomain host.
    pub fn find(&self, name: &str) -> Option<&RegistryEntry> {
        let host = name.split('/').next().unwrap_or(name);
        self.registries
            .iter()
            .filter(|e| {
                if let Some(suffix) = e.prefix.strip_prefix("*.") {
                    host.ends_with(&format!(".{suffix}"))
                } else {
                    name == e.prefix || name.starts_with(&format!("{}/", e.prefix))
                }
            })
            .max_by_key(|e| e.prefix.len())
    }

    /// Whether `host[:port]` may be reached over plain HTTP or with an unverified certificate:
    /// loopback, listed by host, covered by an insecure CIDR (IP literals, or host names that
    /// resolve into it, as Docker resolves them), or an `insecure = true` registries.conf entry.
    /// May do a blocking DNS lookup when CIDRs are configured.
    pub fn is_insecure(&self, host: &str) -> bool {
        is_loopback_host(host) || self.is_insecure_configured(host)
    }

    /// [`RegistriesConfig::is_insecure`] without the implicit loopback rule: only what the
    /// configuration files say.
    pub fn is_insecure_configured(&self, host: &str) -> bool {
        if self.insecure_hosts.iter().any(|h| h == host) {
            return true;
        }
        let host_of = |s: &str| s.split('/').next().map(str::to_string);
        if self.registries.iter().any(|e| {
            e.insecure && (host_of(&e.location).as_deref() == Some(host) || host_of(&e.prefix).as_deref() == Some(host))
        }) || self
            .registries
            .iter()
            .flat_map(|e| &e.mirrors)
            .any(|m| m.insecure && m.location.split('/').next() == Some(host))
            || self.hub_mirrors.iter().any(|m| m.insecure && m.location.split('/').next() == Some(host))
        {
            return true;
        }
        if self.insecure_cidrs.is_empty() {
            return false;
        }
        let bare = strip_port(host);
        let ips: Vec<IpAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                use std::net::ToSocketAddrs as _;
                (bare, 0u16).to_socket_addrs().map(|it| it.map(|a| a.ip()).collect()).unwrap_or_default()
            }
        };
        ips.iter().any(|ip| self.insecure_cidrs.iter().any(|c| c.contains(*ip)))
    }

    /// Mirrors to try before the registry itself for repository `name` (`host/path`): Docker's
    /// `registry-mirrors` for Docker Hub, then registries.conf mirrors of the matching entry.
    pub fn mirrors(&self, name: &str) -> Vec<Mirror> {
        let host = name.split('/').next().unwrap_or(name);
        let mut out = Vec::new();
        if crate::DOCKER_HUB_HOSTS.contains(&host) {
            out.extend(self.hub_mirrors.iter().cloned());
        }
        if let Some(e) = self.find(name) {
            out.extend(e.mirrors.iter().cloned());
        }
        out
    }

    /// Whether registries.conf blocks pulls from `name`.
    pub fn is_blocked(&self, name: &str) -> bool {
        self.find(name).is_some_and(|e| e.blocked)
    }
}

/// Whether a file named in the JSON list is really a containers registries.conf (TOML): by its
/// extension (`.conf`, `.toml`; `.json` is always JSON), else by its content (a JSON settings
/// file is an object, so it starts with `{`; TOML never does).
fn is_conf_file(p: &Path, bytes: &[u8]) -> bool {
    match p.extension().and_then(|e| e.to_str()) {
        Some("json") => false,
        Some("conf" | "toml") => true,
        _ => bytes.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b != b'{'),
    }
}

fn read_optional(p: &Path) -> Result<Option<Vec<u8>>, RegistriesError> {
    match std::fs::read(p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RegistriesError::Read { path: p.to_path_buf(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        let c = Cidr::parse("192.168.0.0/23").unwrap();
        assert!(c.contains("192.168.1.255".parse().unwrap()));
        assert!(!c.contains("192.168.2.0".parse().unwrap()));
        assert!(Cidr::parse("fd00::/8").unwrap().contains("fd12::1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nope/8").is_none());
    }

    #[test]
    fn daemon_json_and_registries_conf() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("daemon.json");
        std::fs::write(
            &j,
            r#"{"insecure-registries":["myreg:5000","10.9.0.0/16"],"registry-mirrors":["https://mirror.example/","http://plain-mirror:5000"],"debug":true,"max-concurrent-downloads":5}"#,
        )
        .unwrap();
        let c = dir.path().join("registries.conf");
        std::fs::write(
            &c,
            r#"
unqualified-search-registries = ["docker.io", "quay.io"]

[[registry]]
prefix = "example.com/foo"
location = "internal.example:5000/foo"
insecure = true

[[registry.mirror]]
location = "mirror-a.example/foo"

[[registry]]
location = "blocked.example"
blocked = true

[[registry]]
prefix = "*.wild.example"
location = "wild-mirror.example"

[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "hubcache.example"
pull-from-mirror = "digest-only"

[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
"#,
        )
        .unwrap();
        let v1 = dir.path().join("v1.conf");
        std::fs::write(&v1, "[registries.insecure]\nregistries = ['old.example:5000']\n").unwrap();
        let cfg = RegistriesConfig::load_from(&[j, dir.path().join("absent.json")], &[c, v1]).unwrap();
        assert_eq!(cfg.sources.len(), 3);
        assert_eq!(cfg.max_concurrent_downloads, Some(5));
        assert!(cfg.is_insecure("myreg:5000"));
        assert!(!cfg.is_insecure("myreg"));
        assert!(cfg.is_insecure("10.9.3.4:443"));
        assert!(cfg.is_insecure("localhost:5000"));
        assert!(cfg.is_insecure("127.0.0.1:5000"));
        assert!(cfg.is_insecure("[::1]:5000"));
        assert!(cfg.is_insecure("internal.example:5000"));
        assert!(cfg.is_insecure("old.example:5000"));
        assert!(cfg.is_insecure("plain-mirror:5000"));
        assert!(!cfg.is_insecure("registry-1.docker.io"));
        assert_eq!(cfg.unqualified_search, ["docker.io", "quay.io"]);
        let e = cfg.find("example.com/foo/bar").unwrap();
        assert_eq!(e.location, "internal.example:5000/foo");
        assert_eq!(e.mirrors[0].location, "mirror-a.example/foo");
        assert!(cfg.find("example.com/foobar").is_none());
        assert!(cfg.is_blocked("blocked.example/x"));
        assert_eq!(cfg.find("a.wild.example/x").unwrap().location, "wild-mirror.example");
        let m = cfg.mirrors("docker.io/library/busybox");
        let locs: Vec<_> = m.iter().map(|m| (m.location.as_str(), m.insecure, m.digest_only)).collect();
        assert_eq!(
            locs,
            [("mirror.example", false, false), ("plain-mirror:5000", true, false), ("hubcache.example", false, true)]
        );
    }

    #[test]
    fn registries_conf_in_the_json_list() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("daemon.json");
        std::fs::write(&j, r#"{"registry-mirrors":["http://localhost:5000"]}"#).unwrap();
        let c = dir.path().join("remap.conf");
        std::fs::write(&c, "[[registry]]\nprefix = \"gcr.io\"\nlocation = \"127.0.0.1:5000\"\n").unwrap();
        // No extension: sniffed (TOML does not start with `{`).
        let plain = dir.path().join("registries");
        std::fs::write(&plain, "\n[[registry]]\nlocation = \"lan.example:5000\"\ninsecure = true\n").unwrap();
        let cfg = RegistriesConfig::load_from(&[j, c, plain], &[]).unwrap();
        assert_eq!(cfg.sources.len(), 3);
        assert_eq!(cfg.find("gcr.io/google-containers/nginx").unwrap().location, "127.0.0.1:5000");
        assert!(cfg.is_insecure("lan.example:5000"));
        assert_eq!(cfg.mirrors("docker.io/library/ubuntu")[0].location, "localhost:5000");
        // A .json file stays JSON, with a JSON error.
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "[[registry]]\n").unwrap();
        assert!(matches!(RegistriesConfig::load_from(&[bad], &[]), Err(RegistriesError::Json { .. })));
    }

    #[test]
    fn bad_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("r.json");
        std::fs::write(&j, r#"{"insecure-registries":["10.0.0.0/99"]}"#).unwrap();
        let e = RegistriesConfig::load_from(std::slice::from_ref(&j), &[]).unwrap_err().to_string();
        assert!(e.contains("invalid insecure registry"), "{e}");
        std::fs::write(&j, "{").unwrap();
        assert!(RegistriesConfig::load_from(&[j], &[]).is_err());
        let c = dir.path().join("r.conf");
        std::fs::write(&c, "[[registry]]\ninsecure = true\n").unwrap();
        let e = RegistriesConfig::load_from(&[], std::slice::from_ref(&c)).unwrap_err().to_string();
        assert!(e.contains("prefix"), "{e}");
        std::fs::write(&c, "[[registry]\n").unwrap();
        assert!(matches!(RegistriesConfig::load_from(&[], &[c]), Err(RegistriesError::Toml { .. })));
    }
}
