//! The second client: another client on the same URL through the same chain, `after_ms` after the first
//! opened (beside it) or `after_end_ms` after its stream ended. Fixture witness only: the fixture's log
//! tells whether its request reached the origin. Judged by [`crate::verdict::sharing`].

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::Phase;
use crate::through::{Main, ScenarioError, Through};
use crate::verdict::Finding;
use crate::verdict::sharing::{OriginSide, SecondClient, SecondOpen, Sharing, judge_sharing};

/// The second-client phase.
pub struct SharingPhase;

/// A second client: when it opened (as the case asked) and what it got.
#[derive(Debug, Serialize)]
pub struct SecondReport {
    pub opened: String,
    /// When the case asked it to open.
    #[serde(skip)]
    pub plan: SecondOpen,
    #[serde(flatten)]
    pub measured: SecondClient,
    /// `stream-shared`, when one origin response served both clients.
    #[serde(skip)]
    pub finding: Option<Finding>,
}

impl Phase for SharingPhase {
    const KEY: &'static str = "second";
    const OWN_CHAIN: bool = true;
    const EXPECT_MISSING: &'static str =
        "a case with `second_client` must say what it gets: `expect.sharing`";
    const EXPECT_ALONE: &'static str = "`expect.sharing` needs a `second_client` to measure it";
    const EXPECT_VALUES: &'static str = "separate, joined, replayed, unserved";
    type Plan = SecondOpen;
    type Result = SecondReport;
    type Expect = (Option<Sharing>,);

    fn validate(plan: &SecondOpen) -> Result<(), String> {
        plan.validate()
    }

    fn beside(plan: &SecondOpen) -> Option<Duration> {
        plan.after_ms.map(Duration::from_millis)
    }

    async fn measure(
        plan: SecondOpen,
        through: &Through<'_>,
        main: &Main,
    ) -> Result<SecondReport, ScenarioError> {
        let second = match &main.beside {
            Some(rec) => rec.clone(),
            None => {
                let waited = Duration::from_millis(plan.after_end_ms.unwrap_or(0));
                tokio::time::sleep(waited).await;
                through.probe(&main.sent).await?
            }
        };
        let requests = through.origin_requests();
        let first = requests.first();
        let origin = OriginSide {
            requests: requests.len(),
            first_sends: first.map(|r| r.sends.clone()).unwrap_or_default(),
            first_ended: first.and_then(|r| r.ended),
        };
        let (measured, finding) = judge_sharing(main.recording.start, &second, &origin);
        Ok(SecondReport {
            opened: plan.label(),
            plan,
            measured,
            finding,
        })
    }

    fn findings(r: &SecondReport) -> Vec<Finding> {
        r.finding.iter().cloned().collect()
    }

    fn expectation(
        (want,): (Option<Sharing>,),
        got: Option<&SecondReport>,
        failures: &mut Vec<String>,
    ) {
        let Some(want) = want else { return };
        match got {
            Some(got) if got.measured.sharing != want => failures.push(format!(
                "expected sharing `{want}`, measured `{}`",
                got.measured.sharing
            )),
            Some(_) => {}
            None => failures.push(format!(
                "expected sharing `{want}`, but no second client ran"
            )),
        }
    }

    fn snapshot(second: &SecondReport, s: &mut String) {
        let m = &second.measured;
        let _ = writeln!(
            s,
            "second client: opened {}",
            second
                .plan
                .label_with(|_| crate::normalize::DURATION.to_string())
        );
        let _ = writeln!(
            s,
            "  origin requests: {} for both clients",
            m.origin_requests
        );
        let _ = writeln!(s, "  status: {}", m.status);
        if m.sharing.shared() {
            let _ = writeln!(
                s,
                "  events: {}, {} of them sent before it opened",
                m.events, m.sent_before_it_opened
            );
        } else {
            let _ = writeln!(s, "  events: {} of its own stream", m.events);
        }
        let _ = writeln!(s, "  sharing: {}", m.sharing);
    }
}
