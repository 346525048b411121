//! The catalogue of findings: stable ids, severities, the reason, and the fixes.
//!
//! Ids are a contract: CI users allow or deny them by name. Never rename one; add a new id instead.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What a finding means and how to fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub id: FindingId,
    pub severity: Severity,
    /// Headers, framing or delivery.
    pub area: &'static str,
    /// One sentence: why it matters.
    pub why: &'static str,
    /// What the origin (the endpoint's owner) changes.
    pub fix: &'static str,
    /// What the operator of an intermediary changes, where that applies.
    pub operator_fix: Option<&'static str>,
}

/// Builds [`FindingId`] and [`RULES`] from one table: each line names the variant, then its id.
macro_rules! rules {
    ($($variant:ident $id:literal $sev:ident $area:literal why $why:literal fix $fix:literal $(operator $op:literal)?;)*) => {
        /// The stable id of a finding, one variant per rule; written and serialized as its kebab-case
        /// string (`held-until-end`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FindingId {
            $($variant,)*
        }

        impl FindingId {
            /// Every id, in catalogue order.
            pub const ALL: &[FindingId] = &[$(FindingId::$variant),*];

            /// The id as users write it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(FindingId::$variant => $id,)*
                }
            }

            /// What this finding means and how to fix it.
            pub const fn rule(self) -> &'static Rule {
                match self {
                    $(FindingId::$variant => &Rule {
                        id: FindingId::$variant,
                        severity: Severity::$sev,
                        area: $area,
                        why: $why,
                        fix: $fix,
                        operator_fix: rules!(@op $($op)?),
                    },)*
                }
            }
        }

        /// Every finding ssegate can report, in catalogue order.
        pub const RULES: &[Rule] = &[$(*FindingId::$variant.rule()),*];
    };
    (@op) => { None };
    (@op $op:literal) => { Some($op) };
}

rules! {
    HeldUntilEnd "held-until-end" Error "delivery"
        why "every event arrived only when the stream ended, so the client saw nothing live"
        fix "send `X-Accel-Buffering: no` and `Cache-Control: no-cache, no-transform`, and flush after every event (e.g. `res.flush()` under compression)"
        operator "disable response buffering for this route (nginx `proxy_buffering off`, platform streaming mode)";
    EventsHeld "events-held" Error "delivery"
        why "some events were held back and released in clumps, not one by one"
        fix "send `X-Accel-Buffering: no` and `Cache-Control: no-cache, no-transform`, and flush after every event"
        operator "disable proxy buffering for text/event-stream (nginx `proxy_buffering off`)";
    ClumpedAtBufferSize "clumped-at-buffer-size" Warning "delivery"
        why "events were released in clumps whose sizes match a proxy buffer (4 or 8 KiB), the signature of a buffering proxy"
        fix "send `X-Accel-Buffering: no`"
        operator "`proxy_buffering off;` for this location";
    FirstByteDelayed "first-byte-delayed" Warning "delivery"
        why "the response headers reached the client only well after the origin sent them, so first-byte timeouts (25-100 s at platforms) can fire"
        fix "send the headers and a `:ok` comment immediately"
        operator "stop the hop from withholding headers until the first body byte (e.g. exclude text/event-stream from compression)";
    StreamCut "stream-cut" Error "delivery"
        why "the stream ended before the origin finished it; the browser will reconnect and may lose events"
        fix "send a heartbeat comment (`:\\n\\n`) at least every 15 s so idle timeouts never fire"
        operator "raise the idle or total timeout for this route (nginx `proxy_read_timeout`)";
    TokensCollapsed "tokens-collapsed" Error "delivery"
        why "most of a token stream's deltas arrived in the same read as the one before: a hop coalesced them, so the answer appears in jumps rather than word by word, however short each delay"
        fix "flush after every delta, and send `X-Accel-Buffering: no` and `Cache-Control: no-cache, no-transform`"
        operator "turn off response buffering and compression for the streaming route";
    StreamTruncated "stream-truncated" Error "delivery"
        why "a token stream ended cleanly without its terminal event (`[DONE]`, `message_stop`, `response.completed`): something on the path closed it on a timer (a route timeout, a platform's cap) and the answer is incomplete, though nothing reported an error"
        fix "send a heartbeat while the model is silent, and keep the whole response within the path's total limit (or resume with the ids the client saw)"
        operator "raise the route's or platform's total timeout for the streaming endpoint (Envoy Gateway / Istio route `timeout`, Cloud Run `--timeout`)";
    StreamStalled "stream-stalled" Error "delivery"
        why "events stopped arriving while the connection stayed open: a hop gave up on the origin (an idle or proxy timeout) without closing the client's side, so the browser neither gets events nor reconnects"
        fix "send a heartbeat comment (`:\\n\\n`) more often than every hop's idle timeout, and have clients reconnect after a silence longer than the heartbeat"
        operator "end the client's response when the upstream request fails or times out (node-http-proxy: destroy `res` on `proxyTimeout` / `error`)";
    StreamsRefused "streams-refused" Error "capacity"
        why "under many concurrent streams some clients got no response (reset, refused, timed out or an error status) or lost their stream: the chain ran out of connections, descriptors or workers, and every EventSource that fails retries, adding load"
        fix "keep one stream per browser tab (share it across components, or use a SharedWorker), and serve SSE over HTTP/2 so one connection carries many streams"
        operator "give the proxy room for two connections per stream (nginx: `worker_connections` at least twice the concurrent streams per worker, and `worker_rlimit_nofile` above it), and raise the process's descriptor limit";
    AddedLatency "added-latency" Warning "delivery"
        why "events arrive one by one but consistently late, as when something holds every write for a while (Nagle, a periodic flusher)"
        fix "set TCP_NODELAY on the origin socket and write each event in one call"
        operator "look for a periodic flush interval on the proxy";
    NoResponse "no-response" Error "delivery"
        why "no response headers arrived while the probe listened: something holds the whole response (a buffering gateway on an endless stream) or the server never answered"
        fix "send the headers and a `:ok` comment at once, and stream the body"
        operator "switch the platform or gateway to streaming mode";
    ContentTypeNotEventStream "content-type-not-event-stream" Error "headers"
        why "EventSource only accepts `text/event-stream`; other types are refused by browsers and compressed or buffered by proxies"
        fix "send `Content-Type: text/event-stream`";
    MissingNoTransform "missing-no-transform" Warning "headers"
        why "without `no-transform` in Cache-Control, compression layers that honour it (Express compression, Next.js, HAProxy, Caddy, Cloudflare) may buffer the stream"
        fix "send `Cache-Control: no-cache, no-transform`";
    MissingXAccelBuffering "missing-x-accel-buffering" Info "headers"
        why "nginx buffers proxied responses by default; `X-Accel-Buffering: no` lets the origin opt out without a config change (nginx strips the header, so behind nginx its absence proves nothing)"
        fix "send `X-Accel-Buffering: no`";
    ContentLengthOnStream "content-length-on-stream" Error "headers"
        why "a Content-Length on an event stream means the whole body was buffered somewhere (or the origin declared it), so nothing can arrive before the end"
        fix "do not set Content-Length on an event stream; return a streaming body"
        operator "switch the platform to streaming mode (Lambda RESPONSE_STREAM, API Gateway STREAM)";
    ContentEncodingOnStream "content-encoding-on-stream" Warning "headers"
        why "a compressed event stream only stays live if every compressor flushes after each event; most buffer instead"
        fix "send `Cache-Control: no-transform` (or `Content-Encoding: none` for Fly.io), or call `res.flush()` after each event"
        operator "exclude text/event-stream from compression";
    HopByHopHeaderOnH2 "hop-by-hop-header-on-h2" Error "headers"
        why "`Connection`, `Keep-Alive`, `Transfer-Encoding` and `Upgrade` are illegal in HTTP/2; clients and proxies may reject the response"
        fix "stop setting `Connection` and `Transfer-Encoding` by hand; the server sets framing itself";
    Http10Response "http10-response" Warning "headers"
        why "an HTTP/1.0 response cannot be chunked, so the stream is close-delimited and buffering proxies wait for full buffers"
        fix "serve HTTP/1.1"
        operator "speak HTTP/1.1 to the upstream (nginx `proxy_http_version 1.1`)";
    CloseDelimitedBody "close-delimited-body" Info "headers"
        why "an HTTP/1.1 response with neither Transfer-Encoding nor Content-Length ends only when the connection closes: an HTTP/1.0 hop is on the path"
        fix "none at the origin"
        operator "speak HTTP/1.1 end to end (nginx `proxy_http_version 1.1`)";
    CacheableStream "cacheable-stream" Warning "headers"
        why "without `no-cache`, `no-store` or `private`, a cache may store the stream and replay it to later clients"
        fix "send `Cache-Control: no-cache` (or `no-store`)"
        operator "bypass the cache for text/event-stream";
    StreamShared "stream-shared" Error "delivery"
        why "a cache on the path served one origin response to two clients: a later subscriber gets events sent before it subscribed, and a reconnecting `EventSource` gets the old stream again instead of new events"
        fix "send `Cache-Control: no-cache` (or `no-store` / `private`) on the stream"
        operator "bypass the cache for text/event-stream (Varnish: `return (pass)` or `set beresp.uncacheable = true`)";
    HeadersWithFirstEvent "headers-with-first-event" Warning "headers"
        why "the response headers arrived only with the first event; platforms with a first-byte timeout (Heroku 30 s, CloudFront 30 s, Vercel Edge 25 s) cut such streams"
        fix "flush the headers at once (`res.flushHeaders()`) and send a `:ok` comment immediately";
    HeaderDropped "header-dropped" Error "headers"
        why "a header one side sent never reached the other: a hop on the path dropped it (an auth proxy that forwards only body, status and content type loses `Mcp-Session-Id`, and every later request of the session fails)"
        fix "none at the origin beyond checking each hop's header rules; expose the header to browsers with `Access-Control-Expose-Headers`"
        operator "forward the header in both directions (nginx passes them unless `proxy_hide_header` / `proxy_set_header` drop them; a custom proxy must copy every header, not a chosen few)";
    HeaderDuplicated "header-duplicated" Error "headers"
        why "a header sent once arrived twice (two field lines, or one value joined as `abc, abc`): clients and servers read the joined value, and a session id that no longer matches gets a 404 and a new session"
        fix "set the header in one place only (the framework or the proxy, not both)"
        operator "stop adding a header the upstream already sends (nginx `add_header` beside an upstream's own, or `proxy_set_header` beside a forwarded one)";
    HeaderChanged "header-changed" Warning "headers"
        why "a request header reached the origin with another value than the client sent (a protocol version rewritten, a credential replaced): the origin answers a request the client did not make"
        fix "none at the origin"
        operator "pass the header through unchanged, or document why the hop rewrites it";
    SessionLost "session-lost" Error "mcp"
        why "a request carrying the MCP session id the server issued was answered 404: the session is unknown where it landed (a balancer sent it to another replica, or the server forgot it), so the client must start over and loses the work in flight"
        fix "keep sessions in a store every replica shares (Redis), or run stateless (no `Mcp-Session-Id`, revision 2026-07-28)"
        operator "make the balancer sticky on the `Mcp-Session-Id` header (nginx: `hash $http_mcp_session_id consistent;` in the upstream), or run one replica";
    McpSessionFailed "mcp-session-failed" Error "mcp"
        why "ssegate's MCP client could not open a session through this path (`initialize`, `notifications/initialized` or `tools/list` failed), so no MCP client can"
        fix "answer `initialize` with 200 and the session id in `Mcp-Session-Id`, and accept the requests that carry it"
        operator "forward POST bodies and every `Mcp-*` header both ways (and expose `Mcp-Session-Id` to browsers with `Access-Control-Expose-Headers`)";
    UnsupportedContentEncoding "unsupported-content-encoding" Error "headers"
        why "the body uses a content coding ssegate (and most browsers) cannot decode"
        fix "send an event stream without content coding";
    CorruptContentEncoding "corrupt-content-encoding" Error "headers"
        why "the body claims a content coding but is not valid in it; browsers fail the stream"
        fix "compress with a flush per event or not at all; never declare a coding the body does not have";
    GzipMembersDropped "gzip-members-dropped" Error "framing"
        why "the body is a series of gzip members (a compressor that starts a new member per write): valid gzip, but browsers decode only a response's first member and ignore the rest, so the events after it never reach the page"
        fix "compress the stream as one gzip stream flushed after each event (Z_SYNC_FLUSH), or leave it uncompressed (`Cache-Control: no-transform`); Django: keep the streaming view out of GZipMiddleware"
        operator "exclude text/event-stream from the compressor that writes one member per chunk";
    ErrorStatus "error-status" Error "headers"
        why "EventSource fails on any status but 200 and stops reconnecting"
        fix "answer 200 for a valid stream, 204 to tell the client to stop";
    EventNotTerminated "event-not-terminated" Error "framing"
        why "the stream ended inside an event (no blank line after it), so that event was never dispatched"
        fix "end every event with a blank line (`\\n\\n`)";
    EventWrittenInPieces "event-written-in-pieces" Warning "framing"
        why "events arrived in small pieces, the last piece of each waiting for the one before to be acknowledged: the server writes one event in several small writes without TCP_NODELAY, so Nagle's algorithm holds each later write until the client's delayed ACK; a proxy that buffers turns that wait into batches"
        fix "write each event in one write (build `id:`, `data:` and the blank line into one buffer), and set TCP_NODELAY on the socket (werkzeug: run under gunicorn or another server that sets it)";
    TooBusyToTell "too-busy-to-tell" Info "probe"
        why "this machine was too busy to tell: the probe's own timer woke late by as much as the delay the verdict rests on, and nothing gave the origin's send instants, so events read together may have been sent apart and read late"
        fix "measure again on a quieter machine, or through `ssegate check`, whose tap times the origin's sends";
    NoEventsDispatched "no-events-dispatched" Error "framing"
        why "bytes arrived but no event was ever dispatched: a browser would fire nothing"
        fix "end every event with a blank line and include a `data:` field";
    MixedLineEndings "mixed-line-endings" Warning "framing"
        why "the stream mixes LF, CR and CRLF line endings; valid, but a sign of hand-built framing that breaks naive parsers"
        fix "use one line ending (`\\n`) everywhere";
    InvalidUtf8 "invalid-utf8" Warning "framing"
        why "the stream contains bytes that are not UTF-8; browsers replace them with U+FFFD"
        fix "encode event data as UTF-8";
    Bom "bom" Info "framing"
        why "the stream starts with a UTF-8 byte order mark; browsers strip it, naive parsers read it as part of the first field"
        fix "do not write a BOM";
    UnknownField "unknown-field" Info "framing"
        why "lines with field names other than data, event, id and retry are ignored by browsers"
        fix "use only `data`, `event`, `id` and `retry`, or prefix the line with `:` to make it a comment";
    LineTooLong "line-too-long" Warning "framing"
        why "a line exceeded the probe's line limit (`--max-line`, 1 MiB by default): browsers have no limit and dispatch it, but clients and proxies with line buffers fail on it, and the record keeps only its first bytes"
        fix "split long data into several `data:` lines or events";
    NoEventIds "no-event-ids" Warning "lifecycle"
        why "no event carries an `id:`, so a browser that reconnects sends no `Last-Event-ID` and the origin cannot tell where it left off: what was sent meanwhile is lost, or everything is sent again"
        fix "give every event an `id:`, and on a request with `Last-Event-ID` send only the events after it";
    LastEventIdNotForwarded "last-event-id-not-forwarded" Error "lifecycle"
        why "the reconnecting client sent `Last-Event-ID`, but the request reached the origin without it: a hop dropped the header, so the origin cannot resume"
        fix "also send the last id in the URL on reconnect (`?lastEventId=`), which hops forward"
        operator "forward the `Last-Event-ID` request header to the upstream";
    ResumeReplaysFromStart "resume-replays-from-start" Warning "lifecycle"
        why "on reconnect with `Last-Event-ID` the origin sent again events the client already had, so browsers show them twice (or the page has to de-duplicate)"
        fix "read the `Last-Event-ID` request header and send only the events after that id (keep a short replay buffer)";
    DisconnectNotPropagated "disconnect-not-propagated" Warning "lifecycle"
        why "the client went away, but the origin's response stayed open behind a hop: the origin keeps producing for nobody, and every closed tab leaves a stream (memory, connections, upstream work) until the origin ends it"
        fix "bound each stream's life (end it after a while; `EventSource` reconnects) and stop producing on the request's close event"
        operator "have the proxy close the upstream request when the client disconnects (nginx: keep `proxy_ignore_client_abort off`; caches: pass streams through instead of fetching them)";
    HeartbeatTooSparse "heartbeat-too-sparse" Warning "lifecycle"
        why "the origin stays silent for more than half of a hop's idle timeout: a longer pause (a slow model, a quiet feed) gets the stream cut, and the browser reconnects and may lose events"
        fix "send a heartbeat comment (`:\\n\\n`) at least every half of the shortest idle timeout on the path"
        operator "raise the hop's idle timeout for the SSE route above the stream's longest silence";
    BrowserDisagrees "browser-disagrees" Warning "browser"
        why "a real browser's EventSource saw the stream differently from ssegate's probe (another delivery, or another number of events): what users get is the browser's"
        fix "read the browser's events beside the probe's; a browser dispatches only terminated events of the types a page listens to, and fails on what it does not accept";
    BrowserConnectionLimit "browser-connection-limit" Warning "browser"
        why "over HTTP/1.1 a browser opens at most 6 connections per host, and each EventSource holds one for its whole life: a 7th stream (a 7th tab, or one more component) stays pending until another ends, and the page's other requests to that host queue too"
        fix "keep one EventSource per browser (share it across tabs with a SharedWorker or BroadcastChannel), or serve the stream over HTTP/2"
        operator "serve the endpoint over HTTP/2 (TLS with ALPN `h2` at the edge), where one connection carries every stream";
    ByteLimitReached "byte-limit-reached" Info "probe"
        why "the probe stopped at its byte limit; what followed was not measured"
        fix "raise the limit if the stream is meant to be that large";
    EventLimitReached "event-limit-reached" Info "probe"
        why "the probe stopped after the configured number of events; the stream was still open"
        fix "none needed for endless streams";
    DurationLimitReached "duration-limit-reached" Info "probe"
        why "the probe stopped listening at its duration limit; the stream was still open"
        fix "none needed for endless streams";
}

impl FindingId {
    /// Every id as users write it, in catalogue order.
    pub fn names() -> Vec<&'static str> {
        FindingId::ALL.iter().map(|id| id.as_str()).collect()
    }
}

impl std::fmt::Display for FindingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finding id that names no rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown finding id `{0}`")]
pub struct UnknownFindingId(pub String);

impl UnknownFindingId {
    /// The nearest valid ids, for the user who wrote this one.
    pub fn help(&self) -> String {
        crate::text::name_help(&self.0, &FindingId::names())
    }
}

impl std::str::FromStr for FindingId {
    type Err = UnknownFindingId;

    fn from_str(s: &str) -> Result<FindingId, UnknownFindingId> {
        FindingId::ALL
            .iter()
            .copied()
            .find(|id| id.as_str() == s)
            .ok_or_else(|| UnknownFindingId(s.to_string()))
    }
}

impl Serialize for FindingId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FindingId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<FindingId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for r in RULES {
            assert!(seen.insert(r.id.as_str()), "duplicate {}", r.id);
            assert!(
                r.id.as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{}",
                r.id
            );
            assert!(!r.why.ends_with('.'), "{}: no final period", r.id);
        }
    }

    #[test]
    fn ids_round_trip_and_match_the_catalogue() {
        assert_eq!(RULES.len(), FindingId::ALL.len());
        for (r, &id) in RULES.iter().zip(FindingId::ALL) {
            assert_eq!(r.id, id);
            assert_eq!(id.rule(), r);
            assert_eq!(id.as_str().parse::<FindingId>(), Ok(id));
            assert_eq!(
                serde_json::to_string(&id).unwrap(),
                format!("\"{}\"", id.as_str())
            );
            assert_eq!(
                serde_json::from_str::<FindingId>(&format!("\"{id}\"")).unwrap(),
                id
            );
        }
        let bad = "held-until-edn".parse::<FindingId>().unwrap_err();
        assert_eq!(bad.to_string(), "unknown finding id `held-until-edn`");
        assert!(bad.help().starts_with("did you mean `held-until-end`?"));
    }

    #[test]
    fn the_readme_documents_every_id() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        for r in RULES {
            assert!(
                readme.contains(&format!("`{}`", r.id)),
                "README lacks `{}`",
                r.id
            );
        }
    }
}
