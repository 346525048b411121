//! `ssegate doctor URL`: why a stream that works locally does not once deployed.

use clap::Args;

use super::{CliError, CmdResult, OutputArgs, RequestArgs};
use crate::error::error_chain;
use crate::error::exit;

#[derive(Debug, Args)]
#[command(args_override_self = true)]
pub struct DoctorArgs {
    /// The stream to diagnose (typically the deployed https URL).
    pub url: String,
    /// The same stream without the infrastructure (typically the local server), recorded first as the
    /// baseline; it gets the same request options.
    #[arg(long)]
    pub compare: Option<String>,
    #[command(flatten)]
    pub request: RequestArgs,
    /// Run discriminating re-probes (e.g. again with `Accept-Encoding: identity`) and report what they prove.
    #[arg(long)]
    pub active: bool,
    /// Also open the URL in a real browser (headless Chromium over WebDriver): its delivery beside
    /// ssegate's, whether they agree, and the HTTP/1.1 connection limit (see `probe --browser`).
    #[arg(long)]
    pub browser: bool,
    /// The origin's web stack, for the fix snippets (recognised from the headers when absent).
    #[arg(long, value_enum)]
    pub stack: Option<crate::doctor::Stack>,
    #[command(flatten)]
    pub out: OutputArgs,
}

pub(super) async fn run(a: DoctorArgs) -> CmdResult {
    let requests = a
        .request
        .request(&a.url, super::LISTEN_DEFAULT)
        .and_then(|t| {
            Ok((
                t,
                a.compare
                    .as_deref()
                    .map(|c| a.request.request(c, super::LISTEN_DEFAULT))
                    .transpose()?,
            ))
        });
    let (target, compare) = requests.map_err(CliError::Usage)?;
    if target.protocol == crate::protocol::Protocol::Mcp {
        return Err(CliError::Usage(
            "failed to use --protocol mcp: `doctor` does not open MCP sessions yet; use `ssegate probe --protocol mcp URL` or `ssegate check`".into(),
        ));
    }
    let req = crate::doctor::DoctorRequest {
        target,
        compare,
        active: a.active,
        stack: a.stack,
    };
    if a.browser {
        super::probe::browser_preflight()?;
    }
    let mut d = crate::doctor::doctor(&req)
        .await
        .map_err(|e| CliError::Setup(error_chain(&e)))?;
    if a.browser {
        let b = super::probe::browser_beside(&req.target, &d.recording, &d.verdict).await?;
        d.verdict.findings.extend(b.findings.iter().cloned());
        crate::verdict::sort_findings(&mut d.verdict.findings);
        d.browser = Some(b);
    }
    a.out.write(&d, false)?;
    Ok(exit::OK)
}
