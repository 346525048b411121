//! A user's own server as the target: a command started in its own process group with a port injected,
//! awaited until ready, its output kept for failure reports.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::proc::ChildGuard;

/// How to tell the server is ready.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadySpec {
    /// A path to GET until anything answers (e.g. `/health`).
    pub http: Option<String>,
    /// Text to wait for in the server's stdout or stderr (e.g. `listening`).
    pub log: Option<String>,
    /// How long to wait at most.
    #[serde(default = "default_ready_ms")]
    pub timeout_ms: u64,
}

fn default_ready_ms() -> u64 {
    15_000
}

impl Default for ReadySpec {
    fn default() -> Self {
        ReadySpec {
            http: None,
            log: None,
            timeout_ms: default_ready_ms(),
        }
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// Program and arguments; `{port}` is replaced by the port the server must listen on.
    pub argv: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// Extra environment; `{port}` is replaced in values.
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("failed to start the target: the command is empty")]
    Empty,
    #[error("failed to reserve a port on 127.0.0.1")]
    Port(#[source] std::io::Error),
    #[error("failed to start the target `{program}`: its working directory {} is not a directory", cwd.display())]
    NoCwd {
        program: String,
        cwd: std::path::PathBuf,
    },
    #[error("failed to start the target `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "failed to start the target `{program}`: it exited with {status}; last output lines:\n{log}"
    )]
    Exited {
        program: String,
        status: String,
        log: String,
    },
    #[error(
        "the target `{program}` exited with {status} while it was being measured; last output lines:\n{log}"
    )]
    Died {
        program: String,
        status: String,
        log: String,
    },
    #[error(
        "failed to start the target `{program}`: not ready after {waited_ms} ms ({how}); last output lines:\n{log}"
    )]
    NotReady {
        program: String,
        waited_ms: u64,
        how: String,
        log: String,
    },
}

/// A running target command; dropping it kills its process group.
#[derive(Debug)]
pub struct CommandTarget {
    guard: ChildGuard,
    port: u16,
    program: String,
    dir: tempfile::TempDir,
    /// Readiness was reached: an exit from now on is a death, not a failed start.
    ready: bool,
}

fn substitute(s: &str, port: u16) -> String {
    s.replace("{port}", &port.to_string())
}

impl CommandTarget {
    /// Start `spec` on a free port and wait until it is ready.
    pub async fn start(
        spec: &CommandSpec,
        ready: &ReadySpec,
    ) -> Result<CommandTarget, TargetError> {
        let Some(first) = spec.argv.first() else {
            return Err(TargetError::Empty);
        };
        let program = spec.argv.join(" ");
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map_err(TargetError::Port)?
            .port();
        let spawn_err = |source| TargetError::Spawn {
            program: program.clone(),
            source,
        };
        let dir = crate::proc::private_dir("target").map_err(spawn_err)?;
        let stdout = std::fs::File::create(dir.path().join("stdout.log")).map_err(spawn_err)?;
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).map_err(spawn_err)?;
        let mut cmd = Command::new(substitute(first, port));
        cmd.args(spec.argv[1..].iter().map(|a| substitute(a, port)))
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        for (k, v) in &spec.env {
            cmd.env(k, substitute(v, port));
        }
        if let Some(cwd) = &spec.cwd {
            // A missing directory makes the spawn fail with ENOENT, which reads as a missing program.
            if !cwd.is_dir() {
                return Err(TargetError::NoCwd {
                    program,
                    cwd: cwd.clone(),
                });
            }
            cmd.current_dir(cwd);
        }
        let guard = ChildGuard::spawn(&mut cmd, program.clone()).map_err(spawn_err)?;
        let mut target = CommandTarget {
            guard,
            port,
            program,
            dir,
            ready: false,
        };
        target.wait_ready(ready).await?;
        target.ready = true;
        Ok(target)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The last lines of the server's stdout and stderr.
    pub fn logs(&self) -> String {
        let out = crate::proc::tail(&self.dir.path().join("stdout.log"), 20);
        let err = crate::proc::tail(&self.dir.path().join("stderr.log"), 20);
        match (out.is_empty(), err.is_empty()) {
            (true, true) => "(no output)".into(),
            (_, true) => out,
            (true, false) => err,
            (false, false) => format!("{out}\n{err}"),
        }
    }

    /// Fail if the server has exited.
    pub fn check_alive(&mut self) -> Result<(), TargetError> {
        match self.guard.try_wait() {
            Some(status) if self.ready => Err(TargetError::Died {
                program: self.program.clone(),
                status: status.to_string(),
                log: self.logs(),
            }),
            Some(status) => Err(TargetError::Exited {
                program: self.program.clone(),
                status: status.to_string(),
                log: self.logs(),
            }),
            None => Ok(()),
        }
    }

    async fn wait_ready(&mut self, ready: &ReadySpec) -> Result<(), TargetError> {
        let started = Instant::now();
        let deadline = Duration::from_millis(ready.timeout_ms);
        let how = match (&ready.http, &ready.log) {
            (Some(p), _) => format!("GET {p} never answered"),
            (None, Some(l)) => format!("{l:?} never appeared in its output"),
            (None, None) => format!("nothing accepted connections on port {}", self.port),
        };
        // The output is scanned as it grows, each byte once: a target that logs hundreds of megabytes
        // before its ready line is not re-read every 50 ms.
        let mut scans = [
            crate::proc::LogScan::new(self.dir.path().join("stdout.log")),
            crate::proc::LogScan::new(self.dir.path().join("stderr.log")),
        ];
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(1))
            .build()
            .ok();
        loop {
            self.check_alive()?;
            let ok = match (&ready.http, &ready.log, &client) {
                (Some(path), _, Some(c)) => c
                    .get(format!("http://{}{}", self.addr(), path))
                    .send()
                    .await
                    .is_ok(),
                (None, Some(text), _) => scans.iter_mut().any(|s| s.found(text)),
                _ => tokio::net::TcpStream::connect(self.addr()).await.is_ok(),
            };
            if ok {
                return Ok(());
            }
            if started.elapsed() > deadline {
                return Err(TargetError::NotReady {
                    program: self.program.clone(),
                    waited_ms: ready.timeout_ms,
                    how,
                    log: self.logs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A started target shared by the chains measured at once; any of them may find it dead.
pub type SharedTarget = std::sync::Arc<std::sync::Mutex<CommandTarget>>;

/// Lock a shared target, even when a panicking chain poisoned the lock (the target itself is still sound).
pub fn lock(t: &SharedTarget) -> std::sync::MutexGuard<'_, CommandTarget> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> CommandSpec {
        CommandSpec {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            cwd: None,
            env: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn a_target_that_dies_reports_status_and_output() {
        let err = CommandTarget::start(
            &sh("echo booting; echo 'fatal: no config' >&2; exit 3"),
            &ReadySpec::default(),
        )
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("exited with exit status: 3"), "{msg}");
        assert!(msg.contains("fatal: no config"), "{msg}");
        assert!(msg.contains("booting"), "{msg}");
    }

    #[tokio::test]
    async fn readiness_has_a_deadline() {
        let ready = ReadySpec {
            log: Some("listening".into()),
            timeout_ms: 300,
            ..Default::default()
        };
        let err = CommandTarget::start(&sh("echo starting; sleep 30"), &ready)
            .await
            .unwrap_err();
        assert!(matches!(err, TargetError::NotReady { .. }), "{err}");
        assert!(
            err.to_string().contains("\"listening\" never appeared"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn port_is_substituted_and_log_readiness_works() {
        let ready = ReadySpec {
            log: Some("port=".into()),
            ..Default::default()
        };
        let mut spec = sh("echo port={port} env=$APP_PORT; sleep 30");
        spec.env.insert("APP_PORT".into(), "{port}".into());
        let t = CommandTarget::start(&spec, &ready).await.unwrap();
        let port = t.addr().port();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            t.logs().contains(&format!("port={port} env={port}")),
            "{}",
            t.logs()
        );
        // The target's output may hold secrets: its directory is its owner's alone.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(t.dir.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700, "{mode:o}");
    }

    #[tokio::test]
    async fn a_missing_working_directory_is_named_as_such() {
        let mut spec = sh("true");
        spec.cwd = Some("/nonexistent/ssegate-dir".into());
        let e = CommandTarget::start(&spec, &ReadySpec::default())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("working directory /nonexistent/ssegate-dir is not a directory"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn an_empty_command_is_an_error() {
        let spec = CommandSpec {
            argv: vec![],
            cwd: None,
            env: BTreeMap::new(),
        };
        assert!(matches!(
            CommandTarget::start(&spec, &ReadySpec::default()).await,
            Err(TargetError::Empty)
        ));
    }
}
