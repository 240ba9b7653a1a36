//! Server CPU per request, measured the same way for every server under every client:
//! a thread samples the user and system CPU time of every process in the server's
//! process group (`/proc/<pid>/stat`: utime, stime and the reaped children's cutime,
//! cstime; every thread of a process is in its numbers) every [`EVERY`], with the wall
//! clock; the CPU spent over the client's measured window is read off the samples
//! (linear between the two around each end), and divided by the requests the client
//! got answered in that window.
//!
//! - c1m-server: one process, its loop threads; nginx: the master and its workers.
//! - c1m-loadgen's window is its measured phase, from its latency.hlog (`StartTime` +
//!   the `Tag=measured` interval: `c1m_bench::http::cpu::loadgen_window`); wrk's is the measured wrk process's life (its warm-up
//!   is a run of its own before it), as the kit saw it start and end.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often the sampler reads the group.
pub const EVERY: Duration = Duration::from_millis(100);
/// The whole group is looked up again (new workers) every this many samples.
const RESCAN: u32 = 10;

/// Seconds since the Unix epoch, now.
pub fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One `/proc/<pid>/stat`: (process group, user ticks, system ticks), children reaped
/// by it included. None for an unreadable or odd line.
pub fn parse_stat(stat: &str) -> Option<(i32, u64, u64)> {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    // utime stime cutime cstime ...; comm may hold blanks and parentheses.
    let rest = &stat[stat.rfind(") ")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    let pgrp = f.get(2)?.parse().ok()?;
    Some((pgrp, n(11)? + n(13)?, n(12)? + n(14)?))
}

/// The pids in process group `pgid` (zombies too: their time still counts until reaped).
pub fn group_pids(pgid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| parse_stat(&s))
                .is_some_and(|(g, _, _)| g == pgid)
        })
        .collect()
}

/// One reading of the whole group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the Unix epoch.
    pub t: f64,
    /// CPU seconds, user and system, of the group so far.
    pub user_s: f64,
    pub sys_s: f64,
}

/// What the sampler saw.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    pub samples: Vec<Sample>,
    /// Every pid of the group it saw, and its `comm`.
    pub pids: BTreeMap<i32, String>,
}

fn read_group(pids: &[i32], tick: f64, t: f64) -> Sample {
    let (mut u, mut s) = (0u64, 0u64);
    for pid in pids {
        if let Some((_, pu, ps)) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|st| parse_stat(&st))
        {
            u += pu;
            s += ps;
        }
    }
    Sample {
        t,
        user_s: u as f64 / tick,
        sys_s: s as f64 / tick,
    }
}

/// Samples process group `pgid` from a thread of its own until [`Sampler::finish`] (or
/// drop).
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Samples>>,
}

impl Sampler {
    pub fn start(pgid: i32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        // SAFETY: sysconf takes no pointers.
        let tick = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
            t if t > 0 => t as f64,
            _ => 100.0,
        };
        let handle = std::thread::spawn(move || {
            let mut out = Samples::default();
            let mut pids = Vec::new();
            let mut until_rescan = 0u32;
            loop {
                if until_rescan == 0 {
                    until_rescan = RESCAN;
                    pids = group_pids(pgid);
                    for &p in &pids {
                        let comm =
                            std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                        out.pids.entry(p).or_insert_with(|| comm.trim().to_owned());
                    }
                }
                until_rescan -= 1;
                out.samples.push(read_group(&pids, tick, now_s()));
                if flag.load(Ordering::SeqCst) {
                    return out;
                }
                std::thread::sleep(EVERY);
            }
        });
        Sampler {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops sampling (after one last sample) and returns what it saw.
    pub fn finish(mut self) -> Samples {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The group's (user, sys) CPU seconds at time `t`, linear between the samples around
/// it; None outside the samples.
pub fn at(samples: &[Sample], t: f64) -> Option<(f64, f64)> {
    let i = samples
        .windows(2)
        .position(|w| w[0].t <= t && t <= w[1].t)?;
    let (a, b) = (samples[i], samples[i + 1]);
    let f = if b.t > a.t {
        (t - a.t) / (b.t - a.t)
    } else {
        0.0
    };
    Some((
        a.user_s + f * (b.user_s - a.user_s),
        a.sys_s + f * (b.sys_s - a.sys_s),
    ))
}

/// The server CPU of one case over its measured window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowCpu {
    pub start: f64,
    pub end: f64,
    pub user_s: f64,
    pub sys_s: f64,
    pub requests: u64,
}

impl WindowCpu {
    /// CPU seconds over `[start, end]`, or why they cannot be told.
    pub fn of(
        samples: &[Sample],
        start: f64,
        end: f64,
        requests: u64,
    ) -> Result<WindowCpu, String> {
        if end <= start {
            return Err(format!("an empty measured window ({start:.3} to {end:.3})"));
        }
        let (Some(a), Some(b)) = (at(samples, start), at(samples, end)) else {
            let span = match (samples.first(), samples.last()) {
                (Some(f), Some(l)) => format!("{:.3} to {:.3}", f.t, l.t),
                _ => "none".into(),
            };
            return Err(format!(
                "the server CPU samples ({span}) do not cover the measured window ({start:.3} to {end:.3})"
            ));
        };
        Ok(WindowCpu {
            start,
            end,
            user_s: b.0 - a.0,
            sys_s: b.1 - a.1,
            requests,
        })
    }

    /// Server CPU µs per request; None without requests.
    pub fn us_per_request(&self) -> Option<f64> {
        (self.requests > 0).then(|| (self.user_s + self.sys_s) * 1e6 / self.requests as f64)
    }

    /// server_cpu.json.
    pub fn to_json(&self, s: &Samples, window_from: &str) -> Value {
        let pids: Vec<Value> = s
            .pids
            .iter()
            .map(|(pid, comm)| json!({"pid": pid, "comm": comm}))
            .collect();
        json!({
            "method": "user+sys CPU of every process in the server's process group, from /proc/<pid>/stat (utime, stime, cutime, cstime), sampled every 100 ms, read off linearly at both ends of the measured window",
            "window_from": window_from,
            "window_start_unix_s": self.start,
            "window_end_unix_s": self.end,
            "window_s": self.end - self.start,
            "cpu_user_s": self.user_s,
            "cpu_sys_s": self.sys_s,
            "requests": self.requests,
            "cpu_us_per_request": self.us_per_request(),
            "samples": s.samples.len(),
            "processes": pids,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        let s =
            "4242 (nginx: worker (x)) S 4200 4200 4200 0 -1 4194560 100 0 0 0 250 750 3 7 20 0 1 0";
        assert_eq!(parse_stat(s), Some((4200, 253, 757)));
        assert_eq!(parse_stat("garbage"), None);
        let me = std::fs::read_to_string("/proc/self/stat").unwrap();
        // SAFETY: getpgrp takes no arguments.
        let pgrp = unsafe { libc::getpgrp() };
        assert_eq!(parse_stat(&me).map(|p| p.0), Some(pgrp));
    }

    fn s(t: f64, u: f64, y: f64) -> Sample {
        Sample {
            t,
            user_s: u,
            sys_s: y,
        }
    }

    #[test]
    fn windows_read_off_linearly() {
        let v = [s(10.0, 1.0, 2.0), s(11.0, 1.5, 3.0), s(12.0, 1.5, 5.0)];
        assert_eq!(at(&v, 10.5), Some((1.25, 2.5)));
        assert_eq!(at(&v, 12.0), Some((1.5, 5.0)));
        assert_eq!(at(&v, 9.9), None);
        let w = WindowCpu::of(&v, 10.5, 11.5, 1000).unwrap();
        assert_eq!((w.user_s, w.sys_s), (0.25, 1.5));
        // 1.75 s of CPU for 1000 requests.
        assert_eq!(w.us_per_request(), Some(1750.0));
        assert!(WindowCpu::of(&v, 10.5, 12.5, 1)
            .unwrap_err()
            .contains("do not cover"));
        assert!(WindowCpu::of(&v, 11.0, 11.0, 1).is_err());
        assert_eq!(
            WindowCpu::of(&v, 10.0, 11.0, 0).unwrap().us_per_request(),
            None
        );
    }

    #[test]
    fn samples_a_busy_group() {
        let t = c1m_machine::tempdir::TempDir::new();
        let mut procs = c1m_machine::procs::Procs::new(&t.0);
        // A group of two: a shell and a busy child.
        let argv = vec![
            "/bin/sh".to_string(),
            "-c".into(),
            "(while :; do :; done) & sleep 5; kill $!".into(),
        ];
        let pid = procs.spawn(&argv, &t.0.join("o"), &t.0.join("e")).unwrap();
        let sampler = Sampler::start(pid);
        std::thread::sleep(Duration::from_millis(1200));
        let got = sampler.finish();
        procs.stop(libc::SIGTERM, Duration::from_secs(2), &[pid]);
        assert!(got.samples.len() >= 5, "{}", got.samples.len());
        assert!(got.pids.len() >= 2, "{:?}", got.pids);
        let (first, last) = (got.samples[0], got.samples[got.samples.len() - 1]);
        let cpu = last.user_s + last.sys_s - first.user_s - first.sys_s;
        // The busy loop had most of a CPU (ticks are coarse, the machine may be shared).
        assert!(cpu > 0.3, "{cpu} s of CPU in {} s", last.t - first.t);
        let w = WindowCpu::of(&got.samples, first.t, last.t, 100).unwrap();
        let j = w.to_json(&got, "test");
        assert_eq!(j["requests"], json!(100));
        assert!(j["processes"].as_array().unwrap().len() >= 2);
    }
}
