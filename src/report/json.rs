//! The machine contract: every JSON document and JSON Lines record ssegate writes, as typed structs that
//! borrow from the measurement and serialize with serde. `schema/check.schema.json` describes them; the
//! integration tests validate real output against it, so a field changed here without the schema fails.
//!
//! Durations are milliseconds with microsecond precision (`*_ms`), as numbers.

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::check::{ChainOutcome, CheckReport, Concurrency, Fixability, Status};
use crate::doctor::{ActiveProbe, Cause, DoctorReport, Platform, Stack};
use crate::probe::{BodyFraming, End, Recording};
use crate::sse::FramingFacts;
use crate::verdict::{Basis, Burst, Delivery, Finding, Verdict};

use super::DATA_SHOWN;
use super::run::RunReport;
use crate::load::LoadSummary;
use crate::phase::load::LoadMeasured;
use crate::text::truncate_at_char_boundary;
use std::collections::BTreeMap;

/// Milliseconds, rounded to the microsecond.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn ser_ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(ms(*d))
}

fn ser_opt_ms<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&ms(*d)),
        None => s.serialize_none(),
    }
}

fn ser_all_ms<S: Serializer>(d: &&[Duration], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(d.iter().map(|&d| ms(d)))
}

/// `probe --format json`: one recording and its verdict (the start of every other document).
#[derive(Debug, Serialize)]
pub struct ProbeDoc<'a> {
    pub version: u32,
    pub url: &'a str,
    pub method: &'a str,
    pub request_headers: &'a [(String, String)],
    pub status: u16,
    pub http_version: &'a str,
    /// TLS version and the ALPN protocol, for `https://`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<&'a crate::probe::TlsFacts>,
    pub headers: &'a [(String, String)],
    #[serde(rename = "headers_ms", serialize_with = "ser_ms")]
    pub headers_at: Duration,
    pub framing: &'a BodyFraming,
    pub coding: &'a str,
    pub end: &'a End,
    #[serde(rename = "ended_ms", serialize_with = "ser_ms")]
    pub ended_at: Duration,
    pub wire_bytes: u64,
    pub decoded_bytes: u64,
    /// Reads recorded (a count; the reads themselves stay in the recording).
    pub reads: usize,
    #[serde(rename = "comments_ms", serialize_with = "ser_all_ms")]
    pub comments: &'a [Duration],
    pub retry: Option<u64>,
    pub facts: &'a FramingFacts,
    pub delivery: Delivery,
    pub basis: Basis,
    #[serde(rename = "threshold_ms", serialize_with = "ser_ms")]
    pub threshold: Duration,
    pub events: Vec<EventDoc<'a>>,
    pub bursts: &'a [Burst],
    pub findings: &'a [Finding],
    /// How starved this machine was while the stream was measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pressure: Option<&'a crate::pressure::Pressure>,
    /// The protocol the stream was read as (`protocol`) and what said so (`protocol_from`).
    #[serde(flatten)]
    pub protocol: &'a crate::verdict::tokens::Detected,
    /// Token timing, for a token stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<&'a crate::verdict::tokens::Tokens>,
    /// A real browser's view of the same URL (`--browser`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser: Option<&'a crate::verdict::browser::BrowserVerdict>,
}

/// One event: its identity, size, timing, and its data (whole when short, else its head).
#[derive(Debug, Serialize)]
pub struct EventDoc<'a> {
    pub seq: u64,
    pub id: &'a str,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    /// The data's length as dispatched, also when only its first bytes were kept.
    pub data_bytes: u64,
    #[serde(rename = "arrival_ms", serialize_with = "ser_ms")]
    pub arrival: Duration,
    #[serde(rename = "latency_ms", serialize_with = "ser_opt_ms")]
    pub latency: Option<Duration>,
    pub held: bool,
    pub burst: usize,
    /// The whole data, when it is at most [`DATA_SHOWN`] bytes: always exact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a str>,
    /// The first bytes of longer data, cut at a character boundary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_head: Option<&'a str>,
}

impl<'a> ProbeDoc<'a> {
    /// With the browser's view beside ssegate's.
    pub fn with_browser(
        mut self,
        b: Option<&'a crate::verdict::browser::BrowserVerdict>,
    ) -> ProbeDoc<'a> {
        self.browser = b;
        self
    }

    pub fn new(r: &'a Recording, v: &'a Verdict) -> ProbeDoc<'a> {
        ProbeDoc {
            version: 1,
            url: &r.url,
            method: &r.method,
            request_headers: &r.request_headers,
            status: r.status,
            http_version: &r.version,
            tls: r.tls.as_ref(),
            headers: &r.headers,
            headers_at: r.headers_at,
            framing: &r.framing,
            coding: &r.coding,
            end: &r.end,
            ended_at: r.ended_at,
            wire_bytes: r.wire_bytes,
            decoded_bytes: r.decoded_bytes,
            reads: r.reads.len(),
            comments: &r.comments,
            retry: r.retry,
            facts: &r.facts,
            delivery: v.delivery,
            basis: v.basis,
            threshold: v.threshold,
            events: v
                .events
                .iter()
                .zip(&r.events)
                .map(|(t, a)| {
                    let data = &a.event.data;
                    let (whole, head) = if a.event.truncated == 0 && data.len() <= DATA_SHOWN {
                        (Some(data.as_str()), None)
                    } else {
                        (None, Some(truncate_at_char_boundary(data, DATA_SHOWN)))
                    };
                    EventDoc {
                        seq: t.seq,
                        id: &a.event.id,
                        event_type: &a.event.event_type,
                        data_bytes: a.event.data_len(),
                        arrival: t.arrival,
                        latency: t.latency,
                        held: t.held,
                        burst: t.burst,
                        data: whole,
                        data_head: head,
                    }
                })
                .collect(),
            bursts: &v.bursts,
            findings: &v.findings,
            pressure: r.pressure.as_ref(),
            protocol: &v.protocol,
            tokens: v.tokens.as_ref(),
            browser: None,
        }
    }
}

/// One chain of `check` (the baseline is the chain `direct`): the probe document plus the gate's fields.
#[derive(Debug, Serialize)]
pub struct ChainDoc<'a> {
    #[serde(flatten)]
    pub probe: ProbeDoc<'a>,
    pub name: &'a str,
    pub chain: &'a str,
    pub programs: &'a [String],
    pub expected: Delivery,
    pub result: Status,
    pub reasons: &'a [String],
    pub fix: &'a Option<Fixability>,
    #[serde(rename = "origin_wait_ms", serialize_with = "ser_opt_ms")]
    pub origin_wait: Option<Duration>,
    pub serial: bool,
    /// The phases through this chain, one key each (`load`, `lifecycle`, `browser`).
    #[serde(flatten)]
    pub phases: &'a crate::phase::Phases,
    /// How long its own measurement and its fix experiment took.
    pub took: crate::check::ChainTook,
    /// With `--protocol mcp`: the session opened through this chain before the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp: Option<&'a crate::verdict::mcp::McpSession>,
}

impl<'a> ChainDoc<'a> {
    pub fn new(c: &'a ChainOutcome) -> ChainDoc<'a> {
        ChainDoc {
            probe: ProbeDoc::new(&c.recording, &c.verdict),
            name: &c.name,
            chain: &c.chain,
            programs: &c.programs,
            expected: c.expected,
            result: c.status,
            reasons: &c.reasons,
            fix: &c.fix,
            origin_wait: c.origin_wait,
            serial: c.serial,
            phases: &c.phases,
            took: c.took,
            mcp: c.mcp.as_ref(),
        }
    }
}

/// One line of `check --format json`: `{"type": …, "data": …}`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "kebab-case")]
pub enum CheckLine<'a> {
    CheckStart {
        version: u32,
        target: &'a str,
        partition: &'a Option<String>,
        chains: Vec<&'a str>,
    },
    Baseline(ChainDoc<'a>),
    Chain(ChainDoc<'a>),
    /// A chain whose program is not installed: not measured, never a pass.
    NotRun(&'a crate::check::NotRun),
    Summary {
        passed: bool,
        took_ms: u64,
        failed: Vec<&'a str>,
        warned: Vec<&'a str>,
        not_judged: Vec<&'a str>,
        /// Chains that broke twice while the machine was too busy to tell.
        inconclusive: Vec<&'a str>,
        not_run: Vec<&'a str>,
        causes: &'a [Cause],
        stack: Option<Stack>,
        concurrency: &'a Option<Concurrency>,
        /// Where the time went, step by step.
        steps: &'a [crate::check::Step],
    },
}

impl<'a> CheckLine<'a> {
    /// Every line of a report, in order: start, baseline, each chain, summary.
    pub fn all(r: &'a CheckReport) -> Vec<CheckLine<'a>> {
        let named = |s: Status| -> Vec<&'a str> {
            r.all()
                .filter(|c| c.status == s)
                .map(|c| c.name.as_str())
                .collect()
        };
        let mut lines = vec![
            CheckLine::CheckStart {
                version: 1,
                target: &r.target,
                partition: &r.partition,
                chains: r.chains.iter().map(|c| c.name.as_str()).collect(),
            },
            CheckLine::Baseline(ChainDoc::new(&r.baseline)),
        ];
        lines.extend(r.chains.iter().map(|c| CheckLine::Chain(ChainDoc::new(c))));
        lines.extend(r.not_run.iter().map(CheckLine::NotRun));
        lines.push(CheckLine::Summary {
            passed: r.passed,
            took_ms: r.took.as_millis() as u64,
            failed: named(Status::Fail),
            warned: named(Status::Warn),
            not_judged: named(Status::NotJudged),
            inconclusive: named(Status::Inconclusive),
            not_run: r.not_run.iter().map(|n| n.name.as_str()).collect(),
            causes: &r.causes,
            stack: r.stack,
            concurrency: &r.concurrency,
            steps: &r.steps,
        });
        lines
    }
}

/// `doctor --format json`: the probe document plus the ranked causes, platforms and active re-probes.
#[derive(Debug, Serialize)]
pub struct DoctorDoc<'a> {
    #[serde(flatten)]
    pub probe: ProbeDoc<'a>,
    pub causes: &'a [Cause],
    pub platforms: &'a [Platform],
    pub active: &'a [ActiveProbe],
    pub compare: Option<CompareDoc<'a>>,
}

/// The `--compare` recording, summarized.
#[derive(Debug, Serialize)]
pub struct CompareDoc<'a> {
    pub url: &'a str,
    pub events: usize,
    pub ended_ms: u64,
    /// Its own delivery: the target is judged against it only when this is `streamed`.
    pub delivery: Option<crate::verdict::Delivery>,
}

impl<'a> DoctorDoc<'a> {
    pub fn new(d: &'a DoctorReport) -> DoctorDoc<'a> {
        DoctorDoc {
            probe: ProbeDoc::new(&d.recording, &d.verdict).with_browser(d.browser.as_ref()),
            causes: &d.causes,
            platforms: &d.platforms,
            active: &d.active,
            compare: d.compare.as_ref().map(|c| CompareDoc {
                url: &c.url,
                events: c.events.len(),
                ended_ms: c.ended_at.as_millis() as u64,
                delivery: d.compare_delivery,
            }),
        }
    }
}

/// Pretty JSON of a document, newline-terminated.
pub fn pretty<T: Serialize>(doc: &T) -> String {
    serde_json::to_string_pretty(doc).unwrap_or_default() + "\n"
}

/// One compact JSON line per record, each newline-terminated.
pub fn lines<T: Serialize>(records: &[T]) -> String {
    records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap_or_default() + "\n")
        .collect()
}

/// JSON Lines for `check`: `check-start`, `baseline`, one `chain` per chain, `summary`.
/// Every line is `{"type": …, "data": …}`; `schema/check.schema.json` describes them.
pub fn check_jsonl(r: &CheckReport) -> String {
    super::json::lines(&super::json::CheckLine::all(r))
}

/// The JSON document (`run.json`).
pub fn run_json(r: &RunReport) -> String {
    serde_json::to_string_pretty(r).unwrap_or_default() + "\n"
}

#[derive(Serialize)]
struct Doc<'a> {
    url: &'a str,
    chain: &'a str,
    #[serde(flatten)]
    summary: &'a LoadSummary,
    /// The first message of each failure reason.
    failure_examples: BTreeMap<&'static str, &'a str>,
}

/// One JSON document.
pub fn load_json(url: &str, chain: &str, l: &LoadMeasured) -> String {
    let (s, examples) = (&l.summary, &l.failure_examples);
    pretty(&Doc {
        url,
        chain,
        summary: s,
        failure_examples: examples.iter().map(|(f, m)| (*f, m.as_str())).collect(),
    })
}
