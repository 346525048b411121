//! Two clients on one stream: did the chain give the second client its own origin request, or a share
//! of the first one's (a cache joining it to the fetch in progress, or replaying a stored copy)?
//!
//! A shared cache that stores an event stream breaks it in a way no single probe can see: the second
//! subscriber gets events that were sent before it subscribed, all at once, and after the end a client
//! (an `EventSource` reconnecting, say) gets the old stream again instead of new events. The judgement
//! rests on two facts the fixture records: how many requests reached the origin for the stream's URL, and
//! when the origin sent each event, against the instant the second client opened.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::evidence::evidence;
use super::{Fact, Finding, FindingId};
use crate::probe::Recording;

/// What the second client got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sharing {
    /// Its own request reached the origin: nothing shared.
    Separate,
    /// No request of its own reached the origin; it was joined to the first client's fetch while that
    /// was still open (the events sent before it opened arrive at once, then the live ones).
    Joined,
    /// No request of its own reached the origin; it got a stored copy of a stream that had already
    /// ended.
    Replayed,
    /// No request of its own reached the origin and it received no event (refused, or held).
    Unserved,
}

impl Sharing {
    pub fn as_str(self) -> &'static str {
        match self {
            Sharing::Separate => "separate",
            Sharing::Joined => "joined",
            Sharing::Replayed => "replayed",
            Sharing::Unserved => "unserved",
        }
    }

    /// Whether one origin response went to both clients.
    pub fn shared(self) -> bool {
        matches!(self, Sharing::Joined | Sharing::Replayed)
    }
}

impl std::fmt::Display for Sharing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When the second client opens: `after_ms` after the first client opened, or `after_end_ms` after the
/// first client's stream ended (exactly one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondOpen {
    pub after_ms: Option<u64>,
    pub after_end_ms: Option<u64>,
}

impl SecondOpen {
    /// The longest wait a case may ask for.
    pub const MAX_MS: u64 = 60_000;

    /// Exactly one of the two, within bounds.
    pub fn validate(&self) -> Result<(), String> {
        match (self.after_ms, self.after_end_ms) {
            (Some(_), Some(_)) | (None, None) => {
                Err("`second_client` takes exactly one of `after_ms` and `after_end_ms`".into())
            }
            (Some(ms), None) | (None, Some(ms)) if ms > Self::MAX_MS => Err(format!(
                "`second_client` waits at most {} ms, not {ms}",
                Self::MAX_MS
            )),
            _ => Ok(()),
        }
    }

    /// How the report says when it opened.
    pub fn label(&self) -> String {
        self.label_with(|ms| format!("{ms} ms"))
    }

    /// When it opened, with its time written by `time` (a snapshot's `<duration>`).
    pub fn label_with(&self, time: impl Fn(u64) -> String) -> String {
        match (self.after_ms, self.after_end_ms) {
            (Some(ms), _) => format!("{} after the first client opened", time(ms)),
            (None, Some(ms)) => format!("{} after the first client's stream ended", time(ms)),
            (None, None) => "with the first client".into(),
        }
    }
}

/// What the origin recorded for the stream's URL, from the first request on.
#[derive(Debug, Clone)]
pub struct OriginSide {
    /// Requests that reached the origin for this URL (both clients', and any a hop made itself).
    pub requests: usize,
    /// When the origin sent each event of the first request's response.
    pub first_sends: Vec<Instant>,
    /// When the first request's response ended at the origin.
    pub first_ended: Option<Instant>,
}

/// The second client's measurement.
#[derive(Debug, Clone, Serialize)]
pub struct SecondClient {
    /// When it opened, after the first client opened.
    #[serde(serialize_with = "crate::probe::ser_ms")]
    pub opened: Duration,
    /// Whether the first response had ended at the origin by then.
    pub after_first_ended: bool,
    /// Requests the origin saw for the URL, both clients together.
    pub origin_requests: usize,
    pub status: u16,
    /// Events it received.
    pub events: usize,
    /// Of those, how many the origin had sent (for the first client) before the second client opened;
    /// 0 when it had its own origin request.
    pub sent_before_it_opened: usize,
    pub sharing: Sharing,
}

/// Judge the second client's recording `second` against the first client's start and the origin's log;
/// a shared stream is also a finding.
pub fn judge_sharing(
    first_start: Instant,
    second: &Recording,
    origin: &OriginSide,
) -> (SecondClient, Option<Finding>) {
    let opened = second.start.saturating_duration_since(first_start);
    let after_first_ended = origin.first_ended.is_some_and(|e| e <= second.start);
    // Events the origin had sent before the second client opened, by sequence number (the fixture
    // numbers its events 1, 2, … in `id:`).
    let sent_before = origin
        .first_sends
        .iter()
        .take_while(|&&t| t < second.start)
        .count();
    let shared = origin.requests < 2;
    let sent_before_it_opened = second
        .events
        .iter()
        .filter(|a| {
            a.event
                .id
                .parse::<usize>()
                .is_ok_and(|seq| (1..=sent_before).contains(&seq))
        })
        .count()
        * usize::from(shared);
    let events = second.events.len();
    let sharing = if origin.requests >= 2 {
        Sharing::Separate
    } else if events == 0 {
        Sharing::Unserved
    } else if after_first_ended {
        Sharing::Replayed
    } else {
        Sharing::Joined
    };
    let finding = match sharing {
        Sharing::Joined => Some(Finding::new(
            FindingId::StreamShared,
            evidence!(
                "one origin request served two clients: the second, opened {} after the first, got {} events sent before it opened",
                Fact::Millis(opened),
                sent_before_it_opened
            ),
        )),
        Sharing::Replayed => Some(Finding::new(
            FindingId::StreamShared,
            evidence!(
                "a client opened {} after the first, once the stream had ended, got a stored copy ({} events) and the origin saw no request",
                Fact::Millis(opened),
                events
            ),
        )),
        Sharing::Separate | Sharing::Unserved => None,
    };
    (
        SecondClient {
            opened,
            after_first_ended,
            origin_requests: origin.requests,
            status: second.status,
            events,
            sent_before_it_opened,
            sharing,
        },
        finding,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::End;

    /// A recording that opened at `start` and received events `1..=n` (the fixture's numbering).
    fn rec(start: Instant, ids: &[u64]) -> Recording {
        let mut r = crate::probe::testing::recording(&[], ids, 3000, End::Complete);
        r.start = start;
        r
    }

    fn origin(requests: usize, t0: Instant, sends_ms: &[u64], ended_ms: Option<u64>) -> OriginSide {
        OriginSide {
            requests,
            first_sends: sends_ms
                .iter()
                .map(|&m| t0 + Duration::from_millis(m))
                .collect(),
            first_ended: ended_ms.map(|m| t0 + Duration::from_millis(m)),
        }
    }

    #[test]
    fn two_origin_requests_are_separate() {
        let t0 = Instant::now();
        let second = rec(t0 + Duration::from_millis(1500), &[1, 2, 3]);
        let (s, f) = judge_sharing(t0, &second, &origin(2, t0, &[400, 800, 1200], None));
        assert_eq!(s.sharing, Sharing::Separate);
        assert!(f.is_none());
        assert_eq!(s.opened, Duration::from_millis(1500));
        assert_eq!(
            s.sent_before_it_opened, 0,
            "its events are its own stream's"
        );
    }

    #[test]
    fn the_open_instant_is_exactly_one_of_two() {
        let ok = |a, b| {
            SecondOpen {
                after_ms: a,
                after_end_ms: b,
            }
            .validate()
        };
        assert!(ok(Some(1500), None).is_ok());
        assert!(ok(None, Some(0)).is_ok());
        assert!(ok(None, None).unwrap_err().contains("exactly one"));
        assert!(ok(Some(1), Some(1)).unwrap_err().contains("exactly one"));
        assert!(ok(Some(60_001), None).unwrap_err().contains("at most"));
    }

    #[test]
    fn one_request_while_open_is_joined_and_counts_the_early_events() {
        let t0 = Instant::now();
        let second = rec(t0 + Duration::from_millis(1000), &[1, 2, 3, 4]);
        let (s, f) = judge_sharing(
            t0,
            &second,
            &origin(1, t0, &[400, 800, 1200, 1600], Some(1700)),
        );
        assert_eq!(s.sharing, Sharing::Joined);
        assert_eq!(s.sent_before_it_opened, 2);
        assert!(!s.after_first_ended);
        let f = f.unwrap();
        assert_eq!(f.id(), FindingId::StreamShared);
        assert!(
            f.evidence.contains("got 2 events sent before"),
            "{}",
            f.evidence
        );
    }

    #[test]
    fn one_request_after_the_end_is_a_replay() {
        let t0 = Instant::now();
        let second = rec(t0 + Duration::from_millis(3000), &[1, 2]);
        let (s, f) = judge_sharing(t0, &second, &origin(1, t0, &[400, 800], Some(900)));
        assert_eq!(s.sharing, Sharing::Replayed);
        assert_eq!(s.sent_before_it_opened, 2);
        assert!(f.is_some());
    }

    #[test]
    fn no_request_and_no_event_is_unserved() {
        let t0 = Instant::now();
        let second = rec(t0 + Duration::from_millis(1000), &[]);
        let (s, f) = judge_sharing(t0, &second, &origin(1, t0, &[400], None));
        assert_eq!(s.sharing, Sharing::Unserved);
        assert!(f.is_none());
    }
}
