//! Child processes that must never outlive a scenario.
//!
//! Every child runs in its own process group, gets `SIGKILL` from the kernel if ssegate dies
//! (`PR_SET_PDEATHSIG`), is killed with its whole group when its [`ChildGuard`] drops (normal end, error,
//! panic unwinding), and is registered so that a Ctrl-C handler can kill every live group
//! ([`kill_all`]).

use std::collections::BTreeSet;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::Mutex;

static LIVE: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// A child process in its own process group, killed with its group on drop.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    pgid: i32,
    name: String,
    exited: Option<ExitStatus>,
}

impl ChildGuard {
    /// Spawn `cmd` in a new process group.
    pub fn spawn(cmd: &mut Command, name: impl Into<String>) -> io::Result<ChildGuard> {
        cmd.process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec here.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        let pgid = child.id() as i32;
        if let Ok(mut l) = LIVE.lock() {
            l.insert(pgid);
        }
        Ok(ChildGuard {
            child,
            pgid,
            name: name.into(),
            exited: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the child has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Kill the whole group and reap the child.
    pub fn kill(&mut self) {
        // SAFETY: plain syscall on a process group we created.
        unsafe {
            libc::killpg(self.pgid, libc::SIGKILL);
        }
        if self.exited.is_none() {
            self.exited = self.child.wait().ok();
        }
        if let Ok(mut l) = LIVE.lock() {
            l.remove(&self.pgid);
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Kill every live child group (for signal handlers). Returns how many groups were signalled.
pub fn kill_all() -> usize {
    let groups: Vec<i32> = LIVE
        .lock()
        .map(|l| l.iter().copied().collect())
        .unwrap_or_default();
    for g in &groups {
        // SAFETY: plain syscall.
        unsafe {
            libc::killpg(*g, libc::SIGKILL);
        }
    }
    groups.len()
}

/// Number of live child groups (for tests).
pub fn live_count() -> usize {
    LIVE.lock().map(|l| l.len()).unwrap_or(0)
}

/// The last `n` lines of a log file (empty when unreadable), each at most 400 characters.
pub fn tail(path: &Path, n: usize) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.chars().take(400).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Find an executable on `PATH` or in the sbin directories Debian installs daemons into.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(Into::into))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Alive and not a zombie (a killed orphan stays a zombie until init reaps it).
    fn running(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    }

    #[test]
    fn dropping_the_guard_kills_the_whole_group() {
        use std::io::BufRead;
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(std::process::Stdio::piped());
        let mut g = ChildGuard::spawn(&mut cmd, "sleeper").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(g.child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let grandchild: u32 = line.trim().parse().unwrap();
        let shell = g.pid();
        assert!(running(grandchild));
        assert_eq!(live_count_of(g.pgid), 1);
        drop(g);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!running(shell), "the shell survived");
        assert!(!running(grandchild), "the background child survived");
    }

    fn live_count_of(pgid: i32) -> usize {
        LIVE.lock()
            .map(|l| usize::from(l.contains(&pgid)))
            .unwrap_or(0)
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&p, 2), "b\nc");
        assert_eq!(tail(&dir.path().join("missing"), 2), "");
    }
}
