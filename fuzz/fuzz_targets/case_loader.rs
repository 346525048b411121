//! The YAML loaders on arbitrary text: a case file or `ssegate.yaml` either loads or is refused with a
//! located error; never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ssegate::yaml::parse_yaml::<ssegate::case::CaseFile>(Path::new("fuzz.yaml"), text);
    let _ = ssegate::config::parse(Path::new("fuzz.yaml"), text);
});
