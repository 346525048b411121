//! Diagnosis from the client side: platform fingerprints and ranked causes with fixes.
//!
//! The rule base is INTERMEDIARIES.md §4 (signature → likely cause). Every cause names the evidence that
//! raised it and how sure it is; `--active` re-probes (e.g. with `Accept-Encoding: identity`) turn a
//! suspicion into a proof or a refutation.

use std::time::Duration;

use serde::Serialize;

use crate::probe::{End, ProbeError, ProbeRequest, Recording, probe};
use crate::verdict::{Delivery, Reference, Verdict, judge};

/// How sure a cause is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
    /// A discriminating re-probe demonstrated it.
    Proved,
}

/// A framework snippet for an origin fix.
#[derive(Debug, Clone, Serialize)]
pub struct Snippet {
    pub framework: &'static str,
    pub code: &'static str,
}

/// One likely cause of what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Cause {
    /// Stable id (`proxy-buffering`, `compression-buffering`, …).
    pub id: &'static str,
    pub title: &'static str,
    pub confidence: Confidence,
    pub evidence: Vec<String>,
    pub origin_fix: &'static str,
    pub snippets: Vec<Snippet>,
    pub operator_fix: &'static str,
}

/// Cause ids the doctor can name.
pub const CAUSE_IDS: &[&str] = &[
    "whole-body-buffering",
    "compression-buffering",
    "proxy-buffering",
    "cached-stream",
    "idle-timeout",
    "duration-cap",
    "first-byte-delay",
    "missing-terminator",
    "added-latency",
];

/// A vendor recognised from the response headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub vendor: &'static str,
    pub evidence: String,
}

/// Recognise platforms from response headers (INTERMEDIARIES.md vendor fingerprints).
pub fn fingerprint(rec: &Recording) -> Vec<Platform> {
    let mut out: Vec<Platform> = Vec::new();
    let mut add = |vendor: &'static str, evidence: String| {
        if !out.iter().any(|p| p.vendor == vendor) {
            out.push(Platform { vendor, evidence });
        }
    };
    for (k, v) in &rec.headers {
        let lv = v.to_ascii_lowercase();
        let kv = format!("{k}: {v}");
        match k.as_str() {
            "cf-ray" => add("Cloudflare", kv),
            "server" if lv.starts_with("cloudflare") => add("Cloudflare", kv),
            "x-amz-cf-id" => add("Amazon CloudFront", kv),
            "via" if lv.contains("cloudfront.net") => add("Amazon CloudFront", kv),
            "x-amzn-requestid" | "apigw-requestid" => add("AWS API Gateway", kv),
            "x-vercel-id" => add("Vercel", kv),
            "server" if lv == "vercel" => add("Vercel", kv),
            "x-nf-request-id" => add("Netlify", kv),
            "fly-request-id" => add("Fly.io", kv),
            "via" if lv.contains("fly.io") => add("Fly.io", kv),
            "via" if lv.contains("vegur") => add("Heroku", kv),
            "server" if lv.starts_with("google frontend") => add("Google front end", kv),
            "via" if lv.contains("google") => add("Google front end", kv),
            "x-azure-ref" => add("Azure Front Door", kv),
            "server" if lv.starts_with("envoy") => add("Envoy", kv),
            k if k.starts_with("x-envoy-") => add("Envoy", kv),
            "x-varnish" => add("Varnish", kv),
            "via" if lv.contains("varnish") => add("Varnish", kv),
            "server" if lv.starts_with("nginx") => add("nginx", kv),
            "server" if lv.starts_with("caddy") => add("Caddy", kv),
            "server" if lv.starts_with("awselb") => add("AWS ALB", kv),
            "server" if lv.starts_with("apache") => add("Apache httpd", kv),
            "via" if lv.contains("squid") => add("Squid", kv),
            _ => {}
        }
    }
    out
}

const EXPRESS_FLUSH: Snippet = Snippet {
    framework: "Express",
    code: "res.set({'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no'});\nres.flushHeaders();\nres.write(`data: ${json}\\n\\n`); res.flush?.(); // flush() exists under compression",
};
const NEXT_HEADERS: Snippet = Snippet {
    framework: "Next.js",
    code: "return new Response(stream, { headers: { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' } });",
};
const STARLETTE_HEADERS: Snippet = Snippet {
    framework: "FastAPI/Starlette",
    code: "StreamingResponse(gen(), media_type='text/event-stream', headers={'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no'})",
};
const GO_FLUSH: Snippet = Snippet {
    framework: "Go",
    code: "w.Header().Set(\"Cache-Control\", \"no-cache, no-transform\"); w.Header().Set(\"X-Accel-Buffering\", \"no\")\nfmt.Fprintf(w, \"data: %s\\n\\n\", msg); w.(http.Flusher).Flush()",
};
const AXUM_SSE: Snippet = Snippet {
    framework: "axum",
    code: "(AppendHeaders([(CACHE_CONTROL, \"no-cache, no-transform\"), (HeaderName::from_static(\"x-accel-buffering\"), \"no\")]), Sse::new(stream).keep_alive(KeepAlive::default()))",
};
const EXPRESS_HEARTBEAT: Snippet = Snippet {
    framework: "Express",
    code: "const hb = setInterval(() => res.write(':\\n\\n'), 15000); req.on('close', () => clearInterval(hb));",
};
const AXUM_HEARTBEAT: Snippet = Snippet {
    framework: "axum",
    code: "Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))",
};
const EXPRESS_FLUSH_HEADERS: Snippet = Snippet {
    framework: "Express",
    code: "res.flushHeaders(); res.write(':ok\\n\\n');",
};
const EXPRESS_TERMINATOR: Snippet = Snippet {
    framework: "Express",
    code: "res.write(`data: ${json}\\n\\n`); // a blank line ends every event",
};

fn header<'a>(rec: &'a Recording, name: &str) -> Option<&'a str> {
    rec.header(name)
}

fn secs(d: Duration) -> String {
    crate::report::human_duration(d)
}

/// Known total-duration caps (seconds) and who has them.
const DURATION_CAPS: &[(u64, &str)] = &[
    (3, "Lambda default timeout"),
    (10, "legacy Vercel Hobby"),
    (15, "Envoy route timeout / legacy Vercel Pro"),
    (29, "API Gateway integration timeout"),
    (30, "GCP load balancer backend timeout"),
    (60, "Traefik readTimeout / Netlify sync functions"),
    (230, "Azure App Service"),
    (300, "Vercel maxDuration / Cloud Run default"),
    (600, "Varnish send_timeout"),
    (900, "API Gateway stream / Lambda maximum"),
];

/// Rank likely causes of what `rec` shows (judged as `v`).
pub fn diagnose(rec: &Recording, v: &Verdict) -> Vec<Cause> {
    let mut causes: Vec<Cause> = Vec::new();
    let held = matches!(v.delivery, Delivery::HeldUntilEnd | Delivery::Batched);
    let cl = header(rec, "content-length");
    let ce = header(rec, "content-encoding").filter(|c| {
        !matches!(
            c.trim().to_ascii_lowercase().as_str(),
            "identity" | "none" | ""
        )
    });
    let platforms = fingerprint(rec);
    let vendor_note = |names: &[&str]| -> Vec<String> {
        platforms
            .iter()
            .filter(|p| names.contains(&p.vendor))
            .map(|p| format!("platform: {} ({})", p.vendor, p.evidence))
            .collect()
    };

    // R1: everything at the end with a Content-Length.
    if let Some(cl) = cl {
        let mut evidence = vec![format!("Content-Length: {cl} on an event stream")];
        if held {
            evidence.push(format!("delivery {}", v.delivery));
        }
        evidence.extend(vendor_note(&[
            "AWS API Gateway",
            "Vercel",
            "Netlify",
            "Amazon CloudFront",
        ]));
        causes.push(Cause {
            id: "whole-body-buffering",
            title: "a layer buffers the whole body and sends it with a Content-Length (serverless function, API gateway)",
            confidence: if held { Confidence::High } else { Confidence::Medium },
            evidence,
            origin_fix: "return a streaming body (a ReadableStream / generator) and never set Content-Length",
            snippets: vec![NEXT_HEADERS, STARLETTE_HEADERS],
            operator_fix: "enable response streaming (Lambda InvokeMode RESPONSE_STREAM, API Gateway responseTransferMode STREAM, APIM buffer-response=\"false\")",
        });
    }
    // R4: compressed and held.
    if let Some(ce) = ce {
        let mut evidence = vec![format!("Content-Encoding: {ce}")];
        if let Some(vary) = header(rec, "vary") {
            evidence.push(format!("Vary: {vary} (Express compression adds it)"));
        }
        if held {
            evidence.push(format!("delivery {}", v.delivery));
        }
        evidence.extend(vendor_note(&["Fly.io", "Caddy", "Cloudflare"]));
        causes.push(Cause {
            id: "compression-buffering",
            title: "a compression layer holds events until its buffer fills (Express compression without res.flush(), Fly.io proxy, old Starlette GZip)",
            confidence: if held { Confidence::High } else { Confidence::Low },
            evidence,
            origin_fix: "send `Cache-Control: no-cache, no-transform` (or `Content-Encoding: none` on Fly.io), or call res.flush() after each event",
            snippets: vec![EXPRESS_FLUSH, NEXT_HEADERS, STARLETTE_HEADERS, GO_FLUSH, AXUM_SSE],
            operator_fix: "exclude text/event-stream from compression (compression `filter`, nginx gzip_types, Traefik excludedContentTypes)",
        });
    }
    // R2/R3: held without either header is a proxy buffer; so is held behind a recognised proxy, whatever
    // the coding (nginx gzip on a buffered location holds because of the buffer, not the compressor).
    let proxy_seen = !vendor_note(&[
        "nginx",
        "Apache httpd",
        "Azure Front Door",
        "Varnish",
        "Envoy",
    ])
    .is_empty();
    if held && cl.is_none() && (ce.is_none() || proxy_seen) {
        let mut evidence = vec![format!("delivery {}", v.delivery)];
        let clumps: Vec<u64> = v
            .bursts
            .iter()
            .filter(|b| b.events > 1)
            .map(|b| b.bytes)
            .collect();
        let buffer_like = v.has("clumped-at-buffer-size");
        if !clumps.is_empty() {
            evidence.push(format!("clumps of {clumps:?} bytes"));
        }
        let nginx = vendor_note(&["nginx", "Apache httpd", "Azure Front Door"]);
        let conf = if buffer_like || !nginx.is_empty() {
            Confidence::High
        } else {
            Confidence::Medium
        };
        evidence.extend(nginx);
        causes.push(Cause {
            id: "proxy-buffering",
            title: "a reverse proxy buffers the response (nginx proxy_buffering on, Apache mod_proxy_fcgi, a gateway response buffer)",
            confidence: conf,
            evidence,
            origin_fix: "send `X-Accel-Buffering: no` (nginx honours it per response)",
            snippets: vec![EXPRESS_FLUSH, NEXT_HEADERS, STARLETTE_HEADERS, GO_FLUSH, AXUM_SSE],
            operator_fix: "nginx: `proxy_buffering off;` (and `proxy_http_version 1.1;` before 1.29.7) for the SSE location",
        });
    }
    // R8: a cached stream.
    let cache_hits: Vec<String> = rec
        .headers
        .iter()
        .filter(|(k, v)| {
            let lv = v.to_ascii_lowercase();
            (k == "age" && v.trim() != "0")
                || (matches!(k.as_str(), "x-cache" | "cf-cache-status" | "x-cache-status")
                    && lv.contains("hit"))
        })
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    if !cache_hits.is_empty() {
        causes.push(Cause {
            id: "cached-stream",
            title: "a cache stored the stream and replays it (CDN cache-everything rule, Varnish default TTL, Bunny)",
            confidence: Confidence::High,
            evidence: cache_hits,
            origin_fix: "send `Cache-Control: no-cache, no-store` (or `private`)",
            snippets: vec![NEXT_HEADERS, STARLETTE_HEADERS],
            operator_fix: "bypass the cache for event streams (Varnish `return (pass)`, CDN cache rule off)",
        });
    }
    // R6/R7: cuts.
    if v.delivery == Delivery::Cut
        && let End::Aborted { .. } | End::Complete = rec.end
    {
        let last = rec.last_read_at().unwrap_or(rec.headers_at);
        let silence = rec.ended_at.saturating_sub(last);
        let t = rec.ended_at.as_secs();
        let known: Vec<String> = DURATION_CAPS
            .iter()
            .filter(|(cap, _)| t.abs_diff(*cap) <= 1)
            .map(|(cap, who)| format!("{cap} s matches {who}"))
            .collect();
        // A cut during a long silence points at an idle timeout; a cut while bytes flowed, or at a
        // well-known total, at a duration cap. One observation rarely proves either: both are listed.
        let quiet = silence >= Duration::from_millis(500);
        causes.push(Cause {
            id: "idle-timeout",
            title: "an idle timeout closed the stream after a silence (nginx proxy_read_timeout 60 s, ALB 60 s, Cloudflare 100 s, CloudFront 30 s)",
            confidence: match (quiet, silence >= Duration::from_secs(1), known.is_empty()) {
                (true, true, true) => Confidence::High,
                (true, _, _) => Confidence::Medium,
                _ => Confidence::Low,
            },
            evidence: vec![format!(
                "cut at {} after {} without a byte",
                secs(rec.ended_at),
                secs(silence)
            )],
            origin_fix: "send a heartbeat comment (`:\\n\\n`) at least every 15 s",
            snippets: vec![EXPRESS_HEARTBEAT, AXUM_HEARTBEAT],
            operator_fix: "raise the idle timeout (nginx `proxy_read_timeout`, ALB idle_timeout)",
        });
        let mut evidence = vec![format!(
            "cut at {}, {} after the last read",
            secs(rec.ended_at),
            secs(silence)
        )];
        evidence.extend(known.clone());
        causes.push(Cause {
            id: "duration-cap",
            title: "a total-duration cap ended the stream regardless of traffic (function timeout, Envoy route timeout)",
            confidence: match (known.is_empty(), quiet) {
                (false, _) => Confidence::High,
                (true, false) => Confidence::Medium,
                (true, true) => Confidence::Low,
            },
            evidence,
            origin_fix: "end streams before the cap and let EventSource reconnect with Last-Event-ID; heartbeats do not help",
            snippets: vec![],
            operator_fix: "raise the platform's maximum duration (maxDuration, Lambda timeout, Envoy route timeout 0s)",
        });
    }
    // R5: headers late.
    if v.has("first-byte-delayed") || v.has("headers-with-first-event") {
        let evidence = v
            .findings
            .iter()
            .filter(|f| matches!(f.id(), "first-byte-delayed" | "headers-with-first-event"))
            .map(|f| format!("{}: {}", f.id(), f.evidence))
            .collect();
        // When a buffer already explains the late headers, this is a consequence, not a cause.
        let explained = held;
        causes.push(Cause {
            id: "first-byte-delay",
            title: "the headers arrive only with the first event: first-byte timeouts (25-100 s) will cut slow streams",
            confidence: if explained {
                Confidence::Low
            } else {
                Confidence::Medium
            },
            evidence,
            origin_fix: "flush headers at once and send a `:ok` comment immediately",
            snippets: vec![EXPRESS_FLUSH_HEADERS],
            operator_fix: "stop the hop from withholding headers until the body (a buffering proxy or compressor)",
        });
    }
    // R11: framing.
    if v.has("event-not-terminated") || v.has("no-events-dispatched") {
        causes.push(Cause {
            id: "missing-terminator",
            title: "events are not ended by a blank line, so the browser dispatches late or never",
            confidence: Confidence::High,
            evidence: v
                .findings
                .iter()
                .filter(|f| matches!(f.id(), "event-not-terminated" | "no-events-dispatched"))
                .map(|f| format!("{}: {}", f.id(), f.evidence))
                .collect(),
            origin_fix: "end every event with `\\n\\n`",
            snippets: vec![EXPRESS_TERMINATOR],
            operator_fix: "none: the origin's framing is wrong",
        });
    }
    // R10: late but one by one.
    if v.has("added-latency") {
        causes.push(Cause {
            id: "added-latency",
            title: "every event is a little late but not batched: Nagle's algorithm or a periodic flusher",
            confidence: Confidence::Low,
            evidence: v
                .findings
                .iter()
                .filter(|f| f.id() == "added-latency")
                .map(|f| f.evidence.clone())
                .collect(),
            origin_fix: "set TCP_NODELAY and write each event in one call",
            snippets: vec![],
            operator_fix: "look for a flush interval on the proxy",
        });
    }
    rank(&mut causes);
    causes
}

fn rank(causes: &mut [Cause]) {
    // Stable: within one confidence, rule-base order (R1 before R4 before R2/R3 …).
    causes.sort_by_key(|c| std::cmp::Reverse(c.confidence));
}

/// What `doctor` was asked.
#[derive(Debug, Clone)]
pub struct DoctorRequest {
    pub target: ProbeRequest,
    /// A URL of the same stream without the infrastructure (usually the local server).
    pub compare: Option<ProbeRequest>,
    /// Run discriminating re-probes.
    pub active: bool,
}

/// One discriminating re-probe and what it showed.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveProbe {
    pub name: &'static str,
    pub change: String,
    pub delivery: Delivery,
    pub conclusion: String,
}

/// Everything `doctor` found.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    pub recording: Recording,
    pub verdict: Verdict,
    pub compare: Option<Recording>,
    pub platforms: Vec<Platform>,
    pub causes: Vec<Cause>,
    pub active: Vec<ActiveProbe>,
}

/// Probe (and compare), classify, fingerprint, rank causes, and optionally re-probe to prove them.
pub async fn doctor(req: &DoctorRequest) -> Result<DoctorReport, ProbeError> {
    let compare = match &req.compare {
        Some(c) => Some(probe(c).await?),
        None => None,
    };
    let rec = probe(&req.target).await?;
    let reference = compare
        .as_ref()
        .map_or(Reference::None, Reference::Baseline);
    let verdict = judge(&rec, reference);
    let mut causes = diagnose(&rec, &verdict);
    let mut active = Vec::new();
    if req.active {
        // R4's test: the same request without Accept-Encoding.
        if header(&rec, "content-encoding").is_some() || verdict.delivery != Delivery::Streamed {
            let mut again = req.target.clone();
            again.compression = false;
            again
                .headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("accept-encoding"));
            again
                .headers
                .push(("Accept-Encoding".into(), "identity".into()));
            let r2 = probe(&again).await?;
            let v2 = judge(
                &r2,
                compare
                    .as_ref()
                    .map_or(Reference::None, Reference::Baseline),
            );
            let proved =
                v2.delivery == Delivery::Streamed && verdict.delivery != Delivery::Streamed;
            let conclusion = if proved {
                "without compression the stream is live: a compression layer holds the events"
                    .to_string()
            } else {
                format!(
                    "still {} without compression: compression is not the (only) cause",
                    v2.delivery
                )
            };
            if let Some(c) = causes.iter_mut().find(|c| c.id == "compression-buffering") {
                if proved {
                    c.confidence = Confidence::Proved;
                } else {
                    c.confidence = Confidence::Low;
                }
                c.evidence.push(format!(
                    "re-probe with Accept-Encoding: identity → {}",
                    v2.delivery
                ));
            }
            // Still held without compression: something else buffers, most likely a proxy.
            if !proved && matches!(v2.delivery, Delivery::HeldUntilEnd | Delivery::Batched) {
                let note = format!(
                    "re-probe with Accept-Encoding: identity still {}: the holding is not the compressor's",
                    v2.delivery
                );
                if let Some(c) = causes.iter_mut().find(|c| c.id == "proxy-buffering") {
                    c.confidence = c.confidence.max(Confidence::High);
                    c.evidence.push(note);
                } else if header(&rec, "content-length").is_none() {
                    let mut extra = diagnose(&r2, &v2)
                        .into_iter()
                        .filter(|c| c.id == "proxy-buffering")
                        .collect::<Vec<_>>();
                    for c in &mut extra {
                        c.evidence.push(note.clone());
                    }
                    causes.extend(extra);
                }
            }
            if proved && !causes.iter().any(|c| c.id == "compression-buffering") {
                causes.push(Cause {
                    id: "compression-buffering",
                    title: "a compression layer holds events until its buffer fills",
                    confidence: Confidence::Proved,
                    evidence: vec!["re-probe with Accept-Encoding: identity streams".into()],
                    origin_fix: "send `Cache-Control: no-cache, no-transform`, or call res.flush() after each event",
                    snippets: vec![EXPRESS_FLUSH],
                    operator_fix: "exclude text/event-stream from compression",
                });
            }
            active.push(ActiveProbe {
                name: "identity",
                change: "Accept-Encoding: identity".into(),
                delivery: v2.delivery,
                conclusion,
            });
            rank(&mut causes);
        }
    }
    let platforms = fingerprint(&rec);
    Ok(DoctorReport {
        recording: rec,
        verdict,
        compare,
        platforms,
        causes,
        active,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::probe::testing::recording as rec;

    const SSE: (&str, &str) = ("content-type", "text/event-stream");

    #[test]
    fn fingerprints_vendors() {
        let r = rec(
            &[
                SSE,
                ("cf-ray", "8a-AMS"),
                ("server", "cloudflare"),
                ("x-vercel-id", "fra1::x"),
            ],
            &[10],
            20,
            End::Complete,
        );
        let p: Vec<&str> = fingerprint(&r).iter().map(|p| p.vendor).collect();
        assert_eq!(p, vec!["Cloudflare", "Vercel"]);
    }

    #[test]
    fn content_length_and_all_at_end_is_whole_body_buffering() {
        let base = rec(&[SSE], &[400, 800, 1200, 1600], 1601, End::Complete);
        let r = rec(
            &[SSE, ("content-length", "80")],
            &[1602, 1602, 1602, 1602],
            1603,
            End::Complete,
        );
        let v = judge(&r, Reference::Baseline(&base));
        let c = diagnose(&r, &v);
        assert_eq!(c[0].id, "whole-body-buffering");
        assert_eq!(c[0].confidence, Confidence::High);
    }

    #[test]
    fn held_without_length_or_coding_behind_nginx_is_proxy_buffering() {
        let base = rec(&[SSE], &[400, 800, 1200, 1600], 1601, End::Complete);
        let r = rec(
            &[SSE, ("server", "nginx/1.22.1")],
            &[1602, 1602, 1602, 1602],
            1603,
            End::Complete,
        );
        let v = judge(&r, Reference::Baseline(&base));
        let c = diagnose(&r, &v);
        assert_eq!(c[0].id, "proxy-buffering");
        assert_eq!(c[0].confidence, Confidence::High);
        assert!(c[0].evidence.iter().any(|e| e.contains("nginx")));
    }

    #[test]
    fn compressed_and_held_is_compression_buffering() {
        let base = rec(&[SSE], &[400, 800, 1200, 1600], 1601, End::Complete);
        let r = rec(
            &[
                SSE,
                ("content-encoding", "gzip"),
                ("vary", "Accept-Encoding"),
            ],
            &[1602, 1602, 1602, 1602],
            1603,
            End::Complete,
        );
        let v = judge(&r, Reference::Baseline(&base));
        let c = diagnose(&r, &v);
        assert_eq!(c[0].id, "compression-buffering");
        assert!(!c.iter().any(|c| c.id == "proxy-buffering"));
    }

    #[test]
    fn cuts_after_silence_are_idle_timeouts_and_busy_cuts_are_caps() {
        let base = rec(&[SSE], &[400, 800, 1200, 1600, 2000], 2001, End::Complete);
        let aborted = End::Aborted {
            reason: "eof".into(),
        };
        let idle = rec(&[SSE], &[400, 800], 1900, aborted.clone());
        let v = judge(&idle, Reference::Baseline(&base));
        assert_eq!(diagnose(&idle, &v)[0].id, "idle-timeout");
        let busy = rec(&[SSE], &[400, 800, 1200], 1210, aborted);
        let v = judge(&busy, Reference::Baseline(&base));
        assert_eq!(diagnose(&busy, &v)[0].id, "duration-cap");
    }

    #[test]
    fn cache_hits_are_cached_streams() {
        let r = rec(
            &[SSE, ("age", "12"), ("x-cache", "HIT")],
            &[5, 5],
            6,
            End::Complete,
        );
        let v = judge(&r, Reference::None);
        let c = diagnose(&r, &v);
        assert_eq!(c[0].id, "cached-stream");
        assert_eq!(c[0].evidence.len(), 2);
    }

    #[test]
    fn cause_ids_are_listed() {
        for id in [
            "proxy-buffering",
            "compression-buffering",
            "whole-body-buffering",
            "idle-timeout",
            "duration-cap",
            "first-byte-delay",
            "cached-stream",
        ] {
            assert!(CAUSE_IDS.contains(&id));
        }
    }
}
