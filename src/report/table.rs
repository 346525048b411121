//! The behaviour table: for each real program's config, what the suite measured it doing to an event
//! stream (does it buffer, compress, honour `Cache-Control: no-transform` or `X-Accel-Buffering: no`,
//! hold the headers). It is built from the suite's own results, never typed by hand: `ssegate run
//! --table` builds it from the outcomes of the run, and a test builds it from the committed snapshots
//! (which the conformance suite proves equal to what runs) and checks the README's copy.
//!
//! A row comes from the single-hop cases of one config with the `plain` and the `hardened` origin
//! (`short-idle` test configs are left out). A question the cases cannot answer is `?`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::intermediary::programs::PROGRAMS;
use crate::runner::Outcome;

/// What one case saw through one hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The hop as labelled in reports (`caddy encode`).
    pub hop: String,
    /// The fixture profile (`plain`, `hardened`).
    pub profile: String,
    /// The case changed the profile (larger events, padding, …): used only when no case of the same
    /// hop and profile left it as it is.
    pub changed: bool,
    /// The delivery class (`streamed`, `held-until-end`, …).
    pub delivery: String,
    /// Finding ids.
    pub findings: Vec<String>,
}

impl Observation {
    /// From a run's outcome: a chain of one real program's hop, else None.
    pub fn from_outcome(o: &Outcome) -> Option<Observation> {
        Observation::new(
            &o.chain,
            &o.profile,
            o.profile_changed,
            o.verdict.delivery.as_str(),
            o.verdict
                .findings
                .iter()
                .map(|f| f.id().as_str().to_string())
                .collect(),
        )
    }

    /// From a normalized report (a snapshot in `reports/`), else None.
    pub fn from_report(text: &str) -> Option<Observation> {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
        };
        let chain = field("chain: ")?
            .strip_prefix("origin → ")?
            .strip_suffix(" → client")?;
        let origin = field("origin: fixture ")?;
        let changed = origin.ends_with("(changed by the case's overrides)");
        let profile = origin.split('`').nth(1)?;
        let delivery = field("delivery: ")?;
        let mut findings = Vec::new();
        let mut lines = text.lines().skip_while(|l| *l != "findings:").skip(1);
        for l in lines.by_ref() {
            let Some(rest) = l.strip_prefix("  ") else {
                break;
            };
            // `  none`, or `  <severity> <id>: <evidence>`.
            if let Some(id) = rest.split_whitespace().nth(1) {
                findings.push(id.trim_end_matches(':').to_string());
            }
        }
        Observation::new(chain, profile, changed, delivery, findings)
    }

    fn new(
        chain: &str,
        profile: &str,
        changed: bool,
        delivery: &str,
        findings: Vec<String>,
    ) -> Option<Observation> {
        // One hop (no arrow inside), of a real program, not a test config.
        let (program, config) = chain.split_once(' ')?;
        let real = PROGRAMS.iter().any(|p| p.name == program);
        (real && !chain.contains('→') && config != "short-idle").then(|| Observation {
            hop: chain.to_string(),
            profile: profile.to_string(),
            changed,
            delivery: delivery.to_string(),
            findings,
        })
    }

    fn has(&self, id: &str) -> bool {
        self.findings.iter().any(|f| f == id)
    }

    fn compresses(&self) -> bool {
        self.has("content-encoding-on-stream")
    }

    fn holds_events(&self) -> bool {
        matches!(self.delivery.as_str(), "held-until-end" | "batched")
    }

    fn holds_headers(&self) -> bool {
        self.delivery == "first-byte-delayed"
            || self.has("first-byte-delayed")
            || self.has("headers-with-first-event")
    }
}

/// The Markdown table of every hop observed, in the program table's order.
pub fn behaviour_table(observations: &[Observation]) -> String {
    let mut by_hop: BTreeMap<&str, (Option<&Observation>, Option<&Observation>)> = BTreeMap::new();
    for o in observations {
        let e = by_hop.entry(o.hop.as_str()).or_default();
        let slot = match o.profile.as_str() {
            "plain" => &mut e.0,
            "hardened" => &mut e.1,
            _ => continue,
        };
        // The profile as it is wins over one a case changed.
        if slot.is_none_or(|had| had.changed && !o.changed) {
            *slot = Some(o);
        }
    }
    let order = |hop: &str| {
        let program = hop.split(' ').next().unwrap_or_default();
        PROGRAMS
            .iter()
            .position(|p| p.name == program)
            .unwrap_or(usize::MAX)
    };
    let mut hops: Vec<&str> = by_hop.keys().copied().collect();
    hops.sort_by_key(|h| (order(h), *h));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| hop | buffers events | compresses | honours `no-transform` | honours `X-Accel-Buffering: no` | holds the headers |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for hop in hops {
        let (plain, hardened) = by_hop[hop];
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let q = "?".to_string();
        let buffers = plain.map_or(q.clone(), |p| {
            if p.holds_events() {
                format!("yes ({})", p.delivery)
            } else {
                "no".into()
            }
        });
        let compresses = plain.map_or(q.clone(), |p| yes_no(p.compresses()).into());
        // Compression stopped by the hardened origin's `no-transform`.
        let no_transform = match (plain, hardened) {
            (Some(p), Some(h)) if p.compresses() => yes_no(!h.compresses()).into(),
            (Some(_), _) => "–".into(),
            _ => q.clone(),
        };
        // Buffering (not by compression) released by the hardened origin's `X-Accel-Buffering: no`.
        let x_accel = match (plain, hardened) {
            (Some(p), Some(h)) if p.holds_events() && !p.compresses() => {
                yes_no(!h.holds_events()).into()
            }
            (Some(p), _) if !p.holds_events() || p.compresses() => "–".into(),
            _ => q.clone(),
        };
        let headers = plain.map_or(q, |p| yes_no(p.holds_headers()).into());
        let _ = writeln!(
            s,
            "| `{hop}` | {buffers} | {compresses} | {no_transform} | {x_accel} | {headers} |"
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(hop: &str, profile: &str, delivery: &str, findings: &[&str]) -> Observation {
        Observation::new(
            hop,
            profile,
            false,
            delivery,
            findings.iter().map(|f| f.to_string()).collect(),
        )
        .unwrap()
    }

    #[test]
    fn a_row_says_what_the_plain_and_hardened_cases_measured() {
        let t = behaviour_table(&[
            obs(
                "haproxy compression",
                "plain",
                "batched",
                &["events-held", "content-encoding-on-stream"],
            ),
            obs(
                "haproxy compression",
                "hardened",
                "batched",
                &["events-held"],
            ),
            obs(
                "nginx default",
                "plain",
                "held-until-end",
                &["held-until-end"],
            ),
            obs("nginx default", "hardened", "streamed", &[]),
            obs(
                "h2o default",
                "plain",
                "first-byte-delayed",
                &["first-byte-delayed"],
            ),
        ]);
        let rows: Vec<&str> = t.lines().skip(2).collect();
        assert_eq!(
            rows,
            [
                "| `nginx default` | yes (held-until-end) | no | – | yes | no |",
                "| `haproxy compression` | yes (batched) | yes | yes | – | no |",
                "| `h2o default` | no | no | – | – | yes |",
            ]
        );
    }

    #[test]
    fn only_single_real_hops_make_rows() {
        let new = |chain, delivery| Observation::new(chain, "plain", false, delivery, vec![]);
        assert!(new("compression", "streamed").is_none());
        assert!(new("nginx short-idle", "cut").is_none());
        assert!(new("compression → nginx default", "streamed").is_none());
    }

    #[test]
    fn a_case_that_changed_the_profile_yields_to_one_that_did_not() {
        let mut changed = obs("nginx default", "plain", "batched", &["events-held"]);
        changed.changed = true;
        let t = behaviour_table(&[
            changed.clone(),
            obs(
                "nginx default",
                "plain",
                "held-until-end",
                &["held-until-end"],
            ),
        ]);
        assert!(
            t.contains("| `nginx default` | yes (held-until-end) |"),
            "{t}"
        );
        assert!(behaviour_table(&[changed]).contains("| `nginx default` | yes (batched) |"));
    }

    #[test]
    fn reads_a_normalized_report() {
        let text = "case: x\norigin: fixture `plain` (changed by the case's overrides)\n\
                    chain: origin → lighttpd default → client\n\
                    delivery: held-until-end\nfindings:\n  error   held-until-end: all\n  \
                    warning content-length-on-stream: Content-Length: 10\nexpectation: met\n";
        let o = Observation::from_report(text).unwrap();
        assert_eq!(o.hop, "lighttpd default");
        assert_eq!(o.profile, "plain");
        assert!(o.changed);
        assert_eq!(o.delivery, "held-until-end");
        assert_eq!(o.findings, ["held-until-end", "content-length-on-stream"]);
        let none = "origin: fixture `hardened`\nchain: origin → nginx default → client\n\
                    delivery: streamed\nfindings:\n  none\nexpectation: met\n";
        let o = Observation::from_report(none).unwrap();
        assert!(o.findings.is_empty() && !o.changed);
    }
}
