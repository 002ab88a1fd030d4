//! save, load, cp: the copy pipeline between the store and archives or layouts.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use berth_output::progress::TransferProgress;
use berth_store::Store;
use berth_transport::{
    ArchiveFormat, ArchiveSink, CopyOptions, Endpoint, Observer, OciDirSink, Quiet, Sink, Source, StoreSink, copy_root,
};
use berth_types::{Platform, Reference};

use crate::cli::{ImageCopyArgs, LoadArgs, SaveArgs};
use crate::ctx::Ctx;
use crate::errors::{exit_with, hinted};
use crate::progress::{Direction, TransferObserver};

pub fn parse_platform(p: Option<&str>) -> Result<Option<Platform>> {
    p.map(|s| Platform::parse(s).map_err(|e| exit_with(1, e.to_string()))).transpose()
}

/// The store entries `docker save NAME` means: every tag of the repository when no tag was
/// given, else exactly the name or ID.
fn save_selection(store: &Store, name: &str) -> Result<Vec<String>> {
    if let Ok(r) = Reference::parse_normalized(name)
        && r.tag().is_none()
        && r.digest().is_none()
        && !name.contains(':')
    {
        let tags: Vec<String> = store
            .images()?
            .iter()
            .flat_map(|rec| rec.repo_tags.iter().filter(|t| t.repository() == r.repository()).map(|t| t.to_string()))
            .collect();
        if !tags.is_empty() {
            return Ok(tags);
        }
    }
    Ok(vec![name.to_string()])
}

pub fn save(ctx: &Ctx, a: &SaveArgs) -> Result<i32> {
    let store = ctx.store()?;
    let stdout_is_tty = std::io::stdout().is_terminal();
    if a.output.is_none() && stdout_is_tty {
        return Err(exit_with(1, "cowardly refusing to save to a terminal. Use the -o flag or redirect"));
    }
    let platform = parse_platform(a.platform.as_deref())?;
    let mut sources = Vec::new();
    for img in &a.images {
        for sel in save_selection(store, img)? {
            let src = Source::open_local(&Endpoint::Store(sel.clone()), Some(store))
                .map_err(|e| exit_with(1, e.to_string()))?;
            sources.push(src);
        }
    }
    let sink = match &a.output {
        Some(p) => ArchiveSink::new(ArchiveFormat::Docker, p, None, None)?,
        None => ArchiveSink::new(ArchiveFormat::Docker, Path::new("-"), Some(Box::new(std::io::stdout())), None)?,
    };
    let sink = Sink::Archive(sink);
    // Every platform of a multi-platform image the store holds, unless --platform picks one.
    let opts = CopyOptions {
        all_platforms: platform.is_none(),
        skip_missing: true,
        platform,
        max_concurrent: 1,
        ..Default::default()
    };
    ctx.block_on(async {
        let mut finished = Vec::new();
        for src in &sources {
            for root in src.roots().await? {
                let c = copy_root(src, &root, &sink, &opts, Arc::new(Quiet)).await?;
                finished.push(c.finished);
            }
        }
        sink.finish(&finished).await?;
        Ok::<_, anyhow::Error>(())
    })??;
    Ok(0)
}

/// A temp file in the store's tmp dir, removed on drop.
struct Spool(PathBuf);
impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Makes the input a plain, seekable tar file: decompresses gzip/zstd/xz/bzip2 input and
/// spools stdin.
fn materialize(store: &Store, input: Option<&Path>) -> Result<(PathBuf, Option<Spool>)> {
    let mut reader: Box<dyn Read + Send> = match input {
        Some(p) => Box::new(std::fs::File::open(p).with_context(|| format!("open {}", p.display()))?),
        None => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(std::io::stdin())
        }
    };
    let mut head = [0u8; 8];
    let mut n = 0;
    while n < head.len() {
        let k = reader.read(&mut head[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    let head = &head[..n];
    if n == 0 {
        bail!("unexpected EOF: the archive is empty");
    }
    let compression = berth_archive::ArchiveCompression::detect(head);
    if let (Some(p), berth_archive::ArchiveCompression::None) = (input, compression) {
        return Ok((p.to_path_buf(), None));
    }
    let chained: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(head.to_vec()).chain(reader));
    // Decoded in-process (no xz/bzip2 programs): the same result on every host, and a corrupt
    // stream is an error.
    let (_, mut decoded) = berth_archive::decode_any(chained).context("reading the archive")?;
    let path = store.root().join("tmp").join(format!(
        "{}load-{}.tar",
        berth_store::owner_prefix(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    ));
    let spool = Spool(path.clone());
    let mut f = std::fs::File::create(&path)?;
    std::io::copy(&mut decoded, &mut f).with_context(|| format!("reading the {} archive", compression.name()))?;
    f.flush()?;
    Ok((path, Some(spool)))
}

pub fn load(ctx: &Ctx, a: &LoadArgs) -> Result<i32> {
    let store = ctx.store()?;
    let (path, _spool) = materialize(store, a.input.as_deref())?;
    let platform = parse_platform(a.platform.as_deref())?;
    let src = Source::open_local(&Endpoint::DockerArchive { path: path.clone(), reference: None }, Some(store))
        .map_err(|e| {
            hinted(e, "berth load reads `docker save` archives and OCI archives (plain, gzip, zstd, xz or bzip2)")
        })?;
    let sink = Sink::Store(StoreSink::new(store)?);
    let observer: Arc<dyn Observer> = if a.quiet {
        Arc::new(Quiet)
    } else {
        Arc::new(TransferObserver::new(TransferProgress::stdout(false), Direction::Load))
    };
    // An archive holding a multi-platform image loads whole (the name keeps the index), unless
    // --platform picks one.
    let opts = CopyOptions {
        all_platforms: platform.is_none(),
        skip_missing: true,
        platform,
        max_concurrent: 2,
        ..Default::default()
    };
    let copied = ctx.block_on(async {
        let mut out = Vec::new();
        for root in src.roots().await? {
            out.push(copy_root(&src, &root, &sink, &opts, observer.clone()).await?);
        }
        let finished: Vec<_> = out.iter().map(|c| c.finished.clone()).collect();
        sink.finish(&finished).await?;
        Ok::<_, anyhow::Error>(out)
    })??;
    let mut out = std::io::stdout().lock();
    for c in &copied {
        if c.finished.names.is_empty()
            && let Some(id) = &c.finished.config
        {
            writeln!(out, "Loaded image ID: {id}")?;
        }
        for n in &c.finished.names {
            writeln!(out, "Loaded image: {}", n.familiar())?;
        }
    }
    Ok(0)
}

/// `image copy`: one image between any two transports.
pub fn copy(ctx: &Ctx, a: &ImageCopyArgs) -> Result<i32> {
    let src_ep = Endpoint::parse(&a.source).map_err(|e| exit_with(1, e.to_string()))?;
    let dst_ep = Endpoint::parse(&a.destination).map_err(|e| exit_with(1, e.to_string()))?;
    let recompress = match a.dest_compress_format.as_deref() {
        None => None,
        Some("gzip") => Some(berth_types::Compression::Gzip),
        Some("zstd") => Some(berth_types::Compression::Zstd),
        Some(other) => {
            return Err(exit_with(1, format!("unsupported --dest-compress-format {other:?} (gzip or zstd)")));
        }
    };
    let store_needed = matches!(src_ep, Endpoint::Store(_)) || matches!(dst_ep, Endpoint::Store(_));
    let store = if store_needed { Some(ctx.store()?) } else { None };
    // One registry client for both ends (credentials, certs.d, registries config).
    let client = match (&src_ep, &dst_ep) {
        (Endpoint::Registry(_), _) | (_, Endpoint::Registry(_)) => Some(crate::cmd::registry::client(ctx)?),
        _ => None,
    };
    let src = match (&src_ep, &client) {
        (Endpoint::Registry(r), Some(c)) => Source::Registry(Box::new(berth_transport::registry::RegistrySource::new(
            c.clone(),
            r.clone().with_default_tag(),
        ))),
        _ => Source::open_local(&src_ep, store).map_err(|e| exit_with(1, e.to_string()))?,
    };
    let names: Vec<Reference> = match &dst_ep {
        Endpoint::Store(n) => {
            vec![Reference::parse_normalized(n).map_err(|e| exit_with(1, e.to_string()))?.with_default_tag()]
        }
        Endpoint::DockerArchive { reference: Some(r), .. } => vec![r.clone()],
        Endpoint::Registry(r) => vec![r.clone().with_default_tag()],
        _ => Vec::new(),
    };
    let sink = match &dst_ep {
        Endpoint::Store(_) => Sink::Store(StoreSink::new(store.ok_or_else(|| anyhow!("store"))?)?),
        Endpoint::OciDir { path, tag } => Sink::OciDir(OciDirSink::new(path, tag.clone())?),
        Endpoint::OciArchive { path, tag } => {
            Sink::Archive(ArchiveSink::new(ArchiveFormat::Oci, path, None, tag.clone())?)
        }
        Endpoint::DockerArchive { path, .. } => {
            Sink::Archive(ArchiveSink::new(ArchiveFormat::Docker, path, None, None)?)
        }
        Endpoint::Registry(r) => {
            let c = client.clone().ok_or_else(|| anyhow!("registry client"))?;
            // Registry to registry on the same host: mount blobs from the source repository.
            let mounts = match &src_ep {
                Endpoint::Registry(s) if s.domain() == r.domain() && s.path() != r.path() => vec![s.path().to_string()],
                _ => Vec::new(),
            };
            Sink::Registry(Box::new(
                berth_transport::registry::RegistrySink::new(c, r.clone().with_default_tag())
                    .with_mount_candidates(mounts),
            ))
        }
    };
    let observer: Arc<dyn Observer> = if a.quiet {
        Arc::new(Quiet)
    } else {
        Arc::new(TransferObserver::new(TransferProgress::stderr(false), Direction::Copy))
    };
    let opts = CopyOptions {
        platform: parse_platform(a.platform.as_deref())?,
        all_platforms: a.all,
        max_concurrent: a.max_concurrent,
        names,
        recompress,
        skip_missing: false,
    };
    let host = match (&dst_ep, &src_ep) {
        (Endpoint::Registry(r), _) | (_, Endpoint::Registry(r)) => r.domain().to_string(),
        _ => String::new(),
    };
    let copied = ctx.block_on(berth_transport::copy_one(&src, &sink, &opts, observer))?.map_err(|e| match e {
        berth_transport::TransportError::Registry(r) => crate::cmd::registry::explain(*r, &host),
        other => anyhow::Error::new(other),
    })?;
    let _ = copied;
    Ok(0)
}
