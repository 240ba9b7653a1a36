//! Looking inside a case while it runs: `--metrics` (the Prometheus endpoints of every
//! c1m-server process and loadgen shard, their scrape addresses recorded) and `--perf`
//! (a CPU profile of this machine's server processes over the loadgen's measured
//! window: folded stacks, a flame graph and where the CPU went).

pub use c1m_outside::breakdown;
pub mod metrics;
pub mod perf;

/// What a run watches, from `--metrics` and `--perf`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observe {
    pub metrics: bool,
    pub perf: bool,
}
