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

/// Run `cmd` to its end within `within`, in its own process group under a [`ChildGuard`] (so nothing it
/// starts outlives it), and give what it wrote to stdout and stderr; None when it could not start or did
/// not end in time (it is killed with its group).
pub fn output_within(
    cmd: &mut Command,
    name: &str,
    within: std::time::Duration,
) -> Option<(String, String)> {
    let dir = private_dir("output").ok()?;
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).ok()?)
        .stderr(std::fs::File::create(&err).ok()?);
    let mut child = ChildGuard::spawn(cmd, name).ok()?;
    let deadline = std::time::Instant::now() + within;
    while child.try_wait().is_none() {
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Dropping the guard kills whatever the command left running in its group.
    drop(child);
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    Some((read(&out), read(&err)))
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

/// A private (0700) working directory under the system temp dir, `ssegate-<kind>-<pid>.<start>-XXXXXX`,
/// removed when dropped. The name carries this process's pid and start time so that the directories a
/// killed ssegate (SIGKILL, no destructors) left behind can be recognised: the first call in a process
/// removes every such directory whose process is gone ([`sweep_stale`]).
pub fn private_dir(kind: &str) -> io::Result<tempfile::TempDir> {
    private_dir_in(kind, &std::env::temp_dir())
}

/// [`private_dir`] under `base` (whose stale directories are swept once too).
pub fn private_dir_in(kind: &str, base: &Path) -> io::Result<tempfile::TempDir> {
    static SWEPT: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());
    if let Ok(mut swept) = SWEPT.lock()
        && !swept.iter().any(|b| b == base)
    {
        sweep_stale(base);
        swept.push(base.to_path_buf());
    }
    tempfile::Builder::new()
        .prefix(&format!("ssegate-{kind}-{}-", owner_tag()))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(base)
        // Name the directory: a full or read-only `$TMPDIR` is otherwise an anonymous "No space left".
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "failed to make a private directory in {}: {e}",
                    base.display()
                ),
            )
        })
}

/// This process as an owner tag, `<pid>.<start time>`: what names its private directories and labels its
/// containers, so that what a killed ssegate left behind can be told from what a live one holds.
pub fn owner_tag() -> String {
    let pid = std::process::id();
    format!("{pid}.{}", start_time(pid as i32).unwrap_or(0))
}

/// Where the pids of [`owner_tag`] mean something: this boot (`/proc/sys/kernel/random/boot_id`) and
/// this process's PID namespace (the inode of `/proc/self/ns/pid`), as `<boot id>.<namespace>`. Another
/// host or container sharing a Docker engine has another, so its owners are not judged by this `/proc`.
pub fn space_tag() -> String {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|b| b.trim().to_string())
            .unwrap_or_else(|_| "unknown-boot".into());
        let ns = std::fs::read_link("/proc/self/ns/pid")
            .ok()
            .and_then(|l| {
                let l = l.to_string_lossy().into_owned();
                Some(l.strip_prefix("pid:[")?.strip_suffix(']')?.to_string())
            })
            .unwrap_or_else(|| "unknown-ns".into());
        format!("{boot}.{ns}")
    })
    .clone()
}

/// Whether the process an [`owner_tag`] names still runs (the same pid with the same start time). A tag
/// that does not parse counts as alive: what it labels is not ours to remove.
pub fn owner_alive(tag: &str) -> bool {
    let Some((pid, start)) = tag.split_once('.') else {
        return true;
    };
    match (pid.parse::<i32>(), start.parse::<u64>()) {
        (Ok(pid), Ok(start)) => start_time(pid).is_some_and(|s| s == start),
        _ => true,
    }
}

/// The start time of a process (clock ticks after boot, `/proc/PID/stat` field 22); None once it is gone.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// Remove the `ssegate-<kind>-<pid>.<start>-…` directories in `dir` whose process no longer runs (or
/// whose pid now belongs to a later process), and return how many went. A directory of a live ssegate,
/// one owned by another user, or one named otherwise is left alone.
pub fn sweep_stale(dir: &Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let me = unsafe { libc::geteuid() };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(owner) = name.to_str().and_then(stale_owner) else {
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me {
            continue;
        }
        let (pid, start) = owner;
        if start_time(pid).is_some_and(|s| s == start) {
            continue;
        }
        if std::fs::remove_dir_all(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// `(pid, start)` from a private directory's name, `ssegate-<kind>-<pid>.<start>-<random>`.
fn stale_owner(name: &str) -> Option<(i32, u64)> {
    let rest = name.strip_prefix("ssegate-")?;
    let (owner, _random) = rest.rsplit_once('-')?;
    let (_kind, owner) = owner.rsplit_once('-')?;
    let (pid, start) = owner.split_once('.')?;
    Some((pid.parse().ok()?, start.parse().ok()?))
}

/// Bytes read from the end of a log for [`tail`]: a target that writes hundreds of megabytes of log
/// costs no more to explain than one that writes a line.
const TAIL_BYTES: u64 = 64 << 10;

/// The last `n` lines of a log file (empty when unreadable), each at most 400 characters. Only the file's
/// last 64 KiB are read.
pub fn tail(path: &Path, n: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(TAIL_BYTES);
    let mut bytes = Vec::new();
    if f.seek(SeekFrom::Start(from)).is_err() || f.take(TAIL_BYTES).read_to_end(&mut bytes).is_err()
    {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if from > 0 && !lines.is_empty() {
        // The first line read is probably the end of a longer one.
        lines.remove(0);
    }
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.chars().take(400).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Looks for a text in a growing log file, reading each byte once: every [`LogScan::found`] reads only
/// what was appended since the last call (at most 1 MiB per call), and keeps just enough of the end to
/// find a text split across two reads.
#[derive(Debug)]
pub struct LogScan {
    path: std::path::PathBuf,
    offset: u64,
    carry: Vec<u8>,
}

/// Bytes of new log read per [`LogScan::found`] call.
const SCAN_STEP: u64 = 1 << 20;

impl LogScan {
    pub fn new(path: impl Into<std::path::PathBuf>) -> LogScan {
        LogScan {
            path: path.into(),
            offset: 0,
            carry: Vec::new(),
        }
    }

    /// Whether `text` appears in what the file holds so far (false while it is missing or unreadable).
    pub fn found(&mut self, text: &str) -> bool {
        use std::io::{Read, Seek, SeekFrom};
        let needle = text.as_bytes();
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return false;
        };
        loop {
            let mut buf = std::mem::take(&mut self.carry);
            let kept = buf.len();
            if f.seek(SeekFrom::Start(self.offset)).is_err() {
                self.carry = buf;
                return false;
            }
            let got = match (&mut f).take(SCAN_STEP).read_to_end(&mut buf) {
                Ok(n) => n,
                Err(_) => {
                    buf.truncate(kept);
                    self.carry = buf;
                    return false;
                }
            };
            self.offset += got as u64;
            if memchr::memmem::find(&buf, needle).is_some() {
                return true;
            }
            let keep = needle.len().saturating_sub(1).min(buf.len());
            buf.drain(..buf.len() - keep);
            self.carry = buf;
            if (got as u64) < SCAN_STEP {
                return false;
            }
        }
    }
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

    #[test]
    fn a_command_that_hangs_is_killed_at_its_deadline_with_its_group() {
        let started = std::time::Instant::now();
        let out = output_within(
            Command::new("sh").args(["-c", "echo hi; sleep 30"]),
            "hang",
            std::time::Duration::from_millis(300),
        );
        assert!(out.is_none());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let (o, e) = output_within(
            Command::new("sh").args(["-c", "echo out; echo err >&2"]),
            "quick",
            std::time::Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!((o.as_str(), e.as_str()), ("out\n", "err\n"));
    }

    #[test]
    fn the_space_tag_is_this_boot_and_pid_namespace() {
        let tag = space_tag();
        let (boot, ns) = tag.rsplit_once('.').unwrap();
        assert_eq!(boot.len(), 36, "{tag}");
        assert!(ns.parse::<u64>().is_ok(), "{tag}");
        assert_eq!(tag, space_tag());
    }

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

    #[test]
    fn stale_private_dirs_are_swept_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let me = std::process::id() as i32;
        let live = format!("ssegate-nginx-{me}.{}-aaaaaa", start_time(me).unwrap());
        // A pid that no longer runs, and our pid with another start time (a reused pid).
        let dead = "ssegate-nginx-999999999.5-bbbbbb".to_string();
        let reused = format!("ssegate-target-{me}.1-cccccc");
        let foreign = "ssegate-notes".to_string();
        for d in [&live, &dead, &reused, &foreign] {
            std::fs::create_dir(tmp.path().join(d)).unwrap();
            std::fs::write(tmp.path().join(d).join("error.log"), "GET /?token=x").unwrap();
        }
        assert_eq!(sweep_stale(tmp.path()), 2);
        let left: BTreeSet<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, BTreeSet::from([live, foreign]));
    }

    #[test]
    fn private_dirs_carry_their_owner_and_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = private_dir("test").unwrap();
        let name = d.path().file_name().unwrap().to_str().unwrap().to_string();
        let me = std::process::id() as i32;
        assert_eq!(stale_owner(&name), Some((me, start_time(me).unwrap())));
        let mode = std::fs::metadata(d.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn tail_reads_only_the_end_of_a_huge_log() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut text = "noise line\n".repeat(20_000);
        text.push_str("the last words\n");
        std::fs::write(&p, text).unwrap();
        assert_eq!(tail(&p, 2), "noise line\nthe last words");
    }

    #[test]
    fn a_log_scan_reads_each_byte_once_and_finds_text_split_across_writes() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut scan = LogScan::new(&p);
        assert!(!scan.found("ready"), "no file yet");
        let mut f = std::fs::File::create(&p).unwrap();
        // More than one read step of noise, then the text split across two appends.
        f.write_all(&vec![b'.'; (SCAN_STEP + 10) as usize]).unwrap();
        f.write_all(b"rea").unwrap();
        f.flush().unwrap();
        assert!(!scan.found("ready"));
        assert_eq!(scan.offset, SCAN_STEP + 13);
        assert!(scan.carry.len() <= 4, "keeps only what a split text needs");
        f.write_all(b"dy\n").unwrap();
        f.flush().unwrap();
        assert!(scan.found("ready"));
    }
}
