//! Small text helpers every layer uses: durations for people and for JSON, did-you-mean suggestions.
//!
//! A leaf module: it imports nothing from the crate, so any module may use it without an arrow running
//! back up the data flow.

use std::time::Duration;

/// `12 ms` below a second, `1.25 s` above.
pub fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// `s` cut to at most `max` bytes without splitting a character.
pub fn truncate_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The nearest of `known` to `name`, if any is close.
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(d, k)| *d <= (k.len().max(name.len()) / 3).max(2))
        .min()
        .map(|(_, k)| k.to_string())
}

/// "did you mean `x`? valid: a, b, c".
pub fn name_help<S: AsRef<str>>(name: &str, known: &[S]) -> String {
    let list: Vec<&str> = known.iter().map(|s| s.as_ref()).collect();
    match did_you_mean(name, list.iter().copied()) {
        Some(s) => format!("did you mean `{s}`? valid: {}", list.join(", ")),
        None => format!("valid: {}", list.join(", ")),
    }
}

/// A duration in JSON: milliseconds, to the microsecond.
pub(crate) fn ser_ms<S: serde::Serializer>(
    d: &std::time::Duration,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_never_splits_a_character() {
        assert_eq!(truncate_at_char_boundary("héllo", 2), "h");
        assert_eq!(truncate_at_char_boundary("héllo", 3), "hé");
        assert_eq!(truncate_at_char_boundary("hi", 10), "hi");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::from_millis(12)), "12 ms");
        assert_eq!(human_duration(Duration::from_millis(1250)), "1.25 s");
    }

    #[test]
    fn did_you_mean_needs_a_close_name() {
        assert_eq!(
            did_you_mean("plian", ["plain", "hardened"]).as_deref(),
            Some("plain")
        );
        assert_eq!(did_you_mean("zzzzzz", ["plain", "hardened"]), None);
        assert!(name_help("plian", &["plain"]).starts_with("did you mean `plain`?"));
    }
}
