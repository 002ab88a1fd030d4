//! pull, push, login, logout, search.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use berth_config::{AuthEntry, Keychain, RegistriesConfig, StoredIn};
use berth_output::progress::TransferProgress;
use berth_registry::{Client, ClientOptions, RegistryError};
use berth_transport::registry::{RegistrySink, RegistrySource};
use berth_transport::{CopyOptions, Observer, Quiet, Sink, Source, StoreSink, copy_one, copy_root};
use berth_types::{Compression, Reference};
use serde_json::json;

use crate::cli::{LoginArgs, LogoutArgs, PullArgs, PushArgs, SearchArgs};
use crate::cmd::archive::parse_platform;
use crate::ctx::Ctx;
use crate::errors::{exit_with, hinted};
use crate::progress::{Direction, TransferObserver};

/// A registry client with the user's credentials, registries configuration and certs.d.
pub fn client(ctx: &Ctx) -> Result<Client> {
    let keychain = Keychain::load(&ctx.config_dir)
        .with_context(|| format!("reading {}", ctx.config_dir.join("config.json").display()))?;
    for w in keychain.take_warnings() {
        eprintln!("WARNING: {}", w.0);
    }
    let registries = RegistriesConfig::load().context("reading registry configuration")?;
    let mut opts =
        ClientOptions { credentials: Arc::new(keychain), registries: Arc::new(registries), ..ClientOptions::default() };
    // Docker Hub's search API, replaceable where index.docker.io is unreachable (tests, the tour).
    if let Some(url) = std::env::var("BERTH_HUB_SEARCH_URL").ok().filter(|u| !u.is_empty()) {
        opts.hub_search_url = url;
    }
    Ok(Client::new(opts))
}

/// Adds docker's hints to registry errors.
pub fn explain(e: RegistryError, host: &str) -> anyhow::Error {
    let status = e.status();
    let text = e.to_string();
    match status {
        // The registry client's message already ends with the login hint.
        Some(401) if text.contains("berth login") => anyhow!(text),
        Some(401) => hinted(anyhow!(text), format!("log in with 'berth login {host}'")),
        _ if text.contains("HTTP response to HTTPS client") || text.contains("InvalidContentType") => hinted(
            anyhow!(text),
            format!(
                "{host} speaks plain HTTP: list it under \"insecure-registries\" in /etc/berth/registries.json (see docs/registries.md)"
            ),
        ),
        _ => anyhow!(text),
    }
}

fn transport_err(e: berth_transport::TransportError, host: &str) -> anyhow::Error {
    match e {
        berth_transport::TransportError::Registry(r) => explain(*r, host),
        other => anyhow::Error::new(other),
    }
}

/// The progress observer; `to_stdout` is docker's stream for `pull`/`push` (the implicit pull of
/// `run` writes to stderr).
fn observer(quiet: bool, dir: Direction, to_stdout: bool) -> (Arc<dyn Observer>, Option<TransferProgress>) {
    if quiet {
        return (Arc::new(Quiet), None);
    }
    let p = if to_stdout { TransferProgress::stdout(false) } else { TransferProgress::stderr(false) };
    (Arc::new(TransferObserver::new(p.clone(), dir)), Some(p))
}

pub fn pull(ctx: &Ctx, a: &PullArgs) -> Result<i32> {
    let parsed = Reference::parse_normalized(&a.name).map_err(|e| exit_with(1, e.to_string()))?;
    let client = client(ctx)?;
    let refs: Vec<Reference> = if a.all_tags {
        if parsed.tag().is_some() || parsed.digest().is_some() {
            return Err(exit_with(1, "tag can't be used with --all-tags/-a"));
        }
        let tags = ctx.block_on(client.list_tags(&parsed))?.map_err(|e| explain(e, parsed.domain()))?;
        tags.iter().filter_map(|t| parsed.with_tag(t).ok()).collect()
    } else {
        if parsed.tag().is_none() && parsed.digest().is_none() && !a.quiet {
            println!("Using default tag: latest");
        }
        vec![parsed.clone().with_default_tag()]
    };
    let mut last = String::new();
    for r in refs {
        last = pull_one(ctx, &client, &r, a, true)?;
        if !a.quiet && a.all_tags {
            // docker prints a status line per tag and the repository at the end
        }
    }
    let mut out = std::io::stdout().lock();
    if a.all_tags {
        writeln!(out, "{}", parsed.repository())?;
    } else {
        writeln!(out, "{last}")?;
    }
    Ok(0)
}

/// Applies the signature policy to a pull of `r`. `Ok(None)`: the policy asks for nothing (no
/// policy file, or insecureAcceptAnything). `Ok(Some(pinned))`: the image was checked; pull
/// `pinned` (`r` with the checked manifest digest) so that what is stored is what was checked.
pub fn enforce_policy(ctx: &Ctx, client: &Client, r: &Reference) -> Result<Option<Reference>> {
    let Some(policy) = ctx.policy()? else { return Ok(None) };
    let app = policy.applicable(r)?;
    if !app.needs_signatures() {
        return Ok(None);
    }
    policy.check_reject(r, &app)?;
    let digest = match r.digest() {
        Some(d) => d.clone(),
        None => match ctx.block_on(client.head_manifest(r))?.map_err(|e| explain(e, r.domain()))? {
            Some(info) => info.digest,
            None => ctx.block_on(client.get_manifest(r))?.map_err(|e| explain(e, r.domain()))?.digest,
        },
    };
    let sigs = ctx
        .block_on(berth_sign::cosign::fetch_signatures(client, r, &digest))?
        .map_err(|e| anyhow!("reading the signatures of {}: {e}", r.familiar()))?;
    policy.check(r, &digest, &app, &sigs)?;
    Ok(Some(r.with_digest(digest)))
}

/// Pulls one reference into the store; returns the fully qualified reference string. Progress
/// goes to stdout when `to_stdout` (`pull`), else to stderr (`run`'s implicit pull).
pub fn pull_one(ctx: &Ctx, client: &Client, r: &Reference, a: &PullArgs, to_stdout: bool) -> Result<String> {
    let store = ctx.store()?;
    let (obs, progress) = observer(a.quiet, Direction::Pull, to_stdout);
    let label = r.tag().map(str::to_string).unwrap_or_else(|| r.digest().map(|d| d.to_string()).unwrap_or_default());
    if let Some(p) = &progress {
        p.id_message(&label, &format!("Pulling from {}", r.familiar_repository_path()));
    }
    let pinned = enforce_policy(ctx, client, r)?;
    let before_desc = store.ref_descriptor(r)?;
    let before = before_desc.as_ref().map(|d| d.digest.clone());
    // Docker's "up to date" means the name already points to the same image ID (config digest):
    // a pushed image's local manifest (uncompressed layers) differs from the registry's.
    let before_id = before_desc.as_ref().and_then(|d| store.load_image(d).ok()).map(|img| img.id);
    let platform = parse_platform(a.platform.as_deref())?;
    // Up to date? A HEAD (which registries do not count as a pull) tells the current digest.
    if let Some(local) = &before_desc
        && r.digest().is_none()
        && !a.all_platforms
        && let Ok(Ok(Some(info))) = ctx.block_on(client.head_manifest(r))
        && up_to_date(store, r, local, &info.digest, platform.as_ref(), before_id.as_ref())?
    {
        if let Some(p) = &progress {
            p.message(&format!("Digest: {}", info.digest));
            p.message(&format!("Status: Image is up to date for {}", r.familiar()));
        }
        return Ok(r.to_string());
    }
    let src = Source::Registry(Box::new(RegistrySource::new(client.clone(), pinned.unwrap_or_else(|| r.clone()))));
    let sink = Sink::Store(StoreSink::new(store)?);
    let opts = CopyOptions {
        platform,
        all_platforms: a.all_platforms,
        max_concurrent: a.max_concurrent_downloads.max(1),
        names: vec![r.clone()],
        ..Default::default()
    };
    let copied = ctx.block_on(copy_one(&src, &sink, &opts, obs))?.map_err(|e| transport_err(e, r.domain()))?;
    if let Some(p) = &progress {
        p.message(&format!("Digest: {}", copied.source_digest));
        let after_id = store.load_image(&copied.finished.desc).ok().map(|img| img.id);
        let same =
            before.as_ref() == Some(&copied.finished.desc.digest) || (before_id.is_some() && after_id == before_id);
        if copied.transferred || !same {
            p.message(&format!("Status: Downloaded newer image for {}", r.familiar()));
        } else {
            p.message(&format!("Status: Image is up to date for {}", r.familiar()));
        }
    }
    Ok(r.to_string())
}

/// Whether the name already holds what a pull of `remote` (the registry's current top-level
/// digest) for `platform` would give, so nothing needs fetching.
///
/// A name pointing at that index is up to date only when the index's manifest for the wanted
/// platform (the host's by default) is complete in the store; a platform the index lacks is an
/// error listing the ones it has. A name pointing at a single manifest (pulled before the store
/// kept indexes) is up to date for the host's platform when `repo@remote` is the same image.
fn up_to_date(
    store: &berth_store::Store,
    r: &Reference,
    local: &berth_types::Descriptor,
    remote: &berth_types::Digest,
    platform: Option<&berth_types::Platform>,
    local_id: Option<&berth_types::Digest>,
) -> Result<bool> {
    use berth_transport::index::{StoredPlatform, stored_index, stored_platform};
    if &local.digest == remote
        && let Some(idx) = stored_index(store, local)?
    {
        let want = platform.cloned().unwrap_or_else(berth_types::Platform::host);
        return match stored_platform(store, &idx, &want) {
            Ok(StoredPlatform::Complete(_)) => Ok(true),
            Ok(StoredPlatform::Missing(_)) => Ok(false),
            Err(e) => Err(exit_with(1, e.to_string())),
        };
    }
    if platform.is_some() {
        return Ok(false);
    }
    let pulled_from = r.repo_only().with_digest(remote.clone());
    let same = store.ref_descriptor(&pulled_from)?.is_some_and(|d| {
        d.digest == local.digest
            || (local_id.is_some() && store.load_image(&d).ok().map(|img| img.id).as_ref() == local_id)
    });
    Ok(same && berth_transport::index::image_complete(store, local))
}

pub fn push(ctx: &Ctx, a: &PushArgs) -> Result<i32> {
    let store = ctx.store()?;
    let parsed = Reference::parse_normalized(&a.name).map_err(|e| exit_with(1, e.to_string()))?;
    let compression = match a.compression_format.as_str() {
        "gzip" => Compression::Gzip,
        "zstd" => Compression::Zstd,
        other => return Err(exit_with(1, format!("unsupported compression format {other:?} (use gzip or zstd)"))),
    };
    let targets: Vec<Reference> = if a.all_tags {
        store
            .images()?
            .iter()
            .flat_map(|rec| rec.repo_tags.clone())
            .filter(|t| t.repository() == parsed.repository())
            .collect()
    } else {
        vec![parsed.clone().with_default_tag()]
    };
    if targets.is_empty() {
        return Err(exit_with(1, format!("An image does not exist locally with the tag: {}", parsed.familiar())));
    }
    let platform = parse_platform(a.platform.as_deref())?;
    let client = client(ctx)?;
    let (obs, progress) = observer(a.quiet, Direction::Push, true);
    if let Some(p) = &progress {
        p.message(&format!("The push refers to repository [{}]", parsed.repository()));
    }
    for t in &targets {
        let rec = store
            .find_image(&t.to_string())
            .map_err(|_| exit_with(1, format!("An image does not exist locally with the tag: {}", t.familiar())))?;
        let desc = crate::cmd::images::source_descriptor(store, &t.to_string(), &rec)?;
        // Blobs may be mountable from repositories of the same registry this image came from.
        let mounts: Vec<String> = rec
            .repo_tags
            .iter()
            .chain(rec.repo_digests.iter())
            .filter(|r| r.domain() == t.domain() && r.path() != t.path())
            .map(|r| r.path().to_string())
            .collect();
        // A multi-platform image goes whole (each platform by digest, then the index under the
        // tag) unless --platform picks one.
        if platform.is_none()
            && let Some(idx) = berth_transport::index::stored_index(store, &desc)?
        {
            let sink = Sink::Registry(Box::new(
                RegistrySink::new(client.clone(), t.clone()).with_mount_candidates(mounts.clone()),
            ));
            let line = push_index(ctx, store, &sink, t, &desc, &idx, compression, a, obs.clone())?;
            writeln!(std::io::stdout().lock(), "{}", if a.quiet { t.familiar() } else { line })?;
            continue;
        }
        let desc = match &platform {
            Some(p) => store.resolve_manifest(&desc, Some(p)).map_err(|e| exit_with(1, e.to_string()))?,
            None => desc,
        };
        let img = store.load_image(&desc)?;
        let root = match berth_transport::recompress::compressed_root(store, &img, compression, false)? {
            Some(r) => r,
            None => {
                let desc = img.manifest_desc.clone();
                let bytes = store.read_blob(&desc.digest)?;
                berth_transport::Root { desc, bytes, names: vec![] }
            }
        };
        let src = Source::open_local(&berth_transport::Endpoint::Store(t.to_string()), Some(store))?;
        let sink = Sink::Registry(Box::new(RegistrySink::new(client.clone(), t.clone()).with_mount_candidates(mounts)));
        let opts = CopyOptions {
            max_concurrent: a.max_concurrent_uploads.max(1),
            names: vec![t.clone()],
            ..Default::default()
        };
        let copied = ctx
            .block_on(copy_root(&src, &root, &sink, &opts, obs.clone()))?
            .map_err(|e| transport_err(e, t.domain()))?;
        // Remember where it went, as docker's RepoDigests.
        let digest = copied.finished.desc.digest.clone();
        // (Not for one platform of a multi-platform name: `repo@digest` would then be a second
        // image beside the name's index, left behind by `rmi NAME`.)
        if platform.is_none() {
            store.set_ref(&t.repo_only().with_digest(digest.clone()), root.desc.clone())?;
        }
        let line = format!("{}: digest: {} size: {}", t.tag().unwrap_or("latest"), digest, root.bytes.len());
        // The progress session writes to stdout too; lock it only for this line.
        let mut out = std::io::stdout().lock();
        if a.quiet {
            writeln!(out, "{}", t.familiar())?;
        } else {
            writeln!(out, "{line}")?;
        }
    }
    Ok(0)
}

trait FamiliarPath {
    fn familiar_repository_path(&self) -> String;
}

impl FamiliarPath for Reference {
    /// `library/nginx` for Docker Hub, the path otherwise (docker's "Pulling from" text).
    fn familiar_repository_path(&self) -> String {
        self.path().to_string()
    }
}

/// `SERVER` as docker accepts it: a host, or a URL (`https://host/v1/`). Empty means Docker Hub.
fn server_host(server: Option<&str>) -> (String, String) {
    match server {
        None | Some("") => {
            ("registry-1.docker.io".to_string(), berth_types::reference::DOCKER_HUB_AUTH_KEY.to_string())
        }
        Some(s) => {
            let host = berth_config::dockercfg::host_of_auth_key(s);
            if host == "docker.io" {
                ("registry-1.docker.io".to_string(), berth_types::reference::DOCKER_HUB_AUTH_KEY.to_string())
            } else {
                (host.clone(), host)
            }
        }
    }
}

pub fn login(ctx: &Ctx, a: &LoginArgs) -> Result<i32> {
    let (host, key) = server_host(a.server.as_deref());
    if a.password.is_some() && a.password_stdin {
        return Err(exit_with(1, "--password and --password-stdin are mutually exclusive"));
    }
    let mut username = a.username.clone().unwrap_or_default();
    let mut password = a.password.clone().unwrap_or_default();
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if a.password_stdin {
        if username.is_empty() {
            return Err(exit_with(1, "Must provide --username with --password-stdin"));
        }
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        password = s.trim_end_matches(['\n', '\r']).to_string();
    }
    let mut keychain = Keychain::load(&ctx.config_dir)?;
    if username.is_empty() && password.is_empty() {
        // Reuse stored credentials when they still work, as docker does.
        if let Ok(Some(existing)) = keychain.get(&host, None)
            && !existing.is_empty()
        {
            let c = client(ctx)?;
            if ctx.block_on(c.login(&host, &existing.username, &existing.password))?.is_ok() {
                eprintln!("Authenticating with existing credentials...");
                println!("Login Succeeded");
                return Ok(0);
            }
        }
    }
    let interactive = std::io::stdin().is_terminal();
    if username.is_empty() {
        if !interactive {
            return Err(exit_with(1, "Error: Cannot perform an interactive login from a non TTY device"));
        }
        eprint!("Username: ");
        std::io::stderr().flush()?;
        let mut s = String::new();
        std::io::stdin().lock().read_line(&mut s)?;
        username = s.trim().to_string();
    }
    if password.is_empty() {
        if !interactive {
            return Err(exit_with(1, "Error: Cannot perform an interactive login from a non TTY device"));
        }
        password = read_password("Password: ")?;
    }
    if username.is_empty() {
        return Err(exit_with(1, "Error: Username is required"));
    }
    if password.is_empty() {
        return Err(exit_with(1, "Error: Password is required"));
    }
    let c = client(ctx)?;
    let outcome = ctx.block_on(c.login(&host, &username, &password))?.map_err(|e| {
        let text = e.to_string();
        if e.status() == Some(401) {
            exit_with(1, format!("login attempt to {} failed with status: 401 Unauthorized", display_server(&key)))
        } else {
            anyhow!(text)
        }
    })?;
    let mut entry = AuthEntry::basic(&username, &password);
    entry.server_address = key.clone();
    if let Some(tok) = outcome.identity_token {
        entry.identity_token = Some(tok);
        entry.password = String::new();
    }
    match keychain.store(&host, &entry)? {
        StoredIn::ConfigFile(p) => {
            eprintln!(
                "WARNING! Your password will be stored unencrypted in {}.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/engine/reference/commandline/login/#credential-stores\n",
                p.display()
            );
        }
        StoredIn::Helper(_) => {}
    }
    println!("Login Succeeded");
    Ok(0)
}

fn display_server(key: &str) -> String {
    if key.starts_with("http") { key.to_string() } else { format!("https://{key}/v2/") }
}

/// Reads a password from the terminal without echo.
pub(crate) fn read_password(prompt: &str) -> Result<String> {
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let fd = 0;
    // SAFETY: termios calls on stdin with a zeroed struct that tcgetattr fills.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    let have = unsafe { libc::tcgetattr(fd, &mut term) } == 0;
    let old = term;
    if have {
        term.c_lflag &= !libc::ECHO;
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) };
    }
    let mut s = String::new();
    let r = std::io::stdin().lock().read_line(&mut s);
    if have {
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &old) };
    }
    eprintln!();
    r?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}

pub fn logout(ctx: &Ctx, a: &LogoutArgs) -> Result<i32> {
    let (host, key) = server_host(a.server.as_deref());
    let mut keychain = Keychain::load(&ctx.config_dir)?;
    let had_helper = keychain.helper_for(&host).is_some();
    let removed = keychain.erase(&host)?;
    for w in keychain.take_warnings() {
        eprintln!("WARNING: {}", w.0);
    }
    if removed || had_helper {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(0)
}

pub fn search(ctx: &Ctx, a: &SearchArgs) -> Result<i32> {
    let (registry, term) = match a.term.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), a.term.clone()),
    };
    let filters = crate::cmd::images::Filters::parse(&a.filter, &["stars", "is-official", "is-automated"])?;
    let min_stars: u64 = match filters.get("stars").first() {
        Some(v) => v.parse().map_err(|_| exit_with(1, format!("invalid filter 'stars={v}'")))?,
        None => 0,
    };
    let official = filters.get("is-official").first().map(|v| *v == "true");
    let automated = filters.get("is-automated").first().map(|v| *v == "true");
    let c = client(ctx)?;
    let results = ctx.block_on(c.search(&registry, &term, a.limit))?.map_err(|e| explain(e, &registry))?;
    let rows: Vec<serde_json::Value> = results
        .iter()
        .filter(|r| r.star_count >= min_stars)
        .filter(|r| official.is_none_or(|o| r.is_official == o))
        .filter(|r| automated.is_none_or(|o| r.is_automated == o))
        .take(a.limit)
        .map(|r| {
            let desc = r.description.replace('\n', " ");
            let desc = if a.no_trunc { desc } else { ellipsis(&desc, 45) };
            json!({
                "Name": r.name,
                "Description": desc,
                "StarCount": r.star_count.to_string(),
                "IsOfficial": if r.is_official { "[OK]" } else { "" },
                "IsAutomated": if r.is_automated { "[OK]" } else { "" },
            })
        })
        .collect();
    let mut out = std::io::stdout().lock();
    berth_output::write_list(
        &mut out,
        a.format.as_deref(),
        "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
        &[
            ("Name", "NAME"),
            ("Description", "DESCRIPTION"),
            ("StarCount", "STARS"),
            ("IsOfficial", "OFFICIAL"),
            ("IsAutomated", "AUTOMATED"),
        ],
        &rows,
    )?;
    Ok(0)
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

/// Pushes a stored multi-platform image: every stored platform by digest, then the index under
/// the tag. Returns docker's `TAG: digest: … size: …` line for the index.
#[allow(clippy::too_many_arguments)]
fn push_index(
    ctx: &Ctx,
    store: &berth_store::Store,
    sink: &Sink,
    t: &Reference,
    desc: &berth_types::Descriptor,
    idx: &berth_types::Index,
    compression: Compression,
    a: &PushArgs,
    obs: Arc<dyn Observer>,
) -> Result<String> {
    let prepared = berth_transport::index::prepare_push(store, desc, idx, compression)?;
    if !prepared.missing.is_empty() {
        eprintln!(
            "WARNING: {}: platforms not in the local store are left out of the pushed index: {}",
            t.familiar(),
            prepared.missing.join(", ")
        );
    }
    let src = Source::open_local(&berth_transport::Endpoint::Store(t.to_string()), Some(store))?;
    let opts = CopyOptions { max_concurrent: a.max_concurrent_uploads.max(1), ..Default::default() };
    for child in &prepared.children {
        ctx.block_on(copy_root(&src, child, sink, &opts, obs.clone()))?.map_err(|e| transport_err(e, t.domain()))?;
    }
    let index = &prepared.index;
    ctx.block_on(sink.put_manifest(&index.desc, &index.bytes, Some(t)))?.map_err(|e| transport_err(e, t.domain()))?;
    store.set_ref(&t.repo_only().with_digest(index.desc.digest.clone()), index.desc.clone())?;
    Ok(format!("{}: digest: {} size: {}", t.tag().unwrap_or("latest"), index.desc.digest, index.bytes.len()))
}
