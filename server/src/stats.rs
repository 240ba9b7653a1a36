//! Counters. Each loop owns one [`LoopStats`] and is its only writer (a relaxed load and
//! store, no locked instruction on the data path); the stats thread only reads them.
//! The open-connection count is the one shared counter, touched on accept and close.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A counter with a single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        // Single writer: load + store is exact and cheaper than fetch_add.
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// For a gauge: the single writer stores the current value.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What one event loop did. Syscall counters count the calls the loop itself makes.
#[derive(Debug, Default)]
pub struct LoopStats {
    pub accepted: Counter,
    pub closed: Counter,
    /// Connections closed at once because `--max-conns` was reached.
    pub rejected: Counter,
    /// Connections closed at once because the process or system was out of fds.
    pub refused_fd_limit: Counter,
    /// Connections closed at once because the uring backend's fixed-file table was full.
    pub refused_fixed_table: Counter,
    pub idle_closed: Counter,
    /// uring: polls armed for idle connections (`--idle-after-ms`), polls that fired,
    /// and of those the ones after a quiet spell, read by a one-shot recv while the
    /// connection stays parked (the rest re-armed the multishot recv).
    pub parked: Counter,
    pub woken: Counter,
    pub woken_parked: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    /// Receive completions (uring) or reads that returned data (epoll, tokio).
    pub recvs: Counter,
    pub sends: Counter,
    /// Connections closed because of an error (reset, broken pipe, ...).
    pub conn_errors: Counter,
    /// Loop-level trouble that was recovered from (ENOBUFS, a full fixed-file table, ...).
    pub loop_errors: Counter,
    /// Requests answered (frame, http; echo has no requests).
    pub requests: Counter,
    /// Connections ended because a request broke the protocol or its bounds.
    pub proto_errors: Counter,
    pub sys_io_uring_enter: Counter,
    pub sys_epoll_wait: Counter,
    pub sys_read: Counter,
    pub sys_write: Counter,
    pub sys_accept: Counter,
    pub sys_other: Counter,
    /// Completions walked (uring) or ready events returned by `epoll_wait` (epoll).
    pub completions: Counter,
    /// uring: the kernel's CQ overflow counter (completions it dropped), copied per batch.
    pub cq_dropped: Counter,
    /// uring: batches that found completions held on the kernel's overflow list (full CQ).
    pub cq_overflow_batches: Counter,
    /// uring: provided receive buffers not in the kernel's ring (gauge).
    pub buffers_in_use: Counter,
}

impl LoopStats {
    /// uring, once per batch of completions: what the ring says besides the completions.
    #[inline]
    pub fn uring_batch(&self, cqes: usize, overflowed: bool, dropped: u32, buffers_in_use: u32) {
        self.completions.add(cqes as u64);
        self.cq_overflow_batches.add(u64::from(overflowed));
        self.cq_dropped.set(u64::from(dropped));
        self.buffers_in_use.set(u64::from(buffers_in_use));
    }

    /// Counts `n` connections closed unserved for `reason`.
    pub fn refused(&self, reason: crate::refuse::Refusal, n: u64) {
        use crate::refuse::Refusal;
        match reason {
            Refusal::MaxConns => self.rejected.add(n),
            Refusal::FdLimit => self.refused_fd_limit.add(n),
            Refusal::FixedTable => self.refused_fixed_table.add(n),
        }
    }
}

/// Open connections across all loops, with the peak and the `--max-conns` check.
#[derive(Debug, Default)]
pub struct ConnCount {
    open: AtomicUsize,
    peak: AtomicUsize,
}

impl ConnCount {
    /// Counts a new connection; false (and not counted) if that would pass `max`.
    pub fn try_open(&self, max: Option<usize>) -> bool {
        let now = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        if max.is_some_and(|m| now > m) {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        self.peak.fetch_max(now, Ordering::Relaxed);
        true
    }

    pub fn close(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

/// Sum of all loops' counters at one moment.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Totals {
    pub accepted: u64,
    pub closed: u64,
    /// Refused at `--max-conns` (the name predates the other reasons).
    pub rejected: u64,
    pub refused_fd_limit: u64,
    pub refused_fixed_table: u64,
    pub idle_closed: u64,
    pub parked: u64,
    pub woken: u64,
    pub woken_parked: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub recvs: u64,
    pub sends: u64,
    pub conn_errors: u64,
    pub loop_errors: u64,
    pub requests: u64,
    pub proto_errors: u64,
    pub sys_io_uring_enter: u64,
    pub sys_epoll_wait: u64,
    pub sys_read: u64,
    pub sys_write: u64,
    pub sys_accept: u64,
    pub sys_other: u64,
}

impl Totals {
    pub fn sum<'a>(loops: impl IntoIterator<Item = &'a LoopStats>) -> Self {
        let mut t = Totals::default();
        for s in loops {
            t.accepted += s.accepted.get();
            t.closed += s.closed.get();
            t.rejected += s.rejected.get();
            t.refused_fd_limit += s.refused_fd_limit.get();
            t.refused_fixed_table += s.refused_fixed_table.get();
            t.idle_closed += s.idle_closed.get();
            t.parked += s.parked.get();
            t.woken += s.woken.get();
            t.woken_parked += s.woken_parked.get();
            t.bytes_in += s.bytes_in.get();
            t.bytes_out += s.bytes_out.get();
            t.recvs += s.recvs.get();
            t.sends += s.sends.get();
            t.conn_errors += s.conn_errors.get();
            t.loop_errors += s.loop_errors.get();
            t.requests += s.requests.get();
            t.proto_errors += s.proto_errors.get();
            t.sys_io_uring_enter += s.sys_io_uring_enter.get();
            t.sys_epoll_wait += s.sys_epoll_wait.get();
            t.sys_read += s.sys_read.get();
            t.sys_write += s.sys_write.get();
            t.sys_accept += s.sys_accept.get();
            t.sys_other += s.sys_other.get();
        }
        t
    }

    /// Connections closed unserved, for every reason.
    pub fn refused(&self) -> u64 {
        self.rejected + self.refused_fd_limit + self.refused_fixed_table
    }

    pub fn syscalls(&self) -> u64 {
        self.sys_io_uring_enter
            + self.sys_epoll_wait
            + self.sys_read
            + self.sys_write
            + self.sys_accept
            + self.sys_other
    }
}

/// One stats line for stderr, covering the interval since `prev`.
pub fn interval_line(now: &Totals, prev: &Totals, open: usize, secs: f64) -> String {
    let rate = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / secs.max(1e-9);
    let mut line = format!(
        "conns {open} accepts/s {:.0} recvs/s {:.0} in {:.1} MB/s out {:.1} MB/s errors {} syscalls/s {:.0}",
        rate(now.accepted, prev.accepted),
        rate(now.recvs, prev.recvs),
        rate(now.bytes_in, prev.bytes_in) / 1e6,
        rate(now.bytes_out, prev.bytes_out) / 1e6,
        (now.conn_errors + now.loop_errors) - (prev.conn_errors + prev.loop_errors),
        rate(now.syscalls(), prev.syscalls()),
    );
    if now.requests > 0 || now.proto_errors > 0 {
        line.push_str(&format!(
            " requests/s {:.0} protocol errors {}",
            rate(now.requests, prev.requests),
            now.proto_errors
        ));
    }
    if now.refused() > 0 {
        line.push_str(&format!(
            " refused {} (max-conns {}, fd-limit {}, fixed-table {})",
            now.refused(),
            now.rejected,
            now.refused_fd_limit,
            now.refused_fixed_table
        ));
    }
    line
}
