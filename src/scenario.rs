//! One scenario: an origin, a chain in front of it, one probe through the chain, judged, then its phases.
//!
//! Every measurement ssegate makes through a chain goes through [`measure`]: a conformance case
//! (`run`), each chain of `check`'s matrix, and each of `check`'s fix experiments (the same chain with
//! extra hops next to the origin). What differs is only the *witness* of what the origin sent:
//!
//! - the built-in fixture logs its own send instants per request, so a case is judged against them;
//! - any other origin (a command ssegate started, a running URL) gets a [`crate::tap::Tap`] right in
//!   front of it, which stamps the response head and each event as they leave the origin; when no
//!   exchange reached the origin through the tap (a hop answered by itself), the fallback recording (the
//!   direct baseline) is the reference, and the verdict's basis says so.
//!
//! After the probe, the scenario's [phases](crate::phase) measure through the same running chain.

use std::time::{Duration, Instant};

use crate::intermediary::HopSpec;
use crate::phase::{PhasePlan, Phases};
use crate::probe::{ProbeRequest, Recording};
use crate::verdict::{Verdict, sort_findings};

use crate::through::{Main, Through};
pub use crate::through::{RunningChain, ScenarioError, Witness, retarget, target_alive};
use std::future::Future;
use std::sync::Arc;

/// A scenario: this chain (origin side first) in front of the witnessed origin, probed with `request`,
/// then measured by `phases` through the same running chain.
pub struct Scenario<'a> {
    pub chain: &'a [HopSpec],
    pub request: &'a ProbeRequest,
    pub witness: Witness<'a>,
    pub phases: &'a [PhasePlan],
    /// The chain already running in front of the witness's fixture, shared with other scenarios; None
    /// starts it.
    pub running: Option<RunningChain>,
}

/// What one scenario measured.
#[derive(Debug)]
pub struct Measurement {
    pub recording: Recording,
    /// The stream's verdict, with the findings of the phases that join it.
    pub verdict: Verdict,
    /// Versions of the real programs in the chain.
    pub programs: Vec<String>,
    /// Method and HTTP version of the request the origin received (fixture only).
    pub origin_saw: Option<String>,
    /// How long the request waited at the origin before its response head left (tap only).
    pub origin_wait: Option<Duration>,
    /// From the origin's response head to the end of the response or of the probe (tap only).
    pub open_at_origin: Option<(Instant, Instant)>,
    /// What the phases measured, in the order they ran.
    pub phases: Phases,
    /// With `protocol: mcp`, the session opened before the call.
    pub mcp: Option<crate::verdict::mcp::McpSession>,
}

/// Measure one scenario.
pub async fn measure(s: &Scenario<'_>) -> Result<Measurement, ScenarioError> {
    let (m, ()) = measure_beside(s, |_| async {}).await?;
    Ok(m)
}

/// Measure one scenario, and run `beside` on its main probe's result while the phases measure (a
/// fix experiment that needs only the main probe's verdict need not wait for them).
pub async fn measure_beside<T, F, Fut>(
    s: &Scenario<'_>,
    beside: F,
) -> Result<(Measurement, T), ScenarioError>
where
    F: FnOnce(Arc<Main>) -> Fut,
    Fut: Future<Output = T>,
{
    let fixture = matches!(s.witness, Witness::Fixture { .. });
    for p in s.phases {
        p.prepare(s.chain, fixture);
    }
    let through = Through::on(s.chain, s.witness, s.running.clone()).await?;
    let first = s.phases.iter().find_map(PhasePlan::beside);
    let main = Arc::new(through.probe_main(s.request, first).await?);
    let (phases, extra) = tokio::join!(
        crate::phase::measure_all(s.phases, &through, &main),
        beside(main.clone())
    );
    let phases = phases?;
    // Both are done with it (a `beside` that kept it costs a copy).
    let main = Arc::try_unwrap(main).unwrap_or_else(|kept| (*kept).clone());
    let mut verdict = main.verdict;
    for r in phases.iter().filter(|r| r.joins_verdict()) {
        verdict.findings.extend(r.findings());
    }
    sort_findings(&mut verdict.findings);
    Ok((
        Measurement {
            recording: main.recording,
            verdict,
            programs: through.programs(),
            origin_saw: main.origin_saw,
            origin_wait: main.origin_wait,
            open_at_origin: main.open_at_origin,
            phases,
            mcp: main.mcp,
        },
        extra,
    ))
}
