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

use fix::run_chain;
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
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::NotJudged => "not-judged",
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
}

impl CheckReport {
    pub fn all(&self) -> impl Iterator<Item = &ChainOutcome> {
        std::iter::once(&self.baseline).chain(&self.chains)
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
    spec.build(url, Duration::from_millis(loaded.config.listen.duration_ms))
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
    /// An origin wait longer than this means the request queued at the origin.
    queue_limit: Duration,
    /// The phases through every chain's own measurement (never a fix experiment's).
    phases: Vec<PhasePlan>,
}

/// The phases every chain's own measurement gets: `listen.streams` (a load), `listen.lifecycle` (the
/// reconnect and disconnect phases) and `--browser`.
fn chain_phases(loaded: &Loaded, opts: &CheckOptions) -> Vec<PhasePlan> {
    let mut plans = Vec::new();
    if let Some(plan) = loaded.config.listen.load() {
        plans.push(PhasePlan::Load(plan));
    }
    if loaded.config.listen.lifecycle {
        plans.push(PhasePlan::Lifecycle(true));
    }
    if opts.browser {
        plans.push(PhasePlan::Browser(crate::phase::browser::BrowserSpec::On(
            true,
        )));
    }
    plans
}

/// Run the gate.
pub async fn check(loaded: &Loaded, opts: &CheckOptions) -> Result<CheckReport, CheckError> {
    let started = Instant::now();
    let (selected, not_run) = runnable_chains(loaded, opts)?;
    // Before anything starts: the browser must be there.
    if let Some(why) = crate::browser::missing().filter(|_| opts.browser) {
        return Err(CheckError::Browser(why));
    }
    let (command_target, base_url, target_label) = start_target(loaded, opts).await?;
    let target: Option<Target> = command_target.map(|t| Arc::new(std::sync::Mutex::new(t)));
    let base_req = probe_request(loaded, base_url.clone(), opts);
    let baseline_rec = record_baseline(&base_req, target.as_ref()).await?;
    let mut baseline_verdict = judge(&baseline_rec, Reference::None);
    let direct_phases = measure_direct(
        loaded,
        opts,
        &base_req,
        &baseline_rec,
        &mut baseline_verdict,
    )
    .await?;
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
        phases: chain_phases(loaded, opts),
    });
    let (measured, concurrency) = run_matrix(&ctx, selected, opts).await?;
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
    let gate = Gate::new(loaded);
    let mut baseline = gate.baseline(baseline_rec, baseline_verdict, &causes);
    baseline.phases = direct_phases;
    let chains: Vec<ChainOutcome> = measured
        .into_iter()
        .map(|m| gate.chain(m, &baseline, origin_ok))
        .collect();
    let passed = baseline.status != Status::Fail && chains.iter().all(|c| c.status != Status::Fail);
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
    // The origin's own capacity first, so a chain's is read against it.
    if let Some(plan) = loaded.config.listen.load() {
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

/// Run the chains concurrently, then again one at a time those whose request queued at the origin.
async fn run_matrix(
    ctx: &Arc<Ctx>,
    selected: Vec<(String, Vec<HopSpec>)>,
    opts: &CheckOptions,
) -> Result<(Vec<Measured>, Option<Concurrency>), CheckError> {
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    // A set, so that the chains still running when one fails are stopped with it, not left detached.
    let mut tasks = tokio::task::JoinSet::new();
    let total = selected.len();
    let reporter: Arc<dyn Reporter> = opts.reporter.clone().unwrap_or_else(|| Arc::new(Silent));
    reporter.event(RunEvent::RunStarted {
        what: "chains",
        total,
    });
    for (i, (name, hops)) in selected.into_iter().enumerate() {
        let sem = sem.clone();
        let ctx = ctx.clone();
        let reporter = reporter.clone();
        let alone = opts.jobs <= 1;
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await;
            reporter.event(RunEvent::ScenarioStarted { name: &name });
            let r = run_chain(&ctx, &name, &hops, alone).await;
            match &r {
                Ok(m) if m.queued => reporter.event(RunEvent::ScenarioRequeued { name: &name }),
                Ok(m) => reporter.event(RunEvent::ScenarioFinished {
                    name: &name,
                    result: Finished::Delivered(m.verdict.delivery.as_str()),
                }),
                Err(_) => reporter.event(RunEvent::ScenarioFinished {
                    name: &name,
                    result: Finished::Error,
                }),
            }
            (i, r.map(|m| (m, hops)))
        });
    }
    // On the first error the other chains are stopped; of the errors that came, the first chain's (in
    // the selection's order) is the one reported, whichever finished first.
    let mut done: Vec<Option<(Measured, Vec<HopSpec>)>> = (0..total).map(|_| None).collect();
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
    let mut measured: Vec<(Measured, Vec<HopSpec>)> = done.into_iter().flatten().collect();
    debug_assert_eq!(measured.len(), total, "every chain measured or an error");
    let queued: Vec<usize> = (0..measured.len())
        .filter(|&i| measured[i].0.queued)
        .collect();
    if queued.is_empty() {
        reporter.event(RunEvent::RunFinished);
        return Ok((measured.into_iter().map(|(m, _)| m).collect(), None));
    }
    let answered_at_once = most_open_at_once(measured.iter().map(|(m, _)| m));
    let longest_wait = measured
        .iter()
        .filter_map(|(m, _)| m.origin_wait)
        .max()
        .unwrap_or_default();
    let mut names = Vec::new();
    for i in queued {
        let (first, hops) = &measured[i];
        let name = first.name.clone();
        let mut again = run_chain(ctx, &name, hops, true).await?;
        again.serial = true;
        reporter.event(RunEvent::ScenarioFinished {
            name: &name,
            result: Finished::Delivered(again.verdict.delivery.as_str()),
        });
        measured[i].0 = again;
        names.push(name);
    }
    reporter.event(RunEvent::RunFinished);
    let concurrency = Concurrency {
        answered_at_once,
        queued: names,
        longest_wait,
    };
    Ok((
        measured.into_iter().map(|(m, _)| m).collect(),
        Some(concurrency),
    ))
}

/// The most responses that were open at the origin at the same instant.
fn most_open_at_once<'a>(runs: impl Iterator<Item = &'a Measured>) -> usize {
    let mut edges: Vec<(Instant, i32)> = Vec::new();
    for m in runs {
        // A sync worker's next response can start a moment before the tap has seen the previous one
        // close: overlaps shorter than this are not concurrency.
        const SLACK: Duration = Duration::from_millis(50);
        if let Some((from, to)) = m.open_at_origin
            && to > from + SLACK
        {
            edges.push((from, 1));
            edges.push((to - SLACK, -1));
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

/// One chain as measured, before the gate's policy.
pub struct Measured {
    name: String,
    label: String,
    programs: Vec<String>,
    recording: Recording,
    verdict: Verdict,
    fix: Option<Fixability>,
    origin_wait: Option<Duration>,
    /// From the origin's response head to the end of the response (or of the probe).
    open_at_origin: Option<(Instant, Instant)>,
    /// The origin kept this chain's request waiting (the run is to be repeated alone).
    queued: bool,
    /// Run alone, and the origin still kept the request waiting.
    queued_alone: bool,
    serial: bool,
    phases: Phases,
}

impl Ctx {
    fn queued(&self, run: &Measurement) -> bool {
        run.origin_wait.is_some_and(|w| w > self.queue_limit)
    }
}

/// Measure `hops` in front of the origin, through a tap that stamps the origin's real send instants,
/// then `phases` through the same chain (the chain's own measurement; a fix experiment runs none).
async fn probe_chain(
    ctx: &Ctx,
    name: &str,
    hops: &[HopSpec],
    phases: &[PhasePlan],
) -> Result<Measurement, CheckError> {
    let scenario = Scenario {
        chain: hops,
        request: &ctx.req,
        witness: Witness::Tap {
            upstream: ctx.upstream,
            fallback: Some(&ctx.baseline),
            target: ctx.target.as_ref(),
        },
        phases,
    };
    let chain = name.to_string();
    scenario::measure(&scenario).await.map_err(|e| match e {
        ScenarioError::Tap(source) => CheckError::Tap(source),
        ScenarioError::Hop(source) => CheckError::Hop { chain, source },
        ScenarioError::Probe(source) => CheckError::Probe { chain, source },
        ScenarioError::TargetDied(source) => CheckError::TargetDied { chain, source },
        ScenarioError::Load(source) => CheckError::Load { chain, source },
        ScenarioError::Browser(source) => {
            CheckError::Browser(format!("{chain}: {}", crate::error::error_chain(&source)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_parse() {
        assert_eq!(parse_partition("1/3").unwrap(), (1, 3));
        assert!(parse_partition("0/3").is_err());
        assert!(parse_partition("4/3").is_err());
        assert!(parse_partition("x").is_err());
    }
}
