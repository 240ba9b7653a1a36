//! The client side of a case, any client: c1m-loadgen (its shards, [`crate::shards`])
//! or wrk (a warm-up run of its own, then the measured run, parsed into summary.json).
//! For the http scenario it also says over which window the server's CPU is measured.

use crate::case::{Case, Client};
use crate::http::{cpu, wrk};
use crate::interrupt;
use crate::runner::{append, quote_cmd, tail_words, Ctx, HoldSampler};
use crate::safe_fs;
use crate::shards::run_loadgen;
use crate::topology::placement::Site;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the client measured: its window (seconds since the epoch), the requests
/// answered in it, and where the window came from.
pub(crate) struct Measured {
    pub(crate) window: (f64, f64),
    pub(crate) requests: u64,
    pub(crate) from: &'static str,
}

/// Runs the case's client against `ports`. Ok(Err): why the run failed; Ok(Ok(None)):
/// it ran and no window is wanted (every scenario but http).
pub(crate) fn run(
    ctx: &mut Ctx,
    dir: &Path,
    case: &Case,
    ports: &[u16],
    sampler: &mut HoldSampler,
) -> anyhow::Result<Result<Option<Measured>, String>> {
    match case.client {
        Client::Loadgen => {
            if let Some(why) = run_loadgen(ctx, dir, case, ports, sampler)? {
                return Ok(Err(why));
            }
            if !case.is_http() {
                return Ok(Ok(None));
            }
            let window = match cpu::loadgen_window(&dir.join("latency.hlog")) {
                Ok(w) => w,
                Err(e) => return Ok(Err(format!("{e:#}"))),
            };
            let requests =
                c1m_loadgen::report::read_summary(dir).map_or(0, |s| s.messages_received);
            Ok(Ok(Some(Measured {
                window,
                requests,
                from: "c1m-loadgen's measured phase (latency.hlog: StartTime + the Tag=measured interval)",
            })))
        }
        Client::Wrk if ctx.observe.metrics => {
            let mut w = crate::observe::metrics::Watch::default();
            w.none("client", "wrk has no metrics endpoint");
            w.finish(&case.name, dir)?;
            run_wrk_at(ctx, dir, case, ports)
        }
        Client::Wrk => run_wrk_at(ctx, dir, case, ports),
    }
}

/// wrk against the case's first port.
fn run_wrk_at(
    ctx: &mut Ctx,
    dir: &Path,
    case: &Case,
    ports: &[u16],
) -> anyhow::Result<Result<Option<Measured>, String>> {
    match ports.first() {
        Some(&port) => Ok(run_wrk(ctx, dir, case, port)?.map(Some)),
        None => Ok(Err("wrk needs a server port".into())),
    }
}

/// Runs one wrk (output into `stem`.out/.log) until it ends or `limit`; returns its exit
/// status and the wall clock at its start and end.
fn wrk_once(
    ctx: &mut Ctx,
    dir: &Path,
    stem: &str,
    argv: &[String],
    limit: Duration,
) -> anyhow::Result<(i32, f64, f64)> {
    append(&dir.join("cmd.txt"), &format!("{}\n", quote_cmd(argv)))?;
    let (out, log) = (
        dir.join(format!("{stem}.out")),
        dir.join(format!("{stem}.log")),
    );
    let t0 = cpu::now_s();
    let pid = ctx.procs.spawn(argv, &out, &log)?;
    let deadline = Instant::now() + limit;
    // Polled often: the end of the process is the end of its measured window.
    while ctx.procs.alive(pid) && Instant::now() < deadline {
        interrupt::sleep(Duration::from_millis(10))?;
    }
    let t1 = cpu::now_s();
    let rc = ctx
        .procs
        .stop(libc::SIGTERM, Duration::from_secs(5), &[pid]);
    Ok((rc.first().copied().unwrap_or(0), t0, t1))
}

fn run_wrk(
    ctx: &mut Ctx,
    dir: &Path,
    case: &Case,
    port: u16,
) -> anyhow::Result<Result<Measured, String>> {
    let url = format!("http://{}/", ctx.topo.placement.listen(port));
    let (warm, secs) = (
        wrk::whole_secs(ctx.scale.warm.value),
        wrk::whole_secs(ctx.scale.dur.value),
    );
    let env = crate::server::http_env(ctx)?;
    // wrk is one process: it runs where the first loadgen shard would, on all the
    // loadgen CPUs (on a host: that host's).
    let (site, cpus) = match ctx.topo.placement.clients.first() {
        Some(c) if c.site.remote.is_some() => (c.site.clone(), c.cpus.clone()),
        Some(c) => (c.site.clone(), ctx.split.loadgen.clone()),
        None => (Site::here(), ctx.split.loadgen.clone()),
    };
    let tools = &env.at(&site)?.tools;
    let argv_for = |secs| {
        site.command(wrk::argv(
            &tools.taskset,
            &tools.wrk,
            &cpus,
            case.conns,
            secs,
            &url,
        ))
    };
    let (rc, _, _) = wrk_once(
        ctx,
        dir,
        "wrk-warmup",
        &argv_for(warm),
        Duration::from_secs(warm + 30),
    )?;
    if rc != 0 {
        let why = tail_words(&dir.join("wrk-warmup.log"), 2, |_| true);
        return Ok(Err(format!("wrk (warm-up) exit status {rc}: {why}")));
    }
    let argv = argv_for(secs);
    let start_time = crate::timefmt::utc_iso();
    let (rc, t0, t1) = wrk_once(ctx, dir, "wrk", &argv, Duration::from_secs(secs + 30))?;
    let text = fs::read_to_string(dir.join("wrk.out")).unwrap_or_default();
    if rc != 0 {
        let why = tail_words(&dir.join("wrk.log"), 2, |_| true);
        return Ok(Err(format!("wrk exit status {rc}: {why}")));
    }
    let report = match wrk::parse(&text) {
        Ok(r) => r,
        Err(e) => return Ok(Err(format!("{e:#}"))),
    };
    let label = ctx.label(&case.name);
    let meta = wrk::Meta {
        label: &label,
        round: case.round,
        start_time: &start_time,
        command_line: &argv,
        url: &url,
        warmup_s: warm,
        loadgen_cpus: &cpus,
    };
    safe_fs::write(
        &dir.join("summary.json"),
        format!("{:#}\n", wrk::summary_json(&report, &meta)),
    )?;
    let line = format!(
        "{label}: {} connections, {:.0} msgs/s, p50 {:.1} µs, p99 {:.1} µs (wrk)\n",
        report.connections,
        report.requests_per_s,
        report.percentile(50.0).unwrap_or(f64::NAN),
        report.percentile(99.0).unwrap_or(f64::NAN)
    );
    safe_fs::write(&dir.join("loadgen.out"), line)?;
    Ok(Ok(Measured {
        window: (t0, t1),
        requests: report.requests,
        from: "the measured wrk process, from its start to its end as c1m-bench saw them (its 1,000 connects and closes included; the warm-up was a wrk run of its own before it)",
    }))
}
