//! system check / df / info, version, and the GC roots other subsystems contribute.

use std::collections::HashSet;
use std::io::Write;

use anyhow::Result;
use berth_output::units;
use berth_store::Roots;
use berth_types::Digest;

use crate::cli::{SystemCheckArgs, SystemDfArgs, VersionArgs};
use crate::ctx::Ctx;
use crate::errors::exit_with;

/// Content that must survive garbage collection besides named images: what containers and the
/// build cache use.
pub fn gc_roots(ctx: &Ctx) -> Result<Roots> {
    let store = ctx.store()?;
    let mut roots = berth_build::Cache::open(store)?.roots();
    // Containers keep the layers they run on, even after their image is removed.
    let (_, lowers) = crate::cmd::containers::in_use(ctx)?;
    for l in lowers {
        if let Some(name) = l.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str())
            && let Some((alg, hex)) = name.split_once('-')
            && let Ok(d) = berth_types::Digest::parse(&format!("{alg}:{hex}"))
        {
            roots.snapshots.insert(d);
        }
    }
    for id in images_in_use(ctx)? {
        // Containers keep their image: its manifest entries are roots (walked by the store).
        for rec in store.images()? {
            if rec.id() == &id {
                for e in &rec.entries {
                    roots.blobs.insert(e.descriptor.digest.clone());
                }
            }
        }
    }
    Ok(roots)
}

/// (all, running) containers.
pub fn container_count(ctx: &Ctx) -> (usize, usize) {
    let list = crate::cmd::containers::containers(ctx).and_then(|c| Ok(c.list()?)).unwrap_or_default();
    let running = list.iter().filter(|i| i.state.status == berth_runtime::Status::Running).count();
    (list.len(), running)
}

/// Image IDs used by containers (they cannot be pruned).
pub fn images_in_use(ctx: &Ctx) -> Result<HashSet<Digest>> {
    Ok(crate::cmd::containers::in_use(ctx)?.0)
}

pub fn check(ctx: &Ctx, a: &SystemCheckArgs) -> Result<i32> {
    let store = ctx.store()?;
    let mut r = store.check()?;
    if a.deep {
        crate::cmd::deep::check_snapshots(store, &mut r);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "checked {} blobs ({}), {} references, {} unpacked layers",
        r.blobs_checked,
        units::human_size(r.bytes_checked as f64),
        r.refs_checked,
        r.snapshots_checked
    )?;
    for n in &r.notes {
        writeln!(out, "note: {n}")?;
    }
    if r.problems.is_empty() {
        writeln!(out, "store OK: {}", ctx.root.display())?;
        Ok(0)
    } else {
        for p in &r.problems {
            writeln!(out, "problem: {p}")?;
        }
        Err(exit_with(1, format!("the store at {} has {} problem(s)", ctx.root.display(), r.problems.len())))
    }
}

pub fn df(ctx: &Ctx, a: &SystemDfArgs) -> Result<i32> {
    let store = ctx.store()?;
    let images = store.images()?;
    let in_use = images_in_use(ctx)?;
    let total = crate::cmd::images::disk_usage(store);
    let active = images.iter().filter(|i| in_use.contains(i.id())).count();
    let reclaimable: u64 = images.iter().filter(|i| !in_use.contains(i.id())).map(|i| i.size).sum();
    let cache = berth_build::Cache::open(store)?;
    let records = cache.records();
    let cache_size: u64 = records.iter().map(|(_, r)| r.size).sum::<u64>() + cache.mounts_size();
    let build_row = serde_json::json!({
        "Type": "Build Cache",
        "TotalCount": records.len().to_string(),
        "Active": "0",
        "Size": units::human_size(cache_size as f64),
        "Reclaimable": units::human_size(cache_size as f64),
    });
    let containers = crate::cmd::system::container_count(ctx);
    let containers_row = serde_json::json!({
        "Type": "Containers",
        "TotalCount": containers.0.to_string(),
        "Active": containers.1.to_string(),
        "Size": "0B",
        "Reclaimable": "0B",
    });
    let rows = vec![
        serde_json::json!({
            "Type": "Images",
            "TotalCount": images.len().to_string(),
            "Active": active.to_string(),
            "Size": units::human_size(total as f64),
            "Reclaimable": format!("{} ({}%)", units::human_size(reclaimable as f64), (reclaimable * 100).checked_div(total).unwrap_or(0)),
        }),
        containers_row,
        build_row,
    ];
    let mut out = std::io::stdout().lock();
    let _ = a.verbose;
    berth_output::write_list(
        &mut out,
        a.format.as_deref(),
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        &[
            ("Type", "TYPE"),
            ("TotalCount", "TOTAL"),
            ("Active", "ACTIVE"),
            ("Size", "SIZE"),
            ("Reclaimable", "RECLAIMABLE"),
        ],
        &rows,
    )?;
    Ok(0)
}

/// Writes `v` as docker's `--format` does for a single object: `json` is the object as
/// compact JSON, anything else a Go template.
fn write_formatted(format: &str, v: &serde_json::Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if format == "json" {
        writeln!(out, "{}", berth_output::template::to_go_json(v))?;
    } else {
        let t = berth_output::Template::parse(format)?;
        writeln!(out, "{}", t.execute(v)?)?;
    }
    Ok(())
}

fn client_info() -> serde_json::Value {
    serde_json::json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": "1.43",
        "DefaultAPIVersion": "1.43",
        "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or("dev"),
        "GoVersion": "",
        "Os": "linux",
        "Arch": berth_types::Platform::host().architecture,
        "BuildTime": "",
        "Context": "default",
        "Platform": {"Name": "berth"},
    })
}

/// `info` / `system info`: docker's `system.Info` fields that mean something for berth, at the
/// top level as `docker info --format` sees them, with the client under `ClientInfo`.
pub fn info(ctx: &Ctx, a: &crate::cli::InfoArgs) -> Result<i32> {
    let store = ctx.store()?;
    let images = store.images()?;
    let list = crate::cmd::containers::containers(ctx).and_then(|c| Ok(c.list()?)).unwrap_or_default();
    let running = list.iter().filter(|i| i.state.status == berth_runtime::Status::Running).count();
    let paused = 0;
    let host = berth_types::Platform::host();
    let uts = nix_uname();
    let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mem_total = mem_total_bytes();
    let os = os_pretty_name();
    let v = serde_json::json!({
        "ID": "",
        "Containers": list.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": list.len() - running - paused,
        "Images": images.len(),
        "Driver": "overlay",
        "DriverStatus": [["Backing Filesystem", "per-layer snapshots"]],
        "DockerRootDir": ctx.root.display().to_string(),
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() { "2" } else { "1" },
        "KernelVersion": uts.1,
        "OperatingSystem": os,
        "OSType": "linux",
        "Architecture": uts.0,
        "NCPU": ncpu,
        "MemTotal": mem_total,
        "Name": uts.2,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "DefaultRuntime": "berth (embedded youki libcontainer)",
        "Runtimes": {"berth": {"path": "embedded"}},
        "LoggingDriver": "json-file",
        "IndexServerAddress": "https://index.docker.io/v1/",
        "Platform": host.to_string(),
        "ConfigDir": ctx.config_dir.display().to_string(),
        "ClientInfo": client_info(),
    });
    if let Some(f) = &a.format {
        write_formatted(f, &v)?;
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "Client:")?;
    writeln!(out, " Version:    {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, " Context:    default")?;
    writeln!(out, " Debug Mode: {}", ctx.global.debug)?;
    writeln!(out)?;
    writeln!(out, "Server: (none: berth is daemonless; this is the local store and runtime)")?;
    writeln!(out, " Containers: {}", list.len())?;
    writeln!(out, "  Running: {running}")?;
    writeln!(out, "  Paused: {paused}")?;
    writeln!(out, "  Stopped: {}", list.len() - running - paused)?;
    writeln!(out, " Images: {}", images.len())?;
    writeln!(out, " Server Version: {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, " Storage Driver: overlay (per-layer snapshots)")?;
    writeln!(out, " Logging Driver: json-file")?;
    writeln!(out, " Cgroup Version: {}", v["CgroupVersion"].as_str().unwrap_or_default())?;
    writeln!(out, " Default Runtime: berth (embedded youki libcontainer)")?;
    writeln!(out, " Kernel Version: {}", uts.1)?;
    writeln!(out, " Operating System: {os}")?;
    writeln!(out, " OSType: linux")?;
    writeln!(out, " Architecture: {}", uts.0)?;
    writeln!(out, " CPUs: {ncpu}")?;
    writeln!(out, " Total Memory: {}", units::bytes_size(mem_total as f64))?;
    writeln!(out, " Name: {}", uts.2)?;
    writeln!(out, " Berth Root Dir: {}", ctx.root.display())?;
    writeln!(out, " Config Dir: {}", ctx.config_dir.display())?;
    writeln!(out, " Platform: {host}")?;
    // What `run --platform` and multi-platform builds can execute here (natively or through
    // QEMU emulators registered with binfmt_misc's fix-binary flag).
    let platforms: Vec<String> = berth_runtime::emulation::runnable_platforms().iter().map(|p| p.to_string()).collect();
    writeln!(out, " Platforms: {}", platforms.join(", "))?;
    Ok(0)
}

/// (machine, release, nodename) from uname(2).
fn nix_uname() -> (String, String, String) {
    let mut u = std::mem::MaybeUninit::<libc::utsname>::uninit();
    // SAFETY: uname fills the struct when it returns 0.
    if unsafe { libc::uname(u.as_mut_ptr()) } != 0 {
        return (String::new(), String::new(), String::new());
    }
    // SAFETY: initialised by the successful call above.
    let u = unsafe { u.assume_init() };
    let s = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (s(&u.machine), s(&u.release), s(&u.nodename))
}

fn mem_total_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                l.strip_prefix("MemTotal:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn os_pretty_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_else(|| "Linux".to_string())
}

pub fn version(_ctx: &Ctx, a: &VersionArgs) -> Result<i32> {
    // docker's `version` data: Client and Server; berth has no server, so Server is null (as
    // docker prints it when the daemon is unreachable).
    let v = serde_json::json!({ "Client": client_info(), "Server": null });
    if let Some(f) = &a.format {
        write_formatted(f, &v)?;
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "Client:")?;
    writeln!(out, " Version:           {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, " API version:       1.43 (docker-compatible CLI)")?;
    writeln!(out, " Git commit:        {}", option_env!("BERTH_GIT_COMMIT").unwrap_or("dev"))?;
    writeln!(out, " OS/Arch:           {}", berth_types::Platform::host())?;
    writeln!(out, " Context:           default")?;
    writeln!(out, "\nServer: none (berth is daemonless)")?;
    Ok(0)
}

/// `builder prune`: removes build cache records (all with `-a`; otherwise those whose layers no
/// image uses), honouring `until=` and `--keep-storage`, then collects unreferenced content.
pub fn builder_prune(ctx: &Ctx, a: &crate::cli::BuilderPruneArgs) -> Result<i32> {
    let store = ctx.store()?;
    let cache = berth_build::Cache::open(store)?;
    let filters = crate::cmd::images::Filters::parse(&a.filter, &["until", "unused-for"])?;
    if !a.force {
        let w = if a.all {
            "WARNING! This will remove all build cache."
        } else {
            "WARNING! This will remove all dangling build cache."
        };
        if !crate::cmd::confirm(w) {
            return Ok(0);
        }
    }
    let now = chrono::Utc::now().timestamp();
    let until = match filters.get("until").first().or(filters.get("unused-for").first()) {
        Some(v) => Some(
            now - units::parse_go_duration(v)
                .map_err(|e| exit_with(1, format!("invalid filter 'until={v}': {e}")))?
                .as_secs() as i64,
        ),
        None => None,
    };
    let keep = a
        .keep_storage
        .as_deref()
        .map(|s| units::ram_in_bytes(s).map_err(|e| exit_with(1, format!("invalid --keep-storage {s:?}: {e}"))))
        .transpose()?
        .map(|n| n.max(0) as u64);
    // Layers images use: their cache records are not "dangling".
    let mut in_images = HashSet::new();
    for rec in store.images()? {
        in_images.extend(rec.image.config.rootfs.diff_ids.iter().cloned());
    }
    let mut records = cache.records();
    records.sort_by_key(|(_, r)| r.last_used);
    let before = crate::cmd::images::disk_usage(store) + cache.mounts_size();
    let deleted = remove_records(&cache, &records, |r, total| {
        let old_enough = until.is_none_or(|u| r.last_used < u);
        let dangling = r.state.layers.last().is_none_or(|l| !in_images.contains(&l.diff_id));
        match keep {
            Some(k) => total > k && old_enough,
            None => old_enough && (a.all || dangling),
        }
    });
    if a.all && until.is_none() && keep.is_none() {
        cache.clear_mounts()?;
    }
    store.gc_with(|| gc_roots(ctx))?;
    let after = crate::cmd::images::disk_usage(store) + cache.mounts_size();
    let mut out = std::io::stdout().lock();
    if !deleted.is_empty() {
        writeln!(out, "Deleted build cache objects:")?;
        for d in &deleted {
            writeln!(out, "{}", &d[..d.len().min(25)])?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Total:\t{}", units::human_size(before.saturating_sub(after) as f64))?;
    Ok(0)
}

fn cache_total(records: &[(String, berth_build::Record)]) -> u64 {
    records.iter().map(|(_, r)| r.size).sum()
}

/// Walks `records` in order and removes those `select` picks, given the cache's total size
/// before each decision; returns the removed keys.
fn remove_records(
    cache: &berth_build::Cache,
    records: &[(String, berth_build::Record)],
    select: impl Fn(&berth_build::Record, u64) -> bool,
) -> Vec<String> {
    let mut total = cache_total(records);
    let mut deleted = Vec::new();
    for (key, r) in records {
        if select(r, total) {
            cache.remove(key);
            total = total.saturating_sub(r.size);
            deleted.push(key.clone());
        }
    }
    deleted
}

/// Garbage collection after every build, as BuildKit's default policy does: when the build
/// cache is larger than the budget, the least recently used records go (images keep their own
/// layers) and unreferenced content is collected. The budget is `BERTH_BUILDER_KEEP_STORAGE`
/// (a size such as `5GB`; `0` disables the collection) or else 10% of the size of the
/// filesystem holding the store, BuildKit's default cap. Skipped, not waited for, while
/// another process holds the store's gc lock; the next build catches up.
pub fn builder_auto_gc(ctx: &Ctx) -> Result<()> {
    let store = ctx.store()?;
    let keep = match std::env::var("BERTH_BUILDER_KEEP_STORAGE") {
        Ok(v) => {
            let n = units::ram_in_bytes(&v)
                .map_err(|e| exit_with(1, format!("invalid BERTH_BUILDER_KEEP_STORAGE {v:?}: {e}")))?;
            if n <= 0 {
                return Ok(());
            }
            n as u64
        }
        Err(_) => match fs_size(store.root()) {
            Some(n) => n / 10,
            None => return Ok(()),
        },
    };
    let cache = berth_build::Cache::open(store)?;
    let mut records = cache.records();
    if cache_total(&records) <= keep {
        return Ok(());
    }
    records.sort_by_key(|(_, r)| r.last_used);
    remove_records(&cache, &records, |_, total| total > keep);
    if let Some(report) = store.try_gc_with(|| gc_roots(ctx))? {
        tracing::debug!(bytes = report.bytes, "build cache over {keep} bytes: collected");
    }
    Ok(())
}

/// Size in bytes of the filesystem holding `p`.
fn fs_size(p: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: valid C string; statvfs fills `st` when it returns 0.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: initialised by the successful call above.
    let st = unsafe { st.assume_init() };
    Some(st.f_blocks.saturating_mul(st.f_frsize))
}

/// `builder du`: build cache records and their sizes.
pub fn builder_du(ctx: &Ctx, a: &crate::cli::BuilderDuArgs) -> Result<i32> {
    let store = ctx.store()?;
    let cache = berth_build::Cache::open(store)?;
    let mut records = cache.records();
    records.sort_by_key(|(_, r)| std::cmp::Reverse(r.size));
    let mut out = std::io::stdout().lock();
    let now = chrono::Utc::now().timestamp();
    if a.verbose {
        for (k, r) in &records {
            writeln!(
                out,
                "ID:\t\t{k}\nDescription:\t{}\nSize:\t\t{}\nLast used:\t{}\n",
                r.description,
                units::human_size(r.size as f64),
                units::created_since(r.last_used, now)
            )?;
        }
    } else {
        writeln!(out, "{:<28}{:<12}{:<12}", "ID", "RECLAIMABLE", "SIZE")?;
        for (k, r) in records.iter().filter(|(_, r)| r.size > 0) {
            writeln!(out, "{:<28}{:<12}{:<12}", &k[..k.len().min(25)], "true", units::human_size(r.size as f64))?;
        }
    }
    let total: u64 = records.iter().map(|(_, r)| r.size).sum();
    writeln!(
        out,
        "Reclaimable:\t{}\nTotal:\t\t{}",
        units::human_size(total as f64),
        units::human_size((total + cache.mounts_size()) as f64)
    )?;
    Ok(0)
}
