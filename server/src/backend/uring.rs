//! The io_uring backend: the reason the project exists.
//!
//! One ring per loop. Connections live only as direct descriptors (slots in the ring's
//! fixed-file table, filled by multishot accept), so they cost no entry in the process's
//! fd table. Each connection has one multishot recv that picks buffers from the loop's
//! provided-buffer ring; a received buffer is queued on its connection and sent straight
//! back from the same memory, then returned to the ring. Receive memory is therefore per
//! loop, not per connection. One send per connection is in flight at a time, which keeps
//! the bytes in order even when a send comes back short.

use super::LoopContext;
use crate::config::Limits;
use crate::conn::{idle_sweep_every, Clock, ConnState, ReadControl, Tick};
use crate::refuse::{refuse_pending, Refusal, SpareFd};
use crate::stats::LoopStats;
use anyhow::{anyhow, Context};
use c1m_platform::bufring::BufRing;
use c1m_platform::signals;
use io_uring::types::{Fd, Fixed, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Explains why `io_uring_setup` failed, in terms of what to change.
fn explain_setup_error(e: io::Error) -> anyhow::Error {
    let disabled = c1m_platform::procfs::read_sysctl("kernel.io_uring_disabled");
    match e.raw_os_error() {
        Some(libc::ENOSYS) => anyhow!(
            "io_uring is not available (ENOSYS): kernel {} is older than 5.1 or built without \
             CONFIG_IO_URING; use --backend epoll or a newer kernel",
            c1m_platform::procfs::kernel_release()
        ),
        Some(libc::EPERM) | Some(libc::EACCES) => match disabled.as_deref() {
            Some("2") => anyhow!(
                "io_uring is disabled by kernel.io_uring_disabled = 2: run \
                 `sysctl -w kernel.io_uring_disabled=0` as root, or use --backend epoll"
            ),
            Some("1") => anyhow!(
                "io_uring is limited to the group in kernel.io_uring_group \
                 (kernel.io_uring_disabled = 1): run as root, join that group, or set \
                 kernel.io_uring_disabled=0"
            ),
            _ => anyhow!(
                "io_uring_setup was refused ({e}), most likely by a seccomp filter (container \
                 runtimes block io_uring by default: e.g. docker run --security-opt \
                 seccomp=unconfined); use --backend epoll otherwise"
            ),
        },
        _ => anyhow!("io_uring_setup failed: {e}"),
    }
}

/// io_uring works at all (what tokio-uring needs).
pub fn check_io_uring_basic() -> anyhow::Result<()> {
    IoUring::new(2).map(drop).map_err(explain_setup_error)
}

/// Everything the uring backend uses is there: a ring with SINGLE_ISSUER|DEFER_TASKRUN
/// (6.1), a sparse fixed-file table, multishot accept (5.19) and multishot recv (6.0).
pub fn check_available() -> anyhow::Result<()> {
    check_io_uring_basic()?;
    let kernel = c1m_platform::procfs::kernel_release();
    let ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(8)
        .map_err(|e| {
            anyhow!(
                "io_uring on kernel {kernel} lacks SINGLE_ISSUER/DEFER_TASKRUN ({e}): the uring \
                 backend needs Linux 6.1 or newer; use --backend epoll"
            )
        })?;
    ring.submitter().register_files_sparse(1).map_err(|e| {
        anyhow!("io_uring on kernel {kernel} cannot register a sparse file table ({e}): needs Linux 5.19+")
    })?;
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| anyhow!("io_uring probe failed on kernel {kernel}: {e}"))?;
    use io_uring::opcode;
    for (code, name) in [
        (opcode::AcceptMulti::CODE, "accept"),
        (opcode::RecvMulti::CODE, "recv"),
        (opcode::Send::CODE, "send"),
        (opcode::Close::CODE, "close"),
        (opcode::AsyncCancel::CODE, "async cancel"),
    ] {
        if !probe.is_supported(code) {
            return Err(anyhow!(
                "io_uring on kernel {kernel} does not support {name}: the uring backend needs Linux 6.1+"
            ));
        }
    }
    Ok(())
}

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

// ---- user_data: op (8 bits) | buffer id (16) | generation (16) | slot (24) ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Op {
    Accept = 1,
    Recv = 2,
    Send = 3,
    Close = 4,
    Cancel = 5,
}

const SLOT_BITS: u32 = 24;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
/// The fixed-file table is capped so a slot always fits its user_data field.
const MAX_SLOTS: u32 = 1 << SLOT_BITS;

#[inline]
fn pack(op: Op, bid: u16, gen: u16, slot: u32) -> u64 {
    (op as u64) << 56 | (bid as u64) << 40 | (gen as u64) << 24 | (slot as u64 & SLOT_MASK)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tag {
    op: Option<Op>,
    bid: u16,
    gen: u16,
    slot: u32,
}

#[inline]
fn unpack(user_data: u64) -> Tag {
    let op = match (user_data >> 56) as u8 {
        1 => Some(Op::Accept),
        2 => Some(Op::Recv),
        3 => Some(Op::Send),
        4 => Some(Op::Close),
        5 => Some(Op::Cancel),
        _ => None,
    };
    Tag {
        op,
        bid: (user_data >> 40) as u16,
        gen: (user_data >> 24) as u16,
        slot: (user_data & SLOT_MASK) as u32,
    }
}

// ---- connections ----

const NO_BUFFER: u16 = u16::MAX;

/// Per-connection state: 32 bytes, indexed by fixed-file slot.
#[derive(Debug, Clone, Copy)]
struct Conn {
    state: ConnState,
    gen: u16,
    open: bool,
    recv_armed: bool,
    send_in_flight: bool,
    /// Waiting for buffers after -ENOBUFS ended its recv.
    starved: bool,
    /// Queue of received buffers to echo, linked through `BufferQueue::next`.
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
            recv_armed: false,
            send_in_flight: false,
            starved: false,
            head: NO_BUFFER,
            tail: NO_BUFFER,
            head_sent: 0,
        }
    }
}

impl Conn {
    fn wants_recv(&self) -> bool {
        self.open
            && !self.recv_armed
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
    // buffer memory before it is unmapped.
    ring: IoUring,
    buffers: BufRing,
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
}

pub fn run(ctx: LoopContext) -> anyhow::Result<()> {
    let mut lp = match UringLoop::new(&ctx) {
        Ok(lp) => lp,
        Err(e) => {
            ctx.report_ready(Err(e));
            return Ok(());
        }
    };
    ctx.report_ready(Ok(()));
    lp.serve()
}

impl UringLoop {
    fn new(ctx: &LoopContext) -> anyhow::Result<Self> {
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
        let ring: IoUring = IoUring::builder()
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
        };
        for i in 0..lp.listeners.len() {
            lp.arm_accept(i);
        }
        lp.submit_and_wait(0, None)
            .context("submitting the first accepts")?;
        Ok(lp)
    }

    fn serve(&mut self) -> anyhow::Result<()> {
        let sweep_every = idle_sweep_every(&self.limits);
        let mut next_sweep = Instant::now() + sweep_every.unwrap_or(Duration::MAX / 4);
        while !signals::stop_requested() {
            self.submit_and_wait(1, Some(WAIT_TIMEOUT))?;
            self.clock.update();
            self.drain_completions();
            self.after_batch();
            if sweep_every.is_some() && Instant::now() >= next_sweep {
                self.close_idle();
                next_sweep = Instant::now() + sweep_every.unwrap_or_default();
            }
        }
        self.stop()
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
        loop {
            // SAFETY: every buffer an entry points to (send data in the buffer mapping)
            // stays valid until its completion: buffers are reused only after that.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                self.unsubmitted += 1;
                return;
            }
            if !self.submit_now() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Submits what is queued without waiting. A failure leaves the entries queued; it
    /// is counted, and the next wait reports one that persists.
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

    fn arm_accept(&mut self, listener: usize) {
        let fd = self.listeners[listener].as_raw_fd();
        let entry = opcode::AcceptMulti::new(Fd(fd))
            .allocate_file_index(true)
            .build()
            .user_data(pack(Op::Accept, 0, 0, listener as u32));
        self.push(entry);
    }

    fn arm_recv(&mut self, slot: u32) {
        let conn = &mut self.conns[slot as usize];
        conn.recv_armed = true;
        let gen = conn.gen;
        let entry = opcode::RecvMulti::new(Fixed(slot), BUFFER_GROUP)
            .build()
            .user_data(pack(Op::Recv, 0, gen, slot));
        self.push(entry);
    }

    /// Starts sending the head of the connection's queue, unless a send is in flight.
    fn send_head(&mut self, slot: u32) {
        let conn = &mut self.conns[slot as usize];
        if conn.send_in_flight || conn.head == NO_BUFFER || !conn.open {
            return;
        }
        conn.send_in_flight = true;
        let (bid, sent, gen) = (conn.head, conn.head_sent, conn.gen);
        let (ptr, len) = self.buffers.raw(bid, sent, self.buffer_len[bid as usize]);
        let entry = opcode::Send::new(Fixed(slot), ptr, len)
            .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
            .build()
            .user_data(pack(Op::Send, bid, gen, slot));
        self.push(entry);
    }

    fn drain_completions(&mut self) {
        let mut batch = std::mem::take(&mut self.completions);
        batch.clear();
        batch.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        for &(user_data, result, flags) in &batch {
            // Hand sends to the kernel while the batch is still being walked, so the peer
            // gets to work on the first echoes while we produce the rest.
            if self.unsubmitted >= self.submit_every {
                self.submit_now();
            }
            let tag = unpack(user_data);
            match tag.op {
                Some(Op::Recv) => self.on_recv(tag, result, flags),
                Some(Op::Send) => self.on_send(tag, result),
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

    fn on_accept(&mut self, listener: usize, result: i32, flags: u32) {
        if result >= 0 {
            let slot = result as u32;
            // `accepted` counts served connections only, so accepted - closed = open.
            if self.counts.try_open(self.limits.max_conns) {
                self.stats.accepted.add(1);
                self.open_conn(slot);
            } else {
                self.stats.refused(Refusal::MaxConns, 1);
                self.close_slot(slot);
            }
        } else if result == -libc::ENFILE {
            // The fixed-file table is full. The kernel accepted the connection and, with
            // no slot for it, closed it: one refused. Whatever else waits in the backlog
            // cannot get a slot either: accept it as an ordinary fd and close it now,
            // rather than leave those clients waiting for a slot that may never free.
            let fd = self.listeners[listener].as_raw_fd();
            let drained = refuse_pending(fd, &mut self.spare);
            self.stats.refused(Refusal::FixedTable, 1 + drained.refused);
            if drained.stuck {
                // Even an ordinary accept fails: do not spin on the same error.
                self.stats.loop_errors.add(1);
                if !cqueue::more(flags) {
                    self.accept_paused_until[listener] = Some(Instant::now() + ACCEPT_BACKOFF);
                }
                return;
            }
        } else {
            self.stats.loop_errors.add(1);
        }
        if !cqueue::more(flags) && self.accept_paused_until[listener].is_none() {
            self.arm_accept(listener);
        }
    }

    fn open_conn(&mut self, slot: u32) {
        let index = slot as usize;
        if index >= self.conns.len() {
            self.conns.resize(index + 1, Conn::default());
        }
        let conn = &mut self.conns[index];
        *conn = Conn {
            state: ConnState::new(self.clock.now()),
            gen: conn.gen,
            open: true,
            ..Conn::default()
        };
        self.arm_recv(slot);
    }

    fn on_recv(&mut self, tag: Tag, result: i32, flags: u32) {
        let bid = cqueue::buffer_select(flags);
        if bid.is_some() {
            self.buffers_available -= 1;
        }
        let more = cqueue::more(flags);
        let slot = tag.slot as usize;
        if !self.is_live(tag) {
            // A completion for a connection that is gone: the buffer goes straight back.
            if let Some(bid) = bid {
                self.give_back(bid);
            }
            return;
        }
        if !more {
            self.conns[slot].recv_armed = false;
        }
        if result > 0 {
            let Some(bid) = bid else {
                // Cannot happen with buffer select; treat it as a broken connection.
                self.stats.conn_errors.add(1);
                return self.close_conn(tag.slot, CloseReason::Error);
            };
            let n = result as u32;
            self.stats.recvs.add(1);
            self.stats.bytes_in.add(n as u64);
            self.buffer_len[bid as usize] = n;
            self.buffer_next[bid as usize] = NO_BUFFER;
            let now = self.clock.now();
            let conn = &mut self.conns[slot];
            if conn.tail == NO_BUFFER {
                conn.head = bid;
            } else {
                self.buffer_next[conn.tail as usize] = bid;
            }
            conn.tail = bid;
            if conn.state.on_received(n as usize, now, &self.limits) == ReadControl::Pause
                && conn.recv_armed
            {
                // Too much unsent to this peer: stop reading it until the queue drains.
                let entry = opcode::AsyncCancel::new(pack(Op::Recv, 0, conn.gen, tag.slot))
                    .build()
                    .user_data(pack(Op::Cancel, 0, 0, 0));
                self.push(entry);
            }
            self.send_head(tag.slot);
        } else if result == 0 {
            if let Some(bid) = bid {
                self.give_back(bid);
            }
            let conn = &mut self.conns[slot];
            conn.state.on_peer_closed();
            if conn.state.finished() {
                return self.close_conn(tag.slot, CloseReason::Finished);
            }
        } else {
            if let Some(bid) = bid {
                self.give_back(bid);
            }
            match -result {
                libc::ENOBUFS => {
                    self.stats.loop_errors.add(1);
                    let conn = &mut self.conns[slot];
                    if !conn.starved {
                        conn.starved = true;
                        self.starved.push((tag.slot, conn.gen));
                    }
                }
                libc::ECANCELED => {}
                _ => {
                    self.stats.conn_errors.add(1);
                    return self.close_conn(tag.slot, CloseReason::Error);
                }
            }
        }
        if !more && self.conns[slot].wants_recv() {
            self.arm_recv(tag.slot);
        }
    }

    /// True if the completion belongs to the connection now in its slot (not to an
    /// earlier one whose slot was reused).
    fn is_live(&self, tag: Tag) -> bool {
        self.conns
            .get(tag.slot as usize)
            .is_some_and(|c| c.open && c.gen == tag.gen)
    }

    fn on_send(&mut self, tag: Tag, result: i32) {
        let slot = tag.slot as usize;
        if !self.is_live(tag) {
            self.give_back(tag.bid);
            return;
        }
        self.conns[slot].send_in_flight = false;
        if result < 0 {
            // The buffer is still the head of the queue; close_conn gives it back.
            self.stats.conn_errors.add(1);
            return self.close_conn(tag.slot, CloseReason::Error);
        }
        let n = result as u32;
        self.stats.sends.add(1);
        self.stats.bytes_out.add(n as u64);
        let now = self.clock.now();
        let conn = &mut self.conns[slot];
        debug_assert_eq!(conn.head, tag.bid);
        conn.head_sent += n;
        let control = conn.state.on_sent(n as usize, now, &self.limits);
        let buffer_done = conn.head_sent >= self.buffer_len[tag.bid as usize];
        if buffer_done {
            conn.head = self.buffer_next[tag.bid as usize];
            if conn.head == NO_BUFFER {
                conn.tail = NO_BUFFER;
            }
            conn.head_sent = 0;
        }
        let (finished, rearm) = (
            conn.state.finished(),
            control == ReadControl::Resume && conn.wants_recv(),
        );
        if buffer_done {
            self.give_back(tag.bid);
        }
        if finished {
            return self.close_conn(tag.slot, CloseReason::Finished);
        }
        if rearm {
            self.arm_recv(tag.slot);
        }
        self.send_head(tag.slot);
    }

    /// Closes a connection: cancels whatever is in flight on it, closes its slot, gives
    /// back queued buffers. Completions still on their way carry the old generation and
    /// are recognised as stale.
    fn close_conn(&mut self, slot: u32, reason: CloseReason) {
        let conn = &mut self.conns[slot as usize];
        if !conn.open {
            return;
        }
        let in_flight = conn.send_in_flight.then_some(conn.head);
        // What is still in flight holds the socket open: cancel it by its exact user_data
        // (a hash lookup). Cancelling by file would scan every request of the ring, which
        // made closing N connections cost O(N^2).
        let mut cancel = [None, None];
        if conn.recv_armed {
            cancel[0] = Some(pack(Op::Recv, 0, conn.gen, slot));
        }
        if let Some(bid) = in_flight {
            cancel[1] = Some(pack(Op::Send, bid, conn.gen, slot));
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

    fn close_idle(&mut self) {
        let now: Tick = self.clock.now();
        for slot in 0..self.conns.len() {
            let c = &self.conns[slot];
            if c.open && c.state.idle(now, &self.limits) {
                self.close_conn(slot as u32, CloseReason::Idle);
            }
        }
    }

    /// Stops accepting, closes every connection and waits (bounded) for the closes.
    fn stop(&mut self) -> anyhow::Result<()> {
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
        let deadline = Instant::now() + STOP_DRAIN;
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
    fn user_data_round_trips() {
        for (op, bid, gen, slot) in [
            (Op::Recv, 0, 0, 0),
            (Op::Send, 4095, 65535, MAX_SLOTS - 1),
            (Op::Close, 7, 1, 1_000_000),
        ] {
            let tag = unpack(pack(op, bid, gen, slot));
            assert_eq!(
                tag,
                Tag {
                    op: Some(op),
                    bid,
                    gen,
                    slot
                }
            );
        }
        assert_eq!(unpack(0).op, None);
    }

    #[test]
    fn conn_state_stays_small() {
        assert!(
            std::mem::size_of::<Conn>() <= 32,
            "{}",
            std::mem::size_of::<Conn>()
        );
    }
}
