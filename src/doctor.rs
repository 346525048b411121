//! Diagnosis from the client side: platform fingerprints and ranked causes with fixes.
//!
//! The rule base is INTERMEDIARIES.md §4 (signature → likely cause). Every cause names the evidence that
//! raised it and how sure it is; `--active` re-probes (e.g. with `Accept-Encoding: identity`) turn a
//! suspicion into a proof or a refutation.

use std::time::Duration;

use serde::Serialize;

use crate::probe::{End, ProbeError, ProbeRequest, Recording, probe};
use crate::verdict::{Delivery, FindingId, Reference, Verdict, judge};

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

/// Whether a cause explains breakage that happened, or is a risk on a stream that streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CauseKind {
    /// A likely cause of what was measured.
    Cause,
    /// Nothing broke here (or a streaming reference shares the property): a risk behind other hops.
    Risk,
}

/// One likely cause of what was measured (or, on a stream that streamed, a risk).
#[derive(Debug, Clone, Serialize)]
pub struct Cause {
    /// Stable id (`proxy-buffering`, `compression-buffering`, …).
    pub id: CauseId,
    pub kind: CauseKind,
    pub title: String,
    pub confidence: Confidence,
    pub evidence: Vec<String>,
    pub origin_fix: String,
    pub snippets: Vec<Snippet>,
    pub operator_fix: String,
}

impl Cause {
    pub fn is_risk(&self) -> bool {
        self.kind == CauseKind::Risk
    }

    /// Keep only the snippets of `stack`, when it has any.
    fn keep_snippets_of(&mut self, stack: Option<Stack>) {
        let Some(st) = stack else { return };
        let mine: Vec<Snippet> = self
            .snippets
            .iter()
            .filter(|sn| sn.framework == st.framework())
            .cloned()
            .collect();
        if !mine.is_empty() {
            self.snippets = mine;
        }
    }
}

/// The web stack of an origin: it picks the snippets shown with a fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Stack {
    Express,
    Fastify,
    Nextjs,
    Starlette,
    Flask,
    Django,
    Go,
    Rails,
    Axum,
}

impl Stack {
    /// The framework name the snippets carry.
    pub fn framework(self) -> &'static str {
        match self {
            Stack::Express => "Express",
            Stack::Fastify => "Fastify",
            Stack::Nextjs => "Next.js",
            Stack::Starlette => "FastAPI/Starlette",
            Stack::Flask => "Flask",
            Stack::Django => "Django",
            Stack::Go => "Go",
            Stack::Rails => "Rails",
            Stack::Axum => "axum",
        }
    }

    /// Recognise the stack: by the framework's own signs in the response, then by the project's files
    /// (where the command runs, and beside the script it names), then by the server's name, then by the
    /// command's words. A server's name says little: Django runs under uvicorn as FastAPI does.
    pub fn detect(
        rec: &Recording,
        command: Option<&crate::origin::command::CommandSpec>,
    ) -> Option<Stack> {
        Stack::from_framework_headers(rec)
            .or_else(|| command.and_then(Stack::from_project))
            .or_else(|| Stack::from_server_header(rec))
            .or_else(|| command.and_then(Stack::from_argv))
    }

    /// Headers a framework itself adds.
    fn from_framework_headers(rec: &Recording) -> Option<Stack> {
        let h = |n: &str| rec.header(n).map(|v| v.trim().to_ascii_lowercase());
        let powered = h("x-powered-by").unwrap_or_default();
        if powered.contains("next.js") {
            return Some(Stack::Nextjs);
        }
        if powered.contains("express") {
            return Some(Stack::Express);
        }
        if h("x-runtime").is_some() {
            return Some(Stack::Rails);
        }
        // Django's SecurityMiddleware defaults, together.
        let same_origin = |n: &str| h(n).as_deref() == Some("same-origin");
        if same_origin("cross-origin-opener-policy") && same_origin("referrer-policy") {
            return Some(Stack::Django);
        }
        None
    }

    /// The `Server` header: which server runs the app, not which framework it is.
    fn from_server_header(rec: &Recording) -> Option<Stack> {
        let v = rec.header("server")?.trim().to_ascii_lowercase();
        [
            ("werkzeug", Stack::Flask),
            ("uvicorn", Stack::Starlette),
            ("hypercorn", Stack::Starlette),
            ("wsgiserver", Stack::Django),
            ("daphne", Stack::Django),
            ("puma", Stack::Rails),
        ]
        .iter()
        .find(|(w, _)| v.starts_with(w))
        .map(|(_, s)| *s)
    }

    /// The project's own files: `manage.py`, `package.json`'s dependencies, `Cargo.toml`, `go.mod`,
    /// `Gemfile`, Python requirements.
    fn from_project(command: &crate::origin::command::CommandSpec) -> Option<Stack> {
        let cwd = command
            .cwd
            .clone()
            .or_else(|| std::env::current_dir().ok())?;
        // The directory the command runs in, and those of the files it names (`python app/manage.py`).
        let mut dirs = vec![cwd.clone()];
        for arg in command.argv.iter().skip(1) {
            let path = cwd.join(arg);
            if path.is_file()
                && let Some(d) = path.parent()
                && !dirs.iter().any(|x| x == d)
            {
                dirs.push(d.to_path_buf());
            }
        }
        dirs.iter().find_map(|d| project_stack(d))
    }

    /// Words of the command that started the server.
    fn from_argv(command: &crate::origin::command::CommandSpec) -> Option<Stack> {
        let argv = command.argv.join(" ").to_ascii_lowercase();
        let has = |w: &str| {
            argv.split(|c: char| !c.is_ascii_alphanumeric() && c != '.')
                .any(|t| t == w)
        };
        [
            ("fastify", Stack::Fastify),
            ("next", Stack::Nextjs),
            ("flask", Stack::Flask),
            ("manage.py", Stack::Django),
            ("daphne", Stack::Django),
            ("django", Stack::Django),
            ("uvicorn", Stack::Starlette),
            ("fastapi", Stack::Starlette),
            ("hypercorn", Stack::Starlette),
            ("rails", Stack::Rails),
            ("puma", Stack::Rails),
            ("cargo", Stack::Axum),
            ("go", Stack::Go),
            ("express", Stack::Express),
            ("node", Stack::Express),
        ]
        .iter()
        .find(|(w, _)| has(w))
        .map(|(_, s)| *s)
    }
}

/// The stack a project directory's files name, if any.
fn project_stack(dir: &std::path::Path) -> Option<Stack> {
    // Project files are small; a bound keeps a huge or endless one from costing anything.
    let read = |name: &str| -> Option<String> {
        use std::io::Read;
        let mut text = String::new();
        std::fs::File::open(dir.join(name))
            .ok()?
            .take(1 << 20)
            .read_to_string(&mut text)
            .ok()?;
        Some(text.to_ascii_lowercase())
    };
    if dir.join("manage.py").is_file() {
        return Some(Stack::Django);
    }
    if let Some(pkg) = read("package.json") {
        let deps: Vec<String> = serde_json::from_str::<serde_json::Value>(&pkg)
            .ok()
            .map(|v| {
                ["dependencies", "devDependencies"]
                    .iter()
                    .filter_map(|k| v.get(k)?.as_object())
                    .flat_map(|o| o.keys().cloned())
                    .collect()
            })
            .unwrap_or_default();
        let dep = |n: &str| deps.iter().any(|d| d == n);
        for (name, stack) in [
            ("next", Stack::Nextjs),
            ("fastify", Stack::Fastify),
            ("express", Stack::Express),
        ] {
            if dep(name) {
                return Some(stack);
            }
        }
    }
    if read("Cargo.toml").is_some_and(|t| t.contains("axum")) {
        return Some(Stack::Axum);
    }
    if dir.join("go.mod").is_file() {
        return Some(Stack::Go);
    }
    if read("Gemfile").is_some_and(|t| t.contains("rails")) {
        return Some(Stack::Rails);
    }
    let python = ["requirements.txt", "pyproject.toml", "Pipfile"]
        .iter()
        .filter_map(|f| read(f))
        .collect::<Vec<_>>()
        .join("\n");
    [
        ("django", Stack::Django),
        ("flask", Stack::Flask),
        ("fastapi", Stack::Starlette),
        ("starlette", Stack::Starlette),
    ]
    .iter()
    .find(|(w, _)| python.contains(w))
    .map(|(_, s)| *s)
}

pub use crate::cause_id::CauseId;

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
            "x-cache" | "x-cache-lookup" if lv.contains("squid") => add("Squid", kv),
            "server" if lv.starts_with("h2o") => add("h2o", kv),
            "server" if lv.starts_with("lighttpd") => add("lighttpd", kv),
            "server" if lv.starts_with("ats/") => add("Traffic Server", kv),
            "x-powered-by" if lv == "express" => add("Express", kv),
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
const FLASK_STREAM: Snippet = Snippet {
    framework: "Flask",
    code: "return Response(stream_with_context(gen()), mimetype='text/event-stream', headers={'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no'})  # yield f'data: {msg}\\n\\n'; run threaded or under gevent",
};
const FASTIFY_HIJACK: Snippet = Snippet {
    framework: "Fastify",
    code: "reply.raw.writeHead(200, {'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no'}); reply.hijack();\nreply.raw.write(`data: ${json}\\n\\n`); // @fastify/compress: register with { encodings: [], customTypes: /^(?!text\\/event-stream)/ } or skip the route",
};
const DJANGO_STREAM: Snippet = Snippet {
    framework: "Django",
    code: "r = StreamingHttpResponse(gen(), content_type='text/event-stream'); r['Cache-Control'] = 'no-cache, no-transform'; r['X-Accel-Buffering'] = 'no'; return r  # ASGI server; GZipMiddleware skips no streaming",
};
const RAILS_LIVE: Snippet = Snippet {
    framework: "Rails",
    code: "include ActionController::Live\nresponse.headers['Content-Type'] = 'text/event-stream'; response.headers['Cache-Control'] = 'no-cache, no-transform'; response.headers['X-Accel-Buffering'] = 'no'\nresponse.stream.write(\"data: #{json}\\n\\n\") # Rack::Deflater: exclude the route",
};

/// Every snippet for flushing events through buffers and compressors, one per stack.
fn all_flush_snippets() -> Vec<Snippet> {
    vec![
        EXPRESS_FLUSH,
        FASTIFY_HIJACK,
        NEXT_HEADERS,
        STARLETTE_HEADERS,
        FLASK_STREAM,
        DJANGO_STREAM,
        GO_FLUSH,
        RAILS_LIVE,
        AXUM_SSE,
    ]
}

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
    crate::text::human_duration(d)
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
///
/// `streaming` is a recording of the same stream that streamed (the direct baseline): a property it
/// shares cannot be the cause, and is reported as a risk instead. On a stream that streamed, every entry
/// is a risk. `stack` picks the snippets; `local` says nothing stands between the origin and the probe,
/// so causes that blame an intermediary are the server's own.
pub fn diagnose(
    rec: &Recording,
    v: &Verdict,
    streaming: Option<&Recording>,
    stack: Option<Stack>,
    local: bool,
) -> Vec<Cause> {
    let mut causes = raw_causes(rec, v, streaming, local);
    let shared = |c: &Cause| -> Option<String> {
        let base = streaming?;
        let same = |name: &str| header(base, name).is_some() && header(rec, name).is_some();
        match c.id {
            CauseId::WholeBodyBuffering if same("content-length") => Some("Content-Length"),
            CauseId::CompressionBuffering if same("content-encoding") => Some("Content-Encoding"),
            _ => None,
        }
        .map(|h| {
            format!("the streaming direct stream carries {h} too, so it is not what held this one")
        })
    };
    for c in &mut causes {
        if let Some(why) = shared(c) {
            c.kind = CauseKind::Risk;
            c.evidence.push(why);
        } else if matches!(v.delivery, Delivery::Streamed | Delivery::Inconclusive) {
            c.kind = CauseKind::Risk;
        }
        c.keep_snippets_of(stack);
    }
    for p in fingerprint(rec) {
        measured_behaviour(&mut causes, &p);
    }
    rank(&mut causes);
    causes
}

/// The real program a recognised platform is, when the conformance suite runs it.
fn program_of(vendor: &str) -> Option<&'static crate::intermediary::program::Program> {
    use crate::intermediary::programs as p;
    Some(match vendor {
        "nginx" => &p::NGINX,
        "Caddy" => &p::CADDY,
        "Apache httpd" => &p::APACHE,
        "Varnish" => &p::VARNISH,
        "Squid" => &p::SQUID,
        "h2o" => &p::H2O,
        "lighttpd" => &p::LIGHTTPD,
        "Traffic Server" => &p::TRAFFICSERVER,
        "Express" => &p::EXPRESS,
        "Envoy" => &p::ENVOY,
        _ => return None,
    })
}

/// A recognised program whose configs the suite measured causing one of `causes`: that cause gains the
/// evidence and one step of confidence (it is what this program is known, by measurement, to do).
fn measured_behaviour(causes: &mut [Cause], platform: &Platform) {
    let Some(program) = program_of(platform.vendor) else {
        return;
    };
    let configs = std::iter::once(&program.default_config).chain(program.matrix);
    for config in configs {
        let Some((id, fix)) = (program.known_cause)(config) else {
            continue;
        };
        for c in causes.iter_mut().filter(|c| c.id == id) {
            let note = format!(
                "platform: {} ({}); the conformance suite measured `{}: {config}` doing this (fix: {fix})",
                platform.vendor, platform.evidence, program.name
            );
            if c.evidence.contains(&note) {
                continue;
            }
            c.evidence.push(note);
            c.confidence = match c.confidence {
                Confidence::Low => Confidence::Medium,
                Confidence::Medium => Confidence::High,
                other => other,
            };
        }
    }
}

/// What the rules of the rule base look at in one recording.
struct Signs<'a> {
    rec: &'a Recording,
    v: &'a Verdict,
    /// The events were held (all until the end, or in clumps).
    held: bool,
    content_length: Option<&'a str>,
    /// The streaming reference carries a Content-Length too: it is the origin's, not a buffering layer's.
    content_length_shared: bool,
    /// A content coding other than identity.
    content_encoding: Option<&'a str>,
    platforms: Vec<Platform>,
    /// Nothing stands between the origin and the probe: what would blame an intermediary is the
    /// server's own doing, and the cause says so where it is built.
    local: bool,
}

impl<'a> Signs<'a> {
    fn new(
        rec: &'a Recording,
        v: &'a Verdict,
        streaming: Option<&Recording>,
        local: bool,
    ) -> Signs<'a> {
        Signs {
            rec,
            v,
            held: matches!(v.delivery, Delivery::HeldUntilEnd | Delivery::Batched),
            content_length: header(rec, "content-length"),
            content_length_shared: streaming.is_some_and(|b| header(b, "content-length").is_some()),
            content_encoding: header(rec, "content-encoding").filter(|c| {
                !matches!(
                    c.trim().to_ascii_lowercase().as_str(),
                    "identity" | "none" | ""
                )
            }),
            platforms: fingerprint(rec),
            local,
        }
    }

    /// Evidence lines for the recognised platforms among `names`.
    fn vendor_note(&self, names: &[&str]) -> Vec<String> {
        self.platforms
            .iter()
            .filter(|p| names.contains(&p.vendor))
            .map(|p| format!("platform: {} ({})", p.vendor, p.evidence))
            .collect()
    }

    /// `id: evidence` of every finding among `ids`.
    fn findings(&self, ids: &[FindingId]) -> Vec<String> {
        self.v
            .findings
            .iter()
            .filter(|f| ids.contains(&f.id()))
            .map(|f| format!("{}: {}", f.id(), f.evidence))
            .collect()
    }
}

/// The operator fix of a cause on a server ssegate started: there is no operator.
const NO_OPERATOR: &str = "none: nothing stands between this server and the probe";

/// What a cause is called and what fixes it, chosen where the cause is built: on a server ssegate
/// started ([`Signs::local`]) the causes that would blame an intermediary are worded as the server's own.
struct Wording {
    id: CauseId,
    title: &'static str,
    origin_fix: String,
    operator_fix: &'static str,
}

impl Wording {
    /// Held on a server with nothing in front of it: the server buffers its own output.
    fn origin_buffering() -> Wording {
        Wording {
            id: CauseId::OriginBuffering,
            title: "the server itself buffers its output before writing (a response buffer, output_buffering, a sync generator under ASGI, no flush)",
            origin_fix: "write and flush each event as it is produced (res.flush(), Flusher.Flush(), a streaming response; Django: an async generator)".into(),
            operator_fix: NO_OPERATOR,
        }
    }

    /// A cut on a server ssegate started: no intermediary's timeout, the server ended the response.
    fn origin_abort() -> Wording {
        Wording {
            id: CauseId::OriginAbort,
            title: "the server ended the response abruptly (an exception, a handler or write timeout)",
            origin_fix: "find why the handler stops (logs; Go http.Server.WriteTimeout; framework request timeouts) and end streams cleanly".into(),
            operator_fix: NO_OPERATOR,
        }
    }

    /// The cause with this wording and what was measured.
    fn cause(self, confidence: Confidence, evidence: Vec<String>, snippets: Vec<Snippet>) -> Cause {
        Cause {
            id: self.id,
            kind: CauseKind::Cause,
            title: self.title.into(),
            confidence,
            evidence,
            origin_fix: self.origin_fix,
            snippets,
            operator_fix: self.operator_fix.into(),
        }
    }
}

/// Every cause the rule base raises, in rule-base order (the order ranking keeps within a confidence).
fn raw_causes(
    rec: &Recording,
    v: &Verdict,
    streaming: Option<&Recording>,
    local: bool,
) -> Vec<Cause> {
    let s = Signs::new(rec, v, streaming, local);
    let mut causes: Vec<Cause> = Vec::new();
    causes.extend(gzip_members(&s));
    causes.extend(declared_whole_body(&s));
    causes.extend(silent_whole_body(&s));
    causes.extend(compression_buffering(&s));
    causes.extend(proxy_buffering(&s));
    causes.extend(cached_stream(&s));
    causes.extend(cut_causes(&s));
    causes.extend(first_byte_delay(&s));
    causes.extend(missing_terminator(&s));
    causes.extend(added_latency(&s));
    causes
}

const DJANGO_NO_GZIP: Snippet = Snippet {
    framework: "Django",
    code: "r = StreamingHttpResponse(agen(), content_type='text/event-stream')\nr['Content-Encoding'] = 'identity'  # GZipMiddleware leaves a response with a Content-Encoding alone; on an async stream it writes one gzip member per chunk",
};

/// R0: the body is several gzip members; what a browser reads ends with the first.
fn gzip_members(s: &Signs<'_>) -> Option<Cause> {
    let m = s.rec.later_members.as_ref()?;
    let evidence = vec![
        format!(
            "{} gzip members after the first, holding {} events a browser drops",
            m.members, m.events
        ),
        format!(
            "{} events reached the client, all from the first member",
            s.rec.events.len() as u64 + s.rec.events_dropped
        ),
    ];
    let wording = Wording {
        id: CauseId::GzipMembers,
        title: if s.local {
            "the server's compression starts a new gzip member for each write (Django GZipMiddleware on an async stream): browsers decode the first member and drop the rest"
        } else {
            "a compressor starts a new gzip member for each write (Django GZipMiddleware on an async stream): browsers decode the first member and drop the rest"
        },
        origin_fix: "keep the stream out of that compressor (`Cache-Control: no-transform`; Django: set `Content-Encoding: identity` on the streaming response, which GZipMiddleware leaves alone), or compress it as one stream flushed per event".into(),
        operator_fix: if s.local {
            NO_OPERATOR
        } else {
            "exclude text/event-stream from the compressor that writes one member per chunk"
        },
    };
    Some(wording.cause(Confidence::High, evidence, vec![DJANGO_NO_GZIP]))
}

/// R1: everything at the end with a Content-Length.
fn declared_whole_body(s: &Signs<'_>) -> Option<Cause> {
    let cl = s.content_length?;
    let mut evidence = vec![format!("Content-Length: {cl} on an event stream")];
    if s.held {
        evidence.push(format!("delivery {}", s.v.delivery));
    }
    evidence.extend(s.vendor_note(&["AWS API Gateway", "Vercel", "Netlify", "Amazon CloudFront"]));
    Some(Cause {
        id: CauseId::WholeBodyBuffering,
        kind: CauseKind::Cause,
        title: "a layer buffers the whole body and sends it with a Content-Length (serverless function, API gateway)".into(),
        confidence: if s.held { Confidence::High } else { Confidence::Medium },
        evidence,
        origin_fix: "return a streaming body (a ReadableStream / generator) and never set Content-Length".into(),
        snippets: vec![NEXT_HEADERS, STARLETTE_HEADERS, FLASK_STREAM, DJANGO_STREAM, RAILS_LIVE],
        operator_fix: "enable response streaming (Lambda InvokeMode RESPONSE_STREAM, API Gateway responseTransferMode STREAM, APIM buffer-response=\"false\")".into(),
    })
}

/// R1b: not even the headers arrived while the stream was due: a layer waits for the whole body.
fn silent_whole_body(s: &Signs<'_>) -> Option<Cause> {
    let rec = s.rec;
    if s.content_length.is_some() || rec.status != 0 || s.v.delivery != Delivery::HeldUntilEnd {
        return None;
    }
    Some(Cause {
        id: CauseId::WholeBodyBuffering,
        kind: CauseKind::Cause,
        title: "a layer buffers the whole body before it answers at all (serverless function, API gateway); on an endless stream nothing ever arrives".into(),
        confidence: Confidence::Medium,
        evidence: vec![format!(
            "no response headers within {} while events were due",
            secs(rec.ended_at)
        )],
        origin_fix: "return a streaming body (a ReadableStream / generator) and never set Content-Length".into(),
        snippets: vec![NEXT_HEADERS, STARLETTE_HEADERS],
        operator_fix: "enable the platform's response streaming (Lambda InvokeMode RESPONSE_STREAM, API Gateway responseTransferMode STREAM, APIM buffer-response=\"false\")".into(),
    })
}

/// R4: compressed and held (or lagging every event).
fn compression_buffering(s: &Signs<'_>) -> Option<Cause> {
    let ce = s.content_encoding?;
    let mut evidence = vec![format!("Content-Encoding: {ce}")];
    if let Some(vary) = header(s.rec, "vary") {
        evidence.push(format!("Vary: {vary} (Express compression adds it)"));
    }
    if s.held {
        evidence.push(format!("delivery {}", s.v.delivery));
    }
    evidence.extend(s.vendor_note(&["Fly.io", "Caddy", "Cloudflare"]));
    // A compressor that flushes only when the next write comes lags every event without batching.
    let lags = s.v.has(FindingId::AddedLatency);
    if lags {
        evidence.push(
            "every event arrives late (added-latency): a compressor that flushes on the next write lags each event".into(),
        );
    }
    let wording = Wording {
        id: CauseId::CompressionBuffering,
        title: if s.local {
            "the server's own compression middleware holds events until its buffer fills (Express compression without res.flush(), old Starlette GZip)"
        } else {
            "a compression layer holds events until its buffer fills (Express compression without res.flush(), Fly.io proxy, old Starlette GZip)"
        },
        origin_fix: "send `Cache-Control: no-cache, no-transform` (or `Content-Encoding: none` on Fly.io), or call res.flush() after each event".into(),
        operator_fix: if s.local {
            NO_OPERATOR
        } else {
            "exclude text/event-stream from compression (compression `filter`, nginx gzip_types, Traefik excludedContentTypes)"
        },
    };
    let confidence = if s.held {
        Confidence::High
    } else if lags {
        Confidence::Medium
    } else {
        Confidence::Low
    };
    Some(wording.cause(confidence, evidence, all_flush_snippets()))
}

/// R2/R3: held without either header is a proxy buffer; so is held behind a recognised proxy, whatever
/// the coding (nginx gzip on a buffered location holds because of the buffer, not the compressor). On a
/// server ssegate started, the server buffers its own output.
fn proxy_buffering(s: &Signs<'_>) -> Option<Cause> {
    let proxy_seen = !s
        .vendor_note(&[
            "nginx",
            "Apache httpd",
            "Azure Front Door",
            "Varnish",
            "Envoy",
        ])
        .is_empty();
    let unexplained_length = s.content_length.is_none() || s.content_length_shared;
    if !(s.held && unexplained_length && (s.content_encoding.is_none() || proxy_seen)) {
        return None;
    }
    let v = s.v;
    let mut evidence = vec![format!("delivery {}", v.delivery)];
    let clumps: Vec<u64> = v
        .bursts
        .iter()
        .filter(|b| b.events > 1)
        .map(|b| b.bytes)
        .collect();
    let buffer_like = v.has(FindingId::ClumpedAtBufferSize);
    if !clumps.is_empty() {
        evidence.push(format!("clumps of {clumps:?} bytes"));
    }
    let nginx = s.vendor_note(&["nginx", "Apache httpd", "Azure Front Door"]);
    let confidence = if buffer_like || !nginx.is_empty() {
        Confidence::High
    } else {
        Confidence::Medium
    };
    evidence.extend(nginx);
    let wording = if s.local {
        Wording::origin_buffering()
    } else {
        Wording {
            id: CauseId::ProxyBuffering,
            title: "a reverse proxy buffers the response (nginx proxy_buffering on, Apache mod_proxy_fcgi, a gateway response buffer)",
            origin_fix: "send `X-Accel-Buffering: no` (nginx honours it per response)".into(),
            operator_fix: "nginx: `proxy_buffering off;` (and `proxy_http_version 1.1;` before 1.29.7) for the SSE location",
        }
    };
    Some(wording.cause(confidence, evidence, all_flush_snippets()))
}

/// R8: a cached stream.
fn cached_stream(s: &Signs<'_>) -> Option<Cause> {
    let cache_hits: Vec<String> = s
        .rec
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
    if cache_hits.is_empty() {
        return None;
    }
    Some(Cause {
        id: CauseId::CachedStream,
        kind: CauseKind::Cause,
        title: "a cache stored the stream and replays it (CDN cache-everything rule, Varnish default TTL, Bunny)".into(),
        confidence: Confidence::High,
        evidence: cache_hits,
        origin_fix: "send `Cache-Control: no-cache, no-store` (or `private`)".into(),
        snippets: vec![NEXT_HEADERS, STARLETTE_HEADERS],
        operator_fix: "bypass the cache for event streams (Varnish `return (pass)`, CDN cache rule off)".into(),
    })
}

/// R6/R7: a cut stream is an idle timeout or a duration cap. A cut during a long silence points at an
/// idle timeout; a cut while bytes flowed, or at a well-known total, at a duration cap. One observation
/// rarely proves either: both are listed.
fn cut_causes(s: &Signs<'_>) -> Vec<Cause> {
    let rec = s.rec;
    if s.v.delivery != Delivery::Cut || !matches!(rec.end, End::Aborted { .. } | End::Complete) {
        return Vec::new();
    }
    let silence = rec.silence_at_end();
    let t = rec.ended_at.as_secs();
    let known: Vec<String> = DURATION_CAPS
        .iter()
        .filter(|(cap, _)| t.abs_diff(*cap) <= 1)
        .map(|(cap, who)| format!("{cap} s matches {who}"))
        .collect();
    let quiet = silence >= Duration::from_millis(500);
    let (idle, cap) = if s.local {
        (Wording::origin_abort(), Wording::origin_abort())
    } else {
        (
            Wording {
                id: CauseId::IdleTimeout,
                title: "an idle timeout closed the stream after a silence (nginx proxy_read_timeout 60 s, ALB 60 s, Cloudflare 100 s, CloudFront 30 s)",
                origin_fix: heartbeat_fix(rec, silence),
                operator_fix: "raise the idle timeout (nginx `proxy_read_timeout`, ALB idle_timeout)",
            },
            Wording {
                id: CauseId::DurationCap,
                title: "a total-duration cap ended the stream regardless of traffic (function timeout, Envoy route timeout)",
                origin_fix: "end streams before the cap and let EventSource reconnect with Last-Event-ID; heartbeats do not help".into(),
                operator_fix: "raise the platform's maximum duration (maxDuration, Lambda timeout, Envoy route timeout 0s)",
            },
        )
    };
    let idle_confidence = match (quiet, silence >= Duration::from_secs(1), known.is_empty()) {
        (true, true, true) => Confidence::High,
        (true, _, _) => Confidence::Medium,
        _ => Confidence::Low,
    };
    let idle_evidence = vec![format!(
        "cut at {} after {} without a byte",
        secs(rec.ended_at),
        secs(silence)
    )];
    let cap_confidence = match (known.is_empty(), quiet) {
        (false, _) => Confidence::High,
        (true, false) => Confidence::Medium,
        (true, true) => Confidence::Low,
    };
    let mut cap_evidence = vec![format!(
        "cut at {}, {} after the last read",
        secs(rec.ended_at),
        secs(silence)
    )];
    cap_evidence.extend(known);
    vec![
        idle.cause(
            idle_confidence,
            idle_evidence,
            vec![EXPRESS_HEARTBEAT, AXUM_HEARTBEAT],
        ),
        cap.cause(cap_confidence, cap_evidence, vec![]),
    ]
}

/// R5: headers late.
fn first_byte_delay(s: &Signs<'_>) -> Option<Cause> {
    const LATE: &[FindingId] = &[
        FindingId::FirstByteDelayed,
        FindingId::HeadersWithFirstEvent,
    ];
    if !LATE.iter().any(|&id| s.v.has(id)) {
        return None;
    }
    // When a buffer already explains the late headers, this is a consequence, not a cause.
    let explained = s.held;
    Some(Cause {
        id: CauseId::FirstByteDelay,
        kind: CauseKind::Cause,
        title: "the headers arrive only with the first event: first-byte timeouts (25-100 s) will cut slow streams".into(),
        confidence: if explained {
            Confidence::Low
        } else {
            Confidence::Medium
        },
        evidence: s.findings(LATE),
        origin_fix: "flush headers at once and send a `:ok` comment immediately".into(),
        snippets: vec![EXPRESS_FLUSH_HEADERS],
        operator_fix: "stop the hop from withholding headers until the body (a buffering proxy or compressor)".into(),
    })
}

/// R11: framing.
fn missing_terminator(s: &Signs<'_>) -> Option<Cause> {
    const UNENDED: &[FindingId] = &[FindingId::EventNotTerminated, FindingId::NoEventsDispatched];
    if !UNENDED.iter().any(|&id| s.v.has(id)) {
        return None;
    }
    Some(Cause {
        id: CauseId::MissingTerminator,
        kind: CauseKind::Cause,
        title: "events are not ended by a blank line, so the browser dispatches late or never"
            .into(),
        confidence: Confidence::High,
        evidence: s.findings(UNENDED),
        origin_fix: "end every event with `\\n\\n`".into(),
        snippets: vec![EXPRESS_TERMINATOR],
        operator_fix: "none: the origin's framing is wrong".into(),
    })
}

/// R10: late but one by one.
fn added_latency(s: &Signs<'_>) -> Option<Cause> {
    if !s.v.has(FindingId::AddedLatency) {
        return None;
    }
    Some(Cause {
        id: CauseId::AddedLatency,
        kind: CauseKind::Cause,
        title:
            "every event is a little late but not batched: Nagle's algorithm or a periodic flusher"
                .into(),
        confidence: Confidence::Low,
        evidence: s
            .v
            .findings
            .iter()
            .filter(|f| f.id() == FindingId::AddedLatency)
            .map(|f| f.evidence.to_string())
            .collect(),
        origin_fix: "set TCP_NODELAY and write each event in one call".into(),
        snippets: vec![],
        operator_fix: "look for a flush interval on the proxy".into(),
    })
}

/// The heartbeat interval to advise for a cut stream: half the silence after which it was cut (the
/// measured idle limit), at least 10 ms.
pub fn advised_heartbeat(rec: &Recording) -> Duration {
    (rec.silence_at_end() / 2).max(Duration::from_millis(10))
}

/// Heartbeat advice from the measured silence before the cut (the idle limit), and the stream's own
/// heartbeat spacing when it has one.
fn heartbeat_fix(rec: &Recording, silence: Duration) -> String {
    let every = advised_heartbeat(rec);
    let own = rec
        .comments
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .max()
        .map(|d| {
            format!(
                "; the stream's own comments came up to {} apart, too far for this limit",
                secs(d)
            )
        })
        .filter(|_| rec.comments.len() >= 2);
    format!(
        "send a heartbeat comment (`:\\n\\n`) at least every {} (the cut came after {} without a byte){}",
        secs(every),
        secs(silence),
        own.unwrap_or_default()
    )
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
    /// The origin's stack, when the user says it (otherwise recognised from the headers).
    pub stack: Option<Stack>,
}

/// One discriminating re-probe and what it showed.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveProbe {
    pub name: &'static str,
    pub change: String,
    pub delivery: Delivery,
    pub conclusion: String,
}

/// The median of how much later each event arrived in `a` than the same event in `b` (by position).
fn arrival_lag(a: &Verdict, b: &Verdict) -> Option<Duration> {
    let mut d: Vec<Duration> = a
        .events
        .iter()
        .zip(&b.events)
        .map(|(x, y)| x.arrival.saturating_sub(y.arrival))
        .collect();
    if d.len() < 2 {
        return None;
    }
    d.sort();
    Some(d[d.len() / 2])
}

/// Everything `doctor` found.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    pub recording: Recording,
    pub verdict: Verdict,
    pub compare: Option<Recording>,
    /// The `--compare` stream judged on its own; the target is judged against it only when it streamed.
    pub compare_delivery: Option<Delivery>,
    pub platforms: Vec<Platform>,
    pub causes: Vec<Cause>,
    pub active: Vec<ActiveProbe>,
    /// A real browser's view of the same URL (`doctor --browser`, filled in by the command).
    pub browser: Option<crate::verdict::browser::BrowserVerdict>,
}

/// Probe (and compare), classify, fingerprint, rank causes, and optionally re-probe to prove them.
pub async fn doctor(req: &DoctorRequest) -> Result<DoctorReport, ProbeError> {
    let compare = match &req.compare {
        Some(c) => Some(probe(c).await?),
        None => None,
    };
    let rec = probe(&req.target).await?;
    // The compare stream judged on its own: a reference only when it streamed. A held one (the origin
    // buffers, or its own compression does) explains the deployed stream before any hop does, and
    // judging against it would call held events timely.
    let compare_verdict = compare.as_ref().map(|c| judge(c, Reference::None));
    let streaming = compare
        .as_ref()
        .filter(|_| compare_verdict.as_ref().map(|v| v.delivery) == Some(Delivery::Streamed));
    let reference = streaming.map_or(Reference::None, Reference::Baseline);
    let mut verdict = judge(&rec, reference);
    crate::verdict::excuse_starved(&rec, &mut verdict);
    let stack = req.stack.or_else(|| Stack::detect(&rec, None));
    let mut causes = diagnose(&rec, &verdict, streaming, stack, false);
    if let (Some(c), Some(cv)) = (&compare, &compare_verdict)
        && streaming.is_none()
    {
        causes.splice(0..0, origin_causes(c, cv, stack));
    }
    let mut active = Vec::new();
    // R4's test: the same request without Accept-Encoding.
    if req.active
        && (header(&rec, "content-encoding").is_some() || verdict.delivery != Delivery::Streamed)
    {
        let first = Diagnosed {
            rec: &rec,
            verdict: &verdict,
            streaming,
            stack,
        };
        let identity = identity_reprobe(req, &first, compare.as_ref(), &mut causes).await?;
        active.push(identity);
        rank(&mut causes);
    }
    let platforms = fingerprint(&rec);
    Ok(DoctorReport {
        recording: rec,
        verdict,
        compare,
        compare_delivery: compare_verdict.map(|v| v.delivery),
        platforms,
        causes,
        active,
        browser: None,
    })
}

/// The causes of a `--compare` stream that did not stream: nothing stands between it and the probe, so
/// they are the origin's own, listed before anything a hop adds (each says where it was seen).
fn origin_causes(compare: &Recording, v: &Verdict, stack: Option<Stack>) -> Vec<Cause> {
    let mut causes: Vec<Cause> = diagnose(compare, v, None, stack, true)
        .into_iter()
        .filter(|c| !c.is_risk())
        .collect();
    let seen = format!(
        "the --compare stream ({}), without the infrastructure, was {} already",
        compare.url, v.delivery
    );
    if causes.is_empty() {
        // `diagnose` kept the detected stack's snippets of its causes; this one is added here.
        let mut c =
            Wording::origin_buffering().cause(Confidence::High, Vec::new(), all_flush_snippets());
        c.keep_snippets_of(stack);
        causes.push(c);
    }
    for c in &mut causes {
        c.evidence.insert(0, seen.clone());
        c.confidence = c.confidence.max(Confidence::High);
    }
    causes
}

/// The first probe of `doctor`, as diagnosed.
struct Diagnosed<'a> {
    rec: &'a Recording,
    verdict: &'a Verdict,
    /// The compare stream, when it streamed.
    streaming: Option<&'a Recording>,
    stack: Option<Stack>,
}

/// What the re-probe with `Accept-Encoding: identity` showed.
struct IdentityResult {
    rec: Recording,
    verdict: Verdict,
    /// How much earlier the same events arrived without compression.
    lag: Option<Duration>,
    /// The stream held with compression is live without it.
    held_by_compression: bool,
    /// Live without compression, and the events arrive clearly earlier.
    lagged: bool,
}

impl IdentityResult {
    /// A compression layer is proved to hold or lag the events.
    fn proved(&self) -> bool {
        self.held_by_compression || self.lagged
    }

    fn conclusion(&self) -> String {
        if self.held_by_compression {
            "without compression the stream is live: a compression layer holds the events"
                .to_string()
        } else if self.lagged {
            format!(
                "without compression the same events arrive {} earlier: a compression layer lags each event",
                secs(self.lag.unwrap_or_default())
            )
        } else {
            format!(
                "still {} without compression: compression is not the (only) cause",
                self.verdict.delivery
            )
        }
    }
}

/// Probe again with `Accept-Encoding: identity` and update the causes with what that proves.
async fn identity_reprobe(
    req: &DoctorRequest,
    first: &Diagnosed<'_>,
    compare: Option<&Recording>,
    causes: &mut Vec<Cause>,
) -> Result<ActiveProbe, ProbeError> {
    let mut again = req.target.clone();
    again.compression = false;
    again
        .headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("accept-encoding"));
    again
        .headers
        .push(("Accept-Encoding".into(), "identity".into()));
    let rec = probe(&again).await?;
    let mut verdict = judge(&rec, compare.map_or(Reference::None, Reference::Baseline));
    crate::verdict::excuse_starved(&rec, &mut verdict);
    let held_by_compression =
        verdict.delivery == Delivery::Streamed && first.verdict.delivery != Delivery::Streamed;
    // The class alone misses a compressor that lags every event by one write: compare when the same
    // events arrived with and without compression.
    let lag = arrival_lag(first.verdict, &verdict);
    let lagged = verdict.delivery == Delivery::Streamed
        && lag.is_some_and(|l| l > crate::verdict::threshold(first.verdict.gap.max(verdict.gap)));
    let r = IdentityResult {
        rec,
        verdict,
        lag,
        held_by_compression,
        lagged,
    };
    apply_identity_result(first, &r, causes);
    Ok(ActiveProbe {
        name: "identity",
        change: "Accept-Encoding: identity".into(),
        delivery: r.verdict.delivery,
        conclusion: r.conclusion(),
    })
}

/// What the identity re-probe proves: compression's confidence, the added latency's source, and a proxy
/// when the stream is still held without compression.
fn apply_identity_result(first: &Diagnosed<'_>, r: &IdentityResult, causes: &mut Vec<Cause>) {
    let proved = r.proved();
    let delivery = r.verdict.delivery;
    if let Some(c) = causes
        .iter_mut()
        .find(|c| c.id == CauseId::CompressionBuffering)
    {
        c.confidence = if proved {
            Confidence::Proved
        } else {
            Confidence::Low
        };
        c.evidence.push(format!(
            "re-probe with Accept-Encoding: identity → {delivery}{}",
            r.lag
                .map(|l| format!(", events {} earlier", secs(l)))
                .unwrap_or_default()
        ));
    }
    if r.lagged
        && let Some(c) = causes.iter_mut().find(|c| c.id == CauseId::AddedLatency)
    {
        c.evidence
            .push("the lag goes away without compression: the compressor adds it".into());
    }
    // Still held without compression: something else buffers, most likely a proxy.
    if !proved && matches!(delivery, Delivery::HeldUntilEnd | Delivery::Batched) {
        blame_proxy(first, r, causes);
    }
    if proved && !causes.iter().any(|c| c.id == CauseId::CompressionBuffering) {
        causes.push(Cause {
            id: CauseId::CompressionBuffering,
            kind: CauseKind::Cause,
            title: "a compression layer holds events until its buffer fills".into(),
            confidence: Confidence::Proved,
            evidence: vec!["re-probe with Accept-Encoding: identity streams".into()],
            origin_fix:
                "send `Cache-Control: no-cache, no-transform`, or call res.flush() after each event"
                    .into(),
            snippets: all_flush_snippets(),
            operator_fix: "exclude text/event-stream from compression".into(),
        });
    }
}

/// The stream is still held without compression: raise proxy buffering, or add it from the re-probe's
/// own diagnosis.
fn blame_proxy(first: &Diagnosed<'_>, r: &IdentityResult, causes: &mut Vec<Cause>) {
    let note = format!(
        "re-probe with Accept-Encoding: identity still {}: the holding is not the compressor's",
        r.verdict.delivery
    );
    if let Some(c) = causes.iter_mut().find(|c| c.id == CauseId::ProxyBuffering) {
        c.confidence = c.confidence.max(Confidence::High);
        c.evidence.push(note);
    } else if header(first.rec, "content-length").is_none() {
        let mut extra = diagnose(&r.rec, &r.verdict, first.streaming, first.stack, false)
            .into_iter()
            .filter(|c| c.id == CauseId::ProxyBuffering)
            .collect::<Vec<_>>();
        for c in &mut extra {
            c.evidence.push(note.clone());
        }
        causes.extend(extra);
    }
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
        let c = diagnose(&r, &v, None, None, false);
        assert_eq!(c[0].id, CauseId::WholeBodyBuffering);
        assert_eq!(c[0].confidence, Confidence::High);
    }

    #[test]
    fn a_recognised_program_ranks_the_cause_the_suite_measured_it_causing() {
        let base = rec(&[SSE], &[400, 800, 1200, 1600], 1601, End::Complete);
        let held = |server: &'static str| {
            let r = rec(
                &[SSE, ("content-length", "80"), ("server", server)],
                &[1602, 1602, 1602, 1602],
                1603,
                End::Complete,
            );
            let v = judge(&r, Reference::Baseline(&base));
            diagnose(&r, &v, None, None, false)
        };
        let c = held("lighttpd/1.4.69");
        let whole = c
            .iter()
            .find(|c| c.id == CauseId::WholeBodyBuffering)
            .unwrap();
        assert!(
            whole
                .evidence
                .iter()
                .any(|e| e.contains("platform: lighttpd") && e.contains("`lighttpd: default`")),
            "{:?}",
            whole.evidence
        );
        // A server the suite does not run adds no such evidence.
        let c = held("SomethingElse/1.0");
        assert!(
            c.iter()
                .all(|c| !c.evidence.iter().any(|e| e.contains("conformance suite")))
        );
        let p: Vec<&str> = fingerprint(&rec(
            &[
                SSE,
                ("server", "ATS/9.2.9"),
                ("x-powered-by", "Express"),
                ("server", "h2o/2.2.5"),
            ],
            &[10],
            20,
            End::Complete,
        ))
        .iter()
        .map(|p| p.vendor)
        .collect();
        assert_eq!(p, ["Traffic Server", "Express", "h2o"]);
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
        let c = diagnose(&r, &v, None, None, false);
        assert_eq!(c[0].id, CauseId::ProxyBuffering);
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
        let c = diagnose(&r, &v, None, None, false);
        assert_eq!(c[0].id, CauseId::CompressionBuffering);
        assert!(!c.iter().any(|c| c.id == CauseId::ProxyBuffering));
    }

    #[test]
    fn cuts_after_silence_are_idle_timeouts_and_busy_cuts_are_caps() {
        let base = rec(&[SSE], &[400, 800, 1200, 1600, 2000], 2001, End::Complete);
        let aborted = End::Aborted {
            reason: "eof".into(),
        };
        let idle = rec(&[SSE], &[400, 800], 1900, aborted.clone());
        let v = judge(&idle, Reference::Baseline(&base));
        assert_eq!(
            diagnose(&idle, &v, None, None, false)[0].id,
            CauseId::IdleTimeout
        );
        let busy = rec(&[SSE], &[400, 800, 1200], 1210, aborted);
        let v = judge(&busy, Reference::Baseline(&base));
        assert_eq!(
            diagnose(&busy, &v, None, None, false)[0].id,
            CauseId::DurationCap
        );
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
        let c = diagnose(&r, &v, None, None, false);
        assert_eq!(c[0].id, CauseId::CachedStream);
        assert_eq!(c[0].evidence.len(), 2);
    }

    #[test]
    fn a_streamed_stream_has_risks_not_causes() {
        // An origin that declares a Content-Length and still streams: a risk behind buffering hops.
        let r = rec(
            &[SSE, ("content-length", "80")],
            &[400, 800, 1200, 1600],
            1601,
            End::Complete,
        );
        let v = judge(&r, Reference::None);
        assert_eq!(v.delivery, Delivery::Streamed);
        let c = diagnose(&r, &v, None, None, false);
        assert!(!c.is_empty());
        assert!(c.iter().all(Cause::is_risk), "{c:?}");
    }

    #[test]
    fn a_property_the_streaming_baseline_shares_is_not_the_cause() {
        // Behind nginx default: held, and Content-Length is the origin's own (the baseline has it too).
        let base = rec(
            &[SSE, ("content-length", "80")],
            &[400, 800, 1200, 1600],
            1601,
            End::Complete,
        );
        let r = rec(
            &[SSE, ("content-length", "80"), ("server", "nginx/1.22.1")],
            &[1602, 1602, 1602, 1602],
            1603,
            End::Complete,
        );
        let v = judge(&r, Reference::Baseline(&base));
        let c = diagnose(&r, &v, Some(&base), None, false);
        let top = c.iter().find(|c| !c.is_risk()).unwrap();
        assert_eq!(top.id, CauseId::ProxyBuffering, "{c:?}");
        let wb = c
            .iter()
            .find(|c| c.id == CauseId::WholeBodyBuffering)
            .unwrap();
        assert!(wb.is_risk());
        assert!(
            wb.evidence
                .iter()
                .any(|e| e.contains("carries Content-Length too"))
        );
    }

    #[test]
    fn heartbeat_advice_follows_the_measured_silence() {
        let base = rec(&[SSE], &[400, 800, 1200, 1600, 2000], 2001, End::Complete);
        let mut idle = rec(
            &[SSE],
            &[400, 800],
            5800,
            End::Aborted {
                reason: "eof".into(),
            },
        );
        idle.comments = vec![Duration::from_millis(100), Duration::from_millis(300)];
        let v = judge(&idle, Reference::Baseline(&base));
        let c = diagnose(&idle, &v, None, None, false);
        let it = c.iter().find(|c| c.id == CauseId::IdleTimeout).unwrap();
        assert!(
            it.origin_fix.contains("at least every 2.50 s"),
            "{}",
            it.origin_fix
        );
        assert!(!it.origin_fix.contains("15 s"), "{}", it.origin_fix);
    }

    #[test]
    fn snippets_follow_the_stack() {
        let base = rec(&[SSE], &[400, 800, 1200, 1600], 1601, End::Complete);
        let r = rec(
            &[SSE, ("server", "Werkzeug/2.2.2 Python/3.11.2")],
            &[1602, 1602, 1602, 1602],
            1603,
            End::Complete,
        );
        assert_eq!(Stack::detect(&r, None), Some(Stack::Flask));
        let v = judge(&r, Reference::Baseline(&base));
        let c = diagnose(&r, &v, None, Stack::detect(&r, None), false);
        let pb = c.iter().find(|c| c.id == CauseId::ProxyBuffering).unwrap();
        assert!(
            pb.snippets.iter().all(|s| s.framework == "Flask"),
            "{:?}",
            pb.snippets
        );
        let all = diagnose(&r, &v, None, None, false);
        let frameworks: Vec<&str> = all
            .iter()
            .find(|c| c.id == CauseId::ProxyBuffering)
            .unwrap()
            .snippets
            .iter()
            .map(|s| s.framework)
            .collect();
        for f in ["Flask", "Fastify", "Django", "Go", "Rails"] {
            assert!(frameworks.contains(&f), "{frameworks:?}");
        }
        let cmd = crate::origin::command::CommandSpec {
            argv: vec![
                "gunicorn".into(),
                "-k".into(),
                "gevent".into(),
                "manage.py".into(),
            ],
            cwd: None,
            env: Default::default(),
        };
        let plain = rec(&[SSE], &[10], 20, End::Complete);
        assert_eq!(Stack::detect(&plain, Some(&cmd)), Some(Stack::Django));
    }

    #[test]
    fn the_project_and_the_framework_outrank_the_servers_name() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("mysite");
        std::fs::create_dir(&project).unwrap();
        std::fs::write(project.join("manage.py"), "#!/usr/bin/env python\n").unwrap();
        // Django's ASGI app under uvicorn: the server says uvicorn, the project says Django.
        let cmd = |argv: &[&str], cwd: &std::path::Path| crate::origin::command::CommandSpec {
            argv: argv.iter().map(|a| a.to_string()).collect(),
            cwd: Some(cwd.to_path_buf()),
            env: Default::default(),
        };
        let uvicorn = rec(&[SSE, ("server", "uvicorn")], &[10], 20, End::Complete);
        let asgi = cmd(&["uvicorn", "mysite.asgi:application"], &project);
        assert_eq!(Stack::detect(&uvicorn, Some(&asgi)), Some(Stack::Django));
        // Without the project's files, the server's name is all there is.
        assert_eq!(
            Stack::detect(&uvicorn, Some(&cmd(&["uvicorn", "app:app"], dir.path()))),
            Some(Stack::Starlette)
        );
        // A file the command names is looked beside: `python mysite/manage.py runserver`.
        let plain = rec(&[SSE], &[10], 20, End::Complete);
        let runserver = cmd(&["python3", "mysite/manage.py", "runserver"], dir.path());
        assert_eq!(Stack::detect(&plain, Some(&runserver)), Some(Stack::Django));
        // package.json's dependencies over `node`.
        std::fs::write(
            dir.path().join("package.json"),
            r#"{"dependencies": {"fastify": "^5.0.0"}}"#,
        )
        .unwrap();
        let node = cmd(&["node", "server.js"], dir.path());
        assert_eq!(Stack::detect(&plain, Some(&node)), Some(Stack::Fastify));
        // Django's own security headers, whatever serves it.
        let django = rec(
            &[
                SSE,
                ("server", "uvicorn"),
                ("cross-origin-opener-policy", "same-origin"),
                ("referrer-policy", "same-origin"),
            ],
            &[10],
            20,
            End::Complete,
        );
        assert_eq!(Stack::detect(&django, None), Some(Stack::Django));
    }

    #[test]
    fn compression_that_lags_every_event_ranks_above_added_latency() {
        let base = rec(&[SSE], &[400, 800, 1200, 1600, 2000], 2001, End::Complete);
        // Every event 150 ms late: under T (200 ms), over the added-latency floor.
        let r = rec(
            &[SSE, ("content-encoding", "gzip")],
            &[550, 950, 1350, 1750, 2150],
            2151,
            End::Complete,
        );
        let v = judge(
            &r,
            Reference::Sends(&crate::verdict::SendInstants {
                sends: [400u64, 800, 1200, 1600, 2000]
                    .iter()
                    .map(|&m| Duration::from_millis(m))
                    .collect(),
                headers_sent: Some(Duration::ZERO),
                ..Default::default()
            }),
        );
        assert!(v.has(FindingId::AddedLatency), "{:?}", v.findings);
        let _ = base;
        let c = diagnose(&r, &v, None, None, false);
        let comp = c
            .iter()
            .position(|c| c.id == CauseId::CompressionBuffering)
            .unwrap();
        let lat = c
            .iter()
            .position(|c| c.id == CauseId::AddedLatency)
            .unwrap();
        assert!(comp < lat, "{c:?}");
        assert_eq!(c[comp].confidence, Confidence::Medium);
    }

    #[test]
    fn arrival_lag_is_the_median_shift_between_two_probes() {
        let sends: Vec<Duration> = [400u64, 800, 1200, 1600]
            .iter()
            .map(|&m| Duration::from_millis(m))
            .collect();
        let sched = crate::verdict::SendInstants {
            sends,
            headers_sent: Some(Duration::ZERO),
            ..Default::default()
        };
        let lagging = rec(&[SSE], &[800, 1200, 1600, 1700], 1701, End::Complete);
        let live = rec(&[SSE], &[401, 801, 1201, 1601], 1602, End::Complete);
        let a = judge(&lagging, Reference::Sends(&sched));
        let b = judge(&live, Reference::Sends(&sched));
        let lag = arrival_lag(&a, &b).unwrap();
        assert!(lag >= Duration::from_millis(390), "{lag:?}");
    }

    #[test]
    fn every_cause_id_round_trips_and_is_documented() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        for &id in CauseId::ALL {
            let json = serde_json::to_value(id).unwrap();
            assert_eq!(json, serde_json::Value::String(id.as_str().into()));
            assert_eq!(serde_json::from_value::<CauseId>(json).unwrap(), id);
            assert_eq!(id.to_string(), id.as_str());
            assert!(
                readme.contains(&format!("`{id}`")),
                "README lacks `{id}` among the causes"
            );
        }
    }
}
