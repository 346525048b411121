//! Where events come from: the built-in fixture origin, a command ssegate starts, or a running URL.

pub mod command;
pub mod fixture;
pub mod mcp;
pub mod profile;
pub mod replay;

pub use fixture::{FixtureServer, RequestLog};
pub use profile::Profile;
