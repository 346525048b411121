//! `ssegate init`: write a commented starter `ssegate.yaml`.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, CmdResult, write_file};
use crate::error::exit;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write it.
    #[arg(default_value = "ssegate.yaml")]
    pub path: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

pub(super) fn run(a: InitArgs) -> CmdResult {
    if a.path.exists() && !a.force {
        return Err(CliError::Usage(format!(
            "failed to write {}: it exists (use --force to overwrite)",
            a.path.display()
        )));
    }
    write_file(&a.path, crate::config::STARTER)?;
    super::eprint_line(&format!("wrote {}", a.path.display()));
    Ok(exit::OK)
}
