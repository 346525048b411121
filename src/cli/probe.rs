//! `ssegate probe URL`: record one stream and judge it on its own.

use clap::{Args, ValueEnum};

use super::{CliError, CmdResult, OutputArgs, RequestArgs};
use crate::error::error_chain;
use crate::error::exit;
use crate::probe::probe;
use crate::report;
use crate::verdict::{Reference, judge};

#[derive(Debug, Args)]
#[command(args_override_self = true)]
pub struct ProbeArgs {
    /// The SSE endpoint (http or https).
    pub url: String,
    #[command(flatten)]
    pub request: RequestArgs,
    /// Stop after this many body bytes.
    #[arg(long, default_value_t = 16 << 20)]
    pub max_bytes: u64,
    /// Also open the URL in a real browser (headless Chromium from Debian, driven over WebDriver by
    /// chromedriver): its `EventSource`'s delivery beside ssegate's, whether they agree, and whether a
    /// 7th `EventSource` on the URL opens (HTTP/1.1's six connections per host).
    #[arg(long)]
    pub browser: bool,
    /// Also write the stream to FILE as a recording: its head and its decoded body piece by piece with
    /// each read's arrival (at most 8 MiB), secrets redacted. `ssegate fixture --replay FILE`, or a
    /// profile's `replay: FILE`, serves it again with the same cadence, through any chain.
    #[arg(long, value_name = "FILE")]
    pub record: Option<std::path::PathBuf>,
    /// Exit 4 when a finding of this severity or worse is reported (a one-URL gate).
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Info,
}

impl FailOn {
    fn severity(self) -> crate::verdict::Severity {
        match self {
            FailOn::Error => crate::verdict::Severity::Error,
            FailOn::Warning => crate::verdict::Severity::Warning,
            FailOn::Info => crate::verdict::Severity::Info,
        }
    }
}

pub(super) async fn run(a: ProbeArgs) -> CmdResult {
    let mut req = a
        .request
        .request(&a.url, super::LISTEN_DEFAULT)
        .map_err(CliError::Usage)?;
    req.limits.max_bytes = a.max_bytes;
    req.capture = a.record.is_some();
    if a.browser {
        browser_preflight()?;
    }
    // An MCP server's stream is a `tools/call` in a session: open it first, then probe the call.
    if req.protocol == crate::protocol::Protocol::Mcp {
        let opened = crate::mcp::open(&req).await;
        let steps: Vec<String> = opened.report.step_lines();
        eprintln!("mcp: {} [{}]", opened.report.summary(), steps.join("; "));
        req = crate::mcp::call_request(&req, &opened).ok_or_else(|| {
            CliError::Setup(format!(
                "failed to open an MCP session with {}: {}",
                crate::secrets::redact_url(&a.url),
                opened.report.summary()
            ))
        })?;
    }
    let rec = probe(&req)
        .await
        .map_err(|e| CliError::Setup(error_chain(&e)))?;
    let mut v = judge(&rec, Reference::None);
    crate::verdict::excuse_starved(&rec, &mut v);
    if let Some(file) = &a.record {
        let recording = crate::origin::replay::StreamRecording::of(&rec, v.protocol.protocol)
            .ok_or_else(|| CliError::Setup("failed to record: no response body was kept".into()))?;
        std::fs::write(file, recording.to_json()).map_err(|e| {
            CliError::Setup(format!(
                "failed to write the recording {}: {e}",
                file.display()
            ))
        })?;
    }
    let browser = if a.browser {
        Some(browser_beside(&req, &rec, &v).await?)
    } else {
        None
    };
    if let Some(b) = &browser {
        v.findings.extend(b.findings.iter().cloned());
        crate::verdict::sort_findings(&mut v.findings);
    }
    let report = report::ProbeReport {
        recording: &rec,
        verdict: &v,
        browser: browser.as_ref(),
        fail_on: a.fail_on.unwrap_or(FailOn::Error).severity(),
    };
    a.out.write(&report, false)?;
    match a.fail_on {
        Some(f) if v.findings.iter().any(|x| x.severity() >= f.severity()) => Ok(exit::FAILED),
        _ => Ok(exit::OK),
    }
}

/// Why `--browser` cannot run, before anything is measured: Chromium missing (a setup error, with the
/// install command). A request `EventSource` cannot make is read with `fetch()` instead.
pub(super) fn browser_preflight() -> Result<(), CliError> {
    match crate::browser::missing() {
        Some(why) => Err(CliError::Setup(format!("failed to run --browser: {why}"))),
        None => Ok(()),
    }
}

/// The browser probe of the same request beside ssegate's recording of it.
pub(super) async fn browser_beside(
    req: &crate::probe::ProbeRequest,
    rec: &crate::probe::Recording,
    v: &crate::verdict::Verdict,
) -> Result<crate::verdict::browser::BrowserVerdict, CliError> {
    browser_preflight()?;
    crate::phase::browser::view(req, (rec, v), true, &|_| None)
        .await
        .map_err(|e| CliError::Setup(error_chain(&e)))
}
