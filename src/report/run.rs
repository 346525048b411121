//! `run`'s outputs, every format from one finished run: the table, JSON, JUnit, Markdown, HTML, and the
//! files of a report directory (`summary.md`, `run.json`, `cases/<case>.txt` in normalized form).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::check::{Lane, esc, lanes_svg};
use super::normalized;
use crate::runner::Outcome;
use crate::text::human_duration;
use crate::verdict::Severity;

/// A finished run: a row per selected case (an error row for a case that could not run) and the
/// outcomes of the cases that ran.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// Version of this JSON document's shape.
    pub version: u32,
    #[serde(rename = "wall_ms", serialize_with = "ser_whole_ms")]
    pub wall: Duration,
    /// Real programs the chains ran, each once.
    pub programs: Vec<String>,
    pub cases: Vec<RunRow>,
    pub outcomes: Vec<Outcome>,
}

fn ser_whole_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u128(d.as_millis())
}

impl RunReport {
    pub fn new(cases: Vec<RunRow>, outcomes: Vec<Outcome>, wall: Duration) -> RunReport {
        let mut programs: Vec<String> = outcomes.iter().flat_map(|o| o.programs.clone()).collect();
        programs.sort();
        programs.dedup();
        RunReport {
            version: 1,
            wall,
            programs,
            cases,
            outcomes,
        }
    }

    pub fn passed(&self) -> usize {
        self.cases
            .iter()
            .filter(|r| r.result == CaseResult::Pass)
            .count()
    }

    /// Cases skipped because a program of their chain is not installed.
    pub fn skipped(&self) -> usize {
        self.cases
            .iter()
            .filter(|r| r.result == CaseResult::Skip)
            .count()
    }

    /// Cases that could not run at all.
    pub fn errors(&self) -> usize {
        self.cases
            .iter()
            .filter(|r| r.result == CaseResult::Error)
            .count()
    }
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
    let _ = writeln!(
        text,
        "\n{passed} passed, {} failed{}; wall {} (longest case {})",
        r.cases.len() - passed - skipped.len(),
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

/// The JSON document (`run.json`).
pub fn run_json(r: &RunReport) -> String {
    serde_json::to_string_pretty(r).unwrap_or_default() + "\n"
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

/// A self-contained HTML report: the table, a timeline of every case, each case's normalized report.
pub fn run_html(r: &RunReport) -> String {
    let mut rows = String::new();
    for row in &r.cases {
        let _ = write!(
            rows,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            match row.result {
                CaseResult::Pass => "pass",
                CaseResult::Skip => "skip",
                CaseResult::Fail | CaseResult::Error => "fail",
            },
            esc(&row.case),
            esc(&row.chain),
            esc(&row.delivery),
            esc(&row.result.to_string()),
            esc(&row.failures.join("; ")),
        );
    }
    let lanes: Vec<Lane<'_>> = r
        .outcomes
        .iter()
        .map(|o| Lane {
            name: &o.name,
            verdict: &o.verdict,
            ended: o.recording.ended_at,
        })
        .collect();
    let mut details = String::new();
    for o in &r.outcomes {
        let _ = write!(
            details,
            "<details><summary>{}</summary><pre>{}</pre></details>",
            esc(&o.name),
            esc(&normalized(o))
        );
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ssegate run: {passed} of {total}</title>
<style>
body{{font-family:sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}}
tr.fail td{{background:#fde8e8}} tr.pass td{{background:#eef9f1}}
</style></head><body>
<h1>ssegate run: {passed} of {total} cases met their expectation</h1>
<p>Wall time {wall}.</p>
<h2>Timeline</h2>
<p>Each line runs from when the origin sent the event (top) to when it arrived through the chain (bottom); red = held.</p>
{svg}
<h2>Cases</h2>
<table><tr><th>case</th><th>chain</th><th>delivery</th><th>result</th><th>failures</th></tr>{rows}</table>
<h2>Reports</h2>{details}
</body></html>
"#,
        passed = r.passed(),
        total = r.cases.len(),
        wall = human_duration(r.wall),
        svg = lanes_svg(&lanes),
    )
}

/// Write `summary.md`, `run.json` and `cases/<case>.txt` (normalized, as the snapshots hold them).
pub fn write_dir(dir: &Path, r: &RunReport) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let write = |path: std::path::PathBuf, text: String| {
        std::fs::write(path, crate::secrets::scrub(&text).as_bytes())
    };
    write(dir.join("summary.md"), run_markdown(r))?;
    write(dir.join("run.json"), run_json(r))?;
    let cases = dir.join("cases");
    std::fs::create_dir_all(&cases)?;
    for o in &r.outcomes {
        write(cases.join(format!("{}.txt", o.name)), normalized(o))?;
    }
    Ok(())
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

/// What became of one case of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum CaseResult {
    /// It met its expectation.
    #[serde(rename = "pass")]
    Pass,
    /// It did not.
    #[serde(rename = "FAIL")]
    Fail,
    /// A program of its chain cannot run here: not run, never passed.
    #[serde(rename = "SKIP")]
    Skip,
    /// It could not be measured.
    #[serde(rename = "ERROR")]
    Error,
}

impl std::fmt::Display for CaseResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            CaseResult::Pass => "pass",
            CaseResult::Fail => "FAIL",
            CaseResult::Skip => "SKIP",
            CaseResult::Error => "ERROR",
        })
    }
}

/// One row of a run summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRow {
    pub case: String,
    pub chain: String,
    pub delivery: String,
    pub result: CaseResult,
    pub findings: String,
    pub failures: Vec<String>,
    pub took_ms: u128,
}

impl RunRow {
    pub fn from_outcome(o: &Outcome) -> RunRow {
        let errors: Vec<&str> = o
            .verdict
            .findings
            .iter()
            .filter(|f| f.severity() >= Severity::Warning)
            .map(|f| f.id().as_str())
            .collect();
        RunRow {
            case: o.name.clone(),
            chain: o.chain.clone(),
            delivery: o.verdict.delivery.to_string(),
            result: if o.passed() {
                CaseResult::Pass
            } else {
                CaseResult::Fail
            },
            findings: errors.join(", "),
            failures: o
                .expectation
                .as_ref()
                .map(|e| e.failures.clone())
                .unwrap_or_default(),
            took_ms: o.took.as_millis(),
        }
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
                _ => "**FAIL**",
            },
            r.findings
        );
    }
    for r in rows.iter().filter(|r| !r.failures.is_empty()) {
        let what = if r.result == CaseResult::Skip {
            "was not run"
        } else {
            "failed"
        };
        let _ = writeln!(s, "\n## {} {what}\n", r.case);
        for f in &r.failures {
            let _ = writeln!(s, "- {f}");
        }
    }
    s
}
