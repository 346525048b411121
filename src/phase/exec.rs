//! A client suite run through each chain (`check --exec 'CMD … {url} …'`, `exec:` in `ssegate.yaml` or a
//! case): the user's own tests (the MCP conformance suite, a script with the official SDK client) run
//! once against the origin directly and once per chain, with `{url}` the chain's entry with the target's
//! path and `{base}` the entry without it.
//!
//! The command runs under `sh -c`, in its own process group under a deadline, killed with everything it
//! started on every exit path ([`crate::proc::ChildGuard`]). Its exit status, how long it took and the
//! tail of its output (scrubbed of every secret) are kept. A chain fails the gate when the suite fails
//! through it and passes directly: the chain broke what the origin does.

use std::fmt::Write as _;
use std::io::Read as _;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{GatePolicy, Level, Phase};
use crate::through::{Main, ScenarioError, Through};
use crate::verdict::Finding;

/// How long a suite may run by default, per run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Output lines kept from the end.
const TAIL_LINES: usize = 12;
/// Output bytes read from the end of the suite's output file.
const TAIL_BYTES: u64 = 16 << 10;

/// What to run: the command (`{url}`, `{base}` replaced) and its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecPlan {
    /// The command line, given once per process and kept for its whole life (a plan is `Copy`).
    pub command: &'static str,
    pub timeout: Duration,
}

/// `exec:` as written: the command alone, or with its deadline.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ExecSpec {
    Command(String),
    Full {
        command: String,
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
}

impl<'de> Deserialize<'de> for ExecPlan {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ExecPlan, D::Error> {
        ExecSpec::deserialize(d).map(ExecPlan::from)
    }
}

impl From<ExecSpec> for ExecPlan {
    fn from(s: ExecSpec) -> ExecPlan {
        let (command, timeout) = match s {
            ExecSpec::Command(c) => (c, None),
            ExecSpec::Full {
                command,
                timeout_ms,
            } => (command, timeout_ms.map(Duration::from_millis)),
        };
        ExecPlan::new(command, timeout.unwrap_or(DEFAULT_TIMEOUT))
    }
}

impl ExecPlan {
    /// A plan for `command`. The command is kept for the process's life: a run has a handful of them.
    pub fn new(command: String, timeout: Duration) -> ExecPlan {
        ExecPlan {
            command: Box::leak(command.into_boxed_str()),
            timeout,
        }
    }

    /// The command for a run against `url` (`{url}`), whose entry is `{base}`.
    pub fn command_for(&self, url: &str) -> String {
        self.command
            .replace("{url}", url)
            .replace("{base}", &base_of(url))
    }
}

/// `http://127.0.0.1:8080` of `http://127.0.0.1:8080/mcp?x=1`.
fn base_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => url.to_string(),
    }
}

/// One run of the suite.
#[derive(Debug, Clone, Serialize)]
pub struct ExecRun {
    /// Its exit status; None when it was killed at the deadline or by a signal.
    pub exit_code: Option<i32>,
    pub passed: bool,
    /// It was still running at the deadline and was killed.
    pub timed_out: bool,
    #[serde(rename = "took_ms", serialize_with = "crate::probe::ser_ms")]
    pub took: Duration,
    /// The last lines of its output (stdout and stderr together), secrets scrubbed.
    pub tail: String,
    /// Why it could not start, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ExecRun {
    /// `passed (exit 0, 1.2 s)`.
    pub fn words(&self) -> String {
        let took = crate::text::human_duration(self.took);
        match (&self.error, self.timed_out, self.exit_code) {
            (Some(e), _, _) => format!("did not start ({e})"),
            (None, true, _) => format!("timed out (killed after {took})"),
            (None, false, Some(c)) if self.passed => format!("passed (exit {c}, {took})"),
            (None, false, Some(c)) => format!("failed (exit {c}, {took})"),
            (None, false, None) => format!("failed (killed by a signal, {took})"),
        }
    }
}

/// Run the suite against `url`, within the plan's deadline.
pub async fn run(plan: ExecPlan, url: &str) -> ExecRun {
    let command = plan.command_for(url);
    let started = Instant::now();
    let failed = |e: String| ExecRun {
        exit_code: None,
        passed: false,
        timed_out: false,
        took: started.elapsed(),
        tail: String::new(),
        error: Some(e),
    };
    let dir = match crate::proc::private_dir("exec") {
        Ok(d) => d,
        Err(e) => return failed(format!("failed to make its output directory: {e}")),
    };
    let out_path = dir.path().join("output");
    let out = match std::fs::File::create(&out_path) {
        Ok(f) => f,
        Err(e) => return failed(format!("failed to create its output file: {e}")),
    };
    let err = match out.try_clone() {
        Ok(f) => f,
        Err(e) => return failed(format!("failed to share its output file: {e}")),
    };
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(&command)
        .env("SSEGATE_URL", url)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err);
    let mut child = match crate::proc::ChildGuard::spawn(&mut cmd, "exec") {
        Ok(c) => c,
        Err(e) => return failed(format!("failed to start `sh -c`: {e}")),
    };
    let deadline = started + plan.timeout;
    let status = loop {
        if let Some(s) = child.try_wait() {
            break Some(s);
        }
        if Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Whatever it left running in its group dies with the guard.
    drop(child);
    let took = started.elapsed();
    let exit_code = status.and_then(|s| s.code());
    ExecRun {
        exit_code,
        passed: exit_code == Some(0),
        timed_out: status.is_none(),
        took,
        tail: tail_of(&out_path),
        error: None,
    }
}

/// The last [`TAIL_LINES`] lines of the file, secrets scrubbed.
fn tail_of(path: &std::path::Path) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buf = Vec::new();
    use std::io::Seek as _;
    let _ = f.seek(std::io::SeekFrom::Start(len.saturating_sub(TAIL_BYTES)));
    let _ = f.take(TAIL_BYTES).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    crate::secrets::scrub(&kept).into_owned()
}

/// The client-suite phase.
pub struct ExecPhase;

/// What a case expects of its suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SuiteOutcome {
    Passed,
    Failed,
}

impl std::fmt::Display for SuiteOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SuiteOutcome::Passed => "passed",
            SuiteOutcome::Failed => "failed",
        })
    }
}

impl Phase for ExecPhase {
    const KEY: &'static str = "exec";
    const JOINS_VERDICT: bool = false;
    // The suite's own requests would disturb the other phases' measurements.
    const LAST: bool = true;
    const EXPECT_MISSING: &'static str = "a case with `exec` must say what its suite does: `expect.suite`";
    const EXPECT_ALONE: &'static str = "`expect.suite` needs an `exec` to run";
    const EXPECT_VALUES: &'static str = "passed, failed";
    type Plan = ExecPlan;
    type Result = ExecRun;
    type Expect = (Option<SuiteOutcome>,);

    fn validate(plan: &ExecPlan) -> Result<(), String> {
        if plan.command.trim().is_empty() {
            return Err("`exec` needs a command".into());
        }
        if plan.timeout.is_zero() {
            return Err("`exec.timeout_ms` must be above 0".into());
        }
        Ok(())
    }

    async fn measure(
        plan: ExecPlan,
        _through: &Through<'_>,
        main: &Main,
    ) -> Result<ExecRun, ScenarioError> {
        Ok(run(plan, &main.sent.url).await)
    }

    fn findings(_r: &ExecRun) -> Vec<Finding> {
        Vec::new()
    }

    fn expectation(
        (want,): (Option<SuiteOutcome>,),
        got: Option<&ExecRun>,
        failures: &mut Vec<String>,
    ) {
        let got = got.map(|r| {
            let o = if r.passed {
                SuiteOutcome::Passed
            } else {
                SuiteOutcome::Failed
            };
            (o.to_string(), "the client suite")
        });
        super::expect_one(failures, "suite", want.map(|w| w.to_string()), got);
    }

    fn snapshot(r: &ExecRun, s: &mut String) {
        let outcome = if r.passed { "passed" } else { "failed" };
        let _ = writeln!(s, "client suite: {outcome}");
        if let Some(c) = r.exit_code {
            let _ = writeln!(s, "  exit: {c}");
        }
    }

    fn human(r: &ExecRun, s: &mut String) {
        let _ = writeln!(s, "    client suite: {}", r.words());
        if !r.passed {
            for l in r.tail.lines().rev().take(3).collect::<Vec<_>>().into_iter().rev() {
                let _ = writeln!(s, "      | {l}");
            }
        }
    }

    fn gate(r: &ExecRun, _policy: &GatePolicy<'_>, direct: Option<&ExecRun>) -> Vec<(Level, String)> {
        if r.passed {
            return Vec::new();
        }
        match direct {
            Some(d) if d.passed => vec![(
                Level::Fail,
                format!(
                    "the client suite {} through this chain, and {} directly",
                    r.words(),
                    d.words()
                ),
            )],
            Some(d) => vec![(
                Level::Warn,
                format!(
                    "the client suite {} through this chain, and {} directly too: the origin's, not the chain's",
                    r.words(),
                    d.words()
                ),
            )],
            None => vec![(Level::Warn, format!("the client suite {}", r.words()))],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_base_are_put_in() {
        let p = ExecPlan::new("t --url {url} --base={base}".into(), DEFAULT_TIMEOUT);
        assert_eq!(
            p.command_for("http://127.0.0.1:81/mcp?x=1"),
            "t --url http://127.0.0.1:81/mcp?x=1 --base=http://127.0.0.1:81"
        );
    }

    #[test]
    fn a_plan_reads_a_string_or_a_mapping() {
        let p: ExecPlan = serde_saphyr::from_str("'npx suite {url}'").unwrap();
        assert_eq!((p.command, p.timeout), ("npx suite {url}", DEFAULT_TIMEOUT));
        let p: ExecPlan = serde_saphyr::from_str("{command: x, timeout_ms: 500}").unwrap();
        assert_eq!((p.command, p.timeout), ("x", Duration::from_millis(500)));
    }

    #[tokio::test]
    async fn exit_status_tail_and_deadline() {
        let ok = run(
            ExecPlan::new("echo one; echo got {url}".into(), DEFAULT_TIMEOUT),
            "http://127.0.0.1:1/e",
        )
        .await;
        assert!(ok.passed, "{ok:?}");
        assert_eq!(ok.exit_code, Some(0));
        assert_eq!(ok.tail, "one\ngot http://127.0.0.1:1/e");
        let bad = run(
            ExecPlan::new("echo broke >&2; exit 3".into(), DEFAULT_TIMEOUT),
            "http://x/",
        )
        .await;
        assert_eq!((bad.passed, bad.exit_code), (false, Some(3)));
        assert_eq!(bad.tail, "broke");
        assert!(bad.words().starts_with("failed (exit 3"), "{}", bad.words());
        // A suite that outlives its deadline is killed with what it started.
        let slow = run(
            ExecPlan::new("sleep 30 & sleep 30".into(), Duration::from_millis(200)),
            "http://x/",
        )
        .await;
        assert!(slow.timed_out && !slow.passed, "{slow:?}");
        assert!(slow.took < Duration::from_secs(10), "{slow:?}");
    }

    #[test]
    fn the_gate_fails_a_chain_only_when_the_suite_passed_directly() {
        let r = |passed: bool| ExecRun {
            exit_code: Some(if passed { 0 } else { 1 }),
            passed,
            timed_out: false,
            took: Duration::from_millis(5),
            tail: String::new(),
            error: None,
        };
        let policy = GatePolicy {
            allowed: &|_| false,
            denied: &|_| false,
            fail_on: crate::verdict::Severity::Error,
            explicit: false,
        };
        let g = ExecPhase::gate(&r(false), &policy, Some(&r(true)));
        assert_eq!(g[0].0, Level::Fail);
        assert!(g[0].1.contains("and passed (exit 0"), "{}", g[0].1);
        assert_eq!(
            ExecPhase::gate(&r(false), &policy, Some(&r(false)))[0].0,
            Level::Warn
        );
        assert!(ExecPhase::gate(&r(true), &policy, Some(&r(false))).is_empty());
    }
}
