//! The conformance suite: one trial per `cases/*.yaml`.
//!
//! Each trial loads its case, runs the scenario (fixture origin → chain → probe), checks the case's
//! `expect`, then compares the normalized report with the committed snapshot `reports/<case>.snap`.
//! The normalizer is the product's own (`ssegate run` writes the same form), so snapshots stay identical
//! run after run. To accept intended changes: `INSTA_UPDATE=always cargo test --test conformance`, then
//! review the diff of `reports/` like any other change.
//!
//! Cases mostly wait on timers, so they run many at once (`--test-threads` still wins when given).
//! A case whose real program is not installed is listed as ignored, its kind naming the missing program
//! and its package.
//!
//! Built with the `containers` feature, every case whose real programs all have an image definition runs
//! a second time as `containers::<case>`, each program from its image (`--backend containers`), with its
//! snapshot in `reports/containers/`: the same measurement from the image, which differs from the local
//! snapshot only where the chain names the image. Without a Docker engine (or the image) those trials are
//! listed as ignored with the reason; under `SSEGATE_REQUIRE_DOCKER=1` (CI) they fail with it instead.
//! A case with `browser:` is skipped when Chromium or chromedriver is missing, and fails under
//! `SSEGATE_REQUIRE_BROWSER=1`.

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use ssegate::case::{self, Case};
use ssegate::error::error_chain;
use ssegate::intermediary::Backend;
use ssegate::origin::profile;

fn main() {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        args.test_threads = Some(64);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = case::discover(&[root.join("cases")]).expect("cases/ is readable");
    let mut trials: Vec<Trial> = files
        .clone()
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            // A case whose program is not installed is skipped, with the reason in its listed kind
            // (`[skipped: failed to find `caddy` …] caddy-default`), never passed.
            let case = Case::load(&path, &profile::builtin_dir()).ok();
            let missing = case.as_ref().and_then(Case::missing_program);
            // CI installs Chromium: there, a browser case that cannot run fails.
            let browser = case.as_ref().is_some_and(|c| c.browser_plan().is_some());
            if let Some(why) = missing.as_ref().filter(|_| browser && required_browser()) {
                let why = why.clone();
                return Trial::test(name, move || {
                    Err(format!("SSEGATE_REQUIRE_BROWSER is set, and {why}").into())
                });
            }
            let trial = Trial::test(name, move || run(&path, Backend::Local));
            skipped_if(trial, missing)
        })
        .collect();
    if cfg!(feature = "containers") {
        trials.extend(files.into_iter().filter_map(|path| {
            let local = Case::load(&path, &profile::builtin_dir()).ok()?;
            let placed = local.on_backend(Backend::Containers).ok()?;
            if placed.file.chain == local.file.chain {
                return None;
            }
            let name = format!("containers::{}", local.name);
            Some(match placed.missing_program() {
                // CI starts an engine and builds the images: there, a missing one fails the trial.
                Some(why) if required_docker() => Trial::test(name, move || {
                    Err(format!("SSEGATE_REQUIRE_DOCKER is set, and {why}").into())
                }),
                missing => skipped_if(
                    Trial::test(name, move || run(&path, Backend::Containers)),
                    missing,
                ),
            })
        }));
    }
    let conclusion = libtest_mimic::run(&args, trials);
    // The containers the trials' hops let go of are removed before the process ends.
    #[cfg(feature = "containers")]
    ssegate::intermediary::container::finish();
    conclusion.exit();
}

/// Whether the browser cases must run (`SSEGATE_REQUIRE_BROWSER=1`, as `.ci/run` sets it).
fn required_browser() -> bool {
    std::env::var("SSEGATE_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// Whether the container trials must run (`SSEGATE_REQUIRE_DOCKER=1`, as `.ci/run` sets it).
fn required_docker() -> bool {
    std::env::var("SSEGATE_REQUIRE_DOCKER").is_ok_and(|v| v == "1")
}

/// A trial that cannot run here is ignored, its kind giving the reason (`[skipped: …] name`).
fn skipped_if(trial: Trial, missing: Option<String>) -> Trial {
    match missing {
        Some(why) => trial
            .with_kind(format!("skipped: {why}"))
            .with_ignored_flag(true),
        None => trial,
    }
}

fn run(path: &PathBuf, backend: Backend) -> Result<(), Failed> {
    let case = Case::load(path, &profile::builtin_dir())
        .map_err(|e| format!("{:?}", miette::Report::new(e)))?
        .on_backend(backend)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let outcome = rt
        .block_on(ssegate::runner::run_case(&case))
        .map_err(|e| error_chain(&e))?;
    let report = ssegate::report::normalized(&outcome);
    if !outcome.passed() {
        return Err(format!("{} did not meet its expectation:\n{report}", case.name).into());
    }
    let mut settings = insta::Settings::clone_current();
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    settings.set_snapshot_path(match backend {
        Backend::Local => reports,
        _ => reports.join("containers"),
    });
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_input_file(path);
    let name = case.name.clone();
    settings.bind(|| insta::assert_snapshot!(name, report));
    Ok(())
}
