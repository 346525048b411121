//! The stream's lifecycle across a chain, judged: what happens when the client reconnects, and when it
//! goes away.
//!
//! `check` measures two phases per chain after its main probe, through the same running chain and tap
//! (`scenario`): a **reconnect** (the client waits as a browser would, honouring `retry:`, and asks again
//! with `Last-Event-ID`), and a **disconnect** (a client that leaves after its first event). This module
//! only judges the facts those phases gathered; it starts nothing.

use std::time::Duration;

use serde::Serialize;

use super::evidence::evidence;
use super::{Finding, FindingId};
use crate::probe::{Recording, ser_ms};

/// How long a browser waits before it reconnects when the stream sets no `retry:` (Chromium's default).
pub const BROWSER_RETRY: Duration = Duration::from_secs(3);
/// The longest the measuring client waits before it reconnects; a longer `retry:` (or a browser's
/// default) is reported, and the wait is this. What a hop or the origin does with the reconnect does not
/// depend on the wait, and every chain of `check` would spend it idle (issue: `check` in about the
/// time the stream takes).
pub const RETRY_WAIT_CAP: Duration = Duration::from_secs(1);
/// How soon after the client left its hop must close the origin's request to count as propagated. On
/// loopback a proxy that notices the close acts in milliseconds; a second leaves room for a loaded
/// machine.
pub const DISCONNECT_BOUND: Duration = Duration::from_secs(1);
/// Writes of the origin after the client left within which a hop that notices a closed client only
/// when it writes must have closed the origin's request (measured: Apache, h2o, HAProxy, Traffic Server
/// close at the 2nd, Varnish at the 3rd).
pub const DISCONNECT_WRITES: usize = 3;
/// The longest the disconnect phase watches after the client left.
pub const DISCONNECT_WATCH: Duration = Duration::from_secs(5);

/// A unit enum's kebab-case name, as files and reports write it (`not-propagated`).
pub fn kebab<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Both phases of one chain, and the findings they raised.
#[derive(Debug, Clone, Serialize)]
pub struct Lifecycle {
    pub reconnect: Reconnect,
    pub disconnect: Disconnect,
    /// The origin's longest silence against the chain's idle limit (`check`, when a hop has one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Heartbeat>,
    pub findings: Vec<Finding>,
}

/// The origin's silences against the shortest idle limit of a chain.
#[derive(Debug, Clone, Serialize)]
pub struct Heartbeat {
    /// The longest time without a byte on the direct stream (headers to first byte, between reads, and
    /// after the last byte while the stream was still open).
    #[serde(rename = "longest_silence_ms", serialize_with = "ser_ms")]
    pub longest_silence: Duration,
    /// The shortest idle limit of the chain's hops.
    #[serde(rename = "idle_limit_ms", serialize_with = "ser_ms")]
    pub idle_limit: Duration,
    /// The setting behind it (`nginx `proxy_read_timeout` (60 s by default)`).
    pub setting: String,
    /// The heartbeat interval that keeps the stream alive through it: half the limit.
    #[serde(rename = "heartbeat_every_ms", serialize_with = "ser_ms")]
    pub heartbeat_every: Duration,
    /// The longest silence is under half the limit (None: not judged, the stream was still open when
    /// the direct probe stopped, before half the limit had passed).
    pub adequate: Option<bool>,
    pub summary: String,
}

/// The longest silence of a stream: from the headers to the first byte, between reads, and from the last
/// byte to the end of the recording when the stream was still open then (a cut or an end is not a silence).
pub fn longest_silence(rec: &Recording) -> Duration {
    let mut last = rec.headers_at;
    let mut longest = Duration::ZERO;
    for r in &rec.reads {
        longest = longest.max(r.at.saturating_sub(last));
        last = r.at;
    }
    if matches!(rec.end, crate::probe::End::Limit { .. }) {
        longest = longest.max(rec.ended_at.saturating_sub(last));
    }
    longest
}

/// Judge the origin's silences (on `direct`, the stream without the chain) against the chain's shortest
/// idle limit: adequate when the longest is under half of it.
pub fn judge_heartbeat(
    direct: &Recording,
    idle: (Duration, String),
) -> (Heartbeat, Option<Finding>) {
    let h = crate::text::human_duration;
    let (limit, setting) = idle;
    let longest = longest_silence(direct);
    let every = limit / 2;
    let still_open = matches!(direct.end, crate::probe::End::Limit { .. });
    let adequate = if longest >= every {
        Some(false)
    } else if still_open && direct.ended_at < every {
        // A longer silence after the probe stopped listening would not have shown.
        None
    } else {
        Some(true)
    };
    let heartbeats = if direct.comments.is_empty() {
        "no heartbeat comment seen".to_string()
    } else {
        let n = direct.comments.len();
        format!("{n} comment{} seen", if n == 1 { "" } else { "s" })
    };
    let summary = format!(
        "longest silence {} ({heartbeats}); {setting} cuts after {}: {}",
        h(longest),
        h(limit),
        match adequate {
            Some(true) => "enough".to_string(),
            Some(false) => format!("send a heartbeat at least every {}", h(every)),
            None => format!(
                "not judged: the direct stream was watched for {} only, less than half of that",
                h(direct.ended_at)
            ),
        }
    );
    let finding = (adequate == Some(false)).then(|| {
        Finding::new(
            FindingId::HeartbeatTooSparse,
            evidence!(
                "silences of {} on the direct stream; {} cuts after {}: send a `:` comment at least every {}",
                longest,
                setting.as_str(),
                limit,
                every
            ),
        )
    });
    (
        Heartbeat {
            longest_silence: longest,
            idle_limit: limit,
            setting,
            heartbeat_every: every,
            adequate,
            summary,
        },
        finding,
    )
}

/// What the reconnect phase found, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReconnectOutcome {
    /// The origin got `Last-Event-ID` and sent only later events.
    Resumed,
    /// The origin got `Last-Event-ID` and sent events the client already had.
    Replayed,
    /// A hop dropped `Last-Event-ID` on its way to the origin.
    NotForwarded,
    /// No event had an id: the client had nothing to resume from.
    NoIds,
    /// The first response was 204 (or the reconnect's was): a browser stops reconnecting, as meant.
    Stopped,
    /// The first response was not a valid stream (status, type): a browser fails for good, no reconnect.
    GaveUp,
    /// The reconnect answered, but no event came while the client listened (or no event had an id to
    /// compare): resuming could not be judged.
    Undetermined,
    /// A page reads this stream with `fetch()` (a POST, or an LLM token stream), which does not
    /// reconnect by itself: there is no `EventSource` reconnect to measure.
    NotApplicable,
}

/// The reconnect phase of one chain.
#[derive(Debug, Clone, Serialize)]
pub struct Reconnect {
    pub outcome: ReconnectOutcome,
    /// `retry:` as the first stream set it.
    pub retry_ms: Option<u64>,
    /// How long the client waited before reconnecting.
    #[serde(rename = "waited_ms", serialize_with = "ser_ms")]
    pub waited: Duration,
    /// The `Last-Event-ID` the client sent (the last id it received).
    pub last_event_id: Option<String>,
    /// Whether a request of the reconnect reached the origin (false: a hop answered by itself).
    pub reached_origin: bool,
    /// The `Last-Event-ID` that request carried (None: none, or no request reached the origin).
    pub origin_received: Option<String>,
    /// Status of the reconnect's response (0: none came).
    pub status: u16,
    /// The id of the first event after reconnecting.
    pub first_id_after: Option<String>,
    /// One sentence for reports.
    pub summary: String,
}

/// The facts the reconnect phase gathered.
pub struct ReconnectFacts<'a> {
    /// The chain's main recording (the stream the client reconnects after).
    pub first: &'a Recording,
    /// The wait before reconnecting.
    pub waited: Duration,
    /// The reconnect's recording, when the client reconnected.
    pub again: Option<&'a Recording>,
    /// What reached the origin of the reconnect's request (see [`Reconnect::origin_received`]).
    pub origin_received: Option<Option<String>>,
}

/// The delay a browser waits before reconnecting after `rec`, and whether ssegate waits less than that
/// (a `retry:` above [`RETRY_WAIT_CAP`]).
pub fn reconnect_delay(rec: &Recording) -> Duration {
    rec.retry
        .map_or(BROWSER_RETRY, Duration::from_millis)
        .min(RETRY_WAIT_CAP)
}

/// Whether a browser reconnects after this response at all: None when it does, else why not (and
/// whether that is the origin saying stop, a 204).
pub fn stops_reconnecting(rec: &Recording) -> Option<(ReconnectOutcome, String)> {
    if rec.status == 204 {
        return Some((
            ReconnectOutcome::Stopped,
            "the response was 204 No Content: a browser stops reconnecting, as the origin meant"
                .into(),
        ));
    }
    if rec.status == 0 {
        return Some((
            ReconnectOutcome::Undetermined,
            "no response headers came, so there was no stream to reconnect after".into(),
        ));
    }
    if (300..400).contains(&rec.status) {
        return Some((
            ReconnectOutcome::Undetermined,
            format!(
                "the response was a {} redirect: EventSource follows it, ssegate's client does not, so reconnecting is not measured",
                rec.status
            ),
        ));
    }
    if rec.status != 200 {
        return Some((
            ReconnectOutcome::GaveUp,
            format!(
                "the response was {}: a browser fails the EventSource for good and never reconnects",
                rec.status
            ),
        ));
    }
    let ct = rec.header("content-type").unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("text/event-stream") {
        return Some((
            ReconnectOutcome::GaveUp,
            format!(
                "the response's Content-Type was `{ct}`: a browser fails the EventSource for good and never reconnects"
            ),
        ));
    }
    None
}

/// The last id a browser would send as `Last-Event-ID`: the id field of the last event that set one.
pub fn last_event_id(rec: &Recording) -> Option<String> {
    // The id buffer persists across events, so the last event carries it.
    rec.events
        .last()
        .map(|a| a.event.id.clone())
        .filter(|id| !id.is_empty())
}

/// Why a client of this stream does not reconnect by itself, when it does not: a page reads a POST, or
/// an LLM token stream, with `fetch()`, not `EventSource`.
pub fn fetch_reader(method: &str, protocol: crate::protocol::Protocol) -> Option<String> {
    if !method.eq_ignore_ascii_case("GET") {
        Some(format!(
            "the request is a {}: a page reads it with fetch(), which does not reconnect by itself (EventSource only sends GET)",
            method.to_ascii_uppercase()
        ))
    } else if protocol.has_tokens() {
        Some(format!(
            "an `{protocol}` token stream: a page reads it with fetch(), which does not reconnect by itself"
        ))
    } else {
        None
    }
}

/// The reconnect phase of a stream no client reconnects by itself ([`fetch_reader`]).
pub fn not_applicable(first: &Recording, why: String) -> Reconnect {
    Reconnect {
        outcome: ReconnectOutcome::NotApplicable,
        retry_ms: first.retry,
        waited: Duration::ZERO,
        last_event_id: None,
        reached_origin: false,
        origin_received: None,
        status: 0,
        first_id_after: None,
        summary: why,
    }
}

/// Judge the reconnect phase.
pub fn judge_reconnect(f: &ReconnectFacts<'_>) -> (Reconnect, Vec<Finding>) {
    let last = last_event_id(f.first);
    let mut r = Reconnect {
        outcome: ReconnectOutcome::Undetermined,
        retry_ms: f.first.retry,
        waited: f.waited,
        last_event_id: last.clone(),
        reached_origin: f.origin_received.is_some(),
        origin_received: f.origin_received.clone().flatten(),
        status: f.again.map_or(0, |a| a.status),
        first_id_after: f
            .again
            .and_then(|a| a.events.first())
            .map(|e| e.event.id.clone())
            .filter(|id| !id.is_empty()),
        summary: String::new(),
    };
    let mut findings = Vec::new();
    let wait = waited_label(f);
    if let Some((outcome, why)) = stops_reconnecting(f.first) {
        r.outcome = outcome;
        r.summary = why;
        return (r, findings);
    }
    if f.first.events.is_empty() {
        r.summary = "no event arrived before the stream ended: nothing to resume from".into();
        return (r, findings);
    }
    let Some(again) = f.again else {
        r.summary = format!("{wait}; the client did not reconnect");
        return (r, findings);
    };
    let Some(last) = last else {
        r.outcome = ReconnectOutcome::NoIds;
        r.summary = format!(
            "no event had an id, so the client reconnected ({wait}) without `Last-Event-ID`"
        );
        findings.push(Finding::new(
            FindingId::NoEventIds,
            evidence!("{} events, none with an `id:`", f.first.events.len()),
        ));
        return (r, findings);
    };
    if again.status == 204 {
        r.outcome = ReconnectOutcome::Stopped;
        r.summary = format!(
            "{wait}, sent `Last-Event-ID: {last}`; the reconnect was answered 204: a browser stops reconnecting"
        );
        return (r, findings);
    }
    if let Some((outcome, why)) = stops_reconnecting(again) {
        r.outcome = outcome;
        r.summary = format!("{wait}, sent `Last-Event-ID: {last}`; on reconnect {why}");
        if outcome == ReconnectOutcome::GaveUp && again.status != 200 {
            findings.push(Finding::new(
                FindingId::ErrorStatus,
                evidence!("{} on reconnect with Last-Event-ID", again.status),
            ));
        }
        return (r, findings);
    }
    // What the origin got instead of the id the client sent, if the header was lost or changed.
    let lost = match &f.origin_received {
        Some(None) => Some("none".to_string()),
        Some(Some(got)) if got.trim() != last => Some(format!("`{got}`")),
        _ => None,
    };
    if let Some(got) = lost {
        r.outcome = ReconnectOutcome::NotForwarded;
        r.summary =
            format!("{wait}, sent `Last-Event-ID: {last}`; the origin's request carried {got}");
        findings.push(Finding::new(
            FindingId::LastEventIdNotForwarded,
            evidence!(
                "sent `Last-Event-ID: {}`, the origin's request carried {}",
                last.as_str(),
                got
            ),
        ));
        return (r, findings);
    }
    if f.origin_received.is_none() {
        // A cache or a hop answered: what came back says nothing about the origin.
        r.summary = format!(
            "{wait}, sent `Last-Event-ID: {last}`; no request reached the origin (a hop answered the reconnect by itself)"
        );
        return (r, findings);
    }
    findings.extend(judge_resume(&mut r, f, &last, &wait));
    (r, findings)
}

/// How long the client waited before reconnecting, and why.
fn waited_label(f: &ReconnectFacts<'_>) -> String {
    format!(
        "waited {}{}",
        crate::text::human_duration(f.waited),
        match f.first.retry {
            Some(ms) if Duration::from_millis(ms) > RETRY_WAIT_CAP => format!(
                " (the stream asked for `retry: {ms}`; ssegate waits at most {})",
                crate::text::human_duration(RETRY_WAIT_CAP)
            ),
            Some(ms) => format!(" as the stream's `retry: {ms}` asks"),
            None => format!(
                " (no `retry:`: a browser waits {}, ssegate at most {})",
                crate::text::human_duration(BROWSER_RETRY),
                crate::text::human_duration(RETRY_WAIT_CAP)
            ),
        }
    )
}

/// The origin received `Last-Event-ID: last`: did it resume after it, or replay what the client had?
fn judge_resume(r: &mut Reconnect, f: &ReconnectFacts<'_>, last: &str, wait: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let reached = "the origin received it";
    let Some(next) = r.first_id_after.clone() else {
        r.summary = format!(
            "{wait}, sent `Last-Event-ID: {last}` ({reached}); no event with an id came while the client listened, so resuming is not judged"
        );
        return findings;
    };
    let seen: Vec<&str> = f
        .first
        .events
        .iter()
        .map(|a| a.event.id.as_str())
        .filter(|id| !id.is_empty())
        .collect();
    let replayed = match (next.parse::<u64>(), last.parse::<u64>()) {
        (Ok(n), Ok(l)) => n <= l,
        _ => seen.contains(&next.as_str()),
    };
    if replayed {
        r.outcome = ReconnectOutcome::Replayed;
        let from_start = seen.first().is_some_and(|s| *s == next);
        r.summary = format!(
            "{wait}, sent `Last-Event-ID: {last}` ({reached}); the first event after it was id `{next}`{}",
            if from_start {
                ", the stream's first: it started over"
            } else {
                ", one the client already had"
            }
        );
        findings.push(Finding::new(
            FindingId::ResumeReplaysFromStart,
            evidence!(
                "after `Last-Event-ID: {}` the next event was id `{}`",
                last,
                next.as_str()
            ),
        ));
    } else {
        r.outcome = ReconnectOutcome::Resumed;
        r.summary = format!(
            "{wait}, sent `Last-Event-ID: {last}` ({reached}); it resumed with id `{next}`"
        );
    }
    findings
}

/// What the disconnect phase found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DisconnectOutcome {
    /// The origin's request was closed within [`DISCONNECT_BOUND`] of the client leaving.
    Propagated,
    /// It stayed open past the bound while the origin was still sending.
    NotPropagated,
    /// The origin ended the response by itself before the bound, so whether the hop would have closed
    /// it is not known.
    Undetermined,
    /// The phase could not run (no event to leave after, no exchange seen at the origin).
    NotMeasured,
}

/// The disconnect phase of one chain.
#[derive(Debug, Clone, Serialize)]
pub struct Disconnect {
    pub outcome: DisconnectOutcome,
    /// When the client left, from its request.
    #[serde(
        rename = "client_left_ms",
        serialize_with = "crate::verdict::ser_opt_ms"
    )]
    pub client_left: Option<Duration>,
    /// How long after the client left the origin's request was closed by the hop in front of it.
    #[serde(
        rename = "closed_after_ms",
        serialize_with = "crate::verdict::ser_opt_ms"
    )]
    pub closed_after: Option<Duration>,
    /// How long after the client left the origin ended its response by itself (when it did first).
    #[serde(
        rename = "origin_ended_after_ms",
        serialize_with = "crate::verdict::ser_opt_ms"
    )]
    pub origin_ended_after: Option<Duration>,
    /// A token stream's cancellation cost: the events the origin wrote after the client left, as far as
    /// the phase watched (each a chunk the model generated for nobody).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_after_left: Option<usize>,
    pub summary: String,
}

/// The facts the disconnect phase gathered, as offsets from the client leaving.
#[derive(Debug, Clone)]
pub struct DisconnectFacts {
    /// When the client left (None: it never got an event to leave after).
    pub client_left: Option<Duration>,
    /// Whether an exchange of that request was seen at the origin.
    pub seen_at_origin: bool,
    /// The origin had ended its response before the client left (a hop that held it all).
    pub ended_before_left: bool,
    /// When the hop closed the origin's connection, after the client left.
    pub closed_after: Option<Duration>,
    /// When the origin ended its response by itself, after the client left.
    pub origin_ended_after: Option<Duration>,
    /// When the origin sent events after the client left (the first [`DISCONNECT_WRITES`] of them): a hop
    /// that notices a closed client only when it writes to it notices then.
    pub sends_after: Vec<Duration>,
    /// The witness learns of a close only when the origin writes (the fixture), so a close is seen at a
    /// write even when the hop closed at once.
    pub seen_on_write: bool,
    /// How long the phase watched after the client left.
    pub watched: Duration,
    /// The stream is a token stream (a page reads it with fetch()): leaving is cancelling, and what the
    /// origin wrote after it is the cancellation's cost.
    pub tokens: bool,
    /// Every event the origin wrote after the client left while the phase watched, and the offset of
    /// the last one.
    pub events_after: (usize, Option<Duration>),
}

impl DisconnectFacts {
    /// No client left (no event came, or the phase's probe failed): nothing was watched.
    pub fn nothing(seen_on_write: bool) -> DisconnectFacts {
        DisconnectFacts {
            client_left: None,
            seen_at_origin: false,
            ended_before_left: false,
            closed_after: None,
            origin_ended_after: None,
            sends_after: Vec::new(),
            seen_on_write,
            watched: Duration::ZERO,
            tokens: false,
            events_after: (0, None),
        }
    }
}

/// When the origin's request must have been closed, after the client left: within the bound of the
/// client leaving, or of the origin's [`DISCONNECT_WRITES`]-th write after that (fewer writes: the last).
pub fn disconnect_limit(sends_after: &[Duration]) -> Duration {
    sends_after
        .get(DISCONNECT_WRITES - 1)
        .or(sends_after.last())
        .map_or(DISCONNECT_BOUND, |n| *n + DISCONNECT_BOUND)
        .max(DISCONNECT_BOUND)
}

/// Judge the disconnect phase. The origin's request counts as closed in time when the hop closed it
/// within [`DISCONNECT_BOUND`] of the client leaving, or of one of the origin's first
/// [`DISCONNECT_WRITES`] writes after that (a hop that only notices when it writes still stops the
/// stream); it leaks when the origin wrote that often and the bound passed with the request still open.
pub fn judge_disconnect(f: &DisconnectFacts) -> (Disconnect, Vec<Finding>) {
    let h = crate::text::human_duration;
    let mut d = Disconnect {
        outcome: DisconnectOutcome::NotMeasured,
        client_left: f.client_left,
        closed_after: f.closed_after,
        origin_ended_after: f.origin_ended_after,
        events_after_left: None,
        summary: String::new(),
    };
    let mut findings = Vec::new();
    let Some(left) = f.client_left else {
        d.summary = "no event came to leave after".into();
        return (d, findings);
    };
    if !f.seen_at_origin {
        d.summary = "the request never reached the origin (a hop answered)".into();
        return (d, findings);
    }
    if f.ended_before_left {
        d.summary = format!(
            "the client's first event came only after the origin had ended its response ({}): nothing left to stop",
            h(left)
        );
        return (d, findings);
    }
    if f.tokens {
        d.events_after_left = Some(f.events_after.0);
    }
    let left_at = if f.tokens {
        format!(
            "cancellation: the client left after its first event ({})",
            h(left)
        )
    } else {
        format!("the client left after its first event ({})", h(left))
    };
    let limit = disconnect_limit(&f.sends_after);
    let ended_first = |c: Duration| f.origin_ended_after.is_some_and(|e| e < c);
    if let Some(c) = f.closed_after.filter(|c| *c <= limit && !ended_first(*c)) {
        d.outcome = DisconnectOutcome::Propagated;
        let writes = f.sends_after.iter().filter(|s| **s <= c).count();
        let how = match (writes, f.seen_on_write) {
            (0, _) => String::new(),
            (_, true) => " (the origin saw it when it next wrote)".into(),
            (1, false) => " (the hop noticed when the origin next wrote)".into(),
            (n, false) => format!(" (the hop noticed after {n} more writes of the origin)"),
        };
        d.summary = format!(
            "{left_at}; the origin's request was closed {} later{how}",
            h(c)
        );
        return (d, findings);
    }
    // Not closed in time: a leak only if the origin wrote that often and the bound passed with its
    // request open.
    let wrote_on =
        f.sends_after.len() >= DISCONNECT_WRITES && f.origin_ended_after.is_none_or(|e| e > limit);
    if wrote_on {
        d.outcome = DisconnectOutcome::NotPropagated;
        let still = match (f.closed_after, f.origin_ended_after) {
            (Some(c), e) if e.is_none_or(|e| c <= e) => format!("was closed only {} later", h(c)),
            (_, Some(e)) => format!("stayed open until the origin ended it {} later", h(e)),
            _ => format!("was still open {} later", h(f.watched)),
        };
        d.summary = if f.tokens {
            let (n, last) = f.events_after;
            format!(
                "{left_at}; the origin went on generating for nobody: {n} more events over {}, and its request {still}",
                h(last.unwrap_or_default())
            )
        } else {
            format!(
                "{left_at}; the origin wrote {} more events, and its request {still}",
                f.sends_after.len()
            )
        };
        // Evidence without timings: it is what the case reports show.
        findings.push(Finding::new(
            FindingId::DisconnectNotPropagated,
            evidence!(
                "the client left after its first event; the origin wrote {} more events and its request was still open {} after the last",
                DISCONNECT_WRITES,
                DISCONNECT_BOUND
            ),
        ));
        return (d, findings);
    }
    d.outcome = DisconnectOutcome::Undetermined;
    d.summary = match f.origin_ended_after {
        Some(e) => format!(
            "{left_at}; the origin ended its response by itself {} later, before a hop had to close it",
            h(e)
        ),
        None => format!(
            "{left_at}; the origin wrote {} events in the {} watched, and the request stayed open (a hop that notices a closed client only when it writes may not have noticed yet)",
            f.sends_after.len(),
            h(f.watched)
        ),
    };
    (d, findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::End;
    use crate::probe::testing::recording;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn stream(ids: &[Option<&str>]) -> Recording {
        let arrivals: Vec<u64> = (1..=ids.len() as u64).map(|i| 100 * i).collect();
        let mut r = recording(
            &[("content-type", "text/event-stream")],
            &arrivals,
            1000,
            End::Complete,
        );
        for (a, id) in r.events.iter_mut().zip(ids) {
            a.event.id = id.unwrap_or("").to_string();
        }
        r
    }

    fn facts<'a>(
        first: &'a Recording,
        again: &'a Recording,
        got: Option<Option<&str>>,
    ) -> ReconnectFacts<'a> {
        ReconnectFacts {
            first,
            waited: ms(3000),
            again: Some(again),
            origin_received: got.map(|g| g.map(str::to_string)),
        }
    }

    #[test]
    fn a_resume_after_the_last_id_is_resumed_and_a_restart_is_a_replay() {
        let first = stream(&[Some("1"), Some("2"), Some("3")]);
        let resumed = stream(&[Some("4")]);
        let (r, f) = judge_reconnect(&facts(&first, &resumed, Some(Some("3"))));
        assert_eq!(r.outcome, ReconnectOutcome::Resumed, "{}", r.summary);
        assert!(f.is_empty());
        let restarted = stream(&[Some("1")]);
        let (r, f) = judge_reconnect(&facts(&first, &restarted, Some(Some("3"))));
        assert_eq!(r.outcome, ReconnectOutcome::Replayed);
        assert_eq!(f[0].id(), FindingId::ResumeReplaysFromStart);
        assert!(r.summary.contains("started over"), "{}", r.summary);
    }

    #[test]
    fn a_header_lost_on_the_way_is_not_forwarded() {
        let first = stream(&[Some("a"), Some("b")]);
        let again = stream(&[Some("c")]);
        let (r, f) = judge_reconnect(&facts(&first, &again, Some(None)));
        assert_eq!(r.outcome, ReconnectOutcome::NotForwarded);
        assert_eq!(f[0].id(), FindingId::LastEventIdNotForwarded);
        // Non-numeric ids: replay means an id already seen.
        let (r, _) = judge_reconnect(&facts(&first, &stream(&[Some("a")]), Some(Some("b"))));
        assert_eq!(r.outcome, ReconnectOutcome::Replayed);
        let (r, _) = judge_reconnect(&facts(&first, &again, Some(Some("b"))));
        assert_eq!(r.outcome, ReconnectOutcome::Resumed);
    }

    #[test]
    fn no_ids_204_and_errors_are_told_apart() {
        let first = stream(&[None, None]);
        let again = stream(&[None]);
        let (r, f) = judge_reconnect(&facts(&first, &again, Some(None)));
        assert_eq!(r.outcome, ReconnectOutcome::NoIds);
        assert_eq!(f[0].id(), FindingId::NoEventIds);
        let mut no_content = stream(&[]);
        no_content.status = 204;
        let (r, f) = judge_reconnect(&facts(&no_content, &again, None));
        assert_eq!(r.outcome, ReconnectOutcome::Stopped);
        assert!(f.is_empty());
        let mut wrong = stream(&[Some("1")]);
        wrong.headers = vec![("content-type".into(), "text/plain".into())];
        let (r, _) = judge_reconnect(&facts(&wrong, &again, None));
        assert_eq!(r.outcome, ReconnectOutcome::GaveUp);
        let first = stream(&[Some("1")]);
        let mut failing = stream(&[]);
        failing.status = 503;
        let (r, f) = judge_reconnect(&facts(&first, &failing, Some(Some("1"))));
        assert_eq!(r.outcome, ReconnectOutcome::GaveUp);
        assert_eq!(f[0].id(), FindingId::ErrorStatus);
    }

    #[test]
    fn silences_are_judged_against_half_the_idle_limit() {
        // Events 100 ms apart, then open and silent until the recording ended at 1000 ms.
        let mut r = stream(&[Some("1"), Some("2"), Some("3")]);
        r.end = End::Limit {
            limit: crate::probe::LimitKind::Duration,
        };
        assert_eq!(longest_silence(&r), ms(700));
        let (hb, f) = judge_heartbeat(&r, (ms(1600), "x".into()));
        assert_eq!(hb.adequate, Some(true));
        assert!(f.is_none());
        // Watched for 1 s, still open: a silence of up to 1.5 s could have followed.
        let (hb, f) = judge_heartbeat(&r, (ms(3000), "x".into()));
        assert_eq!(hb.adequate, None, "{}", hb.summary);
        assert!(f.is_none());
        let (hb, f) = judge_heartbeat(&r, (ms(1000), "x".into()));
        assert_eq!(hb.adequate, Some(false));
        assert_eq!(hb.heartbeat_every, ms(500));
        assert_eq!(f.unwrap().id(), FindingId::HeartbeatTooSparse);
        // A stream that ended is not silent after its end.
        r.end = End::Complete;
        assert_eq!(longest_silence(&r), ms(100));
    }

    #[test]
    fn retry_sets_the_wait_within_a_cap() {
        let mut r = stream(&[Some("1")]);
        assert_eq!(reconnect_delay(&r), RETRY_WAIT_CAP.min(BROWSER_RETRY));
        r.retry = Some(250);
        assert_eq!(reconnect_delay(&r), ms(250));
        r.retry = Some(600_000);
        assert_eq!(reconnect_delay(&r), RETRY_WAIT_CAP);
    }

    #[test]
    fn a_disconnect_is_propagated_when_the_hop_closes_at_once_or_within_three_writes() {
        let base = DisconnectFacts {
            client_left: Some(ms(300)),
            seen_at_origin: true,
            ended_before_left: false,
            closed_after: Some(ms(5)),
            origin_ended_after: None,
            sends_after: vec![ms(300), ms(600), ms(900)],
            seen_on_write: false,
            watched: ms(1900),
            tokens: false,
            events_after: (0, None),
        };
        assert_eq!(
            judge_disconnect(&base).0.outcome,
            DisconnectOutcome::Propagated
        );
        // Varnish: closed at the third write after the client left.
        let third = DisconnectFacts {
            closed_after: Some(ms(901)),
            ..base.clone()
        };
        let (d, _) = judge_disconnect(&third);
        assert_eq!(d.outcome, DisconnectOutcome::Propagated);
        assert!(d.summary.contains("3 more writes"), "{}", d.summary);
        let seen = DisconnectFacts {
            closed_after: Some(ms(301)),
            seen_on_write: true,
            ..base.clone()
        };
        assert!(
            judge_disconnect(&seen)
                .0
                .summary
                .contains("the origin saw it")
        );
        let kept = DisconnectFacts {
            closed_after: None,
            ..base.clone()
        };
        let (d, f) = judge_disconnect(&kept);
        assert_eq!(d.outcome, DisconnectOutcome::NotPropagated);
        assert_eq!(f[0].id(), FindingId::DisconnectNotPropagated);
        // Fewer than three writes and no close: not yet a leak.
        let quiet = DisconnectFacts {
            closed_after: None,
            sends_after: vec![ms(300)],
            ..base.clone()
        };
        assert_eq!(
            judge_disconnect(&quiet).0.outcome,
            DisconnectOutcome::Undetermined
        );
        // The origin ended by itself before a write could tell.
        let ended_soon = DisconnectFacts {
            closed_after: None,
            sends_after: vec![],
            origin_ended_after: Some(ms(400)),
            ..base.clone()
        };
        assert_eq!(
            judge_disconnect(&ended_soon).0.outcome,
            DisconnectOutcome::Undetermined
        );
        // It wrote on for longer than the bound, then ended: the hop held it open.
        let ended_late = DisconnectFacts {
            closed_after: Some(ms(2600)),
            origin_ended_after: Some(ms(2500)),
            ..base.clone()
        };
        assert_eq!(
            judge_disconnect(&ended_late).0.outcome,
            DisconnectOutcome::NotPropagated
        );
        let held = DisconnectFacts {
            ended_before_left: true,
            ..base
        };
        assert_eq!(
            judge_disconnect(&held).0.outcome,
            DisconnectOutcome::NotMeasured
        );
        assert_eq!(
            disconnect_limit(&[ms(300), ms(600), ms(900), ms(1200)]),
            ms(1900)
        );
        assert_eq!(disconnect_limit(&[]), DISCONNECT_BOUND);
    }

    #[test]
    fn a_reconnect_a_hop_answered_or_redirected_is_undetermined() {
        let first = stream(&[Some("1"), Some("2")]);
        let again = stream(&[Some("1")]);
        let (r, f) = judge_reconnect(&facts(&first, &again, None));
        assert_eq!(r.outcome, ReconnectOutcome::Undetermined, "{}", r.summary);
        assert!(f.is_empty());
        let mut moved = stream(&[]);
        moved.status = 307;
        let (r, f) = judge_reconnect(&facts(&first, &moved, Some(Some("2"))));
        assert_eq!(r.outcome, ReconnectOutcome::Undetermined, "{}", r.summary);
        assert!(f.is_empty());
        let mut silent = stream(&[]);
        silent.status = 0;
        let (r, _) = judge_reconnect(&facts(&first, &silent, Some(Some("2"))));
        assert_eq!(r.outcome, ReconnectOutcome::Undetermined);
    }

    #[test]
    fn a_token_streams_disconnect_is_a_cancellation_with_its_cost() {
        let leak = DisconnectFacts {
            client_left: Some(ms(600)),
            seen_at_origin: true,
            ended_before_left: false,
            closed_after: None,
            origin_ended_after: Some(ms(2400)),
            sends_after: vec![ms(30), ms(60), ms(90)],
            seen_on_write: false,
            watched: ms(2400),
            tokens: true,
            events_after: (80, Some(ms(2400))),
        };
        let (d, findings) = judge_disconnect(&leak);
        assert_eq!(d.outcome, DisconnectOutcome::NotPropagated);
        assert_eq!(d.events_after_left, Some(80));
        assert!(d.summary.starts_with("cancellation:"), "{}", d.summary);
        assert!(
            d.summary.contains("80 more events over 2.40 s"),
            "{}",
            d.summary
        );
        assert_eq!(findings.len(), 1);
        let stopped = DisconnectFacts {
            closed_after: Some(ms(2)),
            events_after: (0, None),
            ..leak.clone()
        };
        let (d, _) = judge_disconnect(&stopped);
        assert_eq!(d.outcome, DisconnectOutcome::Propagated);
        assert_eq!(d.events_after_left, Some(0));
        // Not a token stream: no cost is given.
        let sse = DisconnectFacts {
            tokens: false,
            ..leak
        };
        assert_eq!(judge_disconnect(&sse).0.events_after_left, None);
    }
}
