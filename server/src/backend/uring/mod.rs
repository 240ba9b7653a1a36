//! The io_uring backend: the reason the project exists.
//!
//! One ring per loop. Connections live only as direct descriptors (slots in the ring's
//! fixed-file table, filled by multishot accept), so they cost no entry in the process's
//! fd table. Each connection has one multishot recv that picks buffers from the loop's
//! provided-buffer ring; a received buffer is queued on its connection and sent straight
//! back from the same memory, then returned to the ring. Receive memory is therefore per
//! loop, not per connection. One send per connection is in flight at a time, which keeps
//! the bytes in order even when a send comes back short.
//!
//! With `--protocol frame|http` the received bytes go to the protocol layer instead and
//! the buffer goes back to the ring at once; answers are sent from a per-connection
//! outbox that exists only in that mode (`protocol.rs`).
//!
//! Code map: `check` (does this kernel have what the backend needs), `tag` (what a
//! completion's `user_data` says), `accept` (multishot accept, refusals at a full table),
//! `data` (multishot recv, and echo: sends from the receive buffer), `protocol` (frame and
//! http: parse, answer from the outbox), and this file (the ring, the loop, closing).

mod accept;
mod check;
mod data;
mod idle;
pub use idle::START_PARKED_FROM;
mod protocol;
mod rings;
mod send;
mod tag;

pub use check::{check_available, check_io_uring_basic};

use super::LoopContext;
use crate::config::Limits;
use crate::conn::{idle_sweep_every, Clock, ConnState, Tick};
use crate::refuse::SpareFd;
use crate::stats::LoopStats;
use anyhow::{anyhow, Context};
use c1m_platform::bufring::BufRing;
use c1m_platform::quick::{QuickSend, QuickSends};
use c1m_platform::signals;
use c1m_platform::sweep::{park_period, phase_of, SlotSweep};
use io_uring::types::{Fixed, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};
use protocol::ProtoState;
use std::io;
use std::ops::Range;
use std::time::{Duration, Instant};
use tag::{pack, unpack, Op, MAX_SLOTS};

/// Submission queue size: enough for one batch of re-arms and sends per wakeup.
const SQ_ENTRIES: u32 = 2048;
/// The buffer group id of the loop's provided-buffer ring (one ring per loop).
const BUFFER_GROUP: u16 = 0;
/// How long one wait may block, so a stop request is seen within this time.
const WAIT_TIMEOUT: Duration = Duration::from_millis(100);
/// After an accept failed in a way that refusing could not clear, wait this long before
/// accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// Connections starved of buffers (-ENOBUFS) re-arm once this share of buffers is back.
const STARVED_REARM_DIVISOR: u32 = 4;
/// Longest wait for in-flight closes when stopping.
const STOP_DRAIN: Duration = Duration::from_secs(1);
/// With `--coalesce-us`: completions a wait asks for. The min-wait, not this count, ends a
/// wait at the loads measured; a burst this large is handled without waiting.
const COALESCE_WANT: usize = 256;
/// `IORING_ENTER_GETEVENTS` (the io-uring crate does not export it).
const ENTER_GETEVENTS: u32 = 1;

// ---- connections ----

const NO_BUFFER: u16 = u16::MAX;

/// Per-connection state: 32 bytes, indexed by fixed-file slot.
#[derive(Debug, Clone, Copy)]
struct Conn {
    state: ConnState,
    gen: u16,
    open: bool,
    /// What watches the socket for input (`idle.rs`).
    rx: Rx,
    send_in_flight: bool,
    /// The send in flight is a quick one (`send.rs`): nothing to cancel when closing.
    send_quick: bool,
    /// A quick send came back short: plain sends until the backlog has drained.
    send_blocked: bool,
    /// Waiting for buffers after -ENOBUFS ended its recv.
    starved: bool,
    /// Queue of received buffers to echo (echo only), linked through `buffer_next`.
    head: u16,
    tail: u16,
    /// Bytes of the head buffer already sent.
    head_sent: u32,
}

impl Default for Conn {
    fn default() -> Self {
        Self {
            state: ConnState::default(),
            gen: 0,
            open: false,
            rx: Rx::Off,
            send_in_flight: false,
            send_quick: false,
            send_blocked: false,
            starved: false,
            head: NO_BUFFER,
            tail: NO_BUFFER,
            head_sent: 0,
        }
    }
}

/// What a connection has armed to learn about input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rx {
    /// Nothing (paused, starved, peer closed, or between a recv's end and its re-arm).
    Off,
    /// A multishot recv.
    Recv,
    /// A multishot recv being cancelled because the connection went idle: when it ends
    /// without having delivered data, a poll takes its place.
    Parking,
    /// A one-shot poll for input: when it fires, a one-shot recv reads what came if the
    /// connection had been quiet for the idle time (it stays parked), else a multishot recv
    /// takes over again.
    Poll,
    /// A one-shot recv of a parked connection whose poll fired: when it ends, the poll is
    /// armed again. No cancel on this path: a cancel looks its request up in the ring's
    /// cancel hash, at most 256 buckets, so it costs microseconds at 20,000 armed requests.
    Once,
}

impl Conn {
    fn wants_recv(&self) -> bool {
        self.open
            && self.rx == Rx::Off
            && !self.starved
            && !self.state.paused()
            && !self.state.peer_closed()
    }
}

/// Why a connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseReason {
    Finished,
    Error,
    Idle,
    Stopping,
}

struct UringLoop {
    // Field order is drop order: the ring goes first, so the kernel is done with the
    // buffer memory and the outboxes before they are unmapped or freed.
    ring: IoUring,
    buffers: BufRing,
    /// Frame/http state of every connection; `None` for echo, which has none.
    proto: Option<ProtoState>,
    /// Buffers currently owned by the kernel (in the ring).
    buffers_available: u32,
    /// Length of the data in each buffer, and the next buffer in its connection's queue.
    buffer_len: Vec<u32>,
    buffer_next: Vec<u16>,
    conns: Vec<Conn>,
    starved: Vec<(u32, u16)>,
    listeners: Vec<std::net::TcpListener>,
    /// Per listener: accept re-arm time after -ENFILE, or None while armed.
    accept_paused_until: Vec<Option<Instant>>,
    limits: Limits,
    /// Reserved so a connection can be accepted and closed when fds run out.
    spare: SpareFd,
    clock: Clock,
    counts: std::sync::Arc<crate::stats::ConnCount>,
    stats: std::sync::Arc<LoopStats>,
    completions: Vec<(u64, i32, u32)>,
    closes_in_flight: usize,
    /// SQEs queued since the last submit, and how many may wait mid-batch.
    unsubmitted: usize,
    submit_every: usize,
    quick: QuickSends,
    /// `--coalesce-us`: the wait's min-wait in µs.
    coalesce_us: Option<u32>,
    /// `--idle-after-ms`: park connections quiet for this long (`idle.rs`), and new ones
    /// at once from this many open connections.
    idle_after_ms: Option<u32>,
    start_parked_from: usize,
    sweeps: Sweeps,
    /// Multishot polls on other rings' eventfds that fired, by ring (`rings.rs`), and
    /// whether the poll stays armed.
    ring_events: Vec<(u32, bool)>,
}

/// The walks that look for connections to close (`--idle-timeout`) or to park
/// (`--idle-after-ms`), a step of slots at a time (`c1m_platform::sweep`).
struct Sweeps {
    origin: Instant,
    close: SlotSweep,
    park: SlotSweep,
}

impl Sweeps {
    fn new(limits: &Limits, idle_after_ms: Option<u32>, index: usize) -> Self {
        let park_every = idle_after_ms.map(park_period);
        let phase = phase_of(index);
        Self {
            origin: Instant::now(),
            close: SlotSweep::new(idle_sweep_every(limits), Duration::ZERO, phase),
            park: SlotSweep::new(park_every, Duration::ZERO, phase),
        }
    }

    /// Time on the walks' clock.
    fn at(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.origin)
    }

    /// The earliest step that is due; an hour away when both walks are off.
    fn next(&self) -> Instant {
        let due = match (self.close.next(), self.park.next()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(Duration::from_secs(3600)),
        };
        self.origin + due
    }
}

pub use rings::run;

impl UringLoop {
    /// A loop with its ring; `shared`: one of several rings its thread drives (`rings.rs`).
    fn new(ctx: &LoopContext, shared: bool) -> anyhow::Result<Self> {
        let opts = ctx.uring;
        let slots = opts.fixed_slots.clamp(1, MAX_SLOTS);
        // A CQ with room for a completion from every connection between two waits, so it
        // does not overflow in normal operation (an overflow ends multishots: they are
        // re-armed, but it costs). Not larger: the CQ is resident memory of every loop.
        let cq_entries = match opts.cq_entries {
            // Tests only: a tiny CQ that overflows under a burst.
            Some(n) => n.next_power_of_two().max(2),
            None => slots.next_power_of_two().clamp(4096, 65536),
        };
        // The kernel wants the CQ at least as large as the SQ.
        let sq_entries = SQ_ENTRIES.min(cq_entries);
        let mut builder = IoUring::builder();
        if shared {
            // Says when deferred completion work waits (`rings.rs`).
            builder.setup_taskrun_flag();
        }
        let ring: IoUring = builder
            // Only this thread submits: the kernel can skip locking around submission.
            .setup_single_issuer()
            // Completion work runs only when we wait: batches it, no interrupting IPIs.
            .setup_defer_taskrun()
            // Keep submitting the rest of a batch when one SQE fails.
            .setup_submit_all()
            .setup_cqsize(cq_entries)
            .build(sq_entries)
            .map_err(|e| {
                anyhow!("creating the io_uring (SQ {sq_entries}, CQ {cq_entries}): {e}")
            })?;
        if opts.coalesce_us.is_some() && !ring.params().is_feature_min_timeout() {
            return Err(anyhow!(
                "--coalesce-us needs the kernel's min-wait for io_uring_enter \
                 (IORING_FEAT_MIN_TIMEOUT, Linux 6.12+), which kernel {} lacks: leave it out",
                c1m_platform::procfs::kernel_release()
            ));
        }
        // Quick sends need CQE skipping (Linux 5.17+); without it every send posts one.
        let quick_sends = opts.quick_sends && ring.params().is_feature_skip_cqe_on_success();
        ring.submitter().register_files_sparse(slots).map_err(|e| {
            anyhow!(
                "registering a fixed-file table of {slots} slots: {e} (a table may hold at most \
                 RLIMIT_NOFILE slots; raise `ulimit -n` or use more loops)"
            )
        })?;
        let buffers = BufRing::new(opts.buffers as u16, opts.buffer_size, BUFFER_GROUP)
            .with_context(|| {
                format!(
                    "allocating {} receive buffers of {} bytes",
                    opts.buffers, opts.buffer_size
                )
            })?;
        buffers.register(&ring.submitter()).map_err(|e| {
            anyhow!("registering the provided-buffer ring: {e} (needs Linux 5.19+)")
        })?;
        let n = opts.buffers as usize;
        let mut lp = Self {
            ring,
            buffers,
            proto: ProtoState::new(&ctx.protocol, slots as usize),
            buffers_available: opts.buffers,
            buffer_len: vec![0; n],
            buffer_next: vec![NO_BUFFER; n],
            // Reserved, not touched: only slots in use become resident.
            conns: Vec::with_capacity(slots as usize),
            starved: Vec::new(),
            accept_paused_until: vec![None; ctx.listeners.len()],
            listeners: ctx
                .listeners
                .iter()
                .map(|l| l.try_clone())
                .collect::<io::Result<_>>()?,
            limits: ctx.limits,
            spare: SpareFd::new(),
            clock: Clock::new(),
            counts: ctx.conns.clone(),
            stats: ctx.stats.clone(),
            completions: Vec::with_capacity(cq_entries as usize),
            closes_in_flight: 0,
            unsubmitted: 0,
            submit_every: opts.submit_batch.max(1) as usize,
            quick: QuickSends::new(quick_sends),
            coalesce_us: opts.coalesce_us,
            idle_after_ms: opts.idle_after_ms,
            start_parked_from: opts.start_parked_from,
            sweeps: Sweeps::new(&ctx.limits, opts.idle_after_ms, ctx.index),
            ring_events: Vec::new(),
        };
        for i in 0..lp.listeners.len() {
            lp.arm_accept(i);
        }
        lp.submit_and_wait(0, None)
            .context("submitting the first accepts")?;
        Ok(lp)
    }

    fn serve(&mut self) -> anyhow::Result<()> {
        while !signals::stop_requested() {
            self.wait()?;
            self.handle();
        }
        self.stop()
    }

    /// One `io_uring_enter` that submits and sleeps until the next completion, unless
    /// quick sends hold up work (then it settles them without sleeping, `send.rs`).
    fn wait(&mut self) -> anyhow::Result<()> {
        self.wait_until(self.sweeps.next())
    }

    /// [`Self::wait`], sleeping no later than `due` (a sweep step of this thread's rings).
    fn wait_until(&mut self, due: Instant) -> anyhow::Result<()> {
        if self.quick_holds_up_work() {
            // Hand the quick sends to the kernel if they are still queued.
            let sq = self.ring.submission();
            let enter = !sq.is_empty() || sq.cq_overflow();
            drop(sq);
            if enter {
                self.submit_now();
            }
            return Ok(());
        }
        let timeout = due
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), WAIT_TIMEOUT);
        match self.coalesce_us {
            None => self.submit_and_wait(1, Some(timeout)),
            Some(us) => self.submit_and_coalesce(us, timeout),
        }
    }

    /// Handles what the last enter brought: completions, then the work done once per
    /// batch, then the sweeps that are due.
    fn handle(&mut self) {
        self.clock.update();
        self.drain_completions();
        self.after_batch();
        let now = self.sweeps.at(Instant::now());
        if let Some(slots) = self.sweeps.close.due(now, self.conns.len()) {
            self.close_idle(slots);
        }
        if let Some(slots) = self.sweeps.park.due(now, self.conns.len()) {
            if let Some(ms) = self.idle_after_ms {
                self.park_idle(ms, slots);
            }
        }
    }

    /// One `io_uring_enter`: submits what is queued and waits for `want` completions or
    /// the timeout. A timeout, an interrupt or a busy CQ are not errors here.
    fn submit_and_wait(&mut self, want: usize, timeout: Option<Duration>) -> anyhow::Result<()> {
        self.stats.sys_io_uring_enter.add(1);
        self.unsubmitted = 0;
        let result = match timeout {
            Some(t) => {
                let ts = Timespec::new().sec(t.as_secs()).nsec(t.subsec_nanos());
                let args = SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(want, &args)
            }
            None => self.ring.submitter().submit_and_wait(want),
        };
        Self::enter_result(result)
    }

    /// [`Self::submit_and_wait`] for a batch: the kernel holds the first completion up to
    /// `us` µs for more to arrive (min-wait), then returns with what it has.
    fn submit_and_coalesce(&mut self, us: u32, t: Duration) -> anyhow::Result<()> {
        self.stats.sys_io_uring_enter.add(1);
        self.unsubmitted = 0;
        let ts = Timespec::new().sec(t.as_secs()).nsec(t.subsec_nanos());
        let args = SubmitArgs::new().timespec(&ts).min_wait_usec(us);
        let result = self.ring.submitter().submit_with_args(COALESCE_WANT, &args);
        Self::enter_result(result)
    }

    fn enter_result(result: io::Result<usize>) -> anyhow::Result<()> {
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(anyhow!("io_uring_enter failed: {e}")),
        }
    }

    /// Queues one SQE, submitting first if the queue is full.
    fn push(&mut self, entry: squeue::Entry) {
        self.push_counted(entry, None);
    }

    /// [`Self::push`] for every SQE, counted for the quick-send ledger; `quick`: the quick
    /// send it carries.
    fn push_counted(&mut self, entry: squeue::Entry, quick: Option<QuickSend>) {
        loop {
            // SAFETY: every buffer an entry points to stays valid until its completion
            // (for a quick send: until it is settled, see `send.rs`): send data in the
            // buffer mapping (echo) is reused only after that; send data in a connection's
            // outbox (frame, http) is its front buffer, which does not move while the send
            // is in flight and is parked, not freed, if the connection closes first.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                self.unsubmitted += 1;
                self.quick.on_pushed(quick);
                return;
            }
            if !self.submit_now() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Submits what is queued without waiting. A failure leaves the entries queued; it
    /// is counted, and the next wait reports one that persists.
    /// One `io_uring_enter` that submits what is queued and runs the ring's deferred
    /// completion work without sleeping (on a DEFER_TASKRUN ring only an enter with
    /// GETEVENTS runs it).
    fn enter_nowait(&mut self) -> anyhow::Result<()> {
        self.stats.sys_io_uring_enter.add(1);
        self.unsubmitted = 0;
        let to_submit = self.ring.submission().len() as u32;
        // SAFETY: a plain enter without an argument structure; the SQEs it submits point
        // only to memory that outlives them (see `push`).
        let result = unsafe {
            self.ring
                .submitter()
                .enter::<libc::sigset_t>(to_submit, 0, ENTER_GETEVENTS, None)
        };
        Self::enter_result(result)
    }

    fn submit_now(&mut self) -> bool {
        self.stats.sys_io_uring_enter.add(1);
        self.unsubmitted = 0;
        match self.ring.submit() {
            Ok(_) => true,
            Err(e) => {
                self.stats.loop_errors.add(1);
                e.raw_os_error() == Some(libc::EBUSY)
            }
        }
    }

    fn drain_completions(&mut self) {
        let mut batch = std::mem::take(&mut self.completions);
        batch.clear();
        // Every enter so far has returned: the SQ head and the CQ say how its quick sends
        // ended.
        let (consumed, overflow) = {
            let sq = self.ring.submission();
            (self.quick.consumed(sq.len()), sq.cq_overflow())
        };
        batch.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        self.settle(&batch, consumed, overflow);
        for &(user_data, result, flags) in &batch {
            // Hand sends to the kernel while the batch is still being walked, so the peer
            // gets to work on the first echoes while we produce the rest.
            if self.unsubmitted >= self.submit_every {
                self.submit_now();
            }
            let tag = unpack(user_data);
            match tag.op {
                Some(Op::Recv) => self.on_recv(tag, result, flags),
                Some(Op::Send) if self.proto.is_none() => self.on_send(tag, result),
                Some(Op::Send) => self.on_outbox_sent(tag, result),
                Some(Op::SendQuick) => self.on_quick_short(tag, result),
                Some(Op::Poll) => self.on_poll(tag, result),
                Some(Op::Ring) => self.ring_events.push((tag.slot, cqueue::more(flags))),
                Some(Op::Accept) => self.on_accept(tag.slot as usize, result, flags),
                Some(Op::Close) => {
                    self.closes_in_flight = self.closes_in_flight.saturating_sub(1);
                    if result < 0 {
                        self.stats.loop_errors.add(1);
                    }
                }
                Some(Op::Cancel) | None => {}
            }
        }
        let in_use = u32::from(self.buffers.entries()) - self.buffers_available;
        let dropped = self.ring.completion().overflow();
        self.stats
            .uring_batch(batch.len(), overflow, dropped, in_use);
        self.completions = batch;
    }

    /// Returns buffer `bid` to the kernel (published once per batch).
    fn give_back(&mut self, bid: u16) {
        self.buffers.give_back(bid);
        self.buffers_available += 1;
    }

    /// Work done once per batch of completions rather than per completion.
    fn after_batch(&mut self) {
        // Buffers given back during the batch become visible to the kernel at once.
        self.buffers.publish();
        if !self.starved.is_empty()
            && self.buffers_available
                >= (u32::from(self.buffers.entries()) / STARVED_REARM_DIVISOR).max(1)
        {
            let starved = std::mem::take(&mut self.starved);
            for &(slot, gen) in &starved {
                let conn = &mut self.conns[slot as usize];
                if conn.gen == gen && conn.starved {
                    conn.starved = false;
                    if conn.wants_recv() {
                        self.arm_recv(slot);
                    }
                }
            }
            self.starved = starved;
            self.starved.clear();
        }
        let now = Instant::now();
        for i in 0..self.accept_paused_until.len() {
            if self.accept_paused_until[i].is_some_and(|t| now >= t) {
                self.accept_paused_until[i] = None;
                self.arm_accept(i);
            }
        }
    }

    /// Closes a connection: cancels whatever is in flight on it, closes its slot, gives
    /// back queued buffers. Completions still on their way carry the old generation and
    /// are recognised as stale.
    fn close_conn(&mut self, slot: u32, reason: CloseReason) {
        let conn = &mut self.conns[slot as usize];
        if !conn.open {
            return;
        }
        // Echo sends carry their receive buffer's id; protocol sends their outbox marker.
        let send_bid = match self.proto {
            None => conn.head,
            Some(_) => protocol::send_bid(),
        };
        let in_flight = conn.send_in_flight.then_some(send_bid);
        // A quick send is over by the next settle: nothing to cancel.
        let cancel_send = in_flight.filter(|_| !conn.send_quick);
        // What is still in flight holds the socket open: cancel it by its exact user_data
        // (a hash lookup). Cancelling by file would scan every request of the ring, which
        // made closing N connections cost O(N^2).
        let mut cancel = [None, None];
        match conn.rx {
            Rx::Recv | Rx::Parking | Rx::Once => {
                cancel[0] = Some(pack(Op::Recv, 0, conn.gen, slot))
            }
            Rx::Poll => cancel[0] = Some(pack(Op::Poll, 0, conn.gen, slot)),
            Rx::Off => {}
        }
        if let Some(bid) = cancel_send {
            cancel[1] = Some(pack(Op::Send, bid, conn.gen, slot));
        }
        if let Some(p) = self.proto.as_mut() {
            p.close(slot, conn.gen, conn.send_in_flight);
        }
        conn.open = false;
        conn.gen = conn.gen.wrapping_add(1);
        let mut bid = conn.head;
        conn.head = NO_BUFFER;
        conn.tail = NO_BUFFER;
        conn.starved = false;
        while bid != NO_BUFFER {
            let next = self.buffer_next[bid as usize];
            // The buffer of an in-flight send comes back with its completion.
            if Some(bid) != in_flight {
                self.give_back(bid);
            }
            bid = next;
        }
        match reason {
            CloseReason::Idle => self.stats.idle_closed.add(1),
            CloseReason::Finished | CloseReason::Error | CloseReason::Stopping => {}
        }
        self.stats.closed.add(1);
        self.counts.close();
        for target in cancel.into_iter().flatten() {
            let entry =
                opcode::AsyncCancel::new(target)
                    .build()
                    .user_data(pack(Op::Cancel, 0, 0, slot));
            self.push(entry);
        }
        self.close_slot(slot);
    }

    /// Closes the direct descriptor in `slot`, freeing the slot for the next accept.
    fn close_slot(&mut self, slot: u32) {
        self.closes_in_flight += 1;
        let entry = opcode::Close::new(Fixed(slot))
            .build()
            .user_data(pack(Op::Close, 0, 0, slot));
        self.push(entry);
    }

    fn close_idle(&mut self, slots: Range<usize>) {
        let now: Tick = self.clock.now();
        for slot in slots {
            let c = &self.conns[slot];
            if c.open && c.state.idle(now, &self.limits) {
                self.close_conn(slot as u32, CloseReason::Idle);
            }
        }
    }

    /// Stops accepting, closes every connection and waits (bounded) for the closes.
    fn stop(&mut self) -> anyhow::Result<()> {
        self.begin_stop();
        self.finish_stop(Instant::now() + STOP_DRAIN)
    }

    /// Stops accepting and queues the close of every connection.
    fn begin_stop(&mut self) {
        for i in 0..self.listeners.len() {
            let entry = opcode::AsyncCancel::new(pack(Op::Accept, 0, 0, i as u32))
                .build()
                .user_data(pack(Op::Cancel, 0, 0, 0));
            self.push(entry);
        }
        for slot in 0..self.conns.len() {
            if self.conns[slot].open {
                self.close_conn(slot as u32, CloseReason::Stopping);
            }
        }
    }

    /// Waits for the closes `begin_stop` queued, until `deadline`.
    fn finish_stop(&mut self, deadline: Instant) -> anyhow::Result<()> {
        while self.closes_in_flight > 0 && Instant::now() < deadline {
            self.submit_and_wait(1, Some(Duration::from_millis(50)))?;
            self.drain_completions();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_state_stays_small() {
        assert!(
            std::mem::size_of::<Conn>() <= 32,
            "{}",
            std::mem::size_of::<Conn>()
        );
    }
}
