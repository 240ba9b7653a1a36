//! When a loop wakes and what the clock makes due: the wait until the next event, the
//! batched waits, the open-loop schedule (uniform or Poisson) and its send lag.

use super::*;

impl Core {
    /// How long the next wait may last: until the next scheduled event, at most
    /// `MAX_WAIT_NS`; completions end it sooner.
    pub(super) fn wait_ns(&self) -> u64 {
        let mut until = self.now + MAX_WAIT_NS;
        match self.phase {
            Phase::Ramp => {
                if let Some(rate) = self.connect_rate {
                    if !self.to_connect.is_empty() {
                        let next =
                            self.ramp_start + (self.connects_started as f64 * 1e9 / rate) as u64;
                        until = until.min(next);
                    }
                }
            }
            Phase::WaitStart => {
                let start = self.control.start_ns.load(Ordering::Acquire);
                until = until.min(if start != 0 {
                    start
                } else {
                    self.now + 1_000_000
                });
            }
            Phase::Load => {
                until = until.min(self.m1);
                until = until.min(self.start + (self.ivl_index + 1) * SECOND);
                if self.plan.mode.scheduled() && !self.sched_blocked {
                    until = until.min(self.intended(self.next_s));
                }
                if let (Some(rate), false) = (self.connect_rate, self.to_connect.is_empty()) {
                    let next = self.ramp_start + (self.connects_started as f64 * 1e9 / rate) as u64;
                    until = until.min(next);
                }
            }
            Phase::Drain => until = until.min(self.drain_deadline),
        }
        until.saturating_sub(self.now).max(1_000)
    }

    /// The next scheduled send, when the schedule is waiting on the clock.
    pub(super) fn next_send(&self) -> Option<u64> {
        (self.phase == Phase::Load && self.plan.mode.scheduled() && !self.sched_blocked)
            .then(|| self.intended(self.next_s))
    }

    /// When the loop wants to run again without completions: its next deadline, or
    /// `SPIN_NS` before a scheduled send (the rest is polled, so the send leaves on time
    /// instead of when a late timer fires).
    pub(super) fn wake_at(&self) -> u64 {
        let until = self.now + self.wait_ns();
        match self.next_send() {
            Some(t) if t <= until => t.saturating_sub(SPIN_NS).max(self.now),
            _ => until,
        }
    }

    /// (completions to wait for, µs the first may wait for the rest). Every wakeup costs
    /// a context switch and a trip through io_uring_enter; when many echoes are in flight
    /// and latency is in the milliseconds, waking once per batch cuts the loadgen's CPU
    /// per message by 10-20% while delaying a receive timestamp by at most 1% of the
    /// median latency. Off during the ramp (connect latency stays exact) and whenever
    /// latency is low.
    pub(super) fn wait_batch(&self) -> (usize, u32) {
        if !self.can_batch_waits
            || self.batch_wait_us == 0
            || !matches!(self.phase, Phase::Load | Phase::Drain)
        {
            return (1, 0);
        }
        let in_flight = self.sent_total - self.received_total;
        let want = (in_flight / BATCH_DIVISOR).clamp(1, MAX_BATCH);
        (want as usize, self.batch_wait_us)
    }

    /// Intended send time of scheduled message `s`.
    pub(super) fn intended(&self, s: u64) -> u64 {
        match self.plan.mode {
            // The clock holds only the next message's time: `s` is always `next_s` here.
            Mode::Rate(_) => self
                .rate_clock
                .as_ref()
                .map_or(u64::MAX, |c| self.start + c.next_offset_ns()),
            Mode::Heartbeat(_) => {
                let n = self.n as u64;
                let (round, j) = (s / n, (s % n) as usize);
                self.start + ((self.heartbeat_offset[j] + round as f64) * self.period_ns) as u64
            }
            _ => u64::MAX,
        }
    }

    /// Starts the workload on a connection that just opened (or at the start).
    pub(super) fn kick(&mut self, slot: u32) {
        match self.plan.mode {
            Mode::Closed => {
                for _ in 0..self.plan.pipeline {
                    self.enqueue(slot, self.now);
                }
            }
            Mode::Churn => {
                self.enqueue(slot, self.now);
            }
            Mode::Rate(_) | Mode::Heartbeat(_) => {}
        }
    }

    /// Sends what the open-loop schedule says is due by now.
    pub(super) fn schedule_sends(&mut self) {
        match self.plan.mode {
            Mode::Rate(_) => loop {
                self.sched_blocked = false;
                let t = self.intended(self.next_s);
                if t > self.now {
                    break;
                }
                // The next connection with room; the schedule waits (and the lag shows)
                // only when every connection is full or gone.
                let mut chosen = None;
                for k in 0..self.n {
                    let slot = (self.cursor + k) % self.n;
                    let c = &self.conns[slot];
                    if c.st == St::Open && c.tx_seq - c.rx_seq < self.cap {
                        chosen = Some(slot);
                        break;
                    }
                }
                let Some(slot) = chosen else {
                    // Wait for an echo to make room rather than spin on the clock.
                    self.sched_blocked = true;
                    break;
                };
                self.cursor = (slot + 1) % self.n;
                self.note_lag(t);
                self.enqueue(slot as u32, t);
                self.next_s += 1;
                if let Some(c) = self.rate_clock.as_mut() {
                    c.advance();
                }
            },
            Mode::Heartbeat(_) => loop {
                let t = self.intended(self.next_s);
                if t > self.now {
                    break;
                }
                let slot = (self.next_s % self.n as u64) as u32;
                let c = &self.conns[slot as usize];
                if c.st == St::Open {
                    if c.tx_seq - c.rx_seq < self.cap {
                        self.note_lag(t);
                        self.enqueue(slot, t);
                    } else {
                        *self
                            .connection_errors
                            .entry("heartbeat skipped: previous echoes overdue".into())
                            .or_default() += 1;
                    }
                }
                self.next_s += 1;
            },
            _ => {}
        }
    }

    /// An iteration that began at `t0` (= `now`) found nothing to do and only polled the
    /// clock for a close send: its time counts as spin, not work, in the measured phase.
    pub(super) fn note_spin(&mut self, t0: u64) {
        if self.in_window() {
            self.spin_ns += now_ns().saturating_sub(t0);
        }
    }

    pub(super) fn note_lag(&mut self, intended: u64) {
        if self.in_window() {
            let lag = self.now.saturating_sub(intended);
            self.unrecorded += u64::from(!record_ns(&mut self.send_lag, lag));
        }
    }
}
