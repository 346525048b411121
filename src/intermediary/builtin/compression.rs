//! `compression`: a model of Express's `compression` middleware (1.7/1.8, Node zlib) without `res.flush()`.

use crate::cause_id::CauseId;
use http::Response;
use http::header::{self, HeaderValue};
use hyper::body::Incoming;
use serde::Deserialize;

use super::{Asked, BuiltinHop, buffer_size, next_data, passthrough, respond};
use crate::{Body, BoxError};
use bytes::Bytes;
use http_body_util::channel::Sender;

/// Gzips when the request accepts gzip and the type is compressible (`text/*`, JSON, JavaScript, XML),
/// holding compressed output until a `buffer`-sized block fills or the stream ends. Skipped on
/// `Cache-Control: no-transform`, on a `Content-Encoding` other than `identity`, and on HEAD.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Compression {
    /// Compressed bytes held before anything is written (Node zlib's `chunkSize`, 16 KiB).
    pub buffer: usize,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            buffer: 16 * 1024,
        }
    }
}

impl BuiltinHop for Compression {
    fn label(&self) -> String {
        if self == &Compression::default() {
            "compression".into()
        } else {
            format!("compression {}B", self.buffer)
        }
    }

    fn in_matrix() -> Option<Self> {
        Some(Compression::default())
    }

    fn validate(&self) -> Result<(), String> {
        buffer_size("buffer", self.buffer as u64)
    }

    fn known_cause(&self) -> Option<(CauseId, &'static str)> {
        Some((
            CauseId::CompressionBuffering,
            "exclude text/event-stream from the compression middleware (Express `compression({filter})`, nginx `gzip_types`, Traefik `excludedContentTypes`)",
        ))
    }

    async fn respond(
        &self,
        asked: &Asked,
        mut head: http::response::Parts,
        body: Incoming,
    ) -> Response<Body> {
        if !should_compress(&asked.headers, &head.headers, asked.is_head) {
            return respond(head, body, passthrough);
        }
        head.headers.remove(header::CONTENT_LENGTH);
        head.headers
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        head.headers
            .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        let buffer = self.buffer.max(1);
        respond(head, body, move |body, tx| gzip_pump(body, tx, buffer))
    }
}

async fn gzip_pump(mut body: Incoming, mut tx: Sender<Bytes, BoxError>, block: usize) {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    while let Some(d) = next_data(&mut body).await {
        match d {
            Ok(d) => {
                if enc.write_all(&d).is_err() {
                    return tx.abort("compression: encoder failed".into());
                }
                // Like Node's zlib stream, output leaves only in whole blocks of `block` bytes.
                while enc.get_ref().len() >= block {
                    let out = enc.get_mut();
                    let rest = out.split_off(block);
                    let full = std::mem::replace(out, rest);
                    if tx.send_data(Bytes::from(full)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => return tx.abort(Box::new(e)),
        }
    }
    match enc.finish() {
        Ok(rest) if !rest.is_empty() => {
            let _ = tx.send_data(Bytes::from(rest)).await;
        }
        Ok(_) => {}
        Err(_) => tx.abort("compression: encoder failed".into()),
    }
}

/// Express `compression`'s decision (default filter, no threshold for streams).
pub fn should_compress(req: &http::HeaderMap, resp: &http::HeaderMap, is_head: bool) -> bool {
    if is_head {
        return false;
    }
    let get = |m: &http::HeaderMap, n: header::HeaderName| {
        m.get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let accepts_gzip = get(req, header::ACCEPT_ENCODING).split(',').any(|c| {
        let mut parts = c.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q0 = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
        (name == "gzip" || name == "*") && !q0
    });
    let ct = get(resp, header::CONTENT_TYPE);
    let mt = ct.split(';').next().unwrap_or("").trim();
    let compressible = mt.starts_with("text/")
        || mt.ends_with("+json")
        || mt.ends_with("+xml")
        || matches!(
            mt,
            "application/json" | "application/javascript" | "application/xml"
        );
    let no_transform = get(resp, header::CACHE_CONTROL)
        .split(',')
        .any(|d| d.trim() == "no-transform");
    let ce = get(resp, header::CONTENT_ENCODING);
    let encoded = !ce.is_empty() && ce.trim() != "identity";
    accepts_gzip && compressible && !no_transform && !encoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderName;

    fn h(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn compression_follows_express_compression_rules() {
        let req = h(&[("accept-encoding", "gzip, deflate, br")]);
        let sse = h(&[("content-type", "text/event-stream")]);
        assert!(should_compress(&req, &sse, false));
        assert!(!should_compress(&req, &sse, true), "HEAD");
        assert!(!should_compress(&h(&[]), &sse, false), "no Accept-Encoding");
        assert!(!should_compress(
            &h(&[("accept-encoding", "gzip;q=0")]),
            &sse,
            false
        ));
        let nt = h(&[
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache, no-transform"),
        ]);
        assert!(!should_compress(&req, &nt, false), "no-transform honoured");
        let none = h(&[
            ("content-type", "text/event-stream"),
            ("content-encoding", "none"),
        ]);
        assert!(
            !should_compress(&req, &none, false),
            "any coding but identity"
        );
        let ident = h(&[
            ("content-type", "text/event-stream"),
            ("content-encoding", "identity"),
        ]);
        assert!(
            should_compress(&req, &ident, false),
            "identity does not opt out"
        );
        let png = h(&[("content-type", "image/png")]);
        assert!(!should_compress(&req, &png, false));
    }
}
