//! `ssegate proxy`: a chain of hops in front of a running server, for manual experiments.

use std::time::Duration;

use clap::Args;

use super::{BackendArgs, CliError, CmdResult, out, parse_duration};
use crate::error::error_chain;
use crate::error::exit;

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The server to put the chain in front of (`http://host:port`; the path is ignored).
    pub upstream: String,
    /// A hop as a case's chain writes it, origin side first (repeatable): `compression`,
    /// `'nginx: default'`, `'coalesce: {bytes: 1024}'`.
    #[arg(long = "hop", value_name = "HOP", required = true)]
    pub hops: Vec<String>,
    /// Serve for this long and exit (default: until Ctrl-C).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// The first resolved address that accepts a connection (`localhost` may resolve to ::1 first while the
/// server listens on 127.0.0.1 only).
async fn first_reachable(host_port: (String, u16)) -> Option<std::net::SocketAddr> {
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host(host_port).await.ok()?.collect();
    for addr in &addrs {
        let attempt =
            tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr));
        if matches!(attempt.await, Ok(Ok(_))) {
            return Some(*addr);
        }
    }
    None
}

/// Hops as `--hop` gives them, placed on the backend, or a usage error naming the bad one.
pub(super) fn parse_hops(
    hops: &[String],
    backend: &BackendArgs,
) -> Result<Vec<crate::intermediary::HopSpec>, CliError> {
    let backend = backend.backend()?;
    hops.iter()
        .map(|h| {
            let hop = serde_saphyr::from_str::<crate::intermediary::HopSpec>(h).map_err(|e| {
                CliError::Usage(format!(
                    "invalid --hop `{h}`: {}",
                    e.without_snippet().to_string().lines().next().unwrap_or("")
                ))
            })?;
            hop.on_backend(backend)
                .map_err(|e| CliError::Usage(format!("failed to place --hop `{h}`: {e}")))
        })
        .collect()
}

/// The address an http:// URL's server answers on, or why not.
pub(super) async fn upstream_of(url: &str) -> Result<std::net::SocketAddr, CliError> {
    let shown = crate::secrets::redact_url(url);
    let host_port = reqwest::Url::parse(url)
        .ok()
        .filter(|u| u.scheme() == "http")
        .and_then(|u| Some((u.host_str()?.to_string(), u.port_or_known_default()?)))
        .ok_or_else(|| CliError::Usage(format!("failed to use `{shown}`: not an http:// URL")))?;
    first_reachable(host_port)
        .await
        .ok_or_else(|| CliError::Setup(format!("failed to reach {shown}")))
}

pub(super) async fn run(a: ProxyArgs) -> CmdResult {
    let hops = parse_hops(&a.hops, &a.backend)?;
    let upstream = upstream_of(&a.upstream).await?;
    let chain = crate::intermediary::Chain::start(&hops, upstream)
        .await
        .map_err(|e| CliError::Setup(error_chain(&e)))?;
    let scheme = if chain.tls() { "https" } else { "http" };
    out(&format!("{scheme}://{}\n", chain.entry(upstream)))?;
    super::eprint_line(&format!(
        "chain: origin → {} → client",
        crate::case::chain_label(&hops)
    ));
    // The entry's certificate is issued by this process's own authority: write its (public) certificate
    // where another client can be told to trust it, for as long as the chain runs.
    let _ca = if chain.tls() {
        let dir = crate::proc::private_dir("tls").map_err(|e| CliError::Setup(error_chain(&e)))?;
        let path = dir.path().join("ca.pem");
        let pem = crate::tls::local()
            .map_err(|e| CliError::Setup(error_chain(&e)))?
            .root_pem
            .clone();
        std::fs::write(&path, pem).map_err(|e| CliError::Setup(error_chain(&e)))?;
        super::eprint_line(&format!(
            "the entry's certificate is issued by a local authority for this run only: \
             curl --cacert {} …",
            path.display()
        ));
        Some(dir)
    } else {
        None
    };
    match a.duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending::<()>().await,
    }
    drop(chain);
    Ok(exit::OK)
}
