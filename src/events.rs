//! What a run tells its reporters as it goes: typed events, emitted by the scenario loops of `run` and
//! `check`, consumed by whatever reports progress (the terminal's bar, nothing when not a terminal).
//!
//! A leaf module: runners depend on it, reporters implement [`Reporter`], neither depends on the other.

/// One step of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// The run starts `total` scenarios (cases or chains).
    RunStarted { what: &'a str, total: usize },
    /// A scenario started.
    ScenarioStarted { name: &'a str },
    /// A scenario finished with this result (`pass`, `FAIL`, `ERROR`, `measured`).
    ScenarioFinished { name: &'a str, result: &'a str },
    /// A scenario will run again, alone (its request queued at the origin).
    ScenarioRequeued { name: &'a str },
    /// Every scenario has finished.
    RunFinished,
}

/// Something that follows a run.
pub trait Reporter: Send + Sync {
    fn event(&self, event: Event<'_>);
}

/// A reporter that ignores everything (library use, tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _: Event<'_>) {}
}
