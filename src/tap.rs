//! The tap: a transparent TCP relay right in front of an origin that stamps, on the probe's clock, when
//! each response's head and each event leave the origin.
//!
//! `check` puts one in front of the user's server for every chain (origin side first), so every chain is
//! judged against the origin's real send instants, as the fixture's cases are: time to first token,
//! queueing in the origin and a hop that holds every event by the same amount all become exact.
//!
//! It copies bytes both ways unchanged (no re-framing, no header rewriting) and reads HTTP/1.x on the side:
//! request heads (method, target), response heads (status, framing, coding), chunked or length-delimited
//! or close-delimited bodies, the content coding (decoded with [`crate::decode`]) and the SSE framing
//! ([`crate::sse`]). It binds 127.0.0.1 only, and keeps a bounded log: [`MAX_EXCHANGES`] exchanges of at
//! most [`MAX_SENDS`] send instants each. Whatever it cannot follow (an upgrade, a chunked request body,
//! a head over 64 KiB) it still relays, and stops stamping that connection.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::decode::{Coding, Decoder};
use crate::probe::Recording;
use crate::sse::{Item, Parser};
use crate::verdict::SendInstants;

/// Exchanges kept per tap (later ones are counted, not kept).
pub const MAX_EXCHANGES: usize = 256;
/// Send instants kept per exchange.
pub const MAX_SENDS: usize = crate::probe::EVENTS_KEPT;
/// Decoded bytes followed per response: as many as a probe reads of a body at most
/// (`probe::Limits::max_bytes`); beyond them (a compression bomb, or a stream far longer than any probe
/// listens to) the tap stops stamping events for it, and keeps relaying. Decoded bytes are parsed in
/// pieces as they are made, so this bounds the tap's work, not its memory (that is the decoder's window
/// and one piece).
const MAX_DECODED: u64 = 16 << 20;
/// Longest request or response head followed.
const MAX_HEAD: usize = 64 << 10;
/// Longest SSE line the tap's parser follows.
const MAX_LINE: usize = 1 << 20;
/// Bytes of one head's header names and values kept for [`crate::verdict::integrity`]; a head with
/// more keeps none (`None`: not seen, so not judged).
const MAX_KEPT_HEADERS: usize = 8 << 10;

/// How an exchange's response ended, as the tap saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapEnd {
    /// Still open (or the tap stopped following it).
    Open,
    /// The body ended as its framing says.
    Complete,
    /// The origin closed or reset the connection inside a delimited body.
    Aborted,
    /// The client side went away first.
    ClientGone,
}

/// One request and its response as they passed the tap.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    /// Path and query as the request line carried them.
    pub target: String,
    /// When the request head passed the tap on its way to the origin.
    pub request_at: Instant,
    /// When the origin's response head was complete.
    pub headers_at: Option<Instant>,
    pub status: u16,
    /// When each event's last byte left the origin, in stream order.
    pub sends: Vec<Instant>,
    pub ended: Option<Instant>,
    pub end: TapEnd,
    /// The request's `Last-Event-ID` as it reached the origin.
    pub last_event_id: Option<String>,
    /// The request's [`crate::request::TAG_HEADER`]: which of ssegate's clients sent it.
    pub tag: Option<String>,
    /// When the client side (the hop in front) closed this exchange's connection, read as end of
    /// file on the request side, or as a failed write of the response.
    pub client_closed: Option<Instant>,
    /// The request's headers as they reached the origin (None: a head too large to keep).
    pub request_headers: Option<Vec<(String, String)>>,
    /// The response's headers as the origin sent them (None: none yet, or too large to keep).
    pub response_headers: Option<Vec<(String, String)>>,
}

#[derive(Debug, Default)]
struct Log {
    /// At most [`MAX_EXCHANGES`]; later ones are relayed but not logged.
    exchanges: Vec<Exchange>,
    /// Why the last connection to the origin failed (the origin is gone or not listening).
    connect_error: Option<String>,
}

type SharedLog = Arc<Mutex<Log>>;

fn lock(log: &SharedLog) -> std::sync::MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running tap; dropping it closes the listener and every relayed connection.
#[derive(Debug)]
pub struct Tap {
    addr: SocketAddr,
    log: SharedLog,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Tap {
    /// Listen on an ephemeral 127.0.0.1 port and relay to `origin`.
    pub async fn start(origin: SocketAddr) -> std::io::Result<Tap> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let log = SharedLog::default();
        let task = tokio::spawn(accept_loop(listener, origin, log.clone()));
        Ok(Tap { addr, log, task })
    }

    /// Where hops (or the probe) connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Why connecting to the origin failed, if it ever did.
    pub fn connect_error(&self) -> Option<String> {
        lock(&self.log).connect_error.clone()
    }

    /// The exchange that carried `rec`'s request: the latest with its `tag` (a client of several at once,
    /// [`crate::request::TAG_HEADER`]), else with its method and path, that passed the tap while the probe
    /// was listening (or the only exchange, when a hop rewrote the path); never one tagged otherwise.
    pub fn exchange_for(
        &self,
        rec: &Recording,
        method: &str,
        target: &str,
        tag: Option<&str>,
    ) -> Option<Exchange> {
        let log = lock(&self.log);
        let end = rec.start + rec.ended_at;
        // In the window, and not another client's: a tagged request is its tag's alone.
        let during = |e: &&Exchange| {
            e.request_at >= rec.start
                && e.request_at <= end
                && (e.tag.is_none() || e.tag.as_deref() == tag)
        };
        let tagged = tag.and_then(|t| {
            log.exchanges
                .iter()
                .filter(during)
                .rfind(|e| e.tag.as_deref() == Some(t))
        });
        let found = tagged.or_else(|| {
            log.exchanges
                .iter()
                .filter(during)
                .rfind(|e| e.method.eq_ignore_ascii_case(method) && e.target == target)
        });
        match found {
            Some(e) => Some(e.clone()),
            None => {
                let mut all = log.exchanges.iter().filter(during);
                match (all.next(), all.next()) {
                    (Some(only), None) => Some(only.clone()),
                    _ => None,
                }
            }
        }
    }
}

impl Tap {
    /// The first exchange for `target` whose request passed the tap at or after `since`.
    pub fn first_since(&self, since: Instant, target: &str) -> Option<Exchange> {
        lock(&self.log)
            .exchanges
            .iter()
            .find(|e| e.request_at >= since && e.target == target)
            .cloned()
    }
}

impl Exchange {
    /// The origin's send instants as offsets from the instant its request passed the tap (for a client
    /// whose clock is not ssegate's, such as a browser's page, whose request left a moment before).
    pub fn own_schedule(&self) -> SendInstants {
        let at = |t: Instant| t.saturating_duration_since(self.request_at);
        SendInstants {
            sends: self.sends.iter().map(|&t| at(t)).collect(),
            headers_sent: self.headers_at.map(at),
            ended: self.ended.map(at),
            gap: None,
            planned: None,
            by_position: true,
        }
    }

    /// The origin's send instants as offsets on `rec`'s clock, up to the instant the probe stopped.
    pub fn schedule(&self, rec: &Recording) -> SendInstants {
        let end = rec.start + rec.ended_at;
        SendInstants {
            sends: self
                .sends
                .iter()
                .filter(|&&t| t <= end)
                .map(|&t| rec.offset(t))
                .collect(),
            headers_sent: self.headers_at.filter(|&t| t <= end).map(|t| rec.offset(t)),
            ended: self.ended.filter(|&t| t <= end).map(|t| rec.offset(t)),
            gap: None,
            planned: None,
            by_position: true,
        }
    }

    /// How long the origin took to answer: from the request passing the tap to its response head, or to
    /// `until` when no head came.
    pub fn origin_wait(&self, until: Instant) -> Duration {
        self.headers_at
            .unwrap_or(until)
            .saturating_duration_since(self.request_at)
    }
}

async fn accept_loop(listener: TcpListener, origin: SocketAddr, log: SharedLog) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let log = log.clone();
                conns.spawn(relay(client, origin, log));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn relay(client: TcpStream, origin: SocketAddr, log: SharedLog) {
    let upstream =
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(origin)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return note_connect_error(&log, e.to_string()),
            Err(_) => return note_connect_error(&log, "connect timed out after 5 s".into()),
        };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (ur, uw) = upstream.into_split();
    // Requests in the order they were sent: responses come back in the same order (HTTP/1.1).
    let pending: Arc<Mutex<Pending>> = Arc::default();
    let up = requests(cr, uw, log.clone(), pending.clone());
    let down = responses(ur, cw, log, pending);
    tokio::join!(up, down);
}

fn note_connect_error(log: &SharedLog, e: String) {
    lock(log).connect_error = Some(e);
}

#[derive(Debug, Default)]
struct Pending {
    /// Requests awaiting their response: the log index (`None`: an exchange that was not kept) and the
    /// method (HEAD responses have no body).
    queue: VecDeque<(Option<usize>, String)>,
    /// The request side lost track (a chunked body, an oversized head): stop pairing responses.
    lost: bool,
    /// Every logged exchange of this connection.
    all: Vec<usize>,
}

/// What the request side is following.
#[derive(Debug, Default)]
struct Requests {
    /// The start of a request head not complete yet.
    head: Vec<u8>,
    /// Body bytes of the current request still to pass before the next head.
    skip: u64,
    lost: bool,
}

impl Requests {
    /// Note the request heads in one read.
    fn follow(&mut self, data: &[u8], at: Instant, log: &SharedLog, p: &Arc<Mutex<Pending>>) {
        let mut input = data.to_vec();
        while !self.lost && !input.is_empty() {
            if self.skip > 0 {
                let k = (self.skip as usize).min(input.len());
                self.skip -= k as u64;
                input.drain(..k);
                continue;
            }
            self.head.append(&mut input);
            match parse_request(&self.head) {
                Parsed::Partial => self.lost = self.head.len() > MAX_HEAD,
                Parsed::Invalid => self.lost = true,
                Parsed::Request {
                    len,
                    method,
                    target,
                    body,
                    last_event_id,
                    tag,
                    headers,
                } => {
                    let idx = {
                        let mut l = lock(log);
                        if l.exchanges.len() < MAX_EXCHANGES {
                            l.exchanges.push(Exchange {
                                method: method.clone(),
                                target,
                                request_at: at,
                                headers_at: None,
                                status: 0,
                                sends: Vec::new(),
                                ended: None,
                                end: TapEnd::Open,
                                last_event_id,
                                tag,
                                client_closed: None,
                                request_headers: headers,
                                response_headers: None,
                            });
                            Some(l.exchanges.len() - 1)
                        } else {
                            None
                        }
                    };
                    let mut pending = p.lock().unwrap_or_else(|e| e.into_inner());
                    pending.queue.push_back((idx, method));
                    pending.all.extend(idx);
                    drop(pending);
                    // Whatever followed the head is its body, then the next request.
                    input = self.head.split_off(len);
                    self.head.clear();
                    match body {
                        Some(b) => self.skip = b,
                        None => self.lost = true,
                    }
                }
            }
        }
        if self.lost {
            p.lock().unwrap_or_else(|e| e.into_inner()).lost = true;
        }
    }
}

/// Client → origin: relay, and note each request head.
async fn requests(from: OwnedReadHalf, to: OwnedWriteHalf, log: SharedLog, p: Arc<Mutex<Pending>>) {
    let mut state = Requests::default();
    let _ = copy_watching(from, to, |data, at| {
        if !state.lost {
            state.follow(data, at, &log, &p);
        }
    })
    .await;
    // The client side closed (or reset) the connection: every exchange on it has lost its client.
    let at = Instant::now();
    let all = std::mem::take(&mut p.lock().unwrap_or_else(|e| e.into_inner()).all);
    let mut l = lock(&log);
    for i in all {
        if let Some(e) = l.exchanges.get_mut(i) {
            e.client_closed.get_or_insert(at);
        }
    }
}

/// Copy `from` to `to` until EOF, showing each read and its instant to `watch` before writing it on.
/// `Err` carries the instant the write failed (the other side went away); on EOF the write side is shut.
async fn copy_watching(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut watch: impl FnMut(&[u8], Instant),
) -> Result<(), Instant> {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let at = Instant::now();
        watch(&buf[..n], at);
        if to.write_all(&buf[..n]).await.is_err() {
            return Err(at);
        }
    }
    let _ = to.shutdown().await;
    Ok(())
}

enum Parsed {
    Partial,
    Invalid,
    Request {
        len: usize,
        method: String,
        target: String,
        /// Body length (0 without one); `None` for a body the tap cannot delimit (chunked).
        body: Option<u64>,
        last_event_id: Option<String>,
        tag: Option<String>,
        headers: Option<Vec<(String, String)>>,
    },
}

/// A head's header lines as kept for the integrity check: None when they exceed [`MAX_KEPT_HEADERS`].
fn kept_headers(headers: &[httparse::Header<'_>]) -> Option<Vec<(String, String)>> {
    let size: usize = headers.iter().map(|h| h.name.len() + h.value.len()).sum();
    (size <= MAX_KEPT_HEADERS).then(|| {
        headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).trim().to_string(),
                )
            })
            .collect()
    })
}

fn parse_request(head: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Invalid,
        Ok(httparse::Status::Complete(len)) => {
            let mut body = Some(0);
            let mut last_event_id = None;
            let mut tag = None;
            for h in req.headers.iter() {
                if h.name.eq_ignore_ascii_case("last-event-id") {
                    last_event_id = Some(String::from_utf8_lossy(h.value).into_owned());
                }
                if h.name.eq_ignore_ascii_case(crate::request::TAG_HEADER) {
                    tag = Some(String::from_utf8_lossy(h.value).into_owned());
                }
                if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    body = None;
                } else if h.name.eq_ignore_ascii_case("content-length") && body.is_some() {
                    body = std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.trim().parse().ok());
                }
            }
            Parsed::Request {
                len,
                method: req.method.unwrap_or("GET").to_string(),
                target: req.path.unwrap_or("/").to_string(),
                body,
                last_event_id,
                tag,
                headers: kept_headers(req.headers),
            }
        }
    }
}

/// How the current response body is delimited.
enum Framing {
    None,
    Length(u64),
    Chunked(Chunks),
    Close,
}

/// What the response side is following.
struct Body {
    idx: Option<usize>,
    framing: Framing,
    decoder: Option<Decoder>,
    parser: Parser,
    items: Vec<Item>,
    /// Events parsed from the current read and not stamped yet.
    sends_pending: usize,
}

/// Origin → client: relay, and stamp response heads and events.
async fn responses(
    from: OwnedReadHalf,
    to: OwnedWriteHalf,
    log: SharedLog,
    p: Arc<Mutex<Pending>>,
) {
    let mut head: Vec<u8> = Vec::new();
    let mut body: Option<Body> = None;
    let mut following = true;
    let copied = copy_watching(from, to, |data, at| {
        if following {
            following = follow(data, at, &mut head, &mut body, &log, &p);
        }
    })
    .await;
    let Some(mut b) = body else { return };
    match copied {
        Err(at) => finish(&log, b.idx, at, TapEnd::ClientGone),
        Ok(()) => {
            let at = Instant::now();
            let end = if matches!(b.framing, Framing::Close) {
                TapEnd::Complete
            } else {
                TapEnd::Aborted
            };
            b.parser.finish(&mut b.items);
            stamp_events(&log, &mut b, at);
            finish(&log, b.idx, at, end);
        }
    }
}

/// Follow one read; returns false when the tap can no longer follow this connection.
fn follow(
    mut data: &[u8],
    at: Instant,
    head: &mut Vec<u8>,
    body: &mut Option<Body>,
    log: &SharedLog,
    p: &Arc<Mutex<Pending>>,
) -> bool {
    while !data.is_empty() {
        if let Some(b) = body.as_mut() {
            let (used, done) = consume_body(b, data);
            stamp_events(log, b, at);
            data = &data[used..];
            if done {
                finish(log, b.idx, at, TapEnd::Complete);
                *body = None;
            }
            continue;
        }
        let before = head.len();
        head.extend_from_slice(data);
        let parsed = match ResponseHead::parse(head) {
            Ok(Some(h)) => h,
            Ok(None) => return head.len() <= MAX_HEAD,
            Err(()) => return false,
        };
        // The head ends inside this read: the rest is body.
        let used = parsed.len - before;
        data = &data[used.min(data.len())..];
        head.clear();
        match start_response(parsed, at, log, p) {
            Next::Stop => return false,
            Next::Head => {}
            Next::Body(b) => *body = Some(*b),
        }
    }
    true
}

/// What a response head says about the body that follows it.
struct ResponseHead {
    /// Bytes of the head, blank line included.
    len: usize,
    status: u16,
    chunked: bool,
    length: Option<u64>,
    coding: Option<String>,
    headers: Option<Vec<(String, String)>>,
}

impl ResponseHead {
    /// The head at the start of `buf`: None while incomplete, an error when it is not HTTP/1.x.
    fn parse(buf: &[u8]) -> Result<Option<ResponseHead>, ()> {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(buf) {
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(()),
            Ok(httparse::Status::Complete(len)) => len,
        };
        let value = |name: &str| {
            resp.headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        };
        Ok(Some(ResponseHead {
            len,
            status: resp.code.unwrap_or(0),
            chunked: value("transfer-encoding")
                .iter()
                .any(|v| v.split(',').any(|c| c.trim() == "chunked")),
            length: value("content-length")
                .first()
                .and_then(|v| v.parse::<u64>().ok()),
            coding: value("content-encoding").first().cloned(),
            headers: kept_headers(resp.headers),
        }))
    }
}

/// What follows a response head.
enum Next {
    /// The connection cannot be followed any further (an upgrade, an unmatched response).
    Stop,
    /// Another head follows (an interim response, or a response without a body).
    Head,
    Body(Box<Body>),
}

/// Match a response head with the oldest request waiting for one, stamp it, and set up its body.
fn start_response(h: ResponseHead, at: Instant, log: &SharedLog, p: &Arc<Mutex<Pending>>) -> Next {
    if (100..200).contains(&h.status) {
        return if h.status == 101 {
            Next::Stop
        } else {
            Next::Head
        };
    }
    let (idx, method) = {
        let mut pq = p.lock().unwrap_or_else(|e| e.into_inner());
        if pq.lost && pq.queue.is_empty() {
            return Next::Stop;
        }
        match pq.queue.pop_front() {
            Some((idx, method)) => (idx, Some(method)),
            None => (None, None),
        }
    };
    if let Some(i) = idx {
        let mut l = lock(log);
        if let Some(e) = l.exchanges.get_mut(i) {
            e.headers_at = Some(at);
            e.status = h.status;
            e.response_headers = h.headers;
        }
    }
    let bodiless = method.is_some_and(|m| m.eq_ignore_ascii_case("HEAD"))
        || h.status == 204
        || h.status == 304;
    let framing = if bodiless {
        Framing::None
    } else if h.chunked {
        Framing::Chunked(Chunks::default())
    } else if let Some(n) = h.length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    if matches!(framing, Framing::None | Framing::Length(0)) {
        finish(log, idx, at, TapEnd::Complete);
        return Next::Head;
    }
    Next::Body(Box::new(Body {
        idx,
        framing,
        decoder: Coding::parse(h.coding.as_deref()).map(|c| Decoder::new(c, MAX_DECODED)),
        parser: Parser::with_max_line(MAX_LINE),
        items: Vec::new(),
        sends_pending: 0,
    }))
}

/// Feed body bytes from `data`; returns how many bytes belonged to this body and whether it ended.
fn consume_body(b: &mut Body, data: &[u8]) -> (usize, bool) {
    let mut payload: Vec<u8> = Vec::new();
    let (used, done) = match &mut b.framing {
        Framing::None => (0, true),
        Framing::Close => {
            payload.extend_from_slice(data);
            (data.len(), false)
        }
        Framing::Length(left) => {
            let k = (*left).min(data.len() as u64) as usize;
            payload.extend_from_slice(&data[..k]);
            *left -= k as u64;
            (k, *left == 0)
        }
        Framing::Chunked(c) => c.feed(data, &mut payload),
    };
    if !payload.is_empty() {
        let (parser, items, sends) = (&mut b.parser, &mut b.items, &mut b.sends_pending);
        // Every member of a gzip body was sent by the origin, whatever a browser makes of it.
        let pushed = b.decoder.as_mut().map(|d| {
            d.push(&payload, &mut |piece, _| {
                parser.feed(piece, items);
                *sends += count_events(items);
            })
        });
        if !matches!(pushed, Some(Ok(()))) {
            // An undecodable or unsupported body: stop stamping events for it.
            b.decoder = None;
        }
    }
    if done {
        b.parser.finish(&mut b.items);
        b.sends_pending += count_events(&mut b.items);
    }
    (used, done)
}

/// Events among `items`, which are dropped (the tap needs only their count).
fn count_events(items: &mut Vec<Item>) -> usize {
    items
        .drain(..)
        .filter(|i| matches!(i, Item::Event(_)))
        .count()
}

fn stamp_events(log: &SharedLog, b: &mut Body, at: Instant) {
    let events = std::mem::take(&mut b.sends_pending) + count_events(&mut b.items);
    if events == 0 {
        return;
    }
    let Some(i) = b.idx else { return };
    let mut l = lock(log);
    if let Some(e) = l.exchanges.get_mut(i) {
        for _ in 0..events {
            if e.sends.len() < MAX_SENDS {
                e.sends.push(at);
            }
        }
    }
}

fn finish(log: &SharedLog, idx: Option<usize>, at: Instant, end: TapEnd) {
    let Some(i) = idx else { return };
    let mut l = lock(log);
    if let Some(e) = l.exchanges.get_mut(i)
        && e.end == TapEnd::Open
    {
        e.ended = Some(at);
        e.end = end;
        if end == TapEnd::ClientGone {
            e.client_closed.get_or_insert(at);
        }
    }
}

/// An incremental chunked-body decoder (RFC 9112 §7.1).
#[derive(Debug, Default)]
struct Chunks {
    state: ChunkState,
    line: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading a size line.
    #[default]
    Size,
    /// Reading this many data bytes.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk, until an empty line.
    Trailer,
    Done,
}

/// Longest chunk-size or trailer line followed.
const MAX_CHUNK_LINE: usize = 4096;

impl Chunks {
    /// Decode from `data` into `out`; returns the bytes used and whether the body ended.
    fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> (usize, bool) {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                ChunkState::Done => return (i, true),
                ChunkState::Data(left) => {
                    let k = (left as usize).min(data.len() - i);
                    out.extend_from_slice(&data[i..i + k]);
                    i += k;
                    self.state = if left as usize == k {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - k as u64)
                    };
                }
                ChunkState::Size | ChunkState::DataEnd | ChunkState::Trailer => {
                    let b = data[i];
                    i += 1;
                    if b != b'\n' {
                        if self.line.len() < MAX_CHUNK_LINE {
                            self.line.push(b);
                        }
                        continue;
                    }
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    self.state = match self.state {
                        ChunkState::DataEnd => ChunkState::Size,
                        ChunkState::Trailer if line.is_empty() => ChunkState::Done,
                        ChunkState::Trailer => ChunkState::Trailer,
                        _ => {
                            let hex = line.split(|&c| c == b';').next().unwrap_or(b"");
                            let size = std::str::from_utf8(hex)
                                .ok()
                                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok());
                            match size {
                                Some(0) => ChunkState::Trailer,
                                Some(n) => ChunkState::Data(n),
                                // Not chunked after all: treat the rest as opaque.
                                None => ChunkState::Done,
                            }
                        }
                    };
                    if self.state == ChunkState::Done {
                        return (i, true);
                    }
                }
            }
        }
        (i, self.state == ChunkState::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_decode_across_any_split() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for cut in 0..wire.len() {
            let mut c = Chunks::default();
            let mut out = Vec::new();
            let (u1, d1) = c.feed(&wire[..cut], &mut out);
            let (u2, d2) = if d1 {
                (0, true)
            } else {
                c.feed(&wire[cut..], &mut out)
            };
            assert_eq!(out, b"hello, world", "cut at {cut}");
            assert!(d2, "cut at {cut}");
            assert_eq!(u1 + u2, wire.len() - 4, "cut at {cut}");
        }
    }

    #[tokio::test]
    async fn clients_at_once_find_their_own_exchange_by_tag() {
        let mut profile = crate::origin::Profile::builtin("plain").unwrap();
        profile.events.count = 3;
        profile.events.gap_ms = 50;
        profile.linger_ms = 0;
        let origin = crate::origin::FixtureServer::start(profile).await.unwrap();
        let tap = Tap::start(origin.addr()).await.unwrap();
        let req = |tag: Option<&str>| {
            let mut r = crate::probe::ProbeRequest::new(format!("http://{}/events", tap.addr()));
            r.limits.duration = std::time::Duration::from_secs(10);
            if let Some(t) = tag {
                r.headers
                    .push((crate::request::TAG_HEADER.into(), t.into()));
            }
            r
        };
        // Both listen over the same window, with the same method and path: only the tag tells them apart.
        let (ra, rb) = (req(Some("reconnect")), req(Some("disconnect")));
        let (a, b) = tokio::join!(crate::probe::probe(&ra), crate::probe::probe(&rb));
        let (a, b) = (a.unwrap(), b.unwrap());
        let found = |rec: &Recording, tag| {
            tap.exchange_for(rec, "GET", "/events", tag)
                .and_then(|e| e.tag)
        };
        assert_eq!(found(&a, Some("reconnect")).as_deref(), Some("reconnect"));
        assert_eq!(found(&b, Some("disconnect")).as_deref(), Some("disconnect"));
        // An untagged client never takes a tagged one's exchange.
        assert_eq!(found(&a, None), None);
    }

    #[test]
    fn request_heads_give_method_target_and_body_length() {
        match parse_request(b"POST /s?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc") {
            Parsed::Request {
                len,
                method,
                target,
                body,
                last_event_id,
                tag,
                headers,
            } => {
                assert_eq!(tag, None);
                // Kept as they came, for the header integrity check.
                assert_eq!(
                    headers,
                    Some(vec![
                        ("Host".into(), "a".into()),
                        ("Content-Length".into(), "3".into())
                    ])
                );
                assert_eq!(
                    (method.as_str(), target.as_str(), body),
                    ("POST", "/s?x=1", Some(3))
                );
                assert_eq!(len, 52);
                assert_eq!(last_event_id, None);
            }
            _ => panic!("not parsed"),
        }
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nlast-event-id: 7\r\n\r\n"),
            Parsed::Request { last_event_id: Some(id), .. } if id == "7"
        ));
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nX-Ssegate-Client: reconnect\r\n\r\n"),
            Parsed::Request { tag: Some(t), .. } if t == "reconnect"
        ));
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nHo"),
            Parsed::Partial
        ));
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Parsed::Request { body: None, .. }
        ));
    }
}
