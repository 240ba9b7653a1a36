//! Run folders (summary.json, latency.hgrm, connect.hgrm, latency.hlog, connect.hlog) and
//! the reports made from them: merging several into one, comparing several side by side.
//!
//! Code map:
//! - [`rundir`]: [`RunRecord`], writing and reading a run folder, [`latency_summary`];
//! - [`hgrm`]: the classic percentile distribution text (Java's `outputPercentileDistribution`);
//! - [`hlog`]: HdrHistogram interval logs (V2 + DEFLATE, base64), [`new_histogram`];
//! - [`merge`]: [`merge::merge`] of run folders (`c1m-loadgen merge`), [`merge_records`];
//! - [`model`]: a run folder read for comparing, server.json, the one definition of
//!   server CPU per message;
//! - [`compare`]: [`compare::compare`] of run folders (`c1m-loadgen compare`), the markdown table;
//! - [`rounds`]: compare's table when labels have several rounds (folders);
//! - [`stats`]: the one statistics module: median, min-max, groups of rounds, paired
//!   ratios, the ratio cell, the disagreement warning;
//! - [`fmt`]: the one number formatter, the markdown table writers;
//! - [`plot`]: the SVG of percentile distributions;
//! - [`summary`]: the `summary.json` types;
//! - [`bound`]: whether the client or the server bound a run, from per-CPU busy time;
//! - [`casedir`]: the one reader of the orchestrator's run folders (`case.json`,
//!   summary.json, server.json, hold.json), shared with `c1m-bench`;
//! - [`gate`]: thresholds (`--threshold`), baselines (`--baseline`) and exports
//!   (`--export`) over result folders, for `c1m-loadgen compare` and the orchestrator.
//!
//! Every latency histogram holds nanoseconds ([`new_histogram`]); reports print µs.

pub mod bound;
pub mod casedir;
pub mod compare;
pub mod fmt;
pub mod gate;
pub mod hgrm;
pub mod hlog;
pub mod merge;
pub mod model;
pub mod plot;
pub mod rounds;
pub mod rundir;
pub mod serverfiles;
pub mod stats;
pub mod summary;

pub use hlog::{add_into, new_histogram, record_ns};
pub use merge::merge_records;
pub use rundir::{latency_summary, read_run_dir, read_summary, write_run_dir, Interval, RunRecord};
pub use summary::{ConnectionLosses, Environment, LatencySummary, Summary, Workload};
