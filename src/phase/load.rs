//! The load: many concurrent streams through the same running chain once the probe has ended (a case's
//! `load:`, `check`'s `listen.streams`), or straight to a URL ([`load_direct`]; `ssegate load`). Each
//! is judged against the fixture's send instants for it when the fixture is the witness, else against
//! the fastest stream per event; [`crate::verdict::capacity`] judges whether the chain held them.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::{GatePolicy, Level, Phase};
use crate::intermediary::HopSpec;
use crate::load::{Counters, Fanout, LatencyBase, LoadPlan, LoadSpec, LoadSummary};
use crate::origin::FixtureServer;
use crate::probe::ProbeRequest;
use crate::through::{Main, ScenarioError, Through};
use crate::verdict::capacity::{Capacity, LoadCounts, judge_capacity};
use crate::verdict::{Finding, FindingId};

/// The load phase.
pub struct LoadPhase;

/// What a load measured, judged.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadMeasured {
    pub capacity: Capacity,
    #[serde(flatten)]
    pub summary: LoadSummary,
    /// The first message of each failure reason.
    pub failure_examples: BTreeMap<&'static str, String>,
}

/// The counts the capacity verdict reads.
fn counts(s: &LoadSummary) -> LoadCounts<'_> {
    LoadCounts {
        streams: s.streams,
        connected: s.connected,
        failed: &s.failed,
        cut: s.cut,
    }
}

impl LoadMeasured {
    /// Judge a load run's summary.
    pub fn new(summary: LoadSummary, examples: &BTreeMap<crate::load::Failure, String>) -> Self {
        let (capacity, _) = judge_capacity(counts(&summary));
        LoadMeasured {
            capacity,
            failure_examples: examples
                .iter()
                .map(|(f, m)| (f.as_str(), m.clone()))
                .collect(),
            summary,
        }
    }

    /// `streams-refused` when the chain did not hold the load.
    pub fn finding(&self) -> Option<Finding> {
        judge_capacity(counts(&self.summary)).1
    }
}

impl Phase for LoadPhase {
    const KEY: &'static str = "load";
    const LAST: bool = true;
    const OWN_CHAIN: bool = true;
    const EXPECT_MISSING: &'static str =
        "a case with `load` must say whether the chain holds it: `expect.capacity`";
    const EXPECT_ALONE: &'static str = "`expect.capacity` needs a `load` to measure it";
    const EXPECT_VALUES: &'static str = "full, limited";
    type Plan = LoadPlan;
    type Result = LoadMeasured;
    type Expect = (Option<Capacity>,);

    fn validate(plan: &LoadPlan) -> Result<(), String> {
        plan.validate()
    }

    /// Before the chain starts, so that its programs inherit the raised limit (nginx's
    /// `worker_connections` needs descriptors too; with `master_process off` it never raises its own).
    fn prepare(plan: &LoadPlan, hops: &[HopSpec], fixture: bool) {
        let per = crate::load::fds_per_stream(fixture, !fixture, builtin_hops(hops));
        crate::load::raise_fd_limit(plan.streams, per);
    }

    async fn measure(
        plan: LoadPlan,
        through: &Through<'_>,
        main: &Main,
    ) -> Result<LoadMeasured, ScenarioError> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let path = format!(
            "/load/{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let fixture = through.fixture();
        let mut request = main.sent.clone();
        if fixture.is_some() {
            request.url = format!("http://{}{path}", through.upstream());
        }
        run_load(
            &LoadTarget {
                request: through.retarget(&request),
                plan,
                fanout: Fanout::PerStream,
                fixture: fixture.map(|f| (f, path.as_str())),
                fds_per_stream: crate::load::fds_per_stream(
                    fixture.is_some(),
                    fixture.is_none(),
                    builtin_hops(through.hops()),
                ),
            },
            Arc::default(),
        )
        .await
    }

    fn findings(r: &LoadMeasured) -> Vec<Finding> {
        r.finding().into_iter().collect()
    }

    fn expectation(
        (want,): (Option<Capacity>,),
        got: Option<&LoadMeasured>,
        failures: &mut Vec<String>,
    ) {
        let Some(want) = want else { return };
        match got {
            Some(got) if got.capacity != want => failures.push(format!(
                "expected capacity `{want}`, measured `{}`",
                got.capacity
            )),
            Some(_) => {}
            None => failures.push(format!("expected capacity `{want}`, but no load ran")),
        }
    }

    fn snapshot(l: &LoadMeasured, s: &mut String) {
        let m = &l.summary;
        let _ = writeln!(s, "load: {} concurrent streams after the probe", m.streams);
        let _ = writeln!(s, "  connected: {} of {}", m.connected, m.streams);
        // The total and the reason most of them failed with, not the count per reason: when a proxy is
        // out of connections, whether a refused client gets an error status or a reset depends on how
        // soon the previous refused client's connection was freed (nginx answers 500 while it has a
        // connection for the client, and resets it when it has none), which varies with the machine's
        // load. `ssegate load` and the JSON reports keep the counts.
        let total: usize = m.failed.values().sum();
        match m
            .failed
            .iter()
            .max_by_key(|(r, n)| (**n, std::cmp::Reverse(**r)))
        {
            None => {
                let _ = writeln!(s, "  failed: 0");
            }
            Some((reason, _)) => {
                let example = l
                    .failure_examples
                    .get(reason)
                    .map(|e| format!(" ({})", crate::normalize::message(e)))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "  failed: {total} before their headers, most of them {reason}{example}"
                );
            }
        }
        let _ = writeln!(s, "  cut: {}", m.cut);
        let _ = writeln!(s, "  events: {}", m.events);
        let _ = writeln!(s, "  capacity: {}", l.capacity);
    }

    fn human(l: &LoadMeasured, s: &mut String) {
        let m = &l.summary;
        let failed = m.failed_label();
        // `; LABEL p50 … p99 …`, or nothing without figures.
        let p50_p99 = |label: &str, p: Option<crate::load::Percentiles>| {
            p.map(|p| {
                format!(
                    "; {label} p50 {} p99 {}",
                    crate::text::human_duration(p.p50),
                    crate::text::human_duration(p.p99)
                )
            })
            .unwrap_or_default()
        };
        let latency = p50_p99("event latency", m.latency);
        let ttft = p50_p99("TTFT", m.tokens.as_ref().and_then(|t| t.ttft));
        let _ = writeln!(
            s,
            "load: {} of {} concurrent streams connected, failed {}, cut {}{latency}{ttft}",
            m.connected,
            m.streams,
            if failed.is_empty() { "0" } else { &failed },
            m.cut
        );
    }

    /// A chain that does not hold the load is the operator's to fix (its limits), unless allowed.
    fn gate(
        l: &LoadMeasured,
        policy: &GatePolicy<'_>,
        direct: Option<&LoadMeasured>,
    ) -> Vec<(Level, String)> {
        if l.capacity != Capacity::Limited || (policy.allowed)(FindingId::StreamsRefused) {
            return Vec::new();
        }
        let s = &l.summary;
        let why = s.failed_label();
        let mut r = format!("holds {} of {} concurrent streams", s.connected, s.streams);
        if !why.is_empty() {
            r.push_str(&format!(" (failed: {why})"));
        }
        if s.cut > 0 {
            r.push_str(&format!(", {} cut", s.cut));
        }
        match direct {
            Some(d) if d.capacity == Capacity::Limited => {
                r.push_str(&format!(
                    "; the direct stream held only {} of {} too: the origin's limit first",
                    d.summary.connected, d.summary.streams
                ));
            }
            _ => {
                if let Some(op) = FindingId::StreamsRefused.rule().operator_fix {
                    r.push_str(&format!("; operator fix: {op}"));
                }
            }
        }
        vec![(Level::Warn, r)]
    }
}

/// The fixture's send instants of each load stream, by the stream's number (its `ssegate_stream` tag).
pub struct StreamSends(HashMap<usize, Vec<Instant>>);

impl StreamSends {
    /// The streams whose path starts with `path`.
    pub fn of(server: &FixtureServer, path: &str) -> StreamSends {
        let tag = format!("{}=", crate::load::STREAM_PARAM);
        StreamSends(
            server
                .requests()
                .into_iter()
                .filter(|r| r.target.starts_with(path))
                .filter_map(|r| {
                    Some((r.target.rsplit_once(tag.as_str())?.1.parse().ok()?, r.sends))
                })
                .collect(),
        )
    }

    /// When stream `i` was sent its event `seq` (1-based).
    pub fn get(&self, i: usize, seq: u32) -> Option<Instant> {
        self.0.get(&i)?.get(seq.checked_sub(1)? as usize).copied()
    }
}

/// In-process hops of a chain (each relays a stream on two descriptors of this process).
pub fn builtin_hops(hops: &[HopSpec]) -> usize {
    hops.iter()
        .filter(|h| matches!(h, HopSpec::Builtin(_)))
        .count()
}

/// One load at a time in the process: two at once would measure each other.
static LOAD_TURN: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// A load against a running target: what the load phase, `check`'s direct stream and `ssegate load`
/// share.
pub struct LoadTarget<'a> {
    /// The request each stream sends (to the chain's entry, or the URL).
    pub request: ProbeRequest,
    pub plan: LoadPlan,
    /// What latency is measured against without the fixture's sends.
    pub fanout: Fanout,
    /// The fixture and the path the streams take, when it is the origin: the streams are tagged, and
    /// each is judged against the fixture's send instants for it.
    pub fixture: Option<(&'a FixtureServer, &'a str)>,
    /// Descriptors each stream costs this process.
    pub fds_per_stream: u64,
}

/// `plan.streams` concurrent streams at `t`, one load at a time in the process (two loads at once
/// would measure each other), judged; `counters` follow it as it runs.
pub async fn run_load(
    t: &LoadTarget<'_>,
    counters: Arc<Counters>,
) -> Result<LoadMeasured, ScenarioError> {
    let _turn = LOAD_TURN.acquire().await.ok();
    let spec = LoadSpec {
        request: t.request.clone(),
        streams: t.plan.streams,
        ramp: t.plan.ramp(),
        schedule: t.fanout,
        tag_streams: t.fixture.is_some(),
        fds_per_stream: t.fds_per_stream,
    };
    let run = crate::load::run(&spec, counters)
        .await
        .map_err(load_error)?;
    let summary = match t.fixture {
        Some((server, path)) => {
            let sends = StreamSends::of(server, path);
            let sent = |i, seq| sends.get(i, seq);
            run.summarize(&LatencyBase::Sends(&sent))
        }
        None => run.summarize(&LatencyBase::Baseline(t.fanout)),
    };
    Ok(LoadMeasured::new(summary, &run.examples))
}

/// `plan.streams` concurrent streams straight to the origin with the probe's request (`check`'s direct
/// stream), the fastest stream per event as the reference.
pub async fn load_direct(
    req: &ProbeRequest,
    plan: LoadPlan,
) -> Result<LoadMeasured, ScenarioError> {
    let target = LoadTarget {
        request: req.clone(),
        plan,
        fanout: Fanout::PerStream,
        fixture: None,
        fds_per_stream: 1,
    };
    run_load(&target, Arc::default()).await
}

fn load_error(e: crate::load::LoadError) -> ScenarioError {
    match e {
        crate::load::LoadError::Probe(p) => ScenarioError::Probe(p),
        e @ crate::load::LoadError::FdLimit { .. } => ScenarioError::Load(e),
    }
}
