//! `manifest create|inspect|annotate|push|rm` (docker manifest) and `buildx imagetools
//! create|inspect`. The work is in berth_transport::lists; this renders.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use berth_registry::Client;
use berth_transport::Quiet;
use berth_transport::lists::{ListEntry, ListStore, LocalList, Remote, assemble, copy_into, fetch, put_list};
use berth_types::{ManifestDoc, Platform, Reference, media};
use serde_json::{Value, json};

use crate::cli::{
    ImagetoolsCmd, ImagetoolsCreateArgs, ImagetoolsInspectArgs, ManifestAnnotateArgs, ManifestCmd, ManifestCreateArgs,
    ManifestInspectArgs, ManifestPushArgs, ManifestRmArgs,
};
use crate::cmd::registry::{client, explain};
use crate::ctx::Ctx;
use crate::errors::{exit_with, hinted_exit};

pub fn manifest(ctx: &Ctx, c: ManifestCmd) -> Result<i32> {
    match c {
        ManifestCmd::Create(a) => create(ctx, &a),
        ManifestCmd::Inspect(a) => inspect(ctx, &a),
        ManifestCmd::Annotate(a) => annotate(ctx, &a),
        ManifestCmd::Push(a) => push(ctx, &a),
        ManifestCmd::Rm(a) => rm(ctx, &a),
    }
}

pub fn imagetools(ctx: &Ctx, c: ImagetoolsCmd) -> Result<i32> {
    match c {
        ImagetoolsCmd::Create(a) => it_create(ctx, &a),
        ImagetoolsCmd::Inspect(a) => it_inspect(ctx, &a),
    }
}

fn parse_ref(s: &str) -> Result<Reference> {
    Ok(Reference::parse_normalized(s).map_err(|e| exit_with(1, format!("{s}: {e}")))?.with_default_tag())
}

/// `--insecure` is honoured through the registries configuration (loopback is always allowed);
/// for another host it must be listed there, so the flag is refused rather than ignored.
fn check_insecure(c: &Client, insecure: bool, r: &Reference) -> Result<()> {
    if insecure && !c.options().registries.is_insecure(r.domain()) {
        return Err(hinted_exit(
            1,
            format!("--insecure: {} is not configured as an insecure registry", r.domain()),
            "list it under \"insecure-registries\" in /etc/berth/registries.json (see docs/registries.md)",
        ));
    }
    Ok(())
}

fn fetch_remote(ctx: &Ctx, c: &Client, r: &Reference) -> Result<Remote> {
    ctx.block_on(fetch(c, r))?.map_err(|e| match e {
        berth_transport::TransportError::Registry(re) => explain(*re, r.domain()),
        other => anyhow!(other),
    })
}

fn create(ctx: &Ctx, a: &ManifestCreateArgs) -> Result<i32> {
    let store = ctx.store()?;
    let lists = ListStore::open(store);
    let name = parse_ref(&a.list)?;
    let existing = lists.load(&name)?;
    if existing.is_some() && !a.amend {
        return Err(exit_with(
            1,
            format!("refusing to amend an existing manifest list with no --amend flag ({})", name.familiar()),
        ));
    }
    let c = client(ctx)?;
    check_insecure(&c, a.insecure, &name)?;
    let mut list = existing.unwrap_or(LocalList { name: name.to_string(), entries: vec![] });
    for i in &a.images {
        let r = parse_ref(i)?;
        check_insecure(&c, a.insecure, &r)?;
        let remote = fetch_remote(ctx, &c, &r)?;
        if matches!(remote.doc, ManifestDoc::Index(_)) {
            return Err(exit_with(1, format!("{} is a manifest list", r.familiar())));
        }
        let entry = ListEntry { reference: r.to_string(), descriptor: remote.desc };
        // Amending with an image already listed replaces its entry.
        list.entries.retain(|e| e.reference != entry.reference && e.descriptor.digest != entry.descriptor.digest);
        list.entries.push(entry);
    }
    lists.save(&list)?;
    println!("Created manifest list {name}");
    Ok(0)
}

fn find_entry<'a>(list: &'a mut LocalList, image: &Reference) -> Option<&'a mut ListEntry> {
    let s = image.to_string();
    list.entries.iter_mut().find(|e| e.reference == s || image.digest().is_some_and(|d| &e.descriptor.digest == d))
}

fn annotate(ctx: &Ctx, a: &ManifestAnnotateArgs) -> Result<i32> {
    let store = ctx.store()?;
    let lists = ListStore::open(store);
    let name = parse_ref(&a.list)?;
    let mut list = lists.load(&name)?.ok_or_else(|| exit_with(1, format!("No such manifest: {}", name.familiar())))?;
    let image = parse_ref(&a.image)?;
    let entry = find_entry(&mut list, &image)
        .ok_or_else(|| exit_with(1, format!("manifest for image {} does not exist in {}", image, name)))?;
    let mut p = entry.descriptor.platform.clone().unwrap_or_default();
    if let Some(os) = &a.os {
        p.os = os.clone();
    }
    if let Some(arch) = &a.arch {
        p.architecture = arch.clone();
    }
    if let Some(v) = &a.variant {
        p.variant = if v.is_empty() { None } else { Some(v.clone()) };
    }
    if !a.os_features.is_empty() {
        p.os_features = Some(a.os_features.clone());
    }
    if let Some(v) = &a.os_version {
        p.os_version = Some(v.clone());
    }
    // docker checks the pair against Go's known values.
    Platform::parse(&format!("{}/{}", p.os, p.architecture)).map_err(|_| {
        exit_with(
            1,
            format!("manifest entry for image has unsupported os/arch combination: {}/{}", p.os, p.architecture),
        )
    })?;
    entry.descriptor.platform = Some(p);
    lists.save(&list)?;
    Ok(0)
}

/// docker manifest inspect's layout: JSON indented with tabs.
fn pretty(v: &Value) -> Result<String> {
    use serde::Serialize;
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(b"\t"));
    v.serialize(&mut ser)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// docker's `--verbose` record for one image manifest.
fn verbose_entry(reference: &str, desc: &berth_types::Descriptor, raw: &[u8]) -> Result<Value> {
    let body: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    let key = if media::is_docker(&desc.media_type) { "SchemaV2Manifest" } else { "OCIManifest" };
    let mut v = json!({
        "Ref": reference,
        "Descriptor": desc,
        "Raw": base64_encode(raw),
    });
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_string(), body);
    }
    Ok(v)
}

fn base64_encode(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, x)| acc | (u32::from(*x) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn inspect(ctx: &Ctx, a: &ManifestInspectArgs) -> Result<i32> {
    let store = ctx.store()?;
    let lists = ListStore::open(store);
    let c = client(ctx)?;
    let mut out = std::io::stdout().lock();
    // `inspect LIST IMAGE`: one entry of a local list.
    if let [list, image] = a.refs.as_slice() {
        let name = parse_ref(list)?;
        let mut l = lists.load(&name)?.ok_or_else(|| exit_with(1, format!("No such manifest: {}", name.familiar())))?;
        let image = parse_ref(image)?;
        let e = find_entry(&mut l, &image)
            .ok_or_else(|| exit_with(1, format!("manifest for image {image} does not exist in {name}")))?
            .clone();
        let r = parse_ref(&e.reference)?.with_digest(e.descriptor.digest.clone());
        let remote = fetch_remote(ctx, &c, &r)?;
        let v = if a.verbose {
            verbose_entry(&e.reference, &e.descriptor, &remote.bytes)?
        } else {
            serde_json::from_slice(&remote.bytes)?
        };
        writeln!(out, "{}", pretty(&v)?)?;
        return Ok(0);
    }
    let name = parse_ref(a.refs.first().map(String::as_str).unwrap_or_default())?;
    check_insecure(&c, a.insecure, &name)?;
    // A local list first, as docker does.
    if let Some(l) = lists.load(&name)? {
        if a.verbose {
            let mut items = Vec::new();
            for e in &l.entries {
                let r = parse_ref(&e.reference)?.with_digest(e.descriptor.digest.clone());
                let remote = fetch_remote(ctx, &c, &r)?;
                items.push(verbose_entry(&e.reference, &e.descriptor, &remote.bytes)?);
            }
            writeln!(out, "{}", pretty(&Value::Array(items))?)?;
        } else {
            let (_, bytes) = l.document()?;
            writeln!(out, "{}", pretty(&serde_json::from_slice(&bytes)?)?)?;
        }
        return Ok(0);
    }
    let remote = fetch_remote(ctx, &c, &name)?;
    if !a.verbose {
        writeln!(out, "{}", pretty(&serde_json::from_slice(&remote.bytes)?)?)?;
        return Ok(0);
    }
    match &remote.doc {
        ManifestDoc::Image(_) => {
            writeln!(out, "{}", pretty(&verbose_entry(&name.to_string(), &remote.desc, &remote.bytes)?)?)?;
        }
        ManifestDoc::Index(i) => {
            let mut items = Vec::new();
            for d in &i.manifests {
                let r = name.repo_only().with_digest(d.digest.clone());
                let child = fetch_remote(ctx, &c, &r)?;
                items.push(verbose_entry(&name.to_string(), d, &child.bytes)?);
            }
            writeln!(out, "{}", pretty(&Value::Array(items))?)?;
        }
    }
    Ok(0)
}

fn push(ctx: &Ctx, a: &ManifestPushArgs) -> Result<i32> {
    let store = ctx.store()?;
    let lists = ListStore::open(store);
    let name = parse_ref(&a.list)?;
    let list = lists.load(&name)?.ok_or_else(|| exit_with(1, format!("No such manifest: {}", name.familiar())))?;
    if list.entries.is_empty() {
        return Err(exit_with(1, format!("{} has no entries", name.familiar())));
    }
    let c = client(ctx)?;
    check_insecure(&c, a.insecure, &name)?;
    for e in &list.entries {
        let src = parse_ref(&e.reference)?.with_digest(e.descriptor.digest.clone());
        ctx.block_on(copy_into(&c, &src, &name, Arc::new(Quiet)))?.map_err(|err| match err {
            berth_transport::TransportError::Registry(re) => explain(*re, name.domain()),
            other => anyhow!(other),
        })?;
    }
    let (desc, bytes) = list.document()?;
    let digest = ctx.block_on(put_list(&c, &name, &desc, &bytes))?.map_err(|err| match err {
        berth_transport::TransportError::Registry(re) => explain(*re, name.domain()),
        other => anyhow!(other),
    })?;
    println!("{digest}");
    if a.purge {
        lists.remove(&name)?;
    }
    Ok(0)
}

fn rm(ctx: &Ctx, a: &ManifestRmArgs) -> Result<i32> {
    let store = ctx.store()?;
    let lists = ListStore::open(store);
    let mut failed = false;
    for l in &a.lists {
        let name = parse_ref(l)?;
        if !lists.remove(&name)? {
            eprintln!("Error: No such manifest: {}", name.familiar());
            failed = true;
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// `--annotation KEY=VALUE` or `index:KEY=VALUE` (the index is the only level berth writes
/// annotations to; other levels are refused).
fn parse_annotations(v: &[String]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for a in v {
        let (k, val) =
            a.split_once('=').ok_or_else(|| exit_with(1, format!("invalid annotation {a:?}: expected KEY=VALUE")))?;
        let k = match k.split_once(':') {
            Some(("index", key)) => key,
            Some((level, _)) if !level.contains('.') => {
                return Err(exit_with(
                    1,
                    format!(
                        "annotation {a:?}: only index-level annotations are supported (KEY=VALUE or index:KEY=VALUE)"
                    ),
                ));
            }
            _ => k,
        };
        out.push((k.to_string(), val.to_string()));
    }
    Ok(out)
}

fn it_create(ctx: &Ctx, a: &ImagetoolsCreateArgs) -> Result<i32> {
    if !a.files.is_empty() {
        return Err(exit_with(1, "--file (source descriptors from files) is not supported yet"));
    }
    if a.tags.is_empty() && !a.dry_run {
        return Err(exit_with(1, "no tags specified: use -t NAME"));
    }
    let tags: Vec<Reference> = a.tags.iter().map(|t| parse_ref(t)).collect::<Result<_>>()?;
    let c = client(ctx)?;
    let mut sources = Vec::new();
    if a.append {
        let first = tags.first().ok_or_else(|| exit_with(1, "--append needs a -t NAME to append to"))?;
        sources.push(fetch_remote(ctx, &c, first)?);
    }
    for s in &a.sources {
        let r = parse_ref(s)?;
        sources.push(fetch_remote(ctx, &c, &r)?);
    }
    if sources.is_empty() {
        return Err(exit_with(1, "no sources specified"));
    }
    let annotations = parse_annotations(&a.annotations)?;
    let (desc, bytes) = assemble(&sources, &annotations)?;
    if a.dry_run {
        println!("{}", String::from_utf8_lossy(&bytes));
        return Ok(0);
    }
    for t in &tags {
        for s in &sources {
            // The source's whole content (an index with all its platforms) by digest, blobs
            // mounted from the source repository when it is on the same registry.
            let src = s.reference.repo_only().with_digest(s.desc.digest.clone());
            ctx.block_on(copy_into(&c, &src, t, Arc::new(Quiet)))?.map_err(|err| match err {
                berth_transport::TransportError::Registry(re) => explain(*re, t.domain()),
                other => anyhow!(other),
            })?;
        }
        ctx.block_on(put_list(&c, t, &desc, &bytes))?.map_err(|err| match err {
            berth_transport::TransportError::Registry(re) => explain(*re, t.domain()),
            other => anyhow!(other),
        })?;
        eprintln!("pushed {} to {}", desc.digest, t);
    }
    Ok(0)
}

/// buildx's platform text: `os/arch[/variant]` exactly as the descriptor says.
fn platform_text(p: &Platform) -> String {
    let mut s = format!("{}/{}", p.os, p.architecture);
    if let Some(v) = p.variant.as_deref().filter(|v| !v.is_empty()) {
        s.push('/');
        s.push_str(v);
    }
    s
}

fn it_inspect(ctx: &Ctx, a: &ImagetoolsInspectArgs) -> Result<i32> {
    if a.raw && a.format.is_some() {
        return Err(exit_with(1, "--format and --raw cannot be used together"));
    }
    let r = parse_ref(&a.name)?;
    let c = client(ctx)?;
    let remote = fetch_remote(ctx, &c, &r)?;
    let mut out = std::io::stdout().lock();
    if a.raw {
        out.write_all(&remote.bytes)?;
        if !remote.bytes.ends_with(b"\n") {
            writeln!(out)?;
        }
        return Ok(0);
    }
    // buildx's `.Manifest`: the document with its descriptor's digest and size.
    let mut m: Value = serde_json::from_slice(&remote.bytes)?;
    if let Some(o) = m.as_object_mut() {
        o.insert("digest".into(), json!(remote.desc.digest.to_string()));
        o.insert("size".into(), json!(remote.desc.size));
    }
    if let Some(f) = &a.format {
        let data = json!({ "Name": r.to_string(), "Manifest": m });
        let t = berth_output::Template::parse(f).map_err(|e| exit_with(1, format!("template: {e}")))?;
        let s = t.execute(&data).map_err(|e| exit_with(1, format!("template: {e}")))?;
        writeln!(out, "{s}")?;
        return Ok(0);
    }
    writeln!(out, "Name:      {r}")?;
    writeln!(out, "MediaType: {}", remote.desc.media_type)?;
    writeln!(out, "Digest:    {}", remote.desc.digest)?;
    if let ManifestDoc::Index(i) = &remote.doc {
        writeln!(out, "           ")?;
        writeln!(out, "Manifests: ")?;
        for (n, d) in i.manifests.iter().enumerate() {
            if n > 0 {
                writeln!(out, "           ")?;
            }
            writeln!(out, "  Name:        {}@{}", r.repo_only(), d.digest)?;
            writeln!(out, "  MediaType:   {}", d.media_type)?;
            if let Some(p) = &d.platform {
                writeln!(out, "  Platform:    {}", platform_text(p))?;
                if let Some(v) = &p.os_version {
                    writeln!(out, "  OSVersion:   {v}")?;
                }
                if let Some(f) = p.os_features.as_ref().filter(|f| !f.is_empty()) {
                    writeln!(out, "  OSFeatures:  {}", f.join(", "))?;
                }
            }
            if let Some(ann) = d.annotations.as_ref().filter(|a| !a.is_empty()) {
                writeln!(out, "  Annotations: ")?;
                for (k, v) in ann {
                    writeln!(out, "    {k}: {v}")?;
                }
            }
        }
    }
    Ok(0)
}
