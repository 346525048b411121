//! The files ssegate needs at run time: config templates of the real proxies (`proxies/<program>/`), fixture profiles (`fixtures/`) and the
//! built-in conformance cases (`cases/`).
//!
//! In a source checkout they are read from the tree, so edits take effect at once. A binary that has moved
//! away from its source (installed, copied into a container) carries them embedded and extracts them once
//! per version into a directory under the system's temporary directory.

use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

static PROXIES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/proxies");
static FIXTURES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/fixtures");
static CASES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/cases");

/// A kind of built-in asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `proxies/<program>/`: one directory of templates per real program.
    Proxies,
    Fixtures,
    Cases,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Proxies => "proxies",
            Kind::Fixtures => "fixtures",
            Kind::Cases => "cases",
        }
    }

    fn embedded(self) -> &'static Dir<'static> {
        match self {
            Kind::Proxies => &PROXIES,
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

/// A fingerprint of everything embedded, so that a binary never reuses another build's extraction.
fn content_hash() -> u64 {
    static HASH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *HASH.get_or_init(|| {
        // FNV-1a over every embedded path and its bytes.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for kind in [Kind::Proxies, Kind::Fixtures, Kind::Cases] {
            let mut files: Vec<&include_dir::File> = Vec::new();
            collect(kind.embedded(), &mut files);
            files.sort_by_key(|f| f.path());
            for f in files {
                eat(f.path().to_string_lossy().as_bytes());
                eat(f.contents());
            }
        }
        h
    })
}

fn collect<'a>(dir: &'a Dir<'a>, out: &mut Vec<&'a include_dir::File<'a>>) {
    out.extend(dir.files());
    for d in dir.dirs() {
        collect(d, out);
    }
}

/// Ours to trust: a real directory (not a link), owned by this user, writable by nobody else.
fn private_dir(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| {
        // SAFETY: geteuid has no preconditions and cannot fail.
        m.is_dir() && m.uid() == unsafe { libc::geteuid() } && m.mode() & 0o022 == 0
    })
}

fn extracted(kind: Kind) -> Option<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let root = std::env::temp_dir().join(format!(
        "ssegate-assets-{}-{:016x}",
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() },
        content_hash()
    ));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&root);
    if !private_dir(&root) {
        // Someone else's (or a link): never run templates from there.
        return None;
    }
    let target = root.join(kind.name());
    if !target.is_dir() {
        // Extract into a fresh directory, then rename, so a concurrent run never sees half a copy.
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
        for kind in [Kind::Proxies, Kind::Fixtures, Kind::Cases] {
            let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join(kind.name());
            let mut files = Vec::new();
            collect(kind.embedded(), &mut files);
            for f in &files {
                let on_disk = std::fs::read(tree.join(f.path())).unwrap_or_default();
                assert_eq!(
                    on_disk,
                    f.contents(),
                    "{} is stale in the binary: rebuild",
                    f.path().display()
                );
            }
            assert!(!files.is_empty());
        }
    }

    #[test]
    fn a_directory_writable_by_others_is_not_trusted() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(private_dir(d.path()));
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!private_dir(d.path()));
    }

    #[test]
    fn extraction_gives_a_usable_directory() {
        let d = extracted(Kind::Proxies).unwrap();
        assert!(d.join("nginx/_base.conf").is_file());
        assert!(d.join("nginx/default.conf").is_file());
    }
}
