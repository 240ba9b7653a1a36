//! Several rings on one thread: one ring's fixed-file table holds at most RLIMIT_NOFILE
//! connections, so a thread that must hold more drives several rings, and the server
//! stays one thread per CPU at any connection count.
//!
//! The thread sleeps in the first ring only. Every other ring registers an eventfd, which
//! the kernel signals when that ring posts a completion and, on a DEFER_TASKRUN ring, when
//! completion work is queued for it while none was pending; the first ring holds a
//! multishot poll on each of those eventfds, so a completion there wakes the first ring.
//! The eventfds are never read: every signal wakes the poll again. A woken ring is
//! stepped: an enter that runs its deferred work without sleeping, its completions
//! handled, and another such enter for what that queued. The kernel runs a bounded number
//! of deferred items per enter and then keeps the rest without signalling again, so the
//! TASKRUN flag (set up for shared rings) says whether to step a ring again before the
//! thread sleeps. Rings are also stepped when one of their sweeps is due.

use super::tag::{pack, Op};
use super::{UringLoop, STOP_DRAIN};
use crate::backend::LoopContext;
use anyhow::Context;
use c1m_platform::signals;
use io_uring::opcode;
use io_uring::types::Fd;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, Ordering};
use std::time::Instant;

/// Steps of one ring before the thread turns to the others (the rest waits for the next
/// pass, which does not sleep).
const STEP_ROUNDS: usize = 4;

/// Runs the loops of `ctxs` (one ring each) on the calling thread until a stop is
/// requested. Setup errors go to each context's `ready`; errors after that are returned.
pub fn run(ctxs: Vec<LoopContext>) -> anyhow::Result<()> {
    let shared = ctxs.len() > 1;
    let setup = ctxs
        .iter()
        .map(|ctx| UringLoop::new(ctx, shared))
        .collect::<anyhow::Result<Vec<_>>>()
        .and_then(|mut loops| wire(&mut loops).map(|evfds| (loops, evfds)));
    let (mut loops, evfds) = match setup {
        Ok(set) => set,
        Err(e) => {
            // Every context reports exactly once.
            for ctx in &ctxs {
                ctx.report_ready(Err(anyhow::anyhow!("{e:#}")));
            }
            return Ok(());
        }
    };
    for ctx in &ctxs {
        ctx.report_ready(Ok(()));
    }
    let raw: Vec<i32> = evfds.iter().map(|f| f.as_raw_fd()).collect();
    let result = match loops.as_mut_slice() {
        [lp] => lp.serve(),
        _ => serve_shared(&mut loops, &raw),
    };
    // Rings drop (unregistering their eventfds) before the eventfds close.
    drop(loops);
    drop(evfds);
    result
}

/// Gives every ring after the first an eventfd, polled from the first ring.
fn wire(loops: &mut [UringLoop]) -> anyhow::Result<Vec<OwnedFd>> {
    let mut evfds = Vec::new();
    for i in 1..loops.len() {
        let efd = eventfd()?;
        loops[i]
            .ring
            .submitter()
            .register_eventfd(efd.as_raw_fd())
            .map_err(|e| anyhow::anyhow!("registering an eventfd with io_uring: {e}"))?;
        loops[0].arm_ring_poll(i as u32, efd.as_raw_fd());
        evfds.push(efd);
    }
    Ok(evfds)
}

fn eventfd() -> anyhow::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers; the result is checked before use.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("creating an eventfd");
    }
    // SAFETY: fd is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The loop of a thread with several rings (see the module comment).
/// `evfds[i - 1]` is the eventfd of ring `i`.
fn serve_shared(loops: &mut [UringLoop], evfds: &[i32]) -> anyhow::Result<()> {
    let n = loops.len();
    let mut ready = vec![true; n];
    while !signals::stop_requested() {
        if ready[1..].iter().any(|&r| r) {
            loops[0].enter_nowait()?;
        } else {
            let due = loops.iter().map(|lp| lp.sweeps.next()).min();
            loops[0].wait_until(due.unwrap_or_else(Instant::now))?;
        }
        loops[0].handle();
        for (i, more) in std::mem::take(&mut loops[0].ring_events) {
            let i = i as usize;
            if let Some(r) = ready.get_mut(i) {
                *r = true;
            }
            if !more {
                // The poll ended (an overflowing CQ ends multishots): arm it again.
                loops[0].arm_ring_poll(i as u32, evfds[i - 1]);
            }
        }
        let now = Instant::now();
        for i in 1..n {
            if ready[i] || now >= loops[i].sweeps.next() {
                ready[i] = loops[i].step()?;
            }
        }
    }
    // Every ring closes its connections at once; then all get one drain deadline.
    for lp in loops.iter_mut() {
        lp.begin_stop();
    }
    let deadline = Instant::now() + STOP_DRAIN;
    let mut first_error = None;
    for lp in loops.iter_mut() {
        if let Err(e) = lp.finish_stop(deadline) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

impl UringLoop {
    /// Arms a multishot poll on the eventfd of this thread's ring `index`.
    fn arm_ring_poll(&mut self, index: u32, efd: i32) {
        let entry = opcode::PollAdd::new(Fd(efd), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(pack(Op::Ring, 0, 0, index));
        self.push(entry);
    }

    /// One step of a ring that shares its thread: enters without sleeping and handles
    /// what came, up to `STEP_ROUNDS` times while it queued more. Its eventfd is off
    /// meanwhile, so the step's own completions do not wake the first ring. Returns true
    /// if the ring has work left (step it again before the thread sleeps).
    fn step(&mut self) -> anyhow::Result<bool> {
        self.ring.completion().disable_eventfd();
        for _ in 0..STEP_ROUNDS {
            self.enter_nowait()?;
            self.handle();
            if !self.has_work() {
                break;
            }
        }
        self.ring.completion().enable_eventfd();
        // Work queued while the eventfd was off raised the TASKRUN flag without a signal:
        // look at the flag only after turning the signal back on (pairs with the kernel's
        // flag-then-signal order).
        fence(Ordering::SeqCst);
        Ok(self.has_work())
    }

    /// Something to submit, deferred completion work, completions, or quick sends that
    /// hold up work.
    fn has_work(&mut self) -> bool {
        let sq = self.ring.submission();
        let queued = !sq.is_empty() || sq.taskrun() || sq.cq_overflow();
        drop(sq);
        queued || !self.ring.completion().is_empty() || self.quick_holds_up_work()
    }
}
