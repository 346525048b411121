//! The normalized report of one case's outcome: what `reports/*.snap` holds and what `run` writes to
//! `cases/<case>.txt`. It buckets every timing relative to the schedule (on time / held), and redacts by
//! field ([`crate::normalize`]): a finding's durations by its typed evidence, program versions, header
//! values and error messages for what they hold, so a report is identical run after run on a loaded
//! machine.

use std::fmt::Write as _;

use super::{basis_label, end_label, protocol};
use crate::probe::Recording;
use crate::runner::Outcome;
use crate::verdict::{Basis, Verdict};

/// Response headers whose values are noise for a report (dates) are left out of normalized reports.
/// (`llm_provider-date` is the origin's `Date` as LiteLLM passes it on.)
const UNSTABLE_HEADERS: &[&str] = &[
    "date",
    "age",
    "expires",
    "last-modified",
    "etag",
    "llm_provider-date",
];

/// Response headers that are worth showing but whose values change run to run (a cache's transaction
/// ids, a proxy's own port, Envoy's milliseconds to the upstream's head, LiteLLM's call ids and timings):
/// shown as `<varies>` in normalized reports.
const VARYING_HEADERS: &[&str] = &[
    "x-varnish",
    "x-cache-lookup",
    "x-envoy-upstream-service-time",
    "x-litellm-call-id",
    "x-litellm-model-id",
    "x-litellm-overhead-duration-ms",
    "x-litellm-response-duration-ms",
    "x-litellm-callback-duration-ms",
];

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
                let _ = writeln!(s, "  - {}", crate::normalize::message(f));
            }
        }
    }
    head + &s
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
        let programs: Vec<String> = o
            .programs
            .iter()
            .map(|p| crate::normalize::program(p))
            .collect();
        let _ = writeln!(s, "programs: {}", programs.join(", "));
    }
    if let Some(saw) = &o.origin_saw {
        let _ = writeln!(s, "origin received: {saw}");
    }
    if let Some(m) = &o.mcp {
        // Statuses and what answered, not times (they vary).
        let _ = writeln!(s, "mcp: {}", m.summary());
        for l in m.step_lines() {
            let _ = writeln!(s, "  {l}");
        }
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
            "<varies>".to_string()
        } else {
            crate::normalize::header_value(v)
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
    if let Some(t) = &v.tokens {
        // A token stream's tens of deltas: which were held depends on where a hop's flushes fell, so
        // the snapshot says whether none, some or all were, and what the stream was.
        let held = v.events.iter().filter(|e| e.held).count();
        let state = if v.basis == Basis::Inferred {
            "not judged one by one"
        } else if held == 0 {
            "all on time"
        } else if held == v.events.len() {
            "all held"
        } else {
            "some held"
        };
        let _ = writeln!(s, "  {state}");
        let _ = writeln!(
            s,
            "protocol: {} (from {})",
            v.protocol.protocol, v.protocol.from
        );
        let _ = writeln!(
            s,
            "tokens: {} content deltas · {}",
            t.deltas,
            match t.terminal_seen {
                Some(true) => format!("ended with {}", t.terminal),
                Some(false) => format!("no {}", t.terminal),
                None => "end not kept".into(),
            }
        );
        let _ = writeln!(s, "delivery: {}", v.delivery);
        return;
    }
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
        let _ = writeln!(
            s,
            "  {:<7} {}: {}",
            f.severity().as_str(),
            f.id(),
            f.evidence.normalized()
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_long_descriptions() {
        let l = textwrap("aaa bbb ccc", 7);
        assert_eq!(l, vec!["aaa bbb", "ccc"]);
    }
}
