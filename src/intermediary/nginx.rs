//! Real nginx as a child process.
//!
//! `nginx -p <private temp prefix> -c <rendered config> -e <prefix>/error.log`, one foreground process
//! (`daemon off; master_process off;`) in its own process group, listening on 127.0.0.1 only. The config is
//! `nginx/_base.conf` with the profile's directives (`nginx/<profile>.conf`) inside `location /`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{HopError, Intermediary, Running, StartFuture, StopHandle};
use crate::proc::ChildGuard;

/// The directory of nginx templates, inside the source tree.
pub fn templates_dir() -> PathBuf {
    crate::assets::dir(crate::assets::Kind::Nginx)
}

/// Names of the nginx profiles (`nginx/*.conf` except `_base`).
pub fn configs() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(templates_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            (p.extension().is_some_and(|x| x == "conf") && !stem.starts_with('_')).then_some(stem)
        })
        .collect();
    v.sort();
    v
}

/// The nginx binary: `$SSEGATE_NGINX` when set, else `nginx` on PATH or in the sbin directories.
pub fn binary() -> Result<PathBuf, HopError> {
    match std::env::var_os("SSEGATE_NGINX") {
        Some(p) if Path::new(&p).is_file() => Ok(PathBuf::from(p)),
        Some(p) => Err(HopError::NotAFile {
            variable: "SSEGATE_NGINX",
            path: PathBuf::from(p),
        }),
        None => crate::proc::which("nginx").ok_or(HopError::Missing {
            program: "nginx",
            package: "nginx-light",
        }),
    }
}

/// `nginx/<version>` of the nginx in use, or None when it is missing.
pub fn version() -> Option<String> {
    static V: OnceLock<Option<String>> = OnceLock::new();
    V.get_or_init(|| {
        let bin = binary().ok()?;
        let out = Command::new(bin).arg("-v").output().ok()?;
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .find(|w| w.starts_with("nginx/"))
            .map(str::to_string)
    })
    .clone()
}

/// The nginx hop with one profile.
#[derive(Debug, Clone)]
pub struct Nginx {
    pub config: String,
}

impl Nginx {
    pub fn new(config: &str) -> Nginx {
        Nginx {
            config: config.to_string(),
        }
    }

    /// Render the full config for a port, upstream, prefix and readiness nonce.
    pub fn render(
        &self,
        port: u16,
        upstream: SocketAddr,
        prefix: &Path,
        nonce: &str,
    ) -> std::io::Result<String> {
        let dir = templates_dir();
        let base = std::fs::read_to_string(dir.join("_base.conf"))?;
        let own = std::fs::read_to_string(dir.join(format!("{}.conf", self.config)))?;
        let location: String = own.lines().map(|l| format!("            {l}\n")).collect();
        Ok(base
            .replace("{{location}}", location.trim_end())
            .replace("{{port}}", &port.to_string())
            .replace("{{upstream}}", &upstream.to_string())
            .replace("{{prefix}}", &prefix.display().to_string())
            .replace("{{nonce}}", nonce))
    }

    async fn start_once(&self, upstream: SocketAddr, bin: &Path) -> Result<Running, HopError> {
        let program = format!("nginx ({})", self.config);
        let spawn_err = |source| HopError::Spawn {
            program: program.clone(),
            source,
        };
        let dir = tempfile::Builder::new()
            .prefix("ssegate-nginx-")
            .tempdir()
            .map_err(spawn_err)?;
        std::fs::create_dir_all(dir.path().join("tmp")).map_err(spawn_err)?;
        // nginx cannot report an ephemeral port, so reserve one and hand it over; a lost race shows up as
        // "Address already in use" and the caller retries with a new port. (Handing nginx the bound socket
        // through `NGINX=3;` would close the race, but nginx 1.22 crashes on inherited sockets with
        // `master_process off`.) The readiness nonce keeps a port thief from passing for nginx.
        let port = {
            let l =
                std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|source| HopError::Bind {
                    hop: program.clone(),
                    source,
                })?;
            l.local_addr()
                .map_err(|source| HopError::Bind {
                    hop: program.clone(),
                    source,
                })?
                .port()
        };
        let nonce = format!(
            "ssegate-{}-{}",
            std::process::id(),
            dir.path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let conf = self
            .render(port, upstream, dir.path(), &nonce)
            .map_err(|source| HopError::Config {
                program: program.clone(),
                source,
            })?;
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).map_err(|source| HopError::Config {
            program: program.clone(),
            source,
        })?;
        let log = dir.path().join("error.log");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).map_err(spawn_err)?;
        let mut cmd = Command::new(bin);
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let mut guard = ChildGuard::spawn(&mut cmd, program.clone()).map_err(spawn_err)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        let deadline = Duration::from_secs(10);
        let log_tail = |dir: &Path| {
            let mut s = crate::proc::tail(&dir.join("error.log"), 20);
            let e = crate::proc::tail(&dir.join("stderr.log"), 20);
            if !e.is_empty() {
                s.push('\n');
                s.push_str(&e);
            }
            s
        };
        loop {
            if let Some(status) = guard.try_wait() {
                return Err(HopError::Exited {
                    program,
                    status: status.to_string(),
                    log: log_tail(dir.path()),
                });
            }
            if answers_nonce(addr, &nonce).await {
                break;
            }
            if started.elapsed() > deadline {
                return Err(HopError::NotReady {
                    program,
                    waited_ms: deadline.as_millis() as u64,
                    log: log_tail(dir.path()),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(Running {
            label: self.label(),
            addr,
            program: version(),
            stop: StopHandle::Child {
                guard,
                log,
                _dir: dir,
            },
        })
    }
}

/// Whether `addr` answers `GET /__ssegate_ready` with `nonce` (so it is our nginx, not a port thief).
async fn answers_nonce(addr: SocketAddr, nonce: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(b"GET /__ssegate_ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.take(4096).read_to_end(&mut buf).await.ok()?;
        Some(String::from_utf8_lossy(&buf).contains(nonce))
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

impl Intermediary for Nginx {
    fn label(&self) -> String {
        format!("nginx {}", self.config)
    }

    fn start(&self, upstream: SocketAddr) -> StartFuture<'_> {
        Box::pin(async move {
            let bin = binary()?;
            let mut attempt = 0;
            loop {
                attempt += 1;
                match self.start_once(upstream, &bin).await {
                    Err(HopError::Exited { log, .. })
                        if attempt < 5 && log.contains("Address already in use") =>
                    {
                        continue;
                    }
                    other => return other,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_profile_directives_inside_the_location() {
        let conf = Nginx::new("unbuffered")
            .render(
                8080,
                "127.0.0.1:9".parse().unwrap(),
                Path::new("/tmp/x"),
                "n0nce",
            )
            .unwrap();
        assert!(conf.contains("return 200 \"n0nce\";"));
        assert!(conf.contains("listen 127.0.0.1:8080;"));
        assert!(conf.contains("proxy_pass http://127.0.0.1:9;"));
        assert!(conf.contains("            proxy_buffering off;"));
        assert!(conf.contains("pid /tmp/x/nginx.pid;"));
        assert!(!conf.contains("{{"));
    }

    #[test]
    fn a_missing_nginx_names_the_debian_package() {
        let e = HopError::Missing {
            program: "nginx",
            package: "nginx-light",
        };
        assert_eq!(
            e.to_string(),
            "failed to find `nginx` on PATH; install it with `apt-get install -y nginx-light`"
        );
    }

    #[test]
    fn lists_the_profiles() {
        let c = configs();
        for want in ["default", "unbuffered", "gzip", "http11", "short-idle"] {
            assert!(c.iter().any(|x| x == want), "{want} in {c:?}");
        }
        assert!(!c.iter().any(|x| x.starts_with('_')));
    }
}
