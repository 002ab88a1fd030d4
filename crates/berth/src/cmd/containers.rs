//! Containers without a daemon: run, create, start, ps, logs, stop, kill, wait, rm, prune,
//! exec, inspect, export, import, commit, healthcheck — on berth-runtime's records.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow};
use berth_output::units;
use berth_runtime::{
    ContainerConfig, ContainerInfo, Containers, ExecConfig, HealthConfig, LayerStack, LogOptions, MountSpec,
    RootfsMode, RootfsSource, RuntimeOptions, Status, Stdio,
};
use berth_store::{LocalImage, Store};
use berth_types::{Compression, Descriptor, History, ImageConfig, Manifest, Platform, Reference, RootFs, media};
use serde_json::{Value, json};

use crate::cli::{
    CommitArgs, ContainerPruneArgs, ExecArgs, ExportArgs, HealthcheckRunArgs, ImportArgs, KillArgs, LogsArgs, PsArgs,
    RmArgs, RunArgs, StartArgs, StopArgs, WaitArgs,
};
use crate::ctx::Ctx;
use crate::errors::exit_with;
use crate::render::{now_unix, unix_of};

const ANN_IMAGE: &str = "berth.image";
const ANN_IMAGE_ID: &str = "berth.image-id";
const ANN_CMD: &str = "berth.command";

pub fn containers(ctx: &Ctx) -> Result<Containers> {
    Ok(Containers::new(ctx.store()?.root()))
}

fn fs_dir(ctx: &Ctx, id: &str) -> Result<PathBuf> {
    Ok(ctx.store()?.root().join("containers-fs").join(id))
}

fn annotation<'a>(c: &'a ContainerConfig, key: &str) -> Option<&'a str> {
    c.annotations.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Finds a container by full ID, name, or unique ID prefix.
pub fn find(ctx: &Ctx, s: &str) -> Result<ContainerInfo> {
    let list = containers(ctx)?.list()?;
    let name = s.trim_start_matches('/');
    if let Some(c) = list.iter().find(|c| c.record.id == s || c.record.name.as_deref() == Some(name)) {
        return Ok(c.clone());
    }
    let matches: Vec<&ContainerInfo> = list.iter().filter(|c| !s.is_empty() && c.record.id.starts_with(s)).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(exit_with(1, format!("No such container: {s}"))),
        _ => Err(exit_with(1, format!("multiple containers match {s}; use more of the ID"))),
    }
}

/// Image IDs used by containers, and the layers they hold (GC roots).
pub fn in_use(ctx: &Ctx) -> Result<(HashSet<berth_types::Digest>, Vec<PathBuf>)> {
    let mut ids = HashSet::new();
    let mut lowers = Vec::new();
    // An unreadable container record is an error, not "no containers": GC would otherwise
    // collect the layers that container runs on.
    for info in containers(ctx)?.list()? {
        if let Some(id) = annotation(&info.record.config, ANN_IMAGE_ID).and_then(|s| berth_types::Digest::parse(s).ok())
        {
            ids.insert(id);
        }
        if let RootfsSource::Layers(st) = &info.record.config.rootfs {
            lowers.extend(st.lower.iter().cloned());
        }
    }
    Ok((ids, lowers))
}

const ADJECTIVES: &[&str] = &[
    "admiring",
    "amazing",
    "blissful",
    "bold",
    "brave",
    "busy",
    "clever",
    "cool",
    "dazzling",
    "eager",
    "elated",
    "epic",
    "festive",
    "focused",
    "gallant",
    "gifted",
    "happy",
    "hopeful",
    "jolly",
    "keen",
    "kind",
    "lucid",
    "magical",
    "modest",
    "nice",
    "optimistic",
    "peaceful",
    "quirky",
    "relaxed",
    "serene",
    "sharp",
    "stoic",
    "sweet",
    "tender",
    "trusting",
    "vibrant",
    "vigilant",
    "wizardly",
    "youthful",
    "zealous",
];
const NAMES: &[&str] = &[
    "albattani",
    "babbage",
    "banach",
    "bell",
    "bohr",
    "carson",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euler",
    "faraday",
    "fermat",
    "galileo",
    "goldberg",
    "hamilton",
    "hopper",
    "hypatia",
    "kepler",
    "knuth",
    "lamarr",
    "lovelace",
    "maxwell",
    "mayer",
    "newton",
    "noether",
    "pascal",
    "ritchie",
    "shannon",
    "thompson",
    "tesla",
    "torvalds",
    "turing",
    "wozniak",
    "yalow",
];

fn random_name(taken: &HashSet<String>) -> String {
    let r = berth_runtime::util::random_id();
    let bytes = r.as_bytes();
    for i in 0..16 {
        let a = ADJECTIVES[(bytes[i % bytes.len()] as usize * 7 + i) % ADJECTIVES.len()];
        let n = NAMES[(bytes[(i + 3) % bytes.len()] as usize * 13 + i) % NAMES.len()];
        let name = if i == 0 { format!("{a}_{n}") } else { format!("{a}_{n}{i}") };
        if !taken.contains(&name) {
            return name;
        }
    }
    format!("berth_{}", &r[..12])
}

fn platform_of(img: &LocalImage) -> Platform {
    img.platform()
}

/// Resolves (pulling when allowed) the image a container runs.
fn image_for_run(
    ctx: &Ctx,
    name: &str,
    pull: &str,
    platform: Option<&Platform>,
    quiet: bool,
) -> Result<(LocalImage, String)> {
    let store = ctx.store()?;
    let want_pull = match pull {
        "always" => true,
        "never" | "missing" => false,
        other => return Err(exit_with(125, format!("invalid pull option: {other:?} (always, missing, never)"))),
    };
    // A local image of another platform than the one asked for counts as missing (a pull adds
    // the platform to a multi-platform name).
    if !want_pull
        && let Ok(img) = store.resolve_image(name, platform)
        && platform.is_none_or(|p| p.matches(&platform_of(&img)))
    {
        return Ok((img, display_name(name)));
    }
    if pull == "never" {
        return Err(exit_with(125, format!("Unable to find image '{name}' locally")));
    }
    let r = Reference::parse_normalized(name).map_err(|e| exit_with(125, e.to_string()))?.with_default_tag();
    if !quiet {
        eprintln!("Unable to find image '{}' locally", r.familiar());
    }
    let pa = crate::cli::PullArgs {
        all_tags: false,
        platform: platform.map(|p| p.to_string()),
        all_platforms: false,
        quiet,
        max_concurrent_downloads: 3,
        disable_content_trust: false,
        name: r.to_string(),
    };
    let client = crate::cmd::registry::client(ctx)?;
    crate::cmd::registry::pull_one(ctx, &client, &r, &pa, false)
        .map_err(|e| exit_with(125, crate::errors::chain_text(&e)))?;
    Ok((store.resolve_image(&r.to_string(), platform)?, r.familiar()))
}

/// docker's `ps -s` size: the container's writable layer, then the image's size as virtual
/// (`2B (virtual 4.26MB)`).
fn container_size(info: &ContainerInfo) -> String {
    let rw = match &info.record.config.rootfs {
        RootfsSource::Layers(st) => st.upper.as_ref().map(|u| berth_build::cache::dir_size(u)).unwrap_or(0),
        RootfsSource::Path(_) => 0,
    };
    let image: u64 = match &info.record.config.rootfs {
        RootfsSource::Layers(st) => st.lower.iter().map(|l| berth_build::cache::dir_size(l)).sum(),
        RootfsSource::Path(_) => 0,
    };
    format!("{} (virtual {})", units::human_size(rw as f64), units::human_size((rw + image) as f64))
}

/// Journals a container event by ID (a no-op if the record is gone).
fn event(ctx: &Ctx, action: &str, id: &str) {
    if let Ok(c) = containers(ctx)
        && let Ok(info) = c.inspect(id)
    {
        crate::cmd::events::container(ctx, action, &info);
    }
}

/// How `ps` shows the image: the familiar name with its tag when a name was given, else the
/// ID as typed.
fn display_name(typed: &str) -> String {
    let hex = typed.strip_prefix("sha256:").unwrap_or(typed);
    if hex.len() >= 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return typed.to_string();
    }
    match Reference::parse_normalized(typed) {
        Ok(r) => r.with_default_tag().familiar(),
        Err(_) => typed.to_string(),
    }
}

fn parse_env_file(p: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(p).map_err(|e| exit_with(125, format!("open {}: {e}", p.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            if l.contains('=') { Some(l.to_string()) } else { std::env::var(l).ok().map(|v| format!("{l}={v}")) }
        })
        .collect())
}

fn merge_env(base: &mut Vec<String>, add: Vec<String>) {
    for e in add {
        let key = e.split_once('=').map(|(k, _)| k.to_string()).unwrap_or_else(|| e.clone());
        base.retain(|x| x.split_once('=').map(|(k, _)| k) != Some(key.as_str()) && *x != key);
        base.push(e);
    }
}

/// `-v`/`--mount` → mount specs. Named volumes live under `<root>/volumes/<name>/_data`.
fn parse_mounts(ctx: &Ctx, a: &RunArgs) -> Result<Vec<MountSpec>> {
    let mut out = Vec::new();
    let volume_dir = |name: &str| -> Result<PathBuf> {
        let p = ctx.store()?.root().join("volumes").join(name).join("_data");
        std::fs::create_dir_all(&p)?;
        Ok(p)
    };
    for v in &a.volume {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [dst] => {
                // Anonymous volume.
                let name = berth_runtime::util::random_id();
                (volume_dir(&name)?.display().to_string(), dst.to_string(), "")
            }
            [src, dst] => (src.to_string(), dst.to_string(), ""),
            [src, dst, o] => (src.to_string(), dst.to_string(), *o),
            _ => return Err(exit_with(125, format!("invalid volume specification: '{v}'"))),
        };
        let readonly = opts.split(',').any(|o| o == "ro");
        let source = if src.starts_with('/') || src.starts_with('.') {
            let p = PathBuf::from(&src);
            if !p.exists() {
                std::fs::create_dir_all(&p).map_err(|e| exit_with(125, format!("creating bind source {src}: {e}")))?;
            }
            std::fs::canonicalize(&p)?
        } else {
            volume_dir(&src)?
        };
        out.push(MountSpec::Bind { source, target: dst, readonly });
    }
    for m in &a.mount {
        let kv: BTreeMap<String, String> = m
            .split(',')
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                None => (p.trim().to_string(), "true".to_string()),
            })
            .collect();
        let target = kv
            .get("target")
            .or(kv.get("destination"))
            .or(kv.get("dst"))
            .cloned()
            .ok_or_else(|| exit_with(125, format!("invalid mount {m:?}: target is required")))?;
        let readonly = kv.get("readonly").or(kv.get("ro")).is_some_and(|v| v == "true" || v == "1");
        match kv.get("type").map(String::as_str).unwrap_or("volume") {
            "bind" => {
                let src = kv
                    .get("source")
                    .or(kv.get("src"))
                    .ok_or_else(|| exit_with(125, format!("invalid mount {m:?}: source is required")))?;
                let p = std::fs::canonicalize(src).map_err(|_| {
                    exit_with(
                        125,
                        format!("invalid mount config for type \"bind\": bind source path does not exist: {src}"),
                    )
                })?;
                out.push(MountSpec::Bind { source: p, target, readonly });
            }
            "tmpfs" => {
                let size = kv
                    .get("tmpfs-size")
                    .map(|s| units::ram_in_bytes(s).map(|n| n as u64))
                    .transpose()
                    .map_err(|e| exit_with(125, e.to_string()))?;
                let mode = kv.get("tmpfs-mode").and_then(|s| u32::from_str_radix(s, 8).ok());
                out.push(MountSpec::Tmpfs { target, size, mode });
            }
            "volume" => {
                let name = kv.get("source").or(kv.get("src")).cloned().unwrap_or_else(berth_runtime::util::random_id);
                out.push(MountSpec::Bind { source: volume_dir(&name)?, target, readonly });
            }
            other => return Err(exit_with(125, format!("invalid mount type {other:?} (bind, tmpfs, volume)"))),
        }
    }
    Ok(out)
}

/// Builds the runtime config from the image config and docker's run flags.
fn container_config(ctx: &Ctx, a: &RunArgs, id: &str, img: &LocalImage, image_name: &str) -> Result<ContainerConfig> {
    let store = ctx.store()?;
    let ic = img.config.config.clone().unwrap_or_default();
    let (_, command) =
        a.image_and_command.split_first().ok_or_else(|| exit_with(125, "\"run\" requires at least 1 argument"))?;
    // Docker's rules: --entrypoint replaces the image's ENTRYPOINT and drops its CMD; command
    // arguments replace CMD.
    let entrypoint: Vec<String> = match &a.entrypoint {
        Some(e) if e.is_empty() => vec![],
        Some(e) => vec![e.clone()],
        None => ic.entrypoint.clone().unwrap_or_default(),
    };
    let cmd: Vec<String> = if !command.is_empty() {
        command.to_vec()
    } else if a.entrypoint.is_some() {
        vec![]
    } else {
        ic.cmd.clone().unwrap_or_default()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(exit_with(125, "no command specified"));
    }
    let mut env = ic.env.clone().unwrap_or_default();
    for f in &a.env_file {
        merge_env(&mut env, parse_env_file(f)?);
    }
    let flag_env: Vec<String> = a
        .env
        .iter()
        .filter_map(
            |e| if e.contains('=') { Some(e.clone()) } else { std::env::var(e).ok().map(|v| format!("{e}={v}")) },
        )
        .collect();
    merge_env(&mut env, flag_env);
    let mut lower = Vec::new();
    for d in img.diff_ids() {
        if !store.has_snapshot(d) {
            return Err(exit_with(125, format!("layer {d} of {image_name} is not unpacked; pull the image again")));
        }
        lower.push(store.snapshot_fs(d));
    }
    let fsd = fs_dir(ctx, id)?;
    let network = super::network::resolve_mode(ctx, a)?;
    let exposed: Vec<String> = ic.exposed_ports.as_ref().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    let publish = if network.is_private() { super::network::publish(a, &exposed)? } else { Vec::new() };
    let healthcheck = if a.no_healthcheck {
        None
    } else if let Some(cmd) = &a.health_cmd {
        Some(HealthConfig {
            test: vec!["CMD-SHELL".into(), cmd.clone()],
            interval: 0,
            timeout: 0,
            start_period: 0,
            start_interval: 0,
            retries: 0,
        })
    } else {
        ic.healthcheck.as_ref().and_then(|h| {
            let test = h.test.clone().unwrap_or_default();
            if test.first().map(String::as_str) == Some("NONE") || test.is_empty() {
                return None;
            }
            Some(HealthConfig {
                test,
                interval: h.interval.max(0) as u64,
                timeout: h.timeout.max(0) as u64,
                start_period: h.start_period.max(0) as u64,
                start_interval: h.start_interval.max(0) as u64,
                retries: h.retries.max(0) as u32,
            })
        })
    };
    let memory = a
        .memory
        .as_deref()
        .map(units::ram_in_bytes)
        .transpose()
        .map_err(|e| exit_with(125, format!("invalid --memory: {e}")))?;
    let mut annotations = vec![
        (ANN_IMAGE.to_string(), image_name.to_string()),
        (ANN_IMAGE_ID.to_string(), img.id.to_string()),
        (ANN_CMD.to_string(), serde_json::to_string(&args).unwrap_or_default()),
    ];
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        annotations.push((format!("label.{k}"), v.to_string()));
    }
    let mut cfg = ContainerConfig {
        rootfs: RootfsSource::Layers(LayerStack {
            lower,
            upper: Some(fsd.join("upper")),
            work: Some(fsd.join("work")),
            mode: RootfsMode::Auto,
            volatile: false,
        }),
        args,
        env,
        working_dir: a.workdir.clone().or(ic.working_dir.clone()).filter(|w| !w.is_empty()),
        user: a.user.clone().or(ic.user.clone()).filter(|u| !u.is_empty()),
        hostname: a.hostname.clone().or_else(|| Some(id.chars().take(12).collect())),
        mounts: parse_mounts(ctx, a)?,
        network,
        publish,
        network_aliases: a.network_alias.clone(),
        ip: a.ip.clone(),
        name: None,
        dns: a.dns.clone(),
        dns_search: a.dns_search.clone(),
        dns_options: a.dns_option.clone(),
        extra_hosts: a
            .add_host
            .iter()
            .filter_map(|h| h.split_once(':').map(|(x, y)| (x.to_string(), y.to_string())))
            .collect(),
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        read_only: a.read_only,
        memory,
        pids_limit: a.pids_limit,
        init: a.init,
        tty: a.tty,
        interactive: a.interactive,
        stop_signal: a.stop_signal.clone().or(ic.stop_signal.clone()),
        stop_timeout: a.stop_timeout.map(|t| t.max(0) as u64),
        healthcheck,
        auto_remove: a.rm && a.detach,
        annotations,
        ..ContainerConfig::default()
    };
    crate::cmd::run_ext::apply(ctx, a, &mut cfg)?;
    Ok(cfg)
}

fn runtime_options(a: &RunArgs) -> RuntimeOptions {
    let mut o = RuntimeOptions::default();
    if let Some(r) = &a.runtime {
        o.backend = berth_runtime::Backend::External(r.clone());
    }
    o
}

/// `create`: record a container; prints its ID.
pub fn create(ctx: &Ctx, a: &RunArgs) -> Result<i32> {
    let id = create_record(ctx, a)?;
    println!("{id}");
    Ok(0)
}

fn create_record(ctx: &Ctx, a: &RunArgs) -> Result<String> {
    let image = a.image_and_command.first().ok_or_else(|| exit_with(125, "\"run\" requires at least 1 argument"))?;
    let platform = a.platform.as_deref().map(Platform::parse).transpose().map_err(|e| exit_with(125, e.to_string()))?;
    // Held until the container record (which roots the image's layers) is written, so that a
    // concurrent prune cannot collect the image between the lookup and the record.
    let _gc = ctx.store()?.gc_guard()?;
    let (img, image_name) = image_for_run(ctx, image, &a.pull, platform.as_ref(), a.quiet)?;
    // A foreign image runs under QEMU user emulation: check for an emulator before creating
    // anything, naming the platform and how to install one.
    let image_platform = platform_of(&img);
    if let Some(p) = &platform
        && !p.matches(&image_platform)
    {
        return Err(exit_with(
            125,
            format!(
                "image with reference {image} was found but its platform ({image_platform}) does not match the specified platform ({p})"
            ),
        ));
    }
    if platform.is_none() && !Platform::host().matches(&image_platform) {
        eprintln!(
            "WARNING: The requested image's platform ({image_platform}) does not match the detected host platform ({}) and no specific platform was requested",
            Platform::host()
        );
    }
    berth_runtime::emulation::check_runnable(&image_platform)
        .map_err(|e| crate::errors::hinted_exit(125, e.to_string(), e.hint()))?;
    let c = containers(ctx)?;
    let existing = c.list()?;
    let taken: HashSet<String> = existing.iter().filter_map(|i| i.record.name.clone()).collect();
    let name = match &a.name {
        Some(n) => {
            let n = n.trim_start_matches('/').to_string();
            if let Some(other) = existing.iter().find(|i| i.record.name.as_deref() == Some(n.as_str())) {
                return Err(exit_with(
                    125,
                    format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                        other.record.id
                    ),
                ));
            }
            n
        }
        None => random_name(&taken),
    };
    let id = berth_runtime::util::random_id();
    let mut cfg = container_config(ctx, a, &id, &img, &image_name)?;
    cfg.name = Some(name.clone());
    std::fs::create_dir_all(fs_dir(ctx, &id)?)?;
    if let Some(f) = &a.ext.cidfile {
        crate::cmd::run_ext::write_cidfile(f, &id)?;
    }
    c.create(&id, Some(&name), &cfg, &runtime_options(a)).map_err(|e| exit_with(125, e.to_string()))?;
    event(ctx, "create", &id);
    Ok(id)
}

fn runtime_exit(e: berth_runtime::Error) -> anyhow::Error {
    let code = e.exit_code();
    exit_with(code.clamp(0, 255) as u8, e.to_string())
}

/// `run`: create + start (attached, or detached with `-d`).
pub fn run(ctx: &Ctx, a: &RunArgs) -> Result<i32> {
    let id = create_record(ctx, a)?;
    let c = containers(ctx)?;
    if a.detach {
        c.start_detached(&id).map_err(runtime_exit)?;
        event(ctx, "start", &id);
        println!("{id}");
        return Ok(0);
    }
    event(ctx, "start", &id);
    let outcome = c.start_attached(&id, Stdio::Inherit);
    event(ctx, "die", &id);
    if a.rm {
        let _ = c.remove(&id, true);
        let _ = std::fs::remove_dir_all(fs_dir(ctx, &id)?);
    }
    let outcome = outcome.map_err(runtime_exit)?;
    Ok(outcome.exit_code)
}

pub fn start(ctx: &Ctx, a: &StartArgs) -> Result<i32> {
    let c = containers(ctx)?;
    let mut code = 0;
    for name in &a.containers {
        let info = find(ctx, name)?;
        if a.attach || a.interactive {
            let o = c.start_attached(&info.record.id, Stdio::Inherit).map_err(runtime_exit)?;
            code = o.exit_code;
        } else {
            c.start_detached(&info.record.id).map_err(runtime_exit)?;
            crate::cmd::events::container(ctx, "start", &info);
            println!("{name}");
        }
    }
    Ok(code)
}

fn status_text(info: &ContainerInfo, now: i64) -> String {
    let st = &info.state;
    let health = st.health.as_ref().map(|h| format!(" ({})", h.status)).unwrap_or_default();
    match st.status {
        Status::Created => "Created".into(),
        Status::Running if crate::cmd::ctr_ops::is_paused(info) => format!(
            "Up {} (Paused)",
            units::human_duration(std::time::Duration::from_secs((now - unix_of(Some(&st.started_at))).max(0) as u64))
        ),
        Status::Running => format!(
            "Up {}{health}",
            units::human_duration(std::time::Duration::from_secs((now - unix_of(Some(&st.started_at))).max(0) as u64))
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            st.exit_code,
            units::human_duration(std::time::Duration::from_secs((now - unix_of(Some(&st.finished_at))).max(0) as u64))
        ),
    }
}

fn command_text(info: &ContainerInfo, no_trunc: bool) -> String {
    let args: Vec<String> = annotation(&info.record.config, ANN_CMD)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_else(|| info.record.config.args.clone());
    let s = args.join(" ");
    let s = if no_trunc { s } else { ellipsis(&s, 20) };
    format!("\"{s}\"")
}

fn ellipsis(s: &str, max: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= max {
        return s.to_string();
    }
    let mut out: String = chars.iter().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub fn ps(ctx: &Ctx, a: &PsArgs) -> Result<i32> {
    let c = containers(ctx)?;
    let mut list = c.list()?;
    list.sort_by(|x, y| y.record.created.cmp(&x.record.created));
    let filters = crate::cmd::images::Filters::parse(
        &a.filter,
        &[
            "status", "name", "id", "ancestor", "label", "exited", "health", "before", "since", "volume", "publish",
            "expose",
        ],
    )?;
    // before/since: containers created before/after the named one (docker's order).
    let created_of = |key: &str| -> Result<Vec<String>> {
        filters.get(key).iter().map(|n| Ok(find(ctx, n)?.record.created.clone())).collect()
    };
    let (before, since) = (created_of("before")?, created_of("since")?);
    let volumes_root = ctx.store()?.root().join("volumes");
    let all =
        a.all || a.last.is_some() || a.latest || !filters.get("status").is_empty() || !filters.get("exited").is_empty();
    let now = now_unix();
    let mut rows = Vec::new();
    let limit = if a.latest { Some(1) } else { a.last };
    for info in list.iter().take(limit.unwrap_or(usize::MAX)) {
        if !all && info.state.status != Status::Running {
            continue;
        }
        let name = info.record.name.clone().unwrap_or_default();
        let image = annotation(&info.record.config, ANN_IMAGE).unwrap_or("").to_string();
        let keep = filters.get("status").iter().all(|s| *s == info.state.status.as_str())
            && filters.get("name").iter().all(|n| name.contains(n))
            && filters.get("id").iter().all(|i| info.record.id.starts_with(i))
            && filters.get("ancestor").iter().all(|x| image == *x || image.starts_with(&format!("{x}:")))
            && filters
                .get("exited")
                .iter()
                .all(|x| info.state.status == Status::Exited && x.parse::<i32>().ok() == Some(info.state.exit_code))
            && filters.get("health").iter().all(|h| info.state.health.as_ref().map(|x| x.status.as_str()) == Some(*h))
            && before.iter().all(|b| info.record.created < *b)
            && since.iter().all(|b| info.record.created > *b)
            && filters.get("volume").iter().all(|v| {
                info.record.config.mounts.iter().any(|m| match m {
                    MountSpec::Bind { source, target, .. } => {
                        target == v
                            || source == Path::new(v)
                            || crate::cmd::volumes::volume_of(&volumes_root, source).as_deref() == Some(*v)
                    }
                    MountSpec::Tmpfs { target, .. } => target == v,
                })
            })
            // Containers share the host's network: none publishes or exposes a port of its own.
            && filters.get("publish").is_empty()
            && filters.get("expose").is_empty()
            && filters.get("label").iter().all(|l| {
                let (k, v) = l.split_once('=').map(|(k, v)| (k, Some(v))).unwrap_or((l, None));
                annotation(&info.record.config, &format!("label.{k}")).is_some_and(|x| v.is_none_or(|v| v == x))
            });
        if !keep {
            continue;
        }
        let created = unix_of(Some(&info.record.created));
        let id = if a.no_trunc { info.record.id.clone() } else { info.record.id.chars().take(12).collect() };
        rows.push(json!({
            "ID": id,
            "Image": image,
            "Command": command_text(info, a.no_trunc),
            "CreatedAt": units::created_at(created),
            "RunningFor": units::created_since(created, now),
            "Status": status_text(info, now),
            "State": if crate::cmd::ctr_ops::is_paused(info) { "paused" } else { info.state.status.as_str() },
            "Ports": super::network::ports_text(info),
            "Names": name,
            "Labels": "",
            "Mounts": "",
            "Networks": info.record.config.network.docker_name(),
            "Size": if a.size { container_size(info) } else { String::new() },
        }));
    }
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for r in &rows {
            writeln!(out, "{}", r["ID"].as_str().unwrap_or(""))?;
        }
        return Ok(0);
    }
    berth_output::write_list(
        &mut out,
        a.format.as_deref(),
        if a.size {
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
        } else {
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
        },
        &[
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("RunningFor", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("Status", "STATUS"),
            ("State", "STATE"),
            ("Ports", "PORTS"),
            ("Names", "NAMES"),
            ("Networks", "NETWORKS"),
            ("Size", "SIZE"),
        ],
        &rows,
    )?;
    Ok(0)
}

pub fn logs(ctx: &Ctx, a: &LogsArgs) -> Result<i32> {
    let info = find(ctx, &a.container)?;
    let c = containers(ctx)?;
    let tail = match a.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| exit_with(1, format!("invalid value for --tail: {n:?}")))?),
    };
    let since = a
        .since
        .as_deref()
        .map(|s| units::parse_timestamp(s, now_unix()))
        .transpose()
        .map_err(|e| exit_with(1, e.to_string()))?;
    let until = a
        .until
        .as_deref()
        .map(|s| units::parse_timestamp(s, now_unix()))
        .transpose()
        .map_err(|e| exit_with(1, e.to_string()))?;
    let mut err: Option<std::io::Error> = None;
    c.logs(&info.record.id, &LogOptions { follow: a.follow, tail }, &mut |e| {
        let t = unix_of(Some(&e.time));
        if since.is_some_and(|s| t < s) || until.is_some_and(|u| t > u) {
            return;
        }
        let line = if a.timestamps { format!("{} {}", e.time, e.log) } else { e.log.clone() };
        let r = if e.stream == "stderr" {
            std::io::stderr().write_all(line.as_bytes())
        } else {
            let mut o = std::io::stdout().lock();
            o.write_all(line.as_bytes()).and_then(|_| o.flush())
        };
        if let Err(x) = r
            && err.is_none()
        {
            err = Some(x);
        }
    })?;
    Ok(0)
}

pub fn stop(ctx: &Ctx, a: &StopArgs) -> Result<i32> {
    let c = containers(ctx)?;
    let mut failed = false;
    for name in &a.containers {
        match find(ctx, name) {
            Ok(info) => {
                crate::cmd::ctr_ops::thaw_if_paused(&info);
                let r = match &a.signal {
                    Some(sig) => c.kill(&info.record.id, sig).map(|_| ()),
                    None => c.stop(&info.record.id, a.time.map(|t| std::time::Duration::from_secs(t.max(0) as u64))),
                };
                if r.is_ok() {
                    crate::cmd::events::container(ctx, "stop", &info);
                }
                match r {
                    Ok(()) => println!("{name}"),
                    Err(e) => {
                        failed = true;
                        eprintln!("Error: {e}");
                    }
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("Error: {e}");
            }
        }
    }
    if failed { Err(exit_with(1, "")) } else { Ok(0) }
}

pub fn kill(ctx: &Ctx, a: &KillArgs) -> Result<i32> {
    let c = containers(ctx)?;
    let mut failed = false;
    for name in &a.containers {
        let r = find(ctx, name).and_then(|info| {
            if info.state.status != Status::Running {
                return Err(exit_with(
                    1,
                    format!("cannot kill container: {name}: container {} is not running", info.record.id),
                ));
            }
            // A frozen process never handles the signal: thaw it first (docker does for kill).
            crate::cmd::ctr_ops::thaw_if_paused(&info);
            c.kill(&info.record.id, &a.signal).map_err(|e| anyhow!("{e}"))?;
            crate::cmd::events::container(ctx, "kill", &info);
            Ok(())
        });
        match r {
            Ok(()) => println!("{name}"),
            Err(e) => {
                failed = true;
                eprintln!("Error: {}", crate::errors::chain_text(&e));
            }
        }
    }
    if failed { Err(exit_with(1, "")) } else { Ok(0) }
}

pub fn wait(ctx: &Ctx, a: &WaitArgs) -> Result<i32> {
    let c = containers(ctx)?;
    for name in &a.containers {
        let info = find(ctx, name)?;
        let code = match a.condition.as_deref() {
            None | Some("not-running") => c.wait(&info.record.id)?,
            // The next exit from now: a stopped container must start and exit again.
            Some("next-exit") => loop {
                let now = c.inspect(&info.record.id)?;
                if now.state.finished_at != info.state.finished_at && now.state.status != Status::Running {
                    break now.state.exit_code;
                }
                if now.state.status == Status::Running {
                    break c.wait(&info.record.id)?;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            },
            // Until the record is gone; the last exit code seen.
            _ => {
                let mut last = info.state.exit_code;
                loop {
                    match c.inspect(&info.record.id) {
                        Ok(i) => last = i.state.exit_code,
                        Err(berth_runtime::Error::NoSuchContainer { .. }) => break last,
                        Err(e) => return Err(e.into()),
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        };
        println!("{code}");
    }
    Ok(0)
}

pub fn rm(ctx: &Ctx, a: &RmArgs) -> Result<i32> {
    let c = containers(ctx)?;
    let mut failed = false;
    for name in &a.containers {
        let r = find(ctx, name).and_then(|info| {
            if info.state.status == Status::Running && !a.force {
                return Err(exit_with(
                    1,
                    format!("cannot remove container \"/{}\": container is running: stop the container before removing or force remove", info.record.name.clone().unwrap_or_default()),
                ));
            }
            crate::cmd::ctr_ops::thaw_if_paused(&info);
            c.remove(&info.record.id, a.force).map_err(|e| anyhow!("{e}"))?;
            let _ = std::fs::remove_dir_all(fs_dir(ctx, &info.record.id)?);
            if a.volumes {
                crate::cmd::volumes::remove_anonymous(ctx, &info.record.config.mounts)?;
            }
            crate::cmd::events::container(ctx, "destroy", &info);
            Ok(())
        });
        match r {
            Ok(()) => println!("{name}"),
            Err(e) => {
                failed = true;
                eprintln!("Error: {}", crate::errors::chain_text(&e));
            }
        }
    }
    if failed { Err(exit_with(1, "")) } else { Ok(0) }
}

pub fn prune(ctx: &Ctx, a: &ContainerPruneArgs) -> Result<i32> {
    let filters = crate::cmd::images::Filters::parse(&a.filter, &["until", "label"])?;
    if !a.force && !crate::cmd::confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let until = filters
        .get("until")
        .first()
        .map(|v| units::parse_timestamp(v, now_unix()))
        .transpose()
        .map_err(|e| exit_with(1, e.to_string()))?;
    let c = containers(ctx)?;
    let mut removed = Vec::new();
    let mut bytes = 0u64;
    for info in c.list()? {
        if info.state.status == Status::Running {
            continue;
        }
        if until.is_some_and(|u| unix_of(Some(&info.record.created)) >= u) {
            continue;
        }
        let fsd = fs_dir(ctx, &info.record.id)?;
        bytes += berth_build::cache::dir_size(&fsd);
        c.remove(&info.record.id, false)?;
        let _ = std::fs::remove_dir_all(&fsd);
        removed.push(info.record.id.clone());
    }
    let mut out = std::io::stdout().lock();
    if !removed.is_empty() {
        writeln!(out, "Deleted Containers:")?;
        for r in &removed {
            writeln!(out, "{r}")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Total reclaimed space: {}", units::human_size(bytes as f64))?;
    Ok(0)
}

pub fn exec(ctx: &Ctx, a: &ExecArgs) -> Result<i32> {
    let (name, cmd) =
        a.container_and_command.split_first().ok_or_else(|| exit_with(125, "exec needs a container and a command"))?;
    if a.detach_keys.is_some() && !a.detach {
        return Err(exit_with(
            125,
            "--detach-keys is not supported: berth's attached exec has no detach sequence (use -d to run in the background)",
        ));
    }
    if a.detach {
        return crate::cmd::ctr_ext::exec_detached(ctx, a);
    }
    let info = find(ctx, name).map_err(|e| exit_with(1, crate::errors::chain_text(&e)))?;
    if info.state.status != Status::Running {
        return Err(exit_with(1, format!("container {} is not running", info.record.id)));
    }
    let mut from_files = Vec::new();
    for f in &a.env_file {
        from_files.extend(parse_env_file(f)?);
    }
    let env: Vec<String> = from_files
        .iter()
        .chain(a.env.iter())
        .filter_map(
            |e| if e.contains('=') { Some(e.clone()) } else { std::env::var(e).ok().map(|v| format!("{e}={v}")) },
        )
        .collect();
    let ex = ExecConfig {
        args: cmd.to_vec(),
        env,
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
        tty: a.tty,
        interactive: a.interactive,
        privileged: a.privileged,
    };
    let c = containers(ctx)?;
    let o = c.exec(&info.record.id, &ex, Stdio::Inherit).map_err(runtime_exit)?;
    Ok(o.exit_code)
}

/// Docker-shaped `inspect` JSON of a container.
pub fn inspect_json(info: &ContainerInfo) -> Value {
    let cfg = &info.record.config;
    let st = &info.state;
    let paused = crate::cmd::ctr_ops::is_paused(info);
    let health = st.health.as_ref().map(|h| serde_json::to_value(h).unwrap_or(Value::Null));
    let mut state = json!({
        "Status": if paused { "paused" } else { st.status.as_str() },
        "Running": st.status == Status::Running,
        "Paused": paused,
        "Restarting": false,
        "OOMKilled": st.oom_killed,
        "Dead": false,
        "Pid": st.pid,
        "ExitCode": st.exit_code,
        "Error": st.error,
        "StartedAt": st.started_at,
        "FinishedAt": st.finished_at,
    });
    if let (Some(h), Some(obj)) = (health, state.as_object_mut()) {
        obj.insert("Health".into(), h);
    }
    let labels: BTreeMap<String, String> = cfg
        .annotations
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("label.").map(|k| (k.to_string(), v.clone())))
        .collect();
    json!({
        "Id": info.record.id,
        "Created": info.record.created,
        "Path": cfg.args.first().cloned().unwrap_or_default(),
        "Args": cfg.args.iter().skip(1).cloned().collect::<Vec<_>>(),
        "State": state,
        "Image": annotation(cfg, ANN_IMAGE_ID).unwrap_or(""),
        "Name": format!("/{}", info.record.name.clone().unwrap_or_default()),
        "RestartCount": st.restart_count,
        "Driver": "overlay",
        "HostConfig": {
            "RestartPolicy": {
                "Name": if cfg.restart_policy.name.is_empty() { "no" } else { cfg.restart_policy.name.as_str() },
                "MaximumRetryCount": cfg.restart_policy.maximum_retry_count,
            },
            "CpuShares": cfg.cpu_shares.unwrap_or(0),
            "NanoCpus": cfg.cpu_quota.zip(cfg.cpu_period).map(|(q, p)| q * 1000 / p.max(1) as i64 * 1_000_000).unwrap_or(0),
            "CpusetCpus": cfg.cpuset_cpus.clone().unwrap_or_default(),
            "MemorySwap": cfg.memory_swap.unwrap_or(0),
            "ShmSize": cfg.shm_size.unwrap_or(64 << 20),
            "GroupAdd": cfg.group_add,
            "Sysctls": cfg.sysctls.iter().cloned().collect::<BTreeMap<String, String>>(),
            "SecurityOpt": if cfg.no_new_privileges { vec!["no-new-privileges"] } else { Vec::new() },
            "Ulimits": cfg.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>(),
            "LogConfig": {"Type": "json-file", "Config": {}},
            "NetworkMode": cfg.network.docker_name(),
            "PortBindings": port_bindings(cfg),
            "Privileged": cfg.privileged,
            "ReadonlyRootfs": cfg.read_only,
            "CapAdd": cfg.cap_add,
            "CapDrop": cfg.cap_drop,
            "Memory": cfg.memory.unwrap_or(0),
            "PidsLimit": cfg.pids_limit,
            "Init": cfg.init,
            "AutoRemove": cfg.auto_remove,
        },
        "NetworkSettings": super::network::settings_json(info),
        "Mounts": cfg.mounts.iter().map(|m| match m {
            MountSpec::Bind { source, target, readonly } => json!({"Type": "bind", "Source": source, "Destination": target, "RW": !readonly}),
            MountSpec::Tmpfs { target, .. } => json!({"Type": "tmpfs", "Source": "", "Destination": target, "RW": true}),
        }).collect::<Vec<_>>(),
        "Config": {
            "Healthcheck": cfg.healthcheck.as_ref().map(|h| json!({
                "Test": h.test, "Interval": h.interval, "Timeout": h.timeout,
                "StartPeriod": h.start_period, "StartInterval": h.start_interval, "Retries": h.retries,
            })),
            "Hostname": cfg.hostname.clone().unwrap_or_default(),
            "User": cfg.user.clone().unwrap_or_default(),
            "Tty": cfg.tty,
            "OpenStdin": cfg.interactive,
            "Env": cfg.env,
            "Cmd": cfg.args,
            "Image": annotation(cfg, ANN_IMAGE).unwrap_or(""),
            "WorkingDir": cfg.working_dir.clone().unwrap_or_default(),
            "Labels": labels,
            "StopSignal": cfg.stop_signal.clone().unwrap_or_else(|| "SIGTERM".into()),
        },
    })
}

pub fn healthcheck_run(ctx: &Ctx, a: &HealthcheckRunArgs) -> Result<i32> {
    let info = find(ctx, &a.container)?;
    let c = containers(ctx)?;
    let r = c.health_check(&info.record.id).map_err(|e| exit_with(1, e.to_string()))?;
    print!("{}", r.output);
    if !r.output.ends_with('\n') && !r.output.is_empty() {
        println!();
    }
    let state = c.inspect(&info.record.id)?.state;
    if let Some(h) = state.health {
        eprintln!("health: {}", h.status);
    }
    Ok(if r.exit_code == 0 { 0 } else { 1 })
}

/// Mounts a container's filesystem (image layers + its changes) read-only.
pub(crate) fn mount_container_fs(
    ctx: &Ctx,
    info: &ContainerInfo,
) -> Result<(berth_runtime::MountedRootfs, tempfile::TempDir)> {
    let RootfsSource::Layers(st) = &info.record.config.rootfs else {
        return Err(anyhow!("container {} has no layered root filesystem", info.record.id));
    };
    let mut lower = st.lower.clone();
    if let Some(u) = &st.upper
        && u.is_dir()
    {
        lower.push(u.clone());
    }
    let target = tempfile::Builder::new()
        .prefix(&format!("{}berth-export-", berth_store::owner_prefix()))
        .tempdir_in(ctx.store()?.root().join("tmp"))?;
    let m = berth_runtime::mount_rootfs(
        &RootfsSource::Layers(LayerStack { lower, upper: None, work: None, mode: RootfsMode::Auto, volatile: false }),
        target.path(),
    )?;
    Ok((m, target))
}

pub fn export(ctx: &Ctx, a: &ExportArgs) -> Result<i32> {
    use std::io::IsTerminal;
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(exit_with(1, "cowardly refusing to save to a terminal. Use the -o flag or redirect"));
    }
    let info = find(ctx, &a.container)?;
    let (m, _t) = mount_container_fs(ctx, &info)?;
    let res = (|| -> Result<()> {
        match &a.output {
            Some(p) => {
                let tmp = p.with_extension("berth-tmp");
                let f = std::io::BufWriter::new(
                    std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
                );
                berth_archive::write_tree(m.path(), f, &berth_archive::TreeOptions::default())?;
                std::fs::rename(&tmp, p)?;
            }
            None => {
                let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
                let (mut w, _) = berth_archive::write_tree(m.path(), out, &berth_archive::TreeOptions::default())?;
                w.flush()?;
            }
        }
        Ok(())
    })();
    m.unmount()?;
    res?;
    Ok(0)
}

/// Stores a layer blob (any compression) in the store, unpacking it as a snapshot; returns its
/// descriptor and diffID.
/// `shown` names the input in errors (the user's file or URL, not our temp copy of it).
fn ingest_layer(store: &Store, path: &Path, shown: &str) -> Result<(Descriptor, berth_types::Digest)> {
    let f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let m = berth_transport::unpack::ingest_layer(store, std::io::BufReader::new(f), &Default::default())
        .with_context(|| format!("reading {shown} as a layer (a tar, plain or compressed)"))?;
    Ok((Descriptor::new(media::layer_type(false, m.compression), m.compressed, m.compressed_size), m.diff_id))
}

/// Writes config + manifest for a new image and names it.
fn write_image(
    store: &Store,
    config: &ImageConfig,
    layers: Vec<Descriptor>,
    name: Option<&str>,
) -> Result<berth_types::Digest> {
    let cb = serde_json::to_vec(config)?;
    let cd = store.put_blob_bytes(&cb, None)?;
    let m = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::new(media::OCI_CONFIG, cd.clone(), cb.len() as u64),
        layers,
        subject: None,
        annotations: None,
    };
    let mb = serde_json::to_vec(&m)?;
    let md = store.put_blob_bytes(&mb, None)?;
    let desc = Descriptor::new(media::OCI_MANIFEST, md, mb.len() as u64);
    match name {
        Some(n) => {
            let r = Reference::parse_normalized(n).map_err(|e| exit_with(1, e.to_string()))?.with_default_tag();
            store.set_ref(&r, desc)?;
        }
        None => {
            let now = berth_store::now_rfc3339();
            store.update_refs(|t| {
                t.keep_dangling(&desc, &now);
                Ok(())
            })?;
        }
    }
    Ok(cd)
}

pub fn import(ctx: &Ctx, a: &ImportArgs) -> Result<i32> {
    let store = ctx.store()?;
    let _gc = store.gc_guard()?;
    let tmp = tempfile::Builder::new().prefix(&berth_store::owner_prefix()).tempfile_in(store.root().join("tmp"))?;
    let src = a.source.as_str();
    if src == "-" {
        let mut f = std::fs::File::create(tmp.path())?;
        std::io::copy(&mut std::io::stdin().lock(), &mut f)?;
    } else if src.starts_with("http://") || src.starts_with("https://") {
        // berth's own HTTP stack (proxies, certs.d, insecure settings, redirects), streamed to
        // the temp file.
        let client = crate::cmd::registry::client(ctx)?;
        let mut f = std::fs::OpenOptions::new().write(true).open(tmp.path())?;
        ctx.block_on(client.download(src, &mut f, u64::MAX))?
            .map_err(|e| exit_with(1, format!("failed to download {src}: {e}")))?;
    } else {
        std::fs::copy(src, tmp.path()).map_err(|e| exit_with(1, format!("open {src}: {e}")))?;
    }
    // xz and bzip2 tarballs (which Docker's import takes) become plain tars first, decoded
    // in-process; gzip and zstd are layer compressions the store takes as they are.
    let mut head = [0u8; berth_archive::compress::MAGIC_LEN];
    let n = std::io::Read::read(&mut std::fs::File::open(tmp.path())?, &mut head)?;
    let kind = berth_archive::ArchiveCompression::detect(head.get(..n).unwrap_or_default());
    let plain = if matches!(kind, berth_archive::ArchiveCompression::Xz | berth_archive::ArchiveCompression::Bzip2) {
        let out =
            tempfile::Builder::new().prefix(&berth_store::owner_prefix()).tempfile_in(store.root().join("tmp"))?;
        let (_, mut dec) = berth_archive::decode_any(std::fs::File::open(tmp.path())?)?;
        std::io::copy(&mut dec, &mut std::fs::File::create(out.path())?)
            .with_context(|| format!("reading {src} ({})", kind.name()))?;
        Some(out)
    } else {
        None
    };
    let (layer, diff_id) = ingest_layer(store, plain.as_ref().map_or(tmp.path(), |p| p.path()), src)?;
    let platform = match &a.platform {
        Some(p) => Platform::parse(p).map_err(|e| exit_with(1, e.to_string()))?,
        None => Platform::host(),
    };
    let now = berth_store::now_rfc3339();
    let mut config = ImageConfig {
        created: Some(now.clone()),
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        config: Some(berth_types::ContainerConfig::default()),
        rootfs: RootFs { kind: "layers".into(), diff_ids: vec![diff_id] },
        history: vec![History {
            created: Some(now),
            created_by: None,
            comment: Some(a.message.clone().unwrap_or_else(|| format!("Imported from {src}"))),
            ..Default::default()
        }],
        ..Default::default()
    };
    berth_build::apply_changes(&mut config, &a.change).map_err(|e| exit_with(1, e.to_string()))?;
    let id = write_image(store, &config, vec![layer], a.reference.as_deref())?;
    println!("{id}");
    Ok(0)
}

pub fn commit(ctx: &Ctx, a: &CommitArgs) -> Result<i32> {
    let store = ctx.store()?;
    let _gc = store.gc_guard()?;
    let info = find(ctx, &a.container)?;
    let image_id = annotation(&info.record.config, ANN_IMAGE_ID).ok_or_else(|| anyhow!("container has no image"))?;
    let rec = store.find_image(image_id).map_err(|e| exit_with(1, format!("image of container: {e}")))?;
    let base = &rec.image;
    let RootfsSource::Layers(st) = &info.record.config.rootfs else {
        return Err(anyhow!("container {} has no layered root filesystem", info.record.id));
    };
    let mut config = base.config.clone();
    config.extra.clear();
    let now = berth_store::now_rfc3339();
    config.created = Some(now.clone());
    if let Some(au) = &a.author {
        config.author = Some(au.clone());
    }
    let mut layers: Vec<Descriptor> = base
        .manifest
        .layers
        .iter()
        .map(|l| {
            let mut d = l.clone();
            if let media::Kind::Layer(c) = media::kind(&d.media_type) {
                d.media_type = media::layer_type(false, c).to_string();
            }
            d
        })
        .collect();
    // The container's changes: its overlay upper directory, as a layer.
    let mut history = History {
        created: Some(now),
        created_by: Some(
            annotation(&info.record.config, ANN_CMD)
                .and_then(|s| serde_json::from_str::<Vec<String>>(s).ok())
                .map(|a| a.join(" "))
                .unwrap_or_default(),
        ),
        comment: a.message.clone(),
        ..Default::default()
    };
    match st.upper.as_ref().filter(|u| u.is_dir()) {
        Some(upper) => {
            let builder = berth_archive::overlay_diff(upper, &berth_archive::TreeOptions::default())?;
            if builder.is_empty() {
                history.empty_layer = true;
            } else {
                let tmp = tempfile::Builder::new()
                    .prefix(&berth_store::owner_prefix())
                    .tempfile_in(store.root().join("tmp"))?;
                {
                    let mut tw =
                        berth_archive::TarWriter::new(std::io::BufWriter::new(std::fs::File::create(tmp.path())?));
                    builder.write(&mut tw)?;
                    tw.finish()?.flush()?;
                }
                let (d, diff) = ingest_layer(store, tmp.path(), "the container's changes")?;
                layers.push(d);
                config.rootfs.diff_ids.push(diff);
            }
        }
        None => history.empty_layer = true,
    }
    config.history.push(history);
    berth_build::apply_changes(&mut config, &a.change).map_err(|e| exit_with(1, e.to_string()))?;
    let id = write_image(store, &config, layers, a.reference.as_deref())?;
    let _ = Compression::None;
    println!("{id}");
    Ok(0)
}

/// `HostConfig.PortBindings` as Docker shows it.
fn port_bindings(cfg: &ContainerConfig) -> Value {
    let mut m = serde_json::Map::new();
    for p in &cfg.publish {
        let key = format!("{}/{}", p.container_port, p.proto.as_str());
        let b = json!({"HostIp": p.host_ip, "HostPort": if p.host_port == 0 { String::new() } else { p.host_port.to_string() }});
        match m.get_mut(&key) {
            Some(Value::Array(v)) => v.push(b),
            _ => {
                m.insert(key, json!([b]));
            }
        }
    }
    Value::Object(m)
}
