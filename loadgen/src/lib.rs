//! `c1m-loadgen`: opens many connections to an echo server, drives a workload, verifies
//! every echo and records latency with HdrHistogram; compares and merges run folders.

pub mod cli;
pub mod engine;
pub mod report;
