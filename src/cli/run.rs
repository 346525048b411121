//! `ssegate run [PATHS]`: the conformance suite; every output format from one run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;

use super::{CliError, CmdResult, OutputArgs, write_file};
use crate::case::{self, Case};
use crate::error::error_chain;
use crate::error::exit;
use crate::origin::profile;
use crate::report::Render;
use crate::report::progress::Progress;
use crate::report::run::{self as run_report, CaseResult, RunReport, RunRow};
use crate::report::table::{Observation, behaviour_table};
use crate::runner::{self, Outcome, RunError};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Case files or directories (default: the built-in `cases/`).
    pub paths: Vec<PathBuf>,
    /// Run only cases whose name contains this text (repeatable: any matches).
    #[arg(long)]
    pub filter: Vec<String>,
    /// Cases run at once (they mostly wait on timers, so many fit on two cores).
    #[arg(long, short = 'j', default_value_t = 64)]
    pub jobs: usize,
    /// Where the run's Markdown and JSON reports and normalized case reports go (default:
    /// `reports/runs/<timestamp>/`).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Write no report directory.
    #[arg(long)]
    pub no_report: bool,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Print the behaviour table of the real programs (buffers? compresses? honours no-transform /
    /// X-Accel-Buffering? holds the headers?) built from this run's results, instead of the report.
    #[arg(long)]
    pub table: bool,
    /// Also write a self-contained HTML report with a timeline of every case.
    #[arg(long)]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub backend: super::BackendArgs,
}

pub(super) async fn run(a: RunArgs) -> CmdResult {
    let backend = a.backend.backend()?;
    let cases = select_cases(&a)?;
    a.out.check_writable()?;
    if let Some(path) = &a.html {
        super::writable(path)?;
    }
    let started = Instant::now();
    // A case whose program is not installed (or whose image cannot run) is skipped with the reason,
    // visibly, and never passed.
    let mut runnable = Vec::new();
    let mut skipped = Vec::new();
    for c in cases {
        match c.on_backend(backend) {
            Ok(placed) => match placed.missing_program() {
                None => runnable.push(placed),
                Some(why) => skipped.push((placed, why)),
            },
            Err(why) => skipped.push((c, why)),
        }
    }
    let results = runner::run_cases(&runnable, a.jobs, &Progress::stderr()).await;
    let mut report = build_report(&runnable, results, started.elapsed());
    for (c, why) in &skipped {
        super::eprint_line(&format!("{}: skipped: {why}", c.name));
        report.cases.push(RunRow {
            case: c.name.clone(),
            chain: c.chain_label(),
            delivery: "-".into(),
            result: CaseResult::Skip,
            findings: String::new(),
            failures: vec![format!("skipped: {why}")],
            took_ms: 0,
            remeasured: None,
        });
    }
    write_outputs(&a, &report)?;
    let all_skipped = !report.cases.is_empty() && report.skipped() == report.cases.len();
    if all_skipped {
        // Nothing measured is no pass (as `check` with no chain it can run).
        super::eprint_error(
            "failed to run any case: each needs a program or image that cannot run here (see the reasons above)",
        );
    }
    Ok(if report.errors() > 0 || all_skipped {
        exit::SETUP
    } else if report.passed() + report.skipped() == report.cases.len() {
        exit::OK
    } else if report.passed() + report.skipped() + report.inconclusive() == report.cases.len() {
        exit::INCONCLUSIVE
    } else {
        exit::FAILED
    })
}

/// Load every case under the paths (all must be valid), then apply `--filter`.
fn select_cases(a: &RunArgs) -> Result<Vec<Case>, CliError> {
    let paths = if a.paths.is_empty() {
        vec![crate::assets::dir(crate::assets::Kind::Cases)]
    } else {
        a.paths.clone()
    };
    let files = case::discover(&paths).map_err(CliError::diagnostic)?;
    let (cases, errors) = case::load_all(&files, &profile::builtin_dir());
    if !errors.is_empty() {
        let n = errors.len();
        return Err(CliError::Diagnostics(
            errors.into_iter().map(miette::Report::new).collect(),
            Some(format!("{n} invalid case file(s); nothing was run")),
        ));
    }
    let cases: Vec<Case> = cases
        .into_iter()
        .filter(|c| a.filter.is_empty() || a.filter.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    if cases.is_empty() {
        return Err(CliError::NoCases("no cases selected".into()));
    }
    Ok(cases)
}

/// A row per case in the cases' order; a case that could not run is an `ERROR` row with its cause.
fn build_report(
    cases: &[Case],
    results: Vec<Result<Outcome, RunError>>,
    wall: std::time::Duration,
) -> RunReport {
    let mut rows = Vec::new();
    let mut outcomes = Vec::new();
    for (c, r) in cases.iter().zip(results) {
        match r {
            Ok(o) => {
                rows.push(RunRow::from_outcome(&o));
                outcomes.push(o);
            }
            Err(e) => {
                super::eprint_error(&format!("{}: {}", c.name, error_chain(&e)));
                rows.push(RunRow {
                    case: c.name.clone(),
                    chain: c.chain_label(),
                    delivery: "-".into(),
                    result: CaseResult::Error,
                    findings: String::new(),
                    failures: vec![error_chain(&e)],
                    took_ms: 0,
                    remeasured: None,
                });
            }
        }
    }
    RunReport::new(rows, outcomes, wall)
}

/// The chosen format to stdout or `-o`, the HTML report, and the report directory.
fn write_outputs(a: &RunArgs, r: &RunReport) -> Result<(), CliError> {
    let formatted = match a.out.format {
        _ if a.table => {
            let seen: Vec<Observation> = r
                .outcomes
                .iter()
                .filter_map(Observation::from_outcome)
                .collect();
            behaviour_table(&seen)
        }
        format => r.render(format, false).map_err(CliError::Usage)?,
    };
    a.out.emit(&formatted, || r.human(false))?;
    if let Some(path) = &a.html {
        write_file(path, &crate::report::html::run_html(r))?;
    }
    if !a.no_report {
        let dir = match &a.report_dir {
            Some(d) => Ok(d.clone()),
            None => fresh_run_dir(Path::new("reports/runs")),
        };
        match dir.and_then(|dir| run_report::write_dir(&dir, r).map(|()| dir)) {
            Ok(dir) => super::eprint_line(&format!("reports: {}", dir.display())),
            // The run itself is reported; a report directory that cannot be written is said, not fatal.
            Err(e) => super::eprint_error(&format!("failed to write the run's reports: {e}")),
        }
    }
    Ok(())
}

/// A directory of its own under `base` for this run's reports: the time, and `-2`, `-3`… when another
/// run made that one in the same second (two runs must not write over each other's `summary.md`).
fn fresh_run_dir(base: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(base)?;
    let ts = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    for n in 1..=1000 {
        let dir = match n {
            1 => base.join(&ts),
            n => base.join(format!("{ts}-{n}")),
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", dir.display()),
                ));
            }
        }
    }
    Err(std::io::Error::other(format!(
        "{}: a thousand runs this second",
        base.join(&ts).display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_runs_in_one_second_get_directories_of_their_own() {
        let base = tempfile::tempdir().unwrap();
        let a = fresh_run_dir(base.path()).unwrap();
        let b = fresh_run_dir(base.path()).unwrap();
        assert_ne!(a, b);
        assert!(a.is_dir() && b.is_dir());
    }
}
