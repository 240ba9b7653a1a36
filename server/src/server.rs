//! Process topology: bind the listeners, start one pinned thread per event loop, print
//! "listening on", report stats, stop on SIGINT/SIGTERM, write the final JSON.

use crate::backend::{self, LoopContext, UringOptions};
use crate::capacity::{Capacity, RefusalWarnings};
use crate::config::{Args, Backend};
use crate::metrics::ServerMetrics;
use crate::stats::{interval_line, ConnCount, LoopStats, Totals};
use anyhow::{anyhow, Context};
use c1m_platform::metrics::MetricsListener;
use c1m_platform::{cpus, limits, net, procfs, signals};
use serde::Serialize;
use std::io::Write;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Why the server stopped with an error, and the exit status that goes with it.
#[derive(Debug)]
pub enum Failure {
    /// Bad flags, address in use, backend unavailable: fix the input (exit 2).
    Setup(anyhow::Error),
    /// Something broke while serving (exit 1).
    Runtime(anyhow::Error),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Setup(_) => 2,
            Failure::Runtime(_) => 1,
        }
    }

    pub fn error(&self) -> &anyhow::Error {
        match self {
            Failure::Setup(e) | Failure::Runtime(e) => e,
        }
    }
}

/// How long loops get to finish setup, and to close everything after a stop.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(4);

/// Kernel fds a loop needs besides connections (listeners, ring, epoll, eventfds).
const FDS_PER_LOOP_OVERHEAD: u64 = 16;

/// Final stats, written to `--stats-json`.
#[derive(Debug, Serialize)]
pub struct ServerReport {
    pub backend: Backend,
    pub protocol: crate::proto::ProtocolKind,
    /// Loop threads, and the rings they drive (more than one per thread when one ring's
    /// fixed-file table cannot hold a thread's share; other backends: one each).
    pub loops: usize,
    pub rings: usize,
    pub cpus: Vec<usize>,
    pub listen: Vec<String>,
    pub pid: u32,
    pub nofile_soft: u64,
    pub nofile_hard: u64,
    pub fixed_slots_per_loop: Option<u32>,
    pub peak_connections: usize,
    pub open_connections_at_exit: usize,
    pub wall_s: f64,
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    /// Server CPU microseconds per receive (a receive carries one or more messages).
    pub cpu_us_per_recv: Option<f64>,
    /// Syscalls the event loops made; null where the backend cannot count them
    /// (tokio-uring enters its ring inside the runtime).
    pub syscalls: Option<u64>,
    pub syscalls_per_recv: Option<f64>,
    /// What `syscalls` covers for this backend.
    pub syscalls_counted: &'static str,
    pub rss_baseline_bytes: u64,
    pub rss_peak_bytes: u64,
    pub rss_at_exit_bytes: u64,
    /// (peak RSS - RSS before the first connection) / peak connections.
    pub rss_per_peak_conn_bytes: Option<f64>,
    /// Connections closed at once without being served, by the limit that was full.
    pub refused: Refused,
    #[serde(flatten)]
    pub totals: Totals,
}

/// Refusals by reason, in `server.json`.
#[derive(Debug, Serialize)]
pub struct Refused {
    pub max_conns: u64,
    pub fd_limit: u64,
    pub fixed_table: u64,
}

struct Loop {
    handle: JoinHandle<anyhow::Result<()>>,
}

/// Parses nothing, validates everything, serves until SIGINT/SIGTERM.
pub fn run(args: Args) -> Result<(), Failure> {
    let setup = Failure::Setup;
    let limits = args.limits().map_err(|e| setup(e.into()))?;
    let protocol = args.protocol().map_err(|e| setup(e.into()))?;
    let stats_every = args.stats_interval().map_err(|e| setup(e.into()))?;
    args.check_buffers().map_err(|e| setup(e.into()))?;
    args.check_uring_flags().map_err(|e| setup(e.into()))?;
    let cpus = cpus::resolve_cpus(args.cpus.as_deref())
        .map_err(|e| setup(anyhow!(e).context("--cpus")))?;
    if args.loops == Some(0) {
        return Err(setup(anyhow!(
            "--loops 0: give at least 1 (or leave it out for one per CPU)"
        )));
    }
    signals::install_stop_handlers()
        .context("installing SIGINT/SIGTERM handlers")
        .map_err(setup)?;
    backend::check_available(args.backend).map_err(setup)?;

    // Each connection needs an fd, except in the uring backend where it needs a slot in
    // a fixed-file table, and one table may not be larger than RLIMIT_NOFILE.
    let want_fds = args.max_conns.map_or(1 << 20, |m| m as u64 + 1024);
    let nofile = limits::raise_nofile(want_fds);
    // Loop threads; every thread drives one ring, or several (uring, below).
    let loops = args.loops.unwrap_or(cpus.len());
    let mut rings = loops;
    let mut fixed_slots = None;
    if args.backend == Backend::Uring {
        let per_ring = nofile.soft.min(1 << 20) as u32;
        // Tests only: smaller tables, so one thread drives several rings at a few
        // connections.
        let per_ring = args.ring_slots.map_or(per_ring, |s| s.clamp(1, per_ring));
        if let Some(max) = args.max_conns {
            // SO_REUSEPORT spreads connections by hash, not evenly: leave 1/8 headroom so
            // one ring's table does not fill while others have room.
            let needed = (max + max / 8).div_ceil(per_ring as usize);
            if needed > rings {
                eprintln!(
                    "c1m-server: {max} connections need {needed} rings of {per_ring} fixed-file slots \
                     (RLIMIT_NOFILE {}): {loops} loop threads over CPUs {} drive them",
                    nofile.soft,
                    cpus::format_cpu_list(&cpus)
                );
                rings = needed;
            }
        }
        // A table only as large as this ring's share of --max-conns (plus the headroom),
        // since the CQ is sized from it.
        let share = args
            .max_conns
            .map_or(per_ring as usize, |m| (m + m / 8).div_ceil(rings).max(64));
        fixed_slots = Some(per_ring.min(share as u32));
    } else if let Some(max) = args.max_conns {
        let fds = max as u64 + FDS_PER_LOOP_OVERHEAD * loops as u64;
        if fds > nofile.soft {
            eprintln!(
                "c1m-server: warning: --max-conns {max} needs about {fds} fds but RLIMIT_NOFILE is {}; \
                 connections past that are refused by the kernel (EMFILE). Raise `ulimit -n` or run \
                 several server processes on the same port (SO_REUSEPORT).",
                nofile.soft
            );
        }
    }

    // Bind everything before starting threads, so "address in use" is a clean exit 2.
    let metrics_listener = match &args.metrics_listen {
        Some(addr) => Some(MetricsListener::bind(addr).map_err(|e| setup(e.into()))?),
        None => None,
    };
    let mut per_ring: Vec<Vec<std::net::TcpListener>> = (0..rings).map(|_| Vec::new()).collect();
    let mut listen_addrs = Vec::new();
    for &addr in &args.listen {
        let group = net::bind_reuseport_group(addr, rings).map_err(|e| setup(e.into()))?;
        let resolved = group[0]
            .local_addr()
            .context("reading the bound address")
            .map_err(setup)?;
        listen_addrs.push(resolved);
        for (i, l) in group.into_iter().enumerate() {
            per_ring[i].push(l);
        }
    }

    let conns = Arc::new(ConnCount::default());
    let rss_baseline = procfs::self_status_bytes("VmRSS").unwrap_or(0);
    let started = Instant::now();
    let mut running = Vec::with_capacity(loops);
    let mut all_stats = Vec::with_capacity(rings);
    let (ready_tx, ready_rx) = mpsc::sync_channel(rings);
    // Ring i runs on loop thread i % loops.
    let mut per_thread: Vec<Vec<LoopContext>> = (0..loops).map(|_| Vec::new()).collect();
    for (index, listeners) in per_ring.into_iter().enumerate() {
        let thread = index % loops;
        let cpu = cpus[thread % cpus.len()];
        let stats = Arc::new(LoopStats::default());
        all_stats.push(stats.clone());
        let ctx = LoopContext {
            index,
            cpu,
            listeners,
            limits,
            protocol: protocol.clone(),
            conns: conns.clone(),
            stats: stats.clone(),
            uring: UringOptions {
                buffers: args.buffers_per_loop(rings, cpus.len()),
                buffer_size: args.buffer_size,
                fixed_slots: fixed_slots.unwrap_or(0),
                submit_batch: args.submit_batch,
                cq_entries: args.cq_entries,
                coalesce_us: args.coalesce_us,
                quick_sends: !args.plain_sends,
                idle_after_ms: args.idle_after_ms(),
                start_parked_from: args
                    .start_parked_from
                    .unwrap_or(crate::backend::uring::START_PARKED_FROM),
            },
            ready: ready_tx.clone(),
        };
        per_thread[thread].push(ctx);
    }
    for (index, ctxs) in per_thread.into_iter().enumerate() {
        let backend = args.backend;
        let cpu = cpus[index % cpus.len()];
        let handle = std::thread::Builder::new()
            .name(format!("c1m-{}-{index}", backend.name()))
            .spawn(move || {
                if !cpus::pin_current_thread(cpu) {
                    eprintln!("c1m-server: warning: could not pin loop {index} to CPU {cpu}");
                }
                let result = backend::run_thread(backend, ctxs);
                if result.is_err() {
                    signals::request_stop();
                }
                result
            })
            .context("starting a loop thread")
            .map_err(Failure::Runtime)?;
        running.push(Loop { handle });
    }
    drop(ready_tx);

    for _ in 0..rings {
        let outcome = ready_rx
            .recv_timeout(SETUP_TIMEOUT)
            .map_err(|_| anyhow!("an event loop did not start within {SETUP_TIMEOUT:?}"));
        if let Err(e) = outcome.and_then(|r| r) {
            signals::request_stop();
            join_all(running, Instant::now() + STOP_TIMEOUT);
            return Err(setup(
                e.context(format!("starting the {} backend", args.backend.name())),
            ));
        }
    }

    if let Some(listener) = metrics_listener {
        let collector = ServerMetrics {
            backend: args.backend,
            loops: all_stats.clone(),
            conns: conns.clone(),
        };
        if let Err(e) = listener.serve_collector(collector) {
            signals::request_stop();
            join_all(running, Instant::now() + STOP_TIMEOUT);
            return Err(Failure::Runtime(
                anyhow!(e).context("starting the metrics thread"),
            ));
        }
    }

    let mut out = std::io::stdout().lock();
    for addr in &listen_addrs {
        let _ = writeln!(out, "listening on {addr}");
    }
    let _ = out.flush();
    drop(out);

    let capacity = Capacity {
        backend: args.backend,
        rings,
        nofile_soft: nofile.soft,
        nofile_hard: nofile.hard,
        max_conns: args.max_conns,
        fixed_slots,
    };
    if let Some(line) = capacity.uring_startup_line() {
        eprintln!("{line}");
    }
    let mut warnings = RefusalWarnings::default();
    let sum = || Totals::sum(all_stats.iter().map(|s| s.as_ref()));
    let mut prev = sum();
    let mut last_line = Instant::now();
    let mut rss_peak = rss_baseline;
    while !signals::stop_requested() && !running.iter().any(|l| l.handle.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(every) = stats_every {
            if last_line.elapsed() >= every {
                let now = sum();
                let secs = last_line.elapsed().as_secs_f64();
                eprintln!("{}", interval_line(&now, &prev, conns.open(), secs));
                prev = now;
                last_line = Instant::now();
            }
        }
        rss_peak = rss_peak.max(procfs::self_status_bytes("VmRSS").unwrap_or(0));
        for line in warnings.lines(&capacity, &sum(), Instant::now()) {
            eprintln!("{line}");
        }
    }
    signals::request_stop();

    let errors = join_all(running, Instant::now() + STOP_TIMEOUT);
    let totals = sum();
    let cpu = procfs::process_cpu_times();
    let peak = conns.peak();
    let rss_peak = rss_peak.max(procfs::self_status_bytes("VmHWM").unwrap_or(0));
    let per_recv = |x: f64| (totals.recvs > 0).then(|| x / totals.recvs as f64);
    let syscalls_counted = args.backend != Backend::TokioUring;
    let report = ServerReport {
        backend: args.backend,
        protocol: args.protocol,
        loops,
        rings,
        cpus: cpus.clone(),
        listen: listen_addrs.iter().map(|a| a.to_string()).collect(),
        pid: std::process::id(),
        nofile_soft: nofile.soft,
        nofile_hard: nofile.hard,
        fixed_slots_per_loop: fixed_slots,
        peak_connections: peak,
        open_connections_at_exit: conns.open(),
        wall_s: started.elapsed().as_secs_f64(),
        cpu_user_s: cpu.user_s,
        cpu_sys_s: cpu.sys_s,
        cpu_us_per_recv: per_recv((cpu.user_s + cpu.sys_s) * 1e6),
        syscalls: syscalls_counted.then(|| totals.syscalls()),
        syscalls_per_recv: per_recv(totals.syscalls() as f64).filter(|_| syscalls_counted),
        syscalls_counted: match args.backend {
            Backend::Uring => "all: io_uring_enter",
            Backend::Epoll => "all: epoll_wait, read, write, accept4, epoll_ctl, close",
            Backend::Tokio => "read, write, accept4 attempts; not the runtime's epoll_wait",
            Backend::TokioUring => "none: the runtime enters its ring internally",
        },
        rss_baseline_bytes: rss_baseline,
        rss_peak_bytes: rss_peak,
        rss_at_exit_bytes: procfs::self_status_bytes("VmRSS").unwrap_or(0),
        rss_per_peak_conn_bytes: (peak > 0)
            .then(|| rss_peak.saturating_sub(rss_baseline) as f64 / peak as f64),
        refused: Refused {
            max_conns: totals.rejected,
            fd_limit: totals.refused_fd_limit,
            fixed_table: totals.refused_fixed_table,
        },
        totals,
    };
    if let Some(path) = &args.stats_json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| Failure::Runtime(e.into()))?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("writing --stats-json {}", path.display()))
            .map_err(Failure::Runtime)?;
    }
    match errors.into_iter().next() {
        Some(e) => Err(Failure::Runtime(e)),
        None => Ok(()),
    }
}

/// Waits for every loop until `deadline`; returns the errors of loops that failed.
/// Loops still running at the deadline are left behind: the process exits anyway.
fn join_all(running: Vec<Loop>, deadline: Instant) -> Vec<anyhow::Error> {
    let mut errors = Vec::new();
    for l in running {
        while !l.handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if !l.handle.is_finished() {
            eprintln!(
                "c1m-server: warning: a loop did not stop within {STOP_TIMEOUT:?}; exiting anyway"
            );
            continue;
        }
        match l.handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push(anyhow!("an event loop panicked")),
        }
    }
    errors
}
