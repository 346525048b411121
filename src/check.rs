//! `ssegate check`: the CI gate for a user's own endpoint.
//!
//! Start the target, record the direct baseline, run every chain of the matrix in front of it, judge each
//! chain against the baseline event by event, and decide who can fix what broke **by measuring**: a broken
//! chain is run again with the origin-side opt-outs (`Cache-Control: no-cache, no-transform`,
//! `X-Accel-Buffering: no`) injected next to the origin. If that makes it stream, the origin can fix it and
//! the gate fails; if not, only an operator can, and the gate reports the config change to ask for and
//! fails only when `expect` names the chain.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Loaded;
use crate::doctor::{Cause, diagnose};
use crate::intermediary::builtin::{HeadersOpts, HeartbeatOpts};
use crate::intermediary::{Chain, HopError, HopSpec};
use crate::probe::{ProbeError, ProbeRequest, Recording, probe};
use crate::target::command::{CommandTarget, TargetError};
use crate::verdict::{Delivery, Reference, Verdict, judge};

/// The opt-outs an origin can send, injected to measure whether they fix a chain.
pub const ORIGIN_FIX_HEADERS: &[(&str, &str)] = &[
    ("Cache-Control", "no-cache, no-transform"),
    ("X-Accel-Buffering", "no"),
];

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(
        "failed to find a target: give `target.command` or `target.url.base` in ssegate.yaml, `--url URL`, or `-- COMMAND ARGS…`"
    )]
    NoTarget,
    #[error("failed to put chains in front of {url}: chains need a plain http:// URL")]
    NotHttp { url: String },
    #[error("failed to resolve {url}")]
    Resolve {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("failed to start chain `{chain}`")]
    Hop {
        chain: String,
        #[source]
        source: HopError,
    },
    #[error("failed to record the direct baseline")]
    Baseline(#[source] ProbeError),
    #[error("failed to probe chain `{chain}`")]
    Probe {
        chain: String,
        #[source]
        source: ProbeError,
    },
    #[error("invalid --partition `{0}`: expected K/N with 1 ≤ K ≤ N")]
    Partition(String),
    #[error("failed to use the direct stream: {method} {url} answered {status}; {hint}")]
    BaselineStatus {
        method: String,
        url: String,
        status: u16,
        hint: &'static str,
    },
    #[error("failed to use the direct stream: {method} {url} sent no response headers within {}; raise `listen.duration_ms`, or flush the headers at once", crate::report::human_duration(*.waited))]
    BaselineSilent {
        method: String,
        url: String,
        waited: Duration,
    },
}

/// Heartbeat interval of the fix re-run for cut chains: well inside the scaled idle limits of the
/// built-in hops (the real advice, a comment every 15 s, is what the report recommends).
pub const FIX_HEARTBEAT_MS: u64 = 500;

/// Called as chains start and finish (for a progress display).
pub type OnProgress = std::sync::Arc<dyn Fn(&str, bool) + Send + Sync>;

/// What a run of `check` is told beyond the config.
#[derive(Clone, Default)]
pub struct CheckOptions {
    /// `-- COMMAND ARGS…`, replacing `target.command`.
    pub command: Option<Vec<String>>,
    /// `--url`, replacing the target.
    pub url: Option<String>,
    /// `(k, n)`: run only the chains whose index (sorted by name) is `k−1` modulo `n`.
    pub partition: Option<(usize, usize)>,
    /// Chains probed at once.
    pub jobs: usize,
    /// `(chain name, finished)` notifications.
    pub on_progress: Option<OnProgress>,
    /// `--path`, replacing `target.url.path`.
    pub path: Option<String>,
}

/// Parse `K/N`.
pub fn parse_partition(s: &str) -> Result<(usize, usize), CheckError> {
    let bad = || CheckError::Partition(s.to_string());
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let k: usize = k.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// Gate status of one chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Broken, but only an operator can fix it and `expect` does not name the chain.
    Warn,
    Fail,
}

/// Who can fix a broken chain, as measured.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fixability {
    /// Sending these headers (and, for a cut stream, heartbeats) made the chain deliver as expected.
    Origin {
        headers: Vec<(String, String)>,
        /// The heartbeat interval the re-run used, when the chain was cut.
        heartbeat_ms: Option<u64>,
        delivery_with_fix: Delivery,
    },
    /// Nothing the origin sends helped.
    Operator {
        delivery_with_fix: Delivery,
        operator_fix: String,
    },
    /// The origin already sends every opt-out, and the unchanged chain streamed when run again: the
    /// breakage did not reproduce (timing of the origin, not the chain).
    Unstable { delivery_on_rerun: Delivery },
    /// The re-run answered differently (another status), so it proves nothing.
    Undetermined { reason: String },
}

/// One chain's result.
#[derive(Debug, Serialize)]
pub struct ChainOutcome {
    pub name: String,
    pub chain: String,
    pub programs: Vec<String>,
    pub recording: Recording,
    pub verdict: Verdict,
    pub expected: Delivery,
    /// `expect.delivery` names this chain.
    pub explicit: bool,
    pub fix: Option<Fixability>,
    pub status: Status,
    pub reasons: Vec<String>,
}

/// Everything `check` measured and decided.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub target: String,
    pub baseline: ChainOutcome,
    /// Likely causes of what the baseline itself shows.
    pub causes: Vec<Cause>,
    pub chains: Vec<ChainOutcome>,
    pub partition: Option<String>,
    pub passed: bool,
    #[serde(serialize_with = "crate::probe::ser_ms")]
    pub took: Duration,
}

impl CheckReport {
    pub fn all(&self) -> impl Iterator<Item = &ChainOutcome> {
        std::iter::once(&self.baseline).chain(&self.chains)
    }
}

enum Upstream {
    Command(CommandTarget),
    Url,
}

/// The URL `check` will probe first, before anything starts (for early validation).
pub fn validate_url(url: &str) -> Result<(), CheckError> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" => Ok(()),
        _ => Err(CheckError::NotHttp {
            url: crate::probe::redact_url(url),
        }),
    }
}

fn probe_request(loaded: &Loaded, url: String) -> ProbeRequest {
    let spec = &loaded.config.target.url;
    let mut req = ProbeRequest::with(url, Some(&spec.method), &spec.headers, spec.body.as_deref());
    req.limits.duration = Duration::from_millis(loaded.config.listen.duration_ms);
    req.limits.max_events = loaded.config.listen.events;
    req.secret_headers = loaded.config.secret_headers.clone();
    req
}

/// The same request sent to another host:port.
fn retarget(req: &ProbeRequest, entry: SocketAddr) -> ProbeRequest {
    let mut r = req.clone();
    if let Ok(mut u) = reqwest::Url::parse(&req.url) {
        let _ = u.set_ip_host(entry.ip());
        let _ = u.set_port(Some(entry.port()));
        let _ = u.set_scheme("http");
        r.url = u.to_string();
    }
    r
}

/// Run the gate.
pub async fn check(loaded: &Loaded, opts: &CheckOptions) -> Result<CheckReport, CheckError> {
    let started = Instant::now();
    let url_override = opts
        .url
        .clone()
        .or_else(|| loaded.config.target.url.base.clone());
    let command = if opts.url.is_some() {
        None
    } else {
        loaded.command(opts.command.clone())
    };
    if command.is_none()
        && let Some(u) = &url_override
    {
        // Chains are plain HTTP hops: say so before starting anything.
        validate_url(u)?;
    }
    let path = opts
        .path
        .clone()
        .unwrap_or_else(|| loaded.config.target.url.path.clone());
    let (mut upstream, base_url, target_label) = match (command, url_override) {
        (Some(cmd), _) => {
            let t = CommandTarget::start(&cmd, &loaded.config.target.ready).await?;
            let label = cmd
                .argv
                .iter()
                .map(|a| a.replace("{port}", &t.addr().port().to_string()))
                .collect::<Vec<_>>()
                .join(" ");
            let url = format!("http://{}{}", t.addr(), path);
            (Upstream::Command(t), url, label)
        }
        (None, Some(url)) => (Upstream::Url, url.clone(), url),
        (None, None) => return Err(CheckError::NoTarget),
    };
    let base_req = probe_request(loaded, base_url.clone());
    let baseline_rec = match probe(&base_req).await {
        Ok(r) => r,
        Err(e) => {
            if let Upstream::Command(t) = &mut upstream {
                t.check_alive()?;
            }
            return Err(CheckError::Baseline(e));
        }
    };
    if !(200..300).contains(&baseline_rec.status) {
        if baseline_rec.status == 0 {
            return Err(CheckError::BaselineSilent {
                method: baseline_rec.method.clone(),
                url: baseline_rec.url.clone(),
                waited: baseline_rec.ended_at,
            });
        }
        return Err(CheckError::BaselineStatus {
            method: baseline_rec.method.clone(),
            url: baseline_rec.url.clone(),
            status: baseline_rec.status,
            hint: match upstream {
                Upstream::Command(_) => "check `target.url.path` (or --path)",
                Upstream::Url => "check the URL",
            },
        });
    }
    let baseline_verdict = judge(&baseline_rec, Reference::None);
    let mut causes = diagnose(&baseline_rec, &baseline_verdict);
    if matches!(upstream, Upstream::Command(_)) {
        local_origin_causes(&mut causes);
    }
    // Chains are only judged for who-can-fix-it when the origin itself streams.
    let origin_ok = baseline_verdict.delivery == Delivery::Streamed;

    // Put the chains in front of the address that actually answered (`localhost` may resolve to ::1
    // first while the server listens on 127.0.0.1 only).
    let upstream_addr = match baseline_rec.remote_addr {
        Some(a) if base_url.starts_with("http://") => a,
        _ => upstream_addr(&base_url).await?,
    };
    let mut names: Vec<(&String, &Vec<HopSpec>)> = loaded.matrix.iter().collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    let selected: Vec<(String, Vec<HopSpec>)> = names
        .into_iter()
        .enumerate()
        .filter(|(i, _)| opts.partition.is_none_or(|(k, n)| i % n == k - 1))
        .map(|(_, (n, h))| (n.clone(), h.clone()))
        .collect();

    let baseline_rec = Arc::new(baseline_rec);
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let mut tasks = Vec::new();
    for (name, hops) in selected {
        let sem = sem.clone();
        let base = baseline_rec.clone();
        let req = base_req.clone();
        let progress = opts.on_progress.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            if let Some(p) = &progress {
                p(&name, false);
            }
            let r = run_chain(&name, &hops, upstream_addr, &req, &base, origin_ok).await;
            if let Some(p) = &progress {
                p(&name, true);
            }
            r
        }));
    }
    let mut measured = Vec::new();
    for t in tasks {
        match t.await {
            Ok(r) => measured.push(r?),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    drop(upstream);

    let baseline_rec = Arc::try_unwrap(baseline_rec).unwrap_or_else(|a| (*a).clone());
    let expect = &loaded.config.expect;
    let expected_for = |name: &str| -> (Delivery, bool) {
        match expect.delivery.get(name) {
            Some(d) => (*d, true),
            None => (
                expect
                    .delivery
                    .get("default")
                    .copied()
                    .unwrap_or(Delivery::Streamed),
                false,
            ),
        }
    };
    let allowed = |id: &str| expect.allow.iter().any(|a| a.value == id);
    let denied = |v: &Verdict| -> Vec<String> {
        v.findings
            .iter()
            .filter(|f| expect.deny.iter().any(|d| d.value == f.id()))
            .map(|f| format!("denied finding `{}`: {}", f.id(), f.evidence))
            .collect()
    };

    // The baseline: the origin's own delivery, headers and framing.
    let (base_expected, base_explicit) = match expect.delivery.get("direct") {
        Some(d) => (*d, true),
        None => (Delivery::Streamed, false),
    };
    let mut reasons = Vec::new();
    if baseline_verdict.delivery != base_expected {
        let top = causes
            .first()
            .map(|c| format!("; likely cause: {} ({})", c.id, c.title))
            .unwrap_or_default();
        reasons.push(format!(
            "the origin itself delivers `{}` (expected `{base_expected}`){top}",
            baseline_verdict.delivery
        ));
    }
    for f in &baseline_verdict.findings {
        if f.rule.area != "probe"
            && f.rule.area != "delivery"
            && f.severity() >= expect.fail_on
            && !allowed(f.id())
        {
            reasons.push(format!(
                "{} `{}`: {} — fix: {}",
                f.severity().as_str(),
                f.id(),
                f.evidence,
                f.rule.fix
            ));
        }
    }
    reasons.extend(denied(&baseline_verdict));
    let baseline = ChainOutcome {
        name: "direct".into(),
        chain: "direct".into(),
        programs: vec![],
        status: if reasons.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        },
        recording: baseline_rec,
        verdict: baseline_verdict,
        expected: base_expected,
        explicit: base_explicit,
        fix: None,
        reasons,
    };

    let mut chains = Vec::new();
    for m in measured {
        let (expected, explicit) = expected_for(&m.name);
        let mut reasons = Vec::new();
        let mut status = Status::Pass;
        if m.verdict.delivery != expected && !origin_ok {
            status = Status::Warn;
            reasons.push(format!(
                "delivers `{}`; not judged: the direct stream is itself `{}`, fix the origin first",
                m.verdict.delivery, baseline.verdict.delivery
            ));
        } else if m.verdict.delivery != expected {
            let what = format!("delivers `{}` (expected `{expected}`)", m.verdict.delivery);
            match &m.fix {
                Some(Fixability::Origin {
                    headers,
                    heartbeat_ms,
                    ..
                }) => {
                    status = Status::Fail;
                    let mut hs: Vec<String> =
                        headers.iter().map(|(k, v)| format!("`{k}: {v}`")).collect();
                    if let Some(ms) = heartbeat_ms {
                        hs.push(format!(
                            "a heartbeat comment whenever the stream is idle (measured every {ms} ms; send one at least every 15 s)"
                        ));
                    }
                    reasons.push(format!(
                        "{what}; origin-fixable: sending {} makes it stream",
                        hs.join(" and ")
                    ));
                }
                Some(Fixability::Operator {
                    delivery_with_fix,
                    operator_fix,
                }) => {
                    status = if explicit { Status::Fail } else { Status::Warn };
                    reasons.push(format!(
                        "{what}; operator-only: with the origin's opt-outs it still delivers `{delivery_with_fix}`; ask for: {operator_fix}"
                    ));
                }
                Some(Fixability::Unstable { delivery_on_rerun }) => {
                    status = if explicit { Status::Fail } else { Status::Warn };
                    reasons.push(format!(
                        "{what}; did not reproduce: the unchanged chain delivered `{delivery_on_rerun}` on a second run (the origin already sends every opt-out; its own timing varies)"
                    ));
                }
                Some(Fixability::Undetermined { reason }) => {
                    status = Status::Fail;
                    reasons.push(format!("{what}; who can fix it is undetermined: {reason}"));
                }
                None => {
                    status = Status::Fail;
                    reasons.push(what);
                }
            }
        }
        // Errors the chain added (an error status, a corrupt coding) are part of the story.
        for f in &m.verdict.findings {
            if f.severity() == crate::verdict::Severity::Error
                && f.rule.area == "headers"
                && !baseline.verdict.has(f.id())
                && m.verdict.delivery != expected
            {
                reasons.push(format!("{} through this chain: {}", f.id(), f.evidence));
            }
        }
        let d = denied(&m.verdict);
        if !d.is_empty() {
            status = Status::Fail;
            reasons.extend(d);
        }
        chains.push(ChainOutcome {
            name: m.name,
            chain: m.label,
            programs: m.programs,
            recording: m.recording,
            verdict: m.verdict,
            expected,
            explicit,
            fix: m.fix,
            status,
            reasons,
        });
    }
    let passed = baseline.status != Status::Fail && chains.iter().all(|c| c.status != Status::Fail);
    Ok(CheckReport {
        target: target_label,
        baseline,
        causes,
        chains,
        partition: opts.partition.map(|(k, n)| format!("{k}/{n}")),
        passed,
        took: started.elapsed(),
    })
}

async fn upstream_addr(url: &str) -> Result<SocketAddr, CheckError> {
    let shown = crate::probe::redact_url(url);
    let u = reqwest::Url::parse(url).map_err(|_| CheckError::NotHttp { url: shown.clone() })?;
    if u.scheme() != "http" {
        return Err(CheckError::NotHttp { url: shown });
    }
    let host = u.host_str().unwrap_or("127.0.0.1").to_string();
    let port = u.port_or_known_default().unwrap_or(80);
    let mut addrs = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|source| CheckError::Resolve {
            url: shown.clone(),
            source,
        })?;
    addrs.next().ok_or_else(|| CheckError::Resolve {
        url: shown,
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
    })
}

struct Measured {
    name: String,
    label: String,
    programs: Vec<String>,
    recording: Recording,
    verdict: Verdict,
    fix: Option<Fixability>,
}

async fn probe_chain(
    name: &str,
    hops: &[HopSpec],
    upstream: SocketAddr,
    req: &ProbeRequest,
    baseline: &Recording,
) -> Result<(Recording, Verdict, Vec<String>), CheckError> {
    let mut chain = Chain::start(hops, upstream)
        .await
        .map_err(|source| CheckError::Hop {
            chain: name.into(),
            source,
        })?;
    let r = retarget(req, chain.entry(upstream));
    let rec = match probe(&r).await {
        Ok(rec) => rec,
        Err(source) => {
            chain.check_alive().map_err(|source| CheckError::Hop {
                chain: name.into(),
                source,
            })?;
            return Err(CheckError::Probe {
                chain: name.into(),
                source,
            });
        }
    };
    let v = judge(&rec, Reference::Baseline(baseline));
    Ok((rec, v, chain.programs()))
}

/// Which origin-side opt-outs the baseline does not send yet.
fn missing_opt_outs(baseline: &Recording) -> Vec<(String, String)> {
    let cc = baseline
        .header("cache-control")
        .unwrap_or("")
        .to_ascii_lowercase();
    let has_no_transform = cc.split(',').any(|d| d.trim() == "no-transform");
    let has_accel = baseline
        .header("x-accel-buffering")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("no"));
    ORIGIN_FIX_HEADERS
        .iter()
        .filter(|(k, _)| match *k {
            "Cache-Control" => !has_no_transform,
            _ => !has_accel,
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Heartbeat interval for the fix re-run: inside every idle limit the chain has.
fn fix_heartbeat_ms(hops: &[HopSpec]) -> u64 {
    hops.iter()
        .filter_map(|h| match h {
            HopSpec::IdleCut(o) => Some((o.after_ms / 2).max(10)),
            _ => None,
        })
        .fold(FIX_HEARTBEAT_MS, u64::min)
}

async fn run_chain(
    name: &str,
    hops: &[HopSpec],
    upstream: SocketAddr,
    req: &ProbeRequest,
    baseline: &Recording,
    judge_fix: bool,
) -> Result<Measured, CheckError> {
    let (recording, verdict, programs) = probe_chain(name, hops, upstream, req, baseline).await?;
    let mut fix = None;
    if judge_fix && verdict.delivery != Delivery::Streamed {
        // Measure whether the origin can fix this chain: inject the opt-outs it does not send yet next
        // to the origin, plus heartbeats when the chain cut the stream.
        let mut headers = missing_opt_outs(baseline);
        let heartbeat_ms = (verdict.delivery == Delivery::Cut).then(|| fix_heartbeat_ms(hops));
        if let Some(every_ms) = heartbeat_ms {
            // A cut is an idle limit's doing: try heartbeats alone first, so the claim names only what helps.
            let mut with_heartbeat = vec![HopSpec::Heartbeat(HeartbeatOpts { every_ms })];
            with_heartbeat.extend(hops.iter().cloned());
            let (r, v, _) = probe_chain(name, &with_heartbeat, upstream, req, baseline).await?;
            if r.status == recording.status && v.delivery == Delivery::Streamed {
                headers.clear();
            }
        }
        let mut fixed = Vec::new();
        if !headers.is_empty() {
            fixed.push(HopSpec::Headers(HeadersOpts {
                set: headers
                    .iter()
                    .cloned()
                    .collect::<BTreeMap<String, String>>(),
                remove: vec![],
            }));
        }
        if let Some(every_ms) = heartbeat_ms {
            fixed.push(HopSpec::Heartbeat(HeartbeatOpts { every_ms }));
        }
        let nothing_to_try = fixed.is_empty();
        fixed.extend(hops.iter().cloned());
        let (rec2, v2, _) = probe_chain(name, &fixed, upstream, req, baseline).await?;
        fix = Some(if rec2.status != recording.status {
            Fixability::Undetermined {
                reason: format!(
                    "the re-run answered {} instead of {}",
                    rec2.status, recording.status
                ),
            }
        } else if nothing_to_try && v2.delivery == Delivery::Streamed {
            Fixability::Unstable {
                delivery_on_rerun: v2.delivery,
            }
        } else if v2.delivery == Delivery::Streamed {
            Fixability::Origin {
                headers,
                heartbeat_ms,
                delivery_with_fix: v2.delivery,
            }
        } else {
            // The most likely cause that an operator can act on names the most specific fix.
            let causes = diagnose(&recording, &verdict);
            let operator_fix = causes
                .iter()
                .find(|c| !matches!(c.id, "missing-terminator" | "added-latency"))
                .map(|c| c.operator_fix)
                .or_else(|| {
                    verdict
                        .findings
                        .iter()
                        .filter(|f| f.rule.area == "delivery")
                        .find_map(|f| f.rule.operator_fix)
                })
                .unwrap_or("change the intermediary's configuration")
                .to_string();
            Fixability::Operator {
                delivery_with_fix: v2.delivery,
                operator_fix,
            }
        });
    }
    Ok(Measured {
        name: name.to_string(),
        label: crate::case::chain_label(hops),
        programs,
        recording,
        verdict,
        fix,
    })
}

/// The baseline of a server ssegate started has no intermediary: causes that blame one are the app's own.
fn local_origin_causes(causes: &mut [Cause]) {
    for c in causes.iter_mut() {
        match c.id {
            "proxy-buffering" => {
                c.id = "origin-buffering";
                c.title = "the server itself buffers its output before writing (a response buffer, output_buffering, no flush)";
                c.origin_fix = "write and flush each event as it is produced (res.flush(), Flusher.Flush(), a streaming response)";
                c.operator_fix = "none: nothing stands between this server and the probe";
            }
            "compression-buffering" => {
                c.title = "the server's own compression middleware holds events until its buffer fills (Express compression without res.flush(), old Starlette GZip)";
                c.operator_fix = "none: nothing stands between this server and the probe";
            }
            "idle-timeout" | "duration-cap" => {
                c.id = "origin-abort";
                c.title = "the server ended the response abruptly (an exception, a handler or write timeout)";
                c.origin_fix = "find why the handler stops (logs; Go http.Server.WriteTimeout; framework request timeouts) and end streams cleanly";
                c.operator_fix = "none: nothing stands between this server and the probe";
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_parse() {
        assert_eq!(parse_partition("1/3").unwrap(), (1, 3));
        assert!(parse_partition("0/3").is_err());
        assert!(parse_partition("4/3").is_err());
        assert!(parse_partition("x").is_err());
    }

    #[test]
    fn retarget_keeps_path_and_query() {
        let r = ProbeRequest::new("http://127.0.0.1:3000/events?x=1");
        let r2 = retarget(&r, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(r2.url, "http://127.0.0.1:4000/events?x=1");
    }
}
