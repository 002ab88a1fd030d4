//! `pause`/`unpause` (cgroup freezer), `top` (the host's ps, filtered to the container's
//! cgroup, as docker does), `diff` (the container's overlay upper against its image layers)
//! and `stats` (cgroup usage).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use berth_output::units;
use berth_runtime::{ContainerInfo, RootfsSource, Status, cgroup};

use crate::cli::{DiffArgs, PauseArgs, StatsArgs, TopArgs};
use crate::cmd::containers::{containers, find};
use crate::ctx::Ctx;
use crate::errors::exit_with;

pub fn cgroups_path(info: &ContainerInfo) -> String {
    info.record.runtime.cgroups_path(&info.record.id)
}

/// Whether a running container is paused (its cgroup frozen).
pub fn is_paused(info: &ContainerInfo) -> bool {
    info.state.status == Status::Running && cgroup::is_frozen(&cgroups_path(info))
}

/// Thaws a paused container so that signals reach it (stop, kill, rm -f, restart).
pub fn thaw_if_paused(info: &ContainerInfo) {
    if is_paused(info)
        && let Err(e) = cgroup::set_frozen(&cgroups_path(info), false)
    {
        tracing::warn!("unpausing {}: {e}", info.record.id);
    }
}

fn each(names: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<i32> {
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                failed = true;
                eprintln!("Error: {}", crate::errors::chain_text(&e));
            }
        }
    }
    if failed { Err(exit_with(1, "")) } else { Ok(0) }
}

pub fn pause(ctx: &Ctx, a: &PauseArgs) -> Result<i32> {
    each(&a.containers, |n| {
        let info = find(ctx, n)?;
        if info.state.status != Status::Running {
            return Err(anyhow!("container {} is not running", info.record.id));
        }
        if is_paused(&info) {
            return Err(anyhow!("container {} is already paused", info.record.id));
        }
        cgroup::set_frozen(&cgroups_path(&info), true)?;
        crate::cmd::events::container(ctx, "pause", &info);
        Ok(())
    })
}

pub fn unpause(ctx: &Ctx, a: &PauseArgs) -> Result<i32> {
    each(&a.containers, |n| {
        let info = find(ctx, n)?;
        if !is_paused(&info) {
            return Err(anyhow!("container {} is not paused", info.record.id));
        }
        cgroup::set_frozen(&cgroups_path(&info), false)?;
        crate::cmd::events::container(ctx, "unpause", &info);
        Ok(())
    })
}

/// `top CONTAINER [ps OPTIONS]`: runs the host's `ps` (default `-ef`) and keeps the header
/// and the rows whose PID is in the container's cgroup.
pub fn top(ctx: &Ctx, a: &TopArgs) -> Result<i32> {
    let info = find(ctx, &a.container)?;
    if info.state.status != Status::Running {
        return Err(exit_with(1, format!("container {} is not running", info.record.id)));
    }
    let pids = cgroup::pids(&cgroups_path(&info))?;
    let args: Vec<String> = if a.ps_args.is_empty() { vec!["-ef".into()] } else { a.ps_args.clone() };
    let out =
        std::process::Command::new("ps").args(&args).output().map_err(|e| exit_with(1, format!("running ps: {e}")))?;
    if !out.status.success() {
        return Err(exit_with(1, format!("ps {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| exit_with(1, "Couldn't find PID field in ps output"))?;
    let mut w = std::io::stdout().lock();
    let mut rows = vec![header.to_string()];
    for l in lines {
        if l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| pids.contains(&p)) {
            rows.push(l.to_string());
        }
    }
    for r in rows {
        writeln!(w, "{r}")?;
    }
    Ok(0)
}

/// Files berth provides in every container (bind mounts), never a change of the container's.
const PROVIDED: &[&str] = &["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];

/// `diff`: `A` added, `C` changed, `D` deleted, against the image's layers.
pub fn diff(ctx: &Ctx, a: &DiffArgs) -> Result<i32> {
    let info = find(ctx, &a.container)?;
    let RootfsSource::Layers(st) = &info.record.config.rootfs else {
        return Err(exit_with(1, format!("container {} has no layered root filesystem", info.record.id)));
    };
    let mut changes: BTreeMap<String, char> = BTreeMap::new();
    if let Some(upper) = st.upper.as_ref().filter(|u| u.is_dir()) {
        walk_upper(upper, upper, &st.lower, &mut changes)?;
    }
    // A directory that only exists in the upper because something below it changed is
    // reported with its changes (docker: `C /etc` above `A /etc/x`); one whose only changes
    // are berth's own mount points is not.
    let paths: Vec<String> = changes.keys().cloned().collect();
    for p in &paths {
        if changes.get(p) == Some(&'C') && is_dir_in(&st.lower, p) {
            let prefix = format!("{p}/");
            if !paths.iter().any(|q| q.starts_with(&prefix)) {
                changes.remove(p);
            }
        }
    }
    let mut w = std::io::stdout().lock();
    for (p, k) in &changes {
        writeln!(w, "{k} {p}")?;
    }
    Ok(0)
}

fn in_lowers(lowers: &[PathBuf], rel: &str) -> bool {
    let r = rel.trim_start_matches('/');
    lowers.iter().any(|l| {
        std::fs::symlink_metadata(l.join(r))
            .is_ok_and(|m| !(m.file_type().is_char_device() && m.len() == 0 && is_whiteout(&l.join(r))))
    })
}

fn is_dir_in(lowers: &[PathBuf], rel: &str) -> bool {
    let r = rel.trim_start_matches('/');
    lowers.iter().any(|l| std::fs::symlink_metadata(l.join(r)).is_ok_and(|m| m.is_dir()))
}

fn is_whiteout(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
}

fn walk_upper(root: &Path, dir: &Path, lowers: &[PathBuf], out: &mut BTreeMap<String, char>) -> Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<Vec<_>>>()?;
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let p = e.path();
        let rel = format!("/{}", p.strip_prefix(root).unwrap_or(&p).display());
        if PROVIDED.contains(&rel.as_str()) {
            continue;
        }
        let md = std::fs::symlink_metadata(&p)?;
        if is_whiteout(&p) {
            out.insert(rel, 'D');
            continue;
        }
        let existed = in_lowers(lowers, &rel);
        out.insert(rel.clone(), if existed { 'C' } else { 'A' });
        if md.is_dir() {
            walk_upper(root, &p, lowers, out)?;
        }
    }
    Ok(())
}

fn mem_total() -> u64 {
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

/// `stats`: CPU (over the sampling interval), memory, block I/O and pids from the cgroup.
/// Network I/O is 0B / 0B: containers share the host's network (see the README's Limits).
pub fn stats(ctx: &Ctx, a: &StatsArgs) -> Result<i32> {
    use std::io::IsTerminal;
    let c = containers(ctx)?;
    let pick = || -> Result<Vec<ContainerInfo>> {
        if a.containers.is_empty() {
            Ok(c.list()?.into_iter().filter(|i| a.all || i.state.status == Status::Running).collect())
        } else {
            a.containers.iter().map(|n| find(ctx, n)).collect()
        }
    };
    let total = mem_total();
    let tty = std::io::stdout().is_terminal();
    let interval = if a.no_stream { std::time::Duration::from_millis(500) } else { std::time::Duration::from_secs(1) };
    let mut prev: BTreeMap<String, (u64, std::time::Instant)> = BTreeMap::new();
    for info in pick()? {
        prev.insert(info.record.id.clone(), (cgroup::usage(&cgroups_path(&info)).cpu_ns, std::time::Instant::now()));
    }
    loop {
        std::thread::sleep(interval);
        let list = pick()?;
        let mut rows = Vec::new();
        for (i, info) in list.iter().enumerate() {
            let running = info.state.status == Status::Running;
            let u = if running { cgroup::usage(&cgroups_path(info)) } else { Default::default() };
            let now = std::time::Instant::now();
            let cpu = match prev.get(&info.record.id) {
                Some((ns, t)) if running => {
                    let wall = now.duration_since(*t).as_nanos().max(1) as f64;
                    u.cpu_ns.saturating_sub(*ns) as f64 / wall * 100.0
                }
                _ => 0.0,
            };
            prev.insert(info.record.id.clone(), (u.cpu_ns, now));
            let limit = u.memory_limit.unwrap_or(total).min(total.max(1));
            let name = info.record.name.clone().unwrap_or_default();
            let id = if a.no_trunc { info.record.id.clone() } else { info.record.id.chars().take(12).collect() };
            let typed = a.containers.get(i).cloned().unwrap_or_else(|| id.clone());
            rows.push(serde_json::json!({
                "Container": typed,
                "ID": id,
                "Name": name,
                "CPUPerc": if running { format!("{cpu:.2}%") } else { "--".into() },
                "MemUsage": if running { format!("{} / {}", units::bytes_size(u.memory as f64), units::bytes_size(limit as f64)) } else { "-- / --".into() },
                "MemPerc": if running { format!("{:.2}%", u.memory as f64 * 100.0 / limit.max(1) as f64) } else { "--".into() },
                "NetIO": if running { "0B / 0B" } else { "--" },
                "BlockIO": if running { format!("{} / {}", units::human_size(u.block_read as f64), units::human_size(u.block_write as f64)) } else { "--".into() },
                "PIDs": if running { u.pids.to_string() } else { "--".into() },
            }));
        }
        let mut buf = Vec::new();
        if !a.no_stream && tty {
            write!(buf, "\x1b[2J\x1b[H")?;
        }
        berth_output::write_list(
            &mut buf,
            a.format.as_deref(),
            "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
            &[
                ("Container", "CONTAINER"),
                ("ID", "CONTAINER ID"),
                ("Name", "NAME"),
                ("CPUPerc", "CPU %"),
                ("MemUsage", "MEM USAGE / LIMIT"),
                ("MemPerc", "MEM %"),
                ("NetIO", "NET I/O"),
                ("BlockIO", "BLOCK I/O"),
                ("PIDs", "PIDS"),
            ],
            &rows,
        )?;
        let mut w = std::io::stdout().lock();
        w.write_all(&buf)?;
        w.flush()?;
        if a.no_stream {
            return Ok(0);
        }
    }
}
