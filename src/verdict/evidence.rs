//! A finding's evidence as typed facts: durations, sizes, counts, headers, text from the stream. Its
//! sentence is rendered from them (for people, [`std::fmt::Display`]), and a snapshot redacts by fact
//! ([`Evidence::normalized`]): a duration becomes `<duration>`, a detail that varies run to run is left
//! out; nothing is scanned for after the fact.

use std::fmt;
use std::time::Duration;

/// One fact in a finding's evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// A time, for people as `1.25 s`.
    Duration(Duration),
    /// A time, for people in whole milliseconds (`1250 ms`).
    Millis(Duration),
    /// A count of things.
    Count(u64),
    /// A size in bytes.
    Bytes(u64),
    /// Sizes in bytes, as a list (`[4096, 4096]`).
    Sizes(Vec<u64>),
    /// Text from the stream or the recording: a header's value, an id, a field name, a status line.
    Text(String),
    /// A detail that varies run to run on the same stream (how refused streams split between a reset
    /// and an error status): shown to people, left out of a snapshot.
    Varies(String),
}

impl From<Duration> for Fact {
    fn from(d: Duration) -> Fact {
        Fact::Duration(d)
    }
}

impl From<usize> for Fact {
    fn from(n: usize) -> Fact {
        Fact::Count(n as u64)
    }
}

impl From<u64> for Fact {
    fn from(n: u64) -> Fact {
        Fact::Count(n)
    }
}

impl From<u16> for Fact {
    fn from(n: u16) -> Fact {
        Fact::Count(u64::from(n))
    }
}

impl From<String> for Fact {
    fn from(s: String) -> Fact {
        Fact::Text(s)
    }
}

impl From<&str> for Fact {
    fn from(s: &str) -> Fact {
        Fact::Text(s.to_string())
    }
}

impl Fact {
    fn render(&self, out: &mut String, snapshot: bool) {
        use fmt::Write as _;
        let _ = match self {
            Fact::Duration(_) | Fact::Millis(_) if snapshot => write!(out, "<duration>"),
            Fact::Millis(d) => write!(out, "{} ms", d.as_millis()),
            Fact::Duration(d) => write!(out, "{}", crate::text::human_duration(*d)),
            Fact::Count(n) | Fact::Bytes(n) => write!(out, "{n}"),
            Fact::Sizes(v) => write!(out, "{v:?}"),
            Fact::Text(s) => write!(out, "{s}"),
            Fact::Varies(_) if snapshot => Ok(()),
            Fact::Varies(s) => write!(out, "{s}"),
        };
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Words(String),
    Fact(Fact),
}

/// A finding's evidence: words and facts in the order the sentence reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evidence(Vec<Piece>);

impl Evidence {
    /// The sentence `template` with each `{}` replaced by the next of `facts`.
    pub fn template(template: &str, facts: Vec<Fact>) -> Evidence {
        let mut pieces = Vec::new();
        let mut facts = facts.into_iter();
        let mut parts = template.split("{}").peekable();
        while let Some(words) = parts.next() {
            if !words.is_empty() {
                pieces.push(Piece::Words(words.to_string()));
            }
            if parts.peek().is_some() {
                let fact = facts.next();
                debug_assert!(fact.is_some(), "a `{{}}` without its fact in {template:?}");
                pieces.extend(fact.map(Piece::Fact));
            }
        }
        debug_assert!(
            facts.next().is_none(),
            "more facts than `{{}}` in {template:?}"
        );
        Evidence(pieces)
    }

    /// This evidence followed by `more`.
    pub fn then(mut self, more: Evidence) -> Evidence {
        self.0.extend(more.0);
        self
    }

    /// The facts, in the order the sentence gives them.
    pub fn facts(&self) -> impl Iterator<Item = &Fact> {
        self.0.iter().filter_map(|p| match p {
            Piece::Fact(f) => Some(f),
            Piece::Words(_) => None,
        })
    }

    /// The sentence as a snapshot holds it: durations as `<duration>`, varying details left out.
    pub fn normalized(&self) -> String {
        self.render(true)
    }

    /// Whether the sentence (as people read it) contains `text`.
    pub fn contains(&self, text: &str) -> bool {
        self.to_string().contains(text)
    }

    fn render(&self, snapshot: bool) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Words(w) => out.push_str(w),
                Piece::Fact(f) => f.render(&mut out, snapshot),
            }
        }
        out
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl From<&str> for Evidence {
    /// Words with no fact.
    fn from(s: &str) -> Evidence {
        Evidence(vec![Piece::Words(s.to_string())])
    }
}

impl From<Fact> for Evidence {
    /// One fact alone.
    fn from(f: Fact) -> Evidence {
        Evidence(vec![Piece::Fact(f)])
    }
}

impl serde::Serialize for Evidence {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `evidence!("{} of {} events", n, total)`: an [`Evidence`] whose `{}` are typed facts (anything that
/// converts into a [`Fact`]: a `Duration`, a count, a `String` from the stream; or a `Fact` itself).
macro_rules! evidence {
    ($template:literal $(, $fact:expr)* $(,)?) => {
        $crate::verdict::evidence::Evidence::template(
            $template,
            vec![$($crate::verdict::evidence::Fact::from($fact)),*],
        )
    };
}
pub(crate) use evidence;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_for_people_and_for_snapshots() {
        let e = evidence!(
            "{} of {} streams; {} failed{} after {}",
            383usize,
            500usize,
            117usize,
            Fact::Varies(" (status 114, reset 3)".into()),
            Duration::from_millis(1250)
        );
        assert_eq!(
            e.to_string(),
            "383 of 500 streams; 117 failed (status 114, reset 3) after 1.25 s"
        );
        assert_eq!(
            e.normalized(),
            "383 of 500 streams; 117 failed after <duration>"
        );
        assert_eq!(e.facts().count(), 5);
        let sizes = evidence!("clumps of {} bytes", Fact::Sizes(vec![4096, 8192]));
        assert_eq!(sizes.to_string(), "clumps of [4096, 8192] bytes");
        assert_eq!(
            evidence!("{}", "only a fact")
                .then(evidence!("; then {}", 2usize))
                .to_string(),
            "only a fact; then 2"
        );
    }
}
