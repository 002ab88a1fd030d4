//! Keys and certificates for tests, made with the `openssl` command (installed by
//! scripts/ci/install-deps.sh). EC P-256 everywhere: fast to generate, accepted by rustls, Go and
//! libtrust.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{KitError, io_ctx};

fn openssl(dir: &Path, args: &[&str]) -> Result<(), KitError> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(io_ctx("running openssl (hint: apt-get install openssl)"))?;
    if !out.status.success() {
        return Err(KitError::Other(format!("openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr))));
    }
    Ok(())
}

/// A PKCS#8 EC P-256 private key at `dir/name.key`.
pub fn ec_key(dir: &Path, name: &str) -> Result<PathBuf, KitError> {
    let key = format!("{name}.key");
    openssl(dir, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &key])?;
    Ok(dir.join(key))
}

/// A self-signed CA: (`name.pem` certificate, `name.key`).
pub fn self_signed_ca(dir: &Path, name: &str, cn: &str) -> Result<(PathBuf, PathBuf), KitError> {
    let key = ec_key(dir, name)?;
    let cert = format!("{name}.pem");
    let key_s = key.display().to_string();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &key_s,
            "-subj",
            &format!("/CN={cn}"),
            "-days",
            "3650",
            "-out",
            &cert,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ],
    )?;
    Ok((dir.join(cert), key))
}

/// A leaf certificate signed by the CA: server (`san` like `IP:127.0.0.1,DNS:localhost`) or client.
pub fn leaf(
    dir: &Path,
    name: &str,
    ca: &(PathBuf, PathBuf),
    san: &str,
    client: bool,
) -> Result<(PathBuf, PathBuf), KitError> {
    let key = ec_key(dir, name)?;
    let csr = format!("{name}.csr");
    let cert = format!("{name}.pem");
    let ext = dir.join(format!("{name}.ext"));
    let usage = if client { "clientAuth" } else { "serverAuth" };
    let mut text =
        format!("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage={usage}\n");
    if !san.is_empty() {
        text.push_str(&format!("subjectAltName={san}\n"));
    }
    std::fs::write(&ext, text).map_err(io_ctx(format!("writing {}", ext.display())))?;
    let key_s = key.display().to_string();
    openssl(dir, &["req", "-new", "-key", &key_s, "-subj", &format!("/CN={name}"), "-out", &csr])?;
    let (ca_cert, ca_key) = (ca.0.display().to_string(), ca.1.display().to_string());
    let ext_s = ext.display().to_string();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "365",
            "-extfile",
            &ext_s,
            "-out",
            &cert,
        ],
    )?;
    Ok((dir.join(cert), key))
}

/// Everything a TLS + mTLS test needs, in one directory.
#[derive(Debug, Clone)]
pub struct TestPki {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestPki {
    /// A CA, a server certificate for 127.0.0.1/localhost and a client certificate.
    pub fn create(dir: &Path) -> Result<TestPki, KitError> {
        let ca = self_signed_ca(dir, "ca", "berth test CA")?;
        let server = leaf(dir, "server", &ca, "IP:127.0.0.1,DNS:localhost", false)?;
        let client = leaf(dir, "client", &ca, "", true)?;
        Ok(TestPki {
            ca_cert: ca.0,
            ca_key: ca.1,
            server_cert: server.0,
            server_key: server.1,
            client_cert: client.0,
            client_key: client.1,
        })
    }

    /// Lays out a certs.d tree under `root` for `host`: `ca.crt`, and with `client`, the client
    /// pair as `client.cert`/`client.key`.
    pub fn certs_d(&self, root: &Path, host: &str, client: bool) -> Result<PathBuf, KitError> {
        let d = root.join(host);
        std::fs::create_dir_all(&d).map_err(io_ctx(format!("creating {}", d.display())))?;
        std::fs::copy(&self.ca_cert, d.join("ca.crt")).map_err(io_ctx("copying ca.crt"))?;
        if client {
            std::fs::copy(&self.client_cert, d.join("client.cert")).map_err(io_ctx("copying client.cert"))?;
            std::fs::copy(&self.client_key, d.join("client.key")).map_err(io_ctx("copying client.key"))?;
        }
        Ok(d)
    }
}
