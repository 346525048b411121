use std::time::Duration;

use super::*;
use crate::probe::{BodyFraming, End};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

use crate::probe::testing::recording as rec;

const GOOD: &[(&str, &str)] = &[
    ("content-type", "text/event-stream"),
    ("cache-control", "no-cache, no-transform"),
    ("x-accel-buffering", "no"),
];

fn sched(sends: &[u64]) -> SendInstants {
    SendInstants {
        sends: sends.iter().map(|&s| ms(s)).collect(),
        headers_sent: Some(ms(0)),
        ended: sends.last().map(|&s| ms(s)),
        gap: None,
        planned: None,
        by_position: false,
    }
}

const SENDS: &[u64] = &[400, 800, 1200, 1600, 2000, 2400];

#[test]
fn on_time_events_stream() {
    let r = rec(
        GOOD,
        &[402, 803, 1201, 1605, 2002, 2401],
        2402,
        End::Complete,
    );
    let v = judge(&r, Reference::Sends(&sched(SENDS)));
    assert_eq!(v.delivery, Delivery::Streamed);
    assert_eq!(v.threshold, ms(200));
    assert!(v.findings.is_empty(), "{:?}", v.findings);
    assert_eq!(v.bursts.len(), 6);
}

#[test]
fn noise_below_half_a_gap_is_not_holding() {
    let r = rec(
        GOOD,
        &[402, 990, 1201, 1605, 2002, 2401],
        2402,
        End::Complete,
    );
    let v = judge(&r, Reference::Sends(&sched(SENDS)));
    assert_eq!(v.delivery, Delivery::Streamed);
}

#[test]
fn everything_at_the_end_is_held_until_end() {
    let r = rec(GOOD, &[2403; 6], 2404, End::Complete);
    let v = judge(&r, Reference::Sends(&sched(SENDS)));
    assert_eq!(v.delivery, Delivery::HeldUntilEnd);
    assert!(v.has(FindingId::HeldUntilEnd));
    assert_eq!(v.held_count(), 5);
    assert_eq!(v.bursts.len(), 1);
    assert_eq!(v.bursts[0].events, 6);
}

#[test]
fn clumps_before_the_end_are_batched() {
    let r = rec(
        GOOD,
        &[1201, 1201, 1201, 2401, 2401, 2401],
        2402,
        End::Complete,
    );
    let v = judge(&r, Reference::Sends(&sched(SENDS)));
    assert_eq!(v.delivery, Delivery::Batched);
    assert!(v.has(FindingId::EventsHeld));
    assert_eq!(v.bursts.len(), 2);
}

#[test]
fn consistent_small_delay_is_added_latency_not_batching() {
    let r = rec(
        GOOD,
        &[520, 920, 1320, 1720, 2120, 2520],
        2521,
        End::Complete,
    );
    let v = judge(&r, Reference::Sends(&sched(SENDS)));
    assert_eq!(v.delivery, Delivery::Streamed);
    assert!(v.has(FindingId::AddedLatency));
}

#[test]
fn an_abort_is_a_cut_and_so_is_a_short_clean_end() {
    let r = rec(
        GOOD,
        &[402, 803],
        1900,
        End::Aborted {
            reason: "eof".into(),
        },
    );
    let v = judge(&r, Reference::Sends(&sched(SENDS)));
    assert_eq!(v.delivery, Delivery::Cut);
    assert!(v.has(FindingId::StreamCut));
    let r = rec(GOOD, &[402, 803], 900, End::Complete);
    assert_eq!(
        judge(&r, Reference::Sends(&sched(SENDS))).delivery,
        Delivery::Cut
    );
}

#[test]
fn late_headers_with_streamed_events_are_first_byte_delayed() {
    let mut r = rec(
        GOOD,
        &[402, 803, 1201, 1605, 2002, 2401],
        2402,
        End::Complete,
    );
    r.headers_at = ms(401);
    let v = judge(&r, Reference::Sends(&sched(SENDS)));
    assert_eq!(v.delivery, Delivery::FirstByteDelayed);
    assert!(v.has(FindingId::FirstByteDelayed));
    // the origin sent its headers at once: a hop held them, not the origin
    assert!(!v.has(FindingId::HeadersWithFirstEvent));
    let mut origin_late = sched(SENDS);
    origin_late.headers_sent = Some(ms(399));
    let v = judge(&r, Reference::Sends(&origin_late));
    assert_eq!(v.delivery, Delivery::Streamed);
    assert!(v.has(FindingId::HeadersWithFirstEvent));
    assert!(judge(&r, Reference::None).has(FindingId::HeadersWithFirstEvent));
}

#[test]
fn no_events_is_its_own_class() {
    let r = rec(GOOD, &[], 2402, End::Complete);
    let v = judge(&r, Reference::Sends(&sched(SENDS)));
    assert_eq!(v.delivery, Delivery::NoEvents);
}

#[test]
fn baseline_comparison_uses_the_baseline_spacing() {
    let base = rec(
        GOOD,
        &[402, 803, 1201, 1605, 2002, 2401],
        2402,
        End::Complete,
    );
    let same = rec(
        GOOD,
        &[410, 810, 1210, 1610, 2010, 2410],
        2411,
        End::Complete,
    );
    let v = judge(&same, Reference::Baseline(&base));
    assert_eq!(v.basis, Basis::Baseline);
    assert_eq!(v.delivery, Delivery::Streamed);
    let held = rec(GOOD, &[2403; 6], 2404, End::Complete);
    assert_eq!(
        judge(&held, Reference::Baseline(&base)).delivery,
        Delivery::HeldUntilEnd
    );
}

#[test]
fn inference_without_reference_is_conservative() {
    let held = rec(GOOD, &[3203; 8], 3204, End::Complete);
    let v = judge(&held, Reference::None);
    assert_eq!(v.basis, Basis::Inferred);
    assert_eq!(v.delivery, Delivery::HeldUntilEnd);
    assert!(v.findings[0].evidence.contains("inferred"));
    let spread = rec(
        GOOD,
        &[402, 803, 1201, 1605, 2002, 2401],
        2402,
        End::Complete,
    );
    assert_eq!(judge(&spread, Reference::None).delivery, Delivery::Streamed);
    // a short stream whose events all came at once proves nothing
    let short = rec(GOOD, &[20, 20, 20], 21, End::Complete);
    assert_eq!(judge(&short, Reference::None).delivery, Delivery::Streamed);
}

#[test]
fn header_lint() {
    let r = rec(
        &[
            ("content-type", "text/plain"),
            ("content-length", "100"),
            ("content-encoding", "gzip"),
        ],
        &[402],
        403,
        End::Complete,
    );
    let v = judge(&r, Reference::None);
    for id in [
        FindingId::ContentTypeNotEventStream,
        FindingId::ContentLengthOnStream,
        FindingId::ContentEncodingOnStream,
        FindingId::MissingNoTransform,
        FindingId::MissingXAccelBuffering,
        FindingId::CacheableStream,
    ] {
        assert!(v.has(id), "{id} in {:?}", v.findings);
    }
    // errors sort first
    assert_eq!(v.findings[0].severity(), Severity::Error);
}

#[test]
fn hop_by_hop_headers_only_matter_on_h2() {
    let h: &[(&str, &str)] = &[
        ("content-type", "text/event-stream"),
        ("cache-control", "no-cache, no-transform"),
        ("x-accel-buffering", "no"),
        ("connection", "keep-alive"),
    ];
    let mut r = rec(h, &[402], 403, End::Complete);
    assert!(!judge(&r, Reference::None).has(FindingId::HopByHopHeaderOnH2));
    r.version = "HTTP/2.0".into();
    r.framing = BodyFraming::Frames;
    assert!(judge(&r, Reference::None).has(FindingId::HopByHopHeaderOnH2));
}

#[test]
fn behind_nginx_the_missing_x_accel_header_is_not_reported() {
    // nginx strips X-Accel-Buffering, so its absence there proves nothing.
    let h: &[(&str, &str)] = &[
        ("content-type", "text/event-stream"),
        ("cache-control", "no-cache, no-transform"),
        ("server", "nginx/1.22.1"),
    ];
    let v = judge(&rec(h, &[402], 403, End::Complete), Reference::None);
    assert!(!v.has(FindingId::MissingXAccelBuffering));
}

#[test]
fn buffer_sized_clumps() {
    assert!(is_buffer_sized(4096));
    assert!(is_buffer_sized(8192));
    assert!(is_buffer_sized(8100));
    assert!(!is_buffer_sized(1460));
    assert!(!is_buffer_sized(6144));
}

#[test]
fn events_that_never_arrived_before_a_limit_are_held() {
    let limit = End::Limit {
        limit: crate::probe::LimitKind::Duration,
    };
    let r = rec(GOOD, &[], 3000, limit.clone());
    let v = judge(&r, Reference::Sends(&sched(SENDS)));
    assert_eq!(v.delivery, Delivery::HeldUntilEnd);
    assert!(
        v.findings[0]
            .evidence
            .contains("none of 6 events had arrived"),
        "{}",
        v.findings[0].evidence
    );
    // The origin still sending when the probe stopped: the rest is held, not stalled.
    let r = rec(GOOD, &[402, 803], 3000, limit);
    let mut open = sched(SENDS);
    open.ended = None;
    let v = judge(&r, Reference::Sends(&open));
    assert_eq!(v.delivery, Delivery::Batched);
    // without a reference, nothing is known to be missing
    let r = rec(GOOD, &[], 3000, End::Complete);
    assert_eq!(judge(&r, Reference::None).delivery, Delivery::NoEvents);
}

#[test]
fn a_clean_end_before_the_planned_events_is_a_cut() {
    let mut s = sched(&[400, 800]);
    s.planned = Some(6);
    let r = rec(GOOD, &[402, 803], 900, End::Complete);
    let v = judge(&r, Reference::Sends(&s));
    assert_eq!(v.delivery, Delivery::Cut);
    assert!(
        v.findings[0].evidence.contains("after 2 of 6 events"),
        "{}",
        v.findings[0].evidence
    );
}

#[test]
fn events_still_in_flight_at_the_limit_are_not_held() {
    let limit = End::Limit {
        limit: crate::probe::LimitKind::Duration,
    };
    // the 6th event was due at 2400 ms; the probe stopped at 2450 ms: in flight, not held
    let r = rec(GOOD, &[402, 803, 1201, 1605, 2002], 2450, limit);
    let v = judge(&r, Reference::Sends(&sched(SENDS)));
    assert_eq!(v.delivery, Delivery::Streamed);
}

#[test]
fn a_tail_cut_by_the_probe_is_not_an_unterminated_event() {
    let mut r = rec(
        GOOD,
        &[402],
        500,
        End::Limit {
            limit: crate::probe::LimitKind::Events,
        },
    );
    r.facts.unterminated = Some(crate::sse::Unterminated {
        bytes: b"data: par".to_vec(),
        len: 9,
        had_data: true,
    });
    assert!(!judge(&r, Reference::None).has(FindingId::EventNotTerminated));
    r.end = End::Complete;
    assert!(judge(&r, Reference::None).has(FindingId::EventNotTerminated));
}

#[test]
fn baseline_comparison_subtracts_a_remote_connection_setup() {
    // a remote server: 300 ms more before the headers and before every event, nothing held
    let base = rec(
        GOOD,
        &[402, 803, 1201, 1605, 2002, 2401],
        2402,
        End::Complete,
    );
    let mut remote = rec(
        GOOD,
        &[702, 1103, 1501, 1905, 2302, 2701],
        2702,
        End::Complete,
    );
    remote.headers_at = ms(301);
    let v = judge(&remote, Reference::Baseline(&base));
    assert_eq!(v.delivery, Delivery::Streamed);
    assert_eq!(v.alignment, ms(300));
    // a hop that holds the headers with the first event keeps its header delay
    let mut held_headers = rec(
        GOOD,
        &[402, 803, 1201, 1605, 2002, 2401],
        2402,
        End::Complete,
    );
    held_headers.headers_at = ms(401);
    let v = judge(&held_headers, Reference::Baseline(&base));
    assert_eq!(v.alignment, ms(0));
    assert_eq!(v.delivery, Delivery::FirstByteDelayed);
}

#[test]
fn an_undecodable_body_before_the_end_is_a_cut() {
    let r = rec(
        GOOD,
        &[402, 803],
        900,
        End::Undecodable {
            reason: "failed to decode the gzip body".into(),
        },
    );
    let v = judge(&r, Reference::Sends(&sched(SENDS)));
    assert_eq!(v.delivery, Delivery::Cut);
    assert!(v.has(FindingId::CorruptContentEncoding));
}

#[test]
fn inference_sees_nginx_clumps_with_a_short_first_one() {
    // three clumps of events released by page-sized buffers, the first shorter by the response head
    let mut r = rec(
        GOOD,
        &[1000, 1000, 2000, 2000, 3000, 3000, 4000],
        4001,
        End::Complete,
    );
    let sizes = [3982, 4096, 4096, 200];
    for (read, size) in r.reads.iter_mut().zip(sizes) {
        read.wire = size;
    }
    let v = judge(&r, Reference::None);
    assert_eq!(v.delivery, Delivery::Batched, "{:?}", v.bursts);
}

#[test]
fn a_different_time_to_first_event_is_not_holding() {
    // an LLM-like origin: headers at once, the first token 600 ms later on this request than on the baseline
    let base = rec(
        GOOD,
        &[402, 803, 1201, 1605, 2002, 2401],
        2402,
        End::Complete,
    );
    let slow_start = rec(
        GOOD,
        &[1002, 1403, 1801, 2205, 2602, 3001],
        3002,
        End::Complete,
    );
    let v = judge(&slow_start, Reference::Baseline(&base));
    assert_eq!(v.delivery, Delivery::Streamed);
    assert_eq!(v.alignment, ms(600));
    // but a hop that holds everything to the end is still caught
    let held = rec(GOOD, &[2403; 6], 2404, End::Complete);
    assert_eq!(
        judge(&held, Reference::Baseline(&base)).delivery,
        Delivery::HeldUntilEnd
    );
}

#[test]
fn an_abort_before_the_first_event_is_a_cut() {
    let r = rec(
        GOOD,
        &[],
        300,
        End::Aborted {
            reason: "eof".into(),
        },
    );
    assert_eq!(
        judge(&r, Reference::Sends(&sched(SENDS))).delivery,
        Delivery::Cut
    );
    assert_eq!(judge(&r, Reference::None).delivery, Delivery::Cut);
}

#[test]
fn inferred_held_counts_from_the_request_when_headers_came_with_the_events() {
    let mut r = rec(GOOD, &[2400; 6], 2401, End::Complete);
    r.headers_at = ms(2399);
    let v = judge(&r, Reference::None);
    assert_eq!(v.delivery, Delivery::HeldUntilEnd);
}

#[test]
fn no_response_within_the_limit_is_held_against_a_reference() {
    let mut r = rec(
        &[],
        &[],
        3000,
        End::Limit {
            limit: crate::probe::LimitKind::Duration,
        },
    );
    r.status = 0;
    r.headers_at = ms(3000);
    let v = judge(&r, Reference::Sends(&sched(SENDS)));
    assert_eq!(v.delivery, Delivery::HeldUntilEnd);
    assert!(v.has(FindingId::NoResponse));
    assert!(!v.has(FindingId::ContentTypeNotEventStream));
}

#[test]
fn an_error_page_has_no_framing_findings() {
    let mut r = rec(&[("content-type", "text/html")], &[], 50, End::Complete);
    r.status = 404;
    r.decoded_bytes = 300;
    r.facts.unterminated = Some(crate::sse::Unterminated {
        bytes: b"<html>".to_vec(),
        len: 300,
        had_data: true,
    });
    let v = judge(&r, Reference::None);
    assert!(v.has(FindingId::ErrorStatus));
    assert!(!v.has(FindingId::NoEventsDispatched) && !v.has(FindingId::EventNotTerminated));
}

#[test]
fn a_long_wait_for_the_first_byte_then_a_live_stream_is_not_held() {
    // 3 s until headers and the first event, then five events 60 ms apart in separate reads
    let mut r = rec(GOOD, &[3000, 3060, 3120, 3180, 3240], 3300, End::Complete);
    r.headers_at = ms(2999);
    let v = judge(&r, Reference::None);
    assert_eq!(v.delivery, Delivery::Streamed, "{:?}", v.findings);
}

#[test]
fn on_time_events_then_silence_on_an_open_connection_is_stalled() {
    let limit = End::Limit {
        limit: crate::probe::LimitKind::Duration,
    };
    // Two on time, then four the origin sent never arrive while the probe listens to 8 s.
    let r = rec(GOOD, &[401, 801], 8000, limit.clone());
    let v = judge(&r, Reference::Sends(&sched(SENDS)));
    assert_eq!(v.delivery, Delivery::Stalled);
    let f = v
        .findings
        .iter()
        .find(|f| f.id() == FindingId::StreamStalled)
        .unwrap();
    assert!(
        f.evidence
            .to_string()
            .starts_with("2 of the 6 events the origin sent arrived on time"),
        "{}",
        f.evidence
    );
    // A late event among those that came makes it a hold, not a stall.
    let r = rec(GOOD, &[401, 1900], 8000, limit.clone());
    assert_eq!(
        judge(&r, Reference::Sends(&sched(SENDS))).delivery,
        Delivery::Batched
    );
    // Nor is an origin that had only just ended.
    let r = rec(GOOD, &[401, 801], 2700, limit.clone());
    assert_ne!(
        judge(&r, Reference::Sends(&sched(SENDS))).delivery,
        Delivery::Stalled
    );
    // Events still in flight when the probe stopped are no stall.
    let r = rec(GOOD, &[401, 801, 1201, 1601, 2001], 2410, limit);
    assert_ne!(
        judge(&r, Reference::Sends(&sched(SENDS))).delivery,
        Delivery::Stalled
    );
}

#[test]
fn a_break_a_stall_of_this_machine_explains_is_inconclusive_without_send_instants() {
    let base = rec(
        GOOD,
        &[402, 803, 1201, 1605, 2002, 2401],
        2402,
        End::Complete,
    );
    // Three events read together at 1.6 s: a hop's buffer, or this process not running for a second.
    let clumped = |late_max: u64| {
        let mut r = rec(
            GOOD,
            &[402, 1604, 1604, 1605, 2002, 2401],
            2402,
            End::Complete,
        );
        r.pressure = Some(crate::pressure::Pressure {
            timer_late_max: ms(late_max),
            timer_late_p99: ms(late_max / 10),
            stalls: 1,
            cpu_waiting: Some(0.8),
        });
        r
    };
    let starved = clumped(1_100);
    let mut v = judge(&starved, Reference::Baseline(&base));
    assert_eq!(v.delivery, Delivery::Batched);
    assert!(excuse_starved(&starved, &mut v));
    assert_eq!(v.delivery, Delivery::Inconclusive);
    assert!(v.has(FindingId::TooBusyToTell));
    assert!(!v.has(FindingId::EventsHeld), "{:?}", v.findings);
    let said = v.findings[0].evidence.to_string();
    assert!(
        said.contains("longest 1100 ms") && said.contains("measured batched"),
        "{said}"
    );
    // A stall shorter than the threshold cannot have held an event that long.
    let quiet = clumped(60);
    let mut v = judge(&quiet, Reference::Baseline(&base));
    assert!(!excuse_starved(&quiet, &mut v));
    assert_eq!(v.delivery, Delivery::Batched);
    // With the origin's send instants a late read shows as late against them: no excuse either.
    let sends = sched(&[400, 800, 1200, 1600, 2000, 2400]);
    let mut v = judge(&starved, Reference::Sends(&sends));
    assert_ne!(v.delivery, Delivery::Streamed);
    assert!(!excuse_starved(&starved, &mut v));
    assert_ne!(v.delivery, Delivery::Inconclusive);
    // Cuts are not made by late reads.
    let cut = rec(
        GOOD,
        &[402, 803],
        900,
        End::Aborted {
            reason: "reset".into(),
        },
    );
    let mut cut = cut;
    cut.pressure = clumped(5_000).pressure;
    let mut v = judge(&cut, Reference::Baseline(&base));
    assert!(!excuse_starved(&cut, &mut v));
}
