//! Runs the real CNCF distribution registry (Debian's `docker-registry`, 2.8.x) for integration
//! tests: one process per [`Distribution`], on a free loopback port, with its storage, config and
//! certificates in a temp directory; killed when dropped.
//!
//! The binary is `$BERTH_DOCKER_REGISTRY` or `/usr/bin/docker-registry`. A missing binary is an
//! error (tests must fail loudly, not skip): run `scripts/ci/install-deps.sh`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::pki::TestPki;
use crate::{KitError, io_ctx};

/// How the registry authenticates and serves.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Plain HTTP, anonymous.
    Plain,
    /// Plain HTTP with htpasswd Basic auth for (user, password).
    Htpasswd { user: String, password: String },
    /// HTTPS with a certificate from `pki`.
    Tls { pki: TestPki },
    /// HTTPS requiring a client certificate signed by the test CA.
    Mtls { pki: TestPki },
    /// Plain HTTP with token auth: realm URL, service, issuer and the PEM bundle of the token
    /// signer's certificate.
    Token { realm: String, service: String, issuer: String, rootcertbundle: PathBuf },
}

/// A running registry.
pub struct Distribution {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    pub dir: tempfile::TempDir,
}

/// The registry binary to run.
pub fn binary() -> PathBuf {
    std::env::var_os("BERTH_DOCKER_REGISTRY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-registry"))
}

/// A free TCP port on 127.0.0.1 (bound and released; a small race is accepted).
pub fn free_port() -> Result<u16, KitError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(io_ctx("binding a free port"))?;
    Ok(l.local_addr().map_err(io_ctx("local_addr"))?.port())
}

fn htpasswd_line(user: &str, password: &str) -> Result<String, KitError> {
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .map_err(io_ctx("running htpasswd (hint: apt-get install apache2-utils)"))?;
    if !out.status.success() {
        return Err(KitError::Other(format!("htpasswd failed: {}", String::from_utf8_lossy(&out.stderr))));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Distribution {
    /// Starts a registry in `mode` and waits until it accepts connections.
    pub fn start(mode: Mode) -> Result<Distribution, KitError> {
        let bin = binary();
        if !bin.exists() {
            return Err(KitError::Other(format!(
                "{} not found: the distribution registry is required for these tests (run scripts/ci/install-deps.sh)",
                bin.display()
            )));
        }
        let dir =
            tempfile::Builder::new().prefix("berth-distribution-").tempdir().map_err(io_ctx("creating temp dir"))?;
        let port = free_port()?;
        let host = format!("127.0.0.1:{port}");
        let mut http = format!("  addr: {host}\n  secret: berth-test-secret\n");
        let mut auth = String::new();
        match &mode {
            Mode::Plain => {}
            Mode::Htpasswd { user, password } => {
                let f = dir.path().join("htpasswd");
                std::fs::write(&f, format!("{}\n", htpasswd_line(user, password)?))
                    .map_err(io_ctx("writing htpasswd"))?;
                auth = format!("auth:\n  htpasswd:\n    realm: berth-basic-realm\n    path: {}\n", f.display());
            }
            Mode::Tls { pki } => {
                http.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    pki.server_cert.display(),
                    pki.server_key.display()
                ));
            }
            Mode::Mtls { pki } => {
                http.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n    clientcas:\n      - {}\n",
                    pki.server_cert.display(),
                    pki.server_key.display(),
                    pki.ca_cert.display()
                ));
            }
            Mode::Token { realm, service, issuer, rootcertbundle } => {
                auth = format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                    rootcertbundle.display()
                );
            }
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n{http}{auth}",
            dir.path().join("data").display()
        );
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, config).map_err(io_ctx("writing registry config"))?;
        let log = std::fs::File::create(dir.path().join("registry.log")).map_err(io_ctx("creating registry log"))?;
        let log2 = log.try_clone().map_err(io_ctx("cloning log handle"))?;
        let child = Command::new(&bin)
            .arg("serve")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io_ctx(format!("starting {}", bin.display())))?;
        let mut d = Distribution { child, host, dir };
        d.wait_ready()?;
        Ok(d)
    }

    fn wait_ready(&mut self) -> Result<(), KitError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(KitError::Other(format!("registry exited with {status}: {}", self.log())));
            }
            if std::net::TcpStream::connect(&self.host).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(KitError::Other(format!("registry did not start within 20 s: {}", self.log())))
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
