//! The fixture as an MCP server over Streamable HTTP (revision 2025-11-25), for a profile with `mcp: true`:
//! a cheap origin with exact send instants for MCP clients (ssegate's own, an official SDK's, a
//! conformance suite run with `--exec`).
//!
//! `initialize` is answered in JSON with a new `Mcp-Session-Id`. Every later request must carry a session
//! this fixture issued: without one it is 400, with an unknown one 404 (what a client sees when a
//! balancer sends it to a replica that never saw its session). A notification gets 202; `tools/list`
//! lists `slow_task`; `ping` answers `{}`; a `tools/call` is answered as an event stream that plays the
//! profile's schedule (progress notifications, then the result: [`super::profile::McpCall`]), each
//! event's send instant in the log as for any stream. `GET` is 405 (no standalone stream); `DELETE` ends
//! the session.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::profile::{McpCall, Profile};
use crate::Body;

/// The protocol revisions the fixture speaks; it answers `initialize` with the client's when it is one
/// of them, else with the first.
pub const REVISIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

/// The largest request body read.
const MAX_BODY: usize = 1 << 20;
/// How long a request body may take to arrive.
const BODY_WITHIN: Duration = Duration::from_secs(5);

/// The sessions one fixture issued.
pub type Sessions = Arc<Mutex<HashSet<String>>>;

/// What to do with an MCP request.
pub enum Answer {
    /// A complete response (JSON, an error, 202, 405).
    Done(Response<Body>),
    /// Play the profile's schedule as this `tools/call`'s event stream.
    Stream(Arc<Profile>),
}

fn full(status: StatusCode, content_type: Option<&str>, body: String) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(c).ok()) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, ct);
    }
    r
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    full(status, Some("application/json"), value.to_string())
}

fn rpc_error(
    status: StatusCode,
    id: serde_json::Value,
    code: i64,
    message: &str,
) -> Response<Body> {
    json(
        status,
        serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
    )
}

/// A new session id: unguessable enough for a test origin, unique within the process.
fn new_session() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("ssegate-{:016x}-{n}", h.finish())
}

/// Answer one request of the MCP transport.
pub async fn answer(
    req: http::Request<Incoming>,
    profile: &Arc<Profile>,
    sessions: &Sessions,
) -> Answer {
    let session = req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let known = |s: &str| sessions.lock().is_ok_and(|set| set.contains(s));
    match *req.method() {
        Method::POST => {}
        Method::DELETE => {
            let status = match session {
                None => StatusCode::BAD_REQUEST,
                Some(s) if sessions.lock().is_ok_and(|mut set| set.remove(&s)) => StatusCode::OK,
                Some(_) => StatusCode::NOT_FOUND,
            };
            return Answer::Done(full(status, None, String::new()));
        }
        _ => {
            let mut r = full(StatusCode::METHOD_NOT_ALLOWED, None, String::new());
            r.headers_mut().insert(
                http::header::ALLOW,
                HeaderValue::from_static("POST, DELETE"),
            );
            return Answer::Done(r);
        }
    }
    let body = match tokio::time::timeout(
        BODY_WITHIN,
        Limited::new(req.into_body(), MAX_BODY).collect(),
    )
    .await
    {
        Ok(Ok(c)) => c.to_bytes(),
        _ => {
            return Answer::Done(rpc_error(
                StatusCode::BAD_REQUEST,
                serde_json::Value::Null,
                -32700,
                "failed to read the request body",
            ));
        }
    };
    let Ok(msg) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return Answer::Done(rpc_error(
            StatusCode::BAD_REQUEST,
            serde_json::Value::Null,
            -32700,
            "parse error",
        ));
    };
    let id = msg.get("id").cloned();
    let method = msg
        .get("method")
        .and_then(|m| m.as_str())
        .unwrap_or_default();
    if method == "initialize" {
        let asked = msg["params"]["protocolVersion"]
            .as_str()
            .unwrap_or_default();
        let version = REVISIONS
            .iter()
            .find(|r| **r == asked)
            .unwrap_or(&REVISIONS[0]);
        let sid = new_session();
        if let Ok(mut set) = sessions.lock() {
            set.insert(sid.clone());
        }
        let mut r = json(
            StatusCode::OK,
            serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": false}},
                "serverInfo": {"name": "ssegate-fixture", "version": env!("CARGO_PKG_VERSION")},
            }}),
        );
        if let Ok(v) = HeaderValue::from_str(&sid) {
            r.headers_mut().insert("mcp-session-id", v);
        }
        return Answer::Done(r);
    }
    let id_or_null = id.clone().unwrap_or(serde_json::Value::Null);
    match &session {
        None => {
            return Answer::Done(rpc_error(
                StatusCode::BAD_REQUEST,
                id_or_null,
                -32000,
                "missing Mcp-Session-Id",
            ));
        }
        Some(s) if !known(s) => {
            return Answer::Done(rpc_error(
                StatusCode::NOT_FOUND,
                id_or_null,
                -32001,
                "session not found",
            ));
        }
        Some(_) => {}
    }
    let Some(id) = id else {
        // A notification (or a response to the server): accepted, no body.
        return Answer::Done(full(StatusCode::ACCEPTED, None, String::new()));
    };
    match method {
        "ping" => Answer::Done(json(
            StatusCode::OK,
            serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {}}),
        )),
        "tools/list" => Answer::Done(json(
            StatusCode::OK,
            serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [{
                "name": "slow_task",
                "description": "Reports progress on the fixture's schedule, then returns.",
                "inputSchema": {"type": "object", "properties": {}},
            }]}}),
        )),
        "tools/call" if msg["params"]["name"] == "slow_task" => {
            let token = msg["params"]["_meta"]["progressToken"].clone();
            let mut p = (**profile).clone();
            p.mcp_call = Some(McpCall {
                id: id.to_string(),
                progress_token: (!token.is_null()).then(|| token.to_string()),
            });
            Answer::Stream(Arc::new(p))
        }
        "tools/call" => Answer::Done(rpc_error(
            StatusCode::OK,
            id,
            -32602,
            "unknown tool (the fixture has `slow_task`)",
        )),
        _ => Answer::Done(rpc_error(StatusCode::OK, id, -32601, "method not found")),
    }
}

#[cfg(test)]
mod tests {
    use crate::origin::{FixtureServer, Profile};

    async fn post(
        c: &reqwest::Client,
        url: &str,
        session: Option<&str>,
        body: serde_json::Value,
    ) -> reqwest::Response {
        let mut r = c
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(s) = session {
            r = r.header("mcp-session-id", s);
        }
        r.send().await.unwrap()
    }

    #[tokio::test]
    async fn a_session_progress_stream_and_the_errors_a_client_meets() {
        let mut p = Profile::builtin("mcp").unwrap();
        p.events.gap_ms = 20;
        let srv = FixtureServer::start(p).await.unwrap();
        let url = format!("http://{}/mcp", srv.addr());
        let c = reqwest::Client::new();
        let init = post(
            &c,
            &url,
            None,
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}}),
        )
        .await;
        assert_eq!(init.status(), 200);
        let sid = init.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_string();
        let v: serde_json::Value = serde_json::from_str(&init.text().await.unwrap()).unwrap();
        assert_eq!(v["result"]["protocolVersion"], "2025-06-18");
        let note = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(post(&c, &url, Some(&sid), note.clone()).await.status(), 202);
        // Without a session, or with one the fixture never issued (another replica's).
        assert_eq!(post(&c, &url, None, note.clone()).await.status(), 400);
        assert_eq!(post(&c, &url, Some("nope"), note).await.status(), 404);
        let list = post(
            &c,
            &url,
            Some(&sid),
            serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await;
        let v: serde_json::Value = serde_json::from_str(&list.text().await.unwrap()).unwrap();
        assert_eq!(v["result"]["tools"][0]["name"], "slow_task");
        let call = post(
            &c,
            &url,
            Some(&sid),
            serde_json::json!({"jsonrpc": "2.0", "id": "c-7", "method": "tools/call", "params": {
                "name": "slow_task", "arguments": {}, "_meta": {"progressToken": "tok"}}}),
        )
        .await;
        assert_eq!(call.headers()["content-type"], "text/event-stream");
        assert_eq!(call.headers()["x-accel-buffering"], "no");
        let text = call.text().await.unwrap();
        let datas: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(datas.len(), 6, "{text}");
        assert_eq!(datas[0]["method"], "notifications/progress");
        assert_eq!(datas[0]["params"]["progressToken"], "tok");
        assert_eq!(datas[4]["params"]["progress"], 5);
        assert_eq!(datas[5]["id"], "c-7");
        assert!(datas[5]["result"]["content"][0]["text"].is_string());
        assert!(text.contains("id: 6\n"), "{text}");
        // Every event of the call has its send instant; the other requests none.
        let log = srv.requests();
        let sends: Vec<usize> = log.iter().map(|r| r.sends.len()).collect();
        assert_eq!(sends.iter().sum::<usize>(), 6, "{sends:?}");
        assert_eq!(c.get(&url).send().await.unwrap().status(), 405);
        let del = c
            .delete(&url)
            .header("mcp-session-id", &sid)
            .send()
            .await
            .unwrap();
        assert_eq!(del.status(), 200);
        let ping = serde_json::json!({"jsonrpc": "2.0", "id": 9, "method": "ping"});
        assert_eq!(post(&c, &url, Some(&sid), ping).await.status(), 404);
    }
}
