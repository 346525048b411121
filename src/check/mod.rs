//! `ssegate check`: the CI gate for a user's own endpoint.
//!
//! Start the target, record the direct baseline, run every chain of the matrix in front of it with a
//! [`Tap`] right in front of the origin, judge each chain against the origin's real send instants as the
//! tap stamped them (against the baseline only when no tap could see the exchange), and decide who can
//! fix what broke **by measuring**: a broken
//! chain is run again with the origin-side opt-outs (`Cache-Control: no-cache, no-transform`,
//! `X-Accel-Buffering: no`) injected next to the origin. If that makes it stream, the origin can fix it and
//! the gate fails; if not, only an operator can, and the gate reports the config change to ask for and
//! fails only when `expect` names the chain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Loaded;
use crate::doctor::{Cause, Stack, diagnose};
use crate::events::{Finished, Reporter, RunEvent, Silent};
use crate::intermediary::{HopError, HopSpec};
use crate::origin::command::{CommandTarget, SharedTarget as Target, TargetError};
use crate::phase::{PhasePlan, PhaseResult, Phases};
use crate::probe::{ProbeError, ProbeRequest, Recording, probe};
use crate::request::RequestSpec;
use crate::scenario::{self, Measurement, Scenario, ScenarioError, Witness};
use crate::verdict::{Delivery, Reference, Verdict, judge};

mod fix;
mod gate;

use gate::Gate;

/// The opt-outs an origin can send, injected to measure whether they fix a chain.
pub const ORIGIN_FIX_HEADERS: &[(&str, &str)] = &[
    ("Cache-Control", "no-cache, no-transform"),
    ("X-Accel-Buffering", "no"),
];

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(
        "failed to find a target: give `target.command` or `target.url.base` in ssegate.yaml, `--url URL`, or `-- COMMAND ARGS…`"
    )]
    NoTarget,
    #[error("failed to put chains in front of {url}: chains need a plain http:// URL")]
    NotHttp { url: String },
    #[error("failed to resolve {url}")]
    Resolve {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("failed to start chain `{chain}`")]
    Hop {
        chain: String,
        #[source]
        source: HopError,
    },
    #[error("failed to start the tap in front of the origin")]
    Tap(#[source] std::io::Error),
    #[error("failed to measure chain `{chain}`")]
    TargetDied {
        chain: String,
        #[source]
        source: TargetError,
    },
    #[error("failed to record the direct baseline")]
    Baseline(#[source] ProbeError),
    #[error(
        "failed to run any chain of the matrix: each needs a program that is not installed here\n{reasons}"
    )]
    NothingToRun { reasons: String },
    #[error("failed to load chain `{chain}`")]
    Load {
        chain: String,
        #[source]
        source: crate::load::LoadError,
    },
    #[error("failed to probe chain `{chain}`")]
    Probe {
        chain: String,
        #[source]
        source: ProbeError,
    },
    #[error("failed to run the browser probe: {0}")]
    Browser(String),
    #[error("invalid --partition `{0}`: expected K/N with 1 ≤ K ≤ N")]
    Partition(String),
    /// `skip` and `--partition` leave this run no chain: it would pass having measured nothing.
    #[error("failed to select any chain: {why}")]
    NoChain { why: String },
    #[error("failed to use the direct stream: {method} {url} answered {status}; {hint}")]
    BaselineStatus {
        method: String,
        url: String,
        status: u16,
        hint: &'static str,
    },
    #[error("failed to open an MCP session with the origin at {url}: {why}")]
    McpSession { url: String, why: String },
    #[error("failed to use the direct stream: {method} {url} sent no response headers within {}; raise `listen.duration_ms`, or flush the headers at once", crate::text::human_duration(*.waited))]
    BaselineSilent {
        method: String,
        url: String,
        waited: Duration,
    },
}

/// Heartbeat interval of the fix re-run for cut chains: well inside the scaled idle limits of the
/// built-in hops (the advice in the report comes from the measured idle limit).
pub const FIX_HEARTBEAT_MS: u64 = 500;

/// What a run of `check` is told beyond the config.
#[derive(Clone, Default)]
pub struct CheckOptions {
    /// `-- COMMAND ARGS…`, replacing `target.command`.
    pub command: Option<Vec<String>>,
    /// `--url`, replacing the target.
    pub url: Option<String>,
    /// `(k, n)`: run only the chains whose index (sorted by name) is `k−1` modulo `n`.
    pub partition: Option<(usize, usize)>,
    /// Chains probed at once.
    pub jobs: usize,
    /// Follows the run (chains started, finished, re-run alone); silent when None.
    pub reporter: Option<Arc<dyn Reporter>>,
    /// `--path`, replacing `target.url.path`.
    pub path: Option<String>,
    /// What the command line says of the request (`-H`, `--method`, `--data`, `--duration`,
    /// `--max-events`, …), over what `ssegate.yaml` says.
    pub request: RequestSpec,
    /// Where the chains' real programs run when a hop names no image.
    pub backend: crate::intermediary::Backend,
    /// A real browser beside the probe of the direct stream and of every chain (`--browser`).
    pub browser: bool,
    /// `--exec`: a client suite run directly and through every chain, over `exec:` in the config.
    pub exec: Option<crate::phase::exec::ExecPlan>,
}

/// Parse `K/N`.
pub fn parse_partition(s: &str) -> Result<(usize, usize), CheckError> {
    let bad = || CheckError::Partition(s.to_string());
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let k: usize = k.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// Gate status of one chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pass,
    /// Broken, but only an operator can fix it and `expect` does not name the chain.
    Warn,
    Fail,
    /// Not judged: the direct stream itself is not streamed, so a chain's delivery says nothing yet.
    NotJudged,
    /// Broke twice, each time while the machine was too busy to tell: neither a pass nor a failure.
    Inconclusive,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::NotJudged => "not-judged",
            Status::Inconclusive => "inconclusive",
        }
    }
}

/// Who can fix a broken chain, as measured.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fixability {
    /// Sending these headers (and, for a cut stream, heartbeats) made the chain deliver as expected.
    Origin {
        headers: Vec<(String, String)>,
        /// The heartbeat interval the re-run used, when the chain was cut.
        heartbeat_ms: Option<u64>,
        /// The heartbeat interval to send at most, derived from the measured idle limit.
        advise_heartbeat_ms: Option<u64>,
        delivery_with_fix: Delivery,
    },
    /// Nothing the origin sends helped.
    Operator {
        delivery_with_fix: Delivery,
        operator_fix: String,
    },
    /// The origin already sends every opt-out, and the unchanged chain streamed when run again: the
    /// breakage did not reproduce (timing of the origin, not the chain).
    Unstable { delivery_on_rerun: Delivery },
    /// The re-run answered differently (another status), so it proves nothing.
    Undetermined { reason: String },
}

/// One chain's result.
#[derive(Debug, Serialize)]
pub struct ChainOutcome {
    pub name: String,
    pub chain: String,
    pub programs: Vec<String>,
    pub recording: Recording,
    pub verdict: Verdict,
    pub expected: Delivery,
    /// `expect.delivery` names this chain.
    pub explicit: bool,
    pub fix: Option<Fixability>,
    pub status: Status,
    pub reasons: Vec<String>,
    /// How long the origin took to answer this chain's request, as the tap saw it.
    #[serde(serialize_with = "crate::verdict::ser_opt_ms")]
    pub origin_wait: Option<Duration>,
    /// Run again alone, because the origin kept its request waiting while other chains ran.
    pub serial: bool,
    /// The phases measured through this chain: `listen.streams` (`load`), `listen.lifecycle`
    /// (`lifecycle`), `--browser` (`browser`).
    #[serde(flatten)]
    pub phases: Phases,
    /// How long this chain's own measurement and its fix experiment took.
    pub took: ChainTook,
    /// With `--protocol mcp`: the session ssegate's client opened through this chain before the call
    /// (its revision, its steps' statuses and times).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp: Option<crate::verdict::mcp::McpSession>,
}

/// How long one chain took, by part (each includes the chain's start and stop).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ChainTook {
    /// Its own measurement and the phases through it (for `direct`: the stream, then its phases).
    #[serde(rename = "measure_ms", serialize_with = "crate::probe::ser_ms")]
    pub measure: Duration,
    /// Its fix experiment (0 when it needed none).
    #[serde(rename = "fix_ms", serialize_with = "crate::probe::ser_ms")]
    pub fix: Duration,
}

/// The origin kept requests waiting while others were open: it answers only so many at once.
#[derive(Debug, Clone, Serialize)]
pub struct Concurrency {
    /// The most responses the origin had open at once while requests waited.
    pub answered_at_once: usize,
    /// Chains whose request waited, re-run one at a time.
    pub queued: Vec<String>,
    /// The longest wait for the origin's response head.
    #[serde(serialize_with = "crate::probe::ser_ms")]
    pub longest_wait: Duration,
}

/// A chain of the matrix that was not run because a program of it is not installed here. Never a
/// pass: every report shows it with the reason.
#[derive(Debug, Clone, Serialize)]
pub struct NotRun {
    pub name: String,
    pub chain: String,
    pub reason: String,
}

/// Everything `check` measured and decided.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub target: String,
    pub baseline: ChainOutcome,
    /// Likely causes of what the baseline itself shows (risks, when it streams).
    pub causes: Vec<Cause>,
    pub chains: Vec<ChainOutcome>,
    /// Chains whose program is not installed: reported, not measured, never passed.
    pub not_run: Vec<NotRun>,
    pub partition: Option<String>,
    /// Set when the origin answered only some requests at once.
    pub concurrency: Option<Concurrency>,
    /// The origin's stack, as configured or recognised (it picks the snippets).
    pub stack: Option<Stack>,
    pub passed: bool,
    #[serde(serialize_with = "crate::probe::ser_ms")]
    pub took: Duration,
    /// Where the time went, step by step, in order.
    pub steps: Vec<Step>,
}

/// One step of a `check` run and how long it took. The steps run one after another; the chains of a
/// step run at once.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `start target`, `direct stream`, `direct phases`, `chains` (with the fix experiments of the
    /// chains whose requests did not wait at the origin), `fix experiments` (the others'), `queued
    /// chains, alone`, `re-measured, alone`.
    pub name: &'static str,
    #[serde(rename = "took_ms", serialize_with = "crate::probe::ser_ms")]
    pub took: Duration,
}

/// Steps timed one after another.
#[derive(Debug)]
struct Steps {
    at: Instant,
    done: Vec<Step>,
}

impl Steps {
    fn start() -> Steps {
        Steps {
            at: Instant::now(),
            done: Vec::new(),
        }
    }

    /// The step `name` ended now.
    fn ended(&mut self, name: &'static str) {
        let now = Instant::now();
        self.done.push(Step {
            name,
            took: now - self.at,
        });
        self.at = now;
    }
}

impl CheckReport {
    pub fn all(&self) -> impl Iterator<Item = &ChainOutcome> {
        std::iter::once(&self.baseline).chain(&self.chains)
    }

    /// Nothing failed, but a chain broke twice while the machine was too busy to tell.
    pub fn inconclusive(&self) -> bool {
        self.all().all(|c| c.status != Status::Fail)
            && self.chains.iter().any(|c| c.status == Status::Inconclusive)
    }
}

/// The target `check` started, shared by the chains so that each can tell a dead origin from a broken hop.
/// The URL `check` will probe first, before anything starts (for early validation).
pub fn validate_url(url: &str) -> Result<(), CheckError> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" => Ok(()),
        _ => Err(CheckError::NotHttp {
            url: crate::secrets::redact_url(url),
        }),
    }
}

fn probe_request(loaded: &Loaded, url: String, opts: &CheckOptions) -> ProbeRequest {
    // Every field has a value in the file's description (its defaults), so the default given here is
    // never used.
    let spec = opts.request.over(&loaded.config.request());
    let mut req = spec.build(url, Duration::from_millis(loaded.config.listen.duration_ms));
    req.limits.kept_bytes = CHAIN_KEPT_BYTES;
    req
}

/// Start the target (or take the URL), returning it, the stream's URL and the label for reports.
async fn start_target(
    loaded: &Loaded,
    opts: &CheckOptions,
) -> Result<(Option<CommandTarget>, String, String), CheckError> {
    let url_override = opts
        .url
        .clone()
        .or_else(|| loaded.config.target.url.base.clone());
    let command = if opts.url.is_some() {
        None
    } else {
        loaded.command(opts.command.clone())
    };
    if command.is_none()
        && let Some(u) = &url_override
    {
        // Chains are plain HTTP hops: say so before starting anything.
        validate_url(u)?;
    }
    let path = opts
        .path
        .clone()
        .unwrap_or_else(|| loaded.config.target.url.path.clone());
    match (command, url_override) {
        (Some(cmd), _) => {
            let t = CommandTarget::start(&cmd, &loaded.config.target.ready).await?;
            let label = cmd
                .argv
                .iter()
                .map(|a| a.replace("{port}", &t.addr().port().to_string()))
                .collect::<Vec<_>>()
                .join(" ");
            let url = format!("http://{}{}", t.addr(), path);
            Ok((Some(t), url, label))
        }
        (None, Some(url)) => Ok((None, url.clone(), crate::secrets::redact_url(&url))),
        (None, None) => Err(CheckError::NoTarget),
    }
}

/// Record the direct stream; a stream that cannot serve as a baseline stops the run.
async fn record_baseline(
    req: &ProbeRequest,
    target: Option<&Target>,
) -> Result<Recording, CheckError> {
    let rec = match probe(req).await {
        Ok(r) => r,
        Err(e) => {
            if let Some(t) = target {
                crate::origin::command::lock(t).check_alive()?;
            }
            return Err(CheckError::Baseline(e));
        }
    };
    if (200..300).contains(&rec.status) {
        return Ok(rec);
    }
    if rec.status == 0 {
        return Err(CheckError::BaselineSilent {
            method: rec.method.clone(),
            url: rec.url.clone(),
            waited: rec.ended_at,
        });
    }
    Err(CheckError::BaselineStatus {
        method: rec.method.clone(),
        url: rec.url.clone(),
        status: rec.status,
        hint: if target.is_some() {
            "check `target.url.path` (or --path)"
        } else {
            "check the URL"
        },
    })
}

/// What every chain of one run shares.
struct Ctx {
    upstream: SocketAddr,
    req: ProbeRequest,
    baseline: Recording,
    /// Judge who can fix a broken chain (only when the origin itself streams).
    judge_fix: bool,
    target: Option<Target>,
    /// An origin wait longer than this means the request may have queued at the origin (whether it
    /// did is judged once every chain ran: see [`saturated_waits`]).
    queue_limit: Duration,
    /// Every request the taps saw reach the origin in this run (chains and fix experiments).
    visits: std::sync::Mutex<Vec<Visit>>,
    /// The phases through every chain's own measurement (never a fix experiment's).
    phases: Vec<PhasePlan>,
}

/// The phases every chain's own measurement gets: `listen.streams` (a load), `listen.lifecycle` (the
/// reconnect and disconnect phases) and `--browser`.
fn chain_phases(loaded: &Loaded, opts: &CheckOptions) -> Vec<PhasePlan> {
    let mut plans = Vec::new();
    // An MCP stream is a call in a session: the load and the EventSource lifecycle (a reconnect that
    // repeats the request) do not apply to it as they are; MCP's own resumption is not measured yet.
    let mcp = opts.request.over(&loaded.config.request()).mcp.is_some();
    if let Some(plan) = loaded.config.listen.load().filter(|_| !mcp) {
        plans.push(PhasePlan::Load(plan));
    }
    if loaded.config.listen.lifecycle && !mcp {
        plans.push(PhasePlan::Lifecycle(true));
    }
    if opts.browser {
        plans.push(PhasePlan::Browser(crate::phase::browser::BrowserSpec::On(
            true,
        )));
    }
    if let Some(plan) = exec_plan(loaded, opts) {
        plans.push(PhasePlan::Exec(plan));
    }
    plans
}

/// The client suite to run: `--exec`, else `exec:` in the config.
fn exec_plan(loaded: &Loaded, opts: &CheckOptions) -> Option<crate::phase::exec::ExecPlan> {
    opts.exec
        .or_else(|| loaded.config.exec.as_ref().map(|e| e.value))
}

/// Run the gate.
pub async fn check(loaded: &Loaded, opts: &CheckOptions) -> Result<CheckReport, CheckError> {
    let started = Instant::now();
    let (selected, not_run) = runnable_chains(loaded, opts)?;
    // Before anything starts: the browser must be there.
    if let Some(why) = crate::browser::missing().filter(|_| opts.browser) {
        return Err(CheckError::Browser(why));
    }
    let mut steps = Steps::start();
    let (command_target, base_url, target_label) = start_target(loaded, opts).await?;
    steps.ended("start target");
    let target: Option<Target> = command_target.map(|t| Arc::new(std::sync::Mutex::new(t)));
    let base_req = probe_request(loaded, base_url.clone(), opts);
    let direct_started = Instant::now();
    // An MCP server's stream is a `tools/call` in a session opened first; each chain opens its own.
    let (base_call, direct_mcp) = if base_req.protocol == crate::protocol::Protocol::Mcp {
        let opened = crate::mcp::open(&base_req).await;
        match crate::mcp::call_request(&base_req, &opened) {
            Some(call) => (call, Some(opened.report)),
            None => {
                if let Some(t) = &target {
                    crate::origin::command::lock(t).check_alive()?;
                }
                return Err(CheckError::McpSession {
                    url: crate::secrets::redact_url(&base_url),
                    why: opened.report.summary(),
                });
            }
        }
    } else {
        (base_req.clone(), None)
    };
    let baseline_rec = record_baseline(&base_call, target.as_ref()).await?;
    steps.ended("direct stream");
    let mut baseline_verdict = judge(&baseline_rec, Reference::None);
    let direct_phases = measure_direct(
        loaded,
        opts,
        &base_req,
        &baseline_rec,
        &mut baseline_verdict,
    )
    .await?;
    if !direct_phases.is_empty() {
        steps.ended("direct phases");
    }
    let direct_took = direct_started.elapsed();
    let stack =
        loaded.config.target.stack.or_else(|| {
            Stack::detect(&baseline_rec, loaded.command(opts.command.clone()).as_ref())
        });
    let local = target.is_some();
    let causes = diagnose(&baseline_rec, &baseline_verdict, None, stack, local);
    // Chains are only judged for who-can-fix-it when the origin itself streams.
    let origin_ok = baseline_verdict.delivery == Delivery::Streamed;

    // Put the chains in front of the address that actually answered (`localhost` may resolve to ::1
    // first while the server listens on 127.0.0.1 only).
    let upstream = match baseline_rec.remote_addr {
        Some(a) if base_url.starts_with("http://") => a,
        _ => upstream_addr(&base_url).await?,
    };
    // A request that waits at the origin well beyond the baseline's own wait for its headers queued
    // behind other open streams (a single-worker server): its chain is run again, alone.
    let queue_limit =
        baseline_rec.headers_at + baseline_rec.headers_at.max(Duration::from_millis(500));
    let ctx = Arc::new(Ctx {
        upstream,
        req: base_req,
        baseline: baseline_rec.clone(),
        judge_fix: origin_ok,
        target: target.clone(),
        queue_limit,
        visits: Default::default(),
        phases: chain_phases(loaded, opts),
    });
    let gate = Gate::new(loaded);
    let breaks = |m: &Measured| origin_ok && m.verdict.delivery != gate.expected(&m.name).0;
    let (measured, concurrency) = run_matrix(&ctx, selected, opts, &mut steps, &breaks).await?;
    if let Some(t) = &target {
        // A target that died while the last chains ran measured nothing trustworthy either.
        crate::origin::command::lock(t)
            .check_alive()
            .map_err(|source| CheckError::TargetDied {
                chain: "(after the matrix)".into(),
                source,
            })?;
    }
    drop(target);
    let mut baseline = gate.baseline(baseline_rec, baseline_verdict, &causes);
    baseline.phases = direct_phases;
    baseline.mcp = direct_mcp;
    baseline.took.measure = direct_took;
    let chains: Vec<ChainOutcome> = measured
        .into_iter()
        .map(|m| gate.chain(m, &baseline, origin_ok))
        .collect();
    // An inconclusive chain is not a pass either (see `CheckReport::inconclusive` for the exit code).
    let passed = baseline.status != Status::Fail
        && chains
            .iter()
            .all(|c| !matches!(c.status, Status::Fail | Status::Inconclusive));
    Ok(CheckReport {
        target: target_label,
        baseline,
        causes,
        chains,
        not_run,
        partition: opts.partition.map(|(k, n)| format!("{k}/{n}")),
        concurrency,
        stack,
        passed,
        took: started.elapsed(),
        steps: steps.done,
    })
}

/// A chain of the matrix: its name and hops.
type NamedChain = (String, Vec<HopSpec>);

/// The chains of this run that can run here, and those that cannot (a program not installed, a hop with
/// no place on the backend): reported, never passed. None runnable is an error.
fn runnable_chains(
    loaded: &Loaded,
    opts: &CheckOptions,
) -> Result<(Vec<NamedChain>, Vec<NotRun>), CheckError> {
    let mut selected = Vec::new();
    let mut not_run = Vec::new();
    for (name, hops) in select_chains(loaded, opts) {
        let placed: Result<Vec<HopSpec>, String> =
            hops.iter().map(|h| h.on_backend(opts.backend)).collect();
        let (hops, misplaced) = match placed {
            Ok(placed) => (placed, None),
            Err(why) => (hops, Some(why)),
        };
        match misplaced.or_else(|| hops.iter().find_map(HopSpec::missing)) {
            Some(reason) => not_run.push(NotRun {
                reason,
                chain: crate::case::chain_label(&hops),
                name,
            }),
            None => selected.push((name, hops)),
        }
    }
    if selected.is_empty() && not_run.is_empty() {
        let chains = select_chains(loaded, &CheckOptions::default()).len();
        let why = match opts.partition {
            Some((k, n)) => format!(
                "--partition {k}/{n} of the {chains} chain(s) left after `skip` is empty; use at most {chains} partitions"
            ),
            None => "`skip` leaves no chain of the matrix".into(),
        };
        return Err(CheckError::NoChain { why });
    }
    if selected.is_empty() {
        return Err(CheckError::NothingToRun {
            reasons: not_run
                .iter()
                .map(|n| format!("{}: {}", n.name, n.reason))
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    Ok((selected, not_run))
}

/// The phases of the direct stream: the browser beside it (`--browser`) and the origin's own capacity
/// (`listen.streams`), so a chain's is read against it; their findings join the direct verdict.
async fn measure_direct(
    loaded: &Loaded,
    opts: &CheckOptions,
    req: &ProbeRequest,
    rec: &Recording,
    verdict: &mut Verdict,
) -> Result<Phases, CheckError> {
    let mut phases = Phases::default();
    if opts.browser {
        let b = crate::phase::browser::view(req, (rec, verdict), false, &|_| None)
            .await
            .map_err(|e| {
                CheckError::Browser(format!("direct: {}", crate::error::error_chain(&e)))
            })?;
        verdict.findings.extend(b.findings.iter().cloned());
        crate::verdict::sort_findings(&mut verdict.findings);
        phases.push(PhaseResult::Browser(b));
    }
    // The origin's own capacity first, so a chain's is read against it (not for an MCP call, see
    // `chain_phases`).
    if let Some(plan) = loaded
        .config
        .listen
        .load()
        .filter(|_| req.protocol != crate::protocol::Protocol::Mcp)
    {
        let l = crate::phase::load::load_direct(req, plan)
            .await
            .map_err(|e| match e {
                ScenarioError::Load(source) => CheckError::Load {
                    chain: "direct".into(),
                    source,
                },
                ScenarioError::Probe(source) => CheckError::Baseline(source),
                other => CheckError::Load {
                    chain: "direct".into(),
                    source: crate::load::LoadError::Probe(
                        crate::probe::ProbeError::InvalidRequest(crate::error::error_chain(&other)),
                    ),
                },
            })?;
        verdict.findings.extend(l.finding());
        crate::verdict::sort_findings(&mut verdict.findings);
        phases.push(PhaseResult::Load(l));
    }
    // The client suite against the origin itself: what a chain's run is read against.
    if let Some(plan) = exec_plan(loaded, opts) {
        phases.push(PhaseResult::Exec(
            crate::phase::exec::run(plan, &req.url).await,
        ));
    }
    Ok(phases)
}

/// The chains of the matrix this run covers: minus `skip`, sorted by name, this partition's share.
fn select_chains(loaded: &Loaded, opts: &CheckOptions) -> Vec<(String, Vec<HopSpec>)> {
    let mut names: Vec<(&String, &Vec<HopSpec>)> = loaded
        .matrix
        .iter()
        .filter(|(n, _)| !loaded.config.skip.iter().any(|s| s.value == **n))
        .collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    names
        .into_iter()
        .enumerate()
        .filter(|(i, _)| opts.partition.is_none_or(|(k, n)| i % n == k - 1))
        .map(|(_, (n, h))| (n.clone(), h.clone()))
        .collect()
}

/// Run the chains concurrently, then the fix experiments of the broken ones concurrently, then again
/// one at a time the chains whose requests queued at the origin (waited while it was saturated).
async fn run_matrix(
    ctx: &Arc<Ctx>,
    selected: Vec<(String, Vec<HopSpec>)>,
    opts: &CheckOptions,
    steps: &mut Steps,
    breaks: &(dyn Fn(&Measured) -> bool + Sync),
) -> Result<(Vec<Measured>, Option<Concurrency>), CheckError> {
    let total = selected.len();
    let reporter: Arc<dyn Reporter> = opts.reporter.clone().unwrap_or_else(|| Arc::new(Silent));
    reporter.event(RunEvent::RunStarted {
        what: "chains",
        total,
    });
    let alone = opts.jobs <= 1;
    let hops: Vec<Vec<HopSpec>> = selected.iter().map(|(_, h)| h.clone()).collect();
    // The chains' own measurements, each with its fix experiment beside its phases when its request did
    // not wait at the origin (a chain that waited may have queued: whether it did is judged once every
    // chain ran, and its experiment waits for that).
    let started = reporter.clone();
    let measured = concurrently(ctx, opts.jobs, selected, move |ctx, name, hops| {
        let reporter = started.clone();
        async move {
            reporter.event(RunEvent::ScenarioStarted { name: &name });
            let mut m = fix::measure_chain(&ctx, &name, &hops, alone).await?;
            if m.waited.is_empty() {
                fix::fix_chain(&ctx, &mut m, &hops).await?;
            }
            if m.fix_done {
                chain_finished(&*reporter, &m);
            }
            Ok(m)
        }
    })
    .await?;
    steps.ended("chains");
    // The other fix experiments, at once too (a chain that queued is measured again alone below).
    let queued_now = queued(ctx, &measured);
    let work: Vec<Fix> = measured
        .into_iter()
        .zip(hops.iter().cloned())
        .enumerate()
        .map(|(i, (m, hops))| Fix {
            run: !m.fix_done && !queued_now.contains(&i),
            m,
            hops,
        })
        .collect();
    let deferred = work.iter().any(|f| f.run);
    let mut measured = concurrently_fix(ctx, opts.jobs, work, reporter.clone()).await?;
    if deferred {
        steps.ended("fix experiments");
    }
    let queued_idx = queued(ctx, &measured);
    let answered_at_once = most_open_at_once(&lock_visits(ctx));
    let longest_wait = measured
        .iter()
        .filter_map(|m| m.origin_wait)
        .max()
        .unwrap_or_default();
    let mut names = Vec::new();
    for &i in &queued_idx {
        reporter.event(RunEvent::ScenarioRequeued {
            name: &measured[i].name,
            why: "queued at the origin",
        });
    }
    for i in queued_idx {
        let name = measured[i].name.clone();
        let mut again = measure_alone(ctx, &name, &hops[i]).await?;
        again.queued_alone = !again.waited.is_empty();
        chain_finished(&*reporter, &again);
        measured[i] = again;
        names.push(name);
    }
    if !names.is_empty() {
        steps.ended("queued chains, alone");
    }
    // A chain that broke while the machine was starved is measured once more, alone; the second result
    // stands, and is inconclusive when it broke on a starved machine again. Never more than once.
    let starved: Vec<usize> = (0..measured.len())
        .filter(|&i| breaks(&measured[i]) && measured[i].starved())
        .collect();
    for &i in &starved {
        let name = measured[i].name.clone();
        reporter.event(RunEvent::ScenarioRequeued {
            name: &name,
            why: "broke while the machine was too busy",
        });
        let mut again = measure_alone(ctx, &name, &hops[i]).await?;
        // A break that reproduces is the chain's, busy machine or not.
        again.inconclusive =
            breaks(&again) && again.starved() && !again.verdict.reproduces(&measured[i].verdict);
        again.remeasured = Some(measured[i].result_words());
        chain_finished(&*reporter, &again);
        measured[i] = again;
    }
    if !starved.is_empty() {
        steps.ended("re-measured, alone");
    }
    reporter.event(RunEvent::RunFinished);
    for m in &mut measured {
        m.recording.compact(CHAIN_EVENTS_KEPT, CHAIN_READS_KEPT);
    }
    let concurrency = (!names.is_empty()).then_some(Concurrency {
        answered_at_once,
        queued: names,
        longest_wait,
    });
    Ok((measured, concurrency))
}

/// A chain measured again, with its fix experiment, while no other chain runs.
async fn measure_alone(ctx: &Ctx, name: &str, hops: &[HopSpec]) -> Result<Measured, CheckError> {
    let mut again = fix::measure_chain(ctx, name, hops, true).await?;
    fix::fix_chain(ctx, &mut again, hops).await?;
    again.serial = true;
    Ok(again)
}

/// Tell the reporter a chain is done (its own measurement and its fix experiment).
fn chain_finished(reporter: &dyn Reporter, m: &Measured) {
    reporter.event(RunEvent::ScenarioFinished {
        name: &m.name,
        result: Finished::Delivered(m.verdict.delivery.as_str()),
    });
}

fn lock_visits(ctx: &Ctx) -> Vec<Visit> {
    ctx.visits
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// The chains (by index) whose requests waited while the origin was saturated, judged from every
/// request the taps saw so far. Never any when chains run one at a time.
fn queued(ctx: &Ctx, measured: &[Measured]) -> Vec<usize> {
    let visits = lock_visits(ctx);
    let at_once = most_open_at_once(&visits);
    (0..measured.len())
        .filter(|&i| saturated_waits(&measured[i].waited, &visits, at_once) > 0)
        .collect()
}

/// Run `each` over the chains, `jobs` at once; on the first error the others are stopped (and the first
/// chain's error, in the selection's order, is the one reported).
async fn concurrently<F, Fut>(
    ctx: &Arc<Ctx>,
    jobs: usize,
    chains: Vec<(String, Vec<HopSpec>)>,
    each: F,
) -> Result<Vec<Measured>, CheckError>
where
    F: Fn(Arc<Ctx>, String, Vec<HopSpec>) -> Fut,
    Fut: std::future::Future<Output = Result<Measured, CheckError>> + Send + 'static,
{
    let sem = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    // A set, so that the chains still running when one fails are stopped with it, not left detached.
    let mut tasks = tokio::task::JoinSet::new();
    let total = chains.len();
    for (i, (name, hops)) in chains.into_iter().enumerate() {
        let sem = sem.clone();
        let fut = each(ctx.clone(), name, hops);
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (i, fut.await)
        });
    }
    join_in_order(tasks, total).await
}

/// A measured chain and whether its fix experiment runs now (a chain that queued is run again alone).
struct Fix {
    run: bool,
    m: Measured,
    hops: Vec<HopSpec>,
}

/// The fix experiments of the chains to run now, `jobs` at once; each chain is reported finished when
/// its experiment is.
async fn concurrently_fix(
    ctx: &Arc<Ctx>,
    jobs: usize,
    chains: Vec<Fix>,
    reporter: Arc<dyn Reporter>,
) -> Result<Vec<Measured>, CheckError> {
    let sem = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let total = chains.len();
    for (i, Fix { run, mut m, hops }) in chains.into_iter().enumerate() {
        let sem = sem.clone();
        let ctx = ctx.clone();
        let reporter = reporter.clone();
        tasks.spawn(async move {
            if run {
                let _permit = sem.acquire_owned().await;
                if let Err(e) = fix::fix_chain(&ctx, &mut m, &hops).await {
                    return (i, Err(e));
                }
                chain_finished(&*reporter, &m);
            }
            (i, Ok(m))
        });
    }
    join_in_order(tasks, total).await
}

/// Join every task; results in the tasks' order, or the error of the first task (in that order) that
/// failed, once the others are stopped.
async fn join_in_order(
    mut tasks: tokio::task::JoinSet<(usize, Result<Measured, CheckError>)>,
    total: usize,
) -> Result<Vec<Measured>, CheckError> {
    let mut done: Vec<Option<Measured>> = (0..total).map(|_| None).collect();
    let mut failed: Option<(usize, CheckError)> = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, Ok(m))) => done[i] = Some(m),
            Ok((i, Err(e))) => {
                tasks.abort_all();
                if failed.as_ref().is_none_or(|(j, _)| i < *j) {
                    failed = Some((i, e));
                }
            }
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: only by abort_all above, after an error.
            Err(_) => {}
        }
    }
    if let Some((_, e)) = failed {
        return Err(e);
    }
    let done: Vec<Measured> = done.into_iter().flatten().collect();
    debug_assert_eq!(done.len(), total, "every chain measured or an error");
    Ok(done)
}

async fn upstream_addr(url: &str) -> Result<SocketAddr, CheckError> {
    let shown = crate::secrets::redact_url(url);
    let u = reqwest::Url::parse(url).map_err(|_| CheckError::NotHttp { url: shown.clone() })?;
    if u.scheme() != "http" {
        return Err(CheckError::NotHttp { url: shown });
    }
    let host = u.host_str().unwrap_or("127.0.0.1").to_string();
    let port = u.port_or_known_default().unwrap_or(80);
    let mut addrs = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|source| CheckError::Resolve {
            url: shown.clone(),
            source,
        })?;
    addrs.next().ok_or_else(|| CheckError::Resolve {
        url: shown,
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
    })
}

/// Events and reads of each chain's recording kept for the report once the chain is judged (the rest are
/// counted): `check` holds every chain's recording until its report is written, so its memory would
/// otherwise grow with the matrix (about 5 MiB a chain on a firehose).
pub const CHAIN_EVENTS_KEPT: usize = 1_000;
pub const CHAIN_READS_KEPT: usize = 2_000;
/// Bytes of event records a chain keeps while it is measured (a lone probe keeps
/// [`crate::probe::EVENTS_KEPT_BYTES`]): every chain is measured at once, and their records were the
/// largest part of `check --url`'s memory on firehoses of long-id events (measured: 15.9 MiB). About
/// 4 000 tiny events, or 1 400 with 256-byte ids; later events are counted.
pub const CHAIN_KEPT_BYTES: usize = 512 << 10;

/// One chain as measured, before the gate's policy.
pub struct Measured {
    name: String,
    label: String,
    programs: Vec<String>,
    recording: Recording,
    verdict: Verdict,
    fix: Option<Fixability>,
    origin_wait: Option<Duration>,
    /// The origin kept this chain's request waiting beyond the queue limit (in its own measurement or
    /// a fix experiment): the middle of each such wait, a suspicion judged once every chain ran.
    waited: Vec<Instant>,
    /// Run alone, and the origin still kept the request waiting.
    queued_alone: bool,
    serial: bool,
    phases: Phases,
    took: ChainTook,
    mcp: Option<crate::verdict::mcp::McpSession>,
    /// Measured again alone because it broke while the machine was starved: the first result, in words.
    remeasured: Option<String>,
    /// Its fix experiment ran (beside its phases, or right after its own measurement), or needs none.
    fix_done: bool,
    /// It broke again, and the machine was starved again.
    inconclusive: bool,
}

impl Measured {
    /// The machine was too busy for this chain's margin while it was measured, its delivery is one a
    /// starved machine can make, and its fix experiment did not prove the break structural (the
    /// origin's opt-outs or heartbeats made the same chain stream: a stall does not care for headers).
    fn starved(&self) -> bool {
        self.verdict.delivery.starvation_can_make()
            && !matches!(self.fix, Some(Fixability::Origin { .. }))
            && self
                .recording
                .pressure
                .as_ref()
                .is_some_and(|p| p.starved(self.verdict.threshold))
    }

    /// "`batched` (timer lateness …)".
    fn result_words(&self) -> String {
        format!(
            "`{}` ({})",
            self.verdict.delivery,
            crate::pressure::describe(self.recording.pressure.as_ref())
        )
    }
}

/// One request as the tap saw it at the origin.
#[derive(Debug, Clone, Copy)]
struct Visit {
    /// When the request reached the origin.
    request_at: Instant,
    /// From the origin's response head to the end of the response (or of the probe).
    open: Option<(Instant, Instant)>,
}

impl Ctx {
    /// Whether `run`'s request waited at the origin beyond the queue limit, and the middle of that wait
    /// (requests sent at once reach the origin before any is answered: the wait's start says nothing).
    fn waited<'a>(&self, run: impl Into<AtOrigin<'a>>) -> Option<Instant> {
        let run = run.into();
        let wait = run.wait.filter(|w| *w > self.queue_limit)?;
        self.visit(run).map(|v| v.request_at + wait / 2)
    }

    fn visit(&self, run: AtOrigin<'_>) -> Option<Visit> {
        let wait = run.wait?;
        let (head, end) = match run.open {
            Some((head, end)) => (head, Some(end)),
            None => (run.recording.start + run.recording.ended_at, None),
        };
        Some(Visit {
            request_at: head.checked_sub(wait)?,
            open: end.map(|e| (head, e)),
        })
    }

    /// Note what the origin did with `run`'s request.
    fn record_visit(&self, run: &Measurement) {
        if let Some(v) = self.visit(run.into()) {
            self.visits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(v);
        }
    }
}

/// What the tap saw of one probe's request at the origin: how long it waited there for its response
/// head, and when that response was open.
#[derive(Clone, Copy)]
struct AtOrigin<'a> {
    wait: Option<Duration>,
    open: Option<(Instant, Instant)>,
    recording: &'a Recording,
}

impl<'a> From<&'a Measurement> for AtOrigin<'a> {
    fn from(m: &'a Measurement) -> Self {
        AtOrigin {
            wait: m.origin_wait,
            open: m.open_at_origin,
            recording: &m.recording,
        }
    }
}

impl<'a> From<&'a crate::through::Main> for AtOrigin<'a> {
    fn from(m: &'a crate::through::Main) -> Self {
        AtOrigin {
            wait: m.origin_wait,
            open: m.open_at_origin,
            recording: &m.recording,
        }
    }
}

/// A sync worker's next response can start a moment before the tap has seen the previous one close:
/// overlaps shorter than this are not concurrency.
const OPEN_SLACK: Duration = Duration::from_millis(50);

/// The most responses the origin had open at once, over `visits`.
fn most_open_at_once(visits: &[Visit]) -> usize {
    let mut edges: Vec<(Instant, i32)> = Vec::new();
    for (from, to) in visits.iter().filter_map(|v| v.open) {
        if to > from + OPEN_SLACK {
            edges.push((from, 1));
            edges.push((to - OPEN_SLACK, -1));
        }
    }
    // Ends before starts at the same instant: touching intervals do not overlap.
    edges.sort_by_key(|&(t, d)| (t, d));
    let (mut open, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        open += d;
        most = most.max(open);
    }
    most.max(0) as usize
}

/// Of `waited` (the middles of long waits), those during which the origin had as many responses open as
/// it ever answered at once: a request that waited while the origin had room did not queue for a
/// worker (a busy machine delayed it), and its chain is not re-run alone.
fn saturated_waits(waited: &[Instant], visits: &[Visit], answered_at_once: usize) -> usize {
    waited
        .iter()
        .filter(|&&at| {
            let open = visits
                .iter()
                .filter_map(|v| v.open)
                .filter(|&(from, to)| from <= at && at + OPEN_SLACK < to)
                .count();
            answered_at_once > 0 && open >= answered_at_once
        })
        .count()
}

/// Measure `hops` in front of the origin, through a tap that stamps the origin's real send instants,
/// then `phases` through the same chain (the chain's own measurement; a fix experiment runs none).
async fn probe_chain(
    ctx: &Ctx,
    name: &str,
    hops: &[HopSpec],
    phases: &[PhasePlan],
) -> Result<Measurement, CheckError> {
    let (run, ()) = probe_chain_beside(ctx, name, hops, phases, |_| async {}).await?;
    Ok(run)
}

/// [`probe_chain`], running `beside` on the main probe's result while the phases measure.
async fn probe_chain_beside<T, F, Fut>(
    ctx: &Ctx,
    name: &str,
    hops: &[HopSpec],
    phases: &[PhasePlan],
    beside: F,
) -> Result<(Measurement, T), CheckError>
where
    F: FnOnce(Arc<crate::through::Main>) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let scenario = Scenario {
        chain: hops,
        request: &ctx.req,
        witness: Witness::Tap {
            upstream: ctx.upstream,
            fallback: Some(&ctx.baseline),
            target: ctx.target.as_ref(),
        },
        phases,
        running: None,
    };
    let chain = name.to_string();
    let (run, extra) = scenario::measure_beside(&scenario, beside)
        .await
        .map_err(|e| match e {
            ScenarioError::Tap(source) => CheckError::Tap(source),
            ScenarioError::Hop(source) => CheckError::Hop { chain, source },
            ScenarioError::Probe(source) => CheckError::Probe { chain, source },
            ScenarioError::TargetDied(source) => CheckError::TargetDied { chain, source },
            ScenarioError::Load(source) => CheckError::Load { chain, source },
            ScenarioError::Browser(source) => {
                CheckError::Browser(format!("{chain}: {}", crate::error::error_chain(&source)))
            }
        })?;
    ctx.record_visit(&run);
    Ok((run, extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_queueing_only_while_the_origin_was_saturated() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let visit = |req: u64, head: u64, end: u64| Visit {
            request_at: ms(req),
            open: Some((ms(head), ms(end))),
        };
        // A single worker: B came with A (before A's head) and waited for A's stream to end.
        let single = [visit(0, 5, 2000), visit(2, 2010, 4000)];
        assert_eq!(most_open_at_once(&single), 1);
        assert_eq!(saturated_waits(&[ms(1006)], &single, 1), 1);
        // A server that answers concurrently (nine streams open at once), on a starved machine: a
        // request that came while three were open waited 334 ms, with room to spare. Not queueing.
        let mut busy: Vec<Visit> = (0..9).map(|i| visit(i, 20 + i, 3000)).collect();
        busy.push(visit(25, 359, 3000));
        let at_once = most_open_at_once(&busy);
        assert!(at_once >= 9, "{at_once}");
        assert_eq!(saturated_waits(&[ms(192)], &busy, at_once), 0);
        // Two workers, both busy: the third request queued.
        let two = [visit(0, 5, 2000), visit(1, 6, 2000), visit(10, 2010, 4000)];
        assert_eq!(most_open_at_once(&two), 2);
        assert_eq!(saturated_waits(&[ms(1010)], &two, 2), 1);
    }

    #[test]
    fn partitions_parse() {
        assert_eq!(parse_partition("1/3").unwrap(), (1, 3));
        assert!(parse_partition("0/3").is_err());
        assert!(parse_partition("4/3").is_err());
        assert!(parse_partition("x").is_err());
    }
}

#[cfg(test)]
mod starved_tests {
    use super::*;

    /// A chain measured on a machine with `cpu_waiting`: on time, or held to its end.
    fn measured(on_time: bool, cpu_waiting: f64) -> Measured {
        let arrivals: &[u64] = if on_time {
            &[402, 803, 1201, 1605, 2002, 2401]
        } else {
            &[2401; 6]
        };
        let recording = crate::probe::testing::pressured(arrivals, cpu_waiting);
        let mut verdict = judge(&recording, Reference::None);
        if !on_time {
            // As a starved hop delivers (the judging itself is tested with the verdicts).
            verdict.delivery = Delivery::Batched;
        }
        Measured {
            name: "nginx-default".into(),
            label: "nginx default".into(),
            programs: vec![],
            recording,
            verdict,
            fix: None,
            origin_wait: None,
            waited: vec![],
            queued_alone: false,
            serial: true,
            phases: Phases::default(),
            took: ChainTook::default(),
            mcp: None,
            remeasured: None,
            fix_done: false,
            inconclusive: false,
        }
    }

    #[test]
    fn a_chain_broken_twice_on_a_starved_machine_is_inconclusive_not_failed() {
        let loaded = crate::config::parse(
            std::path::Path::new("ssegate.yaml"),
            "target:\n  url: {base: \"http://127.0.0.1:9/\"}\nexpect:\n  delivery: {nginx-default: streamed}\n",
        )
        .unwrap();
        let gate = Gate::new(&loaded);
        let base = measured(true, 0.0);
        let baseline = gate.baseline(base.recording, base.verdict, &[]);
        assert!(measured(false, 0.9).starved() && !measured(false, 0.1).starved());
        let mut fixed = measured(false, 0.9);
        fixed.fix = Some(Fixability::Origin {
            headers: vec![],
            heartbeat_ms: Some(150),
            advise_heartbeat_ms: Some(150),
            delivery_with_fix: Delivery::Streamed,
        });
        assert!(
            !fixed.starved(),
            "heartbeats made it stream: the break is the chain's"
        );
        let mut held = measured(false, 0.9);
        held.verdict.delivery = Delivery::HeldUntilEnd;
        assert!(
            !held.starved(),
            "a stream held to its end is no stall's doing"
        );
        // Broke, then broke again while starved again: neither a pass nor a failure, with both results.
        let mut again = measured(false, 0.9);
        again.remeasured = Some(measured(false, 0.9).result_words());
        again.inconclusive = true;
        let c = gate.chain(again, &baseline, true);
        assert_eq!(c.status, Status::Inconclusive, "{:?}", c.reasons);
        assert!(c.reasons[0].starts_with("inconclusive: the machine was too busy"));
        assert!(c.reasons[0].contains("first `batched`"), "{:?}", c.reasons);
        // Streamed the second time: that result stands, and the first is named.
        let mut again = measured(true, 0.1);
        again.remeasured = Some(measured(false, 0.9).result_words());
        let c = gate.chain(again, &baseline, true);
        assert_eq!(c.status, Status::Pass, "{:?}", c.reasons);
        assert!(
            c.reasons
                .iter()
                .any(|r| r.contains("the second result stands"))
        );
        // Broke again on a quiet machine: a failure.
        let mut again = measured(false, 0.1);
        again.remeasured = Some(measured(false, 0.9).result_words());
        let c = gate.chain(again, &baseline, true);
        assert_eq!(c.status, Status::Fail, "{:?}", c.reasons);
    }
}
