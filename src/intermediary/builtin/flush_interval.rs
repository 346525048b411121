//! `flush-interval`: a model of a periodic flusher, which writes out what it holds on a timer instead of
//! after every write.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::channel::Sender;
use hyper::body::Incoming;
use serde::Deserialize;

use super::{Asked, BuiltinHop, next_data, respond};
use crate::cause_id::CauseId;
use crate::{Body, BoxError};

/// Models a periodic flusher between origin and client (a timer-based output buffer in a middleware, an
/// app server or a proxy): the first byte after a flush starts a timer, and everything that arrived is
/// written out when it fires, or when the upstream ends. Events a gap apart come out in clumps once the
/// interval is longer than half the gap. Not Caddy or Go's `httputil.ReverseProxy`: both flush
/// `text/event-stream` and unknown-length responses at once, whatever their flush interval says.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlushInterval {
    /// Milliseconds from the first byte held to the flush.
    pub every_ms: u64,
}

impl Default for FlushInterval {
    fn default() -> Self {
        FlushInterval {
            every_ms: 1000,
        }
    }
}

impl BuiltinHop for FlushInterval {
    fn label(&self) -> String {
        format!("flush-interval {}ms", self.every_ms)
    }

    fn validate(&self) -> Result<(), String> {
        if self.every_ms == 0 {
            return Err("`every_ms` must be above 0 (a proxy that flushes every write needs no hop)".into());
        }
        Ok(())
    }

    fn known_cause(&self) -> Option<(CauseId, &'static str)> {
        Some((
            CauseId::ProxyBuffering,
            "flush every write for text/event-stream: turn off the timed flush or output buffering for the SSE route",
        ))
    }

    async fn respond(
        &self,
        _asked: &Asked,
        head: http::response::Parts,
        body: Incoming,
    ) -> Response<Body> {
        let every = Duration::from_millis(self.every_ms);
        respond(head, body, move |body, tx| interval_pump(body, tx, every))
    }
}

async fn interval_pump(mut body: Incoming, mut tx: Sender<Bytes, BoxError>, every: Duration) {
    let mut held: Vec<u8> = Vec::new();
    let mut flush_at: Option<tokio::time::Instant> = None;
    loop {
        let next = async {
            match flush_at {
                Some(at) => tokio::time::timeout_at(at, next_data(&mut body)).await.ok(),
                None => Some(next_data(&mut body).await),
            }
        };
        match next.await {
            // The timer fired: write out what is held.
            None => {
                flush_at = None;
                if tx.send_data(Bytes::from(std::mem::take(&mut held))).await.is_err() {
                    return;
                }
            }
            Some(None) => break,
            Some(Some(Err(e))) => return tx.abort(Box::new(e)),
            Some(Some(Ok(d))) => {
                held.extend_from_slice(&d);
                flush_at.get_or_insert_with(|| tokio::time::Instant::now() + every);
            }
        }
    }
    if !held.is_empty() {
        let _ = tx.send_data(Bytes::from(held)).await;
    }
}
