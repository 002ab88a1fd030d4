//! Credential lookup for one registry, in Docker's order, plus `login`/`logout` storage.
//!
//! Lookup order for host `H` (and optional repository path, for containers' namespaced keys):
//!
//! 1. `DOCKER_AUTH_CONFIG` (inline JSON, `auths` only), as current docker/cli does;
//! 2. `credHelpers[H]` in config.json, else `credsStore`: the helper's answer, with a missing
//!    helper binary downgraded to a warning and a fall-back to step 3 (users.md A6);
//! 3. `auths` in config.json;
//! 4. containers' auth files: `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//!    `~/.config/containers/auth.json` (first that has an entry).
//!
//! [`Keychain`] is `Send + Sync`; lookups run helper processes, so async callers should call
//! [`Keychain::get`] from `spawn_blocking`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::dockercfg::{AuthEntry, ConfigError, ConfigFile, auth_key_for_host};
use crate::env;
use crate::helper::CredentialHelper;

/// A warning produced during a lookup (missing helper). The CLI prints these on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupWarning(pub String);

/// Where `login` stored a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredIn {
    /// Plain `auths` in this file (Docker's "stored unencrypted" case).
    ConfigFile(PathBuf),
    /// A credential helper (by name).
    Helper(String),
}

/// Credentials from Docker's and containers' configuration. See the module docs for the order.
#[derive(Debug)]
pub struct Keychain {
    config: ConfigFile,
    env_config: Option<ConfigFile>,
    containers_files: Vec<PathBuf>,
    helper_path: Option<OsString>,
    warnings: Mutex<Vec<LookupWarning>>,
}

impl Keychain {
    /// Loads `config.json` from `config_dir` (see [`crate::dockercfg::config_dir`]), the
    /// `DOCKER_AUTH_CONFIG` variable and the default containers auth file locations.
    pub fn load(config_dir: &Path) -> Result<Keychain, ConfigError> {
        let env_config = match std::env::var(env::DOCKER_AUTH_CONFIG) {
            Ok(v) if !v.trim().is_empty() => Some(ConfigFile::from_json(&v, "DOCKER_AUTH_CONFIG")?),
            _ => None,
        };
        Ok(Keychain {
            config: ConfigFile::load_dir(config_dir)?,
            env_config,
            containers_files: default_containers_auth_files(),
            helper_path: None,
            warnings: Mutex::new(Vec::new()),
        })
    }

    /// A keychain from explicit parts (tests, or callers that already loaded the files).
    pub fn from_parts(config: ConfigFile, env_config: Option<ConfigFile>, containers_files: Vec<PathBuf>) -> Keychain {
        Keychain { config, env_config, containers_files, helper_path: None, warnings: Mutex::new(Vec::new()) }
    }

    /// Searches this `PATH` list for credential helpers instead of the process's `PATH`.
    pub fn with_helper_path(mut self, path: Option<OsString>) -> Keychain {
        self.helper_path = path;
        self
    }

    pub fn config(&self) -> &ConfigFile {
        &self.config
    }

    /// Warnings gathered by lookups since the last call (each helper problem once).
    pub fn take_warnings(&self) -> Vec<LookupWarning> {
        self.warnings.lock().map(|mut w| std::mem::take(&mut *w)).unwrap_or_default()
    }

    fn warn(&self, msg: String) {
        tracing::warn!("{msg}");
        if let Ok(mut w) = self.warnings.lock() {
            let w_msg = LookupWarning(msg);
            if !w.contains(&w_msg) {
                w.push(w_msg);
            }
        }
    }

    /// The helper configured for `host`, if any (`credHelpers` wins over `credsStore`).
    pub fn helper_for(&self, host: &str) -> Option<CredentialHelper> {
        let cfg = self.config.path().display().to_string();
        let h = if let Some(name) = self.config.cred_helper(host) {
            CredentialHelper::new(name, &format!("credHelpers[{:?}]", auth_key_for_host(host)), &cfg)
        } else {
            CredentialHelper::new(self.config.creds_store()?, "credsStore", &cfg)
        };
        Some(h.with_search_path(self.helper_path.clone()))
    }

    /// Credentials for registry `host` (`registry-1.docker.io`, `localhost:5000`, …), or `None`
    /// for anonymous access. `repository` (path inside the registry) enables containers'
    /// namespaced keys. Errors only for broken files or a helper that ran and failed.
    pub fn get(&self, host: &str, repository: Option<&str>) -> Result<Option<AuthEntry>, ConfigError> {
        if let Some(e) = &self.env_config
            && let Some(a) = e.auth_for_host(host)?.filter(|a| !a.is_empty())
        {
            return Ok(Some(a));
        }
        if let Some(helper) = self.helper_for(host) {
            match helper.get(&auth_key_for_host(host)) {
                Ok(Some(a)) => return Ok(Some(a)),
                Ok(None) => {}
                Err(e) if e.is_not_installed() => {
                    self.warn(format!("{e}; falling back to \"auths\" in {}", self.config.path().display()));
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(a) = self.config.auth_for_host(host)?.filter(|a| !a.is_empty()) {
            return Ok(Some(a));
        }
        for f in &self.containers_files {
            let cf = ConfigFile::load(f)?;
            if !cf.exists() {
                continue;
            }
            let found = match repository {
                Some(r) => cf.auth_for_repository(host, r)?,
                None => cf.auth_for_host(host)?,
            };
            if let Some(a) = found.filter(|a| !a.is_empty()) {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }

    /// Stores credentials for `host` as `docker login` does: through the configured helper
    /// (leaving an empty `auths` entry so the registry stays listed), or in `auths` in
    /// config.json. A configured but missing helper is reported as an error here: silently
    /// writing a password somewhere else than the user configured would be worse (docker/cli#3947).
    pub fn store(&mut self, host: &str, entry: &AuthEntry) -> Result<StoredIn, ConfigError> {
        let key = auth_key_for_host(host);
        if let Some(helper) = self.helper_for(host) {
            helper.store(&key, entry)?;
            self.config.remove_auth(&key);
            self.config.set_empty_auth(&key);
            self.config.save()?;
            return Ok(StoredIn::Helper(helper.name().to_string()));
        }
        self.config.remove_auth(&key);
        self.config.set_auth(&key, entry);
        self.config.save()?;
        Ok(StoredIn::ConfigFile(self.config.path().to_path_buf()))
    }

    /// Removes credentials for `host` (helper entry and `auths` entry). Returns whether anything
    /// was found in config.json. A missing helper only warns, so `logout` still cleans the file.
    pub fn erase(&mut self, host: &str) -> Result<bool, ConfigError> {
        let key = auth_key_for_host(host);
        if let Some(helper) = self.helper_for(host) {
            match helper.erase(&key) {
                Ok(()) => {}
                Err(e) if e.is_not_installed() => self.warn(e.to_string()),
                Err(e) => return Err(e.into()),
            }
        }
        let removed = self.config.remove_auth(&key);
        if removed {
            self.config.save()?;
        }
        Ok(removed)
    }
}

/// containers' auth files in lookup order: `$REGISTRY_AUTH_FILE`, then
/// `$XDG_RUNTIME_DIR/containers/auth.json`, then `~/.config/containers/auth.json`.
pub fn default_containers_auth_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(p) = std::env::var_os(env::REGISTRY_AUTH_FILE).filter(|p| !p.is_empty()) {
        v.push(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os(env::XDG_RUNTIME_DIR).filter(|p| !p.is_empty()) {
        v.push(PathBuf::from(p).join("containers/auth.json"));
    }
    if let Some(h) = env::xdg_config_home() {
        v.push(h.join("containers/auth.json"));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// A helper that keeps one entry per server in `$dir/store-<server-hash>` files.
    fn write_helper(dir: &Path, name: &str) {
        let script = format!(
            r#"#!/bin/sh
store="{dir}/helper-store"
mkdir -p "$store"
case "$1" in
get)
  read -r url
  f="$store/$(printf %s "$url" | md5sum | cut -c1-16)"
  if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store)
  json=$(cat)
  url=$(printf %s "$json" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')
  printf %s "$json" > "$store/$(printf %s "$url" | md5sum | cut -c1-16)" ;;
erase)
  read -r url
  rm -f "$store/$(printf %s "$url" | md5sum | cut -c1-16)" ;;
list)
  echo '{{"https://index.docker.io/v1/":"someone"}}' ;;
*) echo "unknown verb" ; exit 1 ;;
esac
"#,
            dir = dir.display()
        );
        let p = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn path_with(dir: &Path) -> Option<OsString> {
        let mut p = OsString::from(dir);
        p.push(":/usr/bin:/bin");
        Some(p)
    }

    #[test]
    fn helper_protocol_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        write_helper(dir.path(), "fake");
        let h = CredentialHelper::new("fake", "credsStore", "cfg").with_search_path(path_with(dir.path()));
        assert_eq!(h.get("reg.example").unwrap(), None);
        h.store("reg.example", &AuthEntry::basic("alice", "s3cret")).unwrap();
        let got = h.get("reg.example").unwrap().unwrap();
        assert_eq!((got.username.as_str(), got.password.as_str()), ("alice", "s3cret"));
        let mut tok = AuthEntry::basic("alice", "");
        tok.identity_token = Some("refresh-xyz".into());
        h.store("tok.example", &tok).unwrap();
        let got = h.get("tok.example").unwrap().unwrap();
        assert_eq!(got.identity_token.as_deref(), Some("refresh-xyz"));
        assert!(got.username.is_empty());
        h.erase("reg.example").unwrap();
        h.erase("reg.example").unwrap();
        assert_eq!(h.get("reg.example").unwrap(), None);
        assert_eq!(h.list().unwrap().get("https://index.docker.io/v1/").map(String::as_str), Some("someone"));
    }

    #[test]
    fn keychain_order_and_missing_helper() {
        let dir = tempfile::tempdir().unwrap();
        let cfgdir = dir.path().join("docker");
        std::fs::create_dir_all(&cfgdir).unwrap();
        std::fs::write(
            cfgdir.join("config.json"),
            r#"{"credsStore":"absent-helper","auths":{"https://index.docker.io/v1/":{"auth":"aHViOnB3"},"h:5000":{"auth":"ZmlsZTpwdw=="}}}"#,
        )
        .unwrap();
        let containers = dir.path().join("auth.json");
        std::fs::write(&containers, r#"{"auths":{"only.containers/ns":{"auth":"bnM6cHc="}}}"#).unwrap();
        let env_cfg =
            ConfigFile::from_json(r#"{"auths":{"h:5000":{"auth":"ZW52OnB3"}}}"#, "DOCKER_AUTH_CONFIG").unwrap();
        let kc = Keychain::from_parts(ConfigFile::load_dir(&cfgdir).unwrap(), Some(env_cfg), vec![containers])
            .with_helper_path(path_with(dir.path()));
        // DOCKER_AUTH_CONFIG wins.
        assert_eq!(kc.get("h:5000", None).unwrap().unwrap().username, "env");
        // Missing helper: warning plus fall-back to auths.
        assert_eq!(kc.get("registry-1.docker.io", None).unwrap().unwrap().username, "hub");
        let w = kc.take_warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].0.contains("docker-credential-absent-helper is not installed"), "{w:?}");
        assert!(w[0].0.contains("credsStore"), "{w:?}");
        // containers auth.json with a namespaced key.
        assert_eq!(kc.get("only.containers", Some("ns/app")).unwrap().unwrap().username, "ns");
        assert!(kc.get("only.containers", Some("other/app")).unwrap().is_none());
        assert!(kc.get("nowhere", None).unwrap().is_none());
    }

    #[test]
    fn login_logout_through_helper_and_file() {
        let dir = tempfile::tempdir().unwrap();
        write_helper(dir.path(), "fake");
        let cfgdir = dir.path().join("docker");
        std::fs::create_dir_all(&cfgdir).unwrap();
        std::fs::write(cfgdir.join("config.json"), r#"{"credHelpers":{"helped.example":"fake"},"x":1}"#).unwrap();
        let mut kc = Keychain::from_parts(ConfigFile::load_dir(&cfgdir).unwrap(), None, vec![])
            .with_helper_path(path_with(dir.path()));
        assert_eq!(kc.store("helped.example", &AuthEntry::basic("u", "p")).unwrap(), StoredIn::Helper("fake".into()));
        assert_eq!(kc.get("helped.example", None).unwrap().unwrap().password, "p");
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(cfgdir.join("config.json")).unwrap()).unwrap();
        assert_eq!(raw["auths"]["helped.example"], serde_json::json!({}));
        assert_eq!(raw["x"], 1);
        let stored = kc.store("plain.example", &AuthEntry::basic("u2", "p2")).unwrap();
        assert!(matches!(stored, StoredIn::ConfigFile(_)));
        assert_eq!(kc.get("plain.example", None).unwrap().unwrap().username, "u2");
        assert!(kc.erase("helped.example").unwrap());
        assert!(kc.get("helped.example", None).unwrap().is_none());
        assert!(kc.erase("plain.example").unwrap());
        assert!(!kc.erase("plain.example").unwrap());
    }
}
