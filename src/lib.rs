//! ssegate measures whether a Server-Sent Events stream still arrives event by event, on time, once real
//! infrastructure stands between the origin and the browser.
//!
//! Data flows one way (see `ARCHITECTURE.md`): a [`case`] or the CLI describes a scenario; the
//! [`runner`] starts an [`origin`] and a chain of [`intermediary`] hops; the [`probe`] records every read and
//! event; [`verdict`] judges the recording; [`report`] renders the outcome.

pub mod assets;
pub mod browser;
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
pub mod load;
pub mod mcp;
pub mod normalize;
pub mod origin;
pub mod phase;
pub mod pressure;
pub mod probe;
pub mod proc;
pub mod protocol;
pub mod report;
pub mod request;
pub mod runner;
pub mod scenario;
pub mod secrets;
pub mod sse;
pub mod tap;
pub mod text;
pub mod through;
pub mod tls;
pub mod verdict;
pub mod yaml;

/// The error type bodies carry through hyper.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type every built-in server answers with.
pub type Body = http_body_util::combinators::BoxBody<bytes::Bytes, BoxError>;

/// The layers of the data flow, lowest first. A module may use only modules of lower layers (see
/// `ARCHITECTURE.md`); the test below reads the sources and fails on an arrow that runs back up.
#[cfg(test)]
const LAYERS: &[&[&str]] = &[
    &[
        "text", "error", "events", "cause_id", "assets", "proc", "decode", "secrets", "tls",
    ],
    &["yaml", "sse", "browser", "pressure", "protocol"],
    &["probe"],
    &["verdict", "intermediary", "origin", "request"],
    &["load", "tap", "normalize", "mcp"],
    &["through"],
    &["phase"],
    &["scenario", "doctor", "case"],
    &["config", "runner"],
    &["check"],
    &["report"],
    &["cli"],
];

#[cfg(test)]
mod architecture {
    use super::LAYERS;

    fn layer(module: &str) -> Option<usize> {
        LAYERS.iter().position(|l| l.contains(&module))
    }

    #[test]
    fn no_module_uses_one_above_it() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        let mut dirs = vec![src.clone()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    files.push(p);
                }
            }
        }
        let mut wrong = Vec::new();
        for f in files {
            let rel = f.strip_prefix(&src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            if top == "lib" || top == "main" {
                continue;
            }
            let Some(own) = layer(&top) else {
                wrong.push(format!("{top} is in no layer of LAYERS"));
                continue;
            };
            let text = std::fs::read_to_string(&f).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for used in line.split("crate::").skip(1) {
                    let name: String = used
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if let Some(l) = layer(&name)
                        && name != top
                        && l >= own
                    {
                        wrong.push(format!("{} uses crate::{name}", rel.display()));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "arrows against the data flow: {wrong:#?}");
    }
}
