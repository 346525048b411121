//! Built-in hops: in-process hyper proxies that **model** intermediaries which cannot run here.
//!
//! Each is a model of observable behaviour, not the real thing; the docs of each hop name what it
//! imitates. All of them forward the request to the upstream over HTTP/1.1 (hop-by-hop headers dropped)
//! and transform the response.
//!
//! A hop is one file here: its options type (deserialized from the chain's `name: options`), and an
//! implementation of [`BuiltinHop`]. The [`builtins!`] table below names it once; the chain syntax, the
//! hop list in errors, `check`'s default matrix and dispatch all come from that line.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::channel::{Channel, Sender};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::de::{self, DeserializeOwned, MapAccess};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::{HopError, Running, StopHandle};
use crate::cause_id::CauseId;
use crate::{Body, BoxError};

/// What a built-in hop is: its label, its place in the default matrix, and what it does to a response.
pub trait BuiltinHop:
    std::fmt::Debug + Clone + Default + PartialEq + Eq + DeserializeOwned + Send + Sync + 'static
{
    /// A short label for reports, naming options that differ from the defaults.
    fn label(&self) -> String;
    /// The options `check`'s default matrix runs this hop with; None keeps it out of the matrix (a hop
    /// that needs options, or that models an origin-side fix rather than infrastructure).
    fn in_matrix() -> Option<Self> {
        None
    }
    /// Reject options that deserialized but make no sense.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
    /// The cause this hop is known to produce when it breaks a stream, with the operator's fix for it.
    fn known_cause(&self) -> Option<(CauseId, &'static str)> {
        None
    }
    /// The silence after which this hop cuts a response, if it models an idle timeout.
    fn idle_limit(&self) -> Option<Duration> {
        None
    }
    /// Change the client's request headers before they are sent upstream (a gateway that drops or
    /// doubles a request header); most hops leave them as they are.
    fn rewrite_request(&self, _headers: &mut http::HeaderMap) {}
    /// The response the client gets, from the upstream's head (hop-by-hop headers already removed) and
    /// body.
    fn respond(
        &self,
        asked: &Asked,
        head: http::response::Parts,
        body: Incoming,
    ) -> impl Future<Output = Response<Body>> + Send;
}

/// What the client's request said that a hop may act on.
#[derive(Debug)]
pub struct Asked {
    pub headers: http::HeaderMap,
    pub is_head: bool,
}

/// The one table of built-in hops: chain name => module::Type. Declares each module, re-exports its type,
/// and builds the enum and its dispatch.
macro_rules! builtins {
    ($($name:literal => $module:ident :: $variant:ident,)*) => {
        $(mod $module;
        pub use $module::$variant;)*

        /// A built-in hop with its options.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Builtin {
            $($variant($variant),)*
        }

        /// Every built-in hop's chain name.
        pub const NAMES: &[&str] = &[$($name),*];

        $(impl From<$variant> for Builtin {
            fn from(h: $variant) -> Builtin {
                Builtin::$variant(h)
            }
        })*

        impl Builtin {
            /// The hop a chain names without options.
            pub fn named(name: &str) -> Option<Builtin> {
                match name {
                    $($name => Some(Builtin::$variant(<$variant>::default())),)*
                    _ => None,
                }
            }

            /// The hop `name: options`, reading the options from `map`; None when `name` is no built-in.
            pub fn parse<'de, A: MapAccess<'de>>(
                name: &str,
                map: &mut A,
            ) -> Result<Option<Builtin>, A::Error> {
                let hop = match name {
                    $($name => Builtin::$variant(map.next_value::<$variant>()?),)*
                    _ => return Ok(None),
                };
                let valid = match &hop {
                    $(Builtin::$variant(h) => h.validate(),)*
                };
                valid.map_err(de::Error::custom)?;
                Ok(Some(hop))
            }

            /// The built-ins of `check`'s default matrix, by chain name.
            pub fn matrix() -> Vec<(&'static str, Builtin)> {
                let mut v = Vec::new();
                $(if let Some(h) = <$variant as BuiltinHop>::in_matrix() {
                    v.push(($name, Builtin::$variant(h)));
                })*
                v
            }

            pub fn label(&self) -> String {
                match self {
                    $(Builtin::$variant(h) => h.label(),)*
                }
            }

            pub fn known_cause(&self) -> Option<(CauseId, &'static str)> {
                match self {
                    $(Builtin::$variant(h) => h.known_cause(),)*
                }
            }

            pub fn idle_limit(&self) -> Option<Duration> {
                match self {
                    $(Builtin::$variant(h) => h.idle_limit(),)*
                }
            }

            fn rewrite_request(&self, headers: &mut http::HeaderMap) {
                match self {
                    $(Builtin::$variant(h) => h.rewrite_request(headers),)*
                }
            }

            async fn respond(
                &self,
                asked: &Asked,
                head: http::response::Parts,
                body: Incoming,
            ) -> Response<Body> {
                match self {
                    $(Builtin::$variant(h) => h.respond(asked, head, body).await,)*
                }
            }
        }
    };
}

builtins! {
    "compression" => compression::Compression,
    "content-length" => content_length::ContentLength,
    "http10" => http10::Http10,
    "coalesce" => coalesce::Coalesce,
    "idle-cut" => idle_cut::IdleCut,
    "headers" => headers::Headers,
    "heartbeat" => heartbeat::Heartbeat,
    "flush-interval" => flush_interval::FlushInterval,
}

impl Builtin {
    /// Listen on 127.0.0.1 and forward to `upstream`, transforming each response.
    pub async fn start(&self, upstream: SocketAddr) -> Result<Running, HopError> {
        let bind_error = |source| HopError::Bind {
            hop: self.label(),
            source,
        };
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let task = tokio::spawn(accept_loop(listener, upstream, Arc::new(self.clone())));
        Ok(Running {
            label: self.label(),
            addr,
            tls: false,
            program: None,
            stop: StopHandle::Task(task),
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

/// Forward one request upstream and hand the response to the hop.
async fn forward(
    mut req: Request<Incoming>,
    upstream: SocketAddr,
    hop: Arc<Builtin>,
) -> Result<Response<Body>, Infallible> {
    // What the client asked, before the hop changes what is sent on.
    let asked = Asked {
        headers: req.headers().clone(),
        is_head: req.method() == http::Method::HEAD,
    };
    hop.rewrite_request(req.headers_mut());
    let resp = match send_upstream(req, upstream).await {
        Ok(r) => r,
        Err(msg) => return Ok(bad_gateway(msg)),
    };
    let (mut head, body) = resp.into_parts();
    for h in connection_named(&head.headers) {
        head.headers.remove(h.as_str());
    }
    for h in HOP_BY_HOP {
        head.headers.remove(*h);
    }
    Ok(hop.respond(&asked, head, body).await)
}

/// Largest read buffer of a hop's upstream connection (hyper's default grows to 400 KiB on a firehose,
/// and `check` runs a hop per chain; measured: 8.2 MiB across the default matrix). A response head must
/// fit in it: 128 KiB is above what nginx (`proxy_buffer_size`, 4–8 KiB) and most proxies accept.
const UPSTREAM_READ_BUF: usize = 128 << 10;

/// The request sent on over a fresh HTTP/1.1 connection, without its hop-by-hop headers.
async fn send_upstream(
    req: Request<Incoming>,
    upstream: SocketAddr,
) -> Result<Response<Incoming>, String> {
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
    let up = up.body(body).map_err(|_| "bad request".to_string())?;
    let stream = TcpStream::connect(upstream)
        .await
        .map_err(|e| format!("upstream {upstream}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(UPSTREAM_READ_BUF)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("upstream handshake: {e}"))?;
    tokio::spawn(conn);
    sender
        .send_request(up)
        .await
        .map_err(|e| format!("upstream request: {e}"))
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
    Fut: Future<Output = ()> + Send + 'static,
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

/// Copy the upstream body unchanged.
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

/// An option that must be above 0.
fn positive(name: &str, value: u64) -> Result<(), String> {
    if value == 0 {
        return Err(format!("`{name}` must be above 0"));
    }
    Ok(())
}

/// The most bytes a model hop holds (what a probe reads of a body at most): a buffer beyond it would only
/// hold a firehose in memory.
pub const MAX_HOP_BUFFER: u64 = 16 << 20;

/// A buffer size: above 0 and at most [`MAX_HOP_BUFFER`].
fn buffer_size(name: &str, value: u64) -> Result<(), String> {
    positive(name, value)?;
    if value > MAX_HOP_BUFFER {
        return Err(format!(
            "`{name}` must be at most {MAX_HOP_BUFFER} (16 MiB), not {value}"
        ));
    }
    Ok(())
}

/// Whether a response carries a content coding other than identity (`none` counts as identity).
fn is_coded(head: &http::HeaderMap) -> bool {
    head.get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "identity" | "none"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_their_options() {
        assert_eq!(
            Builtin::from(Coalesce { bytes: 10 }).label(),
            "coalesce 10B"
        );
        assert_eq!(Builtin::from(Compression::default()).label(), "compression");
        assert_eq!(
            Builtin::from(IdleCut { after_ms: 5 }).label(),
            "idle-cut 5ms"
        );
    }

    #[test]
    fn every_name_builds_its_hop_with_default_options() {
        for name in NAMES {
            let hop = Builtin::named(name).unwrap();
            assert!(hop.label().starts_with(name), "{name}: {}", hop.label());
        }
        assert_eq!(Builtin::named("nginx"), None);
    }
}
