//! Per-registry TLS material from `certs.d` directories (Docker's and containers' layout).
//!
//! For registry `host[:port]`, every root in [`CertsDirs`] is checked for a directory named exactly
//! `host[:port]`. In it, `*.crt` files are extra CA roots (added to the system roots, never
//! replacing them) and each `NAME.cert` must come with `NAME.key`: a client certificate and key
//! for mutual TLS. Material from all roots is merged; the first client pair found wins.
//!
//! Default roots: `/etc/docker/certs.d`, `/etc/containers/certs.d`,
//! `$XDG_CONFIG_HOME/containers/certs.d` (`~/.config/containers/certs.d`). `BERTH_CERTS_D`
//! (colon-separated) replaces the list.

use std::path::{Path, PathBuf};

use crate::dockercfg::ConfigError;
use crate::env;

/// The list of certs.d roots to search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertsDirs(pub Vec<PathBuf>);

/// A client certificate and its key for mutual TLS (PEM bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientPair {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for ClientPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientPair").field("cert_path", &self.cert_path).field("key_path", &self.key_path).finish()
    }
}

/// TLS material for one registry host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostTls {
    /// Extra CA roots: (file, PEM bytes).
    pub ca_roots: Vec<(PathBuf, Vec<u8>)>,
    pub client: Option<ClientPair>,
    /// The directories that matched (for messages).
    pub dirs: Vec<PathBuf>,
}

impl HostTls {
    pub fn is_empty(&self) -> bool {
        self.ca_roots.is_empty() && self.client.is_none()
    }
}

impl CertsDirs {
    /// `BERTH_CERTS_D` when set, else the defaults listed in the module docs.
    pub fn from_env() -> CertsDirs {
        if let Some(v) = std::env::var_os(env::BERTH_CERTS_D) {
            return CertsDirs(std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect());
        }
        let mut v = vec![PathBuf::from("/etc/docker/certs.d"), PathBuf::from("/etc/containers/certs.d")];
        if let Some(h) = env::xdg_config_home() {
            v.push(h.join("containers/certs.d"));
        }
        CertsDirs(v)
    }

    /// Loads the material for `host` (`host[:port]` exactly as in the reference). Unreadable files
    /// and a `.cert` without its `.key` are errors, as in Docker.
    pub fn for_host(&self, host: &str) -> Result<HostTls, ConfigError> {
        let mut out = HostTls::default();
        // Reject names that could walk out of the root.
        if host.is_empty() || host.contains('/') || host == "." || host == ".." {
            return Ok(out);
        }
        for root in &self.0 {
            let dir = root.join(host);
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::NotADirectory => {
                    continue;
                }
                Err(source) => return Err(ConfigError::Read { path: dir, source }),
            };
            let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            names.sort();
            out.dirs.push(dir.clone());
            for p in names {
                let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
                match ext {
                    "crt" => {
                        let pem = read(&p)?;
                        out.ca_roots.push((p, pem));
                    }
                    "cert" => {
                        let key = p.with_extension("key");
                        if !key.exists() {
                            return Err(ConfigError::Read {
                                path: key.clone(),
                                source: std::io::Error::new(
                                    std::io::ErrorKind::NotFound,
                                    format!("missing key {} for client certificate {}", key.display(), p.display()),
                                ),
                            });
                        }
                        if out.client.is_none() {
                            out.client = Some(ClientPair {
                                cert_pem: read(&p)?,
                                key_pem: read(&key)?,
                                cert_path: p,
                                key_path: key,
                            });
                        }
                    }
                    "key" if !p.with_extension("cert").exists() => {
                        return Err(ConfigError::Read {
                            path: p.clone(),
                            source: std::io::Error::new(
                                std::io::ErrorKind::NotFound,
                                format!("missing client certificate {} for key", p.with_extension("cert").display()),
                            ),
                        });
                    }
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}

fn read(p: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(p).map_err(|source| ConfigError::Read { path: p.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_merges_roots_and_pairs() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ha = a.path().join("reg.example:5000");
        let hb = b.path().join("reg.example:5000");
        std::fs::create_dir_all(&ha).unwrap();
        std::fs::create_dir_all(&hb).unwrap();
        std::fs::write(ha.join("ca.crt"), "CA-A").unwrap();
        std::fs::write(hb.join("extra.crt"), "CA-B").unwrap();
        std::fs::write(hb.join("client.cert"), "CERT").unwrap();
        std::fs::write(hb.join("client.key"), "KEY").unwrap();
        std::fs::write(hb.join("README"), "ignored").unwrap();
        let dirs = CertsDirs(vec![a.path().into(), b.path().into()]);
        let t = dirs.for_host("reg.example:5000").unwrap();
        assert_eq!(t.ca_roots.iter().map(|(_, p)| p.as_slice()).collect::<Vec<_>>(), [b"CA-A", b"CA-B"]);
        let c = t.client.unwrap();
        assert_eq!((c.cert_pem.as_slice(), c.key_pem.as_slice()), (&b"CERT"[..], &b"KEY"[..]));
        // The port is part of the name: no match without it.
        assert!(dirs.for_host("reg.example").unwrap().is_empty());
        assert!(dirs.for_host("../etc").unwrap().is_empty());
        std::fs::write(ha.join("lonely.cert"), "C").unwrap();
        let e = dirs.for_host("reg.example:5000").unwrap_err().to_string();
        assert!(e.contains("missing key"), "{e}");
    }
}
