//! What a loop reports: a histogram per second to the main thread while it runs, and
//! its totals at the end.

use super::*;

/// A loop's counters at the moment it sent an interval, for `--metrics-listen`: every
/// latency in the intervals sent so far is counted in `received_total`.
#[derive(Debug, Clone, Default)]
pub struct LoopCounters {
    pub loop_index: usize,
    pub sent_total: u64,
    pub received_total: u64,
    pub verify_errors: u64,
    pub lost_echoes: u64,
    pub closed_before_echo: u64,
    pub connect_errors: BTreeMap<String, u64>,
    pub connection_errors: BTreeMap<String, u64>,
    /// The measured phase's send lag so far (open loop; `None` while empty).
    pub send_lag: Option<Histogram<u64>>,
}

impl Core {
    /// Sends finished seconds to the main thread (one allocation per second, not per
    /// message).
    ///
    /// Intervals end where the measured phase ends: echoes of the drain that follows go
    /// into the last interval, so the interval log ends exactly at the end of the
    /// measured phase (which is how a reader of the log finds that phase).
    pub(super) fn rollover_intervals(&mut self) {
        if !matches!(self.phase, Phase::Load | Phase::Drain) {
            return;
        }
        loop {
            let boundary = self.start + (self.ivl_index + 1) * SECOND;
            if self.now < boundary || boundary >= self.m1 {
                break;
            }
            let hist = std::mem::replace(&mut self.ivl, new_histogram());
            if !hist.is_empty() {
                let p50_us = hist.value_at_quantile(0.5) / 1000;
                self.batch_wait_us = (p50_us / 100).min(MAX_BATCH_WAIT_US) as u32;
            }
            let counters = self.counters();
            let _ = self.intervals.send(IntervalMsg {
                index: self.ivl_index,
                length_ns: SECOND,
                hist,
                counters,
            });
            self.ivl_index += 1;
        }
    }

    /// A copy of the counters when `--metrics-listen` wants them (once a second).
    fn counters(&self) -> Option<Box<LoopCounters>> {
        if !self.control.counters.load(Ordering::Relaxed) {
            return None;
        }
        Some(Box::new(LoopCounters {
            loop_index: self.index,
            sent_total: self.sent_total,
            received_total: self.received_total,
            verify_errors: self.verify_errors,
            lost_echoes: self.lost_echoes,
            closed_before_echo: self.closed_before_echo,
            connect_errors: self.connect_errors.clone(),
            connection_errors: self.connection_errors.clone(),
            send_lag: (!self.send_lag.is_empty()).then(|| self.send_lag.clone()),
        }))
    }

    pub(super) fn finish(&mut self) -> LoopResult {
        // The last interval, up to the end of the measured phase.
        if self.start != 0 {
            let length = self
                .now
                .min(self.m1)
                .saturating_sub(self.start + self.ivl_index * SECOND);
            if length > 0 || !self.ivl.is_empty() {
                let hist = std::mem::replace(&mut self.ivl, new_histogram());
                let counters = self.counters();
                let _ = self.intervals.send(IntervalMsg {
                    index: self.ivl_index,
                    length_ns: length.min(SECOND),
                    hist,
                    counters,
                });
            }
        }
        // Echoes still outstanding on open connections at the end (unanswered, not
        // corrupt: they are reported apart from verify errors).
        let mut missing = 0;
        for c in &self.conns {
            if matches!(c.st, St::Open | St::ShutSent) {
                missing += c.tx_seq - c.rx_seq;
            }
        }
        LoopResult {
            measured: std::mem::replace(&mut self.measured, new_histogram()),
            connect: std::mem::replace(&mut self.connect_hist, new_histogram()),
            sent_measured: self.sent_measured,
            received_measured: self.received_measured,
            sent_total: self.sent_total,
            received_total: self.received_total,
            verify_errors: self.verify_errors,
            lost_echoes: self.lost_echoes,
            closed_before_echo: self.closed_before_echo,
            missing_at_end: missing,
            connect_errors: std::mem::take(&mut self.connect_errors),
            connection_errors: std::mem::take(&mut self.connection_errors),
            connects_ok: self.connects_ok,
            connects_failed: self.connects_failed,
            connects_measured: self.connects_measured,
            peak_open: self.peak_open,
            first_connect_ns: self.first_connect_ns,
            last_ramp_established_ns: self.last_ramp_established_ns,
            send_lag: std::mem::replace(&mut self.send_lag, new_histogram()),
            enters: self.enters,
            cqes: self.cqes,
            unrecorded: self.unrecorded,
            spin_ns: self.spin_ns,
            parked: self.parked,
        }
    }
}
