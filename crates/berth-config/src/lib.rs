//! Docker and containers configuration, read and written the way the Docker CLI does.
//!
//! * [`dockercfg`]: `config.json` under the config directory (`--config` > `DOCKER_CONFIG` >
//!   `~/.docker`), the inline `DOCKER_AUTH_CONFIG` variable and containers' `auth.json`; reading
//!   and writing credentials for `login`/`logout` (atomic, mode 0600, unknown keys preserved).
//! * [`helper`]: the `docker-credential-<name>` protocol (`get`, `store`, `erase`, `list`).
//! * [`credentials`]: the lookup order for one registry host ([`Keychain`]).
//! * [`registries`]: insecure registries and Docker Hub mirrors from berth's `registries.json`,
//!   Docker's `daemon.json` keys and containers' `registries.conf`.
//! * [`certs`]: per-host TLS material from `certs.d` directories.
//! * [`env`]: every environment variable this crate reads, in one list.
//!
//! Nothing here is async and nothing talks to the network. Secrets are never logged: the
//! `Debug` output of [`AuthEntry`] redacts them.

pub mod certs;
pub mod credentials;
pub mod dockercfg;
pub mod env;
pub mod helper;
pub mod registries;

pub use certs::{CertsDirs, HostTls};
pub use credentials::StoredIn;
pub use credentials::{Keychain, LookupWarning};
pub use dockercfg::{AuthEntry, ConfigError, ConfigFile, ProxyConfig, auth_key_for_host, config_dir, host_of_auth_key};
pub use helper::{CredentialHelper, HelperError};
pub use registries::{Mirror, RegistryEntry};
pub use registries::{RegistriesConfig, RegistriesError};

/// Docker Hub's host names that share the `https://index.docker.io/v1/` credentials key.
pub const DOCKER_HUB_HOSTS: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

/// The config.json key Docker uses for Docker Hub.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";
