//! The one table of metric names that thresholds, baselines and exports use: each name
//! is the snake_case of a compare.md (or hold/churn table) column, with the one
//! definition of its value in a run folder.

use super::super::casedir::{num, RunFolder};
use super::super::fmt::{bytes, number, us};

/// Which way is better: what a tracker plots and what a regression is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

/// How a case's rounds make one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// The median over rounds, with the range (every number in compare.md).
    Median,
    /// The sum over rounds (compare.md's errors column).
    Sum,
}

/// One metric.
pub struct Metric {
    /// The name in expressions and exports.
    pub name: &'static str,
    /// The column it is in compare.md or the scenario tables.
    pub column: &'static str,
    pub unit: &'static str,
    pub better: Better,
    pub fold: Fold,
    /// The workload kinds (summary.json `workload.kind`) that have it; empty: all.
    pub kinds: &'static [&'static str],
    /// Its value in one run folder (one round), None when the folder lacks it.
    pub get: fn(&RunFolder) -> Option<f64>,
    /// One number as the tables print it.
    pub show: fn(f64) -> String,
}

fn summary(r: &RunFolder, f: impl Fn(&crate::report::Summary) -> f64) -> Option<f64> {
    r.get(f)
}

fn syscalls_per_msg(r: &RunFolder) -> Option<f64> {
    let s = r.server.as_ref()?;
    let size = r.summary.as_ref()?.workload.size as f64;
    Some(s.syscalls? / s.messages(size)?)
}

fn two(v: f64) -> String {
    format!("{v:.2}")
}

fn three(v: f64) -> String {
    format!("{v:.3}")
}

fn whole(v: f64) -> String {
    number(v.round())
}

const ALL: &[&str] = &[];
const LOADS: &[&str] = &["closed", "rate"];

/// Every metric, in the order the tables show them.
pub const METRICS: &[Metric] = &[
    Metric {
        name: "msgs_per_s",
        column: "msgs/s",
        unit: "msgs/s",
        better: Better::Higher,
        fold: Fold::Median,
        kinds: LOADS,
        get: |r| summary(r, |s| s.throughput_msgs_per_s),
        show: whole,
    },
    Metric {
        name: "p50_us",
        column: "p50 µs",
        unit: "µs",
        better: Better::Lower,
        fold: Fold::Median,
        kinds: ALL,
        get: |r| summary(r, |s| s.latency.p50_us),
        show: us,
    },
    Metric {
        name: "p90_us",
        column: "p90 µs",
        unit: "µs",
        better: Better::Lower,
        fold: Fold::Median,
        kinds: ALL,
        get: |r| summary(r, |s| s.latency.p90_us),
        show: us,
    },
    Metric {
        name: "p99_us",
        column: "p99 µs",
        unit: "µs",
        better: Better::Lower,
        fold: Fold::Median,
        kinds: ALL,
        get: |r| summary(r, |s| s.latency.p99_us),
        show: us,
    },
    Metric {
        name: "p999_us",
        column: "p99.9 µs",
        unit: "µs",
        better: Better::Lower,
        fold: Fold::Median,
        kinds: ALL,
        get: |r| summary(r, |s| s.latency.p999_us),
        show: us,
    },
    Metric {
        name: "p9999_us",
        column: "p99.99 µs",
        unit: "µs",
        better: Better::Lower,
        fold: Fold::Median,
        kinds: ALL,
        get: |r| summary(r, |s| s.latency.p9999_us),
        show: us,
    },
    Metric {
        name: "max_us",
        column: "max µs",
        unit: "µs",
        better: Better::Lower,
        fold: Fold::Median,
        kinds: ALL,
        get: |r| summary(r, |s| s.latency.max_us),
        show: us,
    },
    Metric {
        name: "errors",
        column: "errors",
        unit: "",
        better: Better::Lower,
        fold: Fold::Sum,
        kinds: ALL,
        get: RunFolder::errors,
        show: whole,
    },
    Metric {
        name: "cpu_us_per_msg",
        column: "srv CPU µs/msg",
        unit: "µs",
        better: Better::Lower,
        fold: Fold::Median,
        kinds: ALL,
        get: RunFolder::cpu_us_per_msg,
        show: two,
    },
    Metric {
        name: "cpu_us_per_req",
        column: "srv CPU µs/req (http: over the client's measured window)",
        unit: "µs",
        better: Better::Lower,
        fold: Fold::Median,
        kinds: ALL,
        get: |r| r.window_cpu_us_per_req,
        show: two,
    },
    Metric {
        name: "syscalls_per_msg",
        column: "syscalls/msg",
        unit: "",
        better: Better::Lower,
        fold: Fold::Median,
        kinds: ALL,
        get: syscalls_per_msg,
        show: three,
    },
    Metric {
        name: "rss_per_conn_bytes",
        column: "RSS/conn",
        unit: "bytes",
        better: Better::Lower,
        fold: Fold::Median,
        kinds: ALL,
        get: |r| r.server.as_ref()?.rss_per_conn_bytes,
        show: bytes,
    },
    Metric {
        name: "held",
        column: "conns / established",
        unit: "connections",
        better: Better::Higher,
        fold: Fold::Median,
        kinds: ALL,
        get: |r| summary(r, |s| s.connections_established as f64),
        show: whole,
    },
    Metric {
        name: "failed_connects",
        column: "failed",
        unit: "connections",
        better: Better::Lower,
        fold: Fold::Median,
        kinds: ALL,
        get: |r| summary(r, |s| s.connections_failed as f64),
        show: whole,
    },
    Metric {
        name: "ramp_s",
        column: "ramp s",
        unit: "s",
        better: Better::Lower,
        fold: Fold::Median,
        kinds: ALL,
        get: |r| summary(r, |s| s.ramp_s),
        show: |v| format!("{v:.1}"),
    },
    Metric {
        name: "slab_per_conn_bytes",
        column: "slab/conn",
        unit: "bytes",
        better: Better::Lower,
        fold: Fold::Median,
        kinds: &["heartbeat"],
        get: |r| num(&r.hold, "slabinfo_per_connection_bytes"),
        show: bytes,
    },
    Metric {
        name: "connects_per_s",
        column: "connects/s",
        unit: "connects/s",
        better: Better::Higher,
        fold: Fold::Median,
        kinds: &["churn"],
        get: |r| r.summary.as_ref()?.connects_per_s,
        show: whole,
    },
    Metric {
        name: "connect_p50_us",
        column: "connect p50 µs",
        unit: "µs",
        better: Better::Lower,
        fold: Fold::Median,
        kinds: ALL,
        get: |r| summary(r, |s| s.connect_latency.p50_us),
        show: us,
    },
    Metric {
        name: "connect_p99_us",
        column: "connect p99 µs",
        unit: "µs",
        better: Better::Lower,
        fold: Fold::Median,
        kinds: ALL,
        get: |r| summary(r, |s| s.connect_latency.p99_us),
        show: us,
    },
];

/// The metric named `name`.
pub fn find(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

/// Every name, comma-separated (for messages).
pub fn names() -> String {
    METRICS
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::fmt::Debug for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Metric {
    /// Whether a run of workload `kind` has this metric at all.
    pub fn defined_for(&self, kind: &str) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }

    /// "1,234 µs": a number with its unit.
    pub fn with_unit(&self, text: String) -> String {
        match self.unit {
            "" | "bytes" | "connections" => text,
            u => format!("{text} {u}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        for (i, m) in METRICS.iter().enumerate() {
            assert!(
                m.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                m.name
            );
            assert!(
                METRICS[i + 1..].iter().all(|o| o.name != m.name),
                "{}",
                m.name
            );
        }
        assert!(find("p99_us").is_some() && find("p99").is_none());
        assert!(find("held").expect("held").defined_for("heartbeat"));
        assert!(!find("msgs_per_s").expect("m").defined_for("heartbeat"));
        assert!(names().starts_with("msgs_per_s, p50_us"));
    }
}
