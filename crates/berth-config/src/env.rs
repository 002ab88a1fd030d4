//! Every environment variable berth-config reads. One list, so the docs can be checked against it.

/// Docker's config directory (`config.json` lives inside). `--config` wins over it.
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// Inline JSON `{"auths": {...}}`, consulted before any file (docker/cli does the same).
pub const DOCKER_AUTH_CONFIG: &str = "DOCKER_AUTH_CONFIG";
/// containers' auth file, read when config.json has no entry for a host.
pub const REGISTRY_AUTH_FILE: &str = "REGISTRY_AUTH_FILE";
/// Base of containers' per-session auth file (`$XDG_RUNTIME_DIR/containers/auth.json`).
pub const XDG_RUNTIME_DIR: &str = "XDG_RUNTIME_DIR";
/// Base of user configuration (`~/.config` when unset).
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
pub const HOME: &str = "HOME";
/// Colon-separated list of certs.d roots replacing the defaults (tests, unusual layouts).
pub const BERTH_CERTS_D: &str = "BERTH_CERTS_D";
/// Colon-separated list of registry settings files replacing the defaults (see registries.md).
pub const BERTH_REGISTRIES_CONFIG: &str = "BERTH_REGISTRIES_CONFIG";
/// Replaces `/etc/containers/registries.conf` (same variable as containers/image).
pub const CONTAINERS_REGISTRIES_CONF: &str = "CONTAINERS_REGISTRIES_CONF";

/// The user's home directory, or `None` when `HOME` is unset or empty.
pub fn home() -> Option<std::path::PathBuf> {
    std::env::var_os(HOME).filter(|h| !h.is_empty()).map(std::path::PathBuf::from)
}

/// `$XDG_CONFIG_HOME`, falling back to `~/.config`.
pub fn xdg_config_home() -> Option<std::path::PathBuf> {
    std::env::var_os(XDG_CONFIG_HOME)
        .filter(|h| !h.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| home().map(|h| h.join(".config")))
}
