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
/// options, so it is not in the default matrix. The response's keys repeat [`Rules`]' at the top level
/// (where they have always been): serde cannot flatten a struct into one that denies unknown keys.
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

/// One direction's rules, borrowed: the response's (the top-level keys) or the request's.
#[derive(Clone, Copy)]
struct Side<'a> {
    set: &'a BTreeMap<String, String>,
    remove: &'a [String],
    append: &'a BTreeMap<String, String>,
}

impl Headers {
    fn response_side(&self) -> Side<'_> {
        Side {
            set: &self.set,
            remove: &self.remove,
            append: &self.append,
        }
    }

    fn request_side(&self) -> Side<'_> {
        let r = &self.request;
        Side {
            set: &r.set,
            remove: &r.remove,
            append: &r.append,
        }
    }
}

impl Side<'_> {
    /// `+name: value`, `-name`, `++name: value`, secret values redacted.
    fn label_parts(self) -> Vec<String> {
        let value = |k: &str, v: &str| -> String {
            if crate::secrets::is_secret_header(k, &[]) {
                "<redacted>".into()
            } else {
                v.into()
            }
        };
        let mut parts: Vec<String> = (self.set.iter())
            .map(|(k, v)| format!("+{k}: {}", value(k, v)))
            .collect();
        parts.extend(self.remove.iter().map(|k| format!("-{k}")));
        parts.extend(
            (self.append.iter()).map(|(k, v)| format!("++{k}: {}", value(k, v))),
        );
        parts
    }

    fn validate(self) -> Result<(), String> {
        for (k, v) in self.set.iter().chain(self.append) {
            if HeaderName::from_bytes(k.as_bytes()).is_err() || HeaderValue::from_str(v).is_err() {
                return Err(format!("`{k}: {v}` is not a valid header"));
            }
        }
        match self
            .remove
            .iter()
            .find(|k| HeaderName::from_bytes(k.as_bytes()).is_err())
        {
            Some(bad) => Err(format!("`{bad}` is not a valid header name")),
            None => Ok(()),
        }
    }

    /// Remove, then set, then append (rules already validated; an invalid one is skipped).
    fn apply(self, headers: &mut HeaderMap) {
        let pair = |(k, v): (&String, &String)| {
            Some((
                HeaderName::from_bytes(k.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ))
        };
        for name in self.remove {
            if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
                headers.remove(n);
            }
        }
        for (k, v) in self.set.iter().filter_map(pair) {
            headers.insert(k, v);
        }
        for (k, v) in self.append.iter().filter_map(pair) {
            headers.append(k, v);
        }
    }
}

impl BuiltinHop for Headers {
    /// `headers(+name: value, -name, ++name: value, request: …)`, secret values redacted.
    fn label(&self) -> String {
        let mut parts = self.response_side().label_parts();
        let request = self.request_side().label_parts();
        if !request.is_empty() {
            parts.push(format!("request: {}", request.join(", ")));
        }
        format!("headers({})", parts.join(", "))
    }

    fn validate(&self) -> Result<(), String> {
        self.response_side().validate()?;
        self.request_side()
            .validate()
            .map_err(|e| format!("request: {e}"))
    }

    fn rewrite_request(&self, headers: &mut HeaderMap) {
        self.request_side().apply(headers);
    }

    async fn respond(
        &self,
        _asked: &Asked,
        mut head: http::response::Parts,
        body: Incoming,
    ) -> Response<Body> {
        self.response_side().apply(&mut head.headers);
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
            "headers(++mcp-session-id: <redacted>, request: +authorization: <redacted>, -x-y)"
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
