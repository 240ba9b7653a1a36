//! `--metrics-listen`: the run's counters and latency as Prometheus text.
//!
//! The loops are never asked anything at scrape time. Live gauges come from the atomics
//! they already publish for the progress line (`LoopShared`); everything else rides on
//! the per-second interval messages that already carry the latency histograms to the main
//! thread: with metrics on, each one also carries a copy of its loop's counters, so in
//! every scrape the latency histogram and the counters describe the same instant. The
//! main thread folds them in here under a lock that only it and the metrics thread take.
//! Names follow `summary.json` where the concept is the same; a different computation
//! has a different name.

use crate::cli::RunArgs;
use crate::engine::worker::{Control, LoopCounters, LoopResult, LoopShared};
use crate::report::{self, ConnectionLosses};
use anyhow::{bail, Context};
use c1m_platform::metrics::{
    counter, counters_by, gauge, histogram, Collector, DescriptorEncoder, MetricsListener,
};
use c1m_platform::signals;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Histogram bucket bounds in ns: 1-2-5 steps from 1 µs to 10 s.
const BOUNDS_NS: [u64; 22] = [
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    1_000_000_000,
    2_000_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Checks and binds `--metrics-listen` before anything starts; `None` when not asked.
pub fn bind(args: &RunArgs) -> anyhow::Result<Option<MetricsListener>> {
    let Some(addr) = &args.metrics_listen else {
        if args.metrics_linger.is_some() {
            bail!("--metrics-linger needs --metrics-listen");
        }
        return Ok(None);
    };
    if args.procs > 1 {
        bail!(
            "--metrics-listen works with --procs 1 only (each worker process would need an \
             address of its own): leave out --procs, or run one loadgen per port"
        );
    }
    if let Some(s) = args.metrics_linger {
        if !(s.is_finite() && (0.0..=86_400.0).contains(&s)) {
            bail!("--metrics-linger {s}: give 0 to 86400 seconds");
        }
    }
    Ok(Some(MetricsListener::bind(addr)?))
}

/// Starts serving for the loops in `shared`, and tells them to attach their counters.
pub fn start(
    listener: MetricsListener,
    shared: &[Arc<LoopShared>],
    control: &Control,
) -> anyhow::Result<Arc<LiveMetrics>> {
    let live = Arc::new(LiveMetrics::new(shared.to_vec()));
    control.counters.store(true, Ordering::Relaxed);
    listener
        .serve_collector(live.clone())
        .context("starting the metrics thread")?;
    Ok(live)
}

/// `--metrics-linger`: keep serving the final values for a last scrape (a signal ends it).
pub fn linger(args: &RunArgs) {
    let Some(secs) = args
        .metrics_linger
        .filter(|_| args.metrics_listen.is_some())
    else {
        return;
    };
    let until = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < until && !signals::stop_requested() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the main thread has folded in so far.
struct Folded {
    /// Every interval histogram received (what `latency.hlog` holds).
    latency: Histogram<u64>,
    /// Newest counters of each loop, by loop index.
    loops: BTreeMap<usize, LoopCounters>,
    /// The run is over: every value is final.
    finished: bool,
}

/// The live state behind the endpoint.
pub struct LiveMetrics {
    shared: Vec<Arc<LoopShared>>,
    folded: Mutex<Folded>,
}

impl std::fmt::Debug for LiveMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveMetrics").finish_non_exhaustive()
    }
}

impl LiveMetrics {
    pub fn new(shared: Vec<Arc<LoopShared>>) -> Self {
        Self {
            shared,
            folded: Mutex::new(Folded {
                latency: report::new_histogram(),
                loops: BTreeMap::new(),
                finished: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Folded> {
        // A panic while folding leaves counters that are still valid numbers.
        self.folded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One interval message: its histogram and, when present, its loop's counters.
    pub fn fold(&self, hist: &Histogram<u64>, counters: Option<Box<LoopCounters>>) {
        let mut f = self.lock();
        // A value the histogram cannot hold is counted in values_not_recorded already.
        let _ = report::add_into(&mut f.latency, hist);
        if let Some(c) = counters {
            f.loops.insert(c.loop_index, *c);
        }
    }

    /// The loops' final results: the run is over (call after the last interval).
    pub fn finish(&self, results: &[LoopResult]) {
        let mut f = self.lock();
        f.loops = results
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let c = LoopCounters {
                    loop_index: i,
                    sent_total: r.sent_total,
                    received_total: r.received_total,
                    verify_errors: r.verify_errors,
                    lost_echoes: r.lost_echoes,
                    closed_before_echo: r.closed_before_echo,
                    connect_errors: r.connect_errors.clone(),
                    connection_errors: r.connection_errors.clone(),
                    send_lag: (!r.send_lag.is_empty()).then(|| r.send_lag.clone()),
                };
                (i, c)
            })
            .collect();
        f.finished = true;
    }

    fn shared_sum(&self, pick: impl Fn(&LoopShared) -> &std::sync::atomic::AtomicU64) -> u64 {
        self.shared
            .iter()
            .map(|s| pick(s).load(Ordering::Relaxed))
            .sum()
    }
}

/// Sums of the loops' counters, taken under the lock and encoded after it.
#[derive(Default)]
struct Totals {
    sent: u64,
    received: u64,
    verify_errors: u64,
    lost_echoes: u64,
    closed_before_echo: u64,
    connect_errors: BTreeMap<String, u64>,
    connection_errors: BTreeMap<String, u64>,
    latency: Option<Buckets>,
    send_lag: Option<Buckets>,
    finished: bool,
}

impl Collector for LiveMetrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let t = self.totals();
        let e = &mut enc;
        gauge(
            e,
            "c1m_loadgen_running",
            "1 while the run goes on, 0 once every value is final.",
            u64::from(!t.finished),
        )?;
        gauge(
            e,
            "c1m_loadgen_open_connections",
            "Connections open now (0 once the run is over: its ring is closed).",
            if t.finished {
                0
            } else {
                self.shared_sum(|s| &s.open)
            },
        )?;
        counter(
            e,
            "c1m_loadgen_connections_established",
            "Connects that succeeded.",
            self.shared_sum(|s| &s.connects_ok),
        )?;
        counter(
            e,
            "c1m_loadgen_connections_failed",
            "Connects that failed.",
            self.shared_sum(|s| &s.connects_failed),
        )?;
        let by_errno = t.connect_errors.iter().map(|(k, v)| (k.as_str(), *v));
        counters_by(
            e,
            (
                "c1m_loadgen_connect_errors",
                "Failed connects by errno (updated once a second from the start of the load).",
            ),
            "errno",
            by_errno,
        )?;
        counter(e, "c1m_loadgen_sent", "Requests sent, every phase (summary.json's messages_sent counts the measured phase only).", t.sent)?;
        counter(e, "c1m_loadgen_received", "Responses read, every phase, good or not (summary.json's messages_received counts the measured phase only).", t.received)?;
        counter(
            e,
            "c1m_loadgen_verify_errors",
            "Responses that failed verification, and streams that could not be read.",
            t.verify_errors,
        )?;
        counter(
            e,
            "c1m_loadgen_lost_echoes",
            "Requests outstanding on connections that were lost.",
            t.lost_echoes,
        )?;
        let losses = ConnectionLosses::from_causes(&t.connection_errors, t.closed_before_echo);
        let kinds = [
            ("closed_by_peer", losses.closed_by_peer),
            ("reset", losses.reset),
            ("timed_out", losses.timed_out),
            ("other", losses.other),
        ];
        counters_by(
            e,
            (
                "c1m_loadgen_connection_losses",
                "Connections lost after they were established, by kind.",
            ),
            "kind",
            kinds,
        )?;
        counter(
            e,
            "c1m_loadgen_connection_losses_before_first_echo",
            "Connections lost before any response came back on them (also counted by kind).",
            losses.before_first_echo,
        )?;
        if let Some(b) = &t.latency {
            histogram(e, ("c1m_loadgen_latency_seconds", "Latency of every verified response since the load started, warm-up and drain included (the sum of latency.hlog's intervals)."), b.sum_s, b.count, &b.buckets)?;
        }
        if let Some(b) = &t.send_lag {
            histogram(
                e,
                (
                    "c1m_loadgen_send_lag_seconds",
                    "Open loop, measured phase: how late each scheduled send went out.",
                ),
                b.sum_s,
                b.count,
                &b.buckets,
            )?;
        }
        Ok(())
    }
}

impl LiveMetrics {
    fn totals(&self) -> Totals {
        let f = self.lock();
        let mut t = Totals {
            finished: f.finished,
            latency: Some(Buckets::of(&f.latency)),
            ..Totals::default()
        };
        let mut lag: Option<Histogram<u64>> = None;
        for c in f.loops.values() {
            t.sent += c.sent_total;
            t.received += c.received_total;
            t.verify_errors += c.verify_errors;
            t.lost_echoes += c.lost_echoes;
            t.closed_before_echo += c.closed_before_echo;
            for (into, from) in [
                (&mut t.connect_errors, &c.connect_errors),
                (&mut t.connection_errors, &c.connection_errors),
            ] {
                for (k, v) in from {
                    *into.entry(k.clone()).or_default() += v;
                }
            }
            if let Some(h) = &c.send_lag {
                let _ = report::add_into(lag.get_or_insert_with(report::new_histogram), h);
            }
        }
        t.send_lag = lag.as_ref().map(Buckets::of);
        t
    }
}

/// A histogram in Prometheus terms: per-bucket counts (the encoder accumulates them).
struct Buckets {
    buckets: Vec<(f64, u64)>,
    count: u64,
    sum_s: f64,
}

impl Buckets {
    /// A recorded value counts under the first bound at or above the value the summary
    /// would report for it (the highest value of its HdrHistogram bucket).
    fn of(h: &Histogram<u64>) -> Buckets {
        let mut counts = [0u64; BOUNDS_NS.len()];
        for v in h.iter_recorded() {
            let at = v.value_iterated_to();
            if let Some(i) = BOUNDS_NS.iter().position(|&b| at <= b) {
                counts[i] += v.count_at_value();
            }
        }
        Buckets {
            buckets: BOUNDS_NS
                .iter()
                .zip(counts)
                .map(|(&b, n)| (b as f64 / 1e9, n))
                .collect(),
            count: h.len(),
            sum_s: h.mean() * h.len() as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::test_run_args as args;

    #[test]
    fn flags_that_cannot_work_are_refused_with_a_way_out() {
        assert!(bind(&args(&[])).expect("off").is_none());
        for (extra, says) in [
            (&["--metrics-listen", "nowhere"][..], "127.0.0.1:9100"),
            (
                &["--metrics-listen", "127.0.0.1:0", "--procs", "2"],
                "--procs 1",
            ),
            (&["--metrics-linger", "5"], "needs --metrics-listen"),
            (
                &["--metrics-listen", "127.0.0.1:0", "--metrics-linger", "1e9"],
                "0 to 86400",
            ),
        ] {
            let e = bind(&args(extra)).expect_err("refused").to_string();
            assert!(e.contains(says), "{extra:?}: {e}");
        }
        let ok = bind(&args(&[
            "--metrics-listen",
            "127.0.0.1:0",
            "--metrics-linger",
            "2",
        ]));
        assert!(ok.expect("binds").is_some_and(|l| l.addr().port() != 0));
    }

    #[test]
    fn buckets_are_the_histograms_counts() {
        let mut h = report::new_histogram();
        for ns in [800, 1_000, 40_000, 40_000, 3_000_000, 20_000_000_000] {
            assert!(report::record_ns(&mut h, ns));
        }
        let b = Buckets::of(&h);
        assert_eq!(b.count, 6);
        let n: u64 = b.buckets.iter().map(|(_, n)| n).sum();
        assert_eq!(n, 5, "20 s is past the last bound: only in +Inf");
        let at = |s: f64| b.buckets.iter().find(|(le, _)| *le == s).map(|(_, n)| *n);
        assert_eq!(at(1e-6), Some(2));
        assert_eq!(at(5e-5), Some(2));
        assert_eq!(at(5e-3), Some(1));
        assert!((b.sum_s - h.mean() * 6.0 / 1e9).abs() < 1e-12);
    }
}
