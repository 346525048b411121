//! Renderers for `check` and `doctor`: human, JSON Lines, JUnit, Markdown and a self-contained HTML page
//! with a timeline picture. All of them read the same [`CheckReport`]; none measures anything.

use std::fmt::Write as _;

use crate::phase::lifecycle::LifecyclePhase;
use crate::verdict::lifecycle::kebab;
use std::time::Duration;

use crate::check::{ChainOutcome, CheckReport, Fixability, Status};
use crate::doctor::DoctorReport;
use crate::text::human_duration;

fn status_str(s: Status) -> &'static str {
    s.as_str()
}

fn fix_line(f: &Option<Fixability>) -> String {
    match f {
        None => String::new(),
        Some(Fixability::Origin {
            headers,
            heartbeat_ms,
            ..
        }) => {
            let mut what = headers
                .iter()
                .map(|(k, v)| format!("`{k}: {v}`"))
                .collect::<Vec<_>>()
                .join(", ");
            if heartbeat_ms.is_some() {
                what += if what.is_empty() { "" } else { " and " };
                what += "heartbeat comments";
            }
            format!("origin can fix: send {what}")
        }
        Some(Fixability::Operator { operator_fix, .. }) => format!("operator only: {operator_fix}"),
        Some(Fixability::Unstable { delivery_on_rerun }) => {
            format!("did not reproduce (`{delivery_on_rerun}` on a second run)")
        }
        Some(Fixability::Undetermined { reason }) => format!("undetermined: {reason}"),
    }
}

/// Human output for `check`.
pub fn check_human(r: &CheckReport, color: bool) -> String {
    let paint = |s: &str, code: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mark = |s: Status| match s {
        Status::Pass => paint("PASS", "32"),
        Status::Warn => paint("WARN", "33"),
        Status::Fail => paint("FAIL", "1;31"),
        Status::NotJudged => paint("----", "2"),
    };
    let mut s = String::new();
    let _ = writeln!(s, "target: {}", r.target);
    if let Some(p) = &r.partition {
        let _ = writeln!(s, "partition: {p}");
    }
    if r.baseline.verdict.delivery != crate::verdict::Delivery::Streamed {
        let _ = writeln!(
            s,
            "note: the direct stream is itself `{}`; chains are reported but not judged: fix the origin first",
            r.baseline.verdict.delivery
        );
    }
    if let Some(c) = &r.concurrency {
        let _ = writeln!(s, "note: {}", concurrency_note(c));
    }
    let w = r.all().map(|c| c.name.len()).max().unwrap_or(6).max(6);
    for c in r.all() {
        chain_human(&mut s, c, &mark(c.status), w);
    }
    for n in &r.not_run {
        let _ = writeln!(
            s,
            "{}  {:<w$}  {}  not run: {}",
            paint("SKIP", "2"),
            n.name,
            n.chain,
            n.reason
        );
    }
    causes_human(&mut s, &r.causes);
    let findings: Vec<String> = r
        .baseline
        .verdict
        .findings
        .iter()
        .map(|f| format!("{}\n          fix: {}", super::finding_line(f), f.rule.fix))
        .collect();
    if !findings.is_empty() {
        let _ = writeln!(
            s,
            "\nfindings on the direct stream:\n{}",
            findings.join("\n")
        );
    }
    let _ = writeln!(
        s,
        "\n{} in {}{}",
        if r.passed {
            paint("gate passed", "32")
        } else {
            paint("gate FAILED", "1;31")
        },
        human_duration(r.took),
        not_run_note(r)
    );
    s
}

/// `; 2 chains not run (their programs are not installed)`, or nothing.
fn not_run_note(r: &CheckReport) -> String {
    match r.not_run.len() {
        0 => String::new(),
        1 => "; 1 chain not run (its program is not installed)".into(),
        n => format!("; {n} chains not run (their programs are not installed)"),
    }
}

/// One chain's line, its reasons, and the fix line when it has something to say.
fn chain_human(s: &mut String, c: &ChainOutcome, mark: &str, w: usize) {
    let shown = if c.status == Status::NotJudged {
        "not judged"
    } else {
        c.verdict.delivery.as_str()
    };
    let _ = writeln!(s, "{mark}  {:<w$}  {:<18} {}", c.name, shown, c.chain);
    for phase in c.phases.iter() {
        let mut lines = String::new();
        phase.human(&mut lines);
        for l in lines.lines() {
            let _ = writeln!(s, "      {l}");
        }
    }
    for reason in &c.reasons {
        let _ = writeln!(s, "      {reason}");
    }
    if c.status == Status::Pass && c.fix.is_none() {
        return;
    }
    let f = fix_line(&c.fix);
    if !f.is_empty() && c.reasons.is_empty() {
        let _ = writeln!(s, "      {f}");
    }
}

/// The causes at the origin, then the risks, each with evidence, fix and stack snippets.
fn causes_human(s: &mut String, causes: &[crate::doctor::Cause]) {
    for (risk, heading) in [
        (false, "likely causes at the origin:"),
        (
            true,
            "risks (nothing broke here; these break streams behind other hops):",
        ),
    ] {
        let of_kind: Vec<_> = causes.iter().filter(|c| c.is_risk() == risk).collect();
        if of_kind.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n{heading}");
        for c in of_kind {
            let _ = writeln!(s, "  {} ({:?}): {}", c.id, c.confidence, c.title);
            for e in &c.evidence {
                let _ = writeln!(s, "      evidence: {e}");
            }
            let _ = writeln!(s, "      fix: {}", c.origin_fix);
            for sn in &c.snippets {
                let _ = writeln!(
                    s,
                    "        {}: {}",
                    sn.framework,
                    sn.code.replace('\n', "\n          ")
                );
            }
        }
    }
}

/// What the origin's limited concurrency did to the run, in one sentence.
pub fn concurrency_note(c: &crate::check::Concurrency) -> String {
    format!(
        "the origin answered at most {} request(s) at once: {} chain(s) waited up to {} for it while others streamed, and were re-run one at a time ({}). Every EventSource holds a request open, so this server serves that many clients at once (a sync worker, a single-threaded dev server): run async workers or more of them",
        c.answered_at_once,
        c.queued.len(),
        human_duration(c.longest_wait),
        c.queued.join(", ")
    )
}

/// JSON Lines for `check`: `check-start`, `baseline`, one `chain` per chain, `summary`.
/// Every line is `{"type": …, "data": …}`; `schema/check.schema.json` describes them.
pub fn check_jsonl(r: &CheckReport) -> String {
    super::json::lines(&super::json::CheckLine::all(r))
}

/// JUnit XML (via quick-junit): one test case per chain, `direct` first.
pub fn check_junit(r: &CheckReport) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new("ssegate check");
    for c in r.all() {
        let status = match c.status {
            Status::Fail => {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                st.set_message(c.reasons.first().cloned().unwrap_or_default());
                st.set_type("ssegate.gate");
                st.set_description(c.reasons.join("\n"));
                st
            }
            Status::Pass | Status::Warn => TestCaseStatus::success(),
            Status::NotJudged => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(c.reasons.first().cloned().unwrap_or_default());
                st
            }
        };
        let mut tc = TestCase::new(format!("{} ({})", c.name, c.chain), status);
        tc.set_classname("ssegate");
        tc.set_time(c.recording.ended_at);
        let mut out = format!(
            "delivery: {} (expected {})\n",
            c.verdict.delivery, c.expected
        );
        for reason in &c.reasons {
            let _ = writeln!(out, "{reason}");
        }
        for f in &c.verdict.findings {
            let _ = writeln!(out, "{} {}: {}", f.severity().as_str(), f.id(), f.evidence);
        }
        tc.set_system_out(out);
        suite.add_test_case(tc);
    }
    for n in &r.not_run {
        let mut st = TestCaseStatus::skipped();
        st.set_message(format!("not run: {}", n.reason));
        let mut tc = TestCase::new(format!("{} ({})", n.name, n.chain), st);
        tc.set_classname("ssegate");
        suite.add_test_case(tc);
    }
    let mut report = Report::new("ssegate");
    report.set_time(r.took);
    report.add_test_suite(suite);
    report.to_string().unwrap_or_default()
}

/// Markdown for `$GITHUB_STEP_SUMMARY` or a PR comment.
pub fn check_markdown(r: &CheckReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## ssegate check: {}\n",
        if r.passed { "passed" } else { "**failed**" }
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
        (Some(_), _) => fix_line(&c.fix),
        (None, Status::Fail) if c.name == "direct" => "origin (the direct stream itself)".into(),
        (None, Status::Fail) => "origin".into(),
        (None, Status::NotJudged) => "not judged: fix the origin first".into(),
        (None, _) => String::new(),
    }
}

/// The details cell of the HTML table: every reason on its own line (they already name the fix), or the
/// measured fixability when there is no reason.
fn details_html(c: &ChainOutcome) -> String {
    if c.reasons.is_empty() {
        esc(&fix_line(&c.fix))
    } else {
        c.reasons
            .iter()
            .map(|r| esc(r))
            .collect::<Vec<_>>()
            .join("<br>")
    }
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The timeline picture: one lane per chain; for every event a line from its reference instant (the
/// baseline's arrival) on the lane's top edge to its arrival on the bottom edge. Held events are red.
pub fn timeline_svg(r: &CheckReport) -> String {
    let lanes: Vec<Lane<'_>> = r
        .all()
        .map(|c| Lane {
            name: &c.name,
            verdict: &c.verdict,
            ended: c.recording.ended_at,
        })
        .collect();
    lanes_svg(&lanes)
}

/// One lane of a timeline picture.
pub struct Lane<'a> {
    pub name: &'a str,
    pub verdict: &'a crate::verdict::Verdict,
    pub ended: Duration,
}

/// A timeline picture of any lanes: `check`'s chains, `run`'s cases.
pub fn lanes_svg(lanes: &[Lane<'_>]) -> String {
    let max_ms = lanes
        .iter()
        .map(|c| c.ended)
        .max()
        .unwrap_or(Duration::from_secs(1))
        .as_secs_f64()
        * 1000.0;
    let (left, width, lane_h) = (170.0, 760.0, 46.0);
    let x = |d: Duration| left + d.as_secs_f64() * 1000.0 / max_ms.max(1.0) * width;
    let h = 30.0 + lane_h * lanes.len() as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#,
        w = left + width + 20.0
    );
    let _ = write!(
        s,
        r##"<text x="{left}" y="14" fill="#555">0</text><text x="{}" y="14" text-anchor="end" fill="#555">{}</text>"##,
        left + width,
        human_duration(Duration::from_secs_f64(max_ms / 1000.0))
    );
    for (i, c) in lanes.iter().enumerate() {
        let top = 24.0 + lane_h * i as f64;
        let bottom = top + lane_h - 14.0;
        let _ = write!(
            s,
            r##"<text x="4" y="{}" fill="#222">{}</text><text x="4" y="{}" fill="#777" font-size="10">{}</text><line x1="{left}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#ccc"/>"##,
            top + 14.0,
            esc(c.name),
            top + 28.0,
            esc(c.verdict.delivery.as_str()),
            left + width
        );
        for e in &c.verdict.events {
            let from = e.expected.unwrap_or(e.arrival);
            let color = if e.held { "#d33" } else { "#2a7" };
            let _ = write!(
                s,
                r#"<line x1="{:.1}" y1="{top}" x2="{:.1}" y2="{bottom}" stroke="{color}" stroke-width="1.2"/><circle cx="{:.1}" cy="{bottom}" r="3" fill="{color}"><title>event {} arrived {}</title></circle>"#,
                x(from),
                x(e.arrival),
                x(e.arrival),
                e.seq,
                esc(&human_duration(e.arrival))
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// A self-contained HTML report (no external resources).
pub fn check_html(r: &CheckReport) -> String {
    let mut rows = String::new();
    for c in r.all() {
        let _ = write!(
            rows,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            status_str(c.status),
            esc(&c.name),
            esc(&c.chain),
            c.verdict.delivery,
            c.expected,
            status_str(c.status),
            details_html(c)
        );
    }
    for n in &r.not_run {
        let _ = write!(
            rows,
            "<tr class=\"skip\"><td>{}</td><td>{}</td><td>–</td><td>–</td><td>not run</td><td>{}</td></tr>",
            esc(&n.name),
            esc(&n.chain),
            esc(&n.reason)
        );
    }
    let mut findings = String::new();
    for f in &r.baseline.verdict.findings {
        let _ = write!(
            findings,
            "<li><b>{}</b> <code>{}</code>: {}<br><small>fix: {}</small></li>",
            f.severity().as_str(),
            f.id(),
            esc(&f.evidence),
            esc(f.rule.fix)
        );
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ssegate check: {verdict}</title>
<style>
body{{font-family:sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}}
tr.fail td{{background:#fde8e8}} tr.warn td{{background:#fff6dd}} tr.pass td{{background:#eef9f1}} tr.skip td{{background:#eee;color:#666}}
</style></head><body>
<h1>ssegate check: {verdict}</h1>
<p>Target: <code>{target}</code>. Took {took}.</p>
<h2>Timeline</h2>
<p>Each line runs from when the event arrived directly (top) to when it arrived through the chain (bottom); red = held.</p>
{svg}
<h2>Chains</h2>
<table><tr><th>chain</th><th>hops</th><th>delivery</th><th>expected</th><th>result</th><th>details</th></tr>{rows}</table>
<h2>Findings on the direct stream</h2><ul>{findings}</ul>
</body></html>
"#,
        verdict = if r.passed { "passed" } else { "failed" },
        target = esc(&r.target),
        took = human_duration(r.took),
        svg = timeline_svg(r),
    )
}

/// Human output for `doctor`.
pub fn doctor_human(d: &DoctorReport) -> String {
    let mut s = super::probe_human(&d.recording, &d.verdict, d.browser.as_ref());
    if !d.platforms.is_empty() {
        let _ = writeln!(s, "\nplatforms:");
        for p in &d.platforms {
            let _ = writeln!(s, "  {} ({})", p.vendor, p.evidence);
        }
    }
    let (risks, causes): (Vec<_>, Vec<_>) = d.causes.iter().partition(|c| c.is_risk());
    if causes.is_empty() {
        let _ = writeln!(s, "\nlikely causes: none found");
    } else {
        let _ = writeln!(s, "\nlikely causes, most likely first:");
    }
    for (i, c) in causes.iter().chain(&risks).enumerate() {
        if i == causes.len() {
            let _ = writeln!(
                s,
                "\nrisks (not what held this stream, but they break streams behind other hops):"
            );
        }
        let _ = writeln!(s, "{}. {} [{:?}]: {}", i + 1, c.id, c.confidence, c.title);
        for e in &c.evidence {
            let _ = writeln!(s, "     evidence: {e}");
        }
        let _ = writeln!(s, "     origin fix: {}", c.origin_fix);
        for sn in &c.snippets {
            let _ = writeln!(
                s,
                "       {}: {}",
                sn.framework,
                sn.code.replace('\n', "\n         ")
            );
        }
        let _ = writeln!(s, "     operator fix: {}", c.operator_fix);
    }
    for a in &d.active {
        let _ = writeln!(
            s,
            "\nre-probe `{}` ({}): {} — {}",
            a.name, a.change, a.delivery, a.conclusion
        );
    }
    s
}
