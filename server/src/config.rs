//! Command line of `c1m-server` and the validated settings the event loops run with.

use crate::proto::{frame, http, Protocol, ProtocolKind};
use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Which I/O interface the event loops use. Everything else (topology, connection state
/// machine, limits, stats) is the same for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// io_uring: multishot accept into direct descriptors, multishot recv on a
    /// provided-buffer ring, sends from the received buffers.
    Uring,
    /// Edge-triggered epoll, non-blocking read/write (the classic design).
    Epoll,
    /// One tokio-uring runtime per pinned thread.
    TokioUring,
    /// One current-thread tokio runtime per pinned thread.
    Tokio,
}

impl Backend {
    pub const ALL: [Backend; 4] = [
        Backend::Uring,
        Backend::Epoll,
        Backend::TokioUring,
        Backend::Tokio,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Uring => "uring",
            Backend::Epoll => "epoll",
            Backend::TokioUring => "tokio-uring",
            Backend::Tokio => "tokio",
        }
    }
}

/// Thread-per-core TCP echo server.
#[derive(Debug, Parser)]
#[command(name = "c1m-server", version, about, long_about = None)]
pub struct Args {
    /// I/O backend of the event loops.
    #[arg(long, value_enum, default_value_t = Backend::Uring)]
    pub backend: Backend,

    /// Address to listen on; repeat for several (every loop listens on each).
    #[arg(long = "listen", value_name = "ADDR:PORT", default_values_t = vec!["127.0.0.1:7000".parse::<SocketAddr>().expect("valid default")])]
    pub listen: Vec<SocketAddr>,

    /// CPUs to run one pinned event loop on each, e.g. `0`, `0-1`, `0,2` (default: all online).
    #[arg(long, value_name = "LIST")]
    pub cpus: Option<String>,

    /// Event loop threads in all (default: one per CPU). More loops than CPUs are spread
    /// over the CPUs round-robin. With uring, a loop drives several rings when one ring's
    /// fixed-file table (at most RLIMIT_NOFILE slots) cannot hold its share of --max-conns.
    #[arg(long, value_name = "N")]
    pub loops: Option<usize>,

    /// Close new connections beyond this many open ones (default: no limit).
    #[arg(long, value_name = "N")]
    pub max_conns: Option<usize>,

    /// Close a connection after this many seconds without traffic (default: never).
    #[arg(long, value_name = "SECS")]
    pub idle_timeout: Option<f64>,

    /// Print one stats line on stderr every SECS (default: none).
    #[arg(long, value_name = "SECS")]
    pub stats_interval: Option<f64>,

    /// Write the final stats as JSON to PATH at exit.
    #[arg(long, value_name = "PATH")]
    pub stats_json: Option<std::path::PathBuf>,

    /// Serve the counters as Prometheus text at http://ADDR/metrics (off by default; port
    /// 0 picks a free one, printed on stderr as `metrics: http://ADDR/metrics`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,

    /// Stop reading a connection while this many echoed bytes are still unsent to it.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024)]
    pub max_unsent: usize,

    /// uring: provided receive buffers per loop (a power of two, at most 32768). Default:
    /// 1024, or fewer when there are more loops than CPUs, so that receive memory stays
    /// about 1024 buffers per CPU (at least 64 per loop).
    #[arg(long, value_name = "N")]
    pub buffers: Option<u32>,

    /// uring: while walking a batch of completions, submit as soon as this many new
    /// requests are queued, so the peer starts on the first echoes sooner.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub submit_batch: u32,

    /// uring: size of each provided receive buffer.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub buffer_size: u32,

    /// What the bytes mean: echo (raw bytes back), frame (length-prefixed request and
    /// response frames) or http (HTTP/1.1 keep-alive, 200 with a fixed body).
    #[arg(long, value_enum, default_value_t = ProtocolKind::Echo)]
    pub protocol: ProtocolKind,

    /// frame: largest request payload; a longer length closes that connection.
    #[arg(long, value_name = "BYTES", default_value_t = frame::DEFAULT_MAX_FRAME)]
    pub max_frame: u32,

    /// frame: answer every request with N payload bytes instead of echoing its payload.
    #[arg(long, value_name = "N")]
    pub reply_size: Option<u32>,

    /// http: length of the fixed body of every 200 answer.
    #[arg(long, value_name = "BYTES", default_value_t = http::DEFAULT_BODY_SIZE)]
    pub body_size: usize,

    /// http: largest request head (request line and headers); a longer one gets 431.
    #[arg(long, value_name = "BYTES", default_value_t = http::DEFAULT_MAX_HEADER)]
    pub max_header: usize,

    /// uring: after the loop's first completion, wait up to N µs for more before handling
    /// them (the kernel's min-wait, Linux 6.12+): fewer wakeups per message, paid in
    /// latency. Off by default.
    #[arg(long, value_name = "N")]
    pub coalesce_us: Option<u32>,

    /// uring: every send posts a completion, the send path before quick sends (for
    /// comparing the two; see README "The send path").
    #[arg(long)]
    pub plain_sends: bool,

    /// uring: after a connection has been quiet this long, replace its armed recv by a
    /// poll for input, which holds less kernel memory; the recv is re-armed when data
    /// comes (see README "Idle connections"). 0: keep the recv armed. Default: 5000.
    #[arg(long, value_name = "MS")]
    pub idle_after_ms: Option<u32>,

    /// uring, tests only: new connections start parked once the server holds N
    /// (default 16384; see README "Idle connections"), so a test needs few.
    #[arg(long, value_name = "N", hide = true)]
    pub start_parked_from: Option<usize>,

    /// uring, tests only: at most N fixed-file slots per ring (below RLIMIT_NOFILE), so
    /// that a few connections need several rings per loop thread.
    #[arg(long, value_name = "N", hide = true)]
    pub ring_slots: Option<u32>,

    /// uring, tests only: completion queue entries per ring (a small CQ overflows under a
    /// burst, which must lose nothing).
    #[arg(long, value_name = "N", hide = true)]
    pub cq_entries: Option<u32>,
}

/// Everything a loop needs to know about limits, shared by all backends.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Pause reading a connection at this many unsent bytes...
    pub max_unsent: usize,
    /// ...and resume once it is down to this many.
    pub resume_unsent: usize,
    pub idle_timeout: Option<Duration>,
    pub max_conns: Option<usize>,
}

/// A command-line value that parses but makes no sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--{flag} {value}: {why}")]
    Invalid {
        flag: &'static str,
        value: String,
        why: &'static str,
    },
}

fn positive_secs(flag: &'static str, v: Option<f64>) -> Result<Option<Duration>, ConfigError> {
    match v {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(ConfigError::Invalid {
            flag,
            value: s.to_string(),
            why: "give a positive number of seconds",
        }),
    }
}

/// Provided receive buffers per CPU for the uring backend when `--buffers` is not given.
pub const DEFAULT_BUFFERS_PER_CPU: u32 = 1024;
/// Fewest buffers a loop gets by default, however many loops share a CPU.
pub const MIN_DEFAULT_BUFFERS: u32 = 64;
/// `--idle-after-ms` default: far above the gaps of a connection that is talking (so a
/// busy one never pays the park and re-arm), well below the hold's heartbeat period where
/// memory matters (40 s at 1M held: parked 7/8 of the time); see README "Idle connections".
pub const DEFAULT_IDLE_AFTER_MS: u32 = 5000;

impl Args {
    /// `--buffers`, or the default for `loops` loops over `cpus` CPUs: about
    /// [`DEFAULT_BUFFERS_PER_CPU`] per CPU, so receive memory does not grow with the loop
    /// count that a large `--max-conns` brings.
    pub fn buffers_per_loop(&self, loops: usize, cpus: usize) -> u32 {
        self.buffers.unwrap_or_else(|| {
            let share = (DEFAULT_BUFFERS_PER_CPU as usize * cpus.max(1) / loops.max(1)) as u32;
            let share = if share.is_power_of_two() {
                share
            } else {
                share.next_power_of_two() / 2
            };
            share.clamp(MIN_DEFAULT_BUFFERS, DEFAULT_BUFFERS_PER_CPU)
        })
    }

    pub fn limits(&self) -> Result<Limits, ConfigError> {
        if self.max_unsent < 4096 {
            return Err(ConfigError::Invalid {
                flag: "max-unsent",
                value: self.max_unsent.to_string(),
                why: "must be at least 4096 bytes",
            });
        }
        if self.max_conns == Some(0) {
            return Err(ConfigError::Invalid {
                flag: "max-conns",
                value: "0".into(),
                why: "must be at least 1 (leave it out for no limit)",
            });
        }
        Ok(Limits {
            max_unsent: self.max_unsent,
            resume_unsent: self.max_unsent / 4,
            idle_timeout: positive_secs("idle-timeout", self.idle_timeout)?,
            max_conns: self.max_conns,
        })
    }

    /// The protocol with its settings. Its bounds must leave room under `--max-unsent`,
    /// so that a held incomplete request can never stop a connection for good.
    pub fn protocol(&self) -> Result<Protocol, ConfigError> {
        let half = self.max_unsent / 2;
        let invalid = |flag, value: String, why| Err(ConfigError::Invalid { flag, value, why });
        if let (Some(n), false) = (self.reply_size, self.protocol == ProtocolKind::Frame) {
            return invalid(
                "reply-size",
                n.to_string(),
                "only applies with --protocol frame",
            );
        }
        match self.protocol {
            ProtocolKind::Echo => Ok(Protocol::Echo),
            ProtocolKind::Frame => {
                if self.max_frame as usize + frame::HEADER > half {
                    return invalid(
                        "max-frame",
                        self.max_frame.to_string(),
                        "must leave room under --max-unsent: at most half of it, less 4 bytes (raise --max-unsent)",
                    );
                }
                if self.reply_size.is_some_and(|n| n > 16 << 20) {
                    let n = self.reply_size.unwrap_or_default().to_string();
                    return invalid("reply-size", n, "must be at most 16777216 bytes");
                }
                Ok(Protocol::Frame(Arc::new(frame::FrameConfig::new(
                    self.max_frame,
                    self.reply_size,
                    half,
                ))))
            }
            ProtocolKind::Http => {
                if !(256..=half).contains(&self.max_header) {
                    return invalid(
                        "max-header",
                        self.max_header.to_string(),
                        "must be at least 256 bytes and at most half of --max-unsent (raise --max-unsent)",
                    );
                }
                if self.body_size > 16 << 20 {
                    let n = self.body_size.to_string();
                    return invalid("body-size", n, "must be at most 16777216 bytes");
                }
                Ok(Protocol::Http(Arc::new(http::HttpConfig::new(
                    self.body_size,
                    self.max_header,
                    half,
                ))))
            }
        }
    }

    /// `--idle-after-ms`: None for 0 (never park).
    pub fn idle_after_ms(&self) -> Option<u32> {
        Some(self.idle_after_ms.unwrap_or(DEFAULT_IDLE_AFTER_MS)).filter(|&ms| ms > 0)
    }

    pub fn stats_interval(&self) -> Result<Option<Duration>, ConfigError> {
        positive_secs("stats-interval", self.stats_interval)
    }

    /// `--coalesce-us` and `--plain-sends`: uring only; the wait in 1..=1,000,000 µs.
    pub fn check_uring_flags(&self) -> Result<(), ConfigError> {
        let uring = self.backend == Backend::Uring;
        if let Some(n) = self.coalesce_us {
            let why = if !uring {
                "only applies with --backend uring"
            } else if !(1..=1_000_000).contains(&n) {
                "give 1 to 1000000 microseconds (leave it out for no coalescing)"
            } else {
                ""
            };
            if !why.is_empty() {
                return Err(ConfigError::Invalid {
                    flag: "coalesce-us",
                    value: n.to_string(),
                    why,
                });
            }
        }
        if self.ring_slots.is_some() && !uring {
            return Err(ConfigError::Invalid {
                flag: "ring-slots",
                value: self.ring_slots.unwrap_or_default().to_string(),
                why: "only applies with --backend uring",
            });
        }
        if self.start_parked_from.is_some() && !uring {
            return Err(ConfigError::Invalid {
                flag: "start-parked-from",
                value: self.start_parked_from.unwrap_or_default().to_string(),
                why: "only applies with --backend uring",
            });
        }
        if self.idle_after_ms.is_some() && !uring {
            return Err(ConfigError::Invalid {
                flag: "idle-after-ms",
                value: self.idle_after_ms.unwrap_or_default().to_string(),
                why: "only applies with --backend uring (other backends hold no armed recv)",
            });
        }
        if self.plain_sends && !uring {
            return Err(ConfigError::Invalid {
                flag: "plain-sends",
                value: "given".into(),
                why: "only applies with --backend uring",
            });
        }
        Ok(())
    }

    pub fn check_buffers(&self) -> Result<(), ConfigError> {
        let buffers = self.buffers.unwrap_or(DEFAULT_BUFFERS_PER_CPU);
        if !buffers.is_power_of_two() || !(2..=32768).contains(&buffers) {
            return Err(ConfigError::Invalid {
                flag: "buffers",
                value: buffers.to_string(),
                why: "must be a power of two from 2 to 32768",
            });
        }
        if !(64..=1 << 20).contains(&self.buffer_size) {
            return Err(ConfigError::Invalid {
                flag: "buffer-size",
                value: self.buffer_size.to_string(),
                why: "must be between 64 and 1048576 bytes",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn default_buffers_shrink_with_more_loops_than_cpus() {
        let args = Args::parse_from(["c1m-server"]);
        assert_eq!(args.buffers_per_loop(2, 2), 1024);
        assert_eq!(args.buffers_per_loop(4, 2), 512);
        assert_eq!(args.buffers_per_loop(57, 2), 64);
        let explicit = Args::parse_from(["c1m-server", "--buffers", "4096"]);
        assert_eq!(explicit.buffers_per_loop(57, 2), 4096);
    }

    #[test]
    fn uring_flags_are_checked() {
        let ok = Args::parse_from(["c1m-server", "--coalesce-us", "25", "--plain-sends"]);
        assert!(ok.check_uring_flags().is_ok());
        for bad in [
            &["c1m-server", "--coalesce-us", "0"][..],
            &["c1m-server", "--coalesce-us", "1000001"],
            &["c1m-server", "--backend", "epoll", "--coalesce-us", "25"],
            &["c1m-server", "--backend", "tokio", "--plain-sends"],
        ] {
            let err = Args::parse_from(bad).check_uring_flags().unwrap_err();
            assert!(err.to_string().contains("--"), "{err}");
        }
    }
}
