//! images, inspect, history, tag, rmi, image prune.

use std::collections::HashSet;
use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use berth_output::units;
use berth_store::{ImageRecord, Lookup, Store, StoreError};
use berth_types::Reference;
use serde_json::{Value, json};

use crate::cli::{HistoryArgs, ImagePruneArgs, ImagesArgs, InspectArgs, RmiArgs, TagArgs};
use crate::ctx::Ctx;
use crate::errors::exit_with;
use crate::render::{inspect_image, now_unix, unix_of};

const IMAGES_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const IMAGES_TABLE_DIGESTS: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const IMAGES_HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

/// Parsed `--filter key=value` options.
pub struct Filters(Vec<(String, String)>);

impl Filters {
    pub fn parse(raw: &[String], allowed: &[&str]) -> Result<Filters> {
        let mut v = Vec::new();
        for f in raw {
            let (k, val) = f.split_once('=').ok_or_else(|| anyhow!("bad format of filter (expected name=value)"))?;
            let k = k.trim().to_lowercase();
            if !allowed.contains(&k.as_str()) {
                return Err(exit_with(1, format!("invalid filter '{k}'")));
            }
            v.push((k, val.to_string()));
        }
        Ok(Filters(v))
    }
    pub fn get(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }
}

fn short_id(rec: &ImageRecord, no_trunc: bool) -> String {
    if no_trunc { rec.id().to_string() } else { rec.id().short().to_string() }
}

fn labels_match(rec: &ImageRecord, wanted: &[&str]) -> bool {
    let labels = rec.image.config.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default();
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(*w),
    })
}

/// Go's `path.Match`-style glob, as docker's `reference=` filter uses (`*` stays within a
/// path segment).
pub fn glob_match(pattern: &str, s: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some(b'*'), _) => {
                let rest = p.get(1..).unwrap_or(&[]);
                let mut i = 0;
                loop {
                    if m(rest, s.get(i..).unwrap_or(&[])) {
                        return true;
                    }
                    match s.get(i) {
                        Some(b'/') | None => return false,
                        Some(_) => i += 1,
                    }
                }
            }
            (Some(b'?'), Some(c)) if *c != b'/' => m(p.get(1..).unwrap_or(&[]), s.get(1..).unwrap_or(&[])),
            (Some(a), Some(b)) if a == b => m(p.get(1..).unwrap_or(&[]), s.get(1..).unwrap_or(&[])),
            _ => false,
        }
    }
    m(pattern.as_bytes(), s.as_bytes())
}

fn reference_matches(pattern: &str, r: &Reference) -> bool {
    let fam_repo = r.familiar_repository();
    let tagged = r.tag().map(|t| format!("{fam_repo}:{t}"));
    glob_match(pattern, &fam_repo)
        || tagged.as_deref().is_some_and(|t| glob_match(pattern, t))
        || glob_match(pattern, &r.repository())
}

pub fn images(ctx: &Ctx, a: &ImagesArgs) -> Result<i32> {
    let store = ctx.store()?;
    let filters = Filters::parse(&a.filter, &["dangling", "reference", "label", "before", "since", "until"])?;
    let mut recs = store.images()?;
    recs.sort_by_key(|r| std::cmp::Reverse(unix_of(r.image.config.created.as_deref())));
    let created_of = |s: &str| -> Result<i64> {
        let r = store.find_image(s).map_err(|e| anyhow!("{e}"))?;
        Ok(unix_of(r.image.config.created.as_deref()))
    };
    let before: Option<i64> = filters.get("before").first().map(|s| created_of(s)).transpose()?;
    let since: Option<i64> = filters.get("since").first().map(|s| created_of(s)).transpose()?;
    let dangling = filters.get("dangling").first().map(|v| matches!(*v, "true" | "1"));
    let labels = filters.get("label");
    let refs = filters.get("reference");
    let positional = a.repository.as_deref();

    let now = now_unix();
    let mut rows: Vec<Value> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for rec in &recs {
        let created = unix_of(rec.image.config.created.as_deref());
        if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
            continue;
        }
        if let Some(d) = dangling
            && d != rec.is_dangling()
        {
            continue;
        }
        if !labels.is_empty() && !labels_match(rec, &labels) {
            continue;
        }
        // One row per tag; images with no tags show their digests or <none>.
        let mut lines: Vec<(String, String, String)> = Vec::new();
        for t in &rec.repo_tags {
            if !refs.is_empty() && !refs.iter().any(|p| reference_matches(p, t)) {
                continue;
            }
            if let Some(p) = positional {
                // The tag separator is the last ':' after the last '/' (`host:5000/repo` has none).
                let want = p.rsplit_once(':').filter(|(_, tag)| !tag.contains('/'));
                let repo_ok = match want {
                    Some((rp, tag)) => {
                        (reference_matches(rp, &t.repo_only()) || t.familiar_repository() == rp || t.repository() == rp)
                            && t.tag() == Some(tag)
                    }
                    None => t.familiar_repository() == p || t.repository() == p || reference_matches(p, &t.repo_only()),
                };
                if !repo_ok {
                    continue;
                }
            }
            let digest = rec
                .repo_digests
                .iter()
                .find(|d| d.repository() == t.repository())
                .and_then(|d| d.digest().map(|x| x.to_string()))
                .unwrap_or_else(|| "<none>".into());
            lines.push((t.familiar_repository(), t.tag().unwrap_or("<none>").to_string(), digest));
        }
        if rec.repo_tags.is_empty() && refs.is_empty() && positional.is_none() {
            if rec.repo_digests.is_empty() {
                lines.push(("<none>".into(), "<none>".into(), "<none>".into()));
            } else {
                for d in &rec.repo_digests {
                    lines.push((
                        d.familiar_repository(),
                        "<none>".into(),
                        d.digest().map(|x| x.to_string()).unwrap_or_default(),
                    ));
                }
            }
        }
        let size = units::human_size_with_precision(rec.size as f64, 3);
        for (repo, tag, digest) in lines {
            ids.push(short_id(rec, a.no_trunc));
            rows.push(json!({
                "Containers": "N/A",
                "CreatedAt": units::created_at(created),
                "CreatedSince": units::created_since(created, now),
                "Digest": digest,
                "ID": short_id(rec, a.no_trunc),
                "Repository": repo,
                "SharedSize": "N/A",
                "Size": size,
                "Tag": tag,
                "UniqueSize": "N/A",
                "VirtualSize": size,
            }));
        }
    }
    let mut out = std::io::stdout().lock();
    if a.quiet {
        // One ID per row, as docker prints them (an image with two tags is listed twice).
        for id in ids {
            writeln!(out, "{id}")?;
        }
        return Ok(0);
    }
    let default = if a.digests { IMAGES_TABLE_DIGESTS } else { IMAGES_TABLE };
    berth_output::write_list(&mut out, a.format.as_deref(), default, IMAGES_HEADERS, &rows)?;
    Ok(0)
}

pub fn inspect(ctx: &Ctx, a: &InspectArgs) -> Result<i32> {
    let store = ctx.store()?;
    let mut items = Vec::new();
    let mut missing = Vec::new();
    let want_containers = a.kind.as_deref() != Some("image");
    let want_images = a.kind.as_deref() != Some("container");
    let platform = crate::cmd::archive::parse_platform(a.platform.as_deref())?;
    for n in &a.names {
        if want_containers && let Ok(info) = crate::cmd::containers::find(ctx, n) {
            items.push(crate::cmd::containers::inspect_json(&info));
            continue;
        }
        if !want_images {
            missing.push(n.clone());
            continue;
        }
        match store.find_image(n).and_then(|rec| for_platform(store, n, rec, platform.as_ref())) {
            Ok(rec) => items.push(inspect_image(&rec, store)),
            Err(StoreError::NoSuchImage(_)) | Err(StoreError::Ambiguous(_)) => missing.push(n.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = berth_output::write_inspect(&mut out, a.format.as_deref(), &items) {
        drop(out);
        return Err(exit_with(1, format!("template: {e}")));
    }
    drop(out);
    if !missing.is_empty() {
        let kind = match a.kind.as_deref() {
            Some("image") => "image",
            Some("container") => "container",
            _ => "object",
        };
        for m in &missing {
            eprintln!("Error: No such {kind}: {m}");
        }
        return Err(exit_with(1, ""));
    }
    Ok(0)
}

pub fn history(ctx: &Ctx, a: &HistoryArgs) -> Result<i32> {
    let store = ctx.store()?;
    let platform = crate::cmd::archive::parse_platform(a.platform.as_deref())?;
    let rec = store
        .find_image(&a.image)
        .and_then(|rec| for_platform(store, &a.image, rec, platform.as_ref()))
        .map_err(|e| exit_with(1, e.to_string()))?;
    let human = a.human != "false";
    let cfg = &rec.image.config;
    let mut diff = cfg.rootfs.diff_ids.iter().rev();
    let n_hist = cfg.history.len();
    let now = now_unix();
    let mut rows = Vec::new();
    for (i, h) in cfg.history.iter().enumerate().rev() {
        let size = if h.empty_layer {
            0
        } else {
            diff.next().and_then(|d| store.snapshot_info(d)).map(|s| s.size).unwrap_or(0)
        };
        let created = unix_of(h.created.as_deref());
        let id = if i + 1 == n_hist {
            if a.no_trunc { rec.id().to_string() } else { rec.id().short().to_string() }
        } else {
            "<missing>".to_string()
        };
        let created_by = h.created_by.clone().unwrap_or_default();
        let shown_by = if a.no_trunc { created_by.clone() } else { ellipsis(&created_by, 45) };
        rows.push(json!({
            "ID": id,
            "CreatedSince": if human { units::created_since(created, now) } else { String::new() },
            "CreatedAt": if human { units::created_at(created) } else { h.created.clone().unwrap_or_default() },
            "CreatedBy": shown_by,
            "Size": if human { units::human_size_with_precision(size as f64, 3) } else { size.to_string() },
            "Comment": h.comment.clone().unwrap_or_default(),
        }));
    }
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for r in &rows {
            writeln!(out, "{}", r["ID"].as_str().unwrap_or(""))?;
        }
        return Ok(0);
    }
    let default = if human {
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    } else {
        "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    };
    let headers: &[(&str, &str)] = &[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ];
    berth_output::write_list(&mut out, a.format.as_deref(), default, headers, &rows)?;
    Ok(0)
}

/// The record with its image switched to `platform` of a multi-platform image (a name pointing
/// at an index). Without a platform, the record as found (the host's platform when stored).
fn for_platform(
    store: &Store,
    name: &str,
    mut rec: ImageRecord,
    platform: Option<&berth_types::Platform>,
) -> Result<ImageRecord, StoreError> {
    let Some(p) = platform else { return Ok(rec) };
    let img = store.resolve_image(name, Some(p))?;
    // A single-platform image of another platform is not what was asked for.
    if !p.matches(&img.platform()) {
        return Err(StoreError::NoSuchImage(format!("{name} (for platform {p}; it is {})", img.platform())));
    }
    rec.size = store.image_size(&img);
    rec.image = img;
    Ok(rec)
}

/// docker's `stringutils.Ellipsis`: at most `max` characters, the last one `…` when cut.
fn ellipsis(s: &str, max: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= max {
        return s.to_string();
    }
    let mut out: String = chars.iter().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub fn tag(ctx: &Ctx, a: &TagArgs) -> Result<i32> {
    let store = ctx.store()?;
    let target = Reference::parse_normalized(&a.target).map_err(|e| exit_with(1, e.to_string()))?;
    if target.digest().is_some() {
        bail!("refusing to create a tag with a digest reference");
    }
    let target = target.with_default_tag();
    let rec = store.find_image(&a.source).map_err(|e| exit_with(1, e.to_string()))?;
    let desc = source_descriptor(store, &a.source, &rec)?;
    store.set_ref(&target, desc)?;
    Ok(0)
}

/// The descriptor behind a user string: the named entry when a name was given, else the
/// image's first entry.
pub fn source_descriptor(store: &Store, s: &str, rec: &ImageRecord) -> Result<berth_types::Descriptor> {
    if let Ok(Lookup::Name(n)) = store.lookup(s)
        && let Some(d) = store.ref_descriptor(&n)?
    {
        return Ok(strip_ref_annotations(d));
    }
    rec.entries.first().map(|e| strip_ref_annotations(e.descriptor.clone())).context("image has no entries")
}

fn strip_ref_annotations(mut d: berth_types::Descriptor) -> berth_types::Descriptor {
    d.annotations = None;
    d
}

pub fn rmi(ctx: &Ctx, a: &RmiArgs) -> Result<i32> {
    let store = ctx.store()?;
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for name in &a.images {
        match remove_image(store, name, a.force) {
            Ok(lines) => {
                for l in lines {
                    writeln!(out, "{l}")?;
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("Error: {e}");
            }
        }
    }
    let lines = collect_garbage(ctx, store)?;
    for l in lines {
        writeln!(out, "{l}")?;
    }
    if failed { Err(exit_with(1, "")) } else { Ok(0) }
}

/// Docker's rules: by name, untag (and delete when it was the last tag); by ID, delete when the
/// image's names are all in one repository or with `-f`.
fn remove_image(store: &Store, name: &str, force: bool) -> Result<Vec<String>> {
    let lookup = store.lookup(name).map_err(|e| match e {
        // docker names the reference it looked for, with the implied tag.
        StoreError::NoSuchImage(_) => match Reference::parse_normalized(name) {
            Ok(r) => anyhow!("No such image: {}", r.with_default_tag().familiar()),
            Err(_) => anyhow!("No such image: {name}"),
        },
        other => anyhow!("{other}"),
    })?;
    let rec = store.find_image(name).map_err(|e| anyhow!("{e}"))?;
    let mut lines = Vec::new();
    match lookup {
        Lookup::Name(n) => {
            store.update_refs(|t| {
                t.remove(&n);
                Ok(())
            })?;
            lines.push(format!("Untagged: {}", n.familiar()));
            let remaining_tags = rec.repo_tags.iter().filter(|t| **t != n).count();
            if remaining_tags == 0 {
                // The last tag: digests go too, and the image is deleted.
                for d in &rec.repo_digests {
                    if *d != n {
                        store.update_refs(|t| {
                            t.remove(d);
                            Ok(())
                        })?;
                        lines.push(format!("Untagged: {}", d.familiar()));
                    }
                }
                delete_entries(store, &rec)?;
                lines.push(format!("Deleted: {}", rec.id()));
            }
        }
        Lookup::Id(id) => {
            let repos: HashSet<String> = rec.repo_tags.iter().map(|t| t.repository()).collect();
            if repos.len() > 1 && !force {
                return Err(anyhow!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    id.short()
                ));
            }
            for t in rec.repo_tags.iter().chain(rec.repo_digests.iter()) {
                lines.push(format!("Untagged: {}", t.familiar()));
            }
            delete_entries(store, &rec)?;
            lines.push(format!("Deleted: {id}"));
        }
    }
    Ok(lines)
}

fn delete_entries(store: &Store, rec: &ImageRecord) -> Result<()> {
    let digests: Vec<_> = rec.entries.iter().map(|e| e.descriptor.digest.clone()).collect();
    store.update_refs(|t| {
        for d in &digests {
            t.remove_digest(d);
        }
        Ok(())
    })?;
    Ok(())
}

/// Removes content no image, container or build cache needs; returns docker-style "Deleted:"
/// lines for the removed layers.
pub fn collect_garbage(_ctx: &Ctx, store: &Store) -> Result<Vec<String>> {
    // Roots are computed under the exclusive gc lock (see `Store::gc_with`).
    let rep = store.gc_with(|| crate::cmd::system::gc_roots(_ctx))?;
    Ok(rep.snapshots_removed.iter().map(|d| format!("Deleted: {d}")).collect())
}

pub fn prune(ctx: &Ctx, a: &ImagePruneArgs) -> Result<i32> {
    let store = ctx.store()?;
    let filters = Filters::parse(&a.filter, &["until", "label", "label!", "dangling"])?;
    if !a.force {
        let warning = if a.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        if !crate::cmd::confirm(warning) {
            return Ok(0);
        }
    }
    let until: Option<i64> =
        filters.get("until").first().map(|v| units::parse_timestamp(v, now_unix())).transpose().map_err(|e| {
            anyhow!("invalid filter 'until={}': {e}", filters.get("until").first().copied().unwrap_or(""))
        })?;
    let in_use = crate::cmd::system::images_in_use(ctx)?;
    let before = disk_usage(store);
    let mut lines = Vec::new();
    for rec in store.images()? {
        if !(a.all || rec.is_dangling()) || in_use.contains(rec.id()) {
            continue;
        }
        if let Some(u) = until
            && unix_of(rec.image.config.created.as_deref()) >= u
        {
            continue;
        }
        let labels = filters.get("label");
        if !labels.is_empty() && !labels_match(&rec, &labels) {
            continue;
        }
        let not_labels = filters.get("label!");
        if !not_labels.is_empty() && labels_match(&rec, &not_labels) {
            continue;
        }
        for t in rec.repo_tags.iter().chain(rec.repo_digests.iter()) {
            lines.push(format!("untagged: {}", t.familiar()));
        }
        delete_entries(store, &rec)?;
        lines.push(format!("deleted: {}", rec.id()));
    }
    let layer_lines = collect_garbage(ctx, store)?;
    let after = disk_usage(store);
    let mut out = std::io::stdout().lock();
    if !lines.is_empty() {
        writeln!(out, "Deleted Images:")?;
        for l in lines.iter().chain(layer_lines.iter().map(|l| l.to_lowercase()).collect::<Vec<_>>().iter()) {
            writeln!(out, "{l}")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Total reclaimed space: {}", units::human_size(before.saturating_sub(after) as f64))?;
    Ok(0)
}

/// Bytes used by blobs and unpacked layers.
pub fn disk_usage(store: &Store) -> u64 {
    let blobs: u64 = store.blobs().unwrap_or_default().iter().filter_map(|d| store.blob_size(d)).sum();
    let snaps: u64 =
        store.snapshots().unwrap_or_default().iter().filter_map(|d| store.snapshot_info(d)).map(|i| i.size).sum();
    blobs + snaps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match("nginx", "nginx"));
        assert!(glob_match("ngi*", "nginx"));
        assert!(glob_match("*/nginx", "bitnami/nginx"));
        assert!(!glob_match("*", "bitnami/nginx"));
        assert!(glob_match("nginx:*", "nginx:1.21"));
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(ellipsis("abc", 4), "abc");
    }
}
