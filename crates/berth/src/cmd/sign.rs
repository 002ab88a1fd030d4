//! key generate, sign, verify: cosign-compatible signing (the logic is in berth-sign).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_sign::cosign::{self, SignOptions};
use berth_sign::{PublicKey, SigningKey};
use berth_types::Reference;
use serde_json::{Map, Value};

use crate::cli::{KeyGenerateArgs, SignArgs, VerifyArgs};
use crate::cmd::registry::{client, read_password};
use crate::ctx::Ctx;
use crate::errors::{exit_with, hinted};

/// The private key's password: `--passphrase-file` (first line), else `COSIGN_PASSWORD` (even
/// empty, as cosign reads it), else a prompt on the terminal (twice when `confirm`).
fn password(file: Option<&Path>, confirm: bool) -> Result<Vec<u8>> {
    if let Some(f) = file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading the passphrase file {}", f.display()))?;
        return Ok(text.lines().next().unwrap_or("").as_bytes().to_vec());
    }
    if let Ok(p) = std::env::var("COSIGN_PASSWORD") {
        return Ok(p.into_bytes());
    }
    if !std::io::stdin().is_terminal() {
        return Err(hinted(
            exit_with(1, "a password for the private key is needed and stdin is not a terminal"),
            "set COSIGN_PASSWORD or pass --passphrase-file FILE",
        ));
    }
    let first = read_password("Enter password for private key: ")?;
    if confirm {
        let again = read_password("Enter password for private key again: ")?;
        if again != first {
            return Err(exit_with(1, "passwords do not match"));
        }
    }
    Ok(first.into_bytes())
}

fn write_new(path: &Path, contents: &str, mode: u32, force: bool) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).mode(mode);
    if force {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    let mut f = o.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            hinted(exit_with(1, format!("{} already exists", path.display())), "pass --force to overwrite it")
        } else {
            anyhow::Error::new(e).context(format!("writing {}", path.display()))
        }
    })?;
    f.write_all(contents.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    f.sync_all().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub fn key_generate(a: &KeyGenerateArgs) -> Result<i32> {
    let private = PathBuf::from(format!("{}.key", a.output_prefix));
    let public = PathBuf::from(format!("{}.pub", a.output_prefix));
    if !a.force {
        for p in [&private, &public] {
            if p.exists() {
                return Err(hinted(
                    exit_with(1, format!("{} already exists", p.display())),
                    "pass --force to overwrite it",
                ));
            }
        }
    }
    let pw = password(a.passphrase_file.as_deref(), true)?;
    let keys = berth_sign::key::generate(&pw)?;
    write_new(&private, &keys.private_pem, 0o600, a.force)?;
    write_new(&public, &keys.public_pem, 0o644, a.force)?;
    eprintln!("Private key written to {}", private.display());
    eprintln!("Public key written to {}", public.display());
    Ok(0)
}

fn parse_annotations(list: &[String]) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    for kv in list {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(exit_with(1, format!("invalid annotation {kv:?}: expected key=value")));
        };
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(m)
}

fn image_ref(s: &str) -> Result<Reference> {
    let r = Reference::parse_normalized(s).map_err(|e| exit_with(1, e.to_string()))?;
    Ok(if r.digest().is_some() { r } else { r.with_default_tag() })
}

pub fn sign(ctx: &Ctx, a: &SignArgs) -> Result<i32> {
    let r = image_ref(&a.image)?;
    let annotations = parse_annotations(&a.annotations)?;
    let text = std::fs::read_to_string(&a.key).with_context(|| format!("reading the key {}", a.key.display()))?;
    let what = a.key.display().to_string();
    let mut ask = || {
        password(a.passphrase_file.as_deref(), false)
            .map_err(|e| berth_sign::SignError::Key { what: what.clone(), message: format!("{e:#}") })
    };
    let key = SigningKey::from_pem(&text, &what, &mut ask)?;
    let client = client(ctx)?;
    let opts = SignOptions { annotations, recursive: a.recursive };
    let signed = ctx.block_on(cosign::sign(&client, &r, &key, &opts))?.map_err(|e| unwrap_registry(e, r.domain()))?;
    for s in &signed {
        eprintln!("Pushing signature to: {}", s.signature_ref.repository());
        if !s.added {
            eprintln!("{} was already signed with this key; nothing to add", s.digest);
        }
        if s.referrer {
            eprintln!("Pushed the signature of {} as an OCI referrer too", s.digest);
        }
    }
    Ok(0)
}

fn unwrap_registry(e: berth_sign::SignError, host: &str) -> anyhow::Error {
    match e {
        berth_sign::SignError::Registry(r) => crate::cmd::registry::explain(*r, host),
        other => anyhow::Error::new(other),
    }
}

pub fn verify(ctx: &Ctx, a: &VerifyArgs) -> Result<i32> {
    let r = image_ref(&a.image)?;
    let text = std::fs::read_to_string(&a.key).with_context(|| format!("reading the key {}", a.key.display()))?;
    let key = PublicKey::from_pem(&text, &a.key.display().to_string())?;
    let client = client(ctx)?;
    let verified = ctx.block_on(cosign::verify(&client, &r, &key))?.map_err(|e| unwrap_registry(e, r.domain()))?;
    // cosign's report: the checks on stderr, the verified payloads as a JSON array on stdout.
    eprintln!("\nVerification for {} --", a.image);
    eprintln!("The following checks were performed on each of these signatures:");
    eprintln!("  - The cosign claims were validated");
    eprintln!("  - The signatures were verified against the specified public key");
    let out = serde_json::to_string(&verified.payloads)?;
    println!("{out}");
    Ok(0)
}
