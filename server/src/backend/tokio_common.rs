//! What the `tokio` and `tokio-uring` backends share: both run one current-thread runtime
//! with a `LocalSet` on the pinned thread (tokio-uring is exactly that plus an io_uring
//! driver), one task per connection, and the same rules for limits, idle connections,
//! accept errors, stats and stopping. Only how bytes move differs.
//!
//! Back-pressure: a connection task reads into its own buffer and writes all of it back
//! before it reads again, so at most one buffer of echoed bytes is ever unsent. Memory per
//! connection is bounded by design; the buffer is never larger than `--max-unsent`, and
//! `ConnState`'s Pause/Resume answers need no action (not reading until everything is
//! written is stricter than pausing at the bound).
//!
//! Protocols (frame, http): the task feeds each read to the protocol ([`Shared::answer`])
//! and writes every response it produced before it reads again, like the echo. Besides
//! the receive buffer, a connection keeps a [`Session`] (64 bytes in the task, empty
//! between requests) and a response buffer that keeps at most
//! [`proto::KEEP_CAPACITY`] bytes of capacity; echo has neither.

use super::LoopContext;
use crate::config::Limits;
use crate::conn::{Clock, ConnState, Tick};
use crate::proto::{self, Protocol, Session};
use crate::refuse::{refuse_pending, Refusal, SpareFd};
use crate::stats::{ConnCount, LoopStats};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Per-connection receive buffer: one read moves at most this much.
const BUF_SIZE: usize = 16 * 1024;

/// How often the loop looks at the stop flag set by SIGINT/SIGTERM.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Pause after an accept error that will not go away at once (EMFILE, ENFILE, ENOBUFS,
/// ENOMEM): the pending connection stays in the backlog and the listener stays readable,
/// so retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Wait before looking again if an idle timer fired but the connection is not idle by the
/// shared clock (cannot happen with a monotonic clock; kept so the rule stays ConnState's).
const IDLE_RECHECK: Duration = Duration::from_millis(10);

/// The loop's state, shared by its tasks (all on this thread, hence `Rc` and `Cell`).
pub(super) struct Shared {
    pub stats: Arc<LoopStats>,
    conns: Arc<ConnCount>,
    pub limits: Limits,
    /// What the bytes mean; echo never calls into it.
    pub protocol: Protocol,
    clock: Cell<Clock>,
    /// Reserved so a connection can be accepted and closed when fds run out.
    spare: RefCell<SpareFd>,
    /// Connections this process may hold before it runs out of fds, when the backend must
    /// never reach the limit itself (see [`Shared::cap_below_fd_limit`]).
    fd_cap: Cell<Option<usize>>,
}

/// Fds kept free under the fd cap (at most; an eighth of a small limit): the accept of a
/// connection that will be refused, the runtime's own, stats files.
const FD_HEADROOM: usize = 64;

impl Shared {
    pub fn new(ctx: &LoopContext) -> Rc<Self> {
        Rc::new(Self {
            stats: ctx.stats.clone(),
            conns: ctx.conns.clone(),
            limits: ctx.limits,
            protocol: ctx.protocol.clone(),
            clock: Cell::new(Clock::new()),
            spare: RefCell::new(SpareFd::new()),
            fd_cap: Cell::new(None),
        })
    }

    /// Refuses connections (as at the fd limit) before the process runs out of fds: for
    /// tokio-uring, whose runtime stops completing anything once an accept fails with
    /// EMFILE, so the limit must never be reached. The cap is RLIMIT_NOFILE less the fds
    /// open now and a headroom.
    pub fn cap_below_fd_limit(&self) {
        let (soft, _) = c1m_platform::limits::nofile();
        let open_now = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
        let headroom = (soft as usize / 8).clamp(4, FD_HEADROOM);
        let cap = (soft as usize).saturating_sub(open_now + headroom).max(1);
        self.fd_cap.set(Some(cap));
    }

    /// The loop clock, read now: tasks have no shared loop iteration to read it once per.
    pub fn now(&self) -> Tick {
        let mut clock = self.clock.get();
        let now = clock.update();
        self.clock.set(clock);
        now
    }

    /// Size of a connection's buffer: never more than `--max-unsent` (see module docs).
    pub fn buffer_size(&self) -> usize {
        BUF_SIZE.min(self.limits.max_unsent)
    }

    /// Protocol mode: parses `input`, appends the responses to `out` and tells `state`
    /// what waits to be sent and what is held, and whether this was the last response
    /// (then `state` reads no more and finishes once everything is sent). Counts requests
    /// and protocol errors.
    pub fn answer(
        &self,
        session: &mut Session,
        state: &mut ConnState,
        input: &[u8],
        out: &mut Vec<u8>,
    ) {
        let before = out.len();
        let fed = self.protocol.feed(session, input, out);
        self.stats.requests.add(u64::from(fed.requests));
        // Pause/Resume need no action: see back-pressure in the module docs.
        let _ = state.on_parsed(out.len() - before, session, self.now(), &self.limits);
        if let Some(end) = fed.end {
            state.on_last_response();
            if end == proto::End::Error {
                self.stats.proto_errors.add(1);
            }
        }
    }

    /// Counts a just-accepted connection against `--max-conns`. `None` means over the
    /// limit: the caller drops the socket at once.
    pub fn admit(self: &Rc<Self>) -> Option<ConnGuard> {
        let (max_conns, fd_cap) = (self.limits.max_conns, self.fd_cap.get());
        let by_fds = fd_cap.is_some_and(|f| max_conns.is_none_or(|m| f < m));
        let max = if by_fds { fd_cap } else { max_conns };
        if self.conns.try_open(max) {
            self.stats.accepted.add(1);
            Some(ConnGuard {
                shared: self.clone(),
            })
        } else {
            let why = if by_fds {
                Refusal::FdLimit
            } else {
                Refusal::MaxConns
            };
            self.stats.refused(why, 1);
            None
        }
    }

    /// Counts a failed accept on `listen_fd`; returns how long to wait before accepting
    /// again. Out of fds, whatever waits in the backlog is closed at once (and counted
    /// refused) instead of being left hanging.
    pub fn accept_failed(&self, e: &io::Error, listen_fd: RawFd) -> Option<Duration> {
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE) => {
                let drained = refuse_pending(listen_fd, &mut self.spare.borrow_mut());
                self.stats.refused(Refusal::FdLimit, drained.refused);
                // At the fd limit accept fails with EMFILE even on an empty backlog (the
                // fd is taken before the queue is looked at): when nothing was waiting,
                // rest instead of spinning on it. A newcomer waits at most the backoff.
                if drained.refused > 0 && !drained.stuck {
                    return None;
                }
            }
            // The connection died in the backlog, or a signal interrupted: try the next.
            Some(libc::ECONNABORTED | libc::EPROTO | libc::EPERM | libc::EINTR) => {
                self.stats.loop_errors.add(1);
                return None;
            }
            _ => {}
        }
        self.stats.loop_errors.add(1);
        // Out of fds with nothing waiting, out of memory, or unknown: do not spin on it.
        Some(ACCEPT_BACKOFF)
    }
}

/// Held by a connection task for as long as it serves a connection counted by
/// [`Shared::admit`]. Dropping it (task end, or task dropped when the runtime shuts down)
/// releases the connection's `--max-conns` slot and counts it closed.
pub(super) struct ConnGuard {
    shared: Rc<Shared>,
}

impl ConnGuard {
    pub fn shared(&self) -> &Rc<Shared> {
        &self.shared
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.shared.conns.close();
        self.shared.stats.closed.add(1);
    }
}

/// Why a connection task ended.
pub(super) enum End {
    /// The peer shut down its sending side and everything it sent was echoed, or the
    /// last response of a protocol connection was sent.
    Finished,
    /// No traffic for `--idle-timeout`.
    Idle,
    /// Reset, broken pipe, ...: this connection only.
    Error,
}

impl End {
    pub fn count(self, stats: &LoopStats) {
        match self {
            End::Finished => {}
            End::Idle => stats.idle_closed.add(1),
            End::Error => stats.conn_errors.add(1),
        }
    }
}

/// Runs one I/O step of a connection under `--idle-timeout`: `None` if the connection is
/// idle before `fut` completes. Idle rule: every read and write wait is wrapped in a
/// timeout of the idle time, started when the step starts, i.e. right after the last
/// progress; when it fires, `ConnState::idle` (the rule every backend uses) decides.
/// Without `--idle-timeout` no timer is armed at all. `fut` is only borrowed: the caller
/// decides what happens to an operation still in flight (tokio-uring must finish it).
pub(super) async fn unless_idle<F: Future>(
    shared: &Shared,
    state: &ConnState,
    mut fut: Pin<&mut F>,
) -> Option<F::Output> {
    let Some(timeout) = shared.limits.idle_timeout else {
        return Some(fut.await);
    };
    let mut wait = timeout;
    loop {
        match tokio::time::timeout(wait, fut.as_mut()).await {
            Ok(out) => return Some(out),
            Err(_) if state.idle(shared.now(), &shared.limits) => return None,
            Err(_) => wait = IDLE_RECHECK,
        }
    }
}

/// Returns once SIGINT/SIGTERM asked the process to stop. The signal handler only sets a
/// flag, so it is polled; returning ends `block_on`, and dropping the runtime drops every
/// connection task, which closes its socket.
pub(super) async fn stop_requested() {
    let mut tick = tokio::time::interval(STOP_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !c1m_platform::signals::stop_requested() {
        tick.tick().await;
    }
}
