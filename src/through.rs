//! A running chain, and what every phase needs from it: the entry address and TLS, the request retargeted
//! to it, the witness's view of the origin (the fixture's log or a tap's exchanges), whether a target
//! ssegate started is still alive, and probing through the chain with a failure explained.
//!
//! [`Through::start`] starts the chain in front of the witnessed origin; [`Through::probe_main`] sends the
//! scenario's request (and any phase's client beside it) and judges it against the witness; the phases
//! then measure through the same running chain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::browser::BrowserError;
use crate::intermediary::{Chain, HopError, HopSpec};
use crate::origin::command::{SharedTarget, TargetError};
use crate::origin::fixture::{RequestLog, under};
use crate::origin::{FixtureServer, Profile};
use crate::probe::{ProbeError, ProbeRequest, Recording, probe};
use crate::tap::{Exchange, Tap};
use crate::verdict::integrity::{self, Sides, Watch};
use crate::verdict::{Reference, SendInstants, Verdict, judge};

pub use crate::request::{TAG_HEADER, tag_of};

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
#[derive(Clone, Copy)]
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

/// The origin's side of a running chain.
enum Origin<'a> {
    /// The fixture, and the path of its own that this scenario's requests take.
    Fixture {
        server: &'a FixtureServer,
        profile: &'a Profile,
        path: String,
        /// Serves `profile` on `path` while the scenario runs.
        _route: Option<crate::origin::fixture::Route>,
    },
    Tap {
        tap: Tap,
        fallback: Option<&'a Recording>,
    },
}

/// A started chain that scenarios can share ([`Through::on`]).
pub type RunningChain = Arc<std::sync::Mutex<Chain>>;

/// A chain running in front of the witnessed origin.
pub struct Through<'a> {
    hops: &'a [HopSpec],
    /// Behind a lock only to ask whether its hops are alive (which reaps a child).
    chain: RunningChain,
    origin: Origin<'a>,
    target: Option<&'a SharedTarget>,
}

/// The scenario's own probe through the chain, judged against the witness.
#[derive(Clone)]
pub struct Main {
    /// The request as sent to the chain's entry.
    pub sent: ProbeRequest,
    pub recording: Recording,
    /// The verdict before any phase's findings join it.
    pub verdict: Verdict,
    /// A phase's client that opened beside the main probe ([`crate::phase::Phase::beside`]).
    pub beside: Option<Recording>,
    /// Method and HTTP version of the request the origin received (fixture only).
    pub origin_saw: Option<String>,
    /// How long the request waited at the origin before its response head left (tap only).
    pub origin_wait: Option<Duration>,
    /// From the origin's response head to the end of the response or of the probe (tap only).
    pub open_at_origin: Option<(Instant, Instant)>,
    /// With `protocol: mcp`, the session ssegate's client opened through the chain before the call
    /// that is the recording.
    pub mcp: Option<crate::verdict::mcp::McpSession>,
}

/// What the origin saw of one request, from the tap or the fixture's log.
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

impl<'a> Through<'a> {
    /// Start `hops` in front of the witnessed origin (and the tap, for a tap witness).
    pub async fn start(hops: &'a [HopSpec], witness: Witness<'a>) -> Result<Self, ScenarioError> {
        Self::on(hops, witness, None).await
    }

    /// Measure through `running`, `hops` already started in front of the witness's fixture, or start
    /// them when None. A shared chain's fixture serves this scenario's profile on its own path.
    pub async fn on(
        hops: &'a [HopSpec],
        witness: Witness<'a>,
        running: Option<RunningChain>,
    ) -> Result<Self, ScenarioError> {
        let (origin, upstream, target) = match witness {
            Witness::Fixture { server, profile } => {
                // A path of its own, so that the origin's log entries for this scenario are told apart
                // from any stray request (a readiness check from a hop that lost a port race to it, say)
                // and from other scenarios' on a fixture they share.
                static NEXT: AtomicU64 = AtomicU64::new(1);
                let path = format!(
                    "/events/{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                );
                let route = server.serve_at(&path, profile.clone());
                let o = Origin::Fixture {
                    server,
                    profile,
                    path,
                    _route: route,
                };
                (o, server.addr(), None)
            }
            Witness::Tap {
                upstream,
                fallback,
                target,
            } => {
                let tap = Tap::start(upstream).await.map_err(ScenarioError::Tap)?;
                let addr = tap.addr();
                (Origin::Tap { tap, fallback }, addr, target)
            }
        };
        let chain = match running {
            Some(chain) => chain,
            None => Arc::new(std::sync::Mutex::new(
                Chain::start(hops, upstream)
                    .await
                    .map_err(ScenarioError::Hop)?,
            )),
        };
        Ok(Through {
            hops,
            chain,
            origin,
            target,
        })
    }

    fn chain(&self) -> std::sync::MutexGuard<'_, Chain> {
        self.chain
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The hops, origin side first.
    pub fn hops(&self) -> &[HopSpec] {
        self.hops
    }

    /// What the chain fronts: the fixture, or the tap in front of the origin.
    pub fn upstream(&self) -> SocketAddr {
        match &self.origin {
            Origin::Fixture { server, .. } => server.addr(),
            Origin::Tap { tap, .. } => tap.addr(),
        }
    }

    /// Where a client talks to the chain.
    pub fn entry(&self) -> SocketAddr {
        self.chain().entry(self.upstream())
    }

    /// Whether the chain's entry speaks TLS.
    pub fn tls(&self) -> bool {
        self.chain().tls()
    }

    /// Versions of the real programs in the chain.
    pub fn programs(&self) -> Vec<String> {
        self.chain().programs()
    }

    /// The fixture, when it is the witness.
    pub fn fixture(&self) -> Option<&FixtureServer> {
        match &self.origin {
            Origin::Fixture { server, .. } => Some(server),
            Origin::Tap { .. } => None,
        }
    }

    /// The witness learns of a client's close only when the origin writes (the fixture), not at once.
    pub fn seen_on_write(&self) -> bool {
        matches!(self.origin, Origin::Fixture { .. })
    }

    /// `req` sent to the chain's entry.
    pub fn retarget(&self, req: &ProbeRequest) -> ProbeRequest {
        retarget(req, self.entry(), self.tls())
    }

    /// Fail with the target's exit status and output when ssegate started it and it has died.
    pub fn target_alive(&self) -> Result<(), ScenarioError> {
        target_alive(self.target)
    }

    /// Probe through the chain; a failure is explained by a dead target or a dead hop first.
    pub async fn probe(&self, req: &ProbeRequest) -> Result<Recording, ScenarioError> {
        probe(req).await.map_err(|e| self.explain(e))
    }

    fn explain(&self, e: ProbeError) -> ScenarioError {
        if let Err(dead) = self.target_alive() {
            return dead;
        }
        match self.chain().check_alive() {
            Err(hop) => ScenarioError::Hop(hop),
            Ok(()) => ScenarioError::Probe(e),
        }
    }

    /// The fixture's log entries of this scenario's path.
    pub fn origin_requests(&self) -> Vec<RequestLog> {
        match &self.origin {
            Origin::Fixture { server, path, .. } => server
                .requests()
                .into_iter()
                .filter(|r| under(&r.target, path))
                .collect(),
            Origin::Tap { .. } => Vec::new(),
        }
    }

    /// What the origin saw of the request `req` that `rec` recorded (by its [`TAG_HEADER`] when it has
    /// one, else by when it arrived).
    pub fn origin_view(&self, rec: &Recording, req: &ProbeRequest) -> Option<OriginView> {
        let tag = tag_of(req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        match &self.origin {
            Origin::Fixture { server, path, .. } => {
                let end = rec.start + rec.ended_at;
                let log = server.requests();
                let candidates = log.iter().filter(|r| {
                    under(&r.target, path)
                        && r.method.eq_ignore_ascii_case(&req.method)
                        && r.received >= rec.start
                        && r.received <= end
                });
                let tag_at = |r: &RequestLog| {
                    tag_of(r.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                        .map(str::to_string)
                };
                // Its own tag first; else an untagged request (a hop dropped the header), never one
                // tagged as another client's.
                let r = candidates
                    .clone()
                    .rfind(|r| tag.is_some() && tag_at(r).as_deref() == tag)
                    .or_else(|| candidates.clone().rfind(|r| tag_at(r).is_none()))?;
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
            }
            Origin::Tap { tap, .. } => {
                let e = tap.exchange_for(rec, &req.method, &request_target(&req.url), tag)?;
                Some(OriginView {
                    last_event_id: e.last_event_id,
                    sends: e.sends,
                    closed: e.client_closed,
                    ended: e.ended.filter(|_| e.end != crate::tap::TapEnd::ClientGone),
                })
            }
        }
    }

    /// The origin's sends for the first request on the scenario's path after `asked`, as offsets from
    /// the instant the origin received it (for a client on another clock, such as the browser).
    pub fn sends_since(&self, asked: Instant, sent: &ProbeRequest) -> Option<SendInstants> {
        match &self.origin {
            Origin::Fixture {
                server,
                profile,
                path,
                ..
            } => {
                let log = server.requests();
                let r = log
                    .iter()
                    .find(|r| under(&r.target, path) && r.received >= asked)?;
                let at = |t: Instant| t.saturating_duration_since(r.received);
                Some(SendInstants {
                    sends: r.sends.iter().map(|&t| at(t)).collect(),
                    headers_sent: r.headers_sent.map(at),
                    ended: r.ended.map(at),
                    gap: Some(profile.reference_gap()),
                    planned: Some(profile.planned_events()),
                    by_position: false,
                })
            }
            Origin::Tap { tap, .. } => tap
                .first_since(asked, &request_target(&sent.url))
                .map(|e| e.own_schedule()),
        }
    }

    /// The request as the witness wants it: to the fixture, on the scenario's own path.
    fn scenario_request(&self, req: &ProbeRequest) -> ProbeRequest {
        let mut req = req.clone();
        if let Origin::Fixture { server, path, .. } = &self.origin {
            req.url = format!("http://{}{path}", server.addr());
        }
        self.retarget(&req)
    }

    /// Send `request` to the chain's entry (and a phase's client `beside` it, that long after it
    /// starts), and judge the recording against the witness.
    pub async fn probe_main(
        &self,
        request: &ProbeRequest,
        beside: Option<Duration>,
    ) -> Result<Main, ScenarioError> {
        let sent = self.scenario_request(request);
        if sent.protocol == crate::protocol::Protocol::Mcp {
            return self.probe_mcp(sent).await;
        }
        let started = Instant::now();
        let (first, other) = match beside {
            None => (probe(&sent).await, None),
            Some(after) => {
                let (a, b) = tokio::join!(probe(&sent), async {
                    tokio::time::sleep(after).await;
                    probe(&sent).await
                });
                (a, Some(b))
            }
        };
        let (rec, beside) = match (first, other.transpose()) {
            (Ok(rec), Ok(beside)) => (rec, beside),
            (Err(e), _) | (_, Err(e)) => match self.explain(e) {
                // Through a chain in front of someone's origin (`check`), a request the chain failed
                // while the origin and every hop were alive is what the chain did: a measurement (no
                // response, cut), not a reason to stop the run.
                ScenarioError::Probe(e)
                    if !self.hops.is_empty() && matches!(self.origin, Origin::Tap { .. }) =>
                {
                    (Recording::failed(&sent, started, &e), None)
                }
                other => return Err(other),
            },
        };
        let mut main = match &self.origin {
            Origin::Fixture { profile, .. } => self.judge_fixture(profile, sent, rec, beside),
            Origin::Tap { tap, fallback } => {
                // A chain that answered an error, or whose tap could not reach the origin, may have lost
                // its origin.
                if !(200..300).contains(&rec.status) || tap.connect_error().is_some() {
                    self.target_alive()?;
                }
                let exchange =
                    tap.exchange_for(&rec, &sent.method, &request_target(&sent.url), None);
                judge_tapped(exchange, *fallback, sent, rec, beside)
            }
        };
        let integrity = self.header_integrity(&main);
        main.verdict.findings.extend(integrity);
        Ok(main)
    }

    /// An MCP scenario's main probe: open a session through the chain ([`crate::mcp::open`]), then probe
    /// the `tools/call` request, judged as any stream against the witness; the session's findings join.
    async fn probe_mcp(&self, sent: ProbeRequest) -> Result<Main, ScenarioError> {
        let started = Instant::now();
        let opened = crate::mcp::open(&sent).await;
        let sent_for_opening = sent.clone();
        let mut main = match crate::mcp::call_request(&sent, &opened) {
            Some(call) => {
                let rec = match probe(&call).await {
                    Ok(rec) => rec,
                    Err(e) => match self.explain(e) {
                        ScenarioError::Probe(e) => Recording::failed(&call, started, &e),
                        other => return Err(other),
                    },
                };
                match &self.origin {
                    Origin::Fixture { profile, .. } => self.judge_fixture(profile, call, rec, None),
                    Origin::Tap { tap, fallback } => {
                        let exchange =
                            tap.exchange_for(&rec, &call.method, &request_target(&call.url), None);
                        judge_tapped(exchange, *fallback, call, rec, None)
                    }
                }
            }
            None => {
                // No session: nothing to call. A dead target or hop stops the run as for any probe.
                self.target_alive()?;
                if let Err(hop) = self.chain().check_alive() {
                    return Err(ScenarioError::Hop(hop));
                }
                let why = ProbeError::InvalidRequest(format!(
                    "no tools/call made: {}",
                    opened.report.summary()
                ));
                let rec = Recording::failed(&sent, started, &why);
                // No stream was asked for: none arrived, and the session's finding says why (not a
                // stream cut or left unanswered).
                let mut verdict = judge(&rec, Reference::None);
                verdict.delivery = crate::verdict::Delivery::NoEvents;
                verdict.findings.clear();
                Main {
                    verdict,
                    sent,
                    recording: rec,
                    beside: None,
                    origin_saw: None,
                    origin_wait: None,
                    open_at_origin: None,
                    mcp: None,
                }
            }
        };
        let mut integrity = self.header_integrity(&main);
        // The session's own headers cross on `initialize` first: a hop that drops `Mcp-Session-Id`
        // from its answer is named there, though no call is ever made.
        for f in self.initialize_integrity(&sent_for_opening, &opened) {
            if !integrity.iter().any(|g| g.evidence == f.evidence) {
                integrity.push(f);
            }
        }
        main.verdict.findings.extend(integrity);
        main.verdict.findings.extend(crate::verdict::mcp::judge(
            &opened.report,
            main.recording.status,
        ));
        crate::verdict::sort_findings(&mut main.verdict.findings);
        main.mcp = Some(opened.report);
        Ok(main)
    }

    /// Header integrity of the MCP session's `initialize` exchange, against the witness's view of it
    /// (the first request on the scenario's path after the opening started).
    fn initialize_integrity(
        &self,
        sent: &ProbeRequest,
        opened: &crate::mcp::Opened,
    ) -> Vec<crate::verdict::Finding> {
        let (Some(started), Some((client_sent, client_got))) =
            (opened.started, opened.initialize_heads.as_ref())
        else {
            return Vec::new();
        };
        if self.hops.is_empty() {
            return Vec::new();
        }
        let status = opened.report.steps.first().map_or(0, |s| s.status);
        let (origin_got, origin_sent) = match &self.origin {
            Origin::Fixture { .. } => {
                let log = self.origin_requests();
                match log.iter().find(|r| r.received >= started) {
                    Some(r) => (Some(r.headers.clone()), Some(r.response_headers.clone())),
                    None => (None, None),
                }
            }
            Origin::Tap { tap, .. } => match tap.first_since(started, &request_target(&sent.url)) {
                // Judged only when the client got the origin's own answer.
                Some(e) => (
                    e.request_headers,
                    e.response_headers.filter(|_| e.status == status),
                ),
                None => (None, None),
            },
        };
        let watch = Watch::with(&sent.watch_headers, &sent.secret_headers);
        integrity::judge(
            &watch,
            Sides {
                client_sent,
                origin_got: origin_got.as_deref(),
                origin_sent: origin_sent.as_deref(),
                client_got,
            },
        )
    }

    /// Whether the headers that matter crossed the chain intact ([`crate::verdict::integrity`]), for
    /// the main probe: the client's side from the probe, the origin's from the witness.
    fn header_integrity(&self, main: &Main) -> Vec<crate::verdict::Finding> {
        if self.hops.is_empty() {
            return Vec::new();
        }
        let sent = &main.sent;
        let watch = Watch::with(&sent.watch_headers, &sent.secret_headers);
        let client_sent = sent.effective_headers();
        let rec = &main.recording;
        // The origin's response head, with its status: the client's is judged against it only when it
        // is that response (not a hop's own error page).
        type Head = Vec<(String, String)>;
        let (origin_got, origin_sent): (Option<Head>, Option<(u16, Head)>) = match &self.origin {
            Origin::Fixture { profile, .. } => {
                let log = self.origin_requests();
                let first = log.iter().find(|r| r.received >= rec.start);
                let answered = first.is_some_and(|r| r.headers_sent.is_some());
                let head = profile.headers.clone().into_iter().collect();
                (
                    first.map(|r| r.headers.clone()),
                    answered.then_some((profile.status, head)),
                )
            }
            Origin::Tap { tap, .. } => {
                match tap.exchange_for(rec, &sent.method, &request_target(&sent.url), None) {
                    Some(e) => (e.request_headers, e.response_headers.map(|h| (e.status, h))),
                    None => (None, None),
                }
            }
        };
        let origin_sent = origin_sent
            .filter(|(status, _)| *status == rec.status)
            .map(|(_, h)| h);
        // An LLM gateway makes a request of its own to the origin (its own credentials, its own
        // headers): what reaches the origin is not the client's request passed on.
        let gateway = self
            .hops
            .iter()
            .any(|h| matches!(h, HopSpec::Process(p) if p.program.llm_gateway));
        let origin_got = origin_got.filter(|_| !gateway);
        integrity::judge(
            &watch,
            Sides {
                client_sent: &client_sent,
                origin_got: origin_got.as_deref(),
                origin_sent: origin_sent.as_deref(),
                client_got: &main.recording.headers,
            },
        )
    }

    fn judge_fixture(
        &self,
        profile: &Profile,
        sent: ProbeRequest,
        rec: Recording,
        beside: Option<Recording>,
    ) -> Main {
        // The first client's request is the first to arrive after it was sent (a client beside it comes
        // later; an MCP session's opening requests came before).
        let requests = self.origin_requests();
        let first = requests.iter().find(|r| r.received >= rec.start);
        let sends = first
            .map(|r| SendInstants {
                sends: r.sends.iter().map(|&t| rec.offset(t)).collect(),
                headers_sent: r.headers_sent.map(|t| rec.offset(t)),
                ended: r.ended.map(|t| rec.offset(t)),
                gap: Some(profile.reference_gap()),
                planned: Some(profile.planned_events()),
                by_position: false,
            })
            .unwrap_or_default();
        Main {
            verdict: judge(&rec, Reference::Sends(&sends)),
            origin_saw: first.map(|r| format!("{} {}", r.method, r.version)),
            sent,
            recording: rec,
            beside,
            origin_wait: None,
            open_at_origin: None,
            mcp: None,
        }
    }
}

/// Judge a recording through a tap: against the exchange it saw, else the fallback, else inferred.
fn judge_tapped(
    exchange: Option<Exchange>,
    fallback: Option<&Recording>,
    sent: ProbeRequest,
    rec: Recording,
    beside: Option<Recording>,
) -> Main {
    let end = rec.start + rec.ended_at;
    let (verdict, origin_wait, open_at_origin) = match (&exchange, fallback) {
        (Some(e), _) => (
            judge(&rec, Reference::Sends(&e.schedule(&rec))),
            Some(e.origin_wait(end)),
            e.headers_at.map(|h| (h, e.ended.unwrap_or(end).min(end))),
        ),
        (None, Some(baseline)) => (judge(&rec, Reference::Baseline(baseline)), None, None),
        (None, None) => (judge(&rec, Reference::None), None, None),
    };
    Main {
        sent,
        recording: rec,
        verdict,
        beside,
        origin_saw: None,
        origin_wait,
        open_at_origin,
        mcp: None,
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
pub fn request_target(url: &str) -> String {
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
