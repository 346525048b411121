//! Many clients at once: did every concurrent stream of a load get its response head and keep its
//! body, or did the chain run out of room (connections, descriptors, workers)?
//!
//! A proxy's connection limit is invisible to a single probe. nginx's `worker_connections` counts both
//! sides of a proxied stream, so Debian's 768 serves about 380 concurrent streams per worker, and the
//! next clients are closed before any response: a browser's EventSource sees an error and retries, which
//! adds load. The judgement uses only counts the load run keeps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::evidence::evidence;
use super::{Fact, Finding, FindingId};

/// Whether the chain held the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capacity {
    /// Every stream got a 2xx head and none was cut.
    Full,
    /// Some streams failed before their head or were cut after it.
    Limited,
}

impl Capacity {
    pub fn as_str(self) -> &'static str {
        match self {
            Capacity::Full => "full",
            Capacity::Limited => "limited",
        }
    }
}

impl std::fmt::Display for Capacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts of one load run.
#[derive(Debug, Clone, Copy)]
pub struct LoadCounts<'a> {
    pub streams: usize,
    pub connected: usize,
    /// Streams without a 2xx head, per reason (`reset`, `refused`, `timeout`, `status`, …).
    pub failed: &'a BTreeMap<&'static str, usize>,
    /// Connected streams whose body was cut.
    pub cut: usize,
}

/// The capacity class, and the finding when the chain did not hold.
pub fn judge_capacity(c: LoadCounts<'_>) -> (Capacity, Option<Finding>) {
    let failed: usize = c.failed.values().sum();
    if failed == 0 && c.cut == 0 {
        return (Capacity::Full, None);
    }
    let reasons: Vec<String> = c.failed.iter().map(|(r, n)| format!("{r} {n}")).collect();
    let mut evidence = evidence!(
        "{} of {} concurrent streams got a response",
        c.connected,
        c.streams
    );
    if failed > 0 {
        // How the failures split between reasons varies with the machine's load (see the load
        // phase's snapshot block); the total does not.
        evidence = evidence.then(evidence!(
            "; {} failed before their headers{}",
            failed,
            Fact::Varies(format!(" ({})", reasons.join(", ")))
        ));
    }
    if c.cut > 0 {
        evidence = evidence.then(evidence!("; {} were cut after their headers", c.cut));
    }
    (
        Capacity::Limited,
        Some(Finding::new(FindingId::StreamsRefused, evidence)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_served_is_full_capacity_without_a_finding() {
        let none = BTreeMap::new();
        let (c, f) = judge_capacity(LoadCounts {
            streams: 10,
            connected: 10,
            failed: &none,
            cut: 0,
        });
        assert_eq!(c, Capacity::Full);
        assert!(f.is_none());
    }

    #[test]
    fn refused_or_cut_streams_limit_capacity_with_their_counts() {
        let failed = BTreeMap::from([("reset", 117)]);
        let (c, f) = judge_capacity(LoadCounts {
            streams: 500,
            connected: 383,
            failed: &failed,
            cut: 2,
        });
        assert_eq!(c, Capacity::Limited);
        let f = f.unwrap();
        assert_eq!(f.id(), FindingId::StreamsRefused);
        assert_eq!(
            f.evidence.to_string(),
            "383 of 500 concurrent streams got a response; 117 failed before their headers (reset 117); 2 were cut after their headers"
        );
        // A snapshot leaves out how the failures split between reasons.
        assert_eq!(
            f.evidence.normalized(),
            "383 of 500 concurrent streams got a response; 117 failed before their headers; 2 were cut after their headers"
        );
        let none = BTreeMap::new();
        let (c, _) = judge_capacity(LoadCounts {
            streams: 5,
            connected: 5,
            failed: &none,
            cut: 1,
        });
        assert_eq!(c, Capacity::Limited);
    }
}
