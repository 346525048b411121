//! The fix experiments: a broken chain is measured again with what the origin could send (its missing
//! opt-out headers, heartbeats for a cut) injected next to the origin. If that makes it stream, the origin
//! can fix it; if not, the chain's own hop names the operator's fix.

use std::collections::BTreeMap;

use super::{
    CheckError, Ctx, FIX_HEARTBEAT_MS, Fixability, Measured, ORIGIN_FIX_HEADERS, probe_chain,
    probe_chain_beside,
};
use crate::cause_id::CauseId;
use crate::doctor::diagnose;
use crate::intermediary::HopSpec;
use crate::intermediary::builtin::{Headers, Heartbeat};
use crate::phase::lifecycle::LifecyclePhase;
use crate::probe::Recording;
use crate::verdict::{Delivery, Verdict};

/// Which origin-side opt-outs the baseline does not send yet.
fn missing_opt_outs(baseline: &Recording) -> Vec<(String, String)> {
    let cc = baseline
        .header("cache-control")
        .unwrap_or("")
        .to_ascii_lowercase();
    let has_no_transform = cc.split(',').any(|d| d.trim() == "no-transform");
    let has_accel = baseline
        .header("x-accel-buffering")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("no"));
    ORIGIN_FIX_HEADERS
        .iter()
        .filter(|(k, _)| match *k {
            "Cache-Control" => !has_no_transform,
            _ => !has_accel,
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Heartbeat interval for the fix re-run: inside every idle limit the chain has.
fn fix_heartbeat_ms(hops: &[HopSpec]) -> u64 {
    hops.iter()
        .filter_map(HopSpec::idle_limit)
        .map(|d| (d.as_millis() as u64 / 2).max(10))
        .fold(FIX_HEARTBEAT_MS, u64::min)
}

/// A chain's own measurement (and the phases through it): `alone` says no other chain runs meanwhile.
/// When the chain broke and its request did not wait at the origin, its fix experiment runs beside
/// the phases (they need nothing of each other, and the origin answers requests at once); otherwise
/// [`fix_chain`] runs it later.
pub(super) async fn measure_chain(
    ctx: &Ctx,
    name: &str,
    hops: &[HopSpec],
    alone: bool,
) -> Result<Measured, CheckError> {
    let started = std::time::Instant::now();
    let (first, beside) = probe_chain_beside(ctx, name, hops, &ctx.phases, |main| {
        async move {
            // Alone, the chain is being measured again because the origin may queue requests: its
            // experiment then waits its turn too.
            if alone || ctx.waited(&*main).is_some() || !needs_fix(ctx, &main.verdict) {
                return None;
            }
            let started = std::time::Instant::now();
            let mut waited = Vec::new();
            let first = First {
                recording: &main.recording,
                verdict: &main.verdict,
            };
            let fix = measure_fix(ctx, name, first, hops, &mut waited).await;
            Some((fix, waited, started.elapsed()))
        }
    })
    .await?;
    let waited: Vec<_> = ctx.waited(&first).into_iter().collect();
    let mut m = Measured {
        name: name.to_string(),
        label: crate::case::chain_label(hops),
        programs: first.programs.clone(),
        origin_wait: first.origin_wait,
        queued_alone: alone && !waited.is_empty(),
        waited,
        serial: false,
        fix: None,
        recording: first.recording,
        verdict: first.verdict,
        phases: first.phases,
        mcp: first.mcp,
        took: Default::default(),
        remeasured: None,
        fix_done: false,
        inconclusive: false,
    };
    if let Some((fix, waited, took)) = beside {
        m.fix = Some(fix?);
        m.waited.extend(waited);
        m.took.fix = took;
        m.fix_done = true;
    }
    // Heartbeat adequacy: the origin's silences (on the direct stream) against this chain's shortest idle
    // limit, with the lifecycle phases.
    if let Some(l) = m.phases.get_mut::<LifecyclePhase>()
        && let Some(idle) = hops
            .iter()
            .filter_map(HopSpec::idle)
            .min_by_key(|(d, _)| *d)
    {
        let (hb, finding) = crate::verdict::lifecycle::judge_heartbeat(&ctx.baseline, idle);
        l.heartbeat = Some(hb);
        l.findings.extend(finding);
    }
    m.took.measure = started.elapsed();
    Ok(m)
}

/// Whether a chain's measurement calls for a fix experiment.
fn needs_fix(ctx: &Ctx, v: &Verdict) -> bool {
    ctx.judge_fix && v.delivery != Delivery::Streamed
}

/// The fix experiment of a broken chain, when the origin itself streams, unless it ran already (beside
/// the phases). Requests of it that waited at the origin join `m.waited`, to be judged with the rest.
pub(super) async fn fix_chain(
    ctx: &Ctx,
    m: &mut Measured,
    hops: &[HopSpec],
) -> Result<(), CheckError> {
    if !m.fix_done && needs_fix(ctx, &m.verdict) {
        let started = std::time::Instant::now();
        let mut waited = Vec::new();
        let first = First {
            recording: &m.recording,
            verdict: &m.verdict,
        };
        let fix = measure_fix(ctx, &m.name, first, hops, &mut waited).await?;
        m.fix = Some(fix);
        m.waited.extend(waited);
        m.took.fix = started.elapsed();
    }
    m.fix_done = true;
    Ok(())
}

/// What a fix experiment needs of the chain's own measurement.
#[derive(Clone, Copy)]
struct First<'a> {
    recording: &'a Recording,
    verdict: &'a Verdict,
}

/// Measure whether the origin can fix a broken chain: inject the opt-outs it does not send yet next to
/// the origin, plus heartbeats when the chain cut the stream. Its requests that waited at the origin
/// go to `waited`.
async fn measure_fix(
    ctx: &Ctx,
    name: &str,
    m: First<'_>,
    hops: &[HopSpec],
    waited: &mut Vec<std::time::Instant>,
) -> Result<Fixability, CheckError> {
    let mut headers = missing_opt_outs(&ctx.baseline);
    let cut = m.verdict.delivery == Delivery::Cut;
    let heartbeat_ms = cut.then(|| fix_heartbeat_ms(hops));
    if let Some(every_ms) = heartbeat_ms {
        // A cut is an idle limit's doing: try heartbeats alone first, so the claim names only what helps.
        let mut with_heartbeat = vec![HopSpec::from(Heartbeat { every_ms })];
        with_heartbeat.extend(hops.iter().cloned());
        let run = probe_chain(ctx, name, &with_heartbeat, &[]).await?;
        waited.extend(ctx.waited(&run));
        if run.recording.status == m.recording.status && run.verdict.delivery == Delivery::Streamed
        {
            headers.clear();
        }
    }
    let mut fixed = Vec::new();
    if !headers.is_empty() {
        fixed.push(HopSpec::from(Headers {
            set: headers
                .iter()
                .cloned()
                .collect::<BTreeMap<String, String>>(),
            ..Headers::default()
        }));
    }
    if let Some(every_ms) = heartbeat_ms {
        fixed.push(HopSpec::from(Heartbeat { every_ms }));
    }
    let nothing_to_try = fixed.is_empty();
    fixed.extend(hops.iter().cloned());
    let mut again = probe_chain(ctx, name, &fixed, &[]).await?;
    waited.extend(ctx.waited(&again));
    // A fix run that neither streams nor breaks the way the chain did (a starved hop delivers late,
    // not held) decides nothing by itself: it is measured once more, and two runs that disagree on
    // whether the fix streams are reported as undetermined, with both.
    let first_try = again.verdict.delivery;
    if first_try != Delivery::Streamed && first_try != m.verdict.delivery {
        let second = probe_chain(ctx, name, &fixed, &[]).await?;
        waited.extend(ctx.waited(&second));
        let second_try = second.verdict.delivery;
        if second_try == Delivery::Streamed {
            return Ok(Fixability::Undetermined {
                reason: format!(
                    "two runs with the origin's fix disagree: `{first_try}`, then `{second_try}` (a busy machine can delay a hop)"
                ),
            });
        }
        again = second;
    }
    let tried = Tried {
        headers,
        heartbeat_ms,
        nothing: nothing_to_try,
    };
    Ok(fixability(ctx, m, hops, tried, &again))
}

/// What the fix re-run of a chain added in front of the origin.
struct Tried {
    headers: Vec<(String, String)>,
    /// Heartbeat interval, when the chain cut the stream.
    heartbeat_ms: Option<u64>,
    /// The origin already sends every opt-out and the chain did not cut: the re-run was unchanged.
    nothing: bool,
}

/// Who can fix the chain, from the re-run with what the origin could send.
fn fixability(
    ctx: &Ctx,
    m: First<'_>,
    hops: &[HopSpec],
    tried: Tried,
    again: &crate::scenario::Measurement,
) -> Fixability {
    let (rec2, v2) = (&again.recording, &again.verdict);
    if rec2.status != m.recording.status {
        Fixability::Undetermined {
            reason: format!(
                "the re-run answered {} instead of {}",
                rec2.status, m.recording.status
            ),
        }
    } else if tried.nothing && v2.delivery == Delivery::Streamed {
        Fixability::Unstable {
            delivery_on_rerun: v2.delivery,
        }
    } else if v2.delivery == Delivery::Streamed {
        let cut = m.verdict.delivery == Delivery::Cut;
        Fixability::Origin {
            headers: tried.headers,
            heartbeat_ms: tried.heartbeat_ms,
            advise_heartbeat_ms: cut
                .then(|| crate::doctor::advised_heartbeat(m.recording).as_millis() as u64),
            delivery_with_fix: v2.delivery,
        }
    } else {
        Fixability::Operator {
            delivery_with_fix: v2.delivery,
            operator_fix: operator_fix(m.recording, m.verdict, hops, &ctx.baseline),
        }
    }
}

/// The operator's fix for a chain nothing the origin sends could fix: the chain's own hop whose known
/// behaviour the diagnosis confirms, else the chain's hop that is known to cause such breakage, else the
/// diagnosis's most likely cause.
fn operator_fix(rec: &Recording, v: &Verdict, hops: &[HopSpec], baseline: &Recording) -> String {
    let causes = diagnose(rec, v, Some(baseline), None, false);
    let known: Vec<(CauseId, &'static str)> =
        hops.iter().rev().filter_map(HopSpec::known_cause).collect();
    known
        .iter()
        .find(|(id, _)| causes.iter().any(|c| c.id == *id && !c.is_risk()))
        .or_else(|| known.first())
        .map(|(_, fix)| fix.to_string())
        .or_else(|| {
            causes
                .iter()
                .find(|c| {
                    !c.is_risk()
                        && !matches!(c.id, CauseId::MissingTerminator | CauseId::AddedLatency)
                })
                .map(|c| c.operator_fix.to_string())
        })
        .or_else(|| {
            v.findings
                .iter()
                .filter(|f| f.rule.area == "delivery")
                .find_map(|f| f.rule.operator_fix.map(str::to_string))
        })
        .unwrap_or_else(|| "change the intermediary's configuration".into())
}
