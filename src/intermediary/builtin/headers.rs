//! `headers`: a model of a CDN or gateway that rewrites headers: the response's (`set`, `remove`,
//! `append`), and the request's on its way upstream (`request: {set, remove, append}`), so that a hop
//! that drops a session header or sends it twice can be modelled in either direction.

use std::collections::BTreeMap;

use http::Response;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::body::Incoming;
use serde::Deserialize;

use super::{Asked, BuiltinHop, passthrough, respond};
use crate::Body;

/// Adds, removes, overrides or doubles response headers, and request headers under `request`. Needs
/// options, so it is not in the default matrix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Headers {
    /// Response headers to add or replace.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Response header names to remove.
    #[serde(default)]
    pub remove: Vec<String>,
    /// Response headers to add as one more field line, beside any the upstream sent (a header sent
    /// twice).
    #[serde(default)]
    pub append: BTreeMap<String, String>,
    /// The same for the request's headers, before it is sent upstream.
    #[serde(default)]
    pub request: Rules,
}

/// What to do to one direction's headers: remove, then set (replace), then append.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(default)]
    pub append: BTreeMap<String, String>,
}

/// `+name: value`, `-name`, `++name: value` for one direction's rules, secret values redacted.
fn label_parts(set: &BTreeMap<String, String>, remove: &[String], append: &BTreeMap<String, String>) -> Vec<String> {
    let value = |k: &str, v: &'_ str| -> String {
        if crate::secrets::is_secret_header(k, &[]) {
            "<redacted>".into()
        } else {
            v.into()
        }
    };
    let mut parts: Vec<String> = set.iter().map(|(k, v)| format!("+{k}: {}", value(k, v))).collect();
    parts.extend(remove.iter().map(|k| format!("-{k}")));
    parts.extend(append.iter().map(|(k, v)| format!("++{k}: {}", value(k, v))));
    parts
}

fn validate_rules(
    set: &BTreeMap<String, String>,
    remove: &[String],
    append: &BTreeMap<String, String>,
) -> Result<(), String> {
    for (k, v) in set.iter().chain(append) {
        if HeaderName::from_bytes(k.as_bytes()).is_err() || HeaderValue::from_str(v).is_err() {
            return Err(format!("`{k}: {v}` is not a valid header"));
        }
    }
    match remove
        .iter()
        .find(|k| HeaderName::from_bytes(k.as_bytes()).is_err())
    {
        Some(bad) => Err(format!("`{bad}` is not a valid header name")),
        None => Ok(()),
    }
}

/// Remove, then set, then append (rules already validated; an invalid one is skipped).
fn apply(
    headers: &mut HeaderMap,
    set: &BTreeMap<String, String>,
    remove: &[String],
    append: &BTreeMap<String, String>,
) {
    let pair = |k: &String, v: &String| {
        Some((
            HeaderName::from_bytes(k.as_bytes()).ok()?,
            HeaderValue::from_str(v).ok()?,
        ))
    };
    for name in remove {
        if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
            headers.remove(n);
        }
    }
    for (k, v) in set.iter().filter_map(|(k, v)| pair(k, v)) {
        headers.insert(k, v);
    }
    for (k, v) in append.iter().filter_map(|(k, v)| pair(k, v)) {
        headers.append(k, v);
    }
}

impl BuiltinHop for Headers {
    /// `headers(+name: value, -name, ++name: value, request: …)`, secret values redacted.
    fn label(&self) -> String {
        let mut parts = label_parts(&self.set, &self.remove, &self.append);
        let r = &self.request;
        let request = label_parts(&r.set, &r.remove, &r.append);
        if !request.is_empty() {
            parts.push(format!("request: {}", request.join(", ")));
        }
        format!("headers({})", parts.join(", "))
    }

    fn validate(&self) -> Result<(), String> {
        validate_rules(&self.set, &self.remove, &self.append)?;
        let r = &self.request;
        validate_rules(&r.set, &r.remove, &r.append).map_err(|e| format!("request: {e}"))
    }

    fn rewrite_request(&self, headers: &mut HeaderMap) {
        let r = &self.request;
        apply(headers, &r.set, &r.remove, &r.append);
    }

    async fn respond(
        &self,
        _asked: &Asked,
        mut head: http::response::Parts,
        body: Incoming,
    ) -> Response<Body> {
        apply(&mut head.headers, &self.set, &self.remove, &self.append);
        respond(head, body, passthrough)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(yaml: &str) -> Headers {
        let h: Headers = serde_saphyr::from_str(yaml).unwrap();
        h.validate().unwrap();
        h
    }

    #[test]
    fn request_rules_drop_replace_and_double_a_header() {
        let h = hop("request: {remove: [mcp-session-id], set: {x-a: '1'}, append: {x-b: '2'}}");
        let mut m = HeaderMap::new();
        m.insert("mcp-session-id", HeaderValue::from_static("abc"));
        m.insert("x-a", HeaderValue::from_static("0"));
        m.insert("x-b", HeaderValue::from_static("1"));
        h.rewrite_request(&mut m);
        assert!(m.get("mcp-session-id").is_none());
        assert_eq!(m.get_all("x-a").iter().collect::<Vec<_>>(), ["1"]);
        // Appended: the header now has two field lines, as a proxy that sends it twice.
        assert_eq!(m.get_all("x-b").iter().collect::<Vec<_>>(), ["1", "2"]);
        // The response rules are not the request's.
        assert!(h.set.is_empty() && h.append.is_empty());
    }

    #[tokio::test]
    async fn through_the_hop_the_origin_and_the_client_see_what_the_rules_did() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut p = crate::origin::Profile::builtin("plain").unwrap();
        p.events.count = 1;
        p.events.gap_ms = 10;
        p.linger_ms = 0;
        p.headers.insert("mcp-session-id".into(), "abc".into());
        let origin = crate::origin::FixtureServer::start(p).await.unwrap();
        let h = hop(
            "append: {mcp-session-id: abc}\n\
             request: {remove: [mcp-session-id], append: {mcp-protocol-version: '2025-11-25'}}",
        );
        let running = super::super::Builtin::Headers(h)
            .start(origin.addr())
            .await
            .unwrap();
        let mut s = tokio::net::TcpStream::connect(running.addr).await.unwrap();
        s.write_all(
            b"GET /events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nmcp-session-id: abc\r\n\
              mcp-protocol-version: 2025-11-25\r\n\r\n",
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .expect("the hop ends the response")
            .unwrap();
        let text = String::from_utf8_lossy(&out).to_ascii_lowercase();
        let head = text.split("\r\n\r\n").next().unwrap();
        // Response: one more field line of the session header beside the origin's (a proxy that
        // sends it twice, which clients join into `abc, abc`).
        assert_eq!(head.matches("\r\nmcp-session-id: abc").count(), 2, "{head}");
        // Request: the session header dropped, the version header sent twice.
        let seen = &origin.requests()[0].headers;
        assert!(!seen.iter().any(|(k, _)| k == "mcp-session-id"), "{seen:?}");
        let versions = seen.iter().filter(|(k, _)| k == "mcp-protocol-version").count();
        assert_eq!(versions, 2, "{seen:?}");
    }

    #[test]
    fn a_label_names_both_directions_and_hides_secret_values() {
        let h = hop("append: {mcp-session-id: abc}\nrequest: {set: {authorization: Bearer sk-x}, remove: [x-y]}");
        let label = h.label();
        assert_eq!(
            label,
            "headers(++mcp-session-id: abc, request: +authorization: <redacted>, -x-y)"
        );
        assert!(!label.contains("sk-x"));
    }

    #[test]
    fn an_invalid_request_header_is_refused_and_says_which_side() {
        let h: Headers = serde_saphyr::from_str("request: {set: {'bad name': x}}").unwrap();
        let e = h.validate().unwrap_err();
        assert!(e.starts_with("request: "), "{e}");
        assert!(serde_saphyr::from_str::<Headers>("request: {drop: [x]}").is_err());
    }
}
