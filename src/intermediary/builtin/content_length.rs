//! `content-length`: a model of serverless whole-body buffering.

use crate::cause_id::CauseId;
use std::convert::Infallible;

use bytes::Bytes;
use http::Response;
use http::header::{self, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde::Deserialize;

use super::{Asked, BuiltinHop, buffer_size, bad_gateway};
use crate::Body;

/// Models a Vercel/Netlify function returning a non-stream body, Lambda `BUFFERED`, API Gateway REST:
/// reads the whole upstream body, then answers with `Content-Length`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContentLength {
    /// Largest body buffered (Lambda's buffered limit, 6 MB); beyond it the response fails with 502.
    pub max_bytes: u64,
}

impl Default for ContentLength {
    fn default() -> Self {
        ContentLength {
            max_bytes: 6_000_000,
        }
    }
}

impl BuiltinHop for ContentLength {
    fn label(&self) -> String {
        "content-length".into()
    }

    fn in_matrix() -> Option<Self> {
        Some(ContentLength::default())
    }

    fn validate(&self) -> Result<(), String> {
        buffer_size("max_bytes", self.max_bytes)
    }

    fn known_cause(&self) -> Option<(CauseId, &'static str)> {
        Some((
            CauseId::WholeBodyBuffering,
            "enable the platform's response streaming (Lambda InvokeMode RESPONSE_STREAM, API Gateway responseTransferMode STREAM, Vercel/Netlify streaming functions, APIM buffer-response=\"false\")",
        ))
    }

    async fn respond(
        &self,
        _asked: &Asked,
        mut head: http::response::Parts,
        mut body: Incoming,
    ) -> Response<Body> {
        let mut collected = Vec::new();
        loop {
            match body.frame().await {
                None => break,
                Some(Err(e)) => return bad_gateway(format!("upstream body: {e}")),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        collected.extend_from_slice(&d);
                        if collected.len() as u64 > self.max_bytes {
                            return bad_gateway(format!(
                                "response body exceeds {} bytes",
                                self.max_bytes
                            ));
                        }
                    }
                }
            }
        }
        head.headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(collected.len()));
        Response::from_parts(
            head,
            Full::new(Bytes::from(collected))
                .map_err(|never: Infallible| match never {})
                .boxed(),
        )
    }
}
