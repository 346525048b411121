//! Token streams: LLM output over SSE, measured as its users measure it.
//!
//! A stream's protocol ([`Protocol`]) is asked for (`--protocol`) or recognised from the response
//! ([`detect`]): the AI SDK's header, OpenAI Responses' and Anthropic's event names, the shape of
//! OpenAI Chat Completions' and the AI SDK's chunks. Each event is then a content delta, the protocol's
//! terminal event, or something else (a role chunk, a `ping`, usage). From the deltas' arrivals
//! [`measure`] gives the time to the first token, the gaps between tokens, how many deltas came in the
//! same read as the one before (a collapsed stream), and whether the terminal event came; with the
//! origin's send instants, what the path added to both.
//!
//! A token stream that ends cleanly without its terminal event was truncated ([`truncation`]):
//! something on the path closed it on time, not the model. That needs no send instants, so `doctor` on
//! a deployed URL tells it too. NDJSON (Ollama) is recognised by its content type and read line by line
//! (`sse::Parser::ndjson`): each line is an event.

use std::time::Duration;

use serde::Serialize;

use super::evidence::{Fact, evidence};
use super::{EventTiming, ser_opt_ms};
use super::{Finding, FindingId};
use crate::probe::{End, Recording};
use crate::sse::Event;
use crate::text::ser_ms;

pub use crate::protocol::{NAMES, Protocol};

/// The protocol a stream was read as, and what said so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detected {
    #[serde(rename = "protocol")]
    pub protocol: Protocol,
    /// `--protocol`, a header, event names, a chunk shape, or that nothing matched.
    #[serde(rename = "protocol_from")]
    pub from: String,
}

/// Events looked at to recognise a protocol.
const DETECT_EVENTS: usize = 64;

/// The protocol of `rec`: `asked` unless it is `auto`, else recognised from the response.
pub fn detect(rec: &Recording, asked: Protocol) -> Detected {
    if asked != Protocol::Auto {
        return Detected {
            protocol: asked,
            from: "asked for (--protocol)".into(),
        };
    }
    let found = |protocol, from: &str| Detected {
        protocol,
        from: from.to_string(),
    };
    if let Some((protocol, from)) = protocol_of_head(|name| rec.header(name)) {
        return found(protocol, from);
    }
    for e in rec.events.iter().take(DETECT_EVENTS).map(|a| &a.event) {
        if let Some((protocol, from)) = protocol_of_event(e) {
            return found(protocol, from);
        }
    }
    found(
        Protocol::Eventsource,
        "no LLM event names or chunk shapes in the stream",
    )
}

/// The protocol a response head names (the AI SDK's header, an NDJSON content type), and what said so.
fn protocol_of_head<'a>(
    header: impl Fn(&str) -> Option<&'a str>,
) -> Option<(Protocol, &'static str)> {
    if header("x-vercel-ai-ui-message-stream").is_some() {
        return Some((
            Protocol::AiSdk,
            "the `x-vercel-ai-ui-message-stream` response header",
        ));
    }
    crate::protocol::ndjson_content_type(header("content-type").unwrap_or(""))
        .then_some((Protocol::Ndjson, "the content type (NDJSON)"))
}

/// The protocol one event names by its name or the shape of its data, and what said so.
fn protocol_of_event(e: &Event) -> Option<(Protocol, &'static str)> {
    let kind = type_of(e);
    if kind.starts_with("response.") {
        return Some((
            Protocol::OpenaiResponses,
            "event names (`response.…` events)",
        ));
    }
    if matches!(
        kind.as_str(),
        "message_start" | "content_block_start" | "content_block_delta" | "message_stop"
    ) {
        return Some((
            Protocol::Anthropic,
            "event names (`message_start`, `content_block_delta`, …)",
        ));
    }
    let json = json_of(e)?;
    if json.get("choices").is_some_and(|c| c.is_array()) {
        return Some((Protocol::OpenaiChat, "chunk shape (`choices[].delta`)"));
    }
    matches!(
        json.get("type").and_then(|t| t.as_str()),
        Some("text-delta" | "text-start" | "reasoning-delta" | "start" | "start-step")
    )
    .then_some((Protocol::AiSdk, "chunk shape (`{\"type\":\"text-delta\"}`)"))
}

/// Reads a token stream event by event where no recording is kept (each of a load's streams): its
/// protocol is the one asked for, else the one its head names, else the one its first events name
/// (events before that one count as neither deltas nor the terminal event; after [`DETECT_EVENTS`]
/// events that name none, it is read as no token stream).
#[derive(Debug, Clone)]
pub struct TokenReader {
    protocol: Option<Protocol>,
    /// Events still looked at to recognise the protocol.
    undecided: usize,
}

impl TokenReader {
    /// `header` answers the response head's headers by lowercase name.
    pub fn new<'a>(asked: Protocol, header: impl Fn(&str) -> Option<&'a str>) -> TokenReader {
        let protocol = if asked != Protocol::Auto {
            Some(asked)
        } else {
            protocol_of_head(header).map(|(p, _)| p)
        };
        TokenReader {
            protocol,
            undecided: DETECT_EVENTS,
        }
    }

    /// The protocol, once known.
    pub fn protocol(&self) -> Option<Protocol> {
        self.protocol
    }

    /// What `e` is to the stream.
    pub fn read(&mut self, e: &Event) -> Kind {
        let p = match self.protocol {
            Some(p) => p,
            None if self.undecided == 0 => return Kind::Other,
            None => {
                self.undecided -= 1;
                match protocol_of_event(e) {
                    Some((p, _)) => {
                        self.protocol = Some(p);
                        p
                    }
                    None => {
                        if self.undecided == 0 {
                            self.protocol = Some(Protocol::Eventsource);
                        }
                        return Kind::Other;
                    }
                }
            }
        };
        if p.has_tokens() {
            kind(p, e)
        } else {
            Kind::Other
        }
    }
}

/// What one event is to a token stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Delta,
    Terminal,
    Other,
}

/// The data as a JSON object, when it is one.
fn json_of(e: &Event) -> Option<serde_json::Map<String, serde_json::Value>> {
    let d = e.data.trim_start();
    if !d.starts_with('{') {
        return None;
    }
    match serde_json::from_str::<serde_json::Value>(d).ok()? {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The event's name: its `event:` field, else its data's `"type"` (OpenAI and Anthropic send both;
/// gateways such as LiteLLM drop the `event:` lines). An event whose data was cut where the recording
/// keeps no more (a `response.completed` carrying the whole answer) still names its type first.
fn type_of(e: &Event) -> String {
    if e.event_type != "message" {
        return e.event_type.to_string();
    }
    match json_of(e) {
        Some(j) => j
            .get("type")
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .unwrap_or_default(),
        None if e.truncated > 0 => leading_type(&e.data).unwrap_or_default(),
        None => String::new(),
    }
}

/// The `"type"` of a JSON object cut short, when it is the object's first key: `{"type":"x",…`.
fn leading_type(data: &str) -> Option<String> {
    let rest = data.trim_start().strip_prefix('{')?.trim_start();
    let rest = rest.strip_prefix("\"type\"")?.trim_start();
    let rest = rest.strip_prefix(':')?.trim_start().strip_prefix('"')?;
    let end = rest.find('"')?;
    let t = &rest[..end];
    (!t.contains('\\')).then(|| t.to_string())
}

fn non_empty(v: Option<&serde_json::Value>) -> bool {
    match v {
        Some(serde_json::Value::String(s)) => !s.is_empty(),
        Some(serde_json::Value::Array(a)) => !a.is_empty(),
        Some(serde_json::Value::Null) | None => false,
        Some(_) => true,
    }
}

fn kind(p: Protocol, e: &Event) -> Kind {
    match p {
        Protocol::OpenaiChat | Protocol::AiSdk if e.data.trim() == "[DONE]" => Kind::Terminal,
        Protocol::OpenaiChat => {
            let delta = json_of(e)
                .and_then(|j| j.get("choices").and_then(|c| c.as_array()).cloned())
                .is_some_and(|choices| {
                    choices.iter().any(|c| {
                        let d = c.get("delta");
                        [
                            "content",
                            "reasoning_content",
                            "reasoning",
                            "tool_calls",
                            "refusal",
                        ]
                        .iter()
                        .any(|k| non_empty(d.and_then(|d| d.get(*k))))
                    })
                });
            if delta { Kind::Delta } else { Kind::Other }
        }
        Protocol::AiSdk => match json_of(e).and_then(|j| j.get("type").cloned()) {
            Some(serde_json::Value::String(t)) if t.ends_with("-delta") => Kind::Delta,
            _ => Kind::Other,
        },
        Protocol::OpenaiResponses => {
            let t = type_of(e);
            if t.ends_with(".delta") {
                Kind::Delta
            } else if matches!(
                t.as_str(),
                "response.completed" | "response.incomplete" | "response.failed"
            ) {
                Kind::Terminal
            } else {
                Kind::Other
            }
        }
        Protocol::Anthropic => match type_of(e).as_str() {
            "content_block_delta" => Kind::Delta,
            "message_stop" => Kind::Terminal,
            _ => Kind::Other,
        },
        // Ollama: `/api/chat` lines carry `message.content` (or `message.thinking`), `/api/generate`
        // lines `response`; the last says `"done": true`.
        Protocol::Ndjson => match json_of(e) {
            Some(j) if j.get("done").and_then(|d| d.as_bool()) == Some(true) => Kind::Terminal,
            Some(j) => {
                let m = j.get("message");
                let content = ["content", "thinking", "tool_calls"]
                    .iter()
                    .any(|k| non_empty(m.and_then(|m| m.get(*k))));
                if content || non_empty(j.get("response")) || non_empty(j.get("thinking")) {
                    Kind::Delta
                } else {
                    Kind::Other
                }
            }
            None => Kind::Other,
        },
        Protocol::Auto | Protocol::Eventsource | Protocol::Mcp => Kind::Other,
    }
}

/// What each of `rec`'s events is to a stream read as `p`, classified once for every judgement that
/// needs it (every event is [`Kind::Other`] for a protocol without tokens).
pub fn kinds(rec: &Recording, p: Protocol) -> Vec<Kind> {
    rec.events
        .iter()
        .map(|a| {
            if p.has_tokens() {
                kind(p, &a.event)
            } else {
                Kind::Other
            }
        })
        .collect()
}

/// The positions of the content deltas among the events.
fn delta_indices(kinds: &[Kind]) -> Vec<usize> {
    kinds
        .iter()
        .enumerate()
        .filter(|(_, k)| **k == Kind::Delta)
        .map(|(i, _)| i)
        .collect()
}

/// Percentiles of the gaps between deltas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Spread {
    #[serde(serialize_with = "ser_ms")]
    pub p50: Duration,
    #[serde(serialize_with = "ser_ms")]
    pub p90: Duration,
    #[serde(serialize_with = "ser_ms")]
    pub p99: Duration,
    #[serde(serialize_with = "ser_ms")]
    pub max: Duration,
}

impl Spread {
    fn of(mut gaps: Vec<Duration>) -> Option<Spread> {
        if gaps.is_empty() {
            return None;
        }
        gaps.sort();
        let at = |p: f64| gaps[((gaps.len() as f64 - 1.0) * p).round() as usize];
        Some(Spread {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: gaps[gaps.len() - 1],
        })
    }
}

/// A token stream's timing, as its users measure it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tokens {
    /// Request to the first content delta.
    #[serde(rename = "ttft_ms", serialize_with = "ser_opt_ms")]
    pub ttft: Option<Duration>,
    /// Between consecutive content deltas' arrivals.
    #[serde(rename = "itl_ms")]
    pub itl: Option<Spread>,
    /// Content deltas that arrived (of the events kept).
    pub deltas: usize,
    /// Deltas per second, from the first to the last.
    pub deltas_per_s: Option<f64>,
    /// Share of the deltas after the first that arrived in the same read as the one before: near 1, the
    /// stream collapsed into a few reads.
    pub same_read_share: Option<f64>,
    /// Whether the protocol's terminal event arrived; beyond the kept events, true when the last one
    /// counted was it, else None (not known).
    pub terminal_seen: Option<bool>,
    /// The terminal event the protocol ends with (`[DONE]`, `message_stop`, …).
    pub terminal: &'static str,
    /// What the path added to the time to the first token (arrival against the origin's send instant).
    #[serde(
        rename = "added_ttft_ms",
        serialize_with = "ser_opt_signed_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub added_ttft: Option<i64>,
    /// What the path added to the median gap between tokens (negative: the gaps shrank, tokens came
    /// together).
    #[serde(
        rename = "added_itl_ms",
        serialize_with = "ser_opt_signed_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub added_itl: Option<i64>,
}

/// Signed microseconds as milliseconds.
fn ser_opt_signed_ms<S: serde::Serializer>(us: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match us {
        Some(us) => s.serialize_f64(*us as f64 / 1000.0),
        None => s.serialize_none(),
    }
}

fn signed_us(a: Duration, b: Duration) -> i64 {
    a.as_micros() as i64 - b.as_micros() as i64
}

/// The token timing of `rec` read as `p` (None for a protocol without tokens); `timed` are the
/// verdict's events, in the recording's order, whose `expected` send instants give what the path
/// added.
pub fn measure(
    rec: &Recording,
    p: Protocol,
    kinds: &[Kind],
    timed: &[EventTiming],
) -> Option<Tokens> {
    if !p.has_tokens() {
        return None;
    }
    let deltas = delta_indices(kinds);
    let terminal = kinds.contains(&Kind::Terminal);
    let at = |i: usize| rec.events[i].at;
    let gaps: Vec<Duration> = deltas
        .windows(2)
        .map(|w| at(w[1]).saturating_sub(at(w[0])))
        .collect();
    let same = deltas
        .windows(2)
        .filter(|w| rec.events[w[1]].read == rec.events[w[0]].read)
        .count();
    let span = match (deltas.first(), deltas.last()) {
        (Some(&a), Some(&b)) => at(b).saturating_sub(at(a)),
        _ => Duration::ZERO,
    };
    let sent = |i: usize| timed.get(i).and_then(|t| t.expected);
    let added_ttft = deltas
        .first()
        .and_then(|&i| Some(signed_us(at(i), sent(i)?)));
    let added_itl = {
        let origin: Option<Vec<Duration>> = deltas
            .windows(2)
            .map(|w| Some(sent(w[1])?.saturating_sub(sent(w[0])?)))
            .collect();
        match (Spread::of(gaps.clone()), origin.and_then(Spread::of)) {
            (Some(here), Some(there)) => Some(signed_us(here.p50, there.p50)),
            _ => None,
        }
    };
    Some(Tokens {
        ttft: deltas.first().map(|&i| at(i)),
        deltas_per_s: (deltas.len() > 1 && !span.is_zero())
            .then(|| (deltas.len() - 1) as f64 / span.as_secs_f64()),
        same_read_share: (deltas.len() > 1).then(|| same as f64 / (deltas.len() - 1) as f64),
        itl: Spread::of(gaps),
        deltas: deltas.len(),
        // Beyond the kept events, a last one counted that is the terminal event says the stream ended
        // with it; any other leaves it unknown (a `[DONE]` may follow the terminal event).
        terminal_seen: match &rec.last_dropped {
            _ if rec.events_dropped == 0 => Some(terminal),
            Some(last) if kind(p, last) == Kind::Terminal => Some(true),
            _ => None,
        },
        terminal: p.terminal_name(),
        added_ttft,
        added_itl,
    })
}

impl Tokens {
    /// One line for people: `TTFT 612 ms (+4) · ITL p50 31 ms p99 48 ms (+0) · 212 deltas · 98% in the
    /// same read · ended with [DONE]`.
    pub fn human(&self) -> String {
        let ms = |d: Duration| format!("{} ms", d.as_millis());
        let added = |us: Option<i64>| match us {
            Some(us) => format!(" ({:+})", us / 1000),
            None => String::new(),
        };
        let mut parts = Vec::new();
        match self.ttft {
            Some(t) => parts.push(format!("TTFT {}{}", ms(t), added(self.added_ttft))),
            None => parts.push("no content delta".into()),
        }
        if let Some(i) = self.itl {
            parts.push(format!(
                "ITL p50 {} p99 {} max {}{}",
                ms(i.p50),
                ms(i.p99),
                ms(i.max),
                added(self.added_itl)
            ));
        }
        parts.push(format!("{} deltas", self.deltas));
        if let Some(share) = self.same_read_share {
            parts.push(format!(
                "{:.0}% in the same read as the one before",
                share * 100.0
            ));
        }
        parts.push(match self.terminal_seen {
            Some(true) => format!("ended with {}", self.terminal),
            Some(false) => format!("no {}", self.terminal),
            None => format!(
                "{} not known (later events were only counted)",
                self.terminal
            ),
        });
        parts.join(" · ")
    }
}

/// Limits documented (or measured) on the paths streams take, as (seconds, which clock, what).
const KNOWN_CAPS: &[(u64, Clock, &str)] = &[
    (
        15,
        Clock::Total,
        "a 15 s route timeout (Envoy Gateway and Istio routes' default)",
    ),
    (25, Clock::FirstByte, "Vercel Edge's 25 s to the first byte"),
    (29, Clock::Total, "API Gateway REST's 29 s (buffered)"),
    (
        30,
        Clock::Idle,
        "a 30 s origin timeout (CloudFront, Azure Front Door, Heroku H12)",
    ),
    (55, Clock::Idle, "Heroku's 55 s rolling idle window"),
    (
        60,
        Clock::Idle,
        "a 60 s idle timeout (nginx `proxy_read_timeout`, AWS ALB `idle_timeout`)",
    ),
    (
        100,
        Clock::Idle,
        "Cloudflare's 100 s (documented; its 524 page says 120 s)",
    ),
    (
        125,
        Clock::Idle,
        "Cloudflare's idle cut as measured (125 s)",
    ),
    (
        300,
        Clock::Total,
        "a 300 s cap (Cloud Run's default request timeout, Railway)",
    ),
    (
        300,
        Clock::Idle,
        "a 5 min idle timeout (Envoy `stream_idle_timeout`, API Gateway STREAM)",
    ),
    (900, Clock::Total, "API Gateway STREAM's 15 min"),
    (3600, Clock::Total, "Cloud Run's 3600 s maximum"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    /// From the request.
    Total,
    /// From the request, before anything came.
    FirstByte,
    /// Since the last byte.
    Idle,
}

/// The known caps a stream that stopped at `ended` (since the request), `silent` after its last byte,
/// stopped near.
fn caps_near(ended: Duration, silent: Duration, got_bytes: bool) -> Vec<&'static str> {
    let near = |at: Duration, cap: u64| {
        let cap = Duration::from_secs(cap);
        let slack = (cap / 20).max(Duration::from_secs(1));
        at + slack >= cap && at <= cap + slack
    };
    KNOWN_CAPS
        .iter()
        .filter(|(cap, clock, _)| match clock {
            Clock::Total => near(ended, *cap),
            Clock::FirstByte => !got_bytes && near(ended, *cap),
            Clock::Idle => near(silent, *cap),
        })
        .map(|(_, _, what)| *what)
        .collect()
}

/// A token stream that ended cleanly without its terminal event: the finding, or None.
/// Fewer deltas than this are too few to call a stream collapsed.
const COLLAPSE_MIN_DELTAS: usize = 8;

/// A stall of this process this long can put tokens a model sends 20–50 ms apart into one read: without
/// the origin's send instants, a collapse measured on a machine that stalled this long is not ours to
/// call (see [`super::excuse_starved`]).
pub const COLLAPSE_STALL: Duration = Duration::from_millis(20);

/// ITL collapse: most of a token stream's deltas arrived in the same read as the one before, so the
/// text appears in jumps, however short each delay (`tokens-collapsed`).
///
/// With the origin's send instants (`timed[i].expected`), a delta counts only when it was sent later
/// than the one before by more than this process's longest stall: two deltas sent closer than that may
/// share a read because the probe was not running, not because a hop held them. Without them, every
/// delta sharing a read counts, and the verdict is left to [`super::excuse_starved`].
pub fn collapse(
    rec: &Recording,
    p: Protocol,
    kinds: &[Kind],
    timed: &[EventTiming],
) -> Option<Finding> {
    if !p.has_tokens() {
        return None;
    }
    let deltas = delta_indices(kinds);
    if deltas.len() < COLLAPSE_MIN_DELTAS {
        return None;
    }
    let stall = rec
        .pressure
        .as_ref()
        .map_or(Duration::ZERO, |p| p.timer_late_max);
    let sent = |i: usize| timed.get(i).and_then(|t| t.expected);
    let merged = deltas
        .windows(2)
        .filter(|w| rec.events[w[1]].read == rec.events[w[0]].read)
        .filter(|w| match (sent(w[0]), sent(w[1])) {
            (Some(a), Some(b)) => b.saturating_sub(a) > stall,
            _ => true,
        })
        .count();
    let pairs = deltas.len() - 1;
    if merged * 2 <= pairs {
        return None;
    }
    let mut reads: Vec<usize> = deltas.iter().map(|&i| rec.events[i].read).collect();
    reads.dedup();
    Some(Finding::new(
        FindingId::TokensCollapsed,
        evidence!(
            "{} of {} content deltas arrived in the same read as the one before ({} reads carried all {})",
            merged as u64,
            pairs as u64,
            Fact::Varies(reads.len().to_string()),
            deltas.len() as u64
        ),
    ))
}

pub fn truncation(rec: &Recording, p: Protocol, tokens: Option<&Tokens>) -> Option<Finding> {
    let t = tokens?;
    if t.terminal_seen != Some(false)
        || rec.end != End::Complete
        || !(200..300).contains(&rec.status)
    {
        return None;
    }
    let last = rec.last_read_at().unwrap_or(rec.headers_at);
    let silent = rec.ended_at.saturating_sub(last);
    let caps = caps_near(rec.ended_at, silent, rec.decoded_bytes > 0);
    let mut e = evidence!(
        "the stream ended cleanly at {} without `{}`, after {} content deltas ({} after the last byte)",
        rec.ended_at,
        Fact::Text(p.terminal_name().into()),
        t.deltas as u64,
        silent
    );
    e = if caps.is_empty() {
        e.then(evidence!("; no known cap is near that time"))
    } else {
        e.then(evidence!(
            "; near a known cap: {}",
            Fact::Text(caps.join("; "))
        ))
    };
    Some(Finding::new(FindingId::StreamTruncated, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testing;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `rec`'s token timing read as `p`, without send instants.
    fn measured(rec: &Recording, p: Protocol) -> Option<Tokens> {
        measure(rec, p, &kinds(rec, p), &[])
    }

    fn chat(content: &str) -> String {
        format!(r#"{{"choices":[{{"index":0,"delta":{{"content":"{content}"}}}}]}}"#)
    }

    /// A recording of `events` (type, data, arrival ms, read index).
    fn rec(events: &[(&str, String, u64, usize)]) -> Recording {
        testing::with_events(
            events
                .iter()
                .map(|(t, d, at, read)| (t.to_string(), d.clone(), ms(*at), *read))
                .collect(),
        )
    }

    fn event(event_type: &'static str, data: &str) -> Event {
        Event {
            event_type: event_type.into(),
            data: data.into(),
            id: String::new(),
            truncated: 0,
        }
    }

    #[test]
    fn a_reader_without_a_recording_recognises_the_stream_from_its_head_or_first_events() {
        // Recognised from the first chunk's shape: a role chunk is neither delta nor terminal.
        let mut r = TokenReader::new(Protocol::Auto, |_| None);
        assert_eq!(r.protocol(), None);
        let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#;
        assert_eq!(r.read(&event("message", role)), Kind::Other);
        assert_eq!(r.protocol(), Some(Protocol::OpenaiChat));
        assert_eq!(r.read(&event("message", &chat("Hi"))), Kind::Delta);
        assert_eq!(r.read(&event("message", "[DONE]")), Kind::Terminal);
        // From the head: the AI SDK's header decides before any event.
        let r = TokenReader::new(Protocol::Auto, |h| {
            (h == "x-vercel-ai-ui-message-stream").then_some("v1")
        });
        assert_eq!(r.protocol(), Some(Protocol::AiSdk));
        // Asked for, it is not second-guessed: an EventSource stream has no deltas.
        let mut r = TokenReader::new(Protocol::Eventsource, |_| None);
        assert_eq!(r.read(&event("message", &chat("Hi"))), Kind::Other);
        // Events that name no protocol: after DETECT_EVENTS of them it is no token stream, and a
        // chunk that comes later is not taken for one.
        let mut r = TokenReader::new(Protocol::Auto, |_| None);
        for _ in 0..DETECT_EVENTS {
            assert_eq!(r.read(&event("message", "tick")), Kind::Other);
        }
        assert_eq!(r.protocol(), Some(Protocol::Eventsource));
        assert_eq!(r.read(&event("message", &chat("Hi"))), Kind::Other);
    }

    #[test]
    fn a_done_event_alone_does_not_make_a_token_stream() {
        // An EventSource stream of JSON events that ends with `data: [DONE]` (the Express examples).
        let r = rec(&[
            ("message", r#"{"token": 1}"#.into(), 300, 0),
            ("message", "[DONE]".into(), 600, 1),
        ]);
        assert_eq!(detect(&r, Protocol::Auto).protocol, Protocol::Eventsource);
    }

    #[test]
    fn each_protocol_is_recognised_and_says_from_what() {
        let r = rec(&[("message", chat("Hi"), 300, 0)]);
        assert_eq!(detect(&r, Protocol::Auto).protocol, Protocol::OpenaiChat);
        let r = rec(&[(
            "response.output_text.delta",
            r#"{"type":"response.output_text.delta","delta":"Hi"}"#.into(),
            300,
            0,
        )]);
        assert_eq!(
            detect(&r, Protocol::Auto).protocol,
            Protocol::OpenaiResponses
        );
        let r = rec(&[("message_start", "{}".into(), 300, 0)]);
        assert_eq!(detect(&r, Protocol::Auto).protocol, Protocol::Anthropic);
        let r = rec(&[(
            "message",
            r#"{"type":"text-delta","id":"0","delta":"Hi"}"#.into(),
            300,
            0,
        )]);
        let d = detect(&r, Protocol::Auto);
        assert_eq!(d.protocol, Protocol::AiSdk);
        assert!(d.from.contains("text-delta"), "{}", d.from);
        let r = rec(&[("message", "1 tick".into(), 300, 0)]);
        assert_eq!(detect(&r, Protocol::Auto).protocol, Protocol::Eventsource);
        let forced = detect(&r, Protocol::Anthropic);
        assert_eq!(forced.protocol, Protocol::Anthropic);
        assert!(forced.from.contains("--protocol"));
    }

    #[test]
    fn token_timing_counts_content_deltas_only() {
        let r = rec(&[
            (
                "message",
                r#"{"choices":[{"delta":{"role":"assistant"}}]}"#.into(),
                250,
                0,
            ),
            ("message", chat("Hel"), 600, 1),
            ("message", chat("lo"), 630, 2),
            ("message", chat(" wor"), 670, 3),
            ("message", chat("ld"), 670, 3),
            (
                "message",
                r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#.into(),
                700,
                4,
            ),
            ("message", "[DONE]".into(), 700, 4),
        ]);
        let t = measured(&r, Protocol::OpenaiChat).unwrap();
        assert_eq!(t.deltas, 4);
        assert_eq!(t.ttft, Some(ms(600)));
        let itl = t.itl.unwrap();
        assert_eq!((itl.p50, itl.max), (ms(30), ms(40)));
        assert_eq!(t.same_read_share, Some(1.0 / 3.0));
        assert_eq!(t.terminal_seen, Some(true));
        assert!(truncation(&r, Protocol::OpenaiChat, Some(&t)).is_none());
        assert!(measured(&r, Protocol::Eventsource).is_none());
    }

    #[test]
    fn a_clean_end_without_the_terminal_event_is_truncation_near_a_known_cap() {
        let mut r = rec(&[
            ("message", chat("a"), 600, 0),
            ("message", chat("b"), 14_990, 1),
        ]);
        r.ended_at = ms(15_000);
        let t = measured(&r, Protocol::OpenaiChat).unwrap();
        assert_eq!(t.terminal_seen, Some(false));
        let f = truncation(&r, Protocol::OpenaiChat, Some(&t)).expect("truncated");
        let text = f.evidence.to_string();
        assert!(text.contains("without `[DONE]`"), "{text}");
        assert!(text.contains("15 s route timeout"), "{text}");
        // Ended by the probe's own limit, or reset, it is not the path's clean close.
        r.end = End::Limit {
            limit: crate::probe::LimitKind::Duration,
        };
        assert!(truncation(&r, Protocol::OpenaiChat, Some(&t)).is_none());
        // When events were counted but not kept, the last one is not known: no claim.
        r.end = End::Complete;
        r.events_dropped = 3;
        let t = measured(&r, Protocol::OpenaiChat).unwrap();
        assert_eq!(t.terminal_seen, None);
        assert!(truncation(&r, Protocol::OpenaiChat, Some(&t)).is_none());
    }

    #[test]
    fn what_the_path_added_is_against_the_origins_send_instants() {
        let r = rec(&[
            ("message", chat("a"), 900, 0),
            ("message", chat("b"), 900, 0),
            ("message", chat("c"), 900, 0),
        ]);
        let sent = [300u64, 330, 360];
        let timed: Vec<EventTiming> = sent
            .iter()
            .enumerate()
            .map(|(i, &s)| EventTiming {
                seq: i as u64 + 1,
                arrival: ms(900),
                expected: Some(ms(s)),
                latency: Some(ms(900 - s)),
                held: true,
                burst: 0,
            })
            .collect();
        let t = measure(
            &r,
            Protocol::OpenaiChat,
            &kinds(&r, Protocol::OpenaiChat),
            &timed,
        )
        .unwrap();
        assert_eq!(t.added_ttft, Some(600_000));
        assert_eq!(t.added_itl, Some(-30_000), "the gaps collapsed");
        assert_eq!(t.same_read_share, Some(1.0));
    }

    /// 12 chat deltas sent 30 ms apart from 300 ms, arriving as `arrive(i)` = (ms, read).
    fn judged(
        arrive: impl Fn(u64) -> (u64, usize),
        tweak: impl FnOnce(&mut Recording),
    ) -> super::super::Verdict {
        let mut sends: Vec<u64> = (0..12).map(|i| 300 + 30 * i).collect();
        let mut events: Vec<(&str, String, u64, usize)> = (0..12)
            .map(|i| {
                let (at, read) = arrive(i);
                ("message", chat("tok"), at, read)
            })
            .collect();
        // `[DONE]` 30 ms after the last delta, in a read of its own.
        let (last, read) = arrive(11);
        events.push(("message", "[DONE]".into(), last + 30, read + 1));
        sends.push(660);
        let mut r = rec(&events);
        r.protocol = Protocol::OpenaiChat;
        tweak(&mut r);
        let s = super::super::SendInstants {
            sends: sends.iter().map(|&m| ms(m)).collect(),
            headers_sent: Some(ms(0)),
            ended: Some(ms(700)),
            gap: Some(ms(30)),
            planned: Some(13),
            by_position: false,
        };
        super::super::judge(&r, super::super::Reference::Sends(&s))
    }

    fn ids(v: &super::super::Verdict) -> Vec<&'static str> {
        v.findings.iter().map(|f| f.id().as_str()).collect()
    }

    #[test]
    fn a_token_held_longer_than_the_token_hold_is_held_whatever_the_gap() {
        use super::super::Delivery;
        // Every delta 150 ms late, each in its own read: tokens 30 ms apart.
        let late = |i: u64| (450 + 30 * i, i as usize);
        let v = judged(late, |_| {});
        assert_eq!(v.threshold, ms(100));
        assert!(v.delivery != Delivery::Streamed, "{:?}", v.delivery);
        let v = judged(late, |r| r.token_hold = ms(200));
        assert_eq!(v.threshold, ms(200));
        assert_eq!(v.delivery, Delivery::Streamed, "{:?}", ids(&v));
    }

    #[test]
    fn most_deltas_in_one_read_with_the_one_before_is_batched_unless_a_stall_explains_it() {
        use super::super::Delivery;
        // Four reads of three deltas, each read 60 ms after its first delta was sent: no delta held
        // 100 ms, but 8 of 11 came in the same read as the one before.
        let clumped = |i: u64| (300 + 90 * (i / 3) + 60, (i / 3) as usize);
        let v = judged(clumped, |_| {});
        assert_eq!(v.delivery, Delivery::Batched, "{:?}", ids(&v));
        assert!(ids(&v).contains(&"tokens-collapsed"), "{:?}", ids(&v));
        // A probe that could not run for 40 ms may itself have put deltas 30 ms apart in one read.
        let v = judged(clumped, |r| {
            r.pressure = Some(crate::pressure::Pressure {
                timer_late_p99: ms(10),
                timer_late_max: ms(40),
                stalls: 1,
                cpu_waiting: None,
            })
        });
        assert_eq!(v.delivery, Delivery::Streamed, "{:?}", ids(&v));
        // One delta per read is not collapsed.
        let v = judged(|i| (300 + 30 * i + 5, i as usize), |_| {});
        assert_eq!(v.delivery, Delivery::Streamed, "{:?}", ids(&v));
    }

    #[test]
    fn a_terminal_event_cut_by_the_recording_and_sent_without_its_name_still_ends_the_stream() {
        // LiteLLM's Responses stream: no `event:` lines, a `response.completed` carrying the whole
        // answer (cut where the recording keeps no more), then `data: [DONE]`.
        let delta = r#"{"type":"response.output_text.delta","delta":"Hi"}"#;
        let mut r = rec(&[
            ("message", delta.into(), 300, 0),
            ("message", delta.into(), 330, 1),
            (
                "message",
                r#"{"type":"response.completed","response":{"output":[{"content":"Hi Hi"#.into(),
                360,
                2,
            ),
            ("message", "[DONE]".into(), 361, 2),
        ]);
        r.events[2].event.truncated = 40_000;
        let d = detect(&r, Protocol::Auto);
        assert_eq!(d.protocol, Protocol::OpenaiResponses);
        let t = measured(&r, d.protocol).unwrap();
        assert_eq!(t.deltas, 2);
        assert_eq!(t.terminal_seen, Some(true), "{t:?}");
        assert!(truncation(&r, d.protocol, Some(&t)).is_none());
        assert_eq!(leading_type(r#" { "type" : "x.y", "a"#), Some("x.y".into()));
        assert_eq!(leading_type(r#"{"id":1,"type":"x"#), None);
    }

    #[test]
    fn beyond_the_kept_events_the_last_one_counted_says_whether_the_stream_ended() {
        let mut r = rec(&[
            ("message", chat("a"), 300, 0),
            ("message", chat("b"), 330, 1),
        ]);
        r.events_dropped = 500;
        let last = |data: &str| crate::sse::Event {
            event_type: "message".into(),
            data: data.into(),
            id: String::new(),
            truncated: 0,
        };
        r.last_dropped = Some(last("[DONE]"));
        let t = measured(&r, Protocol::OpenaiChat).unwrap();
        assert_eq!(t.terminal_seen, Some(true));
        r.last_dropped = Some(last(&chat("z")));
        let t = measured(&r, Protocol::OpenaiChat).unwrap();
        assert_eq!(t.terminal_seen, None, "not known: no truncation is claimed");
        assert!(truncation(&r, Protocol::OpenaiChat, Some(&t)).is_none());
    }
}
