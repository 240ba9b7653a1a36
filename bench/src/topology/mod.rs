//! Topologies: where the server and the load generator run.
//!
//! - `loopback` (no module: both run in the caller's namespace over 127.0.0.0/8);
//! - [`netns`]: the server in one network namespace, the load generator in K client
//!   namespaces, joined by veth (`--topology netns --clients K`).

pub mod netns;
