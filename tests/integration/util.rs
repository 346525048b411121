//! Helpers every module of the integration binary shares.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long one run of the binary (or of `docker`) may take in a test before it is killed and the test
/// fails: every wait has a deadline.
pub const RUN_WITHIN: Duration = Duration::from_secs(300);
/// How long a server started for a test has to print its first line.
pub const READY_WITHIN: Duration = Duration::from_secs(60);

/// The built `ssegate` binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ssegate"))
}

/// Run `cmd` (at most [`RUN_WITHIN`]); its exit code and its stderr as text.
pub fn code_and_stderr(cmd: &mut Command) -> (Option<i32>, String) {
    let out = output_within(cmd, RUN_WITHIN);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run `cmd` to its end with its output collected, as `Command::output` does, but kill it and fail the
/// test when it has not ended within `within`.
pub fn output_within(cmd: &mut Command, within: Duration) -> Output {
    Spawned::start(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .wait_within(within)
}

/// A child process that is killed and reaped on drop, so that a failing assertion never leaves it
/// running.
pub struct Spawned {
    child: Option<Child>,
}

impl Spawned {
    /// Start `cmd` with its stdout piped and wait at most `within` for its first line (which it returns
    /// without the line end).
    pub fn first_line(cmd: &mut Command, within: Duration) -> (Spawned, String) {
        let mut spawned = Spawned::start(cmd.stdout(Stdio::piped()));
        let stdout = spawned
            .child
            .as_mut()
            .and_then(|c| c.stdout.take())
            .expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(within) {
            Ok(line) => (spawned, line.trim_end().to_string()),
            Err(_) => panic!("{cmd:?} printed no line within {within:?}"),
        }
    }

    /// Start `cmd` as it is set up (pipe what the test reads).
    pub fn start(cmd: &mut Command) -> Spawned {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {cmd:?}: {e}"));
        Spawned { child: Some(child) }
    }

    /// Kill it with SIGKILL at once (no chance to clean up, as `kill -9` or an OOM kill), and reap it.
    pub fn kill_hard(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether it has not exited yet.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Its pid.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Wait at most `within` for it to end, with what it writes to its piped stdout and stderr from
    /// now on; past the deadline it is killed and the test fails.
    pub fn wait_within(mut self, within: Duration) -> Output {
        let mut child = self.child.take().expect("not waited for yet");
        let read = |pipe: Option<Box<dyn Read + Send>>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut buf);
                }
                let _ = tx.send(buf);
            });
            rx
        };
        let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = child.try_wait().expect("the child can be waited for") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let err = stderr
                    .recv_timeout(Duration::from_secs(1))
                    .unwrap_or_default();
                panic!(
                    "pid {} did not end within {within:?}; its stderr:\n{}",
                    child.id(),
                    String::from_utf8_lossy(&err)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // A grandchild that kept a pipe open does not hold the test: what came within a second is kept.
        let take = |rx: mpsc::Receiver<Vec<u8>>| {
            rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default()
        };
        Output {
            status,
            stdout: take(stdout),
            stderr: take(stderr),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM first: an ssegate process stops the programs it started (a SIGKILL would leave
            // their own children, Apache's worker say, to init), then SIGKILL after a grace period.
            // SAFETY: kill(2) on our own child's pid, which it still is until it is waited for.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A server from `tests/servers/` on a free port, started and listening; killed on drop.
pub struct PythonOrigin {
    _child: Spawned,
    pub port: u16,
}

impl PythonOrigin {
    /// `tests/servers/sse_origin.py PORT ARGS…`.
    pub fn start(args: &[&str]) -> PythonOrigin {
        PythonOrigin::script("sse_origin.py", args)
    }

    /// `tests/servers/hostile.py PORT`: a hostile response per path.
    pub fn hostile() -> PythonOrigin {
        PythonOrigin::script("hostile.py", &[])
    }

    /// `http://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn script(name: &str, args: &[&str]) -> PythonOrigin {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = format!("{}/tests/servers/{name}", env!("CARGO_MANIFEST_DIR"));
        let (child, line) = Spawned::first_line(
            Command::new("python3")
                .arg(script)
                .arg(port.to_string())
                .args(args),
            READY_WITHIN,
        );
        assert!(line.contains("listening"), "{line}");
        PythonOrigin {
            _child: child,
            port,
        }
    }
}
