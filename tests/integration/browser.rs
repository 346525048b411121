//! The browser probe (`--browser`): headless Chromium beside ssegate's own probe. These tests need Debian's
//! `chromium` and `chromium-driver`; without them they say so and return, unless
//! `SSEGATE_REQUIRE_BROWSER=1` (CI) makes that a failure.

use crate::cli::{Fixture, probe_json};
use crate::util::{RUN_WITHIN, Spawned, bin, output_within};

/// Whether the browser tests can run here (or must, under `SSEGATE_REQUIRE_BROWSER`).
fn browser_here() -> bool {
    match ssegate::browser::missing() {
        None => true,
        Some(why) if std::env::var_os("SSEGATE_REQUIRE_BROWSER").is_some() => {
            panic!("SSEGATE_REQUIRE_BROWSER is set, but {why}")
        }
        Some(why) => {
            eprintln!("browser tests not run: {why}");
            false
        }
    }
}

#[test]
fn the_browser_agrees_on_the_plain_origin_and_meets_the_http11_connection_limit() {
    if !browser_here() {
        return;
    }
    let f = Fixture::start("plain");
    let doc = probe_json(&f.url, &["--browser"]);
    let b = &doc["browser"];
    assert!(
        b["program"].as_str().unwrap().starts_with("Chromium"),
        "{b}"
    );
    assert_eq!(b["delivery"], "streamed", "{b}");
    assert_eq!(b["agrees"], true, "{b}");
    let events = b["events"].as_array().unwrap();
    assert_eq!(events.len(), 6, "{b}");
    assert_eq!(events[0]["id"], "1");
    // Arrival offsets on the page's clock follow the origin's 400 ms spacing.
    let at = |i: usize| events[i]["at_ms"].as_f64().unwrap();
    assert!(at(5) - at(0) > 1500.0, "{b}");
    let limit = &b["connection_limit"];
    assert_eq!(limit["version"], "HTTP/1.1");
    assert_eq!(limit["limited"], true, "{limit}");
    assert_eq!(limit["opened_at_once"], 6, "{limit}");
    let ids: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"browser-connection-limit"), "{ids:?}");
    assert!(!ids.contains(&"browser-disagrees"), "{ids:?}");
}

#[test]
fn through_nginx_default_both_see_the_stream_held_to_the_end() {
    if !browser_here() {
        return;
    }
    if ssegate::intermediary::programs::NGINX.executable().is_err() {
        eprintln!("nginx is not installed: not run");
        return;
    }
    let f = Fixture::start("plain");
    let upstream = f.url.trim_end_matches("/events").to_string();
    let (_proxy, entry) = Spawned::first_line(
        bin().args([
            "proxy",
            &upstream,
            "--hop",
            "nginx: default",
            "--duration",
            "120s",
        ]),
        crate::util::READY_WITHIN,
    );
    let out = output_within(
        bin().args([
            "probe",
            &format!("{}/events", entry.trim()),
            "--browser",
            "--duration",
            "20s",
        ]),
        RUN_WITHIN,
    );
    let human = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{human}");
    assert!(human.contains("delivery: held-until-end"), "{human}");
    assert!(
        human.contains("browser: Chromium") && human.contains("delivery held-until-end, 6 events"),
        "{human}"
    );
    assert!(
        human.contains("agreement: the browser agrees: `held-until-end`, 6 events"),
        "{human}"
    );
}

#[test]
fn without_chromium_browser_says_what_to_install() {
    let f = Fixture::start("plain");
    let empty = tempfile::tempdir().unwrap();
    let out = output_within(
        bin()
            .env("PATH", empty.path())
            .env_remove("SSEGATE_CHROMIUM")
            .args(["probe", &f.url, "--browser", "--duration", "5s"]),
        RUN_WITHIN,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("failed to run --browser")
            && err.contains("apt-get install -y chromium chromium-driver"),
        "{err}"
    );
}

#[test]
fn a_post_with_headers_is_read_with_fetch_and_agrees() {
    if !browser_here() {
        return;
    }
    let f = Fixture::start("plain");
    let doc = crate::cli::probe_json(
        &f.url,
        &[
            "--browser",
            "--method",
            "POST",
            "--data",
            "{\"q\":1}",
            "-H",
            "Authorization: Bearer not-a-real-token",
        ],
    );
    let b = &doc["browser"];
    assert_eq!(b["reader"], "fetch", "{b}");
    assert_eq!(b["delivery"], "streamed", "{b}");
    assert_eq!(b["agrees"], true, "{b}");
    assert_eq!(b["events"].as_array().unwrap().len(), 6, "{b}");
    assert_eq!(b["events"][5]["id"], "6", "{b}");
}

#[test]
fn a_long_tmpdir_does_not_keep_chromium_from_starting() {
    if !browser_here() {
        return;
    }
    // Chromium's singleton socket lives under its TMPDIR, and a socket path has at most 107 bytes.
    let dir = tempfile::tempdir().unwrap();
    let long = dir
        .path()
        .join("a-temporary-directory-with-a-long-name-as-ci-runners-have");
    std::fs::create_dir(&long).unwrap();
    let f = Fixture::start("plain");
    let doc = crate::cli::probe_json_env(&f.url, &["--browser"], &[("TMPDIR", &long)]);
    assert_eq!(doc["browser"]["delivery"], "streamed", "{doc}");
    // Nothing is left behind, in either temporary directory.
    assert_eq!(std::fs::read_dir(&long).unwrap().count(), 0);
}
