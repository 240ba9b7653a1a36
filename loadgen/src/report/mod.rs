//! Run folders: summary.json, latency.hgrm, latency.hlog; merging and comparing them.

pub mod compare;
pub mod merge;
pub mod summary;

pub use summary::{Environment, LatencySummary, Summary, Workload};
