//! The definition of a real program (`Program`): its binary, package, templates, argv, logs, version and
//! what it is known to do to a stream. The table of them is [`programs`](super::programs); starting one is
//! [`process`](super::process) (locally) or [`container`](super::container) (from an image), both of which
//! build on this module and neither on the other's internals.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use super::HopError;
use crate::cause_id::CauseId;

/// How long a program's version query may take (a Python program starts in a second or two; on a loaded
/// runner several).
const VERSION_WITHIN: Duration = Duration::from_secs(15);

/// The definition of a real program that can stand in a chain.
#[derive(Debug)]
pub struct Program {
    /// The hop's name in a chain (`nginx`) and the directory of its templates (`proxies/nginx/`).
    pub name: &'static str,
    /// The executable, looked up on `PATH` and in the sbin directories.
    pub binary: &'static str,
    /// An environment variable that names another executable to use.
    pub env: &'static str,
    /// The Debian package that provides the executable.
    pub package: &'static str,
    /// How to install it when that is not `apt-get install -y <package>` (a venv from PyPI).
    pub install: Option<&'static str>,
    /// Where else the executable may be, after `PATH` (a venv the project creates).
    pub also_at: fn() -> Option<PathBuf>,
    /// The extension of its templates (`conf`).
    pub ext: &'static str,
    /// The config a chain gets when it names the program alone.
    pub default_config: &'static str,
    /// The configs `matrix: real` runs (the profiles users deploy; test-only configs such as
    /// `short-idle` are left out).
    pub matrix: &'static [&'static str],
    /// Whether `check`'s default matrix runs [`Program::matrix`] (kept small so the default stays fast).
    pub in_default: bool,
    /// The command line after the executable; `{prefix}` and `{config}` (the rendered file) are filled in.
    pub argv: &'static [&'static str],
    /// Log files (relative to the prefix) whose last lines explain a failure; `stderr.log` is always added.
    pub logs: &'static [&'static str],
    /// Files the program needs besides its executable (a node module, the real server behind a launcher
    /// script); one that is missing makes the hop missing, naming [`Program::package`].
    pub needs: &'static [&'static str],
    /// When ssegate runs as root, the prefix is handed to this user: the program switches to it at
    /// start-up and must still write there (Squid refuses to run as root).
    pub owner_if_root: Option<&'static str>,
    /// Environment variables the program runs with (`{prefix}` filled in), e.g. a private `HOME`.
    pub child_env: &'static [(&'static str, &'static str)],
    /// Arguments that print the version, and where in their output the version is. When the first
    /// one is `{exe}` the command is that one instead of the program's executable (a launcher script's
    /// real server, a library's `package.json`).
    pub version_args: &'static [&'static str],
    pub version_word: VersionWord,
    /// Log text (any case) that means the reserved port was taken before the program bound it.
    pub port_taken: &'static str,
    /// It binds its port with `SO_REUSEPORT` and no setting turns that off (Caddy 2.6): two of it given
    /// the same port would share it silently, each answering some connections. ssegate holds the
    /// reserved port with a bound `SO_REUSEPORT` socket of its own until the program has started, so
    /// that no other run's reservation lands on it (HAProxy and Envoy are told `noreuseport` /
    /// `enable_reuse_port: false` instead).
    pub reuse_port: bool,
    /// A log file (under the prefix) and the text it must contain, besides the nonce, before the program
    /// counts as ready: Traffic Server answers its port before its cache is enabled, and a stream it
    /// fetches meanwhile is never stored.
    pub ready_log: Option<(&'static str, &'static str)>,
    /// How long it may take to answer its readiness check: 10 s for most, longer for one that imports
    /// a large Python application first (LiteLLM takes 6–8 s on an idle machine).
    pub ready_within: Duration,
    /// The cause a config is known to produce when it breaks a stream, with the operator's fix.
    pub known_cause: fn(config: &str) -> Option<(CauseId, &'static str)>,
    /// The image `--backend containers` runs when a hop names none (`nginx:1.22.1`: the version Debian
    /// ships, so both backends measure the same program by default), or None when the program has no
    /// image definition. In an image the program is [`Program::binary`] on the image's `PATH`, started with
    /// [`Program::argv`] and [`Program::child_env`] as a local one is.
    pub image: Option<&'static str>,
    /// The silence after which a config cuts a stream, and the setting that says so (measured here for
    /// every default except nginx's and Squid's, which are the documented values; each `short-idle`
    /// config scales it to 1 s and its case measures the cut), or None when it never cuts an idle stream.
    pub idle_limit: fn(config: &str) -> Option<(Duration, &'static str)>,
    /// Whether it keeps responses for later clients (a cache): what one case sent through it could reach
    /// another, so a conformance case through it gets an instance of its own instead of sharing one.
    pub caches: bool,
    /// It proxies LLM provider APIs (a POST naming a model, answered in a provider's format), not any
    /// HTTP: `matrix: real` leaves it out (a plain event stream cannot pass it), a chain names it.
    pub llm_gateway: bool,
}

/// Answers asked once per process, by key: a version, why an image cannot run (None: nothing known, or
/// nothing to say, is an answer too).
pub(crate) struct Answers(Mutex<BTreeMap<String, Option<String>>>);

impl Answers {
    pub(crate) const fn new() -> Answers {
        Answers(Mutex::new(BTreeMap::new()))
    }

    /// The answer for `key`, once one was put.
    pub(crate) fn get(&self, key: &str) -> Option<Option<String>> {
        self.0.lock().ok()?.get(key).cloned()
    }

    /// Keep `answer` for `key`, and give it back.
    pub(crate) fn put(&self, key: &str, answer: Option<String>) -> Option<String> {
        if let Ok(mut m) = self.0.lock() {
            m.insert(key.to_string(), answer.clone());
        }
        answer
    }
}

/// Where a program's version output carries the version.
#[derive(Debug, Clone, Copy)]
pub enum VersionWord {
    /// The first word that starts with this (`nginx/` in `nginx version: nginx/1.22.1`), as it is.
    Prefix(&'static str),
    /// The word after this one (`version` in `HAProxy version 2.6.12 …`), shown as `<name>/<word>`.
    After(&'static str),
    /// The first word of the output (`2.6.2`), shown as `<name>/<word>`.
    First,
    /// Part N (from 0) of the `/`-separated word after this one (`1.40.0`, part 1 of the word after
    /// `version:` in `envoy  version: 9e55…/1.40.0/Clean/RELEASE/BoringSSL`), shown as `<name>/<part>`.
    AfterPart(&'static str, usize),
}

impl VersionWord {
    /// The version in `text` (a program's version output), as `<name>/<version>`.
    pub fn find(self, name: &str, text: &str) -> Option<String> {
        let mut words = text.split_whitespace();
        match self {
            VersionWord::Prefix(p) => words.find(|w| w.starts_with(p)).map(str::to_string),
            VersionWord::After(a) => {
                words.find(|w| *w == a)?;
                words.next().map(|w| format!("{name}/{w}"))
            }
            VersionWord::First => words.next().map(|w| format!("{name}/{w}")),
            VersionWord::AfterPart(a, n) => {
                words.find(|w| *w == a)?;
                let part = words.next()?.split('/').nth(n)?;
                Some(format!("{name}/{part}"))
            }
        }
    }
}

impl Program {
    /// What precedes the version in [`Program::version`]'s answer (`nginx/`, `Apache/`, `haproxy/`).
    pub fn version_label(&self) -> String {
        match self.version_word {
            VersionWord::Prefix(p) => p.to_string(),
            VersionWord::After(_) | VersionWord::First | VersionWord::AfterPart(..) => {
                format!("{}/", self.name)
            }
        }
    }

    /// The directory of this program's templates.
    pub fn templates(&self) -> PathBuf {
        crate::assets::dir(crate::assets::Kind::Proxies).join(self.name)
    }

    /// The configs a chain may name (`<config>.<ext>` except `_`-prefixed files), sorted.
    pub fn configs(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.templates())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let p = e.path();
                let stem = p.file_stem()?.to_string_lossy().into_owned();
                (p.extension().is_some_and(|x| x == self.ext) && !stem.starts_with('_'))
                    .then_some(stem)
            })
            .collect();
        v.sort();
        v
    }

    /// The executable: `$<env>` when set, else `<binary>` on `PATH` or in the sbin directories.
    pub fn executable(&self) -> Result<PathBuf, HopError> {
        match std::env::var_os(self.env) {
            Some(p) if Path::new(&p).is_file() => Ok(PathBuf::from(p)),
            Some(p) => Err(HopError::NotAFile {
                variable: self.env,
                path: PathBuf::from(p),
            }),
            None => {
                let install = || {
                    self.install
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("apt-get install -y {}", self.package))
                };
                let exe = crate::proc::which(self.binary)
                    .or_else(|| (self.also_at)().filter(|p| p.is_file()))
                    .ok_or_else(|| HopError::Missing {
                        program: self.binary,
                        install: install(),
                    })?;
                match self.needs.iter().find(|n| !Path::new(n).exists()) {
                    Some(n) => Err(HopError::Missing {
                        program: n,
                        install: install(),
                    }),
                    None => Ok(exe),
                }
            }
        }
    }

    /// `<name>/<version>` of the installed program (asked once per process), or None when it is missing.
    pub fn version(&self) -> Option<String> {
        static SEEN: Answers = Answers::new();
        if let Some(v) = SEEN.get(self.name) {
            return v;
        }
        // Within a deadline and in a process group of its own: a program that hangs on its version flag,
        // or leaves a child behind, must not hold the run.
        let found = self.executable().ok().and_then(|bin| {
            let mut cmd = match self.version_args.split_first() {
                Some((&"{exe}", rest)) => {
                    let (exe, args) = rest.split_first()?;
                    let mut c = Command::new(crate::proc::which(exe)?);
                    c.args(args);
                    c
                }
                _ => {
                    let mut c = Command::new(bin);
                    c.args(self.version_args);
                    c
                }
            };
            let (stdout, stderr) = crate::proc::output_within(&mut cmd, self.name, VERSION_WITHIN)?;
            self.version_word.find(self.name, &(stderr + " " + &stdout))
        });
        SEEN.put(self.name, found)
    }

    /// Whether `config` terminates TLS: its text (or the base's) names `{{tls_cert}}`. Such a hop gets
    /// the process's certificate ([`crate::tls`]) in its prefix, is asked for readiness over TLS, and
    /// can only be the chain's entry (its clients speak `https://`).
    pub fn uses_tls(&self, config: &str) -> bool {
        let dir = self.templates();
        [
            format!("_base.{}", self.ext),
            format!("{config}.{}", self.ext),
        ]
        .iter()
        .any(|f| std::fs::read_to_string(dir.join(f)).is_ok_and(|t| t.contains("{{tls_cert}}")))
    }

    /// Render the full config of `config` for a port, upstream, prefix and readiness nonce.
    pub fn render(
        &self,
        config: &str,
        port: u16,
        upstream: SocketAddr,
        prefix: &Path,
        nonce: &str,
    ) -> std::io::Result<String> {
        let dir = self.templates();
        let base = std::fs::read_to_string(dir.join(format!("_base.{}", self.ext)))?;
        let own = std::fs::read_to_string(dir.join(format!("{config}.{}", self.ext)))?;
        let sections = config_sections(&own);
        let mut out = String::with_capacity(base.len() + own.len());
        let mut used = vec![""];
        let put = |out: &mut String, indent: &str, text: &str| {
            for l in text.lines() {
                out.push_str(indent);
                out.push_str(l);
                out.push('\n');
            }
        };
        let mut lines = base.lines();
        while let Some(line) = lines.next() {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            if trimmed == "{{config}}" {
                put(
                    &mut out,
                    indent,
                    sections.get("").map_or("", String::as_str),
                );
            } else if let Some(name) = trimmed
                .strip_prefix("{{config:")
                .and_then(|r| r.strip_suffix("}}"))
            {
                // The base's default text for the section runs to `{{end}}`.
                let mut default = String::new();
                for l in lines.by_ref() {
                    if l.trim() == "{{end}}" {
                        break;
                    }
                    default.push_str(l.trim_start());
                    default.push('\n');
                }
                used.push(name);
                put(&mut out, indent, sections.get(name).unwrap_or(&default));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        if let Some(name) = sections.keys().find(|k| !used.contains(&k.as_str())) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "failed to render {}.{}: its section `#> {name}` has no `{{{{config:{name}}}}}` \
                     place in _base.{}",
                    config, self.ext, self.ext
                ),
            ));
        }
        Ok(out
            .replace("{{tls_cert}}", "{{prefix}}/tls/cert.pem")
            .replace("{{tls_key}}", "{{prefix}}/tls/key.pem")
            .replace("{{port}}", &port.to_string())
            .replace("{{upstream}}", &upstream.to_string())
            .replace("{{upstream_host}}", &upstream.ip().to_string())
            .replace("{{upstream_port}}", &upstream.port().to_string())
            .replace("{{prefix}}", &prefix.display().to_string())
            .replace("{{nonce}}", nonce))
    }
}

/// A config's text split at its `#> NAME` lines: what comes first goes in place of the base's
/// `{{config}}` line (key ""), each named section in place of `{{config:NAME}}` (whose base text up to
/// `{{end}}` is the default when the config has no such section).
pub(super) fn config_sections(own: &str) -> BTreeMap<String, String> {
    let mut sections = BTreeMap::new();
    let mut name = String::new();
    let mut text = String::new();
    for l in own.lines() {
        if let Some(n) = l.strip_prefix("#> ") {
            sections.insert(std::mem::take(&mut name), std::mem::take(&mut text));
            name = n.trim().to_string();
            continue;
        }
        text.push_str(l);
        text.push('\n');
    }
    sections.insert(name, text);
    sections
}

/// An image reference as a hop names it, split into the name and the tag testcontainers takes
/// (`nginx:1.27` → `nginx`, `1.27`; `registry:5000/team/nginx` → tag `latest`). Digests are refused: a
/// hop pins an image by tag.
pub fn split_image(image: &str) -> Result<(&str, &str), String> {
    if image.is_empty() {
        return Err("an image after `@` (`nginx: default@nginx:1.27`)".into());
    }
    if image.contains('@') {
        return Err(format!(
            "image `{image}`: pin by tag (`name:tag`); digests are not supported"
        ));
    }
    if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("image `{image}` contains whitespace"));
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    let (name, tag) = match last.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() => (&image[..image.len() - tag.len() - 1], tag),
        Some(_) => return Err(format!("image `{image}` has an empty tag")),
        None => (image, "latest"),
    };
    if !valid_name(name) || !valid_tag(tag) {
        return Err(format!(
            "image `{image}` is not an image reference (`[registry[:port]/]name[:tag]`, lower-case \
             name components of letters, digits and `.`, `_`, `-`)"
        ));
    }
    Ok((name, tag))
}

/// A repository name as an engine accepts it: an optional registry host (`registry.local:5000`,
/// `localhost`) and lower-case path components that start and end with a letter or digit.
fn valid_name(name: &str) -> bool {
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 {
        let host = parts[0];
        if host.contains('.') || host.contains(':') || host == "localhost" {
            let (h, port) = host.split_once(':').unwrap_or((host, "1"));
            let host_ok = !h.is_empty()
                && h.split('.').all(|l| {
                    !l.is_empty()
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
            if !host_ok || port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
                return false;
            }
            parts.remove(0);
        }
    }
    let component = |c: &str| {
        let edge =
            |ch: Option<char>| ch.is_some_and(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit());
        edge(c.chars().next())
            && edge(c.chars().last())
            && c.chars().all(|ch| {
                ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
            })
            && !c.contains("..")
    };
    !parts.is_empty() && parts.iter().all(|c| component(c))
}

/// A tag: a letter, digit or `_`, then up to 127 of those, `.` and `-`.
fn valid_tag(tag: &str) -> bool {
    tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl PartialEq for Program {
    fn eq(&self, other: &Program) -> bool {
        self.name == other.name
    }
}
impl Eq for Program {}
