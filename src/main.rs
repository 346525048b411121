//! The `ssegate` binary: parse the command line and hand it to the library.

use clap::Parser;

fn main() {
    let cli = ssegate::cli::Cli::parse();
    std::process::exit(ssegate::cli::run(cli));
}
