//! A Docker token-auth server that the real distribution registry (2.8) trusts.
//!
//! Tokens are ES256 JWTs. The header names the signing key by `kid` in libtrust's fingerprint
//! format (base32 of the first 240 bits of the SHA-256 of the DER SubjectPublicKeyInfo, in
//! colon-separated groups of four), which distribution matches against the public keys of the
//! certificates in its `rootcertbundle`; the claims are `iss`, `sub`, `aud` (= service), `exp`,
//! `nbf`, `iat`, `jti` and `access: [{type, name, actions}]`.
//!
//! Endpoints (both at `/token`):
//! * `GET ?service=&scope=…[&offline_token=true&client_id=]` with optional Basic credentials:
//!   `{"token","access_token","expires_in","issued_at"[,"refresh_token"]}`;
//! * `POST` form `grant_type=password` (`username`, `password`, `access_type=offline` for a
//!   refresh token) or `grant_type=refresh_token` (`refresh_token`), plus `service`, `scope`
//!   (space separated), `client_id`: `{"access_token","expires_in","scope"[,"refresh_token"]}`.
//!
//! Policy: a known user gets every action it asks for; anonymous requests get no access (so the
//! registry answers 401 and clients must log in); wrong credentials get 401 from here.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::Digest as _;

use crate::http::{Handler, Req, Resp, Server, form_pairs, full, response};
use crate::{KitError, io_ctx};

/// Settings for [`TokenServer::start`].
#[derive(Debug, Clone)]
pub struct TokenServerConfig {
    /// `host:port` to listen on (`127.0.0.1:0` for any free port).
    pub listen: String,
    pub issuer: String,
    pub service: String,
    /// PKCS#8 PEM of an EC P-256 key whose certificate is in the registry's `rootcertbundle`.
    pub key_pem: Vec<u8>,
    /// user → password.
    pub users: HashMap<String, String>,
    pub expires_in: u64,
}

struct State {
    cfg: TokenServerConfig,
    key: EcdsaKeyPair,
    kid: String,
    refresh: Mutex<HashMap<String, String>>,
    log: Mutex<Vec<String>>,
    counter: Mutex<u64>,
}

/// A running token server; stops when dropped.
pub struct TokenServer {
    server: Server,
    state: Arc<State>,
}

/// libtrust's key ID for an uncompressed P-256 public point.
pub fn libtrust_kid(public_point: &[u8]) -> String {
    // DER SubjectPublicKeyInfo prefix for id-ecPublicKey + prime256v1, BIT STRING of 66 bytes.
    const PREFIX: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
        0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let mut spki = PREFIX.to_vec();
    spki.extend_from_slice(public_point);
    let hash = sha2::Sha256::digest(&spki);
    let b32 = base32(hash.get(..30).unwrap_or(&hash));
    b32.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(":")
}

fn base32(data: &[u8]) -> String {
    const ALPHA: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHA[((buf >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHA[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

fn pem_to_der(pem: &[u8]) -> Result<Vec<u8>, KitError> {
    let text = String::from_utf8_lossy(pem);
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(b64.trim()).map_err(|e| KitError::Other(format!("invalid PEM: {e}")))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Parses `repository:name:a,b` (the name may contain ':' for a port, so split from the right).
fn parse_scope(s: &str) -> Option<(String, String, Vec<String>)> {
    let (rest, actions) = s.rsplit_once(':')?;
    let (typ, name) = rest.split_once(':')?;
    Some((typ.into(), name.into(), actions.split(',').filter(|a| !a.is_empty()).map(str::to_string).collect()))
}

impl TokenServer {
    pub async fn start(cfg: TokenServerConfig) -> Result<TokenServer, KitError> {
        let der = pem_to_der(&cfg.key_pem)?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .map_err(|e| KitError::Other(format!("token key is not a PKCS#8 P-256 key: {e}")))?;
        let kid = libtrust_kid(key.public_key().as_ref());
        let state = Arc::new(State {
            cfg: cfg.clone(),
            key,
            kid,
            refresh: Mutex::default(),
            log: Mutex::default(),
            counter: Mutex::new(0),
        });
        let st = state.clone();
        let handler: Handler = Arc::new(move |req| {
            let st = st.clone();
            Box::pin(async move { handle(&st, req) })
        });
        let server = Server::start(&cfg.listen, handler).await?;
        Ok(TokenServer { server, state })
    }

    /// Loads the key from a PEM file.
    pub fn read_key(path: &Path) -> Result<Vec<u8>, KitError> {
        std::fs::read(path).map_err(io_ctx(format!("reading {}", path.display())))
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }

    /// The realm URL to configure in the registry.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.server.addr)
    }

    /// The key ID put in tokens.
    pub fn kid(&self) -> &str {
        &self.state.kid
    }

    /// One line per token request: `GET user scopes` / `POST grant user scopes`.
    pub fn requests(&self) -> Vec<String> {
        self.state.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

fn err(status: u16, code: &str, msg: &str) -> Resp {
    response(
        status,
        &[("Content-Type", "application/json".into())],
        full(serde_json::json!({"errors":[{"code":code,"message":msg}]}).to_string()),
    )
}

fn handle(st: &State, req: Req) -> Resp {
    if req.path() != "/token" {
        return err(404, "NOT_FOUND", "not found");
    }
    match req.method.as_str() {
        "GET" => {
            let scopes = req.query_all("scope");
            let user = match req.header("authorization").and_then(|a| a.strip_prefix("Basic ")) {
                Some(b) => {
                    let text =
                        STANDARD.decode(b.trim()).map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default();
                    let (u, p) = text.split_once(':').unwrap_or((&text, ""));
                    if st.cfg.users.get(u).map(String::as_str) != Some(p) {
                        return err(401, "UNAUTHORIZED", "invalid username or password");
                    }
                    Some(u.to_string())
                }
                None => None,
            };
            log(st, format!("GET {} {}", user.as_deref().unwrap_or("-"), scopes.join(" ")));
            let token = sign(st, user.as_deref(), &scopes);
            let mut body = serde_json::json!({
                "token": token, "access_token": token, "expires_in": st.cfg.expires_in, "issued_at": rfc3339(now()),
            });
            if req.query("offline_token").as_deref() == Some("true")
                && let Some(u) = &user
            {
                body["refresh_token"] = serde_json::Value::String(new_refresh(st, u));
            }
            response(200, &[("Content-Type", "application/json".into())], full(body.to_string()))
        }
        "POST" => {
            let form: HashMap<String, String> = form_pairs(&String::from_utf8_lossy(&req.body)).into_iter().collect();
            let scopes: Vec<String> = form
                .get("scope")
                .map(|s| s.split(' ').filter(|x| !x.is_empty()).map(str::to_string).collect())
                .unwrap_or_default();
            let grant = form.get("grant_type").cloned().unwrap_or_default();
            let (user, refresh) = match grant.as_str() {
                "password" => {
                    let u = form.get("username").cloned().unwrap_or_default();
                    if st.cfg.users.get(&u) != form.get("password") || u.is_empty() {
                        return err(401, "UNAUTHORIZED", "invalid username or password");
                    }
                    let offline = form.get("access_type").map(String::as_str) == Some("offline");
                    (u.clone(), offline.then(|| new_refresh(st, &u)))
                }
                "refresh_token" => {
                    let rt = form.get("refresh_token").cloned().unwrap_or_default();
                    let u = st.refresh.lock().ok().and_then(|m| m.get(&rt).cloned());
                    match u {
                        Some(u) => (u, Some(rt)),
                        None => return err(401, "UNAUTHORIZED", "invalid refresh token"),
                    }
                }
                _ => return err(400, "UNSUPPORTED", "unsupported grant_type"),
            };
            log(st, format!("POST {grant} {user} {}", scopes.join(" ")));
            let token = sign(st, Some(&user), &scopes);
            let mut body = serde_json::json!({
                "access_token": token, "expires_in": st.cfg.expires_in, "scope": scopes.join(" "), "issued_at": rfc3339(now()),
            });
            if let Some(r) = refresh {
                body["refresh_token"] = serde_json::Value::String(r);
            }
            response(200, &[("Content-Type", "application/json".into())], full(body.to_string()))
        }
        _ => err(405, "UNSUPPORTED", "method not allowed"),
    }
}

fn log(st: &State, line: String) {
    if let Ok(mut l) = st.log.lock() {
        l.push(line);
    }
}

fn next_id(st: &State) -> u64 {
    match st.counter.lock() {
        Ok(mut c) => {
            *c += 1;
            *c
        }
        Err(_) => 0,
    }
}

fn new_refresh(st: &State, user: &str) -> String {
    let t = format!("refresh-{}-{}-{}", user, now(), next_id(st));
    if let Ok(mut m) = st.refresh.lock() {
        m.insert(t.clone(), user.to_string());
    }
    t
}

fn sign(st: &State, user: Option<&str>, scopes: &[String]) -> String {
    let access: Vec<serde_json::Value> = match user {
        Some(_) => scopes
            .iter()
            .filter_map(|s| parse_scope(s))
            .map(|(t, n, a)| serde_json::json!({"type": t, "name": n, "actions": a}))
            .collect(),
        None => vec![],
    };
    let t = now();
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "kid": st.kid});
    let claims = serde_json::json!({
        "iss": st.cfg.issuer, "sub": user.unwrap_or(""), "aud": st.cfg.service,
        "exp": t + st.cfg.expires_in, "nbf": t.saturating_sub(10), "iat": t,
        "jti": format!("jti-{t}-{}", next_id(st)), "access": access,
    });
    let signing_input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let rng = SystemRandom::new();
    let sig = st.key.sign(&rng, signing_input.as_bytes()).map(|s| s.as_ref().to_vec()).unwrap_or_default();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn rfc3339(secs: u64) -> String {
    // Civil-from-days (Howard Hinnant's algorithm), UTC.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            parse_scope("repository:127.0.0.1:5000/a:pull,push"),
            Some(("repository".into(), "127.0.0.1:5000/a".into(), vec!["pull".into(), "push".into()]))
        );
        let kid = libtrust_kid(&[4u8; 65]);
        assert_eq!(kid.len(), 48 + 11);
    }
}
