//! `c1m-bench`: the c1m orchestrator. It checks the machine (preflight), tunes the
//! kernel and puts it back, sizes every scenario for this machine (plans as data), runs
//! `c1m-server` and `c1m-loadgen` through the scenarios, and writes the result folders,
//! their reports and the headline.
//!
//! Code map:
//! - [`cli`]: the command line (`run`, and the hidden `watchdog`); [`options`]: checked;
//! - [`facts`]: what the plan needs from the machine, read once (the only I/O before it);
//! - [`plan`]: the plan as a pure function of options and facts (`plan::plan`), scale
//!   rules, limits; [`plantext`]: the plan as printed, the time estimate;
//! - [`free`]: free server ports and a free results-folder stamp, right now;
//! - [`preflight`]: machine facts, io_uring check, ulimits;
//! - [`tools`]: the outside programs (ip, tc, ethtool, nginx, wrk), found one way;
//! - [`statedir`]: the private state directory, its lock, the sysctl state file;
//! - [`tuning`]: which settings a run makes (profile, `--set`, root or not);
//! - [`sysctl`]: the one place that applies and restores sysctls (today through
//!   `scripts/sysctl-apply.sh` and `scripts/sysctl-restore.sh`);
//! - [`procs`]: children in their own sessions, tracked and stopped;
//! - [`interrupt`]: SIGINT/SIGTERM/SIGHUP as an error that unwinds into cleanup;
//! - [`runner`]: what every case runner shares (the run's context, waits, the hold
//!   sampler, command and log helpers); [`case`]: a case as typed data (server, client,
//!   load, point, round); [`runcase`]: the one case runner, every scenario; [`server`]:
//!   any server (c1m-server processes, nginx); [`client`]: any client (loadgen shards,
//!   wrk); [`shards`]: the loadgen shards (one per client of the topology), merged;
//!   [`scenarios`]: the echo scenarios and the one rounds loop; [`http`]: the http
//!   scenario (c1m backends and nginx, c1m-loadgen and wrk); [`wire`]: the `--protocol`
//!   of the echo scenarios;
//! - [`observe`]: `--metrics` (scrape addresses of every server and loadgen shard) and
//!   `--perf` (a CPU profile of the server per case: flame graph, breakdown);
//! - [`rounds`]: interleaved rounds (shuffled orders), equal-load rates;
//! - [`experiments`]: variants made by `--sweep`, `--ablate`, `--profiles`,
//!   `--experiment`; the kernel counters of a case (kernel.json); the experiment table;
//! - [`report`]: server.json merging, hold.json, the hold/churn tables, the headline;
//! - [`owner`]: result folders handed to the sudo user;
//! - [`topology`]: where server and load run: the placement as data (loopback, netns,
//!   hosts), the namespaces joined by veth, the hosts over ssh, the run's topology and
//!   its record;
//! - [`session`]: a whole run and its cleanup; [`headline`]: its headline file;
//!   [`revision`]: the git revision and the diff of a dirty tree; [`watchdog`]: cleanup
//!   after a SIGKILL.

pub mod case;
pub mod cli;
pub mod client;
pub mod experiments;
pub mod facts;
pub mod free;
pub mod headline;
pub mod http;
pub mod interrupt;
pub mod observe;
pub mod options;
pub mod owner;
pub mod plan;
pub mod plantext;
pub mod preflight;
pub mod procs;
pub mod report;
pub mod revision;
pub mod rounds;
pub mod runcase;
pub mod runner;
pub mod safe_fs;
pub mod scenarios;
pub mod server;
pub mod session;
pub mod shards;
pub mod statedir;
pub mod sysctl;
pub mod timefmt;
pub mod tools;
pub mod topology;
pub mod tuning;
pub mod variants;
pub mod watchdog;
pub mod wire;

/// `eprint!` that ignores a closed stderr (`c1m.sh 2>&1 | head`) instead of panicking:
/// the run goes on and restores what it tuned.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// `eprintln!` that ignores a closed stderr, as [`say!`].
#[macro_export]
macro_rules! sayln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// `println!` that ignores a closed stdout (`c1m.sh | head`), as [`say!`].
#[macro_export]
macro_rules! sayln_out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// A progress line on stderr, as every c1m tool prints them.
pub fn log(msg: impl std::fmt::Display) {
    sayln!("c1m: {msg}");
}

/// A warning line on stderr.
pub fn warn(msg: impl std::fmt::Display) {
    sayln!("c1m: warning: {msg}");
}

/// A command-line mistake: exit status 2 (like an unknown option).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
