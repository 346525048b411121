//! `ssegate check`, `doctor` and `init` end to end, including the Express examples (system node with
//! Debian's node-express and node-compression, which `.ci/run` installs).

use std::path::Path;

use serde_json::Value;

use crate::util::{bin, code_and_stderr};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn schema() -> Value {
    serde_json::from_slice(&std::fs::read(root().join("schema/check.schema.json")).unwrap())
        .unwrap()
}

/// Validate every JSON line against the committed schema; returns the parsed lines.
fn validate_lines(text: &str) -> Vec<Value> {
    let validator = jsonschema::validator_for(&schema()).expect("the schema compiles");
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("each line is JSON");
            let errors: Vec<String> = validator
                .iter_errors(&v)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "line does not match schema/check.schema.json: {errors:?}\n{line}"
            );
            v
        })
        .collect()
}

fn check_json(args: &[&str]) -> (i32, Vec<Value>, String) {
    check_json_with(&[], args)
}

/// [`check_json`] with environment variables set for `check`.
fn check_json_with(env: &[(&str, &str)], args: &[&str]) -> (i32, Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("check.jsonl");
    let out = bin()
        .envs(env.iter().copied())
        .current_dir(root())
        .args(["check", "--format", "json", "-o"])
        .arg(&out_path)
        .args(args)
        .output()
        .unwrap();
    let human =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    (
        out.status.code().unwrap_or(-1),
        validate_lines(&text),
        human,
    )
}

/// `check` with `config` (YAML text) against `ssegate fixture PROFILE` as the command; `extra` goes before `--`.
pub(crate) fn check_fixture(
    config: &str,
    profile: &str,
    extra: &[&str],
) -> (i32, Vec<Value>, String) {
    check_fixture_with(&[], config, profile, extra)
}

/// [`check_fixture`] with environment variables set for `check`.
pub(crate) fn check_fixture_with(
    env: &[(&str, &str)],
    config: &str,
    profile: &str,
    extra: &[&str],
) -> (i32, Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ssegate.yaml");
    std::fs::write(&cfg, config).unwrap();
    let mut args = vec!["-c", cfg.to_str().unwrap()];
    args.extend(extra);
    args.extend([
        "--",
        env!("CARGO_BIN_EXE_ssegate"),
        "fixture",
        profile,
        "--port",
        "{port}",
    ]);
    check_json_with(env, &args)
}

fn cause_ids(lines: &[Value]) -> Vec<String> {
    let summary = lines
        .iter()
        .find(|l| l["type"] == "summary")
        .expect("a summary line");
    summary["data"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_naive_express_app_fails_naming_compression_and_its_other_bugs() {
    let (code, lines, human) = check_json(&[
        "-c",
        "examples/express-naive/ssegate.yaml",
        "--",
        "node",
        "examples/express-naive/server.js",
    ]);
    assert_eq!(code, 4, "{human}");
    let causes = cause_ids(&lines);
    assert_eq!(
        causes.first().map(String::as_str),
        Some("compression-buffering"),
        "{causes:?}"
    );
    assert!(
        causes.contains(&"missing-terminator".to_string()),
        "{causes:?}"
    );
    let base = &lines.iter().find(|l| l["type"] == "baseline").unwrap()["data"];
    assert_eq!(base["result"], "fail");
    assert_eq!(base["delivery"], "held-until-end");
    let ids: Vec<&str> = base["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    for id in [
        "event-not-terminated",
        "missing-no-transform",
        "content-encoding-on-stream",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    assert!(human.contains("gate FAILED"), "{human}");
    assert!(human.contains("res.flush()"), "the fix is named: {human}");
}

#[test]
fn the_fixed_express_app_passes_and_operator_only_chains_only_warn() {
    let (code, lines, human) = check_json(&["-c", "examples/express-fixed/ssegate.yaml"]);
    assert_eq!(code, 0, "{human}");
    let chains = chains(&lines);
    assert_eq!(chains.len(), 9, "the default matrix");
    let by_name = |n: &str| chains.iter().find(|c| c["name"] == n).unwrap();
    assert_eq!(
        by_name("nginx-default")["delivery"],
        "streamed",
        "X-Accel-Buffering released nginx"
    );
    assert_eq!(
        by_name("compression")["delivery"],
        "streamed",
        "no-transform honoured"
    );
    // The lifecycle phases, per chain: the app ignores Last-Event-ID (every proxy forwards it), nginx
    // closes the origin's request as soon as the client leaves, and a 300 ms stream is far from nginx's
    // 60 s idle limit.
    for c in &chains {
        let l = &c["lifecycle"];
        assert_eq!(l["reconnect"]["outcome"], "replayed", "{}: {l}", c["name"]);
        assert_eq!(l["reconnect"]["last_event_id"], "6", "{l}");
        assert_eq!(l["reconnect"]["origin_received"], "6", "{l}");
    }
    let nginx = &by_name("nginx-default")["lifecycle"];
    assert_eq!(nginx["disconnect"]["outcome"], "propagated", "{nginx}");
    assert_eq!(nginx["heartbeat"]["adequate"], true, "{nginx}");
    assert_eq!(nginx["heartbeat"]["idle_limit_ms"], 60000.0, "{nginx}");
    assert!(human.contains("reconnect: replayed"), "{human}");
    assert!(human.contains("disconnect: propagated"), "{human}");
    let cl = by_name("content-length");
    assert_eq!(cl["result"], "warn");
    assert_eq!(cl["fix"]["kind"], "operator");
    assert!(
        cl["fix"]["operator_fix"]
            .as_str()
            .unwrap()
            .contains("stream"),
        "{}",
        cl["fix"]
    );
    // Where the time went: the steps in order, within the run's time; a chain's parts within its step.
    let sum = summary(&lines);
    let steps: Vec<(&str, f64)> = sum["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["took_ms"].as_f64().unwrap()))
        .collect();
    let names: Vec<&str> = steps.iter().map(|s| s.0).collect();
    assert_eq!(names, ["start target", "direct stream", "chains"], "{sum}");
    let total: f64 = steps.iter().map(|s| s.1).sum();
    assert!(total <= sum["took_ms"].as_f64().unwrap() + 1.0, "{sum}");
    let step = |n: &str| steps.iter().find(|s| s.0 == n).unwrap().1;
    assert!(
        cl["took"]["measure_ms"].as_f64().unwrap() <= step("chains"),
        "{cl}"
    );
    assert!(
        cl["took"]["fix_ms"].as_f64().unwrap() > 0.0,
        "a broken chain's fix ran: {cl}"
    );
    // Its request did not wait at the origin: its fix experiment ran beside its phases, within its own
    // measurement.
    assert!(
        cl["took"]["fix_ms"].as_f64().unwrap() <= cl["took"]["measure_ms"].as_f64().unwrap(),
        "{cl}"
    );
    assert!(human.contains("(start target "), "{human}");
}

#[test]
fn origin_fixable_breakage_fails_and_names_the_headers() {
    let (code, lines, human) = check_fixture(
        "target:\n  url: {path: /events}\nmatrix:\n  nginx-default: [{nginx: default}]\n  content-length: [content-length]\n",
        "plain",
        &[],
    );
    assert_eq!(code, 4, "{human}");
    let chains = chains(&lines);
    let nginx = chains
        .iter()
        .find(|c| c["name"] == "nginx-default")
        .unwrap();
    assert_eq!(nginx["delivery"], "held-until-end");
    assert_eq!(nginx["result"], "fail");
    assert_eq!(nginx["fix"]["kind"], "origin");
    assert!(
        nginx["reasons"][0]
            .as_str()
            .unwrap()
            .contains("X-Accel-Buffering: no")
    );
    let cl = chains
        .iter()
        .find(|c| c["name"] == "content-length")
        .unwrap();
    assert_eq!(
        cl["result"], "warn",
        "operator-only breakage does not fail unless expected"
    );
    let base = &lines.iter().find(|l| l["type"] == "baseline").unwrap()["data"];
    assert_eq!(base["result"], "pass");
}

#[test]
fn an_explicit_expectation_makes_operator_only_breakage_fail_and_partitions_split_the_matrix() {
    let config = "target:\n  url: {path: /events}\nmatrix:\n  a-content-length: [content-length]\n  b-http10: [http10]\nexpect:\n  delivery: {a-content-length: streamed}\n";
    let (code, lines, human) = check_fixture(config, "hardened", &["--partition", "1/2"]);
    assert_eq!(code, 4, "{human}");
    let chains: Vec<&Value> = lines.iter().filter(|l| l["type"] == "chain").collect();
    assert_eq!(chains.len(), 1);
    assert_eq!(chains[0]["data"]["name"], "a-content-length");
    assert_eq!(chains[0]["data"]["result"], "fail");
    let (code, lines, human) = check_fixture(config, "hardened", &["--partition", "2/2"]);
    assert_eq!(code, 0, "{human}");
    let start = &lines[0]["data"];
    assert_eq!(start["partition"], "2/2");
    assert_eq!(start["chains"], serde_json::json!(["b-http10"]));
}

#[test]
fn junit_output_is_junit_xml_with_one_case_per_chain() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ssegate.yaml");
    std::fs::write(
        &cfg,
        "target:\n  url: {path: /events}\nmatrix:\n  nginx-default: [{nginx: default}]\n  http10: [http10]\n",
    )
    .unwrap();
    let xml_path = dir.path().join("junit.xml");
    let html_path = dir.path().join("report.html");
    let md_path = dir.path().join("summary.md");
    let out = bin()
        .args(["check", "-c"])
        .arg(&cfg)
        .args(["--format", "junit", "-o"])
        .arg(&xml_path)
        .arg("--html")
        .arg(&html_path)
        .args([
            "--",
            env!("CARGO_BIN_EXE_ssegate"),
            "fixture",
            "plain",
            "--port",
            "{port}",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let suites = doc.root_element();
    assert_eq!(suites.tag_name().name(), "testsuites");
    let cases: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 3, "direct + 2 chains");
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .map(|c| c.attribute("name").unwrap())
        .collect();
    assert_eq!(failed, vec!["nginx-default (nginx default)"]);
    assert_eq!(suites.attribute("failures"), Some("1"));
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<svg") && html.contains("nginx-default"));
    assert!(
        !html.contains("http://") || !html.contains("<script"),
        "self-contained, no scripts"
    );
    let out = bin()
        .args(["check", "-c"])
        .arg(&cfg)
        .args(["--format", "markdown", "-o"])
        .arg(&md_path)
        .args([
            "--",
            env!("CARGO_BIN_EXE_ssegate"),
            "fixture",
            "hardened",
            "--port",
            "{port}",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert!(md.contains("| chain | hops | delivery |"), "{md}");
}

#[test]
fn secrets_in_the_config_never_reach_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ssegate.yaml");
    std::fs::write(
        &cfg,
        "target:\n  url:\n    path: /events\n    headers: {Authorization: Bearer t0ps3cret, X-Token: abc123}\nsecret_headers: [X-Token]\nmatrix:\n  http10: [http10]\n",
    )
    .unwrap();
    for format in ["json", "junit", "markdown", "human"] {
        let out = bin()
            .args(["check", "--format", format, "-c"])
            .arg(&cfg)
            .args([
                "--",
                env!("CARGO_BIN_EXE_ssegate"),
                "fixture",
                "hardened",
                "--port",
                "{port}",
            ])
            .output()
            .unwrap();
        let all = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            !all.contains("t0ps3cret") && !all.contains("abc123"),
            "{format}: {all}"
        );
    }
}

#[test]
fn check_without_config_or_target_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin().current_dir(dir.path()).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ssegate init"));
}

#[test]
fn a_target_that_dies_is_a_setup_error_with_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = code_and_stderr(bin().current_dir(dir.path()).args([
        "check",
        "--",
        "sh",
        "-c",
        "echo cannot bind >&2; exit 7",
    ]));
    assert_eq!(code, Some(3));
    assert!(
        err.contains("exit status: 7") && err.contains("cannot bind"),
        "{err}"
    );
}

#[test]
fn init_writes_a_starter_that_loads_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ssegate.yaml");
    let out = bin().arg("init").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    ssegate::config::load(&p).expect("the starter is valid");
    let out = bin().arg("init").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_cut_before_the_first_event_is_fixed_by_heartbeats() {
    let (code, lines, human) = check_fixture(
        "target:\n  url: {path: /events}\nmatrix:\n  idle: [{idle-cut: {after_ms: 300}}]\n",
        "hardened",
        &[],
    );
    assert_eq!(code, 4, "{human}");
    let chain = &lines.iter().find(|l| l["type"] == "chain").unwrap()["data"];
    assert_eq!(chain["delivery"], "cut");
    assert_eq!(chain["fix"]["kind"], "origin");
    assert_eq!(chain["fix"]["heartbeat_ms"], 150);
    assert_eq!(
        chain["fix"]["headers"],
        serde_json::json!([]),
        "the hardened origin already opts out"
    );
}

#[test]
fn a_baseline_that_is_not_2xx_stops_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = code_and_stderr(bin().current_dir(dir.path()).args([
        "check",
        "--path",
        "/events",
        "--",
        "python3",
        "-m",
        "http.server",
        "{port}",
        "--bind",
        "127.0.0.1",
    ]));
    assert_eq!(code, Some(3));
    assert!(
        err.contains("answered 404") && err.contains("--path"),
        "{err}"
    );
}

#[test]
fn bad_urls_and_methods_are_usage_errors() {
    for args in [
        vec!["probe", "example.com/events"],
        vec!["doctor", "example.com/events"],
        vec!["probe", "http://127.0.0.1:9/", "--method", "BAD METHOD"],
        vec!["check", "--url", "localhost:3000/events"],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("ssegate: failed to"),
            "{args:?}"
        );
    }
}

mod doctor {
    use ssegate::doctor::{CauseId, Confidence, DoctorRequest, doctor};
    use ssegate::intermediary::{Chain, HopSpec};
    use ssegate::origin::{FixtureServer, Profile};
    use ssegate::probe::ProbeRequest;

    async fn diagnose(
        profile: Profile,
        hops: Vec<HopSpec>,
        active: bool,
    ) -> ssegate::doctor::DoctorReport {
        let origin = FixtureServer::start(profile).await.unwrap();
        let chain = Chain::start(&hops, origin.addr()).await.unwrap();
        let deployed = format!("http://{}/events", chain.entry(origin.addr()));
        let req = DoctorRequest {
            target: ProbeRequest::new(deployed),
            compare: Some(ProbeRequest::new(origin.url())),
            active,
            stack: None,
        };
        doctor(&req).await.unwrap()
    }

    #[tokio::test]
    async fn nginx_fronted_stream_names_proxy_buffering_first() {
        let d = diagnose(
            Profile::builtin("plain").unwrap(),
            vec![HopSpec::real("nginx", "default").unwrap()],
            false,
        )
        .await;
        assert_eq!(d.verdict.delivery.as_str(), "held-until-end");
        assert_eq!(d.causes[0].id, CauseId::ProxyBuffering, "{:?}", d.causes);
        assert!(d.platforms.iter().any(|p| p.vendor == "nginx"));
        let json = serde_json::to_value(ssegate::report::json::DoctorDoc::new(&d)).unwrap();
        assert_eq!(json["causes"][0]["id"], "proxy-buffering");
        assert_eq!(json["delivery"], "held-until-end");
    }

    #[tokio::test]
    async fn a_held_compare_stream_is_named_first_and_not_judged_against() {
        // The origin holds its own stream: behind nginx users get it all at the end. Judged against the
        // held compare stream, nginx's looked timely (only its head late).
        let mut held = Profile::builtin("plain").unwrap();
        held.hold_until_end = true;
        let d = diagnose(
            held,
            vec![HopSpec::real("nginx", "default").unwrap()],
            false,
        )
        .await;
        assert_eq!(d.verdict.delivery.as_str(), "held-until-end");
        assert_eq!(
            d.compare_delivery.map(|v| v.as_str()),
            Some("held-until-end")
        );
        assert_eq!(d.causes[0].id, CauseId::OriginBuffering, "{:?}", d.causes);
        assert!(d.causes[0].evidence[0].contains("--compare stream"));
        let text = ssegate::report::human::doctor_human(&d);
        assert!(text.contains("the origin does not stream"), "{text}");
        let json = serde_json::to_value(ssegate::report::json::DoctorDoc::new(&d)).unwrap();
        assert_eq!(json["compare"]["delivery"], "held-until-end");
    }

    #[tokio::test]
    async fn nginx_gzip_is_blamed_on_the_proxy_buffer_once_identity_is_still_held() {
        let d = diagnose(
            Profile::builtin("plain").unwrap(),
            vec![HopSpec::real("nginx", "gzip").unwrap()],
            true,
        )
        .await;
        assert_eq!(d.causes[0].id, CauseId::ProxyBuffering, "{:?}", d.causes);
        assert!(
            d.causes[0]
                .evidence
                .iter()
                .any(|e| e.contains("identity still"))
        );
    }

    #[tokio::test]
    async fn content_length_rewriting_names_whole_body_buffering() {
        let d = diagnose(
            Profile::builtin("plain").unwrap(),
            vec![HopSpec::from(
                ssegate::intermediary::builtin::ContentLength::default(),
            )],
            false,
        )
        .await;
        assert_eq!(
            d.causes[0].id,
            CauseId::WholeBodyBuffering,
            "{:?}",
            d.causes
        );
        assert_eq!(d.causes[0].confidence, Confidence::High);
    }

    #[tokio::test]
    async fn active_reprobe_proves_compression() {
        let d = diagnose(
            Profile::builtin("plain").unwrap(),
            vec![HopSpec::from(
                ssegate::intermediary::builtin::Compression::default(),
            )],
            true,
        )
        .await;
        assert_eq!(d.causes[0].id, CauseId::CompressionBuffering);
        assert_eq!(d.causes[0].confidence, Confidence::Proved);
        assert_eq!(d.active.len(), 1);
        assert_eq!(d.active[0].delivery.as_str(), "streamed");
    }

    #[tokio::test]
    async fn idle_cut_names_idle_timeout() {
        let mut p = Profile::builtin("hardened").unwrap();
        p.events.count = 3;
        p.events.gap_ms = 1500;
        p.events.first_ms = Some(300);
        let hop = ssegate::intermediary::builtin::IdleCut { after_ms: 1000 };
        let d = diagnose(p, vec![HopSpec::from(hop)], false).await;
        assert_eq!(d.verdict.delivery.as_str(), "cut");
        assert_eq!(d.causes[0].id, CauseId::IdleTimeout, "{:?}", d.causes);
    }
}

#[test]
fn an_explicit_config_that_does_not_exist_is_an_error() {
    let out = bin()
        .args([
            "check",
            "-c",
            "/nonexistent/ssegate.yaml",
            "--url",
            "http://127.0.0.1:9/",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ssegate.yaml"));
}

#[test]
fn probe_and_doctor_json_match_the_stream_schema() {
    let mut stream_schema = schema();
    let defs = stream_schema["$defs"].take();
    let wrapped = serde_json::json!({"$defs": defs, "$ref": "#/$defs/stream"});
    let validator = jsonschema::validator_for(&wrapped).expect("the schema compiles");
    let mut fixture = bin()
        .args(["fixture", "early-close", "--duration", "30s"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(fixture.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = line.trim().to_string();
    for args in [
        vec!["probe", url.as_str(), "--format", "json"],
        vec!["doctor", url.as_str(), "--format", "json", "--active"],
    ] {
        let out = bin().args(&args).output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
        let errors: Vec<String> = validator
            .iter_errors(&v)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{args:?}: {errors:?}");
    }
    let _ = fixture.kill();
    let _ = fixture.wait();
}

/// `check` against `tests/servers/sse_origin.py ARGS` (system python3) with `config` (YAML: matrix,
/// listen, expect…) added to the target.
fn check_python(config: &str, server_args: &[&str], extra: &[&str]) -> (i32, Vec<Value>, String) {
    check_python_at("/events", config, server_args, extra)
}

/// [`check_python`] on the server's `path`.
fn check_python_at(
    path: &str,
    config: &str,
    server_args: &[&str],
    extra: &[&str],
) -> (i32, Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ssegate.yaml");
    let script = root().join("tests/servers/sse_origin.py");
    let mut argv = vec![
        "python3".to_string(),
        script.display().to_string(),
        "{port}".into(),
    ];
    argv.extend(server_args.iter().map(|s| s.to_string()));
    let yaml = format!(
        "target:\n  command: {}\n  url: {{path: {path}}}\n  ready: {{log: listening}}\n{config}",
        serde_json::to_string(&argv).unwrap()
    );
    std::fs::write(&cfg, yaml).unwrap();
    let mut args = vec!["-c", cfg.to_str().unwrap()];
    args.extend(extra);
    check_json(&args)
}

/// Every chain's document, in the report's order.
pub(crate) fn chains(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| l["type"] == "chain")
        .map(|l| &l["data"])
        .collect()
}

pub(crate) fn chain<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    &lines
        .iter()
        .find(|l| l["type"] == "chain" && l["data"]["name"] == name)
        .unwrap_or_else(|| panic!("no chain {name} in {lines:?}"))["data"]
}

pub(crate) fn baseline(lines: &[Value]) -> &Value {
    &lines
        .iter()
        .find(|l| l["type"] == "baseline")
        .expect("a baseline line")["data"]
}

pub(crate) fn summary(lines: &[Value]) -> &Value {
    &lines
        .iter()
        .find(|l| l["type"] == "summary")
        .expect("a summary line")["data"]
}

#[test]
fn a_hop_that_holds_every_event_by_one_gap_fails_against_the_taps_send_instants() {
    // 20-byte events; a 21-byte buffer releases each event only when the next one arrives, and the last
    // one when the stream ends a gap later: every event is exactly one gap late. Against a baseline aligned
    // by the smallest delay this was invisible; against the tap it is held, every run.
    let (code, lines, human) = check_python(
        "matrix:\n  one-gap: [{coalesce: {bytes: 21}}]\nexpect: {delivery: {one-gap: streamed}}\n",
        &["--events", "6", "--gap-ms", "400", "--linger-ms", "400"],
        &[],
    );
    assert_eq!(code, 4, "{human}");
    let c = chain(&lines, "one-gap");
    assert_eq!(c["basis"], "tap", "{c}");
    assert_eq!(c["delivery"], "batched", "{c}");
    let events = c["events"].as_array().unwrap();
    assert_eq!(events.len(), 6);
    for e in events {
        assert_eq!(e["held"], true, "{e}");
        let late = e["latency_ms"].as_f64().unwrap();
        assert!((300.0..600.0).contains(&late), "one gap late: {e}");
    }
    assert_eq!(c["result"], "fail");
}

#[test]
fn a_target_that_dies_during_the_matrix_fails_with_its_exit_status_and_log() {
    let (code, lines, human) = check_python(
        "matrix:\n  a: [http10]\n  b: [http10]\n  c: [http10]\n",
        &["--events", "2", "--gap-ms", "100", "--die-after", "2"],
        &["-j", "1"],
    );
    assert_eq!(code, 3, "{human}");
    assert!(
        lines.is_empty(),
        "no report for a run that measured nothing: {lines:?}"
    );
    assert!(human.contains("exited with exit status: 7"), "{human}");
    assert!(human.contains("fatal: served 2 responses"), "{human}");
    assert!(human.contains("while it was being measured"), "{human}");
}

#[test]
fn a_single_worker_origin_is_detected_and_its_queued_chains_rerun_alone() {
    let (code, lines, human) = check_python(
        "matrix:\n  a: [http10]\n  b: [{headers: {set: {x-a: '1'}}}]\n  c: [{coalesce: {bytes: 1}}]\n",
        &["--single", "--events", "4", "--gap-ms", "300"],
        &[],
    );
    assert_eq!(code, 0, "{human}");
    for name in ["a", "b", "c"] {
        let c = chain(&lines, name);
        assert_eq!(c["delivery"], "streamed", "{name}: {c}");
        assert_eq!(c["result"], "pass", "{name}: {c}");
        assert_eq!(c["status"], 200, "{name}: {c}");
    }
    let conc = &summary(&lines)["concurrency"];
    assert_eq!(conc["answered_at_once"], 1, "{conc}");
    assert!(!conc["queued"].as_array().unwrap().is_empty(), "{conc}");
    assert!(
        human.contains("answered at most 1 request(s) at once"),
        "{human}"
    );
}

#[test]
fn a_streamed_origin_shows_risks_not_causes_and_an_origin_that_holds_leaves_chains_unjudged() {
    // Content-Length on a stream that still streams directly: a risk, not a cause.
    let (_, lines, human) = check_python(
        "matrix:\n  a: [http10]\n",
        &["--content-length", "--events", "4", "--gap-ms", "300"],
        &[],
    );
    let base = &lines.iter().find(|l| l["type"] == "baseline").unwrap()["data"];
    assert_eq!(base["delivery"], "streamed");
    let causes = summary(&lines)["causes"].as_array().unwrap();
    assert!(!causes.is_empty());
    assert!(causes.iter().all(|c| c["kind"] == "risk"), "{causes:?}");
    assert!(!human.contains("likely causes"), "{human}");
    assert!(human.contains("risks"), "{human}");

    // An origin that holds everything itself: the chains are not judged, and say so.
    let (code, lines, human) = check_python(
        "matrix:\n  a: [http10]\n",
        &["--hold", "--events", "5", "--gap-ms", "300"],
        &[],
    );
    assert_eq!(code, 4, "{human}");
    let a = chain(&lines, "a");
    assert_eq!(a["result"], "not-judged", "{a}");
    assert!(human.contains("----  a "), "{human}");
    assert!(!human.contains("PASS  a "), "{human}");
}

#[test]
fn heartbeat_advice_comes_from_the_measured_idle_limit() {
    // Events 1.5 s apart through a 600 ms idle cut: heartbeats fix it, and the advice is derived from
    // the 600 ms silence, not a fixed 15 s.
    let (code, lines, human) = check_python(
        "matrix:\n  idle: [{idle-cut: {after_ms: 600}}]\n",
        &["--events", "3", "--gap-ms", "1500"],
        &[],
    );
    assert_eq!(code, 4, "{human}");
    let c = chain(&lines, "idle");
    assert_eq!(c["delivery"], "cut", "{c}");
    assert_eq!(c["fix"]["kind"], "origin", "{c}");
    let advise = c["fix"]["advise_heartbeat_ms"].as_u64().unwrap();
    assert!((200..=400).contains(&advise), "{c}");
    let reason = c["reasons"][0].as_str().unwrap();
    assert!(reason.contains("send one at least every"), "{reason}");
    assert!(!reason.contains("15 s"), "{reason}");
}

#[test]
fn an_endless_stream_behind_whole_body_buffering_asks_for_the_platforms_streaming_mode() {
    let (_, lines, human) = check_python(
        "listen: {duration_ms: 2500}\nmatrix:\n  content-length: [content-length]\n",
        &["--events", "1000", "--gap-ms", "200"],
        &[],
    );
    let c = chain(&lines, "content-length");
    assert_eq!(c["delivery"], "held-until-end", "{c}");
    let fix = c["fix"]["operator_fix"].as_str().unwrap_or_default();
    assert!(fix.contains("response streaming"), "{c}\n{human}");
    assert!(!fix.contains("proxy_buffering"), "{fix}");
}

#[test]
fn skip_drops_chains_i_do_not_deploy_behind() {
    let (code, lines, human) = check_python(
        "skip: [compression]\n",
        &["--events", "3", "--gap-ms", "300"],
        &["--partition", "1/4"],
    );
    let start = &lines[0]["data"]["chains"];
    assert!(
        !start.as_array().unwrap().iter().any(|c| c == "compression"),
        "{start}\n{human}"
    );
    let _ = code;
}

/// A process `pid` that is alive and not a zombie.
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

#[test]
fn a_grandchild_that_left_the_targets_session_does_not_outlive_check() {
    // The target starts a worker in a session of its own (`setsid`), which escapes a process-group kill.
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("worker.pid");
    let script = root().join("tests/servers/sse_origin.py");
    let shell = format!(
        "setsid sh -c 'echo $$ > {}; exec sleep 300' & exec python3 {} {{port}}",
        pidfile.display(),
        script.display()
    );
    let cfg = dir.path().join("ssegate.yaml");
    std::fs::write(
        &cfg,
        format!(
            "target:\n  command: {}\n  url: {{path: /events}}\n  ready: {{log: listening}}\nmatrix:\n  http10: [http10]\n",
            serde_json::to_string(&["sh", "-c", &shell]).unwrap()
        ),
    )
    .unwrap();
    let (code, _, human) = check_json(&["-c", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{human}");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .expect("the worker wrote its pid")
        .trim()
        .parse()
        .unwrap();
    for _ in 0..100 {
        if !process_alive(pid) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status();
    panic!("the setsid worker {pid} outlived check");
}

#[test]
fn a_chain_whose_program_is_missing_is_reported_as_not_run_in_every_format() {
    let origin = crate::util::PythonOrigin::start(&["--events", "3", "--gap-ms", "300"]);
    let dir = tempfile::tempdir().unwrap();
    let run = |format: &str| {
        let out = bin()
            .args([
                "check",
                "--url",
                &origin.url("events"),
                "--matrix",
                "caddy,content-length",
            ])
            .args(["--format", format])
            .env("PATH", "/nonexistent-bin")
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (_, text, err) = run("json");
    let lines = validate_lines(&text);
    let not_run: Vec<&Value> = lines.iter().filter(|l| l["type"] == "not-run").collect();
    let names: Vec<&str> = not_run
        .iter()
        .map(|l| l["data"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["caddy-default", "caddy-encode"], "{err}");
    assert!(
        not_run[0]["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("apt-get install -y caddy")
    );
    // The chain that can run ran.
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "chain" && l["data"]["name"] == "content-length")
    );
    let summary = lines.last().unwrap();
    assert_eq!(
        summary["data"]["not_run"],
        serde_json::json!(["caddy-default", "caddy-encode"])
    );
    let (_, human, _) = run("human");
    assert!(
        human.contains("SKIP  caddy-default") && human.contains("not run: failed to find `caddy`"),
        "{human}"
    );
    assert!(human.contains("2 chains not run"), "{human}");
    let (_, junit, _) = run("junit");
    assert!(
        junit.contains("<skipped message=\"not run: failed to find"),
        "{junit}"
    );
    let (_, md, _) = run("markdown");
    assert!(
        md.contains("| caddy-default | caddy default | – | – | not run |"),
        "{md}"
    );
}

#[test]
fn a_matrix_of_only_missing_programs_is_a_setup_error_not_a_pass() {
    let origin = crate::util::PythonOrigin::start(&["--events", "2", "--gap-ms", "200"]);
    let out = bin()
        .args(["check", "--url", &origin.url("events"), "--matrix", "caddy"])
        .env("PATH", "/nonexistent-bin")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("failed to run any chain of the matrix"),
        "{err}"
    );
    let out = bin()
        .args(["check", "--url", &origin.url("events"), "--matrix", "cady"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unknown matrix selection `cady`") && err.contains("caddy"),
        "{err}"
    );
}

#[test]
fn listen_streams_loads_the_direct_stream_and_every_chain_and_a_threaded_origin_holds_them() {
    let (code, lines, human) = check_python(
        "listen: {streams: 30, ramp_ms: 300}\nmatrix:\n  a: [http10]\n  b: [{headers: {set: {x-a: '1'}}}]\n",
        &["--events", "3", "--gap-ms", "300"],
        &[],
    );
    assert_eq!(code, 0, "{human}");
    for name in ["direct", "a", "b"] {
        let c = if name == "direct" {
            baseline(&lines)
        } else {
            chain(&lines, name)
        };
        let load = &c["load"];
        assert_eq!(load["capacity"], "full", "{name}: {load}");
        assert_eq!(load["streams"], 30, "{name}: {load}");
        assert_eq!(load["connected"], 30, "{name}: {load}");
        assert_eq!(load["events"], 90, "{name}: {load}");
        assert_eq!(load["latency"]["count"], 90, "{name}: {load}");
        assert_eq!(c["result"], "pass", "{name}: {c}");
    }
    assert!(
        human.contains("load: 30 of 30 concurrent streams connected, failed 0, cut 0"),
        "{human}"
    );
}

#[test]
fn an_origin_that_cannot_hold_listen_streams_fails_the_direct_stream_with_streams_refused() {
    // One request at a time, 1.2 s each: of 4 concurrent streams listening 2.5 s, the last ones time out.
    let (code, lines, human) = check_python(
        "listen: {duration_ms: 2500, streams: 4, ramp_ms: 0}\nmatrix:\n  a: [http10]\n",
        &["--single", "--events", "4", "--gap-ms", "300"],
        &[],
    );
    assert_eq!(code, 4, "{human}");
    let direct = baseline(&lines);
    assert_eq!(direct["load"]["capacity"], "limited", "{direct}");
    assert!(
        direct["load"]["failed"]["timeout"].as_u64().unwrap() >= 1,
        "{direct}"
    );
    assert_eq!(direct["result"], "fail", "{direct}");
    let reasons = direct["reasons"].to_string();
    assert!(reasons.contains("streams-refused"), "{reasons}");
    // The chain in front of it inherits the origin's limit: a warning that says so, not a failure.
    let a = chain(&lines, "a");
    assert_eq!(a["result"], "warn", "{a}");
    assert!(
        a["reasons"]
            .to_string()
            .contains("the origin's limit first"),
        "{a}"
    );
}

#[test]
fn an_origin_writing_events_in_waiting_pieces_is_found_and_passes_only_with_a_caveat() {
    // Each event's blank line 60 ms after its fields: the wait a delayed ACK gives werkzeug's writes.
    let origin = crate::util::PythonOrigin::start(&[
        "--events",
        "4",
        "--gap-ms",
        "300",
        "--pieces-ms",
        "60",
    ]);
    let out = bin()
        .args([
            "check",
            "--url",
            &origin.url("events"),
            "--matrix",
            "idle-cut",
        ])
        .args(["--format", "json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines = validate_lines(&text);
    let data = |kind: &str| {
        lines
            .iter()
            .filter(|l| l["type"] == kind)
            .map(|l| &l["data"])
            .collect::<Vec<_>>()
    };
    let direct = data("baseline")[0];
    assert!(
        direct["findings"]
            .to_string()
            .contains("event-written-in-pieces"),
        "{direct}"
    );
    let chain = data("chain")[0];
    assert_eq!(chain["delivery"], "streamed", "{chain}");
    assert_eq!(chain["result"], "warn", "{chain}");
    assert!(
        chain["reasons"].to_string().contains("may be optimistic"),
        "{chain}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
}

/// `check` against the Python origin's OpenAI-compatible POST endpoint (`ARGS` to the server).
fn check_chat(matrix: &str, server_args: &[&str]) -> (i32, Vec<Value>, String) {
    check_python_at(
        "/v1/chat/completions",
        matrix,
        server_args,
        &["--method", "POST", "--data", r#"{"stream":true}"#],
    )
}

#[test]
fn a_token_stream_reports_its_protocol_and_token_timing_on_every_chain_without_eventsource_phases()
{
    let (_, lines, human) = check_chat(
        "matrix:\n  held: [{coalesce: {bytes: 65536}}]\n  live: [http10]\n",
        &["--events", "6", "--gap-ms", "200"],
    );
    assert!(human.contains("protocol: openai-chat"), "{human}");
    for name in ["direct", "held", "live"] {
        let c = if name == "direct" {
            baseline(&lines)
        } else {
            chain(&lines, name)
        };
        assert_eq!(c["protocol"], "openai-chat", "{name}: {c}");
        let t = &c["tokens"];
        assert_eq!(
            t["deltas"], 6,
            "{name}: the role and finish chunks are not tokens: {t}"
        );
        assert_eq!(t["terminal_seen"], true, "{name}: {t}");
        // A POST read with fetch() does not reconnect by itself: no EventSource reconnect, no ids asked.
        let findings = c["findings"].to_string() + &c["lifecycle"].to_string();
        assert!(!findings.contains("no-event-ids"), "{name}: {findings}");
        if name != "direct" {
            assert_eq!(
                c["lifecycle"]["reconnect"]["outcome"], "not-applicable",
                "{c}"
            );
        }
    }
    // Held to the end: the first token came a whole stream late, and the tokens came in one read.
    let held = &chain(&lines, "held")["tokens"];
    assert!(held["added_ttft_ms"].as_f64().unwrap() > 800.0, "{held}");
    assert!(held["same_read_share"].as_f64().unwrap() > 0.99, "{held}");
    let live = &chain(&lines, "live")["tokens"];
    assert!(live["added_ttft_ms"].as_f64().unwrap() < 100.0, "{live}");
    assert!(live["same_read_share"].as_f64().unwrap() < 0.5, "{live}");
}

#[test]
fn a_token_stream_that_ends_without_its_terminal_event_is_cut_in_probe_and_doctor() {
    let origin =
        crate::util::PythonOrigin::start(&["--events", "3", "--gap-ms", "100", "--no-done"]);
    let url = origin.url("v1/chat/completions");
    for cmd in ["probe", "doctor"] {
        let out = crate::util::output_within(
            bin().args([
                cmd, &url, "--method", "POST", "--data", "{}", "--format", "json",
            ]),
            crate::util::RUN_WITHIN,
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{cmd}: {text}"));
        let doc = if v.get("delivery").is_some() {
            &v
        } else {
            &v["probe"]
        };
        assert_eq!(doc["delivery"], "cut", "{cmd}: {text}");
        assert_eq!(doc["tokens"]["terminal_seen"], false, "{cmd}: {text}");
        assert!(text.contains("stream-truncated"), "{cmd}: {text}");
        assert!(text.contains("without `[DONE]`"), "{cmd}: {text}");
    }
}

#[test]
fn the_llm_examples_report_token_timing_and_the_naive_one_fails_at_its_origin() {
    let (code, lines, human) = check_json(&["-c", "examples/llm-fixed/ssegate.yaml"]);
    assert_eq!(code, 0, "{human}");
    let chains = chains(&lines);
    for c in chains.iter().copied().chain([baseline(&lines)]) {
        assert_eq!(c["protocol"], "openai-chat", "{}", c["name"]);
        assert_eq!(c["tokens"]["deltas"], 33, "{}: {}", c["name"], c["tokens"]);
        assert_eq!(c["tokens"]["terminal_seen"], true, "{}", c["name"]);
    }
    let nginx = &chains
        .iter()
        .find(|c| c["name"] == "nginx-default")
        .unwrap()["tokens"];
    assert!(nginx["added_ttft_ms"].as_f64().unwrap() < 200.0, "{nginx}");
    let held = &chains
        .iter()
        .find(|c| c["name"] == "content-length")
        .unwrap()["tokens"];
    assert!(held["same_read_share"].as_f64().unwrap() > 0.9, "{held}");
    let (code, lines, human) = check_json(&["-c", "examples/llm-naive/ssegate.yaml"]);
    assert_eq!(code, 4, "{human}");
    let direct = baseline(&lines);
    assert_eq!(direct["delivery"], "held-until-end", "{human}");
    assert!(
        direct["tokens"]["same_read_share"].as_f64().unwrap() > 0.9,
        "{direct}"
    );
}

/// Arrival offsets of the events in a probe's JSON document, and its longest stall.
fn arrivals_and_stall(doc: &Value) -> (Vec<f64>, f64) {
    let at = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["arrival_ms"].as_f64().unwrap())
        .collect();
    (
        at,
        doc["pressure"]["timer_late_max_ms"].as_f64().unwrap_or(0.0),
    )
}

#[test]
fn a_recorded_stream_replays_with_the_same_gaps_and_never_records_a_secret() {
    // A real server's token stream (Python's http.server), recorded with a secret header on the way.
    let origin = crate::util::PythonOrigin::start(&["--events", "8", "--gap-ms", "150"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.json");
    let out = crate::util::output_within(
        bin()
            .args([
                "probe",
                &origin.url("v1/chat/completions"),
                "--method",
                "POST",
                "--data",
                "{}",
                "-H",
                "Authorization: Bearer sk-replay-secret-1234",
                "--format",
                "json",
                "--record",
            ])
            .arg(&file),
        crate::util::RUN_WITHIN,
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let first: Value = serde_json::from_slice(&out.stdout).unwrap();
    let recorded = std::fs::read_to_string(&file).unwrap();
    assert!(!recorded.contains("sk-replay-secret"), "{recorded}");
    let r: Value = serde_json::from_str(&recorded).unwrap();
    assert_eq!(r["protocol"], "openai-chat", "{recorded}");
    assert_eq!(r["end"], "complete", "{recorded}");
    // Served again by the fixture, and probed: the same events with the same gaps.
    let (_fixture, url) = crate::util::Spawned::first_line(
        bin().args(["fixture", "--replay"]).arg(&file),
        crate::util::RUN_WITHIN,
    );
    let out = crate::util::output_within(
        bin().args(["probe", &url, "--format", "json"]),
        crate::util::RUN_WITHIN,
    );
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["tokens"]["deltas"], 8, "{again}");
    assert_eq!(again["tokens"]["terminal_seen"], true, "{again}");
    let (a, stall_a) = arrivals_and_stall(&first);
    let (b, stall_b) = arrivals_and_stall(&again);
    assert_eq!(a.len(), b.len(), "{first}\n{again}");
    // Within 10 ms each, plus what either probe itself could not run (its longest stall).
    let allowed = 10.0 + stall_a + stall_b;
    for (i, (x, y)) in a.windows(2).zip(b.windows(2)).enumerate() {
        let (g1, g2) = (x[1] - x[0], y[1] - y[0]);
        assert!(
            (g1 - g2).abs() <= allowed,
            "gap {i}: recorded {g1:.1} ms, replayed {g2:.1} ms (allowed {allowed:.1})"
        );
    }
}

#[test]
fn a_recording_that_is_not_one_is_a_usage_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    std::fs::write(&file, "{\"ssegate_recording\": 1}").unwrap();
    let (code, err) = code_and_stderr(bin().args(["fixture", "--replay"]).arg(&file));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("failed to parse the recording"), "{err}");
    assert!(err.contains("bad.json"), "{err}");
}

/// Where the setup scripts put what the tests run (`${XDG_CACHE_HOME:-~/.cache}/ssegate`).
fn ssegate_cache() -> Option<std::path::PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(cache.join("ssegate"))
}

/// A test's program is missing: fail under `require` (CI sets it), else say why and skip.
fn not_here<T>(require: &str, why: String) -> Option<T> {
    if std::env::var_os(require).is_some() {
        panic!("{require} is set, but {why}");
    }
    eprintln!("test not run: {why}");
    None
}

/// The npm clients' `node_modules` (`scripts/node-clients.sh`), or why the tests that run them cannot
/// run here (a failure under `SSEGATE_REQUIRE_NODE_CLIENTS=1`, as CI sets it).
fn node_clients() -> Option<std::path::PathBuf> {
    let modules = ssegate_cache()?.join("node-clients/node_modules");
    if ["openai", "ai"]
        .iter()
        .all(|p| modules.join(p).join("package.json").is_file())
    {
        return Some(modules);
    }
    not_here(
        "SSEGATE_REQUIRE_NODE_CLIENTS",
        format!(
            "the OpenAI Node client or the AI SDK is not in {} (run `bash scripts/node-clients.sh`)",
            modules.display()
        ),
    )
}

/// Share of content chunks that arrived within 5 ms of the content chunk before: near 1, they came in
/// clumps (a flush of a buffer), near 0, one by one.
fn clumped_share(chunks: &[Value]) -> f64 {
    let at: Vec<f64> = chunks
        .iter()
        .filter(|c| c["content"] == true)
        .map(|c| c["at_ms"].as_f64().unwrap())
        .collect();
    let close = at.windows(2).filter(|w| w[1] - w[0] < 5.0).count();
    close as f64 / (at.len() - 1) as f64
}

#[test]
fn the_openai_clients_arrivals_agree_with_the_verdict_through_a_buffering_and_a_streaming_chain() {
    let Some(modules) = node_clients() else {
        return;
    };
    let fixture = crate::cli::Fixture::start("llm-openai");
    for (hop, streams) in [("nginx: default", false), ("apache: default", true)] {
        let (_proxy, entry) = crate::util::Spawned::first_line(
            bin().args(["proxy", "--hop", hop, "--duration", "60s", &fixture.url]),
            crate::util::READY_WITHIN,
        );
        let url = format!("{}/v1/chat/completions", entry.trim_end_matches('/'));
        let doc = crate::cli::probe_json(&url, &["--method", "POST", "--data", "{}"]);
        let out = crate::util::output_within(
            std::process::Command::new("node")
                .arg(root().join("tests/clients/openai-stream.js"))
                .arg(format!("{}/v1", entry.trim_end_matches('/')))
                .env("NODE_PATH", &modules),
            crate::util::RUN_WITHIN,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{hop}: {stderr}");
        let client: Value = serde_json::from_slice(&out.stdout).unwrap();
        let chunks = client["chunks"].as_array().unwrap();
        let content = chunks.iter().filter(|c| c["content"] == true).count();
        assert_eq!(content, 80, "{hop}: the client got every delta: {client}");
        let theirs = clumped_share(chunks);
        let ours = doc["tokens"]["same_read_share"]
            .as_f64()
            .unwrap_or_else(|| panic!("{hop}: no token timing: {doc}"));
        let delivery = doc["delivery"].as_str().unwrap();
        if streams {
            assert_eq!(delivery, "streamed", "{hop}: {doc}");
            assert!(
                theirs < 0.5,
                "{hop}: the client saw clumps ({theirs:.2}): {client}"
            );
            assert!(ours < 0.5, "{hop}: {doc}");
        } else {
            assert!(
                matches!(delivery, "batched" | "held-until-end"),
                "{hop}: {delivery}"
            );
            assert!(
                theirs > 0.8,
                "{hop}: the client saw tokens one by one ({theirs:.2}): {client}"
            );
            assert!(ours > 0.8, "{hop}: {doc}");
        }
    }
}

#[test]
fn the_ai_sdks_ui_message_stream_is_recognised_by_its_header_and_streams_through_a_stock_nginx() {
    let Some(modules) = node_clients() else {
        return;
    };
    let node_path = format!("/usr/share/nodejs:{}", modules.display());
    let (code, lines, human) = check_json_with(
        &[("NODE_PATH", node_path.as_str())],
        &[
            "--path",
            "/api/chat",
            "--method",
            "POST",
            "--data",
            r#"{"messages":[{"role":"user","content":"hi"}]}"#,
            "-H",
            "Content-Type: application/json",
            "--matrix",
            "nginx",
            "--",
            "node",
            "tests/servers/ai-sdk-server.js",
            "{port}",
        ],
    );
    assert!(code == 0 || code == 1, "{human}");
    let direct = baseline(&lines);
    assert_eq!(direct["protocol"], "ai-sdk", "{direct}");
    assert!(
        direct["protocol_from"]
            .as_str()
            .unwrap()
            .contains("x-vercel-ai-ui-message-stream"),
        "{direct}"
    );
    assert_eq!(direct["delivery"], "streamed", "{human}");
    assert_eq!(direct["tokens"]["deltas"], 33, "{direct}");
    assert_eq!(direct["tokens"]["terminal_seen"], true, "{direct}");
    // `pipeUIMessageStreamToResponse` sends `X-Accel-Buffering: no`: a stock nginx streams it.
    let nginx = chain(&lines, "nginx-default");
    assert_eq!(nginx["delivery"], "streamed", "{human}");
    assert_eq!(nginx["tokens"]["deltas"], 33, "{nginx}");
}

/// The FastAPI venv's python (`scripts/fastapi-venv.sh`), or why the test that runs it cannot run here
/// (a failure under `SSEGATE_REQUIRE_FASTAPI=1`, as CI sets it).
fn fastapi_python() -> Option<std::path::PathBuf> {
    let python = ssegate_cache()?.join("fastapi/bin/python");
    let has = std::process::Command::new(&python)
        .args(["-c", "import fastapi, uvicorn, sse_starlette"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has {
        return Some(python);
    }
    not_here(
        "SSEGATE_REQUIRE_FASTAPI",
        format!(
            "FastAPI, uvicorn and sse-starlette are not in {} (run `bash scripts/fastapi-venv.sh`)",
            python.display()
        ),
    )
}

#[test]
fn a_fastapi_sse_starlette_chat_endpoint_reports_token_timing_through_nginx() {
    let Some(python) = fastapi_python() else {
        return;
    };
    let python = python.display().to_string();
    let (code, lines, human) = check_json(&[
        "--path",
        "/v1/chat/completions",
        "--method",
        "POST",
        "--data",
        r#"{"model":"example","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        "--matrix",
        "nginx",
        "--",
        &python,
        "tests/servers/fastapi_llm.py",
        "{port}",
    ]);
    assert!(code == 0 || code == 1, "{human}");
    let direct = baseline(&lines);
    assert_eq!(direct["protocol"], "openai-chat", "{direct}");
    assert_eq!(direct["delivery"], "streamed", "{human}");
    assert_eq!(direct["tokens"]["deltas"], 33, "{direct}");
    assert_eq!(direct["tokens"]["terminal_seen"], true, "{direct}");
    // sse-starlette sends `X-Accel-Buffering: no`: a stock nginx streams it, each token on time.
    let nginx = chain(&lines, "nginx-default");
    assert_eq!(nginx["delivery"], "streamed", "{human}");
    assert!(
        nginx["tokens"]["added_ttft_ms"].as_f64().unwrap() < 100.0,
        "{nginx}"
    );
}

/// Header integrity through the tap: a chain that drops, doubles or rewrites a watched header is told
/// apart from one that passes them, for default and user-listed (`listen.headers`) names, and no value
/// of a secret one reaches the output.
#[test]
fn check_finds_session_headers_dropped_doubled_and_changed_through_the_tap() {
    let sid = "1868a90c-73c2-4b6e-a5b4-session-fixture";
    let config = format!(
        "target:\n  url:\n    path: /events\n    headers: {{Mcp-Session-Id: {sid}, X-Tenant: acme}}\n\
         listen: {{headers: [X-Tenant], lifecycle: false}}\n\
         matrix:\n\
         \x20 drops: [{{headers: {{request: {{remove: [Mcp-Session-Id]}}}}}}]\n\
         \x20 doubles: [{{headers: {{append: {{Mcp-Session-Id: {sid}}}}}}}]\n\
         \x20 rewrites: [{{headers: {{request: {{set: {{X-Tenant: other}}}}}}}}]\n\
         \x20 clean: [{{headers: {{set: {{X-Unrelated: '1'}}}}}}]\n"
    );
    let (_, lines, human) = check_fixture(&config, "session-headers", &[]);
    let ids = |name: &str| -> Vec<String> {
        chain(&lines, name)["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_string())
            .filter(|id| id.starts_with("header-"))
            .collect()
    };
    assert_eq!(ids("drops"), ["header-dropped"], "{human}");
    assert_eq!(ids("doubles"), ["header-duplicated"], "{human}");
    assert_eq!(ids("rewrites"), ["header-changed"], "{human}");
    assert!(ids("clean").is_empty(), "{human}");
    let all = human + &serde_json::to_string(&lines).unwrap();
    assert!(
        all.contains("`X-Tenant` sent by the client as `acme`"),
        "{all}"
    );
    assert!(!all.contains(sid), "the session id leaked: {all}");
}

/// `--exec`: the user's client suite runs directly and through every chain with `{url}` put in; a chain
/// through which it fails while it passes directly fails the gate, and the JSON has its exit status and
/// output tail.
#[test]
fn a_client_suite_that_fails_only_through_a_chain_fails_that_chain() {
    let suite = "python3 -c \"import urllib.request as u,sys; r=u.urlopen('{url}',timeout=10); \
                 s=r.headers.get('Mcp-Session-Id'); print('base {base} session', bool(s)); \
                 sys.exit(0 if s else 1)\"";
    let config = "target:\n  url: {path: /events}\nlisten: {lifecycle: false}\nmatrix:\n\
                  \x20 strips: [{headers: {remove: [Mcp-Session-Id]}}]\n\
                  \x20 keeps: [{headers: {set: {X-Unrelated: '1'}}}]\n";
    let (code, lines, human) = check_fixture(
        config,
        "session-headers",
        &["--exec", suite, "--exec-timeout", "30s"],
    );
    assert_eq!(code, 4, "{human}");
    let base = &lines.iter().find(|l| l["type"] == "baseline").unwrap()["data"];
    assert_eq!(base["exec"]["passed"], true, "{base}");
    assert_eq!(base["exec"]["exit_code"], 0);
    let strips = chain(&lines, "strips");
    assert_eq!(strips["exec"]["passed"], false, "{strips}");
    assert_eq!(strips["exec"]["exit_code"], 1);
    assert_eq!(strips["result"], "fail");
    assert!(
        strips["reasons"].to_string().contains("and passed (exit 0"),
        "{strips}"
    );
    // `{base}` is the chain's entry, `{url}` with the path.
    let tail = strips["exec"]["tail"].as_str().unwrap();
    assert!(
        tail.starts_with("base http://127.0.0.1:") && tail.ends_with("session False"),
        "{tail}"
    );
    let keeps = chain(&lines, "keeps");
    assert_eq!(keeps["exec"]["passed"], true, "{keeps}");
    assert!(human.contains("client suite: failed (exit 1"), "{human}");
}

/// `--protocol mcp` (here by `target.mcp`): ssegate's client opens a session directly and through every
/// chain, the `tools/call`'s progress is judged against the tap, and a chain that loses the session
/// header fails with `mcp-session-failed`, its steps in the JSON.
#[test]
fn an_mcp_server_is_checked_session_first_through_every_chain() {
    let config = "target:\n  url: {path: /mcp}\n  mcp: {tool: slow_task}\nmatrix:\n\
                  \x20 keeps: [{headers: {set: {X-Unrelated: '1'}}}]\n\
                  \x20 strips-session: [{headers: {remove: [Mcp-Session-Id]}}]\n";
    let (code, lines, human) = check_fixture(config, "mcp", &[]);
    assert_eq!(code, 4, "{human}");
    let base = &lines.iter().find(|l| l["type"] == "baseline").unwrap()["data"];
    assert_eq!(base["mcp"]["established"], true, "{base}");
    assert_eq!(base["mcp"]["revision"], "2025-11-25");
    assert_eq!(base["delivery"], "streamed");
    assert_eq!(base["events"].as_array().map(Vec::len), Some(6), "{base}");
    let keeps = chain(&lines, "keeps");
    assert_eq!(keeps["mcp"]["established"], true, "{keeps}");
    assert_eq!(keeps["delivery"], "streamed", "{keeps}");
    assert_eq!(keeps["basis"], "tap", "{keeps}");
    let strips = chain(&lines, "strips-session");
    assert_eq!(strips["result"], "fail", "{strips}");
    let steps = strips["mcp"]["steps"].as_array().unwrap();
    assert_eq!(steps[1]["name"], "notifications/initialized");
    assert_eq!(steps[1]["status"], 400);
    assert!(
        strips["findings"]
            .to_string()
            .contains("mcp-session-failed"),
        "{strips}"
    );
    // The tap saw the answer to `initialize` leave the origin with the session header the client never got.
    assert!(
        strips["findings"]
            .to_string()
            .contains("response header `mcp-session-id`"),
        "{strips}"
    );
    assert!(!human.contains("ssegate-"), "a session id leaked: {human}");
}
