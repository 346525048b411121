//! The command line: argument definitions shared by the subcommands, one module per subcommand, and one
//! error type with its exit code. `main.rs` only parses and calls [`run`], so tests drive every command
//! in-process. Subcommands measure through the library and hand the finished report to `crate::report`
//! for rendering; they only choose where the text goes.

mod check;
mod doctor;
mod fixture;
mod init;
mod load;
mod probe;
mod proxy;
mod run;

pub use check::CheckArgs;
pub use doctor::DoctorArgs;
pub use fixture::FixtureArgs;
pub use init::InitArgs;
pub use load::LoadArgs;
pub use probe::{FailOn, ProbeArgs};
pub use proxy::ProxyArgs;
pub use run::RunArgs;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::exit;
use crate::probe::ProbeRequest;
use crate::report::{Format, Render};
use crate::request::{Invalid, RequestSpec};

/// Why a command stopped before its verdict; each kind has its documented exit code.
#[derive(Debug)]
pub enum CliError {
    /// A malformed flag or flag combination (exit 2).
    Usage(String),
    /// Something could not be started, reached or written (exit 3).
    Setup(String),
    /// A config or case file is invalid (exit 5).
    InvalidInput(String),
    /// Located diagnostics for invalid files, then an optional summary line (exit 5).
    Diagnostics(Vec<miette::Report>, Option<String>),
    /// No case matched the selection (exit 6).
    NoCases(String),
}

impl CliError {
    /// One located diagnostic.
    pub fn diagnostic(e: impl miette::Diagnostic + Send + Sync + 'static) -> CliError {
        CliError::Diagnostics(vec![miette::Report::new(e)], None)
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Setup(_) => exit::SETUP,
            CliError::InvalidInput(_) | CliError::Diagnostics(..) => exit::INVALID_INPUT,
            CliError::NoCases(_) => exit::NO_CASES,
        }
    }

    /// Print the error on stderr.
    pub fn print(&self) {
        match self {
            CliError::Usage(m)
            | CliError::Setup(m)
            | CliError::InvalidInput(m)
            | CliError::NoCases(m) => eprint_error(m),
            CliError::Diagnostics(reports, summary) => {
                for r in reports {
                    eprint_line(&format!("{r:?}"));
                }
                if let Some(s) = summary {
                    eprint_error(s);
                }
            }
        }
    }
}

/// What a subcommand returns: its exit code when it reached a verdict.
pub type CmdResult = Result<i32, CliError>;

/// Where real programs run, for the commands that start hops.
#[derive(Debug, Clone, Copy, Args)]
pub struct BackendArgs {
    /// Where a real program runs when its hop names no image (`nginx: default@nginx:1.27` always runs
    /// that image): `local`, the installed program; `containers`, the program's image through the Docker
    /// engine at $DOCKER_HOST (needs ssegate built with `--features containers`); `auto`, the installed
    /// program, else its image when the engine answers. A hop that cannot run on the backend is skipped
    /// with the reason.
    #[arg(long, value_enum, default_value = "local", env = "SSEGATE_BACKEND")]
    pub backend: BackendChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    Local,
    Containers,
    Auto,
}

impl BackendArgs {
    /// The backend, or a setup error when it needs the `containers` feature this build lacks.
    pub fn backend(&self) -> Result<crate::intermediary::Backend, CliError> {
        use crate::intermediary::Backend;
        Ok(match self.backend {
            BackendChoice::Local => Backend::Local,
            BackendChoice::Auto => Backend::Auto,
            BackendChoice::Containers if crate::intermediary::CONTAINERS_BUILT => {
                Backend::Containers
            }
            BackendChoice::Containers => {
                return Err(CliError::Setup(
                    "failed to use --backend containers: this ssegate was built without the \
                     `containers` feature (cargo install ssegate --features containers)"
                        .into(),
                ));
            }
        })
    }
}

/// The report options every measuring command shares.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Report format: human, json, junit or markdown (see each command's help for what a test case is).
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Write the formatted report here (the human report still goes to stdout).
    #[arg(long, short = 'o')]
    pub output: Option<std::path::PathBuf>,
}

impl OutputArgs {
    /// `-o PATH` gets the chosen format and stdout the human text; without `-o`, stdout gets the chosen
    /// format.
    fn emit(&self, formatted: &str, human: impl FnOnce() -> String) -> Result<(), CliError> {
        match &self.output {
            Some(path) => {
                write_file(path, formatted)?;
                if self.format != Format::Human {
                    out(&human())?;
                }
            }
            None => {
                out(formatted)?;
            }
        }
        Ok(())
    }
}

impl OutputArgs {
    /// Fail now, before anything is measured, when `-o` cannot be written.
    pub(crate) fn check_writable(&self) -> Result<(), CliError> {
        self.output.as_deref().map_or(Ok(()), writable)
    }

    /// `report` in the chosen format to stdout or `-o` (then its human text to stdout, painted when
    /// `color`); a format the kind has not is a usage error.
    fn write<R: Render>(&self, report: &R, color: bool) -> Result<(), CliError> {
        let formatted = report
            .render(self.format, color && self.output.is_none())
            .map_err(|e| CliError::Usage(format!("failed to use --format: {e}")))?;
        self.emit(&formatted, || report.human(color))
    }
}

/// Whether `path` can be written, tried before a run: a setup error naming it, or nothing (a file this
/// made to try is removed again).
pub(crate) fn writable(path: &Path) -> Result<(), CliError> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| CliError::Setup(format!("failed to write {}: {e}", path.display())))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Write a report file, or a setup error naming it.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), CliError> {
    std::fs::write(path, crate::secrets::scrub(text).as_bytes())
        .map_err(|e| CliError::Setup(format!("failed to write {}: {e}", path.display())))
}

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
    /// Open many concurrent streams and measure how many connect, fail (and why) and how late events come.
    Load(LoadArgs),
    /// Put a chain of hops in front of a running server and print its URL, for manual experiments.
    Proxy(ProxyArgs),
    /// List every finding id with its severity, reason and fixes (Markdown).
    Findings,
}

/// How long `probe` and `doctor` listen unless `--duration` says otherwise.
pub const LISTEN_DEFAULT: Duration = Duration::from_secs(30);

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
    /// A header name whose value must never be printed (repeatable; Authorization, Cookie and
    /// Mcp-Session-Id always are).
    #[arg(long = "secret-header", value_name = "NAME")]
    pub secret_headers: Vec<String>,
    /// Send no `Accept-Encoding` (browsers send `gzip, deflate, br, zstd`).
    #[arg(long)]
    pub no_compression: bool,
    /// Stop listening after this many events [default: no limit; check: `listen.events`].
    #[arg(long, value_name = "N")]
    pub max_events: Option<usize>,
    /// Bytes of a line, and of an event's data, kept in the record (e.g. `65536`, `64k`, `8m`) [default:
    /// 1m]. Longer lines are still parsed and their events counted and timed; the finding
    /// `line-too-long` says so.
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_line: Option<usize>,
    /// How to read the stream: `auto` (recognise it from the response), `eventsource`, or an LLM token
    /// stream (`openai-chat`, `openai-responses`, `anthropic`, `ai-sdk`, or `ndjson`: one JSON object
    /// per line, as Ollama sends), or `mcp` (an MCP server over Streamable HTTP: a session, then a
    /// `tools/call` whose progress is the stream; `probe` and `check`) [default: auto].
    #[arg(long, value_name = "PROTOCOL", value_parser = parse_protocol)]
    pub protocol: Option<crate::protocol::Protocol>,
    /// A token stream's delta that arrives this many ms after the origin sent it counts as held (a
    /// stall people see) [default: 100].
    #[arg(long, value_name = "MS")]
    pub token_hold_ms: Option<u64>,
    /// A request header whose value is read from an environment variable, `NAME=VARIABLE` (e.g.
    /// `Authorization=OPENAI_AUTH`): the secret stays out of the shell's history and the process list.
    /// Its value is never printed, as for `--secret-header` (repeatable).
    #[arg(long = "header-env", value_name = "NAME=VARIABLE")]
    pub header_env: Vec<String>,
    /// A header checked through every chain beside the default ones (`Mcp-Session-Id`,
    /// `Authorization`, `Content-Type`, …): sent by the client, it must reach the origin once and
    /// unchanged; sent by the origin, it must reach the client once (repeatable; `listen.headers`).
    #[arg(long = "watch-header", value_name = "NAME")]
    pub watch_headers: Vec<String>,
    /// With an MCP server (`--protocol mcp`): the tool to call after opening a session [default: the
    /// first one `tools/list` gives]. Giving it implies `--protocol mcp`.
    #[arg(long, value_name = "NAME")]
    pub mcp_tool: Option<String>,
    /// The MCP tool's arguments, a JSON object (e.g. `'{"seconds": 5}'`) [default: `{}`].
    #[arg(long, value_name = "JSON")]
    pub mcp_args: Option<String>,
}

fn parse_protocol(s: &str) -> Result<crate::protocol::Protocol, String> {
    crate::protocol::Protocol::parse(s)
}

impl RequestArgs {
    /// The probe request for `url`, listening `default_duration` unless `--duration` says otherwise, or
    /// a usage error for a malformed URL, method or header.
    pub fn request(&self, url: &str, default_duration: Duration) -> Result<ProbeRequest, String> {
        check_url(url)?;
        Ok(self.spec()?.build(url.to_string(), default_duration))
    }

    /// What the flags say of the request (each one given overrides `ssegate.yaml` for `check`), or a
    /// usage error for a malformed method or header. A header's text is never echoed: a malformed one
    /// may well be a token.
    pub fn spec(&self) -> Result<RequestSpec, String> {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<_, _>>()?;
        let mut secret_headers = self.secret_headers.clone();
        for h in &self.header_env {
            let (name, value) = header_from_env(h)?;
            secret_headers.push(name.clone());
            headers.push((name, value));
        }
        if let Some(bad) = self
            .watch_headers
            .iter()
            .find(|h| http::HeaderName::from_bytes(h.as_bytes()).is_err())
        {
            return Err(format!(
                "failed to use --watch-header `{bad}`: not a header name"
            ));
        }
        let spec = RequestSpec {
            method: self.method.clone(),
            headers,
            body: self.data.clone(),
            compression: self.no_compression.then_some(false),
            duration: self.duration,
            max_events: self.max_events,
            max_line: self.max_line,
            secret_headers,
            protocol: self.protocol,
            token_hold: self.token_hold_ms.map(Duration::from_millis),
            watch_headers: self.watch_headers.clone(),
            mcp: (self.mcp_tool.is_some()
                || self.mcp_args.is_some()
                || self.protocol == Some(crate::protocol::Protocol::Mcp))
            .then(|| crate::protocol::McpTool {
                tool: self.mcp_tool.clone(),
                args: self.mcp_args.clone(),
            }),
        };
        if let Some(m) = &spec.mcp {
            m.validate()
                .map_err(|e| format!("failed to use --mcp-args: {e}"))?;
        }
        match spec.validate() {
            Ok(()) => Ok(spec),
            Err(Invalid::Method(m)) => {
                Err(format!("failed to parse method `{m}`: not an HTTP method"))
            }
            Err(Invalid::HeaderName(_)) => Err("a -H value has an invalid header name".into()),
            Err(Invalid::HeaderValue(k)) => {
                Err(format!("the -H value of `{k}` is not a valid header value"))
            }
            Err(Invalid::ZeroDuration) => {
                Err("failed to use --duration 0: listen for longer".into())
            }
            Err(Invalid::ZeroEvents) => Err("failed to use --max-events 0: give at least 1".into()),
            Err(Invalid::ZeroTokenHold) => {
                Err("failed to use --token-hold-ms 0: every token would be held".into())
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    pub(crate) fn enabled(self) -> bool {
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

/// An http(s) URL, or a usage error that suggests the fix.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        Ok(u) => Err(format!(
            "failed to use URL `{}`: scheme `{}` is not http or https",
            crate::secrets::redact_url(url),
            u.scheme()
        )),
        Err(e) => Err(format!(
            "failed to parse URL `{}`: {e} (did you mean `http://{}`?)",
            crate::secrets::redact_url(url),
            url.trim_start_matches('/')
        )),
    }
}

/// Parse a byte count: `4096`, `64k` (KiB), `8m` (MiB); at most 1 GiB.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim().to_ascii_lowercase();
    let (digits, mult) = match t.strip_suffix(['k', 'm']) {
        Some(d) if t.ends_with('k') => (d, 1usize << 10),
        Some(d) => (d, 1usize << 20),
        None => (t.as_str(), 1),
    };
    let n: usize = digits
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a byte count (e.g. 65536, 64k, 8m)"))?;
    n.checked_mul(mult)
        .filter(|&b| b <= 1 << 30)
        .ok_or_else(|| format!("`{s}` is over 1 GiB"))
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

/// `NAME=VARIABLE` of `--header-env`: the header and the variable's value, registered as a secret.
fn header_from_env(h: &str) -> Result<(String, String), String> {
    let (name, var) = h
        .split_once('=')
        .map(|(n, v)| (n.trim(), v.trim()))
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .ok_or_else(|| format!("failed to use --header-env `{h}`: write it `NAME=VARIABLE`"))?;
    let value = std::env::var(var).map_err(|e| {
        format!("failed to read the environment variable `{var}` for --header-env {name}: {e}")
    })?;
    crate::secrets::register(&value);
    Ok((name.to_string(), value))
}

pub(crate) fn parse_header(h: &str) -> Result<(String, String), String> {
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

/// Print `ssegate: msg` on stderr, secrets scrubbed.
pub(crate) fn eprint_error(msg: &str) {
    let _ = writeln!(std::io::stderr(), "ssegate: {}", crate::secrets::scrub(msg));
}

/// Print a line on stderr, secrets scrubbed.
pub(crate) fn eprint_line(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{}", crate::secrets::scrub(msg));
}

/// Print to stdout, secrets scrubbed; a closed pipe is not an error (exit 0, the Unix convention).
pub(crate) fn out(text: &str) -> Result<(), CliError> {
    let text = crate::secrets::scrub(text);
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        // A report that could not be written is no success (a full disk, `> /dev/full`).
        Err(e) => Err(CliError::Setup(format!(
            "failed to write the report to stdout: {e}"
        ))),
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
    // A panic is held until the exit steps below have run, then goes on.
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
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
                eprint_error(&format!("interrupted; stopped {n} child process group(s){}", removed_containers()));
                exit::INTERRUPTED
            }
            _ = terminated => {
                let n = crate::proc::kill_all();
                eprint_error(&format!("terminated; stopped {n} child process group(s){}", removed_containers()));
                exit::TERMINATED
            }
        }
    })
    }));
    // Every exit, a return or a panic: the tasks still spawned are dropped (their hops stop, their
    // containers go to the reaper), one that does not let go within the bound is left rather than waited
    // for without one; then the containers this process still owns are removed.
    rt.shutdown_timeout(SHUTDOWN_WITHIN);
    #[cfg(feature = "containers")]
    crate::intermediary::container::finish();
    code.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// How long the runtime's leftover tasks get to stop at exit.
const SHUTDOWN_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// On a signal: remove this process's hop containers (`, removed N container(s)`), or nothing.
fn removed_containers() -> String {
    #[cfg(feature = "containers")]
    {
        use crate::intermediary::container;
        match container::remove_owned(container::REMOVE_WITHIN) {
            0 => String::new(),
            n => format!(", removed {n} container(s)"),
        }
    }
    #[cfg(not(feature = "containers"))]
    String::new()
}

async fn dispatch(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Probe(a) => probe::run(a).await,
        Command::Fixture(a) => fixture::run(a).await,
        Command::Run(a) => run::run(a).await,
        Command::Check(a) => check::run(a).await,
        Command::Doctor(a) => doctor::run(a).await,
        Command::Init(a) => init::run(a),
        Command::Proxy(a) => proxy::run(a).await,
        Command::Load(a) => load::run(a).await,
        Command::Findings => out(&findings_markdown()).map(|()| exit::OK),
    };
    result.unwrap_or_else(|e| {
        e.print();
        e.exit_code()
    })
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
    fn sizes_parse() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("8M").unwrap(), 8 << 20);
        assert!(parse_size("2g").is_err());
        assert!(parse_size("2048m").is_err(), "over 1 GiB");
        assert!(parse_size("-1").is_err());
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
