//! `probe`'s and `doctor`'s Markdown and JUnit: one stream, its events, its findings, and (for `doctor`)
//! its ranked causes.

use std::fmt::Write as _;

use crate::doctor::DoctorReport;
use crate::probe::Recording;
use crate::text::human_duration;
use crate::verdict::{Delivery, Severity, Verdict};

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

/// JUnit with one test case for the stream: a failure when it did not stream or a finding reached
/// `fail_on`; the human report is its system-out.
pub fn stream_junit(r: &Recording, v: &Verdict, fail_on: Severity, human: String) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut reasons: Vec<String> = Vec::new();
    if v.delivery != Delivery::Streamed {
        reasons.push(format!("delivery `{}`, not `streamed`", v.delivery));
    }
    reasons.extend(
        v.findings
            .iter()
            .filter(|f| f.severity() >= fail_on)
            .map(|f| format!("{} {}: {}", f.severity().as_str(), f.id(), f.evidence)),
    );
    let status = if reasons.is_empty() {
        TestCaseStatus::success()
    } else {
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
        st.set_message(reasons[0].clone());
        st.set_type("ssegate.stream");
        st.set_description(reasons.join("\n"));
        st
    };
    let mut tc = TestCase::new(format!("{} {}", r.method, r.url), status);
    tc.set_classname("ssegate");
    tc.set_time(r.ended_at);
    tc.set_system_out(human);
    let mut suite = TestSuite::new("ssegate stream");
    suite.add_test_case(tc);
    let mut report = Report::new("ssegate");
    report.set_time(r.ended_at);
    report.add_test_suite(suite);
    report.to_string().unwrap_or_default()
}
