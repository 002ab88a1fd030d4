//! `volume create|ls|inspect|rm|prune` for the named volumes `run -v NAME:/dst` creates
//! (`<root>/volumes/<name>/_data`), `rm -v`'s anonymous volumes, and `system prune`.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_output::units;
use berth_runtime::MountSpec;
use serde_json::json;

use crate::cli::{
    SystemPruneArgs, VolumeCmd, VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs,
};
use crate::ctx::Ctx;
use crate::errors::exit_with;

pub fn dispatch(ctx: &Ctx, c: VolumeCmd) -> Result<i32> {
    match c {
        VolumeCmd::Create(a) => create(ctx, &a),
        VolumeCmd::Inspect(a) => inspect(ctx, &a),
        VolumeCmd::Ls(a) => ls(ctx, &a),
        VolumeCmd::Prune(a) => prune(ctx, &a),
        VolumeCmd::Rm(a) => rm(ctx, &a),
    }
}

fn volumes_dir(ctx: &Ctx) -> Result<PathBuf> {
    Ok(ctx.store()?.root().join("volumes"))
}

/// Anonymous volumes are named by a random 64-hex-digit ID, as docker's.
pub fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn valid_name(n: &str) -> bool {
    crate::cmd::ctr_ext::valid_name(n)
}

/// Volume names in the store.
fn names(ctx: &Ctx) -> Result<Vec<String>> {
    let dir = volumes_dir(ctx)?;
    let mut v: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .flatten()
            .filter(|e| e.path().join("_data").is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| dir.display().to_string()),
    };
    v.sort();
    Ok(v)
}

/// Volume names that containers (any state) mount, with the containers' names.
pub fn in_use(ctx: &Ctx) -> Result<HashSet<String>> {
    let dir = volumes_dir(ctx)?;
    let mut used = HashSet::new();
    for info in crate::cmd::containers::containers(ctx)?.list()? {
        for m in &info.record.config.mounts {
            if let MountSpec::Bind { source, .. } = m
                && let Some(n) = volume_of(&dir, source)
            {
                used.insert(n);
            }
        }
    }
    Ok(used)
}

/// The volume a bind source is (`<volumes>/<name>/_data`), if it is one.
pub fn volume_of(volumes: &Path, source: &Path) -> Option<String> {
    let rel = source.strip_prefix(volumes).ok()?;
    let mut c = rel.components();
    let name = c.next()?.as_os_str().to_string_lossy().into_owned();
    (c.next()?.as_os_str() == "_data" && c.next().is_none()).then_some(name)
}

fn created_at(p: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let t = std::fs::metadata(p).map(|m| m.mtime()).unwrap_or(0);
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn labels_path(ctx: &Ctx, name: &str) -> Result<PathBuf> {
    Ok(volumes_dir(ctx)?.join(name).join("labels.json"))
}

fn volume_json(ctx: &Ctx, name: &str) -> Result<serde_json::Value> {
    let dir = volumes_dir(ctx)?.join(name);
    let labels: serde_json::Value = std::fs::read(labels_path(ctx, name)?)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    Ok(json!({
        "CreatedAt": created_at(&dir),
        "Driver": "local",
        "Labels": labels,
        "Mountpoint": dir.join("_data").display().to_string(),
        "Name": name,
        "Options": null,
        "Scope": "local",
    }))
}

pub fn create(ctx: &Ctx, a: &VolumeCreateArgs) -> Result<i32> {
    if a.driver != "local" {
        return Err(exit_with(
            1,
            format!("volume driver {:?} is not supported: berth has only the local driver", a.driver),
        ));
    }
    if !a.opt.is_empty() {
        return Err(exit_with(1, "volume options (-o) are not supported: berth's local volumes are plain directories"));
    }
    let name = a.name.clone().unwrap_or_else(berth_runtime::util::random_id);
    if !valid_name(&name) {
        return Err(exit_with(1, format!("invalid volume name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")));
    }
    let data = volumes_dir(ctx)?.join(&name).join("_data");
    std::fs::create_dir_all(&data).with_context(|| data.display().to_string())?;
    if !a.label.is_empty() {
        let map: serde_json::Map<String, serde_json::Value> = a
            .label
            .iter()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                (k.to_string(), json!(v))
            })
            .collect();
        std::fs::write(labels_path(ctx, &name)?, serde_json::to_vec(&map)?)?;
    }
    println!("{name}");
    Ok(0)
}

pub fn inspect(ctx: &Ctx, a: &VolumeInspectArgs) -> Result<i32> {
    let all = names(ctx)?;
    let mut items = Vec::new();
    let mut missing = Vec::new();
    for n in &a.volumes {
        if all.contains(n) {
            items.push(volume_json(ctx, n)?);
        } else {
            missing.push(n.clone());
        }
    }
    let mut out = std::io::stdout().lock();
    if !items.is_empty() {
        berth_output::write_inspect(&mut out, a.format.as_deref(), &items)?;
    }
    if let Some(m) = missing.first() {
        return Err(exit_with(1, format!("get {m}: no such volume")));
    }
    Ok(0)
}

pub fn ls(ctx: &Ctx, a: &VolumeLsArgs) -> Result<i32> {
    let filters = crate::cmd::images::Filters::parse(&a.filter, &["dangling", "name", "driver", "label"])?;
    let used = in_use(ctx)?;
    let mut rows = Vec::new();
    for n in names(ctx)? {
        if let Some(d) = filters.get("dangling").first() {
            let dangling = !used.contains(&n);
            if (*d == "true" || *d == "1") != dangling {
                continue;
            }
        }
        let want = filters.get("name");
        if !want.is_empty() && !want.iter().any(|w| n.contains(w)) {
            continue;
        }
        if filters.get("driver").iter().any(|d| *d != "local") {
            continue;
        }
        let v = volume_json(ctx, &n)?;
        let labels = filters.get("label");
        if !labels.is_empty()
            && !labels.iter().all(|l| {
                let (k, val) = l.split_once('=').map(|(k, v)| (k, Some(v))).unwrap_or((l, None));
                v["Labels"].get(k).is_some_and(|x| val.is_none_or(|val| x == val))
            })
        {
            continue;
        }
        let label_text = v["Labels"]
            .as_object()
            .map(|m| m.iter().map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or(""))).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        rows.push(json!({"Driver": "local", "Name": n, "Mountpoint": v["Mountpoint"], "Scope": "local", "Labels": label_text, "Links": "N/A", "Size": "N/A"}));
    }
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for r in &rows {
            writeln!(out, "{}", r["Name"].as_str().unwrap_or(""))?;
        }
        return Ok(0);
    }
    berth_output::write_list(
        &mut out,
        a.format.as_deref(),
        "table {{.Driver}}\t{{.Name}}",
        &[
            ("Driver", "DRIVER"),
            ("Name", "VOLUME NAME"),
            ("Mountpoint", "MOUNTPOINT"),
            ("Scope", "SCOPE"),
            ("Labels", "LABELS"),
            ("Links", "LINKS"),
            ("Size", "SIZE"),
        ],
        &rows,
    )?;
    Ok(0)
}

fn remove(ctx: &Ctx, name: &str) -> Result<u64> {
    let dir = volumes_dir(ctx)?.join(name);
    let size = berth_build::cache::dir_size(&dir);
    std::fs::remove_dir_all(&dir).with_context(|| dir.display().to_string())?;
    Ok(size)
}

pub fn rm(ctx: &Ctx, a: &VolumeRmArgs) -> Result<i32> {
    let all = names(ctx)?;
    let used = in_use(ctx)?;
    let mut failed = false;
    for n in &a.volumes {
        let r = if !all.contains(n) {
            if a.force { Ok(()) } else { Err(exit_with(1, format!("get {n}: no such volume"))) }
        } else if used.contains(n) {
            Err(exit_with(1, format!("remove {n}: volume is in use")))
        } else {
            remove(ctx, n).map(|_| ())
        };
        match r {
            Ok(()) => println!("{n}"),
            Err(e) => {
                failed = true;
                eprintln!("Error response from daemon: {}", crate::errors::chain_text(&e));
            }
        }
    }
    if failed { Err(exit_with(1, "")) } else { Ok(0) }
}

/// Removes unused volumes (anonymous ones only unless `all`); returns names and bytes.
fn prune_unused(ctx: &Ctx, all: bool) -> Result<(Vec<String>, u64)> {
    let used = in_use(ctx)?;
    let mut gone = Vec::new();
    let mut bytes = 0;
    for n in names(ctx)? {
        if used.contains(&n) || !(all || is_anonymous(&n)) {
            continue;
        }
        bytes += remove(ctx, &n)?;
        gone.push(n);
    }
    Ok((gone, bytes))
}

pub fn prune(ctx: &Ctx, a: &VolumePruneArgs) -> Result<i32> {
    let _ = crate::cmd::images::Filters::parse(&a.filter, &["all"])?;
    let all = a.all || a.filter.iter().any(|f| f == "all=true" || f == "all=1");
    let warning = if all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !a.force && !crate::cmd::confirm(warning) {
        return Ok(0);
    }
    let (gone, bytes) = prune_unused(ctx, all)?;
    let mut out = std::io::stdout().lock();
    if !gone.is_empty() {
        writeln!(out, "Deleted Volumes:")?;
        for g in &gone {
            writeln!(out, "{g}")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Total reclaimed space: {}", units::human_size(bytes as f64))?;
    Ok(0)
}

/// Removes the anonymous volumes a removed container mounted (`rm -v`), unless another
/// container still uses them.
pub fn remove_anonymous(ctx: &Ctx, mounts: &[MountSpec]) -> Result<()> {
    let dir = volumes_dir(ctx)?;
    let used = in_use(ctx)?;
    for m in mounts {
        if let MountSpec::Bind { source, .. } = m
            && let Some(n) = volume_of(&dir, source)
            && is_anonymous(&n)
            && !used.contains(&n)
        {
            remove(ctx, &n)?;
        }
    }
    Ok(())
}

/// `system prune`: stopped containers, dangling (or with -a unused) images, unused build
/// cache and, with --volumes, anonymous volumes; docker's warning, sections and total. Each
/// part is the same code as its own prune command, run as a child so that its report can be
/// merged into one.
pub fn system_prune(ctx: &Ctx, a: &SystemPruneArgs) -> Result<i32> {
    let filters = crate::cmd::images::Filters::parse(&a.filter, &["until", "label", "label!"])?;
    if !a.force {
        let mut w = String::from("WARNING! This will remove:\n  - all stopped containers\n");
        if a.volumes {
            w.push_str("  - all anonymous volumes not used by at least one container\n");
        }
        w.push_str(if a.all {
            "  - all images without at least one container associated to them\n"
        } else {
            "  - all dangling images\n"
        });
        w.push_str(if a.all { "  - all build cache\n" } else { "  - unused build cache\n" });
        if !crate::cmd::confirm(w.trim_end()) {
            return Ok(0);
        }
    }
    let root = ctx.store()?.root().to_path_buf();
    let before = berth_build::cache::dir_size(&root);
    let exe = std::env::current_exe()?;
    let base = |args: &[&str]| {
        let mut c = std::process::Command::new(&exe);
        c.arg("--root").arg(&root).arg("--config").arg(&ctx.config_dir).args(args);
        c
    };
    let mut filter_args: Vec<String> = Vec::new();
    for f in &a.filter {
        filter_args.push("--filter".into());
        filter_args.push(f.clone());
    }
    let until: Vec<String> =
        filters.get("until").iter().flat_map(|u| ["--filter".to_string(), format!("until={u}")]).collect();
    let mut parts: Vec<std::process::Command> = Vec::new();
    let mut c = base(&["container", "prune", "-f"]);
    c.args(filter_args.iter().filter(|f| !f.starts_with("label!")));
    parts.push(c);
    if a.volumes {
        parts.push(base(&["volume", "prune", "-f"]));
    }
    let mut c = base(&["image", "prune", "-f"]);
    if a.all {
        c.arg("-a");
    }
    c.args(&filter_args);
    parts.push(c);
    let mut c = base(&["builder", "prune", "-f"]);
    if a.all {
        c.arg("-a");
    }
    c.args(&until);
    parts.push(c);
    let mut out = std::io::stdout().lock();
    for mut c in parts {
        let o = c.stderr(std::process::Stdio::inherit()).output().context("running a prune")?;
        if !o.status.success() {
            return Err(exit_with(1, ""));
        }
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            if l.starts_with("Total reclaimed space:") || l.starts_with("Total:") {
                continue;
            }
            writeln!(out, "{l}")?;
        }
    }
    let after = berth_build::cache::dir_size(&root);
    writeln!(out, "Total reclaimed space: {}", units::human_size(before.saturating_sub(after) as f64))?;
    Ok(0)
}
