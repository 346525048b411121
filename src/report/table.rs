//! The behaviour table: for each real program's config, what the suite measured it doing to an event
//! stream (does it buffer, compress, honour `Cache-Control: no-transform` or `X-Accel-Buffering: no`,
//! hold the headers). It is built from the suite's own results, never typed by hand: `ssegate run
//! --table` builds it from the outcomes of the run, and a test builds it from the committed snapshots
//! (which the conformance suite proves equal to what runs) and checks the README's copy.
//!
//! A row comes from the single-hop cases of one config with the `plain` and the `hardened` origin, the
//! `cacheable` one's second clients and the `session-headers` one's header integrity (`short-idle` test
//! configs are left out). A question the cases cannot answer is `?`.

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
    /// The override keys the case changed (`events`, `headers`, …; empty: the profile as it is). A
    /// changed profile is used only when no case of the same hop and profile left it as it is.
    pub changes: Vec<String>,
    /// The delivery class (`streamed`, `held-until-end`, …).
    pub delivery: String,
    /// Finding ids.
    pub findings: Vec<String>,
    /// What a second client got (`separate`, `joined`, `replayed`), when the case had one.
    pub sharing: Option<String>,
}

impl Observation {
    /// From a run's outcome: a chain of one real program's hop, else None.
    pub fn from_outcome(o: &Outcome) -> Option<Observation> {
        Observation::new(
            &o.chain,
            &o.profile,
            o.profile_changes.iter().map(|c| c.to_string()).collect(),
            o.verdict.delivery.as_str(),
            o.verdict
                .findings
                .iter()
                .map(|f| f.id().as_str().to_string())
                .collect(),
            o.phases
                .get::<crate::phase::sharing::SharingPhase>()
                .map(|s| s.measured.sharing.as_str().to_string()),
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
        let changes: Vec<String> = origin
            .split_once("(changed by the case's overrides: ")
            .map(|(_, keys)| {
                keys.trim_end_matches(')')
                    .split(", ")
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
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
        // `  sharing: …` in the `second client:` block.
        let sharing = text
            .lines()
            .skip_while(|l| !l.starts_with("second client: "))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .find_map(|l| l.strip_prefix("  sharing: "))
            .map(|v| v.trim().to_string());
        Observation::new(chain, profile, changes, delivery, findings, sharing)
    }

    fn new(
        chain: &str,
        profile: &str,
        changes: Vec<String>,
        delivery: &str,
        findings: Vec<String>,
        sharing: Option<String>,
    ) -> Option<Observation> {
        // One hop (no arrow inside), of a real program, not a test config.
        let (program, config) = chain.split_once(' ')?;
        let real = PROGRAMS.iter().any(|p| p.name == program);
        (real && !chain.contains('→') && config != "short-idle").then(|| Observation {
            hop: chain.to_string(),
            profile: profile.to_string(),
            changes,
            delivery: delivery.to_string(),
            findings,
            sharing,
        })
    }

    /// The case changed the profile.
    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
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
    // What second clients got from a hop with the `cacheable` origin as it is (no `Cache-Control`).
    let mut shares: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    // What became of the session headers (`session-headers` origin) through a hop.
    let mut sessions: BTreeMap<&str, &Observation> = BTreeMap::new();
    for o in observations {
        if o.profile == "session-headers" && !o.changed() {
            sessions.insert(o.hop.as_str(), o);
        }
        // Another schedule is still the same question; other headers or another status are not.
        if let Some(sh) = &o.sharing
            && o.profile == "cacheable"
            && !o
                .changes
                .iter()
                .any(|c| matches!(c.as_str(), "headers" | "remove_headers" | "status"))
        {
            let v = shares.entry(o.hop.as_str()).or_default();
            if !v.contains(&sh.as_str()) {
                v.push(sh);
            }
        }
        let e = by_hop.entry(o.hop.as_str()).or_default();
        let slot = match o.profile.as_str() {
            "plain" => &mut e.0,
            "hardened" => &mut e.1,
            _ => continue,
        };
        // The profile as it is wins over one a case changed.
        if slot.is_none_or(|had| had.changed() && !o.changed()) {
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
        "| hop | buffers events | compresses | honours `no-transform` | honours `X-Accel-Buffering: no` | holds the headers | shares a stream without `Cache-Control` | keeps session headers |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for hop in hops {
        let (plain, hardened) = by_hop[hop];
        // A hop measured only with other streams (an LLM gateway's token streams) has no row of `?`s.
        if plain.is_none()
            && hardened.is_none()
            && !shares.contains_key(hop)
            && !sessions.contains_key(hop)
        {
            continue;
        }
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
        let headers = plain.map_or(q.clone(), |p| yes_no(p.holds_headers()).into());
        let sharing = match shares.get(hop) {
            None => q.clone(),
            Some(seen) => {
                let mut shared: Vec<&str> =
                    seen.iter().copied().filter(|s| *s != "separate").collect();
                shared.sort();
                if shared.is_empty() {
                    "no".into()
                } else {
                    format!("yes ({})", shared.join(", "))
                }
            }
        };
        let session = sessions.get(hop).map_or(q.clone(), |o| {
            let broken: Vec<&str> = ["dropped", "duplicated", "changed"]
                .into_iter()
                .filter(|what| o.has(&format!("header-{what}")))
                .collect();
            if broken.is_empty() {
                "yes".into()
            } else {
                format!("no ({})", broken.join(", "))
            }
        });
        let _ = writeln!(
            s,
            "| `{hop}` | {buffers} | {compresses} | {no_transform} | {x_accel} | {headers} | {sharing} | {session} |"
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
            vec![],
            delivery,
            findings.iter().map(|f| f.to_string()).collect(),
            None,
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
            // Measured only with a token stream: nothing here to say, so no row.
            obs("litellm default", "llm-openai", "streamed", &[]),
            obs("nginx default", "session-headers", "held-until-end", &[]),
            obs(
                "haproxy compression",
                "session-headers",
                "batched",
                &["header-dropped", "header-changed"],
            ),
        ]);
        let rows: Vec<&str> = t.lines().skip(2).collect();
        assert_eq!(
            rows,
            [
                "| `nginx default` | yes (held-until-end) | no | – | yes | no | ? | yes |",
                "| `haproxy compression` | yes (batched) | yes | yes | – | no | ? | no (dropped, changed) |",
                "| `h2o default` | no | no | – | – | yes | ? | ? |",
            ]
        );
    }

    #[test]
    fn the_sharing_column_reads_second_clients_of_the_cacheable_origin_as_it_is() {
        let second = |hop: &str, profile: &str, changed: &str, sharing: &str| {
            let mut o = obs(hop, profile, "streamed", &[]);
            if !changed.is_empty() {
                o.changes = vec![changed.into()];
            }
            o.sharing = Some(sharing.into());
            o
        };
        let t = behaviour_table(&[
            second("varnish default", "cacheable", "", "joined"),
            second("varnish default", "cacheable", "", "replayed"),
            second("squid accel", "cacheable", "", "separate"),
            // Other headers (an explicit max-age) do not answer the column's question…
            second("squid accel", "cacheable", "headers", "replayed"),
            // …another schedule does.
            second("haproxy default", "cacheable", "events", "separate"),
            second("nginx default", "plain", "", "separate"),
        ]);
        assert!(
            t.contains("| `varnish default` | ? | ? | ? | ? | ? | yes (joined, replayed) | ? |"),
            "{t}"
        );
        assert!(
            t.contains("| `squid accel` | ? | ? | ? | ? | ? | no |"),
            "{t}"
        );
        assert!(
            t.contains("| `haproxy default` | ? | ? | ? | ? | ? | no |"),
            "{t}"
        );
        assert!(
            t.contains("| `nginx default` | no | no | – | – | no | ? |"),
            "{t}"
        );
    }

    #[test]
    fn reads_the_second_clients_sharing_from_a_report() {
        let text = "origin: fixture `cacheable`\nchain: origin → varnish default → client\n\
                    delivery: streamed\nsecond client: opened 1500 ms after the first client opened\n  \
                    origin requests: 1 for both clients\n  sharing: joined\nfindings:\n  none\n";
        let o = Observation::from_report(text).unwrap();
        assert_eq!(o.sharing.as_deref(), Some("joined"));
    }

    #[test]
    fn only_single_real_hops_make_rows() {
        let new =
            |chain, delivery| Observation::new(chain, "plain", vec![], delivery, vec![], None);
        assert!(new("compression", "streamed").is_none());
        assert!(new("nginx short-idle", "cut").is_none());
        assert!(new("compression → nginx default", "streamed").is_none());
    }

    #[test]
    fn a_case_that_changed_the_profile_yields_to_one_that_did_not() {
        let mut changed = obs("nginx default", "plain", "batched", &["events-held"]);
        changed.changes = vec!["events".into()];
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
        let text = "case: x\norigin: fixture `plain` (changed by the case's overrides: events, padding)\n\
                    chain: origin → lighttpd default → client\n\
                    delivery: held-until-end\nfindings:\n  error   held-until-end: all\n  \
                    warning content-length-on-stream: Content-Length: 10\nexpectation: met\n";
        let o = Observation::from_report(text).unwrap();
        assert_eq!(o.hop, "lighttpd default");
        assert_eq!(o.profile, "plain");
        assert!(o.changed());
        assert_eq!(o.changes, ["events", "padding"]);
        assert_eq!(o.delivery, "held-until-end");
        assert_eq!(o.findings, ["held-until-end", "content-length-on-stream"]);
        let none = "origin: fixture `hardened`\nchain: origin → nginx default → client\n\
                    delivery: streamed\nfindings:\n  none\nexpectation: met\n";
        let o = Observation::from_report(none).unwrap();
        assert!(o.findings.is_empty() && !o.changed());
    }
}
