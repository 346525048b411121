//! What a run tells its reporters as it goes: typed events, emitted by the scenario loops of `run` and
//! `check`, consumed by whatever reports progress (the terminal's bar, nothing when not a terminal).
//!
//! A leaf module: runners depend on it, reporters implement [`Reporter`], neither depends on the other.

/// One step of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEvent<'a> {
    /// The run starts `total` scenarios (cases or chains).
    RunStarted { what: &'a str, total: usize },
    /// A scenario started.
    ScenarioStarted { name: &'a str },
    /// A scenario finished with this result.
    ScenarioFinished { name: &'a str, result: Finished<'a> },
    /// A scenario will run again, alone, for the reason `why` (its request queued at the origin; the
    /// machine was too busy while it was measured).
    ScenarioRequeued { name: &'a str, why: &'a str },
    /// Every scenario has finished.
    RunFinished,
}

/// How a scenario finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished<'a> {
    /// A case met its expectation.
    Passed,
    /// A case did not meet its expectation.
    Failed,
    /// The scenario could not be measured.
    Error,
    /// A chain was measured with this delivery (the gate judges it later).
    Delivered(&'a str),
}

impl std::fmt::Display for Finished<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Finished::Passed => "pass",
            Finished::Failed => "FAIL",
            Finished::Error => "ERROR",
            Finished::Delivered(d) => d,
        })
    }
}

/// Something that follows a run.
pub trait Reporter: Send + Sync {
    fn event(&self, event: RunEvent<'_>);
}

/// A reporter that ignores everything (library use, tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _: RunEvent<'_>) {}
}
