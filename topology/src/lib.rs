//! `c1m-topology`: where the server and the load generator run, and how: the sites as
//! data, the network namespaces, the hosts over ssh. It knows no scenario and no plan: the
//! orchestrator hands it loads, argvs and folders.
//!
//! - [`placement`]: where the server and each loadgen shard run, as data (loopback,
//!   netns, hosts);
//! - [`netns`]: the server in one network namespace, the load generator in K client
//!   namespaces, joined by veth (`--topology netns --clients K`);
//! - [`hosts`]: the server and each loadgen shard on machines of their own, over ssh
//!   (`--topology hosts --server-host H --client-hosts H1,H2`);
//! - [`active`]: the topology of one run, built, described and torn down;
//! - [`case_sysctls`]: a variant's sysctls, set for one case where they live and put back;
//! - [`cpus`]: which CPUs the server and the load generator get.

pub mod active;
pub mod case_sysctls;
pub mod cpus;
pub mod hosts;
pub mod netns;
pub mod placement;

// How every c1m tool prints, and the machine leaf, under the names the modules use.
pub(crate) use c1m_machine::{interrupt, log, safe_fs, say, sayln, sysctl, tools, warn};
