//! Walks over a loop's connection slots spread out in time (idle closes, parking), for the
//! server's loops and the loadgen's workers.
//!
//! A loop looks at every slot once per period (a quarter of the idle time), but in steps of
//! at most [`STEP_SLOTS`] slots, evenly spaced over the period. A whole pass at once stops
//! the loop for as long as the pass takes and queues every close or park of the period in
//! one burst: with a million connections that was tens of milliseconds every period, and
//! the rings of one thread all swept at the same moment. Each loop also starts its walk at
//! its own phase of the period, so the loops of a thread take turns.
//!
//! Times are durations since an origin the caller picks (its loop's start, its clock's
//! zero), so one walk serves an `Instant` loop and a nanosecond-counter loop alike.

use std::ops::Range;
use std::time::Duration;

/// Slots looked at per step: a few microseconds of reading, and at most that many closes
/// or parks queued at once.
pub const STEP_SLOTS: usize = 1024;

/// A walk that visits every slot once per `every`, a step of slots at a time.
#[derive(Debug, Clone)]
pub struct SlotSweep {
    every: Option<Duration>,
    next: Duration,
    cursor: usize,
}

impl SlotSweep {
    /// A sweep with a full pass every `every` (`None`: never due), starting at `now`.
    /// `phase` in [0, 1) delays the first step by that share of a period, so loops started
    /// together are not in step.
    pub fn new(every: Option<Duration>, now: Duration, phase: f64) -> Self {
        let delay = every.map_or(Duration::ZERO, |e| e.mul_f64(phase.clamp(0.0, 1.0)));
        Self {
            every,
            next: now + delay,
            cursor: 0,
        }
    }

    /// When the next step is due; `None` for a sweep that is off.
    pub fn next(&self) -> Option<Duration> {
        self.every.map(|_| self.next)
    }

    /// The slots to look at now, out of `slots`, if a step is due; schedules the next step
    /// so that a whole pass takes one period.
    pub fn due(&mut self, now: Duration, slots: usize) -> Option<Range<usize>> {
        let every = self.every?;
        if now < self.next {
            return None;
        }
        if slots == 0 {
            self.next = now + every;
            return None;
        }
        let start = if self.cursor < slots { self.cursor } else { 0 };
        let end = (start + STEP_SLOTS).min(slots);
        self.cursor = if end == slots { 0 } else { end };
        let steps = slots.div_ceil(STEP_SLOTS).max(1) as u32;
        self.next = now + every / steps;
        Some(start..end)
    }
}

/// The period of the parking walk for `--idle-after-ms MS`: a quarter of it, so a quiet
/// connection is parked between 1x and 1.25x the idle time (at least 1 ms).
pub fn park_period(idle_after_ms: u32) -> Duration {
    Duration::from_millis(u64::from(idle_after_ms / 4).max(1))
}

/// A phase in [0, 1) for loop `index`: successive loops land far apart in the period.
pub fn phase_of(index: usize) -> f64 {
    // The golden ratio's fraction spreads any prefix of 0, 1, 2, ... nearly evenly.
    (index as f64 * 0.618_033_988_75).fract()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_is_never_due() {
        let mut s = SlotSweep::new(None, Duration::ZERO, 0.0);
        assert!(s.due(Duration::from_secs(1000), 10).is_none());
        assert_eq!(s.next(), None);
    }

    #[test]
    fn a_pass_visits_every_slot_once_in_one_period() {
        let every = Duration::from_millis(1000);
        let t0 = Duration::from_secs(5);
        let mut s = SlotSweep::new(Some(every), t0, 0.0);
        let slots = 5 * STEP_SLOTS + 7;
        let mut seen = vec![0u32; slots];
        let mut now = t0;
        let mut steps = 0;
        while seen.contains(&0) {
            let range = s.due(now, slots).expect("a step is due at its time");
            assert!(range.len() <= STEP_SLOTS);
            for i in range {
                seen[i] += 1;
            }
            now = s.next().expect("on");
            steps += 1;
            assert!(s.due(now - Duration::from_nanos(1), slots).is_none());
        }
        assert!(seen.iter().all(|&n| n == 1));
        assert_eq!(steps, 6);
        // The pass took one period, and the next one starts over at slot 0.
        assert!(
            now - t0 <= every + Duration::from_millis(1),
            "{:?}",
            now - t0
        );
        assert_eq!(s.due(now, slots), Some(0..STEP_SLOTS));
    }

    #[test]
    fn a_step_is_not_due_early_and_a_short_table_is_one_step() {
        let every = Duration::from_millis(100);
        let t0 = Duration::from_secs(5);
        let mut s = SlotSweep::new(Some(every), t0, 0.5);
        assert!(s.due(t0, 10).is_none());
        assert_eq!(s.due(t0 + every / 2, 10), Some(0..10));
        assert_eq!(s.next(), Some(t0 + every / 2 + every));
    }

    #[test]
    fn a_shrunk_table_starts_over() {
        let t0 = Duration::from_secs(5);
        let mut s = SlotSweep::new(Some(Duration::from_millis(10)), t0, 0.0);
        assert_eq!(s.due(t0, 3 * STEP_SLOTS), Some(0..STEP_SLOTS));
        assert_eq!(s.due(s.next().expect("on"), 10), Some(0..10));
        assert!(s.due(s.next().expect("on"), 0).is_none());
    }

    #[test]
    fn phases_spread() {
        let mut p: Vec<f64> = (0..58).map(phase_of).collect();
        p.sort_by(f64::total_cmp);
        let widest = p.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        assert!(p.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(widest < 3.0 / 58.0, "{widest}");
    }
}
