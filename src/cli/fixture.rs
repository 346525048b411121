//! `ssegate fixture PROFILE`: serve a built-in fixture profile on loopback (or, with `--replay FILE`,
//! a stream `probe --record` recorded).

use std::time::Duration;

use clap::Args;

use super::{CliError, CmdResult, out, parse_duration};
use crate::error::{error_chain, exit};
use crate::origin::{FixtureServer, Profile, profile};

#[derive(Debug, Args)]
pub struct FixtureArgs {
    /// Profile name (a file in `fixtures/`); `--list` shows them.
    #[arg(required_unless_present_any = ["list", "replay"])]
    pub profile: Option<String>,
    /// Serve this recording (`ssegate probe URL --record FILE`) with its cadence: its status, headers
    /// and body piece by piece at the offsets it arrived at (over the profile, `plain` by default).
    #[arg(long, value_name = "FILE")]
    pub replay: Option<std::path::PathBuf>,
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// List the profiles and exit.
    #[arg(long)]
    pub list: bool,
    /// Serve for this long and exit (default: until Ctrl-C).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

pub(super) async fn run(a: FixtureArgs) -> CmdResult {
    let dir = profile::builtin_dir();
    if a.list {
        for name in profile::list(&dir) {
            let d = Profile::load(&dir, &name)
                .map(|p| {
                    p.description
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            out(&format!("{name:<20} {d}\n"))?;
        }
        return Ok(exit::OK);
    }
    let name = a.profile.unwrap_or_else(|| "plain".into());
    let mut p = match Profile::load(&dir, &name) {
        Ok(p) => p,
        Err(e) => {
            return Err(CliError::diagnostic(e));
        }
    };
    if let Some(file) = &a.replay {
        let r = crate::origin::replay::StreamRecording::load(file)
            .map_err(|e| CliError::Usage(error_chain(&e)))?;
        // The recording's own head, not the profile's.
        p.headers.clear();
        p.use_recording(&r);
    }
    let srv = match FixtureServer::start_on(p, a.port).await {
        Ok(s) => s,
        Err(e) => {
            return Err(CliError::Setup(format!(
                "failed to listen on 127.0.0.1:{}: {e}",
                a.port
            )));
        }
    };
    out(&format!("{}\n", srv.url()))?;
    match a.duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending::<()>().await,
    }
    Ok(exit::OK)
}
