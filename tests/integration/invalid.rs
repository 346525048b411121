//! Every malformed file under `tests/data/invalid/` is refused with a located message in the project's
//! own words. The rendered messages are a golden snapshot (`tests/data/invalid/messages.snap`): review its
//! diff like any other change of behaviour.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

fn render(e: ssegate::error::FileError) -> String {
    let mut out = String::new();
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    let report = miette::Report::new(e);
    handler.render_report(&mut out, report.as_ref()).unwrap();
    out
}

#[test]
fn every_malformed_file_is_refused_with_a_located_message() {
    // Relative to the package root (the tests' working directory), so that messages, and where they
    // wrap, are the same in every checkout.
    let root = Path::new("tests/data/invalid");
    let profiles = ssegate::origin::profile::builtin_dir();
    let mut all = String::new();
    let mut count = 0;
    for (kind, dir) in [("config", root.join("config")), ("case", root.join("case"))] {
        for f in files(&dir) {
            let result = match kind {
                "config" => ssegate::config::load(&f).err(),
                _ => ssegate::case::Case::load(&f, &profiles).err(),
            };
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            let e = result.unwrap_or_else(|| panic!("{kind} {name} was accepted"));
            let text = render(e);
            for leak in ["Policy", "budget", "Nodes {", "invalid u64", "Options"] {
                assert!(
                    !text.contains(leak),
                    "{name} leaks the YAML library's wording: {text}"
                );
            }
            let _ = writeln!(all, "== {kind}/{name}\n{}", text.trim_end());
            count += 1;
        }
    }
    assert!(count >= 60, "{count} malformed files");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join(root));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("messages", all));
}

#[test]
fn a_malformed_config_exits_5() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/invalid/config");
    for name in [
        "path-without-slash.yaml",
        "empty-matrix.yaml",
        "missing-cwd.yaml",
    ] {
        let out = crate::util::bin()
            .args(["check", "-c"])
            .arg(root.join(name))
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(5),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
