//! What a loop reports: a histogram per second to the main thread while it runs, and
//! its totals at the end.

use super::*;

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
            let _ = self.intervals.send(IntervalMsg {
                index: self.ivl_index,
                length_ns: SECOND,
                hist,
            });
            self.ivl_index += 1;
        }
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
                let _ = self.intervals.send(IntervalMsg {
                    index: self.ivl_index,
                    length_ns: length.min(SECOND),
                    hist,
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
