//! Topologies: where the server and the load generator run.
//!
//! - [`placement`]: where the server and each loadgen shard run, as data (loopback,
//!   netns; the shape a `hosts` topology will fill in too);
//! - [`netns`]: the server in one network namespace, the load generator in K client
//!   namespaces, joined by veth (`--topology netns --clients K`);
//! - [`setup`]: the topology options checked and the placement sized for a run;
//! - [`active`]: the topology of one run, built, described and torn down.

pub mod active;
pub mod netns;
pub mod placement;
pub mod setup;
