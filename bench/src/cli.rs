//! The command line: `c1m-bench run [options]` (what scripts/c1m.sh runs, with the same
//! options) and the hidden `c1m-bench watchdog`.

use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

fn non_empty_path(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("needs a value".into());
    }
    Ok(PathBuf::from(s))
}

#[derive(Debug, Parser)]
#[command(
    name = "c1m-bench",
    version,
    about = "The c1m benchmark: tune the kernel, run every backend through every scenario, compare, restore"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Preflight, tuning, the scenarios, the reports (scripts/c1m.sh runs this).
    /// An option given twice takes its last value.
    #[command(args_override_self = true)]
    Run(Box<RunArgs>),
    /// Cleans up after a run that was SIGKILLed (started by `run` itself).
    #[command(hide = true)]
    Watchdog(WatchdogArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Small and fast: 2 s runs, 100/1000 conns, hold at 5000 connections.
    #[arg(long)]
    pub quick: bool,
    /// Comma list of pingpong,latency,hold,churn,http (http, HTTP/1.1 with nginx and wrk
    /// as outside references, is opt-in).
    #[arg(long, default_value = "pingpong,latency,hold,churn", value_parser = NonEmptyStringValueParser::new())]
    pub scenarios: String,
    /// Comma list of uring,epoll,tokio-uring,tokio,go (go, the Go reference server, is
    /// opt-in: it needs Go to build), and uring-coalesce10, -25, -50: uring with
    /// --coalesce-us 10, 25 or 50, and uring-plain-sends: uring with --plain-sends,
    /// each a backend of its own in the tables. nginx may be named too: the http scenario always
    /// runs it, and `--backends nginx --scenarios http` runs it alone.
    #[arg(long, default_value = "uring,epoll,tokio-uring,tokio", value_parser = NonEmptyStringValueParser::new())]
    pub backends: String,
    /// A TOML file of variants instead of --backends: each a name, a backend, extra
    /// server flags and sysctls set for its cases only (see the README, "Variants").
    #[arg(long, conflicts_with = "backends", allow_hyphen_values = true, value_parser = non_empty_path)]
    pub variants: Option<PathBuf>,
    /// Sweep one sysctl (or `link`, on netns) over values, one variant per backend and
    /// value, interleaved in rounds: `net.core.somaxconn=128|4096`; a value may hold
    /// blanks (`net.ipv4.tcp_rmem=4096 4096 4096|4096 131072 6291456`).
    #[arg(long, conflicts_with_all = ["variants", "ablate", "profiles"], allow_hyphen_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub sweep: Option<String>,
    /// Ablation of a profile (default: --profile's): the profile, the profile with each
    /// key put back to this machine's original value, and the untuned machine, per
    /// backend; nothing is tuned run-wide (see the README, "Experiments").
    #[arg(long, num_args = 0..=1, default_missing_value = "", conflicts_with_all = ["variants", "profiles", "no_tune"])]
    pub ablate: Option<String>,
    /// Profiles side by side, one variant per backend and profile: A.conf,B.conf.
    #[arg(long, conflicts_with_all = ["variants", "no_tune"], value_parser = NonEmptyStringValueParser::new())]
    pub profiles: Option<String>,
    /// A committed experiment (TOML: scenarios, backends, rounds, duration, conns, rate,
    /// and a sweep, ablate, profiles or [[variant]] tables), see experiments/README.md.
    #[arg(long, conflicts_with_all = ["variants", "backends", "scenarios", "sweep", "ablate", "profiles"], value_parser = non_empty_path)]
    pub experiment: Option<PathBuf>,
    /// Connections for the hold scenario (default: as many as fit, at most 1,000,000).
    #[arg(long, allow_hyphen_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub conns: Option<String>,
    /// Measured seconds per run (default 5; --quick 2).
    #[arg(long, allow_hyphen_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub duration: Option<String>,
    /// Open-loop rate of the latency scenario, msgs/s.
    #[arg(long, allow_hyphen_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub rate: Option<String>,
    /// Parent folder of the scenario folders (default: results/).
    #[arg(long, allow_hyphen_values = true, value_parser = non_empty_path)]
    pub out: Option<PathBuf>,
    /// Leave sysctls alone.
    #[arg(long)]
    pub no_tune: bool,
    /// Sysctl profile to apply (default: sysctl/c1m.conf).
    #[arg(long, allow_hyphen_values = true, value_parser = non_empty_path)]
    pub profile: Option<PathBuf>,
    /// One more sysctl KEY=VALUE to apply after the profile (repeatable).
    #[arg(long = "set", allow_hyphen_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub sets: Vec<String>,
    /// Interleaved rounds of every scenario (default: 3 for pingpong and latency, 1 for
    /// hold and churn; --quick: 1).
    #[arg(long, allow_hyphen_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub rounds: Option<String>,
    /// Seed of the shuffled run order of the rounds (default: from the clock; recorded in
    /// each run.md, so an order can be repeated).
    #[arg(long, allow_hyphen_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub seed: Option<String>,
    /// Closed loop (pingpong): may the loadgen wake once per batch of echoes (auto, its
    /// default) or must it wake for every echo (off)?
    #[arg(long, value_parser = ["off", "auto"])]
    pub batch_waits: Option<String>,
    /// Open loop (latency): a Poisson process (poisson, the default; seeded by the run's
    /// --seed) or evenly spaced sends (uniform).
    #[arg(long, value_parser = ["uniform", "poisson"])]
    pub arrivals: Option<String>,
    /// What the echo scenarios speak: echo (raw bytes back, the default), frame
    /// (length-prefixed requests and answers) or http (HTTP/1.1 keep-alive). The http
    /// scenario always speaks http.
    #[arg(long, value_parser = ["echo", "frame", "http"])]
    pub protocol: Option<String>,
    /// http: response body bytes of every server (default 64, at most 2048).
    #[arg(long, allow_hyphen_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub body_size: Option<String>,
    /// Appended to every run label.
    #[arg(long, allow_hyphen_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub tag: Option<String>,
    /// Accepted and ignored: building is scripts/c1m.sh's job.
    #[arg(long, hide = true)]
    pub no_build: bool,
    /// Print the preflight and the plan, run nothing (the kernel is not touched).
    #[arg(long)]
    pub dry_run: bool,
    /// Where server and loadgen run: loopback (this namespace), netns (the server
    /// and each loadgen shard in network namespaces of their own, joined by veth) or
    /// hosts (the server and each loadgen shard on machines of their own, over ssh).
    #[arg(long, default_value = "loopback", value_parser = NonEmptyStringValueParser::new())]
    pub topology: String,
    /// netns: client namespaces, one loadgen shard each (default 1; more go through a
    /// bridge namespace).
    #[arg(long, allow_hyphen_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub clients: Option<String>,
    /// netns: MTU of every veth (68-65535; default: the kernel's).
    #[arg(long, allow_hyphen_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub mtu: Option<String>,
    /// netns: generic receive offload on every veth, on or off (needs ethtool).
    #[arg(long, value_parser = ["on", "off"])]
    pub gro: Option<String>,
    /// netns: TCP segmentation offload on every veth, on or off (needs ethtool).
    #[arg(long, value_parser = ["on", "off"])]
    pub tso: Option<String>,
    /// netns: shape the client side of each veth with tc netem, e.g.
    /// `delay=50ms,jitter=5ms,loss=0.1%,rate=1gbit` (delay is the added round trip; loss
    /// drops what the clients send). Needs a kernel with netem.
    #[arg(long, allow_hyphen_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub link: Option<String>,
    /// hosts: `[user@]host` of the server's machine (ssh with your keys).
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub server_host: Option<String>,
    /// hosts: comma list of `[user@]host`, one loadgen shard each.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub client_hosts: Option<String>,
    /// hosts: source addresses of one client host (a range or a list; repeat once per
    /// client host, in order; default: the host's own address).
    #[arg(long, allow_hyphen_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub client_sources: Vec<String>,
    /// A pass/fail check after the run (repeatable), e.g. `p99_us < 2000`,
    /// `uring/epoll cpu_us_per_msg <= 0.95 @latency-c1000-r50`, `all: errors == 0`
    /// (README "Using the kit in CI"); exit status 4 when one fails.
    #[arg(long = "threshold", value_name = "EXPR", allow_hyphen_values = true)]
    pub thresholds: Vec<String>,
    /// After the run, write every case's medians for a benchmark tracker (repeatable):
    /// bencher, github-benchmark or github-benchmark-bigger, then the file.
    #[arg(long = "export", num_args = 2, value_names = ["FORMAT", "FILE"])]
    pub exports: Vec<String>,
    /// Every c1m-server process and loadgen shard serves Prometheus text at a free port
    /// of its site's address (`--metrics-listen ADDR:0`); the scrape addresses are logged
    /// and kept in each case's metrics.txt and the scenario's run.md.
    #[arg(long)]
    pub metrics: bool,
    /// A CPU profile of this machine's server process(es) per case (needs perf): the
    /// loadgen's measured window as perf.folded, flamegraph.svg and profile.json in the
    /// case folder, the breakdown table in compare.md. (Not --profile: that is the
    /// sysctl profile.)
    #[arg(long)]
    pub perf: bool,
    /// hosts: extra ssh options, split on blanks (repeatable), e.g. "-p 2222 -i KEY";
    /// also from $C1M_SSH_OPTIONS.
    #[arg(long, allow_hyphen_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub ssh_option: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct WatchdogArgs {
    /// The orchestrator to watch.
    #[arg(long)]
    pub pid: i32,
    /// Its private run folder: `pgids` lists its process groups, `tuned` exists while
    /// sysctls are applied; removed by the orchestrator's own cleanup.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// The sysctl state file.
    #[arg(long)]
    pub state: PathBuf,
    /// The scripts/ folder (sysctl-restore.sh).
    #[arg(long)]
    pub scripts: PathBuf,
    /// The inherited lock fd (held open until the watchdog is done).
    #[arg(long)]
    pub lock_fd: i32,
    /// The run's sysctl profile, passed on to the restore.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// The `--set` keys of the run, passed on to the restore.
    #[arg(long = "key")]
    pub keys: Vec<String>,
    /// The netns topology's record file (in the run folder): its namespaces are
    /// deleted once the run's processes are killed.
    #[arg(long)]
    pub netns_record: Option<PathBuf>,
}
