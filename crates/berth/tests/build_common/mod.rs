//! Helpers for the `berth build` integration tests (`build_*.rs`): build contexts on disk,
//! a berth installation whose docker.io mirror is the CI registry, builds with plain progress,
//! and an independent reader of docker-archives that flattens the layers (whiteouts and
//! opaque directories applied) so tests can assert on the final filesystem without going
//! through berth's own layer code.
//!
//! Nothing here skips: a missing registry, fixture or tool fails the test with a hint.

#![allow(dead_code)] // every test binary uses a different subset

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::common::*;

// ---------------------------------------------------------------------------------------------
// A berth installation that builds

/// A fresh store whose registries config declares the plain CI registry a mirror of docker.io,
/// so `FROM busybox` / `FROM python:3.9-slim` resolve to the fixtures, as `registry-mirrors`
/// does for dockerd. Fails (with a hint) unless the busybox fixture is served.
pub fn builder() -> Berth {
    fixture("library/busybox:latest");
    let mut b = Berth::new();
    let plain = registries().plain.replace("127.0.0.1", "localhost");
    let cfg = b.dir.path().join("registries.json");
    std::fs::write(&cfg, format!("{{\"registry-mirrors\": [\"http://{plain}\"]}}")).expect("write registries config");
    b.env("BERTH_REGISTRIES_CONFIG", cfg.display().to_string());
    b
}

/// `berth build --progress=plain ARGS... CONTEXT`.
pub fn build(b: &Berth, ctx: &Path, args: &[&str]) -> Run {
    let mut c = b.cmd(["build", "--progress=plain"]);
    c.args(args).arg(ctx);
    run_cmd(c)
}

/// `build(...)`, which must succeed.
#[track_caller]
pub fn build_ok(b: &Berth, ctx: &Path, args: &[&str]) -> Run {
    build(b, ctx, args).ok()
}

/// `berth build -q ARGS... CONTEXT`, which must succeed; returns the image ID it printed.
#[track_caller]
pub fn build_id(b: &Berth, ctx: &Path, args: &[&str]) -> String {
    let mut c = b.cmd(["build", "-q"]);
    c.args(args).arg(ctx);
    let r = run_cmd(c).ok();
    let id = r.stdout.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "build -q printed {:?}\n{}", r.stdout, r.stderr);
    id
}

/// The image ID (config digest) of a reference, by `berth inspect`.
#[track_caller]
pub fn image_id(b: &Berth, reference: &str) -> String {
    b.inspect(reference)["Id"].as_str().unwrap_or_default().to_string()
}

/// `berth run --rm IMAGE sh -c SCRIPT`, which must succeed; its stdout.
#[track_caller]
pub fn run_sh(b: &Berth, image: &str, script: &str) -> String {
    b.ok_args(["run", "--rm", "--network", "none", image, "sh", "-c", script]).stdout
}

/// Unique, lowercase tag for a test image.
pub fn tag(name: &str) -> String {
    format!("{}:t", unique_repo(name).to_lowercase())
}

/// The `#N ...` vertex names of plain progress output, in order of first appearance.
pub fn vertex_names(stderr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for l in stderr.lines() {
        let Some(rest) = l.strip_prefix('#') else { continue };
        let Some((n, text)) = rest.split_once(' ') else { continue };
        if n.parse::<u32>().is_err() || !text.starts_with('[') {
            continue;
        }
        if seen.insert(n.to_string()) {
            names.push(text.to_string());
        }
    }
    names
}

/// Whether the vertex whose name contains `needle` was reported `CACHED`.
pub fn was_cached(stderr: &str, needle: &str) -> bool {
    let lines: Vec<&str> = stderr.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if let Some(rest) = l.strip_prefix('#')
            && let Some((n, text)) = rest.split_once(' ')
            && n.parse::<u32>().is_ok()
            && text.contains(needle)
        {
            let prefix = format!("#{n} ");
            return lines[i..].iter().any(|x| x.starts_with(&prefix) && x.trim_end().ends_with("CACHED"));
        }
    }
    false
}

/// Names of the RUN/COPY/ADD/WORKDIR vertices that were executed (not CACHED).
pub fn executed_steps(stderr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for name in vertex_names(stderr) {
        if name.starts_with("[internal]") || name.contains("] FROM ") || name.starts_with("[auth]") {
            continue;
        }
        if !was_cached(stderr, &name) {
            out.push(name);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Build contexts

/// A build context directory (removed on drop).
pub struct Ctx {
    pub dir: tempfile::TempDir,
}

impl Ctx {
    /// A context with this Dockerfile.
    pub fn new(dockerfile: &str) -> Ctx {
        let c = Ctx { dir: tempdir("ctx") };
        c.file("Dockerfile", dockerfile);
        c
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (parents created), mode 0644.
    pub fn file(&self, rel: &str, content: impl AsRef<[u8]>) -> &Ctx {
        let p = self.dir.path().join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("mkdir in context");
        }
        std::fs::write(&p, content).expect("write context file");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        self
    }

    pub fn mode(&self, rel: &str, mode: u32) -> &Ctx {
        std::fs::set_permissions(self.dir.path().join(rel), std::fs::Permissions::from_mode(mode)).expect("chmod");
        self
    }

    pub fn dir(&self, rel: &str) -> &Ctx {
        std::fs::create_dir_all(self.dir.path().join(rel)).expect("mkdir in context");
        self
    }

    pub fn symlink(&self, rel: &str, target: &str) -> &Ctx {
        let p = self.dir.path().join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("mkdir in context");
        }
        std::os::unix::fs::symlink(target, &p).expect("symlink in context");
        self
    }

    /// Runs a shell command in the context directory (for archives and the like).
    #[track_caller]
    pub fn sh(&self, script: &str) -> &Ctx {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script).current_dir(self.dir.path());
        run_cmd(c).ok();
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Flattened images

/// The type of a filesystem entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
}

/// One entry of a flattened filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    /// sha256 of the content (regular files).
    pub sha256: String,
    /// Content, kept for files up to 1 MiB.
    pub data: Option<Vec<u8>>,
    /// Symlink target.
    pub link: Option<String>,
    /// The path this entry was hard-linked to in its layer, if it was a hardlink.
    pub hardlink: Option<String>,
    pub mtime: u64,
    /// Device numbers of character and block devices.
    pub dev: (u32, u32),
    /// PAX xattrs (`SCHILY.xattr.*`).
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Entry {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.data.as_deref().unwrap_or_default()).into_owned()
    }
}

/// A flattened image: path (absolute, no trailing slash; `/` is the root) → entry.
#[derive(Debug, Default, Clone)]
pub struct Fs {
    pub entries: BTreeMap<String, Entry>,
}

impl Fs {
    #[track_caller]
    pub fn get(&self, path: &str) -> &Entry {
        self.entries.get(path).unwrap_or_else(|| {
            let near: Vec<&String> = self
                .entries
                .keys()
                .filter(|k| k.starts_with(path.rsplit_once('/').map(|x| x.0).unwrap_or("/")))
                .take(40)
                .collect();
            panic!("{path} is not in the image; nearby: {near:#?}")
        })
    }

    pub fn has(&self, path: &str) -> bool {
        self.entries.contains_key(path)
    }

    /// The text of a regular file.
    #[track_caller]
    pub fn text(&self, path: &str) -> String {
        let e = self.get(path);
        assert_eq!(e.kind, Kind::File, "{path} is not a regular file: {e:?}");
        e.text()
    }

    /// Paths below `dir` (not `dir` itself).
    pub fn under(&self, dir: &str) -> Vec<String> {
        let prefix = if dir == "/" { "/".to_string() } else { format!("{dir}/") };
        self.entries.keys().filter(|k| k.starts_with(&prefix) && *k != "/").cloned().collect()
    }
}

/// What a docker-archive holds for one image.
pub struct Saved {
    pub fs: Fs,
    /// The image config JSON.
    pub config: Value,
    /// Every layer tar, decompressed, in order.
    pub layers: Vec<Vec<u8>>,
    /// manifest.json's entry for the image.
    pub manifest: Value,
}

fn decompress(data: Vec<u8>) -> Vec<u8> {
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&data[..]).read_to_end(&mut out).expect("gunzip layer");
        out
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::decode_all(&data[..]).expect("unzstd layer")
    } else {
        data
    }
}

fn clean(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            x => parts.push(x),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent_of(p: &str) -> String {
    match p.rsplit_once('/') {
        Some(("", _)) | None => "/".into(),
        Some((a, _)) => a.to_string(),
    }
}

fn base_of(p: &str) -> &str {
    p.rsplit_once('/').map(|x| x.1).unwrap_or(p)
}

/// Applies one layer tar to `fs` with OCI whiteout semantics, independently of berth.
pub fn apply_layer(fs: &mut Fs, layer: &[u8]) {
    let mut ar = tar::Archive::new(layer);
    let mut opaque: Vec<String> = Vec::new();
    let mut added: Vec<(String, Entry)> = Vec::new();
    let mut whiteouts: Vec<String> = Vec::new();
    let entries = ar.entries().expect("layer tar entries");
    for e in entries {
        let mut e = e.expect("layer tar entry");
        let path = clean(&String::from_utf8_lossy(&e.path_bytes()));
        let name = base_of(&path).to_string();
        if name == ".wh..wh..opq" {
            opaque.push(parent_of(&path));
            continue;
        }
        if let Some(victim) = name.strip_prefix(".wh.") {
            let parent = parent_of(&path);
            whiteouts.push(if parent == "/" { format!("/{victim}") } else { format!("{parent}/{victim}") });
            continue;
        }
        let h = e.header().clone();
        let mut xattrs = BTreeMap::new();
        if let Ok(Some(ext)) = e.pax_extensions() {
            for x in ext.flatten() {
                if let Ok(k) = x.key()
                    && let Some(n) = k.strip_prefix("SCHILY.xattr.")
                {
                    xattrs.insert(n.to_string(), x.value_bytes().to_vec());
                }
            }
        }
        let et = h.entry_type();
        let mut entry = Entry {
            kind: Kind::File,
            mode: h.mode().unwrap_or(0) & 0o7777,
            uid: h.uid().unwrap_or(0),
            gid: h.gid().unwrap_or(0),
            size: 0,
            sha256: String::new(),
            data: None,
            link: None,
            hardlink: None,
            mtime: h.mtime().unwrap_or(0),
            dev: (h.device_major().ok().flatten().unwrap_or(0), h.device_minor().ok().flatten().unwrap_or(0)),
            xattrs,
        };
        match et {
            tar::EntryType::Directory => entry.kind = Kind::Dir,
            tar::EntryType::Symlink => {
                entry.kind = Kind::Symlink;
                entry.link = e.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned());
            }
            tar::EntryType::Link => {
                let target = clean(&String::from_utf8_lossy(&e.link_name_bytes().unwrap_or_default()));
                let t = added
                    .iter()
                    .rev()
                    .find(|(p, _)| *p == target)
                    .map(|x| x.1.clone())
                    .or_else(|| fs.entries.get(&target).cloned())
                    .unwrap_or_else(|| panic!("hardlink {path} -> {target}: target unknown"));
                entry = Entry { hardlink: Some(target), ..t };
            }
            tar::EntryType::Char => entry.kind = Kind::Char,
            tar::EntryType::Block => entry.kind = Kind::Block,
            tar::EntryType::Fifo => entry.kind = Kind::Fifo,
            _ => {
                let mut data = Vec::new();
                e.read_to_end(&mut data).expect("read layer file");
                entry.size = data.len() as u64;
                entry.sha256 = hex(&Sha256::digest(&data));
                if data.len() <= 1 << 20 {
                    entry.data = Some(data);
                }
            }
        }
        added.push((path, entry));
    }
    // Whiteouts and opaque markers hide what lower layers had; this layer's own entries stay.
    let remove_tree = |fs: &mut Fs, p: &str, keep_self: bool| {
        let prefix = if p == "/" { "/".to_string() } else { format!("{p}/") };
        let victims: Vec<String> = fs
            .entries
            .keys()
            .filter(|k| (k.starts_with(&prefix) && *k != "/") || (!keep_self && *k == p))
            .cloned()
            .collect();
        for v in victims {
            fs.entries.remove(&v);
        }
    };
    for w in &whiteouts {
        remove_tree(fs, w, false);
    }
    for o in &opaque {
        remove_tree(fs, o, true);
    }
    for (p, e) in added {
        // A non-directory replaces a directory and everything below it.
        if e.kind != Kind::Dir && fs.entries.get(&p).is_some_and(|x| x.kind == Kind::Dir) {
            remove_tree(fs, &p, false);
        }
        fs.entries.insert(p, e);
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reads a docker-archive (`docker save` / `berth save` output) and flattens the image at
/// `index` of its manifest.json.
#[track_caller]
pub fn read_docker_archive(archive: &Path, index: usize) -> Saved {
    let f = std::fs::File::open(archive).unwrap_or_else(|e| panic!("open {}: {e}", archive.display()));
    let mut members: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    // `docker save` writes a layer that occurs twice as a symlink to the first copy.
    let mut links: Vec<(String, String)> = Vec::new();
    let mut ar = tar::Archive::new(std::io::BufReader::new(f));
    for e in ar.entries().expect("archive entries") {
        let mut e = e.expect("archive entry");
        let name = clean(&String::from_utf8_lossy(&e.path_bytes())).trim_start_matches('/').to_string();
        match e.header().entry_type() {
            tar::EntryType::Regular => {
                let mut data = Vec::new();
                e.read_to_end(&mut data).expect("read archive member");
                members.insert(name, data);
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = String::from_utf8_lossy(&e.link_name_bytes().unwrap_or_default()).into_owned();
                let resolved = if e.header().entry_type() == tar::EntryType::Link || target.starts_with('/') {
                    clean(&target)
                } else {
                    clean(&format!("{}/{target}", parent_of(&format!("/{name}"))))
                };
                links.push((name, resolved.trim_start_matches('/').to_string()));
            }
            _ => {}
        }
    }
    for (name, target) in links {
        if let Some(d) = members.get(&target).cloned() {
            members.insert(name, d);
        }
    }
    let manifest: Value =
        serde_json::from_slice(members.get("manifest.json").expect("archive has manifest.json")).expect("manifest");
    let m = manifest.get(index).cloned().unwrap_or_else(|| panic!("manifest.json has no image {index}: {manifest}"));
    let cfg_name = m["Config"].as_str().expect("Config").to_string();
    let config: Value = serde_json::from_slice(members.get(&cfg_name).expect("config member")).expect("config json");
    let mut fs = Fs::default();
    fs.entries.insert(
        "/".into(),
        Entry {
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            sha256: String::new(),
            data: None,
            link: None,
            hardlink: None,
            mtime: 0,
            dev: (0, 0),
            xattrs: BTreeMap::new(),
        },
    );
    let mut layers = Vec::new();
    for l in m["Layers"].as_array().expect("Layers") {
        let name = l.as_str().expect("layer name");
        let data = decompress(members.get(name).unwrap_or_else(|| panic!("layer {name} missing")).clone());
        apply_layer(&mut fs, &data);
        layers.push(data);
    }
    Saved { fs, config, layers, manifest: m }
}

/// `berth save -o DIR/NAME.tar IMAGE` and its flattened contents.
#[track_caller]
pub fn saved(b: &Berth, image: &str) -> Saved {
    let out = b.dir.path().join(format!("save-{}.tar", unique_repo("s").replace('/', "-")));
    b.ok_args(["save", "-o", &out.display().to_string(), image]);
    let s = read_docker_archive(&out, 0);
    let _ = std::fs::remove_file(&out);
    s
}

/// The `config` object of an image config.
pub fn cfg(s: &Saved) -> &Value {
    &s.config["config"]
}

/// Lists a tar file's members with GNU tar (`tar -tvf`), one line each.
pub fn tar_listing(path: &Path) -> Vec<String> {
    let mut c = Command::new("tar");
    c.arg("-tvf").arg(path);
    run_cmd(c).ok().lines()
}

// ---------------------------------------------------------------------------------------------
// A local HTTP server (ADD URL)

/// `python3 -m http.server` serving `dir` on a free loopback port; killed on drop.
pub struct HttpServer {
    child: Child,
    pub port: u16,
}

impl HttpServer {
    #[track_caller]
    pub fn start(dir: &Path) -> HttpServer {
        need_tool("python3");
        let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let mut child = Command::new("python3")
            .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start python3 -m http.server");
        let stderr = child.stderr.take();
        std::thread::spawn(move || {
            // Drain the request log so the server never blocks on a full pipe.
            if let Some(s) = stderr {
                for _ in BufReader::new(s).lines() {}
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "python3 http.server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        HttpServer { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, path.trim_start_matches('/'))
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// sha256 of bytes as `sha256:HEX`.
pub fn sha256_bytes(b: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(b)))
}

/// Whether `needle` occurs in `hay`.
pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
