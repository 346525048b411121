//! Real programs as hops: one mechanism for every proxy ssegate runs as a child process.
//!
//! A program is a [`Program`] entry in [`programs`](super::programs) plus a directory of templates,
//! `proxies/<name>/`: `_base.<ext>` (the private, loopback-only frame) and one `<config>.<ext>` per config a
//! chain can name. Starting one:
//!
//! 1. a private prefix directory (`ssegate-<name>-…` under the system temp dir, with `tmp/` inside);
//! 2. a reserved 127.0.0.1 port, and a readiness nonce unique to this start;
//! 3. the config, `<prefix>/<name>.<ext>`: `_base` with the config's own text put in place of the
//!    `{{config}}` line (indented like it), then `{{port}}`, `{{upstream}}` (`127.0.0.1:PORT`),
//!    `{{upstream_host}}`, `{{upstream_port}}`, `{{prefix}}` and `{{nonce}}` filled in everywhere;
//! 4. the program's argv and environment (`{prefix}` and `{config}` filled in), stdout to nothing, stderr
//!    to `<prefix>/stderr.log`, in its own process group ([`ChildGuard`]);
//! 5. readiness: `GET /__ssegate_ready` must answer the nonce (so a process that won a port race cannot pass
//!    for ours) within 10 s; an early exit is reported with its status and the tails of the program's logs,
//!    and a lost port race ([`Program::port_taken`] in the logs) is retried on a new port.
//!
//! Dropping the [`Running`] hop kills the group and removes the prefix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::program::Program;
use super::{HopError, Running, StopHandle};
use crate::cause_id::CauseId;
use crate::proc::ChildGuard;

/// Starts attempted when the reserved port was taken in between.
const PORT_ATTEMPTS: u32 = 5;
/// Log lines shown when a program fails.
const LOG_LINES: usize = 20;

/// A real program with one of its configs, as a chain names it (`nginx: gzip`), run from the local
/// install or, with `@IMAGE` (`nginx: gzip@nginx:1.27`), from a container image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessHop {
    pub program: &'static Program,
    pub config: String,
    /// The image to run the program from (`nginx:1.27`); None runs the installed program.
    pub image: Option<String>,
}

impl ProcessHop {
    /// `nginx default`, or `nginx default@nginx:1.27` when it runs from an image.
    pub fn label(&self) -> String {
        match &self.image {
            Some(image) => format!("{} {}@{image}", self.program.name, self.config),
            None => format!("{} {}", self.program.name, self.config),
        }
    }

    /// Start the program in front of `upstream` (the installed one, or from [`ProcessHop::image`]),
    /// retrying when the reserved port was taken meanwhile.
    pub async fn start(&self, upstream: SocketAddr) -> Result<Running, HopError> {
        let from = match &self.image {
            None => Source::Local(self.program.executable()?),
            Some(image) => self.image_source(image)?,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.start_once(upstream, &from).await {
                Err(HopError::Exited { log, .. } | HopError::NotReady { log, .. })
                    if attempt < PORT_ATTEMPTS
                        && log
                            .to_ascii_lowercase()
                            .contains(&self.program.port_taken.to_ascii_lowercase()) =>
                {
                    continue;
                }
                other => return other,
            }
        }
    }

    #[cfg(feature = "containers")]
    fn image_source(&self, image: &str) -> Result<Source, HopError> {
        Ok(Source::Image(image.to_string()))
    }

    #[cfg(not(feature = "containers"))]
    fn image_source(&self, image: &str) -> Result<Source, HopError> {
        Err(HopError::Unavailable {
            program: self.label(),
            why: super::image_unavailable(image).unwrap_or_default(),
        })
    }

    async fn start_once(&self, upstream: SocketAddr, from: &Source) -> Result<Running, HopError> {
        let name = format!("{} ({})", self.program.name, self.config);
        let prefix = Prefix::create(self.program.name, &name)?;
        // A program that binds with SO_REUSEPORT shares a port with whoever else holds it that way: it
        // gets a port held by a socket of ours with that option, kept until it is ready (no other run's
        // reservation can land on a port in use), and no other.
        let (port, _held) = match (self.program.reuse_port, from) {
            (true, Source::Local(_)) => {
                let (port, held) = hold_port_shared(&name)?;
                (port, Some(held))
            }
            _ => (reserve_port(&name)?, None),
        };
        let tls = self.program.uses_tls(&self.config);
        if tls {
            crate::tls::write_into(prefix.path()).map_err(|source| HopError::Config {
                program: name.clone(),
                source,
            })?;
        }
        let conf = self.write_config(&prefix, port, upstream, &name)?;
        let fill = |s: &str| {
            s.replace("{prefix}", &prefix.path().display().to_string())
                .replace("{config}", &conf.display().to_string())
                .replace("{port}", &port.to_string())
        };
        if let Some(user) = self.program.owner_if_root {
            give_to(prefix.path(), user).map_err(|source| spawn_error(&name, source))?;
        }
        let args: Vec<String> = self.program.argv.iter().map(|a| fill(a)).collect();
        let env: Vec<(String, String)> = self
            .program
            .child_env
            .iter()
            .map(|(k, v)| (k.to_string(), fill(v)))
            .collect();
        let mut live = match from {
            Source::Local(bin) => {
                let mut cmd = Command::new(bin);
                // Temporary files (Varnish's compiler output, say) go to the private prefix, which is
                // removed whatever way the run ends, not to the system's temporary directory.
                cmd.args(&args)
                    .env("TMPDIR", prefix.path().join("tmp"))
                    .envs(env);
                let stderr = std::fs::File::create(prefix.path().join("stderr.log"))
                    .map_err(|source| spawn_error(&name, source))?;
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(stderr);
                Live::Child(
                    ChildGuard::spawn(&mut cmd, name.clone())
                        .map_err(|source| spawn_error(&name, source))?,
                )
            }
            #[cfg(feature = "containers")]
            Source::Image(image) => Live::Container(Box::new(
                super::container::start(super::container::Spec {
                    image,
                    program: self.program,
                    label: &self.label(),
                    name: &name,
                    args,
                    env,
                    prefix: prefix.path(),
                })
                .await?,
            )),
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        self.await_ready(&mut live, addr, tls, &prefix, &name)
            .await?;
        let log = prefix
            .path()
            .join(self.program.logs.first().copied().unwrap_or("stderr.log"));
        let (program, stop) = match live {
            Live::Child(guard) => (
                {
                    // A program's version flag can take a second (a Python program's start): off the
                    // runtime's threads, where it would hold every other case's events meanwhile.
                    let program = self.program;
                    tokio::task::spawn_blocking(move || program.version())
                        .await
                        .ok()
                        .flatten()
                },
                StopHandle::Child {
                    guard,
                    log,
                    _dir: prefix.dir,
                },
            ),
            #[cfg(feature = "containers")]
            Live::Container(started) => {
                let image = self.image.as_deref().unwrap_or_default();
                (
                    super::container::version(self.program, image).await,
                    StopHandle::Container(Box::new(super::container::Handle {
                        started: *started,
                        name,
                        log,
                        dir: Some(prefix.dir),
                    })),
                )
            }
        };
        Ok(Running {
            label: self.label(),
            addr,
            tls,
            program,
            stop,
        })
    }

    fn write_config(
        &self,
        prefix: &Prefix,
        port: u16,
        upstream: SocketAddr,
        name: &str,
    ) -> Result<PathBuf, HopError> {
        let config_error = |source| HopError::Config {
            program: name.to_string(),
            source,
        };
        let text = self
            .program
            .render(&self.config, port, upstream, prefix.path(), &prefix.nonce)
            .map_err(config_error)?;
        let path = prefix
            .path()
            .join(format!("{}.{}", self.program.name, self.program.ext));
        std::fs::write(&path, text).map_err(config_error)?;
        Ok(path)
    }

    /// Wait until the program answers its nonce, exits, or runs out of time.
    async fn await_ready(
        &self,
        live: &mut Live,
        addr: SocketAddr,
        tls: bool,
        prefix: &Prefix,
        name: &str,
    ) -> Result<(), HopError> {
        let started = Instant::now();
        let mut polls = 0u32;
        loop {
            if let Some(status) = live.exited() {
                live.save_logs().await;
                return Err(HopError::Exited {
                    program: name.to_string(),
                    status,
                    log: self.log_tail(prefix.path()),
                });
            }
            let answered = if tls {
                answers_nonce_tls(addr, &prefix.nonce).await
            } else {
                answers_nonce(addr, &prefix.nonce).await
            };
            if answered && self.logged_ready(prefix.path()) {
                return Ok(());
            }
            // A program that logs the lost port race and keeps running (Traffic Server) is not
            // waited for until the deadline.
            polls += 1;
            if polls.is_multiple_of(20) {
                live.save_logs().await;
                let log = self.log_tail(prefix.path());
                if log
                    .to_ascii_lowercase()
                    .contains(&self.program.port_taken.to_ascii_lowercase())
                {
                    return Err(HopError::NotReady {
                        program: name.to_string(),
                        waited_ms: started.elapsed().as_millis() as u64,
                        log,
                    });
                }
            }
            if started.elapsed() > self.program.ready_within {
                live.save_logs().await;
                return Err(HopError::NotReady {
                    program: name.to_string(),
                    waited_ms: self.program.ready_within.as_millis() as u64,
                    log: self.log_tail(prefix.path()),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Whether the program's log says it is fully up, for a program whose port answers before it is
    /// (`Program::ready_log`); always true for the others.
    fn logged_ready(&self, prefix: &Path) -> bool {
        self.program.ready_log.is_none_or(|(file, text)| {
            crate::proc::tail(&prefix.join(file), LOG_LINES * 4).contains(text)
        })
    }

    /// The last lines of each of the program's logs, then of its stderr.
    fn log_tail(&self, prefix: &Path) -> String {
        self.program
            .logs
            .iter()
            .chain(std::iter::once(&"stderr.log"))
            .map(|l| crate::proc::tail(&prefix.join(l), LOG_LINES))
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The cause this config is known to produce when it breaks a stream.
    pub fn known_cause(&self) -> Option<(CauseId, &'static str)> {
        (self.program.known_cause)(&self.config)
    }
}

/// Where a program runs from.
enum Source {
    Local(PathBuf),
    #[cfg(feature = "containers")]
    Image(String),
}

/// A program being started: a child process group, or a container.
enum Live {
    Child(ChildGuard),
    #[cfg(feature = "containers")]
    Container(Box<super::container::Started>),
}

impl Live {
    /// The exit status once the program has exited.
    fn exited(&mut self) -> Option<String> {
        match self {
            Live::Child(g) => g.try_wait().map(|s| s.to_string()),
            #[cfg(feature = "containers")]
            Live::Container(c) => c.exited(),
        }
    }

    /// Put what the program wrote to its stderr in `<prefix>/stderr.log` (a child writes there itself).
    async fn save_logs(&self) {
        #[cfg(feature = "containers")]
        if let Live::Container(c) = self {
            c.save_logs().await;
        }
    }
}

/// A private working directory for one start, and the readiness nonce derived from it.
struct Prefix {
    dir: tempfile::TempDir,
    nonce: String,
}

impl Prefix {
    fn create(program: &str, name: &str) -> Result<Prefix, HopError> {
        let dir = crate::proc::private_dir(program).map_err(|source| spawn_error(name, source))?;
        std::fs::create_dir_all(dir.path().join("tmp"))
            .map_err(|source| spawn_error(name, source))?;
        let nonce = format!(
            "ssegate-{}-{}",
            std::process::id(),
            dir.path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        Ok(Prefix { dir, nonce })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// When ssegate runs as root, give `dir` and everything in it to `user` (a program that switches to that
/// user must still write its state there). Otherwise nothing: the program keeps ssegate's user.
fn give_to(dir: &Path, user: &str) -> std::io::Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let name = std::ffi::CString::new(user).map_err(std::io::Error::other)?;
    // SAFETY: getpwnam returns a pointer into static storage or null; it is read at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(std::io::Error::other(format!("no user `{user}` to run as")));
    }
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        std::os::unix::fs::lchown(&p, Some(uid), Some(gid))?;
        if p.is_dir() && !p.is_symlink() {
            stack.extend(std::fs::read_dir(&p)?.flatten().map(|e| e.path()));
        }
    }
    Ok(())
}

fn spawn_error(name: &str, source: std::io::Error) -> HopError {
    HopError::Spawn {
        program: name.to_string(),
        source,
    }
}

/// Reserve a free loopback port to hand to a program that cannot report the one it bound. A lost race
/// shows up as the program's "address in use" and the start is retried; the readiness nonce keeps a port
/// thief from passing for the program. (Handing nginx the bound socket through `NGINX=3;` would close the
/// race, but nginx 1.22 crashes on inherited sockets with `master_process off`.)
fn reserve_port(name: &str) -> Result<u16, HopError> {
    let bind_error = |source| HopError::Bind {
        hop: name.to_string(),
        source,
    };
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(bind_error)?;
    Ok(l.local_addr().map_err(bind_error)?.port())
}

/// A loopback port held by a bound (not listening) socket with `SO_REUSEPORT`, so that a program that
/// binds with that option can bind it too, and nobody else: a reservation without the option (every
/// other run's) never picks a port in use. The socket receives no connection (it does not listen);
/// dropping it leaves the port to the program.
fn hold_port_shared(name: &str) -> Result<(u16, socket2::Socket), HopError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let bind_error = |source| HopError::Bind {
        hop: name.to_string(),
        source,
    };
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).map_err(bind_error)?;
    s.set_reuse_port(true).map_err(bind_error)?;
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .map_err(bind_error)?;
    let port = s
        .local_addr()
        .map_err(bind_error)?
        .as_socket()
        .map(|a| a.port())
        .ok_or_else(|| bind_error(std::io::Error::other("not an IP address")))?;
    Ok((port, s))
}

/// [`answers_nonce`] over TLS, verified against the process's own authority (a port thief has not got its
/// key), with ssegate's HTTP client.
async fn answers_nonce_tls(addr: SocketAddr, nonce: &str) -> bool {
    let Ok(client) = crate::probe::client_for(Duration::from_secs(2)) else {
        return false;
    };
    let url = format!("https://{addr}/__ssegate_ready");
    let ask = async {
        let resp = client.get(url).send().await.ok()?;
        resp.text().await.ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), ask).await,
        Ok(Some(body)) if body.contains(nonce)
    )
}

/// Whether `addr` answers `GET /__ssegate_ready` with `nonce` (so it is our program, not a port thief).
async fn answers_nonce(addr: SocketAddr, nonce: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        // HTTP/1.1: Envoy answers HTTP/1.0 with 426 unless told to accept it.
        s.write_all(
            b"GET /__ssegate_ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .await
        .ok()?;
        // Done as soon as the nonce is in, without waiting for the server to close.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while buf.len() < 4096 {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if memchr::memmem::find(&buf, nonce.as_bytes()).is_some() {
                return Some(true);
            }
        }
        Some(false)
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::super::program::{VersionWord, config_sections, split_image};
    use super::super::programs::NGINX;
    use super::*;

    #[test]
    fn renders_config_directives_in_place_of_the_config_line() {
        let conf = NGINX
            .render(
                "unbuffered",
                8080,
                "127.0.0.1:9".parse().unwrap(),
                Path::new("/tmp/x"),
                "n0nce",
            )
            .unwrap();
        assert!(conf.contains("return 200 \"n0nce\";"));
        assert!(conf.contains("listen 127.0.0.1:8080;"));
        assert!(conf.contains("proxy_pass http://127.0.0.1:9;"));
        assert!(conf.contains("\n            proxy_buffering off;\n"));
        assert!(conf.contains("pid /tmp/x/nginx.pid;"));
        assert!(!conf.contains("{{"));
    }

    #[test]
    fn a_config_section_replaces_the_bases_default_text_and_other_configs_keep_it() {
        let render = |config| {
            NGINX
                .render(
                    config,
                    8080,
                    "127.0.0.1:9".parse().unwrap(),
                    Path::new("/tmp/x"),
                    "n",
                )
                .unwrap()
        };
        let stock = render("default");
        assert!(stock.contains("\n    worker_connections 768;\n"), "{stock}");
        assert!(!stock.contains("worker_rlimit_nofile"));
        let roomy = render("connections");
        assert!(
            roomy.contains("\n    worker_connections 8192;\n"),
            "{roomy}"
        );
        assert!(!roomy.contains("worker_connections 768"));
        // The text before the first section still goes inside `location /`.
        assert!(roomy.contains("\n            proxy_buffering off;\n"));
        assert!(!roomy.contains("{{"));
        assert!(!roomy.lines().any(|l| l.trim_start().starts_with("#> ")));
        let s = config_sections("a\n#> events\nb\n#> main\nc\n");
        assert_eq!(
            (s[""].as_str(), s["events"].as_str(), s["main"].as_str()),
            ("a\n", "b\n", "c\n")
        );
    }

    #[test]
    fn versions_are_found_where_each_program_prints_them() {
        let v = |w: VersionWord, text| w.find("x", text);
        assert_eq!(
            v(VersionWord::Prefix("nginx/"), "nginx version: nginx/1.22.1"),
            Some("nginx/1.22.1".into())
        );
        assert_eq!(
            v(
                VersionWord::After("version"),
                "HAProxy version 2.6.12-1 2026/10/17"
            ),
            Some("x/2.6.12-1".into())
        );
        assert_eq!(v(VersionWord::First, " 2.6.2\n"), Some("x/2.6.2".into()));
        assert_eq!(v(VersionWord::After("version"), "no such word"), None);
    }

    #[test]
    fn the_private_prefix_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let p = Prefix::create("nginx", "nginx (test)").unwrap();
        let mode = std::fs::metadata(p.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{mode:o}");
    }

    #[test]
    fn a_missing_program_names_the_debian_package() {
        let e = HopError::Missing {
            program: "nginx",
            install: "apt-get install -y nginx-light".into(),
        };
        assert_eq!(
            e.to_string(),
            "failed to find `nginx` on PATH; install it with `apt-get install -y nginx-light`"
        );
    }

    #[test]
    fn image_references_split_into_name_and_tag() {
        assert_eq!(split_image("nginx:1.27"), Ok(("nginx", "1.27")));
        assert_eq!(split_image("nginx"), Ok(("nginx", "latest")));
        assert_eq!(
            split_image("envoyproxy/envoy:v1.31-latest"),
            Ok(("envoyproxy/envoy", "v1.31-latest"))
        );
        // A registry's port is not a tag.
        assert_eq!(
            split_image("registry.local:5000/team/nginx"),
            Ok(("registry.local:5000/team/nginx", "latest"))
        );
        assert_eq!(
            split_image("registry.local:5000/nginx:1.27"),
            Ok(("registry.local:5000/nginx", "1.27"))
        );
        for bad in [
            "",
            "nginx:",
            "nginx@sha256:abc",
            "ngi nx:1",
            "nginx:1.22;rm$(id)",
            "--privileged",
            "NGINX:1.22",
            "../../etc/passwd",
            "a:b:c",
        ] {
            assert!(split_image(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lists_the_configs() {
        let c = NGINX.configs();
        for want in ["default", "unbuffered", "gzip", "http11", "short-idle"] {
            assert!(c.iter().any(|x| x == want), "{want} in {c:?}");
        }
        assert!(!c.iter().any(|x| x.starts_with('_')));
        for m in NGINX.matrix {
            assert!(
                c.iter().any(|x| x == m),
                "matrix config {m} has no template"
            );
        }
    }

    #[tokio::test]
    async fn a_program_that_exits_at_once_is_reported_with_its_status_and_log() {
        // `false` stands in for a program whose config is rejected: it exits 1 before answering.
        static FAILING: Program = Program {
            name: "nginx",
            binary: "false",
            env: "SSEGATE_TEST_UNSET_BINARY",
            package: "coreutils",
            install: None,
            also_at: || None,
            ext: "conf",
            default_config: "default",
            matrix: &[],
            in_default: false,
            argv: &[],
            logs: &[],
            needs: &[],
            owner_if_root: None,
            child_env: &[],
            version_args: &[],
            version_word: VersionWord::First,
            port_taken: "Address already in use",
            reuse_port: false,
            ready_log: None,
            ready_within: Duration::from_secs(10),
            known_cause: |_| None,
            image: None,
            idle_limit: |_| None,
            caches: false,
            llm_gateway: false,
        };
        let hop = ProcessHop {
            program: &FAILING,
            config: "default".into(),
            image: None,
        };
        let e = hop.start("127.0.0.1:9".parse().unwrap()).await.unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, HopError::Exited { .. }), "{text}");
        assert!(text.contains("exit status: 1"), "{text}");
    }

    #[test]
    fn a_port_held_for_a_reuseport_program_is_open_to_it_and_closed_to_every_other_bind() {
        let (port, held) = hold_port_shared("caddy (test)").unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // Another run's reservation (no SO_REUSEPORT) cannot take it.
        assert!(std::net::TcpListener::bind(addr).is_err());
        // The program (SO_REUSEPORT) binds and listens, and gets the connections: ours does not listen.
        let program =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        program.set_reuse_port(true).unwrap();
        program.bind(&addr.into()).unwrap();
        program.listen(8).unwrap();
        let program: std::net::TcpListener = program.into();
        for _ in 0..8 {
            let _c = std::net::TcpStream::connect(addr).unwrap();
            program.accept().unwrap();
        }
        drop(held);
        assert!(
            std::net::TcpListener::bind(addr).is_err(),
            "still the program's"
        );
    }
}
