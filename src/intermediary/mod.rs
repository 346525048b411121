//! Intermediaries: whatever stands between the origin and the client.
//!
//! A [`HopSpec`] is a hop as a chain names it; [`HopSpec::start`] puts it in front of an upstream address
//! and hands back a [`Running`] hop (its listening address, program version, a stop handle). Two kinds:
//!
//! - *real* hops ([`process`]): a real program as a child process, one generic mechanism, each program a
//!   short entry in [`programs`] plus templates in `proxies/<name>/`;
//! - *built-in* hops ([`builtin`]): in-process hyper proxies that **model** what cannot run here
//!   (serverless platforms, CDNs, Express's `compression`), one file each.
//!
//! Every hop binds 127.0.0.1 only.

pub mod builtin;
#[cfg(feature = "containers")]
pub mod container;
pub mod process;
pub mod program;
pub mod programs;

use crate::cause_id::CauseId;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::proc::ChildGuard;
use builtin::Builtin;
use process::ProcessHop;

/// What keeps a hop alive; dropping it stops the hop.
#[derive(Debug)]
pub enum StopHandle {
    /// An in-process server task.
    Task(tokio::task::JoinHandle<()>),
    /// A child process group and the directory it runs in.
    Child {
        guard: ChildGuard,
        log: PathBuf,
        _dir: tempfile::TempDir,
    },
    /// A container (removed when dropped) and the directory mounted into it.
    #[cfg(feature = "containers")]
    Container(Box<container::Handle>),
}

impl Drop for StopHandle {
    fn drop(&mut self) {
        if let StopHandle::Task(t) = self {
            t.abort();
        }
    }
}

/// A started hop.
#[derive(Debug)]
pub struct Running {
    pub label: String,
    pub addr: SocketAddr,
    /// Whether clients speak TLS to it (`https://`, with the process's certificate: [`crate::tls`]).
    pub tls: bool,
    /// Program and version for real hops (`nginx/1.22.1`).
    pub program: Option<String>,
    pub stop: StopHandle,
}

impl Running {
    /// Whether the hop is still alive (a real hop's process has not exited).
    pub fn check_alive(&mut self) -> Result<(), HopError> {
        match &mut self.stop {
            StopHandle::Child { guard, log, .. } => match guard.try_wait() {
                Some(status) => Err(HopError::Exited {
                    program: guard.name().to_string(),
                    status: status.to_string(),
                    log: crate::proc::tail(log, 20),
                }),
                None => Ok(()),
            },
            #[cfg(feature = "containers")]
            StopHandle::Container(c) => c.check_alive(),
            StopHandle::Task(_) => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HopError {
    #[error("failed to find `{program}` on PATH; install it with `{install}`")]
    Missing {
        program: &'static str,
        /// The command that installs it (`apt-get install -y nginx-light`).
        install: String,
    },
    #[error("failed to use {} from ${variable}: it is not a file", path.display())]
    NotAFile {
        variable: &'static str,
        path: std::path::PathBuf,
    },
    #[error("failed to bind 127.0.0.1 for {hop}")]
    Bind {
        hop: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start {program}: it exited with {status}; last log lines:\n{log}")]
    Exited {
        program: String,
        status: String,
        log: String,
    },
    #[error(
        "failed to start {program}: not accepting connections after {waited_ms} ms; last log lines:\n{log}"
    )]
    NotReady {
        program: String,
        waited_ms: u64,
        log: String,
    },
    #[error("failed to run {program} from its image")]
    Container {
        program: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("failed to run {program}: {why}")]
    Unavailable { program: String, why: String },
    #[error("failed to render the {program} config")]
    Config {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// A hop as written in a case's `chain`: `name` or `name: options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopSpec {
    /// A real program with one of its configs (`nginx: gzip`).
    Process(ProcessHop),
    /// An in-process model (`compression`, `coalesce: {bytes: 100}`).
    Builtin(Builtin),
}

impl<T: Into<Builtin>> From<T> for HopSpec {
    fn from(hop: T) -> HopSpec {
        HopSpec::Builtin(hop.into())
    }
}

/// Where a chain's real programs run when a hop names no image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The installed program (the default).
    #[default]
    Local,
    /// The program's image ([`program::Program::image`]) through a Docker engine.
    Containers,
    /// The installed program when there is one, else its image when a Docker engine answers.
    Auto,
}

/// Whether this ssegate can run hops from images (it was built with the `containers` feature).
pub const CONTAINERS_BUILT: bool = cfg!(feature = "containers");

/// Why an image hop cannot run here, for a skip: not built with the feature, no engine, no image.
pub fn image_unavailable(image: &str) -> Option<String> {
    #[cfg(feature = "containers")]
    {
        container::unavailable(image)
    }
    #[cfg(not(feature = "containers"))]
    {
        Some(format!(
            "image `{image}` needs the `containers` feature, and this ssegate was built without it \
             (cargo install ssegate --features containers)"
        ))
    }
}

/// Every hop name a chain accepts: the real programs, then the built-ins.
pub fn hop_names() -> Vec<&'static str> {
    programs::PROGRAMS
        .iter()
        .map(|p| p.name)
        .chain(builtin::NAMES.iter().copied())
        .collect()
}

impl HopSpec {
    /// The real program `name` with `config` (`gzip`, or `gzip@nginx:1.27` to run it from that image); an
    /// error names the valid programs or configs.
    pub fn real(name: &str, config: &str) -> Result<HopSpec, String> {
        let (config, image) = match config.split_once('@') {
            Some((c, i)) => {
                program::split_image(i).map_err(|e| format!("{name}: {e}"))?;
                (c, Some(i.to_string()))
            }
            None => (config, None),
        };
        let Some(program) = programs::program(name) else {
            return Err(format!(
                "unknown program `{name}`, {}",
                crate::text::name_help(
                    name,
                    &programs::PROGRAMS
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                )
            ));
        };
        if image.is_some() && program.image.is_none() {
            return Err(format!(
                "`{name}` has no image definition: it runs only from its local install (leave out `@…`)"
            ));
        }
        let known = program.configs();
        if !known.iter().any(|c| c == config) {
            return Err(format!(
                "unknown {name} config `{config}`, {}",
                crate::text::name_help(config, &known)
            ));
        }
        Ok(HopSpec::Process(ProcessHop {
            program,
            config: config.to_string(),
            image,
        }))
    }

    /// This hop on `backend`: a real program that names no image runs from its default image under
    /// [`Backend::Containers`], and under [`Backend::Auto`] when it is not installed and its image can run
    /// here. A hop that names an image, and every built-in, is unchanged. An error says why the hop has no
    /// place on the backend (a program without an image definition under `containers`).
    pub fn on_backend(&self, backend: Backend) -> Result<HopSpec, String> {
        let HopSpec::Process(p) = self else {
            return Ok(self.clone());
        };
        if p.image.is_some() || backend == Backend::Local {
            return Ok(self.clone());
        }
        let with_image = |image: &str| {
            HopSpec::Process(ProcessHop {
                image: Some(image.to_string()),
                ..p.clone()
            })
        };
        match (backend, p.program.image) {
            (Backend::Containers, Some(image)) => Ok(with_image(image)),
            (Backend::Containers, None) => Err(format!(
                "{} has no image definition (images: {}); run it with --backend local or auto",
                p.program.name,
                programs::PROGRAMS
                    .iter()
                    .filter_map(|q| q.image)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            (Backend::Auto, Some(image))
                if matches!(p.program.executable(), Err(HopError::Missing { .. }))
                    && image_unavailable(image).is_none() =>
            {
                Ok(with_image(image))
            }
            _ => Ok(self.clone()),
        }
    }

    /// A label for reports (`nginx default`, `coalesce 4096B`).
    pub fn label(&self) -> String {
        match self {
            HopSpec::Process(p) => p.label(),
            HopSpec::Builtin(b) => b.label(),
        }
    }

    /// Whether the hop serves TLS to its clients (`nginx: h2`).
    pub fn uses_tls(&self) -> bool {
        match self {
            HopSpec::Process(p) => p.program.uses_tls(&p.config),
            HopSpec::Builtin(_) => false,
        }
    }

    /// Start listening on 127.0.0.1 and forward to `upstream`.
    pub async fn start(&self, upstream: SocketAddr) -> Result<Running, HopError> {
        match self {
            HopSpec::Process(p) => p.start(upstream).await,
            HopSpec::Builtin(b) => b.start(upstream).await,
        }
    }

    /// The cause this hop is known to produce when it breaks a stream, with the operator's fix for it.
    pub fn known_cause(&self) -> Option<(CauseId, &'static str)> {
        match self {
            HopSpec::Process(p) => p.known_cause(),
            HopSpec::Builtin(b) => b.known_cause(),
        }
    }

    /// The silence after which this hop cuts a response, when it models an idle timeout.
    pub fn idle_limit(&self) -> Option<Duration> {
        self.idle().map(|(d, _)| d)
    }

    /// The silence after which this hop cuts a stream, and the setting that says so: a real program's
    /// config ([`program::Program::idle_limit`]) or a built-in model's idle cut.
    pub fn idle(&self) -> Option<(Duration, String)> {
        match self {
            HopSpec::Process(p) => {
                (p.program.idle_limit)(&p.config).map(|(d, what)| (d, what.to_string()))
            }
            HopSpec::Builtin(b) => b
                .idle_limit()
                .map(|d| (d, format!("the built-in `{}` model's idle cut", b.label()))),
        }
    }

    /// `check`'s default matrix: the matrix configs of each real program in the default (nginx), then
    /// each built-in that models infrastructure, one chain each.
    pub fn default_matrix() -> Vec<(String, HopSpec)> {
        let mut m = Vec::new();
        for p in programs::PROGRAMS.iter().filter(|p| p.in_default) {
            m.extend(program_chains(p));
        }
        m.extend(builtin_chains());
        m
    }

    /// The chains a matrix selection names, one hop each: `default`, `real` (every real program's
    /// matrix configs, but an LLM gateway's: name `litellm` for it), `builtins` (the models of the default matrix), `all` (`real` and `builtins`),
    /// a program's name (its matrix configs), or a built-in's name (its default-matrix chain). Chain names are `<program>-<config>` or the built-in's name.
    pub fn selection(name: &str) -> Result<Vec<(String, HopSpec)>, String> {
        Ok(match name {
            "default" => HopSpec::default_matrix(),
            "builtins" => builtin_chains(),
            "real" => programs::PROGRAMS
                .iter()
                .filter(|p| !p.llm_gateway)
                .flat_map(|p| program_chains(p))
                .collect(),
            "all" => {
                let mut v = HopSpec::selection("real")?;
                v.extend(builtin_chains());
                v
            }
            _ => match programs::program(name) {
                Some(p) => program_chains(p),
                None if builtin_chains().iter().any(|(n, _)| n == name) => builtin_chains()
                    .into_iter()
                    .filter(|(n, _)| n == name)
                    .collect(),
                None => {
                    // Only the built-ins with a default-matrix chain can be selected by name (the
                    // others need parameters: name them in the config's `matrix`).
                    let builtins: Vec<String> =
                        builtin_chains().into_iter().map(|(n, _)| n).collect();
                    let mut names = vec!["default", "real", "all", "builtins"];
                    names.extend(programs::PROGRAMS.iter().map(|p| p.name));
                    names.extend(builtins.iter().map(String::as_str));
                    return Err(format!(
                        "unknown matrix selection `{name}`, {}",
                        crate::text::name_help(name, &names)
                    ));
                }
            },
        })
    }

    /// Why this hop cannot run here (its program is not installed), if so. A program pointed at by its
    /// environment variable that is not there is no such case: that is a setup error, reported as one.
    pub fn missing(&self) -> Option<String> {
        match self {
            HopSpec::Process(ProcessHop {
                image: Some(image), ..
            }) => image_unavailable(image),
            HopSpec::Process(p) => match p.program.executable() {
                Err(e @ HopError::Missing { .. }) => Some(e.to_string()),
                _ => None,
            },
            HopSpec::Builtin(_) => None,
        }
    }

    fn from_name(name: &str) -> Result<HopSpec, String> {
        if let Some(p) = programs::program(name) {
            return HopSpec::real(name, p.default_config);
        }
        Builtin::named(name).map(HopSpec::Builtin).ok_or_else(|| {
            format!(
                "unknown hop `{name}`, {}",
                crate::text::name_help(name, &hop_names())
            )
        })
    }
}

impl<'de> Deserialize<'de> for HopSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HopSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(
                    f,
                    "a hop: `name` or `name: options` ({})",
                    hop_names().join(", ")
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HopSpec, E> {
                HopSpec::from_name(v).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HopSpec, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom("empty hop"));
                };
                let hop = if let Some(program) = programs::program(&key) {
                    let ConfigName(config) = map.next_value_seed(ConfigOf(program))?;
                    HopSpec::real(&key, &config).map_err(de::Error::custom)?
                } else {
                    match Builtin::parse(&key, &mut map)? {
                        Some(b) => HopSpec::Builtin(b),
                        None => {
                            return Err(de::Error::custom(HopSpec::from_name(&key).unwrap_err()));
                        }
                    }
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(
                        "a hop is one `name: options` pair; start a new `- ` item for the next hop",
                    ));
                }
                Ok(hop)
            }
        }
        d.deserialize_any(V)
    }
}

/// One chain per matrix config of a real program, named `<program>-<config>`.
fn program_chains(p: &'static program::Program) -> Vec<(String, HopSpec)> {
    p.matrix
        .iter()
        .map(|c| {
            (
                format!("{}-{c}", p.name),
                HopSpec::Process(ProcessHop {
                    program: p,
                    config: (*c).to_string(),
                    image: None,
                }),
            )
        })
        .collect()
}

/// One chain per built-in model that the default matrix runs, named after the built-in.
fn builtin_chains() -> Vec<(String, HopSpec)> {
    Builtin::matrix()
        .into_iter()
        .map(|(n, b)| (n.to_string(), HopSpec::Builtin(b)))
        .collect()
}

/// The config a real program's hop names (`nginx: gzip`): a plain name, or the error says which exist.
struct ConfigName(String);

struct ConfigOf(&'static program::Program);

impl<'de> de::DeserializeSeed<'de> for ConfigOf {
    type Value = ConfigName;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ConfigName, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ConfigOf {
    type Value = ConfigName;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "the name of one {} config ({})",
            self.0.name,
            self.0.configs().join(", ")
        )
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<ConfigName, E> {
        Ok(ConfigName(v.to_string()))
    }
}

const TLS_NOT_LAST: &str = "it serves TLS, so it can only be the chain's last hop (the one clients talk \
     to): the hops in front of it speak plain HTTP to their upstream";

/// Why `hops` (origin side first) can never run as a chain, found before anything starts: a TLS hop
/// that is not the last.
pub fn chain_problem(hops: &[HopSpec]) -> Option<String> {
    let inner = hops.iter().rev().skip(1).find(|s| s.uses_tls())?;
    Some(format!("`{}`: {TLS_NOT_LAST}", inner.label()))
}

/// A started chain; dropping it stops every hop.
#[derive(Debug, Default)]
pub struct Chain {
    /// Origin side first.
    pub hops: Vec<Running>,
}

impl Chain {
    /// Start `specs` (origin side first) in front of `origin`: back to front, each hop given the address
    /// of the one behind it.
    pub async fn start(specs: &[HopSpec], origin: SocketAddr) -> Result<Chain, HopError> {
        if let Some(inner) = specs.iter().rev().skip(1).find(|s| s.uses_tls()) {
            return Err(HopError::Unavailable {
                program: inner.label(),
                why: TLS_NOT_LAST.into(),
            });
        }
        let mut chain = Chain::default();
        let mut upstream = origin;
        for spec in specs {
            let hop = spec.start(upstream).await?;
            upstream = hop.addr;
            chain.hops.push(hop);
        }
        Ok(chain)
    }

    /// The address the client talks to (`origin` when the chain is empty).
    pub fn entry(&self, origin: SocketAddr) -> SocketAddr {
        self.hops.last().map_or(origin, |h| h.addr)
    }

    /// Whether clients speak TLS to the entry (its last hop serves `https://`).
    pub fn tls(&self) -> bool {
        self.hops.last().is_some_and(|h| h.tls)
    }

    /// Fail if a real hop has died.
    pub fn check_alive(&mut self) -> Result<(), HopError> {
        self.hops.iter_mut().try_for_each(Running::check_alive)
    }

    /// Programs and versions of the real hops.
    pub fn programs(&self) -> Vec<String> {
        self.hops.iter().filter_map(|h| h.program.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Result<Vec<HopSpec>, String> {
        serde_saphyr::from_str::<Vec<HopSpec>>(y).map_err(|e| e.to_string())
    }

    #[test]
    fn hops_parse_as_names_or_single_key_maps() {
        let hops =
            parse("- compression\n- nginx: gzip\n- coalesce: {bytes: 100}\n- http10\n").unwrap();
        assert_eq!(hops[0], HopSpec::from(builtin::Compression::default()));
        assert_eq!(hops[1], HopSpec::real("nginx", "gzip").unwrap());
        assert_eq!(hops[2], HopSpec::from(builtin::Coalesce { bytes: 100 }));
        assert_eq!(hops[3], HopSpec::from(builtin::Http10));
    }

    #[test]
    fn unknown_hops_and_options_are_errors_with_suggestions() {
        let e = parse("- compresion\n").unwrap_err();
        assert!(e.contains("did you mean `compression`"), "{e}");
        let e = parse("- nginx: unbufered\n").unwrap_err();
        assert!(e.contains("did you mean `unbuffered`"), "{e}");
        let e = parse("- coalesce: {byte: 1}\n").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let e = parse("- {compression: {}, http10: ~}\n").unwrap_err();
        assert!(e.contains("one `name: options` pair"), "{e}");
        let e = parse("- headers: {set: {\"bad name\": x}}\n").unwrap_err();
        assert!(e.contains("is not a valid header"), "{e}");
    }

    #[test]
    fn a_real_hop_may_name_the_image_it_runs_from() {
        let hops = parse("[{nginx: 'gzip@nginx:1.27'}, {haproxy: 'default@haproxy:3.0'}]").unwrap();
        let HopSpec::Process(p) = &hops[0] else {
            panic!("{hops:?}")
        };
        assert_eq!(
            (p.config.as_str(), p.image.as_deref()),
            ("gzip", Some("nginx:1.27"))
        );
        assert_eq!(hops[0].label(), "nginx gzip@nginx:1.27");
        assert_eq!(hops[1].label(), "haproxy default@haproxy:3.0");
        for (bad, says) in [
            ("[{nginx: 'gzip@'}]", "an image after `@`"),
            (
                "[{nginx: 'gzpi@nginx:1.27'}]",
                "unknown nginx config `gzpi`",
            ),
            (
                "[{nginx: 'gzip@nginx@sha256:00'}]",
                "digests are not supported",
            ),
        ] {
            let e = serde_saphyr::from_str::<Vec<HopSpec>>(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_backend_places_hops_that_name_no_image() {
        let [nginx, squid, pinned, builtin]: [HopSpec; 4] =
            parse("[nginx, squid, {nginx: 'default@nginx:1.27'}, compression]")
                .unwrap()
                .try_into()
                .unwrap();
        let image = |h: &HopSpec| match h {
            HopSpec::Process(p) => p.image.clone(),
            HopSpec::Builtin(_) => None,
        };
        let on = |h: &HopSpec, b| h.on_backend(b).map(|h| image(&h));
        // Local leaves every hop as written; a pinned image is kept on every backend.
        assert_eq!(on(&nginx, Backend::Local), Ok(None));
        assert_eq!(on(&pinned, Backend::Local), Ok(Some("nginx:1.27".into())));
        assert_eq!(
            on(&pinned, Backend::Containers),
            Ok(Some("nginx:1.27".into()))
        );
        // Containers gives a program its default image: the version Debian ships.
        assert_eq!(
            on(&nginx, Backend::Containers),
            Ok(Some("nginx:1.22.1".into()))
        );
        assert_eq!(on(&builtin, Backend::Containers), Ok(None));
        // A program without an image definition has no place there, and the error says so.
        let e = on(&squid, Backend::Containers).unwrap_err();
        assert!(e.contains("squid has no image definition"), "{e}");
        // Auto keeps an installed program local (nginx is installed wherever these tests run).
        if programs::NGINX.executable().is_ok() {
            assert_eq!(on(&nginx, Backend::Auto), Ok(None));
        }
        assert_eq!(on(&squid, Backend::Auto), Ok(None));
    }

    #[test]
    #[cfg(not(feature = "containers"))]
    fn without_the_feature_an_image_hop_is_missing_with_the_reason() {
        let [pinned]: [HopSpec; 1] = parse("[{nginx: 'default@nginx:1.27'}]")
            .unwrap()
            .try_into()
            .unwrap();
        let why = pinned.missing().unwrap();
        assert!(why.contains("`containers` feature"), "{why}");
    }

    #[test]
    fn the_default_matrix_has_one_chain_per_infrastructure_hop() {
        let m = HopSpec::default_matrix();
        let names: Vec<&str> = m.iter().map(|(n, _)| n.as_str()).collect();
        for want in [
            "nginx-default",
            "nginx-unbuffered",
            "compression",
            "content-length",
            "http10",
            "coalesce",
            "idle-cut",
        ] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
        // A hop that needs options or models an origin fix is no infrastructure to gate against.
        assert!(!names.contains(&"headers") && !names.contains(&"heartbeat"));
    }
}
