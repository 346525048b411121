//! Conformance cases: the YAML model, loading with precise errors, and validation.
//!
//! The schema is documented in `cases/README.md`. Unknown keys are errors (a typo must never silently
//! disable a check); every error names the file, line and column, shows the line, and suggests the nearest
//! valid key or name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::error::FileError;
use crate::intermediary::HopSpec;
use crate::origin::profile::{Profile, ProfilePatch};
use crate::request::{Invalid, RequestSpec};
use crate::text::name_help;
use crate::verdict::{Delivery, FindingId};
use crate::yaml::parse_yaml;

crate::phase::case_plans! {
    /// One conformance case (`cases/NAME.yaml`); the phases' keys (`second_client`, `load`, `lifecycle`,
    /// `browser`) come from the table in [`crate::phase`], between `request` and `expect`.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CaseFile {
        [
            /// What this case proves, and where the measurement disagrees with the rule base.
            pub description: String,
            pub target: TargetSpec,
            /// Hops in the order the response passes through them: the first is next to the origin, the
            /// last is what the client talks to. Empty = direct.
            #[serde(default)]
            pub chain: Vec<HopSpec>,
            #[serde(default)]
            pub request: CaseRequest,
        ]
        [
            pub expect: Expect,
        ]
    }
}

/// The origin: a fixture profile plus overrides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub profile: Spanned<String>,
    #[serde(default)]
    pub overrides: ProfilePatch,
}

/// A case's `request:`, the probe's request as the case changes it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRequest {
    pub method: Option<String>,
    /// Headers to add or replace; an empty value removes a default header.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    /// `false` sends no `Accept-Encoding` at all.
    pub compression: Option<bool>,
    /// How long to listen at most, in milliseconds.
    pub duration_ms: Option<u64>,
    /// How to read the stream (`auto` by default: recognised from the response).
    pub protocol: Option<crate::protocol::Protocol>,
    /// With an MCP origin: the tool to call (`{tool: slow_task, args: {…}}`); implies `protocol: mcp`.
    pub mcp: Option<crate::protocol::McpTool>,
}

crate::phase::case_expect! {
    /// What must hold; what the phases must find comes after these keys (`sharing`, `capacity`,
    /// `reconnect`, `disconnect`, `browser`).
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Expect {
        pub delivery: Delivery,
        /// Finding ids that must be reported.
        #[serde(default)]
        pub findings: Vec<Spanned<String>>,
        /// Finding ids that must not be reported.
        #[serde(default)]
        pub absent: Vec<Spanned<String>>,
        /// A token stream's delta that arrives this many ms after the origin sent it counts as held
        /// (default 100).
        #[serde(default)]
        pub token_hold_ms: Option<u64>,
    }
}

/// A loaded, validated case.
#[derive(Debug, Clone)]
pub struct Case {
    /// File stem: the case's name.
    pub name: String,
    pub path: PathBuf,
    pub file: CaseFile,
    /// The profile with the case's overrides applied.
    pub profile: Profile,
}

impl Case {
    /// The probe's request: what `request` says, judged with `expect.token_hold_ms`.
    pub fn request_spec(&self) -> RequestSpec {
        RequestSpec {
            token_hold: self.file.expect.token_hold_ms.map(Duration::from_millis),
            ..self.file.request.spec()
        }
    }

    /// Load and validate one case; profiles come from `profiles_dir`.
    pub fn load(path: &Path, profiles_dir: &Path) -> Result<Case, FileError> {
        let src = read(path)?;
        let file: CaseFile = parse_yaml(path, &src)?;
        let at = |s: &Spanned<String>, msg: String, help: Option<String>| {
            FileError::at(
                path,
                &src,
                s.referenced.line() as usize,
                s.referenced.column() as usize,
                msg,
                help,
            )
        };
        let known = crate::origin::profile::list(profiles_dir);
        let name = &file.target.profile.value;
        if !known.iter().any(|k| k == name) {
            return Err(at(
                &file.target.profile,
                format!("unknown fixture profile `{name}`"),
                Some(name_help(name, &known)),
            ));
        }
        for id in file.expect.findings.iter().chain(&file.expect.absent) {
            if let Err(e) = id.value.parse::<FindingId>() {
                return Err(at(id, e.to_string(), Some(e.help())));
            }
        }
        for id in &file.expect.findings {
            if file.expect.absent.iter().any(|a| a.value == id.value) {
                return Err(at(
                    id,
                    format!("finding `{}` is both expected and absent", id.value),
                    None,
                ));
            }
        }
        check_request(&file.request, path, &src)?;
        if file.expect.token_hold_ms == Some(0) {
            let (line, column) = crate::yaml::key_location(&src, &["expect", "token_hold_ms"]);
            return Err(FileError::at(
                path,
                &src,
                line,
                column,
                "`expect.token_hold_ms` must be above 0",
                Some("100 ms is about where people see a stall".into()),
            ));
        }
        if let Some(why) = crate::intermediary::chain_problem(&file.chain) {
            let (line, column) = crate::yaml::key_location(&src, &["chain"]);
            return Err(FileError::at(path, &src, line, column, why, None));
        }
        // Where a value is, for a message about it.
        let at_value = |line: u64, column: u64, msg: String, help: Option<String>| {
            FileError::at(path, &src, line as usize, column as usize, msg, help)
        };
        // A phase's key and its expectation come together: each is refused without the other.
        for p in file.paired_phases() {
            match (p.given, p.expected) {
                (Some((at, valid)), expected) => {
                    if let Err(m) = valid {
                        return Err(at_value(at.line(), at.column(), m, None));
                    }
                    if expected.is_none() {
                        let help = Some(format!("one of: {}", p.values));
                        return Err(at_value(at.line(), at.column(), p.missing.into(), help));
                    }
                }
                (None, Some(at)) => {
                    return Err(at_value(at.line(), at.column(), p.alone.into(), None));
                }
                (None, None) => {}
            }
        }
        let base = Profile::load(profiles_dir, name)?;
        let profile = file.target.overrides.apply(&base);
        if let Err(m) = profile.validate() {
            return Err(at(
                &file.target.profile,
                format!("the profile with this case's overrides is invalid: {m}"),
                None,
            ));
        }
        Ok(Case {
            name: path
                .file_stem()
                .map(|s| printable(&s.to_string_lossy()))
                .unwrap_or_default(),
            path: path.to_path_buf(),
            file,
            profile,
        })
    }

    /// The chain written as `origin → hop → … → client`.
    /// Why this case cannot run here: the first real program of its chain that is not installed, with
    /// the package to install. Such a case is skipped with this reason, never passed.
    pub fn missing_program(&self) -> Option<String> {
        self.file
            .chain
            .iter()
            .find_map(HopSpec::missing)
            .or_else(|| {
                self.browser_plan()
                    .and_then(|_| crate::browser::missing())
                    .map(|why| format!("the browser probe needs it: {why}"))
            })
    }

    /// Whether the case runs the browser probe, and whether with the connection limit.
    pub fn browser_plan(&self) -> Option<bool> {
        self.file.browser.as_ref().and_then(|b| b.value.plan())
    }

    /// This case with its chain placed on `backend` ([`HopSpec::on_backend`]); an error says which hop
    /// has no place there, and the case is skipped with it.
    pub fn on_backend(&self, backend: crate::intermediary::Backend) -> Result<Case, String> {
        let mut c = self.clone();
        c.file.chain = self
            .file
            .chain
            .iter()
            .map(|h| h.on_backend(backend))
            .collect::<Result<_, _>>()?;
        Ok(c)
    }

    pub fn chain_label(&self) -> String {
        chain_label(&self.file.chain)
    }
}

/// A case's name as reports print it: a control character in a file name (an escape sequence, a
/// newline) is written escaped, so it cannot reach a terminal, a table or a report as it is.
pub fn printable(name: &str) -> String {
    name.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// `direct` or the hops joined with ` → `, origin side first.
pub fn chain_label(chain: &[HopSpec]) -> String {
    if chain.is_empty() {
        "direct".into()
    } else {
        chain
            .iter()
            .map(HopSpec::label)
            .collect::<Vec<_>>()
            .join(" → ")
    }
}

/// The case files under `paths` (files as given, directories searched for `*.yaml`, sorted by name).
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FileError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let entries = std::fs::read_dir(p).map_err(|source| FileError::Io {
                path: p.clone(),
                source,
            })?;
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            files.sort();
            out.extend(files);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(FileError::Io {
                path: p.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file or directory",
                ),
            });
        }
    }
    Ok(out)
}

/// Load every case; returns the valid ones and every error (so a run can list them all).
pub fn load_all(files: &[PathBuf], profiles_dir: &Path) -> (Vec<Case>, Vec<FileError>) {
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match Case::load(f, profiles_dir) {
            Ok(c) => cases.push(c),
            Err(e) => errors.push(e),
        }
    }
    (cases, errors)
}

/// A request method or header that could never be sent, with its place in the file.
impl CaseRequest {
    /// What the case says of the request.
    pub fn spec(&self) -> RequestSpec {
        RequestSpec {
            method: self.method.clone(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body: self.body.clone(),
            compression: self.compression,
            duration: self.duration_ms.map(Duration::from_millis),
            protocol: self.protocol,
            mcp: self.mcp.clone().or_else(|| {
                (self.protocol == Some(crate::protocol::Protocol::Mcp))
                    .then(crate::protocol::McpTool::default)
            }),
            ..RequestSpec::default()
        }
    }
}

/// The case's request is valid, or a located error in the case's words.
fn check_request(r: &CaseRequest, path: &Path, src: &str) -> Result<(), FileError> {
    let err = |keys: &[&str], msg: String| {
        let (line, column) = crate::yaml::key_location(src, keys);
        Err(FileError::at(path, src, line, column, msg, None))
    };
    match r.spec().validate() {
        Ok(()) => Ok(()),
        Err(Invalid::Method(m)) => err(
            &["request", "method"],
            format!("`request.method` `{m}` is not an HTTP method"),
        ),
        Err(Invalid::HeaderName(k)) => err(
            &["request", "headers", &k],
            format!("`{k}` in `request.headers` is not a valid header name"),
        ),
        Err(Invalid::HeaderValue(k)) => err(
            &["request", "headers", &k],
            format!("the value of `{k}` in `request.headers` is not a valid header value"),
        ),
        Err(Invalid::ZeroDuration | Invalid::ZeroEvents) => err(
            &["request", "duration_ms"],
            "`request.duration_ms` must be above 0".into(),
        ),
        // The case's request carries no token hold: `expect.token_hold_ms` is checked on its own.
        Err(Invalid::ZeroTokenHold) => Ok(()),
    }
}

fn read(path: &Path) -> Result<String, FileError> {
    crate::yaml::read_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_a_case_name_are_escaped() {
        assert_eq!(printable("ok-name"), "ok-name");
        assert_eq!(printable("a\u{1b}[31mred\nline"), "a\\u{1b}[31mred\\nline");
    }

    #[test]
    fn every_builtin_case_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
        let files = discover(&[dir]).unwrap();
        assert!(files.len() >= 20);
        let (cases, errors) = load_all(&files, &crate::origin::profile::builtin_dir());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(cases.len(), files.len());
    }

    #[test]
    fn semantic_errors_point_at_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.yaml");
        std::fs::write(
            &p,
            "description: d\ntarget:\n  profile: plian\nexpect:\n  delivery: streamed\n",
        )
        .unwrap();
        let e = Case::load(&p, &crate::origin::profile::builtin_dir()).unwrap_err();
        let FileError::Invalid(inv) = e else {
            panic!("{e:?}")
        };
        assert_eq!((inv.line, inv.column), (3, 12));
        assert!(inv.help.unwrap().contains("did you mean `plain`"));
    }

    #[test]
    fn the_probe_judges_a_token_stream_with_the_cases_token_hold() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.yaml");
        let load = |expect: &str| {
            std::fs::write(
                &p,
                format!(
                    "description: d\ntarget:\n  profile: llm-openai\nrequest:\n  method: POST\n\
                     expect:\n  delivery: streamed\n{expect}"
                ),
            )
            .unwrap();
            Case::load(&p, &crate::origin::profile::builtin_dir()).unwrap()
        };
        let spec = load("  token_hold_ms: 250\n").request_spec();
        assert_eq!(spec.token_hold, Some(Duration::from_millis(250)));
        assert_eq!(spec.method.as_deref(), Some("POST"));
        assert_eq!(load("").request_spec().token_hold, None);
    }

    #[test]
    fn a_second_client_and_its_expectation_come_together() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.yaml");
        let load = |text: &str| {
            std::fs::write(&p, text).unwrap();
            Case::load(&p, &crate::origin::profile::builtin_dir())
        };
        let head = "description: d\ntarget:\n  profile: cacheable\n";
        let ok = load(&format!(
            "{head}second_client: {{after_ms: 1500}}\nexpect:\n  delivery: streamed\n  sharing: joined\n"
        ))
        .unwrap();
        assert_eq!(
            ok.file.second_client.map(|s| s.value.after_ms),
            Some(Some(1500))
        );
        let message = |e: FileError| match e {
            FileError::Invalid(inv) => (inv.line, inv.message),
            e => panic!("{e:?}"),
        };
        let (line, m) = message(
            load(&format!(
                "{head}second_client: {{after_ms: 1500}}\nexpect:\n  delivery: streamed\n"
            ))
            .unwrap_err(),
        );
        assert_eq!(line, 4);
        assert!(m.contains("expect.sharing"), "{m}");
        let (line, m) = message(
            load(&format!(
                "{head}expect:\n  delivery: streamed\n  sharing: separate\n"
            ))
            .unwrap_err(),
        );
        assert_eq!(line, 6);
        assert!(m.contains("needs a `second_client`"), "{m}");
        let (_, m) = message(
            load(&format!(
                "{head}second_client: {{after_ms: 1, after_end_ms: 1}}\nexpect:\n  delivery: streamed\n  sharing: separate\n"
            ))
            .unwrap_err(),
        );
        assert!(m.contains("exactly one"), "{m}");
    }
}
