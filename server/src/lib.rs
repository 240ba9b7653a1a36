//! `c1m-server`: a thread-per-core TCP server (echo, frames or HTTP) whose I/O backend can be swapped, so
//! that differences in the numbers are differences of the backend alone.
//!
//! [`server::run`] binds one `SO_REUSEPORT` listener per event loop, starts the loops on
//! pinned threads, reports stats and shuts down on SIGINT/SIGTERM. Each loop runs one
//! backend from [`backend`]; all of them drive the same per-connection state machine in
//! [`conn`]. [`metrics`] serves the loops' counters to Prometheus (`--metrics-listen`).

pub mod backend;
pub mod capacity;
pub mod config;
pub mod conn;
pub mod metrics;
pub mod proto;
pub mod refuse;
pub mod server;
pub mod stats;
