//! Running scenarios: start the origin, the chain in front of it, probe, judge, compare with the case.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::case::Case;
use crate::events::{Finished, Reporter, RunEvent};
use crate::intermediary::{Chain, HopSpec};
use crate::origin::{FixtureServer, Profile};
use crate::phase::{PhaseExpect, PhasePlan, Phases};
use crate::probe::{ProbeRequest, Recording};
use crate::request::RequestSpec;
use crate::scenario::{self, Measurement, RunningChain, Scenario, ScenarioError, Witness};
use crate::verdict::Verdict;

/// Why a scenario could not be run (as opposed to running and failing its expectation).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("failed to start the fixture origin")]
    Fixture(#[source] std::io::Error),
    /// The chain, the probe or a phase (a fixture needs no tap and is no started command).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
}

/// Everything one scenario produced.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub name: String,
    pub description: String,
    pub profile: String,
    /// The case changed the profile (`target.overrides`).
    pub profile_changed: bool,
    /// The override keys it set (`events`, `headers`, …).
    pub profile_changes: Vec<&'static str>,
    /// `direct` or the hops, origin side first.
    pub chain: String,
    /// Versions of the real programs in the chain.
    pub programs: Vec<String>,
    /// Method and HTTP version of the request the origin received (nginx speaks HTTP/1.0 upstream by default).
    pub origin_saw: Option<String>,
    /// With `protocol: mcp`, the session ssegate's client opened before the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp: Option<crate::verdict::mcp::McpSession>,
    pub recording: Recording,
    pub verdict: Verdict,
    /// What the case's phases measured, one key each (`second`, `load`, `lifecycle`, `browser`).
    #[serde(flatten)]
    pub phases: Phases,
    pub expectation: Option<Expectation>,
    /// Wall time of the whole scenario.
    #[serde(serialize_with = "crate::probe::ser_ms")]
    pub took: Duration,
    /// Measured once more, alone, because the first measurement failed while the machine was starved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remeasured: Option<Remeasured>,
}

/// What the first measurement of a re-measured case found.
#[derive(Debug, Clone, Serialize)]
pub struct Remeasured {
    pub first_delivery: crate::verdict::Delivery,
    pub first_failures: Vec<String>,
    pub first_pressure: Option<crate::pressure::Pressure>,
    /// The second measurement failed too, and the machine was starved again: neither a pass nor a
    /// failure.
    pub inconclusive: bool,
}

/// The case's expectation and what did not hold.
#[derive(Debug, Clone, Serialize)]
pub struct Expectation {
    pub delivery: crate::verdict::Delivery,
    pub findings: Vec<String>,
    pub absent: Vec<String>,
    /// What it expects of its phases.
    #[serde(flatten)]
    pub phases: PhaseExpect,
    /// Empty when the case passed.
    pub failures: Vec<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        !self.inconclusive()
            && self
                .expectation
                .as_ref()
                .is_none_or(|e| e.failures.is_empty())
    }

    /// Failed twice, each time while the machine was starved: this machine could not tell.
    pub fn inconclusive(&self) -> bool {
        self.remeasured.as_ref().is_some_and(|r| r.inconclusive)
    }

    /// Failed while the machine was too busy for the case's margin (see [`Pressure::starved`]), in a way
    /// a starved machine can fail: a delivery it can make, or the right delivery and a phase wrong.
    ///
    /// [`Pressure::starved`]: crate::pressure::Pressure::starved
    fn failed_starved(&self) -> bool {
        let expected = self.expectation.as_ref().map(|e| e.delivery);
        !self.passed()
            && (self.verdict.delivery.starvation_can_make()
                || expected == Some(self.verdict.delivery))
            && self
                .recording
                .pressure
                .as_ref()
                .is_some_and(|p| p.starved(self.verdict.threshold))
    }

    /// This outcome, measured again after `first` failed on a starved machine.
    fn after(mut self, first: Outcome) -> Outcome {
        // A failure that reproduces is the case's, busy machine or not.
        let inconclusive = self.failed_starved() && !self.verdict.reproduces(&first.verdict);
        self.remeasured = Some(Remeasured {
            first_delivery: first.verdict.delivery,
            first_failures: first.expectation.map(|e| e.failures).unwrap_or_default(),
            first_pressure: first.recording.pressure,
            inconclusive,
        });
        self
    }
}

/// The probe request for a scenario: the case's request on the browser-like default, listening for
/// the whole schedule plus a generous margin unless the case says otherwise.
pub fn probe_request(url: String, request: &RequestSpec, profile: &Profile) -> ProbeRequest {
    request.build(url, profile.span() + Duration::from_secs(10))
}

/// Real programs starting at once (see [`run_case_in`]).
pub const STARTS_AT_ONCE: usize = 2;

/// Start real programs one [`STARTS_AT_ONCE`] turn at a time: Varnish, Traffic Server, node and
/// mitmproxy cost up to a second of CPU each to start, and on a small machine many starting at once
/// delay the events of the cases being measured meanwhile. Measuring through a running program costs
/// little, so cases measure at once; only their starts take turns.
async fn start_turn(hops: &[HopSpec]) -> Option<tokio::sync::SemaphorePermit<'static>> {
    static STARTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(STARTS_AT_ONCE);
    if hops.iter().any(|h| matches!(h, HopSpec::Process(_))) {
        STARTS.acquire().await.ok()
    } else {
        None
    }
}

/// A fixture and the chain started in front of it, shared by the cases of one run that can share them.
struct Shared {
    fixture: FixtureServer,
    chain: RunningChain,
}

/// A shared chain once started (None: it failed to start).
type SharedCell = tokio::sync::OnceCell<Option<Arc<Shared>>>;

/// The chains a run has started, to share between its cases: one instance of each chain of real
/// programs serves every case through it that keeps no state in it, each case's profile on a path of
/// its own on one fixture. A case keeps a chain of its own when a hop caches ([`Program::caches`]:
/// what one case sent could reach another) or a phase needs one ([`Phase::OWN_CHAIN`]: a second
/// client, a load).
///
/// [`Program::caches`]: crate::intermediary::program::Program::caches
/// [`Phase::OWN_CHAIN`]: crate::phase::Phase::OWN_CHAIN
/// Each shared chain stops once the last case through it is done (it is not kept to the run's end).
#[derive(Default)]
pub struct Pool {
    chains: std::sync::Mutex<HashMap<String, Sharing>>,
}

/// A shared chain and how many cases of the run have yet to finish with it.
struct Sharing {
    cell: Arc<SharedCell>,
    users: usize,
}

/// Hands a case's share of a chain back to the pool when the case is done, however it ends.
struct Release<'p> {
    pool: &'p Pool,
    key: Option<String>,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.pool.release(&key);
        }
    }
}

impl Pool {
    /// A pool for `cases`: it counts the cases that will share each chain.
    pub fn for_cases(cases: &[Case]) -> Pool {
        let pool = Pool::default();
        {
            let mut chains = pool.lock();
            for case in cases {
                if let Some(key) = Self::key(case, &case.file.phase_plans()) {
                    chains
                        .entry(key)
                        .or_insert_with(|| Sharing {
                            cell: Arc::default(),
                            users: 0,
                        })
                        .users += 1;
                }
            }
        }
        pool
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Sharing>> {
        self.chains
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A case is done with the chain under `key`: the last one drops the pool's hold on it, and the
    /// chain stops when that case lets go of it too.
    fn release(&self, key: &str) {
        let mut chains = self.lock();
        if let Some(s) = chains.get_mut(key) {
            s.users = s.users.saturating_sub(1);
            if s.users == 0 {
                chains.remove(key);
            }
        }
    }

    /// How many chains the pool still holds (for tests).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.lock().len()
    }

    /// The key a case shares a chain under, or None when it keeps its own.
    fn key(case: &Case, plans: &[PhasePlan]) -> Option<String> {
        let chain = &case.file.chain;
        let shareable = !chain.is_empty()
            && chain
                .iter()
                .all(|h| matches!(h, HopSpec::Process(p) if !p.program.caches))
            && !plans.iter().any(PhasePlan::own_chain);
        shareable.then(|| {
            let hops: Vec<String> = chain.iter().map(HopSpec::label).collect();
            // A fixture frames every response one way (see `FixtureServer::serve_at`).
            format!("{} / {}", hops.join(" <- "), case.profile.wire.as_str())
        })
    }

    /// The running chain `case` shares, started by the first case to ask; None when it keeps its own,
    /// or when the shared one failed to start (the case then starts its own, and says why it failed).
    async fn shared(&self, case: &Case, plans: &[PhasePlan]) -> Option<Arc<Shared>> {
        let key = Self::key(case, plans)?;
        let cell = self.lock().get(&key)?.cell.clone();
        cell.get_or_init(|| async {
            let fixture = FixtureServer::start(case.profile.clone()).await.ok()?;
            let _turn = start_turn(&case.file.chain).await;
            let chain = Chain::start(&case.file.chain, fixture.addr()).await.ok()?;
            Some(Arc::new(Shared {
                fixture,
                chain: Arc::new(std::sync::Mutex::new(chain)),
            }))
        })
        .await
        .clone()
    }
}

/// Run one case's scenario: a fixture serving `profile` behind `chain`, probed with `request`, then
/// measured by `phases`, on a fixture and a chain of its own.
pub async fn run_scenario(
    profile: &Profile,
    chain: &[HopSpec],
    request: &RequestSpec,
    phases: &[PhasePlan],
) -> Result<Measurement, RunError> {
    scenario_on(profile, chain, request, phases, None).await
}

/// [`run_scenario`] through `shared` (a fixture and the chain in front of it, started for several
/// cases) when given.
async fn scenario_on(
    profile: &Profile,
    chain: &[HopSpec],
    request: &RequestSpec,
    phases: &[PhasePlan],
    shared: Option<&Shared>,
) -> Result<Measurement, RunError> {
    let own;
    let (fixture, running) = match shared {
        Some(s) => (&s.fixture, s.chain.clone()),
        None => {
            own = FixtureServer::start(profile.clone())
                .await
                .map_err(RunError::Fixture)?;
            // What a phase sets up before the chain starts, its programs inherit.
            for p in phases {
                p.prepare(chain, true);
            }
            let _turn = start_turn(chain).await;
            let started = Chain::start(chain, own.addr())
                .await
                .map_err(|e| RunError::Scenario(ScenarioError::Hop(e)))?;
            (&own, Arc::new(std::sync::Mutex::new(started)))
        }
    };
    let req = probe_request(format!("http://{}/", fixture.addr()), request, profile);
    let scenario = Scenario {
        chain,
        request: &req,
        witness: Witness::Fixture {
            server: fixture,
            profile,
        },
        phases,
        running: Some(running),
    };
    Ok(scenario::measure(&scenario).await?)
}

/// Cases with real programs that [`run_case`] measures at once.
pub const REAL_AT_ONCE: usize = 3;

/// Run a case on a fixture and a chain of its own, and check its expectation. Callers that run many
/// at once without a [`Pool`] (the conformance harness, one runtime per case) get no re-measurement
/// of a case that failed on a starved machine, so at most [`REAL_AT_ONCE`] cases with real programs
/// are measured at a time here, as before chains were shared.
pub async fn run_case(case: &Case) -> Result<Outcome, RunError> {
    static REAL: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(REAL_AT_ONCE);
    let real = case
        .file
        .chain
        .iter()
        .any(|h| matches!(h, HopSpec::Process(_)));
    let _turn = if real {
        REAL.acquire().await.ok()
    } else {
        None
    };
    run_case_in(case, None).await
}

/// Run a case, through a chain of `pool`'s when it can share one, and check its expectation.
pub async fn run_case_in(case: &Case, pool: Option<&Pool>) -> Result<Outcome, RunError> {
    let started = Instant::now();
    let plans = case.file.phase_plans();
    let (shared, _release) = match pool {
        Some(pool) => (
            pool.shared(case, &plans).await,
            Some(Release {
                pool,
                key: Pool::key(case, &plans),
            }),
        ),
        None => (None, None),
    };
    let m = scenario_on(
        &case.profile,
        &case.file.chain,
        &case.request_spec(),
        &plans,
        shared.as_deref(),
    )
    .await?;
    let mut verdict = m.verdict;
    // A case's expectation reads the phases' own findings with the stream's.
    verdict.findings.extend(m.phases.own_findings());
    crate::verdict::sort_findings(&mut verdict.findings);
    let expectation = Some(check(case, &verdict, &m.phases));
    let changes = case.file.target.overrides.changed_keys();
    Ok(Outcome {
        name: case.name.clone(),
        description: case.file.description.trim().to_string(),
        profile: case.file.target.profile.value.clone(),
        profile_changed: !changes.is_empty(),
        profile_changes: changes,
        chain: case.chain_label(),
        programs: m.programs,
        origin_saw: m.origin_saw,
        mcp: m.mcp,
        recording: m.recording,
        verdict,
        phases: m.phases,
        expectation,
        took: started.elapsed(),
        remeasured: None,
    })
}

/// Compare a verdict (and the phases' results) with the case's `expect`.
pub fn check(case: &Case, v: &Verdict, phases: &Phases) -> Expectation {
    let e = &case.file.expect;
    let mut failures = Vec::new();
    let expected = e.phases();
    phases.expectation(&expected, &mut failures);
    if v.delivery != e.delivery {
        failures.push(format!(
            "expected delivery `{}`, measured `{}`",
            e.delivery, v.delivery
        ));
    }
    for id in &e.findings {
        if !v.findings.iter().any(|f| f.id().as_str() == id.value) {
            failures.push(format!("expected finding `{}`, not reported", id.value));
        }
    }
    for id in &e.absent {
        if let Some(f) = v.findings.iter().find(|f| f.id().as_str() == id.value) {
            failures.push(format!(
                "finding `{}` must be absent, but was reported ({})",
                id.value, f.evidence
            ));
        }
    }
    Expectation {
        delivery: e.delivery,
        findings: e.findings.iter().map(|s| s.value.clone()).collect(),
        absent: e.absent.iter().map(|s| s.value.clone()).collect(),
        phases: expected,
        failures,
    }
}

/// Run `cases` with at most `jobs` at once, telling `reporter` as they go; results come back in the
/// cases' order. A case that failed while the machine was starved is measured once more, alone, after
/// the others ([`Remeasured`]): the second result stands, and is inconclusive when it failed on a
/// starved machine again. Never more than once.
pub async fn run_cases(
    cases: &[Case],
    jobs: usize,
    reporter: &dyn Reporter,
) -> Vec<Result<Outcome, RunError>> {
    use futures_util::StreamExt;
    reporter.event(RunEvent::RunStarted {
        what: "cases",
        total: cases.len(),
    });
    let sem = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let pool = Pool::for_cases(cases);
    // The longest cases take their turns first, so that the run ends about when its longest case does
    // (the semaphore hands out permits in the order asked).
    let mut order: Vec<usize> = (0..cases.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(expected_length(&cases[i])));
    let futs = order.into_iter().map(|i| {
        let sem = sem.clone();
        let pool = &pool;
        let case = &cases[i];
        async move {
            let _permit = sem.acquire().await;
            reporter.event(RunEvent::ScenarioStarted { name: &case.name });
            let r = run_case_in(case, Some(pool)).await;
            let result = match &r {
                Ok(o) if o.passed() => Finished::Passed,
                Ok(_) => Finished::Failed,
                Err(_) => Finished::Error,
            };
            reporter.event(RunEvent::ScenarioFinished {
                name: &case.name,
                result,
            });
            (i, r)
        }
    });
    let mut done: Vec<(usize, Result<Outcome, RunError>)> = futures_util::stream::iter(futs)
        .buffer_unordered(cases.len().max(1))
        .collect()
        .await;
    // The shared chains stop before any case is measured again, alone.
    drop(pool);
    done.sort_by_key(|(i, _)| *i);
    let results: Vec<Result<Outcome, RunError>> = done.into_iter().map(|(_, r)| r).collect();
    let mut out = Vec::with_capacity(results.len());
    for (case, result) in cases.iter().zip(results) {
        let first = match result {
            Ok(o) if o.failed_starved() => o,
            other => {
                out.push(other);
                continue;
            }
        };
        reporter.event(RunEvent::ScenarioRequeued {
            name: &case.name,
            why: "failed while the machine was too busy",
        });
        out.push(Ok(match run_case(case).await {
            Ok(again) => {
                reporter.event(RunEvent::ScenarioFinished {
                    name: &case.name,
                    result: finished(&again),
                });
                again.after(first)
            }
            // The second measurement could not run: the first stands, and says so.
            Err(e) => {
                let mut first = first;
                if let Some(x) = first.expectation.as_mut() {
                    x.failures.push(format!(
                        "measured again alone (the machine was too busy), which failed: {}",
                        crate::error::error_chain(&e)
                    ));
                }
                first
            }
        }));
    }
    reporter.event(RunEvent::RunFinished);
    out
}

/// About how long a case takes, to start the longest first: its stream's schedule for the probe and
/// for each phase, and a browser's start for a browser phase. Only an order; nothing is judged by it.
fn expected_length(case: &Case) -> Duration {
    let req = probe_request(String::new(), &case.request_spec(), &case.profile);
    let plans = case.file.phase_plans();
    let browsers = plans
        .iter()
        .filter(|p| matches!(p, PhasePlan::Browser(_)))
        .count() as u32;
    req.limits.duration * (1 + plans.len() as u32) + Duration::from_secs(10) * browsers
}

fn finished(o: &Outcome) -> Finished<'static> {
    if o.passed() {
        Finished::Passed
    } else {
        Finished::Failed
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::verdict::{Delivery, Reference, judge};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A case outcome measuring `arrivals` (events 400 ms apart are on time) against an expectation of
    /// `streamed`, with the machine's pressure while it listened.
    fn outcome(arrivals: &[u64], cpu_waiting: f64) -> Outcome {
        let recording = crate::probe::testing::pressured(arrivals, cpu_waiting);
        let mut verdict = judge(&recording, Reference::None);
        if arrivals == CLUMPED {
            // As a starved hop delivers (the judging itself is tested with the verdicts).
            verdict.delivery = Delivery::Batched;
        }
        let failures = if verdict.delivery == Delivery::Streamed {
            vec![]
        } else {
            vec![format!(
                "expected delivery `streamed`, measured `{}`",
                verdict.delivery
            )]
        };
        Outcome {
            name: "a-case".into(),
            description: String::new(),
            profile: "plain".into(),
            profile_changed: false,
            profile_changes: vec![],
            chain: "direct".into(),
            programs: vec![],
            origin_saw: None,
            mcp: None,
            recording,
            verdict,
            phases: Phases::default(),
            expectation: Some(Expectation {
                delivery: Delivery::Streamed,
                findings: vec![],
                absent: vec![],
                phases: PhaseExpect::default(),
                failures,
            }),
            took: ms(2500),
            remeasured: None,
        }
    }

    fn case(name: &str) -> Case {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
        Case::load(
            &dir.join(format!("{name}.yaml")),
            &crate::origin::profile::builtin_dir(),
        )
        .unwrap()
    }

    fn key(name: &str) -> Option<String> {
        let c = case(name);
        Pool::key(&c, &c.file.phase_plans())
    }

    #[test]
    fn cases_share_a_chain_only_when_nothing_they_do_can_reach_each_other() {
        let plain = key("plain-nginx-default").expect("a plain stream through nginx shares");
        assert_eq!(key("nginx-default-padded").as_ref(), Some(&plain));
        // The fixture frames every response one way.
        assert_ne!(key("nginx-default-http10").unwrap(), plain);
        assert_ne!(key("haproxy-default-plain").unwrap(), plain);
        // A second client looks for what the chain kept; a load fills it; a cache keeps what a case sent.
        assert_eq!(key("nginx-default-second-client"), None);
        assert_eq!(key("nginx-default-capacity"), None);
        assert_eq!(key("varnish-default-plain"), None);
        assert_eq!(key("plain-direct"), None, "nothing to share");
    }

    #[test]
    fn a_shared_chain_is_let_go_when_the_last_case_through_it_is_done() {
        let cases = [
            case("plain-nginx-default"),
            case("nginx-default-padded"),
            case("varnish-default-plain"),
        ];
        let pool = Pool::for_cases(&cases);
        assert_eq!(
            pool.held(),
            1,
            "one chain, two users; the cache keeps its own"
        );
        let key = Pool::key(&cases[0], &cases[0].file.phase_plans()).unwrap();
        pool.release(&key);
        assert_eq!(pool.held(), 1, "one case still to come");
        drop(Release {
            pool: &pool,
            key: Some(key),
        });
        assert_eq!(pool.held(), 0);
    }

    const ON_TIME: &[u64] = &[402, 803, 1201, 1605, 2002, 2401];
    const HELD: &[u64] = &[2401; 6];
    const CLUMPED: &[u64] = &[402, 1604, 1604, 1605, 2002, 2401];

    #[test]
    fn only_a_failure_on_a_starved_machine_is_measured_again() {
        assert!(!outcome(ON_TIME, 0.9).failed_starved(), "a pass is never");
        assert!(
            !outcome(CLUMPED, 0.05).failed_starved(),
            "a failure on a quiet machine stands"
        );
        assert!(outcome(CLUMPED, 0.9).failed_starved());
        assert!(
            !outcome(HELD, 0.9).failed_starved(),
            "a stream held to its end is no stall's doing"
        );
    }

    #[test]
    fn the_second_measurement_stands_and_is_inconclusive_only_when_starved_again() {
        let passed = outcome(ON_TIME, 0.05).after(outcome(CLUMPED, 0.9));
        assert!(passed.passed() && !passed.inconclusive());
        let r = passed.remeasured.as_ref().unwrap();
        assert_eq!(r.first_delivery, Delivery::Batched);
        let row = crate::report::run::RunRow::from_outcome(&passed);
        assert_eq!(row.result, crate::report::run::CaseResult::Pass);
        let words = row.remeasured.unwrap();
        assert!(
            words.contains("first `batched`")
                && words.contains("then `streamed` alone")
                && words.contains("the second result stands"),
            "{words}"
        );
        // Failing again on a quiet machine: a failure, with both results.
        let failed = outcome(CLUMPED, 0.05).after(outcome(CLUMPED, 0.9));
        assert!(!failed.passed() && !failed.inconclusive());
        let row = crate::report::run::RunRow::from_outcome(&failed);
        assert_eq!(row.result, crate::report::run::CaseResult::Fail);
        // Failing again while starved again, the same way: a hop's buffer does that, not a stall.
        let same = outcome(CLUMPED, 0.9).after(outcome(CLUMPED, 0.9));
        assert!(!same.passed() && !same.inconclusive());
        // Failing again while starved again, differently: neither a pass nor a failure.
        let mut other = outcome(CLUMPED, 0.9);
        let held = other.verdict.events.iter().filter(|e| e.held).count();
        other.verdict.events[0].held = !other.verdict.events[0].held;
        assert_ne!(other.verdict.held_count(), held);
        let busy = other.after(outcome(CLUMPED, 0.9));
        assert!(!busy.passed() && busy.inconclusive());
        let row = crate::report::run::RunRow::from_outcome(&busy);
        assert_eq!(row.result, crate::report::run::CaseResult::Inconclusive);
        assert!(row.remeasured.unwrap().contains("too busy both times"));
    }
}
