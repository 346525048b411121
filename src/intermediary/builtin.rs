//! Built-in hops: in-process hyper proxies that **model** intermediaries which cannot run here.
//!
//! Each is a model of observable behaviour, not the real thing; the docs of each variant name what it
//! imitates. All of them forward the request to the upstream over HTTP/1.1 and transform the response.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::channel::{Channel, Sender};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::{HopError, Intermediary, Running, StartFuture, StopHandle};
use crate::{Body, BoxError};

/// Options of `compression`: a model of Express's `compression` middleware (Node zlib) without
/// `res.flush()`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionOpts {
    /// Compressed bytes held before anything is written (Node zlib's `chunkSize`, 16 KiB).
    #[serde(default = "default_zlib_chunk")]
    pub buffer: usize,
}

fn default_zlib_chunk() -> usize {
    16 * 1024
}

impl Default for CompressionOpts {
    fn default() -> Self {
        CompressionOpts {
            buffer: default_zlib_chunk(),
        }
    }
}

/// Options of `content-length`: a model of serverless whole-body buffering.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentLengthOpts {
    /// Largest body buffered (Lambda's buffered limit, 6 MB); beyond it the response fails with 502.
    #[serde(default = "default_max_body")]
    pub max_bytes: u64,
}

fn default_max_body() -> u64 {
    6_000_000
}

impl Default for ContentLengthOpts {
    fn default() -> Self {
        ContentLengthOpts {
            max_bytes: default_max_body(),
        }
    }
}

/// Options of `coalesce`: a fixed-size proxy buffer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoalesceOpts {
    #[serde(default = "default_coalesce")]
    pub bytes: usize,
}

fn default_coalesce() -> usize {
    4096
}

impl Default for CoalesceOpts {
    fn default() -> Self {
        CoalesceOpts {
            bytes: default_coalesce(),
        }
    }
}

/// Options of `idle-cut`: a scaled-down idle timeout.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdleCutOpts {
    /// Close the response after this many milliseconds without a byte from upstream.
    #[serde(default = "default_idle")]
    pub after_ms: u64,
}

fn default_idle() -> u64 {
    1000
}

impl Default for IdleCutOpts {
    fn default() -> Self {
        IdleCutOpts {
            after_ms: default_idle(),
        }
    }
}

/// Options of `heartbeat`: a model of the origin-side fix for idle cuts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatOpts {
    /// Write a `:` comment after this many milliseconds without a byte from upstream.
    #[serde(default = "default_heartbeat")]
    pub every_ms: u64,
}

fn default_heartbeat() -> u64 {
    500
}

impl Default for HeartbeatOpts {
    fn default() -> Self {
        HeartbeatOpts {
            every_ms: default_heartbeat(),
        }
    }
}

/// Options of `headers`: response header rewriting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadersOpts {
    /// Headers to add or replace.
    #[serde(default)]
    pub set: std::collections::BTreeMap<String, String>,
    /// Header names to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// The built-in hops.
#[derive(Debug, Clone)]
pub enum Builtin {
    /// Models Express's `compression` (1.7/1.8) without `res.flush()`: gzips when the request accepts gzip
    /// and the type is compressible (`text/*`, JSON, JavaScript, XML), holding compressed output until a
    /// `buffer`-sized block fills or the stream ends. Skipped on `Cache-Control: no-transform`, on a
    /// `Content-Encoding` other than `identity`, and on HEAD.
    Compression(CompressionOpts),
    /// Models whole-body buffering by serverless platforms (a Vercel/Netlify function returning a
    /// non-stream body, Lambda `BUFFERED`, API Gateway REST): reads the whole upstream body, then answers
    /// with `Content-Length`.
    ContentLength(ContentLengthOpts),
    /// Models an HTTP/1.0 hop: answers `HTTP/1.0`, close-delimited, no chunking.
    Http10,
    /// Models a proxy buffer: holds bytes until `bytes` have accumulated or the stream ends.
    Coalesce(CoalesceOpts),
    /// Models an idle timeout (nginx `proxy_read_timeout`, ALB, Cloudflare 100 s) scaled down: ends the
    /// response abruptly after `after_ms` without a byte from upstream.
    IdleCut(IdleCutOpts),
    /// Models a CDN or gateway that adds, removes or overrides response headers.
    Headers(HeadersOpts),
    /// Models an origin that sends heartbeats: writes a `:` comment (on an event boundary) whenever
    /// upstream has been silent for `every_ms`. `check` puts it next to the origin to measure whether
    /// heartbeats would fix a cut chain.
    Heartbeat(HeartbeatOpts),
}

impl Intermediary for Builtin {
    fn label(&self) -> String {
        match self {
            Builtin::Compression(o) if o == &CompressionOpts::default() => "compression".into(),
            Builtin::Compression(o) => format!("compression {}B", o.buffer),
            Builtin::ContentLength(_) => "content-length".into(),
            Builtin::Http10 => "http10".into(),
            Builtin::Coalesce(o) => format!("coalesce {}B", o.bytes),
            Builtin::IdleCut(o) => format!("idle-cut {}ms", o.after_ms),
            Builtin::Heartbeat(o) => format!("heartbeat {}ms", o.every_ms),
            Builtin::Headers(o) => {
                let mut parts: Vec<String> = o
                    .set
                    .iter()
                    .map(|(k, v)| {
                        let v = if crate::probe::is_secret(k, &[]) {
                            "<redacted>"
                        } else {
                            v
                        };
                        format!("+{k}: {v}")
                    })
                    .collect();
                parts.extend(o.remove.iter().map(|k| format!("-{k}")));
                format!("headers({})", parts.join(", "))
            }
        }
    }

    fn start(&self, upstream: SocketAddr) -> StartFuture<'_> {
        Box::pin(async move {
            let listener = TcpListener::bind(("127.0.0.1", 0))
                .await
                .map_err(|source| HopError::Bind {
                    hop: self.label(),
                    source,
                })?;
            let addr = listener.local_addr().map_err(|source| HopError::Bind {
                hop: self.label(),
                source,
            })?;
            let task = tokio::spawn(accept_loop(listener, upstream, Arc::new(self.clone())));
            Ok(Running {
                label: self.label(),
                addr,
                program: None,
                stop: StopHandle::Task(task),
            })
        })
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, hop: Arc<Builtin>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors or similar: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let hop = hop.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| forward(req, upstream, hop.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
];

fn bad_gateway(msg: String) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(msg))
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *r.status_mut() = StatusCode::BAD_GATEWAY;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

async fn forward(
    req: Request<Incoming>,
    upstream: SocketAddr,
    hop: Arc<Builtin>,
) -> Result<Response<Body>, Infallible> {
    let req_headers = req.headers().clone();
    let is_head = req.method() == http::Method::HEAD;
    let (parts, body) = req.into_parts();
    let mut up = Request::builder()
        .method(parts.method)
        .uri(parts.uri.path_and_query().map_or("/", |p| p.as_str()))
        .version(Version::HTTP_11);
    let named = connection_named(&parts.headers);
    for (k, v) in &parts.headers {
        if !HOP_BY_HOP.contains(&k.as_str()) && !named.contains(&k.as_str().to_string()) {
            up = up.header(k, v);
        }
    }
    let Ok(up) = up.body(body) else {
        return Ok(bad_gateway("bad request".into()));
    };
    let stream = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        Err(e) => return Ok(bad_gateway(format!("upstream {upstream}: {e}"))),
    };
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    {
        Ok(x) => x,
        Err(e) => return Ok(bad_gateway(format!("upstream handshake: {e}"))),
    };
    tokio::spawn(conn);
    let resp = match sender.send_request(up).await {
        Ok(r) => r,
        Err(e) => return Ok(bad_gateway(format!("upstream request: {e}"))),
    };
    let (mut head, body) = resp.into_parts();
    for h in connection_named(&head.headers) {
        head.headers.remove(h.as_str());
    }
    for h in HOP_BY_HOP {
        head.headers.remove(*h);
    }
    Ok(match hop.as_ref() {
        Builtin::Compression(o) => {
            if should_compress(&req_headers, &head.headers, is_head) {
                head.headers.remove(header::CONTENT_LENGTH);
                head.headers
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                head.headers
                    .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
                let buffer = o.buffer.max(1);
                respond(head, body, move |body, tx| gzip_pump(body, tx, buffer))
            } else {
                respond(head, body, passthrough)
            }
        }
        Builtin::ContentLength(o) => {
            let mut collected = Vec::new();
            let mut body = body;
            loop {
                match body.frame().await {
                    None => break,
                    Some(Err(e)) => return Ok(bad_gateway(format!("upstream body: {e}"))),
                    Some(Ok(f)) => {
                        if let Ok(d) = f.into_data() {
                            collected.extend_from_slice(&d);
                            if collected.len() as u64 > o.max_bytes {
                                return Ok(bad_gateway(format!(
                                    "response body exceeds {} bytes",
                                    o.max_bytes
                                )));
                            }
                        }
                    }
                }
            }
            head.headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(collected.len()));
            Response::from_parts(
                head,
                Full::new(Bytes::from(collected))
                    .map_err(|never: Infallible| match never {})
                    .boxed(),
            )
        }
        Builtin::Http10 => {
            head.version = Version::HTTP_10;
            head.headers
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            respond(head, body, passthrough)
        }
        Builtin::Coalesce(o) => {
            let n = o.bytes.max(1);
            respond(head, body, move |body, tx| coalesce_pump(body, tx, n))
        }
        Builtin::IdleCut(o) => {
            let idle = Duration::from_millis(o.after_ms);
            respond(head, body, move |body, tx| idle_pump(body, tx, idle))
        }
        Builtin::Heartbeat(o) => {
            // Comments cannot be spliced into a compressed body; and they change the length.
            let coded = head
                .headers
                .get(header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    !matches!(
                        v.trim().to_ascii_lowercase().as_str(),
                        "" | "identity" | "none"
                    )
                });
            if coded {
                respond(head, body, passthrough)
            } else {
                head.headers.remove(header::CONTENT_LENGTH);
                let every = Duration::from_millis(o.every_ms.max(10));
                respond(head, body, move |body, tx| heartbeat_pump(body, tx, every))
            }
        }
        Builtin::Headers(o) => {
            for name in &o.remove {
                if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
                    head.headers.remove(n);
                }
            }
            for (k, v) in &o.set {
                if let (Ok(k), Ok(v)) = (
                    HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(v),
                ) {
                    head.headers.insert(k, v);
                }
            }
            respond(head, body, passthrough)
        }
    })
}

/// Header names a `Connection` header lists: hop-by-hop for this message (RFC 9110 §7.6.1).
fn connection_named(h: &http::HeaderMap) -> Vec<String> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty() && n != "close" && n != "keep-alive")
        .collect()
}

/// Build a streaming response whose body is produced by `pump` from the upstream body.
fn respond<F, Fut>(head: http::response::Parts, body: Incoming, pump: F) -> Response<Body>
where
    F: FnOnce(Incoming, Sender<Bytes, BoxError>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = Channel::<Bytes, BoxError>::new(16);
    tokio::spawn(pump(body, tx));
    Response::from_parts(head, rx.boxed())
}

/// The next data frame of the upstream body (trailers skipped).
async fn next_data(body: &mut Incoming) -> Option<Result<Bytes, hyper::Error>> {
    loop {
        match body.frame().await? {
            Ok(f) => {
                if let Ok(d) = f.into_data() {
                    return Some(Ok(d));
                }
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

async fn passthrough(mut body: Incoming, mut tx: Sender<Bytes, BoxError>) {
    while let Some(d) = next_data(&mut body).await {
        match d {
            Ok(d) => {
                if tx.send_data(d).await.is_err() {
                    return;
                }
            }
            Err(e) => return tx.abort(Box::new(e)),
        }
    }
}

async fn coalesce_pump(mut body: Incoming, mut tx: Sender<Bytes, BoxError>, n: usize) {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(d) = next_data(&mut body).await {
        match d {
            Ok(d) => {
                buf.extend_from_slice(&d);
                while buf.len() >= n {
                    let rest = buf.split_off(n);
                    let full = std::mem::replace(&mut buf, rest);
                    if tx.send_data(Bytes::from(full)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => return tx.abort(Box::new(e)),
        }
    }
    if !buf.is_empty() {
        let _ = tx.send_data(Bytes::from(buf)).await;
    }
}

async fn idle_pump(mut body: Incoming, mut tx: Sender<Bytes, BoxError>, idle: Duration) {
    loop {
        match tokio::time::timeout(idle, next_data(&mut body)).await {
            Err(_) => {
                return tx.abort(format!("idle-cut: no byte for {} ms", idle.as_millis()).into());
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => return tx.abort(Box::new(e)),
            Ok(Some(Ok(d))) => {
                if tx.send_data(d).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn heartbeat_pump(mut body: Incoming, mut tx: Sender<Bytes, BoxError>, every: Duration) {
    // Heartbeats go only between events, so track whether the bytes so far end on a blank line.
    let mut tail: Vec<u8> = Vec::new();
    let at_boundary = |t: &[u8]| {
        t.is_empty() || t.ends_with(b"\n\n") || t.ends_with(b"\r\n\r\n") || t.ends_with(b"\r\r")
    };
    loop {
        match tokio::time::timeout(every, next_data(&mut body)).await {
            Err(_) => {
                if at_boundary(&tail) && tx.send_data(Bytes::from_static(b":\n\n")).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => return tx.abort(Box::new(e)),
            Ok(Some(Ok(d))) => {
                tail.extend_from_slice(&d[d.len().saturating_sub(4)..]);
                let keep = tail.len().saturating_sub(4);
                tail.drain(..keep);
                if tx.send_data(d).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn gzip_pump(mut body: Incoming, mut tx: Sender<Bytes, BoxError>, block: usize) {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    while let Some(d) = next_data(&mut body).await {
        match d {
            Ok(d) => {
                if enc.write_all(&d).is_err() {
                    return tx.abort("compression: encoder failed".into());
                }
                // Like Node's zlib stream, output leaves only in whole blocks of `block` bytes.
                while enc.get_ref().len() >= block {
                    let out = enc.get_mut();
                    let rest = out.split_off(block);
                    let full = std::mem::replace(out, rest);
                    if tx.send_data(Bytes::from(full)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => return tx.abort(Box::new(e)),
        }
    }
    match enc.finish() {
        Ok(rest) if !rest.is_empty() => {
            let _ = tx.send_data(Bytes::from(rest)).await;
        }
        Ok(_) => {}
        Err(_) => tx.abort("compression: encoder failed".into()),
    }
}

/// Express `compression`'s decision (default filter, no threshold for streams).
pub fn should_compress(req: &http::HeaderMap, resp: &http::HeaderMap, is_head: bool) -> bool {
    if is_head {
        return false;
    }
    let get = |m: &http::HeaderMap, n: header::HeaderName| {
        m.get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let accepts_gzip = get(req, header::ACCEPT_ENCODING).split(',').any(|c| {
        let mut parts = c.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q0 = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
        (name == "gzip" || name == "*") && !q0
    });
    let ct = get(resp, header::CONTENT_TYPE);
    let mt = ct.split(';').next().unwrap_or("").trim();
    let compressible = mt.starts_with("text/")
        || mt.ends_with("+json")
        || mt.ends_with("+xml")
        || matches!(
            mt,
            "application/json" | "application/javascript" | "application/xml"
        );
    let no_transform = get(resp, header::CACHE_CONTROL)
        .split(',')
        .any(|d| d.trim() == "no-transform");
    let ce = get(resp, header::CONTENT_ENCODING);
    let encoded = !ce.is_empty() && ce.trim() != "identity";
    accepts_gzip && compressible && !no_transform && !encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn compression_follows_express_compression_rules() {
        let req = h(&[("accept-encoding", "gzip, deflate, br")]);
        let sse = h(&[("content-type", "text/event-stream")]);
        assert!(should_compress(&req, &sse, false));
        assert!(!should_compress(&req, &sse, true), "HEAD");
        assert!(!should_compress(&h(&[]), &sse, false), "no Accept-Encoding");
        assert!(!should_compress(
            &h(&[("accept-encoding", "gzip;q=0")]),
            &sse,
            false
        ));
        let nt = h(&[
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache, no-transform"),
        ]);
        assert!(!should_compress(&req, &nt, false), "no-transform honoured");
        let none = h(&[
            ("content-type", "text/event-stream"),
            ("content-encoding", "none"),
        ]);
        assert!(
            !should_compress(&req, &none, false),
            "any coding but identity"
        );
        let ident = h(&[
            ("content-type", "text/event-stream"),
            ("content-encoding", "identity"),
        ]);
        assert!(
            should_compress(&req, &ident, false),
            "identity does not opt out"
        );
        let png = h(&[("content-type", "image/png")]);
        assert!(!should_compress(&req, &png, false));
    }

    #[test]
    fn labels_name_their_options() {
        assert_eq!(
            Builtin::Coalesce(CoalesceOpts { bytes: 10 }).label(),
            "coalesce 10B"
        );
        assert_eq!(
            Builtin::Compression(Default::default()).label(),
            "compression"
        );
        assert_eq!(
            Builtin::IdleCut(IdleCutOpts { after_ms: 5 }).label(),
            "idle-cut 5ms"
        );
    }
}
