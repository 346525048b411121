//! ssegate's integration tests: one binary, one module per area.

mod browser;
mod check;
mod cli;
mod containers;
mod hostile;
mod invalid;
mod load;
mod secrets;
mod util;
