//! One event loop: a pinned thread with its own io_uring driving its share of the
//! connections through ramp-up, warm-up, the measured phase and a short drain.
//!
//! Per loop iteration: take the time once, walk every ready completion, queue what the
//! workload wants next, then one `io_uring_enter` submits everything and waits (with a
//! timeout) for the next completion. Sockets live only in the ring's fixed-file table, so
//! the process holds a few ordinary fds however many connections it has.

use super::clock::now_ns;
use super::plan::{Mode, Plan};
use super::proto::{fixed_response::FixedReader, http_response::ResponseReader, Response};
use super::schedule::{self, RateClock, SPIN_NS};
use crate::cli::BatchWaits;
use crate::report::{new_histogram, record_ns};
use c1m_platform::bufring::BufRing;
use c1m_platform::net::{client_socket, errno_name};
use c1m_platform::quick::{QuickSend, QuickSends};
use c1m_platform::signals;
use c1m_platform::sweep::{park_period, phase_of, SlotSweep};
use hdrhistogram::Histogram;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use socket2::SockAddr;
use std::collections::{BTreeMap, VecDeque};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

mod idle;
mod lifecycle;
mod ops;
mod quick;
mod results;
mod sizing;
mod submit;
mod timing;
mod verify;

use ops::*;
pub use results::LoopCounters;
use sizing::{buffer_geometry, ring_sizes};

/// Longest a wait holds back a completion to batch more (see `Core::wait_batch`).
const MAX_BATCH_WAIT_US: u64 = 50;
/// Batched waits ask for one completion per this many messages in flight...
const BATCH_DIVISOR: u64 = 8;
/// ... and at most this many.
const MAX_BATCH: u64 = 64;
/// Connects in flight per loop at most, so the server's SYN and accept queues
/// (`tcp_max_syn_backlog`, `somaxconn`) are not overrun into retransmits.
const CONNECTS_IN_FLIGHT_TOTAL: usize = 1024;
/// A connect that has not completed after this long counts as ETIMEDOUT.
const CONNECT_TIMEOUT_S: u64 = 10;
/// After the measured phase: how long echoes still in flight may take to come back.
const DRAIN_GRACE_NS: u64 = 3_000_000_000;
const DRAIN_GRACE_STOPPED_NS: u64 = 1_000_000_000;
/// Longest single wait, so stop requests and phase changes are seen promptly.
const MAX_WAIT_NS: u64 = 50_000_000;
const SECOND: u64 = 1_000_000_000;

/// Asked of every loop by the main thread.
#[derive(Debug, Default)]
pub struct Control {
    /// Monotonic ns at which the workload starts (0: not yet; set once all loops ramped).
    pub start_ns: AtomicU64,
    /// End the run early (signal, or the ramp could not finish).
    pub stop: AtomicBool,
    /// `--metrics-listen`: attach a [`LoopCounters`] to every interval.
    pub counters: AtomicBool,
}

/// What a loop publishes for the progress line: plain stores, read once a second.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct LoopShared {
    pub open: AtomicU64,
    pub connects_ok: AtomicU64,
    pub connects_failed: AtomicU64,
    pub received: AtomicU64,
    pub errors: AtomicU64,
    pub ramp_done: AtomicBool,
}

/// One second of one loop's latencies (the last one may be shorter).
pub struct IntervalMsg {
    pub index: u64,
    pub length_ns: u64,
    pub hist: Histogram<u64>,
    /// The loop's counters as this interval was sent (with `Control::counters` only).
    pub counters: Option<Box<LoopCounters>>,
}

/// What a loop hands back at the end.
pub struct LoopResult {
    pub measured: Histogram<u64>,
    pub connect: Histogram<u64>,
    pub sent_measured: u64,
    pub received_measured: u64,
    pub sent_total: u64,
    pub received_total: u64,
    pub verify_errors: u64,
    /// Echoes outstanding on connections that were lost (never coming back).
    pub lost_echoes: u64,
    /// Connections lost before any echo came back on them.
    pub closed_before_echo: u64,
    pub missing_at_end: u64,
    pub connect_errors: BTreeMap<String, u64>,
    pub connection_errors: BTreeMap<String, u64>,
    pub connects_ok: u64,
    pub connects_failed: u64,
    pub connects_measured: u64,
    pub peak_open: u64,
    pub first_connect_ns: Option<u64>,
    pub last_ramp_established_ns: Option<u64>,
    /// Open loop: how late each scheduled send went out (ns), measured phase only.
    pub send_lag: Histogram<u64>,
    pub enters: u64,
    pub cqes: u64,
    /// Values a histogram could not hold (counted, never clamped; 0 in practice).
    pub unrecorded: u64,
    /// Measured phase: ns spent polling for a scheduled send with nothing to do.
    pub spin_ns: u64,
    /// Times a quiet connection's recv was replaced by a poll (`--idle-after-ms`).
    pub parked: u64,
}

/// Everything one loop is told.
pub struct LoopSpec {
    pub index: usize,
    pub plan: Arc<Plan>,
    pub shared: Arc<LoopShared>,
    pub control: Arc<Control>,
    pub intervals: Sender<IntervalMsg>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    /// No socket in the slot.
    Idle,
    Connecting,
    Open,
    /// Churn: exchange done, FIN sent, waiting for the server's EOF.
    ShutSent,
    /// Close of the fixed slot submitted.
    Closing,
    /// Failed or lost for good (not churn).
    Dead,
}

/// Per-connection state; the message bytes live in the loop's `txbuf`.
#[derive(Clone, Copy)]
struct Conn {
    /// Messages queued (the next sequence number).
    tx_seq: u64,
    /// Messages whose echo is complete.
    rx_seq: u64,
    /// Stream bytes the kernel has taken (completed sends).
    tx_sent: u64,
    t_connect: u64,
    gen: u32,
    /// Bytes of the send in flight.
    send_len: u32,
    /// Where the response to message `rx_seq` is (echo, frame).
    rx: FixedReader,
    incarnation: u32,
    st: St,
    send_busy: bool,
    /// A quick send came back short: plain sends until the connection caught up.
    send_blocked: bool,
    /// What watches the socket for input (`idle.rs`).
    watch: idle::Watch,
    /// When data last arrived (or the connect completed), ns.
    t_quiet: u64,
    dirty: bool,
}

impl Conn {
    const EMPTY: Conn = Conn {
        tx_seq: 0,
        rx_seq: 0,
        tx_sent: 0,
        t_connect: 0,
        gen: 0,
        send_len: 0,
        rx: FixedReader::new(),
        incarnation: 0,
        st: St::Idle,
        send_busy: false,
        send_blocked: false,
        watch: idle::Watch::Off,
        t_quiet: 0,
        dirty: false,
    };
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Ramp,
    WaitStart,
    Load,
    Drain,
}

pub(super) struct Loop {
    // Field order matters: the ring drops (and stops using the buffers) before `bufs`.
    ring: IoUring,
    bufs: BufRing,
    pub(super) core: Core,
    cqes: Vec<(u64, i32, u32)>,
}

/// Everything but the ring and the receive buffers, so completion handlers can borrow a
/// received buffer and the connection state at the same time.
pub(super) struct Core {
    plan: Arc<Plan>,
    index: usize,
    shared: Arc<LoopShared>,
    control: Arc<Control>,
    intervals: Sender<IntervalMsg>,
    bgid: u16,

    n: usize,
    /// Bytes of one request (`plan.wire.request_len()`): a send-ring slot.
    req_len: usize,
    /// echo and frame: bytes of one response, and how many of its first bytes frame it.
    resp_len: usize,
    framing_len: usize,
    cap: u64,
    ring_bytes: usize,
    conns: Vec<Conn>,
    /// Per connection `cap` request slots: request `seq` lives in slot `seq % cap` until
    /// its response has been verified (its send time is read from there).
    txbuf: Vec<u8>,
    /// http: each connection's response reader (empty for other protocols).
    readers: Vec<ResponseReader>,
    /// One socket address per `plan.targets` entry (stable: connects point into it).
    targets: Vec<SockAddr>,
    target_index: Vec<u16>,
    sources: Vec<Option<std::net::IpAddr>>,
    heartbeat_offset: Vec<f64>,

    sqes: Vec<(squeue::Entry, bool)>,
    dirty: Vec<u32>,
    to_connect: VecDeque<u32>,
    connecting: usize,
    max_connecting: usize,
    connect_timeout: types::Timespec,

    now: u64,
    phase: Phase,
    ramp_start: u64,
    connect_rate: Option<f64>,
    connects_started: u64,
    start: u64,
    m0: u64,
    m1: u64,
    drain_deadline: u64,
    stopped_early: bool,

    // Open-loop schedule.
    next_s: u64,
    cursor: usize,
    /// Rate mode: every connection is at its in-flight cap; wait for an echo.
    sched_blocked: bool,
    /// Heartbeat: the period; rate: see `rate_clock`.
    period_ns: f64,
    /// Rate mode: the intended time of the next message (uniform or Poisson).
    rate_clock: Option<RateClock>,

    ivl: Histogram<u64>,
    ivl_index: u64,
    measured: Histogram<u64>,
    connect_hist: Histogram<u64>,
    open: u64,
    peak_open: u64,
    sent_total: u64,
    sent_measured: u64,
    received_total: u64,
    received_measured: u64,
    verify_errors: u64,
    lost_echoes: u64,
    closed_before_echo: u64,
    connects_ok: u64,
    connects_failed: u64,
    connects_measured: u64,
    connect_errors: BTreeMap<String, u64>,
    connection_errors: BTreeMap<String, u64>,
    first_connect_ns: Option<u64>,
    last_ramp_established_ns: Option<u64>,
    send_lag: Histogram<u64>,
    enters: u64,
    cqes: u64,
    unrecorded: u64,
    spin_ns: u64,
    quick: QuickSends,
    /// `--idle-after-ms` in ns, the parking walk (a step of slots at a time, on the
    /// monotonic ns clock), and connections parked (`idle.rs`).
    idle_after_ns: Option<u64>,
    park_sweep: SlotSweep,
    parked: u64,
    /// The kernel can wait for several completions with a bound (min_wait, 6.12+).
    can_batch_waits: bool,
    /// How long a wait may hold back the first completion to collect more (µs): 1% of
    /// the last second's median latency, at most `MAX_BATCH_WAIT_US`; 0 when latency is
    /// low. The echo's receive time is late by at most this much.
    batch_wait_us: u32,
}

impl Loop {
    /// A loop with its ring. `shared_wait`: the ring is one of several its thread waits
    /// on together (see `multi`); it raises the TASKRUN flag when completion work is
    /// queued, which `step` reads.
    pub(super) fn new(spec: LoopSpec, shared_wait: bool) -> anyhow::Result<Loop> {
        let plan = spec.plan.clone();
        let l = spec.index;
        let n = plan.loop_connections(l);
        let (buf_count, buf_size) = buffer_geometry(&plan, n);
        let (sq, cq) = ring_sizes(n, usize::from(buf_count));
        let mut builder = IoUring::builder();
        if shared_wait {
            builder.setup_taskrun_flag();
        }
        let ring: IoUring = builder
            // Only this thread submits: lets the kernel skip submission locking.
            .setup_single_issuer()
            // Completion work runs when we wait, in our context, not via IPIs and
            // interrupts at random points: fewer context switches, better batching.
            .setup_defer_taskrun()
            // One bad SQE must not stop the rest of the batch from being submitted.
            .setup_submit_all()
            .setup_cqsize(cq)
            .setup_clamp()
            .build(sq)
            .map_err(|e| {
                anyhow::anyhow!(
                    "io_uring setup failed ({e}): needs Linux 6.1+ with kernel.io_uring_disabled = 0"
                )
            })?;
        ring.submitter()
            .register_files_sparse(n as u32)
            .map_err(|e| {
                anyhow::anyhow!(
                    "registering {n} fixed-file slots failed ({e}): one ring holds at most RLIMIT_NOFILE slots"
                )
            })?;
        let bgid = 1;
        let bufs = BufRing::new(buf_count, buf_size, bgid)?;
        bufs.register(&ring.submitter()).map_err(|e| {
            anyhow::anyhow!("registering the provided-buffer ring failed ({e}): needs Linux 5.19+")
        })?;

        let req_len = plan.wire.request_len();
        let cap = plan.inflight_cap as u64;
        let ring_bytes = req_len * plan.inflight_cap;
        let mut readers = Vec::new();
        if matches!(plan.wire.response(), Response::Http { .. }) {
            readers.resize_with(n, ResponseReader::default);
        }
        let total = plan.total_connections() as f64;
        let mut target_index = Vec::with_capacity(n);
        let mut sources = Vec::with_capacity(n);
        let mut heartbeat_offset = Vec::with_capacity(n);
        for j in 0..n {
            let g = plan.global_index(l, j);
            let (t, s) = plan.endpoints(g);
            let ti = plan.targets.iter().position(|x| *x == t).unwrap_or(0);
            target_index.push(ti as u16);
            sources.push(s);
            heartbeat_offset.push(g as f64 / total);
        }
        let (period_ns, rate_clock) = match plan.mode {
            Mode::Rate(_) => {
                let p = 1e9 / plan.loop_rate(l).max(1e-9);
                let seed = schedule::loop_seed(plan.seed, l);
                let clock = RateClock::new(plan.arrivals, p, p * plan.loop_phase(l), seed);
                (p, Some(clock))
            }
            Mode::Heartbeat(secs) => (secs * 1e9, None),
            _ => (0.0, None),
        };
        let max_connecting = (CONNECTS_IN_FLIGHT_TOTAL / plan.loops).max(16);
        let core = Core {
            index: l,
            shared: spec.shared,
            control: spec.control,
            intervals: spec.intervals,
            bgid,
            n,
            req_len,
            resp_len: plan.wire.response_len(),
            framing_len: plan.wire.framing_len(),
            cap,
            ring_bytes,
            conns: vec![Conn::EMPTY; n],
            txbuf: vec![0u8; n * ring_bytes],
            readers,
            targets: plan.targets.iter().map(|t| SockAddr::from(*t)).collect(),
            target_index,
            sources,
            heartbeat_offset,
            sqes: Vec::with_capacity(sq as usize),
            dirty: Vec::with_capacity(n),
            to_connect: (0..n as u32).collect(),
            connecting: 0,
            max_connecting,
            connect_timeout: types::Timespec::new().sec(CONNECT_TIMEOUT_S),
            now: now_ns(),
            phase: Phase::Ramp,
            ramp_start: 0,
            connect_rate: plan.loop_connect_rate(l),
            idle_after_ns: plan.idle_after_ms.map(|ms| u64::from(ms) * 1_000_000),
            park_sweep: SlotSweep::new(
                plan.idle_after_ms.map(park_period),
                Duration::from_nanos(now_ns()),
                phase_of(l),
            ),
            parked: 0,
            connects_started: 0,
            start: 0,
            m0: 0,
            m1: 0,
            drain_deadline: 0,
            stopped_early: false,
            next_s: 0,
            cursor: 0,
            sched_blocked: false,
            period_ns,
            rate_clock,
            ivl: new_histogram(),
            ivl_index: 0,
            measured: new_histogram(),
            connect_hist: new_histogram(),
            open: 0,
            peak_open: 0,
            sent_total: 0,
            sent_measured: 0,
            received_total: 0,
            received_measured: 0,
            verify_errors: 0,
            lost_echoes: 0,
            closed_before_echo: 0,
            connects_ok: 0,
            connects_failed: 0,
            connects_measured: 0,
            connect_errors: BTreeMap::new(),
            connection_errors: BTreeMap::new(),
            first_connect_ns: None,
            last_ramp_established_ns: None,
            send_lag: new_histogram(),
            enters: 0,
            cqes: 0,
            unrecorded: 0,
            spin_ns: 0,
            // CQE skipping: Linux 5.17+; without it every send posts a completion.
            quick: QuickSends::new(ring.params().is_feature_skip_cqe_on_success()),
            can_batch_waits: ring.params().is_feature_min_timeout()
                && plan.batch_waits == BatchWaits::Auto,
            batch_wait_us: 0,
            plan,
        };
        Ok(Loop {
            ring,
            bufs,
            core,
            cqes: Vec::with_capacity(4096),
        })
    }

    pub(super) fn run(&mut self) -> anyhow::Result<LoopResult> {
        schedule::fine_timer_slack();
        self.core.ramp_start = now_ns();
        loop {
            let t0 = now_ns();
            self.core.now = t0;
            let n = self.reap();
            if !self.advance() {
                break;
            }
            self.core.flush_sends();
            self.bufs.publish();
            let wake = self.core.wake_at();
            if wake <= self.core.now + 1_000 || self.core.quick_holds_up_work() {
                // A scheduled send is too close to sleep for: poll until it is due. Or a
                // quick send must be settled before the rest of its bytes can go.
                let idle = n == 0 && self.core.sqes.is_empty();
                self.enter_nowait()?;
                if idle {
                    self.core.note_spin(t0);
                }
            } else {
                self.submit_and_wait(wake - self.core.now)?;
            }
        }
        Ok(self.core.finish())
    }

    /// The ring, for registering its eventfd.
    pub(super) fn ring(&self) -> &IoUring {
        &self.ring
    }

    /// Walks every ready completion (then advances the CQ once); `core.now` must be
    /// fresh. Returns how many there were.
    pub(super) fn reap(&mut self) -> usize {
        self.core.rollover_intervals();
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.clear();
        {
            let mut cq = self.ring.completion();
            cq.sync();
            cqes.extend(cq.map(|c| (c.user_data(), c.result(), c.flags())));
        }
        self.core.cqes += cqes.len() as u64;
        self.settle_quick(&cqes);
        for (i, &(ud, res, flags)) in cqes.iter().enumerate() {
            // Keep timestamps honest through a long batch.
            if i % 64 == 63 {
                self.core.now = now_ns();
            }
            self.complete(ud, res, flags);
        }
        let n = cqes.len();
        self.cqes = cqes;
        n
    }

    /// One step of a loop that shares its thread's wait: completions, the work the clock
    /// asks for, then (when there is anything to submit, or deferred completion work, or
    /// `force`) one `io_uring_enter` that submits and runs the ring's deferred completion
    /// work without sleeping, and the completions that produced. The ring's eventfd is off
    /// meanwhile, so the step's own completions do not wake the thread again.
    ///
    /// Returns (completions walked, still running, step again before sleeping, whether
    /// it submitted anything).
    pub(super) fn step(&mut self, force: bool) -> anyhow::Result<(usize, bool, bool, bool)> {
        self.ring.completion().disable_eventfd();
        self.core.now = now_ns();
        let mut n = self.reap();
        if !self.advance() {
            return Ok((n, false, false, false));
        }
        self.core.flush_sends();
        self.bufs.publish();
        self.push_sqes()?;
        let submits = !self.ring.submission().is_empty();
        if force || submits || self.ring.submission().taskrun() {
            self.enter_nowait()?;
            self.core.now = now_ns();
            n += self.reap();
        }
        self.ring.completion().enable_eventfd();
        // Work queued while the eventfd was off raised the TASKRUN flag without a signal:
        // look at the flag only after turning the signal back on (pairs with the kernel's
        // flag-then-signal order).
        std::sync::atomic::fence(Ordering::SeqCst);
        let again = self.ring.submission().taskrun()
            || self.ring.submission().cq_overflow()
            || !self.ring.completion().is_empty()
            || !self.core.sqes.is_empty()
            || !self.core.dirty.is_empty()
            || self.core.quick_holds_up_work();
        Ok((n, true, again, submits))
    }

    /// Counts the time since `t0` as spent polling for a scheduled send (see
    /// [`Core::note_spin`]).
    pub(super) fn note_spin(&mut self, t0: u64) {
        self.core.note_spin(t0);
    }

    /// The loop's results (after `step` returned false).
    pub(super) fn finish(&mut self) -> LoopResult {
        self.core.finish()
    }

    /// Monotonic ns by which the loop wants its next step even without completions
    /// (`SPIN_NS` before a scheduled send: the rest of the way is polled).
    pub(super) fn deadline(&self) -> u64 {
        self.core.wake_at()
    }

    /// Starts the ramp clock.
    pub(super) fn begin(&mut self) {
        self.core.ramp_start = now_ns();
    }

    /// Phase changes and the work the clock asks for. False when the loop is done.
    fn advance(&mut self) -> bool {
        let c = &mut self.core;
        let stop = c.control.stop.load(Ordering::Relaxed) || signals::stop_requested();
        // Parked as they go quiet, during the ramp too: not all at once when load begins.
        c.park_idle();
        match c.phase {
            Phase::Ramp => {
                if stop {
                    c.to_connect.clear();
                }
                self.start_connects();
                let c = &mut self.core;
                if c.to_connect.is_empty() && c.connecting == 0 {
                    c.phase = Phase::WaitStart;
                    c.shared.ramp_done.store(true, Ordering::Release);
                }
            }
            Phase::WaitStart => {
                let start = c.control.start_ns.load(Ordering::Acquire);
                if stop && start == 0 {
                    c.begin_drain(true);
                } else if start != 0 && c.now >= start {
                    c.begin_load(start);
                }
            }
            Phase::Load => {
                if stop || c.now >= c.m1 {
                    let early = c.now < c.m1;
                    if early {
                        c.m1 = c.now;
                    }
                    c.begin_drain(early);
                } else {
                    c.schedule_sends();
                    self.start_connects();
                }
            }
            Phase::Drain => {
                if c.quiet() || c.now >= c.drain_deadline {
                    return false;
                }
            }
        }
        true
    }

    fn complete(&mut self, ud: u64, res: i32, flags: u32) {
        let (op, gen, slot) = unpack(ud);
        match op {
            OP_RECV => {
                let bid = cqueue::buffer_select(flags);
                let c = &mut self.core;
                let current = (slot as usize) < c.n && c.conns[slot as usize].gen == gen;
                if current {
                    if res > 0 {
                        if let Some(bid) = bid {
                            let data = self.bufs.data(bid, res as usize);
                            c.on_data(slot, data);
                        }
                    }
                    c.on_recv_status(slot, res, cqueue::more(flags));
                }
                // Every buffer goes back, whatever became of its connection.
                if let Some(bid) = bid {
                    self.bufs.give_back(bid);
                }
            }
            OP_CONNECT => self.core.on_connect(slot, gen, res),
            OP_SEND => self.core.on_send(slot, gen, res),
            OP_SEND_QUICK => self.core.on_quick_short(slot, gen, res),
            OP_POLL => self.core.on_poll(slot, gen),
            OP_CLOSE => self.core.on_close(slot, gen),
            OP_SHUTDOWN if res < 0 => self.core.on_shutdown_failed(slot, gen, res),
            // Link timeouts and cancels report nothing the connect/recv does not.
            _ => {}
        }
    }
}

impl Core {
    fn in_window(&self) -> bool {
        self.now >= self.m0 && self.now < self.m1
    }

    fn conn_id(&self, slot: u32) -> u64 {
        let g = self.plan.global_index(self.index, slot as usize) as u64;
        g | u64::from(self.conns[slot as usize].incarnation) << 40
    }

    fn begin_load(&mut self, start: u64) {
        self.phase = Phase::Load;
        self.start = start;
        self.m0 = start + (self.plan.warmup_s * 1e9) as u64;
        self.m1 = self.m0 + (self.plan.duration_s * 1e9) as u64;
        self.now = self.now.max(start);
        for slot in 0..self.n as u32 {
            if self.conns[slot as usize].st == St::Open {
                self.kick(slot);
            }
        }
        self.schedule_sends();
    }

    fn begin_drain(&mut self, early: bool) {
        self.stopped_early |= early;
        self.phase = Phase::Drain;
        self.to_connect.clear();
        self.drain_deadline = self.now
            + if early {
                DRAIN_GRACE_STOPPED_NS
            } else {
                DRAIN_GRACE_NS
            };
    }

    /// Nothing more to wait for: every echo back, no connect or churn close pending.
    fn quiet(&self) -> bool {
        self.connecting == 0
            && self.conns.iter().all(|c| match c.st {
                St::Open => c.rx_seq == c.tx_seq,
                St::ShutSent | St::Closing | St::Connecting => false,
                St::Idle | St::Dead => true,
            })
    }

    /// Writes the next request of `slot` into its send ring and marks the connection for
    /// the next send flush. `ts` is what latency is measured from.
    fn enqueue(&mut self, slot: u32, ts: u64) -> bool {
        let id = self.conn_id(slot);
        let j = slot as usize;
        let c = &mut self.conns[j];
        if c.tx_seq - c.rx_seq >= self.cap {
            return false;
        }
        let base = j * self.ring_bytes + (c.tx_seq % self.cap) as usize * self.req_len;
        let slot_bytes = &mut self.txbuf[base..base + self.req_len];
        self.plan.wire.fill(slot_bytes, id, c.tx_seq, ts);
        c.tx_seq += 1;
        self.unpark_for_send(slot);
        let c = &mut self.conns[j];
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(slot);
        }
        self.sent_total += 1;
        if self.now >= self.m0 && self.now < self.m1 {
            self.sent_measured += 1;
        }
        true
    }

    /// One send per connection with queued bytes and none in flight: everything queued
    /// that is contiguous in its send ring. (One send at a time per connection keeps the
    /// stream in order even when a send is short or waits for socket space.)
    fn flush_sends(&mut self) {
        for i in 0..self.dirty.len() {
            let slot = self.dirty[i];
            let j = slot as usize;
            let c = &mut self.conns[j];
            c.dirty = false;
            if c.send_busy || !matches!(c.st, St::Open) {
                continue;
            }
            let queued = c.tx_seq * self.req_len as u64;
            if c.tx_sent >= queued {
                continue;
            }
            let off = (c.tx_sent % self.ring_bytes as u64) as usize;
            let len = ((queued - c.tx_sent) as usize).min(self.ring_bytes - off);
            let ptr = self.txbuf[j * self.ring_bytes + off..].as_ptr();
            let quick = self.quick.enabled && !c.send_blocked;
            let e = if quick {
                // All or a completion: see `quick.rs`.
                opcode::Send::new(types::Fixed(slot), ptr, len as u32)
                    .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL | libc::MSG_DONTWAIT)
                    .build()
                    .flags(squeue::Flags::SKIP_SUCCESS)
                    .user_data(pack(OP_SEND_QUICK, c.gen, slot))
            } else {
                opcode::Send::new(types::Fixed(slot), ptr, len as u32)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(pack(OP_SEND, c.gen, slot))
            };
            c.send_busy = true;
            c.send_len = len as u32;
            self.sqes.push((e, false));
        }
        self.dirty.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_round_trips() {
        let ud = pack(OP_SEND, 0xAB_CDEF, 19_999);
        assert_eq!(unpack(ud), (OP_SEND, 0xAB_CDEF, 19_999));
        assert_eq!(unpack(pack(OP_CLOSE, 0x1FF_FFFF, 7)).1, 0xFF_FFFF);
    }
}
