//! Error types shared across modules, and the process exit codes the CLI documents.

use std::path::PathBuf;

use miette::{NamedSource, SourceSpan};

/// Exit codes of the `ssegate` binary (documented in the README).
pub mod exit {
    /// Every case met its expectation; `probe` measured a stream.
    pub const OK: i32 = 0;
    /// Command-line usage error (clap's own code).
    pub const USAGE: i32 = 2;
    /// At least one case did not meet its expectation, or `probe --fail-on` matched.
    pub const FAILED: i32 = 4;
    /// The environment could not run the scenario (nginx missing, a child exited, port in use, network error).
    pub const SETUP: i32 = 3;
    /// A case, profile or config file is invalid.
    pub const INVALID_INPUT: i32 = 5;
    /// A run selected no cases.
    pub const NO_CASES: i32 = 6;
    /// Nothing failed, but at least one case failed twice while the machine was too busy to tell.
    pub const INCONCLUSIVE: i32 = 7;
    /// Interrupted by Ctrl-C (children were stopped first).
    pub const INTERRUPTED: i32 = 130;
    /// Terminated by SIGTERM (children were stopped first).
    pub const TERMINATED: i32 = 143;
}

/// A YAML file or a name in it is invalid.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FileError {
    #[error("failed to read {}", path.display())]
    #[diagnostic(code(ssegate::io))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<InvalidFile>),
    #[error("unknown {what} `{name}`")]
    #[diagnostic(code(ssegate::unknown_name))]
    UnknownName {
        what: &'static str,
        name: String,
        #[help]
        help: String,
    },
}

/// A located error in a file: rendered rustc-style with the offending line.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("invalid {}:{line}:{column}: {message}", path.display())]
#[diagnostic(code(ssegate::invalid_file))]
pub struct InvalidFile {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    #[source_code]
    pub src: NamedSource<String>,
    #[label("{label}")]
    pub span: SourceSpan,
    pub label: String,
    #[help]
    pub help: Option<String>,
}

impl FileError {
    /// An error at `line`:`column` (1-based) of `src`, read from `path`.
    pub fn at(
        path: &std::path::Path,
        src: &str,
        line: usize,
        column: usize,
        message: impl Into<String>,
        help: Option<String>,
    ) -> FileError {
        let offset = offset_of(src, line, column);
        let len = src[offset..]
            .find(['\n', ':', ','])
            .unwrap_or(src.len() - offset)
            .max(1)
            .min(src.len().saturating_sub(offset).max(1));
        let message = message.into();
        FileError::Invalid(Box::new(InvalidFile {
            path: path.to_path_buf(),
            line,
            column,
            label: short_label(&message),
            message,
            src: NamedSource::new(path.display().to_string(), src.to_string()),
            span: (offset, len).into(),
            help,
        }))
    }
}

fn short_label(message: &str) -> String {
    let first = message.split(", expected").next().unwrap_or(message);
    first.trim().to_string()
}

/// Byte offset of a 1-based line and column (column counted in characters).
pub fn offset_of(src: &str, line: usize, column: usize) -> usize {
    let mut off = 0;
    for (i, l) in src.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let col_bytes: usize = l
                .chars()
                .take(column.saturating_sub(1))
                .map(char::len_utf8)
                .sum();
            return (off + col_bytes).min(src.len());
        }
        off += l.len();
    }
    src.len()
}

/// `err` and its sources joined with ": ".
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let m = e.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = e.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_lines_and_characters() {
        let src = "a: 1\nbé: 2\nc: 3\n";
        assert_eq!(offset_of(src, 1, 1), 0);
        assert_eq!(offset_of(src, 2, 1), 5);
        assert_eq!(&src[offset_of(src, 2, 3)..offset_of(src, 2, 3) + 1], ":");
        assert_eq!(offset_of(src, 9, 1), src.len());
    }

    #[test]
    fn errors_point_at_the_place() {
        let e = FileError::at(
            std::path::Path::new("x.yaml"),
            "a: 1\nbad: 2\n",
            2,
            1,
            "unknown field `bad`, expected `a`",
            None,
        );
        assert_eq!(
            e.to_string(),
            "invalid x.yaml:2:1: unknown field `bad`, expected `a`"
        );
        let FileError::Invalid(inv) = e else { panic!() };
        assert_eq!(inv.span.offset(), 5);
        assert_eq!(inv.span.len(), 3);
        assert_eq!(inv.label, "unknown field `bad`");
    }
}
