//! Secrets in URLs, headers and redirects never reach any output: stdout, stderr, `-o`, `--html`,
//! `--summary`, or a run's report directory.

use crate::util::{PythonOrigin, bin};

const SECRETS: &[&str] = &["PASSWORDv4lue", "SESSv4lue9", "JWTv4lue.x.y", "BEARERv4lue"];

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} leaks {s}:\n{text}");
    }
}

#[test]
fn a_redirect_echoing_the_query_leaks_nothing_in_any_probe_format() {
    let o = PythonOrigin::start(&["--redirect"]);
    let url = format!(
        "http://127.0.0.1:{}/redirect?page=2&session_id=SESSv4lue9&jwt=JWTv4lue.x.y",
        o.port
    );
    for format in ["human", "json", "markdown", "junit"] {
        let out = bin()
            .args(["probe", &url, "--format", format, "--duration", "5s"])
            .args(["-H", "Authorization: Bearer BEARERv4lue"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("302"), "{format}: {stdout}");
        assert_clean(&format!("probe --format {format}"), &stdout);
        assert_clean("probe stderr", &String::from_utf8_lossy(&out.stderr));
    }
    let out = bin()
        .args(["doctor", &url, "--format", "json", "--duration", "5s"])
        .output()
        .unwrap();
    assert_clean("doctor", &String::from_utf8_lossy(&out.stdout));
}

#[test]
fn check_with_credentials_in_the_url_leaks_nothing_into_any_file() {
    let o = PythonOrigin::start(&["--redirect"]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ssegate.yaml");
    std::fs::write(
        &cfg,
        "target: {url: {path: /events}}\nlisten: {duration_ms: 8000}\nmatrix:\n  coalesce: [coalesce]\nexpect: {delivery: {coalesce: held-until-end}}\n",
    )
    .unwrap();
    let url = format!(
        "http://user:PASSWORDv4lue@127.0.0.1:{}/events?session_id=SESSv4lue9&jwt=JWTv4lue.x.y",
        o.port
    );
    let (json, html, md) = (
        dir.path().join("c.jsonl"),
        dir.path().join("c.html"),
        dir.path().join("summary.md"),
    );
    let out = bin()
        .args(["check", "-c"])
        .arg(&cfg)
        .args(["--url", &url, "--format", "json", "-o"])
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .arg("--summary")
        .arg(&md)
        .output()
        .unwrap();
    let human = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{human}");
    assert!(human.contains("target: http://user:redacted@"), "{human}");
    assert_clean("check stdout", &human);
    assert_clean("check stderr", &String::from_utf8_lossy(&out.stderr));
    for f in [&json, &html, &md] {
        assert_clean(
            &f.display().to_string(),
            &std::fs::read_to_string(f).unwrap(),
        );
    }
}

/// The forms of the secrets below that a client sends and a server echoes: the Basic credentials
/// derived from the URL's userinfo, a query value as written (`+`, lower-case `%2f`), a quoted cookie.
const ECHOED: &[&str] = &[
    "PASSWORDv4lue",
    // base64("alice:PASSWORDv4lue"), what the Authorization header carries
    "YWxpY2U6UEFTU1dPUkR2NGx1ZQ==",
    "pl%2fus+TOKv4lue",
    "pl/us TOKv4lue",
    "COOKIEv4l",
];

fn assert_none_echoed(what: &str, text: &str) {
    for s in ECHOED {
        assert!(!text.contains(s), "{what} leaks {s}:\n{text}");
    }
}

#[test]
fn a_server_echoing_its_request_leaks_no_credential_in_any_form_or_format() {
    let o = PythonOrigin::start(&[]);
    let url = format!(
        "http://alice:PASSWORDv4lue@127.0.0.1:{}/echo?token=pl%2fus+TOKv4lue&page=1",
        o.port
    );
    let dir = tempfile::tempdir().unwrap();
    for format in ["human", "json", "markdown", "junit"] {
        let file = dir.path().join(format!("probe.{format}"));
        let out = bin()
            .args(["probe", &url, "--format", format, "--duration", "5s", "-o"])
            .arg(&file)
            .args(["-H", r#"Cookie: sid="COOKIEv4l\"ue""#])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{format}: {stdout}");
        // The server saw the credentials (so the echo is a real test), once; with `-o`, stdout is the
        // human report (and with `--format human`, the file is).
        let written = std::fs::read_to_string(&file).unwrap();
        let human = if format == "human" {
            &written
        } else {
            &*stdout
        };
        assert!(
            human.contains("x-echo-authorization-count: 1"),
            "{format}: {human}"
        );
        assert_none_echoed(&format!("probe --format {format}"), &stdout);
        assert_none_echoed(&format!("probe -o ({format})"), &written);
        assert_none_echoed("probe stderr", &String::from_utf8_lossy(&out.stderr));
    }
    // A userinfo and an explicit Authorization: one header is sent, the explicit one.
    let out = bin()
        .args(["probe", &url, "--format", "json", "--duration", "5s"])
        .args(["-H", "Authorization: Bearer BEARERv4lue"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let count = v["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h[0] == "x-echo-authorization-count")
        .map(|h| h[1].clone());
    assert_eq!(count, Some(serde_json::json!("1")), "{stdout}");
    assert_clean("probe with -H Authorization", &stdout);
    assert_none_echoed("probe with -H Authorization", &stdout);
}

#[test]
fn a_header_read_from_the_environment_is_sent_and_never_printed() {
    let o = PythonOrigin::start(&[]);
    let url = format!("http://127.0.0.1:{}/echo", o.port);
    for cmd in ["probe", "doctor"] {
        for format in ["human", "json"] {
            let out = bin()
                .env("SSEGATE_TEST_AUTH", "Bearer ENVv4lue-sk-123")
                .args([cmd, &url, "--format", format, "--duration", "5s"])
                .args(["--header-env", "Authorization=SSEGATE_TEST_AUTH"])
                .args(["--header-env", "X-Api-Token=SSEGATE_TEST_AUTH"])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            // The server got it (its echo counts the header) ...
            let compact: String = stdout.to_ascii_lowercase().split_whitespace().collect();
            assert!(
                compact.contains("x-echo-authorization-count:1")
                    || compact.contains(r#"["x-echo-authorization-count","1"]"#),
                "{cmd} {format}: {stdout}"
            );
            // ... and no output has it, even the header that is secret only because it came so.
            for text in [&stdout, &stderr] {
                assert!(!text.contains("ENVv4lue"), "{cmd} {format} leaks:\n{text}");
            }
        }
    }
    let out = bin()
        .args([
            "probe",
            &url,
            "--header-env",
            "Authorization=SSEGATE_TEST_UNSET_VAR",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("SSEGATE_TEST_UNSET_VAR"), "{err}");
}
