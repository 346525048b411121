//! `ssegate load`: many concurrent streams against a URL, the built-in fixture, or a chain in front of
//! either; connected and failed streams with reasons, and latency percentiles.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{CliError, CmdResult, Format, OutputArgs, RequestArgs, parse_duration};
use crate::error::error_chain;
use crate::error::exit;
use crate::load::{self, Counters, Fanout, LoadPlan};
use crate::origin::{FixtureServer, Profile};
use crate::phase::load::{LoadTarget, run_load};
use crate::verdict::capacity::Capacity;

#[derive(Debug, Args)]
#[command(args_override_self = true)]
pub struct LoadArgs {
    /// The SSE endpoint (http or https); or use `--fixture`.
    #[arg(required_unless_present = "fixture", conflicts_with = "fixture")]
    pub url: Option<String>,
    /// Serve a built-in fixture profile in this process and measure against its send instants.
    #[arg(long, value_name = "PROFILE")]
    pub fixture: Option<String>,
    /// Concurrent streams to open.
    #[arg(long, value_name = "N")]
    pub streams: usize,
    /// Open the streams evenly over this long (e.g. `2s`) [default: 1 ms per stream].
    #[arg(long, value_parser = parse_duration)]
    pub ramp: Option<Duration>,
    /// Whether every stream gets its own events (`per-stream`) or all join one broadcast (`shared`,
    /// events matched by id); decides what latency is measured against without `--fixture`.
    #[arg(long, value_enum, default_value = "per-stream")]
    pub schedule: ScheduleArg,
    /// A hop in front of the endpoint, origin side first (repeatable), as `ssegate proxy` takes it:
    /// `'nginx: default'`.
    #[arg(long = "hop", value_name = "HOP")]
    pub hops: Vec<String>,
    #[command(flatten)]
    pub backend: super::BackendArgs,
    #[command(flatten)]
    pub request: RequestArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleArg {
    PerStream,
    Shared,
}

pub(super) async fn run(a: LoadArgs) -> CmdResult {
    if a.streams == 0 || a.streams > load::MAX_STREAMS {
        return Err(CliError::Usage(format!(
            "failed to use --streams {}: give 1 to {}",
            a.streams,
            load::MAX_STREAMS
        )));
    }
    if matches!(a.out.format, Format::Junit | Format::Markdown) {
        return Err(CliError::Usage(
            "failed to use --format: `load` writes human or json".into(),
        ));
    }
    let hops = super::proxy::parse_hops(&a.hops, &a.backend)?;
    // The origin: the in-process fixture, or the URL's server.
    let fixture = match &a.fixture {
        Some(name) => {
            let p = Profile::builtin(name).map_err(CliError::diagnostic)?;
            Some(FixtureServer::start(p).await.map_err(|e| {
                CliError::Setup(format!("failed to start the fixture on 127.0.0.1: {e}"))
            })?)
        }
        None => None,
    };
    let url = match (&fixture, &a.url) {
        (Some(f), _) => f.url(),
        (None, Some(u)) => u.clone(),
        (None, None) => unreachable!("clap requires a URL or --fixture"),
    };
    // A load run's streams listen 10 s each unless told otherwise.
    let mut req = a
        .request
        .request(&url, Duration::from_secs(10))
        .map_err(CliError::Usage)?;
    if req.protocol == crate::protocol::Protocol::Mcp {
        return Err(CliError::Usage(
            "failed to use --protocol mcp: `load` does not open MCP sessions yet (each stream would need its own); use `ssegate check`".into(),
        ));
    }
    let fds_per_stream = load::fds_per_stream(
        fixture.is_some(),
        false,
        crate::phase::load::builtin_hops(&hops),
    );
    // Before the chain starts: the hops inherit the raised limit (nginx's `worker_connections` needs
    // the descriptors too).
    load::raise_fd_limit(a.streams, fds_per_stream);
    let chain = if hops.is_empty() {
        None
    } else {
        let upstream = super::proxy::upstream_of(&url).await?;
        let chain = crate::intermediary::Chain::start(&hops, upstream)
            .await
            .map_err(|e| CliError::Setup(error_chain(&e)))?;
        req = crate::scenario::retarget(&req, chain.entry(upstream), chain.tls());
        Some(chain)
    };
    let ramp = a.ramp.unwrap_or(Duration::from_millis(a.streams as u64));
    let target = LoadTarget {
        request: req,
        plan: LoadPlan {
            streams: a.streams,
            ramp_ms: Some(ramp.as_millis() as u64),
        },
        fanout: match a.schedule {
            ScheduleArg::PerStream => Fanout::PerStream,
            ScheduleArg::Shared => Fanout::Shared,
        },
        fixture: fixture.as_ref().map(|f| (f, "/")),
        fds_per_stream,
    };
    let counters = Arc::new(Counters::default());
    let bar = progress(a.streams, counters.clone());
    let result = run_load(&target, counters).await;
    if let Some((bar, ticker)) = bar {
        ticker.abort();
        bar.finish_and_clear();
    }
    let measured = result.map_err(|e| CliError::Setup(error_chain(&e)))?;
    drop(chain);
    let chain_label = crate::case::chain_label(&hops);
    let shown = crate::secrets::redact_url(&url);
    let report = crate::report::LoadReport {
        url: &shown,
        chain: &chain_label,
        measured: &measured,
    };
    a.out.write(&report, false)?;
    // The load phase's own judgement: the chain held every stream, or it did not.
    Ok(match measured.capacity {
        Capacity::Full => exit::OK,
        Capacity::Limited => exit::FAILED,
    })
}

/// A bar on stderr when it is a terminal, refreshed from the counters.
fn progress(
    total: usize,
    counters: Arc<Counters>,
) -> Option<(indicatif::ProgressBar, tokio::task::JoinHandle<()>)> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let style = indicatif::ProgressStyle::with_template(
        "load [{bar:30}] {pos}/{len} opened {elapsed} {wide_msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    let b = bar.clone();
    let ticker = tokio::spawn(async move {
        loop {
            b.set_position(counters.opened.load(Ordering::Relaxed) as u64);
            b.set_message(format!(
                "connected {} failed {} ended {}",
                counters.connected.load(Ordering::Relaxed),
                counters.failed.load(Ordering::Relaxed),
                counters.done.load(Ordering::Relaxed),
            ));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    Some((bar, ticker))
}
