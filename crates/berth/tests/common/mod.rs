//! Shared helpers for the CLI integration tests: run the built `berth` binary with an isolated
//! store and client config, find the CI registries (scripts/ci/registry.sh) and fixtures
//! (scripts/ci/fixtures.sh), and run the peer tools (skopeo, podman, docker).
//!
//! Nothing here skips: a registry, fixture or tool that is missing is a test failure whose
//! message says how to provide it (`scripts/test.sh` sets everything up).

#![allow(dead_code)] // every test binary uses a different subset

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use serde_json::Value;

/// The binary under test.
pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// How to get the environment these tests need.
pub const SETUP_HINT: &str = "run scripts/test.sh, or: scripts/ci/registry.sh start all && \
     FIXTURES=all scripts/ci/fixtures.sh && eval \"$(scripts/ci/registry.sh env)\"";

// ---------------------------------------------------------------------------------------------
// Results of a command

/// The result of one command: exit code and captured output.
#[derive(Debug, Clone)]
pub struct Run {
    pub what: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(what: String, out: Output) -> Run {
        Run {
            what,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the whole output unless the command exited 0.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert!(
            self.success(),
            "command failed ({:?}): {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless the command exited with a non-zero status.
    #[track_caller]
    pub fn fails(self) -> Run {
        assert!(
            !self.success() && self.code.is_some(),
            "command should have failed ({:?}): {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless the exit code is `code`.
    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout lines, trimmed of trailing whitespace, empty lines dropped.
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lines().map(|l| l.trim_end().to_string()).filter(|l| !l.is_empty()).collect()
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        match serde_json::from_str(&self.stdout) {
            Ok(v) => v,
            Err(e) => panic!("{}: stdout is not JSON ({e}):\n{}", self.what, self.stdout),
        }
    }

    /// stdout and stderr together, for "the message mentions X" assertions.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "{}: stderr lacks {needle:?}:\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Run {
        assert!(
            self.stdout.contains(needle),
            "{}: stdout lacks {needle:?}:\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `cmd` and captures its output (stdin closed unless the caller set one).
pub fn run_cmd(mut cmd: Command) -> Run {
    let what = describe(&cmd);
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run {what}: {e} (hint: scripts/ci/install-deps.sh installs the test tools)"),
    };
    Run::from_output(what, out)
}

/// Runs `cmd` with `input` on stdin.
pub fn run_with_stdin(mut cmd: Command, input: &[u8]) -> Run {
    let what = describe(&cmd);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => panic!("cannot run {what}: {e}"),
    };
    let mut stdin = child.stdin.take().expect("stdin piped");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        // A command may exit before reading everything (that is its own failure to report).
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait for child");
    let _ = writer.join();
    Run::from_output(what, out)
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Temp dirs and unique names

/// A fresh temp dir under $TMPDIR (removed on drop).
pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("berth-it-{prefix}-")).tempdir().expect("create temp dir")
}

/// A repository path that no other test (or concurrent run) uses: `berth-it/NAME-PID-N-NANOS`.
pub fn unique_repo(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("berth-it/{name}-{}-{n}-{nanos}", std::process::id())
}

// ---------------------------------------------------------------------------------------------
// The berth binary with an isolated store and config

/// One isolated berth installation: its own store (`--root`) and client config (`DOCKER_CONFIG`).
pub struct Berth {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub config: PathBuf,
    envs: Vec<(String, String)>,
}

impl Default for Berth {
    fn default() -> Self {
        Self::new()
    }
}

impl Berth {
    pub fn new() -> Berth {
        let dir = tempdir("store");
        let root = dir.path().join("root");
        let config = dir.path().join("config");
        std::fs::create_dir_all(&config).expect("create config dir");
        // The CI certs.d tree, not /etc: the TLS registries' CA lives there.
        let certs_d = registries().certs_d.display().to_string();
        Berth { dir, root, config, envs: vec![("BERTH_CERTS_D".into(), certs_d)] }
    }

    /// Sets an environment variable for every command of this installation.
    pub fn env(&mut self, k: &str, v: impl Into<String>) -> &mut Berth {
        let v = v.into();
        self.envs.retain(|(x, _)| x != k);
        self.envs.push((k.into(), v));
        self
    }

    /// A `berth` command with this store and config; the arguments follow `--root DIR`.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(BERTH);
        c.arg("--root").arg(&self.root);
        c.args(args);
        // Isolation from the developer's environment.
        for k in [
            "BERTH_ROOT",
            "DOCKER_AUTH_CONFIG",
            "DOCKER_DEFAULT_PLATFORM",
            "BERTH_LOG",
            "RUST_LOG",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            c.env_remove(k);
        }
        c.env("DOCKER_CONFIG", &self.config);
        c.env("REGISTRY_AUTH_FILE", self.dir.path().join("no-auth.json"));
        c.env("NO_COLOR", "1");
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        c.stdin(Stdio::null());
        c
    }

    /// Runs berth with `args` (whitespace-separated words; use `run_args` for arguments with
    /// spaces).
    pub fn run(&self, args: &str) -> Run {
        run_cmd(self.cmd(args.split_whitespace()))
    }

    pub fn run_args<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_cmd(self.cmd(args))
    }

    /// `run(args).ok()`.
    #[track_caller]
    pub fn ok(&self, args: &str) -> Run {
        self.run(args).ok()
    }

    #[track_caller]
    pub fn ok_args<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_args(args).ok()
    }

    pub fn run_stdin(&self, args: &str, input: &[u8]) -> Run {
        run_with_stdin(self.cmd(args.split_whitespace()), input)
    }

    /// `berth pull -q REF`.
    #[track_caller]
    pub fn pull(&self, reference: &str) -> Run {
        self.ok(&format!("pull -q {reference}"))
    }

    /// `berth system check` must pass and say so.
    #[track_caller]
    pub fn check_store(&self) -> Run {
        let r = self.run("system check");
        assert!(r.success(), "system check failed for {}:\n{}\n{}", self.root.display(), r.stdout, r.stderr);
        r
    }

    /// The distinct image IDs of the store (`berth images -a -q --no-trunc` prints one per row,
    /// so an image with several tags appears several times there), sorted.
    pub fn image_ids(&self) -> Vec<String> {
        let mut ids = self.ok("images -a -q --no-trunc").lines();
        ids.sort();
        ids.dedup();
        ids
    }

    /// `berth inspect REF` as JSON (the first element).
    #[track_caller]
    pub fn inspect(&self, reference: &str) -> Value {
        let v = self.ok(&format!("inspect {reference}")).json();
        v.get(0).cloned().unwrap_or_else(|| panic!("inspect {reference}: empty array"))
    }

    /// The config.json path.
    pub fn config_json(&self) -> PathBuf {
        self.config.join("config.json")
    }

    /// Files under the store whose names look like temporary files (`tmp` dirs, `*.tmp`,
    /// `.tmp-*`, `*.partial`).
    pub fn temp_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.root, &mut |p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let in_tmp = p.strip_prefix(&self.root).ok().is_some_and(|r| r.starts_with("tmp"));
            if p.is_file()
                && (in_tmp || name.ends_with(".tmp") || name.starts_with(".tmp") || name.ends_with(".partial"))
            {
                out.push(p.to_path_buf());
            }
        });
        out
    }
}

/// Calls `f` for every entry under `dir` (no symlink following).
pub fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        f(&p);
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&p, f);
        }
    }
}

/// Total size in bytes of the regular files under `dir`.
pub fn du(dir: &Path) -> u64 {
    let mut total = 0;
    walk(dir, &mut |p| {
        if let Ok(m) = std::fs::symlink_metadata(p)
            && m.is_file()
        {
            total += m.len();
        }
    });
    total
}

// ---------------------------------------------------------------------------------------------
// The CI registries

/// Where the CI registries are (from `scripts/ci/registry.sh env`, with its defaults).
#[derive(Debug, Clone)]
pub struct Registries {
    pub plain: String,
    pub htpasswd: String,
    pub tls: String,
    pub token: String,
    pub mtls: String,
    pub user: String,
    pub password: String,
    pub certs_d: PathBuf,
    pub state: PathBuf,
    pub fixtures_oci: PathBuf,
}

fn var(k: &str, default: &str) -> String {
    std::env::var(k).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

/// The registries, read once. Does not check that they run: see [`require`].
pub fn registries() -> &'static Registries {
    static R: OnceLock<Registries> = OnceLock::new();
    R.get_or_init(|| {
        let state = PathBuf::from(var("BERTH_CI_STATE", "/tmp/berth-ci"));
        Registries {
            plain: var("BERTH_REGISTRY_PLAIN", "127.0.0.1:5000"),
            htpasswd: var("BERTH_REGISTRY_HTPASSWD", "127.0.0.1:5001"),
            tls: var("BERTH_REGISTRY_TLS", "localhost:5002"),
            token: var("BERTH_REGISTRY_TOKEN", "127.0.0.1:5003"),
            mtls: var("BERTH_REGISTRY_MTLS", "localhost:5004"),
            user: var("BERTH_REGISTRY_USER", "testuser"),
            password: var("BERTH_REGISTRY_PASSWORD", "testpassword"),
            certs_d: PathBuf::from(var("BERTH_CERTS_D", &state.join("certs.d").display().to_string())),
            fixtures_oci: PathBuf::from(var("BERTH_FIXTURES_OCI", &state.join("fixtures/oci").display().to_string())),
            state,
        }
    })
}

/// Which CI registry a test needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reg {
    Plain,
    Htpasswd,
    Tls,
    Token,
    Mtls,
}

impl Reg {
    pub fn host(self) -> String {
        let r = registries();
        match self {
            Reg::Plain => r.plain.clone(),
            Reg::Htpasswd => r.htpasswd.clone(),
            Reg::Tls => r.tls.clone(),
            Reg::Token => r.token.clone(),
            Reg::Mtls => r.mtls.clone(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Reg::Plain => "plain",
            Reg::Htpasswd => "htpasswd",
            Reg::Tls => "tls",
            Reg::Token => "token",
            Reg::Mtls => "tls-mtls",
        }
    }
}

/// Fails the test (with how to fix it) unless the registry accepts TCP connections.
#[track_caller]
pub fn require(reg: Reg) -> String {
    static SEEN: OnceLock<std::sync::Mutex<HashMap<Reg, Result<(), String>>>> = OnceLock::new();
    let host = reg.host();
    let mut seen = SEEN.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    let res = seen
        .entry(reg)
        .or_insert_with(|| {
            let addr = host.replace("localhost", "127.0.0.1");
            match TcpStream::connect_timeout(&addr.parse().map_err(|e| format!("bad address {addr}: {e}"))?, Duration::from_secs(3)) {
                Ok(_) => Ok(()),
                Err(e) => Err(format!(
                    "the {} registry at {host} is not reachable ({e}); start it with `scripts/ci/registry.sh start all` ({SETUP_HINT})",
                    reg.name()
                )),
            }
        })
        .clone();
    if let Err(e) = res {
        panic!("{e}");
    }
    host
}

/// Fails the test unless the plain registry serves `repo:tag` (a fixture from
/// scripts/ci/fixtures.sh); returns `HOST/repo:tag`.
#[track_caller]
pub fn fixture(repo_tag: &str) -> String {
    let host = require(Reg::Plain);
    let (repo, tag) = repo_tag.rsplit_once(':').unwrap_or((repo_tag, "latest"));
    let status = http_status(
        &host,
        "HEAD",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[(
            "Accept",
            "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, \
             application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )],
    );
    if status != Some(200) {
        let which = if ["debian", "python", "node", "ubuntu", "mysql"].iter().any(|n| repo.contains(n)) {
            "all"
        } else {
            "basic"
        };
        panic!(
            "fixture {repo}:{tag} is missing from {host} (HEAD answered {status:?}); build it with `FIXTURES={which} scripts/ci/fixtures.sh` ({SETUP_HINT})"
        );
    }
    format!("{host}/{repo}:{tag}")
}

/// A minimal HTTP/1.1 request over plain TCP; returns the status code.
pub fn http_status(host: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<u16> {
    let addr = host.replace("localhost", "127.0.0.1");
    let mut s = TcpStream::connect(&addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    let _ = s.take(4096).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Peer tools

/// Fails unless `tool` is on PATH.
#[track_caller]
pub fn need_tool(tool: &str) {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false);
    assert!(found, "{tool} is not installed; run scripts/ci/install-deps.sh");
}

/// `skopeo ARGS` with TLS verification off for the plain registries and the CI certs.d for
/// the TLS ones (the caller adds `--creds` etc.).
pub fn skopeo<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    need_tool("skopeo");
    let mut c = Command::new("skopeo");
    c.args(args).stdin(Stdio::null());
    run_cmd(c)
}

/// `skopeo inspect [--raw|--config] docker://REF` against a plain registry, as JSON.
#[track_caller]
pub fn skopeo_inspect(reference: &str, extra: &[&str]) -> Value {
    let mut args = vec!["inspect", "--tls-verify=false"];
    args.extend_from_slice(extra);
    let r = format!("docker://{reference}");
    args.push(&r);
    skopeo(args).ok().json()
}

/// Raw manifest bytes of `reference` (docker://, plain registry) as skopeo sees them.
#[track_caller]
pub fn skopeo_raw(reference: &str) -> Value {
    skopeo_inspect(reference, &["--raw"])
}

/// sha256 digest (`sha256:…`) of a file, by `sha256sum`.
pub fn sha256_file(path: &Path) -> String {
    let r = run_cmd({
        let mut c = Command::new("sha256sum");
        c.arg(path);
        c
    })
    .ok();
    format!("sha256:{}", r.stdout.split_whitespace().next().unwrap_or_default())
}

/// A podman with its own storage under a temp dir (so tests never touch the machine's podman
/// images, and benchmarks that reset podman's storage do not break them). Containers run with
/// the CI containers.conf (scripts/ci/podman-setup.sh).
pub struct Podman {
    pub dir: tempfile::TempDir,
}

impl Default for Podman {
    fn default() -> Self {
        Self::new()
    }
}

impl Podman {
    pub fn new() -> Podman {
        need_tool("podman");
        Podman { dir: tempdir("podman") }
    }

    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new("podman");
        c.arg("--root").arg(self.dir.path().join("storage"));
        c.arg("--runroot").arg(self.dir.path().join("run"));
        c.arg("--tmpdir").arg(self.dir.path().join("tmp"));
        c.args(args).stdin(Stdio::null());
        // podman fails when DOCKER_CONFIG names a directory without config.json.
        c.env_remove("DOCKER_CONFIG");
        c
    }

    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_cmd(self.cmd(args))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Unmount the overlay layers podman left mounted, so the temp dir can be removed.
        let _ = self.cmd(["system", "reset", "--force"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        let prefix = self.dir.path().display().to_string();
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            let mut points: Vec<&str> =
                mounts.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|m| m.starts_with(&prefix)).collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = Command::new("umount").arg("-l").arg(p).status();
            }
        }
    }
}

/// The private dockerd of scripts/ci/dockerd.sh: `(DOCKER_HOST, docker binary)`. Fails unless
/// it answers.
#[track_caller]
pub fn dockerd() -> (String, String) {
    let state = &registries().state;
    let sock = state.join("docker/docker.sock");
    let host = std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| h.starts_with("unix://"))
        .unwrap_or_else(|| format!("unix://{}", sock.display()));
    let bin = var("BERTH_DOCKER", "/usr/bin/docker");
    let mut c = Command::new(&bin);
    c.args(["version", "--format", "{{.Server.Version}}"]).env("DOCKER_HOST", &host).stdin(Stdio::null());
    let r = run_cmd(c);
    assert!(
        r.success(),
        "the CI dockerd at {host} does not answer; start it with `scripts/ci/dockerd.sh start`:\n{}",
        r.stderr
    );
    (host, bin)
}

/// The host platform as berth names it (`linux/amd64`, `linux/arm64`).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    }
}

/// Reads and parses a JSON file.
#[track_caller]
pub fn read_json(path: &Path) -> Value {
    let s = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// `s` as a string array from a JSON value (panics on anything else).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect()).unwrap_or_default()
}

/// Writes a one-layer docker-archive (what `docker save` writes, without the OCI files) to
/// `dir/NAME.tar`: the layer holds `files` (path, contents), the config gets `config` merged
/// into its `config` object (Labels, Env, Cmd…) and `created`. Returns (archive, config digest).
pub fn make_docker_archive(
    dir: &Path,
    name: &str,
    repo_tag: Option<&str>,
    files: &[(&str, &[u8])],
    config: Value,
    created: &str,
) -> (PathBuf, String) {
    let work = dir.join(format!("{name}.d"));
    let rootfs = work.join("rootfs");
    let out = work.join("out");
    std::fs::create_dir_all(&rootfs).expect("mkdir rootfs");
    std::fs::create_dir_all(&out).expect("mkdir out");
    for (p, data) in files {
        let f = rootfs.join(p);
        if let Some(parent) = f.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&f, data).expect("write file");
    }
    let layer = work.join("layer.tar");
    let mut c = Command::new("tar");
    c.args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@1704067200", "-C"])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg(".");
    run_cmd(c).ok();
    let diff_id = sha256_file(&layer);
    let diff_hex = diff_id.trim_start_matches("sha256:").to_string();
    std::fs::create_dir_all(out.join(&diff_hex)).expect("mkdir layer dir");
    std::fs::rename(&layer, out.join(&diff_hex).join("layer.tar")).expect("move layer");
    let mut cfg = serde_json::json!({
        "architecture": host_arch(),
        "os": "linux",
        "created": created,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": format!("/bin/sh -c #(nop) ADD file:{name} in / ")}],
    });
    if let (Some(dst), Some(src)) = (cfg["config"].as_object_mut(), config.as_object()) {
        for (k, v) in src {
            dst.insert(k.clone(), v.clone());
        }
    }
    let cfg_bytes = serde_json::to_vec(&cfg).expect("config json");
    let cfg_path = out.join("config.json");
    std::fs::write(&cfg_path, &cfg_bytes).expect("write config");
    let cfg_digest = sha256_file(&cfg_path);
    let cfg_name = format!("{}.json", cfg_digest.trim_start_matches("sha256:"));
    std::fs::rename(&cfg_path, out.join(&cfg_name)).expect("rename config");
    let tags: Vec<&str> = repo_tag.into_iter().collect();
    let manifest =
        serde_json::json!([{"Config": cfg_name, "RepoTags": tags, "Layers": [format!("{diff_hex}/layer.tar")]}]);
    std::fs::write(out.join("manifest.json"), serde_json::to_vec(&manifest).expect("json")).expect("write manifest");
    let archive = dir.join(format!("{name}.tar"));
    let mut c = Command::new("tar");
    c.args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "-C"])
        .arg(&out)
        .arg("-cf")
        .arg(&archive)
        .arg(".");
    run_cmd(c).ok();
    let _ = std::fs::remove_dir_all(&work);
    (archive, cfg_digest)
}
