//! How starved this machine was while a stream was measured, from two sources: how late a timer of
//! our own fired (a thread that asks to wake every [`TICK`] and notes how late it woke), and the
//! kernel's CPU pressure (`/proc/pressure/cpu`, the share of time some runnable task waited for a
//! CPU) where the kernel offers it.
//!
//! A probe timestamps each read when its task gets to run. On a starved machine that is late, and
//! events the origin sent apart can be read together: an arrival pattern a buffering hop also makes.
//! Where nothing gives the origin's send instants (`probe`, `doctor`), a break that a stall of this
//! process could explain is reported as inconclusive, not as a break
//! ([`crate::verdict::excuse_starved`]).

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

/// How often the watching thread asks to wake.
pub const TICK: Duration = Duration::from_millis(10);
/// Wake-ups later than this are kept (a timer on an idle machine is late by well under 1 ms).
const LATE: Duration = Duration::from_millis(2);
/// Late wake-ups kept, newest last (at [`TICK`] that is at least 40 s of a fully starved machine).
const KEPT: usize = 4096;
/// Share of a window in which some task waited for a CPU that counts as starved (see
/// [`Pressure::starved`]).
pub const CPU_WAITING_STARVED: f64 = 0.25;
/// A wake-up at least this late is a stall.
pub const STALL: Duration = Duration::from_millis(50);

/// Late wake-ups of the watching thread: when each was due and how late it came.
static LATE_TICKS: Mutex<VecDeque<(Instant, Duration)>> = Mutex::new(VecDeque::new());
static WATCHING: OnceLock<()> = OnceLock::new();

/// What the machine's load did to this process over one measurement.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pressure {
    /// 99th percentile of the watching timer's lateness over the window.
    #[serde(rename = "timer_late_p99_ms", serialize_with = "crate::text::ser_ms")]
    pub timer_late_p99: Duration,
    /// The latest it woke: the longest this process could not run.
    #[serde(rename = "timer_late_max_ms", serialize_with = "crate::text::ser_ms")]
    pub timer_late_max: Duration,
    /// Wake-ups at least [`STALL`] late.
    pub stalls: usize,
    /// Share of the window (0–1) in which some task on the machine waited for a CPU, from
    /// `/proc/pressure/cpu`; absent where the kernel has no pressure information.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_waiting: Option<f64>,
}

impl Pressure {
    /// Whether the machine was too busy for a measurement whose verdict rests on a delay of `margin`:
    /// ssegate itself stalled for half of it, or some task waited for a CPU at least a quarter of the
    /// time (a starved hop forwards late; the kernel's figure is the only one that sees other
    /// processes).
    pub fn starved(&self, margin: Duration) -> bool {
        self.timer_late_max * 2 >= margin
            || self.cpu_waiting.is_some_and(|w| w >= CPU_WAITING_STARVED)
    }

    /// "timer lateness p99 N ms, longest M ms[, CPU waited P% of the time]".
    pub fn describe(&self) -> String {
        let ms = |d: Duration| d.as_millis();
        let mut s = format!(
            "timer lateness p99 {} ms, longest {} ms",
            ms(self.timer_late_p99),
            ms(self.timer_late_max)
        );
        if let Some(w) = self.cpu_waiting {
            s.push_str(&format!(
                ", some task waited for a CPU {:.0}% of the time",
                w * 100.0
            ));
        }
        s
    }
}

/// [`Pressure::describe`] of a measurement's pressure, or that there is none.
pub fn describe(p: Option<&Pressure>) -> String {
    p.map_or_else(|| "no pressure figures".into(), Pressure::describe)
}

/// One measurement's window: start it before the request, finish it when the stream ended.
pub struct Watch {
    from: Instant,
    psi: Option<u64>,
}

impl Watch {
    /// Starts the watching thread if it is not running yet.
    pub fn start() -> Watch {
        WATCHING.get_or_init(|| {
            // Without the thread there is no lateness to report; the window then reads as unstarved,
            // which only keeps verdicts as they are.
            let _ = std::thread::Builder::new()
                .name("ssegate-pressure".into())
                .spawn(watch);
        });
        Watch {
            from: Instant::now(),
            psi: cpu_some_total(),
        }
    }

    /// The pressure over the window since [`Watch::start`].
    pub fn finish(&self) -> Pressure {
        let to = Instant::now();
        let late: Vec<Duration> = lock()
            .iter()
            .filter(|(due, _)| *due >= self.from && *due <= to)
            .map(|(_, late)| *late)
            .collect();
        let wall = to - self.from;
        let cpu_waiting = match (self.psi, cpu_some_total()) {
            (Some(a), Some(b)) if !wall.is_zero() => {
                Some((b.saturating_sub(a) as f64 / 1e6 / wall.as_secs_f64()).min(1.0))
            }
            _ => None,
        };
        summarize(late, wall, cpu_waiting)
    }
}

fn lock() -> std::sync::MutexGuard<'static, VecDeque<(Instant, Duration)>> {
    LATE_TICKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The watching thread: wakes every [`TICK`] for the rest of the process and keeps its late wake-ups.
fn watch() {
    loop {
        let due = Instant::now() + TICK;
        std::thread::sleep(TICK);
        let late = Instant::now().saturating_duration_since(due);
        if late >= LATE {
            let mut ticks = lock();
            if ticks.len() == KEPT {
                ticks.pop_front();
            }
            ticks.push_back((due, late));
        }
    }
}

/// Percentile and maximum over a window of `wall` in which `late` are the late wake-ups (the others
/// were on time).
fn summarize(mut late: Vec<Duration>, wall: Duration, cpu_waiting: Option<f64>) -> Pressure {
    late.sort_unstable_by(|a, b| b.cmp(a));
    let ticks = (wall.as_nanos() / TICK.as_nanos()).max(1) as usize;
    // The wake-up at the 99th percentile is the ceil(1%)-th latest of all the window's wake-ups.
    let rank = ticks.div_ceil(100);
    Pressure {
        timer_late_p99: late.get(rank - 1).copied().unwrap_or_default(),
        timer_late_max: late.first().copied().unwrap_or_default(),
        stalls: late.iter().filter(|l| **l >= STALL).count(),
        cpu_waiting,
    }
}

/// The kernel's cumulative microseconds in which some task waited for a CPU.
fn cpu_some_total() -> Option<u64> {
    parse_some_total(&std::fs::read_to_string("/proc/pressure/cpu").ok()?)
}

fn parse_some_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("some "))?;
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_kernels_pressure_line_is_read_for_its_total() {
        let text = "some avg10=0.08 avg60=0.65 avg300=2.02 total=1575032256\n\
                    full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(parse_some_total(text), Some(1_575_032_256));
        assert_eq!(parse_some_total("full total=3\n"), None);
        assert_eq!(parse_some_total("some avg10=x total=oops\n"), None);
    }

    #[test]
    fn the_percentile_counts_the_wake_ups_that_were_on_time() {
        // 10 s of ticks (1 000 wake-ups): the 99th percentile is the 10th latest.
        let late: Vec<Duration> = (1..=12).map(|i| ms(i * 10)).collect();
        let p = summarize(late, Duration::from_secs(10), None);
        assert_eq!(p.timer_late_max, ms(120));
        assert_eq!(p.timer_late_p99, ms(30));
        assert_eq!(p.stalls, 8);
        // A few late wake-ups in a long window leave the percentile on time.
        let p = summarize(vec![ms(400)], Duration::from_secs(10), None);
        assert_eq!(
            (p.timer_late_p99, p.timer_late_max),
            (Duration::ZERO, ms(400))
        );
    }

    #[test]
    fn starved_means_a_stall_of_half_the_margin_or_a_busy_kernel() {
        let p = |max, cpu| Pressure {
            timer_late_max: ms(max),
            cpu_waiting: cpu,
            ..Pressure::default()
        };
        assert!(!p(20, Some(0.05)).starved(ms(200)));
        assert!(p(100, None).starved(ms(200)));
        assert!(p(5, Some(0.3)).starved(ms(200)));
        assert!(!p(99, None).starved(ms(200)));
    }

    #[test]
    fn a_watch_reports_the_stalls_inside_its_window_only() {
        let before = Instant::now();
        lock().push_back((before, ms(700)));
        let w = Watch::start();
        lock().push_back((Instant::now(), ms(90)));
        let p = w.finish();
        assert_eq!(p.timer_late_max.max(ms(90)), p.timer_late_max);
        assert!(p.timer_late_max < ms(700), "{p:?}");
    }
}
