//! ssegate measures whether a Server-Sent Events stream still arrives event by event, on time, once real
//! infrastructure stands between the origin and the browser.
//!
//! Data flows one way (see `ARCHITECTURE.md`): a [`case`] or the CLI describes a scenario; the
//! [`runner`] starts an [`origin`] and a chain of [`intermediary`] hops; the [`probe`] records every read and
//! event; [`verdict`] judges the recording; [`report`] renders the outcome.

pub mod assets;
pub mod case;
pub mod cause_id;
pub mod check;
pub mod cli;
pub mod config;
pub mod decode;
pub mod doctor;
pub mod error;
pub mod events;
pub mod intermediary;
pub mod origin;
pub mod probe;
pub mod proc;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod sse;
pub mod tap;
pub mod text;
pub mod verdict;

/// The error type bodies carry through hyper.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type every built-in server answers with.
pub type Body = http_body_util::combinators::BoxBody<bytes::Bytes, BoxError>;
