//! The report of a load run (`ssegate load`): human text and one JSON document.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::load::{LoadSummary, Percentiles};
use crate::phase::load::LoadMeasured;

fn ms(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        crate::text::human_duration(d)
    }
}

fn line(label: &str, p: Option<&Percentiles>, what: &str) -> String {
    match p {
        None => format!("{label:<20} none\n"),
        Some(p) => format!(
            "{label:<20} p50 {:>9}  p90 {:>9}  p99 {:>9}  max {:>9}  ({} {what})\n",
            ms(p.p50),
            ms(p.p90),
            ms(p.p99),
            ms(p.max),
            p.count
        ),
    }
}

/// The human report.
pub fn human(url: &str, chain: &str, l: &LoadMeasured) -> String {
    let (s, examples) = (&l.summary, &l.failure_examples);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "load: {} streams to {url} ({chain}), opened over {}",
        s.streams,
        ms(s.ramp)
    );
    let _ = writeln!(o, "{:<20} {} of {}", "connected", s.connected, s.streams);
    let failed = s.failed_total();
    if failed == 0 {
        let _ = writeln!(o, "{:<20} 0", "failed");
    } else {
        let _ = writeln!(o, "{:<20} {failed}: {}", "failed", s.failed_label());
        for (f, m) in examples {
            let _ = writeln!(o, "{:<20}   {f}: {m}", "");
        }
        if !s.statuses.is_empty() {
            let codes: Vec<String> = s
                .statuses
                .iter()
                .map(|(c, n)| format!("{c} ×{n}"))
                .collect();
            let _ = writeln!(o, "{:<20}   statuses: {}", "", codes.join(", "));
        }
    }
    let _ = writeln!(
        o,
        "{:<20} {} (connected, then the body was cut)",
        "cut", s.cut
    );
    let _ = writeln!(
        o,
        "{:<20} {} (still open when they stopped listening)",
        "still open", s.listening
    );
    let _ = writeln!(o, "{:<20} {}", "events", s.events);
    o.push_str(&line(
        "time to headers",
        s.time_to_headers.as_ref(),
        "streams",
    ));
    o.push_str(&line(
        "time to 1st event",
        s.time_to_first_event.as_ref(),
        "streams",
    ));
    o.push_str(&line("event latency", s.latency.as_ref(), "events"));
    let _ = writeln!(o, "{:<20} {}", "", s.latency_basis);
    if s.unmatched > 0 {
        let _ = writeln!(
            o,
            "{:<20} {} events had nothing to be measured against (no id, or no send record)",
            "", s.unmatched
        );
    }
    let fd = &s.fd_limit;
    let _ = writeln!(
        o,
        "{:<20} {} → {} (hard {}, needed {})",
        "descriptor limit", fd.before, fd.now, fd.hard, fd.needed
    );
    let _ = writeln!(o, "{:<20} {}", "wall", ms(s.wall));
    o
}

#[derive(Serialize)]
struct Doc<'a> {
    url: &'a str,
    chain: &'a str,
    #[serde(flatten)]
    summary: &'a LoadSummary,
    /// The first message of each failure reason.
    failure_examples: BTreeMap<&'static str, &'a str>,
}

/// One JSON document.
pub fn json(url: &str, chain: &str, l: &LoadMeasured) -> String {
    let (s, examples) = (&l.summary, &l.failure_examples);
    super::json::pretty(&Doc {
        url,
        chain,
        summary: s,
        failure_examples: examples.iter().map(|(f, m)| (*f, m.as_str())).collect(),
    })
}
