//! The snapshot form's redactions, by field: each field of a normalized report says what it holds, and
//! is redacted for that. A finding's evidence redacts its own typed facts
//! ([`crate::verdict::Evidence::normalized`]); the fields here are the ones that hold text from outside:
//! a program's version, a response header's value as received, and an error's message.

/// What a time becomes in a snapshot.
pub const DURATION: &str = "<duration>";

/// What comes before the version of each real program in reports (`nginx/`, `Apache/`).
fn version_labels() -> &'static [String] {
    static LABELS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LABELS.get_or_init(|| {
        crate::intermediary::programs::PROGRAMS
            .iter()
            .map(|p| p.version_label())
            .collect()
    })
}

/// A program's version as a chain reports it (`nginx/1.22.1` → `nginx/<version>`).
pub fn program(version: &str) -> String {
    match version.split_once('/') {
        Some((name, _)) => format!("{name}/<version>"),
        None => version.to_string(),
    }
}

/// A response header's value as received: the versions of real programs (`server: nginx/1.22.1`,
/// `via: 1.1 ssegate-squid (squid/5.7)`), loopback ports and temporary paths vary run to run.
pub fn header_value(value: &str) -> String {
    redact(value, false)
}

/// An error's message (a load's failure example, an unmet expectation): as a header's value, and any
/// time in it (`after 1500 ms`).
pub fn message(text: &str) -> String {
    redact(text, true)
}

fn redact(text: &str, durations: bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if let Some(next) = port(&chars, i, &mut out)
            .or_else(|| version(&chars, i, &mut out))
            .or_else(|| tmp_path(&chars, i, &mut out))
            .or_else(|| durations.then(|| duration(&chars, i, &mut out)).flatten())
        {
            i = next;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn at(chars: &[char], i: usize, pat: &str) -> bool {
    (i..)
        .zip(pat.chars())
        .all(|(k, p)| chars.get(k) == Some(&p))
}

/// `127.0.0.1:PORT` → `127.0.0.1:<port>`.
fn port(chars: &[char], i: usize, out: &mut String) -> Option<usize> {
    const HOST: &str = "127.0.0.1:";
    if !at(chars, i, HOST) {
        return None;
    }
    out.push_str(HOST);
    let start = i + HOST.len();
    let end = (start..chars.len())
        .find(|&k| !chars[k].is_ascii_digit())
        .unwrap_or(chars.len());
    if end > start {
        out.push_str("<port>");
    }
    Some(end)
}

/// `nginx/1.22.1`, `haproxy/2.6.12-1+deb12u4` and the versions of every other real program.
fn version(chars: &[char], i: usize, out: &mut String) -> Option<usize> {
    let label = version_labels().iter().find(|w| at(chars, i, w))?;
    out.push_str(label);
    let start = i + label.chars().count();
    let mut end = start;
    if chars.get(start).is_some_and(|c| c.is_ascii_digit()) {
        while end < chars.len()
            && (chars[end].is_ascii_alphanumeric() || matches!(chars[end], '.' | '-' | '+' | '~'))
        {
            end += 1;
        }
    }
    if end > start {
        out.push_str("<version>");
    }
    Some(end)
}

/// A path under `/tmp/` → `<tmp>`.
fn tmp_path(chars: &[char], i: usize, out: &mut String) -> Option<usize> {
    if !at(chars, i, "/tmp/") {
        return None;
    }
    let end = (i..chars.len())
        .find(|&k| chars[k].is_whitespace() || matches!(chars[k], ')' | '"' | ';' | ',' | '\''))
        .unwrap_or(chars.len());
    out.push_str("<tmp>");
    Some(end)
}

/// A number followed by ` ms` or ` s` → `<duration>`.
fn duration(chars: &[char], i: usize, out: &mut String) -> Option<usize> {
    let starts = chars[i].is_ascii_digit()
        && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '.'));
    if !starts {
        return None;
    }
    let j = (i..chars.len())
        .find(|&k| !(chars[k].is_ascii_digit() || chars[k] == '.'))
        .unwrap_or(chars.len());
    let unit =
        |u: &str| at(chars, j, u) && !chars.get(j + u.len()).is_some_and(|c| c.is_alphanumeric());
    let len = if unit(" ms") {
        3
    } else if unit(" s") {
        2
    } else {
        return None;
    };
    out.push_str(DURATION);
    Some(j + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_is_redacted_for_what_it_holds() {
        assert_eq!(program("nginx/1.22.1"), "nginx/<version>");
        assert_eq!(
            header_value("1.1 ssegate-squid (squid/5.7)"),
            "1.1 ssegate-squid (squid/<version>)"
        );
        assert_eq!(
            header_value("Apache/2.4.62 (Debian)"),
            "Apache/<version> (Debian)"
        );
        // A header's value keeps its times: they are what the server said.
        assert_eq!(header_value("max-age=5 s"), "max-age=5 s");
        assert_eq!(
            message(
                "at 12 ms and 1.25 s via 127.0.0.1:45678 in /tmp/ssegate-nginx-abc/error.log; 4096 bytes, 3 sets"
            ),
            "at <duration> and <duration> via 127.0.0.1:<port> in <tmp>; 4096 bytes, 3 sets"
        );
    }
}
