//! A minimal HTTP/1.1 server on hyper for the fake registry and the token server.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{KitError, io_ctx};

/// A request with its whole body.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: hyper::Method,
    pub uri: hyper::Uri,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// Query parameter values for `name` (URL-decoded).
    pub fn query_all(&self, name: &str) -> Vec<String> {
        let q = self.uri.query().unwrap_or("");
        form_pairs(q).into_iter().filter(|(k, _)| k == name).map(|(_, v)| v).collect()
    }

    pub fn query(&self, name: &str) -> Option<String> {
        self.query_all(name).into_iter().next()
    }
}

/// Decodes `a=b&c=d` (form encoding).
pub fn form_pairs(s: &str) -> Vec<(String, String)> {
    fn dec(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                        Ok(v) => {
                            out.push(v);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

pub type Body = BoxBody<Bytes, std::io::Error>;
pub type Resp = hyper::Response<Body>;

/// A full body.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never: Infallible| match never {}).boxed()
}

/// A body that sends `data` and then fails, which makes hyper abort the connection (a "dropped
/// connection" as the client sees it).
pub fn failing(data: Bytes) -> Body {
    let data_frame = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(Frame::data(data))]);
    // Give hyper time to flush what it has before the error aborts the connection.
    let fail = futures_util::stream::once(async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "fault injection: connection dropped"))
    });
    StreamBody::new(futures_util::StreamExt::chain(data_frame, fail)).boxed()
}

/// A body that waits `delay` before sending `data`.
pub fn delayed(data: Bytes, delay: std::time::Duration) -> Body {
    let s = futures_util::stream::once(async move {
        tokio::time::sleep(delay).await;
        Ok::<_, std::io::Error>(Frame::data(data))
    });
    StreamBody::new(s).boxed()
}

/// A response with status, headers and body.
pub fn response(status: u16, headers: &[(&str, String)], body: Body) -> Resp {
    let mut r = hyper::Response::new(body);
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) =
            (hyper::header::HeaderName::from_bytes(k.as_bytes()), hyper::header::HeaderValue::from_str(v))
        {
            r.headers_mut().append(k, v);
        }
    }
    r
}

pub type Handler = Arc<dyn Fn(Req) -> Pin<Box<dyn Future<Output = Resp> + Send>> + Send + Sync>;

/// A running server; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// Listens on `addr` (`127.0.0.1:0` for a free port) and serves `handler`.
    pub async fn start(addr: &str, handler: Handler) -> Result<Server, KitError> {
        let listener = TcpListener::bind(addr).await.map_err(io_ctx(format!("binding {addr}")))?;
        let addr = listener.local_addr().map_err(io_ctx("local_addr"))?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let h = handler.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let h = h.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = match body.collect().await {
                                Ok(c) => c.to_bytes(),
                                Err(_) => Bytes::new(),
                            };
                            let r = Req { method: parts.method, uri: parts.uri, headers: parts.headers, body };
                            Ok::<_, Infallible>(h(r).await)
                        }
                    });
                    let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Ok(Server { addr, task })
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
