//! The measuring client.
//!
//! It sends exactly the request asked for (by default what a browser's `EventSource` sends), never
//! decompresses behind your back, stamps the headers and every read off one monotonic clock, decodes
//! `Content-Encoding` itself ([`crate::decode`]) so each event gets the instant of the read that completed
//! it, and stops at its limits (duration, bytes, line length) with a recorded reason instead of failing.
//!
//! A "read" is one body frame as the HTTP stack hands it over; it is not an HTTP/1.1 chunk.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::decode::{Coding, Decoder, Part};
use crate::secrets::{redact_headers as redact, redact_url};
use crate::sse::{Event, FramingFacts, Item, Parser};

/// What the probe sends and how long it listens.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    pub url: String,
    pub method: String,
    /// Extra or overriding request headers (`Name`, `value`); an empty value removes a default header.
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Send `Accept-Encoding: gzip, deflate, br, zstd` as browsers do (the default).
    pub compression: bool,
    pub limits: Limits,
    /// Additional header names to redact.
    pub secret_headers: Vec<String>,
    /// Header names checked through a chain beside the default ones
    /// ([`crate::verdict::integrity`]; the probe itself does not use them).
    pub watch_headers: Vec<String>,
    /// How its events are read (`--protocol`; `auto` recognises it from the response).
    pub protocol: crate::protocol::Protocol,
    /// With `protocol: mcp`, the tool to call (the probe itself sends the request it is given; `mcp`
    /// opens the session and makes the call's request).
    pub mcp: Option<crate::protocol::McpTool>,
    /// A token stream's delta that arrived this much later than the origin sent it counts as held
    /// (`--token-hold-ms`, `expect.token_hold_ms`; [`TOKEN_HOLD`] by default).
    pub token_hold: Duration,
    /// Keep the decoded body piece by piece with each read's arrival ([`Capture`], bounded), for
    /// `probe --record`.
    pub capture: bool,
}

/// How late a token may arrive before it counts as held: about where people see a stall.
pub const TOKEN_HOLD: Duration = Duration::from_millis(100);

/// Bounds on one recording. Reaching one ends the recording with a finding, never an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From sending the request to giving up on the stream.
    pub duration: Duration,
    /// Connect deadline.
    pub connect: Duration,
    /// Body bytes, on the wire and decoded.
    pub max_bytes: u64,
    /// Longest SSE line kept.
    pub max_line: usize,
    /// Most reads kept individually (later reads are still counted).
    pub max_reads: usize,
    /// Stop after this many events (real endpoints may never end).
    pub max_events: Option<usize>,
    /// Most bytes of event records kept (see [`EVENTS_KEPT_BYTES`]); later events are still counted.
    pub kept_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            duration: Duration::from_secs(30),
            connect: Duration::from_secs(5),
            max_bytes: 16 << 20,
            max_line: 1 << 20,
            max_reads: 20_000,
            max_events: None,
            kept_bytes: EVENTS_KEPT_BYTES,
        }
    }
}

impl ProbeRequest {
    pub fn new(url: impl Into<String>) -> ProbeRequest {
        ProbeRequest {
            url: url.into(),
            method: "GET".into(),
            headers: Vec::new(),
            body: None,
            compression: true,
            limits: Limits::default(),
            secret_headers: Vec::new(),
            watch_headers: Vec::new(),
            protocol: Default::default(),
            mcp: None,
            token_hold: TOKEN_HOLD,
            capture: false,
        }
    }

    /// The headers that will be sent, defaults first, overrides applied.
    pub fn effective_headers(&self) -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> = vec![
            ("Accept".into(), "text/event-stream".into()),
            ("Cache-Control".into(), "no-cache".into()),
        ];
        if self.compression {
            h.push(("Accept-Encoding".into(), "gzip, deflate, br, zstd".into()));
        }
        // A URL's userinfo goes as Basic credentials, as a client derives them, once: a request that sets
        // `Authorization` itself sends only that one.
        if let Some(basic) = crate::secrets::basic_from_url(&self.url) {
            h.push(("Authorization".into(), basic));
        }
        for (k, v) in &self.headers {
            h.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
            if !v.is_empty() {
                h.push((k.clone(), v.clone()));
            }
        }
        h
    }
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BodyFraming {
    Chunked,
    ContentLength,
    /// HTTP/1.x with neither: the body ends when the connection closes.
    CloseDelimited,
    /// HTTP/2 and later frame bodies themselves.
    Frames,
}

impl BodyFraming {
    pub fn as_str(self) -> &'static str {
        match self {
            BodyFraming::Chunked => "chunked",
            BodyFraming::ContentLength => "content-length",
            BodyFraming::CloseDelimited => "close-delimited",
            BodyFraming::Frames => "frames",
        }
    }
}

/// Which limit ended a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitKind {
    Duration,
    Bytes,
    Events,
    /// The decompression window budget shared by the streams decoded at once
    /// ([`crate::decode::WINDOW_BUDGET`]) was spent.
    DecodeBudget,
}

/// How the body ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum End {
    /// The final chunk, the complete Content-Length, or (close-delimited) the connection closed.
    Complete,
    /// EOF inside a chunked or length-delimited body, a reset, or another transport error.
    Aborted { reason: String },
    /// The probe stopped listening.
    Limit { limit: LimitKind },
    /// The body could not be decoded (corrupt or unsupported content coding).
    Undecodable { reason: String },
}

/// One read off the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Read {
    /// Offset from the request's start.
    #[serde(serialize_with = "ser_ms")]
    pub at: Duration,
    /// Bytes as received (still content-coded).
    pub wire: usize,
    /// Bytes after content decoding.
    pub decoded: usize,
}

/// One dispatched event with its arrival.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arrival {
    #[serde(serialize_with = "ser_ms")]
    pub at: Duration,
    /// Index of the read that completed it.
    pub read: usize,
    pub event: Event,
}

pub(crate) use crate::text::ser_ms;

/// Most decoded body bytes a probe asked to `capture` keeps (`probe --record`).
pub const CAPTURE_BYTES: usize = 8 << 20;
/// Most pieces (reads) it keeps.
pub const CAPTURE_PIECES: usize = 100_000;

/// What a probe asked to `capture` keeps of its decoded body (for `probe --record`): each read's bytes
/// with its arrival.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Capture {
    pub pieces: Vec<(Duration, String)>,
    /// Bytes kept so far.
    pub bytes: usize,
    /// Bytes of a character split between reads, kept for the next piece.
    pub pending: Vec<u8>,
    /// Whether body beyond the bounds was dropped.
    pub truncated: bool,
}

impl Capture {
    /// Add the decoded bytes of the read at `at` (a character split between reads goes with the read
    /// that completes it; bytes that are not UTF-8 are replaced).
    pub fn add(&mut self, at: Duration, bytes: &[u8]) {
        if self.truncated || bytes.is_empty() {
            return;
        }
        if self.bytes + bytes.len() > CAPTURE_BYTES || self.pieces.len() >= CAPTURE_PIECES {
            self.truncated = true;
            return;
        }
        let mut all = std::mem::take(&mut self.pending);
        all.extend_from_slice(bytes);
        let text = match std::str::from_utf8(&all) {
            Ok(s) => s.to_string(),
            Err(e) if e.error_len().is_none() => {
                self.pending = all[e.valid_up_to()..].to_vec();
                String::from_utf8_lossy(&all[..e.valid_up_to()]).into_owned()
            }
            Err(_) => String::from_utf8_lossy(&all).into_owned(),
        };
        self.bytes += text.len();
        match self.pieces.last_mut() {
            // Two decoded pieces of one read (a decoder's output in parts) are one piece.
            Some((t, s)) if *t == at => s.push_str(&text),
            _ if text.is_empty() => {}
            _ => self.pieces.push((at, text)),
        }
    }
}

/// Everything one probe measured.
#[derive(Debug, Clone, Serialize)]
pub struct Recording {
    /// The instant the request was sent; every offset below is relative to it.
    #[serde(skip)]
    pub start: Instant,
    pub method: String,
    /// The URL, with any password and secret-looking query values redacted.
    pub url: String,
    /// The address the response came from.
    pub remote_addr: Option<std::net::SocketAddr>,
    /// Request headers as sent (secrets redacted).
    pub request_headers: Vec<(String, String)>,
    pub status: u16,
    pub version: String,
    /// For `https://`: what TLS negotiated (absent for plain HTTP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFacts>,
    /// Response headers in arrival order, names lowercase (secrets redacted).
    pub headers: Vec<(String, String)>,
    #[serde(serialize_with = "ser_ms")]
    pub headers_at: Duration,
    pub reads: Vec<Read>,
    /// Reads beyond `max_reads` that were counted but not kept.
    pub reads_dropped: u64,
    pub events: Vec<Arrival>,
    /// Events beyond [`EVENTS_KEPT`] (or [`EVENTS_KEPT_BYTES`]) that were dispatched but not kept.
    pub events_dropped: u64,
    /// Bytes of the kept event records, held against [`EVENTS_KEPT_BYTES`].
    #[serde(skip)]
    pub events_bytes: usize,
    /// Arrival of each comment line (heartbeats).
    pub comments: Vec<Duration>,
    pub retry: Option<u64>,
    pub framing: BodyFraming,
    pub coding: String,
    pub wire_bytes: u64,
    pub decoded_bytes: u64,
    pub end: End,
    #[serde(serialize_with = "ser_ms")]
    pub ended_at: Duration,
    pub facts: FramingFacts,
    /// The decoded body, at most [`BODY_KEPT`] bytes of it (reports never print it).
    #[serde(skip)]
    pub body: Vec<u8>,
    /// Whether `body` stops short of the whole decoded body.
    pub body_truncated: bool,
    /// Events that arrived in pieces (not counted in JSON: see [`Pieces`]).
    #[serde(skip)]
    pub pieces: Pieces,
    /// A gzip body of several members: what came after the first, which browsers do not decode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub later_members: Option<LaterMembers>,
    /// How starved this machine was while the stream was measured (see [`crate::pressure`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pressure: Option<crate::pressure::Pressure>,
    /// The protocol the request asked to read it as (`auto`: recognise it; the verdict says which).
    #[serde(skip)]
    pub protocol: crate::protocol::Protocol,
    /// When a token stream's delta counts as held (the request's `token_hold`).
    #[serde(skip)]
    pub token_hold: Duration,
    /// The decoded body piece by piece, when the request asked to `capture` it.
    #[serde(skip)]
    pub capture: Option<Capture>,
    /// The last event that was only counted (beyond the kept ones), data cut as a kept one's: whether a
    /// long token stream ended with its terminal event.
    #[serde(skip)]
    pub last_dropped: Option<Event>,
}

/// Events whose last piece came in a later read than a small first piece: an origin that writes one
/// event in several small writes, without `TCP_NODELAY`, has Nagle's algorithm hold each later write
/// until the client's delayed ACK (about 40 ms on Linux).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pieces {
    /// Events finished by a read after a small read that left them unfinished.
    pub events: u64,
    /// Those whose last piece came [`PIECE_WAIT`] or more after the piece before.
    pub waited: u64,
    /// The longest such wait.
    pub longest: Duration,
}

/// A read smaller than this that leaves an event unfinished is a piece of a write, not a full segment.
const SMALL_PIECE: usize = 1024;
/// A wait between the pieces of one event this long is a delayed ACK's, not a scheduler's.
pub const PIECE_WAIT: Duration = Duration::from_millis(20);

/// Gzip members after the first: valid gzip that browsers ignore (they decode a response's first member
/// only), decoded here so that what was lost is counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LaterMembers {
    /// Members after the first.
    pub members: u32,
    /// Their decoded bytes.
    pub decoded_bytes: u64,
    /// Events they hold.
    pub events: u64,
}

/// What a TLS connection negotiated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsFacts {
    /// `TLSv1.3`, `TLSv1.2`, or `unknown`.
    pub version: String,
    /// The protocol ALPN settled on: `h2` when the response came over HTTP/2 (the client offers `h2` and
    /// `http/1.1`, and speaks HTTP/2 over TLS only when the server picked it), else `http/1.1` (which
    /// also covers a server that ignored ALPN).
    pub alpn: String,
}

/// How much of the decoded body a recording keeps.
pub const BODY_KEPT: usize = 64 << 10;

impl Recording {
    /// The recording of a request that failed before any response head (a hop that closed the
    /// connection, say): no response, ended by the error, measured rather than fatal.
    pub fn failed(req: &ProbeRequest, start: Instant, error: &ProbeError) -> Recording {
        let mut rec = Recording::no_response(req, &req.effective_headers(), start);
        rec.end = End::Aborted {
            reason: crate::error::error_chain(error),
        };
        rec
    }

    /// A recording of a request whose response headers never came within the duration limit (also the
    /// blank that a real response's recording starts from).
    fn no_response(req: &ProbeRequest, headers: &[(String, String)], start: Instant) -> Recording {
        let ended_at = start.elapsed();
        Recording {
            start,
            method: req.method.clone(),
            url: redact_url(&req.url),
            remote_addr: None,
            request_headers: redact(headers, &req.secret_headers),
            status: 0,
            version: String::new(),
            tls: None,
            headers: Vec::new(),
            headers_at: ended_at,
            reads: Vec::new(),
            reads_dropped: 0,
            events: Vec::new(),
            events_dropped: 0,
            events_bytes: 0,
            comments: Vec::new(),
            retry: None,
            framing: BodyFraming::CloseDelimited,
            coding: "identity".into(),
            wire_bytes: 0,
            decoded_bytes: 0,
            end: End::Limit {
                limit: LimitKind::Duration,
            },
            ended_at,
            facts: FramingFacts::default(),
            body: Vec::new(),
            body_truncated: false,
            later_members: None,
            pressure: None,
            protocol: req.protocol,
            token_hold: req.token_hold,
            capture: req.capture.then(Capture::default),
            last_dropped: None,
            pieces: Pieces::default(),
        }
    }

    /// Case-insensitive header lookup (first value).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Offset of the last byte received, if any.
    pub fn last_read_at(&self) -> Option<Duration> {
        self.reads.last().map(|r| r.at)
    }

    /// Keep at most `events` events, the reads they arrived in (and at least `reads` reads), and as many
    /// comment instants as events; what goes is counted in `events_dropped` and `reads_dropped` (the
    /// parser's facts keep the exact totals). For a recording that is already judged and only needs
    /// to be shown: `check` keeps every chain's recording until its report is written.
    pub fn compact(&mut self, events: usize, reads: usize) {
        if self.events.len() > events {
            self.events_dropped += (self.events.len() - events) as u64;
            self.events.truncate(events);
        }
        let needed = self.events.last().map_or(0, |a| a.read + 1);
        let keep = reads.max(needed).min(self.reads.len());
        self.reads_dropped += (self.reads.len() - keep) as u64;
        self.reads.truncate(keep);
        self.comments.truncate(events);
        self.events.shrink_to_fit();
        self.reads.shrink_to_fit();
        self.comments.shrink_to_fit();
    }

    /// How long no byte had come when the recording ended (the idle limit, for a cut stream).
    pub fn silence_at_end(&self) -> Duration {
        self.ended_at
            .saturating_sub(self.last_read_at().unwrap_or(self.headers_at))
    }

    /// Offset of an instant taken from the same clock.
    pub fn offset(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.start)
    }
}

/// Failures that leave nothing to judge.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("failed to build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("failed to {stage} {url}{hint}")]
    Connect {
        /// `connect to` when no connection was made, `read the response head from` when the answer was
        /// not a usable HTTP response head.
        stage: &'static str,
        url: String,
        /// Extra explanation for known failure shapes (empty otherwise).
        hint: String,
        #[source]
        source: reqwest::Error,
    },
}

/// The `User-Agent` every request of ssegate's sends.
pub const USER_AGENT: &str = concat!("ssegate/", env!("CARGO_PKG_VERSION"));

fn build_client(connect: Duration) -> Result<reqwest::Client, ProbeError> {
    let mut builder = reqwest::Client::builder();
    // The system's roots, and the process's own authority (the certificates of its TLS hops, see
    // [`crate::tls`]) when it can be made; a hop that needs it fails on its own when it cannot.
    if let Ok(local) = crate::tls::local() {
        builder = builder.tls_certs_merge([
            reqwest::Certificate::from_der(&local.root_der).map_err(ProbeError::Client)?
        ]);
    }
    builder
        .no_proxy()
        .tls_info(true)
        .connect_timeout(connect)
        .tcp_nodelay(true)
        // A fresh connection per probe: nothing measured rides on a connection another probe opened.
        .pool_max_idle_per_host(0)
        // A redirect is a finding, not something to follow silently: the probe measures what answers.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .build()
        .map_err(ProbeError::Client)
}

/// The process's HTTP clients, one per connect deadline, built once and shared by every probe, check,
/// doctor run and load stream. Building a client loads and parses every system CA certificate
/// (milliseconds of CPU and over 100 KiB each); built per probe, dozens of concurrent scenarios starting
/// at once kept the runtime's workers busy long enough to delay other scenarios' headers by hundreds of
/// milliseconds on a loaded machine, and thousands of load streams took 6× the memory. Connections are
/// not pooled (`pool_max_idle_per_host(0)`), so sharing a client shares no connection: every
/// measurement still opens its own.
pub(crate) fn client_for(connect: Duration) -> Result<reqwest::Client, ProbeError> {
    static SHARED: std::sync::Mutex<Vec<(Duration, reqwest::Client)>> =
        std::sync::Mutex::new(Vec::new());
    let mut clients = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, c)) = clients.iter().find(|(d, _)| *d == connect) {
        return Ok(c.clone());
    }
    let c = build_client(connect)?;
    // A handful of distinct deadlines at most in one process (flags and case files set them).
    if clients.len() < 16 {
        clients.push((connect, c.clone()));
    }
    Ok(c)
}

/// Send the request and record the response until it ends or a limit is reached.
pub async fn probe(req: &ProbeRequest) -> Result<Recording, ProbeError> {
    let client = client_for(req.limits.connect)?;
    let headers = req.effective_headers();
    let request = build_request(&client, req, &headers)?;
    let watch = crate::pressure::Watch::start();
    let start = Instant::now();
    // A duration too large to add to the clock means "no limit": a year is plenty.
    let deadline = start
        .checked_add(req.limits.duration)
        .unwrap_or_else(|| start + Duration::from_secs(365 * 24 * 3600));
    let mut resp = match tokio::time::timeout_at(deadline.into(), client.execute(request)).await {
        Err(_) => {
            // Nothing answered within the limit: a measurement (everything held), not a failure.
            let mut rec = Recording::no_response(req, &headers, start);
            rec.pressure = Some(watch.finish());
            return Ok(rec);
        }
        Ok(Err(e)) => {
            return Err(ProbeError::Connect {
                stage: if e.is_connect() || e.is_timeout() {
                    "connect to"
                } else {
                    "read the response head from"
                },
                url: redact_url(&req.url),
                hint: connect_hint(&e),
                // reqwest's message repeats the URL unredacted: drop it (ours is redacted above).
                source: e.without_url(),
            });
        }
        Ok(Ok(r)) => r,
    };
    let mut rec = Recording::no_response(req, &headers, start);
    let encoding = record_head(&mut rec, &resp, req);
    let lines = req
        .protocol
        .reads_lines(rec.header("content-type").unwrap_or(""));
    let mut body = Body {
        parser: if lines {
            Parser::ndjson(req.limits.max_line)
        } else {
            Parser::with_max_line(req.limits.max_line)
        },
        items: Vec::new(),
        later: None,
    };
    match Coding::parse(encoding.as_deref()) {
        Some(c) => {
            let mut decoder = Decoder::new(c, req.limits.max_bytes);
            rec.end = loop {
                let chunk = match tokio::time::timeout_at(deadline.into(), resp.chunk()).await {
                    Err(_) => {
                        break End::Limit {
                            limit: LimitKind::Duration,
                        };
                    }
                    Ok(Err(e)) => {
                        break End::Aborted {
                            reason: crate::error::error_chain(&e),
                        };
                    }
                    Ok(Ok(None)) => break End::Complete,
                    Ok(Ok(Some(c))) => c,
                };
                if let Some(end) = body.absorb(&mut rec, &mut decoder, &chunk, req) {
                    break end;
                }
            };
        }
        None => {
            rec.end = End::Undecodable {
                reason: format!(
                    "unsupported content coding `{}`",
                    encoding.as_deref().unwrap_or("")
                ),
            };
        }
    }
    rec.ended_at = start.elapsed();
    rec.pressure = Some(watch.finish());
    body.parser.finish(&mut body.items);
    let last = rec.reads.len().saturating_sub(1);
    let ended_at = rec.ended_at;
    take_items(
        &mut rec,
        &mut body.items,
        ended_at,
        last,
        req.limits.kept_bytes,
    );
    rec.facts = body.parser.facts().clone();
    Ok(rec)
}

/// The request with the browser-like headers and the body, or why it cannot be sent.
pub(crate) fn build_request(
    client: &reqwest::Client,
    req: &ProbeRequest,
    headers: &[(String, String)],
) -> Result<reqwest::Request, ProbeError> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| ProbeError::InvalidRequest(format!("bad method `{}`", req.method)))?;
    // The userinfo is in `headers` already (see `effective_headers`): reqwest would add it a second time.
    let url = crate::secrets::without_userinfo(&req.url);
    let mut builder = client.request(method, &url);
    for (k, v) in headers {
        builder = builder.header(k, v);
    }
    if let Some(b) = &req.body {
        builder = builder.body(b.clone());
    }
    builder
        .build()
        .map_err(|e| ProbeError::InvalidRequest(crate::error::error_chain(&e)))
}

/// Record the response head (status, version, redacted headers, framing, coding); returns the declared
/// content coding.
fn record_head(
    rec: &mut Recording,
    resp: &reqwest::Response,
    req: &ProbeRequest,
) -> Option<String> {
    let headers_at = rec.start.elapsed();
    let resp_headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let has = |n: &str| resp_headers.iter().any(|(k, _)| k == n);
    rec.framing = if matches!(
        resp.version(),
        reqwest::Version::HTTP_2 | reqwest::Version::HTTP_3
    ) {
        BodyFraming::Frames
    } else if has("transfer-encoding") {
        BodyFraming::Chunked
    } else if has("content-length") {
        BodyFraming::ContentLength
    } else {
        BodyFraming::CloseDelimited
    };
    let encoding = resp_headers
        .iter()
        .find(|(k, _)| k == "content-encoding")
        .map(|(_, v)| v.clone());
    rec.remote_addr = resp.remote_addr();
    rec.status = resp.status().as_u16();
    rec.version = format!("{:?}", resp.version());
    rec.tls = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .map(|info| {
            let version = match info.version() {
                Some(reqwest::tls::Version::TLS_1_3) => "TLSv1.3",
                Some(reqwest::tls::Version::TLS_1_2) => "TLSv1.2",
                Some(_) => "older than TLSv1.2",
                None => "unknown",
            };
            TlsFacts {
                version: version.to_string(),
                alpn: if resp.version() == reqwest::Version::HTTP_2 {
                    "h2"
                } else {
                    "http/1.1"
                }
                .to_string(),
            }
        });
    rec.headers = redact(&resp_headers, &req.secret_headers);
    rec.headers_at = headers_at;
    rec.ended_at = headers_at;
    rec.coding = encoding.clone().unwrap_or_else(|| "identity".into());
    rec.end = End::Complete;
    encoding
}

/// The SSE parser over the decoded body, and the items it produced that are not recorded yet.
struct Body {
    parser: Parser,
    items: Vec<Item>,
    /// The parser of gzip members after the first (what a browser never decodes), once one came.
    later: Option<(Parser, Vec<Item>)>,
}

impl Body {
    /// Decode, keep and parse one chunk off the wire; the end of the recording when a limit is reached
    /// or the body cannot be decoded.
    fn absorb(
        &mut self,
        rec: &mut Recording,
        decoder: &mut Decoder,
        chunk: &[u8],
        req: &ProbeRequest,
    ) -> Option<End> {
        let at = rec.start.elapsed();
        rec.wire_bytes += chunk.len() as u64;
        let read_index = rec.reads.len();
        let decoded_before = rec.decoded_bytes;
        // The last read left an event unfinished: when this one finishes it, how long its last piece
        // waited.
        let waited = rec
            .reads
            .last()
            .filter(|r| self.parser.mid_event() && r.wire < SMALL_PIECE)
            .map(|r| at.saturating_sub(r.at));
        let events_before = rec.events.len() as u64 + rec.events_dropped;
        let (parser, items, later) = (&mut self.parser, &mut self.items, &mut self.later);
        let pushed = decoder.push(chunk, &mut |piece, part| {
            rec.decoded_bytes += piece.len() as u64;
            if part == Part::LaterMember {
                // Valid gzip a browser never decodes: counted, so what was lost can be said.
                let l = later.get_or_insert_with(|| (Parser::with_max_line(64 << 10), Vec::new()));
                let m = rec.later_members.get_or_insert_with(LaterMembers::default);
                m.decoded_bytes += piece.len() as u64;
                l.0.feed(piece, &mut l.1);
                m.events +=
                    l.1.drain(..)
                        .filter(|i| matches!(i, Item::Event(_)))
                        .count() as u64;
                return;
            }
            if let Some(c) = rec.capture.as_mut() {
                c.add(at, piece);
            }
            let room = BODY_KEPT.saturating_sub(rec.body.len());
            rec.body.extend_from_slice(&piece[..piece.len().min(room)]);
            rec.body_truncated |= piece.len() > room;
            parser.feed(piece, items);
            take_items(rec, items, at, read_index, req.limits.kept_bytes);
        });
        if let Some(m) = rec.later_members.as_mut() {
            m.members = decoder.gzip_members().saturating_sub(1);
        }
        let decoded = (rec.decoded_bytes - decoded_before) as usize;
        if let Some(w) = waited
            && rec.events.len() as u64 + rec.events_dropped > events_before
        {
            rec.pieces.events += 1;
            if w >= PIECE_WAIT {
                rec.pieces.waited += 1;
                rec.pieces.longest = rec.pieces.longest.max(w);
            }
        }
        if rec.reads.len() < req.limits.max_reads {
            rec.reads.push(Read {
                at,
                wire: chunk.len(),
                decoded,
            });
        } else {
            rec.reads_dropped += 1;
        }
        match pushed {
            Ok(()) => {}
            Err(crate::decode::DecodeError::TooLarge { .. }) => {
                return Some(End::Limit {
                    limit: LimitKind::Bytes,
                });
            }
            Err(crate::decode::DecodeError::Budget { .. }) => {
                return Some(End::Limit {
                    limit: LimitKind::DecodeBudget,
                });
            }
            Err(e) => {
                return Some(End::Undecodable {
                    reason: crate::error::error_chain(&e),
                });
            }
        }
        let limit = if req.limits.max_events.is_some_and(|m| rec.events.len() >= m) {
            LimitKind::Events
        } else if rec.wire_bytes > req.limits.max_bytes || decoder.over_limit() {
            LimitKind::Bytes
        } else {
            return None;
        };
        Some(End::Limit { limit })
    }
}

/// Most events kept individually (the rest are counted in `events_dropped`, and in the parser's facts);
/// an id longer than [`ID_KEPT`] bytes is cut (every event repeats it). With [`DATA_KEPT`] and
/// [`EVENTS_KEPT_BYTES`] this bounds a recording's events to a few MiB whatever the stream.
pub const EVENTS_KEPT: usize = 10_000;
/// Most bytes of event records kept (each record and what it holds), by default: events with long ids or
/// types stop being kept before [`EVENTS_KEPT`] is reached. `check` holds a recording per chain at once
/// and keeps less of each ([`Limits::kept_bytes`]).
pub const EVENTS_KEPT_BYTES: usize = 5 << 18;
/// Longest event id kept per event.
pub const ID_KEPT: usize = 256;
/// Bytes of each event's data kept (reports show at most this much); the rest is counted in
/// `Event::truncated`, so the dispatched length stays exact.
/// 1 KiB: a token stream's chunk whole (OpenAI's carry ids, fingerprints and padding), so that its kind
/// is read from its JSON; the total stays bounded by the kept bytes.
pub const DATA_KEPT: usize = 1024;

/// `s` cut to at most `max` bytes at a character boundary; returns the bytes cut off.
fn cut_to(s: &mut String, max: usize) -> u64 {
    let keep = crate::text::truncate_at_char_boundary(s, max).len();
    let dropped = (s.len() - keep) as u64;
    s.truncate(keep);
    dropped
}

fn take_items(
    rec: &mut Recording,
    items: &mut Vec<Item>,
    at: Duration,
    read: usize,
    kept_bytes: usize,
) {
    for item in items.drain(..) {
        match item {
            Item::Event(mut event) => {
                // Kept or not, an event keeps at most DATA_KEPT of its data and ID_KEPT of its id.
                event.truncated += cut_to(&mut event.data, DATA_KEPT);
                cut_to(&mut event.id, ID_KEPT);
                if rec.events.len() >= EVENTS_KEPT || rec.events_bytes >= kept_bytes {
                    rec.events_dropped += 1;
                    rec.last_dropped = Some(event);
                    continue;
                }
                // Parser buffers grow by doubling: keep only what is used.
                event.id.shrink_to_fit();
                event.data.shrink_to_fit();
                let mut heap = event.id.capacity() + event.data.capacity();
                if let std::borrow::Cow::Owned(t) = &mut event.event_type {
                    t.shrink_to_fit();
                    heap += t.capacity();
                }
                rec.events_bytes += std::mem::size_of::<Arrival>() + heap;
                rec.events.push(Arrival { at, read, event })
            }
            Item::Comment(_) => {
                if rec.comments.len() < 100_000 {
                    rec.comments.push(at)
                }
            }
            Item::Retry(ms) => rec.retry = Some(ms),
        }
    }
}

/// Known failure shapes get an explanation.
fn connect_hint(e: &reqwest::Error) -> String {
    let chain = crate::error::error_chain(e).to_ascii_lowercase();
    if chain.contains("protocol_error") || chain.contains("malformed") {
        " (an HTTP/2 response carrying connection-specific headers such as Connection, Keep-Alive or \
         Transfer-Encoding is rejected as malformed: see the finding hop-by-hop-header-on-h2)"
            .into()
    } else if chain.contains("head is too large") {
        " (the response's header block is larger than the HTTP client accepts, about 400 KiB; a browser \
         refuses it too)"
            .into()
    } else if chain.contains("invalid http version") || chain.contains("invalid status") {
        " (the server's first line is not an HTTP status line)".into()
    } else {
        String::new()
    }
}

/// Recordings built by hand, for unit tests of the modules that judge them.
#[cfg(test)]
pub(crate) mod testing {
    use std::time::{Duration, Instant};

    use super::{Arrival, BodyFraming, End, Read, Recording};
    use crate::sse::{Event, FramingFacts};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// An event stream whose events arrive at `arrivals` (ms) and that ended at 2.402 s, measured while
    /// some task waited for a CPU `cpu_waiting` of the time (ssegate itself barely late).
    pub fn pressured(arrivals: &[u64], cpu_waiting: f64) -> Recording {
        let mut r = recording(
            &[("content-type", "text/event-stream")],
            arrivals,
            2402,
            End::Complete,
        );
        r.pressure = Some(crate::pressure::Pressure {
            timer_late_p99: ms(1),
            timer_late_max: ms(3),
            stalls: 0,
            cpu_waiting: Some(cpu_waiting),
        });
        r
    }

    /// An event stream of `events` (type, data, arrival, read index), ended cleanly just after the last.
    pub fn with_events(events: Vec<(String, String, Duration, usize)>) -> Recording {
        let arrivals: Vec<u64> = events.iter().map(|e| e.2.as_millis() as u64).collect();
        let end = arrivals.last().copied().unwrap_or(0) + 10;
        let mut r = recording(
            &[("content-type", "text/event-stream")],
            &arrivals,
            end,
            End::Complete,
        );
        for (a, (kind, data, _, read)) in r.events.iter_mut().zip(events) {
            a.event.event_type = kind.into();
            a.event.data = data;
            a.read = read;
        }
        r
    }

    /// A recording whose events arrive at `arrivals` (ms), one read each unless they share an instant.
    pub fn recording(
        headers: &[(&str, &str)],
        arrivals: &[u64],
        end_ms: u64,
        end: End,
    ) -> Recording {
        let mut reads: Vec<Read> = Vec::new();
        let mut events = Vec::new();
        for (i, &a) in arrivals.iter().enumerate() {
            if reads.last().is_none_or(|r| r.at != ms(a)) {
                reads.push(Read {
                    at: ms(a),
                    wire: 30,
                    decoded: 30,
                });
            } else if let Some(r) = reads.last_mut() {
                r.wire += 30;
                r.decoded += 30;
            }
            events.push(Arrival {
                at: ms(a),
                read: reads.len() - 1,
                event: Event {
                    event_type: "message".into(),
                    data: format!("{}", i + 1),
                    id: format!("{}", i + 1),
                    truncated: 0,
                },
            });
        }
        Recording {
            start: Instant::now(),
            method: "GET".into(),
            url: "http://127.0.0.1:1/".into(),
            remote_addr: None,
            request_headers: vec![],
            status: 200,
            version: "HTTP/1.1".into(),
            tls: None,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            headers_at: ms(1),
            reads,
            reads_dropped: 0,
            events,
            events_dropped: 0,
            events_bytes: 0,
            comments: vec![],
            retry: None,
            framing: BodyFraming::Chunked,
            coding: "identity".into(),
            wire_bytes: 30 * arrivals.len() as u64,
            decoded_bytes: 30 * arrivals.len() as u64,
            end,
            ended_at: ms(end_ms),
            facts: FramingFacts {
                events: arrivals.len() as u64,
                ..Default::default()
            },
            body: Vec::new(),
            body_truncated: false,
            later_members: None,
            pressure: None,
            protocol: Default::default(),
            token_hold: super::TOKEN_HOLD,
            capture: None,
            last_dropped: None,
            pieces: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urls_userinfo_is_one_authorization_header_and_never_two() {
        let r = ProbeRequest::new("http://alice:pw-one-two@127.0.0.1:1/s");
        let auth: Vec<_> = r
            .effective_headers()
            .into_iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .collect();
        assert_eq!(auth.len(), 1);
        assert!(auth[0].1.starts_with("Basic "));
        let mut given = r.clone();
        given
            .headers
            .push(("authorization".into(), "Bearer from-the-flag".into()));
        let client = reqwest::Client::new();
        let built = build_request(&client, &given, &given.effective_headers()).unwrap();
        let sent: Vec<_> = built.headers().get_all("authorization").iter().collect();
        assert_eq!(sent, ["Bearer from-the-flag"]);
        assert_eq!(built.url().as_str(), "http://127.0.0.1:1/s");
        let built = build_request(&client, &r, &r.effective_headers()).unwrap();
        assert_eq!(built.headers().get_all("authorization").iter().count(), 1);
    }

    #[test]
    fn default_request_is_what_eventsource_sends() {
        let r = ProbeRequest::new("http://127.0.0.1:1/");
        let h = r.effective_headers();
        assert_eq!(
            h,
            vec![
                ("Accept".to_string(), "text/event-stream".to_string()),
                ("Cache-Control".into(), "no-cache".into()),
                ("Accept-Encoding".into(), "gzip, deflate, br, zstd".into())
            ]
        );
    }

    #[test]
    fn overrides_replace_and_empty_values_remove() {
        let mut r = ProbeRequest::new("http://127.0.0.1:1/");
        r.compression = false;
        r.headers = vec![
            ("accept".into(), "*/*".into()),
            ("Cache-Control".into(), String::new()),
            ("Authorization".into(), "Bearer hunter2".into()),
        ];
        let h = r.effective_headers();
        assert_eq!(h.len(), 2);
        assert!(h.contains(&("accept".into(), "*/*".into())));
        let red = redact(&h, &[]);
        assert!(red.contains(&("Authorization".into(), "<redacted>".into())));
        assert!(!format!("{red:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn records_reads_events_and_the_decoded_body() {
        let mut p = crate::origin::Profile::builtin("plain").unwrap();
        p.events.count = 3;
        p.events.gap_ms = 20;
        let srv = crate::origin::FixtureServer::start(p.clone())
            .await
            .unwrap();
        let rec = probe(&ProbeRequest::new(srv.url())).await.unwrap();
        let expect: Vec<u8> = (1..=3).flat_map(|s| p.event_bytes(s)).collect();
        assert_eq!(rec.body, expect);
        assert!(!rec.body_truncated);
        assert_eq!(rec.end, End::Complete);
        assert_eq!(rec.framing, BodyFraming::Chunked);
        let ids: Vec<&str> = rec.events.iter().map(|e| e.event.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        assert!(rec.events.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(rec.headers_at <= rec.reads[0].at);
        assert_eq!(rec.wire_bytes, expect.len() as u64);
        let sent = &srv.requests()[0];
        assert!(
            sent.headers
                .iter()
                .any(|(k, v)| k == "accept" && v == "text/event-stream")
        );
    }

    /// Serve one response: `head` then `body`, on a fresh loopback port.
    async fn serve_once(head: &'static str, body: Vec<u8>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf).await;
            let _ = c.write_all(head.as_bytes()).await;
            let _ = c.write_all(&body).await;
        });
        url
    }

    #[tokio::test]
    async fn a_compressed_firehose_keeps_a_bounded_compact_record() {
        use std::io::Write;
        // 2.3 MB of tiny events, gzipped to a few KB: one read decodes to ~250 000 events; one event of
        // 100 KB of data.
        let mut raw = b"data: x\n\n".repeat(250_000);
        raw.extend_from_slice(b"data: ");
        raw.extend(std::iter::repeat_n(b'y', 100_000));
        raw.extend_from_slice(b"\n\n");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&raw).unwrap();
        let url = serve_once(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n",
            gz.finish().unwrap(),
        )
        .await;
        let mut rec = probe(&ProbeRequest::new(url)).await.unwrap();
        assert_eq!(rec.facts.events, 250_001, "every event is counted");
        assert_eq!(rec.events.len(), EVENTS_KEPT);
        assert_eq!(rec.events_dropped, 250_001 - EVENTS_KEPT as u64);
        let kept: usize = rec
            .events
            .iter()
            .map(|a| {
                std::mem::size_of_val(a)
                    + a.event.data.capacity()
                    + a.event.id.capacity()
                    + a.event.event_type.len()
            })
            .sum();
        assert!(kept < 2 << 20, "{kept} bytes of event records");
        assert!(rec.body.len() <= BODY_KEPT);
        let reads = rec.reads.len() as u64;
        rec.compact(100, 1);
        assert_eq!(rec.events.len(), 100);
        assert_eq!(rec.events_dropped, 250_001 - 100);
        // The reads the kept events arrived in stay, so every kept event still points at its read.
        assert!(rec.events.iter().all(|a| a.read < rec.reads.len()));
        assert_eq!(rec.reads.len() as u64 + rec.reads_dropped, reads);
    }

    #[tokio::test]
    async fn a_body_of_gzip_members_is_read_as_browsers_read_it() {
        use std::io::Write;
        // One gzip member per event, as Django's GZipMiddleware writes an async stream.
        let body: Vec<u8> = (1..=4)
            .flat_map(|i| {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(format!("id: {i}\ndata: {i}\n\n").as_bytes())
                    .unwrap();
                e.finish().unwrap()
            })
            .collect();
        let url = serve_once(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n",
            body,
        )
        .await;
        let rec = probe(&ProbeRequest::new(url)).await.unwrap();
        // The first member is what a browser dispatches; the rest is counted, not corrupt, and the
        // stream is read to its real end.
        assert_eq!(rec.events.len(), 1);
        assert_eq!(rec.end, End::Complete);
        let later = rec.later_members.clone().expect("later members counted");
        assert_eq!((later.members, later.events), (3, 3));
        let v = crate::verdict::judge(&rec, crate::verdict::Reference::None);
        assert!(
            v.has(crate::verdict::FindingId::GzipMembersDropped),
            "{v:?}"
        );
        assert!(!v.has(crate::verdict::FindingId::CorruptContentEncoding));
        let causes = crate::doctor::diagnose(&rec, &v, None, None, false);
        assert_eq!(causes[0].id, crate::doctor::CauseId::GzipMembers);
    }

    /// A server that writes each of `events` in the given pieces, `wait` apart, with TCP_NODELAY (so
    /// the pieces are separate segments, as Nagle's delayed writes are).
    async fn serve_in_pieces(
        pieces: &'static [&'static str],
        events: usize,
        wait: Duration,
    ) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            c.set_nodelay(true).unwrap();
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf).await;
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
            let _ = c.write_all(head.as_bytes()).await;
            for _ in 0..events {
                for p in pieces {
                    let _ = c.write_all(p.as_bytes()).await;
                    tokio::time::sleep(wait).await;
                }
            }
        });
        url
    }

    #[tokio::test]
    async fn an_event_written_in_waiting_pieces_is_found_and_one_write_is_not() {
        // werkzeug's shape: the data line, then the blank line, the second held by a delayed ACK.
        let url = serve_in_pieces(&["data: x\n", "\n"], 4, Duration::from_millis(60)).await;
        let rec = probe(&ProbeRequest::new(url)).await.unwrap();
        assert_eq!(rec.events.len(), 4);
        assert_eq!(rec.pieces.waited, 4, "{:?}", rec.pieces);
        assert!(rec.pieces.longest >= PIECE_WAIT);
        let v = crate::verdict::judge(&rec, crate::verdict::Reference::None);
        assert!(v.has(crate::verdict::FindingId::EventWrittenInPieces));
        // One write per event, the same pace: nothing waits within an event.
        let url = serve_in_pieces(&["data: x\n\n"], 4, Duration::from_millis(60)).await;
        let rec = probe(&ProbeRequest::new(url)).await.unwrap();
        assert_eq!(rec.events.len(), 4);
        assert_eq!(rec.pieces, Pieces::default());
    }

    #[tokio::test]
    async fn long_data_is_kept_as_its_head_with_the_dispatched_length() {
        let mut body = b"data: ".to_vec();
        body.extend(std::iter::repeat_n(b'y', 100_000));
        body.extend_from_slice(b"\n\n");
        let url = serve_once(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n",
            body,
        )
        .await;
        let rec = probe(&ProbeRequest::new(url)).await.unwrap();
        let e = &rec.events[0].event;
        assert_eq!(e.data.len(), DATA_KEPT);
        assert_eq!(e.data_len(), 100_000);
    }

    #[tokio::test]
    async fn an_event_limit_ends_the_recording() {
        let srv = crate::origin::FixtureServer::start(
            crate::origin::Profile::builtin("heartbeat").unwrap(),
        )
        .await
        .unwrap();
        let mut req = ProbeRequest::new(srv.url());
        req.limits.max_events = Some(1);
        let rec = probe(&req).await.unwrap();
        assert_eq!(rec.events.len(), 1);
        assert_eq!(
            rec.end,
            End::Limit {
                limit: LimitKind::Events
            }
        );
    }

    #[test]
    fn urls_lose_passwords_and_secret_query_values() {
        assert_eq!(
            redact_url("http://alice:hunter2@127.0.0.1:8/s?x=1&token=abc&api_key=k"),
            "http://alice:redacted@127.0.0.1:8/s?x=1&token=redacted&api_key=redacted"
        );
        assert_eq!(
            redact_url("http://127.0.0.1/events"),
            "http://127.0.0.1/events"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn custom_secret_headers_are_redacted() {
        let h = vec![("X-Api-Key".to_string(), "k".to_string())];
        assert_eq!(redact(&h, &["x-api-key".into()])[0].1, "<redacted>");
        assert_eq!(redact(&h, &[])[0].1, "k");
    }

    #[test]
    fn a_capture_keeps_split_characters_whole_and_stops_at_its_bound() {
        let mut c = Capture::default();
        let e = "é".as_bytes();
        c.add(Duration::from_millis(1), &[b'a', e[0]]);
        c.add(Duration::from_millis(2), &[e[1], b'b']);
        assert_eq!(
            c.pieces,
            [
                (Duration::from_millis(1), "a".to_string()),
                (Duration::from_millis(2), "éb".to_string())
            ]
        );
        c.add(Duration::from_millis(3), &vec![b'x'; CAPTURE_BYTES]);
        assert!(c.truncated);
        assert_eq!(c.pieces.len(), 2);
    }
}
