//! The container backend: hops from images, their lifecycle, and the skips when no engine answers.
//!
//! The tests that need an engine use the one `$DOCKER_HOST` names (`scripts/containers-up.sh` starts a
//! private one and builds the `nginx:1.22.1`, `haproxy:2.6.12` and `caddy:2.6.2` images from the host's
//! programs). Without an engine they print why and return, except under `SSEGATE_REQUIRE_DOCKER=1`
//! (`.ci/run` sets it), where a missing engine fails them: CI never passes them unrun. The skip path
//! itself is tested against an engine that is not there, which needs nothing.
//!
//! The tests that start containers hold [`engine`] while they run: one ssegate's sweep of a dead
//! owner's containers must not race another test's assertion about them.

use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::util::{READY_WITHIN, RUN_WITHIN, Spawned, bin, code_and_stderr, output_within};

/// How long one `docker` command may take.
const DOCKER_WITHIN: Duration = Duration::from_secs(30);

/// One engine test at a time.
fn engine() -> MutexGuard<'static, ()> {
    static ENGINE: Mutex<()> = Mutex::new(());
    ENGINE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A `DOCKER_HOST` where no engine answers.
const NOWHERE: &str = "unix:///nonexistent/ssegate-test-docker.sock";

#[test]
fn without_an_engine_image_cases_are_skipped_with_the_reason_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let junit = dir.path().join("run.xml");
    let run = |format: &str, out: &std::path::Path| {
        code_and_stderr(
            bin()
                .env("DOCKER_HOST", NOWHERE)
                .args(["run", "--backend", "containers", "--no-report"])
                .args([
                    "--filter",
                    "plain-nginx-default",
                    "--filter",
                    "haproxy-default-plain",
                ])
                .args(["--format", format, "-o"])
                .arg(out),
        )
    };
    if !cfg!(feature = "containers") {
        let (code, stderr) = run("json", &json);
        assert_eq!(code, Some(3), "{stderr}");
        assert!(
            stderr.contains("built without the `containers` feature"),
            "{stderr}"
        );
        return;
    }
    let (code, stderr) = run("json", &json);
    // Every case skipped: nothing was measured, which is no pass (exit 3, as `check` with no chain).
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("failed to run any case"), "{stderr}");
    assert!(
        stderr.contains("plain-nginx-default: skipped: failed to reach the Docker engine"),
        "{stderr}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = v["cases"].as_array().unwrap();
    assert!(rows.len() >= 2, "{v}");
    for row in rows {
        assert_eq!(row["result"], "SKIP", "never a pass: {row}");
        assert!(row["chain"].as_str().unwrap().contains('@'), "{row}");
        let why = row["failures"][0].as_str().unwrap();
        assert!(why.contains(NOWHERE.trim_start_matches("unix://")), "{why}");
    }
    let (code, _) = run("junit", &junit);
    assert_eq!(code, Some(3));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<skipped") && xml.contains("Docker engine"),
        "{xml}"
    );
}

#[test]
fn without_an_engine_a_checks_image_chains_are_not_run_and_say_why() {
    if !cfg!(feature = "containers") {
        return;
    }
    let (code, lines, human) = crate::check::check_fixture_with(
        &[("DOCKER_HOST", NOWHERE)],
        "target:\n  url: {path: /events}\nmatrix:\n  pinned: [{nginx: 'default@nginx:1.22.1'}]\n  content-length: [content-length]\n",
        "hardened",
        &["--backend", "containers"],
    );
    // The built-in hop still runs (it warns: only the operator can fix it); the image chain is not run,
    // and says why.
    assert_eq!(code, 0, "{human}");
    let not_run: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["type"] == "not-run").collect();
    assert_eq!(not_run.len(), 1, "{human}");
    assert_eq!(not_run[0]["data"]["chain"], "nginx default@nginx:1.22.1");
    assert!(
        not_run[0]["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("Docker engine"),
        "{human}"
    );
    assert_eq!(
        crate::check::chain(&lines, "content-length")["result"],
        "warn"
    );
    assert!(human.contains("SKIP  pinned"), "{human}");
}

#[test]
fn a_backend_that_does_not_exist_is_a_usage_error() {
    let (code, stderr) = code_and_stderr(bin().args(["run", "--backend", "docker"]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("possible values: local, containers, auto"),
        "{stderr}"
    );
}

/// Why no engine answers at `$DOCKER_HOST` (None: one does). Under `SSEGATE_REQUIRE_DOCKER=1` the
/// caller fails instead of skipping.
fn engine_answers() -> Option<String> {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    if host.is_empty() || host == NOWHERE {
        return Some("DOCKER_HOST is not set".into());
    }
    if Command::new("docker").arg("--version").output().is_err() {
        return Some("the docker client is not installed".into());
    }
    let o = output_within(Command::new("docker").arg("info"), DOCKER_WITHIN);
    if o.status.success() {
        None
    } else {
        Some(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

/// The engine, held for the test (None: skip, when no engine answers and CI does not require one).
fn engine_for(test: &str) -> Option<MutexGuard<'static, ()>> {
    if !cfg!(feature = "containers") {
        return None;
    }
    match engine_answers() {
        None => Some(engine()),
        Some(why) if std::env::var("SSEGATE_REQUIRE_DOCKER").as_deref() == Ok("1") => {
            panic!("{test} needs a Docker engine (SSEGATE_REQUIRE_DOCKER=1): {why}")
        }
        Some(why) => {
            eprintln!("{test}: skipped: no Docker engine: {why}");
            None
        }
    }
}

/// What most engine tests start with: the engine held, and a hardened fixture as the upstream.
struct EngineTest {
    _engine: MutexGuard<'static, ()>,
    _fixture: crate::cli::Fixture,
    /// The fixture's `http://127.0.0.1:PORT`.
    upstream: String,
}

impl EngineTest {
    fn start(test: &str) -> Option<EngineTest> {
        let engine = engine_for(test)?;
        let fixture = crate::cli::Fixture::start("hardened");
        let upstream = fixture.url.trim_end_matches("/events").to_string();
        Some(EngineTest {
            _engine: engine,
            _fixture: fixture,
            upstream,
        })
    }
}

/// The hop containers of one ssegate process, by its pid: `(id, hop label)`.
fn containers_of(pid: u32) -> Vec<(String, String)> {
    docker(&[
        "ps",
        "-a",
        "--filter",
        "label=ssegate.owner",
        "--format",
        "{{.ID}}\t{{.Label \"ssegate.owner\"}}\t{{.Label \"ssegate.hop\"}}",
    ])
    .lines()
    .filter_map(|l| {
        let mut f = l.split('\t');
        let (id, owner, hop) = (f.next()?, f.next()?, f.next()?);
        (owner.split('.').next() == Some(&pid.to_string()))
            .then(|| (id.to_string(), hop.to_string()))
    })
    .collect()
}

/// `ssegate proxy UPSTREAM --hop …` (killed on drop), and the entry URL it printed.
fn proxy(upstream: &str, hops: &[&str]) -> (Spawned, String) {
    proxy_with(upstream, hops, &[], "60s")
}

#[test]
fn hops_run_from_images_and_ctrl_c_removes_their_containers() {
    let Some(t) = EngineTest::start("hops_run_from_images_and_ctrl_c_removes_their_containers")
    else {
        return;
    };
    let upstream = t.upstream.clone();
    let (child, entry) = proxy(
        &upstream,
        &[
            "haproxy: no-delay@haproxy:2.6.12",
            "nginx: default@nginx:1.22.1",
        ],
    );
    let mut hops: Vec<String> = containers_of(child.id()).into_iter().map(|c| c.1).collect();
    hops.sort();
    assert_eq!(
        hops,
        [
            "haproxy no-delay@haproxy:2.6.12",
            "nginx default@nginx:1.22.1"
        ],
        "one labelled container per hop"
    );
    let v = crate::cli::probe_json(&format!("{entry}/events"), &[]);
    assert_eq!(v["delivery"], "streamed", "{v}");
    assert!(
        v["headers"]
            .to_string()
            .contains(r#"["server","nginx/1.22.1"]"#),
        "the image's nginx answered: {v}"
    );
    let pid = child.id();
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let out = child.wait_within(RUN_WITHIN);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("removed 2 container(s)"), "{stderr}");
    assert_eq!(containers_of(pid), vec![], "nothing left behind");
}

#[test]
fn a_killed_ssegates_container_is_removed_by_the_next_one() {
    let Some(t) = EngineTest::start("a_killed_ssegates_container_is_removed_by_the_next_one")
    else {
        return;
    };
    let upstream = t.upstream.clone();
    let (killed, _) = proxy(&upstream, &["caddy: default@caddy:2.6.2"]);
    let pid = killed.id();
    killed.kill_hard();
    assert_eq!(containers_of(pid).len(), 1, "SIGKILL leaves the container");
    // Two containers of an owner that is gone: one from this boot and PID namespace, one from another
    // host or PID namespace sharing the engine, where that pid means something else.
    let here = format!(
        "{}.{}",
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .unwrap()
            .trim(),
        std::fs::read_link("/proc/self/ns/pid")
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("pid:[")
            .trim_end_matches(']')
    );
    let dead_here = create_labelled("dead-here", &here);
    let elsewhere = create_labelled("elsewhere", "another-boot.4026531836");
    let (code, stderr) = code_and_stderr(
        bin()
            .args(["proxy", &upstream, "--duration", "100ms"])
            .args(["--hop", "haproxy: default@haproxy:2.6.12"]),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(containers_of(pid), vec![], "the next ssegate swept it");
    assert_eq!(containers_for_hop("dead-here"), Vec::<String>::new());
    assert_eq!(
        containers_for_hop("elsewhere"),
        vec![elsewhere.clone()],
        "another space's containers are not judged by this /proc"
    );
    let _ = output_within(
        Command::new("docker").args(["rm", "-f", &elsewhere, &dead_here]),
        DOCKER_WITHIN,
    );
}

/// A created (not started) container labelled as an ssegate's hop whose owner, pid 999999999, is gone
/// here; its short id.
fn create_labelled(hop: &str, space: &str) -> String {
    let id = docker(&[
        "create",
        "--label",
        &format!("ssegate.hop={hop}"),
        "--label",
        "ssegate.owner=999999999.1",
        "--label",
        &format!("ssegate.space={space}"),
        "nginx:1.22.1",
    ]);
    id.trim()[..12].to_string()
}

/// `docker ARGS` (within [`DOCKER_WITHIN`]), which must succeed; its stdout.
fn docker(args: &[&str]) -> String {
    let out = output_within(Command::new("docker").args(args), DOCKER_WITHIN);
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn check_measures_the_same_chains_from_images_as_from_the_installed_programs() {
    let Some(_engine) =
        engine_for("check_measures_the_same_chains_from_images_as_from_the_installed_programs")
    else {
        return;
    };
    let config = "target:\n  url: {path: /events}\nmatrix: [nginx, haproxy]\n";
    let (local_code, local, human) = crate::check::check_fixture(config, "plain", &[]);
    let (code, images, human_images) =
        crate::check::check_fixture(config, "plain", &["--backend", "containers"]);
    assert_eq!(code, local_code, "{human}\n{human_images}");
    let chains = |lines: &[serde_json::Value]| -> Vec<(String, String, String, String)> {
        let mut v: Vec<_> = lines
            .iter()
            .filter(|l| l["type"] == "chain")
            .map(|l| {
                let d = &l["data"];
                (
                    d["name"].as_str().unwrap().to_string(),
                    d["chain"].as_str().unwrap().to_string(),
                    d["programs"][0].as_str().unwrap_or_default().to_string(),
                    d["result"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let (local, images) = (chains(&local), chains(&images));
    assert_eq!(local.len(), 7, "{human}");
    assert_eq!(local.len(), images.len(), "{human_images}");
    for (l, i) in local.iter().zip(&images) {
        assert_eq!(l.0, i.0);
        assert_eq!(format!("{}@", l.1), i.1[..=l.1.len()].to_string(), "{i:?}");
        assert_eq!(l.2, i.2, "the image holds the same version: {i:?}");
        assert_eq!(
            l.3, i.3,
            "same verdict from the image: {i:?}\n{human_images}"
        );
    }
}

#[test]
fn a_start_cut_short_and_testcontainers_keep_leave_no_container() {
    let Some(t) = EngineTest::start("a_start_cut_short_and_testcontainers_keep_leave_no_container")
    else {
        return;
    };
    let upstream = t.upstream.clone();
    // The engine creates the container, then cannot start it: the nginx image has no haproxy.
    let failed = output_within(
        bin()
            .args(["proxy", &upstream, "--duration", "1s"])
            .args(["--hop", "haproxy: default@nginx:1.22.1"]),
        RUN_WITHIN,
    );
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("failed to run haproxy (default) from its image"),
        "{stderr}"
    );
    // Its pid is gone, but its containers would still carry it: none does.
    assert_eq!(
        containers_for_hop("haproxy default@nginx:1.22.1"),
        Vec::<String>::new(),
        "the created container was removed"
    );
    // testcontainers' own setting to keep containers does not keep ssegate's.
    let (kept, _) = proxy_with(
        &upstream,
        &["nginx: default@nginx:1.22.1"],
        &[("TESTCONTAINERS_COMMAND", "keep")],
        "1s",
    );
    let pid = kept.id();
    let out = kept.wait_within(RUN_WITHIN);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(containers_of(pid), vec![], "removed at exit");
}

#[test]
fn auto_reports_a_wrong_program_variable_instead_of_running_the_image() {
    let Some(t) =
        EngineTest::start("auto_reports_a_wrong_program_variable_instead_of_running_the_image")
    else {
        return;
    };
    let upstream = t.upstream.clone();
    let (code, stderr) = code_and_stderr(
        bin()
            .env("SSEGATE_NGINX", "/nonexistent/nginx")
            .args(["proxy", &upstream, "--duration", "1s", "--backend", "auto"])
            .args(["--hop", "nginx: default"]),
    );
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("failed to use /nonexistent/nginx from $SSEGATE_NGINX"),
        "{stderr}"
    );
}

/// [`proxy`] with extra environment and a duration.
fn proxy_with(
    upstream: &str,
    hops: &[&str],
    env: &[(&str, &str)],
    duration: &str,
) -> (Spawned, String) {
    let mut cmd = bin();
    cmd.args(["proxy", upstream, "--duration", duration]);
    for h in hops {
        cmd.args(["--hop", h]);
    }
    cmd.envs(env.iter().copied());
    let (child, line) = Spawned::first_line(cmd.stderr(Stdio::piped()), READY_WITHIN);
    assert!(line.starts_with("http://127.0.0.1:"), "{line:?}");
    (child, line)
}

/// The ids of every hop container with this `ssegate.hop` label, whoever owns it.
fn containers_for_hop(hop: &str) -> Vec<String> {
    docker(&["ps", "-aq", "--filter", &format!("label=ssegate.hop={hop}")])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn containers_go_while_the_run_goes_on_not_only_at_its_exit() {
    let Some(_engine) = engine_for("containers_go_while_the_run_goes_on_not_only_at_its_exit")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let case = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    // A start the engine creates, then cannot run (the nginx image has no haproxy): its start label.
    case(
        "bad.yaml",
        "description: x\ntarget: {profile: plain}\nchain: [{haproxy: 'default@nginx:1.22.1'}]\nexpect: {delivery: streamed}\n",
    );
    // A hop that ends with its case: the reaper.
    case(
        "quick.yaml",
        "description: x\ntarget: {profile: plain}\nchain: [{nginx: 'default@nginx:1.22.1'}]\nexpect: {delivery: held-until-end}\n",
    );
    // 30 s without a container, so that the run is still going when the others are long done.
    case(
        "long.yaml",
        "description: x\ntarget: {profile: plain, overrides: {events: {count: 60, gap_ms: 500}}}\nexpect: {delivery: streamed}\n",
    );
    let mut cmd = bin();
    cmd.args(["run", "--no-report", "-j", "3"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Spawned::start(&mut cmd);
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(15));
    let mid_run = containers_of(pid);
    assert!(child.running(), "the long case still runs");
    let out = child.wait_within(RUN_WITHIN);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // Both ran: one container started and measured, one created and refused.
    assert!(text.contains("quick") && text.contains("pass"), "{text}");
    assert!(text.contains("executable file not found"), "{text}");
    assert_eq!(mid_run, vec![], "removed while the run went on\n{text}");
    assert_eq!(containers_of(pid), vec![]);
}
