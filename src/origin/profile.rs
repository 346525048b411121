//! Fixture origin profiles: what the built-in origin sends, and when.
//!
//! A profile is a YAML file under `fixtures/` (`fixtures/plain.yaml` is the profile `plain`). Cases may
//! override parts of it with a [`ProfilePatch`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::FileError;
use crate::protocol::Protocol;

/// The directory that holds the built-in profiles, inside the source tree.
pub fn builtin_dir() -> PathBuf {
    crate::assets::dir(crate::assets::Kind::Fixtures)
}

/// Line ending the origin writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineEnding {
    #[default]
    Lf,
    Crlf,
    Cr,
}

impl LineEnding {
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::Lf => "\n",
            LineEnding::Crlf => "\r\n",
            LineEnding::Cr => "\r",
        }
    }
}

/// How the response is delimited on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wire {
    /// HTTP/1.1, chunked (or `Content-Length` with `content_length`): what every modern server does.
    #[default]
    Chunked,
    /// HTTP/1.1 with `Connection: close`, neither a length nor chunking: the body ends when the
    /// connection closes (a hand-written server, or a framework writing to the raw socket).
    CloseDelimited,
    /// An `HTTP/1.0` status line, close-delimited (unless `content_length`): an old server, or an
    /// upstream that answers in the version the proxy asked with.
    Http10,
}

impl Wire {
    pub fn as_str(self) -> &'static str {
        match self {
            Wire::Chunked => "chunked",
            Wire::CloseDelimited => "close-delimited",
            Wire::Http10 => "http10",
        }
    }
}

/// The event schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// How many events.
    #[serde(default = "default_count")]
    pub count: u32,
    /// Milliseconds between two events.
    #[serde(default = "default_gap")]
    pub gap_ms: u64,
    /// Milliseconds between the headers and the first event (default: one gap).
    #[serde(default)]
    pub first_ms: Option<u64>,
    /// Bytes of each event's `data` value (at least the sequence number's length); of a token
    /// stream's text per delta.
    #[serde(default = "default_size")]
    pub size: usize,
    /// Move each event up to this many ms earlier or later, the same way on every run (a model's
    /// uneven token cadence); at most half the gap, so the order never changes.
    #[serde(default)]
    pub jitter_ms: u64,
}

fn default_count() -> u32 {
    6
}
fn default_gap() -> u64 {
    400
}
fn default_size() -> usize {
    16
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            count: default_count(),
            gap_ms: default_gap(),
            first_ms: None,
            size: default_size(),
            jitter_ms: 0,
        }
    }
}

impl Schedule {
    pub fn first(&self) -> Duration {
        Duration::from_millis(self.first_ms.unwrap_or(self.gap_ms))
    }
    pub fn gap(&self) -> Duration {
        Duration::from_millis(self.gap_ms)
    }

    /// When event `seq` (1-based) is due, from the start of the body: on the schedule, moved by its
    /// jitter (a fixed pseudo-random amount per sequence number).
    pub fn at(&self, seq: u32) -> Duration {
        let on_time = self.first() + self.gap() * seq.saturating_sub(1);
        if self.jitter_ms == 0 {
            return on_time;
        }
        // A multiplicative hash of the sequence number: the same cadence on every run.
        let h = seq.wrapping_mul(2_654_435_761) >> 16;
        let span = 2 * self.jitter_ms + 1;
        let moved = (u64::from(h) % span) as i64 - self.jitter_ms as i64;
        if moved >= 0 {
            on_time + Duration::from_millis(moved as u64)
        } else {
            on_time.saturating_sub(Duration::from_millis(moved.unsigned_abs()))
        }
    }
}

/// How each event is framed on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Framing {
    #[serde(default)]
    pub line_ending: LineEnding,
    /// Whether each event ends with a blank line. `false` is the classic `res.write('data: x\n')` bug.
    #[serde(default = "yes")]
    pub terminator: bool,
    /// A UTF-8 byte order mark before the first byte.
    #[serde(default)]
    pub bom: bool,
}

fn yes() -> bool {
    true
}

impl Default for Framing {
    fn default() -> Self {
        Framing {
            line_ending: LineEnding::Lf,
            terminator: true,
            bom: false,
        }
    }
}

/// A complete origin profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// One paragraph: what this origin models.
    pub description: String,
    #[serde(default = "default_status")]
    pub status: u16,
    /// Response headers, set verbatim (names are case-insensitive).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub events: Schedule,
    /// Bytes of a padding comment written right after the headers (0 = none).
    #[serde(default)]
    pub padding: usize,
    /// A `:` heartbeat comment every N ms while the stream is open.
    #[serde(default)]
    pub heartbeat_ms: Option<u64>,
    /// Wait this long before sending the response headers.
    #[serde(default)]
    pub delay_headers_ms: u64,
    /// Send the headers only together with the first event (no early flush).
    #[serde(default)]
    pub headers_with_first_event: bool,
    #[serde(default)]
    pub framing: Framing,
    /// After this many events, end the response abruptly (no final chunk).
    #[serde(default)]
    pub abort_after: Option<u32>,
    /// Produce events on schedule but write them all only when the stream ends (an app-level buffer).
    #[serde(default)]
    pub hold_until_end: bool,
    /// Keep the stream open this long after the last event before ending it.
    #[serde(default)]
    pub linger_ms: u64,
    /// Set `Content-Length` to the exact body length (a buffered-body origin or a wrong header).
    #[serde(default)]
    pub content_length: bool,
    /// How the body is delimited: `chunked` (default), `close-delimited` or `http10`.
    #[serde(default)]
    pub wire: Wire,
    /// Give every event an `id:` (its sequence number; default true).
    #[serde(default = "default_true")]
    pub ids: bool,
    /// On a request with a numeric `Last-Event-ID: N`, continue after it: the events are numbered from
    /// N + 1 (default false: every request starts again at 1, as most servers do). Chunked wire only.
    #[serde(default)]
    pub resume: bool,
    /// A `retry: N` line right after the headers: how long a browser waits before it reconnects.
    #[serde(default)]
    pub retry_ms: Option<u64>,
    /// What the events are: numbered SSE events (absent, or `eventsource`), or an LLM token stream's
    /// chunks (`openai-chat`, `openai-responses`, `anthropic`, `ai-sdk`, `ndjson`): the protocol's
    /// opening events right after the headers, one content delta per scheduled event, then its
    /// closing events one gap after the last delta. Token streams carry no ids.
    #[serde(default)]
    pub format: Option<Protocol>,
    /// Whether a token stream ends with its terminal event (`[DONE]`, `message_stop`, …); `false`
    /// ends it cleanly without one, as a gateway's timeout does (default true).
    #[serde(default = "default_true")]
    pub terminal: bool,
    /// Serve a recorded stream (`ssegate probe URL --record FILE`) instead of the schedule: its status,
    /// its headers (the profile's `headers` added over them), and its body piece by piece at the
    /// offsets it arrived at. A path relative to the profile's directory.
    #[serde(default)]
    pub replay: Option<PathBuf>,
    /// The recording `replay` names, loaded.
    #[serde(skip)]
    pub replayed: Option<std::sync::Arc<super::replay::Replay>>,
    /// Serve MCP's Streamable HTTP transport (revision 2025-11-25) instead of a plain stream: a JSON-RPC
    /// `initialize` is answered in JSON with a new `Mcp-Session-Id`; every later request must carry a
    /// session the fixture issued (400 without, 404 for an unknown one); `tools/list` lists one tool,
    /// `slow_task`; a `tools/call` is answered with the schedule as an event stream: a progress
    /// notification per event (a log notification without a `progressToken`), the last event being
    /// the call's result. `GET` is 405 (no standalone stream), `DELETE` ends the session.
    #[serde(default)]
    pub mcp: bool,
    /// The `tools/call` this response answers (set per request by the fixture).
    #[serde(skip)]
    pub mcp_call: Option<McpCall>,
}

/// A `tools/call` request the MCP fixture answers: its JSON-RPC id and progress token, as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpCall {
    pub id: String,
    pub progress_token: Option<String>,
}

fn default_status() -> u16 {
    200
}

fn default_true() -> bool {
    true
}

/// Overrides a case applies on top of a profile. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub status: Option<u16>,
    /// Headers to add or replace.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Header names to remove.
    #[serde(default)]
    pub remove_headers: Vec<String>,
    pub events: Option<SchedulePatch>,
    pub padding: Option<usize>,
    pub heartbeat_ms: Option<u64>,
    pub delay_headers_ms: Option<u64>,
    pub headers_with_first_event: Option<bool>,
    pub framing: Option<Framing>,
    pub abort_after: Option<u32>,
    pub hold_until_end: Option<bool>,
    pub linger_ms: Option<u64>,
    pub content_length: Option<bool>,
    pub wire: Option<Wire>,
    pub ids: Option<bool>,
    pub resume: Option<bool>,
    pub retry_ms: Option<u64>,
    pub terminal: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulePatch {
    pub count: Option<u32>,
    pub gap_ms: Option<u64>,
    pub first_ms: Option<u64>,
    pub size: Option<usize>,
    pub jitter_ms: Option<u64>,
}

impl ProfilePatch {
    /// The keys this patch sets, in the file format's order (`events`, `headers`, …).
    pub fn changed_keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut add = |set: bool, key| {
            if set {
                keys.push(key);
            }
        };
        add(!self.headers.is_empty(), "headers");
        add(!self.remove_headers.is_empty(), "remove_headers");
        add(self.events.is_some(), "events");
        add(self.padding.is_some(), "padding");
        add(self.heartbeat_ms.is_some(), "heartbeat_ms");
        add(self.delay_headers_ms.is_some(), "delay_headers_ms");
        add(
            self.headers_with_first_event.is_some(),
            "headers_with_first_event",
        );
        add(self.framing.is_some(), "framing");
        add(self.abort_after.is_some(), "abort_after");
        add(self.hold_until_end.is_some(), "hold_until_end");
        add(self.linger_ms.is_some(), "linger_ms");
        add(self.content_length.is_some(), "content_length");
        add(self.wire.is_some(), "wire");
        add(self.ids.is_some(), "ids");
        add(self.resume.is_some(), "resume");
        add(self.retry_ms.is_some(), "retry_ms");
        add(self.terminal.is_some(), "terminal");
        add(self.status.is_some(), "status");
        keys
    }

    /// Apply the overrides to `base`.
    pub fn apply(&self, base: &Profile) -> Profile {
        let mut p = base.clone();
        if let Some(s) = self.status {
            p.status = s;
        }
        for name in &self.remove_headers {
            p.headers.retain(|k, _| !k.eq_ignore_ascii_case(name));
        }
        for (k, v) in &self.headers {
            p.headers
                .retain(|existing, _| !existing.eq_ignore_ascii_case(k));
            p.headers.insert(k.clone(), v.clone());
        }
        if let Some(e) = &self.events {
            if let Some(v) = e.count {
                p.events.count = v;
            }
            if let Some(v) = e.gap_ms {
                p.events.gap_ms = v;
            }
            if let Some(v) = e.first_ms {
                p.events.first_ms = Some(v);
            }
            if let Some(v) = e.size {
                p.events.size = v;
            }
            if let Some(v) = e.jitter_ms {
                p.events.jitter_ms = v;
            }
        }
        macro_rules! set {
            ($($f:ident),*) => {$( if let Some(v) = &self.$f { p.$f = v.clone().into(); } )*};
        }
        set!(
            padding,
            delay_headers_ms,
            headers_with_first_event,
            framing,
            hold_until_end,
            linger_ms,
            content_length,
            wire,
            ids,
            resume,
            terminal
        );
        if self.heartbeat_ms.is_some() {
            p.heartbeat_ms = self.heartbeat_ms;
        }
        if self.abort_after.is_some() {
            p.abort_after = self.abort_after;
        }
        if self.retry_ms.is_some() {
            p.retry_ms = self.retry_ms;
        }
        p
    }
}

impl Profile {
    /// Load a profile by name from a directory of `NAME.yaml` files.
    pub fn load(dir: &Path, name: &str) -> Result<Profile, FileError> {
        let path = dir.join(format!("{name}.yaml"));
        if !path.is_file() {
            let known = list(dir);
            return Err(FileError::UnknownName {
                what: "fixture profile",
                name: name.to_string(),
                help: crate::text::name_help(name, &known),
            });
        }
        let src = crate::yaml::read_file(&path)?;
        let mut p: Profile = crate::yaml::parse_yaml(&path, &src)?;
        if let Some(file) = p.replay.clone() {
            let (line, column) = crate::yaml::key_location(&src, &["replay"]);
            let recording =
                super::replay::StreamRecording::load(&dir.join(&file)).map_err(|e| {
                    FileError::at(
                        &path,
                        &src,
                        line,
                        column,
                        crate::error::error_chain(&e),
                        None,
                    )
                })?;
            p.use_recording(&recording);
        }
        p.validate()
            .map_err(|m| FileError::at(&path, &src, 1, 1, m, None))?;
        Ok(p)
    }

    /// Serve `recording` instead of the schedule: its status and head delay, its headers under the
    /// profile's own.
    pub fn use_recording(&mut self, recording: &super::replay::StreamRecording) {
        let r = recording.replay();
        self.status = r.status;
        let own = std::mem::take(&mut self.headers);
        for (k, v) in &r.headers {
            self.headers
                .retain(|existing, _| !existing.eq_ignore_ascii_case(k));
            self.headers.insert(k.clone(), v.clone());
        }
        for (k, v) in own {
            self.headers
                .retain(|existing, _| !existing.eq_ignore_ascii_case(&k));
            self.headers.insert(k, v);
        }
        self.delay_headers_ms = r.head_delay.as_millis() as u64;
        self.replayed = Some(std::sync::Arc::new(r));
    }

    /// The spacing the verdict judges against: the schedule's gap, or a replayed stream's median.
    pub fn reference_gap(&self) -> Duration {
        self.replayed
            .as_ref()
            .map_or_else(|| self.events.gap(), |r| r.median_gap())
    }

    /// How long the response takes, head delay included, from the request.
    pub fn span(&self) -> Duration {
        if let Some(r) = &self.replayed {
            return r.head_delay + r.end;
        }
        Duration::from_millis(
            self.delay_headers_ms
                + self.events.first_ms.unwrap_or(self.events.gap_ms)
                + self.events.gap_ms * u64::from(self.events.count.saturating_sub(1))
                + self.events.jitter_ms
                + self.linger_ms,
        ) + if self.token_format().is_some() {
            self.events.gap()
        } else {
            Duration::ZERO
        }
    }

    /// Check the ranges that keep a fixture bounded in time and memory.
    pub fn validate(&self) -> Result<(), String> {
        const MAX_MS: u64 = 600_000;
        let e = &self.events;
        if e.count > 10_000 {
            return Err(format!("events.count {} is over 10000", e.count));
        }
        for (name, v) in [
            ("events.gap_ms", Some(e.gap_ms)),
            ("events.first_ms", e.first_ms),
            ("linger_ms", Some(self.linger_ms)),
            ("delay_headers_ms", Some(self.delay_headers_ms)),
            ("retry_ms", self.retry_ms),
        ] {
            if v.is_some_and(|v| v > MAX_MS) {
                return Err(format!("{name} is over {MAX_MS} ms"));
            }
        }
        if e.jitter_ms > e.gap_ms / 2 {
            return Err(format!(
                "events.jitter_ms {} is over half of events.gap_ms {} (events would change order)",
                e.jitter_ms, e.gap_ms
            ));
        }
        match self.format {
            Some(Protocol::Auto) => {
                return Err(
                    "format `auto` names no stream: name one (`openai-chat`, `anthropic`, …)"
                        .into(),
                );
            }
            Some(f) if f != Protocol::Eventsource && self.resume => {
                return Err(format!(
                    "resume needs event ids, and a `{f}` stream carries none"
                ));
            }
            _ => {}
        }
        if e.size > 1 << 20 {
            return Err(format!("events.size {} is over 1 MiB", e.size));
        }
        if self.padding > 16 << 20 {
            return Err(format!("padding {} is over 16 MiB", self.padding));
        }
        // The fixture builds held or length-delimited bodies whole: keep every body within bounds.
        // A token stream's delta wraps its text in about 200 bytes of JSON.
        let wrap = if self.token_format().is_some() {
            256
        } else {
            0
        };
        let body = u64::from(e.count) * (e.size as u64 + wrap) + self.padding as u64;
        if body > MAX_BODY {
            return Err(format!(
                "the body would be {body} bytes (events.count × events.size + padding), over {} MiB",
                MAX_BODY >> 20
            ));
        }
        if self.resume && (self.wire != Wire::Chunked || self.content_length) {
            return Err(
                "resume works on the chunked wire without content_length (the ids change the body's length)"
                    .into(),
            );
        }
        if !(100..=999).contains(&self.status) {
            return Err(format!("status {} is not an HTTP status", self.status));
        }
        if let Some(hb) = self.heartbeat_ms {
            let span =
                e.first_ms.unwrap_or(e.gap_ms) + e.gap_ms * u64::from(e.count) + self.linger_ms;
            if hb < 10 || span / hb > 100_000 {
                return Err(format!(
                    "heartbeat_ms {hb} is below 10 ms or makes more than 100000 heartbeats"
                ));
            }
            if self.content_length {
                return Err(
                    "content_length needs a fixed body and cannot go with heartbeat_ms".into(),
                );
            }
        }
        if self.content_length && self.wire == Wire::CloseDelimited {
            return Err(
                "content_length cannot go with wire: close-delimited (the length would delimit the body)"
                    .into(),
            );
        }
        for (k, v) in &self.headers {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err() {
                return Err(format!("`{k}` is not a valid header name"));
            }
            if http::HeaderValue::from_str(v).is_err() {
                return Err(format!("the value of `{k}` is not a valid header value"));
            }
        }
        Ok(())
    }

    /// Load a built-in profile.
    pub fn builtin(name: &str) -> Result<Profile, FileError> {
        Profile::load(&builtin_dir(), name)
    }

    /// The `data` value of event `seq` (1-based).
    pub fn event_data(&self, seq: u32) -> String {
        let mut data = seq.to_string();
        if data.len() < self.events.size {
            data.push(' ');
            while data.len() < self.events.size {
                data.push('x');
            }
        }
        data
    }

    /// The token stream the events are, if they are one (`format`, not `eventsource`).
    pub fn token_format(&self) -> Option<Protocol> {
        self.format
            .filter(|f| !matches!(f, Protocol::Auto | Protocol::Eventsource))
    }

    /// One SSE block (or NDJSON line) of a token stream, framed as the profile says.
    fn block(&self, event: Option<&str>, data: &str) -> Vec<u8> {
        let nl = self.framing.line_ending.as_str();
        let mut s = String::with_capacity(data.len() + 32);
        if self.token_format() == Some(Protocol::Ndjson) {
            s.push_str(data);
            s.push_str(nl);
            return s.into_bytes();
        }
        if let Some(e) = event {
            s.push_str("event: ");
            s.push_str(e);
            s.push_str(nl);
        }
        s.push_str("data: ");
        s.push_str(data);
        s.push_str(nl);
        if self.framing.terminator {
            s.push_str(nl);
        }
        s.into_bytes()
    }

    /// A token stream's opening events, each its own block, sent right after the headers (the role
    /// chunk, `response.created`, `message_start`, the AI SDK's `start`); none for NDJSON.
    pub fn open_frames(&self) -> Vec<Vec<u8>> {
        let b = |e: Option<&str>, d: &str| self.block(e, d);
        match self.token_format() {
            Some(Protocol::OpenaiChat) => vec![b(
                None,
                &chat_chunk(r#"{"role":"assistant","content":""}"#, "null"),
            )],
            Some(Protocol::OpenaiResponses) => vec![
                b(
                    Some("response.created"),
                    r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_ssegate","object":"response","status":"in_progress","model":"ssegate-fixture","output":[]}}"#,
                ),
                b(
                    Some("response.output_item.added"),
                    r#"{"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_ssegate","type":"message","status":"in_progress","role":"assistant","content":[]}}"#,
                ),
            ],
            Some(Protocol::Anthropic) => vec![
                b(
                    Some("message_start"),
                    r#"{"type":"message_start","message":{"id":"msg_ssegate","type":"message","role":"assistant","model":"ssegate-fixture","content":[],"stop_reason":null,"usage":{"input_tokens":12,"output_tokens":1}}}"#,
                ),
                b(
                    Some("content_block_start"),
                    r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
                ),
                b(Some("ping"), r#"{"type":"ping"}"#),
            ],
            Some(Protocol::AiSdk) => vec![
                b(None, r#"{"type":"start"}"#),
                b(None, r#"{"type":"start-step"}"#),
                b(None, r#"{"type":"text-start","id":"0"}"#),
            ],
            _ => Vec::new(),
        }
    }

    /// A token stream's closing events, ending with its terminal event; none with `terminal: false`
    /// (a stream cut cleanly, as a gateway's timeout does).
    pub fn close_frames(&self) -> Vec<Vec<u8>> {
        if !self.terminal {
            return Vec::new();
        }
        let b = |e: Option<&str>, d: &str| self.block(e, d);
        let n = self.events.count;
        match self.token_format() {
            Some(Protocol::OpenaiChat) => {
                vec![b(None, &chat_chunk("{}", r#""stop""#)), b(None, "[DONE]")]
            }
            Some(Protocol::OpenaiResponses) => vec![b(
                Some("response.completed"),
                &format!(
                    r#"{{"type":"response.completed","sequence_number":{},"response":{{"id":"resp_ssegate","object":"response","status":"completed","model":"ssegate-fixture","usage":{{"input_tokens":12,"output_tokens":{n}}}}}}}"#,
                    u64::from(n) + 2
                ),
            )],
            Some(Protocol::Anthropic) => vec![
                b(
                    Some("content_block_stop"),
                    r#"{"type":"content_block_stop","index":0}"#,
                ),
                b(
                    Some("message_delta"),
                    &format!(
                        r#"{{"type":"message_delta","delta":{{"stop_reason":"end_turn","stop_sequence":null}},"usage":{{"output_tokens":{n}}}}}"#
                    ),
                ),
                b(Some("message_stop"), r#"{"type":"message_stop"}"#),
            ],
            Some(Protocol::AiSdk) => vec![
                b(None, r#"{"type":"text-end","id":"0"}"#),
                b(None, r#"{"type":"finish-step"}"#),
                b(None, r#"{"type":"finish"}"#),
                b(None, "[DONE]"),
            ],
            Some(Protocol::Ndjson) => vec![b(
                None,
                &format!(
                    r#"{{"model":"ssegate-fixture","created_at":"2026-01-01T00:00:00Z","message":{{"role":"assistant","content":""}},"done":true,"done_reason":"stop","eval_count":{n}}}"#
                ),
            )],
            _ => Vec::new(),
        }
    }

    /// How many events (blocks or lines) the origin sends in all: a token stream's opening and
    /// closing events too. Each gets its own send instant in the fixture's log.
    pub fn planned_events(&self) -> usize {
        if let Some(r) = &self.replayed {
            return r.events();
        }
        self.open_frames().len() + self.events.count as usize + self.close_frames().len()
    }

    /// The bytes of event `seq`, framed as the profile says: a numbered SSE event, or a token stream's
    /// content delta.
    pub fn event_bytes(&self, seq: u32) -> Vec<u8> {
        if let Some(call) = &self.mcp_call {
            return self.mcp_event(call, seq);
        }
        if let Some(f) = self.token_format() {
            return self.delta_bytes(f, seq);
        }
        let nl = self.framing.line_ending.as_str();
        let mut s = if self.ids {
            format!("id: {seq}{nl}data: {}{nl}", self.event_data(seq))
        } else {
            format!("data: {}{nl}", self.event_data(seq))
        };
        if self.framing.terminator {
            s.push_str(nl);
        }
        s.into_bytes()
    }

    /// Event `seq` of an MCP `tools/call` response: a progress notification (a log message without a
    /// progress token), and the call's result as the last event. Each carries `id: seq`.
    fn mcp_event(&self, call: &McpCall, seq: u32) -> Vec<u8> {
        let n = self.events.count;
        let text = serde_json::Value::String(self.event_data(seq)).to_string();
        let data = if seq >= n {
            format!(
                r#"{{"jsonrpc":"2.0","id":{},"result":{{"content":[{{"type":"text","text":"slow_task finished after {n} steps"}}],"isError":false}}}}"#,
                call.id
            )
        } else if let Some(token) = &call.progress_token {
            format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"progressToken":{token},"progress":{seq},"total":{n},"message":{text}}}}}"#
            )
        } else {
            format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"level":"info","logger":"slow_task","data":{text}}}}}"#
            )
        };
        let nl = self.framing.line_ending.as_str();
        let mut s = format!("event: message{nl}id: {seq}{nl}data: {data}{nl}");
        if self.framing.terminator {
            s.push_str(nl);
        }
        s.into_bytes()
    }

    /// Content delta `seq` of a token stream in format `f`.
    fn delta_bytes(&self, f: Protocol, seq: u32) -> Vec<u8> {
        // The text is the event's data (`N xxx…`), as JSON.
        let text = serde_json::Value::String(self.event_data(seq)).to_string();
        match f {
            Protocol::OpenaiChat => {
                self.block(None, &chat_chunk(&format!(r#"{{"content":{text}}}"#), "null"))
            }
            Protocol::OpenaiResponses => self.block(
                Some("response.output_text.delta"),
                &format!(
                    r#"{{"type":"response.output_text.delta","sequence_number":{},"item_id":"msg_ssegate","output_index":0,"content_index":0,"delta":{text}}}"#,
                    u64::from(seq) + 1
                ),
            ),
            Protocol::Anthropic => self.block(
                Some("content_block_delta"),
                &format!(
                    r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":{text}}}}}"#
                ),
            ),
            Protocol::AiSdk => self.block(
                None,
                &format!(r#"{{"type":"text-delta","id":"0","delta":{text}}}"#),
            ),
            _ => self.block(
                None,
                &format!(
                    r#"{{"model":"ssegate-fixture","created_at":"2026-01-01T00:00:00Z","message":{{"role":"assistant","content":{text}}},"done":false}}"#
                ),
            ),
        }
    }

    /// The padding comment, if any (exactly `padding` bytes including its line ending and blank line).
    pub fn padding_bytes(&self) -> Vec<u8> {
        if self.padding == 0 {
            return Vec::new();
        }
        let nl = self.framing.line_ending.as_str();
        let overhead = 1 + 2 * nl.len();
        let fill = self.padding.saturating_sub(overhead);
        let mut s = String::with_capacity(self.padding);
        s.push(':');
        s.extend(std::iter::repeat_n(' ', fill));
        s.push_str(nl);
        s.push_str(nl);
        s.into_bytes()
    }

    /// The `retry:` field, if any, as its own block (it dispatches no event).
    pub fn retry_bytes(&self) -> Vec<u8> {
        let nl = self.framing.line_ending.as_str();
        self.retry_ms
            .map(|ms| format!("retry: {ms}{nl}{nl}").into_bytes())
            .unwrap_or_default()
    }

    pub fn heartbeat_bytes(&self) -> Vec<u8> {
        let nl = self.framing.line_ending.as_str();
        format!(":{nl}{nl}").into_bytes()
    }

    /// How many events the origin sends before it ends (abort_after caps it).
    pub fn events_sent(&self) -> u32 {
        self.abort_after
            .map_or(self.events.count, |n| n.min(self.events.count))
    }

    /// Exact body length when no heartbeats are configured (needed for `content_length`).
    pub fn body_len(&self) -> Option<usize> {
        if let Some(r) = &self.replayed {
            return Some(r.body_len());
        }
        if self.heartbeat_ms.is_some() {
            return None;
        }
        let bom = if self.framing.bom { 3 } else { 0 };
        let events: usize = (1..=self.events_sent())
            .map(|s| self.event_bytes(s).len())
            .sum();
        let frames = |f: Vec<Vec<u8>>| f.iter().map(Vec::len).sum::<usize>();
        let close = if self.events_sent() < self.events.count {
            0
        } else {
            frames(self.close_frames())
        };
        Some(
            bom + self.padding_bytes().len()
                + self.retry_bytes().len()
                + frames(self.open_frames())
                + events
                + close,
        )
    }
}

/// An OpenAI Chat Completions chunk with this `delta` and `finish_reason` (both JSON).
fn chat_chunk(delta: &str, finish: &str) -> String {
    format!(
        r#"{{"id":"chatcmpl-ssegate","object":"chat.completion.chunk","created":1767225600,"model":"ssegate-fixture","choices":[{{"index":0,"delta":{delta},"finish_reason":{finish}}}]}}"#
    )
}

/// Names of the profiles in `dir`, sorted.
pub fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            (p.extension().is_some_and(|x| x == "yaml"))
                .then(|| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .flatten()
        })
        .collect();
    names.sort();
    names
}

/// Largest body a profile may describe: far more than any probe keeps (16 MiB by default), and small
/// enough that a fixture holding it whole stays within bounds.
pub const MAX_BODY: u64 = 32 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_over_the_bound_is_refused() {
        let mut p = Profile::builtin("plain").unwrap();
        p.events.count = 10_000;
        p.events.size = 1 << 20;
        let e = p.validate().unwrap_err();
        assert!(e.contains("over 32 MiB"), "{e}");
        p.events.size = 2048;
        p.validate().unwrap();
    }

    #[test]
    fn every_builtin_profile_loads() {
        let names = list(&builtin_dir());
        assert!(names.len() >= 8, "{names:?}");
        for n in names {
            Profile::builtin(&n).unwrap_or_else(|e| panic!("{n}: {e}"));
        }
    }

    #[test]
    fn event_bytes_have_the_requested_size_and_framing() {
        let mut p = Profile::builtin("plain").unwrap();
        p.events.size = 10;
        assert_eq!(p.event_data(3), "3 xxxxxxxx");
        assert_eq!(p.event_bytes(3), b"id: 3\ndata: 3 xxxxxxxx\n\n");
        p.framing.line_ending = LineEnding::Crlf;
        p.framing.terminator = false;
        assert_eq!(p.event_bytes(1), b"id: 1\r\ndata: 1 xxxxxxxx\r\n");
    }

    #[test]
    fn padding_is_exactly_the_requested_length_and_one_comment() {
        let mut p = Profile::builtin("plain").unwrap();
        p.padding = 4096;
        let b = p.padding_bytes();
        assert_eq!(b.len(), 4096);
        let (items, facts) = crate::sse::parse_all(&b);
        assert_eq!(items.len(), 1);
        assert_eq!(facts.comments, 1);
    }

    #[test]
    fn patch_overrides_and_removes_headers_case_insensitively() {
        let p = Profile::builtin("plain").unwrap();
        let patch = ProfilePatch {
            headers: [("cache-control".to_string(), "no-store".to_string())].into(),
            remove_headers: vec!["CONTENT-TYPE".into()],
            events: Some(SchedulePatch {
                count: Some(2),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            patch.changed_keys(),
            ["headers", "remove_headers", "events"]
        );
        assert!(ProfilePatch::default().changed_keys().is_empty());
        let q = patch.apply(&p);
        assert_eq!(q.events.count, 2);
        assert_eq!(q.headers.len(), 1);
        assert_eq!(q.headers["cache-control"], "no-store");
    }

    #[test]
    fn out_of_range_profiles_are_rejected() {
        let p = Profile::builtin("plain").unwrap();
        let bad = |f: &dyn Fn(&mut Profile)| {
            let mut q = p.clone();
            f(&mut q);
            q.validate().unwrap_err()
        };
        assert!(bad(&|q| q.events.gap_ms = u64::MAX).contains("gap_ms"));
        assert!(bad(&|q| q.events.count = 1_000_000).contains("count"));
        assert!(bad(&|q| q.heartbeat_ms = Some(1)).contains("heartbeat_ms"));
        assert!(bad(&|q| q.status = 42).contains("status"));
        assert!(
            bad(&|q| {
                q.headers.insert("bad name".into(), "x".into());
            })
            .contains("header name")
        );
        assert!(p.validate().is_ok());
    }

    #[test]
    fn body_len_matches_the_bytes() {
        let mut p = Profile::builtin("plain").unwrap();
        p.padding = 100;
        p.framing.bom = true;
        let expect = 3
            + 100
            + (1..=p.events.count)
                .map(|s| p.event_bytes(s).len())
                .sum::<usize>();
        assert_eq!(p.body_len(), Some(expect));
    }

    #[test]
    fn each_token_format_parses_as_its_protocol_with_one_send_per_event() {
        for name in [
            "llm-openai",
            "llm-responses",
            "llm-anthropic",
            "ai-sdk",
            "ndjson",
        ] {
            let p = Profile::builtin(name).unwrap();
            let f = p.token_format().unwrap();
            let mut body = p.open_frames().concat();
            for seq in 1..=p.events.count {
                body.extend(p.event_bytes(seq));
            }
            body.extend(p.close_frames().concat());
            assert_eq!(Some(body.len()), p.body_len(), "{name}");
            let mut parser = if f == Protocol::Ndjson {
                crate::sse::Parser::ndjson(1 << 20)
            } else {
                crate::sse::Parser::new()
            };
            let mut items = Vec::new();
            parser.feed(&body, &mut items);
            parser.finish(&mut items);
            assert_eq!(items.len(), p.planned_events(), "{name}");
            assert!(parser.facts().unterminated.is_none(), "{name}");
            assert_eq!(parser.facts().invalid_json_lines, 0, "{name}");
            for item in items {
                let crate::sse::Item::Event(e) = item else {
                    panic!("{name}: not an event")
                };
                assert!(e.id.is_empty(), "{name}: token streams carry no ids");
                if e.data != "[DONE]" {
                    serde_json::from_str::<serde_json::Value>(&e.data)
                        .unwrap_or_else(|err| panic!("{name}: {err}: {}", e.data));
                }
            }
        }
    }

    #[test]
    fn a_truncated_token_stream_has_no_closing_events_and_jitter_keeps_order() {
        let p = Profile::builtin("llm-truncated").unwrap();
        assert!(p.close_frames().is_empty());
        assert!(!p.open_frames().is_empty());
        let at: Vec<Duration> = (1..=p.events.count).map(|s| p.events.at(s)).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");
        assert!(
            at.windows(2).any(|w| w[1] - w[0] != p.events.gap()),
            "jittered"
        );
        assert!(at.iter().enumerate().all(|(i, t)| {
            t.abs_diff(p.events.first() + p.events.gap() * i as u32)
                <= Duration::from_millis(p.events.jitter_ms)
        }));
        let mut q = p.clone();
        q.events.jitter_ms = q.events.gap_ms;
        assert!(q.validate().unwrap_err().contains("jitter_ms"));
        q.events.jitter_ms = 0;
        q.resume = true;
        assert!(q.validate().unwrap_err().contains("resume"));
    }
}
