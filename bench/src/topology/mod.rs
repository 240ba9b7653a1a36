//! Topologies: where the server and the load generator run.
//!
//! - [`placement`]: where the server and each loadgen shard run, as data (loopback,
//!   netns, hosts);
//! - [`netns`]: the server in one network namespace, the load generator in K client
//!   namespaces, joined by veth (`--topology netns --clients K`);
//! - [`hosts`]: the server and each loadgen shard on machines of their own, over ssh
//!   (`--topology hosts --server-host H --client-hosts H1,H2`);
//! - [`setup`]: the topology options checked and the placement sized for a run;
//! - [`active`]: the topology of one run, built, described and torn down;
//! - [`case_sysctls`]: a variant's sysctls, set for one case where they live and put back.

pub mod active;
pub mod case_link;
pub mod case_sysctls;
pub mod hosts;
pub mod netns;
pub mod placement;
pub mod setup;
