//! JUnit XML: `check`'s (a test case per chain), `run`'s (a test case per case), and a stream's (`probe`,
//! `doctor`: a test case per finding).

use std::fmt::Write as _;
use std::time::Duration;

use super::run::{CaseResult, RunReport};
use super::snapshot::normalized;
use crate::check::{CheckReport, Status};
use crate::probe::Recording;
use crate::verdict::{Delivery, Severity, Verdict};

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
            Status::NotJudged | Status::Inconclusive => {
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

/// JUnit XML: one test case per case; an unmet expectation is a failure, a case that could not run an
/// error; each case's normalized report is its system-out.
pub fn run_junit(r: &RunReport) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new("ssegate run");
    for row in &r.cases {
        let status = match row.result {
            CaseResult::Pass => TestCaseStatus::success(),
            CaseResult::Skip => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(row.failures.first().cloned().unwrap_or_default());
                st
            }
            // Neither a pass nor a failure: this machine was too busy to tell, twice.
            CaseResult::Inconclusive => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(row.remeasured.clone().unwrap_or_default());
                st
            }
            result => {
                let kind = if result == CaseResult::Error {
                    NonSuccessKind::Error
                } else {
                    NonSuccessKind::Failure
                };
                let mut st = TestCaseStatus::non_success(kind);
                st.set_message(row.failures.first().cloned().unwrap_or_default());
                st.set_type("ssegate.expectation");
                st.set_description(row.failures.join("\n"));
                st
            }
        };
        let mut tc = TestCase::new(format!("{} ({})", row.case, row.chain), status);
        tc.set_classname("ssegate.cases");
        tc.set_time(Duration::from_millis(row.took_ms as u64));
        if let Some(o) = r.outcomes.iter().find(|o| o.name == row.case) {
            tc.set_system_out(normalized(o));
        }
        suite.add_test_case(tc);
    }
    let mut report = Report::new("ssegate");
    report.set_time(r.wall);
    report.add_test_suite(suite);
    report.to_string().unwrap_or_default()
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
