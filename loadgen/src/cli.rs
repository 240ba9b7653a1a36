//! Command line of `c1m-loadgen` (the contract scripts and tests rely on).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Load generator for c1m: many connections, verified echoes, honest latency.
#[derive(Debug, Parser)]
#[command(name = "c1m-loadgen", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open connections to a server (echo, frame or http), drive a workload, write a run
    /// folder.
    Run(Box<RunArgs>),
    /// Side-by-side markdown table (and optional SVG plot) of several run folders.
    Compare(CompareArgs),
    /// Merge run folders of several processes or hosts into one.
    Merge(MergeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Server address; repeat for several (connections are spread round-robin).
    #[arg(long = "target", value_name = "ADDR:PORT", required = true)]
    pub targets: Vec<SocketAddr>,

    /// Concurrent connections in all (across --procs and threads).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub connections: usize,

    /// Measured seconds, after warm-up.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub duration: f64,

    /// Seconds of load before measuring (kept in the interval log, left out of the totals).
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub warmup: f64,

    /// What the connections speak: raw echo, length-prefixed frames, or HTTP/1.1.
    #[arg(long, value_enum, default_value_t = Protocol::Echo)]
    pub protocol: Protocol,

    /// Message size in bytes, at least 16 (sequence number and send timestamp); default
    /// 64. frame: the payload size (the request is 4 + BYTES on the wire); not with http.
    #[arg(long, value_name = "BYTES")]
    pub size: Option<usize>,

    /// frame: the server answers every frame with BYTES bytes of the `i % 251` pattern
    /// (default: the request payload echoed). The server needs the same flag.
    #[arg(long, value_name = "BYTES")]
    pub reply_size: Option<usize>,

    /// http: the body length every response must have (default 16); the server needs the
    /// same flag.
    #[arg(long, value_name = "BYTES")]
    pub body_size: Option<usize>,

    /// CPUs for the loadgen's threads, one pinned thread each (default: all online).
    #[arg(long, value_name = "LIST")]
    pub cpus: Option<String>,

    /// CPUs the server runs on, when on this machine: the summary then says whether the
    /// client or the server was saturated (`bound`), from per-CPU busy time.
    #[arg(long, value_name = "LIST")]
    pub server_cpus: Option<String>,

    /// Source addresses: a range `127.0.0.2-127.0.0.40` or a list `a,b,c`
    /// (each reaches about 64k connections per target).
    #[arg(long, value_name = "RANGE|LIST")]
    pub source_ips: Option<String>,

    /// Connection attempts per second while ramping up (default: as fast as possible).
    #[arg(long, value_name = "N")]
    pub connect_rate: Option<f64>,

    /// Worker processes; their results are merged into --out.
    #[arg(long, value_name = "P", default_value_t = 1)]
    pub procs: usize,

    /// Name for this run in reports.
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,

    /// Run folder to write (summary.json, latency.hgrm, latency.hlog).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Closed loop: requests in flight per connection.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub pipeline: usize,

    /// Open loop at this many messages per second in all; latency from the intended send time.
    #[arg(long, value_name = "MSGS/S", conflicts_with_all = ["heartbeat", "churn"])]
    pub rate: Option<f64>,

    /// Hold the connections; each sends one message every SECS, spread evenly.
    #[arg(long, value_name = "SECS", conflicts_with_all = ["rate", "churn"])]
    pub heartbeat: Option<f64>,

    /// After a connection with no echo outstanding has been quiet this long, replace its
    /// armed recv by a poll for input, which holds less kernel memory; the echo of its
    /// next message fires the poll and a one-shot recv reads it (README "Idle
    /// connections"). Heartbeat connections start parked. 0: keep the recv armed.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub idle_after_ms: u32,

    /// Connect, one exchange, close; again.
    #[arg(long, conflicts_with_all = ["rate", "heartbeat"])]
    pub churn: bool,

    /// With --rate: how send times are spaced (poisson: exponential gaps, seeded).
    #[arg(long, value_enum, default_value_t = Arrivals::Uniform, requires = "rate")]
    pub arrivals: Arrivals,

    /// Seed of the Poisson arrivals (the same seed repeats the same schedule).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// Wake once per batch of echoes when latency is high (auto), or once per echo (off):
    /// off shows how much of a server's advantage comes from batched arrivals.
    #[arg(long, value_enum, default_value_t = BatchWaits::Auto)]
    pub batch_waits: BatchWaits,

    /// Round number of this run in an interleaved series (recorded in summary.json;
    /// `compare` pairs rounds by it).
    #[arg(long, value_name = "N")]
    pub round: Option<u64>,

    /// Serve the run's counters and latency histogram as Prometheus text at
    /// http://ADDR/metrics (off by default; port 0 picks a free one, printed on stderr as
    /// `metrics: http://ADDR/metrics`). Not with --procs > 1.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,

    /// With --metrics-listen: after the run, keep serving the final values this long (so
    /// the last scrape sees the end of the run); SIGINT/SIGTERM ends it sooner.
    #[arg(long, value_name = "SECS")]
    pub metrics_linger: Option<f64>,

    /// Worker process index (set by the parent when --procs > 1).
    #[arg(long, hide = true)]
    pub worker: Option<usize>,
}

/// The protocol on the wire (see the wire contract in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Protocol {
    /// Raw bytes back: the pure I/O measure.
    #[default]
    Echo,
    /// `[u32 big-endian length][payload]`, one response frame per request frame.
    Frame,
    /// HTTP/1.1 keep-alive GETs; every response a 200 with a fixed body.
    Http,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Echo => "echo",
            Protocol::Frame => "frame",
            Protocol::Http => "http",
        }
    }
}

/// How open-loop send times are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Arrivals {
    /// Evenly spaced: one message every 1/rate seconds.
    #[default]
    Uniform,
    /// A Poisson process: exponential gaps with mean 1/rate (seeded, reproducible).
    Poisson,
}

impl Arrivals {
    pub fn name(self) -> &'static str {
        match self {
            Arrivals::Uniform => "uniform",
            Arrivals::Poisson => "poisson",
        }
    }
}

/// Whether the closed loop may wait for several echoes per wakeup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum BatchWaits {
    /// Off: wake for every echo.
    Off,
    /// Batch when latency is high enough that it costs at most 1% of the median.
    #[default]
    Auto,
}

impl BatchWaits {
    pub fn name(self) -> &'static str {
        match self {
            BatchWaits::Off => "off",
            BatchWaits::Auto => "auto",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Run folders; ratios are against the first label. Folders with the same label
    /// are rounds of one label: one row each, median (min-max) over the rounds.
    #[arg(required = true, num_args = 1.., value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Write the markdown table here as well as to stdout.
    #[arg(long, value_name = "FILE.md")]
    pub out: Option<PathBuf>,
    /// Draw all runs' percentile distributions into one SVG.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// A pass/fail check (repeatable), e.g. `p99_us < 2000`, `uring/epoll cpu_us_per_msg
    /// <= 0.95 @latency-c1000-r50`, `all: errors == 0`: a ✓/✗ line each; exit status 4
    /// when one fails. DIRs may then be scenario folders or a run's --out folder too.
    #[arg(long = "threshold", value_name = "EXPR", allow_hyphen_values = true)]
    pub thresholds: Vec<String>,
    /// The baseline result folder (OLD): DIR... (NEW) are compared with its same cases,
    /// NEW/OLD per metric; a threshold may say `cpu_us_per_msg <= 1.05x baseline`.
    #[arg(long, value_name = "OLD")]
    pub baseline: Option<PathBuf>,
    /// Write every case's medians for a benchmark tracker (repeatable): FORMAT is
    /// bencher, github-benchmark (customSmallerIsBetter) or github-benchmark-bigger.
    #[arg(long = "export", num_args = 2, value_names = ["FORMAT", "FILE"])]
    pub exports: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// Run folders to merge.
    #[arg(required = true, num_args = 1.., value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Merged run folder to write.
    #[arg(long, value_name = "DIR", required = true)]
    pub out: PathBuf,
}

/// `c1m-loadgen run --target 127.0.0.1:7000` plus `extra`, parsed: for unit tests.
#[cfg(test)]
pub(crate) fn test_run_args(extra: &[&str]) -> RunArgs {
    let mut argv = vec!["c1m-loadgen", "run", "--target", "127.0.0.1:7000"];
    argv.extend_from_slice(extra);
    match Cli::parse_from(argv).command {
        Command::Run(a) => *a,
        _ => unreachable!("a run command line"),
    }
}
