//! The one case runner, for every scenario: any server ([`crate::server`]: c1m-server
//! process(es) or nginx) and any client ([`crate::client`]: loadgen shards or wrk), from
//! free ports to a run folder with case.json, cmd.txt, summary.json, server.json (merged
//! from server-procs/*.json when several servers ran), hold.json for the hold scenario,
//! server_cpu.json for the http scenario, or FAILED with the reason.

use crate::case::{Case, Kind, Server};
use crate::client;
use crate::client::Measured;
use crate::http::cpu::{Sampler, Samples, WindowCpu};
use crate::observe::perf;
use crate::plan::{self, Backend, PORT_HI, PORT_LO};
use crate::report;
use crate::report::folder::{CaseRecord, CASE_FILE};
use crate::runner::{append, slab_snapshot, wait_drained, Ctx, HoldSampler};
use crate::server;
use crate::topology::case_sysctls::CaseSysctls;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Fails (warns on a dry run) when a backend with its own binary (the Go reference) is
/// asked for and that binary is not built; paths are relative to the repository.
pub fn check_own_binaries(backends: &[Backend], dry_run: bool) -> anyhow::Result<()> {
    for b in backends {
        let Some(bin) = b.own_binary().filter(|p| !Path::new(p).is_file()) else {
            continue;
        };
        let why = format!(
            "the {} backend needs {bin}: scripts/c1m.sh builds it when --backends names {} \
             (it needs Go: sudo scripts/setup.sh installs golang-go)",
            b.name(),
            b.name()
        );
        if !dry_run {
            anyhow::bail!("{why}");
        }
        crate::warn(why);
    }
    Ok(())
}

/// Runs one case into `sdir/<name>`: any server, any client. Never fails for the
/// case's own failure (that leaves FAILED in its folder and a line in
/// `ctx.failures`); fails on a signal or when the run cannot go on.
pub fn run_case(ctx: &mut Ctx, sdir: &Path, case: &Case) -> anyhow::Result<()> {
    let dir = crate::safe_fs::create_dir_new_below(sdir, Path::new(&case.name))?;
    append(&sdir.join("runs.txt"), &format!("{}\n", case.name))?;
    let mut t0 = Instant::now();
    let procs = match &case.server {
        // http: one process, whose CPU is sampled and whose answer is probed.
        Server::C1m(v) if !case.is_http() => ctx.limits.procs_for(v.backend, case.conns),
        Server::C1m(_) | Server::Nginx => 1,
    };
    if procs > 1 {
        crate::safe_fs::ensure_dir(&dir.join("server-procs"))?;
    }
    let maxc = ctx
        .limits
        .server_max_conns(case.conns, procs, case.max_conns);
    let hold = case.kind == Kind::Hold;
    let drain = if hold { 180 } else { 30 };
    wait_drained(ctx.topo, Duration::from_secs(drain), ctx.start_inuse + 1000)?;
    let ports = crate::free::pick_ports(procs, &ctx.topo.listening_ports());
    let mut reason = ports
        .is_none()
        .then(|| format!("no {procs} free ports in {PORT_LO}-{PORT_HI}"));
    crate::safe_fs::write(&dir.join("cmd.txt"), "")?;
    let (own, own_link) = match &case.server {
        Server::C1m(v) => (v.sysctls.as_slice(), v.link.as_ref()),
        Server::Nginx => (&[][..], None),
    };
    let sysctls = CaseSysctls::apply(ctx.topo, &ctx.sysctl, own)?;
    let link = crate::topology::case_link::CaseLink::apply(ctx.topo, own_link)?;
    write_case_json(&dir, case, &sysctls, link.record())?;
    let mut s = HoldSampler {
        slab_before_kb: crate::preflight::meminfo_kb("Slab"),
        inuse_before: ctx.topo.tcp_inuse(),
        ..HoldSampler::default()
    };
    s.slab_peak_kb = s.slab_before_kb;
    if hold {
        s.sl_before = slab_snapshot(&dir.join("slab-before.txt")).unwrap_or(0);
        s.sl_peak = s.sl_before;
    }
    let mut window = None;
    let mut profile = None;
    if let (None, Some(ports)) = (&reason, &ports) {
        let (started, why) = server::start(ctx, &dir, case, ports, maxc)?;
        reason = why;
        if reason.is_none() {
            let (measured, p) = measure(ctx, &dir, case, ports, &mut s, &started.pids)?;
            profile = p;
            match measured {
                Ok(m) => window = m,
                Err(why) => reason = Some(why),
            }
            t0 = Instant::now();
        }
        if !started.pids.is_empty() {
            reason = server::stop(ctx, &dir, case, &started, reason)?;
        }
    }
    link.undo()?;
    sysctls.undo(&ctx.sysctl)?;
    if let (None, Some((m, samples))) = (&reason, &window) {
        match WindowCpu::of(&samples.samples, m.window.0, m.window.1, m.requests) {
            Ok(w) => crate::safe_fs::write(
                &dir.join("server_cpu.json"),
                format!("{:#}\n", w.to_json(samples, m.from)),
            )?,
            Err(why) => reason = Some(why),
        }
    }
    if let Some(p) = profile {
        write_profile(
            &dir,
            case,
            &p,
            window.as_ref().map(|w| &w.0),
            reason.is_some(),
        );
    }
    finish(ctx, sdir, &dir, case, procs, reason, &s, t0)
}

/// The client's run against the started servers `pids`, with the kernel counters around
/// it, the server's CPU sampled (http) and its profile recorded (`--perf`).
#[allow(clippy::type_complexity)]
fn measure(
    ctx: &mut Ctx,
    dir: &Path,
    case: &Case,
    ports: &[u16],
    s: &mut HoldSampler,
    pids: &[i32],
) -> anyhow::Result<(
    Result<Option<(Measured, Samples)>, String>,
    Option<perf::Stopped>,
)> {
    // This machine's /proc: not where a host's server runs.
    let here = ctx.topo.placement.server.site.remote.is_none();
    let sampler = match (case.is_http() && here, pids.first()) {
        (true, Some(&pid)) => Some(Sampler::start(pid)),
        _ => None,
    };
    let recording = perf::start(ctx, dir, pids)?;
    let k0 = crate::experiments::Snapshot::take(ctx.topo);
    let measured = client::run(ctx, dir, case, ports, s)?;
    k0.write(&crate::experiments::Snapshot::take(ctx.topo), dir)?;
    let profile = recording.map(|r| r.stop(ctx));
    let samples = sampler.map(Sampler::finish);
    Ok((measured.map(|m| m.zip(samples)), profile))
}

/// `--perf`: the profile of the measured window (the client's, else the loadgen's
/// latency.hlog); a failed case keeps no perf.data. A profile that cannot be made is
/// a warning: the case measured what it measured.
fn write_profile(dir: &Path, case: &Case, p: &perf::Stopped, m: Option<&Measured>, failed: bool) {
    let window = match m {
        Some(m) => Ok((m.window, m.from)),
        None => crate::http::cpu::loadgen_window(&dir.join("latency.hlog"))
            .map(|w| (w, "c1m-loadgen's measured phase (latency.hlog: StartTime + the Tag=measured interval)")),
    };
    let done = match window {
        Ok((w, from)) if !failed => p.write(dir, &case.name, w, from),
        Ok(_) => p.discard(dir),
        Err(e) => p.discard(dir).and(Err(e)),
    };
    if let Err(e) = done {
        crate::warn(format!("{}: no server profile: {e:#}", case.name));
    }
}

/// case.json: which variant, scenario, point and round this folder is (what the
/// reports read first), the sysctls the variant set for it, as read back, and its link;
/// sysctls.txt the same for a reader.
fn write_case_json(
    dir: &Path,
    case: &Case,
    sysctls: &CaseSysctls,
    link: Option<serde_json::Value>,
) -> anyhow::Result<()> {
    let record = CaseRecord {
        variant: Some(case.server.variant_name().into()),
        server: Some(case.server.name().into()),
        client: Some(case.client.name().into()),
        scenario: Some(case.scenario.name().into()),
        point: case.point.clone(),
        connections: Some(case.conns),
        rate_req_per_s: case.rate.filter(|_| case.is_http()).map(|r| r as f64),
        round: case.round.map(u64::from),
        body_size: case.body_size().filter(|_| case.is_http()),
        server_flags: match &case.server {
            Server::C1m(v) => v.server_flags.clone(),
            Server::Nginx => Vec::new(),
        },
        protocol: Some(case.wire.name().into()),
        sysctls: sysctls.read_back.clone(),
        link,
    };
    let about = serde_json::to_value(&record)?;
    crate::safe_fs::write(&dir.join(CASE_FILE), format!("{about:#}\n"))?;
    if !sysctls.read_back.is_empty() {
        crate::safe_fs::write(&dir.join("sysctls.txt"), sysctls.text())?;
    }
    Ok(())
}

/// After the processes stopped: server.json, hold.json, FAILED or the client's result
/// line (and, for http, the server's CPU per request over the measured window).
#[allow(clippy::too_many_arguments)]
fn finish(
    ctx: &mut Ctx,
    sdir: &Path,
    dir: &Path,
    case: &Case,
    procs: u64,
    mut reason: Option<String>,
    s: &HoldSampler,
    t0: Instant,
) -> anyhow::Result<()> {
    let pdir = dir.join("server-procs");
    if procs > 1 && pdir.is_dir() {
        let mut parts: Vec<PathBuf> = fs::read_dir(&pdir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        parts.sort();
        if report::merge_server(&dir.join("server.json"), &parts).is_err() && reason.is_none() {
            reason = Some("no server.json from any server process".into());
        }
    }
    let has_server_json = fs::metadata(dir.join("server.json")).is_ok_and(|m| m.len() > 0);
    // nginx keeps no statistics of its own: its CPU comes from /proc.
    if reason.is_none() && !has_server_json && case.server != Server::Nginx {
        reason = Some("server wrote no server.json".into());
    }
    if case.kind == Kind::Hold {
        // Teardown: until 98% of this run's 2 x conns sockets are gone.
        wait_drained(
            ctx.topo,
            Duration::from_secs(180),
            plan::hold_drain_target(s.inuse_before, case.conns),
        )?;
        let facts = report::HoldFacts {
            slab_before_kb: s.slab_before_kb,
            slab_peak_kb: s.slab_peak_kb,
            slabinfo_before_bytes: s.sl_before,
            slabinfo_peak_bytes: s.sl_peak,
            tcp_inuse_before: s.inuse_before,
            tcp_inuse_peak: s.inuse_peak,
            teardown_s: t0.elapsed().as_secs_f64().round() as u64,
            server_processes: procs,
            connections_asked: case.conns,
            heartbeat_s: ctx.scale.hb,
        };
        if let Err(e) = report::hold_json(dir, &facts) {
            crate::warn(format!("{e:#}"));
        }
    }
    if let Some(l) = crate::observe::metrics::run_md_line(&case.name, dir) {
        crate::safe_fs::append(&sdir.join("run.md"), &l)?;
    }
    let scenario = sdir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match reason {
        Some(why) => {
            crate::safe_fs::write(&dir.join("FAILED"), format!("{why}\n"))?;
            ctx.failures
                .push(format!("{} ({scenario}): {why}", case.name));
            crate::warn(format!("{} FAILED: {why}", case.name));
        }
        None => {
            // The loadgen's one-line summary starts with its label.
            let needle = format!("{}: ", ctx.label(&case.name));
            let mut last = String::new();
            for f in ["loadgen.out", "loadgen.log"] {
                let text = fs::read_to_string(dir.join(f)).unwrap_or_default();
                if let Some(l) = text.lines().rfind(|l| l.contains(&needle)) {
                    last = l.chars().take(240).collect();
                }
            }
            crate::log(last);
            if case.is_http() {
                let cpu = report::RunFolder::read(dir)
                    .ok()
                    .and_then(|r| r.window_cpu_us_per_req);
                let cpu = cpu.map_or_else(|| "-".into(), |c| format!("{c:.2}"));
                crate::log(format!(
                    "{}: server CPU {cpu} µs/request over the measured window",
                    case.name
                ));
            }
        }
    }
    Ok(())
}
