//! Where events come from: the built-in fixture origin (more target kinds join here).

pub mod command;
pub mod fixture;
pub mod profile;

pub use fixture::{FixtureServer, RequestLog};
pub use profile::Profile;
