//! `summary.json`: everything a reader needs to know about one run, and to re-run it.
//!
//! Every struct is `#[serde(default)]`: a field missing from an older or hand-written
//! summary.json reads as its default instead of failing the whole folder.

use super::bound::{Bound, CpuFacts};
use c1m_platform::procfs::CpuBusy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LatencySummary {
    pub count: u64,
    pub min_us: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub p9999_us: f64,
    pub max_us: f64,
}

/// Where and how the run was made.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Environment {
    pub command_line: Vec<String>,
    pub git_revision: String,
    pub hostname: String,
    pub kernel: String,
    pub cpu_model: String,
    pub online_cpus: Vec<usize>,
    /// CPUs the loadgen's threads were pinned to.
    pub loadgen_cpus: Vec<usize>,
    pub nofile_soft: u64,
    pub nofile_hard: u64,
    pub sysctls: BTreeMap<String, String>,
    /// Machine CPU busy % during the measured phase, and the share of it not ours,
    /// to flag runs disturbed by other processes.
    pub machine_cpu_busy_pct: Option<f64>,
    pub loadgen_cpu_pct: Option<f64>,
    /// Loadgen CPU (user + sys, getrusage) per message received in the measured phase,
    /// in microseconds: must stay below the server's for the run to measure the server.
    pub loadgen_cpu_us_per_msg: Option<f64>,
    /// Of `loadgen_cpu_pct` (% of one CPU): the time spent polling the clock for a close
    /// scheduled send, and the rest (completions, sends, their syscalls). Measured phase.
    pub loadgen_spin_pct: Option<f64>,
    pub loadgen_work_pct: Option<f64>,
    /// CPUs the server ran on, when the loadgen was told (`--server-cpus`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub server_cpus: Vec<usize>,
    /// Every CPU's busy share over the measured phase, from `/proc/stat`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpu_window: Vec<CpuBusy>,
}

/// What was asked for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Workload {
    /// "closed", "rate", "heartbeat" or "churn".
    pub kind: String,
    /// "echo", "frame" or "http" (`--protocol`; folders older than it were echo).
    #[serde(default = "echo")]
    pub protocol: String,
    pub targets: Vec<String>,
    pub connections: u64,
    /// echo: the message; frame: the payload (`--size`); http: the request (fixed).
    pub size: u64,
    /// Bytes of one request on the wire (frame: 4 + size).
    pub request_bytes: u64,
    /// frame with `--reply-size`: the payload of every response frame.
    pub reply_size: Option<u64>,
    /// http: the body every response carries (`--body-size`).
    pub body_size: Option<u64>,
    pub pipeline: u64,
    pub rate_msgs_per_s: Option<f64>,
    pub heartbeat_s: Option<f64>,
    pub connect_rate: Option<f64>,
    pub source_ips: Vec<String>,
    pub procs: u64,
    pub duration_s: f64,
    pub warmup_s: f64,
    /// Open loop: "uniform" or "poisson" send times, and the seed of the latter.
    pub arrivals: Option<String>,
    pub seed: Option<u64>,
    /// Closed loop: "auto" (a wakeup may wait for a batch of echoes) or "off".
    pub batch_waits: String,
}

impl Environment {
    /// Which side was saturated ([`Bound`]), from this environment's CPU figures.
    pub fn bound(&self) -> Option<Bound> {
        Bound::of(&CpuFacts {
            cpu_window: &self.cpu_window,
            loadgen_cpus: &self.loadgen_cpus,
            server_cpus: &self.server_cpus,
            loadgen_spin_pct: self.loadgen_spin_pct,
            loadgen_work_pct: self.loadgen_work_pct,
        })
    }
}

fn echo() -> String {
    "echo".to_owned()
}

impl Workload {
    /// The protocol in words: `echo`, `frame`, `frame (reply 100 B)`, `http (body 16 B)`.
    pub fn protocol_desc(&self) -> String {
        let p = if self.protocol.is_empty() {
            "echo"
        } else {
            self.protocol.as_str()
        };
        match (self.reply_size, self.body_size) {
            (Some(n), _) if p == "frame" => format!("frame (reply {n} B)"),
            (_, Some(n)) if p == "http" => format!("http (body {n} B)"),
            _ => p.to_owned(),
        }
    }
}

/// Connections lost after they were established, grouped by what ended them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ConnectionLosses {
    /// The server closed the connection (EOF).
    pub closed_by_peer: u64,
    /// The connection was reset (ECONNRESET, EPIPE).
    pub reset: u64,
    /// TCP gave up on the peer (ETIMEDOUT, EHOSTUNREACH).
    pub timed_out: u64,
    pub other: u64,
    /// Of all the above: closed before a single echo came back, which is how a server
    /// at capacity refuses a connection its kernel already accepted.
    pub before_first_echo: u64,
}

impl ConnectionLosses {
    /// Groups `connection_errors` (cause -> count).
    pub fn from_causes(causes: &BTreeMap<String, u64>, before_first_echo: u64) -> Self {
        let mut l = ConnectionLosses {
            before_first_echo,
            ..Default::default()
        };
        for (cause, &n) in causes {
            match cause.as_str() {
                "EOF from server" => l.closed_by_peer += n,
                "ECONNRESET" | "EPIPE" | "ECONNABORTED" => l.reset += n,
                "ETIMEDOUT" | "EHOSTUNREACH" => l.timed_out += n,
                c if c.starts_with("heartbeat skipped") => {}
                _ => l.other += n,
            }
        }
        l
    }

    pub fn total(&self) -> u64 {
        self.closed_by_peer + self.reset + self.timed_out + self.other
    }
}

/// The whole `summary.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub label: String,
    /// RFC 3339 UTC start time.
    pub start_time: String,
    pub environment: Environment,
    pub workload: Workload,

    pub connections_established: u64,
    pub connections_failed: u64,
    /// Failed connects by errno name ("ECONNREFUSED": 3, ...).
    pub connect_errors: BTreeMap<String, u64>,
    /// Connections lost after being established (reset, EOF from the server), by cause.
    pub connection_errors: BTreeMap<String, u64>,
    /// Seconds from the first connect to the last established connection.
    pub ramp_s: f64,
    pub connect_latency: LatencySummary,

    /// Measured phase only (after warm-up).
    pub messages_sent: u64,
    pub messages_received: u64,
    /// Echoes whose bytes were corrupt or out of order (only those: echoes that did not
    /// come back are `lost_echoes` and `unanswered_echoes`).
    pub verify_errors: u64,
    /// Echoes lost because their connection closed before they came back (whole run).
    pub lost_echoes: u64,
    /// Echoes still outstanding on open connections when the run ended.
    pub unanswered_echoes: u64,
    /// Connections lost, by kind (the causes in `connection_errors`, grouped).
    pub connection_losses: ConnectionLosses,
    /// Why the run ended before its duration (every connection lost, a signal), if it did.
    pub stopped_early: Option<String>,
    pub measured_s: f64,
    pub throughput_msgs_per_s: f64,
    pub latency: LatencySummary,
    /// True when latency is measured from the intended send time (open loop).
    pub coordinated_omission_corrected: bool,
    /// Open loop: how far behind its schedule each message went out, in microseconds:
    /// median, 99th percentile and worst.
    pub send_lag_p50_us: Option<f64>,
    pub send_lag_p99_us: Option<f64>,
    pub max_send_lag_us: Option<f64>,
    /// Churn: completed connect-exchange-close cycles per second.
    pub connects_per_s: Option<f64>,
    /// Whether the client or the server (or both, or neither) was saturated ([`Bound`]).
    pub bound: Option<Bound>,
    /// Values a histogram could not hold: counted, never clamped (0 in practice: every
    /// histogram grows to hold any value).
    #[serde(skip_serializing_if = "is_zero")]
    pub values_not_recorded: u64,
    /// Round of an interleaved series this run belongs to (`--round`).
    pub round: Option<u64>,
    /// What a reader must know before trusting the numbers (for example that the client,
    /// not the server, limited the run).
    pub warnings: Vec<String>,
}

impl Summary {
    /// Warnings that follow from the numbers themselves.
    pub fn derived_warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if let Some(lag) = self.send_lag_p99_us {
            let p50 = self.latency.p50_us;
            if p50 > 0.0 && lag > 0.1 * p50 {
                w.push(format!(
                    "client-limited: send lag p99 {lag:.0} us exceeds 10% of latency p50 {p50:.0} us; the loadgen, not the server, set the pace"
                ));
            }
        }
        if self.values_not_recorded > 0 {
            w.push(format!(
                "{} latency values could not be recorded in a histogram; the percentiles leave them out",
                self.values_not_recorded
            ));
        }
        if let (Some(b), true) = (&self.bound, self.coordinated_omission_corrected) {
            if !b.saturated_cpus.is_empty() {
                w.push(format!(
                    "saturated CPU at this rate: {}; latency includes waiting for it",
                    b.saturated_cpus.join("; ")
                ));
            }
        }
        w
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_reads_as_echo_in_older_folders() {
        let w: Workload = serde_json::from_str(r#"{"kind":"closed","size":64}"#).expect("json");
        assert_eq!(w.protocol, "echo");
        assert_eq!(w.protocol_desc(), "echo");
        let w: Workload =
            serde_json::from_str(r#"{"protocol":"http","body_size":16}"#).expect("json");
        assert_eq!(w.protocol_desc(), "http (body 16 B)");
        let w: Workload =
            serde_json::from_str(r#"{"protocol":"frame","reply_size":4}"#).expect("json");
        assert_eq!(w.protocol_desc(), "frame (reply 4 B)");
    }

    #[test]
    fn warns_when_send_lag_is_large_against_latency() {
        let mut s = Summary::default();
        s.latency.p50_us = 100.0;
        s.send_lag_p99_us = Some(9.0);
        assert!(s.derived_warnings().is_empty());
        s.send_lag_p99_us = Some(11.0);
        let w = s.derived_warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("client-limited"), "{w:?}");
        s.send_lag_p99_us = None;
        assert!(s.derived_warnings().is_empty());
    }
}
