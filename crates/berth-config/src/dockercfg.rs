//! Docker's `config.json` (and the same `auths` layout in containers' `auth.json` and in
//! `DOCKER_AUTH_CONFIG`).
//!
//! The document is kept as a [`serde_json::Value`] with key order preserved, so a
//! read-modify-write cycle (`login`, `logout`) leaves every key berth does not know about exactly
//! as it was. Writes are atomic (temp file in the same directory, fsync, rename, fsync of the
//! directory) and the file mode is 0600, as Docker writes it.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value};

use crate::{DOCKER_HUB_AUTH_KEY, DOCKER_HUB_HOSTS, env};

/// Errors from reading or writing configuration files.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: the top level must be a JSON object")]
    NotObject { path: PathBuf },
    #[error("{origin}: invalid auth entry for {key:?}: {reason}")]
    BadAuth { origin: String, key: String, reason: String },
    #[error(transparent)]
    Helper(#[from] crate::helper::HelperError),
    #[error("cannot find the Docker config directory: HOME is not set; hint: set DOCKER_CONFIG or pass --config")]
    NoHome,
}

/// Credentials for one registry, as Docker's `AuthConfig` holds them.
///
/// `identity_token` is an OAuth2 refresh token (sent to the token server with
/// `grant_type=refresh_token`); `registry_token` is a bearer token used as is.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthEntry {
    pub username: String,
    pub password: String,
    pub identity_token: Option<String>,
    pub registry_token: Option<String>,
    /// The key or server URL the entry came from (for messages; never a secret).
    pub server_address: String,
}

impl AuthEntry {
    pub fn basic(username: &str, password: &str) -> AuthEntry {
        AuthEntry { username: username.to_string(), password: password.to_string(), ..Default::default() }
    }

    /// True when the entry carries nothing usable (Docker writes `{}` entries next to a
    /// credential store).
    pub fn is_empty(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.identity_token.is_none()
            && self.registry_token.is_none()
    }
}

impl fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("AuthEntry")
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("identity_token", &self.identity_token.as_deref().map(redact))
            .field("registry_token", &self.registry_token.as_deref().map(redact))
            .field("server_address", &self.server_address)
            .finish()
    }
}

/// Proxy settings from `proxies` in config.json. Docker injects these into containers and builds
/// (as `HTTP_PROXY` etc.); they are not used for berth's own registry traffic, which follows the
/// environment variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: Option<String>,
    pub ftp_proxy: Option<String>,
    pub all_proxy: Option<String>,
}

impl ProxyConfig {
    /// The variables Docker sets from this config, upper- and lower-case, in a stable order.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, v) in [
            ("HTTP_PROXY", &self.http_proxy),
            ("HTTPS_PROXY", &self.https_proxy),
            ("NO_PROXY", &self.no_proxy),
            ("FTP_PROXY", &self.ftp_proxy),
            ("ALL_PROXY", &self.all_proxy),
        ] {
            if let Some(v) = v {
                out.push((name.to_string(), v.clone()));
                out.push((name.to_lowercase(), v.clone()));
            }
        }
        out
    }
}

/// The config.json key under which Docker stores credentials for `host`
/// (`https://index.docker.io/v1/` for Docker Hub, the bare `host[:port]` otherwise).
pub fn auth_key_for_host(host: &str) -> String {
    if DOCKER_HUB_HOSTS.contains(&host) { DOCKER_HUB_AUTH_KEY.to_string() } else { host.to_string() }
}

/// The host named by a config.json key: scheme and path are dropped (`https://h/v2/` → `h`), as
/// docker/cli's `ConvertToHostname` does, and Docker Hub's aliases become `docker.io`.
pub fn host_of_auth_key(key: &str) -> String {
    let stripped = key.split_once("://").map_or(key, |(_, rest)| rest);
    let host = stripped.split('/').next().unwrap_or(stripped);
    if DOCKER_HUB_HOSTS.contains(&host) { "docker.io".to_string() } else { host.to_string() }
}

/// Where `config.json` lives: `flag` (`--config`), else `$DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir(flag: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(env::DOCKER_CONFIG).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    env::home().map(|h| h.join(".docker")).ok_or(ConfigError::NoHome)
}

/// A parsed `config.json` (or `auth.json`), kept as JSON so unknown keys survive a rewrite.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    doc: Map<String, Value>,
    exists: bool,
}

impl ConfigFile {
    /// Loads `dir/config.json`. A missing file is an empty config (Docker behaves the same).
    pub fn load_dir(dir: &Path) -> Result<ConfigFile, ConfigError> {
        ConfigFile::load(&dir.join("config.json"))
    }

    /// Loads one file in config.json layout. A missing file is an empty document.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let doc = parse_object(&bytes, path)?;
                Ok(ConfigFile { path: path.to_path_buf(), doc, exists: true })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(ConfigFile { path: path.to_path_buf(), doc: Map::new(), exists: false })
            }
            Err(source) => Err(ConfigError::Read { path: path.to_path_buf(), source }),
        }
    }

    /// Parses an inline document (for `DOCKER_AUTH_CONFIG`); `origin` names it in errors.
    pub fn from_json(json: &str, origin: &str) -> Result<ConfigFile, ConfigError> {
        let path = PathBuf::from(origin);
        let doc = parse_object(json.as_bytes(), &path)?;
        Ok(ConfigFile { path, doc, exists: true })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file existed when it was loaded.
    pub fn exists(&self) -> bool {
        self.exists
    }

    /// The raw document (read-only).
    pub fn document(&self) -> &Map<String, Value> {
        &self.doc
    }

    /// `credsStore`: the default credential helper name, if any.
    pub fn creds_store(&self) -> Option<&str> {
        self.doc.get("credsStore").and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    /// `credHelpers[key]` for the registry `host` (matched like `auths` keys).
    pub fn cred_helper(&self, host: &str) -> Option<&str> {
        let helpers = self.doc.get("credHelpers")?.as_object()?;
        let key = auth_key_for_host(host);
        if let Some(h) = helpers.get(&key).and_then(Value::as_str) {
            return Some(h).filter(|s| !s.is_empty());
        }
        let want = host_of_auth_key(&key);
        helpers
            .iter()
            .find(|(k, _)| host_of_auth_key(k) == want)
            .and_then(|(_, v)| v.as_str())
            .filter(|s| !s.is_empty())
    }

    /// A `*Format` default such as `imagesFormat` or `psFormat`.
    pub fn format(&self, key: &str) -> Option<&str> {
        self.doc.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    /// `proxies.default` (or another daemon host key).
    pub fn proxies(&self, daemon: &str) -> Option<ProxyConfig> {
        let p = self.doc.get("proxies")?.as_object()?.get(daemon)?.as_object()?;
        let s = |k: &str| p.get(k).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_string);
        Some(ProxyConfig {
            http_proxy: s("httpProxy"),
            https_proxy: s("httpsProxy"),
            no_proxy: s("noProxy"),
            ftp_proxy: s("ftpProxy"),
            all_proxy: s("allProxy"),
        })
    }

    /// All `auths` keys, in file order.
    pub fn auth_keys(&self) -> Vec<String> {
        self.doc.get("auths").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default()
    }

    /// The `auths` entry for registry `host`: the exact Docker key first, then any key naming the
    /// same host (`https://host`, `http://host`, `host/v2/`, …).
    pub fn auth_for_host(&self, host: &str) -> Result<Option<AuthEntry>, ConfigError> {
        let Some(auths) = self.doc.get("auths").and_then(Value::as_object) else { return Ok(None) };
        let key = auth_key_for_host(host);
        if let Some(v) = auths.get(&key) {
            return self.decode(&key, v).map(Some);
        }
        let want = host_of_auth_key(&key);
        for (k, v) in auths {
            if host_of_auth_key(k) == want {
                return self.decode(k, v).map(Some);
            }
        }
        Ok(None)
    }

    /// The `auths` entry for a repository in containers' `auth.json` style: keys may name a
    /// namespace (`quay.io/org/repo`, `quay.io/org`), matched most specific first, then the host.
    pub fn auth_for_repository(&self, host: &str, repository_path: &str) -> Result<Option<AuthEntry>, ConfigError> {
        if let Some(auths) = self.doc.get("auths").and_then(Value::as_object) {
            let mut path = repository_path.trim_matches('/').to_string();
            while !path.is_empty() {
                let key = format!("{host}/{path}");
                if let Some(v) = auths.get(&key) {
                    return self.decode(&key, v).map(Some);
                }
                match path.rfind('/') {
                    Some(i) => path.truncate(i),
                    None => path.clear(),
                }
            }
        }
        // Host-level fallback: unlike Docker's matching, a key naming another namespace on the
        // same host (`quay.io/other`) must not match here.
        let Some(auths) = self.doc.get("auths").and_then(Value::as_object) else { return Ok(None) };
        let want = host_of_auth_key(&auth_key_for_host(host));
        for (k, v) in auths {
            let stripped = k.split_once("://").map_or(k.as_str(), |(_, r)| r);
            let path = stripped.split_once('/').map_or("", |(_, p)| p).trim_matches('/');
            let host_level = path.is_empty() || path == "v1" || path == "v2";
            if host_level && host_of_auth_key(k) == want {
                return self.decode(k, v).map(Some);
            }
        }
        Ok(None)
    }

    fn decode(&self, key: &str, v: &Value) -> Result<AuthEntry, ConfigError> {
        let origin = self.path.display().to_string();
        let bad = |reason: &str| ConfigError::BadAuth {
            origin: origin.clone(),
            key: key.to_string(),
            reason: reason.to_string(),
        };
        let obj = v.as_object().ok_or_else(|| bad("not an object"))?;
        let s = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let mut e = AuthEntry {
            username: s("username"),
            password: s("password"),
            identity_token: Some(s("identitytoken")).filter(|t| !t.is_empty()),
            registry_token: Some(s("registrytoken")).filter(|t| !t.is_empty()),
            server_address: key.to_string(),
        };
        let auth = s("auth");
        if !auth.is_empty() {
            let raw = B64.decode(auth.trim()).map_err(|_| bad("\"auth\" is not valid base64"))?;
            let text = String::from_utf8(raw).map_err(|_| bad("\"auth\" is not UTF-8"))?;
            let (u, p) = text.split_once(':').ok_or_else(|| bad("\"auth\" is not user:password"))?;
            e.username = u.to_string();
            e.password = p.trim_end_matches('\n').to_string();
        }
        Ok(e)
    }

    /// Stores credentials under `key` the way `docker login` does with no credential store:
    /// `auth` = base64(user:password) and, for an identity token, `identitytoken` with the password
    /// left out. The entry is replaced; everything else in the file is preserved.
    pub fn set_auth(&mut self, key: &str, entry: &AuthEntry) {
        let mut obj = Map::new();
        let password = if entry.identity_token.is_some() { "" } else { entry.password.as_str() };
        if !entry.username.is_empty() || !password.is_empty() {
            obj.insert("auth".into(), Value::String(B64.encode(format!("{}:{}", entry.username, password))));
        }
        if let Some(t) = &entry.identity_token {
            obj.insert("identitytoken".into(), Value::String(t.clone()));
        }
        if let Some(t) = &entry.registry_token {
            obj.insert("registrytoken".into(), Value::String(t.clone()));
        }
        self.with_auths(|a| {
            a.insert(key.to_string(), Value::Object(obj));
        });
    }

    /// Records an empty entry for `key`, as Docker does when the secret went to a credential
    /// helper (so `auths` still lists the registry).
    pub fn set_empty_auth(&mut self, key: &str) {
        self.with_auths(|a| {
            a.insert(key.to_string(), Value::Object(Map::new()));
        });
    }

    /// Removes every `auths` entry naming the same host as `key`. Returns whether one existed.
    pub fn remove_auth(&mut self, key: &str) -> bool {
        let want = host_of_auth_key(key);
        let Some(auths) = self.doc.get_mut("auths").and_then(Value::as_object_mut) else { return false };
        let before = auths.len();
        auths.retain(|k, _| k != key && host_of_auth_key(k) != want);
        before != auths.len()
    }

    /// Runs `f` on the `auths` object, creating it (or replacing a non-object) in place so the
    /// key keeps its position in the document.
    fn with_auths(&mut self, f: impl FnOnce(&mut Map<String, Value>)) {
        if let Some(Value::Object(m)) = self.doc.get_mut("auths") {
            f(m);
        } else {
            let mut m = Map::new();
            f(&mut m);
            self.doc.insert("auths".into(), Value::Object(m));
        }
    }

    /// Writes the document back atomically with mode 0600 (Docker's `json.MarshalIndent` with a
    /// tab indent, so diffs against Docker-written files stay small). A symlinked config.json is
    /// written through to its target, as Docker does.
    pub fn save(&mut self) -> Result<(), ConfigError> {
        let target = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let werr = |source| ConfigError::Write { path: target.clone(), source };
        let dir = target.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&dir).map_err(werr)?;
        let mut body = Vec::new();
        {
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
            let mut ser = serde_json::Serializer::with_formatter(&mut body, fmt);
            serde::Serialize::serialize(&self.doc, &mut ser)
                .map_err(|e| werr(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        }
        body.push(b'\n');
        let mut tmp = tempfile::Builder::new().prefix(".config.json.").tempfile_in(&dir).map_err(werr)?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(werr)?;
        }
        tmp.write_all(&body).map_err(werr)?;
        tmp.as_file().sync_all().map_err(werr)?;
        tmp.persist(&target).map_err(|e| werr(e.error))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            d.sync_all().map_err(werr)?;
        }
        self.exists = true;
        Ok(())
    }
}

fn parse_object(bytes: &[u8], path: &Path) -> Result<Map<String, Value>, ConfigError> {
    // An empty file is treated as `{}`, as Docker does.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ConfigError::NotObject { path: path.to_path_buf() }),
        Err(source) => Err(ConfigError::Json { path: path.to_path_buf(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_matching() {
        assert_eq!(auth_key_for_host("registry-1.docker.io"), DOCKER_HUB_AUTH_KEY);
        assert_eq!(auth_key_for_host("docker.io"), DOCKER_HUB_AUTH_KEY);
        assert_eq!(auth_key_for_host("localhost:5000"), "localhost:5000");
        for k in ["h:5000", "https://h:5000", "http://h:5000", "h:5000/v2/", "https://h:5000/v1/"] {
            assert_eq!(host_of_auth_key(k), "h:5000", "{k}");
        }
        assert_eq!(host_of_auth_key("https://index.docker.io/v1/"), "docker.io");
        let cfg = ConfigFile::from_json(
            r#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},
                "http://other.example:5000/v2/":{"username":"u2","password":"p2"},
                "quay.io/org":{"auth":"b3JnOnNlY3JldA=="},
                "quay.io":{"auth":"aG9zdDpzZWNyZXQ="},
                "tok.example":{"auth":"dTo=","identitytoken":"refresh-1"}
            }}"#,
            "test",
        )
        .unwrap();
        let hub = cfg.auth_for_host("registry-1.docker.io").unwrap().unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("user", "pass"));
        let o = cfg.auth_for_host("other.example:5000").unwrap().unwrap();
        assert_eq!((o.username.as_str(), o.password.as_str()), ("u2", "p2"));
        assert!(cfg.auth_for_host("other.example").unwrap().is_none());
        let q = cfg.auth_for_repository("quay.io", "org/app").unwrap().unwrap();
        assert_eq!(q.username, "org");
        let q = cfg.auth_for_repository("quay.io", "else/app").unwrap().unwrap();
        assert_eq!(q.username, "host");
        let t = cfg.auth_for_host("tok.example").unwrap().unwrap();
        assert_eq!(t.identity_token.as_deref(), Some("refresh-1"));
        assert!(!format!("{t:?}").contains("refresh-1"));
    }

    #[test]
    fn bad_auth_is_an_error() {
        let cfg = ConfigFile::from_json(r#"{"auths":{"h":{"auth":"!!!"}}}"#, "cfg").unwrap();
        let e = cfg.auth_for_host("h").unwrap_err().to_string();
        assert!(e.contains("not valid base64"), "{e}");
        assert!(ConfigFile::from_json("[]", "x").is_err());
    }

    #[test]
    fn save_preserves_unknown_keys_and_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"psFormat":"table {{.ID}}","auths":{"old":{"auth":"eDp5"}},"plugins":{"x":{"a":"b"}},"zzz":[1,2]}"#,
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut cfg = ConfigFile::load(&p).unwrap();
        assert_eq!(cfg.format("psFormat"), Some("table {{.ID}}"));
        cfg.set_auth("new.example", &AuthEntry::basic("me", "pw"));
        let mut tok = AuthEntry::basic("me", "ignored");
        tok.identity_token = Some("rt".into());
        cfg.set_auth("tok.example", &tok);
        cfg.save().unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let keys: Vec<_> = back.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["psFormat", "auths", "plugins", "zzz"]);
        assert_eq!(back["plugins"]["x"]["a"], "b");
        assert_eq!(back["auths"]["new.example"]["auth"], B64.encode("me:pw"));
        assert_eq!(back["auths"]["tok.example"]["auth"], B64.encode("me:"));
        assert_eq!(back["auths"]["tok.example"]["identitytoken"], "rt");
        // Only our file in the directory: the temp file was renamed, not left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut cfg = ConfigFile::load(&p).unwrap();
        assert!(cfg.remove_auth("https://new.example/v2/"));
        assert!(!cfg.remove_auth("absent"));
        cfg.save().unwrap();
        let cfg = ConfigFile::load(&p).unwrap();
        assert_eq!(cfg.auth_keys(), ["old", "tok.example"]);
    }

    #[test]
    fn proxies_and_missing_file() {
        let cfg = ConfigFile::from_json(
            r#"{"proxies":{"default":{"httpProxy":"http://p:3128","noProxy":"localhost"}}}"#,
            "x",
        )
        .unwrap();
        let p = cfg.proxies("default").unwrap();
        assert_eq!(p.http_proxy.as_deref(), Some("http://p:3128"));
        let vars = p.env_vars();
        assert!(vars.contains(&("no_proxy".to_string(), "localhost".to_string())));
        let dir = tempfile::tempdir().unwrap();
        let cfg = ConfigFile::load_dir(dir.path()).unwrap();
        assert!(!cfg.exists());
        assert!(cfg.auth_for_host("x").unwrap().is_none());
    }
}
