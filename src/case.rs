//! Conformance cases: the YAML model, loading with precise errors, and validation.
//!
//! The schema is documented in `cases/README.md`. Unknown keys are errors (a typo must never silently
//! disable a check); every error names the file, line and column, shows the line, and suggests the nearest
//! valid key or name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::error::LoadError;
use crate::intermediary::HopSpec;
use crate::load::LoadPlan;
use crate::origin::profile::{Profile, ProfilePatch};
use crate::text::name_help;
use crate::verdict::capacity::Capacity;
use crate::verdict::lifecycle::{DisconnectOutcome, ReconnectOutcome};
use crate::verdict::sharing::{SecondOpen, Sharing};
use crate::verdict::{Delivery, FindingId};
use crate::yaml::parse_yaml;

/// One conformance case (`cases/NAME.yaml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// What this case proves, and where the measurement disagrees with the rule base.
    pub description: String,
    pub target: TargetSpec,
    /// Hops in the order the response passes through them: the first is next to the origin, the last is
    /// what the client talks to. Empty = direct.
    #[serde(default)]
    pub chain: Vec<HopSpec>,
    #[serde(default)]
    pub request: RequestSpec,
    /// A second client on the same URL (does a cache share the stream?).
    pub second_client: Option<Spanned<SecondOpen>>,
    /// Many concurrent streams through the same chain after the probe (does the chain hold them?).
    pub load: Option<Spanned<LoadPlan>>,
    /// After the probe, the lifecycle phases through the same chain: a reconnect with `Last-Event-ID`
    /// and a client that leaves after its first event (`expect.reconnect` / `expect.disconnect`).
    pub lifecycle: Option<Spanned<bool>>,
    /// After the probe, a real browser (headless Chromium) opens the same URL through the same chain:
    /// `true`, or `{limit: true}` to also open seven `EventSource`s (the HTTP/1.1 connection limit).
    /// `expect.browser` says what the browser's `EventSource` gets.
    pub browser: Option<Spanned<BrowserSpec>>,
    pub expect: Expect,
}

/// A case's browser probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum BrowserSpec {
    On(bool),
    With {
        /// Also open seven `EventSource`s on the URL.
        limit: bool,
    },
}

impl BrowserSpec {
    /// Whether the browser runs, and whether it measures the connection limit.
    pub fn plan(self) -> Option<bool> {
        match self {
            BrowserSpec::On(false) => None,
            BrowserSpec::On(true) => Some(false),
            BrowserSpec::With { limit } => Some(limit),
        }
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

/// Request overrides for the probe.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    pub method: Option<String>,
    /// Headers to add or replace; an empty value removes a default header.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    /// `false` sends no `Accept-Encoding` at all.
    pub compression: Option<bool>,
    /// How long to listen at most, in milliseconds.
    pub duration_ms: Option<u64>,
}

/// What must hold.
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
    /// What the second client got (required with `second_client`, refused without it).
    pub sharing: Option<Spanned<Sharing>>,
    /// Whether the chain held the load (required with `load`, refused without it).
    pub capacity: Option<Spanned<Capacity>>,
    /// What the reconnect phase found (with `lifecycle: true`).
    pub reconnect: Option<Spanned<ReconnectOutcome>>,
    /// What the disconnect phase found (with `lifecycle: true`).
    pub disconnect: Option<Spanned<DisconnectOutcome>>,
    /// The browser's delivery (with `browser`).
    pub browser: Option<Spanned<Delivery>>,
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
    /// Load and validate one case; profiles come from `profiles_dir`.
    pub fn load(path: &Path, profiles_dir: &Path) -> Result<Case, LoadError> {
        let src = read(path)?;
        let file: CaseFile = parse_yaml(path, &src)?;
        let at = |s: &Spanned<String>, msg: String, help: Option<String>| {
            LoadError::at(
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
        // Where a value is, for a message about it.
        let at_value = |line: u64, column: u64, msg: String, help: Option<String>| {
            LoadError::at(path, &src, line as usize, column as usize, msg, help)
        };
        // A measurement key and its expectation come together: each is refused without the other.
        let paired = |given: Option<(&serde_saphyr::Location, Result<(), String>)>,
                      expected: Option<&serde_saphyr::Location>,
                      missing: &str,
                      alone: &str,
                      values: &str|
         -> Result<(), LoadError> {
            match (given, expected) {
                (Some((at, valid)), expected) => {
                    if let Err(m) = valid {
                        return Err(at_value(at.line(), at.column(), m, None));
                    }
                    if expected.is_none() {
                        let help = Some(format!("one of: {values}"));
                        return Err(at_value(at.line(), at.column(), missing.into(), help));
                    }
                    Ok(())
                }
                (None, Some(at)) => Err(at_value(at.line(), at.column(), alone.into(), None)),
                (None, None) => Ok(()),
            }
        };
        paired(
            file.second_client
                .as_ref()
                .map(|s| (&s.referenced, s.value.validate())),
            file.expect.sharing.as_ref().map(|s| &s.referenced),
            "a case with `second_client` must say what it gets: `expect.sharing`",
            "`expect.sharing` needs a `second_client` to measure it",
            "separate, joined, replayed, unserved",
        )?;
        paired(
            file.load
                .as_ref()
                .map(|l| (&l.referenced, l.value.validate())),
            file.expect.capacity.as_ref().map(|c| &c.referenced),
            "a case with `load` must say whether the chain holds it: `expect.capacity`",
            "`expect.capacity` needs a `load` to measure it",
            "full, limited",
        )?;
        let lifecycle = file.lifecycle.as_ref().filter(|l| l.value);
        let phase = file
            .expect
            .reconnect
            .as_ref()
            .map(|r| &r.referenced)
            .or(file.expect.disconnect.as_ref().map(|d| &d.referenced));
        paired(
            lifecycle.map(|l| (&l.referenced, Ok(()))),
            phase,
            "a case with `lifecycle: true` must say what a phase finds: `expect.reconnect` or `expect.disconnect`",
            "`expect.reconnect` and `expect.disconnect` need `lifecycle: true` to measure them",
            "reconnect: resumed, replayed, not-forwarded, no-ids, stopped, gave-up, undetermined; disconnect: propagated, not-propagated, undetermined, not-measured",
        )?;
        paired(
            file.browser
                .as_ref()
                .filter(|b| b.value.plan().is_some())
                .map(|b| (&b.referenced, Ok(()))),
            file.expect.browser.as_ref().map(|b| &b.referenced),
            "a case with `browser` must say what the browser's EventSource gets: `expect.browser`",
            "`expect.browser` needs `browser: true` to measure it",
            "streamed, batched, held-until-end, first-byte-delayed, cut, stalled, no-events",
        )?;
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
                .map(|s| s.to_string_lossy().into_owned())
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
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let entries = std::fs::read_dir(p).map_err(|source| LoadError::Io {
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
            return Err(LoadError::Io {
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
pub fn load_all(files: &[PathBuf], profiles_dir: &Path) -> (Vec<Case>, Vec<LoadError>) {
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
fn check_request(r: &RequestSpec, path: &Path, src: &str) -> Result<(), LoadError> {
    let err = |keys: &[&str], msg: String| {
        let (line, column) = crate::yaml::key_location(src, keys);
        Err(LoadError::at(path, src, line, column, msg, None))
    };
    if let Some(m) = &r.method
        && http::Method::from_bytes(m.as_bytes()).is_err()
    {
        return err(
            &["request", "method"],
            format!("`request.method` `{m}` is not an HTTP method"),
        );
    }
    for (k, v) in &r.headers {
        if http::HeaderName::from_bytes(k.as_bytes()).is_err() {
            return err(
                &["request", "headers", k],
                format!("`{k}` in `request.headers` is not a valid header name"),
            );
        }
        if http::HeaderValue::from_str(v).is_err() {
            return err(
                &["request", "headers", k],
                format!("the value of `{k}` in `request.headers` is not a valid header value"),
            );
        }
    }
    if r.duration_ms == Some(0) {
        return err(
            &["request", "duration_ms"],
            "`request.duration_ms` must be above 0".into(),
        );
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, LoadError> {
    crate::yaml::read_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let LoadError::Invalid(inv) = e else {
            panic!("{e:?}")
        };
        assert_eq!((inv.line, inv.column), (3, 12));
        assert!(inv.help.unwrap().contains("did you mean `plain`"));
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
        let message = |e: LoadError| match e {
            LoadError::Invalid(inv) => (inv.line, inv.message),
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
