//! The browser: a real browser (headless Chromium, [`crate::browser`]) on the same URL through the same
//! running chain, judged against the origin's sends for the browser's own request and compared with
//! ssegate's verdict; with `limit`, seven `EventSource`s for the HTTP/1.1 per-host connection limit.
//! Judged by [`crate::verdict::browser`]. [`view`] is the same measurement of a URL (`probe --browser`,
//! `check`'s direct stream).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::Phase;
use crate::browser::{Browser, BrowserError, FetchInit, PageRequest, Reader};
use crate::probe::{ProbeRequest, Recording};
use crate::through::{Main, ScenarioError, Through};
use crate::verdict::browser::{
    BrowserVerdict, LIMIT_STREAMS, judge_browser, judge_connection_limit, page_recording,
};
use crate::verdict::{Delivery, Finding, Reference, SendInstants, Verdict};

/// The browser phase.
pub struct BrowserPhase;

/// A case's browser probe: `true`, or `{limit: true}` to also open seven `EventSource`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserSpec {
    On(bool),
    With {
        /// Also open seven `EventSource`s on the URL.
        limit: bool,
    },
}

/// A boolean or a map with only `limit` (a boolean): anything else is an error that says which key or
/// value is wrong, where an untagged enum could only say that nothing matched.
impl<'de> Deserialize<'de> for BrowserSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Spec;
        impl<'de> serde::de::Visitor<'de> for Spec {
            type Value = BrowserSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`true`, `false` or `{limit: true}`")
            }
            fn visit_bool<E: serde::de::Error>(self, on: bool) -> Result<BrowserSpec, E> {
                Ok(BrowserSpec::On(on))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<BrowserSpec, A::Error> {
                let mut limit = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "limit" => limit = Some(map.next_value::<bool>()?),
                        other => return Err(serde::de::Error::unknown_field(other, &["limit"])),
                    }
                }
                let limit = limit.ok_or_else(|| serde::de::Error::missing_field("limit"))?;
                Ok(BrowserSpec::With { limit })
            }
        }
        d.deserialize_any(Spec)
    }
}

impl BrowserSpec {
    /// Whether the browser runs, and whether it measures the connection limit.
    pub fn plan(self) -> Option<bool> {
        match self {
            BrowserSpec::On(false) => None,
            BrowserSpec::On(true) => Some(false),
            BrowserSpec::With { limit } => Some(limit),
        }
    }
}

impl Phase for BrowserPhase {
    const KEY: &'static str = "browser";
    const EXPECT_MISSING: &'static str =
        "a case with `browser` must say what the browser's EventSource gets: `expect.browser`";
    const EXPECT_ALONE: &'static str = "`expect.browser` needs `browser: true` to measure it";
    const EXPECT_VALUES: &'static str =
        "streamed, batched, held-until-end, first-byte-delayed, cut, stalled, no-events";
    type Plan = BrowserSpec;
    type Result = BrowserVerdict;
    type Expect = (Option<Delivery>,);

    fn enabled(plan: &BrowserSpec) -> bool {
        plan.plan().is_some()
    }

    async fn measure(
        plan: BrowserSpec,
        through: &Through<'_>,
        main: &Main,
    ) -> Result<BrowserVerdict, ScenarioError> {
        let limit = plan.plan().unwrap_or(false);
        // The browser's request is the first on the scenario's path after it was asked to open it; its
        // sends are offsets from the instant the origin received it (the page's clock starts a moment
        // before, when it created the EventSource).
        let reference = |asked: Instant| through.sends_since(asked, &main.sent);
        view(
            &main.sent,
            (&main.recording, &main.verdict),
            limit,
            &reference,
        )
        .await
        .map_err(ScenarioError::Browser)
    }

    fn findings(b: &BrowserVerdict) -> Vec<Finding> {
        b.findings.clone()
    }

    fn expectation(
        (want,): (Option<Delivery>,),
        got: Option<&BrowserVerdict>,
        failures: &mut Vec<String>,
    ) {
        let Some(want) = want else { return };
        match got {
            Some(b) if b.delivery != want => failures.push(format!(
                "expected the browser's delivery `{want}`, measured `{}` ({})",
                b.delivery, b.agreement
            )),
            Some(_) => {}
            None => failures.push("expected a browser probe, but none ran".into()),
        }
    }

    fn snapshot(b: &BrowserVerdict, s: &mut String) {
        // The browser's version and timings vary; its delivery, events and agreement do not.
        let _ = writeln!(
            s,
            "browser: {} events, delivery {}{}",
            b.events.len(),
            b.delivery,
            match b.reader {
                Reader::EventSource => "",
                Reader::Fetch => " (fetch() reader)",
            }
        );
        let _ = writeln!(
            s,
            "  agrees with ssegate: {}",
            if b.agrees { "yes" } else { "no" }
        );
        if let Some(l) = &b.connection_limit {
            let _ = writeln!(
                s,
                "  connection limit: {} of {} EventSources opened at once over {}; limited: {}",
                l.opened_at_once,
                l.streams,
                l.version,
                match (l.measured, l.limited) {
                    (false, _) => "not measured",
                    (true, true) => "yes",
                    (true, false) => "no",
                }
            );
        }
    }

    fn human(b: &BrowserVerdict, s: &mut String) {
        human(s, b);
    }
}

/// The browser's lines: its delivery and events, the agreement, and the connection limit.
pub fn human(s: &mut String, b: &BrowserVerdict) {
    use crate::text::human_duration;
    let at = |d: Option<Duration>| d.map_or_else(|| "never".into(), human_duration);
    let _ = writeln!(
        s,
        "browser: {}{}: delivery {}, {} events (opened {}, first at {}, last at {}){}",
        b.program,
        match b.reader {
            Reader::EventSource => "",
            Reader::Fetch => " (a fetch() reader: the request is not one EventSource can make)",
        },
        b.delivery,
        b.events.len(),
        at(b.opened),
        at(b.events.first().map(|e| e.at)),
        at(b.events.last().map(|e| e.at)),
        if b.gave_up {
            "; it gave up for good (no reconnect)"
        } else {
            ""
        }
    );
    let _ = writeln!(s, "agreement: {}", b.agreement);
    if let Some(l) = &b.connection_limit {
        let _ = writeln!(
            s,
            "connection limit: {} of {} EventSources on this {} URL opened at once{}",
            l.opened_at_once,
            l.streams,
            l.version,
            match (l.measured, l.limited, l.last_opened) {
                (false, _, _) =>
                    "; not measured: the streams did not stay open long enough to show it".into(),
                (true, false, _) => String::new(),
                (true, true, Some(o)) => format!("; the last waited until {}", human_duration(o)),
                (true, true, None) => "; the last never opened while watched".into(),
            }
        );
    }
}

/// How long the connection-limit measurement watches seven `EventSource`s at most.
pub const LIMIT_WATCH: Duration = Duration::from_secs(12);

/// How a page reads `req`: `EventSource` sends a GET with no body and no headers of the page's;
/// anything else is a page that reads the stream with `fetch()`.
fn page_init(req: &ProbeRequest) -> Option<FetchInit> {
    let extra: Vec<(String, String)> = req
        .headers
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .cloned()
        .collect();
    (!req.method.eq_ignore_ascii_case("GET") || req.body.is_some() || !extra.is_empty()).then(
        || FetchInit {
            method: req.method.clone(),
            headers: extra,
            body: req.body.clone(),
        },
    )
}

/// A real browser's view of `req.url` beside ssegate's `ours`: one `EventSource` watched for the
/// request's duration (or `max_events`), judged against `reference(instant the page was asked to open
/// it)` when the origin's sends are known (else inferred, as ssegate's probe of a URL is), and compared;
/// with `limit`, seven `EventSource`s on the URL for the per-host connection limit.
pub async fn view(
    req: &ProbeRequest,
    ours: (&Recording, &Verdict),
    limit: bool,
    reference: &(dyn Fn(Instant) -> Option<SendInstants> + Sync),
) -> Result<BrowserVerdict, BrowserError> {
    // One browser at a time in the process: Chromium's start costs a core for a second, and two pages
    // would share the machine with each other's streams.
    static BROWSER_TURN: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
    let _turn = BROWSER_TURN.acquire().await.ok();
    let browser = Browser::start().await?;
    let result = watch(&browser, req, ours, limit, reference).await;
    browser.close().await;
    result
}

async fn watch(
    browser: &Browser,
    req: &ProbeRequest,
    ours: (&Recording, &Verdict),
    limit: bool,
    reference: &(dyn Fn(Instant) -> Option<SendInstants> + Sync),
) -> Result<BrowserVerdict, BrowserError> {
    let url = req.url.as_str();
    let (duration, max_events) = (req.limits.duration, req.limits.max_events);
    let fetch = page_init(req);
    let mut types: Vec<String> = ours
        .0
        .events
        .iter()
        .map(|a| a.event.event_type.to_string())
        .filter(|t| t != "message")
        .collect();
    types.sort();
    types.dedup();
    let asked = Instant::now();
    let streams = browser
        .watch(&PageRequest {
            url: url.to_string(),
            streams: 1,
            types: types.clone(),
            duration,
            max_events,
            fetch: fetch.clone(),
        })
        .await?;
    let page = streams.into_iter().next().unwrap_or_default();
    let page_rec = page_recording(&page, url, asked.elapsed());
    let sends = reference(asked);
    let mut view = judge_browser(
        &browser.version,
        &page,
        &page_rec,
        sends.as_ref().map_or(Reference::None, Reference::Sends),
        ours,
    );
    view.reader = if fetch.is_some() {
        Reader::Fetch
    } else {
        Reader::EventSource
    };
    // Seven streams can show the limit only on a URL that opens a stream and keeps it.
    if limit && page.opened.is_some() && !page.gave_up {
        let streams = browser
            .watch(&PageRequest {
                url: url.to_string(),
                streams: LIMIT_STREAMS,
                types,
                duration: duration.min(LIMIT_WATCH),
                max_events: None,
                fetch,
            })
            .await?;
        let (l, finding) = judge_connection_limit(&streams, &ours.0.version);
        view.findings.extend(finding);
        view.connection_limit = Some(l);
    }
    Ok(view)
}
