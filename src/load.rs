//! Many streams at once: `ssegate load` and the capacity cases.
//!
//! Opens N EventSource-like streams (the probe's request, headers and limits), ramped evenly over a
//! duration, each on its own TCP connection through the process's one shared client, and keeps per stream
//! only what the figures need: when it opened, how it failed or when its headers came, and the arrival
//! offsets of its first [`ARRIVALS_KEPT`] events (eight bytes each). The body is parsed by the same SSE
//! parser as the probe's and then dropped, so memory per stream stays a few KiB whatever the stream sends.
//!
//! Per-event latency needs a reference for when each event was sent:
//! - [`LatencyBase::Sends`]: the send instants the in-process fixture recorded for each stream (cases);
//! - [`Fanout::PerStream`] (the default for a URL): every connection gets its own schedule, as the
//!   fixture and most streaming APIs do; event *n*'s latency is its offset from its stream's request
//!   minus the smallest such offset of event *n* over all streams (the fastest stream is the baseline);
//! - [`Fanout::Shared`]: one broadcast that every stream joins; events are matched by id and an event's
//!   latency is its arrival minus the earliest arrival of that id on any stream. Events without an id
//!   of their own (the stream's last-event id unchanged since the event before) cannot be matched and
//!   are counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::decode::{Coding, Decoder, Part};
use crate::probe::{ProbeError, ProbeRequest, build_request, client_for};
use crate::protocol::Protocol;
use crate::sse::{Item, Parser};
use crate::verdict::tokens::{Kind, TokenReader};

/// Event arrivals kept per stream for the latency figures (later events are counted, not kept).
pub const ARRIVALS_KEPT: usize = 64;
/// Descriptors kept free beyond one per stream (listeners, logs, the runtime, children's pipes).
const FD_SLACK: u64 = 256;
/// The soft descriptor limit a load raises to at least, within the hard limit: concurrent cases and
/// children (which inherit it) need room beyond one load's own streams.
const FD_ROOMY: u64 = 65_536;
/// Query parameter that tells streams apart at an in-process origin.
pub const STREAM_PARAM: &str = "ssegate_stream";

/// How the streams' events relate to each other (what "latency" is measured against without send
/// instants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Fanout {
    /// Each connection gets its own events on its own schedule.
    #[default]
    PerStream,
    /// Every stream joins one broadcast; events are matched by id.
    Shared,
}

/// What to open.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub request: ProbeRequest,
    pub streams: usize,
    /// Stream *i* opens at `ramp × i / streams` after the start.
    pub ramp: Duration,
    pub schedule: Fanout,
    /// Append `?ssegate_stream=I` to each stream's URL (for an origin that records its requests).
    pub tag_streams: bool,
    /// Descriptors each stream costs this process: 1, or 2 when its origin runs in the process too.
    pub fds_per_stream: u64,
}

/// A case's load: `streams` concurrent streams opened evenly over `ramp_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoadPlan {
    pub streams: usize,
    /// Default: 2 ms per stream.
    pub ramp_ms: Option<u64>,
}

/// The most streams one load opens, wherever it is asked for (`ssegate load --streams`, `listen.streams`,
/// a case's `load.streams`): loopback runs out of ports near 28 000 connections per destination, and a
/// chain's hop needs a second connection per stream.
pub const MAX_STREAMS: usize = 20_000;

impl LoadPlan {
    pub fn validate(&self) -> Result<(), String> {
        if self.streams == 0 || self.streams > MAX_STREAMS {
            return Err(format!(
                "`load.streams` must be 1 to {MAX_STREAMS}, not {}",
                self.streams
            ));
        }
        if self.ramp_ms.is_some_and(|r| r > 60_000) {
            return Err("`load.ramp_ms` is at most 60000".into());
        }
        Ok(())
    }

    pub fn ramp(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.ramp_ms.unwrap_or(2 * self.streams as u64))
    }
}

/// Why a load run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(
        "failed to raise the file-descriptor limit: {streams} streams need about {} descriptors, and the \
         limit is {} (hard limit {}); raise the hard limit (`ulimit -Hn` as root, `LimitNOFILE=` for a \
         service, `--ulimit nofile=` for a container) or open fewer streams",
        .fd.needed, .fd.now, .fd.hard
    )]
    FdLimit { streams: usize, fd: FdLimit },
}

/// Why a stream never got going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Failure {
    /// The connection was refused.
    Refused,
    /// The connection was reset or closed before a response head.
    Reset,
    /// No connection or no response head within the deadline.
    Timeout,
    /// A response that was not 2xx.
    Status,
    /// The process ran out of file descriptors.
    FdLimit,
    /// Anything else (the first message is kept).
    Other,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Refused => "refused",
            Failure::Reset => "reset",
            Failure::Timeout => "timeout",
            Failure::Status => "status",
            Failure::FdLimit => "fd-limit",
            Failure::Other => "other",
        }
    }
}

/// How a connected stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StreamEnd {
    /// The body ended normally.
    Complete,
    /// Cut after the head: a reset, an EOF inside the body, an undecodable body.
    Cut,
    /// Still open when its listening time or event limit ran out.
    Listening,
}

/// One stream, compactly.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    /// When the request was sent, from the run's start.
    pub opened: Duration,
    pub result: Result<Connected, (Failure, Option<u16>)>,
}

/// A stream that got a 2xx head.
#[derive(Debug, Clone)]
pub struct Connected {
    /// From the request to the head.
    pub headers: Duration,
    /// From the request: (arrival offset in µs, event key); key = id hash for [`Fanout::Shared`],
    /// else the event's 1-based index. At most [`ARRIVALS_KEPT`].
    pub arrivals: Vec<(u32, u32)>,
    /// Events without an id of their own (the last-event id unchanged; they matter for
    /// [`Fanout::Shared`]).
    pub without_id: u32,
    pub events: u64,
    pub end: StreamEnd,
    /// A token stream's deltas, when the stream is one.
    pub tokens: Option<Box<StreamTokens>>,
}

/// One stream's content deltas, as a load keeps them.
#[derive(Debug, Clone, Default)]
pub struct StreamTokens {
    pub protocol: Protocol,
    /// From the request to the first content delta, µs.
    pub first_delta: Option<u32>,
    pub deltas: u32,
    /// The gaps between consecutive deltas, µs (the first [`ARRIVALS_KEPT`]).
    pub gaps: Vec<u32>,
    /// Whether the protocol's terminal event arrived.
    pub terminal: bool,
    /// The last delta's arrival, µs.
    last: Option<u32>,
}

impl StreamTokens {
    fn delta(&mut self, at: u32) {
        self.deltas += 1;
        self.first_delta.get_or_insert(at);
        if let Some(last) = self.last
            && self.gaps.len() < ARRIVALS_KEPT
        {
            self.gaps.push(at.saturating_sub(last));
        }
        self.last = Some(at);
    }
}

/// Everything one load run saw.
#[derive(Debug)]
pub struct LoadRun {
    pub start: Instant,
    pub wall: Duration,
    pub streams: Vec<StreamRecord>,
    /// The first message of each failure reason, for the report (redacted by the probe's rules).
    pub examples: BTreeMap<Failure, String>,
    pub fd: FdLimit,
}

/// The process's file-descriptor limit before and after [`raise_fd_limit`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FdLimit {
    pub before: u64,
    pub now: u64,
    pub hard: u64,
    /// Descriptors the run needs (one per stream plus slack).
    pub needed: u64,
}

impl FdLimit {
    pub fn enough(&self) -> bool {
        self.now >= self.needed
    }
}

/// Raise the soft `RLIMIT_NOFILE` so that `streams` connections of `per_stream` descriptors each fit,
/// with room to spare for whatever else the process runs meanwhile (up to [`FD_ROOMY`] when the hard
/// limit allows); never lowers it.
pub fn raise_fd_limit(streams: usize, per_stream: u64) -> FdLimit {
    let needed = streams as u64 * per_stream + FD_SLACK;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return FdLimit {
            before: 0,
            now: 0,
            hard: 0,
            needed,
        };
    }
    // The limit the process started with, however often it was raised since (the CLI raises it before a
    // chain starts, so that its programs inherit it, and the run again).
    static STARTED_WITH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let before = *STARTED_WITH.get_or_init(|| lim.rlim_cur);
    if lim.rlim_cur < needed {
        let want = libc::rlimit {
            rlim_cur: needed.max(FD_ROOMY).min(lim.rlim_max),
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own; lowering nothing, raising within the hard limit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            lim.rlim_cur = want.rlim_cur;
        }
    }
    FdLimit {
        before,
        now: lim.rlim_cur,
        hard: lim.rlim_max,
        needed,
    }
}

/// Descriptors one stream costs this process: its client socket, the origin's side when the origin is
/// in-process, the tap's two when it relays, and two per in-process (built-in) hop.
pub fn fds_per_stream(in_process_origin: bool, tapped: bool, builtin_hops: usize) -> u64 {
    1 + u64::from(in_process_origin) + 2 * u64::from(tapped) + 2 * builtin_hops as u64
}

/// Live counters (for a progress bar).
#[derive(Debug, Default)]
pub struct Counters {
    pub opened: AtomicUsize,
    pub connected: AtomicUsize,
    pub failed: AtomicUsize,
    pub done: AtomicUsize,
}

/// Open the streams, wait for every one to end, and return what each saw.
pub async fn run(spec: &LoadSpec, counters: Arc<Counters>) -> Result<LoadRun, LoadError> {
    let client = client_for(spec.request.limits.connect)?;
    // Refuse a malformed request once, not N times.
    build_request(&client, &spec.request, &spec.request.effective_headers())?;
    let fd = raise_fd_limit(spec.streams, spec.fds_per_stream.max(1));
    if !fd.enough() {
        return Err(LoadError::FdLimit {
            streams: spec.streams,
            fd,
        });
    }
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let mut streams: Vec<Option<StreamRecord>> = vec![None; spec.streams];
    let mut examples = BTreeMap::new();
    // A panic in one stream is a bug; it is reported as `other` with its message.
    let mut panics = Vec::new();
    let n = spec.streams.max(1);
    for i in 0..spec.streams {
        let at = start + spec.ramp.mul_f64(i as f64 / n as f64);
        tokio::time::sleep_until(at.into()).await;
        let mut req = spec.request.clone();
        if spec.tag_streams {
            let sep = if req.url.contains('?') { '&' } else { '?' };
            req.url = format!("{}{sep}{STREAM_PARAM}={i}", req.url);
        }
        let client = client.clone();
        let counters = counters.clone();
        let schedule = spec.schedule;
        set.spawn(async move {
            counters.opened.fetch_add(1, Ordering::Relaxed);
            let r = one(&client, &req, start, schedule, &counters).await;
            counters.done.fetch_add(1, Ordering::Relaxed);
            (i, r)
        });
        // Reap finished streams as we go, so the set does not hold their results.
        while let Some(j) = set.try_join_next() {
            keep(j, &mut streams, &mut examples, &mut panics);
        }
    }
    while let Some(j) = set.join_next().await {
        keep(j, &mut streams, &mut examples, &mut panics);
    }
    let streams = streams
        .into_iter()
        .map(|s| {
            s.unwrap_or(StreamRecord {
                opened: Duration::ZERO,
                result: Err((Failure::Other, None)),
            })
        })
        .collect();
    if let Some(m) = panics.into_iter().next() {
        examples.entry(Failure::Other).or_insert(m);
    }
    Ok(LoadRun {
        start,
        wall: start.elapsed(),
        streams,
        examples,
        fd,
    })
}

type Joined = Result<(usize, (StreamRecord, Option<String>)), tokio::task::JoinError>;

/// File a finished stream's record (and its failure's message, the first of each reason).
fn keep(
    j: Joined,
    streams: &mut [Option<StreamRecord>],
    examples: &mut BTreeMap<Failure, String>,
    panics: &mut Vec<String>,
) {
    match j {
        Ok((i, (rec, msg))) => {
            if let (Err((f, _)), Some(m)) = (&rec.result, msg) {
                examples.entry(*f).or_insert(m);
            }
            streams[i] = Some(rec);
        }
        Err(e) => panics.push(e.to_string()),
    }
}

/// Hash of an event id to 32 bits (FNV-1a): matching ids across streams without keeping them.
fn id_key(id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

/// The stream's own failure: counted live and returned with its message.
fn failed(
    counters: &Counters,
    opened: Duration,
    f: Failure,
    status: Option<u16>,
    msg: String,
) -> (StreamRecord, Option<String>) {
    counters.failed.fetch_add(1, Ordering::Relaxed);
    (
        StreamRecord {
            opened,
            result: Err((f, status)),
        },
        Some(msg),
    )
}

/// One stream from request to end; the failure's message for the report when it failed.
async fn one(
    client: &reqwest::Client,
    req: &ProbeRequest,
    run_start: Instant,
    schedule: Fanout,
    counters: &Counters,
) -> (StreamRecord, Option<String>) {
    if let Some(target) = Http1Target::of(&req.url) {
        return one_http1(&target, req, run_start, schedule, counters).await;
    }
    let sent = Instant::now();
    let opened = sent - run_start;
    let request = match build_request(client, req, &req.effective_headers()) {
        Ok(r) => r,
        Err(e) => {
            let m = crate::error::error_chain(&e);
            return failed(counters, opened, Failure::Other, None, m);
        }
    };
    let deadline = sent + req.limits.duration;
    let mut resp = match tokio::time::timeout_at(deadline.into(), client.execute(request)).await {
        Err(_) => {
            let m = "no response head within the listening time".to_string();
            return failed(counters, opened, Failure::Timeout, None, m);
        }
        Ok(Err(e)) => {
            let f = classify(&e);
            let m = crate::error::error_chain(&e.without_url());
            return failed(counters, opened, f, None, m);
        }
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    if !status.is_success() {
        let m = format!("status {status}");
        return failed(counters, opened, Failure::Status, Some(status.as_u16()), m);
    }
    let mut body = StreamBody::new(req, sent, schedule, resp.headers(), counters);
    let end = loop {
        if let Some(end) = body.end.take() {
            break end;
        }
        match tokio::time::timeout_at(deadline.into(), resp.chunk()).await {
            Err(_) => break StreamEnd::Listening,
            Ok(Err(_)) => break StreamEnd::Cut,
            Ok(Ok(None)) => break StreamEnd::Complete,
            Ok(Ok(Some(ch))) => body.absorb(&ch, req),
        }
    };
    (body.finish(opened, end), None)
}

/// A plain `http://` URL: streams to it go through hyper's HTTP/1.1 client directly, on a connection
/// driven inside the stream's own task with a 4 KiB read buffer (reqwest's pooled client spawns a
/// connection task per stream and reads into 8 KiB: a third more memory per stream).
struct Http1Target {
    host: String,
    port: u16,
    authority: String,
    path: String,
}

impl Http1Target {
    fn of(url: &str) -> Option<Http1Target> {
        let u = reqwest::Url::parse(url).ok()?;
        if u.scheme() != "http" || !u.username().is_empty() || u.password().is_some() {
            return None;
        }
        // `[::1]` in the URL and the Host header, `::1` to connect to.
        let shown = u.host_str()?.to_string();
        let host = shown
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = u.port_or_known_default()?;
        let authority = match u.port() {
            Some(p) => format!("{shown}:{p}"),
            None => shown,
        };
        let path = match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        };
        Some(Http1Target {
            host,
            port,
            authority,
            path,
        })
    }
}

/// Read buffer of a direct HTTP/1.1 stream.
const HTTP1_READ_BUF: usize = 4096;

/// The request of one direct HTTP/1.1 stream, with the headers reqwest would add unless it sets them.
fn http1_request(
    t: &Http1Target,
    req: &ProbeRequest,
) -> Result<http::Request<http_body_util::Full<bytes::Bytes>>, http::Error> {
    let headers = req.effective_headers();
    let given = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut request = http::Request::builder()
        .method(req.method.as_str())
        .uri(t.path.as_str());
    // The defaults reqwest would send, unless the request sets them itself (as `probe` does).
    if !given("host") {
        request = request.header(http::header::HOST, t.authority.as_str());
    }
    if !given("user-agent") {
        request = request.header(http::header::USER_AGENT, crate::probe::USER_AGENT);
    }
    for (k, v) in &headers {
        request = request.header(k, v);
    }
    let body = http_body_util::Full::new(bytes::Bytes::from(req.body.clone().unwrap_or_default()));
    request.body(body)
}

/// A connection to the target within the request's connect deadline.
async fn connect_http1(
    t: &Http1Target,
    req: &ProbeRequest,
) -> Result<tokio::net::TcpStream, (Failure, String)> {
    let connect = tokio::time::timeout(
        req.limits.connect,
        tokio::net::TcpStream::connect((t.host.as_str(), t.port)),
    );
    match connect.await {
        Err(_) => Err((
            Failure::Timeout,
            format!("no connection within {:?}", req.limits.connect),
        )),
        Ok(Err(e)) => Err((
            classify_io(&e).unwrap_or(Failure::Other),
            format!("failed to connect: {e}"),
        )),
        Ok(Ok(s)) => Ok(s),
    }
}

async fn one_http1(
    t: &Http1Target,
    req: &ProbeRequest,
    run_start: Instant,
    schedule: Fanout,
    counters: &Counters,
) -> (StreamRecord, Option<String>) {
    use http_body_util::BodyExt;
    let sent = Instant::now();
    let opened = sent - run_start;
    let deadline = sent + req.limits.duration;
    let stream = match connect_http1(t, req).await {
        Ok(s) => s,
        Err((f, m)) => return failed(counters, opened, f, None, m),
    };
    let _ = stream.set_nodelay(true);
    let mut builder = hyper::client::conn::http1::Builder::new();
    builder.read_buf_exact_size(Some(HTTP1_READ_BUF));
    let (mut sender, conn) = match builder
        .handshake(hyper_util::rt::TokioIo::new(stream))
        .await
    {
        Ok(x) => x,
        Err(e) => {
            let m = crate::error::error_chain(&e);
            return failed(counters, opened, classify_hyper(&e), None, m);
        }
    };
    let request = match http1_request(t, req) {
        Ok(r) => r,
        Err(e) => {
            let m = format!("invalid request: {e}");
            return failed(counters, opened, Failure::Other, None, m);
        }
    };
    // The connection runs in this task: polled beside the request and the body until it ends.
    let mut conn = std::pin::pin!(conn);
    let mut conn_done = false;
    let until = tokio::time::sleep_until(deadline.into());
    let mut until = std::pin::pin!(until);
    let sending = sender.send_request(request);
    let mut sending = std::pin::pin!(sending);
    let response = loop {
        tokio::select! {
            r = &mut sending => break r,
            // The connection may finish first (a head it could not parse hands its error to the
            // request): keep waiting for the request's own result, which says what went wrong.
            _ = &mut conn, if !conn_done => conn_done = true,
            _ = &mut until => {
                let m = "no response head within the listening time".to_string();
                return failed(counters, opened, Failure::Timeout, None, m);
            }
        }
    };
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            let m = crate::error::error_chain(&e);
            return failed(counters, opened, classify_hyper(&e), None, m);
        }
    };
    let status = response.status();
    if !status.is_success() {
        let m = format!("status {status}");
        return failed(counters, opened, Failure::Status, Some(status.as_u16()), m);
    }
    let mut state = StreamBody::new(req, sent, schedule, response.headers(), counters);
    let mut incoming = response.into_body();
    let end = loop {
        if let Some(end) = state.end.take() {
            break end;
        }
        let frame = tokio::select! {
            f = incoming.frame() => f,
            // The connection ending (cleanly or not) leaves the frames it read readable; a cut body
            // reports itself as an error frame.
            _ = &mut conn, if !conn_done => {
                conn_done = true;
                continue;
            }
            _ = &mut until => break StreamEnd::Listening,
        };
        match frame {
            None => break StreamEnd::Complete,
            Some(Err(_)) => break StreamEnd::Cut,
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    state.absorb(&data, req);
                }
            }
        }
    };
    (state.finish(opened, end), None)
}

/// A connected stream's body as it comes: decoded, parsed, and reduced to arrivals.
struct StreamBody {
    sent: Instant,
    schedule: Fanout,
    decoder: Option<Decoder>,
    parser: Parser,
    items: Vec<Item>,
    wire: u64,
    c: Connected,
    /// Set when the stream must stop (a limit, an undecodable body).
    end: Option<StreamEnd>,
    /// The id of the last event that had one of its own (kept for a shared schedule only).
    last_id: Option<String>,
    /// What each event is to a token stream, and the deltas so far.
    reader: TokenReader,
    tokens: StreamTokens,
}

impl StreamBody {
    fn new(
        req: &ProbeRequest,
        sent: Instant,
        schedule: Fanout,
        headers: &http::HeaderMap,
        counters: &Counters,
    ) -> StreamBody {
        counters.connected.fetch_add(1, Ordering::Relaxed);
        let coding = headers
            .get(http::header::CONTENT_ENCODING)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let decoder =
            Coding::parse(coding.as_deref()).map(|c| Decoder::new(c, req.limits.max_bytes));
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let lines = req
            .protocol
            .reads_lines(header("content-type").unwrap_or(""));
        // A modest line limit: a load run measures delivery, and per-stream memory is the point.
        let max_line = req.limits.max_line.min(64 << 10);
        StreamBody {
            sent,
            schedule,
            end: decoder.is_none().then_some(StreamEnd::Cut),
            decoder,
            parser: if lines {
                Parser::ndjson(max_line)
            } else {
                Parser::with_max_line(max_line)
            },
            items: Vec::new(),
            wire: 0,
            last_id: None,
            reader: TokenReader::new(req.protocol, header),
            tokens: StreamTokens::default(),
            c: Connected {
                headers: sent.elapsed(),
                arrivals: Vec::new(),
                without_id: 0,
                events: 0,
                end: StreamEnd::Complete,
                tokens: None,
            },
        }
    }

    fn absorb(&mut self, chunk: &[u8], req: &ProbeRequest) {
        let at = micros(self.sent.elapsed());
        self.wire += chunk.len() as u64;
        let Some(decoder) = self.decoder.as_mut() else {
            return;
        };
        let (c, parser, items) = (&mut self.c, &mut self.parser, &mut self.items);
        let (last_id, schedule) = (&mut self.last_id, self.schedule);
        let (reader, tokens) = (&mut self.reader, &mut self.tokens);
        let pushed = decoder.push(chunk, &mut |piece, part| {
            // Later gzip members are what a browser never decodes.
            if part == Part::LaterMember {
                return;
            }
            parser.feed(piece, items);
            for item in items.drain(..) {
                if let Item::Event(e) = item {
                    c.events += 1;
                    match reader.read(&e) {
                        Kind::Delta => tokens.delta(at),
                        Kind::Terminal => tokens.terminal = true,
                        Kind::Other => {}
                    }
                    // An event's id is the last one the stream set: an event that carries the same
                    // as the one before (or none yet) has no id of its own.
                    let own_id = !e.id.is_empty() && last_id.as_deref() != Some(e.id.as_str());
                    if !own_id {
                        c.without_id += 1;
                    }
                    let key = match schedule {
                        Fanout::PerStream => Some(c.events.min(u32::MAX as u64) as u32),
                        // An event without an id of its own cannot be matched across streams.
                        Fanout::Shared => own_id.then(|| id_key(&e.id)),
                    };
                    if own_id && schedule == Fanout::Shared {
                        *last_id = Some(e.id.clone());
                    }
                    if let Some(key) = key
                        && c.arrivals.len() < ARRIVALS_KEPT
                    {
                        c.arrivals.push((at, key));
                    }
                }
            }
        });
        if pushed.is_err() && !decoder.over_limit() {
            self.end = Some(StreamEnd::Cut);
            return;
        }
        let c = &self.c;
        if req.limits.max_events.is_some_and(|m| c.events >= m as u64)
            || self.wire > req.limits.max_bytes
            || decoder.over_limit()
        {
            self.end = Some(StreamEnd::Listening);
        }
    }

    fn finish(mut self, opened: Duration, end: StreamEnd) -> StreamRecord {
        self.c.end = end;
        if let Some(p) = self.reader.protocol().filter(|p| p.has_tokens()) {
            self.tokens.protocol = p;
            self.tokens.gaps.shrink_to_fit();
            self.c.tokens = Some(Box::new(self.tokens));
        }
        self.c.arrivals.shrink_to_fit();
        StreamRecord {
            opened,
            result: Ok(self.c),
        }
    }
}

fn classify_io(io: &std::io::Error) -> Option<Failure> {
    if io.raw_os_error() == Some(libc::EMFILE) || io.raw_os_error() == Some(libc::ENFILE) {
        return Some(Failure::FdLimit);
    }
    match io.kind() {
        std::io::ErrorKind::ConnectionRefused => Some(Failure::Refused),
        std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe
        | std::io::ErrorKind::UnexpectedEof => Some(Failure::Reset),
        std::io::ErrorKind::TimedOut => Some(Failure::Timeout),
        _ => None,
    }
}

/// The first I/O error in an error's source chain that names a reason.
fn io_failure(e: &(dyn std::error::Error + 'static)) -> Option<Failure> {
    std::iter::successors(Some(e), |err| err.source())
        .find_map(|err| err.downcast_ref::<std::io::Error>().and_then(classify_io))
}

/// The failure reason of a hyper error before the response head.
fn classify_hyper(e: &hyper::Error) -> Failure {
    if let Some(f) = io_failure(e) {
        f
    } else if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        Failure::Reset
    } else if e.is_timeout() {
        Failure::Timeout
    } else {
        Failure::Other
    }
}

/// The failure reason of a request that got no response head.
fn classify(e: &reqwest::Error) -> Failure {
    let incomplete = std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |err| {
        err.source()
    })
    .filter_map(|err| err.downcast_ref::<hyper::Error>())
    .any(|h| h.is_incomplete_message() || h.is_canceled());
    if let Some(f) = io_failure(e) {
        f
    } else if e.is_timeout() {
        Failure::Timeout
    } else if incomplete {
        Failure::Reset
    } else {
        Failure::Other
    }
}

/// p50, p90, p99 and max of a set of durations (ms, three decimals).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: usize,
    #[serde(serialize_with = "crate::probe::ser_ms")]
    pub p50: Duration,
    #[serde(serialize_with = "crate::probe::ser_ms")]
    pub p90: Duration,
    #[serde(serialize_with = "crate::probe::ser_ms")]
    pub p99: Duration,
    #[serde(serialize_with = "crate::probe::ser_ms")]
    pub max: Duration,
}

impl Percentiles {
    /// Nearest-rank percentiles; `None` for an empty set.
    pub fn of(mut v: Vec<Duration>) -> Option<Percentiles> {
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let at = |p: f64| {
            let rank = (p * v.len() as f64).ceil() as usize;
            v[rank.clamp(1, v.len()) - 1]
        };
        Some(Percentiles {
            count: v.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: v[v.len() - 1],
        })
    }
}

/// What each event's latency is measured against.
pub enum LatencyBase<'a> {
    /// The run's own streams (see the module docs).
    Baseline(Fanout),
    /// Send instant of event `seq` (1-based) on stream `i`, from the in-process origin's record.
    Sends(&'a dyn Fn(usize, u32) -> Option<Instant>),
}

impl LatencyBase<'_> {
    pub fn label(&self) -> &'static str {
        match self {
            LatencyBase::Baseline(Fanout::PerStream) => {
                "against the fastest stream's offset of the same event"
            }
            LatencyBase::Baseline(Fanout::Shared) => {
                "against the earliest arrival of the same event id"
            }
            LatencyBase::Sends(_) => "against the origin's send instants",
        }
    }
}

/// The figures of a run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadSummary {
    pub streams: usize,
    pub connected: usize,
    /// Streams that never got a 2xx head, per reason.
    pub failed: BTreeMap<&'static str, usize>,
    /// Status codes of the `status` failures.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub statuses: BTreeMap<u16, usize>,
    /// Connected streams whose body was cut.
    pub cut: usize,
    /// Connected streams still open when they stopped listening.
    pub listening: usize,
    pub events: u64,
    pub time_to_headers: Option<Percentiles>,
    pub time_to_first_event: Option<Percentiles>,
    pub latency: Option<Percentiles>,
    pub latency_basis: &'static str,
    /// Events that could not be matched to a reference (no id under a shared schedule, no send record).
    pub unmatched: u64,
    /// When the last stream opened (the ramp as it happened).
    #[serde(serialize_with = "crate::probe::ser_ms")]
    pub ramp: Duration,
    #[serde(serialize_with = "crate::probe::ser_ms")]
    pub wall: Duration,
    pub fd_limit: FdLimit,
    /// The token timing of the streams that were token streams (`--protocol`, or recognised).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Box<LoadTokens>>,
}

/// Token timing over a load's token streams: every stream's time to its first token, and the gaps
/// between tokens pooled over the streams (the first [`ARRIVALS_KEPT`] of each).
#[derive(Debug, Clone, Serialize)]
pub struct LoadTokens {
    /// The protocol most of them were read as.
    pub protocol: Protocol,
    /// Streams read as a token stream.
    pub streams: usize,
    pub deltas: u64,
    /// From each stream's request to its first content delta.
    pub ttft: Option<Percentiles>,
    /// Between consecutive content deltas of a stream.
    pub itl: Option<Percentiles>,
    /// Token streams whose terminal event arrived (`[DONE]`, `message_stop`, …).
    pub ended_with_terminal: usize,
    /// The terminal event's name for the protocol.
    pub terminal: &'static str,
}

impl LoadTokens {
    fn of<'a>(streams: impl Iterator<Item = &'a StreamTokens>) -> Option<LoadTokens> {
        let mut by_protocol: BTreeMap<&'static str, (Protocol, usize)> = BTreeMap::new();
        let (mut n, mut deltas, mut ended) = (0, 0u64, 0);
        let (mut ttft, mut itl) = (Vec::new(), Vec::new());
        let us = |v: u32| Duration::from_micros(v as u64);
        for t in streams {
            n += 1;
            by_protocol
                .entry(t.protocol.as_str())
                .or_insert((t.protocol, 0))
                .1 += 1;
            deltas += t.deltas as u64;
            ended += usize::from(t.terminal);
            ttft.extend(t.first_delta.map(us));
            itl.extend(t.gaps.iter().copied().map(us));
        }
        let protocol = by_protocol.into_values().max_by_key(|(_, k)| *k)?.0;
        Some(LoadTokens {
            protocol,
            streams: n,
            deltas,
            ttft: Percentiles::of(ttft),
            itl: Percentiles::of(itl),
            ended_with_terminal: ended,
            terminal: protocol.terminal_name(),
        })
    }
}

impl LoadSummary {
    pub fn failed_total(&self) -> usize {
        self.failed.values().sum()
    }

    /// The failures per reason, `reset 117, status 3` (empty when none failed).
    pub fn failed_label(&self) -> String {
        let reasons: Vec<String> = self
            .failed
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        reasons.join(", ")
    }
}

impl LoadRun {
    /// Each event's latency against `reference`, and how many arrivals had no send to compare with.
    fn latencies(&self, reference: &LatencyBase<'_>) -> (Vec<Duration>, u64) {
        let mut unmatched = 0u64;
        let latency = match reference {
            LatencyBase::Baseline(Fanout::PerStream) => {
                let mut best: HashMap<u32, u32> = HashMap::new();
                for c in self.connected() {
                    for &(at, k) in &c.arrivals {
                        let b = best.entry(k).or_insert(at);
                        *b = (*b).min(at);
                    }
                }
                self.connected()
                    .flat_map(|c| c.arrivals.iter())
                    .map(|&(at, k)| Duration::from_micros((at - best[&k]) as u64))
                    .collect()
            }
            LatencyBase::Baseline(Fanout::Shared) => {
                // Absolute arrival (from the run's start) of each id, earliest over streams.
                let mut best: HashMap<u32, u64> = HashMap::new();
                let abs = |s: &StreamRecord, at: u32| s.opened.as_micros() as u64 + at as u64;
                for s in &self.streams {
                    if let Ok(c) = &s.result {
                        unmatched += c.without_id as u64;
                        for &(at, k) in &c.arrivals {
                            let b = best.entry(k).or_insert(u64::MAX);
                            *b = (*b).min(abs(s, at));
                        }
                    }
                }
                let mut v = Vec::new();
                for s in &self.streams {
                    if let Ok(c) = &s.result {
                        for &(at, k) in &c.arrivals {
                            v.push(Duration::from_micros(abs(s, at) - best[&k]));
                        }
                    }
                }
                v
            }
            LatencyBase::Sends(sent) => {
                let mut v = Vec::new();
                for (i, s) in self.streams.iter().enumerate() {
                    if let Ok(c) = &s.result {
                        let req_at = self.start + s.opened;
                        for &(at, seq) in &c.arrivals {
                            match sent(i, seq) {
                                Some(t) => v.push(
                                    (req_at + Duration::from_micros(at as u64))
                                        .saturating_duration_since(t),
                                ),
                                None => unmatched += 1,
                            }
                        }
                    }
                }
                v
            }
        };
        (latency, unmatched)
    }

    pub fn summarize(&self, reference: &LatencyBase<'_>) -> LoadSummary {
        let mut failed: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut statuses = BTreeMap::new();
        let (mut cut, mut listening, mut events, mut unmatched) = (0, 0, 0u64, 0u64);
        let mut headers = Vec::new();
        let mut first = Vec::new();
        let mut connected = 0;
        let mut ramp = Duration::ZERO;
        for s in &self.streams {
            ramp = ramp.max(s.opened);
            match &s.result {
                Err((f, status)) => {
                    *failed.entry(f.as_str()).or_default() += 1;
                    if let Some(code) = status {
                        *statuses.entry(*code).or_default() += 1;
                    }
                }
                Ok(c) => {
                    connected += 1;
                    headers.push(c.headers);
                    events += c.events;
                    match c.end {
                        StreamEnd::Cut => cut += 1,
                        StreamEnd::Listening => listening += 1,
                        StreamEnd::Complete => {}
                    }
                    if let Some(&(at, _)) = c.arrivals.first() {
                        first.push(Duration::from_micros(at as u64));
                    }
                }
            }
        }
        let (latency, unmatched_sends) = self.latencies(reference);
        unmatched += unmatched_sends;
        LoadSummary {
            streams: self.streams.len(),
            connected,
            failed,
            statuses,
            cut,
            listening,
            events,
            time_to_headers: Percentiles::of(headers),
            time_to_first_event: Percentiles::of(first),
            latency: Percentiles::of(latency),
            latency_basis: reference.label(),
            unmatched,
            ramp,
            wall: self.wall,
            fd_limit: self.fd,
            tokens: LoadTokens::of(self.connected().filter_map(|c| c.tokens.as_deref()))
                .map(Box::new),
        }
    }

    fn connected(&self) -> impl Iterator<Item = &Connected> {
        self.streams.iter().filter_map(|s| s.result.as_ref().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_limit_before_is_the_one_the_process_started_with() {
        let first = raise_fd_limit(1, 1);
        // Ask for more than the soft limit now: the second call raises it if the hard limit allows.
        let second = raise_fd_limit(first.now as usize + 1, 1);
        assert_eq!(second.before, first.before, "{first:?} {second:?}");
        assert!(second.now >= first.now);
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn connected(arrivals: &[(u32, u32)]) -> Result<Connected, (Failure, Option<u16>)> {
        Ok(Connected {
            headers: ms(1),
            arrivals: arrivals.to_vec(),
            without_id: 0,
            events: arrivals.len() as u64,
            end: StreamEnd::Complete,
            tokens: None,
        })
    }

    fn run_of(streams: Vec<StreamRecord>) -> LoadRun {
        LoadRun {
            start: Instant::now(),
            wall: ms(10),
            streams,
            examples: BTreeMap::new(),
            fd: FdLimit {
                before: 1024,
                now: 1024,
                hard: 1024,
                needed: 300,
            },
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let p = Percentiles::of((1..=100).map(ms).collect()).unwrap();
        assert_eq!(
            (p.p50, p.p90, p.p99, p.max),
            (ms(50), ms(90), ms(99), ms(100))
        );
        let one = Percentiles::of(vec![ms(7)]).unwrap();
        assert_eq!((one.p50, one.p99), (ms(7), ms(7)));
        assert!(Percentiles::of(Vec::new()).is_none());
    }

    #[test]
    fn token_timing_pools_each_streams_first_token_and_gaps() {
        let stream = |protocol, first: u32, gap: u32, n: u32, terminal| {
            let mut t = StreamTokens {
                protocol,
                terminal,
                ..StreamTokens::default()
            };
            for i in 0..n {
                t.delta(first + i * gap);
            }
            t
        };
        let streams = [
            stream(Protocol::OpenaiChat, 600_000, 30_000, 3, true),
            stream(Protocol::OpenaiChat, 900_000, 10_000, 2, false),
            stream(Protocol::Anthropic, 700_000, 20_000, 1, true),
        ];
        assert_eq!(streams[0].gaps, [30_000, 30_000]);
        let t = LoadTokens::of(streams.iter()).unwrap();
        // The protocol most streams were read as.
        assert_eq!(t.protocol, Protocol::OpenaiChat);
        assert_eq!(t.terminal, "[DONE]");
        assert_eq!((t.streams, t.deltas, t.ended_with_terminal), (3, 6, 2));
        let ttft = t.ttft.unwrap();
        assert_eq!((ttft.count, ttft.p50, ttft.max), (3, ms(700), ms(900)));
        let itl = t.itl.unwrap();
        assert_eq!((itl.count, itl.p50, itl.max), (3, ms(30), ms(30)));
        assert!(LoadTokens::of(std::iter::empty()).is_none());
    }

    #[test]
    fn per_stream_latency_is_against_the_fastest_stream_for_each_event() {
        let run = run_of(vec![
            StreamRecord {
                opened: ms(0),
                result: connected(&[(100_000, 1), (200_000, 2)]),
            },
            StreamRecord {
                opened: ms(500),
                result: connected(&[(130_000, 1), (200_000, 2)]),
            },
            StreamRecord {
                opened: ms(600),
                result: Err((Failure::Refused, None)),
            },
            StreamRecord {
                opened: ms(700),
                result: Err((Failure::Status, Some(503))),
            },
        ]);
        let s = run.summarize(&LatencyBase::Baseline(Fanout::PerStream));
        assert_eq!((s.streams, s.connected, s.failed_total()), (4, 2, 2));
        assert_eq!(s.failed["refused"], 1);
        assert_eq!(s.statuses[&503], 1);
        let l = s.latency.unwrap();
        assert_eq!((l.count, l.max, l.p50), (4, ms(30), ms(0)));
        assert_eq!(s.time_to_first_event.unwrap().max, ms(130));
        assert_eq!(s.ramp, ms(700));
    }

    #[test]
    fn shared_latency_matches_ids_on_the_run_clock() {
        let (a, b) = (id_key("a"), id_key("b"));
        // Stream 2 opened 1 s later; its "a" came 50 ms after stream 1's on the run's clock.
        let run = run_of(vec![
            StreamRecord {
                opened: ms(0),
                result: connected(&[(1_000_000, a), (2_000_000, b)]),
            },
            StreamRecord {
                opened: ms(1000),
                result: connected(&[(50_000, a), (1_000_000, b)]),
            },
        ]);
        let s = run.summarize(&LatencyBase::Baseline(Fanout::Shared));
        let l = s.latency.unwrap();
        assert_eq!((l.count, l.max), (4, ms(50)));
    }

    #[test]
    fn send_instants_give_latency_on_one_clock_and_unknown_events_are_counted() {
        let run = run_of(vec![StreamRecord {
            opened: ms(10),
            result: connected(&[(100_000, 1), (200_000, 2)]),
        }]);
        let start = run.start;
        let sends = move |i: usize, seq: u32| (i == 0 && seq == 1).then(|| start + ms(10) + ms(90));
        let s = run.summarize(&LatencyBase::Sends(&sends));
        let l = s.latency.unwrap();
        assert_eq!((l.count, l.max, s.unmatched), (1, ms(10), 1));
    }

    #[test]
    fn the_fd_limit_is_raised_to_what_the_streams_need_within_the_hard_limit() {
        assert_eq!(fds_per_stream(true, false, 0), 2);
        assert_eq!(fds_per_stream(false, true, 2), 7);
        let f = raise_fd_limit(100, 2);
        assert_eq!(f.needed, 200 + FD_SLACK);
        assert!(f.now >= f.before);
        assert!(f.enough() || f.now == f.hard);
    }

    #[test]
    fn under_a_shared_schedule_only_events_with_an_id_of_their_own_are_matched() {
        let req = ProbeRequest::new("http://127.0.0.1:1/");
        let counters = Counters::default();
        let mut body = StreamBody::new(
            &req,
            Instant::now(),
            Fanout::Shared,
            &http::HeaderMap::new(),
            &counters,
        );
        // The second event inherits `x` as its last-event id: it has none of its own.
        body.absorb(b"id: x\ndata: a\n\ndata: b\n\nid: y\ndata: c\n\n", &req);
        let rec = body.finish(Duration::ZERO, StreamEnd::Complete);
        let c = rec.result.unwrap();
        assert_eq!((c.events, c.without_id), (3, 1));
        let keys: Vec<u32> = c.arrivals.iter().map(|a| a.1).collect();
        assert_eq!(keys, vec![id_key("x"), id_key("y")]);
        assert_eq!(counters.connected.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn an_ipv6_url_connects_to_the_bare_address_and_keeps_brackets_in_the_host_header() {
        let t = Http1Target::of("http://[::1]:8080/a?b=1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
        assert_eq!(t.authority, "[::1]:8080");
        assert_eq!(t.path, "/a?b=1");
        assert!(Http1Target::of("https://127.0.0.1/").is_none());
        assert!(Http1Target::of("http://u:p@127.0.0.1/").is_none());
    }

    #[test]
    fn ids_hash_apart() {
        assert_ne!(id_key("1"), id_key("2"));
        assert_eq!(id_key(""), 0x811c_9dc5);
    }
}
