//! `idle-cut`: a model of an idle timeout, scaled down.

use crate::cause_id::CauseId;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::channel::Sender;
use hyper::body::Incoming;
use serde::Deserialize;

use super::{Asked, BuiltinHop, positive, next_data, respond};
use crate::{Body, BoxError};

/// Models an idle timeout (nginx `proxy_read_timeout`, ALB, Cloudflare 100 s) scaled down: ends the
/// response abruptly after `after_ms` without a byte from upstream.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdleCut {
    /// Close the response after this many milliseconds without a byte from upstream.
    pub after_ms: u64,
}

impl Default for IdleCut {
    fn default() -> Self {
        IdleCut {
            after_ms: 1000,
        }
    }
}

impl BuiltinHop for IdleCut {
    fn label(&self) -> String {
        format!("idle-cut {}ms", self.after_ms)
    }

    /// Five seconds: long enough for a stream with a quick cadence, short enough to show a slow one cut.
    fn in_matrix() -> Option<Self> {
        Some(IdleCut { after_ms: 5000 })
    }

    fn known_cause(&self) -> Option<(CauseId, &'static str)> {
        Some((
            CauseId::IdleTimeout,
            "raise the idle timeout above the stream's longest silence (nginx `proxy_read_timeout`, ALB `idle_timeout`, Cloudflare 100 s is fixed)",
        ))
    }

    fn idle_limit(&self) -> Option<Duration> {
        Some(Duration::from_millis(self.after_ms))
    }

    fn validate(&self) -> Result<(), String> {
        positive("after_ms", self.after_ms)
    }

    async fn respond(
        &self,
        _asked: &Asked,
        head: http::response::Parts,
        body: Incoming,
    ) -> Response<Body> {
        let idle = Duration::from_millis(self.after_ms);
        respond(head, body, move |body, tx| idle_pump(body, tx, idle))
    }
}

async fn idle_pump(mut body: Incoming, mut tx: Sender<Bytes, BoxError>, idle: Duration) {
    loop {
        match tokio::time::timeout(idle, next_data(&mut body)).await {
            Err(_) => {
                return tx.abort(format!("idle-cut: no byte for {} ms", idle.as_millis()).into());
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => return tx.abort(Box::new(e)),
            Ok(Some(Ok(d))) => {
                if tx.send_data(d).await.is_err() {
                    return;
                }
            }
        }
    }
}
