//! The real programs ssegate can put in a chain: one [`Program`] entry each, templates in
//! `proxies/<name>/`. Adding a program is an entry here plus its templates; the mechanism is
//! [`process`](super::process).

use super::process::Program;
use crate::cause_id::CauseId;

/// Every real program, by chain name.
pub static PROGRAMS: &[&Program] = &[&NGINX];

/// The program a chain names, if any.
pub fn program(name: &str) -> Option<&'static Program> {
    PROGRAMS.iter().copied().find(|p| p.name == name)
}

const NGINX_BUFFERING: &str = "nginx: `proxy_buffering off;` (and `proxy_http_version 1.1;` before 1.29.7) for the SSE location, or honour `X-Accel-Buffering`";

/// nginx as one foreground process (`daemon off; master_process off;`), its prefix and error log private.
pub static NGINX: Program = Program {
    name: "nginx",
    binary: "nginx",
    env: "SSEGATE_NGINX",
    package: "nginx-light",
    ext: "conf",
    default_config: "default",
    matrix: &["default", "unbuffered", "gzip", "http11"],
    argv: &[
        "-p",
        "{prefix}",
        "-c",
        "{config}",
        "-e",
        "{prefix}/error.log",
    ],
    logs: &["error.log"],
    version_args: &["-v"],
    version_word: "nginx/",
    port_taken: "Address already in use",
    known_cause: |config| match config {
        "short-idle" => Some((
            CauseId::IdleTimeout,
            "nginx: raise `proxy_read_timeout` for the SSE location above the stream's longest silence",
        )),
        "unbuffered" => None,
        _ => Some((CauseId::ProxyBuffering, NGINX_BUFFERING)),
    },
};
