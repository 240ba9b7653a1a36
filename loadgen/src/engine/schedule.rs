//! The open-loop clock: when each scheduled message is due, how late it went out, and
//! how a thread waits for it punctually.
//!
//! `--rate` sends on a fixed total schedule, either evenly spaced (`uniform`) or as a
//! Poisson process (`poisson`: exponential gaps with the same mean, from a seeded
//! generator, so a run can be repeated exactly). Latency is measured from the intended
//! send time; the send lag (actual minus intended) says whether the client kept up.

pub use crate::cli::Arrivals;
use c1m_platform::rng::SplitMix64;
use hdrhistogram::Histogram;

/// Deadlines this close are waited for without sleeping. A timed sleep costs more than
/// the wait: arming and cancelling its timer, and the server's echo then has to wake the
/// thread. On loopback that wake is paid inside the server's send (a cross-CPU wakeup, a
/// VM exit in a VM), so a sleeping loadgen inflates the server's CPU per message and the
/// latency. Measured against 20 µs here (results/2026-12-04-0600-vm-loadgen-polling, 1,000
/// connections, 20,000 msgs/s): server CPU per message 0.76-0.83x (uring) and 0.76-0.92x
/// (epoll), latency p50 52 -> 32 µs; at 1M held, heartbeat p50 57-61 -> 35 µs. Sends
/// more than this apart (on average below 5,000 sends/s per thread) are still slept for.
pub const SPIN_NS: u64 = 200_000;
/// Timer slack of a loop thread (the default 50 µs makes every timed wake late).
const TIMER_SLACK_NS: libc::c_ulong = 1_000;

/// Gives the calling thread a 1 µs timer slack, so timed waits end when asked.
pub fn fine_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer and affects only this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, TIMER_SLACK_NS, 0, 0, 0);
    }
}

/// One loop's rate schedule: the intended time of its next message.
#[derive(Debug, Clone)]
pub struct RateClock {
    arrivals: Arrivals,
    period_ns: f64,
    rng: SplitMix64,
    /// Offset from the start of the load of the next message, in ns.
    next_ns: f64,
}

impl RateClock {
    /// `period_ns`: mean gap; `phase_ns`: where this loop's uniform schedule starts (loops
    /// interleave); `seed`: the run's seed mixed with the loop index.
    pub fn new(arrivals: Arrivals, period_ns: f64, phase_ns: f64, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let next_ns = match arrivals {
            Arrivals::Uniform => phase_ns,
            Arrivals::Poisson => period_ns * rng.exp1(),
        };
        RateClock {
            arrivals,
            period_ns,
            rng,
            next_ns,
        }
    }

    /// Offset of the next message from the start of the load, in ns.
    pub fn next_offset_ns(&self) -> u64 {
        self.next_ns as u64
    }

    /// Moves on to the message after the next.
    pub fn advance(&mut self) {
        self.next_ns += match self.arrivals {
            Arrivals::Uniform => self.period_ns,
            Arrivals::Poisson => self.period_ns * self.rng.exp1(),
        };
    }
}

/// The seed of loop `index` from the run's seed (distinct streams per loop).
pub fn loop_seed(seed: u64, index: usize) -> u64 {
    SplitMix64::new(seed ^ (index as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93)).next_u64()
}

/// Send lag percentiles in µs: (p50, p99, max); None when nothing was recorded.
pub fn lag_summary(h: &Histogram<u64>) -> Option<(f64, f64, f64)> {
    if h.is_empty() {
        return None;
    }
    let us = |ns: u64| ns as f64 / 1000.0;
    Some((
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.99)),
        us(h.max()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_is_evenly_spaced_from_its_phase() {
        let mut c = RateClock::new(Arrivals::Uniform, 500_000.0, 250_000.0, 7);
        let mut at = Vec::new();
        for _ in 0..4 {
            at.push(c.next_offset_ns());
            c.advance();
        }
        assert_eq!(at, vec![250_000, 750_000, 1_250_000, 1_750_000]);
    }

    #[test]
    fn poisson_keeps_the_mean_rate_and_varies_the_gaps() {
        let mut c = RateClock::new(Arrivals::Poisson, 1000.0, 0.0, 42);
        let n = 200_000;
        let mut gaps = Vec::with_capacity(n);
        let mut last = 0;
        for _ in 0..n {
            let t = c.next_offset_ns();
            gaps.push(t - last);
            last = t;
            c.advance();
        }
        let mean = last as f64 / n as f64;
        assert!((mean - 1000.0).abs() < 15.0, "mean gap {mean}");
        // Exponential: about 63% of gaps are shorter than the mean.
        let short = gaps.iter().filter(|&&g| g < 1000).count() as f64 / n as f64;
        assert!((short - 0.632).abs() < 0.01, "share below the mean {short}");
    }

    #[test]
    fn a_seed_repeats_its_schedule_and_loops_differ() {
        let run = |seed| {
            let mut c = RateClock::new(Arrivals::Poisson, 1000.0, 0.0, seed);
            (0..100)
                .map(|_| {
                    c.advance();
                    c.next_offset_ns()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(loop_seed(1, 0)), run(loop_seed(1, 0)));
        assert_ne!(run(loop_seed(1, 0)), run(loop_seed(1, 1)));
        assert_ne!(run(loop_seed(1, 0)), run(loop_seed(2, 0)));
    }

    use crate::report::{new_histogram, record_ns};

    #[test]
    fn lag_summary_reads_percentiles_in_microseconds() {
        let mut h = new_histogram();
        assert_eq!(lag_summary(&h), None);
        for v in 1..=100u64 {
            assert!(record_ns(&mut h, v * 1000));
        }
        let (p50, p99, max) = lag_summary(&h).expect("recorded");
        assert!((p50 - 50.0).abs() < 0.5 && (p99 - 99.0).abs() < 0.5 && (max - 100.0).abs() < 0.5);
    }

    /// The send-lag histogram once clamped every lag above 2.047 µs (its initial top):
    /// a 50 ms lag must read back as 50 ms.
    #[test]
    fn a_50_ms_lag_reads_back_as_50_ms() {
        let mut h = new_histogram();
        for _ in 0..98 {
            assert!(record_ns(&mut h, 300));
        }
        assert!(record_ns(&mut h, 50_000_000));
        assert!(record_ns(&mut h, 50_000_000));
        let (p50, p99, max) = lag_summary(&h).expect("recorded");
        assert!((p50 - 0.3).abs() < 0.01, "p50 {p50}");
        assert!((p99 - 50_000.0).abs() / 50_000.0 < 1e-3, "p99 {p99} µs");
        assert!((max - 50_000.0).abs() / 50_000.0 < 1e-3, "max {max} µs");
    }

    /// Lags from 1 ns to an hour, each recorded alone into a fresh histogram, read
    /// back within the histogram's 3 significant digits.
    #[test]
    fn lag_recording_holds_the_whole_range() {
        let mut v = 1u64;
        while v <= 3_600_000_000_000 {
            let mut h = new_histogram();
            assert!(record_ns(&mut h, v), "{v} ns not recorded");
            let max_ns = h.max() as f64;
            assert!(
                (max_ns - v as f64).abs() <= v as f64 * 1e-3 + 1.0,
                "{v} ns read back as {max_ns}"
            );
            v = v * 7 + 3;
        }
    }
}
