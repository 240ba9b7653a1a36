//! Linux plumbing shared by `c1m-server` and `c1m-loadgen`.
//!
//! Everything here is about the machine, not about echoing bytes: which CPUs to use and
//! how to pin to them, how to open a `SO_REUSEPORT` listener, what the file-descriptor
//! limit allows, what `/proc` says about memory, CPU time and kernel tuning, and the
//! small HTTP responder behind `--metrics-listen`.

pub mod bufring;
pub mod cpus;
pub mod limits;
pub mod metrics;
pub mod net;
pub mod pieces;
pub mod procfs;
pub mod quick;
pub mod rng;
pub mod signals;
pub mod sweep;
