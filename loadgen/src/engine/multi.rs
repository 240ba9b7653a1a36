//! Several loops on one thread: each loop keeps its own ring (one ring's fixed-file table
//! holds at most `RLIMIT_NOFILE` sockets), and the thread sleeps in one `epoll_wait` over
//! the rings' eventfds, so one wakeup serves every ring with work.
//!
//! Each ring registers an eventfd; the kernel signals it when a completion is posted and,
//! on a DEFER_TASKRUN ring, when completion work is queued for the ring's task while none
//! was pending. The eventfds sit in epoll edge-triggered and are never read: every signal
//! is an edge. A woken ring is stepped: completions walked, due work queued, and one
//! `io_uring_enter(GETEVENTS, min_complete 0)` that submits and runs the deferred
//! completion work without sleeping. The kernel runs a bounded number of deferred items
//! per enter and keeps the rest without signalling again, so a step that found many
//! completions steps its ring again before the thread sleeps.
//!
//! The sleep lasts until the earliest deadline of any ring (a phase change, or `SPIN_NS`
//! before the next scheduled send, whose last stretch is polled so it leaves on time).

use super::clock::now_ns;
use super::schedule;
use super::worker::{Loop, LoopResult, LoopSpec};
use anyhow::Context;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Steps that walked at least this many completions are followed by another step
/// before the thread sleeps (the kernel may have more deferred work queued).
const HOT_CQES: usize = 16;

fn eventfd() -> anyhow::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers; the result is checked before use.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("creating an eventfd");
    }
    // SAFETY: fd is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn epoll() -> anyhow::Result<OwnedFd> {
    // SAFETY: epoll_create1 takes no pointers; the result is checked before use.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("creating an epoll instance");
    }
    // SAFETY: fd is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn epoll_ctl(ep: &OwnedFd, op: libc::c_int, fd: &OwnedFd, token: u64) -> anyhow::Result<()> {
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
        u64: token,
    };
    // SAFETY: both descriptors are open (borrowed for the call); ev is a live local.
    let r = unsafe { libc::epoll_ctl(ep.as_raw_fd(), op, fd.as_raw_fd(), &mut ev) };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("epoll_ctl");
    }
    Ok(())
}

/// Runs the loops `specs` to the end of the run on the calling thread: one loop waits in
/// its own ring; several share one wait (`run_shared`).
pub fn run(specs: Vec<LoopSpec>) -> anyhow::Result<Vec<LoopResult>> {
    let mut specs = specs;
    if specs.len() == 1 {
        if let Some(spec) = specs.pop() {
            let mut lp = Loop::new(spec, false)?;
            return Ok(vec![lp.run()?]);
        }
    }
    run_shared(specs)
}

/// Runs `specs` (two or more loops) on the calling thread to the end of the run.
fn run_shared(specs: Vec<LoopSpec>) -> anyhow::Result<Vec<LoopResult>> {
    schedule::fine_timer_slack();
    let ep = epoll()?;
    let mut loops = Vec::with_capacity(specs.len());
    let mut evfds = Vec::with_capacity(specs.len());
    for spec in specs {
        let lp = Loop::new(spec, true)?;
        let efd = eventfd()?;
        lp.ring()
            .submitter()
            .register_eventfd(efd.as_raw_fd())
            .map_err(|e| anyhow::anyhow!("registering an eventfd with io_uring failed ({e})"))?;
        epoll_ctl(&ep, libc::EPOLL_CTL_ADD, &efd, loops.len() as u64)?;
        loops.push(lp);
        evfds.push(efd);
    }
    let n = loops.len();
    let mut results: Vec<Option<LoopResult>> = (0..n).map(|_| None).collect();
    // Step every ring first.
    let mut ready = vec![true; n];
    let mut deadline = vec![0u64; n];
    let mut running = n;
    for lp in &mut loops {
        lp.begin();
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; n];
    while running > 0 {
        let now = now_ns();
        let pass_start = now;
        let mut hot = false;
        // Nothing walked or submitted: the pass only polled for a close send.
        let mut idle = true;
        for i in 0..n {
            if results[i].is_some() || !(ready[i] || deadline[i] <= now) {
                continue;
            }
            let force = ready[i];
            ready[i] = false;
            let lp = &mut loops[i];
            let (cqes, more, again, submitted) = lp.step(force)?;
            idle &= cqes == 0 && !submitted;
            if !more {
                results[i] = Some(lp.finish());
                running -= 1;
                epoll_ctl(&ep, libc::EPOLL_CTL_DEL, &evfds[i], i as u64)?;
                continue;
            }
            if again || cqes >= HOT_CQES {
                ready[i] = true;
                hot = true;
            }
            deadline[i] = lp.deadline();
        }
        if running == 0 {
            break;
        }
        let next = (0..n)
            .filter(|&i| results[i].is_none())
            .map(|i| deadline[i])
            .min()
            .unwrap_or(u64::MAX);
        let now = now_ns();
        let wait = if hot || next <= now { 0 } else { next - now };
        if idle && wait == 0 {
            if let Some(i) = (0..n).find(|&i| results[i].is_none()) {
                loops[i].note_spin(pass_start);
            }
        }
        let ts = libc::timespec {
            tv_sec: (wait / 1_000_000_000) as libc::time_t,
            tv_nsec: (wait % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: `events` holds n entries and outlives the call; ts is a live local; no
        // signal mask is passed.
        let got = unsafe {
            libc::epoll_pwait2(
                ep.as_raw_fd(),
                events.as_mut_ptr(),
                n as libc::c_int,
                &ts,
                std::ptr::null(),
            )
        };
        if got < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e).context("epoll_pwait2");
            }
            continue;
        }
        for ev in &events[..got as usize] {
            if let Some(r) = ready.get_mut(ev.u64 as usize) {
                *r = true;
            }
        }
    }
    // Rings drop (unregistering their eventfds) before the eventfds close.
    let out = results.into_iter().flatten().collect();
    drop(loops);
    drop(evfds);
    Ok(out)
}
