//! The files ssegate needs at run time: nginx templates (`nginx/`), fixture profiles (`fixtures/`) and the
//! built-in conformance cases (`cases/`).
//!
//! In a source checkout they are read from the tree, so edits take effect at once. A binary that has moved
//! away from its source (installed, copied into a container) carries them embedded and extracts them once
//! per version into a directory under the system's temporary directory.

use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

static NGINX: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/nginx");
static FIXTURES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/fixtures");
static CASES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/cases");

/// A kind of built-in asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Nginx,
    Fixtures,
    Cases,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Nginx => "nginx",
            Kind::Fixtures => "fixtures",
            Kind::Cases => "cases",
        }
    }

    fn embedded(self) -> &'static Dir<'static> {
        match self {
            Kind::Nginx => &NGINX,
            Kind::Fixtures => &FIXTURES,
            Kind::Cases => &CASES,
        }
    }
}

/// The directory holding `kind`: the source tree's when it exists, else the embedded copy, extracted.
pub fn dir(kind: Kind) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(kind.name());
    if source.is_dir() {
        return source;
    }
    extracted(kind).unwrap_or(source)
}

fn extracted(kind: Kind) -> Option<PathBuf> {
    let root = std::env::temp_dir().join(format!(
        "ssegate-{}-assets-{}",
        env!("CARGO_PKG_VERSION"),
        // One per user: another user's directory is not ours to trust.
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    ));
    let target = root.join(kind.name());
    if !target.is_dir() {
        // Extract into a fresh directory, then rename, so a concurrent run never sees half a copy.
        std::fs::create_dir_all(&root).ok()?;
        let staging = tempfile::Builder::new()
            .prefix(".extract-")
            .tempdir_in(&root)
            .ok()?;
        kind.embedded().extract(staging.path()).ok()?;
        let staged = staging.keep();
        if std::fs::rename(&staged, &target).is_err() {
            let _ = std::fs::remove_dir_all(&staged);
        }
    }
    target.is_dir().then_some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_copies_match_the_tree() {
        for kind in [Kind::Nginx, Kind::Fixtures, Kind::Cases] {
            let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join(kind.name());
            for f in kind.embedded().files() {
                let on_disk = std::fs::read(tree.join(f.path())).unwrap_or_default();
                assert_eq!(
                    on_disk,
                    f.contents(),
                    "{} is stale in the binary: rebuild",
                    f.path().display()
                );
            }
            assert!(kind.embedded().files().count() > 0);
        }
    }

    #[test]
    fn extraction_gives_a_usable_directory() {
        let d = extracted(Kind::Nginx).unwrap();
        assert!(d.join("_base.conf").is_file());
        assert!(d.join("default.conf").is_file());
    }
}
