//! The browser probe, judged: the page's record of one `EventSource` becomes a recording judged like
//! ssegate's own, the two verdicts are compared (`agrees`), and seven `EventSource`s on one URL tell
//! whether the browser's per-host connection limit keeps the seventh from opening.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::evidence::evidence;
use super::{Delivery, Fact, Finding, FindingId, Reference, Verdict, judge};
use crate::browser::PageStream;
use crate::probe::{Arrival, BodyFraming, End, LimitKind, Read, Recording, ser_ms};
use crate::sse::{Event, FramingFacts};

/// HTTP/1.1 connections a browser opens per host (Chromium, Firefox and Safari alike).
pub const CONNECTIONS_PER_HOST: usize = 6;
/// `EventSource`s the connection-limit measurement opens.
pub const LIMIT_STREAMS: usize = CONNECTIONS_PER_HOST + 1;

/// One event as the page dispatched it.
#[derive(Debug, Clone, Serialize)]
pub struct PageArrival {
    #[serde(rename = "at_ms", serialize_with = "ser_ms")]
    pub at: Duration,
    pub id: String,
}

/// The browser's view of the stream, beside ssegate's.
#[derive(Debug, Clone, Serialize)]
pub struct BrowserVerdict {
    /// `Chromium 156.0.8078.114`.
    pub program: String,
    /// How the page read the stream: `EventSource`, or `fetch()` for a request it cannot make.
    pub reader: crate::browser::Reader,
    pub delivery: Delivery,
    /// When `open` fired, from the page creating the `EventSource`.
    #[serde(rename = "opened_ms", serialize_with = "super::ser_opt_ms")]
    pub opened: Option<Duration>,
    pub events: Vec<PageArrival>,
    /// When the stream ended or failed on the page (`error`), if it did while watched.
    #[serde(rename = "ended_ms", serialize_with = "super::ser_opt_ms")]
    pub ended: Option<Duration>,
    /// Whether the browser gave up for good (it will not reconnect).
    pub gave_up: bool,
    /// The same delivery and the same number of events as ssegate's probe.
    pub agrees: bool,
    /// One sentence: what agreed, or what did not.
    pub agreement: String,
    /// Seven `EventSource`s on the same URL, when measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_limit: Option<ConnectionLimit>,
    pub findings: Vec<Finding>,
}

/// What seven `EventSource`s on one URL did.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionLimit {
    /// How many were opened.
    pub streams: usize,
    /// How many opened before any of them ended.
    pub opened_at_once: usize,
    /// When the last one opened, if it did.
    #[serde(rename = "last_opened_ms", serialize_with = "super::ser_opt_ms")]
    pub last_opened: Option<Duration>,
    /// Six streams opened at once and stayed open, so the limit could show (streams that fail, end at
    /// once, or have their headers held to the end cannot show it).
    pub measured: bool,
    /// The last one waited for a slot: it opened only after another stream ended, or never.
    pub limited: bool,
    /// The HTTP version the streams used (as ssegate's probe negotiated it).
    pub version: String,
}

/// The page's record of one stream as a recording (one read per distinct arrival instant), so that it
/// is judged by the same rules as ssegate's own; `watched` is how long the page was watched.
pub fn page_recording(page: &PageStream, url: &str, watched: Duration) -> Recording {
    let start = Instant::now();
    let mut reads: Vec<Read> = Vec::new();
    let mut events = Vec::with_capacity(page.events.len());
    for e in &page.events {
        if reads.last().is_none_or(|r| r.at != e.at) {
            reads.push(Read {
                at: e.at,
                wire: 0,
                decoded: 0,
            });
        }
        events.push(Arrival {
            at: e.at,
            read: reads.len() - 1,
            event: Event {
                event_type: e.event_type.clone().into(),
                data: String::new(),
                id: e.id.clone(),
                truncated: 0,
            },
        });
    }
    let (end, ended_at) = match page.failed {
        Some(t) => (End::Complete, t),
        None => (
            End::Limit {
                limit: LimitKind::Duration,
            },
            watched,
        ),
    };
    Recording {
        start,
        method: "GET".into(),
        url: crate::secrets::redact_url(url),
        remote_addr: None,
        request_headers: Vec::new(),
        status: if page.opened.is_some() { 200 } else { 0 },
        version: String::new(),
        tls: None,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        headers_at: page.opened.unwrap_or(ended_at),
        reads,
        reads_dropped: 0,
        events,
        events_dropped: page.events_dropped,
        events_bytes: 0,
        comments: Vec::new(),
        retry: None,
        framing: BodyFraming::Chunked,
        coding: "identity".into(),
        wire_bytes: 0,
        decoded_bytes: 0,
        end,
        ended_at,
        facts: FramingFacts::default(),
        body: Vec::new(),
        body_truncated: false,
        later_members: None,
        pressure: None,
        protocol: Default::default(),
        token_hold: crate::probe::TOKEN_HOLD,
        capture: None,
        last_dropped: None,
        pieces: Default::default(),
    }
}

/// Judge the page's stream against `reference` and compare it with ssegate's verdict of the same URL.
pub fn judge_browser(
    program: &str,
    page: &PageStream,
    page_rec: &Recording,
    reference: Reference<'_>,
    ours: (&Recording, &Verdict),
) -> BrowserVerdict {
    let v = judge(page_rec, reference);
    // The page dispatches no event that is not terminated, and nothing at all once it has given up.
    let (rec, verdict) = ours;
    let n_page = page.events.len() as u64 + page.events_dropped;
    let n_ours = rec.events.len() as u64 + rec.events_dropped;
    let delivery = if page.opened.is_none() && page.events.is_empty() {
        Delivery::NoEvents
    } else {
        v.delivery
    };
    let same_delivery = delivery == verdict.delivery;
    // The counts are comparable only when both saw the whole stream: each stopped listening on its own
    // clock (a duration or event limit), so on an endless stream they cover different windows.
    let whole = page.failed.is_some()
        && matches!(
            rec.end,
            crate::probe::End::Complete | crate::probe::End::Aborted { .. }
        );
    let same_count = !whole || n_page == n_ours;
    let agrees = same_delivery && same_count;
    let counted = if whole {
        format!("{n_page} events")
    } else {
        format!(
            "{n_page} events in its own window (counts not compared: the stream outlived a limit)"
        )
    };
    let agreement = match (same_delivery, same_count) {
        (true, true) => format!("the browser agrees: `{delivery}`, {counted}"),
        (true, false) => format!(
            "the browser disagrees: both `{delivery}`, but it dispatched {n_page} events where ssegate parsed {n_ours}"
        ),
        (false, _) => format!(
            "the browser disagrees: it saw `{delivery}` ({n_page} events) where ssegate measured `{}` ({n_ours} events)",
            verdict.delivery
        ),
    };
    let mut findings = Vec::new();
    if !agrees {
        findings.push(Finding::new(
            FindingId::BrowserDisagrees,
            Fact::Text(agreement.clone()),
        ));
    }
    BrowserVerdict {
        program: program.to_string(),
        reader: crate::browser::Reader::EventSource,
        delivery,
        opened: page.opened,
        events: page
            .events
            .iter()
            .map(|e| PageArrival {
                at: e.at,
                id: e.id.clone(),
            })
            .collect(),
        ended: page.failed,
        gave_up: page.gave_up,
        agrees,
        agreement,
        connection_limit: None,
        findings,
    }
}

/// Judge seven `EventSource`s on one URL: the seventh is limited when it opened only after one of the
/// others had ended (it waited for a connection), or never while watched.
pub fn judge_connection_limit(
    streams: &[PageStream],
    version: &str,
) -> (ConnectionLimit, Option<Finding>) {
    let first_end = streams.iter().filter_map(|s| s.failed).min();
    let opened_at_once = streams
        .iter()
        .filter(|s| s.opened.is_some_and(|o| first_end.is_none_or(|e| o < e)))
        .count();
    let last = streams.last();
    let last_opened = last.and_then(|s| s.opened);
    let measured = streams.len() >= LIMIT_STREAMS && opened_at_once >= CONNECTIONS_PER_HOST;
    let limited = measured && opened_at_once < streams.len();
    let limit = ConnectionLimit {
        streams: streams.len(),
        opened_at_once,
        measured,
        last_opened,
        limited,
        version: version.to_string(),
    };
    // Evidence without timings: it is what the case reports show.
    let finding = limited.then(|| {
        Finding::new(
            FindingId::BrowserConnectionLimit,
            evidence!(
                "{} of {} EventSources on one {} URL opened at once; the last {}",
                opened_at_once,
                streams.len(),
                version,
                if last_opened.is_some() {
                    "opened only after another stream ended"
                } else {
                    "never opened while watched"
                }
            ),
        )
    });
    (limit, finding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::PageEvent;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn page(opened: Option<u64>, arrivals: &[u64], failed: Option<u64>) -> PageStream {
        PageStream {
            opened: opened.map(ms),
            events: arrivals
                .iter()
                .enumerate()
                .map(|(i, &a)| PageEvent {
                    at: ms(a),
                    id: (i + 1).to_string(),
                    event_type: "message".into(),
                    data_len: 4,
                })
                .collect(),
            events_dropped: 0,
            failed: failed.map(ms),
            gave_up: false,
        }
    }

    #[test]
    fn a_live_page_stream_is_streamed_and_a_lump_at_the_end_is_held() {
        let live = page(Some(5), &[400, 800, 1200, 1600, 2000, 2400], Some(2405));
        let rec = page_recording(&live, "http://127.0.0.1:1/", ms(10_000));
        assert_eq!(judge(&rec, Reference::None).delivery, Delivery::Streamed);
        let lump = page(
            Some(2400),
            &[2401, 2401, 2401, 2401, 2401, 2401],
            Some(2402),
        );
        let rec = page_recording(&lump, "http://127.0.0.1:1/", ms(10_000));
        assert_eq!(
            judge(&rec, Reference::None).delivery,
            Delivery::HeldUntilEnd
        );
    }

    #[test]
    fn agreement_needs_the_same_delivery_and_the_same_events() {
        let live = page(Some(5), &[400, 800, 1200, 1600, 2000, 2400], Some(2405));
        let rec = page_recording(&live, "http://127.0.0.1:1/", ms(10_000));
        let ours = judge(&rec, Reference::None);
        let b = judge_browser("Chromium", &live, &rec, Reference::None, (&rec, &ours));
        assert!(b.agrees, "{}", b.agreement);
        assert!(b.findings.is_empty());
        let fewer = page(Some(5), &[400, 800, 1200, 1600, 2000], Some(2405));
        let frec = page_recording(&fewer, "http://127.0.0.1:1/", ms(10_000));
        let b = judge_browser("Chromium", &fewer, &frec, Reference::None, (&rec, &ours));
        assert!(!b.agrees);
        assert_eq!(b.findings[0].id(), FindingId::BrowserDisagrees);
        // A page still open at its limit: the counts cover another window and are not compared.
        let open = page(Some(5), &[400, 800, 1200, 1600, 2000], None);
        let orec = page_recording(&open, "http://127.0.0.1:1/", ms(2200));
        let b = judge_browser("Chromium", &open, &orec, Reference::None, (&rec, &ours));
        assert!(b.agrees, "{}", b.agreement);
    }

    #[test]
    fn the_seventh_stream_waiting_for_an_end_is_the_connection_limit() {
        let mut seven: Vec<PageStream> =
            (0..6).map(|_| page(Some(5), &[400], Some(2400))).collect();
        seven.push(page(Some(2410), &[2800], None));
        let (l, f) = judge_connection_limit(&seven, "HTTP/1.1");
        assert!(l.limited && l.measured);
        assert_eq!(l.opened_at_once, 6);
        assert!(f.unwrap().evidence.contains("after another stream ended"));
        // Seven error responses, or headers held to each stream's end: nothing shows the limit.
        let failed: Vec<PageStream> = (0..7).map(|_| page(None, &[], Some(10))).collect();
        let (l, f) = judge_connection_limit(&failed, "HTTP/1.1");
        assert!(!l.measured && !l.limited && f.is_none());
        let held: Vec<PageStream> = (0..7)
            .map(|i| page(Some(2400 * (i / 6 + 1)), &[2400], Some(2400 * (i / 6 + 1))))
            .collect();
        assert!(!judge_connection_limit(&held, "HTTP/2.0").0.limited);
        seven[6] = page(Some(6), &[400], Some(2400));
        let (l, f) = judge_connection_limit(&seven, "HTTP/2.0");
        assert!(!l.limited);
        assert_eq!(l.opened_at_once, 7);
        assert!(f.is_none());
        seven[6] = page(None, &[], None);
        assert!(judge_connection_limit(&seven, "HTTP/1.1").0.limited);
    }
}
