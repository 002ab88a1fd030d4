//! `berth build`: Docker/buildx flags on top of berth-build.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, anyhow};
use berth_build::{BuildOptions, Context, NamedContext, Network, ProvidedImage, Provider, SecretSource};
use berth_output::progress::{BuildMode, BuildProgress};
use berth_store::Store;
use berth_transport::{ArchiveFormat, ArchiveSink, CopyOptions, Endpoint, Quiet, Sink, Source, StoreSink};
use berth_types::{Platform, Reference};

use crate::cli::BuildArgs;
use crate::cmd::build_io;
use crate::ctx::Ctx;
use crate::errors::exit_with;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Where the Dockerfile and context come from.
struct Inputs {
    dockerfile: Vec<u8>,
    dockerfile_name: String,
    dockerfile_path: Option<PathBuf>,
    context_dir: Option<PathBuf>,
    /// Keeps an extracted tar context alive.
    _tmp: Option<tempfile::TempDir>,
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut v = Vec::new();
    std::io::stdin().read_to_end(&mut v).context("reading stdin")?;
    Ok(v)
}

fn is_tar_or_compressed(b: &[u8]) -> bool {
    b.starts_with(&[0x1f, 0x8b])
        || b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (b.len() > 262 && &b[257..262] == b"ustar")
}

/// BUILDKIT_CONTEXT_KEEP_GIT_DIR from --build-arg.
fn keep_git_dir(a: &BuildArgs) -> bool {
    parse_build_args(&a.build_arg)
        .get("BUILDKIT_CONTEXT_KEEP_GIT_DIR")
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True" | "TRUE"))
}

fn inputs(ctx: &Ctx, a: &BuildArgs, store: &Store) -> Result<Inputs> {
    let ctx_arg = a.context.as_str();
    let mut tmp = None;
    let mut stdin_dockerfile = None;
    let mut remote = false;
    let context_dir = if build_io::is_remote(ctx_arg) {
        remote = true;
        match build_io::resolve_remote(ctx, ctx_arg, &store.root().join("tmp"), keep_git_dir(a))? {
            Some(build_io::Remote::Dir { guard, dir }) => {
                tmp = Some(guard);
                Some(dir)
            }
            Some(build_io::Remote::Dockerfile(d)) => {
                stdin_dockerfile = Some(d);
                None
            }
            None => None,
        }
    } else if ctx_arg == "-" {
        let data = read_stdin()?;
        if is_tar_or_compressed(&data) {
            // A tar context on stdin.
            let dir = tempfile::Builder::new()
                .prefix(&format!("{}berth-context-", berth_store::owner_prefix()))
                .tempdir_in(store.root().join("tmp"))?;
            berth_archive::apply_layer(dir.path(), std::io::Cursor::new(data), &berth_archive::ApplyOptions::default())
                .context("extracting the build context from stdin")?;
            let p = dir.path().to_path_buf();
            tmp = Some(dir);
            Some(p)
        } else {
            stdin_dockerfile = Some(data);
            None
        }
    } else {
        let p = PathBuf::from(ctx_arg);
        if !p.is_dir() {
            return Err(exit_with(1, format!("unable to prepare context: path {ctx_arg:?} not found")));
        }
        Some(std::fs::canonicalize(&p)?)
    };
    let (dockerfile, name, path) = match (&a.file, stdin_dockerfile) {
        (_, Some(d)) => (d, "Dockerfile".to_string(), None),
        (Some(f), None) if f == "-" => (read_stdin()?, "Dockerfile".to_string(), None),
        (Some(f), None) => {
            // -f is relative to the current directory, as docker's CLI resolves it.
            let p = PathBuf::from(f);
            // In a remote context, -f names a file inside it.
            let p = if remote && let Some(d) = &context_dir {
                d.join(f.trim_start_matches('/'))
            } else if p.is_absolute() || p.exists() {
                p
            } else {
                context_dir.clone().unwrap_or_default().join(f)
            };
            let data = std::fs::read(&p)
                .map_err(|e| exit_with(1, format!("failed to read dockerfile {}: {e}", p.display())))?;
            let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "Dockerfile".into());
            (data, name, Some(p))
        }
        (None, None) => {
            let dir = context_dir.clone().unwrap_or_default();
            let p = dir.join("Dockerfile");
            let data = std::fs::read(&p).map_err(|_| {
                exit_with(1, format!("failed to read dockerfile: open {}: no such file or directory", p.display()))
            })?;
            (data, "Dockerfile".to_string(), Some(p))
        }
    };
    Ok(Inputs { dockerfile, dockerfile_name: name, dockerfile_path: path, context_dir, _tmp: tmp })
}

fn parse_build_args(raw: &[String]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for a in raw {
        match a.split_once('=') {
            Some((k, v)) => {
                m.insert(k.to_string(), v.to_string());
            }
            None => {
                // `--build-arg NAME` takes the value from the environment, if set.
                if let Ok(v) = std::env::var(a) {
                    m.insert(a.clone(), v);
                }
            }
        }
    }
    m
}

fn csv_kv(s: &str) -> BTreeMap<String, String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_lowercase(), v.trim().to_string()),
            None => (p.trim().to_lowercase(), String::new()),
        })
        .collect()
}

fn parse_secrets(raw: &[String]) -> Result<BTreeMap<String, SecretSource>> {
    let mut out = BTreeMap::new();
    for s in raw {
        let kv = csv_kv(s);
        let id = kv
            .get("id")
            .cloned()
            .ok_or_else(|| exit_with(1, format!("invalid secret {s:?}: id is required (id=NAME,src=FILE|env=VAR)")))?;
        let src = kv.get("src").or_else(|| kv.get("source")).cloned();
        let env = kv.get("env").cloned();
        let source = match (src, env) {
            (Some(p), _) => {
                let p = PathBuf::from(p);
                if !p.is_file() {
                    return Err(exit_with(1, format!("secret {id}: file {} not found", p.display())));
                }
                SecretSource::File(p)
            }
            (None, Some(e)) => SecretSource::Env(e),
            // Like buildx: an environment variable named like the id, else a file named like it.
            (None, None) if std::env::var_os(&id).is_some() => SecretSource::Env(id.clone()),
            (None, None) => SecretSource::File(PathBuf::from(&id)),
        };
        out.insert(id, source);
    }
    Ok(out)
}

/// `--output` parsing: `type=docker|oci|tar|local|image|registry,dest=…` or a bare path (local);
/// `-` is a tar on stdout. A dest of `-` writes the archive to stdout.
#[derive(Debug)]
enum Output {
    Store,
    DockerArchive(PathBuf),
    OciArchive(PathBuf),
    Tar(PathBuf),
    Local(PathBuf),
    Push,
}

/// The outputs, and the image names they add to `-t` (`type=image,name=a,b`).
fn parse_outputs(a: &BuildArgs) -> Result<(Vec<Output>, Vec<Reference>)> {
    let mut outs = Vec::new();
    let mut names = Vec::new();
    for o in &a.output {
        let kv = if o == "-" {
            BTreeMap::from([("type".to_string(), "tar".to_string()), ("dest".to_string(), "-".to_string())])
        } else if o.contains('=') {
            build_io::output_kv(o)?
        } else {
            BTreeMap::from([("type".to_string(), "local".to_string()), ("dest".to_string(), o.clone())])
        };
        let ty = kv.get("type").map(String::as_str).unwrap_or("local");
        build_io::check_output_keys(o, ty, &kv)?;
        names.extend(build_io::output_names(o, &kv)?);
        let dest = kv.get("dest").map(PathBuf::from);
        let push = ty == "registry"
            || match kv.get("push").map(String::as_str) {
                None | Some("false") => false,
                Some("true") | Some("") => true,
                Some(v) => return Err(exit_with(1, format!("output {o:?}: invalid push value {v:?} (true or false)"))),
            };
        if dest.as_deref() == Some(Path::new("-")) {
            if ty == "local" {
                return Err(exit_with(
                    1,
                    format!("output {o:?}: type=local needs a directory; use type=tar,dest=- for a tar on stdout"),
                ));
            }
            build_io::tar_stdout(ty)?;
        }
        outs.push(match (ty, dest) {
            ("docker", None) | ("image", None) if !push => Output::Store,
            ("image", _) | ("registry", _) => Output::Push,
            ("docker", Some(d)) => Output::DockerArchive(d),
            ("oci", Some(d)) => Output::OciArchive(d),
            ("tar", Some(d)) => Output::Tar(d),
            ("local", Some(d)) => Output::Local(d),
            (t, None) => return Err(exit_with(1, format!("output type {t:?} needs dest=PATH"))),
            (t, _) => {
                return Err(exit_with(
                    1,
                    format!("unsupported output type {t:?} (docker, oci, tar, local, image, registry)"),
                ));
            }
        });
    }
    if a.load {
        outs.push(Output::Store);
    }
    if a.push {
        outs.push(Output::Push);
    }
    if outs.is_empty() {
        outs.push(Output::Store);
    }
    let stdout_outputs = outs
        .iter()
        .filter(
            |o| matches!(o, Output::DockerArchive(p) | Output::OciArchive(p) | Output::Tar(p) if p.as_os_str() == "-"),
        )
        .count();
    if stdout_outputs > 1 || (stdout_outputs == 1 && outs.iter().any(|o| matches!(o, Output::Push))) {
        return Err(exit_with(1, "only one output can write to stdout, and pushing prints to stdout".to_string()));
    }
    Ok((outs, names))
}

/// Pulls base images through the registry client into the store.
struct StoreProvider<'a> {
    ctx: &'a Ctx,
    store: Store,
}

impl Provider for StoreProvider<'_> {
    fn image(&self, reference: &str, platform: &Platform, pull: bool) -> std::result::Result<ProvidedImage, String> {
        let r = Reference::parse_normalized(reference).map_err(|e| format!("{reference}: {e}"))?.with_default_tag();
        // A local image counts when it is for the platform asked for (a single-platform name
        // holds one platform whatever is asked).
        if !pull
            && let Ok(image) = self.store.resolve_image(&r.to_string(), Some(platform))
            && platform.matches(&image.platform())
        {
            return Ok(ProvidedImage { name: r.to_string(), image });
        }
        let client = crate::cmd::registry::client(self.ctx).map_err(|e| e.to_string())?;
        let pinned = crate::cmd::registry::enforce_policy(self.ctx, &client, &r).map_err(|e| format!("{e:#}"))?;
        let src = Source::Registry(Box::new(berth_transport::registry::RegistrySource::new(
            client,
            pinned.unwrap_or_else(|| r.clone()),
        )));
        let sink = Sink::Store(StoreSink::new(&self.store).map_err(|e| e.to_string())?);
        let opts = CopyOptions { platform: Some(platform.clone()), names: vec![r.clone()], ..Default::default() };
        let copied = self
            .ctx
            .block_on(berth_transport::copy_one(&src, &sink, &opts, Arc::new(Quiet)))
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        // The store names the index; the platform asked for is the manifest copied.
        let desc = copied.manifest.as_ref().unwrap_or(&copied.finished.desc);
        let image = self.store.load_image(desc).map_err(|e| e.to_string())?;
        Ok(ProvidedImage { name: r.to_string(), image })
    }

    fn fetch(
        &self,
        url: &str,
        dest: &mut std::fs::File,
        limit: u64,
    ) -> std::result::Result<berth_build::Fetched, String> {
        // berth's own HTTP stack: proxies, certs.d, insecure-registries and the redirect policy
        // of registry traffic; no host program.
        let client = crate::cmd::registry::client(self.ctx).map_err(|e| e.to_string())?;
        let d = self
            .ctx
            .block_on(client.download(url, dest, limit))
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("failed to fetch {url}: {e}"))?;
        Ok(berth_build::Fetched { last_modified: d.last_modified.map(berth_registry::download::unix_seconds) })
    }
}

pub fn build(ctx: &Ctx, a: &BuildArgs) -> Result<i32> {
    build_io::refuse_unsupported(a)?;
    let (call_check, call_print) = match a.call.as_deref() {
        None | Some("build") => (false, None),
        Some("check") => (true, None),
        Some(p @ ("outline" | "targets")) => (false, Some(p.to_string())),
        Some(other) => {
            return Err(exit_with(
                1,
                format!("berth build does not support --call={other} (build, check, outline, targets)"),
            ));
        }
    };
    let print = a.print.clone().or(call_print);
    let store = ctx.store()?.clone();
    // New layers are unreferenced until the image is named: keep garbage collection out.
    let _gc = store.gc_guard()?;
    let inputs = inputs(ctx, a, &store)?;
    let dockerfile_text = String::from_utf8_lossy(&inputs.dockerfile).to_string();
    let mut build_args = parse_build_args(&a.build_arg);

    // Lint and information requests work without building.
    if a.check || call_check || print.as_deref() == Some("check") {
        let ignore = inputs
            .context_dir
            .as_ref()
            .and_then(|d| berth_dockerfile::load_ignore_file(d, inputs.dockerfile_path.as_deref()).ok().flatten())
            .map(|f| f.patterns);
        let report = berth_dockerfile::lint(
            &inputs.dockerfile,
            &berth_dockerfile::LintOptions {
                build_args: build_args.clone(),
                ignore_patterns: ignore,
                base_image_env: base_image_env(&store, &inputs.dockerfile, &build_args),
                ..Default::default()
            },
        );
        eprint!("{}", berth_dockerfile::format_lint(&report, &dockerfile_text, &inputs.dockerfile_name));
        let failed = report.fatal.is_some() || report.error.is_some() || !report.warnings.is_empty();
        return Ok(if failed { 1 } else { 0 });
    }
    if let Some(p) = &print {
        let out = match p.as_str() {
            "outline" => berth_dockerfile::format_outline(
                &berth_dockerfile::outline(
                    &inputs.dockerfile,
                    &berth_dockerfile::PlanOptions {
                        build_args: build_args.clone(),
                        target: a.target.clone(),
                        ..Default::default()
                    },
                )
                .map_err(|e| render_df_error(&e, &dockerfile_text, &inputs.dockerfile_name))?,
            ),
            "targets" => berth_dockerfile::format_targets(
                &berth_dockerfile::targets(&inputs.dockerfile)
                    .map_err(|e| render_df_error(&e, &dockerfile_text, &inputs.dockerfile_name))?,
            ),
            other => return Err(exit_with(1, format!("unknown --print value {other:?} (outline, targets, check)"))),
        };
        print!("{out}");
        return Ok(0);
    }

    let host = Platform::host();
    // `--platform a,b`: one image per platform, assembled into an index (BuildKit's
    // multi-platform build). Stages shared between platforms (a `FROM --platform=$BUILDPLATFORM`
    // stage that does not use TARGET* args) hit the build cache after the first platform.
    let mut platforms: Vec<Platform> = Vec::new();
    for p in a.platform.iter().flat_map(|p| p.split(',')).map(str::trim).filter(|p| !p.is_empty()) {
        let wanted = Platform::parse(p).map_err(|e| exit_with(1, e.to_string()))?;
        if !platforms.contains(&wanted) {
            platforms.push(wanted);
        }
    }
    if platforms.is_empty() {
        platforms.push(host.clone());
    }
    let multi = platforms.len() > 1;
    let source_date_epoch = build_args
        .get("SOURCE_DATE_EPOCH")
        .cloned()
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| exit_with(1, format!("invalid SOURCE_DATE_EPOCH {s:?}: expected seconds since the epoch")))
        })
        .transpose()?;
    if let Some(e) = source_date_epoch {
        build_args.entry("SOURCE_DATE_EPOCH".into()).or_insert_with(|| e.to_string());
    }
    let network = match a.network.as_str() {
        "default" | "" => Network::Default,
        "host" => Network::Host,
        "none" => Network::None,
        other => {
            return Err(exit_with(
                1,
                format!("network mode {other:?} not supported by the builder (default, host, none)"),
            ));
        }
    };
    let mut named = BTreeMap::new();
    let mut _named_guards = Vec::new();
    for bc in &a.build_context {
        let (name, val) = bc
            .split_once('=')
            .ok_or_else(|| exit_with(1, format!("invalid --build-context {bc:?}: expected name=value")))?;
        let nc = if let Some(img) = val.strip_prefix("docker-image://") {
            NamedContext::Image(img.to_string())
        } else if build_io::is_remote(val) {
            match build_io::resolve_remote(ctx, val, &store.root().join("tmp"), keep_git_dir(a))? {
                Some(build_io::Remote::Dir { guard, dir }) => {
                    _named_guards.push(guard);
                    NamedContext::Dir(dir)
                }
                _ => {
                    return Err(exit_with(
                        1,
                        format!("build context {name}: {val} is not a git repository or a tarball"),
                    ));
                }
            }
        } else if val.contains("://") {
            return Err(exit_with(
                1,
                format!(
                    "build context {val:?}: berth does not support this source (directories, git and http(s) URLs, docker-image://)"
                ),
            ));
        } else {
            NamedContext::Dir(
                std::fs::canonicalize(val).map_err(|e| exit_with(1, format!("build context {name}: {val}: {e}")))?,
            )
        };
        named.insert(name.to_string(), nc);
    }
    let mut tags = Vec::new();
    for t in &a.tag {
        let r = Reference::parse_normalized(t).map_err(|e| exit_with(1, format!("invalid tag {t:?}: {e}")))?;
        tags.push(r.with_default_tag());
    }
    // `-o type=image,name=REF[,push=true]` names the result as -t does (BuildKit).
    for o in &a.output {
        let kv = csv_kv(o);
        if matches!(kv.get("type").map(String::as_str), Some("image" | "registry" | "docker"))
            && let Some(n) = kv.get("name").filter(|n| !n.is_empty())
        {
            let r = Reference::parse_normalized(n)
                .map_err(|e| exit_with(1, format!("invalid name {n:?} in --output: {e}")))?
                .with_default_tag();
            if !tags.contains(&r) {
                tags.push(r);
            }
        }
    }
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let (outputs, output_names) = parse_outputs(a)?;
    for n in output_names {
        if !tags.contains(&n) {
            tags.push(n);
        }
    }
    let (ssh, _ssh_agents) = build_io::parse_ssh(&a.ssh, &store.root().join("tmp"))?;
    let mut cache_from = Vec::new();
    let mut cache_from_refs = Vec::new();
    for c in &a.cache_from {
        let kv = csv_kv(c);
        build_io::check_cache_keys("--cache-from", c, &kv)?;
        match kv.get("type").map(String::as_str) {
            Some("local") => cache_from.push(PathBuf::from(
                kv.get("src").ok_or_else(|| exit_with(1, format!("--cache-from {c:?}: src=DIR is required")))?,
            )),
            Some("registry") => {
                let r =
                    kv.get("ref").ok_or_else(|| exit_with(1, format!("--cache-from {c:?}: ref=IMAGE is required")))?;
                cache_from_refs.push(r.clone());
            }
            // An image reference as cache source (docker's `--cache-from IMAGE`): a registry cache
            // when it is one, otherwise its layers are matched through the local store.
            None if !c.contains('=') => cache_from_refs.push(c.clone()),
            other => {
                return Err(exit_with(
                    1,
                    format!(
                        "--cache-from {c:?}: cache type {other:?} is not supported (type=local,src=DIR or type=registry,ref=IMAGE)"
                    ),
                ));
            }
        }
    }
    let mut cache_to = None;
    let mut cache_to_registry: Option<(Reference, bool)> = None;
    let mut cache_to_inline = false;
    for c in &a.cache_to {
        let kv = csv_kv(c);
        build_io::check_cache_keys("--cache-to", c, &kv)?;
        match kv.get("type").map(String::as_str) {
            Some("local") => {
                let dest = PathBuf::from(
                    kv.get("dest").ok_or_else(|| exit_with(1, format!("--cache-to {c:?}: dest=DIR is required")))?,
                );
                let max = kv.get("mode").map(String::as_str) == Some("max");
                cache_to = Some((dest, max));
            }
            Some("registry") => {
                let r =
                    kv.get("ref").ok_or_else(|| exit_with(1, format!("--cache-to {c:?}: ref=IMAGE is required")))?;
                let r = Reference::parse_normalized(r)
                    .map_err(|e| exit_with(1, format!("--cache-to {c:?}: {e}")))?
                    .with_default_tag();
                cache_to_registry = Some((r, kv.get("mode").map(String::as_str) == Some("max")));
            }
            // The cache records go into the image config (berth's record format, read back by
            // `--cache-from IMAGE`).
            Some("inline") => cache_to_inline = true,
            other => {
                return Err(exit_with(
                    1,
                    format!("--cache-to {c:?}: cache type {other:?} is not supported (type=local,dest=DIR[,mode=max])"),
                ));
            }
        }
    }

    let cache_from_records = import_registry_caches(ctx, &store, &cache_from_refs);
    let cache = berth_build::Cache::open(&store)?;
    let context = match &inputs.context_dir {
        Some(d) => {
            let ignore = berth_dockerfile::load_ignore_file(d, inputs.dockerfile_path.as_deref())
                .with_context(|| format!("reading .dockerignore in {}", d.display()))?
                .map(|f| f.patterns)
                .unwrap_or_default();
            Context::load(d, ignore, Some(&cache.stat_dir()))?
        }
        None => Context::empty(),
    };
    let mut runtime = berth_runtime::RuntimeOptions::default();
    if let Some(r) = &a.runtime {
        runtime.backend = berth_runtime::Backend::External(r.clone());
    }
    let add_hosts =
        a.add_host.iter().filter_map(|h| h.split_once(':').map(|(a, b)| (a.to_string(), b.to_string()))).collect();
    let opts = BuildOptions {
        dockerfile: inputs.dockerfile.clone(),
        dockerfile_name: inputs.dockerfile_name.clone(),
        context: Arc::new(context),
        build_args,
        target: a.target.clone(),
        no_cache: a.no_cache,
        no_cache_filter: a.no_cache_filter.clone(),
        pull: a.pull,
        secrets: parse_secrets(&a.secret)?,
        network,
        platform: platforms[0].clone(),
        build_platform: host.clone(),
        show_platform: multi,
        named_contexts: named,
        source_date_epoch,
        runtime,
        add_hosts,
        cache_from,
        cache_to,
        cache_from_records,
        ssh,
    };

    let mode = if a.quiet {
        BuildMode::Quiet
    } else {
        BuildMode::resolve(Some(a.progress.as_str()), None, std::io::stderr().is_terminal())
            .map_err(|e| exit_with(1, e.to_string()))?
    };
    let progress = BuildProgress::stderr(mode);
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
    // The handler only sets a flag; this thread turns it into a cancellation (kills the RUN
    // containers, stops further steps).
    std::thread::spawn(|| {
        while !INTERRUPTED.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        berth_build::cancel();
    });

    let provider = StoreProvider { ctx, store: store.clone() };
    // The platforms build side by side (their shared steps run once: see berth_build's
    // in-flight keys); results are kept in the order the platforms were given.
    let results: Vec<(Platform, std::result::Result<berth_build::BuildOutput, berth_build::BuildError>)> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = platforms
                .iter()
                .map(|p| {
                    let mut o = opts.clone();
                    o.platform = p.clone();
                    let (store, provider, progress) = (&store, &provider, &progress);
                    let p = p.clone();
                    scope.spawn(move || {
                        let r = berth_build::build(store, &o, provider, progress);
                        (p, r)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        (Platform::host(), Err(berth_build::BuildError::Other("a platform's build panicked".into())))
                    })
                })
                .collect()
        });
    let mut built = Vec::new();
    for (p, r) in results {
        match r {
            Ok(o) => built.push((p, o)),
            Err(e) => return Ok(report_build_error(e, &progress, &dockerfile_text, &inputs.dockerfile_name)),
        }
    }

    // Export.
    let v = "export";
    progress.start(v, "exporting to image");
    let mut children = Vec::new();
    let mut last_id = None;
    for (p, out) in &built {
        let (manifest, id) = if cache_to_inline {
            let mut state = out.state.clone();
            inline_cache(&store, out, &mut state)?;
            berth_build::export_image(&store, &state, &labels)?
        } else {
            berth_build::export_image(&store, &out.state, &labels)?
        };
        let what = if multi { format!("writing image {id} for {p}\n") } else { format!("writing image {id}\n") };
        progress.log(v, berth_output::progress::LogStream::Stdout, what.as_bytes());
        let mut d = if outputs_docker_list(a) {
            berth_transport::index::to_docker_manifest(&store, &manifest)?
        } else {
            manifest
        };
        d.platform = Some(p.clone());
        children.push(d);
        last_id = Some(id);
    }
    let Some(out) = built.pop().map(|(_, o)| o) else {
        return Err(anyhow::anyhow!("no platform was built"));
    };
    let (manifest, id) = if multi {
        let oci = !outputs_docker_list(a);
        let (d, bytes) = berth_transport::index::write_index(&children, !oci)?;
        store.put_blob_bytes(&bytes, Some(&d.digest))?;
        progress.log(
            v,
            berth_output::progress::LogStream::Stdout,
            format!("exporting manifest list {}\n", d.digest).as_bytes(),
        );
        let digest = d.digest.clone();
        (d, digest)
    } else {
        let mut d = children.pop().ok_or_else(|| anyhow::anyhow!("no image was exported"))?;
        d.platform = None;
        (d, last_id.ok_or_else(|| anyhow::anyhow!("no image was exported"))?)
    };
    if multi && outputs.iter().any(|o| matches!(o, Output::Tar(_) | Output::Local(_))) {
        progress.finish();
        return Err(exit_with(
            1,
            "type=local and type=tar outputs of a multi-platform build are not supported yet (use type=oci or build one platform)",
        ));
    }
    let mut ran_store = false;
    for o in &outputs {
        match o {
            Output::Store | Output::Push => {
                if !ran_store {
                    ran_store = true;
                    if tags.is_empty() {
                        let now = berth_store::now_rfc3339();
                        let m = manifest.clone();
                        store.update_refs(|t| {
                            t.keep_dangling(&m, &now);
                            Ok(())
                        })?;
                    }
                    for t in &tags {
                        progress.log(
                            v,
                            berth_output::progress::LogStream::Stdout,
                            format!("naming to {t}\n").as_bytes(),
                        );
                        store.set_ref(t, manifest.clone())?;
                    }
                }
            }
            Output::DockerArchive(p) | Output::OciArchive(p) => {
                let fmt =
                    if matches!(o, Output::DockerArchive(_)) { ArchiveFormat::Docker } else { ArchiveFormat::Oci };
                // The archive is written from the store by image ID, so the image needs a record
                // there: its tags when an image output already set them, else a dangling entry.
                if tags.is_empty() || !ran_store {
                    let now = berth_store::now_rfc3339();
                    let m = manifest.clone();
                    store.update_refs(|t| {
                        t.keep_dangling(&m, &now);
                        Ok(())
                    })?;
                }
                // A multi-platform image is found by the ID its default platform shows.
                let key = if multi { store.load_image(&manifest)?.id.to_string() } else { id.to_string() };
                let src = Source::open_local(&Endpoint::Store(key), Some(&store))?;
                let w = if p.as_os_str() == "-" {
                    Some(build_io::tar_stdout(if matches!(o, Output::DockerArchive(_)) { "docker" } else { "oci" })?)
                } else {
                    None
                };
                let sink = Sink::Archive(ArchiveSink::new(fmt, p, w, None)?);
                let copts = CopyOptions { names: tags.clone(), all_platforms: multi, ..Default::default() };
                ctx.block_on(berth_transport::copy_one(&src, &sink, &copts, Arc::new(Quiet)))??;
            }
            Output::Tar(p) | Output::Local(p) => {
                export_filesystem(&store, &out.state, p, matches!(o, Output::Tar(_)))?;
            }
        }
    }
    progress.done(v);
    if let Some((r, max)) = &cache_to_registry {
        let vid = "cache-export-registry";
        progress.start(vid, &format!("exporting cache to registry {r}"));
        match export_registry_cache(ctx, &store, &out, r, *max) {
            Ok(()) => progress.done(vid),
            Err(e) => {
                progress.error(vid, &crate::errors::chain_text(&e));
                progress.finish();
                return Err(e);
            }
        }
    }
    progress.finish();
    if !a.quiet {
        print_check_warnings(&store, &inputs.dockerfile, &opts.build_args, opts.context.ignore_patterns());
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, id.to_string()).with_context(|| format!("writing {}", f.display()))?;
    }
    let mut pushed = None;
    if outputs.iter().any(|o| matches!(o, Output::Push)) {
        if tags.is_empty() {
            progress_free_error("an image push needs a name: use -t NAME or -o type=image,name=NAME,push=true")?;
        }
        for t in &tags {
            let pa = crate::cli::PushArgs {
                all_tags: false,
                quiet: a.quiet,
                max_concurrent_uploads: 5,
                compression_format: "gzip".into(),
                platform: None,
                disable_content_trust: false,
                name: t.to_string(),
            };
            crate::cmd::registry::push(ctx, &pa)?;
            if pushed.is_none() {
                pushed = build_io::pushed_descriptor(&store, t);
            }
        }
    }
    if let Some(f) = &a.metadata_file {
        build_io::write_metadata(f, pushed.as_ref().unwrap_or(&manifest), &id.to_string(), &tags)?;
    }
    let stdout_taken = outputs.iter().any(
        |o| matches!(o, Output::DockerArchive(p) | Output::OciArchive(p) | Output::Tar(p) if p.as_os_str() == "-"),
    );
    if a.quiet && !stdout_taken {
        println!("{id}");
    }
    // The image is named now; collection may run (it needs the gc lock this build held).
    drop(_gc);
    if let Err(e) = crate::cmd::system::builder_auto_gc(ctx) {
        tracing::warn!("build cache garbage collection: {}", crate::errors::chain_text(&e));
    }
    Ok(0)
}

/// Prints a failed build's error as BuildKit does; returns the exit code.
fn report_build_error(
    e: berth_build::BuildError,
    progress: &BuildProgress,
    dockerfile_text: &str,
    dockerfile_name: &str,
) -> i32 {
    progress.finish();
    if INTERRUPTED.load(Ordering::SeqCst) {
        eprintln!("ERROR: failed to solve: build canceled");
        return 130;
    }
    if let Some(r) = e.range() {
        eprint!("{}", berth_dockerfile::render_source(dockerfile_text, dockerfile_name, r));
    }
    // Dockerfile errors in BuildKit's words ("dockerfile parse error on line N: …").
    let message = match &e {
        berth_build::BuildError::Dockerfile(d) => berth_dockerfile::render::error_message(d),
        other => other.to_string(),
    };
    eprintln!("ERROR: failed to solve: {message}");
    1
}

/// Whether an image output asked for Docker media types (`oci-mediatypes=false`): a
/// multi-platform result is then a Docker manifest list instead of an OCI index.
fn outputs_docker_list(a: &BuildArgs) -> bool {
    a.output.iter().any(|o| csv_kv(o).get("oci-mediatypes").is_some_and(|v| v == "false"))
}

fn progress_free_error(msg: &str) -> Result<()> {
    Err(exit_with(1, msg.to_string()))
}

/// `--cache-to type=inline`: the records of the steps whose layers are all in the image (mode
/// min, as BuildKit's inline cache), embedded in the image config.
fn inline_cache(store: &Store, out: &berth_build::BuildOutput, state: &mut berth_build::State) -> Result<()> {
    let cache = berth_build::Cache::open(store)?;
    let final_layers: std::collections::HashSet<_> = out.state.layers.iter().map(|l| l.diff_id.clone()).collect();
    let keys: Vec<String> = out
        .used_keys
        .iter()
        .filter(|k| cache.peek(k).is_some_and(|rec| rec.state.layers.iter().all(|l| final_layers.contains(&l.diff_id))))
        .cloned()
        .collect();
    let (config, _) = berth_build::cache_image(&cache, &keys);
    if let Some(v) = config.extra.get(berth_build::CACHE_CONFIG_KEY) {
        state.config.extra.insert(berth_build::CACHE_CONFIG_KEY.to_string(), v.clone());
    }
    Ok(())
}

/// After a build, BuildKit lists the lint rules that fired (without failing the build).
fn print_check_warnings(store: &Store, dockerfile: &[u8], build_args: &BTreeMap<String, String>, ignore: &[String]) {
    // The base images are in the store now: their Env lets UndefinedVar judge image-based stages.
    let report = berth_dockerfile::lint(
        dockerfile,
        &berth_dockerfile::LintOptions {
            build_args: build_args.clone(),
            ignore_patterns: Some(ignore.to_vec()),
            base_image_env: base_image_env(store, dockerfile, build_args),
            ..Default::default()
        },
    );
    let n = report.warnings.len();
    if n == 0 {
        return;
    }
    let mut out =
        format!("\n {n} warning{} found (use berth build --check to expand):\n", if n == 1 { "" } else { "s" });
    for w in &report.warnings {
        let line = w.range.map(|r| format!(" (line {})", r.start)).unwrap_or_default();
        out.push_str(&format!(" - {}: {}{line}\n", w.rule, w.message));
    }
    eprint!("{out}");
}

/// The Env of every external base image found in the local store, for the UndefinedVar rule
/// (a stage whose base image is not local is not judged: its Env may define the variable).
fn base_image_env(
    store: &Store,
    dockerfile: &[u8],
    build_args: &BTreeMap<String, String>,
) -> std::collections::HashMap<String, Vec<(String, String)>> {
    let mut base_image_env = std::collections::HashMap::new();
    let plan_opts = berth_dockerfile::PlanOptions { build_args: build_args.clone(), ..Default::default() };
    if let Ok(plan) = berth_dockerfile::plan(dockerfile, &plan_opts) {
        for r in plan.external_images() {
            let Ok(name) = Reference::parse_normalized(&r).map(|x| x.with_default_tag().to_string()) else { continue };
            if let Ok(img) = store.resolve_image(&name, None) {
                let env: Vec<(String, String)> = img
                    .config
                    .config
                    .and_then(|c| c.env)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                    .collect();
                base_image_env.insert(r, env);
            }
        }
    }
    base_image_env
}

/// `--cache-from type=registry,ref=…`: pulls each cache image (quietly; a missing one is not an
/// error, as in BuildKit) and returns the records they carry. Their layers are then in the
/// store, verified and unpacked, like any pulled image.
fn import_registry_caches(ctx: &Ctx, store: &Store, refs: &[String]) -> Vec<BTreeMap<String, berth_build::Record>> {
    let mut out = Vec::new();
    for r in refs {
        let Ok(reference) = Reference::parse_normalized(r).map(Reference::with_default_tag) else {
            eprintln!("WARNING: --cache-from {r}: invalid reference");
            continue;
        };
        let provider = StoreProvider { ctx, store: store.clone() };
        match provider.image(&reference.to_string(), &Platform::host(), true) {
            Ok(p) => match berth_build::records_of(&p.image.config) {
                Some(recs) => {
                    // A cache image is not an image of the user's: drop its names (its layers
                    // stay while the build's own cache records use them).
                    let digest = p.image.manifest_desc.digest.clone();
                    let _ = store.update_refs(|t| {
                        t.remove_digest(&digest);
                        Ok(())
                    });
                    out.push(recs);
                }
                None => tracing::debug!(
                    "{reference} is not a berth cache image; its layers can still match through the store"
                ),
            },
            Err(e) => eprintln!("WARNING: failed to import cache {reference}: {e}"),
        }
    }
    out
}

/// `--cache-to type=registry,ref=…`: writes a cache image (see `berth_build::cache_image`) into
/// the store and pushes it with the regular push pipeline (layers compressed once, mounts and
/// "already exists" as for any push). The cache image gets no local name.
fn export_registry_cache(
    ctx: &Ctx,
    store: &Store,
    out: &berth_build::BuildOutput,
    r: &Reference,
    max: bool,
) -> Result<()> {
    let cache = berth_build::Cache::open(store)?;
    let final_layers: std::collections::HashSet<_> = out.state.layers.iter().map(|l| l.diff_id.clone()).collect();
    let keys: Vec<String> = out
        .used_keys
        .iter()
        .filter(|k| {
            max || cache.peek(k).is_some_and(|rec| rec.state.layers.iter().all(|l| final_layers.contains(&l.diff_id)))
        })
        .cloned()
        .collect();
    let (config, layers) = berth_build::cache_image(&cache, &keys);
    let state = berth_build::State { key: String::new(), layers, config };
    let (manifest, _) = berth_build::export_image(store, &state, &BTreeMap::new())?;
    let img = store.load_image(&manifest)?;
    let root = match berth_transport::recompress::compressed_root(store, &img, berth_types::Compression::Gzip, false)? {
        Some(r) => r,
        None => {
            berth_transport::Root { desc: manifest.clone(), bytes: store.read_blob(&manifest.digest)?, names: vec![] }
        }
    };
    // The store is an OCI layout: read the cache image's blobs from it directly.
    let src = Source::open_local(&Endpoint::OciDir { path: store.root().to_path_buf(), tag: None }, Some(store))?;
    let client = crate::cmd::registry::client(ctx)?;
    let sink = Sink::Registry(Box::new(berth_transport::registry::RegistrySink::new(client, r.clone())));
    let opts = CopyOptions { names: vec![r.clone()], max_concurrent: 5, ..Default::default() };
    ctx.block_on(berth_transport::copy_root(&src, &root, &sink, &opts, Arc::new(Quiet)))??;
    Ok(())
}

/// `-o type=local|tar`: the final filesystem, layers applied in order with whiteouts.
fn export_filesystem(store: &Store, state: &berth_build::State, dest: &Path, as_tar: bool) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{}berth-export-", berth_store::owner_prefix()))
        .tempdir_in(store.root().join("tmp"))?;
    let dir = if as_tar { tmp.path().to_path_buf() } else { dest.to_path_buf() };
    std::fs::create_dir_all(&dir)?;
    for l in &state.layers {
        let f = store.open_blob(&l.blob.digest)?;
        berth_archive::apply_layer(&dir, std::io::BufReader::new(f), &berth_archive::ApplyOptions::default())
            .with_context(|| format!("applying layer {}", l.diff_id))?;
    }
    if as_tar {
        let out: Box<dyn Write> =
            if dest.as_os_str() == "-" { Box::new(std::io::stdout()) } else { Box::new(std::fs::File::create(dest)?) };
        berth_archive::write_tree(&dir, out, &berth_archive::TreeOptions::default())?;
    }
    Ok(())
}

fn render_df_error(e: &berth_dockerfile::Error, text: &str, name: &str) -> anyhow::Error {
    eprint!("{}", berth_dockerfile::render_error(e, text, name));
    exit_with(1, "")
}

#[allow(dead_code)]
fn unused(_: anyhow::Error) -> anyhow::Error {
    anyhow!("")
}
