//! Helpers every module of the integration binary shares.

use std::process::Command;

/// The built `ssegate` binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ssegate"))
}

/// Run `cmd`; its exit code and its stderr as text.
pub fn code_and_stderr(cmd: &mut Command) -> (Option<i32>, String) {
    let out = cmd.output().expect("the command runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A server from `tests/servers/` on a free port, started and listening; killed on drop.
pub struct PythonOrigin {
    child: std::process::Child,
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
        use std::io::BufRead;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = format!("{}/tests/servers/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("listening"), "{line}");
        PythonOrigin { child, port }
    }
}

impl Drop for PythonOrigin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
