//! Markdown: `check`'s summary (suitable for `$GITHUB_STEP_SUMMARY`), `run`'s, a stream's and `doctor`'s.

use std::fmt::Write as _;

use super::human::{concurrency_note, fix_line};
use super::run::{CaseResult, RunReport};
use crate::check::{ChainOutcome, CheckReport, Status};
use crate::doctor::DoctorReport;
use crate::phase::exec::ExecPhase;
use crate::phase::lifecycle::LifecyclePhase;
use crate::probe::Recording;
use crate::text::human_duration;
use crate::verdict::Verdict;
use crate::verdict::lifecycle::kebab;

/// Markdown for `$GITHUB_STEP_SUMMARY` or a PR comment.
pub fn check_markdown(r: &CheckReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## ssegate check: {}\n",
        if r.passed {
            "passed"
        } else if r.inconclusive() {
            "**inconclusive** (the machine was too busy to tell; nothing failed)"
        } else {
            "**failed**"
        }
    );
    let _ = writeln!(s, "Target: `{}`\n", r.target);
    let _ = writeln!(
        s,
        "| chain | hops | delivery | expected | result | who can fix |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for c in r.all() {
        let _ = writeln!(
            s,
            "| {} | {} | `{}` | `{}` | {} | {} |",
            c.name,
            c.chain,
            c.verdict.delivery,
            c.expected,
            match c.status {
                Status::Fail => "**fail**",
                other => other.as_str(),
            },
            who_can_fix(c).replace('|', "\\|")
        );
    }
    for n in &r.not_run {
        let _ = writeln!(
            s,
            "| {} | {} | – | – | not run | {} |",
            n.name,
            n.chain,
            n.reason.replace('|', "\\|")
        );
    }
    let tokens: Vec<&ChainOutcome> = r.all().filter(|c| c.verdict.tokens.is_some()).collect();
    if !tokens.is_empty() {
        let _ = writeln!(
            s,
            "\n### Tokens ({})\n\n| chain | time to first token | gap between tokens | deltas | same read as the one before | terminal |\n|---|---|---|---|---|---|",
            r.baseline.verdict.protocol.protocol
        );
        for c in tokens {
            let Some(t) = &c.verdict.tokens else { continue };
            let added = |us: Option<i64>| {
                us.map(|us| format!(" ({:+})", us / 1000))
                    .unwrap_or_default()
            };
            let ms = |d: std::time::Duration| format!("{} ms", d.as_millis());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                c.name,
                t.ttft
                    .map(|d| ms(d) + &added(t.added_ttft))
                    .unwrap_or_else(|| "–".into()),
                t.itl
                    .map(|i| format!(
                        "p50 {} · p99 {}{}",
                        ms(i.p50),
                        ms(i.p99),
                        added(t.added_itl)
                    ))
                    .unwrap_or_else(|| "–".into()),
                t.deltas,
                t.same_read_share
                    .map(|x| format!("{:.0} %", x * 100.0))
                    .unwrap_or_else(|| "–".into()),
                match t.terminal_seen {
                    Some(true) => format!("`{}`", t.terminal),
                    Some(false) => format!("**no `{}`**", t.terminal),
                    None => "not known".into(),
                }
            );
        }
    }
    let failing: Vec<&ChainOutcome> = r.all().filter(|c| !c.reasons.is_empty()).collect();
    if !failing.is_empty() {
        let _ = writeln!(s, "\n### Details\n");
        for c in failing {
            for reason in &c.reasons {
                let _ = writeln!(s, "- **{}**: {}", c.name, reason.replace('|', "\\|"));
            }
        }
    }
    let phases: Vec<&ChainOutcome> = r
        .all()
        .filter(|c| c.phases.get::<LifecyclePhase>().is_some())
        .collect();
    if !phases.is_empty() {
        let _ = writeln!(
            s,
            "\n### Lifecycle\n\n| chain | reconnect | disconnect | heartbeat |\n|---|---|---|---|"
        );
        for c in phases {
            if let Some(l) = c.phases.get::<LifecyclePhase>() {
                let _ = writeln!(
                    s,
                    "| {} | `{}`: {} | `{}`: {} | {} |",
                    c.name,
                    kebab(&l.reconnect.outcome),
                    l.reconnect.summary.replace('|', "\\|"),
                    kebab(&l.disconnect.outcome),
                    l.disconnect.summary.replace('|', "\\|"),
                    l.heartbeat
                        .as_ref()
                        .map_or("no idle limit known".into(), |h| h
                            .summary
                            .replace('|', "\\|"))
                );
            }
        }
    }
    let suites: Vec<(&ChainOutcome, &crate::phase::exec::ExecRun)> = r
        .all()
        .filter_map(|c| c.phases.get::<ExecPhase>().map(|e| (c, e)))
        .collect();
    if !suites.is_empty() {
        let _ = writeln!(
            s,
            "\n### Client suite\n\n| chain | suite | last line |\n|---|---|---|"
        );
        for (c, e) in suites {
            let last = e.tail.lines().last().unwrap_or("").replace('|', "\\|");
            let _ = writeln!(
                s,
                "| {} | {} | `{}` |",
                c.name,
                e.words(),
                last.replace('`', "'")
            );
        }
    }
    if let Some(c) = &r.concurrency {
        let _ = writeln!(s, "\n> Note: {}", concurrency_note(c));
    }
    let causes: Vec<_> = r.causes.iter().filter(|c| !c.is_risk()).collect();
    if !causes.is_empty() {
        let _ = writeln!(s, "\n### Likely causes at the origin\n");
        for c in causes {
            let _ = writeln!(
                s,
                "- `{}` ({:?}): {}. Fix: {}",
                c.id, c.confidence, c.title, c.origin_fix
            );
        }
    }
    s
}

/// Who can fix a row, for the Markdown table: the measured fixability, or for the direct stream the origin.
fn who_can_fix(c: &ChainOutcome) -> String {
    match (&c.fix, c.status) {
        (_, Status::Inconclusive) => "inconclusive: the machine was too busy to tell".into(),
        (Some(_), _) => fix_line(&c.fix),
        (None, Status::Fail) if c.name == "direct" => "origin (the direct stream itself)".into(),
        (None, Status::Fail) => "origin".into(),
        (None, Status::NotJudged) => "not judged: fix the origin first".into(),
        (None, _) => String::new(),
    }
}

/// A run's Markdown report (suitable for `$GITHUB_STEP_SUMMARY`).
pub fn run_markdown(r: &RunReport) -> String {
    let (rows, wall, programs) = (&r.cases, r.wall, &r.programs);
    let mut s = String::new();
    let passed = rows.iter().filter(|r| r.result == CaseResult::Pass).count();
    let _ = writeln!(s, "# ssegate conformance run\n");
    let _ = writeln!(
        s,
        "{passed} of {} cases met their expectation in {}.{}\n",
        rows.len(),
        human_duration(wall),
        if programs.is_empty() {
            String::new()
        } else {
            format!(" Programs: {}.", programs.join(", "))
        }
    );
    let _ = writeln!(s, "| case | chain | delivery | result | findings |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | `{}` | {} | {} |",
            r.case,
            r.chain,
            r.delivery,
            match r.result {
                CaseResult::Pass => "pass",
                CaseResult::Skip => "skipped",
                CaseResult::Inconclusive => "inconclusive (too busy to tell)",
                _ => "**FAIL**",
            },
            r.findings
        );
    }
    for r in rows.iter().filter(|r| !r.failures.is_empty()) {
        let what = match r.result {
            CaseResult::Skip => "was not run",
            CaseResult::Inconclusive => "was inconclusive",
            _ => "failed",
        };
        let _ = writeln!(s, "\n## {} {what}\n", r.case);
        for f in &r.failures {
            let _ = writeln!(s, "- {f}");
        }
    }
    s
}

/// Markdown of one stream: the response, the events' timing, the findings with their fixes.
pub fn stream_markdown(r: &Recording, v: &Verdict) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# ssegate: `{} {}`\n", r.method, r.url);
    if r.status == 0 {
        let _ = writeln!(
            s,
            "No response headers within {}.\n",
            human_duration(r.ended_at)
        );
    } else {
        let _ = writeln!(
            s,
            "{} {}, headers after {}; {} events; delivery **`{}`** ({}).\n",
            super::protocol(r),
            r.status,
            human_duration(r.headers_at),
            r.events.len(),
            v.delivery,
            super::basis_label(v.basis)
        );
    }
    if !v.events.is_empty() {
        let _ = writeln!(
            s,
            "| # | arrival | latency | burst | held |\n|---|---|---|---|---|"
        );
        for e in &v.events {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                e.seq,
                human_duration(e.arrival),
                e.latency.map(human_duration).unwrap_or_else(|| "-".into()),
                e.burst + 1,
                if e.held { "**held**" } else { "" }
            );
        }
        s.push('\n');
    }
    if v.findings.is_empty() {
        let _ = writeln!(s, "No findings.");
    } else {
        let _ = writeln!(s, "## Findings\n");
        for f in &v.findings {
            let _ = writeln!(
                s,
                "- **{}** `{}`: {}  \n  fix: {}",
                f.severity().as_str(),
                f.id(),
                f.evidence,
                f.rule.fix
            );
        }
    }
    s
}

/// Markdown of a diagnosis: the stream, then the causes and risks with their fixes.
pub fn doctor_markdown(d: &DoctorReport) -> String {
    let mut s = stream_markdown(&d.recording, &d.verdict);
    for (risk, heading) in [(false, "Likely causes"), (true, "Risks")] {
        let of_kind: Vec<_> = d.causes.iter().filter(|c| c.is_risk() == risk).collect();
        if of_kind.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n## {heading}\n");
        for (i, c) in of_kind.iter().enumerate() {
            let _ = writeln!(
                s,
                "{}. `{}` ({:?}): {}  \n   origin fix: {}  \n   operator fix: {}",
                i + 1,
                c.id,
                c.confidence,
                c.title,
                c.origin_fix,
                c.operator_fix
            );
            for e in &c.evidence {
                let _ = writeln!(s, "   - evidence: {e}");
            }
        }
    }
    s
}
