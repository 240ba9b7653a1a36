//! `--metrics-listen`: the server's counters as Prometheus text. Read at scrape time from
//! the loops' [`LoopStats`] (relaxed loads; the loops never wait for a scrape). Names
//! follow `server.json` where the concept is the same.

use crate::config::Backend;
use crate::stats::{ConnCount, LoopStats, Totals};
use c1m_platform::metrics::{counter, counters_by, gauge, gauges_by, Collector, DescriptorEncoder};
use std::fmt;
use std::sync::Arc;

#[derive(Debug)]
pub struct ServerMetrics {
    pub backend: Backend,
    pub loops: Vec<Arc<LoopStats>>,
    pub conns: Arc<ConnCount>,
}

impl Collector for ServerMetrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let e = &mut enc;
        let t = Totals::sum(self.loops.iter().map(|s| s.as_ref()));
        gauge(
            e,
            "c1m_server_open_connections",
            "Connections open now.",
            self.conns.open() as u64,
        )?;
        gauge(
            e,
            "c1m_server_peak_connections",
            "Most connections open at once so far.",
            self.conns.peak() as u64,
        )?;
        counter(
            e,
            "c1m_server_accepted",
            "Connections accepted (refused ones included).",
            t.accepted,
        )?;
        counter(
            e,
            "c1m_server_closed",
            "Connections closed, for any reason.",
            t.closed,
        )?;
        counters_by(
            e,
            (
                "c1m_server_refused",
                "Connections closed at once without being served, by the limit that was full.",
            ),
            "reason",
            [
                ("max_conns", t.rejected),
                ("fd_limit", t.refused_fd_limit),
                ("fixed_table", t.refused_fixed_table),
            ],
        )?;
        counter(
            e,
            "c1m_server_idle_closed",
            "Connections closed by --idle-timeout.",
            t.idle_closed,
        )?;
        counter(e, "c1m_server_bytes_in", "Bytes received.", t.bytes_in)?;
        counter(e, "c1m_server_bytes_out", "Bytes sent.", t.bytes_out)?;
        counter(
            e,
            "c1m_server_recvs",
            "Receive completions (uring) or reads that returned data.",
            t.recvs,
        )?;
        counter(e, "c1m_server_sends", "Sends issued.", t.sends)?;
        counter(
            e,
            "c1m_server_requests",
            "Requests answered (frame, http; 0 for echo).",
            t.requests,
        )?;
        counter(
            e,
            "c1m_server_proto_errors",
            "Connections ended because a request broke the protocol or its bounds.",
            t.proto_errors,
        )?;
        counter(
            e,
            "c1m_server_conn_errors",
            "Connections closed because of an error (reset, broken pipe, ...).",
            t.conn_errors,
        )?;
        counter(
            e,
            "c1m_server_loop_errors",
            "Loop-level trouble that was recovered from.",
            t.loop_errors,
        )?;
        self.per_loop(e)
    }
}

impl ServerMetrics {
    /// Per-loop series, labelled `loop`; only what the backend counts.
    fn per_loop(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let names: Vec<String> = (0..self.loops.len()).map(|i| i.to_string()).collect();
        let each = |f: fn(&LoopStats) -> u64| {
            names
                .iter()
                .zip(&self.loops)
                .map(move |(n, s)| (n.as_str(), f(s)))
        };
        let (enters, what): (fn(&LoopStats) -> u64, _) = match self.backend {
            Backend::Uring => (|s| s.sys_io_uring_enter.get(), "io_uring_enter calls"),
            Backend::Epoll => (|s| s.sys_epoll_wait.get(), "epoll_wait calls"),
            // The runtimes wait inside themselves: nothing to count.
            Backend::Tokio | Backend::TokioUring => return Ok(()),
        };
        let enters_help = format!("Times the loop entered the kernel to wait: {what}.");
        counters_by(
            e,
            ("c1m_server_loop_enters", &enters_help),
            "loop",
            each(enters),
        )?;
        counters_by(
            e,
            (
                "c1m_server_loop_completions",
                "Completions walked (uring) or ready events returned by epoll_wait (epoll).",
            ),
            "loop",
            each(|s| s.completions.get()),
        )?;
        if self.backend != Backend::Uring {
            return Ok(());
        }
        counters_by(
            e,
            ("c1m_server_loop_cq_overflows", "The kernel's CQ overflow counter: completions it dropped for want of room and memory (should stay 0)."),
            "loop",
            each(|s| s.cq_dropped.get()),
        )?;
        counters_by(
            e,
            ("c1m_server_loop_cq_overflow_batches", "Batches that found completions waiting on the kernel's overflow list (the CQ was full)."),
            "loop",
            each(|s| s.cq_overflow_batches.get()),
        )?;
        gauges_by(
            e,
            (
                "c1m_server_loop_buffers_in_use",
                "Provided receive buffers out of the kernel's ring (holding data or being sent).",
            ),
            "loop",
            each(|s| s.buffers_in_use.get()),
        )
    }
}
