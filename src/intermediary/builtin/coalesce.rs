//! `coalesce`: a model of a fixed-size proxy buffer.

use crate::cause_id::CauseId;
use bytes::Bytes;
use http::Response;
use http_body_util::channel::Sender;
use hyper::body::Incoming;
use serde::Deserialize;

use super::{Asked, BuiltinHop, buffer_size, next_data, respond};
use crate::{Body, BoxError};

/// Holds bytes until `bytes` have accumulated or the stream ends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Coalesce {
    pub bytes: usize,
}

impl Default for Coalesce {
    fn default() -> Self {
        Coalesce {
            bytes: 4096,
        }
    }
}

impl BuiltinHop for Coalesce {
    fn label(&self) -> String {
        format!("coalesce {}B", self.bytes)
    }

    fn validate(&self) -> Result<(), String> {
        buffer_size("bytes", self.bytes as u64)
    }

    fn in_matrix() -> Option<Self> {
        Some(Coalesce::default())
    }

    fn known_cause(&self) -> Option<(CauseId, &'static str)> {
        Some((
            CauseId::ProxyBuffering,
            "turn off the proxy's response buffering for the SSE route (nginx `proxy_buffering off`, Apache `flushpackets=on`, a gateway's buffer setting)",
        ))
    }

    async fn respond(
        &self,
        _asked: &Asked,
        head: http::response::Parts,
        body: Incoming,
    ) -> Response<Body> {
        let n = self.bytes.max(1);
        respond(head, body, move |body, tx| coalesce_pump(body, tx, n))
    }
}

async fn coalesce_pump(mut body: Incoming, mut tx: Sender<Bytes, BoxError>, n: usize) {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(d) = next_data(&mut body).await {
        match d {
            Ok(d) => {
                buf.extend_from_slice(&d);
                while buf.len() >= n {
                    let rest = buf.split_off(n);
                    let full = std::mem::replace(&mut buf, rest);
                    if tx.send_data(Bytes::from(full)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => return tx.abort(Box::new(e)),
        }
    }
    if !buf.is_empty() {
        let _ = tx.send_data(Bytes::from(buf)).await;
    }
}
