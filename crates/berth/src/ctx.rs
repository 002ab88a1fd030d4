//! Per-invocation context: resolved paths, the store, and the async runtime.

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::Context as _;
use berth_store::Store;

use crate::cli::Global;

pub struct Ctx {
    pub global: Global,
    pub root: PathBuf,
    pub config_dir: PathBuf,
    store: OnceLock<Store>,
    policy: OnceLock<Option<berth_sign::Policy>>,
}

impl Ctx {
    pub fn new(global: Global) -> Ctx {
        let root = global.root.clone().unwrap_or_else(default_root);
        let config_dir = global.config.clone().unwrap_or_else(default_config_dir);
        Ctx { global, root, config_dir, store: OnceLock::new(), policy: OnceLock::new() }
    }

    /// Opens the store on first use.
    pub fn store(&self) -> anyhow::Result<&Store> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        // First the runtime state's leftovers (their overlay mounts use the store's tmp/), then
        // the store's own (in `Store::open`).
        let state_root = berth_runtime::RuntimeOptions::default().state_root;
        for id in berth_runtime::private::clean_stale_state(&state_root) {
            tracing::debug!("removed the runtime state of {id}, left by a killed berth process");
        }
        let s = Store::open(&self.root).with_context(|| format!("opening the store at {}", self.root.display()))?;
        Ok(self.store.get_or_init(|| s))
    }

    /// The signature policy (containers-policy.json) pulls obey: `--signature-policy`, else the
    /// user's, else the system's; `None` when there is none. Read on first use.
    pub fn policy(&self) -> anyhow::Result<Option<&berth_sign::Policy>> {
        if let Some(p) = self.policy.get() {
            return Ok(p.as_ref());
        }
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let p = berth_sign::Policy::load(self.global.signature_policy.as_deref(), home.as_deref())?;
        Ok(self.policy.get_or_init(|| p).as_ref())
    }

    /// Runs a future on a fresh multi-threaded runtime (berth is short-lived; one per command).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> anyhow::Result<F::Output> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .worker_threads(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(2, 8))
            .build()
            .context("starting the async runtime")?;
        Ok(rt.block_on(f))
    }
}

fn default_root() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/berth");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("berth");
    }
    home().join(".local/share/berth")
}

fn default_config_dir() -> PathBuf {
    home().join(".docker")
}

pub fn home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"))
}
