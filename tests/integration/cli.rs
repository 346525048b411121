//! The `ssegate` binary end to end: `fixture` + `probe`, `run`, errors and exit codes.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::Value;

use crate::util::{READY_WITHIN, Spawned, bin, code_and_stderr};

/// `ssegate fixture PROFILE` as a separate process, killed on drop.
pub(crate) struct Fixture {
    _child: Spawned,
    pub(crate) url: String,
}

impl Fixture {
    pub(crate) fn start(profile: &str) -> Fixture {
        let (child, url) = Spawned::first_line(
            bin().args(["fixture", profile, "--duration", "60s"]),
            READY_WITHIN,
        );
        assert!(url.starts_with("http://127.0.0.1:"), "{url:?}");
        Fixture { _child: child, url }
    }
}

pub(crate) fn probe_json(url: &str, extra: &[&str]) -> Value {
    probe_json_env(url, extra, &[])
}

/// [`probe_json`] with environment variables set for the process.
pub(crate) fn probe_json_env(url: &str, extra: &[&str], env: &[(&str, &std::path::Path)]) -> Value {
    let out = bin()
        .args(["probe", url, "--format", "json", "--duration", "20s"])
        .args(extra)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("probe prints one JSON document")
}

fn finding_ids(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn plain_fixture_streams_with_missing_no_transform() {
    let f = Fixture::start("plain");
    let v = probe_json(&f.url, &[]);
    assert_eq!(v["delivery"], "streamed");
    assert_eq!(v["basis"], "inferred");
    let ids = finding_ids(&v);
    assert!(ids.contains(&"missing-no-transform".to_string()), "{ids:?}");
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 6);
    // events 400 ms apart arrive roughly 400 ms apart
    let a1 = events[0]["arrival_ms"].as_f64().unwrap();
    let a6 = events[5]["arrival_ms"].as_f64().unwrap();
    assert!(a6 - a1 > 1500.0, "{a1} {a6}");
    assert!(v["headers"].is_array());
    for f in v["findings"].as_array().unwrap() {
        for key in ["id", "severity", "evidence", "why", "fix"] {
            assert!(f.get(key).is_some(), "finding lacks {key}: {f}");
        }
    }
}

#[test]
fn hardened_fixture_has_no_header_findings() {
    let f = Fixture::start("hardened");
    let v = probe_json(&f.url, &[]);
    assert_eq!(v["delivery"], "streamed");
    assert!(finding_ids(&v).is_empty(), "{:?}", finding_ids(&v));
}

#[test]
fn content_length_fixture_is_flagged() {
    let f = Fixture::start("content-length");
    let v = probe_json(&f.url, &[]);
    assert!(finding_ids(&v).contains(&"content-length-on-stream".to_string()));
    assert_eq!(v["framing"], "content-length");
}

#[test]
fn unterminated_fixture_dispatches_nothing() {
    let f = Fixture::start("unterminated");
    let v = probe_json(&f.url, &[]);
    assert_eq!(v["delivery"], "no-events");
    let ids = finding_ids(&v);
    assert!(ids.contains(&"event-not-terminated".to_string()), "{ids:?}");
    assert!(ids.contains(&"no-events-dispatched".to_string()), "{ids:?}");
}

#[test]
fn held_fixture_is_inferred_held_until_end() {
    let f = Fixture::start("held");
    let v = probe_json(&f.url, &[]);
    assert_eq!(v["delivery"], "held-until-end");
    let held = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "held-until-end")
        .expect("held-until-end finding");
    assert!(held["evidence"].as_str().unwrap().contains("inferred"));
}

#[test]
fn early_close_is_told_from_a_clean_end() {
    let f = Fixture::start("early-close");
    let v = probe_json(&f.url, &[]);
    assert_eq!(v["end"]["kind"], "aborted");
    assert_eq!(v["delivery"], "cut");
    let plain = Fixture::start("plain");
    assert_eq!(probe_json(&plain.url, &[])["end"]["kind"], "complete");
}

#[test]
fn duration_and_byte_limits_end_the_recording_with_a_finding() {
    let f = Fixture::start("heartbeat");
    let v = probe_json(&f.url, &["--duration", "700ms"]);
    assert_eq!(v["end"]["kind"], "limit");
    assert_eq!(v["end"]["limit"], "duration");
    assert!(finding_ids(&v).contains(&"duration-limit-reached".to_string()));
    let v = probe_json(&f.url, &["--max-bytes", "10"]);
    assert_eq!(v["end"]["limit"], "bytes");
    assert!(finding_ids(&v).contains(&"byte-limit-reached".to_string()));
}

#[test]
fn secrets_never_reach_the_output() {
    let f = Fixture::start("plain");
    let out = bin()
        .args([
            "probe",
            &f.url,
            "--format",
            "json",
            "-H",
            "Authorization: Bearer s3cr3t",
            "-H",
            "X-Api-Key: k3y",
            "--secret-header",
            "x-api-key",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("<redacted>"));
    assert!(!text.contains("s3cr3t") && !text.contains("k3y"), "{text}");
}

#[test]
fn probe_of_a_closed_port_is_a_setup_error() {
    let (code, err) =
        code_and_stderr(bin().args(["probe", "http://127.0.0.1:9/", "--duration", "3s"]));
    assert_eq!(code, Some(3));
    assert!(err.starts_with("ssegate: failed to connect"), "{err}");
}

#[test]
fn bad_usage_is_exit_2() {
    let out = bin()
        .args(["probe", "http://x/", "-H", "nocolon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin()
        .args(["probe", "http://x/", "--duration", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unknown_fixture_profile_suggests_the_nearest() {
    let out = bin().args(["fixture", "plian"]).output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean `plain`"), "{err}");
}

#[test]
fn invalid_case_files_are_all_listed_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "description: x\ntarget:\n  profile: plain\nchian: []\nexpect:\n  delivery: streamed\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        "description: x\ntarget:\n  profile: plain\nchain:\n  - nginx: unbufered\nexpect:\n  delivery: streamed\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.yaml"),
        "description: x\ntarget:\n  profile: plain\nexpect:\n  delivery: streamed\n  findings: [missing-no-transfrom]\n",
    )
    .unwrap();
    let (code, err) = code_and_stderr(
        bin()
            .env("NO_COLOR", "1")
            .args(["run", "--no-report"])
            .arg(dir.path()),
    );
    assert_eq!(code, Some(5));
    assert!(err.contains("a.yaml:4:1"), "{err}");
    assert!(err.contains("did you mean `chain`"), "{err}");
    assert!(err.contains("b.yaml:5"), "{err}");
    assert!(err.contains("did you mean `unbuffered`"), "{err}");
    assert!(err.contains("c.yaml:6"), "{err}");
    assert!(err.contains("did you mean `missing-no-transform`"), "{err}");
    assert!(
        err.contains("3 invalid case file(s); nothing was run"),
        "{err}"
    );
}

#[test]
fn run_filters_writes_reports_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["run", "--filter", "hardened-direct", "--report-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("hardened-direct"));
    assert!(table.contains("1 passed, 0 failed"), "{table}");
    assert!(dir.path().join("summary.md").is_file());
    let run: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(run["cases"][0]["result"], "pass");
    let snap = std::fs::read_to_string(dir.path().join("cases/hardened-direct.txt")).unwrap();
    assert!(snap.contains("delivery: streamed"));
}

#[test]
fn a_failed_expectation_exits_4_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrong.yaml"),
        "description: plain direct does not hold anything\ntarget:\n  profile: plain\nexpect:\n  delivery: held-until-end\n",
    )
    .unwrap();
    let out = bin()
        .args(["run", "--no-report"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("expected delivery `held-until-end`, measured `streamed`"),
        "{text}"
    );
}

#[test]
fn run_writes_every_format_from_one_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrong.yaml"),
        "description: plain direct does not hold anything\ntarget:\n  profile: plain\nexpect:\n  delivery: held-until-end\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("right.yaml"),
        "description: plain direct streams\ntarget:\n  profile: plain\nexpect:\n  delivery: streamed\n",
    )
    .unwrap();
    let run = |format: &str, extra: &[&std::ffi::OsStr]| {
        let out = bin()
            .args(["run", "--no-report", "--format", format])
            .args(extra)
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(4), "{format}: one case fails");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let junit = run("junit", &[]);
    let doc = roxmltree::Document::parse(&junit).expect("JUnit is XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 2, "{junit}");
    let failed: Vec<_> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .map(|c| c.attribute("name").unwrap_or_default())
        .collect();
    assert_eq!(failed.len(), 1, "{junit}");
    assert!(failed[0].starts_with("wrong"), "{failed:?}");
    assert!(junit.contains("expected delivery `held-until-end`, measured `streamed`"));
    // Each case's normalized report is its system-out.
    assert!(junit.contains("delivery: streamed"), "{junit}");

    let json: Value = serde_json::from_str(&run("json", &[])).expect("one JSON document");
    assert_eq!(json["version"], 1);
    let results: Vec<&str> = json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["pass", "FAIL"], "cases in name order");
    assert_eq!(json["outcomes"][1]["verdict"]["delivery"], "streamed");

    let md = run("markdown", &[]);
    assert!(md.contains("1 of 2 cases met their expectation"), "{md}");
    assert!(md.contains("## wrong failed"), "{md}");

    // -o takes the format, stdout keeps the human summary; --html adds the timeline report.
    let xml = dir.path().join("out.xml");
    let html = dir.path().join("out.html");
    let text = run(
        "junit",
        &[
            "-o".as_ref(),
            xml.as_os_str(),
            "--html".as_ref(),
            html.as_os_str(),
        ],
    );
    assert!(text.contains("1 passed, 1 failed"), "{text}");
    assert!(
        std::fs::read_to_string(&xml)
            .unwrap()
            .contains("<testsuite")
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("wrong"), "{page}");
}

#[test]
fn a_run_that_selects_nothing_exits_6() {
    let out = bin()
        .args(["run", "--filter", "no-such-case", "--no-report"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
}

#[test]
fn a_wrong_ssegate_nginx_is_named() {
    let (code, err) = code_and_stderr(bin().env("SSEGATE_NGINX", "/nonexistent/nginx").args([
        "run",
        "--filter",
        "plain-nginx-default",
        "--no-report",
    ]));
    assert_eq!(code, Some(3));
    assert!(
        err.contains("/nonexistent/nginx from $SSEGATE_NGINX: it is not a file"),
        "{err}"
    );
}

#[test]
fn a_dying_nginx_is_reported_with_its_exit_status_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("nginx");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'nginx: [emerg] something is badly wrong' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, err) = code_and_stderr(bin().env("SSEGATE_NGINX", &fake).args([
        "run",
        "--filter",
        "plain-nginx-default",
        "--no-report",
    ]));
    assert_eq!(code, Some(3));
    assert!(err.contains("exited with exit status: 1"), "{err}");
    assert!(err.contains("something is badly wrong"), "{err}");
}

/// Pids whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ..." — comm may contain spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid)
            && let Some(child) = e.file_name().to_str().and_then(|s| s.parse().ok())
        {
            out.push(child);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn ctrl_c_stops_every_child_process() {
    let mut run = bin()
        .args(["run", "--filter", "nginx-short-idle", "--no-report"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = run.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // The two cases share one nginx (a run starts each chain once): wait for it to run, its config
    // given (`-c`), not for the version query that follows its start.
    let serving = |k: &u32| {
        std::fs::read(format!("/proc/{k}/cmdline"))
            .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == b"-c"))
    };
    let kids = loop {
        let k = children_of(pid);
        if k.iter().any(serving) {
            break k;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nginx children never appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // SAFETY: signalling a child we spawned.
    unsafe {
        libc::kill(pid as i32, libc::SIGINT);
    }
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ssegate did not exit after SIGINT"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    std::thread::sleep(std::time::Duration::from_millis(100));
    let survivors: Vec<u32> = kids.into_iter().filter(|&k| alive(k)).collect();
    assert!(survivors.is_empty(), "children survived: {survivors:?}");
}

#[test]
fn probe_writes_junit_and_markdown() {
    let held = Fixture::start("held");
    let out = bin()
        .args(["probe", &held.url, "--format", "junit", "--duration", "20s"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "no --fail-on: the exit code is 0"
    );
    let xml = String::from_utf8_lossy(&out.stdout);
    let doc = roxmltree::Document::parse(&xml).expect("JUnit is XML");
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .expect("a held stream fails its test case");
    assert!(
        failure
            .attribute("message")
            .is_some_and(|m| m.contains("held-until-end")),
        "{xml}"
    );

    let plain = Fixture::start("hardened");
    let out = bin()
        .args([
            "probe",
            &plain.url,
            "--format",
            "markdown",
            "--duration",
            "20s",
        ])
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("delivery **`streamed`**"), "{md}");
    assert!(
        md.contains("| # | arrival | latency | burst | held |"),
        "{md}"
    );
}

#[test]
fn probe_fail_on_gates_a_single_url() {
    let f = Fixture::start("plain");
    let run = |sev: &str| {
        bin()
            .args(["probe", &f.url, "--fail-on", sev])
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(run("error"), Some(0), "plain has no error finding");
    assert_eq!(
        run("warning"),
        Some(4),
        "plain lacks no-transform (a warning)"
    );
}

#[test]
fn proxy_puts_a_chain_in_front_of_a_server() {
    let f = Fixture::start("plain");
    let upstream = f.url.trim_end_matches("/events").to_string();
    let (proxy, line) = Spawned::first_line(
        bin()
            .args([
                "proxy",
                &upstream,
                "--hop",
                "coalesce: {bytes: 4096}",
                "--duration",
                "30s",
            ])
            .stderr(Stdio::null()),
        READY_WITHIN,
    );
    let entry = format!("{line}/events");
    let v = probe_json(&entry, &[]);
    assert_eq!(
        v["delivery"], "held-until-end",
        "a 4 KiB buffer holds six small events"
    );
    drop(proxy);
    let out = bin()
        .args(["proxy", &upstream, "--hop", "compresion"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `compression`"));
}

#[test]
fn a_line_longer_than_the_limit_is_counted_and_parsing_goes_on() {
    // A 3 MiB single data line, then five short events: browsers dispatch all six.
    let origin = crate::util::PythonOrigin::start(&["--line-bytes", "3145728", "--gap-ms", "100"]);
    let port = origin.port;
    let url = format!("http://127.0.0.1:{port}/events");
    let v = probe_json(&url, &[]);
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 6, "{}", v["end"]);
    assert_eq!(
        events[0]["data_bytes"],
        3 << 20,
        "the dispatched length, not the kept one"
    );
    assert!(events[0]["data"].is_null() && events[0]["data_head"].is_string());
    assert_eq!(events[5]["data"], "tick 6");
    assert_eq!(v["end"]["kind"], "complete");
    assert!(finding_ids(&v).contains(&"line-too-long".to_string()));
    // With room for the line, nothing is cut and nothing is reported.
    let v = probe_json(&url, &["--max-line", "4m"]);
    assert!(
        !finding_ids(&v).contains(&"line-too-long".to_string()),
        "{v}"
    );
    assert_eq!(v["events"].as_array().unwrap().len(), 6);
}

#[test]
fn a_case_whose_program_is_missing_is_skipped_with_the_reason_never_passed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("needs-caddy.yaml"),
        "description: needs caddy\ntarget:\n  profile: plain\nchain:\n  - caddy: default\nexpect:\n  delivery: streamed\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("direct.yaml"),
        "description: direct\ntarget:\n  profile: plain\nexpect:\n  delivery: streamed\n",
    )
    .unwrap();
    let out = crate::util::bin()
        .args(["run", "--no-report", "--format", "json"])
        .arg(dir.path())
        .env("PATH", "/nonexistent-bin")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("needs-caddy: skipped: failed to find `caddy` on PATH; install it with `apt-get install -y caddy`"),
        "{stderr}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = doc["cases"].as_array().unwrap();
    let skipped = rows.iter().find(|r| r["case"] == "needs-caddy").unwrap();
    assert_eq!(skipped["result"], "SKIP");
    let direct = rows.iter().find(|r| r["case"] == "direct").unwrap();
    assert_eq!(direct["result"], "pass");
    // The human table says it too, apart from the passes.
    let out = crate::util::bin()
        .args(["run", "--no-report"])
        .arg(dir.path())
        .env("PATH", "/nonexistent-bin")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 passed, 0 failed, 1 skipped"), "{text}");
    assert!(
        text.contains("not run (a program or image of their chain cannot run here)"),
        "{text}"
    );
}

/// The behaviour table in the README, as `ssegate run --table` builds it from the suite's results; built
/// here from the committed snapshots, which the conformance suite proves equal to what runs.
fn table_from_snapshots() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = Vec::new();
    for e in std::fs::read_dir(root.join("reports")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "snap") {
            let text = std::fs::read_to_string(&p).unwrap();
            seen.extend(ssegate::report::table::Observation::from_report(&text));
        }
    }
    ssegate::report::table::behaviour_table(&seen)
}

#[test]
fn the_readme_behaviour_table_is_the_suites_own() {
    let readme = include_str!("../../README.md");
    let start = "<!-- behaviour-table:start (generated by `ssegate run --table`) -->\n";
    let end = "<!-- behaviour-table:end -->";
    let (_, rest) = readme
        .split_once(start)
        .expect("the README has the table markers");
    let (table, _) = rest.split_once(end).unwrap();
    let built = table_from_snapshots();
    assert_eq!(
        table, built,
        "README.md's behaviour table differs from the suite's results; paste this between the markers:\n{built}"
    );
    // Every real program has at least one row, but an LLM gateway, which carries no plain event
    // stream: its token-stream cases are in the README's table of token streams.
    for p in ssegate::intermediary::programs::PROGRAMS
        .iter()
        .filter(|p| !p.llm_gateway)
    {
        assert!(
            built.contains(&format!("| `{} ", p.name)),
            "{} has no row:\n{built}",
            p.name
        );
    }
}

/// A TLS entry (`nginx: h2`) answers over HTTPS with the certificate of the authority `proxy` printed
/// (read from its stderr), and passes the event on.
fn tls_entry_streams(
    hop: &str,
    entry: &str,
    stderr: std::process::ChildStderr,
) -> Result<(), String> {
    let mut ca = None;
    for l in BufReader::new(stderr).lines().take(10) {
        let l = l.map_err(|e| format!("{hop}: {e}"))?;
        if let Some(at) = l.find("--cacert ") {
            ca = l[at + 9..].split_whitespace().next().map(str::to_string);
            break;
        }
    }
    let ca = ca.ok_or_else(|| format!("`{hop}` printed no authority to trust"))?;
    let pem = std::fs::read(&ca).map_err(|e| format!("{hop}: {ca}: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string())?])
            .build()
            .map_err(|e| e.to_string())?;
        let ask = async {
            let resp = client
                .get(format!("https://{entry}/events"))
                .header("Accept", "text/event-stream")
                .send()
                .await?;
            let version = resp.version();
            let body = resp.text().await?;
            Ok::<_, reqwest::Error>((version, body))
        };
        let (version, body) = tokio::time::timeout(std::time::Duration::from_secs(20), ask)
            .await
            .map_err(|_| format!("`{hop}`: no answer over TLS within 20 s"))?
            .map_err(|e| format!("`{hop}` over TLS: {e}"))?;
        if version != reqwest::Version::HTTP_2 || !body.contains("data: tick 1") {
            return Err(format!("`{hop}` answered {version:?}: {body:.200}"));
        }
        Ok(())
    })
}

/// Every config of every installed real program starts through `ssegate proxy` and passes a stream
/// (the head and one event arrive through it); a program that is not installed is named, not passed.
#[test]
fn proxy_starts_every_config_of_every_installed_program() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    // One event, then the stream ends: hops that hold to the end (or to the first byte) answer at once.
    let origin = crate::util::PythonOrigin::start(&["--events", "1", "--gap-ms", "50"]);
    let upstream = format!("http://127.0.0.1:{}", origin.port);
    let mut jobs = Vec::new();
    let mut not_installed = Vec::new();
    for p in ssegate::intermediary::programs::PROGRAMS {
        if p.executable().is_err() {
            not_installed.push(p.name);
            continue;
        }
        // An LLM gateway answers a provider's POST, not `GET /events`: the conformance suite starts
        // each of its configs with a token stream (`ssegate run --filter litellm`).
        if p.llm_gateway {
            continue;
        }
        for config in p.configs() {
            jobs.push(format!("{}: {config}", p.name));
        }
    }
    eprintln!(
        "{} configs; not installed here (not tested): {not_installed:?}",
        jobs.len()
    );
    let check = |hop: &str| -> Result<(), String> {
        let mut proxy = bin()
            .args(["proxy", &upstream, "--hop", hop, "--duration", "60s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let _ = BufReader::new(proxy.stdout.take().unwrap()).read_line(&mut line);
        let result = (|| {
            if let Some(entry) = line.trim().strip_prefix("https://") {
                return tls_entry_streams(hop, entry, proxy.stderr.take().unwrap());
            }
            let entry = line.trim().strip_prefix("http://").ok_or_else(|| {
                let mut err = String::new();
                let _ = proxy.stderr.take().unwrap().read_to_string(&mut err);
                format!("`{hop}` printed no entry URL: {err}")
            })?;
            let mut s = std::net::TcpStream::connect(entry).map_err(|e| format!("{hop}: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            write!(
                s,
                "GET /events HTTP/1.1\r\nHost: {entry}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while Instant::now() < deadline {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
                if String::from_utf8_lossy(&got).contains("data: tick 1") {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&got);
            if !text.starts_with("HTTP/1.1 200") && !text.starts_with("HTTP/1.0 200") {
                return Err(format!("`{hop}` answered: {:.200}", text));
            }
            // Compressing configs gzip the body: the head is enough there.
            if !text.contains("data: tick 1")
                && !text.to_ascii_lowercase().contains("content-encoding")
            {
                return Err(format!("`{hop}` passed no event: {:.300}", text));
            }
            Ok(())
        })();
        // SIGTERM, as a user's Ctrl-C or CI's timeout: ssegate stops the program and every descendant.
        // (SIGKILL of ssegate cannot: a program that switched user lost its parent-death signal.)
        let pid = proxy.id();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while proxy.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = proxy.kill();
                return Err(format!("`{hop}`: ssegate proxy did not stop on SIGTERM"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = proxy.wait();
        result?;
        // Nothing that ran from this proxy's private prefix outlives it.
        let marker = format!("-{pid}.");
        let left: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains("/ssegate-") && c.contains(&marker))
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("`{hop}` left processes behind: {left:?}"))
        }
    };
    // Three at a time: real programs cost CPU to start.
    let failures: Vec<String> = jobs
        .chunks(3)
        .flat_map(|chunk| {
            std::thread::scope(|sc| {
                let hs: Vec<_> = chunk.iter().map(|h| sc.spawn(|| check(h))).collect();
                hs.into_iter()
                    .filter_map(|h| h.join().unwrap().err())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_header_with_a_line_break_is_a_usage_error() {
    let (code, stderr) = code_and_stderr(bin().args([
        "probe",
        "http://127.0.0.1:9/",
        "-H",
        "X-A: b\r\nInjected: 1",
    ]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not a valid header value"), "{stderr}");
    assert!(!stderr.contains("Injected"), "{stderr}");
}

#[test]
fn check_that_selects_no_chain_fails_instead_of_passing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ssegate.yaml");
    std::fs::write(
        &cfg,
        "target: {url: {base: 'http://127.0.0.1:9', path: /events}}\nmatrix:\n  one: [coalesce]\n  two: [compression]\n",
    )
    .unwrap();
    let (code, stderr) = code_and_stderr(
        bin()
            .args(["check", "-c"])
            .arg(&cfg)
            .args(["--partition", "3/3"]),
    );
    assert_eq!(code, Some(6), "{stderr}");
    assert!(stderr.contains("failed to select any chain"), "{stderr}");
    assert!(stderr.contains("use at most 2 partitions"), "{stderr}");
}

#[test]
fn a_report_that_cannot_be_written_to_stdout_is_no_success() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let o = crate::util::PythonOrigin::start(&["--events", "2", "--gap-ms", "50"]);
    let url = format!("http://127.0.0.1:{}/events", o.port);
    let out = bin()
        .args(["probe", &url, "--duration", "5s"])
        .stdout(
            std::fs::File::options()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("failed to write the report to stdout"),
        "{stderr}"
    );
}

#[test]
fn a_temporary_directory_that_cannot_be_used_is_named() {
    // A `$TMPDIR` that is a file fails as a full one does: the hop's private dir cannot be made.
    let not_a_dir = tempfile::NamedTempFile::new().unwrap();
    let case =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cases/plain-nginx-default.yaml");
    let (code, stderr) = code_and_stderr(
        bin()
            .env("TMPDIR", not_a_dir.path())
            .args(["run", "--no-report"])
            .arg(&case),
    );
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "failed to make a private directory in {}",
            not_a_dir.path().display()
        )),
        "{stderr}"
    );
}
