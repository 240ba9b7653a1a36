//! `c1m-bench`: the c1m orchestrator. It checks the machine (preflight), tunes the
//! kernel and puts it back, sizes every scenario for this machine (plans as data), runs
//! `c1m-server` and `c1m-loadgen` through the scenarios, and writes the result folders,
//! their reports and the headline.
//!
//! It stands on three crates of its own, re-exported under the names used here:
//! `c1m-machine` (the root-run leaf: [`safe_fs`], [`statedir`], [`sysctl`], [`procs`],
//! [`interrupt`], [`tools`], [`owner`], [`preflight`], [`revision`], [`timefmt`], the
//! printing macros), `c1m-topology` ([`topology`]: the sites as data, the namespaces, the
//! hosts over ssh) and `c1m-outside` (nginx, wrk, perf and a process group's CPU, under
//! [`http`] and [`observe`]).
//!
//! Code map:
//! - [`cli`]: the command line (`run`, and the hidden `watchdog`); [`options`]: checked;
//! - [`facts`]: what the plan needs from the machine, read once (the only I/O before it);
//! - [`plan`]: the plan as a pure function of options and facts (`plan::plan`), scale
//!   rules, limits; [`plantext`]: the plan as printed, the time estimate;
//! - [`free`]: free server ports and a free results-folder stamp, right now;
//! - [`tuning`]: which settings a run makes (profile, `--set`, root or not);
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
//! - [`topology`]: the topology options checked and sized for a run, a variant's link
//!   per case; the rest from `c1m-topology`;
//! - [`session`]: a whole run and its cleanup; [`headline`]: its headline file;
//!   [`watchdog`]: cleanup after a SIGKILL.

pub mod case;
pub mod cli;
pub mod client;
pub mod experiments;
pub mod facts;
pub mod free;
pub mod headline;
pub mod http;
pub mod observe;
pub mod options;
pub mod plan;
pub mod plantext;
pub mod report;
pub mod rounds;
pub mod runcase;
pub mod runner;
pub mod scenarios;
pub mod server;
pub mod session;
pub mod shards;
pub mod topology;
pub mod tuning;
pub mod variants;
pub mod watchdog;
pub mod wire;

// The machine leaf lives in its own crate; re-exported so that `crate::sysctl` and the
// printing macros read the same everywhere in the orchestrator.
pub use c1m_machine::{
    interrupt, log, owner, preflight, procs, revision, safe_fs, say, sayln, sayln_out, statedir,
    sysctl, timefmt, tools, warn,
};

/// A command-line mistake: exit status 2 (like an unknown option).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
