//! Stream recordings (`ssegate probe URL --record FILE`) and their replay by the fixture
//! (`ssegate fixture --replay FILE`, a profile's `replay: FILE`).
//!
//! A recording keeps what a client needs to see the same stream again: the response's status and
//! end-to-end headers, and the decoded body as the probe read it, piece by piece, each with its arrival
//! offset from the request. Replayed, the head goes out when it arrived and each piece when it arrived
//! (measured from the head), so a real model's cadence — its time to the first token, its bursts, a
//! reasoning model's long pause — goes through every chain. The fixture logs one send instant per event
//! (or NDJSON line) each piece completes, so a replayed stream is judged against its send instants like
//! any fixture stream.
//!
//! Bounded on both sides: a recording keeps at most [`MAX_BYTES`] of body and [`MAX_PIECES`] pieces
//! (the rest is dropped and `truncated` set), and a file to replay is refused beyond those bounds or
//! [`MAX_SPAN`]. Secrets never reach the file: its headers are the recording's redacted ones, its URL is
//! redacted, and its text passes through the same scrubber as every other output.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::protocol::Protocol;
use crate::sse::{Item, Parser};

/// The format's version, written as `ssegate_recording`.
pub const VERSION: u32 = 1;
/// Most body bytes a recording keeps, and a replay accepts.
pub use crate::probe::CAPTURE_BYTES as MAX_BYTES;
/// Most pieces (reads) a recording keeps, and a replay accepts.
pub use crate::probe::CAPTURE_PIECES as MAX_PIECES;
/// Longest stream a replay accepts, head to end.
pub const MAX_SPAN: Duration = Duration::from_secs(600);

/// Response headers a replay never sends again: how the body was framed or coded on the recorded
/// connection (the fixture frames and the recording is decoded), and what changes per response.
const NOT_REPLAYED: &[&str] = &[
    "connection",
    "content-encoding",
    "content-length",
    "date",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// One stream as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamRecording {
    /// Always [`VERSION`].
    pub ssegate_recording: u32,
    /// The request's method and (redacted) URL: where it was recorded from.
    pub method: String,
    pub url: String,
    /// How its events are read (the protocol recognised or asked for when it was recorded).
    pub protocol: Protocol,
    pub status: u16,
    /// End-to-end response headers, secrets redacted.
    pub headers: Vec<(String, String)>,
    /// When the head arrived, from the request.
    pub headers_at_ms: f64,
    /// The decoded body, one piece per read.
    pub pieces: Vec<Piece>,
    /// When the stream ended, from the request.
    pub ended_at_ms: f64,
    /// How it ended: `complete` (a clean end), `aborted`, or `limit` (the probe stopped listening).
    pub end: String,
    /// Whether body beyond the recording's bounds was dropped.
    #[serde(default)]
    pub truncated: bool,
}

/// Body bytes that arrived in one read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Piece {
    /// Arrival, from the request.
    pub at_ms: f64,
    pub text: String,
}

/// Failures to read a recording.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("failed to read the recording {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse the recording {path}: {message}")]
    Parse { path: String, message: String },
    #[error("failed to replay the recording {path}: {message}")]
    Invalid { path: String, message: String },
}

/// A recording made ready to serve: its pieces as offsets from the head, and how many events each
/// completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// How long after the request the head went out.
    pub head_delay: Duration,
    /// Each piece: offset from the head, its bytes, the events (or lines) it completes.
    pub pieces: Vec<(Duration, Vec<u8>, usize)>,
    /// Offset from the head at which the stream ends.
    pub end: Duration,
    /// Whether the recorded stream ended abruptly (replayed as an abrupt end).
    pub aborted: bool,
}

fn ms(x: f64) -> Duration {
    Duration::from_secs_f64((x.max(0.0)) / 1000.0)
}

impl StreamRecording {
    /// The recording of `rec` (whose probe kept its pieces: `ProbeRequest::capture`), read as
    /// `protocol`. `None` when nothing was captured.
    pub fn of(rec: &crate::probe::Recording, protocol: Protocol) -> Option<StreamRecording> {
        let capture = rec.capture.as_ref()?;
        let at = |d: Duration| (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
        Some(StreamRecording {
            ssegate_recording: VERSION,
            method: rec.method.clone(),
            url: rec.url.clone(),
            protocol,
            status: rec.status,
            headers: rec
                .headers
                .iter()
                .filter(|(k, _)| !NOT_REPLAYED.contains(&k.to_ascii_lowercase().as_str()))
                .cloned()
                .collect(),
            headers_at_ms: at(rec.headers_at),
            pieces: capture
                .pieces
                .iter()
                .map(|(t, text)| Piece {
                    at_ms: at(*t),
                    text: text.clone(),
                })
                .collect(),
            ended_at_ms: at(rec.ended_at),
            end: match rec.end {
                crate::probe::End::Complete => "complete",
                crate::probe::End::Limit { .. } => "limit",
                _ => "aborted",
            }
            .into(),
            truncated: capture.truncated,
        })
    }

    /// As JSON, every registered secret scrubbed (the headers are redacted already).
    pub fn to_json(&self) -> String {
        let json = serde_json::to_string_pretty(self).unwrap_or_default();
        crate::secrets::scrub(&json).into_owned() + "\n"
    }

    /// Load and check a recording file.
    pub fn load(path: &Path) -> Result<StreamRecording, ReplayError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| ReplayError::Read {
            path: shown.clone(),
            source,
        })?;
        // JSON escapes at most multiply the body by six; anything larger is not a recording of ours.
        if meta.len() > (MAX_BYTES as u64) * 6 + (1 << 20) {
            return Err(ReplayError::Invalid {
                path: shown,
                message: format!(
                    "the file is {} bytes, more than a recording holds",
                    meta.len()
                ),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Read {
            path: shown.clone(),
            source,
        })?;
        let r: StreamRecording = serde_json::from_str(&text).map_err(|e| ReplayError::Parse {
            path: shown.clone(),
            message: format!("line {} column {}: {e}", e.line(), e.column()),
        })?;
        r.check().map_err(|message| ReplayError::Invalid {
            path: shown,
            message,
        })?;
        Ok(r)
    }

    /// The bounds and shape a replay needs.
    fn check(&self) -> Result<(), String> {
        if self.ssegate_recording != VERSION {
            return Err(format!(
                "`ssegate_recording` is {}, this ssegate reads version {VERSION}",
                self.ssegate_recording
            ));
        }
        if !(100..=999).contains(&self.status) {
            return Err(format!("status {} is not an HTTP status", self.status));
        }
        for (k, v) in &self.headers {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err()
                || http::HeaderValue::from_str(v).is_err()
            {
                return Err(format!("header `{k}` is not a valid header"));
            }
        }
        if self.pieces.len() > MAX_PIECES {
            return Err(format!(
                "{} pieces, more than {MAX_PIECES}",
                self.pieces.len()
            ));
        }
        let bytes: usize = self.pieces.iter().map(|p| p.text.len()).sum();
        if bytes > MAX_BYTES {
            return Err(format!("{bytes} body bytes, more than {MAX_BYTES}"));
        }
        let mut last = self.headers_at_ms;
        for (i, p) in self.pieces.iter().enumerate() {
            if !p.at_ms.is_finite() || p.at_ms < last {
                return Err(format!(
                    "piece {} arrives at {} ms, before the one before it ({last} ms)",
                    i + 1,
                    p.at_ms
                ));
            }
            last = p.at_ms;
        }
        if !self.ended_at_ms.is_finite() || self.ended_at_ms < last {
            return Err(format!(
                "`ended_at_ms` {} is before the last piece ({last} ms)",
                self.ended_at_ms
            ));
        }
        if !self.headers_at_ms.is_finite()
            || self.headers_at_ms < 0.0
            || ms(self.ended_at_ms) > MAX_SPAN
        {
            return Err(format!(
                "the stream must end within {} s of the request",
                MAX_SPAN.as_secs()
            ));
        }
        Ok(())
    }

    /// The recording made ready to serve.
    pub fn replay(&self) -> Replay {
        let head = ms(self.headers_at_ms);
        let content_type = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map_or("", |(_, v)| v.as_str());
        let mut parser = if self.protocol.reads_lines(content_type) {
            Parser::ndjson(1 << 20)
        } else {
            Parser::new()
        };
        let mut items = Vec::new();
        let pieces = self
            .pieces
            .iter()
            .map(|p| {
                parser.feed(p.text.as_bytes(), &mut items);
                let events = items
                    .drain(..)
                    .filter(|i| matches!(i, Item::Event(_)))
                    .count();
                (
                    ms(p.at_ms).saturating_sub(head),
                    p.text.clone().into_bytes(),
                    events,
                )
            })
            .collect();
        Replay {
            status: self.status,
            headers: self.headers.clone(),
            head_delay: head,
            pieces,
            end: ms(self.ended_at_ms).saturating_sub(head),
            aborted: self.end == "aborted",
        }
    }
}

impl Replay {
    /// Events (or NDJSON lines) the replayed body dispatches.
    pub fn events(&self) -> usize {
        self.pieces.iter().map(|p| p.2).sum()
    }

    /// The median time between two pieces that complete events: the stream's own spacing.
    pub fn median_gap(&self) -> Duration {
        let at: Vec<Duration> = self
            .pieces
            .iter()
            .filter(|p| p.2 > 0)
            .map(|p| p.0)
            .collect();
        let mut gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort();
        gaps.get(gaps.len() / 2)
            .copied()
            .unwrap_or(Duration::from_millis(400))
    }

    /// The body's bytes whole.
    pub fn body_len(&self) -> usize {
        self.pieces.iter().map(|p| p.1.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StreamRecording {
        StreamRecording {
            ssegate_recording: VERSION,
            method: "POST".into(),
            url: "http://127.0.0.1:1/v1/chat/completions".into(),
            protocol: Protocol::OpenaiChat,
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            headers_at_ms: 5.0,
            pieces: vec![
                Piece {
                    at_ms: 605.0,
                    text: "data: {\"a\":1}\n\ndata: {\"a\":2}\n\n".into(),
                },
                Piece {
                    at_ms: 640.0,
                    text: "data: [DO".into(),
                },
                Piece {
                    at_ms: 700.0,
                    text: "NE]\n\n".into(),
                },
            ],
            ended_at_ms: 705.0,
            end: "complete".into(),
            truncated: false,
        }
    }

    #[test]
    fn a_replay_keeps_each_piece_at_its_offset_from_the_head_with_the_events_it_completes() {
        let r = sample().replay();
        assert_eq!(r.head_delay, Duration::from_millis(5));
        let at: Vec<(u128, usize)> = r.pieces.iter().map(|p| (p.0.as_millis(), p.2)).collect();
        assert_eq!(at, [(600, 2), (635, 0), (695, 1)]);
        assert_eq!(r.events(), 3);
        assert_eq!(r.end, Duration::from_millis(700));
        assert!(!r.aborted);
    }

    #[test]
    fn a_recording_out_of_order_or_over_its_bounds_is_refused_with_the_reason() {
        let mut r = sample();
        r.pieces[1].at_ms = 1.0;
        assert!(
            r.check().unwrap_err().contains("piece 2"),
            "{:?}",
            r.check()
        );
        let mut r = sample();
        r.ended_at_ms = 700_000.0;
        assert!(r.check().unwrap_err().contains("within 600 s"));
        let mut r = sample();
        r.ssegate_recording = 9;
        assert!(r.check().unwrap_err().contains("version 1"));
        let mut r = sample();
        r.headers.push(("bad name".into(), "x".into()));
        assert!(r.check().unwrap_err().contains("bad name"));
        assert!(sample().check().is_ok());
    }

    #[test]
    fn a_file_that_is_not_a_recording_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        std::fs::write(&p, "{\"ssegate_recording\": 1,\n \"bogus\": 2}").unwrap();
        let e = StreamRecording::load(&p).unwrap_err().to_string();
        assert!(e.contains("failed to parse the recording"), "{e}");
        assert!(e.contains("line 2"), "{e}");
    }
}
