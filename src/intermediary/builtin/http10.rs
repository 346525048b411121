//! `http10`: a model of an HTTP/1.0 hop.

use http::header::{self, HeaderValue};
use http::{Response, Version};
use hyper::body::Incoming;
use serde::{Deserialize, Deserializer};

use super::{Asked, BuiltinHop, passthrough, respond};
use crate::Body;

/// Answers `HTTP/1.0`, close-delimited, no chunking. Takes no options (`http10` or `http10: ~`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Http10;

impl<'de> Deserialize<'de> for Http10 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Http10)
    }
}

impl BuiltinHop for Http10 {
    fn label(&self) -> String {
        "http10".into()
    }

    fn in_matrix() -> Option<Self> {
        Some(Http10)
    }

    async fn respond(
        &self,
        _asked: &Asked,
        mut head: http::response::Parts,
        body: Incoming,
    ) -> Response<Body> {
        head.version = Version::HTTP_10;
        head.headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        respond(head, body, passthrough)
    }
}
