//! The lifecycle phases through a running chain after its probe: the client reconnects as a browser would
//! (after `retry:` or the browser's default, with `Last-Event-ID`; did it reach the origin, did the
//! origin resume), then another client leaves after its first event while the origin's side is watched
//! for the close. Either witness: the fixture's log or the tap says what reached the origin. Judged by
//! [`crate::verdict::lifecycle`]; `check` adds the heartbeat adequacy of each chain.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::{GatePolicy, Level, Phase, expect_one};
use crate::probe::{ProbeRequest, Recording};
use crate::through::{Main, OriginView, ScenarioError, Through};
use crate::verdict::lifecycle::{
    DISCONNECT_WATCH, DISCONNECT_WRITES, Disconnect, DisconnectFacts, DisconnectOutcome, Lifecycle,
    Reconnect, ReconnectFacts, ReconnectOutcome, disconnect_limit, judge_disconnect,
    judge_reconnect, kebab, last_event_id, reconnect_delay, stops_reconnecting,
};
use crate::verdict::{Finding, FindingId};

/// The lifecycle phase.
pub struct LifecyclePhase;

impl Phase for LifecyclePhase {
    const KEY: &'static str = "lifecycle";
    const JOINS_VERDICT: bool = false;
    const EXPECT_MISSING: &'static str = "a case with `lifecycle: true` must say what a phase finds: `expect.reconnect` or `expect.disconnect`";
    const EXPECT_ALONE: &'static str =
        "`expect.reconnect` and `expect.disconnect` need `lifecycle: true` to measure them";
    const EXPECT_VALUES: &'static str = "reconnect: resumed, replayed, not-forwarded, no-ids, stopped, gave-up, undetermined; disconnect: propagated, not-propagated, undetermined, not-measured";
    type Plan = bool;
    type Result = Lifecycle;
    type Expect = (Option<ReconnectOutcome>, Option<DisconnectOutcome>);

    fn enabled(on: &bool) -> bool {
        *on
    }

    async fn measure(
        _: bool,
        through: &Through<'_>,
        main: &Main,
    ) -> Result<Lifecycle, ScenarioError> {
        let (sent, first) = (&main.sent, &main.recording);
        // Each phase listens until its first event: as long as the chain took to deliver one, plus 5 s,
        // within the probe's own limit.
        let limit = first
            .events
            .first()
            .map(|e| (e.at + Duration::from_secs(5)).min(sent.limits.duration));
        // The two run at once, each request tagged with its client (`TAG_HEADER`), so that the origin's
        // side tells them apart: the reconnect waits out its delay while the disconnect's client reads
        // its first event and leaves.
        let since = Instant::now();
        let fetch = crate::verdict::lifecycle::fetch_reader(&sent.method, main.verdict.protocol.protocol);
        let ((reconnect, mut findings), (disconnect, more)) = tokio::try_join!(
            async {
                match fetch {
                    Some(why) => Ok((crate::verdict::lifecycle::not_applicable(first, why), Vec::new())),
                    None => reconnect(through, sent, first, limit, since).await,
                }
            },
            disconnect(through, sent, limit, main.verdict.tokens.is_some()),
        )?;
        findings.extend(more);
        Ok(Lifecycle {
            reconnect,
            disconnect,
            heartbeat: None,
            findings,
        })
    }

    fn findings(l: &Lifecycle) -> Vec<Finding> {
        l.findings.clone()
    }

    fn expectation(
        (reconnect, disconnect): Self::Expect,
        got: Option<&Lifecycle>,
        failures: &mut Vec<String>,
    ) {
        expect_one(
            failures,
            "reconnect",
            reconnect.map(|r| kebab(&r)),
            got.map(|l| (kebab(&l.reconnect.outcome), l.reconnect.summary.as_str())),
        );
        expect_one(
            failures,
            "disconnect",
            disconnect.map(|d| kebab(&d)),
            got.map(|l| (kebab(&l.disconnect.outcome), l.disconnect.summary.as_str())),
        );
    }

    fn snapshot(l: &Lifecycle, s: &mut String) {
        // Outcomes and ids only: the phases' timings vary with the machine.
        let r = &l.reconnect;
        let id = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        let _ = writeln!(s, "lifecycle:");
        let _ = writeln!(s, "  reconnect: {}", kebab(&r.outcome));
        if r.status != 0 {
            let _ = writeln!(
                s,
                "    after {}{}, sent Last-Event-ID {}; origin received {}; status {}; first id after: {}",
                crate::normalize::DURATION,
                match r.retry_ms {
                    Some(ms) => format!(" (the stream's `retry: {ms}`)"),
                    None => " (no `retry:`: ssegate's cap on a browser's 3 s)".into(),
                },
                id(&r.last_event_id),
                if r.reached_origin {
                    id(&r.origin_received)
                } else {
                    "no request".into()
                },
                r.status,
                id(&r.first_id_after)
            );
        }
        let _ = writeln!(s, "  disconnect: {}", kebab(&l.disconnect.outcome));
    }

    fn human(l: &Lifecycle, s: &mut String) {
        let _ = writeln!(
            s,
            "reconnect: {}: {}",
            kebab(&l.reconnect.outcome),
            l.reconnect.summary
        );
        let _ = writeln!(
            s,
            "disconnect: {}: {}",
            kebab(&l.disconnect.outcome),
            l.disconnect.summary
        );
        if let Some(hb) = &l.heartbeat {
            let _ = writeln!(s, "heartbeat: {}", hb.summary);
        }
    }

    /// An origin's own finding (no ids, a replay) fails the gate at `fail_on`; a hop's (a dropped
    /// header, a disconnect kept from the origin) is the operator's, so it warns unless `expect` names
    /// the chain.
    fn gate(
        l: &Lifecycle,
        policy: &GatePolicy<'_>,
        _direct: Option<&Lifecycle>,
    ) -> Vec<(Level, String)> {
        let mut out = Vec::new();
        for f in &l.findings {
            let denied = (policy.denied)(f.id());
            if !denied && ((policy.allowed)(f.id()) || f.severity() < policy.fail_on) {
                continue;
            }
            let mut r = format!(
                "{} `{}` ({}): {} — fix: {}",
                f.severity().as_str(),
                f.id(),
                match f.id() {
                    FindingId::DisconnectNotPropagated => "disconnect",
                    FindingId::HeartbeatTooSparse => "heartbeat",
                    _ => "reconnect",
                },
                f.evidence,
                f.rule.fix
            );
            let operator = f
                .rule
                .operator_fix
                .filter(|_| f.id() != FindingId::NoEventIds);
            if let Some(op) = operator {
                r.push_str(&format!("; operator fix: {op}"));
            }
            let level = if denied || policy.explicit || operator.is_none() {
                Level::Fail
            } else {
                Level::Warn
            };
            out.push((level, r));
        }
        out
    }
}

/// A phase's request: the scenario's, listening until its first event within `limit`.
/// The scenario's request as `client`'s, tagged so, ending with its first event.
fn phase_request(sent: &ProbeRequest, limit: Duration, client: &str) -> ProbeRequest {
    let mut req = sent.clone();
    req.limits.max_events = Some(1);
    req.limits.duration = limit;
    req.headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case(crate::request::TAG_HEADER));
    req.headers
        .push((crate::request::TAG_HEADER.into(), client.into()));
    req
}

/// Reconnect as a browser would, `retry:` (or its default) after `since`, with `Last-Event-ID` (later
/// when the disconnect's probe took longer; the wait reported is the one made). A probe that fails is
/// reported as not measured, with the error; only a dead target stops the run.
async fn reconnect(
    through: &Through<'_>,
    sent: &ProbeRequest,
    first: &Recording,
    limit: Option<Duration>,
    since: Instant,
) -> Result<(Reconnect, Vec<Finding>), ScenarioError> {
    let mut waited = reconnect_delay(first);
    let mut again = None;
    let mut origin_received = None;
    let mut error = None;
    if let Some(limit) = limit.filter(|_| stops_reconnecting(first).is_none()) {
        tokio::time::sleep_until((since + waited).into()).await;
        waited = waited.max(since.elapsed());
        let mut req = phase_request(sent, limit, "reconnect");
        if let Some(id) = last_event_id(first) {
            req.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("last-event-id"));
            req.headers.push(("Last-Event-ID".into(), id));
        }
        match crate::probe::probe(&req).await {
            Ok(rec) => {
                origin_received = through.origin_view(&rec, &req).map(|v| v.last_event_id);
                again = Some(rec);
            }
            Err(e) => {
                through.target_alive()?;
                error = Some(crate::error::error_chain(&e));
            }
        }
    }
    let (mut r, findings) = judge_reconnect(&ReconnectFacts {
        first,
        waited,
        again: again.as_ref(),
        origin_received,
    });
    if let Some(e) = error {
        r.outcome = ReconnectOutcome::Undetermined;
        r.summary = format!("the reconnect failed: {e}");
    }
    Ok((r, findings))
}

/// Leave after the first event, then watch the origin's side until the hop closes the request or the
/// origin ends it, at most until the bound after the origin's third write (a hop may notice only when it
/// writes), or `DISCONNECT_WATCH`.
/// `probed` is dropped once its own probe ended.
async fn disconnect(
    through: &Through<'_>,
    sent: &ProbeRequest,
    limit: Option<Duration>,
    tokens: bool,
) -> Result<(Disconnect, Vec<Finding>), ScenarioError> {
    let seen_on_write = through.seen_on_write();
    let Some(limit) = limit else {
        return Ok(judge_disconnect(&DisconnectFacts::nothing(seen_on_write)));
    };
    let req = phase_request(sent, limit, "disconnect");
    let probe = crate::probe::probe(&req).await;
    let rec = match probe {
        Ok(rec) => rec,
        Err(e) => {
            through.target_alive()?;
            let (mut d, _) = judge_disconnect(&DisconnectFacts::nothing(seen_on_write));
            d.outcome = DisconnectOutcome::NotMeasured;
            d.summary = format!("the probe failed: {}", crate::error::error_chain(&e));
            return Ok((d, Vec::new()));
        }
    };
    let left = (!rec.events.is_empty()).then_some(rec.start + rec.ended_at);
    let (seen, watched) = match left {
        Some(left) => watch_close(through, &rec, &req, left, tokens).await,
        None => (through.origin_view(&rec, &req), Duration::ZERO),
    };
    let after = |t: Option<Instant>| Some(t?.saturating_duration_since(left?));
    Ok(judge_disconnect(&DisconnectFacts {
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
        tokens,
        events_after: seen
            .as_ref()
            .zip(left)
            .map(|(v, l)| {
                let after: Vec<Duration> = v
                    .sends
                    .iter()
                    .filter(|&&t| t > l)
                    .map(|&t| t - l)
                    .collect();
                (after.len(), after.last().copied())
            })
            .unwrap_or_default(),
    }))
}

/// The origin's first writes after the client left, as offsets from then.
fn sends_after(v: &OriginView, left: Instant) -> Vec<Duration> {
    v.sends
        .iter()
        .filter(|&&t| t > left)
        .take(DISCONNECT_WRITES)
        .map(|&t| t - left)
        .collect()
}

/// Watch the origin's side of the request that left at `left` until it closes or ends, or the bound; a
/// token stream's (`whole`) until it closes or ends or `DISCONNECT_WATCH`, so that what the origin
/// generated for nobody is counted.
async fn watch_close(
    through: &Through<'_>,
    rec: &Recording,
    req: &ProbeRequest,
    left: Instant,
    whole: bool,
) -> (Option<OriginView>, Duration) {
    let mut seen = through.origin_view(rec, req);
    while let Some(v) = seen.as_ref() {
        if v.closed.is_some() || v.ended.is_some() {
            break;
        }
        let after = sends_after(v, left);
        let until = if after.len() >= DISCONNECT_WRITES && !whole {
            left + disconnect_limit(&after).min(DISCONNECT_WATCH)
        } else {
            left + DISCONNECT_WATCH
        };
        if Instant::now() >= until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen = through.origin_view(rec, req);
    }
    (seen, left.elapsed())
}
