//! `c1m-outside`: the outside programs the kit stands beside and measures with, each as
//! data in and data out (the orchestrator starts them and owns the folders). A leaf: it
//! knows no scenario, case or topology.
//!
//! - [`nginx`]: the reference HTTP server: nginx.conf as data (rendered, unit-tested),
//!   its private folder, its command line;
//! - [`wrk`]: the reference HTTP client: its command line, its output parsed into a run
//!   folder's summary.json;
//! - [`cpu`]: the CPU of a server's whole process group from /proc, sampled, and read off
//!   over a client's measured window (the same for every server under every client);
//! - [`perf`]: `perf record` and `perf script` of a server, cut to a window, folded and
//!   drawn as a flame graph;
//! - [`breakdown`]: where a server's CPU went, from perf's folded stacks.

pub mod breakdown;
pub mod cpu;
pub mod nginx;
pub mod perf;
pub mod wrk;
