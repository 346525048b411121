//! Secrets never reach an output.
//!
//! Two layers. At the source, what is recorded is redacted: secret headers (`redact_headers`), a URL's
//! password and secret-looking query values (`redact_url`), URLs in `Location`-like response headers.
//! And every secret value seen on the way is registered, so that the one place every output passes
//! through ([`scrub`]: stdout, stderr, `-o`, `--html`, `--summary`, report directories) replaces any copy
//! of it that got into text some other way (a redirect echoing the query into a header or an error, a
//! server log line, a hop's label).
//!
//! A leaf module: everything that records or prints may use it.

use std::borrow::Cow;
use std::sync::Mutex;

/// Header names whose values are always secret.
pub const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    // A Streamable HTTP session id: whoever has it can act in the session.
    "mcp-session-id",
];

/// Parts of a query parameter name that make its value secret (matched case-insensitively anywhere in
/// the name: `access_token`, `X-Api-Key`, `sessionId`, `jwt`).
const SECRET_QUERY_PARTS: &[&str] = &[
    "token",
    "secret",
    "passw",
    "pwd",
    "session",
    "sess_id",
    "sid",
    "jwt",
    "auth",
    "key",
    "signature",
    "sig",
    "code",
    "credential",
    "otp",
    "nonce",
];

/// Response headers whose values are URLs that may echo the request's query.
const URL_HEADERS: &[&str] = &["location", "content-location", "refresh", "link"];

/// Registered values shorter than this are redacted at their source but not scrubbed from all text:
/// replacing every `1` or `ab` in a report would destroy it.
const MIN_SCRUBBED: usize = 4;
/// Values kept for scrubbing at most (each is short; a run sees a handful).
const MAX_KNOWN: usize = 256;

static KNOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether a header's value is secret: one of [`SECRET_HEADERS`] or of `extra`.
pub fn is_secret_header(name: &str, extra: &[String]) -> bool {
    SECRET_HEADERS.iter().any(|s| s.eq_ignore_ascii_case(name))
        || extra.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Whether a query parameter's value is secret, judged by its name.
pub fn is_secret_query(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_QUERY_PARTS.iter().any(|p| n.contains(p))
}

/// Remember `value` as secret, so [`scrub`] removes it from every output.
pub fn register(value: &str) {
    let value = value.trim();
    if value.len() < MIN_SCRUBBED {
        return;
    }
    if let Ok(mut k) = KNOWN.lock()
        && !k.iter().any(|v| v == value)
        && k.len() < MAX_KNOWN
    {
        k.push(value.to_string());
        // Longest first, so a secret that contains another is replaced whole.
        k.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }
}

/// `text` with every registered secret replaced by `<redacted>`, in every form a copy of it takes on
/// its way into a report ([`forms`]).
pub fn scrub(text: &str) -> Cow<'_, str> {
    let Ok(known) = KNOWN.lock() else {
        return Cow::Borrowed(text);
    };
    let mut out = Cow::Borrowed(text);
    for v in known.iter() {
        for form in forms(v) {
            if out.contains(form.as_str()) {
                out = Cow::Owned(out.replace(form.as_str(), "<redacted>"));
            }
        }
    }
    out
}

/// The forms a secret takes in text: as it is; percent-encoded with upper- and lower-case hex, and as a
/// form value (`+` for a space), as a client sends it and a server echoes it; escaped inside a JSON
/// string and in XML or HTML text (a report's own formats, or a server's error page).
fn forms(v: &str) -> Vec<String> {
    let upper = percent_encode(v);
    let plus = v
        .split(' ')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("+");
    let mut all = vec![
        v.to_string(),
        upper.to_ascii_lowercase_hex(),
        plus.to_ascii_lowercase_hex(),
        upper,
        plus,
    ];
    // Escaped once (a server's JSON or HTML), and again (that echo inside a JSON or XML report).
    let once = escapes(v);
    for e in &once {
        all.extend(escapes(e));
    }
    all.extend(once);
    all.sort();
    all.dedup();
    // Longest first, so that a form containing another is replaced whole.
    all.sort_by_key(|f| std::cmp::Reverse(f.len()));
    all.retain(|f| f.len() >= MIN_SCRUBBED);
    all
}

/// `v` escaped inside a JSON string (with and without `\/`) and in XML or HTML text (each way of writing
/// an apostrophe).
fn escapes(v: &str) -> Vec<String> {
    let json = serde_json::to_string(v).unwrap_or_default();
    let json = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or(v)
        .to_string();
    let xml = |apos: &str| {
        v.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', apos)
    };
    vec![
        json.replace('/', "\\/"),
        json,
        xml("&apos;"),
        xml("&#39;"),
        xml("&#x27;"),
    ]
}

/// Lower-case hex digits in a percent-encoded string (`%2F` → `%2f`).
trait LowerHex {
    fn to_ascii_lowercase_hex(&self) -> String;
}

impl LowerHex for String {
    fn to_ascii_lowercase_hex(&self) -> String {
        let mut out = String::with_capacity(self.len());
        let mut hex = 0;
        for c in self.chars() {
            if c == '%' {
                hex = 2;
                out.push(c);
            } else if hex > 0 {
                hex -= 1;
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }
}

/// The `Authorization` value a client derives from a URL's userinfo (`user:password`, or a bare user
/// with an empty password), as browsers and HTTP clients send it; registered as a secret, with the
/// password and the user.
pub fn basic_from_url(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    if u.username().is_empty() && u.password().is_none() {
        return None;
    }
    let user = percent_decode(u.username());
    let password = u.password().map(percent_decode).unwrap_or_default();
    use base64::Engine as _;
    let cred = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    register(&cred);
    register(&password);
    if u.password().is_none() {
        // A bare user is how tokens are often put in a URL.
        register(&user);
    }
    Some(format!("Basic {cred}"))
}

/// `url` without its userinfo (sent as [`basic_from_url`] instead, once).
pub fn without_userinfo(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// `%XX` sequences decoded (invalid ones and invalid UTF-8 kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// A header list as it may be recorded: secret values replaced (and registered), URLs in
/// `Location`-like headers redacted.
pub fn redact_headers(headers: &[(String, String)], extra: &[String]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            if is_secret_header(k, extra) {
                register(v);
                // `Bearer abc`: the credential alone is what leaks when echoed.
                if let Some((_, cred)) = v.split_once(' ') {
                    register(cred);
                }
                // `a=1; sid="abc"`: each cookie's value alone, quoted and not.
                if k.eq_ignore_ascii_case("cookie") || k.eq_ignore_ascii_case("set-cookie") {
                    for (_, value) in v.split(';').filter_map(|c| c.split_once('=')) {
                        register(value.trim());
                        register(value.trim().trim_matches('"'));
                    }
                }
                (k.clone(), "<redacted>".into())
            } else if URL_HEADERS.iter().any(|u| u.eq_ignore_ascii_case(k)) {
                (k.clone(), redact_urls_in(v))
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

/// Every `http(s)://…` URL inside a header value (`Refresh: 0; url=…`, `Link: <…>; rel=…`) redacted.
fn redact_urls_in(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(i) = rest.find("http://").or_else(|| rest.find("https://")) {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find(|c: char| c.is_whitespace() || matches!(c, '>' | '"' | ',' | ';'))
            .map_or(rest.len(), |e| i + e);
        out.push_str(&redact_url(&rest[i..end]));
        rest = &rest[end..];
    }
    if out.is_empty() {
        // A relative Location (`/next?token=…`) still carries the query.
        return redact_relative(v);
    }
    out.push_str(rest);
    out
}

/// A relative reference's (`/next?token=…`) secret query values redacted.
fn redact_relative(v: &str) -> String {
    const BASE: &str = "http://relative.invalid";
    if !v.trim_start().starts_with('/') || !v.contains('?') {
        return v.to_string();
    }
    let redacted = redact_url(&format!("{BASE}{}", v.trim()));
    redacted
        .strip_prefix(BASE)
        .map_or_else(|| v.to_string(), str::to_string)
}

/// The URL with its password (or a bare username, which can be a token) and secret-looking query
/// values replaced by `redacted`; each replaced value is registered.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = reqwest::Url::parse(url) else {
        return url.to_string();
    };
    if let Some(p) = u.password() {
        register(p);
        let _ = u.set_password(Some("redacted"));
    }
    if !u.username().is_empty() && u.password().is_none() {
        register(u.username());
        let _ = u.set_username("redacted");
    }
    if let Some(q) = u.query() {
        // The values as the URL writes them (`a+b`, `%2f`): what a server echoes.
        for part in q.split('&') {
            if let Some((k, v)) = part.split_once('=')
                && is_secret_query(&percent_decode(&k.replace('+', " ")))
            {
                register(v);
            }
        }
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                if is_secret_query(&k) {
                    register(&v);
                    (k.into_owned(), "redacted".into())
                } else {
                    (k.into_owned(), v.into_owned())
                }
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// Percent-encode everything but unreserved characters (RFC 3986), as a query value is usually sent.
fn percent_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names_are_judged_by_their_parts() {
        for secret in [
            "token",
            "access_token",
            "session_id",
            "sessionId",
            "jwt",
            "X-Api-Key",
            "password",
            "sig",
            "code",
        ] {
            assert!(is_secret_query(secret), "{secret}");
        }
        for plain in ["page", "lastEventId", "channel", "q"] {
            assert!(!is_secret_query(plain), "{plain}");
        }
    }

    #[test]
    fn urls_lose_passwords_and_secret_values_and_register_them() {
        let r = redact_url(
            "http://alice:hunter2pw@127.0.0.1:8/s?x=1&session_id=SESSv4lue&jwt=eyJ.abc.def",
        );
        assert_eq!(
            r,
            "http://alice:redacted@127.0.0.1:8/s?x=1&session_id=redacted&jwt=redacted"
        );
        let leaked = "echo: hunter2pw SESSv4lue eyJ.abc.def and eyJ.abc.def";
        let clean = scrub(leaked);
        assert!(
            !clean.contains("hunter2pw") && !clean.contains("SESSv4lue") && !clean.contains("eyJ"),
            "{clean}"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn percent_encoded_copies_are_scrubbed_too() {
        register("a b/c+d=secret");
        assert_eq!(scrub("q=a%20b%2Fc%2Bd%3Dsecret!"), "q=<redacted>!");
    }

    #[test]
    fn location_headers_are_redacted_absolute_or_relative() {
        let h = vec![
            (
                "location".to_string(),
                "https://example.com/next?token=TOKvalue1&page=2".to_string(),
            ),
            (
                "content-location".to_string(),
                "/again?session=SESSvalue2".to_string(),
            ),
            (
                "authorization".to_string(),
                "Bearer BEARERvalue3".to_string(),
            ),
            ("x-plain".to_string(), "kept".to_string()),
        ];
        let r = redact_headers(&h, &[]);
        assert_eq!(r[0].1, "https://example.com/next?token=redacted&page=2");
        assert_eq!(r[1].1, "/again?session=redacted");
        assert_eq!(r[2].1, "<redacted>");
        assert_eq!(r[3].1, "kept");
        assert_eq!(scrub("BEARERvalue3 TOKvalue1"), "<redacted> <redacted>");
    }

    #[test]
    fn a_urls_userinfo_is_scrubbed_as_the_basic_credentials_derived_from_it() {
        // What the client sends for `http://alice:s3cr3t-pw@host/`, and a server echoes back.
        let basic = basic_from_url("http://alice:s3cr3t-pw@127.0.0.1:9/s").unwrap();
        assert_eq!(basic, "Basic YWxpY2U6czNjcjN0LXB3");
        assert_eq!(
            scrub("echo: Authorization: Basic YWxpY2U6czNjcjN0LXB3"),
            "echo: Authorization: Basic <redacted>"
        );
        // A bare user (a token) is sent with an empty password.
        let bare = basic_from_url("http://tok3n-bare-user@127.0.0.1:9/").unwrap();
        assert_eq!(bare, "Basic dG9rM24tYmFyZS11c2VyOg==");
        assert_eq!(
            scrub("dG9rM24tYmFyZS11c2VyOg== tok3n-bare-user"),
            "<redacted> <redacted>"
        );
        assert_eq!(basic_from_url("http://127.0.0.1:9/"), None);
        assert_eq!(
            without_userinfo("http://alice:pw@127.0.0.1:9/s?x=1"),
            "http://127.0.0.1:9/s?x=1"
        );
    }

    #[test]
    fn escaped_copies_are_scrubbed_in_json_and_xml() {
        register(r#"ck"v\al<&>'x"#);
        let v = r#"ck"v\al<&>'x"#;
        let json = serde_json::to_string(v).unwrap();
        assert_eq!(scrub(&json), "\"<redacted>\"");
        assert_eq!(
            scrub("<p>ck&quot;v\\al&lt;&amp;&gt;&apos;x</p>"),
            "<p><redacted></p>"
        );
        assert_eq!(scrub("ck&quot;v\\al&lt;&amp;&gt;&#39;x"), "<redacted>");
    }

    #[test]
    fn query_values_are_scrubbed_as_sent_with_plus_or_lower_case_percent() {
        let _ = redact_url("http://127.0.0.1:9/s?token=pl%2fus+sp4ce&api_key=Low%2fer%2Bmix");
        assert_eq!(scrub("echo token=pl%2fus+sp4ce"), "echo token=<redacted>");
        assert_eq!(scrub("echo pl/us sp4ce"), "echo <redacted>");
        assert_eq!(scrub("echo PL%2FUS+SP4CE"), "echo PL%2FUS+SP4CE");
        assert_eq!(scrub("echo pl%2Fus%20sp4ce"), "echo <redacted>");
        assert_eq!(scrub("k=Low%2fer%2Bmix"), "k=<redacted>");
        assert_eq!(scrub("k=Low%2Fer%2Bmix"), "k=<redacted>");
    }

    #[test]
    fn short_values_are_not_scrubbed_everywhere() {
        register("ab");
        assert_eq!(scrub("tab ab"), "tab ab");
    }
}
