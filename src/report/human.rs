//! Reports for people: `check`'s, `doctor`'s, `probe`'s, `run`'s and `load`'s human text.

use std::fmt::Write as _;
use std::time::Duration;

use super::run::{CaseResult, RunReport, RunRow};
use super::{basis_label, end_label, finding_line, protocol};
use crate::check::{ChainOutcome, CheckReport, Fixability, Status};
use crate::doctor::DoctorReport;
use crate::load::Percentiles;
use crate::phase::load::LoadMeasured;
use crate::probe::Recording;
use crate::text::human_duration;
use crate::verdict::Verdict;

pub(super) fn status_str(s: Status) -> &'static str {
    s.as_str()
}

pub(super) fn fix_line(f: &Option<Fixability>) -> String {
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
        Status::Inconclusive => paint("BUSY", "35"),
    };
    let mut s = String::new();
    let _ = writeln!(s, "target: {}", r.target);
    let read_as = &r.baseline.verdict.protocol;
    if read_as.protocol != crate::protocol::Protocol::Eventsource {
        let _ = writeln!(s, "protocol: {} (from {})", read_as.protocol, read_as.from);
    }
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
        "\n{} in {}{}{}",
        if r.passed {
            paint("gate passed", "32")
        } else if r.inconclusive() {
            paint(
                "gate inconclusive (the machine was too busy to tell; nothing failed)",
                "35",
            )
        } else {
            paint("gate FAILED", "1;31")
        },
        human_duration(r.took),
        steps_note(r),
        not_run_note(r)
    );
    s
}

/// ` (start target 0.3 s, direct stream 2.7 s, chains 5.1 s, …)`: where the time went.
fn steps_note(r: &CheckReport) -> String {
    if r.steps.is_empty() {
        return String::new();
    }
    let steps: Vec<String> = r
        .steps
        .iter()
        .map(|s| format!("{} {}", s.name, human_duration(s.took)))
        .collect();
    format!(" ({})", steps.join(", "))
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
    if let Some(t) = &c.verdict.tokens {
        let _ = writeln!(s, "      tokens: {}", t.human());
    }
    if let Some(m) = &c.mcp {
        let steps: Vec<String> = m
            .steps
            .iter()
            .map(|st| format!("{} {}", st.name, st.status))
            .collect();
        let _ = writeln!(s, "      mcp: {} [{}]", m.summary(), steps.join(", "));
    }
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

/// Human output for `doctor`.
pub fn doctor_human(d: &DoctorReport) -> String {
    let mut s = probe_human(&d.recording, &d.verdict, d.browser.as_ref());
    if let (Some(c), Some(delivery)) = (&d.compare, d.compare_delivery)
        && delivery != crate::verdict::Delivery::Streamed
    {
        let _ = writeln!(
            s,
            "\nthe --compare stream ({}) was {delivery} too, without the infrastructure: the origin does not stream; its causes come first, and this stream was judged on its own evidence",
            c.url
        );
    }
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

/// The table, each failure's reasons, and the totals.
pub fn run_human(r: &RunReport) -> String {
    let mut text = run_table(&r.cases);
    for row in r.cases.iter().filter(|row| row.result == CaseResult::Fail) {
        let _ = writeln!(text, "\n{} did not meet its expectation:", row.case);
        for f in &row.failures {
            let _ = writeln!(text, "  - {f}");
        }
    }
    let remeasured: Vec<&RunRow> = r.cases.iter().filter(|r| r.remeasured.is_some()).collect();
    if !remeasured.is_empty() {
        let _ = writeln!(
            text,
            "\nmeasured again, alone (the first measurement failed while the machine was too busy):"
        );
        for row in &remeasured {
            let _ = writeln!(
                text,
                "  - {}: {}",
                row.case,
                row.remeasured.as_deref().unwrap_or_default()
            );
        }
    }
    let skipped: Vec<&RunRow> = r
        .cases
        .iter()
        .filter(|row| row.result == CaseResult::Skip)
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(
            text,
            "\nnot run (a program or image of their chain cannot run here):"
        );
        for row in &skipped {
            let _ = writeln!(text, "  - {}: {}", row.case, row.failures.join("; "));
        }
    }
    let passed = r.passed();
    let longest = r.outcomes.iter().map(|o| o.took).max().unwrap_or_default();
    let inconclusive = r.inconclusive();
    let _ = writeln!(
        text,
        "\n{passed} passed, {} failed{}{}; wall {} (longest case {})",
        r.cases.len() - passed - skipped.len() - inconclusive,
        if inconclusive == 0 {
            String::new()
        } else {
            format!(", {inconclusive} inconclusive (too busy to tell)")
        },
        if skipped.is_empty() {
            String::new()
        } else {
            format!(", {} skipped", skipped.len())
        },
        human_duration(r.wall),
        human_duration(longest)
    );
    text
}

/// The run summary table (plain text).
pub fn run_table(rows: &[RunRow]) -> String {
    let w_case = rows.iter().map(|r| r.case.len()).max().unwrap_or(4).max(4);
    let w_chain = rows
        .iter()
        .map(|r| r.chain.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<w_case$}  {:<w_chain$}  {:<18}  {:<6}  findings",
        "case", "chain", "delivery", "result"
    );
    for r in rows {
        let pad = w_chain - r.chain.chars().count();
        let _ = writeln!(
            s,
            "{:<w_case$}  {}{}  {:<18}  {:<6}  {}",
            r.case,
            r.chain,
            " ".repeat(pad),
            r.delivery,
            r.result,
            r.findings
        );
    }
    s
}

fn fine_ms(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        crate::text::human_duration(d)
    }
}

fn line(label: &str, p: Option<&Percentiles>, what: &str) -> String {
    match p {
        None => format!("{label:<20} none\n"),
        Some(p) => format!(
            "{label:<20} p50 {:>9}  p90 {:>9}  p99 {:>9}  max {:>9}  ({} {what})\n",
            fine_ms(p.p50),
            fine_ms(p.p90),
            fine_ms(p.p99),
            fine_ms(p.max),
            p.count
        ),
    }
}

/// The human report.
pub fn load_human(url: &str, chain: &str, l: &LoadMeasured) -> String {
    let (s, examples) = (&l.summary, &l.failure_examples);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "load: {} streams to {url} ({chain}), opened over {}",
        s.streams,
        fine_ms(s.ramp)
    );
    let _ = writeln!(o, "{:<20} {} of {}", "connected", s.connected, s.streams);
    let failed = s.failed_total();
    if failed == 0 {
        let _ = writeln!(o, "{:<20} 0", "failed");
    } else {
        let _ = writeln!(o, "{:<20} {failed}: {}", "failed", s.failed_label());
        for (f, m) in examples {
            let _ = writeln!(o, "{:<20}   {f}: {m}", "");
        }
        if !s.statuses.is_empty() {
            let codes: Vec<String> = s
                .statuses
                .iter()
                .map(|(c, n)| format!("{c} ×{n}"))
                .collect();
            let _ = writeln!(o, "{:<20}   statuses: {}", "", codes.join(", "));
        }
    }
    let _ = writeln!(
        o,
        "{:<20} {} (connected, then the body was cut)",
        "cut", s.cut
    );
    let _ = writeln!(
        o,
        "{:<20} {} (still open when they stopped listening)",
        "still open", s.listening
    );
    let _ = writeln!(o, "{:<20} {}", "events", s.events);
    o.push_str(&line(
        "time to headers",
        s.time_to_headers.as_ref(),
        "streams",
    ));
    o.push_str(&line(
        "time to 1st event",
        s.time_to_first_event.as_ref(),
        "streams",
    ));
    o.push_str(&line("event latency", s.latency.as_ref(), "events"));
    let _ = writeln!(o, "{:<20} {}", "", s.latency_basis);
    if s.unmatched > 0 {
        let _ = writeln!(
            o,
            "{:<20} {} events had nothing to be measured against (no id, or no send record)",
            "", s.unmatched
        );
    }
    if let Some(t) = &s.tokens {
        let _ = writeln!(
            o,
            "{:<20} {} ({} of {} streams), {} deltas, {} ended with {}",
            "token streams",
            t.protocol.as_str(),
            t.streams,
            s.connected,
            t.deltas,
            t.ended_with_terminal,
            t.terminal
        );
        o.push_str(&line("TTFT", t.ttft.as_ref(), "streams"));
        o.push_str(&line("inter-token", t.itl.as_ref(), "gaps"));
    }
    let fd = &s.fd_limit;
    let _ = writeln!(
        o,
        "{:<20} {} → {} (hard {}, needed {})",
        "descriptor limit", fd.before, fd.now, fd.hard, fd.needed
    );
    let _ = writeln!(o, "{:<20} {}", "wall", fine_ms(s.wall));
    o
}

/// `probe`'s human output.
pub fn probe_human(
    r: &Recording,
    v: &Verdict,
    browser: Option<&crate::verdict::browser::BrowserVerdict>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} {}", r.method, r.url);
    if r.status == 0 {
        let _ = writeln!(
            s,
            "no response headers within {}",
            human_duration(r.ended_at)
        );
    } else {
        let _ = writeln!(
            s,
            "{} {} — headers after {}",
            protocol(r),
            r.status,
            human_duration(r.headers_at)
        );
    }
    for (k, val) in &r.headers {
        let _ = writeln!(s, "  {k}: {val}");
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "  {:>4}  {:>10}  {:>10}  {:>5}  id",
        "#", "arrival", "latency", "burst"
    );
    for (e, a) in v.events.iter().zip(&r.events) {
        let lat = e.latency.map(human_duration).unwrap_or_else(|| "-".into());
        let mark = if e.held { "  held" } else { "" };
        let _ = writeln!(
            s,
            "  {:>4}  {:>10}  {:>10}  {:>5}  {}{mark}",
            e.seq,
            human_duration(e.arrival),
            lat,
            e.burst + 1,
            a.event.id
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{} events, {} reads, {} bytes on the wire ({}), ended {} at {}",
        r.events.len(),
        r.reads.len(),
        r.wire_bytes,
        r.coding,
        end_label(&r.end),
        human_duration(r.ended_at)
    );
    let _ = writeln!(s, "delivery: {} ({})", v.delivery, basis_label(v.basis));
    if v.protocol.protocol != crate::protocol::Protocol::Eventsource {
        let _ = writeln!(
            s,
            "protocol: {} (from {})",
            v.protocol.protocol, v.protocol.from
        );
    }
    if let Some(t) = &v.tokens {
        let _ = writeln!(s, "tokens: {}", t.human());
    }
    if let Some(p) = r.pressure.as_ref().filter(|p| p.stalls > 0) {
        let _ = writeln!(s, "machine: {} while listening", p.describe());
    }
    if let Some(b) = browser {
        crate::phase::browser::human(&mut s, b);
    }
    if v.findings.is_empty() {
        let _ = writeln!(s, "findings: none");
    } else {
        let _ = writeln!(s, "findings:");
    }
    for f in &v.findings {
        let _ = writeln!(s, "{}", finding_line(f));
        let _ = writeln!(s, "          why: {}", f.rule.why);
        let _ = writeln!(s, "          fix: {}", f.rule.fix);
        if let Some(op) = f.rule.operator_fix {
            let _ = writeln!(s, "          operator: {op}");
        }
    }
    s
}
