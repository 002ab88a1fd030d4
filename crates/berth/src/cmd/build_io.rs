//! `berth build` inputs and outputs that buildx users rely on, kept apart from the main flow:
//! output specs in buildx's CSV syntax, `--ssh`, `--metadata-file`, tar streams to stdout,
//! and the buildx flags berth refuses (never accepted and ignored).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use berth_store::Store;
use berth_types::{Descriptor, Reference};

use crate::cli::BuildArgs;
use crate::errors::exit_with;

/// Splits a buildx CSV value into fields: commas separate, double quotes group
/// (`type=image,"name=a,b",push=true`).
pub fn csv_fields(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect()
}

/// An `--output` value as key/value pairs. A bare field after `name=` continues the name list
/// (`name=a,b`), as users write it for buildx.
pub fn output_kv(spec: &str) -> Result<BTreeMap<String, String>> {
    let mut kv: BTreeMap<String, String> = BTreeMap::new();
    let mut last = String::new();
    for f in csv_fields(spec) {
        match f.split_once('=') {
            Some((k, v)) => {
                last = k.trim().to_lowercase();
                kv.insert(last.clone(), v.trim().to_string());
            }
            None if last == "name" => {
                if let Some(n) = kv.get_mut("name") {
                    n.push(',');
                    n.push_str(&f);
                }
            }
            None => return Err(exit_with(1, format!("invalid value {f:?} in output {spec:?}: expected key=value"))),
        }
    }
    Ok(kv)
}

/// Refuses output attributes berth does not implement (never ignores them).
pub fn check_output_keys(spec: &str, ty: &str, kv: &BTreeMap<String, String>) -> Result<()> {
    let allowed: &[&str] = match ty {
        "image" => &["type", "name", "push", "oci-mediatypes"],
        "registry" => &["type", "name", "push", "oci-mediatypes"],
        "docker" | "oci" => &["type", "dest", "name", "oci-mediatypes"],
        _ => &["type", "dest"],
    };
    for k in kv.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(exit_with(
                1,
                format!(
                    "output {spec:?}: berth does not support the {k:?} attribute of type={ty} (supported: {})",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses `--cache-from`/`--cache-to` attributes berth does not implement.
pub fn check_cache_keys(flag: &str, spec: &str, kv: &BTreeMap<String, String>) -> Result<()> {
    let allowed: &[&str] =
        if flag == "--cache-to" { &["type", "ref", "dest", "mode"] } else { &["type", "ref", "src"] };
    for k in kv.keys() {
        if !allowed.contains(&k.as_str()) && spec.contains('=') {
            return Err(exit_with(
                1,
                format!(
                    "{flag} {spec:?}: berth does not support the {k:?} attribute (supported: {})",
                    allowed.join(", ")
                ),
            ));
        }
    }
    if flag == "--cache-to"
        && kv.get("type").map(String::as_str) == Some("inline")
        && kv.get("mode").is_some_and(|m| m != "min")
    {
        return Err(exit_with(1, format!("{flag} {spec:?}: the inline cache supports mode=min only")));
    }
    Ok(())
}

/// Parses `name=a,b` into references (tags default to `latest`).
pub fn output_names(spec: &str, kv: &BTreeMap<String, String>) -> Result<Vec<Reference>> {
    let mut out = Vec::new();
    for n in kv.get("name").map(|s| s.split(',').collect::<Vec<_>>()).unwrap_or_default() {
        let n = n.trim();
        if n.is_empty() {
            continue;
        }
        let r = Reference::parse_normalized(n)
            .map_err(|e| exit_with(1, format!("output {spec:?}: invalid name {n:?}: {e}")))?;
        out.push(r.with_default_tag());
    }
    Ok(out)
}

/// Stdout for an exporter writing a tar stream, refused on a terminal (buildx's words).
pub fn tar_stdout(exporter: &str) -> Result<Box<dyn std::io::Write + Send>> {
    if std::io::stdout().is_terminal() {
        return Err(exit_with(
            1,
            format!("dest file is required for {exporter} exporter. refusing to write to console"),
        ));
    }
    Ok(Box::new(std::io::stdout()))
}

/// Buildx flags berth does not implement: an error naming them, never a silent ignore.
pub fn refuse_unsupported(a: &BuildArgs) -> Result<()> {
    let mut refused: Vec<&str> = Vec::new();
    if !a.allow.is_empty() {
        refused.push("--allow");
    }
    if a.builder.as_deref().is_some_and(|b| b != "default") {
        refused.push("--builder (berth has one built-in builder, \"default\")");
    }
    if a.cgroup_parent.is_some() {
        refused.push("--cgroup-parent");
    }
    if a.shm_size.is_some() {
        refused.push("--shm-size");
    }
    if !a.ulimit.is_empty() {
        refused.push("--ulimit");
    }
    match refused.first() {
        Some(f) => Err(exit_with(1, format!("berth build does not support {f}"))),
        None => Ok(()),
    }
}

/// `--ssh default|ID[=SOCKET|KEY[,KEY…]]`: agent sockets per id. Key files are loaded into an
/// `ssh-agent` berth starts for this build (returned, so that it lives as long as the build).
pub fn parse_ssh(raw: &[String], tmp: &Path) -> Result<(BTreeMap<String, PathBuf>, Vec<berth_build::ssh::KeyAgent>)> {
    let mut sockets = BTreeMap::new();
    let mut agents = Vec::new();
    for s in raw {
        let (id, paths) = match s.split_once('=') {
            Some((id, p)) => (id.trim().to_string(), csv_fields(p)),
            None => (s.trim().to_string(), Vec::new()),
        };
        if id.is_empty() {
            return Err(exit_with(1, format!("invalid --ssh {s:?}: expected default|ID[=SOCKET|KEY[,KEY…]]")));
        }
        let paths: Vec<PathBuf> = paths.iter().map(|p| expand_home(p)).collect();
        let socket = if paths.is_empty() {
            match std::env::var_os("SSH_AUTH_SOCK").filter(|v| !v.is_empty()) {
                Some(p) => PathBuf::from(p),
                None => {
                    return Err(exit_with(
                        1,
                        format!("invalid empty ssh agent socket: make sure SSH_AUTH_SOCK is set (--ssh {s})"),
                    ));
                }
            }
        } else if paths.len() == 1 && is_socket(&paths[0]) {
            paths[0].clone()
        } else {
            let agent =
                berth_build::ssh::KeyAgent::start(&paths, tmp).map_err(|e| exit_with(1, format!("--ssh {id}: {e}")))?;
            let p = agent.socket().to_path_buf();
            agents.push(agent);
            p
        };
        sockets.insert(id, socket);
    }
    Ok((sockets, agents))
}

fn is_socket(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(p).map(|m| m.file_type().is_socket()).unwrap_or(false)
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(h)) => PathBuf::from(h).join(rest),
        _ => PathBuf::from(p),
    }
}

/// The manifest descriptor a push of `name` sent to the registry (the store remembers it as a
/// `repo@digest` name of the image).
pub fn pushed_descriptor(store: &Store, name: &Reference) -> Option<Descriptor> {
    let rec = store.find_image(&name.to_string()).ok()?;
    let rd = rec.repo_digests.iter().rev().find(|r| r.repository() == name.repository())?;
    crate::cmd::images::source_descriptor(store, &rd.to_string(), &rec).ok()
}

/// `--metadata-file`: buildx's keys for an image build.
pub fn write_metadata(path: &Path, manifest: &Descriptor, config_digest: &str, names: &[Reference]) -> Result<()> {
    let mut m = serde_json::Map::new();
    m.insert("buildx.build.ref".into(), serde_json::Value::String(format!("berth/berth0/{}", build_ref())));
    m.insert("containerimage.config.digest".into(), config_digest.into());
    let mut desc = serde_json::json!({
        "mediaType": manifest.media_type,
        "digest": manifest.digest.to_string(),
        "size": manifest.size,
    });
    if let Some(a) = &manifest.annotations {
        desc["annotations"] = serde_json::to_value(a)?;
    }
    m.insert("containerimage.descriptor".into(), desc);
    m.insert("containerimage.digest".into(), manifest.digest.to_string().into());
    if !names.is_empty() {
        let n: Vec<String> = names.iter().map(|r| r.to_string()).collect();
        m.insert("image.name".into(), n.join(",").into());
    }
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(m))?;
    std::fs::write(path, text).with_context(|| format!("writing metadata file {}", path.display()))?;
    Ok(())
}

/// A random build reference (buildx's are 25 base-36 characters).
fn build_ref() -> String {
    let mut b = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).is_ok();
    if !ok {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        b = (t ^ (std::process::id() as u128) << 64).to_le_bytes();
    }
    let mut n = u128::from_le_bytes(b);
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = String::new();
    for _ in 0..25 {
        s.push(digits[(n % 36) as usize] as char);
        n /= 36;
    }
    s
}

/// A remote build context, resolved into a local directory (kept while the guard lives).
pub enum Remote {
    /// A directory: a git checkout (at `dir`, maybe a subdir of the guard) or an extracted tar.
    Dir { guard: tempfile::TempDir, dir: PathBuf },
    /// A URL that served a plain text file: the Dockerfile, with no context (as BuildKit).
    Dockerfile(Vec<u8>),
}

/// Whether `s` is a context URL berth resolves remotely.
pub fn is_remote(s: &str) -> bool {
    berth_build::remote::GitUrl::parse(s).is_some() || s.starts_with("http://") || s.starts_with("https://")
}

/// Resolves a git or HTTP(S) context (`--build-context` values too). `Ok(None)` when `s` is
/// not remote.
pub fn resolve_remote(ctx: &crate::ctx::Ctx, s: &str, tmp: &Path, keep_git_dir: bool) -> Result<Option<Remote>> {
    let guard = tempfile::Builder::new().prefix("berth-remote-").tempdir_in(tmp)?;
    if let Some(url) = berth_build::remote::GitUrl::parse(s) {
        let co = berth_build::remote::checkout(&url, guard.path(), keep_git_dir)
            .map_err(|e| exit_with(1, format!("unable to prepare context: {e}")))?;
        return Ok(Some(Remote::Dir { dir: co.dir, guard }));
    }
    if !(s.starts_with("http://") || s.starts_with("https://")) {
        return Ok(None);
    }
    let file = guard.path().join("download");
    download(ctx, s, &file)?;
    let mut head = [0u8; 300];
    let n = std::fs::File::open(&file).and_then(|mut f| f.read(&mut head))?;
    let head = &head[..n];
    let tar = n > 262 && &head[257..262] == b"ustar";
    let compressed =
        !matches!(berth_archive::ArchiveCompression::detect(head), berth_archive::ArchiveCompression::None);
    if !tar && !compressed {
        let data = std::fs::read(&file)?;
        return Ok(Some(Remote::Dockerfile(data)));
    }
    let dir = guard.path().join("context");
    std::fs::create_dir_all(&dir)?;
    // Any compression (gzip, zstd, xz, bzip2) is decoded in-process, so the context is the same
    // on every host.
    let (_, tar) = berth_archive::decode_any(std::fs::File::open(&file)?)
        .with_context(|| format!("reading the build context from {s}"))?;
    berth_archive::apply_layer(&dir, std::io::BufReader::new(tar), &berth_archive::ApplyOptions::default())
        .with_context(|| format!("extracting the build context from {s}"))?;
    let _ = std::fs::remove_file(&file);
    Ok(Some(Remote::Dir { guard, dir }))
}

/// Streams `url` into `dest` (a fresh file) with berth's own HTTP client: the registry
/// configuration's proxies, certs.d roots, insecure settings and redirect rules, never any
/// credentials.
fn download(ctx: &crate::ctx::Ctx, url: &str, dest: &Path) -> Result<()> {
    let client = crate::cmd::registry::client(ctx)?;
    let mut f = std::fs::File::create(dest)?;
    ctx.block_on(client.download(url, &mut f, u64::MAX))?
        .map_err(|e| exit_with(1, format!("unable to prepare context: {url}: {e}")))?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_specs_in_buildx_csv() {
        let kv = output_kv("type=image,\"name=a,b\",push=true").unwrap();
        assert_eq!(kv["name"], "a,b");
        assert_eq!(kv["push"], "true");
        let kv = output_kv("type=image,name=a,b:1,push=true").unwrap();
        assert_eq!(kv["name"], "a,b:1");
        assert!(output_kv("type=tar,oops").is_err());
        assert_eq!(build_ref().len(), 25);
    }
}
