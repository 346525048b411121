//! `heartbeat`: a model of the origin-side fix for idle cuts.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http::header;
use http_body_util::channel::Sender;
use hyper::body::Incoming;
use serde::Deserialize;

use super::{Asked, BuiltinHop, is_coded, next_data, passthrough, respond};
use crate::{Body, BoxError};

/// Models an origin that sends heartbeats: writes a `:` comment (on an event boundary) whenever upstream
/// has been silent for `every_ms`. `check` puts it next to the origin to measure whether heartbeats would
/// fix a cut chain; it is not infrastructure, so it is not in the default matrix.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Heartbeat {
    /// Write a `:` comment after this many milliseconds without a byte from upstream.
    pub every_ms: u64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            every_ms: 500,
        }
    }
}

impl BuiltinHop for Heartbeat {
    fn label(&self) -> String {
        format!("heartbeat {}ms", self.every_ms)
    }

    fn validate(&self) -> Result<(), String> {
        if self.every_ms < 10 {
            return Err(format!(
                "`every_ms` must be at least 10 (heartbeats no faster than 10 ms), not {}",
                self.every_ms
            ));
        }
        Ok(())
    }

    async fn respond(
        &self,
        _asked: &Asked,
        mut head: http::response::Parts,
        body: Incoming,
    ) -> Response<Body> {
        // Comments cannot be spliced into a compressed body; and they change the length.
        if is_coded(&head.headers) {
            return respond(head, body, passthrough);
        }
        head.headers.remove(header::CONTENT_LENGTH);
        let every = Duration::from_millis(self.every_ms.max(10));
        respond(head, body, move |body, tx| heartbeat_pump(body, tx, every))
    }
}

async fn heartbeat_pump(mut body: Incoming, mut tx: Sender<Bytes, BoxError>, every: Duration) {
    // Heartbeats go only between events, so track whether the bytes so far end on a blank line.
    let mut tail: Vec<u8> = Vec::new();
    let at_boundary = |t: &[u8]| {
        t.is_empty() || t.ends_with(b"\n\n") || t.ends_with(b"\r\n\r\n") || t.ends_with(b"\r\r")
    };
    loop {
        match tokio::time::timeout(every, next_data(&mut body)).await {
            Err(_) => {
                if at_boundary(&tail) && tx.send_data(Bytes::from_static(b":\n\n")).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => return tx.abort(Box::new(e)),
            Ok(Some(Ok(d))) => {
                tail.extend_from_slice(&d[d.len().saturating_sub(4)..]);
                let keep = tail.len().saturating_sub(4);
                tail.drain(..keep);
                if tx.send_data(d).await.is_err() {
                    return;
                }
            }
        }
    }
}
