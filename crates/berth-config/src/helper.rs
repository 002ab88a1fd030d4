//! The Docker credential-helper protocol (docker/docker-credential-helpers).
//!
//! A helper is an executable `docker-credential-<name>` on `PATH`, run once per operation:
//!
//! | verb    | stdin                                        | stdout                                   |
//! |---------|----------------------------------------------|------------------------------------------|
//! | `get`   | server URL                                   | `{"ServerURL","Username","Secret"}`      |
//! | `store` | `{"ServerURL","Username","Secret"}`          | nothing                                  |
//! | `erase` | server URL                                   | nothing                                  |
//! | `list`  | nothing                                      | `{"<server URL>":"<username>", …}`       |
//!
//! A failing helper exits non-zero with its message on stdout; "credentials not found in native
//! keychain" means "no entry", not an error. A username of `<token>` marks the secret as an
//! identity token (OAuth2 refresh token).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::dockercfg::AuthEntry;

/// The message helpers print when they have no entry.
pub const NOT_FOUND_MESSAGE: &str = "credentials not found in native keychain";
/// The username that marks `Secret` as an identity token.
pub const TOKEN_USERNAME: &str = "<token>";

#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error(
        "credential helper docker-credential-{name} is not installed (not found in PATH); \
         hint: install it, or remove \"{setting}\" from {config}"
    )]
    NotInstalled { name: String, setting: String, config: String },
    #[error("credential helper docker-credential-{name} {verb} failed: {message}")]
    Failed { name: String, verb: &'static str, message: String },
    #[error("credential helper docker-credential-{name} {verb}: {source}")]
    Io {
        name: String,
        verb: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("credential helper docker-credential-{name} {verb} printed invalid JSON: {source}")]
    BadOutput {
        name: String,
        verb: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl HelperError {
    pub fn is_not_installed(&self) -> bool {
        matches!(self, HelperError::NotInstalled { .. })
    }
}

#[derive(Serialize, Deserialize)]
struct Creds {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// One credential helper, `docker-credential-<name>`.
#[derive(Debug, Clone)]
pub struct CredentialHelper {
    name: String,
    /// Where the helper was configured (`credsStore` or `credHelpers`) and in which file, for the
    /// "not installed" hint.
    setting: String,
    config: String,
    /// `PATH` to search instead of the process's own (tests; never needed otherwise).
    search_path: Option<std::ffi::OsString>,
}

impl CredentialHelper {
    pub fn new(name: &str, setting: &str, config: &str) -> CredentialHelper {
        CredentialHelper {
            name: name.to_string(),
            setting: setting.to_string(),
            config: config.to_string(),
            search_path: None,
        }
    }

    /// Searches `path` (a `PATH`-style list) for the helper instead of the process's `PATH`.
    pub fn with_search_path(mut self, path: Option<std::ffi::OsString>) -> CredentialHelper {
        self.search_path = path;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The program name run for this helper.
    pub fn program(&self) -> String {
        format!("docker-credential-{}", self.name)
    }

    /// `get`: `Ok(None)` when the helper has no entry for `server_url`.
    pub fn get(&self, server_url: &str) -> Result<Option<AuthEntry>, HelperError> {
        let out = match self.run("get", server_url.as_bytes()) {
            Ok(out) => out,
            Err(HelperError::Failed { message, .. }) if message.contains(NOT_FOUND_MESSAGE) => return Ok(None),
            Err(e) => return Err(e),
        };
        let c: Creds = serde_json::from_slice(&out).map_err(|source| HelperError::BadOutput {
            name: self.name.clone(),
            verb: "get",
            source,
        })?;
        if c.username.is_empty() && c.secret.is_empty() {
            return Ok(None);
        }
        let mut e = AuthEntry { server_address: server_url.to_string(), ..Default::default() };
        if c.username == TOKEN_USERNAME {
            e.identity_token = Some(c.secret);
        } else {
            e.username = c.username;
            e.password = c.secret;
        }
        Ok(Some(e))
    }

    /// `store`: an identity token is stored with the `<token>` username, as Docker does.
    pub fn store(&self, server_url: &str, entry: &AuthEntry) -> Result<(), HelperError> {
        let c = match &entry.identity_token {
            Some(t) => Creds { server_url: server_url.into(), username: TOKEN_USERNAME.into(), secret: t.clone() },
            None => Creds {
                server_url: server_url.into(),
                username: entry.username.clone(),
                secret: entry.password.clone(),
            },
        };
        let input = serde_json::to_vec(&c).map_err(|source| HelperError::BadOutput {
            name: self.name.clone(),
            verb: "store",
            source,
        })?;
        self.run("store", &input).map(drop)
    }

    /// `erase`: a missing entry is not an error.
    pub fn erase(&self, server_url: &str) -> Result<(), HelperError> {
        match self.run("erase", server_url.as_bytes()) {
            Ok(_) => Ok(()),
            Err(HelperError::Failed { message, .. }) if message.contains(NOT_FOUND_MESSAGE) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `list`: server URL → username.
    pub fn list(&self) -> Result<BTreeMap<String, String>, HelperError> {
        let out = self.run("list", b"")?;
        serde_json::from_slice(&out).map_err(|source| HelperError::BadOutput {
            name: self.name.clone(),
            verb: "list",
            source,
        })
    }

    fn run(&self, verb: &'static str, input: &[u8]) -> Result<Vec<u8>, HelperError> {
        let io = |source| HelperError::Io { name: self.name.clone(), verb, source };
        let mut cmd = Command::new(self.program());
        if let Some(p) = &self.search_path {
            cmd.env("PATH", p);
        }
        let mut child = match cmd.arg(verb).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(HelperError::NotInstalled {
                    name: self.name.clone(),
                    setting: self.setting.clone(),
                    config: self.config.clone(),
                });
            }
            Err(e) => return Err(io(e)),
        };
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading stdin closes the pipe: not our error.
            match stdin.write_all(input) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(io(e)),
                _ => {}
            }
        }
        let out = child.wait_with_output().map_err(io)?;
        if !out.status.success() {
            let mut message = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if message.is_empty() {
                message = String::from_utf8_lossy(&out.stderr).trim().to_string();
            }
            if message.is_empty() {
                message = out.status.to_string();
            }
            return Err(HelperError::Failed { name: self.name.clone(), verb, message });
        }
        Ok(out.stdout)
    }
}
