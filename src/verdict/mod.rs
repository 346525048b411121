//! Judging a [`Recording`]: the delivery class, per-event timing, and findings.
//!
//! Time is judged relative to a reference, never against a tight absolute number:
//! - with the origin's send instants (the fixture), latency `L = arrival − send`;
//! - with a baseline recording of the same endpoint (usually direct), `L = arrival − baseline arrival`;
//! - with neither, the class is inferred from the arrival pattern and says so.
//!
//! An event is *held* when `L > T`, with `T = max(100 ms, gap / 2)` and `gap` the median spacing of the
//! reference. Anything a buffer holds waits at least until the next write, one gap later, so `gap / 2`
//! separates holding from scheduler noise with a margin of hundreds of milliseconds at the default gap.

pub mod browser;
pub mod capacity;
pub mod evidence;
pub mod integrity;
pub mod lifecycle;
pub mod mcp;
pub mod rules;
pub mod sharing;
pub mod tokens;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::probe::{BodyFraming, End, LimitKind, Recording, ser_ms};
use evidence::evidence;
pub use evidence::{Evidence, Fact};
pub use rules::{FindingId, RULES, Rule, Severity, UnknownFindingId};

/// How the events arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// Every event within the threshold of its reference.
    Streamed,
    /// Some events held back and released in clumps.
    Batched,
    /// Everything arrived when the stream ended.
    HeldUntilEnd,
    /// The events streamed, but the headers were held.
    FirstByteDelayed,
    /// The stream ended early.
    Cut,
    /// Events arrived on time, then the ones sent after them never did, while the connection stayed
    /// open until the probe stopped (a hop stopped forwarding without closing the client's side).
    Stalled,
    /// No event was dispatched.
    NoEvents,
    /// Late arrivals that a stall of this machine could explain, with nothing giving the origin's send
    /// instants: not given as a break (see [`crate::pressure`]). Never an expectation.
    #[serde(skip_deserializing)]
    Inconclusive,
}

impl Delivery {
    /// Whether a starved machine can make a stream that streams look like this: events read or
    /// forwarded late arrive together (`batched`), a late head (`first-byte-delayed`), a hop that did
    /// not run for its idle limit cuts (`cut`). Everything held to the end, or lost, is no stall's doing.
    pub fn starvation_can_make(self) -> bool {
        matches!(
            self,
            Delivery::Batched | Delivery::FirstByteDelayed | Delivery::Cut
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Streamed => "streamed",
            Delivery::Batched => "batched",
            Delivery::HeldUntilEnd => "held-until-end",
            Delivery::FirstByteDelayed => "first-byte-delayed",
            Delivery::Cut => "cut",
            Delivery::Stalled => "stalled",
            Delivery::NoEvents => "no-events",
            Delivery::Inconclusive => "inconclusive",
        }
    }
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the timing was judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// The fixture origin's own log of when it sent each event.
    SendInstants,
    /// A tap in front of the origin stamped each event as it left the origin.
    Tap,
    Baseline,
    Inferred,
}

/// The origin's own account of one response (from the fixture), as offsets from the probe's start.
#[derive(Debug, Clone, Default)]
pub struct SendInstants {
    /// Send offset of each event, index = sequence number − 1.
    pub sends: Vec<Duration>,
    /// When the origin handed over its headers.
    pub headers_sent: Option<Duration>,
    /// When the origin finished its body.
    pub ended: Option<Duration>,
    /// The intended spacing of events (the profile's gap); preferred over the spacing of `sends`, which
    /// is short when a stream was cut.
    pub gap: Option<Duration>,
    /// How many events the origin means to send (more than `sends` while it is still sending).
    pub planned: Option<usize>,
    /// Align events by position (a [`crate::tap`] in front of someone else's origin) instead of by their
    /// `id` sequence number (the fixture numbers its events).
    pub by_position: bool,
}

/// What a recording is compared with.
#[derive(Debug, Clone, Copy)]
pub enum Reference<'a> {
    Sends(&'a SendInstants),
    Baseline(&'a Recording),
    None,
}

/// One finding: a rule plus the evidence that triggered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static Rule,
    /// What triggered it, as typed facts; its sentence is rendered from them.
    pub evidence: Evidence,
}

impl Finding {
    /// A finding of `id` with its evidence.
    fn new(id: FindingId, evidence: impl Into<Evidence>) -> Finding {
        Finding {
            rule: id.rule(),
            evidence: evidence.into(),
        }
    }
    /// The finding's id.
    pub fn id(&self) -> FindingId {
        self.rule.id
    }
    /// The finding's severity.
    pub fn severity(&self) -> Severity {
        self.rule.severity
    }
}

impl Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Finding", 6)?;
        st.serialize_field("id", self.rule.id.as_str())?;
        st.serialize_field("severity", &self.rule.severity)?;
        st.serialize_field("evidence", &self.evidence)?;
        st.serialize_field("why", self.rule.why)?;
        st.serialize_field("fix", self.rule.fix)?;
        st.serialize_field("operator_fix", &self.rule.operator_fix)?;
        st.end()
    }
}

/// Timing of one received event.
#[derive(Debug, Clone, Serialize)]
pub struct EventTiming {
    /// Sequence number (from `id`) or 1-based position.
    pub seq: u64,
    #[serde(serialize_with = "ser_ms")]
    pub arrival: Duration,
    #[serde(serialize_with = "ser_opt_ms")]
    pub expected: Option<Duration>,
    #[serde(serialize_with = "ser_opt_ms")]
    pub latency: Option<Duration>,
    pub held: bool,
    /// Index of the burst it arrived in.
    pub burst: usize,
}

pub(crate) fn ser_opt_ms<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_ms(d, s),
        None => s.serialize_none(),
    }
}

/// Events that arrived together.
#[derive(Debug, Clone, Serialize)]
pub struct Burst {
    #[serde(serialize_with = "ser_ms")]
    pub at: Duration,
    pub events: usize,
    /// Bytes on the wire delivered with this burst (since the previous one).
    pub bytes: u64,
}

/// The judgement of one recording.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub delivery: Delivery,
    pub basis: Basis,
    /// The held threshold `T`.
    #[serde(serialize_with = "ser_ms")]
    pub threshold: Duration,
    /// Median spacing of the reference (0 when unknown).
    #[serde(serialize_with = "ser_ms")]
    pub gap: Duration,
    /// Events the reference says were sent (None when inferred).
    pub expected_events: Option<usize>,
    /// Connection setup subtracted from every offset when comparing with a baseline.
    #[serde(serialize_with = "ser_ms")]
    pub alignment: Duration,
    pub events: Vec<EventTiming>,
    pub bursts: Vec<Burst>,
    #[serde(serialize_with = "ser_opt_ms")]
    pub header_latency: Option<Duration>,
    #[serde(serialize_with = "ser_opt_ms")]
    pub latency_p50: Option<Duration>,
    #[serde(serialize_with = "ser_opt_ms")]
    pub latency_max: Option<Duration>,
    pub findings: Vec<Finding>,
    /// The protocol the stream was read as, and what said so.
    #[serde(flatten)]
    pub protocol: tokens::Detected,
    /// Token timing, for a token stream (LLM output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<tokens::Tokens>,
}

impl Verdict {
    /// Whether `other`, a second measurement of the same stream, broke the same way: the same delivery
    /// with the same number of events held. A hop's buffer does that every time; a starved machine's
    /// late reads and forwards fall differently each time.
    pub fn reproduces(&self, other: &Verdict) -> bool {
        self.delivery == other.delivery && self.held_count() == other.held_count()
    }

    /// Whether a finding of `id` was reported.
    pub fn has(&self, id: FindingId) -> bool {
        self.findings.iter().any(|f| f.id() == id)
    }
    pub fn held_count(&self) -> usize {
        self.events.iter().filter(|e| e.held).count()
    }
}

fn median(mut v: Vec<Duration>) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    v.sort();
    Some(v[v.len() / 2])
}

fn median_gap(points: &[Duration]) -> Duration {
    let gaps: Vec<Duration> = points
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .collect();
    median(gaps).unwrap_or_default()
}

/// `T = max(100 ms, gap / 2)`.
pub fn threshold(gap: Duration) -> Duration {
    (gap / 2).max(Duration::from_millis(100))
}

/// Judge a recording against a reference.
pub fn judge(rec: &Recording, reference: Reference<'_>) -> Verdict {
    let detected = tokens::detect(rec, rec.protocol);
    let kinds = tokens::kinds(rec, detected.protocol);
    // A token stream is judged at token scale: a delta held `token_hold` (100 ms) is a stall people
    // see, whatever the gap between tokens.
    let hold = detected
        .protocol
        .has_tokens()
        .then_some((rec.token_hold, kinds.as_slice()));
    let tm = Timing::measure(rec, reference, hold);
    let mut findings = Vec::new();
    let delivery = classify(rec, &tm, &mut findings);
    findings.extend(delivery_finding(rec, &tm, delivery));
    findings.extend(first_byte_delayed(rec, &tm, delivery));
    findings.extend(added_latency(&tm, delivery));
    findings.extend(buffer_sized_clumps(rec, &tm, delivery));
    findings.extend(headers_with_first_event(rec, reference, &tm));
    header_findings(rec, &mut findings);
    framing_findings(rec, &mut findings);
    sort_findings(&mut findings);
    let mut v = tm.into_verdict(delivery, findings);
    v.protocol = detected;
    read_tokens(rec, &mut v, &kinds);
    v
}

/// Read `v`'s stream as its protocol: its token timing, and a token stream that ended cleanly without
/// its terminal event is `cut` (`stream-truncated`).
fn read_tokens(rec: &Recording, v: &mut Verdict, kinds: &[tokens::Kind]) {
    let p = v.protocol.protocol;
    v.tokens = tokens::measure(rec, p, kinds, &v.events);
    if p == crate::protocol::Protocol::Ndjson {
        // NDJSON is read with fetch(), never EventSource: its content type is the right one.
        v.findings
            .retain(|f| f.id() != FindingId::ContentTypeNotEventStream);
    }
    if matches!(v.delivery, Delivery::Streamed | Delivery::FirstByteDelayed)
        && let Some(f) = tokens::collapse(rec, p, kinds, &v.events)
    {
        // Every delta on time, but most in one read with the one before: batched whatever the gap.
        v.delivery = Delivery::Batched;
        v.findings.push(f);
        sort_findings(&mut v.findings);
    }
    if let Some(f) = tokens::truncation(rec, v.protocol.protocol, v.tokens.as_ref()) {
        if !matches!(v.delivery, Delivery::Cut | Delivery::NoEvents) {
            v.delivery = Delivery::Cut;
        }
        v.findings.push(f);
        sort_findings(&mut v.findings);
    }
}

/// A break judged without the origin's send instants that a stall of this machine could explain is
/// not given as a break (see [`crate::pressure`]): its delivery becomes `inconclusive`, its delivery
/// findings give way to a `too-busy-to-tell` finding that names what was measured and the stall.
/// Returns whether it did. Verdicts timed by a tap or a fixture are left alone.
pub fn excuse_starved(rec: &Recording, v: &mut Verdict) -> bool {
    let Some(p) = rec.pressure.as_ref().filter(|p| starvation_explains(p, v)) else {
        return false;
    };
    let measured = v.delivery;
    v.delivery = Delivery::Inconclusive;
    v.findings.retain(|f| f.rule.area != "delivery");
    v.findings.push(Finding::new(
        FindingId::TooBusyToTell,
        evidence!(
            "inconclusive: this machine was too busy to tell ({}); the stream measured {} against a threshold of {}, a delay one stall of this process can make",
            Fact::Varies(p.describe()),
            Fact::Varies(measured.as_str().into()),
            v.threshold
        ),
    ));
    sort_findings(&mut v.findings);
    true
}

/// Whether a stall of this process could explain `v`'s break: only where nothing gave the origin's
/// send instants (a tap or fixture times the origin itself, so a late read is seen as late), only for
/// breaks made of late arrivals, and only when the longest stall reached the verdict's threshold (a
/// shorter stall cannot make an event late by the threshold).
fn starvation_explains(p: &crate::pressure::Pressure, v: &Verdict) -> bool {
    let collapsed = v
        .findings
        .iter()
        .any(|f| f.id() == FindingId::TokensCollapsed);
    // Tokens 20–50 ms apart share a read after a stall far shorter than the held threshold.
    let margin = if collapsed {
        tokens::COLLAPSE_STALL
    } else {
        v.threshold
    };
    matches!(v.basis, Basis::Baseline | Basis::Inferred)
        && matches!(v.delivery, Delivery::Batched | Delivery::FirstByteDelayed)
        && p.timer_late_max >= margin
}

/// The order findings are reported in: most severe first, then by id.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity()
            .cmp(&a.severity())
            .then(a.id().as_str().cmp(b.id().as_str()))
    });
}

/// What the reference says about the stream.
struct RefPoints {
    basis: Basis,
    /// When each event was sent (or arrived in the baseline).
    points: Vec<Duration>,
    /// When the headers were sent (or arrived in the baseline).
    headers: Option<Duration>,
    expected_events: Option<usize>,
    /// When the origin's response ended (its last byte, or its connection closed), when known.
    ended: Option<Duration>,
}

impl RefPoints {
    fn of(reference: Reference<'_>) -> RefPoints {
        match reference {
            Reference::Sends(s) => RefPoints {
                basis: if s.by_position {
                    Basis::Tap
                } else {
                    Basis::SendInstants
                },
                points: s.sends.clone(),
                headers: s.headers_sent,
                expected_events: Some(s.planned.unwrap_or(s.sends.len()).max(s.sends.len())),
                ended: s.ended,
            },
            Reference::Baseline(b) => RefPoints {
                basis: Basis::Baseline,
                points: b.events.iter().map(|e| e.at).collect(),
                headers: Some(b.headers_at),
                expected_events: Some(b.events.len()),
                ended: (b.end == End::Complete).then_some(b.ended_at),
            },
            Reference::None => RefPoints {
                basis: Basis::Inferred,
                points: Vec::new(),
                headers: None,
                expected_events: None,
                ended: None,
            },
        }
    }
}

/// A recording's timing against its reference: everything a verdict says but its class and findings.
struct Timing {
    basis: Basis,
    /// The reference's event instants.
    points: Vec<Duration>,
    expected_events: Option<usize>,
    gap: Duration,
    /// The held threshold `T`.
    t: Duration,
    /// Connection setup subtracted from every reference instant.
    shift: Duration,
    events: Vec<EventTiming>,
    bursts: Vec<Burst>,
    header_latency: Option<Duration>,
    latency_p50: Option<Duration>,
    latency_max: Option<Duration>,
    /// Events the reference has that had not arrived when the probe stopped at a limit, though due
    /// more than `T` before.
    missing: usize,
    /// When the origin's response ended, on the recording's clock (shifted), when known.
    origin_ended: Option<Duration>,
    /// A token stream's content deltas (only they can be held), None for other streams.
    deltas: Option<usize>,
}

impl Timing {
    /// `hold` is a token stream's threshold (`token_hold`) and what each event is to it; without it the threshold
    /// follows the gap.
    fn measure(
        rec: &Recording,
        reference: Reference<'_>,
        hold: Option<(Duration, &[tokens::Kind])>,
    ) -> Timing {
        let r = RefPoints::of(reference);
        let arrivals: Vec<Duration> = rec.events.iter().map(|e| e.at).collect();
        let gap = match reference {
            Reference::Sends(SendInstants { gap: Some(g), .. }) => *g,
            Reference::None => median_gap(&arrivals),
            _ => median_gap(&r.points),
        };
        let t = hold.map_or_else(|| threshold(gap), |(t, _)| t);
        let (shift, header_shift) = alignment(rec, reference);
        let mut events = event_timings(rec, r.basis, &r.points, shift, t);
        if let Some((_, kinds)) = hold {
            // At token scale only a content delta is held: a role chunk or a `[DONE]` a hop keeps a
            // moment longer holds back no text.
            for (e, kind) in events.iter_mut().zip(kinds) {
                e.held &= *kind == tokens::Kind::Delta;
            }
        }
        let bursts = bursts(rec, &mut events, t);
        let header_latency = r
            .headers
            .map(|h| rec.headers_at.saturating_sub(h + header_shift));
        let latencies: Vec<Duration> = events.iter().filter_map(|e| e.latency).collect();
        let missing = missing_events(rec, &r.points, events.len(), shift, t);
        Timing {
            basis: r.basis,
            points: r.points,
            expected_events: r.expected_events,
            gap,
            t,
            shift,
            latency_p50: median(latencies.clone()),
            latency_max: latencies.iter().max().copied(),
            events,
            bursts,
            header_latency,
            missing,
            origin_ended: r.ended.map(|e| e + shift),
            deltas: hold
                .map(|(_, kinds)| kinds.iter().filter(|k| **k == tokens::Kind::Delta).count()),
        }
    }

    /// The origin had ended well before the probe stopped (by two thresholds or a gap, whichever is
    /// longer), so nothing was still on its way.
    fn origin_long_done(&self, rec: &Recording) -> bool {
        self.origin_ended
            .is_some_and(|e| e + (self.t * 2).max(self.gap) < rec.ended_at)
    }

    /// The headers arrived more than `T` late. Without a response there are no headers to be late:
    /// `no-response` says it.
    fn headers_late(&self, rec: &Recording) -> bool {
        rec.status != 0 && self.header_latency.is_some_and(|l| l > self.t)
    }

    fn held(&self) -> usize {
        self.events.iter().filter(|e| e.held).count()
    }

    fn into_verdict(self, delivery: Delivery, findings: Vec<Finding>) -> Verdict {
        Verdict {
            delivery,
            basis: self.basis,
            threshold: self.t,
            gap: self.gap,
            expected_events: self.expected_events,
            alignment: self.shift,
            events: self.events,
            bursts: self.bursts,
            header_latency: self.header_latency,
            latency_p50: self.latency_p50,
            latency_max: self.latency_max,
            findings,
            protocol: tokens::Detected {
                protocol: crate::protocol::Protocol::Eventsource,
                from: String::new(),
            },
            tokens: None,
        }
    }
}

/// The shift of event and header instants against a baseline.
///
/// Against a baseline, each request has its own connection setup (DNS, TCP, TLS) and, for generated
/// streams, its own time to first token: offsets from the request's start differ by a constant that
/// is nobody's holding. Events are aligned by the smallest event delay: whatever a buffer holds is
/// released together with an event that was not held (delay about 0), so holding survives the
/// alignment, while a constant offset does not. Headers are aligned by the part they share with the
/// events (`min(header delay, event shift)`), so a remote server's TLS time is not "late headers" but
/// a hop that holds the headers until the first event still is.
fn alignment(rec: &Recording, reference: Reference<'_>) -> (Duration, Duration) {
    match reference {
        Reference::Baseline(b) => {
            let header = rec.headers_at.saturating_sub(b.headers_at);
            let smallest = rec
                .events
                .iter()
                .zip(&b.events)
                .map(|(a, e)| a.at.saturating_sub(e.at))
                .min()
                .unwrap_or_default();
            (smallest, smallest.min(header))
        }
        _ => (Duration::ZERO, Duration::ZERO),
    }
}

/// Align events with the reference: by sequence number (`id`) against a schedule, by position otherwise.
fn event_timings(
    rec: &Recording,
    basis: Basis,
    points: &[Duration],
    shift: Duration,
    t: Duration,
) -> Vec<EventTiming> {
    rec.events
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let seq = match (basis, a.event.id.trim().parse::<u64>()) {
                (Basis::SendInstants, Ok(n)) if n >= 1 => n,
                _ => i as u64 + 1,
            };
            let expected = points.get(seq as usize - 1).map(|&e| e + shift);
            let latency = expected.map(|e| a.at.saturating_sub(e));
            EventTiming {
                seq,
                arrival: a.at,
                expected,
                latency,
                held: latency.is_some_and(|l| l > t),
                burst: 0,
            }
        })
        .collect()
}

/// Events the reference has but that had not arrived when the probe stopped listening count as held,
/// if they were due more than `T` before it stopped (later ones may simply have been in flight).
fn missing_events(
    rec: &Recording,
    points: &[Duration],
    arrived: usize,
    shift: Duration,
    t: Duration,
) -> usize {
    match rec.end {
        End::Limit { .. } => points
            .iter()
            .skip(arrived)
            .filter(|&&p| p + shift + t < rec.ended_at)
            .count(),
        _ => 0,
    }
}

/// The delivery class. Without a reference, [`infer`] decides and may add its evidence to `findings`.
fn classify(rec: &Recording, tm: &Timing, findings: &mut Vec<Finding>) -> Delivery {
    let n = tm.events.len();
    let missing = tm.missing;
    // An undecodable body ends the stream for the client just like an abort.
    let aborted = matches!(rec.end, End::Aborted { .. } | End::Undecodable { .. });
    let lost = tm.expected_events.is_some_and(|x| n < x);
    if aborted {
        // Ended abruptly, even before the first event: an idle cut can strike before anything arrives.
        Delivery::Cut
    } else if n == 0 && missing == 0 {
        Delivery::NoEvents
    } else if lost && rec.end == End::Complete {
        Delivery::Cut
    } else if tm.basis == Basis::Inferred {
        infer(rec, &tm.bursts, tm.t, findings)
    } else if n > 0 && missing > 0 && tm.held() == 0 && tm.origin_long_done(rec) {
        // Everything that arrived was on time; what came after never did, though the origin was long
        // done, and nothing closed the client's connection.
        Delivery::Stalled
    } else if tm.held() == 0 && missing == 0 {
        if tm.headers_late(rec) {
            Delivery::FirstByteDelayed
        } else {
            Delivery::Streamed
        }
    } else {
        let end_mark = tm
            .points
            .last()
            .map(|&l| l + tm.shift)
            .unwrap_or(rec.ended_at)
            .min(rec.ended_at)
            .saturating_sub(tm.t);
        let at_end = tm.events.iter().all(|e| e.arrival >= end_mark);
        if n == 0 || (at_end && (n >= 2 || missing > 0)) {
            Delivery::HeldUntilEnd
        } else {
            Delivery::Batched
        }
    }
}

/// The finding that names the delivery class, when it is broken.
fn delivery_finding(rec: &Recording, tm: &Timing, delivery: Delivery) -> Option<Finding> {
    let n = tm.events.len();
    let missing = tm.missing;
    let inferred = if tm.basis == Basis::Inferred {
        " (inferred from the arrival pattern: no send instants or baseline)"
    } else {
        ""
    };
    Some(match delivery {
        Delivery::Stalled => {
            let last_byte = rec.reads.last().map_or(rec.headers_at, |r| r.at);
            Finding::new(
                FindingId::StreamStalled,
                evidence!(
                    "{} of the {} events the origin sent arrived on time, then none: the origin's response ended at {}, no byte came after {}, and the connection was still open when the probe stopped at {}",
                    n,
                    n + missing,
                    tm.origin_ended.unwrap_or_default(),
                    last_byte,
                    rec.ended_at
                ),
            )
        }
        Delivery::HeldUntilEnd if missing > 0 && n == 0 => Finding::new(
            FindingId::HeldUntilEnd,
            evidence!(
                "none of {} events had arrived when the probe stopped at {}",
                missing,
                rec.ended_at
            ),
        ),
        Delivery::HeldUntilEnd if missing > 0 => Finding::new(
            FindingId::HeldUntilEnd,
            evidence!(
                "{} of {} events arrived, all at the end; {} had not arrived when the probe stopped at {}",
                n,
                n + missing,
                missing,
                rec.ended_at
            ),
        ),
        Delivery::HeldUntilEnd => {
            let first = tm.events.first().map_or(rec.ended_at, |e| e.arrival);
            Finding::new(
                FindingId::HeldUntilEnd,
                evidence!(
                    "all {} events arrived in the last {} of the stream, which ended at {}{}",
                    n,
                    rec.ended_at.saturating_sub(first),
                    rec.ended_at,
                    inferred
                ),
            )
        }
        Delivery::Batched if tm.basis != Basis::Inferred => {
            let longest = tm.latency_max.unwrap_or_default();
            // How many bursts a hop's flushes make, and which deltas they leave late, vary run to run
            // by a few (two close flushes read as one): shown, not snapshotted.
            let mut e = match tm.deltas {
                Some(deltas) => evidence!(
                    "of {} content deltas, some arrived more than {} late (longest {}){}",
                    deltas as u64,
                    tm.t,
                    longest,
                    Fact::Varies(format!("; {} held", tm.held()))
                ),
                None => evidence!(
                    "{} of {} events arrived more than {} late (longest {}){}",
                    tm.held(),
                    n,
                    tm.t,
                    longest,
                    Fact::Varies(format!("; {} bursts", tm.bursts.len()))
                ),
            };
            if missing > 0 {
                e = e.then(evidence!(
                    "; {} more never arrived before the probe stopped",
                    missing
                ));
            }
            Finding::new(FindingId::EventsHeld, e)
        }
        Delivery::Cut => stream_cut(rec, tm),
        _ => return None,
    })
}

/// `stream-cut`: when and how the stream ended.
fn stream_cut(rec: &Recording, tm: &Timing) -> Finding {
    let last = rec.last_read_at().unwrap_or(rec.headers_at);
    // The transport's own wording stays in the recording; the evidence uses a stable category.
    let reason = match &rec.end {
        End::Aborted { .. } => match rec.framing {
            BodyFraming::ContentLength => {
                "aborted: the connection closed before the declared Content-Length"
            }
            BodyFraming::Chunked => {
                "aborted: the body ended inside a chunk or the connection reset"
            }
            BodyFraming::CloseDelimited => "aborted: the connection reset",
            BodyFraming::Frames => "aborted: the HTTP/2 stream was reset",
        },
        End::Undecodable { .. } => "the body could not be decoded",
        _ => "ended cleanly but early",
    };
    let mut e = evidence!(
        "the stream ended at {} after {}",
        rec.ended_at,
        tm.events.len()
    );
    if let Some(x) = tm.expected_events {
        e = e.then(evidence!(" of {}", x));
    }
    let e = e.then(evidence!(
        " events, {} after the last byte ({})",
        rec.ended_at.saturating_sub(last),
        reason
    ));
    Finding::new(FindingId::StreamCut, e)
}

/// Held headers are evidence beside any class (a buffering hop often holds them with the body).
fn first_byte_delayed(rec: &Recording, tm: &Timing, delivery: Delivery) -> Option<Finding> {
    if !tm.headers_late(rec) || delivery == Delivery::NoEvents {
        return None;
    }
    Some(Finding::new(
        FindingId::FirstByteDelayed,
        evidence!(
            "headers arrived {} after the origin sent them (threshold {})",
            tm.header_latency.unwrap_or_default(),
            tm.t
        ),
    ))
}

/// A constant delay on every event of a stream that streamed: well above the measured noise floor (p99
/// under 1 ms on loopback) and above scheduler hiccups of a loaded machine, yet below `T`.
fn added_latency(tm: &Timing, delivery: Delivery) -> Option<Finding> {
    let p50 = tm.latency_p50?;
    if delivery != Delivery::Streamed || p50 <= (tm.gap / 5).max(Duration::from_millis(75)) {
        return None;
    }
    Some(Finding::new(
        FindingId::AddedLatency,
        evidence!(
            "median event latency {} with every event under {}",
            p50,
            tm.t
        ),
    ))
}

/// Held events released in clumps of a proxy buffer's size before the end (not judged on a compressed
/// stream, whose clumps are a compressor's).
fn buffer_sized_clumps(rec: &Recording, tm: &Timing, delivery: Delivery) -> Option<Finding> {
    let compressed = rec.header("content-encoding").is_some_and(|c| {
        !matches!(
            c.trim().to_ascii_lowercase().as_str(),
            "identity" | "none" | ""
        )
    });
    if !matches!(delivery, Delivery::Batched | Delivery::HeldUntilEnd) || compressed {
        return None;
    }
    let bursts = &tm.bursts;
    let sizes: Vec<u64> = bursts
        .iter()
        .filter(|b| b.events > 1)
        .map(|b| b.bytes)
        .collect();
    let full: Vec<u64> = bursts[..bursts.len().saturating_sub(1)]
        .iter()
        .filter(|b| b.events > 1 && is_buffer_sized(b.bytes))
        .map(|b| b.bytes)
        .collect();
    if full.is_empty() {
        return None;
    }
    Some(Finding::new(
        FindingId::ClumpedAtBufferSize,
        evidence!(
            "clumps of {} bytes before the end (all clumps: {} bytes)",
            Fact::Sizes(full),
            Fact::Sizes(sizes)
        ),
    ))
}

/// Did the origin itself send its headers only with its first event? Known from a schedule or a
/// baseline; without either, judged from what the client saw.
fn headers_with_first_event(
    rec: &Recording,
    reference: Reference<'_>,
    tm: &Timing,
) -> Option<Finding> {
    let t = tm.t;
    let origin_held_headers = match reference {
        Reference::Sends(s) => match (s.headers_sent, s.sends.first()) {
            (Some(h), Some(&first)) => first.saturating_sub(h) < t / 4 && h > t,
            _ => false,
        },
        Reference::Baseline(b) => client_saw_headers_with_first_event(b, t),
        Reference::None => client_saw_headers_with_first_event(rec, t),
    };
    if !origin_held_headers {
        return None;
    }
    let first = tm.events.first().map_or(rec.headers_at, |e| e.arrival);
    let whose = match reference {
        Reference::None => {
            "the headers arrived only with the first event (seen at the client: the origin or a hop held them)"
        }
        _ => "the origin's headers came only with its first event",
    };
    Some(Finding::new(
        FindingId::HeadersWithFirstEvent,
        evidence!(
            "{} (headers at {}, first event at {})",
            whose,
            rec.headers_at,
            first
        ),
    ))
}

/// Within 1/8 of a multiple of 4 KiB, and at least 3.5 KiB: what a page-sized proxy buffer releases.
fn is_buffer_sized(bytes: u64) -> bool {
    if bytes < 3584 {
        return false;
    }
    let page = 4096;
    let rem = bytes % page;
    rem <= page / 8 || rem >= page - page / 8
}

/// Group events that arrived within `t / 4` of each other into bursts, and note each event's burst.
/// A burst's bytes are the wire bytes of the reads since the previous burst, up to the read that completed
/// its last event.
fn bursts(rec: &Recording, events: &mut [EventTiming], t: Duration) -> Vec<Burst> {
    let mut out: Vec<Burst> = Vec::new();
    let mut next_read = 0usize;
    let mut prev_at: Option<Duration> = None;
    for (i, a) in rec.events.iter().enumerate() {
        let upto = (a.read + 1).min(rec.reads.len());
        let bytes: u64 = rec
            .reads
            .get(next_read.min(upto)..upto)
            .map_or(0, |rs| rs.iter().map(|r| r.wire as u64).sum());
        next_read = next_read.max(upto);
        match (out.last_mut(), prev_at) {
            (Some(b), Some(p)) if a.at.saturating_sub(p) <= t / 4 => {
                b.events += 1;
                b.bytes += bytes;
            }
            _ => out.push(Burst {
                at: a.at,
                events: 1,
                bytes,
            }),
        }
        prev_at = Some(a.at);
        events[i].burst = out.len() - 1;
    }
    out
}

/// Classify without a reference: only what the arrival pattern proves.
fn infer(rec: &Recording, bursts: &[Burst], t: Duration, findings: &mut Vec<Finding>) -> Delivery {
    // Headers that came with the first bytes were held too: then the stream's length counts from the
    // request, not from the headers.
    let headers_held = rec
        .reads
        .first()
        .is_some_and(|r| r.at.saturating_sub(rec.headers_at) < t / 4);
    let from = if headers_held {
        Duration::ZERO
    } else {
        rec.headers_at
    };
    let span = rec.ended_at.saturating_sub(from);
    let n = rec.events.len();
    // "Arrived at the end" is judged on the part of the stream after the headers, so a long wait for the
    // first byte (time to first token) does not widen it.
    let tail = (rec.ended_at.saturating_sub(rec.headers_at) / 10).max(Duration::from_millis(100));
    let ended = rec.end == End::Complete;
    if ended
        && n >= 2
        && span >= Duration::from_secs(1)
        && rec.events.iter().all(|e| e.at + tail >= rec.ended_at)
    {
        return Delivery::HeldUntilEnd;
    }
    // Clumps of a constant, buffer-like size before the end.
    let clumps: Vec<&Burst> = bursts
        .iter()
        .take(bursts.len().saturating_sub(1))
        .filter(|b| b.events > 1)
        .collect();
    // Clumps of one constant size (the first may be short: a proxy's first buffer also held the response
    // head), or of page-sized proxy buffers.
    let constant = |c: &[&Burst]| c.iter().all(|b| b.bytes == c[0].bytes && b.bytes >= 1024);
    let buffer_like = clumps.len() >= 2 && clumps.iter().all(|b| is_buffer_sized(b.bytes));
    if (clumps.len() >= 2 && constant(&clumps))
        || (clumps.len() >= 3 && constant(&clumps[1..]))
        || buffer_like
    {
        findings.push(Finding::new(
            FindingId::EventsHeld,
            evidence!(
                "events arrived in {} clumps of {} bytes (inferred: no send instants or baseline; threshold {})",
                clumps.len(),
                Fact::Sizes(clumps.iter().map(|b| b.bytes).collect()),
                t
            ),
        ));
        return Delivery::Batched;
    }
    Delivery::Streamed
}

fn media_type(v: &str) -> String {
    v.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Header findings; with no response at all, only `no-response`.
fn header_findings(rec: &Recording, out: &mut Vec<Finding>) {
    if rec.status == 0 {
        out.push(Finding::new(
            FindingId::NoResponse,
            match &rec.end {
                End::Aborted { reason } => evidence!(
                    "the connection ended after {} without response headers ({})",
                    rec.ended_at,
                    reason.as_str()
                ),
                _ => evidence!("no response headers within {}", rec.ended_at),
            },
        ));
        return;
    }
    status_finding(rec, out);
    media_findings(rec, out);
    body_header_findings(rec, out);
    version_findings(rec, out);
}

/// `error-status`: a redirect, an error, or 204.
fn status_finding(rec: &Recording, out: &mut Vec<Finding>) {
    let h = |n: &str| rec.header(n);
    if (300..400).contains(&rec.status) {
        out.push(Finding::new(
            FindingId::ErrorStatus,
            evidence!(
                "status {} redirecting to {} (browsers follow it; ssegate measures what answers, so probe that URL)",
                rec.status,
                h("location").map_or("nowhere".to_string(), crate::secrets::redact_url)
            ),
        ));
    } else if !(200..300).contains(&rec.status) {
        out.push(Finding::new(
            FindingId::ErrorStatus,
            evidence!("status {}", rec.status),
        ));
    } else if rec.status == 204 {
        out.push(Finding::new(
            FindingId::ErrorStatus,
            "status 204 tells EventSource to stop",
        ));
    }
}

/// Content-Type, Cache-Control and X-Accel-Buffering.
fn media_findings(rec: &Recording, out: &mut Vec<Finding>) {
    let h = |n: &str| rec.header(n);
    match h("content-type") {
        Some(ct) if media_type(ct) == "text/event-stream" => {}
        Some(ct) => out.push(Finding::new(
            FindingId::ContentTypeNotEventStream,
            evidence!("Content-Type: {}", ct),
        )),
        None => out.push(Finding::new(
            FindingId::ContentTypeNotEventStream,
            "no Content-Type header",
        )),
    }
    let cc = h("cache-control").unwrap_or("").to_ascii_lowercase();
    let directives: Vec<&str> = cc.split(',').map(|d| d.trim()).collect();
    if !directives.contains(&"no-transform") {
        out.push(Finding::new(
            FindingId::MissingNoTransform,
            if cc.is_empty() {
                Evidence::from("no Cache-Control header")
            } else {
                evidence!("Cache-Control: {}", cc.as_str())
            },
        ));
    }
    let uncacheable = directives.iter().any(|d| {
        matches!(
            *d,
            "no-cache" | "no-store" | "private" | "max-age=0" | "s-maxage=0"
        )
    });
    if !uncacheable {
        out.push(Finding::new(
            FindingId::CacheableStream,
            if cc.is_empty() {
                Evidence::from("no Cache-Control header")
            } else {
                evidence!("Cache-Control: {}", cc.as_str())
            },
        ));
    }
    // nginx strips X-Accel-Buffering, so behind nginx its absence proves nothing: no finding there.
    let behind_nginx = h("server").is_some_and(|s| s.to_ascii_lowercase().starts_with("nginx"));
    if !behind_nginx && !h("x-accel-buffering").is_some_and(|v| v.trim().eq_ignore_ascii_case("no"))
    {
        out.push(Finding::new(
            FindingId::MissingXAccelBuffering,
            "no `X-Accel-Buffering: no` header",
        ));
    }
}

/// Headers that say the body was buffered, compressed or cannot be decoded.
fn body_header_findings(rec: &Recording, out: &mut Vec<Finding>) {
    let h = |n: &str| rec.header(n);
    if let Some(cl) = h("content-length") {
        out.push(Finding::new(
            FindingId::ContentLengthOnStream,
            evidence!("Content-Length: {}", cl),
        ));
    }
    if let Some(ce) = h("content-encoding")
        && !matches!(
            ce.trim().to_ascii_lowercase().as_str(),
            "identity" | "none" | ""
        )
    {
        out.push(Finding::new(
            FindingId::ContentEncodingOnStream,
            evidence!("Content-Encoding: {}", ce),
        ));
    }
    if let Some(m) = &rec.later_members {
        out.push(Finding::new(
            FindingId::GzipMembersDropped,
            evidence!(
                "{} gzip members after the first held {} events ({} decoded) that a browser drops",
                Fact::Count(u64::from(m.members)),
                Fact::Count(m.events),
                Fact::Bytes(m.decoded_bytes)
            ),
        ));
    }
    if let End::Undecodable { reason } = &rec.end {
        let id = if reason.starts_with("unsupported") {
            FindingId::UnsupportedContentEncoding
        } else {
            FindingId::CorruptContentEncoding
        };
        out.push(Finding::new(id, Fact::Text(reason.clone())));
    }
}

/// Headers HTTP/2 forbids, HTTP/1.0, and a close-delimited body.
fn version_findings(rec: &Recording, out: &mut Vec<Finding>) {
    let h = |n: &str| rec.header(n);
    if rec.version == "HTTP/2.0" || rec.version == "HTTP/3.0" {
        let bad: Vec<String> = rec
            .headers
            .iter()
            .filter(|(k, _)| {
                matches!(
                    k.as_str(),
                    "connection"
                        | "keep-alive"
                        | "transfer-encoding"
                        | "upgrade"
                        | "proxy-connection"
                )
            })
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        if !bad.is_empty() {
            out.push(Finding::new(
                FindingId::HopByHopHeaderOnH2,
                Fact::Text(bad.join(", ")),
            ));
        }
    }
    if rec.version == "HTTP/1.0" {
        out.push(Finding::new(
            FindingId::Http10Response,
            "status line HTTP/1.0",
        ));
    } else if rec.framing == BodyFraming::CloseDelimited {
        out.push(Finding::new(
            FindingId::CloseDelimitedBody,
            match h("connection") {
                Some(c) => evidence!(
                    "{} without Transfer-Encoding or Content-Length, Connection: {}",
                    rec.version.as_str(),
                    c
                ),
                None => evidence!(
                    "{} without Transfer-Encoding or Content-Length",
                    rec.version.as_str()
                ),
            },
        ));
    }
}

/// Headers that came only with the first event, well after the request.
fn client_saw_headers_with_first_event(rec: &Recording, t: Duration) -> bool {
    match (rec.events.first(), rec.reads.first()) {
        (Some(first), Some(read)) => {
            rec.headers_at > t
                && read.at.saturating_sub(rec.headers_at) < t / 4
                && first.at.saturating_sub(rec.headers_at) < t / 4
        }
        _ => false,
    }
}

/// Framing findings: how events are ended, line endings, encoding, fields and the probe's limits.
fn framing_findings(rec: &Recording, out: &mut Vec<Finding>) {
    let f = &rec.facts;
    // A probe that stopped at a limit cut the stream itself: the tail it saw is not the origin's fault.
    // An error page (404 HTML) is not an event stream: its framing is not judged.
    let real_end =
        matches!(rec.end, End::Complete | End::Aborted { .. }) && (200..300).contains(&rec.status);
    if let Some(u) = &f.unterminated
        && u.had_data
        && real_end
    {
        out.push(Finding::new(
            FindingId::EventNotTerminated,
            evidence!(
                "{} bytes after the last blank line were never dispatched: {}",
                Fact::Bytes(u.len),
                format!(
                    "{:?}",
                    String::from_utf8_lossy(&u.bytes[..u.bytes.len().min(40)])
                )
            ),
        ));
    }
    if f.events == 0 && rec.decoded_bytes > 0 && real_end {
        out.push(Finding::new(
            FindingId::NoEventsDispatched,
            evidence!(
                "{} bytes, {} lines of data, 0 events",
                Fact::Bytes(rec.decoded_bytes),
                f.line_endings.lf + f.line_endings.cr + f.line_endings.crlf
            ),
        ));
    }
    let le = &f.line_endings;
    let kinds = [le.lf, le.cr, le.crlf].iter().filter(|&&c| c > 0).count();
    if kinds > 1 {
        out.push(Finding::new(
            FindingId::MixedLineEndings,
            evidence!("LF {}, CR {}, CRLF {}", le.lf, le.cr, le.crlf),
        ));
    }
    if f.invalid_utf8_lines > 0 {
        out.push(Finding::new(
            FindingId::InvalidUtf8,
            evidence!("{} lines with invalid UTF-8", f.invalid_utf8_lines),
        ));
    }
    if f.bom {
        out.push(Finding::new(
            FindingId::Bom,
            "EF BB BF at the start of the body",
        ));
    }
    if !f.unknown_fields.is_empty() {
        let list: Vec<String> = f
            .unknown_fields
            .iter()
            .map(|(k, c)| format!("{k:?} ×{c}"))
            .collect();
        out.push(Finding::new(
            FindingId::UnknownField,
            Fact::Text(list.join(", ")),
        ));
    }
    if let Some(len) = f.line_too_long {
        out.push(Finding::new(
            FindingId::LineTooLong,
            evidence!(
                "the longest line was {} bytes; {} line(s) over the line limit were kept truncated, their events still counted and timed",
                Fact::Bytes(len),
                f.lines_truncated
            ),
        ));
    }
    // Nagle's signature is every event, or most, waiting on its last piece: a hop that sometimes flushes
    // an event in two (a large event, a compressor's block) is not it.
    let total = rec.events.len() as u64 + rec.events_dropped;
    if rec.pieces.waited >= 2 && rec.pieces.waited * 2 >= total && rec.coding == "identity" {
        out.push(Finding::new(
            FindingId::EventWrittenInPieces,
            evidence!(
                "{} of {} events came in pieces whose last waited up to {} after a small first piece",
                Fact::Count(rec.pieces.waited),
                Fact::Count(total),
                Fact::Duration(rec.pieces.longest)
            ),
        ));
    }
    out.extend(limit_finding(rec));
}

/// The probe stopped at one of its own limits.
fn limit_finding(rec: &Recording) -> Option<Finding> {
    match rec.end {
        End::Limit {
            limit: LimitKind::Bytes,
        } => Some(Finding::new(
            FindingId::ByteLimitReached,
            if rec.decoded_bytes > rec.wire_bytes {
                evidence!(
                    "stopped after {} decoded bytes ({} on the wire)",
                    Fact::Bytes(rec.decoded_bytes),
                    Fact::Bytes(rec.wire_bytes)
                )
            } else {
                evidence!("stopped after {} bytes", Fact::Bytes(rec.wire_bytes))
            },
        )),
        End::Limit {
            limit: LimitKind::DecodeBudget,
        } => Some(Finding::new(
            FindingId::ByteLimitReached,
            evidence!(
                "stopped after {} decoded bytes ({} on the wire): the {} of decompression window shared by the streams measured at once was spent (`-j 1` measures one at a time)",
                Fact::Bytes(rec.decoded_bytes),
                Fact::Bytes(rec.wire_bytes),
                Fact::Bytes(crate::decode::WINDOW_BUDGET)
            ),
        )),
        End::Limit {
            limit: LimitKind::Duration,
        } => Some(Finding::new(
            FindingId::DurationLimitReached,
            evidence!("stopped listening at {}", rec.ended_at),
        )),
        End::Limit {
            limit: LimitKind::Events,
        } => Some(Finding::new(
            FindingId::EventLimitReached,
            evidence!("stopped after {} events", rec.events.len()),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
