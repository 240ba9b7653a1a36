//! Child processes: each in its own session (so a Ctrl-C on the terminal reaches only
//! the orchestrator, which then stops everything in order), tracked by process group,
//! stopped with a signal and then SIGKILL, and never left behind.
//!
//! Every group id is also recorded in `<run dir>/pgids`, for the watchdog. A group is
//! forgotten (and the record rewritten) as soon as it is seen empty: from then on its
//! number may be any other process's (pid_max is small), so it is never signalled again.

use anyhow::Context as _;
use std::collections::HashMap;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Sends `sig` to the process group `pgid`. Never to group 0 or 1 (which would mean
/// "our own group" or "every process").
pub fn kill_group(pgid: i32, sig: libc::c_int) {
    if pgid > 1 {
        // SAFETY: kill(2) takes no pointers; a negative pid addresses one process group.
        unsafe { libc::kill(-pgid, sig) };
    }
}

/// True while `pid` runs (a zombie does not count).
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(") ")
            .and_then(|i| stat[i + 2..].chars().next())
            .is_some_and(|state| state != 'Z'),
        Err(_) => false,
    }
}

/// Sends `sig` to group `pgid` only if it has a live process right now: a recorded group
/// that emptied meanwhile is left alone (its number may be reused). True if sent.
pub fn signal_group_if_live(pgid: i32, sig: libc::c_int) -> bool {
    let live = group_has_processes(pgid);
    if live {
        kill_group(pgid, sig);
    }
    live
}

/// True if any live process (not a zombie: those are gone, only not yet reaped by
/// their new parent) is in process group `pgid`.
pub fn group_has_processes(pgid: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .any(|stat| {
            // pid (comm) state ppid pgrp ...
            stat.rfind(") ").is_some_and(|i| {
                let f: Vec<&str> = stat[i + 2..].split_whitespace().collect();
                f.first() != Some(&"Z") && f.get(2) == Some(&pgid.to_string().as_str())
            })
        })
}

/// Exit status as a shell's `wait` reports it: the code, or 128 + signal.
fn shell_status(s: std::process::ExitStatus) -> i32 {
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

/// The children of one run.
pub struct Procs {
    pgids_file: PathBuf,
    live: HashMap<i32, Child>,
    exited: HashMap<i32, i32>,
    /// Groups started and not yet seen empty (what `pgids` lists).
    recorded: Vec<i32>,
}

impl Procs {
    pub fn new(run_dir: &Path) -> Procs {
        Procs {
            pgids_file: run_dir.join("pgids"),
            live: HashMap::new(),
            exited: HashMap::new(),
            recorded: Vec::new(),
        }
    }

    /// The groups this run still tracks (not yet seen empty).
    pub fn recorded(&self) -> &[i32] {
        &self.recorded
    }

    /// Forgets every recorded group with no live process left whose leader is no longer
    /// our unreaped child (an unreaped leader keeps its number from reuse), and rewrites
    /// the record (atomically: the watchdog may read it at any time).
    fn forget_empty(&mut self) {
        let before = self.recorded.len();
        let live = &self.live;
        self.recorded
            .retain(|&g| live.contains_key(&g) || group_has_processes(g));
        if self.recorded.len() != before {
            if let Err(e) = self.write_record() {
                crate::warn(format!("{e:#}"));
            }
        }
    }

    fn write_record(&self) -> anyhow::Result<()> {
        let text: String = self.recorded.iter().map(|g| format!("{g}\n")).collect();
        let tmp = self.pgids_file.with_extension("new");
        crate::safe_fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.pgids_file)
            .with_context(|| format!("cannot write {}", self.pgids_file.display()))
    }

    /// Starts `argv` in a new session with stdin from /dev/null and stdout, stderr into
    /// the given files. Returns its pid (= its process group id).
    pub fn spawn(&mut self, argv: &[String], stdout: &Path, stderr: &Path) -> anyhow::Result<i32> {
        let (out, err) = (
            crate::safe_fs::create(stdout)?,
            crate::safe_fs::create(stderr)?,
        );
        let (prog, args) = argv.split_first().context("empty command")?;
        let mut cmd = Command::new(prog);
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent; it
        // runs in the forked child before exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| {
            format!("cannot start {prog}: check that it was built (scripts/c1m.sh builds it)")
        })?;
        let pid = i32::try_from(child.id()).context("pid out of range")?;
        self.live.insert(pid, child);
        self.recorded.push(pid);
        self.write_record()?;
        Ok(pid)
    }

    /// True while the child `pid` runs; reaps it once it ended (and forgets its group
    /// if nothing is left in it).
    pub fn alive(&mut self, pid: i32) -> bool {
        let Some(child) = self.live.get_mut(&pid) else {
            return false;
        };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                self.exited.insert(pid, shell_status(status));
                self.live.remove(&pid);
                self.forget_empty();
                false
            }
            Err(_) => false,
        }
    }

    /// Children started and not yet stopped.
    pub fn live_pids(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.live.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Sends `sig` to the groups of `pids`, waits up to `timeout` for the leaders, then
    /// SIGKILLs each whole group (stragglers die with their leader). Returns each exit
    /// status (as a shell reports it), in the order of `pids`.
    pub fn stop(&mut self, sig: libc::c_int, timeout: Duration, pids: &[i32]) -> Vec<i32> {
        for &pid in pids {
            if self.alive(pid) {
                kill_group(pid, sig);
            }
        }
        let deadline = Instant::now() + timeout;
        while pids.iter().any(|&p| self.alive(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut statuses = Vec::new();
        for &pid in pids {
            if self.alive(pid) {
                crate::warn(format!(
                    "pid {pid} did not stop on SIG{} within {}s: SIGKILL",
                    crate::interrupt::signal_name(sig),
                    timeout.as_secs()
                ));
            }
            if self.live.contains_key(&pid) {
                // The leader is not reaped yet: its number is still this group's.
                kill_group(pid, libc::SIGKILL);
            } else if self.recorded.contains(&pid) {
                signal_group_if_live(pid, libc::SIGKILL);
            }
            if let Some(mut child) = self.live.remove(&pid) {
                if let Ok(status) = child.wait() {
                    self.exited.insert(pid, shell_status(status));
                }
            }
            statuses.push(self.exited.get(&pid).copied().unwrap_or(0));
        }
        self.forget_empty();
        statuses
    }

    /// Kills what is left in any group this run still tracks. True if there was nothing.
    pub fn kill_leftovers(&mut self) -> bool {
        let mut clean = true;
        for pgid in self.recorded.clone() {
            if signal_group_if_live(pgid, libc::SIGKILL) {
                crate::warn(format!(
                    "process group {pgid} still had processes: killed them"
                ));
                clean = false;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.recorded.iter().any(|&g| group_has_processes(g)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.forget_empty();
        clean
    }
}

/// Process group ids from a `pgids` file: positive numbers above 1 only (group 1 or
/// "-1" would address every process).
pub fn parse_pgids(text: &str) -> Vec<i32> {
    text.lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|&g| g > 1)
        .collect()
}

/// SIGTERM, then after `grace` SIGKILL, to each group a `pgids` record lists, each only
/// while it still has a live process (a group that emptied may have a new owner).
pub fn stop_recorded(pgids: &str, grace: Duration) {
    let groups = parse_pgids(pgids);
    for &g in &groups {
        signal_group_if_live(g, libc::SIGTERM);
    }
    std::thread::sleep(grace);
    for &g in &groups {
        signal_group_if_live(g, libc::SIGKILL);
    }
}

/// One word as bash's `printf %q` writes it.
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || "_./:,=+-@%^".contains(c);
    s.chars()
        .map(|c| {
            if safe(c) {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// A command line as it is recorded in cmd.txt: each word as [`shell_quote`] writes it.
pub fn quote_cmd(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tempdir::TempDir;
    use std::sync::{Mutex, MutexGuard};

    /// One of these tests at a time: one of them hands out chosen pids through
    /// ns_last_pid, so a pid another test has just reaped can be given out again at once.
    fn pids_to_myself() -> MutexGuard<'static, ()> {
        static PIDS: Mutex<()> = Mutex::new(());
        PIDS.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn spawn_in_own_session_and_stop() {
        let _pids = pids_to_myself();
        let t = TempDir::new();
        let mut p = Procs::new(&t.0);
        let (o, e) = (t.0.join("o"), t.0.join("e"));
        // A leader that ignores SIGTERM and a grandchild in its group.
        let pid = p
            .spawn(&sh("trap '' TERM; sleep 30 & echo started; wait"), &o, &e)
            .unwrap();
        let pgids = std::fs::read_to_string(t.0.join("pgids")).unwrap();
        assert_eq!(pgids.trim(), pid.to_string());
        assert_eq!(p.recorded(), [pid]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&o).unwrap_or_default().is_empty()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(p.alive(pid));
        // Its own session: the session id is its pid.
        // SAFETY: getsid takes no pointers.
        assert_eq!(unsafe { libc::getsid(pid) }, pid);
        let rc = p.stop(libc::SIGTERM, Duration::from_millis(300), &[pid]);
        assert_eq!(rc, vec![128 + libc::SIGKILL]);
        assert!(p.live_pids().is_empty());
        std::thread::sleep(Duration::from_millis(100));
        assert!(!group_has_processes(pid), "the sleep survived");
        assert!(p.kill_leftovers());
        assert!(p.recorded().is_empty(), "an empty group is forgotten");
        assert_eq!(std::fs::read_to_string(t.0.join("pgids")).unwrap(), "");
    }

    /// Starts `sleep 30` in a session of its own with pid `want`, by setting the pid
    /// namespace's last pid (root only); None if another process took that pid first.
    fn take_pid(want: i32) -> Option<std::process::Child> {
        for _ in 0..50 {
            std::fs::write("/proc/sys/kernel/ns_last_pid", (want - 1).to_string()).ok()?;
            let mut c = Command::new("sleep");
            c.arg("30").process_group(0);
            let mut child = c.spawn().ok()?;
            if child.id() as i32 == want {
                return Some(child);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        None
    }

    #[test]
    fn a_reused_group_number_is_never_signalled() {
        let _pids = pids_to_myself();
        let t = TempDir::new();
        let mut p = Procs::new(&t.0);
        let pid = p
            .spawn(&sh("exit 0"), &t.0.join("o"), &t.0.join("e"))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while p.alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Reaped and empty: forgotten, in memory and in the record the watchdog reads.
        assert!(p.recorded().is_empty());
        let record = std::fs::read_to_string(t.0.join("pgids")).unwrap();
        assert!(parse_pgids(&record).is_empty(), "{record}");
        if crate::statedir::euid() != 0 {
            eprintln!("skipping the reuse half: setting ns_last_pid needs root");
            return;
        }
        // An unrelated process group now gets that number.
        let Some(mut other) = take_pid(pid) else {
            eprintln!("skipping the reuse half: pid {pid} was taken by another process");
            return;
        };
        assert!(p.kill_leftovers());
        p.stop(libc::SIGTERM, Duration::from_millis(100), &[pid]);
        stop_recorded(&record, Duration::ZERO);
        let survived = other.try_wait().unwrap().is_none();
        let _ = other.kill();
        let _ = other.wait();
        assert!(
            survived,
            "the kit signalled a group number it had forgotten"
        );
    }

    #[test]
    fn exit_statuses_and_liveness() {
        let _pids = pids_to_myself();
        let t = TempDir::new();
        let mut p = Procs::new(&t.0);
        let pid = p
            .spawn(&sh("exit 3"), &t.0.join("o"), &t.0.join("e"))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while p.alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            p.stop(libc::SIGTERM, Duration::from_secs(1), &[pid]),
            vec![3]
        );
        assert!(pid_alive(std::process::id() as i32));
        assert!(!pid_alive(pid));
        assert!(p
            .spawn(&["/nonexistent/x".into()], &t.0.join("o"), &t.0.join("e"))
            .is_err());
    }
}
