//! Running scenarios: start the origin, the chain in front of it, probe, judge, compare with the case.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::case::{Case, RequestSpec};
use crate::intermediary::{Chain, HopError, HopSpec};
use crate::origin::{FixtureServer, Profile};
use crate::probe::{ProbeError, ProbeRequest, Recording, probe};
use crate::verdict::{Reference, Schedule, Verdict, judge};

/// Why a scenario could not be run (as opposed to running and failing its expectation).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("failed to start the fixture origin")]
    Fixture(#[source] std::io::Error),
    #[error("failed to start the chain")]
    Hop(#[from] HopError),
    #[error("failed to probe the stream")]
    Probe(#[from] ProbeError),
}

/// Everything one scenario produced.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub name: String,
    pub description: String,
    pub profile: String,
    /// `direct` or the hops, origin side first.
    pub chain: String,
    /// Versions of the real programs in the chain.
    pub programs: Vec<String>,
    /// Method and HTTP version of the request the origin received (nginx speaks HTTP/1.0 upstream by default).
    pub origin_saw: Option<String>,
    pub recording: Recording,
    pub verdict: Verdict,
    pub expectation: Option<Expectation>,
    /// Wall time of the whole scenario.
    #[serde(serialize_with = "crate::probe::ser_ms")]
    pub took: Duration,
}

/// The case's expectation and what did not hold.
#[derive(Debug, Clone, Serialize)]
pub struct Expectation {
    pub delivery: crate::verdict::Delivery,
    pub findings: Vec<String>,
    pub absent: Vec<String>,
    /// Empty when the case passed.
    pub failures: Vec<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.expectation
            .as_ref()
            .is_none_or(|e| e.failures.is_empty())
    }
}

/// The probe request for a scenario: the case's overrides on the browser-like default.
pub fn probe_request(url: String, spec: &RequestSpec, profile: &Profile) -> ProbeRequest {
    let mut req = ProbeRequest::with(
        url,
        spec.method.as_deref(),
        &spec.headers,
        spec.body.as_deref(),
    );
    if let Some(c) = spec.compression {
        req.compression = c;
    }
    // Listen for the whole schedule plus a generous margin; a case may say otherwise.
    let schedule = Duration::from_millis(
        profile.delay_headers_ms
            + profile.events.first_ms.unwrap_or(profile.events.gap_ms)
            + profile.events.gap_ms * u64::from(profile.events.count.saturating_sub(1))
            + profile.linger_ms,
    );
    req.limits.duration = spec
        .duration_ms
        .map(Duration::from_millis)
        .unwrap_or(schedule + Duration::from_secs(10));
    req
}

/// Run one scenario: `profile` behind `chain`, probed with `request`.
pub async fn run_scenario(
    profile: &Profile,
    chain: &[HopSpec],
    request: &RequestSpec,
) -> Result<(Recording, Verdict, Vec<String>, Option<String>), RunError> {
    let origin = FixtureServer::start(profile.clone())
        .await
        .map_err(RunError::Fixture)?;
    let mut hops = Chain::start(chain, origin.addr()).await?;
    let entry: SocketAddr = hops.entry(origin.addr());
    // A path of its own, so that the origin's log entry for this probe is told apart from any stray
    // request (a readiness check from a hop that lost a port race to this origin, say).
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let path = format!(
        "/events/{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let url = format!("http://{entry}{path}");
    let req = probe_request(url, request, profile);
    let rec = match probe(&req).await {
        Ok(r) => r,
        Err(e) => {
            // A dead hop explains a failed probe better than the probe's own error.
            hops.check_alive()?;
            return Err(e.into());
        }
    };
    let requests = origin.requests();
    let ours = requests.iter().rfind(|r| r.target.starts_with(&path));
    let origin_saw = ours.map(|r| format!("{} {}", r.method, r.version));
    let schedule = ours
        .map(|r| Schedule {
            sends: r.sends.iter().map(|&t| rec.offset(t)).collect(),
            headers_sent: r.headers_sent.map(|t| rec.offset(t)),
            ended: r.ended.map(|t| rec.offset(t)),
            gap: Some(profile.events.gap()),
            planned: Some(profile.events.count as usize),
            by_position: false,
        })
        .unwrap_or_default();
    let verdict = judge(&rec, Reference::Schedule(&schedule));
    let programs = hops.programs();
    drop(hops);
    drop(origin);
    Ok((rec, verdict, programs, origin_saw))
}

/// Run a case and check its expectation.
pub async fn run_case(case: &Case) -> Result<Outcome, RunError> {
    let started = Instant::now();
    let (recording, verdict, programs, origin_saw) =
        run_scenario(&case.profile, &case.file.chain, &case.file.request).await?;
    let expectation = Some(check(case, &verdict));
    Ok(Outcome {
        name: case.name.clone(),
        description: case.file.description.trim().to_string(),
        profile: case.file.target.profile.value.clone(),
        chain: case.chain_label(),
        programs,
        origin_saw,
        recording,
        verdict,
        expectation,
        took: started.elapsed(),
    })
}

/// Compare a verdict with the case's `expect`.
pub fn check(case: &Case, v: &Verdict) -> Expectation {
    let e = &case.file.expect;
    let mut failures = Vec::new();
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
        failures,
    }
}

/// Progress notifications from [`run_cases`].
pub enum Progress<'a> {
    Started(&'a Case),
    Finished(&'a Case, &'a Result<Outcome, RunError>),
}

/// Run `cases` with at most `jobs` at once; results come back in the cases' order.
pub async fn run_cases(
    cases: &[Case],
    jobs: usize,
    on_progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Vec<Result<Outcome, RunError>> {
    use futures_util::StreamExt;
    let sem = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let futs = cases.iter().map(|case| {
        let sem = sem.clone();
        async move {
            let _permit = sem.acquire().await;
            on_progress(Progress::Started(case));
            let r = run_case(case).await;
            on_progress(Progress::Finished(case, &r));
            r
        }
    });
    futures_util::stream::iter(futs)
        .buffered(cases.len().max(1))
        .collect()
        .await
}
