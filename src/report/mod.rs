//! Rendering outcomes: human text, JSON, Markdown, and the normalized form that snapshots hold.
//!
//! The normalizer belongs to the product: `ssegate run` writes the same normalized reports the test suite
//! snapshots. It buckets every timing relative to the schedule (on time / held), and redacts durations,
//! ports, temporary paths and program versions, so a report is identical run after run on a loaded machine.

pub mod check;
pub mod json;
pub mod load;
pub mod progress;
pub mod run;
pub mod stream;
pub mod table;

use std::fmt::Write as _;

use crate::probe::{End, Recording};
use crate::runner::Outcome;
use crate::text::human_duration;
use crate::verdict::{Basis, FindingId, Verdict};

/// What comes before the version of each real program in reports (`nginx/`, `Apache/`).
fn version_labels() -> &'static [String] {
    static LABELS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LABELS.get_or_init(|| {
        crate::intermediary::programs::PROGRAMS
            .iter()
            .map(|p| p.version_label())
            .collect()
    })
}

/// Redact what varies between runs: durations, ports, temporary paths, program versions.
pub fn normalize(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // 127.0.0.1:PORT
        if text_at(&chars, i, "127.0.0.1:") {
            out.push_str("127.0.0.1:");
            i += "127.0.0.1:".len();
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i > start {
                out.push_str("<port>");
            }
            continue;
        }
        // nginx/1.22.1, haproxy/2.6.12-1+deb12u4 and the versions of every other real program
        if let Some(word) = version_labels().iter().find(|w| text_at(&chars, i, w)) {
            out.push_str(word);
            i += word.chars().count();
            let start = i;
            if i < chars.len() && chars[i].is_ascii_digit() {
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || matches!(chars[i], '.' | '-' | '+' | '~'))
                {
                    i += 1;
                }
            }
            if i > start {
                out.push_str("<version>");
            }
            continue;
        }
        // temporary directories
        if text_at(&chars, i, "/tmp/") {
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], ')' | '"' | ';' | ',' | '\'')
            {
                i += 1;
            }
            out.push_str("<tmp>");
            continue;
        }
        // durations: a number followed by " ms" or " s"
        if c.is_ascii_digit()
            && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '.'))
        {
            let start = i;
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                j += 1;
            }
            let unit_ms =
                text_at(&chars, j, " ms") && !chars.get(j + 3).is_some_and(|c| c.is_alphanumeric());
            let unit_s =
                text_at(&chars, j, " s") && !chars.get(j + 2).is_some_and(|c| c.is_alphanumeric());
            if unit_ms || unit_s {
                out.push_str("<duration>");
                i = j + if unit_ms { 3 } else { 2 };
                continue;
            }
            out.extend(&chars[start..j]);
            i = j;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

fn text_at(chars: &[char], i: usize, pat: &str) -> bool {
    (i..)
        .zip(pat.chars())
        .all(|(k, p)| chars.get(k) == Some(&p))
}

/// Response headers whose values are noise for a report (dates) are left out of normalized reports.
const UNSTABLE_HEADERS: &[&str] = &["date", "age", "expires", "last-modified", "etag"];

/// Response headers that are worth showing but whose values change run to run (a cache's transaction
/// ids, a proxy's own port, Envoy's milliseconds to the upstream's head): shown as `<varies>` in normalized
/// reports.
const VARYING_HEADERS: &[&str] = &[
    "x-varnish",
    "x-cache-lookup",
    "x-envoy-upstream-service-time",
];

fn end_label(end: &End) -> String {
    match end {
        End::Complete => "complete".into(),
        End::Aborted { .. } => "aborted".into(),
        End::Limit { limit } => format!("limit ({limit:?})").to_lowercase(),
        End::Undecodable { .. } => "undecodable".into(),
    }
}

/// Bytes of each event's data a report shows.
pub const DATA_SHOWN: usize = crate::probe::DATA_KEPT;

pub(crate) fn basis_label(b: Basis) -> &'static str {
    match b {
        Basis::SendInstants => "judged against the origin's send instants",
        Basis::Tap => "judged against the origin's send instants, stamped by a tap in front of it",
        Basis::Baseline => "judged against the baseline recording",
        Basis::Inferred => "inferred from the arrival pattern (no send instants, no baseline)",
    }
}

/// The normalized, snapshot-stable report of one outcome.
pub fn normalized(o: &Outcome) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "case: {}", o.name);
    let _ = writeln!(head, "description: |");
    for line in textwrap(&o.description, 100) {
        let _ = writeln!(head, "  {line}");
    }
    // The description is the case author's text: it is not measured, so it is not normalized.
    let mut s = String::new();
    origin_block(&mut s, o);
    response_block(&mut s, &o.recording);
    events_block(&mut s, &o.verdict);
    for phase in o.phases.iter() {
        phase.snapshot(&mut s);
    }
    findings_block(&mut s, &o.verdict);
    if let Some(e) = &o.expectation {
        if e.failures.is_empty() {
            let _ = writeln!(s, "expectation: met");
        } else {
            let _ = writeln!(s, "expectation: NOT met");
            for f in &e.failures {
                let _ = writeln!(s, "  - {f}");
            }
        }
    }
    head + &normalize(&s)
}

/// The origin, the chain and its programs.
fn origin_block(s: &mut String, o: &Outcome) {
    let _ = writeln!(
        s,
        "origin: fixture `{}`{}",
        o.profile,
        if o.profile_changed {
            format!(
                " (changed by the case's overrides: {})",
                o.profile_changes.join(", ")
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(s, "chain: origin → {} → client", o.chain);
    if !o.programs.is_empty() {
        let _ = writeln!(s, "programs: {}", o.programs.join(", "));
    }
    if let Some(saw) = &o.origin_saw {
        let _ = writeln!(s, "origin received: {saw}");
    }
}

/// The response's status, framing, coding, end and stable headers.
fn response_block(s: &mut String, r: &Recording) {
    let _ = writeln!(s, "response:");
    let _ = writeln!(s, "  status: {} {}", r.status, protocol(r));
    let _ = writeln!(s, "  framing: {}", r.framing.as_str());
    let _ = writeln!(s, "  coding: {}", r.coding);
    let _ = writeln!(s, "  end: {}", end_label(&r.end));
    let _ = writeln!(s, "  headers:");
    let mut headers: Vec<&(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| !UNSTABLE_HEADERS.contains(&k.as_str()))
        .collect();
    headers.sort();
    for (k, v) in headers {
        let v = if VARYING_HEADERS.contains(&k.as_str()) {
            "<varies>"
        } else {
            v.as_str()
        };
        let _ = writeln!(s, "    {k}: {v}");
    }
}

/// Whether the headers and each event were on time, and the delivery.
fn events_block(s: &mut String, v: &Verdict) {
    let headers_state = match v.header_latency {
        Some(l) if l > v.threshold => "late",
        Some(_) => "on time",
        None => "not judged",
    };
    let _ = writeln!(s, "headers: {headers_state}");
    let expected = v
        .expected_events
        .map(|x| format!(" of {x}"))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "events: {}{expected} received, {}",
        v.events.len(),
        basis_label(v.basis)
    );
    for e in &v.events {
        let state = if v.basis == Basis::Inferred {
            "arrived".to_string()
        } else if e.held {
            format!("held (burst {})", e.burst + 1)
        } else {
            "on time".to_string()
        };
        let _ = writeln!(s, "  {:>3}  {state}", e.seq);
    }
    let _ = writeln!(s, "delivery: {}", v.delivery);
}

/// The findings, one line each.
fn findings_block(s: &mut String, v: &Verdict) {
    let _ = writeln!(s, "findings:");
    if v.findings.is_empty() {
        let _ = writeln!(s, "  none");
    }
    for f in &v.findings {
        let line = finding_line(f);
        // As in the load block: the count per failure reason is left out.
        let line = match (
            f.id() == FindingId::StreamsRefused,
            line.find(" failed before their headers ("),
        ) {
            (true, Some(at)) => {
                let open = at + " failed before their headers ".len();
                match line[open..].find(')') {
                    Some(close) => format!("{}{}", &line[..open - 1], &line[open + close + 1..]),
                    None => line,
                }
            }
            _ => line,
        };
        let _ = writeln!(s, "{line}");
    }
}

/// `  severity id: evidence`, the one-line form every text report uses.
pub fn finding_line(f: &crate::verdict::Finding) -> String {
    format!("  {:<7} {}: {}", f.severity().as_str(), f.id(), f.evidence)
}

fn textwrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.lines() {
        let mut cur = String::new();
        for w in para.split_whitespace() {
            if !cur.is_empty() && cur.len() + 1 + w.len() > width {
                lines.push(std::mem::take(&mut cur));
            }
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(w);
        }
        lines.push(cur);
    }
    lines
}

/// The HTTP version, and over TLS the TLS version and what ALPN chose (`HTTP/2.0 over TLSv1.2, ALPN h2`).
pub fn protocol(r: &Recording) -> String {
    match &r.tls {
        Some(t) => format!("{} over {}, ALPN {}", r.version, t.version, t.alpn),
        None => r.version.clone(),
    }
}

/// `probe`'s human output.
pub fn probe_human(
    r: &Recording,
    v: &Verdict,
    browser: Option<&crate::verdict::browser::BrowserVerdict>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} {}", r.method, r.url);
    if r.status == 0 {
        let _ = writeln!(
            s,
            "no response headers within {}",
            human_duration(r.ended_at)
        );
    } else {
        let _ = writeln!(
            s,
            "{} {} — headers after {}",
            protocol(r),
            r.status,
            human_duration(r.headers_at)
        );
    }
    for (k, val) in &r.headers {
        let _ = writeln!(s, "  {k}: {val}");
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "  {:>4}  {:>10}  {:>10}  {:>5}  id",
        "#", "arrival", "latency", "burst"
    );
    for (e, a) in v.events.iter().zip(&r.events) {
        let lat = e.latency.map(human_duration).unwrap_or_else(|| "-".into());
        let mark = if e.held { "  held" } else { "" };
        let _ = writeln!(
            s,
            "  {:>4}  {:>10}  {:>10}  {:>5}  {}{mark}",
            e.seq,
            human_duration(e.arrival),
            lat,
            e.burst + 1,
            a.event.id
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{} events, {} reads, {} bytes on the wire ({}), ended {} at {}",
        r.events.len(),
        r.reads.len(),
        r.wire_bytes,
        r.coding,
        end_label(&r.end),
        human_duration(r.ended_at)
    );
    let _ = writeln!(s, "delivery: {} ({})", v.delivery, basis_label(v.basis));
    if let Some(b) = browser {
        crate::phase::browser::human(&mut s, b);
    }
    if v.findings.is_empty() {
        let _ = writeln!(s, "findings: none");
    } else {
        let _ = writeln!(s, "findings:");
    }
    for f in &v.findings {
        let _ = writeln!(s, "{}", finding_line(f));
        let _ = writeln!(s, "          why: {}", f.rule.why);
        let _ = writeln!(s, "          fix: {}", f.rule.fix);
        if let Some(op) = f.rule.operator_fix {
            let _ = writeln!(s, "          operator: {op}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_redacts_what_varies() {
        let t = "at 12 ms and 1.25 s via 127.0.0.1:45678 (Server: nginx/1.22.1) in /tmp/ssegate-nginx-abc/error.log; 4096 bytes, 3 sets";
        assert_eq!(
            normalize(t),
            "at <duration> and <duration> via 127.0.0.1:<port> (Server: nginx/<version>) in <tmp>; 4096 bytes, 3 sets"
        );
    }

    #[test]
    fn wraps_long_descriptions() {
        let l = textwrap("aaa bbb ccc", 7);
        assert_eq!(l, vec!["aaa bbb", "ccc"]);
    }
}
