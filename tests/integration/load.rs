//! `ssegate load`: many streams at once, counted by outcome, with latency against a reference.

use serde_json::Value;

use crate::util::{PythonOrigin, bin, code_and_stderr};

/// `ssegate load ARGS… --format json`: exit code, the document, stderr.
fn load_json(args: &[&str]) -> (Option<i32>, Value, String) {
    let out = bin()
        .arg("load")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "load prints one JSON document ({e}): {}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code(), doc, stderr)
}

#[test]
fn every_stream_to_the_fixture_connects_and_is_judged_against_its_send_instants() {
    let (code, v, stderr) = load_json(&["--fixture", "plain", "--streams", "40"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v["streams"], 40);
    assert_eq!(v["connected"], 40);
    assert_eq!(v["failed"], serde_json::json!({}));
    assert_eq!(v["cut"], 0);
    assert_eq!(v["listening"], 0);
    // The plain profile sends six events on every stream.
    assert_eq!(v["events"], 240);
    assert_eq!(v["time_to_headers"]["count"], 40);
    assert_eq!(v["time_to_first_event"]["count"], 40);
    assert_eq!(v["latency"]["count"], 240);
    assert_eq!(v["unmatched"], 0);
    assert_eq!(v["latency_basis"], "against the origin's send instants");
    // The first event leaves 400 ms after the headers: time to it includes that wait.
    let first_p50 = v["time_to_first_event"]["p50"].as_f64().unwrap();
    assert!(first_p50 >= 390.0, "{v}");
    let p = &v["latency"];
    assert!(p["p50"].as_f64() <= p["p99"].as_f64() && p["p99"].as_f64() <= p["max"].as_f64());
}

#[test]
fn token_streams_report_each_streams_first_token_and_the_gaps_between_tokens() {
    let (code, v, stderr) = load_json(&[
        "--fixture",
        "llm-anthropic",
        "--streams",
        "10",
        "--method",
        "POST",
        "--data",
        "{}",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let t = &v["tokens"];
    assert_eq!(t["protocol"], "anthropic", "{v}");
    assert_eq!(t["streams"], 10);
    // 80 deltas a stream; `message_start`, `ping` and the block's start and stop are not deltas.
    assert_eq!(t["deltas"], 800);
    assert_eq!(t["ended_with_terminal"], 10);
    assert_eq!(t["terminal"], "message_stop");
    assert_eq!(t["ttft"]["count"], 10);
    // The first token leaves 600 ms after the request: nothing arrives before it is sent.
    assert!(t["ttft"]["p50"].as_f64().unwrap() >= 590.0, "{v}");
    // The first 64 gaps of each stream; the fixture sends deltas 30 ± 10 ms apart.
    assert_eq!(t["itl"]["count"], 640);
    assert!(t["itl"]["p50"].as_f64().unwrap() >= 15.0, "{v}");
    // NDJSON is read line by line: without it, no line would be an event.
    let (code, v, stderr) = load_json(&["--fixture", "ndjson", "--streams", "5"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v["tokens"]["protocol"], "ndjson", "{v}");
    assert_eq!(v["tokens"]["deltas"], 400);
    assert_eq!(v["tokens"]["ended_with_terminal"], 5);
    // An EventSource stream has no token figures at all.
    let (_, v, _) = load_json(&["--fixture", "plain", "--streams", "2"]);
    assert!(v.get("tokens").is_none(), "{v}");
}

#[test]
fn streams_to_a_url_are_measured_against_the_fastest_stream() {
    let origin = PythonOrigin::start(&["--events", "3", "--gap-ms", "200"]);
    let (code, v, stderr) = load_json(&[&origin.url("events"), "--streams", "10"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v["connected"], 10);
    assert_eq!(v["events"], 30);
    assert_eq!(v["latency"]["count"], 30);
    assert_eq!(
        v["latency_basis"],
        "against the fastest stream's offset of the same event"
    );
    // The fastest stream is its own baseline: the smallest latency is zero.
    assert!(v["latency"]["p50"].as_f64().unwrap() >= 0.0);
    assert_eq!(v["chain"], "direct");
}

#[test]
fn refused_streams_are_counted_by_reason_and_fail_the_run() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/events");
    let (code, v, _) = load_json(&[&url, "--streams", "5", "--ramp", "0ms"]);
    assert_eq!(code, Some(4));
    assert_eq!(v["connected"], 0);
    assert_eq!(v["failed"], serde_json::json!({"refused": 5}));
    assert!(
        v["failure_examples"]["refused"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{v}"
    );
    assert!(v["time_to_headers"].is_null());
}

#[test]
fn an_error_status_is_a_status_failure_with_its_code() {
    let origin = PythonOrigin::hostile();
    let (code, v, _) = load_json(&[&origin.url("redirect-loop"), "--streams", "3"]);
    assert_eq!(code, Some(4));
    assert_eq!(v["failed"]["status"], 3, "{v}");
    assert_eq!(v["statuses"].as_object().unwrap().len(), 1, "{v}");
}

#[test]
fn a_descriptor_limit_too_low_for_the_streams_is_a_clear_setup_error() {
    // A hard limit of 200 cannot be raised from inside: 1000 streams are refused before any opens.
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -n 200 && exec \"$0\" load --fixture plain --streams 1000")
        .arg(env!("CARGO_BIN_EXE_ssegate"));
    let (code, stderr) = code_and_stderr(&mut cmd);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("failed to raise the file-descriptor limit: 1000 streams need about 2256"),
        "{stderr}"
    );
    assert!(stderr.contains("hard limit 200"), "{stderr}");
}

#[test]
fn bad_load_usage_is_exit_2() {
    for args in [
        &["--fixture", "plain", "--streams", "0"][..],
        &["--fixture", "plain", "--streams", "5", "--format", "junit"],
        &["--streams", "5"],
    ] {
        let (code, stderr) = code_and_stderr(bin().arg("load").args(args));
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
    }
}

#[test]
fn the_human_report_names_counts_and_percentiles() {
    let out = bin()
        .args(["load", "--fixture", "plain", "--streams", "5"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for want in [
        "load: 5 streams to http://127.0.0.1:",
        "connected            5 of 5",
        "failed               0",
        "time to 1st event    p50",
        "against the origin's send instants",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
}

#[test]
fn a_hop_in_front_of_the_fixture_carries_every_stream_and_is_named() {
    let (code, v, stderr) =
        load_json(&["--fixture", "plain", "--hop", "http10", "--streams", "10"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v["chain"], "http10");
    assert_eq!(v["connected"], 10);
    assert_eq!(v["events"], 60);
    // Through the hop each stream still matches its own send instants at the fixture.
    assert_eq!(v["unmatched"], 0);
    assert_eq!(v["latency"]["count"], 60);
}

#[test]
fn a_response_that_is_not_http_is_an_other_failure_with_the_parsers_message() {
    let origin = PythonOrigin::hostile();
    let (code, v, _) = load_json(&[&origin.url("garbage-status"), "--streams", "2"]);
    assert_eq!(code, Some(4));
    // Not `reset`: that is what a proxy out of connections does.
    assert_eq!(v["failed"], serde_json::json!({"other": 2}), "{v}");
    let msg = v["failure_examples"]["other"].as_str().unwrap();
    assert!(msg.contains("invalid HTTP"), "{msg}");
}
