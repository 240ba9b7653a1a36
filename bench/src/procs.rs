//! Child processes: each in its own session (so a Ctrl-C on the terminal reaches only
//! the orchestrator, which then stops everything in order), tracked by process group,
//! stopped with a signal and then SIGKILL, and never left behind.
//!
//! Every group id is also appended to `<run dir>/pgids`, for the watchdog.

use anyhow::Context as _;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
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
    all: Vec<i32>,
}

impl Procs {
    pub fn new(run_dir: &Path) -> Procs {
        Procs {
            pgids_file: run_dir.join("pgids"),
            live: HashMap::new(),
            exited: HashMap::new(),
            all: Vec::new(),
        }
    }

    /// Starts `argv` in a new session with stdin from /dev/null and stdout, stderr into
    /// the given files. Returns its pid (= its process group id).
    pub fn spawn(&mut self, argv: &[String], stdout: &Path, stderr: &Path) -> anyhow::Result<i32> {
        let create =
            |p: &Path| File::create(p).with_context(|| format!("cannot create {}", p.display()));
        let (out, err) = (create(stdout)?, create(stderr)?);
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
        self.all.push(pid);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.pgids_file)
            .with_context(|| format!("cannot write {}", self.pgids_file.display()))?;
        writeln!(f, "{pid}")?;
        Ok(pid)
    }

    /// True while the child `pid` runs; reaps it once it ended.
    pub fn alive(&mut self, pid: i32) -> bool {
        let Some(child) = self.live.get_mut(&pid) else {
            return false;
        };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                self.exited.insert(pid, shell_status(status));
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
            kill_group(pid, libc::SIGKILL);
            if let Some(mut child) = self.live.remove(&pid) {
                if let Ok(status) = child.wait() {
                    self.exited.insert(pid, shell_status(status));
                }
            }
            statuses.push(self.exited.get(&pid).copied().unwrap_or(0));
        }
        statuses
    }

    /// Kills what is left in any group this run ever made. True if there was nothing.
    pub fn kill_leftovers(&self) -> bool {
        let mut clean = true;
        for &pgid in &self.all {
            if group_has_processes(pgid) {
                crate::warn(format!(
                    "process group {pgid} still had processes: killing them"
                ));
                kill_group(pgid, libc::SIGKILL);
                clean = false;
            }
        }
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statedir::tests::TempDir;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn spawn_in_own_session_and_stop() {
        let t = TempDir::new();
        let mut p = Procs::new(&t.0);
        let (o, e) = (t.0.join("o"), t.0.join("e"));
        // A leader that ignores SIGTERM and a grandchild in its group.
        let pid = p
            .spawn(&sh("trap '' TERM; sleep 30 & echo started; wait"), &o, &e)
            .unwrap();
        let pgids = std::fs::read_to_string(t.0.join("pgids")).unwrap();
        assert_eq!(pgids.trim(), pid.to_string());
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
    }

    #[test]
    fn exit_statuses_and_liveness() {
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
