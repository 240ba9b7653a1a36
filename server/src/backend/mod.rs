//! The interchangeable I/O backends. Each one runs one event loop on the calling (pinned)
//! thread until a stop is requested; the choice is a plain `match`, nothing dynamic.

use crate::config::{Backend, Limits};
use crate::proto::Protocol;
use crate::stats::{ConnCount, LoopStats};
use std::net::TcpListener;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

pub mod epoll;
mod tokio_common;
pub mod tokio_rt;
pub mod tokio_uring_rt;
pub mod uring;

/// Options only the uring backend reads.
#[derive(Debug, Clone, Copy)]
pub struct UringOptions {
    /// Provided receive buffers in the loop's buffer ring (power of two).
    pub buffers: u32,
    pub buffer_size: u32,
    /// Slots in the ring's fixed-file table: the most connections the loop can hold.
    pub fixed_slots: u32,
    /// Queued SQEs that trigger a submit while a batch of completions is walked.
    pub submit_batch: u32,
    /// Completion queue entries instead of the computed size (tests of CQ overflow).
    pub cq_entries: Option<u32>,
    /// Wait up to this many µs for more completions after the first (kernel min-wait).
    pub coalesce_us: Option<u32>,
    /// Sends that post a completion only when they could not send everything at once
    /// (see `uring::data`); false: every send posts one.
    pub quick_sends: bool,
    /// Replace the recv of a connection quiet for this many ms by a poll (`uring::idle`).
    pub idle_after_ms: Option<u32>,
    /// With `idle_after_ms`: new connections start parked once the server holds this many.
    pub start_parked_from: usize,
}

/// Everything one event loop owns.
pub struct LoopContext {
    pub index: usize,
    pub cpu: usize,
    /// One listener per `--listen` address, all `SO_REUSEPORT`, non-blocking.
    pub listeners: Vec<TcpListener>,
    pub limits: Limits,
    /// What the bytes mean; echo needs no parsing (see [`crate::proto`]).
    pub protocol: Protocol,
    pub conns: Arc<ConnCount>,
    pub stats: Arc<LoopStats>,
    pub uring: UringOptions,
    /// Send `Ok(())` once the loop accepts, or the setup error; exactly once.
    pub ready: SyncSender<anyhow::Result<()>>,
}

impl LoopContext {
    /// Reports the end of setup to the main thread.
    pub fn report_ready(&self, result: anyhow::Result<()>) {
        let _ = self.ready.send(result);
    }
}

/// Runs the event loops of one thread with `backend` until a stop is requested: uring
/// drives every ring of `ctxs` from the thread (`uring::rings`); the other backends take
/// exactly one context per thread. Setup errors go to each `ready`; errors after that are
/// returned.
pub fn run_thread(backend: Backend, mut ctxs: Vec<LoopContext>) -> anyhow::Result<()> {
    if backend == Backend::Uring {
        return uring::run(ctxs);
    }
    if ctxs.len() != 1 {
        for ctx in &ctxs {
            ctx.report_ready(Err(anyhow::anyhow!(
                "the {} backend runs one loop per thread",
                backend.name()
            )));
        }
        return Ok(());
    }
    let ctx = ctxs.remove(0);
    match backend {
        Backend::Uring => uring::run(vec![ctx]),
        Backend::Epoll => epoll::run(ctx),
        Backend::TokioUring => tokio_uring_rt::run(ctx),
        Backend::Tokio => tokio_rt::run(ctx),
    }
}

/// Checks before any thread starts that the backend can work on this kernel, with a
/// message that says what to change if not.
pub fn check_available(backend: Backend) -> anyhow::Result<()> {
    match backend {
        Backend::Uring => uring::check_available(),
        Backend::TokioUring => uring::check_io_uring_basic(),
        Backend::Epoll | Backend::Tokio => Ok(()),
    }
}
