//! `run`'s report: a row per selected case and the outcomes of the cases that ran, and its report
//! directory (`summary.md`, `run.json`, `cases/<case>.txt` in normalized form).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::snapshot::normalized;
use crate::runner::Outcome;
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

    /// Cases that failed twice on a starved machine.
    pub fn inconclusive(&self) -> usize {
        self.cases
            .iter()
            .filter(|r| r.result == CaseResult::Inconclusive)
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

/// Write `summary.md`, `run.json` and `cases/<case>.txt` (normalized, as the snapshots hold them).
pub fn write_dir(dir: &Path, r: &RunReport) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let write = |path: std::path::PathBuf, text: String| {
        std::fs::write(path, crate::secrets::scrub(&text).as_bytes())
    };
    write(dir.join("summary.md"), super::markdown::run_markdown(r))?;
    write(dir.join("run.json"), super::json::run_json(r))?;
    let cases = dir.join("cases");
    std::fs::create_dir_all(&cases)?;
    for o in &r.outcomes {
        write(cases.join(format!("{}.txt", o.name)), normalized(o))?;
    }
    Ok(())
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
    /// It failed twice, each time while the machine was too busy to tell: neither a pass nor a
    /// failure.
    #[serde(rename = "INCONCLUSIVE")]
    Inconclusive,
}

impl std::fmt::Display for CaseResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            CaseResult::Pass => "pass",
            CaseResult::Fail => "FAIL",
            CaseResult::Skip => "SKIP",
            CaseResult::Error => "ERROR",
            CaseResult::Inconclusive => "INCONCLUSIVE",
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
    /// Measured a second time, alone, because the first failed while the machine was too busy: both
    /// results, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remeasured: Option<String>,
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
            result: if o.inconclusive() {
                CaseResult::Inconclusive
            } else if o.passed() {
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
            remeasured: o.remeasured.as_ref().map(|r| remeasured_words(o, r)),
        }
    }
}

/// "first `batched` (expected …; timer lateness …), then `streamed` alone: it stands".
fn remeasured_words(o: &Outcome, r: &crate::runner::Remeasured) -> String {
    let first = if r.first_failures.is_empty() {
        String::new()
    } else {
        format!("{}; ", r.first_failures.join("; "))
    };
    format!(
        "first `{}` ({first}{}), then `{}` alone ({}): {}",
        r.first_delivery,
        crate::pressure::describe(r.first_pressure.as_ref()),
        o.verdict.delivery,
        crate::pressure::describe(o.recording.pressure.as_ref()),
        if r.inconclusive {
            "inconclusive: the machine was too busy both times"
        } else {
            "the second result stands"
        }
    )
}
