//! Helpers every module of the integration binary shares.

use std::process::Command;

/// The built `ssegate` binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ssegate"))
}

/// Run `cmd`; its exit code and its stderr as text.
pub fn code_and_stderr(cmd: &mut Command) -> (Option<i32>, String) {
    let out = cmd.output().expect("the command runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
