//! Child processes that must never outlive a scenario.
//!
//! Every child runs in its own process group, gets `SIGKILL` from the kernel if ssegate dies
//! (`PR_SET_PDEATHSIG`), is killed with its whole group **and every descendant** (found through `/proc`,
//! so a grandchild that left the group with `setsid` dies too) when its [`ChildGuard`] drops (normal end,
//! error, panic unwinding), and is registered so that a Ctrl-C handler can kill every live group
//! ([`kill_all`]).
//!
//! ssegate is a child subreaper (`PR_SET_CHILD_SUBREAPER`): a descendant whose parent exits is
//! reparented to ssegate instead of init, so it cannot slip away. Such orphans are killed and reaped by
//! [`reap_orphans`] as soon as no guard is left (they may belong to a live target until then), and on
//! Ctrl-C or SIGTERM.
//!
//! What survives a `SIGKILL` of ssegate itself: the direct children die (`PR_SET_PDEATHSIG`); their own
//! descendants do not, because nothing of ssegate runs any more to kill them.

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
        become_subreaper();
        // Spawn and register under the lock, so that `reap_orphans` never sees a fresh child unregistered.
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        let child = cmd.spawn()?;
        let pgid = child.id() as i32;
        live.insert(pgid);
        drop(live);
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

    /// Kill the whole group and every descendant, and reap them.
    pub fn kill(&mut self) {
        // The tree first: once the child is dead its descendants are reparented and harder to tell apart.
        let tree = descendants(self.pgid);
        // SAFETY: plain syscalls on a process group we created and on its descendants.
        unsafe {
            libc::killpg(self.pgid, libc::SIGKILL);
            for &pid in &tree {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        if self.exited.is_none() {
            self.exited = self.child.wait().ok();
        }
        reap(&tree);
        let empty = LIVE
            .lock()
            .map(|mut l| {
                l.remove(&self.pgid);
                l.is_empty()
            })
            .unwrap_or(false);
        if empty {
            reap_orphans();
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
        let tree = descendants(*g);
        // SAFETY: plain syscalls.
        unsafe {
            libc::killpg(*g, libc::SIGKILL);
            for &pid in &tree {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    orphans_killed();
    groups.len()
}

/// Make this process a child subreaper, once: orphaned descendants are reparented to it, not to init.
fn become_subreaper() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl with an integer argument; failure only means orphans go to init as before.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
    });
}

/// `(pid, ppid, pgid)` of every process, from `/proc/*/stat`.
fn processes() -> Vec<(i32, i32, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let (ppid, pgid) = parent_and_group(pid)?;
            Some((pid, ppid, pgid))
        })
        .collect()
}

/// `(ppid, pgid)` of one process, from `/proc/PID/stat`; None once it is gone.
fn parent_and_group(pid: i32) -> Option<(i32, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let mut f = rest.split_whitespace().skip(1);
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

/// Every descendant of `root` (children, grandchildren, …), whatever group or session they moved to.
fn descendants(root: i32) -> Vec<i32> {
    let all = processes();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid, _) in &all {
            if ppid == p && !found.contains(&pid) && found.len() < 4096 {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

/// Reap those of `pids` that were reparented to us, waiting up to 200 ms for each to die.
fn reap(pids: &[i32]) {
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    for &pid in pids {
        for _ in 0..20 {
            let mut status = 0;
            // SAFETY: non-blocking wait for one specific pid.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            // Not our child (yet): reaped by its own parent, or not reparented to us yet.
            if r < 0 && parent_and_group(pid).is_none_or(|(ppid, _)| ppid != me) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Kill and reap every orphan reparented to us (a process whose parent is ssegate, outside ssegate's own
/// process group, and not a guarded child), with its descendants. Called when no guard is left; a
/// live target's daemonized workers are left alone until then.
pub fn reap_orphans() {
    let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    if !live.is_empty() {
        return;
    }
    drop(live);
    orphans_killed();
}

/// Kill and reap the orphans, guards or not (for signal handlers, and once no guard is left).
fn orphans_killed() {
    // SAFETY: getpid and getpgrp cannot fail.
    let (me, my_group) = unsafe { (libc::getpid(), libc::getpgrp()) };
    let live: BTreeSet<i32> = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    let orphans: Vec<i32> = processes()
        .into_iter()
        .filter(|&(pid, ppid, pgid)| ppid == me && pgid != my_group && !live.contains(&pid))
        .map(|(pid, _, _)| pid)
        .collect();
    let mut all = Vec::new();
    for &o in &orphans {
        all.extend(descendants(o));
        all.push(o);
    }
    for &pid in &all {
        // SAFETY: plain syscall.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    reap(&all);
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

    /// Spawn `script` under a guard; the pid it prints on its first stdout line.
    fn spawn_printing_pid(script: &str) -> (ChildGuard, u32) {
        use std::io::BufRead;
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script])
            .stdout(std::process::Stdio::piped());
        let mut g = ChildGuard::spawn(&mut cmd, "sh").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(g.child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        (g, line.trim().parse().unwrap())
    }

    fn gone_within(pid: u32, ms: u64) -> bool {
        for _ in 0..ms / 10 {
            if !running(pid) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        !running(pid)
    }

    #[test]
    fn a_grandchild_in_its_own_session_dies_with_the_guard() {
        // `setsid` leaves the process group, so killing the group alone missed it.
        let (g, escaped) = spawn_printing_pid("setsid sh -c 'echo $$; exec sleep 30' & wait");
        assert!(running(escaped));
        drop(g);
        assert!(gone_within(escaped, 1000), "the setsid grandchild survived");
    }

    #[test]
    fn an_orphan_left_by_an_exited_child_is_reparented_to_us_and_killed() {
        // The shell exits at once; its setsid child is reparented to us (the subreaper), not to init.
        let (mut g, orphan) = spawn_printing_pid("setsid sh -c 'echo $$; exec sleep 30' &");
        for _ in 0..100 {
            if g.try_wait().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(g.try_wait().is_some(), "the shell exited");
        assert!(running(orphan));
        drop(g);
        // Other tests may hold guards right now, which keeps `reap_orphans` waiting: kill directly.
        orphans_killed();
        assert!(gone_within(orphan, 1000), "the orphan survived");
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
