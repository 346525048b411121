//! Intermediaries: whatever stands between the origin and the client.
//!
//! One trait, [`Intermediary`]: start in front of an upstream address and hand back a [`Running`] hop (its
//! listening address, its logs, a stop handle). *Real* hops run the real program as a child process
//! ([`nginx`]); *built-in* hops ([`builtin`]) run in-process on hyper and **model** what cannot run here
//! (serverless platforms, CDNs, Express's `compression`). Every hop binds 127.0.0.1 only.

pub mod builtin;
pub mod nginx;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::proc::ChildGuard;

/// A future that starts a hop.
pub type StartFuture<'a> = Pin<Box<dyn Future<Output = Result<Running, HopError>> + Send + 'a>>;

/// Something that can be put in front of an upstream.
pub trait Intermediary: Send + Sync {
    /// A short label for reports (`nginx default`, `compression`).
    fn label(&self) -> String;
    /// Start listening on 127.0.0.1 and forward to `upstream`.
    fn start(&self, upstream: SocketAddr) -> StartFuture<'_>;
}

/// What keeps a hop alive; dropping it stops the hop.
#[derive(Debug)]
pub enum StopHandle {
    /// An in-process server task.
    Task(tokio::task::JoinHandle<()>),
    /// A child process group and the directory it runs in.
    Child {
        guard: ChildGuard,
        log: PathBuf,
        _dir: tempfile::TempDir,
    },
}

impl Drop for StopHandle {
    fn drop(&mut self) {
        if let StopHandle::Task(t) = self {
            t.abort();
        }
    }
}

/// A started hop.
#[derive(Debug)]
pub struct Running {
    pub label: String,
    pub addr: SocketAddr,
    /// Program and version for real hops (`nginx/1.22.1`).
    pub program: Option<String>,
    pub stop: StopHandle,
}

impl Running {
    /// The last lines of the hop's log (real hops), for failure reports.
    pub fn logs(&self) -> String {
        match &self.stop {
            StopHandle::Task(_) => String::new(),
            StopHandle::Child { log, .. } => crate::proc::tail(log, 20),
        }
    }

    /// Whether the hop is still alive (a real hop's process has not exited).
    pub fn check_alive(&mut self) -> Result<(), HopError> {
        if let StopHandle::Child { guard, log, .. } = &mut self.stop
            && let Some(status) = guard.try_wait()
        {
            return Err(HopError::Exited {
                program: guard.name().to_string(),
                status: status.to_string(),
                log: crate::proc::tail(log, 20),
            });
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HopError {
    #[error("failed to find `{program}` on PATH; install it with `apt-get install -y {package}`")]
    Missing {
        program: &'static str,
        package: &'static str,
    },
    #[error("failed to use {} from ${variable}: it is not a file", path.display())]
    NotAFile {
        variable: &'static str,
        path: std::path::PathBuf,
    },
    #[error("failed to bind 127.0.0.1 for {hop}")]
    Bind {
        hop: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start {program}: it exited with {status}; last log lines:\n{log}")]
    Exited {
        program: String,
        status: String,
        log: String,
    },
    #[error(
        "failed to start {program}: not accepting connections after {waited_ms} ms; last log lines:\n{log}"
    )]
    NotReady {
        program: String,
        waited_ms: u64,
        log: String,
    },
    #[error("failed to render the {program} config")]
    Config {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// A hop as written in a case's `chain`: `name` or `name: options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopSpec {
    /// Real nginx with a template from `nginx/` (`default`, `unbuffered`, `gzip`, `http11`, `short-idle`).
    Nginx(String),
    Compression(builtin::CompressionOpts),
    ContentLength(builtin::ContentLengthOpts),
    Http10,
    Coalesce(builtin::CoalesceOpts),
    IdleCut(builtin::IdleCutOpts),
    Headers(builtin::HeadersOpts),
    Heartbeat(builtin::HeartbeatOpts),
}

/// Every hop name a chain accepts.
pub const HOP_NAMES: &[&str] = &[
    "nginx",
    "compression",
    "content-length",
    "http10",
    "coalesce",
    "idle-cut",
    "headers",
    "heartbeat",
];

impl HopSpec {
    /// A label for reports.
    pub fn label(&self) -> String {
        self.intermediary().label()
    }

    /// The cause this hop is known to produce when it breaks a stream, with the operator's fix for it.
    pub fn known_cause(&self) -> Option<(&'static str, &'static str)> {
        const NGINX: &str = "nginx: `proxy_buffering off;` (and `proxy_http_version 1.1;` before 1.29.7) for the SSE location, or honour `X-Accel-Buffering`";
        Some(match self {
            HopSpec::Nginx(c) if c == "short-idle" => (
                "idle-timeout",
                "nginx: raise `proxy_read_timeout` for the SSE location above the stream's longest silence",
            ),
            HopSpec::Nginx(c) if c == "unbuffered" => return None,
            HopSpec::Nginx(_) => ("proxy-buffering", NGINX),
            HopSpec::Compression(_) => (
                "compression-buffering",
                "exclude text/event-stream from the compression middleware (Express `compression({filter})`, nginx `gzip_types`, Traefik `excludedContentTypes`)",
            ),
            HopSpec::ContentLength(_) => (
                "whole-body-buffering",
                "enable the platform's response streaming (Lambda InvokeMode RESPONSE_STREAM, API Gateway responseTransferMode STREAM, Vercel/Netlify streaming functions, APIM buffer-response=\"false\")",
            ),
            HopSpec::Coalesce(_) => (
                "proxy-buffering",
                "turn off the proxy's response buffering for the SSE route (nginx `proxy_buffering off`, Apache `flushpackets=on`, a gateway's buffer setting)",
            ),
            HopSpec::IdleCut(_) => (
                "idle-timeout",
                "raise the idle timeout above the stream's longest silence (nginx `proxy_read_timeout`, ALB `idle_timeout`, Cloudflare 100 s is fixed)",
            ),
            HopSpec::Http10 | HopSpec::Headers(_) | HopSpec::Heartbeat(_) => return None,
        })
    }

    /// The runnable intermediary.
    pub fn intermediary(&self) -> Box<dyn Intermediary> {
        match self {
            HopSpec::Nginx(c) => Box::new(nginx::Nginx::new(c)),
            HopSpec::Compression(o) => Box::new(builtin::Builtin::Compression(o.clone())),
            HopSpec::ContentLength(o) => Box::new(builtin::Builtin::ContentLength(o.clone())),
            HopSpec::Http10 => Box::new(builtin::Builtin::Http10),
            HopSpec::Coalesce(o) => Box::new(builtin::Builtin::Coalesce(o.clone())),
            HopSpec::IdleCut(o) => Box::new(builtin::Builtin::IdleCut(o.clone())),
            HopSpec::Headers(o) => Box::new(builtin::Builtin::Headers(o.clone())),
            HopSpec::Heartbeat(o) => Box::new(builtin::Builtin::Heartbeat(o.clone())),
        }
    }

    fn from_name(name: &str) -> Result<HopSpec, String> {
        Ok(match name {
            "nginx" => HopSpec::Nginx("default".into()),
            "compression" => HopSpec::Compression(Default::default()),
            "content-length" => HopSpec::ContentLength(Default::default()),
            "http10" => HopSpec::Http10,
            "coalesce" => HopSpec::Coalesce(Default::default()),
            "idle-cut" => HopSpec::IdleCut(Default::default()),
            "headers" => HopSpec::Headers(Default::default()),
            "heartbeat" => HopSpec::Heartbeat(Default::default()),
            other => {
                return Err(format!(
                    "unknown hop `{other}`, {}",
                    crate::text::name_help(other, HOP_NAMES)
                ));
            }
        })
    }
}

impl<'de> Deserialize<'de> for HopSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HopSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(
                    f,
                    "a hop: `name` or `name: options` ({})",
                    HOP_NAMES.join(", ")
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HopSpec, E> {
                HopSpec::from_name(v).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HopSpec, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom("empty hop"));
                };
                let hop = match key.as_str() {
                    "nginx" => {
                        let config: String = map.next_value()?;
                        let known = nginx::configs();
                        if !known.contains(&config) {
                            return Err(de::Error::custom(format!(
                                "unknown nginx config `{config}`, {}",
                                crate::text::name_help(&config, &known)
                            )));
                        }
                        HopSpec::Nginx(config)
                    }
                    "compression" => HopSpec::Compression(map.next_value()?),
                    "content-length" => HopSpec::ContentLength(map.next_value()?),
                    "http10" => {
                        let _: de::IgnoredAny = map.next_value()?;
                        HopSpec::Http10
                    }
                    "coalesce" => HopSpec::Coalesce(map.next_value()?),
                    "idle-cut" => HopSpec::IdleCut(map.next_value()?),
                    "headers" => {
                        let o: builtin::HeadersOpts = map.next_value()?;
                        for (k, v) in &o.set {
                            if http::HeaderName::from_bytes(k.as_bytes()).is_err()
                                || http::HeaderValue::from_str(v).is_err()
                            {
                                return Err(de::Error::custom(format!(
                                    "`{k}: {v}` is not a valid header"
                                )));
                            }
                        }
                        if let Some(bad) = o
                            .remove
                            .iter()
                            .find(|k| http::HeaderName::from_bytes(k.as_bytes()).is_err())
                        {
                            return Err(de::Error::custom(format!(
                                "`{bad}` is not a valid header name"
                            )));
                        }
                        HopSpec::Headers(o)
                    }
                    "heartbeat" => HopSpec::Heartbeat(map.next_value()?),
                    other => return Err(de::Error::custom(HopSpec::from_name(other).unwrap_err())),
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(
                        "a hop is one `name: options` pair; start a new `- ` item for the next hop",
                    ));
                }
                Ok(hop)
            }
        }
        d.deserialize_any(V)
    }
}

/// A started chain; dropping it stops every hop.
#[derive(Debug, Default)]
pub struct Chain {
    /// Origin side first.
    pub hops: Vec<Running>,
}

impl Chain {
    /// Start `specs` (origin side first) in front of `origin`: back to front, each hop given the address
    /// of the one behind it.
    pub async fn start(specs: &[HopSpec], origin: SocketAddr) -> Result<Chain, HopError> {
        let mut chain = Chain::default();
        let mut upstream = origin;
        for spec in specs {
            let hop = spec.intermediary().start(upstream).await?;
            upstream = hop.addr;
            chain.hops.push(hop);
        }
        Ok(chain)
    }

    /// The address the client talks to (`origin` when the chain is empty).
    pub fn entry(&self, origin: SocketAddr) -> SocketAddr {
        self.hops.last().map_or(origin, |h| h.addr)
    }

    /// Fail if a real hop has died.
    pub fn check_alive(&mut self) -> Result<(), HopError> {
        self.hops.iter_mut().try_for_each(Running::check_alive)
    }

    /// Programs and versions of the real hops.
    pub fn programs(&self) -> Vec<String> {
        self.hops.iter().filter_map(|h| h.program.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Result<Vec<HopSpec>, String> {
        serde_saphyr::from_str::<Vec<HopSpec>>(y).map_err(|e| e.to_string())
    }

    #[test]
    fn hops_parse_as_names_or_single_key_maps() {
        let hops =
            parse("- compression\n- nginx: gzip\n- coalesce: {bytes: 100}\n- http10\n").unwrap();
        assert_eq!(hops[0], HopSpec::Compression(Default::default()));
        assert_eq!(hops[1], HopSpec::Nginx("gzip".into()));
        assert_eq!(
            hops[2],
            HopSpec::Coalesce(builtin::CoalesceOpts { bytes: 100 })
        );
        assert_eq!(hops[3], HopSpec::Http10);
    }

    #[test]
    fn unknown_hops_and_options_are_errors_with_suggestions() {
        let e = parse("- compresion\n").unwrap_err();
        assert!(e.contains("did you mean `compression`"), "{e}");
        let e = parse("- nginx: unbufered\n").unwrap_err();
        assert!(e.contains("did you mean `unbuffered`"), "{e}");
        let e = parse("- coalesce: {byte: 1}\n").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let e = parse("- {compression: {}, http10: ~}\n").unwrap_err();
        assert!(e.contains("one `name: options` pair"), "{e}");
    }
}
