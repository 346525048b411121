//! ssegate's own MCP client over Streamable HTTP (revision 2025-11-25): it opens a session the way the
//! official clients do, then gives the probe the `tools/call` request whose answer is the stream judged.
//!
//! 1. `POST initialize` with `Accept: application/json, text/event-stream`; the answer (JSON, or an event
//!    stream holding it) gives the revision, and `Mcp-Session-Id` the session when the server keeps one.
//! 2. `POST notifications/initialized` with the session and `MCP-Protocol-Version`: 202.
//! 3. `POST tools/list`: the tool asked for must be there (else the first is taken).
//! 4. The call ([`call_request`]): `POST tools/call` with a `progressToken`, made by the probe, so its
//!    progress notifications and its result are the recording's events, timed like any stream's.
//!
//! Every request carries the user's own headers (credentials); each has a deadline and each answer a size
//! bound. The session id is registered as a secret: it never reaches a report.

use std::time::{Duration, Instant};

use crate::probe::ProbeRequest;
use crate::protocol::Protocol;
use crate::verdict::mcp::{McpSession, McpStep};

/// The revision the client offers.
pub const REVISION: &str = "2025-11-25";
/// The JSON-RPC id of the call (its result is told from notifications by it).
pub const CALL_ID: &str = "ssegate-call";
/// The progress token the call asks for.
pub const PROGRESS_TOKEN: &str = "ssegate-progress";
/// Bytes of an opening step's answer read at most.
const MAX_ANSWER: usize = 1 << 20;
/// The longest an opening step may take.
const STEP_WITHIN: Duration = Duration::from_secs(10);

/// A session opened (or not): what reports show, and what the call needs.
#[derive(Debug, Clone, Default)]
pub struct Opened {
    pub report: McpSession,
    /// The session id, for the call's request only (never printed: registered as a secret).
    session_id: Option<String>,
    /// When the opening started: the `initialize` request is the witness's first after it.
    pub started: Option<Instant>,
    /// `initialize`'s request headers as sent and its answer's as received (values as they went:
    /// compared by the header integrity check, never printed).
    pub initialize_heads: Option<(Head, Head)>,
}

/// A head's header lines, as they went.
pub type Head = Vec<(String, String)>;

/// The headers every request of the session carries: the user's own, then the transport's.
fn headers(
    req: &ProbeRequest,
    session: Option<&str>,
    version: Option<&str>,
) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = req
        .headers
        .iter()
        .filter(|(k, _)| {
            ![
                "accept",
                "content-type",
                "mcp-session-id",
                "mcp-protocol-version",
            ]
            .iter()
            .any(|n| k.eq_ignore_ascii_case(n))
        })
        .cloned()
        .collect();
    h.push((
        "Accept".into(),
        "application/json, text/event-stream".into(),
    ));
    h.push(("Content-Type".into(), "application/json".into()));
    if let Some(v) = version {
        h.push(("MCP-Protocol-Version".into(), v.into()));
    }
    if let Some(s) = session {
        h.push(("Mcp-Session-Id".into(), s.into()));
    }
    h
}

/// One opening step's answer: status, the session header, and the JSON-RPC message answering `id`.
struct Answer {
    status: u16,
    /// The answer's header lines.
    headers: Vec<(String, String)>,
    session: Option<String>,
    kind: String,
    message: Option<serde_json::Value>,
}

/// Send one JSON-RPC message of the opening.
async fn send(
    client: &reqwest::Client,
    req: &ProbeRequest,
    body: &serde_json::Value,
    session: Option<&str>,
    version: Option<&str>,
) -> Result<Answer, String> {
    let mut r = client.post(&req.url).body(body.to_string());
    for (k, v) in headers(req, session, version) {
        r = r.header(k, v);
    }
    let within = STEP_WITHIN.min(req.limits.duration);
    let resp = tokio::time::timeout(within, r.send())
        .await
        .map_err(|_| format!("no answer within {}", crate::text::human_duration(within)))?
        .map_err(|e| crate::secrets::scrub(&crate::error::error_chain(&e)).into_owned())?;
    let status = resp.status().as_u16();
    let head: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect();
    let session = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let ct = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let body = read_bounded(resp, within).await?;
    let (kind, message) = if body.is_empty() {
        ("empty".to_string(), None)
    } else if ct.starts_with("text/event-stream") {
        ("event-stream".to_string(), message_in_stream(&body))
    } else {
        (
            "json".to_string(),
            serde_json::from_slice::<serde_json::Value>(&body).ok(),
        )
    };
    Ok(Answer {
        status,
        headers: head,
        session,
        kind,
        message,
    })
}

/// The body of an answer, at most [`MAX_ANSWER`] bytes, within `within`.
async fn read_bounded(mut resp: reqwest::Response, within: Duration) -> Result<Vec<u8>, String> {
    let deadline = tokio::time::Instant::now() + within;
    let mut body = Vec::new();
    loop {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .map_err(|_| "the answer did not end in time".to_string())?
            .map_err(|e| format!("failed to read the answer: {e}"))?;
        let Some(c) = chunk else { break };
        body.extend_from_slice(&c);
        if body.len() > MAX_ANSWER {
            return Err(format!("the answer is over {MAX_ANSWER} bytes"));
        }
    }
    Ok(body)
}

/// The first JSON-RPC response (a message with an `id` and a `result` or `error`) in an event stream.
fn message_in_stream(body: &[u8]) -> Option<serde_json::Value> {
    let mut parser = crate::sse::Parser::new();
    let mut items = Vec::new();
    parser.feed(body, &mut items);
    parser.finish(&mut items);
    items.into_iter().find_map(|i| match i {
        crate::sse::Item::Event(e) => serde_json::from_str::<serde_json::Value>(&e.data)
            .ok()
            .filter(|v| {
                v.get("id").is_some() && (v.get("result").is_some() || v.get("error").is_some())
            }),
        _ => None,
    })
}

/// Open a session with the server at `req.url` (through whatever chain that URL enters), as the
/// official clients do. Never an error: a step that fails ends the opening, and the report says which.
pub async fn open(req: &ProbeRequest) -> Opened {
    let mut out = Opened::default();
    out.report.offered = REVISION.into();
    let client = match crate::probe::client_for(req.limits.connect) {
        Ok(c) => c,
        Err(e) => {
            out.report.steps.push(step(
                "initialize",
                None,
                Instant::now(),
                false,
                crate::error::error_chain(&e),
            ));
            return out;
        }
    };
    let asked = req.mcp.clone().unwrap_or_default();
    // 1. initialize
    let started = Instant::now();
    out.started = Some(started);
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": REVISION,
        "capabilities": {},
        "clientInfo": {"name": "ssegate", "version": env!("CARGO_PKG_VERSION")},
    }});
    let a = match send(&client, req, &init, None, None).await {
        Ok(a) => a,
        Err(e) => {
            out.report
                .steps
                .push(step("initialize", None, started, false, e));
            return out;
        }
    };
    out.initialize_heads = Some((headers(req, None, None), a.headers.clone()));
    let result = a.message.as_ref().and_then(|m| m.get("result"));
    let ok = (200..300).contains(&a.status) && result.is_some();
    out.report.steps.push(step(
        "initialize",
        Some(&a),
        started,
        false,
        if ok { a.kind.clone() } else { why(&a) },
    ));
    if !ok {
        return out;
    }
    out.report.revision = result
        .and_then(|r| r.get("protocolVersion"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    if let Some(s) = &a.session {
        crate::secrets::register(s);
        out.report.session_id_len = Some(s.len());
    }
    out.session_id = a.session;
    let session = out.session_id.clone();
    let version = out.report.revision.clone();
    // 2. notifications/initialized
    let started = Instant::now();
    let note = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let a = match send(&client, req, &note, session.as_deref(), version.as_deref()).await {
        Ok(a) => a,
        Err(e) => {
            out.report.steps.push(step(
                "notifications/initialized",
                None,
                started,
                session.is_some(),
                e,
            ));
            return out;
        }
    };
    let ok = (200..300).contains(&a.status);
    let answer = if ok { a.kind.clone() } else { why(&a) };
    out.report.steps.push(step(
        "notifications/initialized",
        Some(&a),
        started,
        session.is_some(),
        answer,
    ));
    if !ok {
        return out;
    }
    // 3. tools/list
    let started = Instant::now();
    let list = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let a = match send(&client, req, &list, session.as_deref(), version.as_deref()).await {
        Ok(a) => a,
        Err(e) => {
            out.report
                .steps
                .push(step("tools/list", None, started, session.is_some(), e));
            return out;
        }
    };
    let tools: Vec<String> = a
        .message
        .as_ref()
        .and_then(|m| m["result"]["tools"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect();
    let tool = match &asked.tool {
        Some(t) if tools.contains(t) => Some(t.clone()),
        Some(_) => None,
        None => tools.first().cloned(),
    };
    let ok = (200..300).contains(&a.status) && tool.is_some();
    let answer = match (&asked.tool, ok) {
        (_, true) => a.kind.clone(),
        (Some(t), false) if (200..300).contains(&a.status) => {
            format!(
                "no tool `{t}` among {}",
                if tools.is_empty() {
                    "none".into()
                } else {
                    tools.join(", ")
                }
            )
        }
        (None, false) if (200..300).contains(&a.status) => "no tools".into(),
        _ => why(&a),
    };
    out.report.steps.push(step(
        "tools/list",
        Some(&a),
        started,
        session.is_some(),
        answer,
    ));
    out.report.tool = tool;
    out.report.established = ok;
    out
}

/// What went wrong with an answer, in a few words (a JSON-RPC error's message when it has one).
fn why(a: &Answer) -> String {
    match a
        .message
        .as_ref()
        .and_then(|m| m["error"]["message"].as_str())
    {
        Some(m) => format!("error: {}", crate::text::truncate_at_char_boundary(m, 120)),
        None if (200..300).contains(&a.status) => format!("{} without a JSON-RPC result", a.kind),
        None => format!("HTTP {}", a.status),
    }
}

fn step(
    name: &'static str,
    a: Option<&Answer>,
    started: Instant,
    with_session: bool,
    answer: String,
) -> McpStep {
    let status = a.map_or(0, |a| a.status);
    let ok = a.is_some_and(|a| (200..300).contains(&a.status))
        && !answer.starts_with("no ")
        && !answer.starts_with("error")
        && !answer.contains("without a JSON-RPC");
    McpStep {
        name,
        status,
        took: started.elapsed(),
        with_session,
        answer,
        ok,
    }
}

/// The probe's request for the session's `tools/call`: a POST with the session's headers and a
/// progress token; None when the session was not opened.
pub fn call_request(req: &ProbeRequest, opened: &Opened) -> Option<ProbeRequest> {
    if !opened.report.established {
        return None;
    }
    let tool = opened.report.tool.clone()?;
    let args: serde_json::Value = req
        .mcp
        .as_ref()
        .and_then(|m| m.args.as_deref())
        .and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    let mut call = req.clone();
    call.method = "POST".into();
    call.protocol = Protocol::Mcp;
    call.headers = headers(
        req,
        opened.session_id.as_deref(),
        opened.report.revision.as_deref(),
    );
    call.body = Some(
        serde_json::json!({"jsonrpc": "2.0", "id": CALL_ID, "method": "tools/call", "params": {
            "name": tool, "arguments": args, "_meta": {"progressToken": PROGRESS_TOKEN},
        }})
        .to_string(),
    );
    Some(call)
}
