//! `ssegate probe URL`: record one stream and judge it on its own.

use clap::{Args, ValueEnum};

use super::{CliError, CmdResult, OutputArgs, ReportFormat, RequestArgs};
use crate::error::exit;
use crate::probe::{error_chain, probe};
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
    let mut req = a.request.request(&a.url).map_err(CliError::Usage)?;
    req.limits.max_bytes = a.max_bytes;
    let rec = probe(&req)
        .await
        .map_err(|e| CliError::Setup(error_chain(&e)))?;
    let v = judge(&rec, Reference::None);
    let human = || report::probe_human(&rec, &v);
    let fail_on = a.fail_on.unwrap_or(FailOn::Error).severity();
    let text = match a.out.format {
        ReportFormat::Human => human(),
        ReportFormat::Json => report::json::pretty(&report::json::ProbeDoc::new(&rec, &v)),
        ReportFormat::Junit => report::stream::stream_junit(&rec, &v, fail_on, human()),
        ReportFormat::Markdown => report::stream::stream_markdown(&rec, &v),
    };
    a.out.emit(&text, human)?;
    match a.fail_on {
        Some(f) if v.findings.iter().any(|x| x.severity() >= f.severity()) => Ok(exit::FAILED),
        _ => Ok(exit::OK),
    }
}
