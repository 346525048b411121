//! HTML: `check`'s and `run`'s self-contained reports, with the timeline SVG they share.

use std::fmt::Write as _;
use std::time::Duration;

use super::human::{fix_line, status_str};
use super::run::{CaseResult, RunReport};
use super::snapshot::normalized;
use crate::check::{ChainOutcome, CheckReport};
use crate::text::human_duration;

/// The details cell of the HTML table: every reason on its own line (they already name the fix), or the
/// measured fixability when there is no reason.
fn details_html(c: &ChainOutcome) -> String {
    if c.reasons.is_empty() {
        esc(&fix_line(&c.fix))
    } else {
        c.reasons
            .iter()
            .map(|r| esc(r))
            .collect::<Vec<_>>()
            .join("<br>")
    }
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The timeline picture: one lane per chain; for every event a line from its reference instant (the
/// baseline's arrival) on the lane's top edge to its arrival on the bottom edge. Held events are red.
pub fn timeline_svg(r: &CheckReport) -> String {
    let lanes: Vec<Lane<'_>> = r
        .all()
        .map(|c| Lane {
            name: &c.name,
            verdict: &c.verdict,
            recording: &c.recording,
        })
        .collect();
    lanes_svg(&lanes)
}

/// One lane of a timeline picture.
pub struct Lane<'a> {
    pub name: &'a str,
    pub verdict: &'a crate::verdict::Verdict,
    pub recording: &'a crate::probe::Recording,
}

/// A timeline picture of any lanes: `check`'s chains, `run`'s cases.
pub fn lanes_svg(lanes: &[Lane<'_>]) -> String {
    let max_ms = lanes
        .iter()
        .map(|c| c.recording.ended_at)
        .max()
        .unwrap_or(Duration::from_secs(1))
        .as_secs_f64()
        * 1000.0;
    let (left, width, lane_h) = (170.0, 760.0, 46.0);
    let x = |d: Duration| left + d.as_secs_f64() * 1000.0 / max_ms.max(1.0) * width;
    let h = 30.0 + lane_h * lanes.len() as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#,
        w = left + width + 20.0
    );
    let _ = write!(
        s,
        r##"<text x="{left}" y="14" fill="#555">0</text><text x="{}" y="14" text-anchor="end" fill="#555">{}</text>"##,
        left + width,
        human_duration(Duration::from_secs_f64(max_ms / 1000.0))
    );
    for (i, c) in lanes.iter().enumerate() {
        let top = 24.0 + lane_h * i as f64;
        let bottom = top + lane_h - 14.0;
        // A token stream's lane says its TTFT under the delivery; its deltas get a mark each, every
        // other event (a role chunk, `[DONE]`) a square.
        let tokens = c.verdict.tokens.as_ref();
        let label = match tokens.and_then(|t| t.ttft) {
            Some(ttft) => format!("{} · TTFT {}", c.verdict.delivery, human_duration(ttft)),
            None => c.verdict.delivery.as_str().to_string(),
        };
        let _ = write!(
            s,
            r##"<text x="4" y="{}" fill="#222">{}</text><text x="4" y="{}" fill="#777" font-size="10">{}</text><line x1="{left}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#ccc"/>"##,
            top + 14.0,
            esc(c.name),
            top + 28.0,
            esc(&label),
            left + width
        );
        let kinds = match tokens {
            Some(_) => crate::verdict::tokens::kinds(c.recording, c.verdict.protocol.protocol),
            None => Vec::new(),
        };
        let delta = |i: usize| kinds.get(i) == Some(&crate::verdict::tokens::Kind::Delta);
        let mut token = 0;
        for (i, e) in c.verdict.events.iter().enumerate() {
            let from = e.expected.unwrap_or(e.arrival);
            let color = if e.held { "#d33" } else { "#2a7" };
            let (cx, at) = (x(e.arrival), esc(&human_duration(e.arrival)));
            let _ = write!(
                s,
                r#"<line x1="{:.1}" y1="{top}" x2="{cx:.1}" y2="{bottom}" stroke="{color}" stroke-width="1.2"/>"#,
                x(from),
            );
            let _ = match (tokens.is_some(), delta(i)) {
                (true, true) => {
                    token += 1;
                    write!(
                        s,
                        r#"<circle cx="{cx:.1}" cy="{bottom}" r="2" fill="{color}"><title>token {token} arrived {at}</title></circle>"#
                    )
                }
                (true, false) => write!(
                    s,
                    r#"<rect x="{:.1}" y="{:.1}" width="6" height="6" fill="{color}"><title>event {} (not a token) arrived {at}</title></rect>"#,
                    cx - 3.0,
                    bottom - 3.0,
                    e.seq
                ),
                (false, _) => write!(
                    s,
                    r#"<circle cx="{cx:.1}" cy="{bottom}" r="3" fill="{color}"><title>event {} arrived {at}</title></circle>"#,
                    e.seq
                ),
            };
        }
    }
    s.push_str("</svg>");
    s
}

/// A self-contained HTML report (no external resources).
pub fn check_html(r: &CheckReport) -> String {
    let mut rows = String::new();
    for c in r.all() {
        let _ = write!(
            rows,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            status_str(c.status),
            esc(&c.name),
            esc(&c.chain),
            c.verdict.delivery,
            c.expected,
            status_str(c.status),
            c.verdict
                .tokens
                .as_ref()
                .map_or_else(|| "–".to_string(), |t| esc(&t.human())),
            details_html(c)
        );
    }
    for n in &r.not_run {
        let _ = write!(
            rows,
            "<tr class=\"skip\"><td>{}</td><td>{}</td><td>–</td><td>–</td><td>not run</td><td>–</td><td>{}</td></tr>",
            esc(&n.name),
            esc(&n.chain),
            esc(&n.reason)
        );
    }
    let mut findings = String::new();
    for f in &r.baseline.verdict.findings {
        let _ = write!(
            findings,
            "<li><b>{}</b> <code>{}</code>: {}<br><small>fix: {}</small></li>",
            f.severity().as_str(),
            f.id(),
            esc(&f.evidence.to_string()),
            esc(f.rule.fix)
        );
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ssegate check: {verdict}</title>
<style>
body{{font-family:sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}}
tr.fail td{{background:#fde8e8}} tr.warn td{{background:#fff6dd}} tr.pass td{{background:#eef9f1}} tr.skip td{{background:#eee;color:#666}}
</style></head><body>
<h1>ssegate check: {verdict}</h1>
<p>Target: <code>{target}</code>. Took {took}.</p>
<h2>Timeline</h2>
<p>Each line runs from when the event arrived directly (top) to when it arrived through the chain (bottom); red = held. In a token stream each dot is a token, each square another event.</p>
{svg}
<h2>Chains</h2>
<table><tr><th>chain</th><th>hops</th><th>delivery</th><th>expected</th><th>result</th><th>tokens</th><th>details</th></tr>{rows}</table>
<h2>Findings on the direct stream</h2><ul>{findings}</ul>
</body></html>
"#,
        verdict = if r.passed {
            "passed"
        } else if r.inconclusive() {
            "inconclusive (the machine was too busy to tell)"
        } else {
            "failed"
        },
        target = esc(&r.target),
        took = human_duration(r.took),
        svg = timeline_svg(r),
    )
}

/// A self-contained HTML report: the table, a timeline of every case, each case's normalized report.
pub fn run_html(r: &RunReport) -> String {
    let mut rows = String::new();
    for row in &r.cases {
        let _ = write!(
            rows,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            match row.result {
                CaseResult::Pass => "pass",
                CaseResult::Skip | CaseResult::Inconclusive => "skip",
                CaseResult::Fail | CaseResult::Error => "fail",
            },
            esc(&row.case),
            esc(&row.chain),
            esc(&row.delivery),
            esc(&row.result.to_string()),
            esc(&row.failures.join("; ")),
        );
    }
    let lanes: Vec<Lane<'_>> = r
        .outcomes
        .iter()
        .map(|o| Lane {
            name: &o.name,
            verdict: &o.verdict,
            recording: &o.recording,
        })
        .collect();
    let mut details = String::new();
    for o in &r.outcomes {
        let _ = write!(
            details,
            "<details><summary>{}</summary><pre>{}</pre></details>",
            esc(&o.name),
            esc(&normalized(o))
        );
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ssegate run: {passed} of {total}</title>
<style>
body{{font-family:sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}}
tr.fail td{{background:#fde8e8}} tr.pass td{{background:#eef9f1}}
</style></head><body>
<h1>ssegate run: {passed} of {total} cases met their expectation</h1>
<p>Wall time {wall}.</p>
<h2>Timeline</h2>
<p>Each line runs from when the origin sent the event (top) to when it arrived through the chain (bottom); red = held.</p>
{svg}
<h2>Cases</h2>
<table><tr><th>case</th><th>chain</th><th>delivery</th><th>result</th><th>failures</th></tr>{rows}</table>
<h2>Reports</h2>{details}
</body></html>
"#,
        passed = r.passed(),
        total = r.cases.len(),
        wall = human_duration(r.wall),
        svg = lanes_svg(&lanes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_streams_lane_marks_each_token_and_its_other_events_apart() {
        let ms = Duration::from_millis;
        let chunk = |delta: &str| format!(r#"{{"choices":[{{"index":0,"delta":{delta}}}]}}"#);
        let mut rec = crate::probe::testing::with_events(vec![
            (
                "message".into(),
                chunk(r#"{"role":"assistant","content":""}"#),
                ms(10),
                0,
            ),
            ("message".into(), chunk(r#"{"content":"Hi"}"#), ms(600), 1),
            (
                "message".into(),
                chunk(r#"{"content":" there"}"#),
                ms(630),
                2,
            ),
            ("message".into(), "[DONE]".into(), ms(660), 3),
        ]);
        rec.protocol = crate::protocol::Protocol::OpenaiChat;
        let v = crate::verdict::judge(&rec, crate::verdict::Reference::None);
        let svg = lanes_svg(&[Lane {
            name: "direct",
            verdict: &v,
            recording: &rec,
        }]);
        assert_eq!(svg.matches("<title>token ").count(), 2, "{svg}");
        assert!(
            svg.contains("<title>token 2 arrived 630 ms</title>"),
            "{svg}"
        );
        assert_eq!(svg.matches("(not a token)").count(), 2, "{svg}");
        assert!(svg.contains("TTFT 600 ms"), "{svg}");
    }
}
