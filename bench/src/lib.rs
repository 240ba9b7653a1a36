//! `c1m-bench`: the c1m orchestrator.
//!
//! - [`topology`]: where the server and the load run (network namespaces joined by veth).

pub mod topology;
