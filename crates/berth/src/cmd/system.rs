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
pub fn gc_roots(_ctx: &Ctx) -> Result<Roots> {
    Ok(Roots::default())
}

/// Image IDs used by containers (they cannot be pruned).
pub fn images_in_use(_ctx: &Ctx) -> Result<HashSet<Digest>> {
    Ok(HashSet::new())
}

pub fn check(ctx: &Ctx, _a: &SystemCheckArgs) -> Result<i32> {
    let store = ctx.store()?;
    let r = store.check()?;
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
    let rows = vec![serde_json::json!({
        "Type": "Images",
        "TotalCount": images.len().to_string(),
        "Active": active.to_string(),
        "Size": units::human_size(total as f64),
        "Reclaimable": format!("{} ({}%)", units::human_size(reclaimable as f64), if total > 0 { reclaimable * 100 / total } else { 0 }),
    })];
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

pub fn info(ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    let images = store.images()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "Client: berth {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, " Images: {}", images.len())?;
    writeln!(out, " Storage Driver: overlay (per-layer snapshots)")?;
    writeln!(out, " Berth Root Dir: {}", ctx.root.display())?;
    writeln!(out, " Config Dir: {}", ctx.config_dir.display())?;
    writeln!(out, " Architecture: {}", berth_types::Platform::host())?;
    Ok(0)
}

pub fn version(_ctx: &Ctx, a: &VersionArgs) -> Result<i32> {
    let v = serde_json::json!({
        "Client": {
            "Version": env!("CARGO_PKG_VERSION"),
            "ApiVersion": "1.43",
            "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or("dev"),
            "Os": "linux",
            "Arch": berth_types::Platform::host().architecture,
        }
    });
    let mut out = std::io::stdout().lock();
    match &a.format {
        Some(f) => {
            let t = berth_output::Template::parse(f)?;
            writeln!(out, "{}", t.execute(&v)?)?;
        }
        None => {
            writeln!(out, "Client:")?;
            writeln!(out, " Version:           {}", env!("CARGO_PKG_VERSION"))?;
            writeln!(out, " API version:       1.43 (docker-compatible CLI)")?;
            writeln!(out, " Git commit:        {}", option_env!("BERTH_GIT_COMMIT").unwrap_or("dev"))?;
            writeln!(out, " OS/Arch:           {}", berth_types::Platform::host())?;
            writeln!(out, "\nServer: none (berth is daemonless)")?;
        }
    }
    Ok(0)
}
