//! Time, sleeping to a deadline, the open-loop send schedule and CPU pinning, on libc.

use std::io;

/// CLOCK_MONOTONIC in nanoseconds.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux,
    // so the call cannot fail.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// How long before a send time the sleep ends; the rest is spun, so the send is punctual
/// even when the wake-up comes a little late.
pub const SPIN_NS: u64 = 50_000;

/// Sets this thread's timer slack to 1 µs (the default 50 µs lets timed sleeps wake that
/// much late).
pub fn set_timer_slack_1us() -> io::Result<()> {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sleeps until [`SPIN_NS`] before `deadline_ns` (CLOCK_MONOTONIC), then spins to it.
pub fn wait_until(deadline_ns: u64) {
    let wake = deadline_ns.saturating_sub(SPIN_NS);
    if now_ns() < wake {
        let ts = libc::timespec {
            tv_sec: (wake / 1_000_000_000) as libc::time_t,
            tv_nsec: (wake % 1_000_000_000) as libc::c_long,
        };
        // An absolute deadline: an interrupted sleep (EINTR) is simply taken again.
        // SAFETY: `ts` is a valid timespec; the remaining-time pointer may be null for
        // TIMER_ABSTIME.
        while unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        } == libc::EINTR
        {}
    }
    while now_ns() < deadline_ns {
        std::hint::spin_loop();
    }
}

/// The open-loop schedule: send k is due at `start + k / rate` seconds. Computed from k
/// each time (never by adding a rounded period), so it does not drift.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub start_ns: u64,
    pub rate: f64,
}

impl Schedule {
    pub fn due_ns(&self, k: u64) -> u64 {
        self.start_ns + (k as f64 * 1e9 / self.rate).round() as u64
    }
}

/// Pins this process (its only thread) to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond CPU_SETSIZE"),
        ));
    }
    // SAFETY: cpu_set_t is plain bits, all-zero is the empty set; CPU_SET writes inside
    // it (cpu < CPU_SETSIZE checked above); sched_setaffinity reads `size_of` bytes of it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_evenly_spaced_and_does_not_drift() {
        let s = Schedule {
            start_ns: 1_000,
            rate: 3000.0,
        };
        assert_eq!(s.due_ns(0), 1_000);
        assert_eq!(s.due_ns(1), 1_000 + 333_333);
        assert_eq!(s.due_ns(2), 1_000 + 666_667);
        // A million sends later, exactly k / rate: no accumulated rounding.
        assert_eq!(s.due_ns(3_000_000), 1_000 + 1_000_000_000_000);
        let gaps: Vec<u64> = (1..100).map(|k| s.due_ns(k) - s.due_ns(k - 1)).collect();
        assert!(gaps.iter().all(|g| (333_333..=333_334).contains(g)));
    }

    #[test]
    fn waiting_is_punctual_and_never_early() {
        set_timer_slack_1us().expect("prctl");
        let mut late = Vec::new();
        for _ in 0..20 {
            let due = now_ns() + 300_000;
            wait_until(due);
            let t = now_ns();
            assert!(t >= due, "woke {} ns early", due - t);
            late.push(t - due);
        }
        // A deadline in the past returns at once.
        let t = now_ns();
        wait_until(t.saturating_sub(1_000_000));
        late.sort_unstable();
        // The median wake-up is within 20 µs even on a busy machine (spinning the last
        // 50 µs makes it about a microsecond when the CPU is ours).
        assert!(late[10] < 20_000, "median lateness {} ns", late[10]);
    }

    #[test]
    fn pinning_rejects_impossible_cpus() {
        assert!(pin_to_cpu(1 << 20).is_err());
    }
}
