//! The command line: argument definitions and one function per subcommand. `main.rs` only parses and
//! calls [`run`], so tests drive every command in-process.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::case::{self, Case};
use crate::error::exit;
use crate::origin::{FixtureServer, Profile, profile};
use crate::probe::{ProbeRequest, error_chain, probe};
use crate::report::{self, RunRow};
use crate::runner::{self, Progress};
use crate::verdict::{Reference, judge};

#[derive(Debug, Parser)]
#[command(
    name = "ssegate",
    version,
    about = "Will your Server-Sent Events still arrive one by one, on time, behind real infrastructure?"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure one SSE stream: headers, every event's arrival, delivery class, findings.
    Probe(ProbeArgs),
    /// Serve a built-in fixture origin profile on 127.0.0.1 for manual use.
    Fixture(FixtureArgs),
    /// Run conformance cases (default: the built-in `cases/`) through real and built-in intermediaries.
    Run(RunArgs),
    /// Gate your own endpoint: start it, run it through every chain, fail on what the origin can fix.
    Check(CheckArgs),
    /// Diagnose a deployed stream from the client side: lint, classify, fingerprint, rank causes.
    Doctor(DoctorArgs),
    /// Write a commented starter `ssegate.yaml`.
    Init(InitArgs),
    /// Put a chain of hops in front of a running server and print its URL, for manual experiments.
    Proxy(ProxyArgs),
    /// List every finding id with its severity, reason and fixes (Markdown).
    Findings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// The request options `probe`, `doctor` and `check` share. For `check` each one given overrides what
/// `ssegate.yaml` says.
#[derive(Debug, Clone, Args)]
pub struct RequestArgs {
    /// Extra request header, `Name: value` (repeatable; an empty value removes a default header).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Request method [default: GET].
    #[arg(long)]
    pub method: Option<String>,
    /// Request body (e.g. JSON for a POST stream).
    #[arg(long, value_name = "BODY")]
    pub data: Option<String>,
    /// Stop listening after this long (e.g. `30s`, `1500ms`, `2m`) [default: 30s; check: `listen.duration_ms`].
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// A header name whose value must never be printed (repeatable; Authorization and Cookie always are).
    #[arg(long = "secret-header", value_name = "NAME")]
    pub secret_headers: Vec<String>,
    /// Send no `Accept-Encoding` (browsers send `gzip, deflate, br, zstd`).
    #[arg(long)]
    pub no_compression: bool,
}

impl RequestArgs {
    /// The probe request for `url`, or a usage error for a malformed URL, method or header.
    pub fn request(&self, url: &str) -> Result<ProbeRequest, String> {
        check_url(url)?;
        let mut r = ProbeRequest::new(url.to_string());
        r.limits.duration = Duration::from_secs(30);
        self.validate()?;
        self.apply(&mut r);
        Ok(r)
    }

    /// A usage error for a malformed method or header.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(m) = &self.method
            && http::Method::from_bytes(m.as_bytes()).is_err()
        {
            return Err(format!("failed to parse method `{m}`: not an HTTP method"));
        }
        for h in &self.headers {
            parse_header(h)?;
        }
        Ok(())
    }

    /// Apply the flags that were given to `r` (call [`RequestArgs::validate`] first).
    pub fn apply(&self, r: &mut ProbeRequest) {
        if let Some(m) = &self.method {
            r.method = m.clone();
        }
        if self.data.is_some() {
            r.body = self.data.clone();
        }
        for (k, v) in self.headers.iter().filter_map(|h| parse_header(h).ok()) {
            r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&k));
            r.headers.push((k, v));
        }
        if let Some(d) = self.duration {
            r.limits.duration = d;
        }
        r.secret_headers.extend(self.secret_headers.iter().cloned());
        if self.no_compression {
            r.compression = false;
        }
    }
}

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
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
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

#[derive(Debug, Args)]
pub struct FixtureArgs {
    /// Profile name (a file in `fixtures/`); `--list` shows them.
    #[arg(required_unless_present = "list")]
    pub profile: Option<String>,
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
    /// Where the run's Markdown and JSON reports go (default: `reports/runs/<timestamp>/`).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Write no report files.
    #[arg(long)]
    pub no_report: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Human,
    /// JSON Lines described by `schema/check.schema.json`.
    Json,
    Junit,
    Markdown,
}

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
    #[arg(long, value_enum, default_value = "human")]
    pub format: CheckFormat,
    /// Write the formatted report here (the human summary still goes to stdout).
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Also write a self-contained HTML report with a timeline picture.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Run only part of the matrix: `K/N` runs every N-th chain starting at the K-th (sorted by name).
    #[arg(long, value_name = "K/N")]
    pub partition: Option<String>,
    /// Chains probed at once. A server that answers one request at a time is detected and its queued
    /// chains re-run alone; `-j 1` runs every chain alone from the start.
    #[arg(long, short = 'j', default_value_t = 16)]
    pub jobs: usize,
    #[command(flatten)]
    pub request: RequestArgs,
    /// Colour in human output: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// The server to start, replacing `target.command` (`{port}` is replaced; PORT is exported).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

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
    /// The origin's web stack, for the fix snippets (recognised from the headers when absent).
    #[arg(long, value_enum)]
    pub stack: Option<crate::doctor::Stack>,
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
}

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
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write it.
    #[arg(default_value = "ssegate.yaml")]
    pub path: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

/// An http(s) URL, or a usage error that suggests the fix.
fn check_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        Ok(u) => Err(format!(
            "failed to use URL `{}`: scheme `{}` is not http or https",
            crate::probe::redact_url(url),
            u.scheme()
        )),
        Err(e) => Err(format!(
            "failed to parse URL `{}`: {e} (did you mean `http://{}`?)",
            crate::probe::redact_url(url),
            url.trim_start_matches('/')
        )),
    }
}

/// Parse `500ms`, `2s`, `1.5s`, `2m`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (try 30s, 1500ms, 2m)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("`{s}` is not a duration"));
    }
    if v * mult > 7.0 * 24.0 * 3600.0 {
        return Err(format!("`{s}` is longer than a week"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

fn parse_header(h: &str) -> Result<(String, String), String> {
    // The text is never echoed: a malformed header may well be a token.
    let (k, v) = h
        .split_once(':')
        .ok_or_else(|| "a -H value is not `Name: value` (it has no colon)".to_string())?;
    let k = k.trim();
    if k.is_empty() {
        return Err("a -H value has no header name before its colon".to_string());
    }
    Ok((k.to_string(), v.trim().to_string()))
}

fn eprint_error(msg: &str) {
    let _ = writeln!(std::io::stderr(), "ssegate: {msg}");
}

/// Print to stdout; a closed pipe is not an error (exit 0, the Unix convention).
fn out(text: &str) -> bool {
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
        Err(e) => {
            eprint_error(&format!("failed to write output: {e}"));
            false
        }
    }
}

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprint_error(&format!("failed to start the async runtime: {e}"));
            return exit::SETUP;
        }
    };
    rt.block_on(async {
        // Both listeners exist before anything starts, so a signal can never arrive between a child's
        // start and the handler's registration. SIGTERM (CI cancelling a job) is handled like Ctrl-C: the
        // scenario is dropped, which stops every hop and target, and any group still registered is killed.
        use tokio::signal::unix::{SignalKind, signal};
        let wait = |kind: SignalKind| {
            let mut s = signal(kind).ok();
            async move {
                match s.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
        };
        let interrupted = wait(SignalKind::interrupt());
        let terminated = wait(SignalKind::terminate());
        // The command stays alive (pinned outside the select) until its children are counted and killed,
        // so the message counts what was running when the signal came.
        let command = dispatch(cli);
        tokio::pin!(command);
        tokio::select! {
            code = &mut command => code,
            _ = interrupted => {
                let n = crate::proc::kill_all();
                eprint_error(&format!("interrupted; stopped {n} child process group(s)"));
                exit::INTERRUPTED
            }
            _ = terminated => {
                let n = crate::proc::kill_all();
                eprint_error(&format!("terminated; stopped {n} child process group(s)"));
                exit::TERMINATED
            }
        }
    })
}

async fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::Probe(a) => probe_cmd(a).await,
        Command::Fixture(a) => fixture_cmd(a).await,
        Command::Run(a) => run_cmd(a).await,
        Command::Check(a) => check_cmd(a).await,
        Command::Doctor(a) => doctor_cmd(a).await,
        Command::Init(a) => init_cmd(a),
        Command::Proxy(a) => proxy_cmd(a).await,
        Command::Findings => {
            out(&findings_markdown());
            exit::OK
        }
    }
}

/// The findings catalogue as a Markdown table (the README embeds the same table).
pub fn findings_markdown() -> String {
    let mut s = String::from(
        "| id | severity | area | why | origin fix | operator fix |\n|---|---|---|---|---|---|\n",
    );
    for r in crate::verdict::RULES {
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            r.id,
            r.severity.as_str(),
            r.area,
            r.why,
            r.fix,
            r.operator_fix.unwrap_or("—")
        ));
    }
    s
}

async fn probe_cmd(a: ProbeArgs) -> i32 {
    let mut req = match a.request.request(&a.url) {
        Ok(r) => r,
        Err(e) => {
            eprint_error(&e);
            return exit::USAGE;
        }
    };
    req.limits.max_bytes = a.max_bytes;
    let rec = match probe(&req).await {
        Ok(r) => r,
        Err(e) => {
            eprint_error(&error_chain(&e));
            return exit::SETUP;
        }
    };
    let v = judge(&rec, Reference::None);
    let text = match a.format {
        Format::Human => report::probe_human(&rec, &v),
        Format::Json => {
            serde_json::to_string_pretty(&report::probe_json(&rec, &v)).unwrap_or_default() + "\n"
        }
    };
    out(&text);
    match a.fail_on {
        Some(f) if v.findings.iter().any(|x| x.severity() >= f.severity()) => exit::FAILED,
        _ => exit::OK,
    }
}

async fn fixture_cmd(a: FixtureArgs) -> i32 {
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
            out(&format!("{name:<20} {d}\n"));
        }
        return exit::OK;
    }
    let name = a.profile.unwrap_or_default();
    let p = match Profile::load(&dir, &name) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            return exit::INVALID_INPUT;
        }
    };
    let srv = match FixtureServer::start_on(p, a.port).await {
        Ok(s) => s,
        Err(e) => {
            eprint_error(&format!("failed to listen on 127.0.0.1:{}: {e}", a.port));
            return exit::SETUP;
        }
    };
    out(&format!("{}\n", srv.url()));
    match a.duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending::<()>().await,
    }
    exit::OK
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

async fn proxy_cmd(a: ProxyArgs) -> i32 {
    let mut hops = Vec::new();
    for h in &a.hops {
        match serde_saphyr::from_str::<crate::intermediary::HopSpec>(h) {
            Ok(hop) => hops.push(hop),
            Err(e) => {
                eprint_error(&format!(
                    "invalid --hop `{h}`: {}",
                    e.without_snippet().to_string().lines().next().unwrap_or("")
                ));
                return exit::USAGE;
            }
        }
    }
    let upstream = match reqwest::Url::parse(&a.upstream)
        .ok()
        .filter(|u| u.scheme() == "http")
        .and_then(|u| Some((u.host_str()?.to_string(), u.port_or_known_default()?)))
    {
        Some(hp) => match first_reachable(hp).await {
            Some(addr) => addr,
            None => {
                eprint_error(&format!(
                    "failed to reach {}",
                    crate::probe::redact_url(&a.upstream)
                ));
                return exit::SETUP;
            }
        },
        None => {
            eprint_error(&format!(
                "failed to use `{}`: not an http:// URL",
                crate::probe::redact_url(&a.upstream)
            ));
            return exit::USAGE;
        }
    };
    let chain = match crate::intermediary::Chain::start(&hops, upstream).await {
        Ok(c) => c,
        Err(e) => {
            eprint_error(&error_chain(&e));
            return exit::SETUP;
        }
    };
    out(&format!("http://{}\n", chain.entry(upstream)));
    eprintln!(
        "chain: origin → {} → client",
        crate::case::chain_label(&hops)
    );
    match a.duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending::<()>().await,
    }
    drop(chain);
    exit::OK
}

fn init_cmd(a: InitArgs) -> i32 {
    if a.path.exists() && !a.force {
        eprint_error(&format!(
            "failed to write {}: it exists (use --force to overwrite)",
            a.path.display()
        ));
        return exit::USAGE;
    }
    match std::fs::write(&a.path, crate::config::STARTER) {
        Ok(()) => {
            eprintln!("wrote {}", a.path.display());
            exit::OK
        }
        Err(e) => {
            eprint_error(&format!("failed to write {}: {e}", a.path.display()));
            exit::SETUP
        }
    }
}

async fn doctor_cmd(a: DoctorArgs) -> i32 {
    let requests = a.request.request(&a.url).and_then(|t| {
        Ok((
            t,
            a.compare
                .as_deref()
                .map(|c| a.request.request(c))
                .transpose()?,
        ))
    });
    let (target, compare) = match requests {
        Ok(x) => x,
        Err(e) => {
            eprint_error(&e);
            return exit::USAGE;
        }
    };
    let req = crate::doctor::DoctorRequest {
        target,
        compare,
        active: a.active,
        stack: a.stack,
    };
    let d = match crate::doctor::doctor(&req).await {
        Ok(d) => d,
        Err(e) => {
            eprint_error(&error_chain(&e));
            return exit::SETUP;
        }
    };
    let text = match a.format {
        Format::Human => report::check::doctor_human(&d),
        Format::Json => {
            serde_json::to_string_pretty(&report::check::doctor_json(&d)).unwrap_or_default() + "\n"
        }
    };
    out(&text);
    exit::OK
}

async fn check_cmd(a: CheckArgs) -> i32 {
    // An explicit -c must exist; the default ssegate.yaml is optional when the target is on the command line.
    let default = PathBuf::from("ssegate.yaml");
    let path = a
        .config
        .clone()
        .or_else(|| default.is_file().then_some(default));
    let loaded = match path {
        Some(p) => match crate::config::load(&p) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(e));
                return exit::INVALID_INPUT;
            }
        },
        None if a.url.is_some() || !a.command.is_empty() => crate::config::from_flags(),
        None => {
            eprint_error(
                "failed to find ssegate.yaml; write one with `ssegate init`, or give `--url URL` or `-- COMMAND`",
            );
            return exit::INVALID_INPUT;
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
        eprint_error(&format!(
            "invalid {at}: `target` needs `command` (a server to start) or `url.base` (a running one)"
        ));
        return exit::INVALID_INPUT;
    }
    if let Some(u) = &a.url
        && let Err(e) = check_url(u)
    {
        eprint_error(&e);
        return exit::USAGE;
    }
    if let Err(e) = a.request.validate() {
        eprint_error(&e);
        return exit::USAGE;
    }
    if a.url.is_some() && a.path.is_some() {
        eprint_error("failed to use --path with --url: put the path in the URL");
        return exit::USAGE;
    }
    let partition = match a.partition.as_deref().map(crate::check::parse_partition) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            eprint_error(&e.to_string());
            return exit::USAGE;
        }
    };
    let tty = std::io::stderr().is_terminal();
    let total = match partition {
        Some((k, n)) => (0..loaded.matrix.len()).filter(|i| i % n == k - 1).count(),
        None => loaded.matrix.len(),
    };
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let on_progress: Option<crate::check::OnProgress> = tty.then(|| {
        let done = done.clone();
        std::sync::Arc::new(move |name: &str, finished: bool| {
            if finished {
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                eprint!("\r\x1b[2K[{n}/{total}] {name} done");
            }
        }) as crate::check::OnProgress
    });
    if tty {
        eprint!("recording the direct baseline…");
    }
    let opts = crate::check::CheckOptions {
        command: (!a.command.is_empty()).then(|| a.command.clone()),
        url: a.url.clone(),
        partition,
        jobs: a.jobs,
        on_progress,
        path: a.path.clone(),
        request: {
            let flags = a.request.clone();
            Some(std::sync::Arc::new(move |r: &mut ProbeRequest| {
                flags.apply(r)
            }))
        },
    };
    let result = crate::check::check(&loaded, &opts).await;
    if tty {
        eprint!("\r\x1b[2K");
    }
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            eprint_error(&error_chain(&e));
            return exit::SETUP;
        }
    };
    let formatted = match a.format {
        CheckFormat::Human => {
            report::check::check_human(&r, a.color.enabled() && a.output.is_none())
        }
        CheckFormat::Json => report::check::check_jsonl(&r),
        CheckFormat::Junit => report::check::check_junit(&r),
        CheckFormat::Markdown => report::check::check_markdown(&r),
    };
    match &a.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &formatted) {
                eprint_error(&format!("failed to write {}: {e}", path.display()));
                return exit::SETUP;
            }
            if a.format != CheckFormat::Human {
                out(&report::check::check_human(&r, a.color.enabled()));
            }
        }
        None => {
            out(&formatted);
        }
    }
    if let Some(path) = &a.html
        && let Err(e) = std::fs::write(path, report::check::check_html(&r))
    {
        eprint_error(&format!("failed to write {}: {e}", path.display()));
        return exit::SETUP;
    }
    if let Some(path) = &a.summary {
        let md = report::check::check_markdown(&r);
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(md.as_bytes()));
        if let Err(e) = written {
            eprint_error(&format!("failed to write {}: {e}", path.display()));
            return exit::SETUP;
        }
    }
    if r.passed { exit::OK } else { exit::FAILED }
}

fn builtin_cases_dir() -> PathBuf {
    crate::assets::dir(crate::assets::Kind::Cases)
}

async fn run_cmd(a: RunArgs) -> i32 {
    let paths = if a.paths.is_empty() {
        vec![builtin_cases_dir()]
    } else {
        a.paths.clone()
    };
    let files = match case::discover(&paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            return exit::INVALID_INPUT;
        }
    };
    let (cases, errors) = case::load_all(&files, &profile::builtin_dir());
    if !errors.is_empty() {
        let n = errors.len();
        for e in errors {
            eprintln!("{:?}", miette::Report::new(e));
        }
        eprint_error(&format!("{n} invalid case file(s); nothing was run"));
        return exit::INVALID_INPUT;
    }
    let cases: Vec<Case> = cases
        .into_iter()
        .filter(|c| a.filter.is_empty() || a.filter.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    if cases.is_empty() {
        eprint_error("no cases selected");
        return exit::NO_CASES;
    }
    let tty = std::io::stderr().is_terminal();
    let total = cases.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let progress = |p: Progress<'_>| {
        if let Progress::Finished(c, r) = p {
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let state = match r {
                Ok(o) if o.passed() => "pass",
                Ok(_) => "FAIL",
                Err(_) => "ERROR",
            };
            if tty {
                eprint!("\r\x1b[2K[{n}/{total}] {state} {}", c.name);
                if n == total {
                    eprintln!();
                }
            }
        }
    };
    let started = Instant::now();
    let results = runner::run_cases(&cases, a.jobs, &progress).await;
    let wall = started.elapsed();

    let mut rows = Vec::new();
    let mut outcomes = Vec::new();
    let mut setup_errors = 0;
    for (c, r) in cases.iter().zip(results) {
        match r {
            Ok(o) => {
                rows.push(RunRow::from_outcome(&o));
                outcomes.push(o);
            }
            Err(e) => {
                setup_errors += 1;
                eprint_error(&format!("{}: {}", c.name, error_chain(&e)));
                rows.push(RunRow {
                    case: c.name.clone(),
                    chain: c.chain_label(),
                    delivery: "-".into(),
                    result: "ERROR".into(),
                    findings: String::new(),
                    failures: vec![error_chain(&e)],
                    took_ms: 0,
                });
            }
        }
    }
    let mut text = report::run_table(&rows);
    for r in rows.iter().filter(|r| r.result == "FAIL") {
        text.push_str(&format!("\n{} did not meet its expectation:\n", r.case));
        for f in &r.failures {
            text.push_str(&format!("  - {f}\n"));
        }
    }
    let passed = rows.iter().filter(|r| r.result == "pass").count();
    let longest = outcomes.iter().map(|o| o.took).max().unwrap_or_default();
    text.push_str(&format!(
        "\n{passed} passed, {} failed; wall {} (longest case {})\n",
        rows.len() - passed,
        report::human_duration(wall),
        report::human_duration(longest)
    ));
    out(&text);

    if !a.no_report {
        let dir = a.report_dir.clone().unwrap_or_else(|| {
            let ts = jiff::Timestamp::now()
                .strftime("%Y%m%dT%H%M%SZ")
                .to_string();
            PathBuf::from("reports/runs").join(ts)
        });
        match write_run_reports(&dir, &rows, &outcomes, wall) {
            Ok(()) => eprintln!("reports: {}", dir.display()),
            Err(e) => eprint_error(&format!(
                "failed to write reports to {}: {e}",
                dir.display()
            )),
        }
    }
    if setup_errors > 0 {
        exit::SETUP
    } else if passed == rows.len() {
        exit::OK
    } else {
        exit::FAILED
    }
}

fn write_run_reports(
    dir: &std::path::Path,
    rows: &[RunRow],
    outcomes: &[runner::Outcome],
    wall: Duration,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut programs: Vec<String> = outcomes.iter().flat_map(|o| o.programs.clone()).collect();
    programs.sort();
    programs.dedup();
    std::fs::write(
        dir.join("summary.md"),
        report::run_markdown(rows, wall, &programs),
    )?;
    let json = serde_json::json!({
        "version": 1,
        "wall_ms": wall.as_millis(),
        "programs": programs,
        "cases": rows,
        "outcomes": outcomes,
    });
    std::fs::write(
        dir.join("run.json"),
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )?;
    let cases = dir.join("cases");
    std::fs::create_dir_all(&cases)?;
    for o in outcomes {
        std::fs::write(cases.join(format!("{}.txt", o.name)), report::normalized(o))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1e20s").is_err());
    }

    #[test]
    fn headers_parse() {
        assert_eq!(
            parse_header("X-A:  b c ").unwrap(),
            ("X-A".to_string(), "b c".to_string())
        );
        assert!(parse_header("nocolon").is_err());
        assert!(parse_header(": v").is_err());
    }

    #[test]
    fn the_readme_embeds_the_current_findings_table() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        assert!(
            readme.contains(&findings_markdown()),
            "README.md's findings table is stale: paste the output of `ssegate findings`"
        );
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
