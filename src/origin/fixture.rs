//! The built-in fixture origin: a hyper server on 127.0.0.1 that plays a [`Profile`].
//!
//! Every event carries its sequence number (`id: N`, `data: N xxx…`). The origin records, per request,
//! the instant each event was *produced* (handed to the writer, or for `hold_until_end` put into the
//! app-level buffer), so a probe in the same process can compute per-event latency without clock skew.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::channel::{Channel, Sender};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::profile::{Profile, Wire};
use crate::{Body, BoxError};

/// What the origin saw and did for one request.
#[derive(Debug, Clone)]
pub struct RequestLog {
    pub received: Instant,
    pub method: String,
    /// Path and query of the request.
    pub target: String,
    /// The HTTP version the request arrived with (nginx speaks HTTP/1.0 upstream by default).
    pub version: String,
    pub headers: Vec<(String, String)>,
    /// When the response headers were handed to hyper.
    pub headers_sent: Option<Instant>,
    /// Produce instant of each event, index = sequence number − 1.
    pub sends: Vec<Instant>,
    /// When the origin finished (or aborted) the body.
    pub ended: Option<Instant>,
    /// Whether the body was ended abruptly on purpose (`abort_after`).
    pub aborted: bool,
    /// Whether the client went away before the origin finished.
    pub client_gone: bool,
    /// The response head's headers, for a response the fixture answered whole (an MCP server's JSON
    /// answers); empty for a profile's stream, whose headers are the profile's.
    pub response_headers: Vec<(String, String)>,
}

type Log = Arc<Mutex<Vec<RequestLog>>>;

/// Profiles served under a path prefix instead of the server's own (see [`FixtureServer::serve_at`]).
type Routes = Arc<Mutex<Vec<(String, Arc<Profile>)>>>;

/// A running fixture origin. Dropping it stops the server and every open response.
pub struct FixtureServer {
    addr: SocketAddr,
    log: Log,
    routes: Routes,
    /// How its responses are framed: every profile it serves frames them so (hyper serves a connection
    /// for its whole life, the raw server one request per connection).
    wire: Wire,
    task: tokio::task::JoinHandle<()>,
}

/// A profile served under a path prefix of a running fixture until this is dropped.
pub struct Route {
    routes: Routes,
    prefix: String,
}

impl Drop for Route {
    fn drop(&mut self) {
        let mut r = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        r.retain(|(p, _)| *p != self.prefix);
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FixtureServer {
    /// Serve `profile` on an ephemeral loopback port.
    pub async fn start(profile: Profile) -> std::io::Result<FixtureServer> {
        FixtureServer::start_on(profile, 0).await
    }

    /// Serve `profile` on `127.0.0.1:port` (0 = ephemeral).
    pub async fn start_on(profile: Profile, port: u16) -> std::io::Result<FixtureServer> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let log: Log = Arc::default();
        let routes: Routes = Arc::default();
        let wire = profile.wire;
        let profile = Arc::new(profile);
        let task = tokio::spawn(accept_loop(
            listener,
            Served {
                profile,
                routes: routes.clone(),
                sessions: Default::default(),
            },
            log.clone(),
        ));
        Ok(FixtureServer {
            addr,
            log,
            routes,
            wire,
            task,
        })
    }

    /// Serve `profile` to requests whose target is `prefix` or [`under`] it (a scenario's own path), so that
    /// cases sharing a chain share its fixture too. The profile must frame its responses as the server's
    /// own does; None when it does not.
    pub fn serve_at(&self, prefix: &str, profile: Profile) -> Option<Route> {
        if profile.wire != self.wire {
            return None;
        }
        let mut r = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        r.retain(|(p, _)| p != prefix);
        r.push((prefix.to_string(), Arc::new(profile)));
        Some(Route {
            routes: self.routes.clone(),
            prefix: prefix.to_string(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}/events", self.addr)
    }

    /// Snapshot of every request served so far.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Whether a request target is `path` or under it (`/events/1-1?x`, `/events/1-1/more`, but not
/// `/events/1-10`: scenarios on one fixture are told apart by these paths).
pub fn under(target: &str, path: &str) -> bool {
    target
        .strip_prefix(path)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
}

/// The header by which a hop that serves fixed routes (LiteLLM answers only `/v1/chat/completions` and
/// its like) keeps the scenario path a request was sent to: ssegate's LiteLLM launcher moves the path
/// there, and LiteLLM forwards `x-` headers upstream.
pub const ROUTE_HEADER: &str = "x-ssegate-route";

/// A request's target as the fixture serves and logs it: the path in [`ROUTE_HEADER`] when the request
/// carries one that is a path, else its own.
fn routed<'a>(target: &'a str, route: Option<&'a str>) -> &'a str {
    route.filter(|r| r.starts_with('/')).unwrap_or(target)
}

/// What a fixture serves: its own profile, and others under path prefixes.
#[derive(Clone)]
struct Served {
    profile: Arc<Profile>,
    routes: Routes,
    /// The MCP sessions it issued (profiles with `mcp: true`).
    sessions: super::mcp::Sessions,
}

impl Served {
    /// The profile for a request target.
    fn profile_for(&self, target: &str) -> Arc<Profile> {
        let r = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        r.iter()
            .find(|(p, _)| under(target, p))
            .map_or_else(|| self.profile.clone(), |(_, p)| p.clone())
    }
}

async fn accept_loop(listener: TcpListener, served: Served, log: Log) {
    // Connections live in this set: aborting the accept task drops it and ends every connection.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors or similar: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let served = served.clone();
                let log = log.clone();
                if served.profile.wire != Wire::Chunked {
                    conns.spawn(serve_raw(stream, served, log));
                    continue;
                }
                conns.spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let target = request_target(&req);
                        let profile = served.profile_for(&target);
                        handle(req, target, profile, log.clone(), served.sessions.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

fn version_str(v: http::Version) -> String {
    format!("{v:?}")
}

/// A request's target as the fixture serves and logs it (see [`routed`]).
fn request_target(req: &Request<Incoming>) -> String {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let route = req
        .headers()
        .get(ROUTE_HEADER)
        .and_then(|v| v.to_str().ok());
    routed(target, route).to_string()
}

/// Serve `req`, whose target (as [`request_target`] read it) is `target`, with `profile`.
async fn handle(
    req: Request<Incoming>,
    target: String,
    profile: Arc<Profile>,
    log: Log,
    sessions: super::mcp::Sessions,
) -> Result<Response<Body>, Infallible> {
    let idx = log_request(
        &log,
        req.method().as_str(),
        target,
        version_str(req.version()),
        req.headers()
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
    );
    // A resuming origin numbers its events after the id the client last saw.
    let after = if profile.resume && !profile.mcp {
        req.headers()
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(0)
    } else {
        0
    };
    let mut profile = profile;
    if profile.mcp {
        match super::mcp::answer(req, &profile, &sessions).await {
            super::mcp::Answer::Done(resp) => {
                if let Ok(mut l) = log.lock() {
                    l[idx].response_headers = resp
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                        .collect();
                }
                mark_headers_sent(&log, idx);
                mark_end(&log, idx, false, false);
                return Ok(resp);
            }
            super::mcp::Answer::Stream(p) => profile = p,
        }
    }
    let (body, first_rx) = start_body(&profile, &log, idx, after).await;
    if profile.headers_with_first_event {
        // Returning the response is what lets hyper write the head: wait until the first write is queued.
        let _ = first_rx.await;
    }
    let mut resp = Response::new(body.boxed());
    *resp.status_mut() = StatusCode::from_u16(profile.status).unwrap_or(StatusCode::OK);
    for (k, v) in &profile.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().append(k, v);
        }
    }
    if profile.content_length
        && let Some(len) = profile.body_len()
    {
        resp.headers_mut()
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    mark_headers_sent(&log, idx);
    Ok(resp)
}

/// Add a request to the log; its index.
fn log_request(
    log: &Log,
    method: &str,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
) -> usize {
    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
    l.push(RequestLog {
        received: Instant::now(),
        method: method.to_string(),
        target,
        version,
        headers,
        headers_sent: None,
        response_headers: Vec::new(),
        sends: Vec::new(),
        ended: None,
        aborted: false,
        client_gone: false,
    });
    l.len() - 1
}

fn mark_headers_sent(log: &Log, idx: usize) {
    if let Ok(mut l) = log.lock() {
        l[idx].headers_sent = Some(Instant::now());
    }
}

/// Wait out the profile's header delay, then start playing its body: the body, and a signal that the
/// first write is queued.
async fn start_body(
    profile: &Arc<Profile>,
    log: &Log,
    idx: usize,
    after: u32,
) -> (
    http_body_util::channel::Channel<Bytes, BoxError>,
    tokio::sync::oneshot::Receiver<()>,
) {
    if profile.delay_headers_ms > 0 {
        tokio::time::sleep(Duration::from_millis(profile.delay_headers_ms)).await;
    }
    let (tx, body) = Channel::<Bytes, BoxError>::new(64);
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    let start = Instant::now();
    tokio::spawn(play(
        profile.clone(),
        tx,
        start,
        log.clone(),
        idx,
        first_tx,
        after,
    ));
    (body, first_rx)
}

/// The largest request head the raw server reads.
const MAX_REQUEST_HEAD: usize = 64 << 10;

/// Serve one connection without hyper, for the framings hyper never writes: a close-delimited
/// HTTP/1.1 body and an HTTP/1.0 response. One request per connection; the connection closes when the
/// body ends (that close is what delimits it).
async fn serve_raw(mut stream: tokio::net::TcpStream, served: Served, log: Log) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::with_capacity(4096);
    let head = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(_)) => {
                    return Some((
                        req.method.unwrap_or("GET").to_string(),
                        req.path.unwrap_or("/").to_string(),
                        format!("HTTP/1.{}", req.version.unwrap_or(1)),
                        req.headers
                            .iter()
                            .map(|h| {
                                (
                                    h.name.to_ascii_lowercase(),
                                    String::from_utf8_lossy(h.value).into_owned(),
                                )
                            })
                            .collect::<Vec<_>>(),
                    ));
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST_HEAD => {}
                _ => return None,
            }
        }
    })
    .await;
    let Ok(Some((method, target, version, headers))) = head else {
        return;
    };
    let route = headers
        .iter()
        .find(|(k, _)| k == ROUTE_HEADER)
        .map(|(_, v)| v.as_str());
    let target = routed(&target, route).to_string();
    let profile = served.profile_for(&target);
    let idx = log_request(&log, &method, target, version, headers);
    let (mut body, first_rx) = start_body(&profile, &log, idx, 0).await;
    if profile.headers_with_first_event {
        let _ = first_rx.await;
    }
    let status = StatusCode::from_u16(profile.status).unwrap_or(StatusCode::OK);
    let mut out = format!(
        "{} {} {}\r\n",
        if profile.wire == Wire::Http10 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        },
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (k, v) in &profile.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if profile.content_length
        && let Some(len) = profile.body_len()
    {
        out.push_str(&format!("Content-Length: {len}\r\n"));
    }
    if profile.wire == Wire::CloseDelimited {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    mark_headers_sent(&log, idx);
    if stream.write_all(out.as_bytes()).await.is_err() {
        return;
    }
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            // `abort_after`: end the connection at once, with a reset rather than a clean close.
            let _ = stream.set_zero_linger();
            return;
        };
        if let Ok(data) = frame.into_data()
            && stream.write_all(&data).await.is_err()
        {
            // The client went away: dropping the body tells the player.
            return;
        }
    }
    let _ = stream.shutdown().await;
}

enum Step {
    /// A token stream's opening events.
    Open,
    Event(u32),
    Heartbeat,
    /// A token stream's closing events.
    Close,
    End,
}

/// The timeline of one response, as offsets from the start of the body.
fn timeline(p: &Profile) -> Vec<(Duration, Step)> {
    let mut steps = Vec::new();
    let sent = p.events_sent();
    if p.token_format().is_some() {
        steps.push((Duration::ZERO, Step::Open));
    }
    for seq in 1..=sent {
        steps.push((p.events.at(seq), Step::Event(seq)));
    }
    let mut last = if sent == 0 {
        Duration::ZERO
    } else {
        p.events.at(sent)
    };
    if p.token_format().is_some() && sent == p.events.count {
        // The closing events come one gap after the last delta (a model's last token, then its stop).
        last += p.events.gap();
        steps.push((last, Step::Close));
    }
    let end = last + Duration::from_millis(p.linger_ms);
    if let Some(hb) = p.heartbeat_ms.filter(|&h| h > 0) {
        let hb = Duration::from_millis(hb);
        let mut t = hb;
        while t < end {
            steps.push((t, Step::Heartbeat));
            t += hb;
        }
    }
    // Stable sort: an event and a heartbeat at the same instant go event first.
    steps.sort_by_key(|(t, s)| (*t, matches!(s, Step::Heartbeat)));
    steps.push((end, Step::End));
    steps
}

async fn play(
    p: Arc<Profile>,
    mut tx: Sender<Bytes, BoxError>,
    start: Instant,
    log: Log,
    idx: usize,
    first_tx: tokio::sync::oneshot::Sender<()>,
    after: u32,
) {
    if let Some(r) = p.replayed.clone() {
        return replay(&r, tx, start, &log, idx, first_tx).await;
    }
    let mut first_tx = Some(first_tx);
    let mut pending: Vec<u8> = Vec::new();
    if p.framing.bom {
        pending.extend_from_slice(b"\xEF\xBB\xBF");
    }
    pending.extend(p.padding_bytes());
    pending.extend(p.retry_bytes());
    // Without the early-flush quirk, the preamble (BOM, padding) goes out with the headers.
    if !p.headers_with_first_event
        && !pending.is_empty()
        && !p.hold_until_end
        && tx
            .send_data(Bytes::from(std::mem::take(&mut pending)))
            .await
            .is_err()
    {
        return mark_end(&log, idx, false, true);
    }
    let mut events_done = 0u32;
    for (at, step) in timeline(&p) {
        tokio::time::sleep_until((start + at).into()).await;
        match step {
            Step::Event(seq) => {
                let now = Instant::now();
                if let Ok(mut l) = log.lock() {
                    l[idx].sends.push(now);
                }
                pending.extend(p.event_bytes(seq.saturating_add(after)));
                events_done += 1;
            }
            Step::Open | Step::Close => {
                // Each of a token stream's opening and closing events has its send instant, so the
                // verdict aligns every event the client gets with the one the origin sent.
                let frames = if matches!(step, Step::Open) {
                    p.open_frames()
                } else {
                    p.close_frames()
                };
                let now = Instant::now();
                if let Ok(mut l) = log.lock() {
                    l[idx].sends.extend(std::iter::repeat_n(now, frames.len()));
                }
                pending.extend(frames.concat());
            }
            Step::Heartbeat => pending.extend(p.heartbeat_bytes()),
            Step::End => {}
        }
        let end_now = matches!(step, Step::End);
        if (!p.hold_until_end || end_now) && !pending.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut pending));
            if tx.send_data(chunk).await.is_err() {
                return mark_end(&log, idx, false, true);
            }
            if let Some(f) = first_tx.take() {
                let _ = f.send(());
            }
        }
        if p.abort_after
            .is_some_and(|n| events_done >= n && n < p.events.count)
        {
            tx.abort("fixture: abort_after reached".into());
            return mark_end(&log, idx, true, false);
        }
    }
    drop(first_tx);
    mark_end(&log, idx, false, false);
}

/// Serve a recorded stream: each piece at its offset from the head, with a send instant for every event
/// it completes; then end as the recording ended.
async fn replay(
    r: &crate::origin::replay::Replay,
    mut tx: Sender<Bytes, BoxError>,
    start: Instant,
    log: &Log,
    idx: usize,
    first_tx: tokio::sync::oneshot::Sender<()>,
) {
    let mut first_tx = Some(first_tx);
    for (at, bytes, events) in &r.pieces {
        tokio::time::sleep_until((start + *at).into()).await;
        let now = Instant::now();
        if let Ok(mut l) = log.lock() {
            l[idx].sends.extend(std::iter::repeat_n(now, *events));
        }
        if tx.send_data(Bytes::from(bytes.clone())).await.is_err() {
            return mark_end(log, idx, false, true);
        }
        if let Some(f) = first_tx.take() {
            let _ = f.send(());
        }
    }
    tokio::time::sleep_until((start + r.end).into()).await;
    if r.aborted {
        tx.abort("fixture: the recorded stream ended abruptly".into());
        return mark_end(log, idx, true, false);
    }
    drop(first_tx);
    mark_end(log, idx, false, false);
}

fn mark_end(log: &Log, idx: usize, aborted: bool, client_gone: bool) {
    if let Ok(mut l) = log.lock() {
        l[idx].ended = Some(Instant::now());
        l[idx].aborted = aborted;
        l[idx].client_gone = client_gone;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_path_is_told_apart_from_one_it_prefixes() {
        assert!(under("/events/7-1", "/events/7-1"));
        assert!(under("/events/7-1?x=1", "/events/7-1"));
        assert!(under("/events/7-1/more", "/events/7-1"));
        assert!(!under("/events/7-10", "/events/7-1"));
        assert!(!under("/events/7", "/events/7-1"));
    }

    /// Status and body of a plain GET, over a raw connection (the fixture answers one request).
    async fn get(addr: SocketAddr, path: &str) -> (String, String) {
        get_with(addr, path, "").await
    }

    /// [`get`] with more header lines (each ending in CRLF).
    async fn get_with(addr: SocketAddr, path: &str, more: &str) -> (String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{more}\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .expect("the fixture ends its response")
            .unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        (head.lines().next().unwrap().to_string(), body.to_string())
    }

    #[tokio::test]
    async fn a_shared_fixture_serves_each_scenario_its_own_profile_and_logs_it_apart() {
        let quick = |status: u16, count: u32| {
            let mut p = Profile::builtin("plain").unwrap();
            p.status = status;
            p.events.count = count;
            p.events.gap_ms = 10;
            p.linger_ms = 0;
            p
        };
        let srv = FixtureServer::start(quick(200, 1)).await.unwrap();
        let one = srv.serve_at("/events/1-1", quick(200, 2)).unwrap();
        let _ten = srv.serve_at("/events/1-10", quick(503, 3)).unwrap();
        let (status, body) = get(srv.addr(), "/events/1-1").await;
        assert!(status.contains("200"), "{status}");
        assert_eq!(body.matches("id: ").count(), 2, "{body}");
        let (status, body) = get(srv.addr(), "/events/1-10?x").await;
        assert!(status.contains("503"), "{status}");
        assert_eq!(body.matches("id: ").count(), 3, "{body}");
        // Any other path gets the server's own profile, as does a route once dropped.
        drop(one);
        let (_, body) = get(srv.addr(), "/events/1-1").await;
        assert_eq!(body.matches("id: ").count(), 1, "{body}");
        let targets: Vec<String> = srv.requests().into_iter().map(|r| r.target).collect();
        assert_eq!(targets, ["/events/1-1", "/events/1-10?x", "/events/1-1"]);
        // A profile framed otherwise cannot share the server: hyper or the raw writer serves a
        // connection before its request is read.
        let mut http10 = quick(200, 1);
        http10.wire = Wire::Http10;
        assert!(srv.serve_at("/events/1-2", http10).is_none());
    }

    #[tokio::test]
    async fn a_request_a_hop_moved_to_its_own_route_is_served_and_logged_by_its_route_header() {
        let quick = |count: u32| {
            let mut p = Profile::builtin("plain").unwrap();
            p.events.count = count;
            p.events.gap_ms = 10;
            p.linger_ms = 0;
            p
        };
        let srv = FixtureServer::start(quick(1)).await.unwrap();
        let _route = srv.serve_at("/events/2-1", quick(3)).unwrap();
        let header = format!("{ROUTE_HEADER}: /events/2-1\r\n");
        let (_, body) = get_with(srv.addr(), "/v1/chat/completions", &header).await;
        assert_eq!(body.matches("id: ").count(), 3, "{body}");
        // A value that is not a path is ignored: the request is served by its own target.
        let (_, body) = get_with(
            srv.addr(),
            "/v1/chat/completions",
            &format!("{ROUTE_HEADER}: nonsense\r\n"),
        )
        .await;
        assert_eq!(body.matches("id: ").count(), 1, "{body}");
        let targets: Vec<String> = srv.requests().into_iter().map(|r| r.target).collect();
        assert_eq!(targets, ["/events/2-1", "/v1/chat/completions"]);
    }

    #[test]
    fn timeline_orders_events_heartbeats_and_end() {
        let mut p = Profile::builtin("plain").unwrap();
        p.events.count = 2;
        p.events.gap_ms = 100;
        p.heartbeat_ms = Some(50);
        p.linger_ms = 0;
        let t: Vec<(u128, &str)> = timeline(&p)
            .iter()
            .map(|(d, s)| {
                let k = match s {
                    Step::Event(_) => "e",
                    Step::Heartbeat => "h",
                    Step::Open => "open",
                    Step::Close => "close",
                    Step::End => "end",
                };
                (d.as_millis(), k)
            })
            .collect();
        assert_eq!(
            t,
            vec![
                (50, "h"),
                (100, "e"),
                (100, "h"),
                (150, "h"),
                (200, "e"),
                (200, "end")
            ]
        );
    }

    #[tokio::test]
    async fn serves_the_profile_and_logs_send_instants() {
        let mut p = Profile::builtin("plain").unwrap();
        p.events.count = 3;
        p.events.gap_ms = 30;
        let srv = FixtureServer::start(p.clone()).await.unwrap();
        let body = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(srv.url())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let expect: Vec<u8> = (1..=3).flat_map(|s| p.event_bytes(s)).collect();
        assert_eq!(body.as_ref(), expect.as_slice());
        let reqs = srv.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].sends.len(), 3);
        assert!(reqs[0].sends[2] > reqs[0].sends[0]);
        assert_eq!(reqs[0].version, "HTTP/1.1");
    }

    /// Everything a raw HTTP/1.1 client reads from `srv` for one request, until the server closes.
    async fn raw_exchange(srv: &FixtureServer) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(srv.addr()).await.unwrap();
        s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .expect("the server closes the connection when the body ends")
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn close_delimited_and_http10_bodies_end_with_the_connection() {
        for (wire, status_line, connection) in [
            (Wire::CloseDelimited, "HTTP/1.1 200 OK\r\n", true),
            (Wire::Http10, "HTTP/1.0 200 OK\r\n", false),
        ] {
            let mut p = Profile::builtin("plain").unwrap();
            p.events.count = 2;
            p.events.gap_ms = 20;
            p.wire = wire;
            let srv = FixtureServer::start(p.clone()).await.unwrap();
            let text = raw_exchange(&srv).await;
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(text.starts_with(status_line), "{text}");
            let head = head.to_ascii_lowercase();
            assert!(!head.contains("transfer-encoding"), "{head}");
            assert!(!head.contains("content-length"), "{head}");
            assert_eq!(head.contains("connection: close"), connection, "{head}");
            assert!(head.contains("content-type: text/event-stream"), "{head}");
            let expect: Vec<u8> = (1..=2).flat_map(|s| p.event_bytes(s)).collect();
            assert_eq!(body.as_bytes(), expect.as_slice());
            let reqs = srv.requests();
            assert_eq!(reqs.len(), 1);
            assert_eq!(
                (reqs[0].method.as_str(), reqs[0].version.as_str()),
                ("GET", "HTTP/1.1")
            );
            assert_eq!(reqs[0].sends.len(), 2);
            assert!(reqs[0].headers_sent.is_some());
        }
    }

    #[tokio::test]
    async fn an_http10_body_may_carry_a_length() {
        let mut p = Profile::builtin("plain").unwrap();
        p.events.count = 1;
        p.events.gap_ms = 10;
        p.wire = Wire::Http10;
        p.content_length = true;
        let srv = FixtureServer::start(p.clone()).await.unwrap();
        let text = raw_exchange(&srv).await;
        let len = p.body_len().unwrap();
        assert!(
            text.contains(&format!("Content-Length: {len}\r\n")),
            "{text}"
        );
        p.wire = Wire::CloseDelimited;
        assert!(p.validate().unwrap_err().contains("close-delimited"));
    }
}
