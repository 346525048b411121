//! The gate's policy: from a measured chain and the config's `expect` to a status and its reasons.

use std::time::Duration;

use super::{ChainOutcome, Fixability, Measured, Status};
use crate::config::Loaded;
use crate::doctor::Cause;
use crate::phase::{GatePolicy, Level};
use crate::probe::Recording;
use crate::verdict::{Delivery, FindingId, Verdict};

/// The gate's policy: what each measured chain's delivery and findings mean for the run.
pub(super) struct Gate<'a> {
    expect: &'a crate::config::GateExpect,
}

impl<'a> Gate<'a> {
    pub(super) fn new(loaded: &'a Loaded) -> Gate<'a> {
        Gate {
            expect: &loaded.config.expect,
        }
    }

    /// The expected delivery of a chain, and whether `expect.delivery` names it.
    pub(super) fn expected(&self, name: &str) -> (Delivery, bool) {
        match self.expect.delivery.get(name) {
            Some(d) => (*d, true),
            None => (
                self.expect
                    .delivery
                    .get("default")
                    .copied()
                    .unwrap_or(Delivery::Streamed),
                false,
            ),
        }
    }

    fn allowed(&self, id: FindingId) -> bool {
        self.expect.allow.iter().any(|a| a.value == id.as_str())
    }

    fn denied(&self, v: &Verdict) -> Vec<String> {
        v.findings
            .iter()
            .filter(|f| self.expect.deny.iter().any(|d| d.value == f.id().as_str()))
            .map(|f| format!("denied finding `{}`: {}", f.id(), f.evidence))
            .collect()
    }

    /// The baseline: the origin's own delivery, headers and framing.
    pub(super) fn baseline(
        &self,
        rec: Recording,
        verdict: Verdict,
        causes: &[Cause],
    ) -> ChainOutcome {
        let (expected, explicit) = match self.expect.delivery.get("direct") {
            Some(d) => (*d, true),
            None => (Delivery::Streamed, false),
        };
        let mut reasons = Vec::new();
        if verdict.delivery != expected {
            let top = causes
                .iter()
                .find(|c| !c.is_risk())
                .map(|c| format!("; likely cause: {} ({})", c.id, c.title))
                .unwrap_or_default();
            reasons.push(format!(
                "the origin itself delivers `{}` (expected `{expected}`){top}",
                verdict.delivery
            ));
        }
        for f in &verdict.findings {
            if f.rule.area != "probe"
                && f.rule.area != "delivery"
                && f.severity() >= self.expect.fail_on
                && !self.allowed(f.id())
            {
                reasons.push(format!(
                    "{} `{}`: {} — fix: {}",
                    f.severity().as_str(),
                    f.id(),
                    f.evidence,
                    f.rule.fix
                ));
            }
        }
        reasons.extend(self.denied(&verdict));
        ChainOutcome {
            name: "direct".into(),
            chain: "direct".into(),
            programs: vec![],
            status: if reasons.is_empty() {
                Status::Pass
            } else {
                Status::Fail
            },
            recording: rec,
            verdict,
            expected,
            explicit,
            fix: None,
            reasons,
            took: Default::default(),
            origin_wait: None,
            serial: false,
            phases: Default::default(),
            mcp: None,
        }
    }

    /// One chain of the matrix.
    pub(super) fn chain(
        &self,
        m: Measured,
        baseline: &ChainOutcome,
        origin_ok: bool,
    ) -> ChainOutcome {
        let (expected, explicit) = self.expected(&m.name);
        let mut reasons = Vec::new();
        let mut status = Status::Pass;
        if !origin_ok {
            status = Status::NotJudged;
            reasons.push(format!(
                "delivers `{}`; not judged: the direct stream is itself `{}`, fix the origin first",
                m.verdict.delivery, baseline.verdict.delivery
            ));
        } else if m.verdict.delivery != expected {
            let what = format!("delivers `{}` (expected `{expected}`)", m.verdict.delivery);
            let (s, reason) = self.broken(&m, explicit, what);
            status = s;
            reasons.push(reason);
        }
        // The tap relays each piece of an event as it comes; a proxy facing such an origin directly
        // waits on the same delayed ACKs and can batch what passed here.
        if status == Status::Pass && baseline.verdict.has(FindingId::EventWrittenInPieces) {
            status = Status::Warn;
            reasons.push(
                "passed, but may be optimistic: the origin writes events in pieces that wait for delayed ACKs (`event-written-in-pieces` on the direct stream), and ssegate's tap in front of the origin relays each piece at once, which a buffering proxy facing the origin does not".into(),
            );
        }
        if m.queued_alone {
            reasons.push(format!(
                "the origin took {} to answer this chain's request although no other chain ran (requests left over from the concurrent run may still have held it)",
                crate::text::human_duration(m.origin_wait.unwrap_or_default())
            ));
        }
        // Errors the chain added (an error status, a corrupt coding) are part of the story.
        for f in &m.verdict.findings {
            if f.severity() == crate::verdict::Severity::Error
                && f.rule.area == "headers"
                && !baseline.verdict.has(f.id())
                && m.verdict.delivery != expected
            {
                reasons.push(format!("{} through this chain: {}", f.id(), f.evidence));
            }
        }
        // A header the chain dropped, doubled or changed warns (an operator's fix; it fails when
        // `expect` names the chain or denies it); an MCP session the chain broke fails: no client works
        // through it.
        for f in &m.verdict.findings {
            let integrity = matches!(
                f.id(),
                FindingId::HeaderDropped | FindingId::HeaderDuplicated | FindingId::HeaderChanged
            );
            let session = f.rule.area == "mcp";
            let said = format!("{} through this chain: ", f.id());
            if !(integrity || session)
                || baseline.verdict.has(f.id())
                || self.allowed(f.id())
                || reasons.iter().any(|r| r.starts_with(&said))
            {
                continue;
            }
            let mut r = format!("{said}{}", f.evidence);
            if let Some(op) = f.rule.operator_fix {
                r.push_str(&format!("; operator fix: {op}"));
            }
            reasons.push(r);
            let denied = self.expect.deny.iter().any(|d| d.value == f.id().as_str());
            status = match status {
                Status::Fail => Status::Fail,
                _ if session || explicit || denied => Status::Fail,
                Status::NotJudged => Status::NotJudged,
                _ => Status::Warn,
            };
        }
        // Each phase's own policy: who can fix what it found, and whether that fails or warns.
        let allowed = |id: FindingId| self.allowed(id);
        let denied = |id: FindingId| self.expect.deny.iter().any(|d| d.value == id.as_str());
        let policy = GatePolicy {
            allowed: &allowed,
            denied: &denied,
            fail_on: self.expect.fail_on,
            explicit,
        };
        for phase in m.phases.iter() {
            for (level, reason) in phase.gate(&policy, &baseline.phases) {
                reasons.push(reason);
                status = match (status, level) {
                    (Status::Fail, _) | (_, Level::Fail) => Status::Fail,
                    (Status::NotJudged, _) => Status::NotJudged,
                    _ => Status::Warn,
                };
            }
        }
        let d = self.denied(&m.verdict);
        if !d.is_empty() {
            status = Status::Fail;
            reasons.extend(d);
        }
        if let Some(first) = &m.remeasured {
            let words = format!(
                "measured again alone, because the first measurement broke while the machine was too busy: first {first}, then {}",
                m.result_words()
            );
            if m.inconclusive {
                status = Status::Inconclusive;
                reasons.insert(
                    0,
                    format!("inconclusive: the machine was too busy to tell, twice; {words}"),
                );
            } else {
                reasons.push(format!("{words}: the second result stands"));
            }
        }
        ChainOutcome {
            name: m.name,
            chain: m.label,
            programs: m.programs,
            recording: m.recording,
            verdict: m.verdict,
            expected,
            explicit,
            fix: m.fix,
            status,
            reasons,
            origin_wait: m.origin_wait,
            serial: m.serial,
            phases: m.phases,
            took: m.took,
            mcp: m.mcp,
        }
    }

    /// Status and reason of a chain that did not deliver as expected, by who can fix it.
    fn broken(&self, m: &Measured, explicit: bool, what: String) -> (Status, String) {
        let soft = if explicit { Status::Fail } else { Status::Warn };
        match &m.fix {
            Some(Fixability::Origin {
                headers,
                heartbeat_ms,
                advise_heartbeat_ms,
                ..
            }) => {
                let mut hs: Vec<String> =
                    headers.iter().map(|(k, v)| format!("`{k}: {v}`")).collect();
                if let Some(ms) = heartbeat_ms {
                    hs.push(heartbeat_advice(
                        *ms,
                        advise_heartbeat_ms.unwrap_or(*ms),
                        &m.recording,
                    ));
                }
                (
                    Status::Fail,
                    format!(
                        "{what}; origin-fixable: sending {} makes it stream",
                        hs.join(" and ")
                    ),
                )
            }
            Some(Fixability::Operator {
                delivery_with_fix,
                operator_fix,
            }) => (
                soft,
                format!(
                    "{what}; operator-only: with the origin's opt-outs it still delivers `{delivery_with_fix}`; ask for: {operator_fix}"
                ),
            ),
            Some(Fixability::Unstable { delivery_on_rerun }) => (
                soft,
                format!(
                    "{what}; did not reproduce: the unchanged chain delivered `{delivery_on_rerun}` on a second run (the origin already sends every opt-out; its own timing varies)"
                ),
            ),
            Some(Fixability::Undetermined { reason }) => (
                Status::Fail,
                format!("{what}; who can fix it is undetermined: {reason}"),
            ),
            None => (Status::Fail, what),
        }
    }
}

/// What to say about heartbeats for a cut chain: the interval the re-run used, and the interval to send
/// at most, from the silence after which this chain cut the stream.
fn heartbeat_advice(used_ms: u64, advise_ms: u64, rec: &Recording) -> String {
    let h = |ms: u64| crate::text::human_duration(Duration::from_millis(ms));
    let silence = rec
        .ended_at
        .saturating_sub(rec.last_read_at().unwrap_or(rec.headers_at));
    format!(
        "a heartbeat comment whenever the stream is idle (the re-run sent one after {} of silence; this chain cut the stream after {} without a byte, so send one at least every {})",
        h(used_ms),
        crate::text::human_duration(silence),
        h(advise_ms)
    )
}
