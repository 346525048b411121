//! Hostile responses from a raw-socket server (`tests/servers/hostile.py`): each ends within its deadline
//! with a finding or a clear error, never a panic, a hang or a silent pass. The shapes that take long or
//! need much memory are measured by `scripts/hostile.sh` instead (BENCHMARKS.md).

use crate::util::{PythonOrigin, bin};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Generous: these streams end in well under a second, or at a `--duration` of 2 s.
const ENDS_WITHIN: Duration = Duration::from_secs(20);

struct Outcome {
    code: Option<i32>,
    stderr: String,
    json: Option<Value>,
}

impl Outcome {
    fn doc(&self) -> &Value {
        self.json
            .as_ref()
            .unwrap_or_else(|| panic!("no JSON (exit {:?}): {}", self.code, self.stderr))
    }
    fn findings(&self) -> Vec<String> {
        self.doc()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_string())
            .collect()
    }
    fn finding(&self, id: &str) -> &Value {
        self.doc()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("no finding {id} in {:?}", self.findings()))
    }
    fn data(&self) -> Vec<String> {
        self.doc()["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["data"].as_str().unwrap().to_string())
            .collect()
    }
}

fn probe(server: &PythonOrigin, path: &str, extra: &[&str]) -> Outcome {
    let started = Instant::now();
    let out = bin()
        .args([
            "probe",
            &server.url(path),
            "--format",
            "json",
            "--duration",
            "2s",
        ])
        .args(extra)
        .output()
        .expect("ssegate runs");
    let took = started.elapsed();
    assert!(took < ENDS_WITHIN, "{path}: took {took:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{path}: {stderr}");
    Outcome {
        code: out.status.code(),
        json: serde_json::from_slice(&out.stdout).ok(),
        stderr,
    }
}

#[test]
fn a_status_line_that_is_not_http_is_a_clear_error() {
    let s = PythonOrigin::hostile();
    let o = probe(&s, "garbage-status", &[]);
    assert_eq!(o.code, Some(3), "{}", o.stderr);
    assert!(
        o.stderr.contains("failed to read the response head from")
            && o.stderr.contains("not an HTTP status line"),
        "{}",
        o.stderr
    );
}

#[test]
fn a_header_block_too_large_is_a_clear_error() {
    let s = PythonOrigin::hostile();
    let o = probe(&s, "huge-headers", &[]);
    assert_eq!(o.code, Some(3), "{}", o.stderr);
    assert!(
        o.stderr.contains("failed to read the response head from")
            && o.stderr
                .contains("header block is larger than the HTTP client accepts"),
        "{}",
        o.stderr
    );
}

#[test]
fn headers_that_never_finish_end_at_the_duration_with_no_response() {
    let s = PythonOrigin::hostile();
    let o = probe(&s, "headers-never-finish", &[]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(o.doc()["delivery"], "no-events");
    assert!(o.findings().contains(&"no-response".to_string()));
}

#[test]
fn a_bogus_chunk_size_cuts_the_stream_after_the_good_chunk() {
    let s = PythonOrigin::hostile();
    let o = probe(&s, "bogus-chunk", &[]);
    assert_eq!(o.doc()["delivery"], "cut");
    assert_eq!(o.doc()["end"]["kind"], "aborted");
    assert_eq!(o.data(), ["x"]);
    let cut = o.finding("stream-cut")["evidence"].to_string();
    assert!(cut.contains("inside a chunk"), "{cut}");
}

#[test]
fn a_body_shorter_than_its_content_length_is_a_cut_that_says_so() {
    let s = PythonOrigin::hostile();
    let o = probe(&s, "long-length", &[]);
    assert_eq!(o.doc()["delivery"], "cut");
    assert_eq!(o.data(), ["only"]);
    let cut = o.finding("stream-cut")["evidence"].to_string();
    assert!(cut.contains("before the declared Content-Length"), "{cut}");
    assert!(
        o.findings()
            .contains(&"content-length-on-stream".to_string())
    );
}

#[test]
fn a_content_length_shorter_than_the_stream_ends_it_there() {
    let s = PythonOrigin::hostile();
    let o = probe(&s, "short-length", &[]);
    // 20 bytes: the first event and one byte of the second.
    assert_eq!(o.data(), ["first event"]);
    assert_eq!(o.doc()["end"]["kind"], "complete");
    assert!(
        o.findings()
            .contains(&"content-length-on-stream".to_string())
    );
}

#[test]
fn a_reset_mid_event_is_a_cut_that_keeps_the_events_before_it() {
    let s = PythonOrigin::hostile();
    let o = probe(&s, "reset-mid-event", &[]);
    assert_eq!(o.doc()["delivery"], "cut");
    assert_eq!(o.data(), ["first"]);
    let cut = o.finding("stream-cut")["evidence"].to_string();
    assert!(cut.contains("connection reset"), "{cut}");
}

#[test]
fn a_redirect_loop_is_not_followed_and_is_reported() {
    let s = PythonOrigin::hostile();
    let o = probe(&s, "redirect-loop", &[]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(o.doc()["status"], 302);
    assert!(o.findings().contains(&"error-status".to_string()));
}

#[test]
fn a_one_byte_a_second_drip_ends_at_the_duration() {
    let s = PythonOrigin::hostile();
    let o = probe(&s, "drip", &[]);
    assert_eq!(o.doc()["end"]["kind"], "limit");
    assert!(o.findings().contains(&"duration-limit-reached".to_string()));
    assert!(
        o.data().is_empty(),
        "an 11-byte event cannot arrive in 2 s at 1 B/s"
    );
}

#[test]
fn endless_bytes_without_a_line_break_stop_at_the_byte_limit() {
    let s = PythonOrigin::hostile();
    let o = probe(
        &s,
        "endless",
        &["--max-bytes", "2000000", "--max-line", "64k"],
    );
    let f = o.findings();
    assert!(f.contains(&"byte-limit-reached".to_string()), "{f:?}");
    assert!(f.contains(&"line-too-long".to_string()), "{f:?}");
}

#[test]
fn invalid_utf8_and_nul_are_kept_and_reported_as_browsers_see_them() {
    let s = PythonOrigin::hostile();
    let o = probe(&s, "invalid-utf8", &[]);
    assert_eq!(o.data(), ["\u{fffd}\u{fffd}\u{fffd}(", "ok"]);
    assert!(o.findings().contains(&"invalid-utf8".to_string()));
    let o = probe(&s, "nul", &[]);
    // NUL stays in data; an id holding NUL is ignored, as the HTML standard says.
    assert_eq!(o.data(), ["a\u{0}b", "c"]);
    let ids: Vec<&Value> = o.doc()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert!(ids.iter().all(|id| *id == ""), "{ids:?}");
}

/// A chain that answers nothing (nginx's gzip filter closing the client's connection on a malformed chunk)
/// is a measurement of that chain, not a setup error that stops `check`.
#[test]
fn a_chain_that_answers_nothing_is_measured_not_fatal() {
    let s = PythonOrigin::hostile();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ssegate.yaml");
    std::fs::write(
        &cfg,
        format!(
            "target: {{url: {{base: '{}'}}}}\nlisten: {{duration_ms: 5000, lifecycle: false}}\nmatrix:\n  gz: [{{nginx: gzip}}]\n",
            s.url("/bogus-chunk")
        ),
    )
    .unwrap();
    let out = bin()
        .args(["check", "-c"])
        .arg(&cfg)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The direct stream is itself cut, so the gate fails (4); before, the chain's failed request
    // stopped the run with exit 3.
    assert_eq!(out.status.code(), Some(4), "{stderr}\n{stdout}");
    let chain: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["data"]["name"] == "gz")
        .unwrap_or_else(|| panic!("no chain gz in {stdout}"));
    let d = &chain["data"];
    assert_eq!(d["status"], 0, "{d}");
    assert_eq!(d["delivery"], "cut", "{d}");
    let ids: Vec<&str> = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert!(ids.contains(&"no-response"), "{ids:?}");
}
