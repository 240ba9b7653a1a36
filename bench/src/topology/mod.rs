//! Topologies: where the server and the load generator run. The sites, namespaces and
//! hosts are the `c1m-topology` crate (re-exported here); what stays is what reads the
//! orchestrator's options and variants.
//!
//! - [`setup`]: the topology options checked and the placement sized for a run;
//! - [`case_link`]: a variant's link shaping, set for one case and put back.

pub use c1m_topology::{active, case_sysctls, cpus, hosts, netns, placement};

pub mod case_link;
pub mod setup;

#[cfg(test)]
mod loopback_tests;
