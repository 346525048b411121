//! YAML in, located diagnostics out: every file ssegate reads (cases, profiles, `ssegate.yaml`) is parsed
//! here, so every error names the file, line and column and suggests the nearest valid name.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::LoadError;
use crate::text::name_help;

/// Parse YAML text read from `path`, turning errors into located diagnostics with a did-you-mean.
pub fn parse_yaml<T: DeserializeOwned>(path: &Path, src: &str) -> Result<T, LoadError> {
    serde_saphyr::from_str::<T>(src).map_err(|e| {
        let (line, column) = e
            .location()
            .map_or((1, 1), |l| (l.line() as usize, l.column() as usize));
        let message = clean_message(&e.without_snippet().to_string());
        let help = suggest_from_message(&message);
        LoadError::at(path, src, line, column, message, help)
    })
}

/// Drop the location suffix the YAML library appends (we render our own).
fn clean_message(m: &str) -> String {
    let m = m.lines().next().unwrap_or(m).trim();
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
