//! YAML in, located diagnostics out: every file ssegate reads (cases, profiles, `ssegate.yaml`) is parsed
//! here, so every error names the file, line and column and suggests the nearest valid name.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::FileError;
use crate::text::name_help;

/// Read a YAML file as text: a directory, or bytes that are not UTF-8, say what they are.
pub fn read_file(path: &Path) -> Result<String, FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        return Err(io(std::io::Error::other(
            "it is a directory, not a YAML file",
        )));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        io(std::io::Error::other(format!(
            "it is not UTF-8 text (the first invalid byte is at offset {at}, line {line})"
        )))
    })
}

/// Parse YAML text read from `path`, turning errors into located diagnostics with a did-you-mean.
pub fn parse_yaml<T: DeserializeOwned>(path: &Path, src: &str) -> Result<T, FileError> {
    serde_saphyr::from_str::<T>(src).map_err(|e| {
        let (line, column) = e
            .location()
            .map_or((1, 1), |l| (l.line() as usize, l.column() as usize));
        let theirs = clean_message(&e.without_snippet().to_string());
        let help = suggest_from_message(&theirs);
        let message = in_our_words(&theirs, key_at(src, line, column));
        FileError::at(path, src, line, column, message, help)
    })
}

/// Drop the location suffix the YAML library appends (we render our own), and join its lines.
fn clean_message(m: &str) -> String {
    let m = m.split_whitespace().collect::<Vec<_>>().join(" ");
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_string(),
        None => m,
    }
}

/// The key whose value starts at (`line`, `column`), when that line reads `key: value` (or `- key:`).
fn key_at(src: &str, line: usize, column: usize) -> Option<String> {
    let text = src.lines().nth(line.checked_sub(1)?)?;
    let is_key =
        |k: &str| !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || "_-.".contains(c));
    // The location may be a key itself (a `name: value` pair whose value is wrong): that key.
    if let Some((k, _)) = text
        .get(column.saturating_sub(1)..)
        .and_then(|t| t.split_once(':'))
        && is_key(k)
    {
        return Some(k.to_string());
    }
    let before = text.get(..column.saturating_sub(1).min(text.len()))?;
    let (head, _) = before.rsplit_once(':')?;
    let key = head
        .rsplit(['{', ',', ' ', '-'])
        .find(|k| !k.is_empty())?
        .trim_matches(['"', '\'']);
    is_key(key).then(|| key.to_string())
}

/// The YAML library's messages in the project's words, naming the field when the library does not.
fn in_our_words(m: &str, key: Option<String>) -> String {
    let field = key.map(|k| format!(" for `{k}`")).unwrap_or_default();
    if let Some(rest) = m.strip_prefix("duplicate mapping key: ") {
        let name = rest.split([',', ' ']).next().unwrap_or(rest);
        return format!("duplicate key `{name}`: each key may appear once in a mapping");
    }
    if m.contains("budget breached") {
        return "the document is too large or too deeply nested to read (aliases and nesting are limited)"
            .into();
    }
    let kind = match m {
        "invalid u64" | "invalid u32" | "invalid u16" | "invalid u8" | "invalid usize" => {
            Some("expected a whole number, 0 or more")
        }
        "invalid i64" | "invalid i32" => Some("expected a whole number"),
        "invalid f64" | "invalid f32" => Some("expected a number"),
        "invalid bool" | "invalid boolean" => Some("expected `true` or `false`"),
        _ => None,
    };
    match kind {
        Some(k) => format!("invalid value{field}: {k}"),
        None if m.starts_with("invalid type") && !field.is_empty() => format!("{m}{field}"),
        None => m.to_string(),
    }
}

/// For "unknown field `x`, expected one of a, b" (with or without backticks), suggest the nearest name.
fn suggest_from_message(m: &str) -> Option<String> {
    let (head, tail) = m.split_once("expected")?;
    let bad = head.split('`').nth(1)?;
    let tail = tail.trim_start();
    let tail = tail.strip_prefix("one of").unwrap_or(tail);
    let options: Vec<&str> = tail
        .split([',', ' '])
        .map(|o| o.trim().trim_matches('`'))
        .filter(|o| !o.is_empty() && *o != "or")
        .collect();
    if options.is_empty() {
        return None;
    }
    Some(name_help(bad, &options))
}

/// Line and column (1-based) of a nested block-style key, found by walking `path` down the text; the
/// deepest key found so far when the rest is written in flow style (`{a: b}`).
pub fn key_location(src: &str, path: &[&str]) -> (usize, usize) {
    let mut found = (1, 1);
    let mut depth = 0;
    let mut min_indent = 0;
    for (i, line) in src.lines().enumerate() {
        let Some(seg) = path.get(depth) else { break };
        let indent = line.len() - line.trim_start().len();
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if depth > 0 && indent < min_indent {
            break;
        }
        if let Some(pos) = t
            .find(&format!("{seg}:"))
            .filter(|&p| p == 0 || t[..p].ends_with(['{', ' ', ',']))
        {
            found = (i + 1, indent + pos + 1);
            depth += 1;
            min_indent = indent + 1;
            // flow style: the remaining keys are on this line
            for rest in &path[depth..] {
                if let Some(p) = t.find(&format!("{rest}:")) {
                    found = (i + 1, indent + p + 1);
                    depth += 1;
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field_and_use_our_words() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            a: Option<u64>,
            b: Option<bool>,
        }
        let e = parse_yaml::<T>(Path::new("t.yaml"), "a: -5\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("invalid value for `a`: expected a whole number, 0 or more"),
            "{e}"
        );
        let e = parse_yaml::<T>(Path::new("t.yaml"), "a: 1\na: 2\n").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("duplicate key `a`"), "{text}");
        assert!(!text.contains("Policy"), "{text}");
    }

    #[test]
    fn directories_and_binary_files_say_what_they_are() {
        let d = tempfile::tempdir().unwrap();
        let e = read_file(d.path()).unwrap_err();
        assert!(
            crate::error::error_chain(&e).contains("it is a directory"),
            "{e}"
        );
        let f = d.path().join("x.yaml");
        std::fs::write(&f, b"a: 1\nb: \xff\n").unwrap();
        let e = crate::error::error_chain(&read_file(&f).unwrap_err());
        assert!(e.contains("not UTF-8 text") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn suggestions_come_from_serde_messages() {
        let h = suggest_from_message(
            "unknown field `chian`, expected one of description, target, chain",
        )
        .unwrap();
        assert!(h.starts_with("did you mean `chain`?"), "{h}");
        let h = suggest_from_message(
            "unknown variant `streamd`, expected one of `streamed`, `batched`",
        )
        .unwrap();
        assert!(h.starts_with("did you mean `streamed`?"), "{h}");
        assert_eq!(suggest_from_message("invalid type: integer"), None);
    }
}
