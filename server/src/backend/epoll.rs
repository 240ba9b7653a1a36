//! The epoll backend: the classic readiness design done well, as the baseline the io_uring
//! backend is measured against.
//!
//! - One epoll instance per loop, every socket registered once, edge-triggered, for
//!   `IN | OUT | RDHUP`: no `epoll_ctl` after the first, no event for a socket whose state
//!   did not change.
//! - Listeners: `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)` until `EAGAIN` on each readiness
//!   edge; on `EMFILE`/`ENFILE` every connection waiting in the backlog is accepted and
//!   closed at once with a reserved spare fd (see [`crate::refuse`]), counted as refused,
//!   and the loop keeps serving the connections it has.
//! - Connections: read into one per-loop buffer, write back at once; only bytes the kernel
//!   would not take stay with the connection (a [`Remainder`]), and go out on `EPOLLOUT`.
//!   A connection with [`Limits::max_unsent`] bytes unsent is not read until it drains.
//! - Protocols (frame, http): each read goes to [`Protocol::feed`], which appends the
//!   responses to one per-loop scratch buffer; that is written at once like an echo, and
//!   only what the kernel did not take stays (the same [`Remainder`]). Unsent responses
//!   plus the incomplete request the protocol holds count toward the pause bound. The
//!   per-connection [`Session`] lives beside the slab, boxed, from the first byte a
//!   connection sends; echo allocates none (see [`Slab`]).
//! - Connections live in a slab; the epoll token is slot + generation, so an event for a
//!   slot that was closed and reused within the same batch is recognised and dropped.
//!
//! What to do (pause, resume, close when done, idle) is decided by [`ConnState`]; this
//! module only moves bytes.

use super::LoopContext;
use crate::config::Limits;
use crate::conn::{idle_sweep_every, Clock, ConnState, ReadControl, Tick};
use crate::proto::{End, Protocol, Session};
use crate::refuse::{refuse_pending, Refusal, SpareFd};
use crate::stats::{ConnCount, LoopStats};
use anyhow::Context;
use c1m_platform::signals;
use c1m_platform::sweep::{phase_of, SlotSweep};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{accept4, SockFlag};
use nix::unistd::{read, write};
use std::net::TcpListener;
use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// The one receive buffer of a loop: big enough that a bulk stream needs few reads.
const READ_BUF: usize = 64 * 1024;
/// Capacity the loop's response scratch buffer keeps after a burst of large responses.
const KEEP_OUT: usize = 4 * READ_BUF;
/// Events taken per `epoll_wait`.
const EVENTS: usize = 1024;
/// Longest sleep in `epoll_wait`, so a stop request is seen within this time.
const WAIT: Duration = Duration::from_millis(100);
/// How long a listener rests after the process or system ran out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Tokens with this bit set name a listener (its index in `ctx.listeners`); the others
/// are `generation << 32 | slot` of a connection. Generations use 31 bits.
const LISTENER_TOKEN: u64 = 1 << 63;
const GEN_MASK: u32 = (1 << 31) - 1;

/// Bytes the kernel did not take yet, oldest first from `start`.
#[derive(Debug)]
struct Remainder {
    data: Vec<u8>,
    start: usize,
}

impl Remainder {
    fn pending(&self) -> &[u8] {
        &self.data[self.start..]
    }

    fn push(&mut self, bytes: &[u8]) {
        // Reclaim the sent prefix before growing, so the Vec stays near the unsent size.
        if self.start > 0 && self.start >= self.data.len() / 2 {
            self.data.drain(..self.start);
            self.start = 0;
        }
        self.data.extend_from_slice(bytes);
    }
}

/// One connection: 32 bytes while everything it received has been written back.
#[derive(Debug)]
struct Conn {
    fd: OwnedFd,
    state: ConnState,
    /// `Some` only while the kernel's send buffer is full; holds exactly `state.unsent()`
    /// bytes.
    remainder: Option<Box<Remainder>>,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

/// Connections by slot, with a free list; slot numbers are reused, generations are not
/// (until they wrap after 2^31 reuses of one slot).
///
/// Protocol sessions sit in a vector parallel to `slots` rather than in [`Conn`], so a
/// slot stays 40 bytes and echo pays nothing: the vector stays empty in echo mode, and in
/// protocol mode costs 8 bytes per slot plus a boxed [`Session`] (64 bytes, empty between
/// requests) once the connection has sent something.
#[derive(Debug, Default)]
struct Slab {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Protocol mode only (else empty): the session of the connection in the same slot.
    sessions: Vec<Option<Box<Session>>>,
    /// Keep `sessions` as long as `slots`.
    with_sessions: bool,
}

impl Slab {
    fn new(with_sessions: bool) -> Self {
        Self {
            with_sessions,
            ..Self::default()
        }
    }

    /// Stores `conn`, returns its token.
    fn insert(&mut self, conn: Conn) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                if self.with_sessions {
                    self.sessions.push(None);
                }
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1) & GEN_MASK;
        slot.conn = Some(conn);
        (u64::from(slot.generation) << 32) | u64::from(index)
    }

    /// The connection a token names, if it is still the same one.
    fn get(&mut self, token: u64) -> Option<&mut Conn> {
        let slot = self.slots.get_mut((token as u32) as usize)?;
        if u64::from(slot.generation) != token >> 32 {
            return None;
        }
        slot.conn.as_mut()
    }

    /// The connection a token names and its session slot (protocol mode only).
    fn get_with_session(&mut self, token: u64) -> Option<(&mut Conn, &mut Option<Box<Session>>)> {
        let index = (token as u32) as usize;
        let slot = self.slots.get_mut(index)?;
        if u64::from(slot.generation) != token >> 32 {
            return None;
        }
        Some((slot.conn.as_mut()?, self.sessions.get_mut(index)?))
    }

    fn remove(&mut self, token: u64) -> Option<Conn> {
        let index = token as u32;
        let slot = self.slots.get_mut(index as usize)?;
        if u64::from(slot.generation) != token >> 32 {
            return None;
        }
        let conn = slot.conn.take()?;
        if let Some(session) = self.sessions.get_mut(index as usize) {
            *session = None;
        }
        self.free.push(index);
        Some(conn)
    }

    fn token_of(&self, index: usize) -> u64 {
        (u64::from(self.slots[index].generation) << 32) | index as u64
    }
}

/// Why a connection is closed; decides which counter says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// Peer finished and every byte went back.
    Done,
    Error,
    Idle,
    Shutdown,
}

/// A listener and, after EMFILE/ENFILE, when to try it again.
struct Listener {
    socket: TcpListener,
    resting_until: Option<Instant>,
}

/// The loop's state besides the epoll instance.
struct EventLoop<'a> {
    epoll: Epoll,
    listeners: Vec<Listener>,
    slab: Slab,
    buf: Box<[u8]>,
    /// `None` for echo (decided once here: echo never touches the protocol layer).
    protocol: Option<Protocol>,
    /// Responses produced from one read, before they are written (protocol mode only).
    out: Vec<u8>,
    clock: Clock,
    limits: Limits,
    stats: &'a LoopStats,
    conns: &'a ConnCount,
    /// Reserved so a connection can be accepted and closed when fds run out.
    spare: SpareFd,
    /// Where in its period this loop's idle sweep starts (`crate::sweep`).
    sweep_phase: f64,
}

pub fn run(mut ctx: LoopContext) -> anyhow::Result<()> {
    let listeners = std::mem::take(&mut ctx.listeners);
    let mut event_loop = match setup(&ctx, listeners) {
        Ok(l) => l,
        Err(e) => {
            ctx.report_ready(Err(e));
            return Ok(());
        }
    };
    ctx.report_ready(Ok(()));
    let result = event_loop.serve();
    event_loop.close_all();
    result
}

fn setup(ctx: &LoopContext, sockets: Vec<TcpListener>) -> anyhow::Result<EventLoop<'_>> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("epoll_create1")?;
    let mut listeners = Vec::with_capacity(sockets.len());
    for (i, socket) in sockets.into_iter().enumerate() {
        // Edge-triggered: one wakeup per burst of connections, drained by accept4 until
        // EAGAIN. Each loop has its own SO_REUSEPORT listener, so no herd to avoid.
        epoll
            .add(
                &socket,
                EpollEvent::new(
                    EpollFlags::EPOLLIN | EpollFlags::EPOLLET,
                    LISTENER_TOKEN | i as u64,
                ),
            )
            .context("registering a listener with epoll")?;
        listeners.push(Listener {
            socket,
            resting_until: None,
        });
    }
    Ok(EventLoop {
        epoll,
        listeners,
        slab: Slab::new(!ctx.protocol.is_echo()),
        buf: vec![0u8; READ_BUF].into_boxed_slice(),
        protocol: (!ctx.protocol.is_echo()).then(|| ctx.protocol.clone()),
        out: Vec::new(),
        clock: Clock::new(),
        limits: ctx.limits,
        stats: &ctx.stats,
        conns: &ctx.conns,
        spare: SpareFd::new(),
        sweep_phase: phase_of(ctx.index),
    })
}

impl EventLoop<'_> {
    fn serve(&mut self) -> anyhow::Result<()> {
        let mut events = vec![EpollEvent::empty(); EVENTS];
        let origin = Instant::now();
        let mut sweep = SlotSweep::new(
            idle_sweep_every(&self.limits),
            Duration::ZERO,
            self.sweep_phase,
        );
        while !signals::stop_requested() {
            let timeout = self.wait_timeout(sweep.next().map(|at| origin + at));
            self.stats.sys_epoll_wait.add(1);
            let ready = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                // A signal (SIGTERM among them) interrupts the wait: look at the flag.
                Err(Errno::EINTR) => 0,
                Err(e) => return Err(e).context("epoll_wait"),
            };
            self.clock.update();
            self.stats.completions.add(ready as u64);
            // The whole batch before the next wait.
            for event in &events[..ready] {
                let token = event.data();
                if token & LISTENER_TOKEN != 0 {
                    self.accept((token & !LISTENER_TOKEN) as usize);
                } else {
                    self.on_event(token, event.events());
                }
            }
            self.retry_resting_listeners();
            if let Some(slots) = sweep.due(origin.elapsed(), self.slab.slots.len()) {
                self.sweep_idle(slots);
            }
        }
        Ok(())
    }

    /// Sleep at most [`WAIT`], less if a sweep or a resting listener is due sooner.
    fn wait_timeout(&self, next_sweep: Option<Instant>) -> EpollTimeout {
        let now = Instant::now();
        let due = self
            .listeners
            .iter()
            .filter_map(|l| l.resting_until)
            .chain(next_sweep)
            .map(|at| at.saturating_duration_since(now))
            .fold(WAIT, Duration::min);
        // Round up so a due time is not missed by a wait that ends a hair early.
        let ms = due.as_micros().div_ceil(1000).min(u128::from(u16::MAX)) as u16;
        EpollTimeout::from(ms)
    }

    fn retry_resting_listeners(&mut self) {
        let now = Instant::now();
        for i in 0..self.listeners.len() {
            if self.listeners[i].resting_until.is_some_and(|at| now >= at) {
                self.listeners[i].resting_until = None;
                // No edge comes for connections that queued while resting: accept now.
                self.accept(i);
            }
        }
    }

    /// Accepts until the queue is empty (edge-triggered) or descriptors run out.
    fn accept(&mut self, index: usize) {
        let Some(listener) = self.listeners.get(index) else {
            return;
        };
        if listener.resting_until.is_some() {
            return;
        }
        let listen_fd = listener.socket.as_raw_fd();
        loop {
            self.stats.sys_accept.add(1);
            let fd = match accept4(listen_fd, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC) {
                // SAFETY: accept4 just returned this descriptor; nothing else owns it.
                Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
                Err(Errno::EAGAIN) => return,
                // The peer gave up before we got to it, or a signal: next one.
                Err(Errno::ECONNABORTED | Errno::EINTR) => continue,
                Err(Errno::EMFILE | Errno::ENFILE) => {
                    // Out of fds: close what waits in the backlog rather than leave the
                    // clients hanging there (the spare-fd trick), and count it.
                    let drained = refuse_pending(listen_fd, &mut self.spare);
                    self.stats.refused(Refusal::FdLimit, drained.refused);
                    if drained.stuck {
                        self.stats.loop_errors.add(1);
                        self.listeners[index].resting_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    }
                    return;
                }
                Err(_) => {
                    // ENOBUFS, ENOMEM (or something stranger): the queue stays non-empty,
                    // so retrying now would spin. Rest this listener.
                    self.stats.loop_errors.add(1);
                    self.listeners[index].resting_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    return;
                }
            };
            if !self.conns.try_open(self.limits.max_conns) {
                self.stats.refused(Refusal::MaxConns, 1);
                self.stats.sys_other.add(1);
                drop(fd);
                continue;
            }
            self.stats.accepted.add(1);
            let conn = Conn {
                fd,
                state: ConnState::new(self.clock.now()),
                remainder: None,
            };
            let token = self.slab.insert(conn);
            let Some(conn) = self.slab.get(token) else {
                continue;
            };
            // Registered once for everything it will ever need, so no epoll_ctl later.
            // EPOLLOUT adds no wakeups of its own: edge-triggered, it is reported with
            // the socket's other wakeups and when a full send buffer gets room again.
            let interest = EpollFlags::EPOLLIN
                | EpollFlags::EPOLLOUT
                | EpollFlags::EPOLLRDHUP
                | EpollFlags::EPOLLET;
            self.stats.sys_other.add(1);
            if self
                .epoll
                .add(&conn.fd, EpollEvent::new(interest, token))
                .is_err()
            {
                // ENOMEM/ENOSPC (max_user_watches): this connection cannot be served.
                self.close(token, Close::Error);
                continue;
            }
            // Data may have arrived before registration; ET reports it anyway (the add
            // polls the socket), so nothing to read here.
        }
    }

    fn on_event(&mut self, token: u64, flags: EpollFlags) {
        let Some(conn) = self.slab.get(token) else {
            return; // closed earlier in this batch (slot maybe reused): stale
        };
        let trouble = flags.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP);
        // Unsent bytes first: they are older than anything still to be read, and a
        // drained remainder may lift a pause.
        if conn.remainder.is_some() && (trouble || flags.contains(EpollFlags::EPOLLOUT)) {
            let step = match self.flush(token) {
                // Drained: requests a protocol kept for later are next, before new input.
                Step::Closed => Step::Closed,
                step => self.answer_backlog(token, step),
            };
            match step {
                Step::Closed => return,
                Step::Resumed => return self.read(token, true),
                Step::Keep => {}
            }
        }
        if flags.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP) || trouble {
            // After RDHUP/HUP/ERR a short read does not mean "nothing more": the 0 (EOF)
            // or the error is still to come, so read to the end.
            let to_the_end = trouble || flags.contains(EpollFlags::EPOLLRDHUP);
            self.read(token, to_the_end);
        }
    }

    /// Reads and echoes (or answers) until the socket is drained, the connection pauses,
    /// or it ends.
    ///
    /// `to_the_end`: read until `EAGAIN`/EOF. Otherwise a short read ends the loop: it
    /// emptied the receive queue, and any byte or FIN that arrives after it raises a new
    /// edge (as nginx and tokio do), which saves one `read` per message.
    fn read(&mut self, token: u64, to_the_end: bool) {
        loop {
            let Some(conn) = self.slab.get(token) else {
                return;
            };
            if conn.state.paused() || conn.state.peer_closed() {
                return;
            }
            // Never hold more than max_unsent for a connection, whatever the buffer size:
            // unsent bytes, and the incomplete request a protocol holds (0 for echo).
            let room = self
                .limits
                .max_unsent
                .saturating_sub(conn.state.unsent() + conn.state.held());
            let want = room.clamp(1, self.buf.len());
            self.stats.sys_read.add(1);
            let n = match read(&conn.fd, &mut self.buf[..want]) {
                Ok(0) => {
                    conn.state.on_peer_closed();
                    if conn.state.finished() {
                        self.close(token, Close::Done);
                    }
                    return;
                }
                Ok(n) => n,
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(_) => return self.close(token, Close::Error),
            };
            self.stats.recvs.add(1);
            self.stats.bytes_in.add(n as u64);
            let now = self.clock.now();
            let sent = match &self.protocol {
                None => {
                    conn.state.on_received(n, now, &self.limits);
                    send_now(conn, &self.buf[..n], now, &self.limits, self.stats)
                }
                Some(protocol) => {
                    let Some((conn, session)) = self.slab.get_with_session(token) else {
                        return;
                    };
                    let input = &self.buf[..n];
                    let reply = Reply {
                        protocol,
                        out: &mut self.out,
                        now,
                        limits: &self.limits,
                        stats: self.stats,
                    };
                    reply.answer(conn, session, input)
                }
            };
            if sent.is_err() {
                return self.close(token, Close::Error);
            }
            if self.protocol.is_some() && self.slab.get(token).is_some_and(|c| c.state.finished()) {
                // The last response (Connection: close, a protocol error) is all sent.
                return self.close(token, Close::Done);
            }
            if !to_the_end && n < want {
                return;
            }
        }
    }

    /// Writes out the remainder until it is gone or the kernel takes no more.
    fn flush(&mut self, token: u64) -> Step {
        let Some(conn) = self.slab.get(token) else {
            return Step::Closed;
        };
        let Some(rem) = conn.remainder.as_mut() else {
            return Step::Keep;
        };
        let mut control = ReadControl::Keep;
        let now = self.clock.now();
        while !rem.pending().is_empty() {
            let len = rem.pending().len();
            let sent = match write_once(&conn.fd, rem.pending(), self.stats) {
                Ok(sent) => sent,
                Err(()) => {
                    self.close(token, Close::Error);
                    return Step::Closed;
                }
            };
            rem.start += sent;
            if conn.state.on_sent(sent, now, &self.limits) == ReadControl::Resume {
                control = ReadControl::Resume;
            }
            if sent < len {
                // Short write: the send buffer is full and the kernel will raise EPOLLOUT
                // when it has room again.
                break;
            }
        }
        if rem.pending().is_empty() {
            conn.remainder = None; // give the memory back as soon as it is not needed
        }
        if conn.state.finished() {
            self.close(token, Close::Done);
            return Step::Closed;
        }
        if control == ReadControl::Resume {
            Step::Resumed
        } else {
            Step::Keep
        }
    }

    /// Protocol mode, after `flush` returned `step`: answers what waits in the session's
    /// backlog once nothing older is unsent. Returns `step`, or `Closed` if that was the
    /// last answer, or `Keep` if the connection paused again.
    fn answer_backlog(&mut self, token: u64, step: Step) -> Step {
        let Some(protocol) = &self.protocol else {
            return step;
        };
        let Some((conn, session)) = self.slab.get_with_session(token) else {
            return Step::Closed;
        };
        if conn.remainder.is_some() || !session.as_ref().is_some_and(|s| s.has_backlog()) {
            return step;
        }
        let reply = Reply {
            protocol,
            out: &mut self.out,
            now: self.clock.now(),
            limits: &self.limits,
            stats: self.stats,
        };
        if reply.answer(conn, session, &[]).is_err() {
            self.close(token, Close::Error);
            return Step::Closed;
        }
        if conn.state.finished() {
            self.close(token, Close::Done);
            return Step::Closed;
        }
        if conn.state.paused() {
            Step::Keep
        } else {
            step
        }
    }

    fn close(&mut self, token: u64, why: Close) {
        let Some(conn) = self.slab.remove(token) else {
            return;
        };
        // Closing the last descriptor also removes it from the epoll set.
        self.stats.sys_other.add(1);
        drop(conn.fd);
        self.stats.closed.add(1);
        match why {
            Close::Error => self.stats.conn_errors.add(1),
            Close::Idle => self.stats.idle_closed.add(1),
            Close::Done | Close::Shutdown => {}
        }
        self.conns.close();
    }

    fn sweep_idle(&mut self, slots: Range<usize>) {
        let now = self.clock.update();
        for i in slots {
            let idle = self.slab.slots[i]
                .conn
                .as_ref()
                .is_some_and(|c| c.state.idle(now, &self.limits));
            if idle {
                let token = self.slab.token_of(i);
                self.close(token, Close::Idle);
            }
        }
    }

    fn close_all(&mut self) {
        for i in 0..self.slab.slots.len() {
            if self.slab.slots[i].conn.is_some() {
                let token = self.slab.token_of(i);
                self.close(token, Close::Shutdown);
            }
        }
    }
}

/// What a flush did to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Keep,
    /// Unsent bytes fell below the resume mark: read again now, since with EPOLLET no
    /// new edge comes for data that is already waiting.
    Resumed,
    Closed,
}

/// One `write`: bytes taken (0 if the send buffer is full), or `Err` if the connection
/// is broken (EPIPE, ECONNRESET, ...).
fn write_once(fd: &OwnedFd, bytes: &[u8], stats: &LoopStats) -> Result<usize, ()> {
    loop {
        stats.sys_write.add(1);
        match write(fd, bytes) {
            Ok(n) => {
                if n > 0 {
                    stats.sends.add(1);
                    stats.bytes_out.add(n as u64);
                }
                return Ok(n);
            }
            Err(Errno::EAGAIN) => return Ok(0),
            Err(Errno::EINTR) => continue,
            Err(_) => return Err(()),
        }
    }
}

/// Writes `bytes` now, behind any older remainder; what the kernel does not take becomes
/// the connection's remainder, sent on `EPOLLOUT`. `Err` if the connection is broken.
fn send_now(
    conn: &mut Conn,
    bytes: &[u8],
    now: Tick,
    limits: &Limits,
    stats: &LoopStats,
) -> Result<(), ()> {
    if let Some(rem) = conn.remainder.as_mut() {
        // Older bytes are still queued: these go behind them, on EPOLLOUT.
        rem.push(bytes);
        return Ok(());
    }
    if bytes.is_empty() {
        return Ok(());
    }
    let sent = write_once(&conn.fd, bytes, stats)?;
    conn.state.on_sent(sent, now, limits);
    if sent < bytes.len() {
        conn.remainder = Some(Box::new(Remainder {
            data: bytes[sent..].to_vec(),
            start: 0,
        }));
    }
    Ok(())
}

/// What answering one read of a protocol connection needs from the loop.
struct Reply<'a> {
    protocol: &'a Protocol,
    /// The loop's scratch buffer for responses.
    out: &'a mut Vec<u8>,
    now: Tick,
    limits: &'a Limits,
    stats: &'a LoopStats,
}

impl Reply<'_> {
    /// Parses `input`, writes the responses at once (see [`send_now`]) and tells
    /// `ConnState` what is unsent and held, and whether the connection ends. Requests the
    /// protocol kept in its backlog (answers beyond its burst bound) are answered here too,
    /// as long as the kernel takes every byte; else after the next drain
    /// ([`EventLoop::answer_backlog`]).
    fn answer(
        self,
        conn: &mut Conn,
        session: &mut Option<Box<Session>>,
        mut input: &[u8],
    ) -> Result<(), ()> {
        let session = session.get_or_insert_with(Box::default);
        let result = loop {
            self.out.clear();
            let fed = self.protocol.feed(session, input, self.out);
            self.stats.requests.add(u64::from(fed.requests));
            conn.state
                .on_parsed(self.out.len(), session, self.now, self.limits);
            if let Some(end) = fed.end {
                conn.state.on_last_response();
                if end == End::Error {
                    self.stats.proto_errors.add(1);
                }
            }
            let sent = send_now(conn, self.out, self.now, self.limits, self.stats);
            if sent.is_err() || conn.remainder.is_some() || !session.has_backlog() {
                break sent;
            }
            input = &[];
        };
        if self.out.capacity() > KEEP_OUT {
            // A burst of large responses: do not keep its memory for the loop's lifetime.
            *self.out = Vec::new();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        Conn {
            fd: a.into(),
            state: ConnState::default(),
            remainder: None,
        }
    }

    #[test]
    fn stale_token_is_ignored_after_reuse() {
        let mut slab = Slab::default();
        let old = slab.insert(conn());
        assert!(slab.remove(old).is_some());
        let new = slab.insert(conn());
        assert_eq!(old as u32, new as u32, "slot is reused");
        assert_ne!(old, new, "generation differs");
        assert!(slab.get(old).is_none());
        assert!(slab.remove(old).is_none());
        assert!(slab.get(new).is_some());
        assert_eq!(new & LISTENER_TOKEN, 0);
    }

    #[test]
    fn remainder_keeps_order_and_compacts() {
        let mut r = Remainder {
            data: b"abcdef".to_vec(),
            start: 4,
        };
        r.push(b"gh");
        assert_eq!(r.pending(), b"efgh");
        assert_eq!(r.start, 0);
    }

    #[test]
    fn connection_is_small() {
        assert!(std::mem::size_of::<Slot>() <= 40);
        // Protocol mode adds one pointer per slot, and a session only once data came.
        assert_eq!(std::mem::size_of::<Option<Box<Session>>>(), 8);
        assert!(std::mem::size_of::<Session>() <= 64);
    }

    #[test]
    fn sessions_only_in_protocol_mode_and_never_outlive_their_connection() {
        let mut echo = Slab::default();
        echo.insert(conn());
        assert!(echo.sessions.is_empty());

        let mut slab = Slab::new(true);
        let old = slab.insert(conn());
        let (_, session) = slab.get_with_session(old).expect("live connection");
        assert!(session.is_none(), "no session before data");
        *session = Some(Box::default());
        assert!(slab.remove(old).is_some());
        let new = slab.insert(conn());
        assert_eq!(old as u32, new as u32, "slot is reused");
        assert!(slab.get_with_session(old).is_none());
        let (_, session) = slab.get_with_session(new).expect("live connection");
        assert!(session.is_none(), "a reused slot starts without a session");
    }
}
