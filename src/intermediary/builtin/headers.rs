//! `headers`: a model of a CDN or gateway that rewrites response headers.

use http::Response;
use http::header::{HeaderName, HeaderValue};
use hyper::body::Incoming;
use serde::Deserialize;

use super::{Asked, BuiltinHop, passthrough, respond};
use crate::Body;

/// Adds, removes or overrides response headers. Needs options, so it is not in the default matrix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Headers {
    /// Headers to add or replace.
    #[serde(default)]
    pub set: std::collections::BTreeMap<String, String>,
    /// Header names to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

impl BuiltinHop for Headers {
    /// `headers(+name: value, -name)`, secret values redacted.
    fn label(&self) -> String {
        let mut parts: Vec<String> = self
            .set
            .iter()
            .map(|(k, v)| {
                let v = if crate::secrets::is_secret_header(k, &[]) {
                    "<redacted>"
                } else {
                    v
                };
                format!("+{k}: {v}")
            })
            .collect();
        parts.extend(self.remove.iter().map(|k| format!("-{k}")));
        format!("headers({})", parts.join(", "))
    }

    fn validate(&self) -> Result<(), String> {
        for (k, v) in &self.set {
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

    async fn respond(
        &self,
        _asked: &Asked,
        mut head: http::response::Parts,
        body: Incoming,
    ) -> Response<Body> {
        for name in &self.remove {
            if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
                head.headers.remove(n);
            }
        }
        for (k, v) in &self.set {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                head.headers.insert(k, v);
            }
        }
        respond(head, body, passthrough)
    }
}
