//! `berth-token-server`: the test kit's Docker token-auth server as a standalone process, for the
//! CI registry script (scripts/ci/registry.sh `token` hook) and manual testing.
//!
//! ```text
//! berth-token-server --listen 127.0.0.1:5005 --key signer.key --issuer berth-token-server \
//!     --service berth-registry --user testuser:testpassword [--user …] [--expires-in 300]
//! ```
//! The registry needs `auth.token.rootcertbundle` = a certificate for `--key` (for example
//! `openssl req -x509 -new -key signer.key -subj /CN=berth-token -days 3650 -out signer.pem`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use berth_testkit::token::{TokenServer, TokenServerConfig};

fn usage() -> ExitCode {
    eprintln!(
        "usage: berth-token-server --listen ADDR --key KEY.pem --issuer ISSUER --service SERVICE --user NAME:PASSWORD... [--expires-in SECS]"
    );
    ExitCode::from(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:5005".to_string();
    let mut key: Option<PathBuf> = None;
    let mut issuer = "berth-token-server".to_string();
    let mut service = "berth-registry".to_string();
    let mut users = HashMap::new();
    let mut expires_in = 300u64;
    while let Some(a) = args.next() {
        let Some(v) = args.next() else { return usage() };
        match a.as_str() {
            "--listen" => listen = v,
            "--key" => key = Some(PathBuf::from(v)),
            "--issuer" => issuer = v,
            "--service" => service = v,
            "--user" => match v.split_once(':') {
                Some((u, p)) => {
                    users.insert(u.to_string(), p.to_string());
                }
                None => return usage(),
            },
            "--expires-in" => match v.parse() {
                Ok(n) => expires_in = n,
                Err(_) => return usage(),
            },
            _ => return usage(),
        }
    }
    let Some(key) = key else { return usage() };
    let key_pem = match TokenServer::read_key(&key) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("berth-token-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cfg = TokenServerConfig { listen, issuer, service, key_pem, users, expires_in };
    match TokenServer::start(cfg).await {
        Ok(s) => {
            eprintln!("berth-token-server: listening on {} (kid {})", s.addr(), s.kid());
            let _ = tokio::signal::ctrl_c().await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("berth-token-server: {e}");
            ExitCode::FAILURE
        }
    }
}
