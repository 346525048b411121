//! `ssegate.yaml`: a user's own endpoint, the chains to put in front of it, and what the gate demands.
//!
//! The same schema family and loader as conformance cases ([`crate::case`]): unknown keys are errors with
//! file, line, column and a did-you-mean.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::error::FileError;
use crate::intermediary::HopSpec;
use crate::origin::command::{CommandSpec, ReadySpec};
use crate::request::{Invalid, RequestSpec};
use crate::text::name_help;
use crate::verdict::{Delivery, FindingId, Severity};
use crate::yaml::{key_location, parse_yaml};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub target: TargetConfig,
    #[serde(default)]
    pub listen: Listen,
    /// Named chains, origin side first, or a selection of standard chains (`real`, `[nginx, caddy]`).
    /// Absent = [`default_matrix`].
    pub matrix: Option<MatrixSpec>,
    /// Chains of the matrix not to run: "I do not deploy behind this" (e.g. `[compression, content-length]`).
    #[serde(default)]
    pub skip: Vec<Spanned<String>>,
    #[serde(default)]
    pub expect: GateExpect,
    /// Header names whose values are never printed (Authorization and Cookie always are).
    #[serde(default)]
    pub secret_headers: Vec<String>,
    /// A client suite run directly and through every chain (`'CMD … {url} …'`, or `{command,
    /// timeout_ms}`).
    pub exec: Option<Spanned<crate::phase::exec::ExecPlan>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Program and arguments; `{port}` is replaced by the port to listen on (also exported as `PORT`).
    pub command: Option<Vec<String>>,
    /// Working directory of the command, relative to the config file.
    pub cwd: Option<PathBuf>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub url: UrlSpec,
    #[serde(default)]
    pub ready: ReadySpec,
    /// The server's web stack (`express`, `fastify`, `nextjs`, `starlette`, `flask`, `django`, `go`,
    /// `rails`, `axum`): the fixes show its snippets. Recognised from the headers or command when absent.
    pub stack: Option<crate::doctor::Stack>,
    /// How to read the stream: `auto` (the default: recognised from the response), `eventsource`, an
    /// LLM token stream (`openai-chat`, `openai-responses`, `anthropic`, `ai-sdk`, `ndjson`), or `mcp`.
    pub protocol: Option<crate::protocol::Protocol>,
    /// An MCP server's tool to call (`{tool: slow_task, args: {seconds: 5}}`); implies `protocol: mcp`.
    pub mcp: Option<crate::protocol::McpTool>,
}

/// The request that opens the stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlSpec {
    /// A complete URL of an already running server (instead of `command`).
    pub base: Option<String>,
    /// Path of the stream on the started command.
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
}

fn default_path() -> String {
    "/".into()
}
fn default_method() -> String {
    "GET".into()
}

impl Default for UrlSpec {
    fn default() -> Self {
        UrlSpec {
            base: None,
            path: default_path(),
            method: default_method(),
            headers: BTreeMap::new(),
            body: None,
        }
    }
}

/// How long to listen: real endpoints may never end.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Stop after this many events.
    pub events: Option<usize>,
    /// Stop after this long at most.
    #[serde(default = "default_listen_ms")]
    pub duration_ms: u64,
    /// Also open this many concurrent streams through the direct stream and every chain, one load at a
    /// time (`ssegate load`'s measurement): does each hold them?
    pub streams: Option<usize>,
    /// Open the load's streams evenly over this long (default: 2 ms per stream).
    pub ramp_ms: Option<u64>,
    /// After each chain's probe, measure the stream's lifecycle through it: a reconnect with
    /// `Last-Event-ID` (after `retry:` or a browser's 3 s) and a client that leaves after its first event
    /// (default: true; `false` saves a few seconds per chain).
    #[serde(default = "yes")]
    pub lifecycle: bool,
    /// Header names checked through every chain beside the default ones: each the client sends must
    /// reach the origin once and unchanged, each the origin sends must reach the client once.
    #[serde(default)]
    pub headers: Vec<String>,
}

fn yes() -> bool {
    true
}

impl Listen {
    /// The load every chain gets, when `listen.streams` asks for one.
    pub fn load(&self) -> Option<crate::load::LoadPlan> {
        self.streams.map(|streams| crate::load::LoadPlan {
            streams,
            ramp_ms: self.ramp_ms,
        })
    }
}

fn default_listen_ms() -> u64 {
    20_000
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            events: None,
            duration_ms: default_listen_ms(),
            streams: None,
            ramp_ms: None,
            lifecycle: true,
            headers: Vec::new(),
        }
    }
}

/// What passes the gate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateExpect {
    /// Delivery per chain name (`direct` for the baseline, `default` for every chain not named).
    /// A chain named here fails the gate when it differs, even if only an operator can fix it.
    #[serde(default)]
    pub delivery: BTreeMap<String, Delivery>,
    /// Finding ids that never fail the gate.
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// Finding ids that fail the gate whatever their severity, on any chain.
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
    /// The least severity of a direct-baseline finding that fails the gate.
    #[serde(default = "default_fail_on")]
    pub fail_on: Severity,
    /// A token stream's delta that arrives this many ms after the origin sent it counts as held
    /// (default 100).
    #[serde(default)]
    pub token_hold_ms: Option<u64>,
}

fn default_fail_on() -> Severity {
    Severity::Error
}

impl Default for GateExpect {
    fn default() -> Self {
        GateExpect {
            delivery: BTreeMap::new(),
            allow: Vec::new(),
            deny: Vec::new(),
            fail_on: default_fail_on(),
            token_hold_ms: None,
        }
    }
}

/// `matrix:` in `ssegate.yaml`.
#[derive(Debug, Clone)]
pub enum MatrixSpec {
    /// `{name: [hops…], …}`: the user's own chains.
    Chains(BTreeMap<String, Vec<HopSpec>>),
    /// `real`, `all`, `default`, `builtins`, a program's name, or a list of them: standard chains, one hop
    /// each (see [`HopSpec::selection`]), resolved when the file is read.
    Select(BTreeMap<String, Vec<HopSpec>>),
}

impl MatrixSpec {
    /// The chains it names, by chain name.
    pub fn chains(&self) -> &BTreeMap<String, Vec<HopSpec>> {
        match self {
            MatrixSpec::Chains(m) | MatrixSpec::Select(m) => m,
        }
    }
}

/// The chains of a selection (`real`, `caddy`, …) by name; an unknown selection is an error naming the
/// valid ones.
pub fn selected_matrix(names: &[String]) -> Result<BTreeMap<String, Vec<HopSpec>>, String> {
    let mut m = BTreeMap::new();
    for n in names {
        for (name, hop) in HopSpec::selection(n.trim())? {
            m.insert(name, vec![hop]);
        }
    }
    Ok(m)
}

impl<'de> Deserialize<'de> for MatrixSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, MapAccess, SeqAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MatrixSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "named chains (`name: [hops]`), or a selection: `real`, `all`, `default`, `builtins`, a program's name, or a list of them",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MatrixSpec, E> {
                selected_matrix(&[v.to_string()])
                    .map(MatrixSpec::Select)
                    .map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MatrixSpec, A::Error> {
                let mut chains = BTreeMap::new();
                while let Some(n) = seq.next_element::<String>()? {
                    // Each name resolved as it is read, so an unknown one is located at itself.
                    chains.extend(selected_matrix(&[n]).map_err(de::Error::custom)?);
                }
                Ok(MatrixSpec::Select(chains))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MatrixSpec, A::Error> {
                BTreeMap::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(MatrixSpec::Chains)
            }
        }
        d.deserialize_any(V)
    }
}

/// The default matrix: one chain per hop, with options sized for real endpoints.
pub fn default_matrix() -> BTreeMap<String, Vec<HopSpec>> {
    HopSpec::default_matrix()
        .into_iter()
        .map(|(name, hop)| (name, vec![hop]))
        .collect()
}

/// A loaded, validated config.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: Option<PathBuf>,
    pub config: Config,
    pub matrix: BTreeMap<String, Vec<HopSpec>>,
}

impl Loaded {
    /// The command to run, with `cwd` resolved against the config file's directory.
    /// A command given on the command line runs in the current directory.
    pub fn command(&self, override_argv: Option<Vec<String>>) -> Option<CommandSpec> {
        if let Some(argv) = override_argv {
            return Some(CommandSpec {
                argv,
                cwd: None,
                env: self.config.target.env.clone(),
            });
        }
        let argv = self.config.target.command.clone()?;
        let base = self
            .path
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let cwd = match &self.config.target.cwd {
            Some(c) if c.is_absolute() => Some(c.clone()),
            Some(c) => Some(base.join(c)),
            None if self.path.is_some() => Some(base),
            None => None,
        };
        Some(CommandSpec {
            argv,
            cwd: cwd.filter(|c| !c.as_os_str().is_empty()),
            env: self.config.target.env.clone(),
        })
    }
}

/// Parse and validate `ssegate.yaml` text.
pub fn parse(path: &Path, src: &str) -> Result<Loaded, FileError> {
    let config: Config = parse_yaml(path, src)?;
    let at = |s: &Spanned<String>, msg: String, help: Option<String>| {
        FileError::at(
            path,
            src,
            s.referenced.line() as usize,
            s.referenced.column() as usize,
            msg,
            help,
        )
    };
    for id in config.expect.allow.iter().chain(&config.expect.deny) {
        if let Err(e) = id.value.parse::<FindingId>() {
            return Err(at(id, e.to_string(), Some(e.help())));
        }
    }
    check_values(&config, path, src)?;
    let matrix = config
        .matrix
        .as_ref()
        .map(|m| m.chains().clone())
        .unwrap_or_else(default_matrix);
    let mut names: Vec<&str> = matrix.keys().map(String::as_str).collect();
    for chain in &config.skip {
        if !names.contains(&chain.value.as_str()) {
            return Err(at(
                chain,
                format!("`skip` names no chain `{}`", chain.value),
                Some(name_help(&chain.value, &names)),
            ));
        }
    }
    if let Some(last) = config.skip.last()
        && names
            .iter()
            .all(|n| config.skip.iter().any(|s| s.value == *n))
    {
        return Err(at(
            last,
            "`skip` leaves no chain of the matrix, so the gate would pass having measured nothing"
                .into(),
            Some("skip fewer chains, or name more in `matrix`".into()),
        ));
    }
    names.extend(["default", "direct"]);
    for key in config.expect.delivery.keys() {
        if !names.contains(&key.as_str()) {
            // A map keeps no key locations: find the key inside `expect:` → `delivery:`.
            let (line, column) = key_location(src, &["expect", "delivery", key]);
            return Err(FileError::at(
                path,
                src,
                line,
                column,
                format!("`expect.delivery` names no chain `{key}`"),
                Some(name_help(key, &names)),
            ));
        }
    }
    if config.target.ready.http.is_some() && config.target.ready.log.is_some() {
        let (line, column) = key_location(src, &["target", "ready", "log"]);
        return Err(FileError::at(
            path,
            src,
            line,
            column,
            "`target.ready` takes `http` or `log`, not both",
            None,
        ));
    }
    if let Some(cmd) = &config.target.command
        && cmd.is_empty()
    {
        return Err(FileError::at(
            path,
            src,
            key_location(src, &["target", "command"]).0,
            key_location(src, &["target", "command"]).1,
            "`target.command` is empty",
            None,
        ));
    }
    check_cannot_work(&config, &matrix, path, src)?;
    Ok(Loaded {
        path: Some(path.to_path_buf()),
        config,
        matrix,
    })
}

/// Values that load but could never work, found when the file is read rather than once the target has
/// started (or never): each is a located error.
fn check_cannot_work(
    config: &Config,
    matrix: &BTreeMap<String, Vec<HopSpec>>,
    path: &Path,
    src: &str,
) -> Result<(), FileError> {
    let err = |keys: &[&str], msg: String, help: Option<String>| {
        let (line, column) = key_location(src, keys);
        Err(FileError::at(path, src, line, column, msg, help))
    };
    let target = &config.target;
    if let Some(base) = &target.url.base {
        if target.command.is_some() {
            return err(
                &["target", "url", "base"],
                "`target.url.base` and `target.command` are both given: `base` would be ignored"
                    .into(),
                Some("give `command` (a server to start) or `url.base` (a running one)".into()),
            );
        }
        if !reqwest::Url::parse(base).is_ok_and(|u| u.scheme() == "http") {
            return err(
                &["target", "url", "base"],
                format!(
                    "`target.url.base` `{}` is not a plain http:// URL: chains need one",
                    crate::secrets::redact_url(base)
                ),
                None,
            );
        }
    }
    if let Some(h) = &target.ready.http
        && !h.starts_with('/')
    {
        return err(
            &["target", "ready", "http"],
            format!("`target.ready.http` must be a path starting with `/`, not `{h}`"),
            Some(format!("write `/{h}`")),
        );
    }
    if target.ready.timeout_ms == 0 {
        return err(
            &["target", "ready", "timeout_ms"],
            "`target.ready.timeout_ms` must be above 0".into(),
            None,
        );
    }
    if let Some(bad) = config
        .secret_headers
        .iter()
        .find(|h| http::HeaderName::from_bytes(h.as_bytes()).is_err())
    {
        return err(
            &["secret_headers"],
            format!("`{bad}` in `secret_headers` is not a header name"),
            None,
        );
    }
    if let Some(Err(why)) = config.target.mcp.as_ref().map(|m| m.validate()) {
        return err(&["target", "mcp", "args"], why, None);
    }
    if let Some(exec) = &config.exec
        && let Err(why) =
            <crate::phase::exec::ExecPhase as crate::phase::Phase>::validate(&exec.value)
    {
        return err(&["exec"], why, None);
    }
    if let Some(bad) = config
        .listen
        .headers
        .iter()
        .find(|h| http::HeaderName::from_bytes(h.as_bytes()).is_err())
    {
        return err(
            &["listen", "headers"],
            format!("`{bad}` in `listen.headers` is not a header name"),
            None,
        );
    }
    let e = &config.expect;
    if let Some(both) = e
        .deny
        .iter()
        .find(|d| e.allow.iter().any(|a| a.value == d.value))
    {
        let (line, column) = (
            both.referenced.line() as usize,
            both.referenced.column() as usize,
        );
        return Err(FileError::at(
            path,
            src,
            line,
            column,
            format!("finding `{}` is both allowed and denied", both.value),
            None,
        ));
    }
    if let Some(skipped) = e
        .delivery
        .keys()
        .find(|k| config.skip.iter().any(|s| s.value == **k))
    {
        return err(
            &["expect", "delivery", skipped],
            format!("`expect.delivery` names `{skipped}`, which `skip` leaves out"),
            None,
        );
    }
    for (name, hops) in matrix {
        if hops.is_empty() {
            return err(
                &["matrix", name],
                format!("chain `{name}` has no hop (the direct stream is always measured)"),
                None,
            );
        }
        if let Some(why) = crate::intermediary::chain_problem(hops) {
            return err(&["matrix", name], format!("chain `{name}`: {why}"), None);
        }
    }
    Ok(())
}

/// A `target.cwd` that does not exist (checked on load from a file: it is relative to the file).
fn check_cwd(config: &Config, path: &Path, src: &str) -> Result<(), FileError> {
    let err = |keys: &[&str], msg: String, help: Option<String>| {
        let (line, column) = key_location(src, keys);
        Err(FileError::at(path, src, line, column, msg, help))
    };
    if let Some(cwd) = &config.target.cwd {
        let dir = path.parent().unwrap_or(Path::new(".")).join(cwd);
        if !cwd.as_os_str().is_empty() && !dir.is_dir() {
            return err(
                &["target", "cwd"],
                format!("`target.cwd` `{}` is not a directory", cwd.display()),
                Some(format!("it is relative to this file: {}", dir.display())),
            );
        }
    }
    Ok(())
}

/// Values that parse but cannot work: caught here, with their place, instead of failing at run time.
fn check_values(config: &Config, path: &Path, src: &str) -> Result<(), FileError> {
    let err = |keys: &[&str], msg: String, help: Option<String>| {
        let (line, column) = key_location(src, keys);
        Err(FileError::at(path, src, line, column, msg, help))
    };
    let url = &config.target.url;
    if !url.path.starts_with('/') {
        return err(
            &["target", "url", "path"],
            format!("`target.url.path` must start with `/`, not `{}`", url.path),
            Some(format!("write `/{}`", url.path)),
        );
    }
    if let Err(invalid) = config.request().validate() {
        return match invalid {
            Invalid::Method(m) => err(
                &["target", "url", "method"],
                format!("`target.url.method` `{m}` is not an HTTP method"),
                Some("e.g. GET or POST".into()),
            ),
            Invalid::HeaderName(k) => err(
                &["target", "url", "headers", &k],
                format!("`{k}` in `target.url.headers` is not a valid header name"),
                None,
            ),
            Invalid::HeaderValue(k) => err(
                &["target", "url", "headers", &k],
                format!("the value of `{k}` in `target.url.headers` is not a valid header value"),
                None,
            ),
            Invalid::ZeroEvents => err(
                &["listen", "events"],
                "`listen.events` must be at least 1".into(),
                Some("leave it out to listen without an event limit".into()),
            ),
            Invalid::ZeroDuration => err(
                &["listen", "duration_ms"],
                "`listen.duration_ms` must be above 0".into(),
                None,
            ),
            Invalid::ZeroTokenHold => err(
                &["expect", "token_hold_ms"],
                "`expect.token_hold_ms` must be above 0".into(),
                Some("100 ms is about where people see a stall".into()),
            ),
        };
    }
    if let Some(n) = config.listen.streams
        && (n == 0 || n > crate::load::MAX_STREAMS)
    {
        return err(
            &["listen", "streams"],
            format!(
                "`listen.streams` must be 1 to {}, not {n}",
                crate::load::MAX_STREAMS
            ),
            Some("leave it out to measure one stream per chain".into()),
        );
    }
    if config.listen.ramp_ms.is_some() && config.listen.streams.is_none() {
        return err(
            &["listen", "ramp_ms"],
            "`listen.ramp_ms` needs `listen.streams`".into(),
            None,
        );
    }
    if config.listen.ramp_ms.is_some_and(|r| r > 60_000) {
        return err(
            &["listen", "ramp_ms"],
            "`listen.ramp_ms` is at most 60000".into(),
            None,
        );
    }
    if let Some(spec) = &config.matrix {
        let m = spec.chains();
        if m.is_empty() {
            return err(
                &["matrix"],
                "`matrix` names no chain, so the gate would pass having measured nothing".into(),
                Some(
                    "leave `matrix` out for the default matrix, or name a chain or a selection (`real`)"
                        .into(),
                ),
            );
        }
        if let Some((name, _)) = m.iter().find(|(n, _)| n.trim().is_empty()) {
            return err(
                &["matrix"],
                format!("a chain in `matrix` has an empty name (`{name}`)"),
                None,
            );
        }
    }
    Ok(())
}

/// Read and validate a config file.
pub fn load(path: &Path) -> Result<Loaded, FileError> {
    let src = crate::yaml::read_file(path)?;
    let loaded = parse(path, &src)?;
    check_cwd(&loaded.config, path, &src)?;
    Ok(loaded)
}

/// A config for `--url` or `-- COMMAND` alone, without a file.
pub fn from_flags() -> Loaded {
    let config = Config::empty();
    Loaded {
        path: None,
        matrix: default_matrix(),
        config,
    }
}

impl Config {
    /// What the file says of the request: `target.url`'s method, headers and body, `listen`'s time
    /// and event limits, and `secret_headers`.
    pub fn request(&self) -> RequestSpec {
        let url = &self.target.url;
        RequestSpec {
            method: Some(url.method.clone()),
            headers: url
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body: url.body.clone(),
            duration: Some(Duration::from_millis(self.listen.duration_ms)),
            max_events: self.listen.events,
            secret_headers: self.secret_headers.clone(),
            watch_headers: self.listen.headers.clone(),
            mcp: self.target.mcp.clone().or_else(|| {
                (self.target.protocol == Some(crate::protocol::Protocol::Mcp))
                    .then(crate::protocol::McpTool::default)
            }),
            protocol: self.target.protocol,
            token_hold: self.expect.token_hold_ms.map(Duration::from_millis),
            ..RequestSpec::default()
        }
    }

    /// A config with only defaults (the target comes from the command line).
    fn empty() -> Config {
        Config {
            target: TargetConfig::default(),
            listen: Listen::default(),
            matrix: None,
            skip: Vec::new(),
            expect: GateExpect::default(),
            secret_headers: Vec::new(),
            exec: None,
        }
    }
}

/// The commented starter file `ssegate init` writes.
pub const STARTER: &str = r#"# ssegate.yaml — does my SSE endpoint survive real infrastructure?
# Run: ssegate check            (or: ssegate check -- node server.js)

target:
  # How to start your server. {port} is replaced by a free port (also exported as PORT).
  command: ["node", "server.js"]
  # cwd: .                      # relative to this file
  # env: {NODE_ENV: production}
  url:
    path: /events               # the stream's path
    method: GET
    # headers: {Authorization: "Bearer …"}   # never printed
    # body: '{"prompt": "hi"}'  # for POST streams
  # stack: express              # express | fastify | nextjs | starlette | flask | django | go | rails | axum
  #                             # (picks the fix snippets; recognised from headers/command when absent)
  # protocol: auto              # auto | eventsource | openai-chat | openai-responses | anthropic | ai-sdk
  #                             # | ndjson (LLM token streams: TTFT, inter-token latency, truncation) | mcp
  # mcp: {tool: slow_task, args: {seconds: 5}}   # an MCP server: open a session, call this tool
  ready:
    # http: /health             # GET this until it answers, or:
    # log: listening            # wait for this text in the server's output
    timeout_ms: 15000

listen:
  # events: 10                  # stop after this many events (endless streams)
  duration_ms: 20000            # and never listen longer than this
  # streams: 500                # also open this many concurrent streams per chain: does it hold them?
  # ramp_ms: 1000               # opened evenly over this long (default: 2 ms per stream)
  # headers: [X-Tenant]         # also check these cross every chain once and unchanged (as
  #                             # Mcp-Session-Id, Authorization, Origin, Content-Type always are)

# matrix:                       # chains to run, origin side first; default: one chain per hop
#   nginx-default: [{nginx: default}]
#   next-behind-nginx: [compression, {nginx: default}]
# matrix: real                  # or a selection: real (every real proxy installed here), all, default,
#                               # builtins, a program (caddy), or a list: [nginx, caddy, builtins]

# A client suite run directly and through every chain ({url}: the chain's entry with the path, {base}:
# without it); a chain fails when the suite fails through it and passes directly.
# exec: "npx @modelcontextprotocol/conformance server --url {url}"

# I do not deploy behind these: drop chains of the (default) matrix by name.
# skip: [compression, content-length]

expect:
  # delivery:                   # per chain; a chain named here fails the gate even if only an
  #   content-length: held-until-end   # operator could fix it
  allow: []                     # finding ids that never fail the gate
  deny: []                      # finding ids that always fail it
  fail_on: error                # least severity of a direct finding that fails: error | warning | info
  # token_hold_ms: 100          # a token stream's delta this late against the origin counts as held
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_file_parses() {
        let l = parse(Path::new("ssegate.yaml"), STARTER).unwrap();
        assert_eq!(l.config.target.command.as_ref().unwrap()[0], "node");
        assert_eq!(l.matrix.len(), default_matrix().len());
        assert_eq!(l.config.expect.fail_on, Severity::Error);
    }

    #[test]
    fn a_matrix_may_be_a_selection_of_standard_chains() {
        let parse_matrix = |m: &str| {
            parse(
                Path::new("s.yaml"),
                &format!("target:\n  command: [x]\nmatrix: {m}\n"),
            )
        };
        let real = parse_matrix("real").unwrap();
        for name in [
            "nginx-default",
            "caddy-encode",
            "haproxy-no-delay",
            "varnish-default",
        ] {
            assert!(
                real.matrix.contains_key(name),
                "{name}: {:?}",
                real.matrix.keys()
            );
        }
        assert!(
            !real.matrix.contains_key("compression"),
            "real has no models"
        );
        // An LLM gateway cannot carry a plain event stream: it is named, not implied by `real`.
        assert!(!real.matrix.contains_key("litellm-default"));
        let gateway = parse_matrix("litellm").unwrap();
        assert!(gateway.matrix.contains_key("litellm-default"));
        let all = parse_matrix("all").unwrap();
        assert_eq!(
            all.matrix.len(),
            real.matrix.len() + HopSpec::selection("builtins").unwrap().len()
        );
        let some = parse_matrix("[caddy, builtins]").unwrap();
        assert!(
            some.matrix.contains_key("caddy-default") && some.matrix.contains_key("compression")
        );
        assert!(!some.matrix.contains_key("nginx-default"));
        let e = parse_matrix("[caddy, nginxx]").unwrap_err();
        let text = format!("{e:?}") + &e.to_string();
        assert!(
            text.contains("unknown matrix selection `nginxx`") && text.contains("nginx"),
            "{text}"
        );
        assert!(e.to_string().contains("s.yaml:3:"), "{e}");
    }

    #[test]
    fn errors_point_at_the_place() {
        let src = "target:\n  command: [x]\nexpect:\n  deny: [held-until-edn]\n";
        let e = parse(Path::new("s.yaml"), src).unwrap_err();
        let FileError::Invalid(inv) = e else { panic!() };
        assert_eq!(inv.line, 4);
        assert!(inv.help.unwrap().contains("held-until-end"));
        let src = "target:\n  command: [x]\nexpect:\n  delivery:\n    nginx-defualt: streamed\n";
        let e = parse(Path::new("s.yaml"), src).unwrap_err();
        let FileError::Invalid(inv) = e else { panic!() };
        assert_eq!(inv.line, 5);
        assert!(inv.help.unwrap().contains("did you mean `nginx-default`"));
        let src = "target:\n  comand: [x]\n";
        let e = parse(Path::new("s.yaml"), src).unwrap_err();
        assert!(e.to_string().contains("s.yaml:2:3"), "{e}");
    }

    #[test]
    fn nested_keys_are_located_in_block_and_flow_style() {
        let src = "target:\n  url: {path: /x}\n  ready:\n    http: /h\n    log: up\nexpect:\n  delivery: {path: streamed}\n";
        assert_eq!(key_location(src, &["target", "ready", "log"]), (5, 5));
        assert_eq!(key_location(src, &["expect", "delivery", "path"]), (7, 14));
        let e = parse(Path::new("s.yaml"), src).unwrap_err();
        let FileError::Invalid(inv) = e else { panic!() };
        assert_eq!((inv.line, inv.column), (7, 14), "{}", inv.message);
    }

    #[test]
    fn cwd_is_relative_to_the_config_file() {
        let l = parse(
            Path::new("/srv/app/ssegate.yaml"),
            "target:\n  command: [node, s.js]\n  cwd: web\n",
        )
        .unwrap();
        assert_eq!(
            l.command(None).unwrap().cwd,
            Some(PathBuf::from("/srv/app/web"))
        );
        let o = l.command(Some(vec!["python3".into()])).unwrap();
        assert_eq!(o.argv, vec!["python3"]);
        assert_eq!(
            o.cwd, None,
            "a command line command runs where it was typed"
        );
    }
}
