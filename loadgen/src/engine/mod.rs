//! The run engine: connect, drive the workload, verify, record.
//!
//! Code map:
//! - `plan`: the checked command line, cut into per-loop shares.
//! - `preflight`: does the request fit (ports, fixed-file slots, memory, tcp_mem)?
//! - `worker`: one pinned thread with one io_uring per loop (the data path).
//! - `schedule`: open-loop send times (uniform or Poisson), send lag, punctual waits.
//! - `proto`: what a request is and what its response must be, per `--protocol` (the
//!   echo message, frames, http requests and the http response reader);
//!   `c1m_platform::bufring`: provided receive buffers; `clock`: time.
//! - `procs`: `--procs P`, worker processes and the merge of their run folders.
//! - this file: starts the loops, holds the ramp barrier, prints progress, writes the
//!   report.

mod clock;
mod multi;
mod plan;
mod preflight;
mod procs;
pub mod proto;
mod schedule;
pub(crate) mod worker;

use crate::report;

use crate::cli::{Arrivals, Protocol, RunArgs};
use crate::report::{Environment, Summary, Workload};
use anyhow::Context;
use c1m_platform::metrics::MetricsListener;
use c1m_platform::{cpus, limits, procfs, signals};
use hdrhistogram::Histogram;
use plan::{Mode, Plan};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;
use worker::{Control, IntervalMsg, LoopResult, LoopShared, LoopSpec};

/// Time between the last loop finishing its ramp and the load starting, so every loop
/// sees the start time before it arrives.
const START_DELAY_NS: u64 = 20_000_000;
/// The load stops early once no connection has been open and no echo has come back for
/// this long.
const DEAD_AFTER_NS: u64 = 2_000_000_000;

/// Runs a workload; exit status non-zero when any echo failed verification.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    signals::install_stop_handlers().context("installing SIGINT/SIGTERM handlers")?;
    if args.worker.is_some() {
        procs::die_with_parent();
    }
    // Raise what we may; direct descriptors get past what we may not.
    let nofile = limits::raise_nofile(1 << 20);
    let plan = Plan::from_args(&args, nofile.soft as usize)?;
    let metrics = crate::metrics::bind(&args)?;
    for note in preflight::check(&plan, nofile.soft)? {
        eprintln!("{}preflight: {note}", prefix(&plan));
    }
    if args.procs > 1 && args.worker.is_none() {
        return procs::run_parent(&args, &plan);
    }
    let outcome = drive(&plan, metrics)?;
    let record = build_record(&args, &plan, &outcome);
    if let Some(dir) = &args.out {
        report::write_run_dir(dir, &record)
            .with_context(|| format!("writing the run folder {}", dir.display()))?;
    }
    println!("{}", result_line(&record.summary));
    crate::metrics::linger(&args);
    Ok(exit_code(&record.summary))
}

/// Exit status: 1 when an echo was corrupt or nothing connected; 3 when the run lost
/// connections or echoes (the numbers do not cover what was asked), with what happened.
fn exit_code(s: &Summary) -> ExitCode {
    if s.verify_errors > 0 {
        if s.workload.protocol_desc() == "echo" {
            eprintln!(
                "c1m-loadgen: {} echoes failed verification: corrupt or out of order (bytes differed from \
                 what was sent)",
                s.verify_errors
            );
        } else {
            eprintln!(
                "c1m-loadgen: {} responses failed verification: not what --protocol {} expects \
                 (wrong length, status or bytes; or a response stream that could not be read)",
                s.verify_errors,
                s.workload.protocol_desc()
            );
        }
        return ExitCode::from(1);
    }
    if s.connections_established == 0 {
        eprintln!(
            "c1m-loadgen: no connection was established (connect errors: {:?}); is the server \
             listening at {}?",
            s.connect_errors,
            s.workload.targets.join(", ")
        );
        return ExitCode::from(1);
    }
    let lines = loss_lines(s);
    for line in &lines {
        eprintln!("c1m-loadgen: {line}");
    }
    if lines.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}

/// What was lost, in words, most telling first; empty for a clean run.
fn loss_lines(s: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(why) = &s.stopped_early {
        out.push(format!("the run stopped early: {why}"));
    }
    let l = &s.connection_losses;
    if l.before_first_echo > 0 {
        out.push(format!(
            "the server closed {} connections before their first echo (at connect time): it \
             is at capacity (see its stderr for the limit: --max-conns, RLIMIT_NOFILE or its \
             fixed-file table)",
            l.before_first_echo
        ));
    }
    let after = l.total().saturating_sub(l.before_first_echo);
    if after > 0 {
        out.push(format!(
            "{after} connections were lost during the run ({} closed by the server, {} reset, \
             {} timed out, {} other)",
            l.closed_by_peer, l.reset, l.timed_out, l.other
        ));
    }
    if s.connections_failed > 0 {
        out.push(format!(
            "{} connects failed ({:?})",
            s.connections_failed, s.connect_errors
        ));
    }
    if s.lost_echoes > 0 || s.unanswered_echoes > 0 {
        out.push(format!(
            "{} echoes were lost with their connections and {} were unanswered at the end \
             (lost, not corrupt: verify errors 0)",
            s.lost_echoes, s.unanswered_echoes
        ));
    }
    out
}

fn prefix(plan: &Plan) -> String {
    match plan.worker {
        Some((i, _)) => format!("w{i} "),
        None => String::new(),
    }
}

/// What the loops produced, merged.
struct Outcome {
    results: Vec<LoopResult>,
    intervals: BTreeMap<u64, (Histogram<u64>, u64)>,
    start_ns: u64,
    measured_s: f64,
    machine_busy_pct: Option<f64>,
    loadgen_cpu_pct: Option<f64>,
    cpu_us_per_msg: Option<f64>,
    /// Loadgen spin, % of one CPU, over the measured phase.
    spin_pct: Option<f64>,
    cpu_window: Vec<procfs::CpuBusy>,
    /// Interval histograms that could not be added (see `report::record_ns`).
    unrecorded: u64,
    stopped_early: Option<String>,
}

/// CPU counters at one instant.
#[derive(Clone)]
struct CpuSample {
    at_ns: u64,
    own_s: f64,
    machine: Option<(u64, u64)>,
    per_cpu: Option<BTreeMap<usize, procfs::CpuTicks>>,
}

impl CpuSample {
    fn take() -> CpuSample {
        let t = procfs::process_cpu_times();
        CpuSample {
            at_ns: clock::now_ns(),
            own_s: t.user_s + t.sys_s,
            machine: procfs::machine_cpu_ticks(),
            per_cpu: procfs::per_cpu_ticks(),
        }
    }
}

/// Starts one pinned thread per CPU (each driving its loops), releases the load once every loop has ramped,
/// prints a progress line a second, and collects the results.
fn drive(plan: &Plan, metrics: Option<MetricsListener>) -> anyhow::Result<Outcome> {
    let plan = Arc::new(plan.clone());
    let control = Arc::new(Control::default());
    let (tx, rx) = mpsc::channel::<IntervalMsg>();
    let mut shared = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..plan.loops {
        shared.push(Arc::new(LoopShared::default()));
    }
    let live = match metrics {
        Some(listener) => Some(crate::metrics::start(listener, &shared, &control)?),
        None => None,
    };
    let mut specs = Vec::new();
    for t in 0..plan.threads {
        let mine: Vec<LoopSpec> = plan
            .thread_loops(t)
            .into_iter()
            .map(|l| LoopSpec {
                index: l,
                plan: plan.clone(),
                shared: shared[l].clone(),
                control: control.clone(),
                intervals: tx.clone(),
            })
            .collect();
        specs.push(mine);
    }
    for (t, specs) in specs.into_iter().enumerate() {
        let cpu = plan.thread_cpu(t);
        let handle = std::thread::Builder::new()
            .name(format!("c1m-lg-{t}"))
            .spawn(move || {
                cpus::pin_current_thread(cpu);
                multi::run(specs)
            })
            .context("starting a loop thread")?;
        handles.push(handle);
    }
    drop(tx);

    let pre = prefix(&plan);
    let begin = clock::now_ns();
    let warmup_ns = (plan.warmup_s * 1e9) as u64;
    let duration_ns = (plan.duration_s * 1e9) as u64;
    let mut start_ns = 0u64;
    let mut stop_at: Option<u64> = None;
    let mut intervals: BTreeMap<u64, (Histogram<u64>, u64)> = BTreeMap::new();
    let mut reports_per_index: BTreeMap<u64, usize> = BTreeMap::new();
    let mut next_tick = begin + 1_000_000_000;
    let mut last_received = 0u64;
    let mut last_connects = 0u64;
    let mut last_tick = begin;
    let mut at_m0: Option<CpuSample> = None;
    let mut at_m1: Option<CpuSample> = None;
    let mut unrecorded = 0u64;
    let total = plan.connections as u64;
    // When the load last had an open connection or a new echo, and the echo count then.
    let mut alive = (0u64, 0u64);
    let mut stopped_early: Option<String> = None;
    loop {
        let now = clock::now_ns();
        let wait = Duration::from_nanos(next_tick.saturating_sub(now).clamp(1_000_000, 50_000_000));
        match rx.recv_timeout(wait) {
            Ok(mut m) => {
                if let Some(live) = &live {
                    live.fold(&m.hist, m.counters.take());
                }
                let entry = intervals
                    .entry(m.index)
                    .or_insert_with(|| (report::new_histogram(), 0));
                unrecorded += u64::from(!report::add_into(&mut entry.0, &m.hist));
                entry.1 = entry.1.max(m.length_ns);
                *reports_per_index.entry(m.index).or_default() += 1;
                continue;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {}
        }
        let now = clock::now_ns();
        let finished = handles.iter().filter(|h| h.is_finished()).count();
        if signals::stop_requested() && stop_at.is_none() {
            stop_at = Some(now);
            control.stop.store(true, Ordering::Relaxed);
        }
        if start_ns == 0 {
            if finished > 0 {
                // A loop ended before the start: a setup error; stop the rest.
                control.stop.store(true, Ordering::Relaxed);
            } else if shared.iter().all(|s| s.ramp_done.load(Ordering::Acquire)) {
                let open: u64 = shared.iter().map(|s| s.open.load(Ordering::Relaxed)).sum();
                if open == 0 {
                    // Nothing to load: end now rather than wait out the duration.
                    control.stop.store(true, Ordering::Relaxed);
                }
                start_ns = now + START_DELAY_NS;
                control.start_ns.store(start_ns, Ordering::Release);
                next_tick = start_ns + 1_050_000_000;
                last_tick = start_ns;
            }
        }
        if start_ns != 0 {
            let m0 = start_ns + warmup_ns;
            let m1 = stop_at.map_or(m0 + duration_ns, |s| s.min(m0 + duration_ns));
            if at_m0.is_none() && now >= m0 && stop_at.is_none_or(|s| s >= m0) {
                at_m0 = Some(CpuSample::take());
            }
            if at_m0.is_some() && at_m1.is_none() && now >= m1 {
                at_m1 = Some(CpuSample::take());
            }
        }
        if finished == handles.len() {
            break;
        }
        if start_ns != 0 && stop_at.is_none() && now > start_ns {
            let open: u64 = shared.iter().map(|s| s.open.load(Ordering::Relaxed)).sum();
            let received: u64 = shared
                .iter()
                .map(|s| s.received.load(Ordering::Relaxed))
                .sum();
            if open > 0 || received != alive.1 {
                alive = (now, received);
            } else if now.saturating_sub(alive.0.max(start_ns)) >= DEAD_AFTER_NS {
                // Nothing open and nothing coming back: the rest of the run would measure
                // nothing. Stop and report what was measured.
                let why = format!(
                    "no connection left open and no echo for {} s (the server went away or \
                     closed every connection)",
                    DEAD_AFTER_NS / 1_000_000_000
                );
                eprintln!("{pre}c1m-loadgen: {why}; stopping");
                stopped_early = Some(why);
                stop_at = Some(now);
                control.stop.store(true, Ordering::Relaxed);
            }
        }
        if now >= next_tick {
            let open: u64 = shared.iter().map(|s| s.open.load(Ordering::Relaxed)).sum();
            let errors: u64 = shared
                .iter()
                .map(|s| s.errors.load(Ordering::Relaxed))
                .sum();
            if start_ns == 0 {
                let ok: u64 = shared
                    .iter()
                    .map(|s| s.connects_ok.load(Ordering::Relaxed))
                    .sum();
                let rate = (ok - last_connects) as f64 / ((now - last_tick) as f64 / 1e9);
                last_connects = ok;
                last_tick = now;
                eprintln!(
                    "{pre}[ramp {}s] conns {open}/{total} connects/s {rate:.0} errors {errors}",
                    (now - begin) / 1_000_000_000,
                );
                next_tick += 1_000_000_000;
            } else {
                let received: u64 = shared
                    .iter()
                    .map(|s| s.received.load(Ordering::Relaxed))
                    .sum();
                let rate = (received - last_received) as f64 / ((now - last_tick) as f64 / 1e9);
                last_received = received;
                last_tick = now;
                // The newest second every loop has reported.
                let latest = reports_per_index
                    .iter()
                    .rev()
                    .find(|(_, &n)| n == plan.loops)
                    .map(|(&i, _)| i);
                let (p50, p99) = latest
                    .and_then(|i| intervals.get(&i))
                    .filter(|(h, _)| !h.is_empty())
                    .map_or((String::from("-"), String::from("-")), |(h, _)| {
                        (
                            fmt_us(h.value_at_quantile(0.5)),
                            fmt_us(h.value_at_quantile(0.99)),
                        )
                    });
                let phase = if now < start_ns + warmup_ns {
                    " warmup"
                } else {
                    ""
                };
                eprintln!(
                    "{pre}[{}s{phase}] conns {open} msgs/s {rate:.0} p50 {p50} p99 {p99} errors {errors}",
                    now.saturating_sub(start_ns) / 1_000_000_000
                );
                next_tick += 1_000_000_000;
            }
            if next_tick < now {
                next_tick = now + 1_000_000_000;
            }
        }
    }
    let mut results = Vec::new();
    for h in handles {
        let r = h
            .join()
            .map_err(|_| anyhow::anyhow!("a loop thread panicked"))??;
        results.extend(r);
    }
    // Late intervals (the final partial seconds).
    for mut m in rx.try_iter() {
        if let Some(live) = &live {
            live.fold(&m.hist, m.counters.take());
        }
        let entry = intervals
            .entry(m.index)
            .or_insert_with(|| (report::new_histogram(), 0));
        unrecorded += u64::from(!report::add_into(&mut entry.0, &m.hist));
        entry.1 = entry.1.max(m.length_ns);
    }
    if let Some(live) = &live {
        live.finish(&results);
    }
    let end_sample = CpuSample::take();
    let mut cpu_window = Vec::new();
    let (measured_s, machine_busy_pct, loadgen_cpu_pct, cpu_us_per_msg) = match at_m0 {
        Some(a) => {
            let b = at_m1.unwrap_or(end_sample);
            if let (Some(t0), Some(t1)) = (&a.per_cpu, &b.per_cpu) {
                cpu_window = procfs::cpu_window(t0, t1);
            }
            let m0 = start_ns + warmup_ns;
            let m1 = stop_at.map_or(m0 + duration_ns, |s| s.min(m0 + duration_ns));
            let measured_s = m1.saturating_sub(m0) as f64 / 1e9;
            let wall = (b.at_ns - a.at_ns) as f64 / 1e9;
            let own = b.own_s - a.own_s;
            let busy = match (a.machine, b.machine) {
                (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
                    Some((b1 - b0) as f64 / (t1 - t0) as f64 * 100.0)
                }
                _ => None,
            };
            let received: u64 = results.iter().map(|r| r.received_measured).sum();
            let per_msg = (received > 0).then(|| own * 1e6 / received as f64);
            (
                measured_s,
                busy,
                (wall > 0.0).then(|| own / wall * 100.0),
                per_msg,
            )
        }
        None => (0.0, None, None, None),
    };
    let spin_s = results.iter().map(|r| r.spin_ns).sum::<u64>() as f64 / 1e9;
    let spin_pct =
        (measured_s > 0.0 && loadgen_cpu_pct.is_some()).then(|| spin_s / measured_s * 100.0);
    Ok(Outcome {
        results,
        intervals,
        start_ns,
        measured_s,
        machine_busy_pct,
        loadgen_cpu_pct,
        cpu_us_per_msg,
        spin_pct,
        cpu_window,
        unrecorded,
        stopped_early,
    })
}

fn fmt_us(ns: u64) -> String {
    if ns >= 10_000_000 {
        format!("{:.1}ms", ns as f64 / 1e6)
    } else {
        format!("{}us", ns / 1000)
    }
}

fn add_counts(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// `git rev-parse HEAD`, or `C1M_GIT_REV`, else "unknown".
fn git_revision() -> String {
    if let Ok(rev) = std::env::var("C1M_GIT_REV") {
        if !rev.is_empty() {
            return rev;
        }
    }
    let dirs = [
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|p| p.to_path_buf())),
        std::env::current_dir().ok(),
    ];
    for dir in dirs.into_iter().flatten() {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(&dir)
            .stderr(std::process::Stdio::null())
            .output();
        if let Ok(out) = out {
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
        }
    }
    "unknown".into()
}

fn environment(plan: &Plan) -> Environment {
    let (soft, hard) = limits::nofile();
    Environment {
        command_line: std::env::args().collect(),
        git_revision: git_revision(),
        hostname: procfs::hostname(),
        kernel: procfs::kernel_release(),
        cpu_model: procfs::cpu_model(),
        online_cpus: cpus::online_cpus(),
        loadgen_cpus: plan.cpus.clone(),
        nofile_soft: soft,
        nofile_hard: hard,
        sysctls: procfs::tuning_snapshot(),
        machine_cpu_busy_pct: None,
        loadgen_cpu_pct: None,
        loadgen_cpu_us_per_msg: None,
        loadgen_spin_pct: None,
        loadgen_work_pct: None,
        server_cpus: plan.server_cpus.clone(),
        cpu_window: Vec::new(),
    }
}

fn workload(args: &RunArgs, plan: &Plan) -> Workload {
    Workload {
        kind: plan.mode.name().into(),
        protocol: plan.wire.protocol().name().into(),
        targets: plan.targets.iter().map(|t| t.to_string()).collect(),
        connections: args.connections as u64,
        size: plan.wire.size().unwrap_or(plan.wire.request_len()) as u64,
        request_bytes: plan.wire.request_len() as u64,
        reply_size: match plan.wire.response() {
            proto::Response::Fixed(bytes) => Some((bytes.len() - proto::FRAME_HEADER) as u64),
            _ => None,
        },
        body_size: match plan.wire.response() {
            proto::Response::Http { body } => Some(*body as u64),
            _ => None,
        },
        pipeline: plan.pipeline as u64,
        rate_msgs_per_s: args.rate,
        heartbeat_s: args.heartbeat,
        connect_rate: args.connect_rate,
        source_ips: args
            .source_ips
            .as_deref()
            .map(|s| s.split(',').map(|p| p.trim().to_string()).collect())
            .unwrap_or_default(),
        procs: args.procs as u64,
        duration_s: plan.duration_s,
        warmup_s: plan.warmup_s,
        arrivals: matches!(plan.mode, Mode::Rate(_)).then(|| plan.arrivals.name().to_string()),
        seed: (matches!(plan.mode, Mode::Rate(_)) && plan.arrivals == Arrivals::Poisson)
            .then_some(args.seed),
        batch_waits: plan.batch_waits.name().to_string(),
    }
}

fn default_label(plan: &Plan) -> String {
    match plan.wire.protocol() {
        Protocol::Echo => format!("{}-{}c", plan.mode.name(), plan.total_connections()),
        p => format!(
            "{}-{}-{}c",
            plan.mode.name(),
            p.name(),
            plan.total_connections()
        ),
    }
}

fn build_record(args: &RunArgs, plan: &Plan, o: &Outcome) -> report::RunRecord {
    let mut latency = report::new_histogram();
    let mut connect = report::new_histogram();
    let mut connect_errors = BTreeMap::new();
    let mut connection_errors = BTreeMap::new();
    let (mut sent, mut received, mut verify, mut ok, mut failed, mut churned) = (0, 0, 0, 0, 0, 0);
    let (mut missing, mut lost, mut before_echo) = (0, 0, 0);
    let mut first: Option<u64> = None;
    let mut last: Option<u64> = None;
    let mut lag = report::new_histogram();
    let mut unrecorded = 0;
    for r in &o.results {
        unrecorded += r.unrecorded;
        unrecorded += u64::from(!report::add_into(&mut latency, &r.measured));
        unrecorded += u64::from(!report::add_into(&mut connect, &r.connect));
        add_counts(&mut connect_errors, &r.connect_errors);
        add_counts(&mut connection_errors, &r.connection_errors);
        sent += r.sent_measured;
        received += r.received_measured;
        verify += r.verify_errors;
        missing += r.missing_at_end;
        lost += r.lost_echoes;
        before_echo += r.closed_before_echo;
        ok += r.connects_ok;
        failed += r.connects_failed;
        churned += r.connects_measured;
        first = match (first, r.first_connect_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        last = last.max(r.last_ramp_established_ns);
        unrecorded += u64::from(!report::add_into(&mut lag, &r.send_lag));
    }
    let start_epoch_s = if o.start_ns != 0 {
        clock::wall_at(o.start_ns)
    } else {
        clock::wall_s()
    };
    let intervals = o
        .intervals
        .iter()
        .map(|(&i, (h, len))| report::Interval {
            start_s: i as f64,
            length_s: *len as f64 / 1e9,
            hist: h.clone(),
        })
        .collect();
    let mut env = environment(plan);
    env.machine_cpu_busy_pct = o.machine_busy_pct;
    env.loadgen_cpu_pct = o.loadgen_cpu_pct;
    env.loadgen_cpu_us_per_msg = o.cpu_us_per_msg;
    env.loadgen_spin_pct = o.spin_pct;
    env.loadgen_work_pct = o
        .loadgen_cpu_pct
        .zip(o.spin_pct)
        .map(|(cpu, spin)| (cpu - spin).max(0.0));
    env.cpu_window = o.cpu_window.clone();
    let bound = env.bound();
    let measured_s = o.measured_s;
    let per_s = |n: u64| {
        if measured_s > 0.0 {
            n as f64 / measured_s
        } else {
            0.0
        }
    };
    let lag_us = schedule::lag_summary(&lag).unwrap_or((0.0, 0.0, 0.0));
    let scheduled = plan.mode.scheduled();
    let mut summary = Summary {
        label: args.label.clone().unwrap_or_else(|| default_label(plan)),
        start_time: clock::rfc3339(start_epoch_s),
        environment: env,
        workload: workload(args, plan),
        connections_established: ok,
        connections_failed: failed,
        connection_losses: report::ConnectionLosses::from_causes(&connection_errors, before_echo),
        connect_errors,
        connection_errors,
        ramp_s: match (first, last) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 1e9,
            _ => 0.0,
        },
        connect_latency: report::latency_summary(&connect),
        messages_sent: sent,
        messages_received: received,
        verify_errors: verify,
        lost_echoes: lost,
        unanswered_echoes: missing,
        stopped_early: o.stopped_early.clone(),
        measured_s,
        throughput_msgs_per_s: per_s(received),
        latency: report::latency_summary(&latency),
        coordinated_omission_corrected: plan.mode.scheduled(),
        send_lag_p50_us: scheduled.then_some(lag_us.0),
        send_lag_p99_us: scheduled.then_some(lag_us.1),
        max_send_lag_us: scheduled.then_some(lag_us.2),
        connects_per_s: (plan.mode == Mode::Churn).then(|| per_s(churned)),
        bound,
        values_not_recorded: unrecorded + o.unrecorded,
        round: args.round,
        warnings: Vec::new(),
    };
    summary.warnings = summary.derived_warnings();
    for w in &summary.warnings {
        eprintln!("{}warning: {w}", prefix(plan));
    }
    let enters: u64 = o.results.iter().map(|r| r.enters).sum();
    let cqes: u64 = o.results.iter().map(|r| r.cqes).sum();
    let total_rx: u64 = o.results.iter().map(|r| r.received_total).sum();
    let total_tx: u64 = o.results.iter().map(|r| r.sent_total).sum();
    let peak: u64 = o.results.iter().map(|r| r.peak_open).sum();
    if total_rx > 0 {
        eprintln!(
            "{}loop stats: {peak} connections open at peak, {total_tx} sent, {total_rx} received in all, {:.3} io_uring_enter and {:.2} completions per message",
            prefix(plan),
            enters as f64 / total_rx as f64,
            cqes as f64 / total_rx as f64
        );
    }
    let parked: u64 = o.results.iter().map(|r| r.parked).sum();
    if parked > 0 {
        eprintln!(
            "{}idle connections: {parked} times a quiet connection's recv was replaced by a poll (--idle-after-ms)",
            prefix(plan)
        );
    }
    report::RunRecord {
        summary,
        latency,
        connect_latency: connect,
        intervals,
        start_epoch_s,
    }
}

/// The one-line result on stdout.
fn result_line(s: &Summary) -> String {
    let l = &s.latency;
    let conn_errors: u64 = s.connection_errors.values().sum();
    let mut line = format!(
        "{}: {} {} {} conns ({} established, {} failed), {:.1}s measured: {:.0} msgs/s, latency p50 {:.1}us p90 {:.1}us p99 {:.1}us p99.9 {:.1}us max {:.1}us{}; verify errors {}; connect errors {}; connection errors {}; lost echoes {}; unanswered echoes {}",
        s.label,
        s.workload.kind,
        s.workload.protocol_desc(),
        s.workload.connections,
        s.connections_established,
        s.connections_failed,
        s.measured_s,
        s.throughput_msgs_per_s,
        l.p50_us,
        l.p90_us,
        l.p99_us,
        l.p999_us,
        l.max_us,
        if s.coordinated_omission_corrected { " (from intended send time)" } else { "" },
        s.verify_errors,
        s.connections_failed,
        conn_errors,
        s.lost_echoes,
        s.unanswered_echoes,
    );
    let l = &s.connection_losses;
    if l.total() > 0 {
        line.push_str(&format!(
            " (closed by server {}, reset {}, timed out {}, other {}; {} before their first echo)",
            l.closed_by_peer, l.reset, l.timed_out, l.other, l.before_first_echo
        ));
    }
    if let Some(why) = &s.stopped_early {
        line.push_str(&format!("; stopped early: {why}"));
    }
    if let Some(c) = s.connects_per_s {
        line.push_str(&format!("; {c:.0} connects/s"));
    }
    if let (Some(p99), Some(max)) = (s.send_lag_p99_us, s.max_send_lag_us) {
        line.push_str(&format!("; send lag p99 {p99:.0}us max {max:.0}us"));
    }
    if let Some(c) = s.environment.loadgen_cpu_us_per_msg {
        line.push_str(&format!("; loadgen cpu {c:.2} us/msg"));
    }
    line
}
