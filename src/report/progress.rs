//! The terminal's progress reporter: an indicatif bar on stderr while scenarios run, nothing at all when
//! stderr is not a terminal (CI logs get only the final report).

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::events::{Reporter, RunEvent};

/// A progress bar when stderr is a terminal, silent otherwise.
pub struct Progress {
    bar: Mutex<Option<ProgressBar>>,
    enabled: bool,
}

impl Progress {
    /// Draw on stderr when it is a terminal.
    pub fn stderr() -> Progress {
        use std::io::IsTerminal;
        Progress {
            bar: Mutex::new(None),
            enabled: std::io::stderr().is_terminal(),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Ok(b) = self.bar.lock()
            && let Some(bar) = b.as_ref()
        {
            f(bar);
        }
    }
}

impl Reporter for Progress {
    fn event(&self, event: RunEvent<'_>) {
        if !self.enabled {
            return;
        }
        match event {
            RunEvent::RunStarted { what, total } => {
                let bar =
                    ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
                let style = ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(what.to_string());
                if let Ok(mut b) = self.bar.lock() {
                    *b = Some(bar);
                }
            }
            RunEvent::ScenarioStarted { name } => {
                self.with_bar(|b| b.set_message(name.to_string()))
            }
            RunEvent::ScenarioFinished { name, result } => self.with_bar(|b| {
                b.inc(1);
                b.set_message(format!("{result} {name}"));
            }),
            RunEvent::ScenarioRequeued { name, why } => {
                self.with_bar(|b| b.set_message(format!("{name}: {why}; again alone")))
            }
            RunEvent::RunFinished => {
                if let Ok(mut b) = self.bar.lock()
                    && let Some(bar) = b.take()
                {
                    bar.finish_and_clear();
                }
            }
        }
    }
}
