//! Run folders (summary.json, latency.hgrm, connect.hgrm, latency.hlog, connect.hlog) and
//! the reports made from them: merging several into one, comparing several side by side.
//!
//! Code map:
//! - [`rundir`]: [`RunRecord`], writing and reading a run folder, [`latency_summary`];
//! - [`hgrm`]: the classic percentile distribution text (Java's `outputPercentileDistribution`);
//! - [`hlog`]: HdrHistogram interval logs (V2 + DEFLATE, base64);
//! - [`merge`]: `c1m-loadgen merge`, [`merge_records`];
//! - [`compare`]: `c1m-loadgen compare`, the markdown table;
//! - [`rounds`]: compare's table when labels have several rounds (folders);
//! - [`stats`]: median, min-max, paired ratios of rounds;
//! - [`plot`]: the SVG of percentile distributions;
//! - [`summary`]: the `summary.json` types;
//! - [`bound`]: whether the client or the server bound a run, from per-CPU busy time.
//!
//! Every latency histogram holds nanoseconds ([`new_histogram`]); reports print µs.

pub mod bound;
pub mod compare;
pub mod hgrm;
pub mod hlog;
pub mod merge;
pub mod plot;
pub mod rounds;
pub mod rundir;
pub mod stats;
pub mod summary;

pub use merge::merge_records;
pub use rundir::{
    add_into, latency_summary, new_histogram, read_run_dir, record_ns, write_run_dir, Interval,
    RunRecord,
};
pub use summary::{ConnectionLosses, Environment, LatencySummary, Summary, Workload};
