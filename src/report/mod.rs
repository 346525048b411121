//! Rendering finished reports, one file per format: [`human`], [`json`], [`junit`], [`markdown`],
//! [`html`], and [`snapshot`] (the normalized form `reports/*.snap` holds). Every kind of report
//! (`check`'s, `run`'s, `probe`'s, `doctor`'s, `load`'s) implements [`Render`], so a command picks its
//! format in one place ([`Render::render`]).

pub mod html;
pub mod human;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod progress;
pub mod run;
pub mod snapshot;
pub mod table;

pub use snapshot::normalized;

use crate::check::CheckReport;
use crate::doctor::DoctorReport;
use crate::phase::load::LoadMeasured;
use crate::probe::{End, Recording};
use crate::verdict::browser::BrowserVerdict;
use crate::verdict::{Basis, Severity, Verdict};
use run::RunReport;

/// The formats every report-producing command writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    /// JSON: `check` writes JSON Lines described by `schema/check.schema.json`, the others one document.
    Json,
    Junit,
    Markdown,
}

/// A finished report of one kind, in every format it has.
pub trait Render {
    /// What the report is of, for a format it does not have (`load`).
    const KIND: &'static str;
    /// For people; `color` paints it for a terminal.
    fn human(&self, color: bool) -> String;
    fn json(&self) -> String;
    /// None: this kind has no JUnit form.
    fn junit(&self) -> Option<String>;
    /// None: this kind has no Markdown form.
    fn markdown(&self) -> Option<String>;

    /// The report in `format`, or why this kind has no such form.
    fn render(&self, format: Format, color: bool) -> Result<String, String> {
        let none = || format!("`{}` writes human or json", Self::KIND);
        match format {
            Format::Human => Ok(self.human(color)),
            Format::Json => Ok(self.json()),
            Format::Junit => self.junit().ok_or_else(none),
            Format::Markdown => self.markdown().ok_or_else(none),
        }
    }
}

impl Render for CheckReport {
    const KIND: &'static str = "check";
    fn human(&self, color: bool) -> String {
        human::check_human(self, color)
    }
    fn json(&self) -> String {
        json::check_jsonl(self)
    }
    fn junit(&self) -> Option<String> {
        Some(junit::check_junit(self))
    }
    fn markdown(&self) -> Option<String> {
        Some(markdown::check_markdown(self))
    }
}

impl Render for RunReport {
    const KIND: &'static str = "run";
    fn human(&self, _color: bool) -> String {
        human::run_human(self)
    }
    fn json(&self) -> String {
        json::run_json(self)
    }
    fn junit(&self) -> Option<String> {
        Some(junit::run_junit(self))
    }
    fn markdown(&self) -> Option<String> {
        Some(markdown::run_markdown(self))
    }
}

impl Render for DoctorReport {
    const KIND: &'static str = "doctor";
    fn human(&self, _color: bool) -> String {
        human::doctor_human(self)
    }
    fn json(&self) -> String {
        json::pretty(&json::DoctorDoc::new(self))
    }
    fn junit(&self) -> Option<String> {
        Some(junit::stream_junit(
            &self.recording,
            &self.verdict,
            Severity::Error,
            human::doctor_human(self),
        ))
    }
    fn markdown(&self) -> Option<String> {
        Some(markdown::doctor_markdown(self))
    }
}

/// `probe`'s report: the recording, its verdict, the browser's view beside it, and the least severity
/// that fails (a JUnit failure).
pub struct ProbeReport<'a> {
    pub recording: &'a Recording,
    pub verdict: &'a Verdict,
    pub browser: Option<&'a BrowserVerdict>,
    pub fail_on: Severity,
}

impl Render for ProbeReport<'_> {
    const KIND: &'static str = "probe";
    fn human(&self, _color: bool) -> String {
        human::probe_human(self.recording, self.verdict, self.browser)
    }
    fn json(&self) -> String {
        json::pretty(&json::ProbeDoc::new(self.recording, self.verdict).with_browser(self.browser))
    }
    fn junit(&self) -> Option<String> {
        let human = self.human(false);
        Some(junit::stream_junit(
            self.recording,
            self.verdict,
            self.fail_on,
            human,
        ))
    }
    fn markdown(&self) -> Option<String> {
        Some(markdown::stream_markdown(self.recording, self.verdict))
    }
}

/// `load`'s report: the load, the URL (redacted) and the chain in front of it.
pub struct LoadReport<'a> {
    pub url: &'a str,
    pub chain: &'a str,
    pub measured: &'a LoadMeasured,
}

impl Render for LoadReport<'_> {
    const KIND: &'static str = "load";
    fn human(&self, _color: bool) -> String {
        human::load_human(self.url, self.chain, self.measured)
    }
    fn json(&self) -> String {
        json::load_json(self.url, self.chain, self.measured)
    }
    fn junit(&self) -> Option<String> {
        None
    }
    fn markdown(&self) -> Option<String> {
        None
    }
}

fn end_label(end: &End) -> String {
    match end {
        End::Complete => "complete".into(),
        End::Aborted { .. } => "aborted".into(),
        End::Limit { limit } => format!("limit ({limit:?})").to_lowercase(),
        End::Undecodable { .. } => "undecodable".into(),
    }
}

/// Bytes of each event's data a report shows.
pub const DATA_SHOWN: usize = crate::probe::DATA_KEPT;

pub(crate) fn basis_label(b: Basis) -> &'static str {
    match b {
        Basis::SendInstants => "judged against the origin's send instants",
        Basis::Tap => "judged against the origin's send instants, stamped by a tap in front of it",
        Basis::Baseline => "judged against the baseline recording",
        Basis::Inferred => "inferred from the arrival pattern (no send instants, no baseline)",
    }
}

/// `  severity id: evidence`, the one-line form every text report uses.
pub fn finding_line(f: &crate::verdict::Finding) -> String {
    format!("  {:<7} {}: {}", f.severity().as_str(), f.id(), f.evidence)
}

/// The HTTP version, and over TLS the TLS version and what ALPN chose (`HTTP/2.0 over TLSv1.2, ALPN h2`).
pub fn protocol(r: &Recording) -> String {
    match &r.tls {
        Some(t) => format!("{} over {}, ALPN {}", r.version, t.version, t.alpn),
        None => r.version.clone(),
    }
}
