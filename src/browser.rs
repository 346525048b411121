//! A real browser as a second probe: headless Chromium, driven over WebDriver (chromedriver, with the
//! `fantoccini` client), opens the stream with `new EventSource(url)` (or, for a request EventSource
//! cannot make, a POST, a body, headers, with `fetch()` and a reader that parses the body as the HTML
//! standard says) and records, on the page's own clock, when it opened, when each event was dispatched
//! and when it failed or ended.
//!
//! Chromium and chromedriver come from Debian (`chromium`, `chromium-driver`). chromedriver runs as a
//! child of ssegate in its own process group on a reserved 127.0.0.1 port, and starts Chromium as its own
//! child in that group, so dropping [`Browser`] stops both by the group's id on every exit path. Chromium
//! runs with a private, empty profile (`--user-data-dir` in a private temp dir), headless, without a
//! sandbox (ssegate may run as root), GPU, background networking, first-run UI, component updates,
//! sync or QUIC, and with no proxy.
//!
//! The page is `about:blank`, and Chromium's same-origin checks are off in that private profile
//! (`--disable-web-security`), so the page may open an `EventSource` on any endpoint without the
//! endpoint sending CORS headers (the endpoint's own page, which is same-origin, needs none either). The
//! network stack is unchanged: HTTP/1.1 keeps its six connections per host, HTTP/2 is negotiated by ALPN
//! over TLS, and a certificate of ssegate's own authority ([`crate::tls`]) is trusted by its key's hash
//! (`--ignore-certificate-errors-spki-list`), nothing else.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::proc::ChildGuard;

/// How long chromedriver has to answer, and a session to open.
const START_WITHIN: Duration = Duration::from_secs(30);
/// How often the page's record is read while a stream is open.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// Events kept per stream on the page.
pub const EVENTS_KEPT: usize = 1_000;
/// The longest one WebDriver command may take (a navigation to `about:blank`, a script).
const COMMAND_WITHIN: Duration = Duration::from_secs(30);
/// Log lines shown when chromedriver fails.
const LOG_LINES: usize = 20;

/// The command that installs what the browser probe needs.
pub const INSTALL: &str = "apt-get install -y chromium chromium-driver";

#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("failed to find {what}; install it with `{INSTALL}`")]
    Missing { what: &'static str },
    #[error("failed to start chromedriver")]
    Spawn(#[source] std::io::Error),
    #[error("failed to start a Chromium session through chromedriver within {}s; last log lines:\n{log}", START_WITHIN.as_secs())]
    Session { log: String },
    #[error("failed to drive Chromium: {0}")]
    Drive(String),
}

/// Why the browser probe cannot run here, or None when Chromium and chromedriver are installed.
pub fn missing() -> Option<String> {
    match (chromium(), chromedriver()) {
        (Some(_), Some(_)) => None,
        (None, _) => Some(format!(
            "Chromium is not installed (`chromium`); install it with `{INSTALL}`"
        )),
        (_, None) => Some(format!(
            "chromedriver is not installed (`chromium-driver`); install it with `{INSTALL}`"
        )),
    }
}

fn chromium() -> Option<PathBuf> {
    std::env::var_os("SSEGATE_CHROMIUM")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| crate::proc::which("chromium"))
        .or_else(|| crate::proc::which("chromium-browser"))
}

fn chromedriver() -> Option<PathBuf> {
    std::env::var_os("SSEGATE_CHROMEDRIVER")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| crate::proc::which("chromedriver"))
}

/// One `EventSource` as the page saw it; offsets from the instant the page created it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PageStream {
    /// When `open` fired (the response headers were accepted).
    #[serde(with = "opt_ms")]
    pub opened: Option<Duration>,
    /// Each dispatched event: when, its `lastEventId`, its type and its data length.
    pub events: Vec<PageEvent>,
    /// Events beyond [`EVENTS_KEPT`], dispatched but not kept.
    pub events_dropped: u64,
    /// When `error` first fired: the stream ended or failed (the browser then reconnects, or gives up).
    #[serde(with = "opt_ms")]
    pub failed: Option<Duration>,
    /// Whether the browser gave up for good (`readyState` CLOSED: a non-200, a wrong type, a 204).
    pub gave_up: bool,
}

/// One event dispatched on the page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageEvent {
    #[serde(with = "ms")]
    pub at: Duration,
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data_len: usize,
}

mod ms {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v: f64 = serde::Deserialize::deserialize(d)?;
        Ok(Duration::from_secs_f64(v.max(0.0) / 1e3))
    }
}

mod opt_ms {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::ms::serialize(d, s),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let v: Option<f64> = serde::Deserialize::deserialize(d)?;
        Ok(v.map(|v| Duration::from_secs_f64(v.max(0.0) / 1e3)))
    }
}

/// What to open and for how long.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub url: String,
    /// `EventSource`s opened on the URL at once (one, or seven for the connection limit).
    pub streams: usize,
    /// Event types to listen for besides `message` (the types ssegate's own probe saw).
    pub types: Vec<String>,
    /// How long to watch at most.
    pub duration: Duration,
    /// Stop once the first stream has this many events.
    pub max_events: Option<usize>,
    /// A request `EventSource` cannot make (another method, a body, headers): the page reads the
    /// stream with `fetch()` and parses it itself, as pages that POST for a stream do.
    pub fetch: Option<FetchInit>,
}

/// The request a page's `fetch()` reader sends.
#[derive(Debug, Clone, Serialize)]
pub struct FetchInit {
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// How the page read the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reader {
    /// `new EventSource(url)`: a GET, as browsers send it.
    EventSource,
    /// `fetch()` with the request's method, headers and body, its body read and parsed by the page.
    Fetch,
}

/// What Chromium adds to its TMPDIR for its singleton socket.
const CHROMIUM_SOCKET: &str = "/.org.chromium.Chromium.XXXXXX/SingletonSocket";
/// Longest Unix socket path (`sun_path` is 108 bytes with its NUL).
const SOCKET_PATH_MAX: usize = 107;

/// A running chromedriver and its Chromium; dropping it stops both.
pub struct Browser {
    client: Option<fantoccini::Client>,
    driver: ChildGuard,
    /// chromedriver's log, and Chromium's profile.
    _dir: tempfile::TempDir,
    /// Chromium's temporary files, when the private directory's path is too long for its socket.
    _short_tmp: Option<tempfile::TempDir>,
    /// `Chromium 156.0.8078.114`, as the session reported it.
    pub version: String,
}

impl Browser {
    /// Start chromedriver and open a headless Chromium session.
    pub async fn start() -> Result<Browser, BrowserError> {
        let chrome = chromium().ok_or(BrowserError::Missing {
            what: "Chromium (`chromium`)",
        })?;
        let driver_bin = chromedriver().ok_or(BrowserError::Missing {
            what: "chromedriver (`chromium-driver`)",
        })?;
        let dir = crate::proc::private_dir("chromium").map_err(BrowserError::Spawn)?;
        let log = dir.path().join("chromedriver.log");
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map_err(BrowserError::Spawn)?
            .port();
        // Its log is private (0600, in the private dir) and says nothing below a warning: at the default
        // level it writes every command, with the URL, its token and the page's headers.
        std::fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&log)
            .map_err(BrowserError::Spawn)?;
        // Chromium puts a Unix socket under its TMPDIR (`.org.chromium.Chromium.XXXXXX/SingletonSocket`), and
        // a socket's path has at most 107 bytes: under a long `$TMPDIR` it cannot start at all. Then its
        // temporary files go to a private directory of their own in /tmp.
        let mut tmp = dir.path().join("tmp");
        let short = if tmp.as_os_str().len() + CHROMIUM_SOCKET.len() > SOCKET_PATH_MAX {
            let d =
                crate::proc::private_dir_in("c", Path::new("/tmp")).map_err(BrowserError::Spawn)?;
            tmp = d.path().to_path_buf();
            Some(d)
        } else {
            std::fs::create_dir_all(&tmp).map_err(BrowserError::Spawn)?;
            None
        };
        let mut cmd = Command::new(driver_bin);
        // chromedriver listens on loopback only unless `--allowed-ips` is given (which binds every
        // interface and filters clients itself). Chromium's own temporary files go to the private dir.
        cmd.arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .arg("--log-level=WARNING")
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let driver = ChildGuard::spawn(&mut cmd, "chromedriver").map_err(BrowserError::Spawn)?;
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--no-proxy-server".into(),
            "--disable-web-security".into(),
            format!("--user-data-dir={}", dir.path().join("profile").display()),
        ];
        if let Some(spki) = crate::tls::local().ok().map(|t| t.spki_sha256_base64()) {
            args.push(format!("--ignore-certificate-errors-spki-list={spki}"));
        }
        let caps: serde_json::Map<String, serde_json::Value> =
            serde_json::from_value(serde_json::json!({
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chrome, "args": args},
            }))
            .map_err(|e| BrowserError::Drive(e.to_string()))?;
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + START_WITHIN;
        // The WebDriver client's TLS stack takes the process's default crypto provider, which rustls
        // cannot pick by itself when two are compiled in (the container feature brings `ring`): say
        // which (a second call finds it installed, which is fine).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut builder =
            fantoccini::ClientBuilder::rustls().map_err(|e| BrowserError::Drive(e.to_string()))?;
        builder.capabilities(caps);
        let mut browser = Browser {
            client: None,
            driver,
            _dir: dir,
            _short_tmp: short,
            version: String::new(),
        };
        let client = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, builder.connect(&url)).await {
                Ok(Ok(c)) => break c,
                // Not listening yet: ask again, until the deadline.
                Ok(Err(_)) if Instant::now() < deadline && browser.driver.try_wait().is_none() => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => {
                    return Err(BrowserError::Session {
                        log: crate::proc::tail(&log, LOG_LINES),
                    });
                }
            }
        };
        browser.version = match client.capabilities() {
            Some(c) => format!(
                "Chromium {}",
                c.get("browserVersion")
                    .and_then(|v| v.as_str())
                    .unwrap_or("(version unknown)")
            ),
            None => "Chromium".into(),
        };
        browser.client = Some(client);
        Ok(browser)
    }

    fn client(&self) -> Result<&fantoccini::Client, BrowserError> {
        self.client
            .as_ref()
            .ok_or_else(|| BrowserError::Drive("no session".into()))
    }

    /// Open `req.streams` `EventSource`s on `req.url` from `about:blank` and record them until the first
    /// has ended or failed (with more than one: until every one opened or failed), `max_events` came,
    /// or `duration` passed; then close them.
    pub async fn watch(&self, req: &PageRequest) -> Result<Vec<PageStream>, BrowserError> {
        let c = self.client()?;
        // Every WebDriver command within its deadline: a browser that stops answering is an error, not
        // a hang.
        async fn within<T>(
            what: &str,
            f: impl std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
        ) -> Result<T, BrowserError> {
            match tokio::time::timeout(COMMAND_WITHIN, f).await {
                Ok(r) => r.map_err(|e| BrowserError::Drive(format!("{what}: {e}"))),
                Err(_) => Err(BrowserError::Drive(format!(
                    "{what}: no answer within {} s",
                    COMMAND_WITHIN.as_secs()
                ))),
            }
        }
        within("open about:blank", c.goto("about:blank")).await?;
        within(
            "open the EventSources",
            c.execute(
                OPEN_SCRIPT,
                vec![
                    req.url.clone().into(),
                    req.streams.into(),
                    serde_json::json!(req.types),
                    EVENTS_KEPT.into(),
                    serde_json::json!(req.max_events),
                    serde_json::to_value(&req.fetch)
                        .map_err(|e| BrowserError::Drive(e.to_string()))?,
                ],
            ),
        )
        .await?;
        let started = Instant::now();
        let mut streams: Vec<PageStream>;
        loop {
            tokio::time::sleep(POLL_EVERY).await;
            let raw = within(
                "read the page's record",
                c.execute("return JSON.stringify(window.__ssegate.streams);", vec![]),
            )
            .await?;
            streams = serde_json::from_str(raw.as_str().unwrap_or("[]"))
                .map_err(|e| BrowserError::Drive(format!("the page's record: {e}")))?;
            let first = streams.first();
            let done = if req.streams <= 1 {
                first.is_some_and(|s| {
                    s.failed.is_some() || req.max_events.is_some_and(|m| s.events.len() >= m)
                })
            } else {
                streams
                    .iter()
                    .all(|s| s.opened.is_some() || s.failed.is_some())
            };
            if done || started.elapsed() >= req.duration {
                break;
            }
        }
        let _ = within("close the EventSources", c.execute(CLOSE_SCRIPT, vec![])).await;
        Ok(streams)
    }

    /// End the session (Chromium exits), then stop chromedriver's group.
    pub async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), c.close()).await;
        }
    }
}

/// The page's side: open the streams, note `open`, every event of the listened types, `error`.
const OPEN_SCRIPT: &str = r#"
const [url, n, types, kept, max, init] = arguments;
const t0 = performance.now();
const now = () => Math.round((performance.now() - t0) * 1000) / 1000;
window.__ssegate = {streams: [], sources: []};
const record = (s, type, id, len) => {
  if (max !== null && s.events.length + s.events_dropped >= max) return;
  if (s.events.length < kept) {
    s.events.push({at: now(), id: id, type: type, data_len: len});
  } else {
    s.events_dropped += 1;
  }
};
// A fetch() reader: the request as given, the body parsed as the HTML standard's event-stream
// interpretation says (lines on CR, LF or CRLF; data, event, id; a blank line dispatches).
const readWithFetch = (s) => {
  const ctrl = new AbortController();
  window.__ssegate.sources.push({close: () => ctrl.abort()});
  const headers = new Headers();
  for (const [k, v] of init.headers) headers.append(k, v);
  fetch(url, {method: init.method, headers, body: init.body, signal: ctrl.signal, cache: "no-store"})
    .then(async (resp) => {
      s.opened = now();
      if (!resp.ok) { s.failed = now(); s.gave_up = true; return; }
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = "", data = [], type = "", id = "", first = true;
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        let text = dec.decode(value, {stream: true});
        if (first && text.length > 0) { if (text.charCodeAt(0) === 0xFEFF) text = text.slice(1); first = false; }
        buf += text;
        for (;;) {
          const i = buf.search(/\r|\n/);
          if (i < 0 || (buf[i] === "\r" && i === buf.length - 1)) break;
          const line = buf.slice(0, i);
          buf = buf.slice(i + (buf.startsWith("\r\n", i) ? 2 : 1));
          if (line === "") {
            if (data.length > 0) record(s, type || "message", id, data.join("\n").length);
            data = []; type = "";
            continue;
          }
          if (line[0] === ":") continue;
          const c = line.indexOf(":");
          const field = c < 0 ? line : line.slice(0, c);
          let v = c < 0 ? "" : line.slice(c + 1);
          if (v[0] === " ") v = v.slice(1);
          if (field === "data") data.push(v);
          else if (field === "event") type = v;
          else if (field === "id" && !v.includes("\0")) id = v;
        }
      }
      if (s.failed === null) s.failed = now();
    })
    .catch(() => { if (s.failed === null) s.failed = now(); });
};
for (let i = 0; i < n; i++) {
  const s = {opened: null, events: [], events_dropped: 0, failed: null, gave_up: false};
  window.__ssegate.streams.push(s);
  if (init !== null) { readWithFetch(s); continue; }
  const es = new EventSource(url);
  window.__ssegate.sources.push(es);
  es.onopen = () => { if (s.opened === null) s.opened = now(); };
  const on = (e) => record(s, e.type, e.lastEventId, e.data.length);
  for (const t of new Set(["message", ...types])) es.addEventListener(t, on);
  es.onerror = () => {
    if (s.failed === null) s.failed = now();
    if (es.readyState === 2) s.gave_up = true;
  };
}
return true;
"#;

const CLOSE_SCRIPT: &str = r#"
for (const es of (window.__ssegate || {sources: []}).sources) es.close();
return true;
"#;
