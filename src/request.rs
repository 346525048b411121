//! One description of the request that opens a stream, shared by the command line (`-H`, `--method`,
//! `--data`, `--duration`, `--max-events`, …), `ssegate.yaml` (`target.url`, `listen`) and a case's
//! `request:`. Each source says what it gives; [`RequestSpec::over`] merges them, command line over
//! file over default; [`RequestSpec::validate`] finds the first invalid part, which each source words
//! with its own key; [`RequestSpec::build`] gives the probe's request.

use std::time::Duration;

use crate::probe::ProbeRequest;

/// What a source says of the request; `None` (or empty) leaves it to the source below.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestSpec {
    pub method: Option<String>,
    /// Headers to add or replace, in order; an empty value removes a default header.
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// `Some(false)` sends no `Accept-Encoding` at all.
    pub compression: Option<bool>,
    /// How long to listen at most.
    pub duration: Option<Duration>,
    /// Stop after this many events.
    pub max_events: Option<usize>,
    /// Bytes of a line, and of an event's data, kept in the record.
    pub max_line: Option<usize>,
    /// Header names whose values are never printed (beside the built-in ones).
    pub secret_headers: Vec<String>,
    /// How the stream is read (`auto` when none is given).
    pub protocol: Option<crate::protocol::Protocol>,
    /// When a token stream's delta counts as held ([`crate::probe::TOKEN_HOLD`] when none is given).
    pub token_hold: Option<Duration>,
    /// Header names checked through a chain beside the default ones (`listen.headers`).
    pub watch_headers: Vec<String>,
    /// The MCP tool to call; giving one means `protocol: mcp`.
    pub mcp: Option<crate::protocol::McpTool>,
}

/// The part of a request description that is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// The method is not an HTTP method.
    Method(String),
    /// A header's name is not a valid header name.
    HeaderName(String),
    /// A header's value is not a valid header value (the header's name).
    HeaderValue(String),
    /// A listening time of zero.
    ZeroDuration,
    /// A limit of zero events.
    ZeroEvents,
    /// A token hold of zero (every token would be held).
    ZeroTokenHold,
}

impl RequestSpec {
    /// `self` over `lower`: every field given here wins; headers are merged by name (case-insensitive),
    /// and the secret header names of both count.
    pub fn over(&self, lower: &RequestSpec) -> RequestSpec {
        let mut headers = lower.headers.clone();
        for (k, v) in &self.headers {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
            headers.push((k.clone(), v.clone()));
        }
        let mut secret_headers = lower.secret_headers.clone();
        secret_headers.extend(self.secret_headers.iter().cloned());
        let mut watch_headers = lower.watch_headers.clone();
        watch_headers.extend(self.watch_headers.iter().cloned());
        RequestSpec {
            method: self.method.clone().or_else(|| lower.method.clone()),
            headers,
            body: self.body.clone().or_else(|| lower.body.clone()),
            compression: self.compression.or(lower.compression),
            duration: self.duration.or(lower.duration),
            max_events: self.max_events.or(lower.max_events),
            max_line: self.max_line.or(lower.max_line),
            secret_headers,
            protocol: self.protocol.or(lower.protocol),
            token_hold: self.token_hold.or(lower.token_hold),
            watch_headers,
            mcp: self.mcp.clone().or_else(|| lower.mcp.clone()),
        }
    }

    /// The first invalid part, if any.
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(m) = &self.method
            && http::Method::from_bytes(m.as_bytes()).is_err()
        {
            return Err(Invalid::Method(m.clone()));
        }
        for (k, v) in &self.headers {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err() {
                return Err(Invalid::HeaderName(k.clone()));
            }
            if http::HeaderValue::from_str(v).is_err() {
                return Err(Invalid::HeaderValue(k.clone()));
            }
        }
        if self.max_events == Some(0) {
            return Err(Invalid::ZeroEvents);
        }
        if self.duration == Some(Duration::ZERO) {
            return Err(Invalid::ZeroDuration);
        }
        if self.token_hold == Some(Duration::ZERO) {
            return Err(Invalid::ZeroTokenHold);
        }
        Ok(())
    }

    /// The probe's request to `url`: the browser-like default with this description applied (call
    /// [`RequestSpec::validate`] first); a duration not given is `default_duration`.
    pub fn build(&self, url: impl Into<String>, default_duration: Duration) -> ProbeRequest {
        let mut r = ProbeRequest::new(url);
        if let Some(m) = &self.method {
            r.method = m.clone();
        }
        r.headers = self.headers.clone();
        r.body = self.body.clone();
        if let Some(c) = self.compression {
            r.compression = c;
        }
        r.limits.duration = self.duration.unwrap_or(default_duration);
        r.limits.max_events = self.max_events;
        if let Some(n) = self.max_line {
            r.limits.max_line = n;
        }
        r.secret_headers = self.secret_headers.clone();
        r.watch_headers = self.watch_headers.clone();
        r.protocol = self.protocol.unwrap_or_default();
        if let Some(m) = &self.mcp {
            r.mcp = Some(m.clone());
            r.protocol = crate::protocol::Protocol::Mcp;
        }
        if let Some(t) = self.token_hold {
            r.token_hold = t;
        }
        r
    }
}

/// A request header naming which of ssegate's clients sent a request (`reconnect`, `disconnect`), for
/// clients of one scenario that run at once: the origin's side (the tap, the fixture's log) tells their
/// requests apart by it, where the time window each probe listened in would not.
pub const TAG_HEADER: &str = "x-ssegate-client";

/// The value of [`TAG_HEADER`] in request headers.
pub fn tag_of<'h>(headers: impl IntoIterator<Item = (&'h str, &'h str)>) -> Option<&'h str> {
    headers
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(TAG_HEADER))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn command_line_over_file_over_default() {
        let file = RequestSpec {
            method: Some("POST".into()),
            headers: vec![h("Authorization", "Bearer a"), h("X-One", "1")],
            body: Some("{}".into()),
            duration: Some(Duration::from_secs(20)),
            max_events: Some(5),
            secret_headers: vec!["X-Key".into()],
            ..RequestSpec::default()
        };
        let flags = RequestSpec {
            headers: vec![h("authorization", "Bearer b")],
            max_events: Some(2),
            compression: Some(false),
            secret_headers: vec!["X-Other".into()],
            ..RequestSpec::default()
        };
        let m = flags.over(&file);
        assert_eq!(m.method.as_deref(), Some("POST"));
        assert_eq!(
            m.headers,
            vec![h("X-One", "1"), h("authorization", "Bearer b")]
        );
        assert_eq!(m.body.as_deref(), Some("{}"));
        assert_eq!(m.duration, Some(Duration::from_secs(20)));
        assert_eq!(m.max_events, Some(2));
        assert_eq!(m.compression, Some(false));
        assert_eq!(m.secret_headers, vec!["X-Key", "X-Other"]);
        let r = m.build("http://127.0.0.1:1/x", Duration::from_secs(30));
        assert_eq!(r.method, "POST");
        assert!(!r.compression);
        assert_eq!(r.limits.max_events, Some(2));
        assert_eq!(r.limits.duration, Duration::from_secs(20));
        let d = RequestSpec::default().build("http://127.0.0.1:1/", Duration::from_secs(7));
        assert_eq!(
            (d.method.as_str(), d.limits.duration),
            ("GET", Duration::from_secs(7))
        );
    }

    #[test]
    fn the_first_invalid_part_is_named() {
        let bad = |s: RequestSpec| s.validate().unwrap_err();
        let with = |f: fn(&mut RequestSpec)| {
            let mut s = RequestSpec::default();
            f(&mut s);
            s
        };
        assert_eq!(
            bad(with(|s| s.method = Some("GE T".into()))),
            Invalid::Method("GE T".into())
        );
        assert_eq!(
            bad(with(|s| s.headers = vec![h("bad name", "x")])),
            Invalid::HeaderName("bad name".into())
        );
        assert_eq!(
            bad(with(|s| s.headers = vec![h("X", "a\nb")])),
            Invalid::HeaderValue("X".into())
        );
        assert_eq!(
            bad(with(|s| s.duration = Some(Duration::ZERO))),
            Invalid::ZeroDuration
        );
        assert_eq!(bad(with(|s| s.max_events = Some(0))), Invalid::ZeroEvents);
        assert!(RequestSpec::default().validate().is_ok());
    }
}
