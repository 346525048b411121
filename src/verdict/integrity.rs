//! Header integrity through a chain: whether the request headers that matter reached the origin once and
//! unchanged, and the response headers that matter reached the client once.
//!
//! A session header an auth proxy did not forward, one a proxy sent twice (which clients join into
//! `abc, abc` and get a 404 for), a protocol version a gateway rewrote: all happen on the path, not in
//! the server. The witness (the fixture's log, or the tap right in front of the origin) gives the origin's
//! side; the probe gives the client's. A header is judged in the direction its sender sent it: a request
//! header only when the client sent it, a response header only when the origin sent it.
//!
//! Secret values (`Authorization`, `Mcp-Session-Id`, the user's `secret_headers`) never appear in a
//! finding: only their presence and length.

use crate::secrets::is_secret_header;
use crate::verdict::Finding;
use crate::verdict::evidence::evidence;
use crate::verdict::rules::FindingId;

/// Request headers watched by default: what MCP's Streamable HTTP transport and resumption depend on,
/// and the credentials and origin a server checks.
pub const DEFAULT_REQUEST: &[&str] = &[
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "authorization",
    "last-event-id",
    "origin",
];

/// Response headers watched by default.
pub const DEFAULT_RESPONSE: &[&str] = &[
    "mcp-session-id",
    "content-type",
    "access-control-expose-headers",
];

/// Which headers are judged, by lowercase name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub request: Vec<String>,
    pub response: Vec<String>,
    /// Header names whose values are secret beyond [`crate::secrets::SECRET_HEADERS`].
    pub secret: Vec<String>,
}

impl Default for Watch {
    fn default() -> Watch {
        Watch {
            request: DEFAULT_REQUEST.iter().map(|s| s.to_string()).collect(),
            response: DEFAULT_RESPONSE.iter().map(|s| s.to_string()).collect(),
            secret: Vec::new(),
        }
    }
}

impl Watch {
    /// The defaults plus `extra` names, watched in both directions (`listen.headers`).
    pub fn with(extra: &[String], secret: &[String]) -> Watch {
        let mut w = Watch::default();
        for name in extra {
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            for list in [&mut w.request, &mut w.response] {
                if !list.contains(&name) {
                    list.push(name.clone());
                }
            }
        }
        w.secret = secret.to_vec();
        w
    }

    /// Whether either direction watches `name`.
    pub fn watches(&self, name: &str) -> bool {
        self.request
            .iter()
            .chain(&self.response)
            .any(|w| w.eq_ignore_ascii_case(name))
    }
}

/// The four views of one exchange's headers. `client_got` may be redacted (a recording's); the others
/// must hold the values as they went (they are compared, never printed when secret).
#[derive(Debug, Clone, Copy)]
pub struct Sides<'a> {
    /// The request as the client sent it.
    pub client_sent: &'a [(String, String)],
    /// The request as it reached the origin; `None` when the witness did not see it.
    pub origin_got: Option<&'a [(String, String)]>,
    /// The response head as the origin sent it; `None` when the witness did not see it.
    pub origin_sent: Option<&'a [(String, String)]>,
    /// The response head as the client got it.
    pub client_got: &'a [(String, String)],
}

/// The values of `name`'s field lines, in order.
fn lines<'h>(headers: &'h [(String, String)], name: &str) -> Vec<&'h str> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Whether `got` is `sent` repeated and joined with commas (`abc, abc`): one field line that a hop (or
/// a client library) made of two.
fn joined_repeat(got: &str, sent: &str) -> Option<usize> {
    let parts: Vec<&str> = got.split(',').map(str::trim).collect();
    (parts.len() > 1 && parts.iter().all(|p| *p == sent.trim())).then_some(parts.len())
}

/// How a value is shown: secret ones by their length only.
fn shown(value: &str, secret: bool) -> String {
    if secret {
        format!("<secret, {} bytes>", value.len())
    } else {
        format!("`{value}`")
    }
}

/// The integrity findings of one exchange through a chain.
pub fn judge(watch: &Watch, sides: Sides<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(origin_got) = sides.origin_got {
        for name in &watch.request {
            let sent = lines(sides.client_sent, name);
            let Some(&first) = sent.first() else {
                continue;
            };
            let got = lines(origin_got, name);
            let secret = is_secret_header(name, &watch.secret);
            let header = display_name(sides.client_sent, name);
            let sent_as = shown(first, secret);
            if got.is_empty() {
                out.push(Finding::new(
                    FindingId::HeaderDropped,
                    evidence!(
                        "request header `{}` ({}) sent by the client never reached the origin: a hop between them dropped it",
                        header,
                        sent_as
                    ),
                ));
            } else if got.len() > sent.len() {
                out.push(Finding::new(
                    FindingId::HeaderDuplicated,
                    evidence!(
                        "request header `{}` sent {} by the client reached the origin as {} field lines",
                        header,
                        times(sent.len()),
                        got.len()
                    ),
                ));
            } else if let (1, Some(n)) = (sent.len(), joined_repeat(got[0], first)) {
                out.push(Finding::new(
                    FindingId::HeaderDuplicated,
                    evidence!(
                        "request header `{}` sent once by the client reached the origin joined {} times over in one line",
                        header,
                        n
                    ),
                ));
            } else if got != sent {
                let now = shown(got[0], secret);
                out.push(Finding::new(
                    FindingId::HeaderChanged,
                    evidence!(
                        "request header `{}` sent by the client as {} reached the origin as {}",
                        header,
                        sent_as,
                        now
                    ),
                ));
            }
        }
    }
    if let Some(origin_sent) = sides.origin_sent {
        for name in &watch.response {
            let sent = lines(origin_sent, name);
            let Some(&first) = sent.first() else {
                continue;
            };
            let got = lines(sides.client_got, name);
            let header = display_name(origin_sent, name);
            let secret = is_secret_header(name, &watch.secret);
            if got.is_empty() {
                out.push(Finding::new(
                    FindingId::HeaderDropped,
                    evidence!(
                        "response header `{}` ({}) sent by the origin never reached the client: a hop between them dropped it",
                        header,
                        shown(first, secret)
                    ),
                ));
            } else if got.len() > sent.len() {
                out.push(Finding::new(
                    FindingId::HeaderDuplicated,
                    evidence!(
                        "response header `{}` sent {} by the origin reached the client as {} field lines",
                        header,
                        times(sent.len()),
                        got.len()
                    ),
                ));
            } else if let (false, 1, Some(n)) = (secret, sent.len(), joined_repeat(got[0], first)) {
                out.push(Finding::new(
                    FindingId::HeaderDuplicated,
                    evidence!(
                        "response header `{}` sent once by the origin reached the client joined {} times over in one line",
                        header,
                        n
                    ),
                ));
            }
        }
    }
    out
}

/// `once`, `twice`, `3 times`.
fn times(n: usize) -> String {
    match n {
        1 => "once".into(),
        2 => "twice".into(),
        n => format!("{n} times"),
    }
}

/// The header's name as its sender spelt it (`Mcp-Session-Id`), else as watched.
fn display_name(headers: &[(String, String)], name: &str) -> String {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_string(), |(k, _)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ids(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.id().as_str()).collect()
    }

    #[test]
    fn request_headers_dropped_doubled_changed() {
        let w = Watch::default();
        let sent = h(&[
            ("Mcp-Session-Id", "s-123456"),
            ("MCP-Protocol-Version", "2025-11-25"),
            ("Authorization", "Bearer sk-live-abcdef"),
        ]);
        let got = h(&[
            ("mcp-session-id", "s-123456"),
            ("mcp-session-id", "s-123456"),
            ("mcp-protocol-version", "2025-06-18"),
        ]);
        let f = judge(
            &w,
            Sides {
                client_sent: &sent,
                origin_got: Some(&got),
                origin_sent: None,
                client_got: &[],
            },
        );
        assert_eq!(
            ids(&f),
            ["header-duplicated", "header-changed", "header-dropped"]
        );
        let text: Vec<String> = f.iter().map(|f| f.evidence.to_string()).collect();
        assert!(text[1].contains("`2025-11-25`") && text[1].contains("`2025-06-18`"));
        // A secret is shown by its length alone.
        assert!(text[2].contains("<secret, 21 bytes>"), "{}", text[2]);
        assert!(!text.concat().contains("sk-live"), "{text:?}");
        assert!(!text.concat().contains("s-123456"), "{text:?}");
    }

    #[test]
    fn a_secret_changed_is_told_by_length_only() {
        let sent = h(&[("authorization", "Bearer aaaa")]);
        let got = h(&[("authorization", "Bearer bbbbbbbb")]);
        let f = judge(
            &Watch::default(),
            Sides {
                client_sent: &sent,
                origin_got: Some(&got),
                origin_sent: None,
                client_got: &[],
            },
        );
        assert_eq!(ids(&f), ["header-changed"]);
        let t = f[0].evidence.to_string();
        assert!(
            t.contains("<secret, 11 bytes>") && t.contains("<secret, 15 bytes>"),
            "{t}"
        );
        assert!(!t.contains("aaaa") && !t.contains("bbbb"), "{t}");
    }

    #[test]
    fn response_headers_dropped_and_joined() {
        let origin = h(&[
            ("content-type", "text/event-stream"),
            ("x-custom", "v1"),
            ("access-control-expose-headers", "Mcp-Session-Id"),
        ]);
        let client = h(&[("content-type", "text/event-stream, text/event-stream")]);
        let w = Watch::with(&["X-Custom".into()], &[]);
        let f = judge(
            &w,
            Sides {
                client_sent: &[],
                origin_got: None,
                origin_sent: Some(&origin),
                client_got: &client,
            },
        );
        assert_eq!(
            ids(&f),
            ["header-duplicated", "header-dropped", "header-dropped"]
        );
        assert!(f[2].evidence.to_string().contains("`x-custom`"));
    }

    #[test]
    fn headers_that_pass_or_were_never_sent_raise_nothing() {
        let req = h(&[("Origin", "http://a"), ("last-event-id", "3")]);
        let resp = h(&[("content-type", "text/event-stream")]);
        let f = judge(
            &Watch::default(),
            Sides {
                client_sent: &req,
                origin_got: Some(&h(&[("origin", "http://a"), ("Last-Event-ID", "3")])),
                origin_sent: Some(&resp),
                client_got: &h(&[("Content-Type", "text/event-stream")]),
            },
        );
        assert!(f.is_empty(), "{f:?}");
        // A header the origin added on its own (the client sent none) is not the path's doing.
        let f = judge(
            &Watch::default(),
            Sides {
                client_sent: &[],
                origin_got: Some(&h(&[("authorization", "x")])),
                origin_sent: Some(&[]),
                client_got: &resp,
            },
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
