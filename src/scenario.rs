//! One scenario: an origin, a chain in front of it, one probe through the chain, judged.
//!
//! Every measurement ssegate makes through a chain goes through [`measure`]: a conformance case
//! (`run`), each chain of `check`'s matrix, and each of `check`'s fix experiments (the same chain with
//! extra hops next to the origin). What differs is only the *witness* of what the origin sent:
//!
//! - the built-in fixture logs its own send instants per request, so a case is judged against them;
//! - any other origin (a command ssegate started, a running URL) gets a [`Tap`] right in front of it,
//!   which stamps the response head and each event as they leave the origin; when no exchange reached
//!   the origin through the tap (a hop answered by itself), the fallback recording (the direct baseline)
//!   is the reference, and the verdict's basis says so.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::browser::{Browser, BrowserError, FetchInit, PageRequest, Reader};
use crate::intermediary::{Chain, HopError, HopSpec};
use crate::load::{LoadPlan, LoadSpec, LoadSummary};
use crate::origin::command::{SharedTarget, TargetError};
use crate::origin::{FixtureServer, Profile};
use crate::probe::{ProbeError, ProbeRequest, Recording, probe};
use crate::tap::Tap;
use crate::verdict::browser::{
    BrowserVerdict, LIMIT_STREAMS, judge_browser, judge_connection_limit, page_recording,
};
use crate::verdict::capacity::{Capacity, LoadCounts, judge_capacity};
use crate::verdict::lifecycle::Lifecycle;
use crate::verdict::sharing::{OriginSide, SecondClient, SecondOpen, judge_sharing};
use crate::verdict::{Reference, Schedule, Verdict, judge, sort_findings};

/// Why a scenario could not be measured (as opposed to measuring a broken stream).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("failed to start the tap in front of the origin")]
    Tap(#[source] std::io::Error),
    #[error("failed to start the chain")]
    Hop(#[source] HopError),
    #[error("failed to probe the stream")]
    Probe(#[source] ProbeError),
    /// A load could not start (the descriptor limit).
    #[error("failed to start the load")]
    Load(#[source] crate::load::LoadError),
    /// The origin ssegate started exited while the scenario ran.
    #[error("the target died")]
    TargetDied(#[source] TargetError),
    #[error("failed to run the browser probe")]
    Browser(#[source] BrowserError),
}

/// Who tells what the origin sent, and when.
pub enum Witness<'a> {
    /// The built-in fixture serving `profile`: it logs its own send instants.
    Fixture {
        server: &'a FixtureServer,
        profile: &'a Profile,
    },
    /// A tap in front of `upstream`; `fallback` judges when no exchange went through it; `target`, when
    /// ssegate started the origin, is checked whenever a probe fails or answers an error.
    Tap {
        upstream: SocketAddr,
        fallback: Option<&'a Recording>,
        target: Option<&'a SharedTarget>,
    },
}

/// A scenario: this chain (origin side first) in front of the witnessed origin, probed with `request`.
pub struct Scenario<'a> {
    pub chain: &'a [HopSpec],
    pub request: &'a ProbeRequest,
    pub witness: Witness<'a>,
    /// A second client on the same URL through the same chain (fixture witness only: the fixture's log
    /// tells whether its request reached the origin).
    pub second: Option<SecondOpen>,
    /// Many concurrent streams through the same chain once the probe has ended (fixture witness only:
    /// its log has every stream's send instants).
    pub load: Option<LoadPlan>,
    /// After the probe, the lifecycle phases through the same chain (tap witness only: the tap sees
    /// what reaches the origin): a reconnect with `Last-Event-ID`, and a client that leaves early.
    pub lifecycle: bool,
    /// After the probe, a real browser on the same URL through the same chain (fixture witness only);
    /// `Some(true)` also measures the connection limit.
    pub browser: Option<bool>,
}

/// What a scenario's load measured, judged.
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
    pub fn finding(&self) -> Option<crate::verdict::Finding> {
        judge_capacity(counts(&self.summary)).1
    }
}

/// What one scenario measured.
#[derive(Debug)]
pub struct Measurement {
    pub recording: Recording,
    pub verdict: Verdict,
    /// Versions of the real programs in the chain.
    pub programs: Vec<String>,
    /// Method and HTTP version of the request the origin received (fixture only).
    pub origin_saw: Option<String>,
    /// How long the request waited at the origin before its response head left (tap only).
    pub origin_wait: Option<Duration>,
    /// From the origin's response head to the end of the response or of the probe (tap only).
    pub open_at_origin: Option<(Instant, Instant)>,
    /// What the second client got, when the scenario has one.
    pub second: Option<SecondClient>,
    /// What the load got, when the scenario has one.
    pub load: Option<LoadMeasured>,
    /// The lifecycle phases, when the scenario asks for them.
    pub lifecycle: Option<Lifecycle>,
    /// The browser's view, when the scenario asks for it.
    pub browser: Option<BrowserVerdict>,
}

/// Measure one scenario.
pub async fn measure(s: &Scenario<'_>) -> Result<Measurement, ScenarioError> {
    if let Some(plan) = s.load {
        // Before the chain starts, so that its programs inherit the raised limit (nginx's
        // `worker_connections` needs descriptors too; with `master_process off` it never raises its own).
        let fixture = matches!(s.witness, Witness::Fixture { .. });
        let per = crate::load::fds_per_stream(fixture, !fixture, builtin_hops(s.chain));
        crate::load::raise_fd_limit(plan.streams, per);
    }
    match s.witness {
        Witness::Fixture { server, profile } => measure_fixture(s, server, profile).await,
        Witness::Tap {
            upstream,
            fallback,
            target,
        } => measure_tapped(s, upstream, fallback, target).await,
    }
}

async fn measure_fixture(
    s: &Scenario<'_>,
    server: &FixtureServer,
    profile: &Profile,
) -> Result<Measurement, ScenarioError> {
    // A path of its own, so that the origin's log entry for this probe is told apart from any stray
    // request (a readiness check from a hop that lost a port race to this origin, say).
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let path = format!(
        "/events/{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut req = s.request.clone();
    req.url = format!("http://{}{path}", server.addr());
    let (chain, rec, second, sent) =
        probe_through(s.chain, server.addr(), &req, None, s.second).await?;
    let requests = server.requests();
    let ours: Vec<_> = requests
        .iter()
        .filter(|r| r.target.starts_with(&path))
        .collect();
    // The first client's request is the first to arrive (a second client's, if any, comes later).
    let first = ours.first().copied();
    let schedule = first
        .map(|r| Schedule {
            sends: r.sends.iter().map(|&t| rec.offset(t)).collect(),
            headers_sent: r.headers_sent.map(|t| rec.offset(t)),
            ended: r.ended.map(|t| rec.offset(t)),
            gap: Some(profile.events.gap()),
            planned: Some(profile.events.count as usize),
            by_position: false,
        })
        .unwrap_or_default();
    let mut verdict = judge(&rec, Reference::Schedule(&schedule));
    let lifecycle = if s.lifecycle {
        let seen = |rec: &Recording, req: &ProbeRequest| {
            let end = rec.start + rec.ended_at;
            let log = server.requests();
            let r = log.iter().rfind(|r| {
                r.target.starts_with(&path)
                    && r.method.eq_ignore_ascii_case(&req.method)
                    && r.received >= rec.start
                    && r.received <= end
            })?;
            Some(OriginView {
                last_event_id: r
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("last-event-id"))
                    .map(|(_, v)| v.clone()),
                sends: r.sends.clone(),
                closed: r.ended.filter(|_| r.client_gone),
                ended: r.ended.filter(|_| !r.client_gone),
            })
        };
        Some(lifecycle(&seen, &sent, &rec, None, true).await?)
    } else {
        None
    };
    let browser = match s.browser {
        Some(limit) => {
            // The browser's request is the first on this path after it was asked to open it; its sends
            // are offsets from the instant the fixture received it (the page's clock starts a moment
            // before, when it created the EventSource).
            let reference = |asked: Instant| {
                let log = server.requests();
                let r = log
                    .iter()
                    .find(|r| r.target.starts_with(&path) && r.received >= asked)?;
                let at = |t: Instant| t.saturating_duration_since(r.received);
                Some(Schedule {
                    sends: r.sends.iter().map(|&t| at(t)).collect(),
                    headers_sent: r.headers_sent.map(at),
                    ended: r.ended.map(at),
                    gap: Some(profile.events.gap()),
                    planned: Some(profile.events.count as usize),
                    by_position: false,
                })
            };
            Some(browser_for(&sent, (&rec, &verdict), limit, &reference).await?)
        }
        None => None,
    };
    let second = second.map(|rec2| {
        let origin = OriginSide {
            requests: ours.len(),
            first_sends: first.map(|r| r.sends.clone()).unwrap_or_default(),
            first_ended: first.and_then(|r| r.ended),
        };
        let (second, finding) = judge_sharing(rec.start, &rec2, &origin);
        verdict.findings.extend(finding);
        sort_findings(&mut verdict.findings);
        second
    });
    let load = match s.load {
        Some(plan) => {
            let measured = load_through(
                s.chain,
                &chain,
                server.addr(),
                s.request,
                plan,
                Some(server),
            )
            .await?;
            verdict.findings.extend(measured.finding());
            sort_findings(&mut verdict.findings);
            Some(measured)
        }
        None => None,
    };
    Ok(Measurement {
        lifecycle,
        browser,
        verdict,
        origin_saw: first.map(|r| format!("{} {}", r.method, r.version)),
        programs: chain.programs(),
        recording: rec,
        origin_wait: None,
        open_at_origin: None,
        second,
        load,
    })
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

/// `plan.streams` concurrent streams straight to the origin with the probe's request (`check`'s direct
/// stream), the fastest stream per event as the reference.
pub async fn load_direct(
    req: &ProbeRequest,
    plan: LoadPlan,
) -> Result<LoadMeasured, ScenarioError> {
    let _turn = LOAD_TURN.acquire().await.ok();
    let spec = LoadSpec {
        request: req.clone(),
        streams: plan.streams,
        ramp: plan.ramp(),
        schedule: crate::load::Schedule::PerStream,
        tag_streams: false,
        fds_per_stream: 1,
    };
    let run = crate::load::run(&spec, std::sync::Arc::default())
        .await
        .map_err(load_error)?;
    let summary = run.summarize(&crate::load::Reference::Baseline(
        crate::load::Schedule::PerStream,
    ));
    Ok(LoadMeasured::new(summary, &run.examples))
}

fn load_error(e: crate::load::LoadError) -> ScenarioError {
    match e {
        crate::load::LoadError::Probe(p) => ScenarioError::Probe(p),
        e @ crate::load::LoadError::FdLimit { .. } => ScenarioError::Load(e),
    }
}

/// `plan.streams` concurrent streams through the running chain, one load at a time in the process (two
/// loads at once would measure each other). To the fixture, each stream has its own tagged path and is
/// judged against the fixture's send instants for it; to any other origin (through the tap), the request
/// is the probe's and the fastest stream per event is the reference.
async fn load_through(
    hops: &[HopSpec],
    chain: &Chain,
    upstream: SocketAddr,
    req: &ProbeRequest,
    plan: LoadPlan,
    fixture: Option<&FixtureServer>,
) -> Result<LoadMeasured, ScenarioError> {
    let _turn = LOAD_TURN.acquire().await.ok();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let path = format!(
        "/load/{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut request = req.clone();
    if fixture.is_some() {
        request.url = format!("http://{upstream}{path}");
    }
    let spec = LoadSpec {
        request: retarget(&request, chain.entry(upstream), chain.tls()),
        streams: plan.streams,
        ramp: plan.ramp(),
        schedule: crate::load::Schedule::PerStream,
        tag_streams: fixture.is_some(),
        fds_per_stream: crate::load::fds_per_stream(
            fixture.is_some(),
            fixture.is_none(),
            builtin_hops(hops),
        ),
    };
    let run = crate::load::run(&spec, std::sync::Arc::default())
        .await
        .map_err(load_error)?;
    let summary = match fixture {
        Some(server) => {
            let sends = StreamSends::of(server, &path);
            let sent = |i, seq| sends.get(i, seq);
            run.summarize(&crate::load::Reference::Sends(&sent))
        }
        None => run.summarize(&crate::load::Reference::Baseline(
            crate::load::Schedule::PerStream,
        )),
    };
    Ok(LoadMeasured::new(summary, &run.examples))
}

async fn measure_tapped(
    s: &Scenario<'_>,
    upstream: SocketAddr,
    fallback: Option<&Recording>,
    target: Option<&SharedTarget>,
) -> Result<Measurement, ScenarioError> {
    let tap = Tap::start(upstream).await.map_err(ScenarioError::Tap)?;
    let (chain, rec, _, sent) = probe_through(s.chain, tap.addr(), s.request, target, None).await?;
    // A chain that answered an error, or whose tap could not reach the origin, may have lost its origin.
    if !(200..300).contains(&rec.status) || tap.connect_error().is_some() {
        target_alive(target)?;
    }
    let exchange = tap.exchange_for(&rec, &sent.method, &request_target(&sent.url));
    let end = rec.start + rec.ended_at;
    let (verdict, origin_wait, open_at_origin) = match (&exchange, fallback) {
        (Some(e), _) => (
            judge(&rec, Reference::Schedule(&e.schedule(&rec))),
            Some(e.origin_wait(end)),
            e.headers_at.map(|h| (h, e.ended.unwrap_or(end).min(end))),
        ),
        (None, Some(baseline)) => (judge(&rec, Reference::Baseline(baseline)), None, None),
        (None, None) => (judge(&rec, Reference::None), None, None),
    };
    let mut verdict = verdict;
    let browser = match s.browser {
        Some(limit) => {
            let path = request_target(&sent.url);
            let reference =
                |asked: Instant| tap.first_since(asked, &path).map(|e| e.own_schedule());
            Some(browser_for(&sent, (&rec, &verdict), limit, &reference).await?)
        }
        None => None,
    };
    let lifecycle = if s.lifecycle {
        let seen = |rec: &Recording, req: &ProbeRequest| {
            let e = tap.exchange_for(rec, &req.method, &request_target(&req.url))?;
            Some(OriginView {
                last_event_id: e.last_event_id,
                sends: e.sends,
                closed: e.client_closed,
                ended: e.ended.filter(|_| e.end != crate::tap::TapEnd::ClientGone),
            })
        };
        Some(lifecycle(&seen, &sent, &rec, target, false).await?)
    } else {
        None
    };
    let load = match s.load {
        Some(plan) => {
            let measured = load_through(s.chain, &chain, tap.addr(), s.request, plan, None).await?;
            verdict.findings.extend(measured.finding());
            sort_findings(&mut verdict.findings);
            Some(measured)
        }
        None => None,
    };
    Ok(Measurement {
        recording: rec,
        verdict,
        programs: chain.programs(),
        origin_saw: None,
        origin_wait,
        open_at_origin,
        second: None,
        load,
        lifecycle,
        browser,
    })
}

/// How long the connection-limit measurement watches seven `EventSource`s at most.
pub const LIMIT_WATCH: Duration = Duration::from_secs(12);

/// A real browser's view of `url` beside ssegate's `ours`: one `EventSource` watched for `duration` (or
/// `max_events`), judged against `reference(instant the page was asked to open it)` when the origin's
/// sends are known (else inferred, as ssegate's probe of a URL is), and compared; with `limit`, seven
/// `EventSource`s on the URL for the per-host connection limit.
pub async fn browser_view(
    req: &ProbeRequest,
    ours: (&Recording, &Verdict),
    limit: bool,
    reference: &(dyn Fn(Instant) -> Option<Schedule> + Sync),
) -> Result<BrowserVerdict, BrowserError> {
    let url = req.url.as_str();
    let (duration, max_events) = (req.limits.duration, req.limits.max_events);
    // EventSource sends a GET with no body and no headers of the page's: anything else is a page that
    // reads the stream with fetch().
    let extra: Vec<(String, String)> = req
        .headers
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .cloned()
        .collect();
    let fetch = (!req.method.eq_ignore_ascii_case("GET")
        || req.body.is_some()
        || !extra.is_empty())
    .then(|| FetchInit {
        method: req.method.clone(),
        headers: extra,
        body: req.body.clone(),
    });
    let reader = if fetch.is_some() {
        Reader::Fetch
    } else {
        Reader::EventSource
    };
    // One browser at a time in the process: Chromium's start costs a core for a second, and two pages
    // would share the machine with each other's streams.
    static BROWSER_TURN: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
    let _turn = BROWSER_TURN.acquire().await.ok();
    let browser = Browser::start().await?;
    let result = async {
        let mut types: Vec<String> = ours
            .0
            .events
            .iter()
            .map(|a| a.event.event_type.to_string())
            .filter(|t| t != "message")
            .collect();
        types.sort();
        types.dedup();
        let asked = Instant::now();
        let streams = browser
            .watch(&PageRequest {
                url: url.to_string(),
                streams: 1,
                types: types.clone(),
                duration,
                max_events,
                fetch: fetch.clone(),
            })
            .await?;
        let page = streams.into_iter().next().unwrap_or_default();
        let page_rec = page_recording(&page, url, asked.elapsed());
        let schedule = reference(asked);
        let mut view = judge_browser(
            &browser.version,
            &page,
            &page_rec,
            schedule
                .as_ref()
                .map_or(Reference::None, Reference::Schedule),
            ours,
        );
        view.reader = reader;
        // Seven streams can show the limit only on a URL that opens a stream and keeps it.
        if limit && page.opened.is_some() && !page.gave_up {
            let streams = browser
                .watch(&PageRequest {
                    url: url.to_string(),
                    streams: LIMIT_STREAMS,
                    types,
                    duration: duration.min(LIMIT_WATCH),
                    max_events: None,
                    fetch,
                })
                .await?;
            let (l, finding) = judge_connection_limit(&streams, &ours.0.version);
            view.findings.extend(finding);
            view.connection_limit = Some(l);
        }
        Ok(view)
    }
    .await;
    browser.close().await;
    result
}

/// [`browser_view`] of the request a scenario sent, through its running chain.
async fn browser_for(
    sent: &ProbeRequest,
    ours: (&Recording, &Verdict),
    limit: bool,
    reference: &(dyn Fn(Instant) -> Option<Schedule> + Sync),
) -> Result<BrowserVerdict, ScenarioError> {
    browser_view(sent, ours, limit, reference)
        .await
        .map_err(ScenarioError::Browser)
}

/// What the origin saw of one request of the lifecycle phases, from the tap or the fixture's log.
pub struct OriginView {
    /// The request's `Last-Event-ID`.
    pub last_event_id: Option<String>,
    /// When each event left the origin.
    pub sends: Vec<Instant>,
    /// When the origin's side learnt the client (the hop in front) was gone: the tap's end of file or
    /// failed write, the fixture's failed write.
    pub closed: Option<Instant>,
    /// When the origin ended the response by itself.
    pub ended: Option<Instant>,
}

/// Finds what the origin saw of the request `req` that `rec` recorded.
type Witnessed<'a> = &'a (dyn Fn(&Recording, &ProbeRequest) -> Option<OriginView> + Sync);

/// The lifecycle phases through a running chain after its probe `first` (sent as `sent`): the client
/// reconnects as a browser would (after `retry:` or the browser's default, with `Last-Event-ID`), then
/// another client leaves after its first event while the origin's side is watched for the close.
/// `seen_on_write`: the witness learns of a close only when the origin writes (the fixture). A phase
/// whose probe fails is reported as not measured, with the error; only a dead target stops the run.
async fn lifecycle(
    origin: Witnessed<'_>,
    sent: &ProbeRequest,
    first: &Recording,
    target: Option<&SharedTarget>,
    seen_on_write: bool,
) -> Result<Lifecycle, ScenarioError> {
    use crate::verdict::lifecycle::{
        DISCONNECT_WATCH, DISCONNECT_WRITES, DisconnectFacts, DisconnectOutcome, ReconnectFacts,
        ReconnectOutcome, disconnect_limit, judge_disconnect, judge_reconnect, last_event_id,
        reconnect_delay, stops_reconnecting,
    };
    // Each phase listens until its first event: as long as the chain took to deliver one, plus 5 s,
    // within the probe's own limit.
    let phase_limit = first
        .events
        .first()
        .map(|e| (e.at + Duration::from_secs(5)).min(sent.limits.duration));
    let phase_request = |limit: Duration| {
        let mut req = sent.clone();
        req.limits.max_events = Some(1);
        req.limits.duration = limit;
        req
    };
    // Reconnect.
    let waited = reconnect_delay(first);
    let mut again = None;
    let mut origin_received = None;
    let mut reconnect_error = None;
    if let Some(limit) = phase_limit.filter(|_| stops_reconnecting(first).is_none()) {
        tokio::time::sleep(waited).await;
        let mut req = phase_request(limit);
        if let Some(id) = last_event_id(first) {
            req.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("last-event-id"));
            req.headers.push(("Last-Event-ID".into(), id));
        }
        match probe(&req).await {
            Ok(rec) => {
                origin_received = origin(&rec, &req).map(|v| v.last_event_id);
                again = Some(rec);
            }
            Err(e) => {
                target_alive(target)?;
                reconnect_error = Some(crate::probe::error_chain(&e));
            }
        }
    }
    let (mut reconnect, mut findings) = judge_reconnect(&ReconnectFacts {
        first,
        waited,
        again: again.as_ref(),
        origin_received,
    });
    if let Some(e) = reconnect_error {
        reconnect.outcome = ReconnectOutcome::Undetermined;
        reconnect.summary = format!("the reconnect failed: {e}");
    }
    // Disconnect: leave after the first event, then watch the origin's side until the hop closes the
    // request or the origin ends it, at most until the bound after the origin's third write (a hop may
    // notice only when it writes), or DISCONNECT_WATCH.
    let (disconnect, more) = match phase_limit {
        None => judge_disconnect(&DisconnectFacts::nothing(seen_on_write)),
        Some(limit) => {
            let req = phase_request(limit);
            match probe(&req).await {
                Err(e) => {
                    target_alive(target)?;
                    let (mut d, _) = judge_disconnect(&DisconnectFacts::nothing(seen_on_write));
                    d.outcome = DisconnectOutcome::NotMeasured;
                    d.summary = format!("the probe failed: {}", crate::probe::error_chain(&e));
                    (d, Vec::new())
                }
                Ok(rec) => {
                    let left = (!rec.events.is_empty()).then_some(rec.start + rec.ended_at);
                    let sends_after = |v: &OriginView, left: Instant| -> Vec<Duration> {
                        v.sends
                            .iter()
                            .filter(|&&t| t > left)
                            .take(DISCONNECT_WRITES)
                            .map(|&t| t - left)
                            .collect()
                    };
                    let mut seen = origin(&rec, &req);
                    let mut watched = Duration::ZERO;
                    if let Some(left) = left {
                        while let Some(v) = seen.as_ref() {
                            if v.closed.is_some() || v.ended.is_some() {
                                break;
                            }
                            let after = sends_after(v, left);
                            let until = if after.len() >= DISCONNECT_WRITES {
                                left + disconnect_limit(&after).min(DISCONNECT_WATCH)
                            } else {
                                left + DISCONNECT_WATCH
                            };
                            if Instant::now() >= until {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            seen = origin(&rec, &req);
                        }
                        watched = left.elapsed();
                    }
                    let after = |t: Option<Instant>| Some(t?.saturating_duration_since(left?));
                    judge_disconnect(&DisconnectFacts {
                        client_left: left.map(|l| rec.offset(l)),
                        seen_at_origin: seen.is_some(),
                        ended_before_left: seen
                            .as_ref()
                            .zip(left)
                            .is_some_and(|(v, l)| v.ended.is_some_and(|t| t <= l)),
                        closed_after: after(seen.as_ref().and_then(|v| v.closed)),
                        origin_ended_after: after(seen.as_ref().and_then(|v| v.ended)),
                        sends_after: seen
                            .as_ref()
                            .zip(left)
                            .map(|(v, l)| sends_after(v, l))
                            .unwrap_or_default(),
                        seen_on_write,
                        watched,
                    })
                }
            }
        }
    };
    findings.extend(more);
    Ok(Lifecycle {
        reconnect,
        disconnect,
        heartbeat: None,
        findings,
    })
}

/// Start `hops` in front of `upstream`, send `req` to the chain's entry, and record (and, when `second`
/// says when, a second client on the same URL). A failed probe is explained by a dead target or a dead
/// hop first, when there is one.
async fn probe_through(
    hops: &[HopSpec],
    upstream: SocketAddr,
    req: &ProbeRequest,
    target: Option<&SharedTarget>,
    second: Option<SecondOpen>,
) -> Result<(Chain, Recording, Option<Recording>, ProbeRequest), ScenarioError> {
    let mut chain = Chain::start(hops, upstream)
        .await
        .map_err(ScenarioError::Hop)?;
    let req = retarget(req, chain.entry(upstream), chain.tls());
    let wait = |ms: u64| tokio::time::sleep(Duration::from_millis(ms));
    let (first, second) = match second {
        None => (probe(&req).await, None),
        // The second client opens while the first listens…
        Some(SecondOpen {
            after_ms: Some(ms), ..
        }) => {
            let (a, b) = tokio::join!(probe(&req), async {
                wait(ms).await;
                probe(&req).await
            });
            (a, Some(b))
        }
        // …or once the first stream has ended.
        Some(open) => {
            let a = probe(&req).await;
            wait(open.after_end_ms.unwrap_or(0)).await;
            (a, Some(probe(&req).await))
        }
    };
    match (first, second.transpose()) {
        (Ok(rec), Ok(second)) => Ok((chain, rec, second, req)),
        (Err(e), _) | (_, Err(e)) => {
            target_alive(target)?;
            chain.check_alive().map_err(ScenarioError::Hop)?;
            Err(ScenarioError::Probe(e))
        }
    }
}

/// Fail with the target's exit status and output when ssegate started it and it has died.
pub fn target_alive(target: Option<&SharedTarget>) -> Result<(), ScenarioError> {
    match target {
        Some(t) => crate::origin::command::lock(t)
            .check_alive()
            .map_err(ScenarioError::TargetDied),
        None => Ok(()),
    }
}

/// The same request sent to another host:port.
pub fn retarget(req: &ProbeRequest, entry: SocketAddr, tls: bool) -> ProbeRequest {
    let mut r = req.clone();
    if let Ok(mut u) = reqwest::Url::parse(&req.url) {
        let _ = u.set_ip_host(entry.ip());
        let _ = u.set_port(Some(entry.port()));
        let _ = u.set_scheme(if tls { "https" } else { "http" });
        r.url = u.to_string();
    }
    r
}

/// Path and query of a URL, as a request line carries them.
fn request_target(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        })
        .unwrap_or_else(|_| "/".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retarget_keeps_path_and_query() {
        let r = ProbeRequest::new("http://127.0.0.1:3000/events?x=1");
        let r2 = retarget(&r, "127.0.0.1:4000".parse().unwrap(), false);
        assert_eq!(r2.url, "http://127.0.0.1:4000/events?x=1");
        assert_eq!(request_target(&r2.url), "/events?x=1");
        let r3 = retarget(&r, "127.0.0.1:4001".parse().unwrap(), true);
        assert_eq!(r3.url, "https://127.0.0.1:4001/events?x=1");
    }
}
