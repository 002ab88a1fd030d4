//! The builder: runs Dockerfiles daemonless, as BuildKit does.
//!
//! Pipeline: the frontend (berth-dockerfile) parses the Dockerfile and plans the stages the
//! target needs; external images are resolved through a [`Provider`] (the binary pulls them
//! into the store); the [`solve`] module runs the stage graph — independent stages in
//! parallel — step by step against the content-addressed [`cache`]; [`export`] writes the
//! result as an image in the store.
//!
//! Contracts:
//! - `RUN` executes in a real container through berth-runtime's `run_in_helper`, so the
//!   process calling [`build`] must route berth-runtime's hidden entry points (the `berth`
//!   binary does) and may be multi-threaded.
//! - Build layers are stored uncompressed (tar blob = diffID) next to their unpacked
//!   snapshot; compression happens when an image leaves the machine.
//! - Secrets never enter a layer, the history, a cache key or a log.

pub mod attest;
pub mod cache;
pub mod context;
mod error;
pub mod export;
mod fsops;
mod layer;
pub mod remote;
mod solve;
pub mod ssh;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use berth_dockerfile::{PlanOptions, parse_dockerfile, plan::plan_parsed};
use berth_output::progress::BuildProgress;
use berth_runtime::RuntimeOptions;
use berth_store::{LocalImage, Store};
use berth_types::Platform;

pub use cache::{CACHE_CONFIG_KEY, Cache, Record, State, cache_image, records_of};
pub use context::Context;
pub use error::{BuildError, Result};
pub use export::{apply_changes, export_image};
pub use solve::cancel;

/// Where a secret's value comes from (`--secret id=…,src=…|env=…`).
#[derive(Debug, Clone)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// `--network` for RUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// A private network with outbound access (the default `bridge` network).
    Default,
    Host,
    None,
}

/// `--build-context name=…`.
#[derive(Debug, Clone)]
pub enum NamedContext {
    Dir(PathBuf),
    Image(String),
}

/// Everything one build needs. The Dockerfile is given as bytes; the context already loaded
/// (with `.dockerignore` applied).
#[derive(Clone)]
pub struct BuildOptions {
    pub dockerfile: Vec<u8>,
    /// Name used in messages (`Dockerfile`, `Dockerfile.prod`).
    pub dockerfile_name: String,
    pub context: Arc<Context>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub no_cache_filter: Vec<String>,
    pub pull: bool,
    pub secrets: BTreeMap<String, SecretSource>,
    pub network: Network,
    /// The target platform (TARGETPLATFORM): the image built is for it.
    pub platform: Platform,
    /// The platform the build runs on (BUILDPLATFORM; the host's). `FROM --platform=$BUILDPLATFORM`
    /// stages run natively; others run under emulation when `platform` is foreign.
    pub build_platform: Platform,
    /// Set for the builds of a multi-platform build: step names carry their stage's platform
    /// (`[linux/arm64 stage-1 2/3] RUN …`, as BuildKit prints them) and vertex ids are kept
    /// apart between the platforms sharing one progress display.
    pub show_platform: bool,
    pub named_contexts: BTreeMap<String, NamedContext>,
    pub source_date_epoch: Option<i64>,
    pub runtime: RuntimeOptions,
    pub add_hosts: Vec<(String, String)>,
    /// `--cache-from type=local,src=DIR`.
    pub cache_from: Vec<PathBuf>,
    /// `--cache-to type=local,dest=DIR[,mode=min|max]` (dir, max).
    pub cache_to: Option<(PathBuf, bool)>,
    /// Records of registry cache images (`--cache-from type=registry,ref=…`), already pulled.
    pub cache_from_records: Vec<std::collections::BTreeMap<String, Record>>,
    /// `--ssh`: agent socket per id (`default`, …), forwarded to `RUN --mount=type=ssh`.
    pub ssh: BTreeMap<String, PathBuf>,
}

/// An image the provider made available in the store.
pub struct ProvidedImage {
    /// The canonical reference (`docker.io/library/python:3.9-slim`).
    pub name: String,
    pub image: LocalImage,
}

/// What the builder needs from the outside world. Implementations may block.
pub trait Provider: Send + Sync {
    /// Makes `reference` (as written in the Dockerfile, after ARG expansion) available in the
    /// store, pulling it when it is missing or when `pull` is set.
    fn image(&self, reference: &str, platform: &Platform, pull: bool) -> std::result::Result<ProvidedImage, String>;
    /// Downloads `url` into `dest` (an empty temp file), streaming, and fails once more than
    /// `limit` bytes arrive (ADD of remote files).
    fn fetch(&self, url: &str, dest: &mut std::fs::File, limit: u64) -> std::result::Result<Fetched, String>;
}

/// What [`Provider::fetch`] learned about a download.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// The response's `Last-Modified` as seconds since the epoch: BuildKit gives the file this
    /// modification time.
    pub last_modified: Option<i64>,
}

/// The result of a build, before export.
pub struct BuildOutput {
    pub state: State,
    /// Cache keys of every step this build computed (for registry cache export).
    pub used_keys: Vec<String>,
    /// Name of the target stage (for messages).
    pub target: Option<String>,
}

/// Runs a build. Progress is reported on `progress`; the caller finishes it.
pub fn build(
    store: &Store,
    opts: &BuildOptions,
    provider: &dyn Provider,
    progress: &BuildProgress,
) -> Result<BuildOutput> {
    let mut cache = Cache::open(store)?;
    for d in &opts.cache_from {
        cache = cache.with_import(d);
    }
    for r in &opts.cache_from_records {
        cache = cache.with_remote(r.clone());
    }
    let v_id = if opts.show_platform { format!("load-def-{}", opts.platform) } else { "load-def".to_string() };
    let v = v_id.as_str();
    progress.start(v, &format!("[internal] load build definition from {}", opts.dockerfile_name));
    progress.status(v, "transferring dockerfile", opts.dockerfile.len() as u64, opts.dockerfile.len() as u64, true);
    let parsed = match parse_dockerfile(&opts.dockerfile) {
        Ok(p) => p,
        Err(e) => {
            progress.error(v, &e.to_string());
            return Err(e.into());
        }
    };
    progress.done(v);

    let mut plan_opts = PlanOptions {
        build_args: opts.build_args.clone(),
        target: opts.target.clone(),
        target_platform: Some(df_platform(&opts.platform)),
        build_platform: Some(df_platform(&opts.build_platform)),
        ..Default::default()
    };
    let first = plan_parsed(&parsed, &plan_opts)?;
    // Each base image is resolved for its stage's platform (`FROM --platform=…`, else the
    // target); images read with COPY --from / mounts are the target's.
    let mut wanted: Vec<(String, Platform)> = Vec::new();
    for st in &first.stages {
        if let berth_dockerfile::Base::Image(r) = &st.base {
            let p = stage_platform(st, opts)?;
            if !wanted.iter().any(|(wr, wp)| wr == r && *wp == p) {
                wanted.push((r.clone(), p));
            }
        }
    }
    // `COPY --from=IMAGE` and `--mount=from=IMAGE` read the target platform's image.
    for st in &first.stages {
        for step in &st.steps {
            let sources = step.copy_from.iter().chain(step.mount_from.iter().flatten());
            for src in sources {
                if let berth_dockerfile::Source::Image(r) = src
                    && !wanted.iter().any(|(wr, wp)| wr == r && *wp == opts.platform)
                {
                    wanted.push((r.clone(), opts.platform.clone()));
                }
            }
        }
    }
    // Anything else the plan names (none today) is resolved for the target.
    for r in first.external_images() {
        if !wanted.iter().any(|(wr, _)| *wr == r) {
            wanted.push((r, opts.platform.clone()));
        }
    }
    check_emulation(&first, opts)?;
    let mut images: HashMap<String, State> = HashMap::new();
    let mut named_dirs: BTreeMap<String, Arc<Context>> = BTreeMap::new();
    for (r, platform) in wanted {
        let key = image_key(&r, &platform, opts);
        let (lookup, is_named) = match opts.named_contexts.get(&r) {
            Some(NamedContext::Dir(d)) => {
                let ctx = Context::load(d, vec![], Some(&cache.stat_dir()))?;
                named_dirs.insert(r.clone(), Arc::new(ctx));
                continue;
            }
            Some(NamedContext::Image(i)) => (i.clone(), true),
            None => (r.clone(), false),
        };
        let vname = format!("[internal] load metadata for {}", display_name(&lookup));
        let vid = if opts.show_platform { format!("meta-{key}-{platform}") } else { format!("meta-{key}") };
        progress.start(&vid, &vname);
        match provider.image(&lookup, &platform, opts.pull) {
            Ok(p) => {
                progress.done(&vid);
                let state = solve::image_state(store, &p.image)?;
                let cfg = p.image.config.config.clone().unwrap_or_default();
                let env: Vec<(String, String)> = cfg
                    .env
                    .clone()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                    .collect();
                plan_opts.base_image_env.insert(r.clone(), env);
                if let Some(ob) = cfg.on_build.clone().filter(|v| !v.is_empty()) {
                    plan_opts.base_image_onbuild.insert(r.clone(), ob);
                }
                let _ = is_named;
                images.insert(key, state);
            }
            Err(e) => {
                progress.error(&vid, &e);
                return Err(BuildError::Other(format!(
                    "failed to resolve source metadata for {}: {e}",
                    display_name(&lookup)
                )));
            }
        }
    }
    let plan = plan_parsed(&parsed, &plan_opts)?;

    if let Some(root) = opts.context.root() {
        let vid_s = if opts.show_platform { format!("context-{}", opts.platform) } else { "context".to_string() };
        let vid = vid_s.as_str();
        progress.start(vid, "[internal] load build context");
        let size = opts.context.size();
        progress.status(vid, "transferring context", size, size, true);
        progress.done(vid);
        let _ = root;
    }

    let solver = solve::Solver {
        store: store.clone(),
        cache,
        opts,
        plan: &plan,
        provider,
        progress: progress.clone(),
        images,
        named_dirs,
        vertex: std::sync::atomic::AtomicUsize::new(0),
        used_keys: std::sync::Mutex::new(Vec::new()),
    };
    let state = solver.run();
    opts.context.save();
    let state = state?;
    if let Some((dir, max)) = &opts.cache_to {
        let vid = "cache-export";
        progress.start(vid, "exporting cache to client directory");
        let used = solver.used_keys.lock().map(|k| k.clone()).unwrap_or_default();
        // mode=min: the steps whose layers are all in the result (the target's own chain);
        // mode=max: every step of every stage.
        let keys: Vec<String> = if *max {
            used
        } else {
            let final_layers: std::collections::HashSet<_> = state.layers.iter().map(|l| l.diff_id.clone()).collect();
            used.into_iter()
                .filter(|k| {
                    solver
                        .cache
                        .peek(k)
                        .is_some_and(|r| r.state.layers.iter().all(|l| final_layers.contains(&l.diff_id)))
                })
                .collect()
        };
        let n = solver.cache.export(store, dir, &keys)?;
        progress.log(
            vid,
            berth_output::progress::LogStream::Stdout,
            format!("{n} cache records written to {}\n", dir.display()).as_bytes(),
        );
        progress.done(vid);
    }
    let target = plan.stage(plan.target).and_then(|s| s.name.clone());
    let used_keys = solver.used_keys.lock().map(|k| k.clone()).unwrap_or_default();
    Ok(BuildOutput { state, used_keys, target })
}

/// The key of a resolved image: the reference for the target platform, the reference and the
/// platform otherwise (`FROM --platform=$BUILDPLATFORM img` and `FROM img` are two images).
pub(crate) fn image_key(r: &str, p: &Platform, opts: &BuildOptions) -> String {
    if p.matches(&opts.platform) && opts.platform.matches(p) { r.to_string() } else { format!("{r} ({p})") }
}

/// The platform a stage runs on: its `FROM --platform=` (expanded), else the target's.
pub(crate) fn stage_platform(st: &berth_dockerfile::PlannedStage, opts: &BuildOptions) -> Result<Platform> {
    match st.platform.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Platform::parse(p).map_err(|e| BuildError::Other(format!("FROM --platform={p}: {e}"))),
        None => Ok(opts.platform.clone()),
    }
}

/// Fails before anything runs when a stage with RUN steps is for a platform the host cannot run
/// (no emulator registered), naming the platform and how to install one.
fn check_emulation(plan: &berth_dockerfile::Plan, opts: &BuildOptions) -> Result<()> {
    for st in &plan.stages {
        let has_run = st.steps.iter().any(|s| matches!(s.command.instruction, berth_dockerfile::Instruction::Run(_)));
        if !has_run {
            continue;
        }
        // A stage built on another stage runs on that stage's platform.
        let mut cur = st;
        let mut hops = 0;
        while let berth_dockerfile::Base::Stage(i) = &cur.base {
            match plan.stage(*i) {
                Some(s) if hops < plan.stages.len() && s.platform.is_none() => {
                    cur = s;
                    hops += 1;
                }
                Some(s) => {
                    cur = s;
                    break;
                }
                None => break,
            }
        }
        let p = if st.platform.is_some() { stage_platform(st, opts)? } else { stage_platform(cur, opts)? };
        if let Err(e) = berth_runtime::emulation::check_runnable(&p) {
            return Err(BuildError::Other(format!("{e}; {}", e.hint())));
        }
    }
    Ok(())
}

fn df_platform(p: &Platform) -> berth_dockerfile::Platform {
    p.clone()
}

fn display_name(r: &str) -> String {
    berth_types::Reference::parse_normalized(r)
        .map(|x| x.with_default_tag().to_string())
        .unwrap_or_else(|_| r.to_string())
}
