//! `c1m-loadgen`: opens many connections to a server (echo, frame or http), drives a
//! workload, verifies every response and records latency with HdrHistogram; compares and
//! merges run folders; [`metrics`] serves a run's counters to Prometheus.

pub mod cli;
pub mod engine;
pub mod metrics;
pub mod report;
