//! `ssegate check`: the CI gate for a user's own endpoint.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::{CliError, CmdResult, ColorChoice, OutputArgs, RequestArgs, check_url, write_file};
use crate::check::CheckReport;
use crate::config::Loaded;
use crate::error::error_chain;
use crate::error::exit;
use crate::events::{Reporter, RunEvent};
use crate::phase::exec::ExecPlan;
use crate::report::{self, progress::Progress};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The config file (default: `ssegate.yaml` when it exists).
    #[arg(short = 'c', long)]
    pub config: Option<PathBuf>,
    /// Check an already running server at this URL instead of starting `target.command`.
    #[arg(long)]
    pub url: Option<String>,
    /// The stream's path on the started command, replacing `target.url.path`.
    #[arg(long)]
    pub path: Option<String>,
    /// Also write the Markdown summary here (e.g. `$GITHUB_STEP_SUMMARY`), from the same run.
    #[arg(long, value_name = "PATH")]
    pub summary: Option<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Also write a self-contained HTML report with a timeline picture.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// The chains to run instead of the config's `matrix`: a selection, comma-separated: `real` (every
    /// real program's configs), `all` (`real` and the built-in models), `default`, `builtins`, a
    /// program's name (`nginx,caddy`) or a built-in's (`compression`). A chain whose program is not
    /// installed is reported as not run, with the reason.
    #[arg(long, value_name = "SELECTION")]
    pub matrix: Option<String>,
    /// Run only part of the matrix: `K/N` runs every N-th chain starting at the K-th (sorted by name).
    #[arg(long, value_name = "K/N")]
    pub partition: Option<String>,
    /// Chains probed at once. A server that answers one request at a time is detected and its queued
    /// chains re-run alone; `-j 1` runs every chain alone from the start.
    #[arg(long, short = 'j', default_value_t = 16)]
    pub jobs: usize,
    /// Also open the direct stream and every chain in a real browser (headless Chromium over WebDriver,
    /// one at a time): its delivery beside ssegate's, and whether they agree (see `probe --browser`).
    #[arg(long)]
    pub browser: bool,
    /// A client suite to run once directly and once through every chain, under `sh -c`: `{url}` is the
    /// chain's entry with the target's path, `{base}` the entry without it (e.g. `--exec 'npx
    /// @modelcontextprotocol/conformance server --url {url}'`). A chain fails when the suite fails
    /// through it and passes directly. Replaces `exec:` in the config.
    #[arg(long, value_name = "COMMAND")]
    pub exec: Option<String>,
    /// How long one run of the `--exec` suite may take before it is killed [default: 120s].
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    pub exec_timeout: Option<std::time::Duration>,
    #[command(flatten)]
    pub request: RequestArgs,
    #[command(flatten)]
    pub backend: super::BackendArgs,
    /// Colour in human output: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// The server to start, replacing `target.command` (`{port}` is replaced; PORT is exported).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub(super) async fn run(a: CheckArgs) -> CmdResult {
    let mut loaded = load_config(&a)?;
    if let Some(sel) = &a.matrix {
        let names: Vec<String> = sel.split(',').map(|n| n.trim().to_string()).collect();
        loaded.matrix = crate::config::selected_matrix(&names)
            .map_err(|e| CliError::Usage(format!("failed to use --matrix: {e}")))?;
    }
    let partition = validate_flags(&a)?;
    // Every file the run will write, before the run: a run of minutes must not fail at its end.
    a.out.check_writable()?;
    for path in [&a.html, &a.summary].into_iter().flatten() {
        super::writable(path)?;
    }
    let progress = Arc::new(Progress::stderr());
    let opts = crate::check::CheckOptions {
        command: (!a.command.is_empty()).then(|| a.command.clone()),
        url: a.url.clone(),
        partition,
        jobs: a.jobs,
        reporter: Some(progress.clone()),
        path: a.path.clone(),
        request: a.request.spec().map_err(CliError::Usage)?,
        backend: a.backend.backend()?,
        browser: a.browser,
        exec: exec_plan(&a, &loaded)?,
    };
    let result = crate::check::check(&loaded, &opts).await;
    progress.event(RunEvent::RunFinished);
    let r = result.map_err(|e| match e {
        // Nothing to measure is not a pass: the selection's own exit code.
        crate::check::CheckError::NoChain { .. } => CliError::NoCases(error_chain(&e)),
        e => CliError::Setup(error_chain(&e)),
    })?;
    write_outputs(&a, &r)?;
    Ok(if r.passed {
        exit::OK
    } else if r.inconclusive() {
        exit::INCONCLUSIVE
    } else {
        exit::FAILED
    })
}

/// `--exec` (with `--exec-timeout`), else `exec:` in the config with `--exec-timeout` over its own.
fn exec_plan(a: &CheckArgs, loaded: &Loaded) -> Result<Option<ExecPlan>, CliError> {
    let from_config = loaded.config.exec.as_ref().map(|e| e.value);
    let plan = match (&a.exec, from_config) {
        (Some(cmd), _) => Some(ExecPlan::new(
            cmd.clone(),
            a.exec_timeout
                .unwrap_or(crate::phase::exec::DEFAULT_TIMEOUT),
        )),
        (None, Some(p)) => Some(ExecPlan {
            timeout: a.exec_timeout.unwrap_or(p.timeout),
            ..p
        }),
        (None, None) if a.exec_timeout.is_some() => {
            return Err(CliError::Usage(
                "failed to use --exec-timeout: there is no --exec (or `exec:`) to time".into(),
            ));
        }
        (None, None) => None,
    };
    if let Some(p) = &plan
        && let Err(why) = <crate::phase::exec::ExecPhase as crate::phase::Phase>::validate(p)
    {
        return Err(CliError::Usage(format!("failed to use --exec: {why}")));
    }
    Ok(plan)
}

/// The config `-c` names, else `ssegate.yaml` when it exists, else the flags alone.
fn load_config(a: &CheckArgs) -> Result<Loaded, CliError> {
    // An explicit -c must exist; the default ssegate.yaml is optional when the target is on the command line.
    let default = PathBuf::from("ssegate.yaml");
    let path = a
        .config
        .clone()
        .or_else(|| default.is_file().then_some(default));
    let loaded = match path {
        Some(p) => crate::config::load(&p).map_err(CliError::diagnostic)?,
        None if a.url.is_some() || !a.command.is_empty() => crate::config::from_flags(),
        None => {
            return Err(CliError::InvalidInput(
                "failed to find ssegate.yaml; write one with `ssegate init`, or give `--url URL` or `-- COMMAND`".into(),
            ));
        }
    };
    if a.url.is_none()
        && a.command.is_empty()
        && loaded.config.target.command.is_none()
        && loaded.config.target.url.base.is_none()
    {
        let at = loaded
            .path
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        return Err(CliError::InvalidInput(format!(
            "invalid {at}: `target` needs `command` (a server to start) or `url.base` (a running one)"
        )));
    }
    Ok(loaded)
}

/// Usage errors in the flags; the partition they ask for.
fn validate_flags(a: &CheckArgs) -> Result<Option<(usize, usize)>, CliError> {
    if let Some(u) = &a.url {
        check_url(u).map_err(CliError::Usage)?;
    }
    a.request.spec().map_err(CliError::Usage)?;
    if a.url.is_some() && a.path.is_some() {
        return Err(CliError::Usage(
            "failed to use --path with --url: put the path in the URL".into(),
        ));
    }
    a.partition
        .as_deref()
        .map(crate::check::parse_partition)
        .transpose()
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// The chosen format to stdout or `-o`, and the HTML report and Markdown summary when asked for.
fn write_outputs(a: &CheckArgs, r: &CheckReport) -> Result<(), CliError> {
    a.out.write(r, a.color.enabled())?;
    if let Some(path) = &a.html {
        write_file(path, &report::html::check_html(r))?;
    }
    if let Some(path) = &a.summary {
        let md = report::markdown::check_markdown(r);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(crate::secrets::scrub(&md).as_bytes()))
            .map_err(|e| CliError::Setup(format!("failed to write {}: {e}", path.display())))?;
    }
    Ok(())
}
