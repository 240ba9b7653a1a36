//! The loadgen side of one case: one `c1m-loadgen run` per shard of the placement
//! (one on loopback, one per client namespace on netns), each where its client runs
//! and with its own run folder, waited for together; with several shards their folders
//! are merged into the case folder (the code of `c1m-loadgen merge DIR... --out DIR`,
//! which cmd.txt records).

use crate::case::{Case, Kind};
use crate::interrupt;
use crate::observe::metrics;
use crate::plan;
use crate::runner::{append, quote_cmd, stderr_is_tty, tail_words, Ctx, Follower, HoldSampler};
use crate::topology::hosts::remote::fetch_dir;
use crate::topology::hosts::ssh::SSH_FAILED;
use anyhow::Context as _;
use c1m_loadgen::report::merge_records;
use c1m_loadgen::report::rundir::{read_run_dir, write_run_dir};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The loadgen's exit status when it measured but lost connections, connects or echoes
/// (corrupt bytes are status 1).
const LOADGEN_LOSSES: i32 = 3;

/// One started shard.
struct Started {
    pid: i32,
    dir: PathBuf,
    /// Index into the placement's clients.
    client: usize,
}

/// Runs the loadgen shards of `case` against `ports` until they end or their deadline;
/// samples the hold. Returns why it failed, if it did. A plan that cannot place the
/// connections (too few source addresses) is an error for the whole run.
pub(crate) fn run_loadgen(
    ctx: &mut Ctx,
    dir: &Path,
    case: &Case,
    ports: &[u16],
    sampler: &mut HoldSampler,
) -> anyhow::Result<Option<String>> {
    let placement = &ctx.topo.placement;
    let shards = placement
        .shards(&case.shard_load(), ports.len() as u64)
        .map_err(anyhow::Error::msg)?;
    let mut started = Vec::new();
    for shard in &shards {
        let client = &placement.clients[shard.client];
        let sdir = match &shard.subdir {
            Some(sub) => dir.join(sub),
            None => dir.to_path_buf(),
        };
        crate::safe_fs::ensure_dir(&sdir)
            .with_context(|| format!("cannot create {}", sdir.display()))?;
        let mut argv: Vec<String> = vec![client.site.program(&ctx.loadgen_bin), "run".into()];
        for &p in ports {
            argv.extend(["--target".into(), placement.listen(p)]);
        }
        argv.extend(["--cpus".into(), client.cpus.clone()]);
        // One kernel (loopback, netns): the loadgen's /proc/stat sees the server's CPUs,
        // so its summary can say which side was saturated.
        if placement.server.site.remote.is_none() && client.site.remote.is_none() {
            argv.extend(["--server-cpus".into(), ctx.split.server.clone()]);
        }
        if let Some(size) = case.msg_size() {
            argv.extend(["--size".into(), size.to_string()]);
        }
        argv.extend(case.wire.args());
        argv.extend([
            "--label".into(),
            ctx.label(&case.name),
            "--out".into(),
            client.site.file(&sdir),
        ]);
        argv.extend(shard.args.iter().cloned());
        argv.extend(case.loadgen_args.iter().cloned());
        if let Some(r) = case.round {
            argv.extend(["--round".into(), r.to_string()]);
        }
        if ctx.observe.metrics {
            argv.extend(metrics::listen_args(metrics_addr(&client.sources)));
        }
        let argv = client.site.command(argv);
        append(&dir.join("cmd.txt"), &format!("{}\n", quote_cmd(&argv)))?;
        let pid = ctx
            .procs
            .spawn(&argv, &sdir.join("loadgen.out"), &sdir.join("loadgen.log"))?;
        started.push(Started {
            pid,
            dir: sdir,
            client: shard.client,
        });
    }
    let mut reason = wait(ctx, dir, case, &started, sampler)?;
    if reason.is_none() && started.len() > 1 {
        reason = merge(ctx, dir, case, &started)?;
    }
    Ok(reason)
}

/// Where a shard's metrics endpoint listens: its client's first source address (its
/// own, on netns and hosts), else loopback.
fn metrics_addr(sources: &[std::net::Ipv4Addr]) -> std::net::Ipv4Addr {
    sources
        .first()
        .copied()
        .unwrap_or(std::net::Ipv4Addr::LOCALHOST)
}

/// `--metrics`: the shards' logs, watched for their scrape addresses.
fn metrics_watch(ctx: &Ctx, started: &[Started]) -> Option<metrics::Watch> {
    if !ctx.observe.metrics {
        return None;
    }
    let mut w = metrics::Watch::default();
    for (i, s) in started.iter().enumerate() {
        let who = if started.len() > 1 {
            format!("loadgen shard {i}")
        } else {
            "loadgen".into()
        };
        let netns = ctx.topo.placement.clients[s.client].site.netns.clone();
        w.add(who, s.dir.join("loadgen.log"), netns);
    }
    Some(w)
}

/// Waits for every shard (sampling a hold), stops them, and says why the run failed.
fn wait(
    ctx: &mut Ctx,
    dir: &Path,
    case: &Case,
    started: &[Started],
    sampler: &mut HoldSampler,
) -> anyhow::Result<Option<String>> {
    let mut follow = match started.first() {
        Some(s) if stderr_is_tty() => Some(Follower::new(s.dir.join("loadgen.log"))),
        _ => None,
    };
    let hold = case.kind == Kind::Hold;
    let deadline = Instant::now()
        + Duration::from_secs(plan::loadgen_deadline_s(case.conns, hold, &ctx.scale));
    let pids: Vec<i32> = started.iter().map(|s| s.pid).collect();
    let mut reason = None;
    let mut watch = metrics_watch(ctx, started);
    while pids.iter().any(|&p| ctx.procs.alive(p)) {
        if let Some(w) = watch.as_mut() {
            w.poll(&case.name);
        }
        if hold {
            let inuse = ctx.topo.tcp_inuse();
            sampler.sample(dir, &ctx.tmp, inuse);
        }
        if Instant::now() >= deadline {
            reason = Some("loadgen still running past its deadline; stopped".to_owned());
            break;
        }
        if let Some(f) = follow.as_mut() {
            f.pump();
        }
        interrupt::sleep(Duration::from_millis(500))?;
    }
    let statuses = ctx
        .procs
        .stop(libc::SIGTERM, Duration::from_secs(10), &pids);
    if let Some(f) = follow.as_mut() {
        f.pump();
    }
    if let Some(w) = watch {
        w.finish(&case.name, dir)?;
    }
    for (i, (s, rc)) in started.iter().zip(statuses).enumerate() {
        if let Some(r) = &ctx.topo.placement.clients[s.client].site.remote {
            if rc == SSH_FAILED {
                anyhow::bail!(
                    "client host {}: the ssh connection failed or was lost (ssh exit 255) while its loadgen ran; see {}",
                    r.target,
                    s.dir.join("loadgen.log").display()
                );
            }
            if let Err(e) = fetch_dir(&r.ssh, &r.target, &r.file(&s.dir), &s.dir) {
                reason.get_or_insert_with(|| format!("{e:#}"));
            }
        }
        if reason.is_none() && rc != 0 {
            let why = tail_words(&s.dir.join("loadgen.log"), 2, |l| !l.starts_with('['));
            let which = if started.len() > 1 {
                format!("loadgen shard {i}")
            } else {
                "loadgen".into()
            };
            if rc == LOADGEN_LOSSES {
                // Measured, with losses it counted by cause (the errors column shows
                // them): a result to read with care, not a failed run.
                crate::warn(format!("{which} lost connections or echoes: {why}"));
            } else {
                reason = Some(format!("{which} exit status {rc}: {why}"));
            }
        }
    }
    Ok(reason)
}

/// Merges the shards' folders into `dir` and leaves the merged result line in
/// `dir/loadgen.out` (where a single loadgen's would be).
fn merge(
    ctx: &Ctx,
    dir: &Path,
    case: &Case,
    started: &[Started],
) -> anyhow::Result<Option<String>> {
    let dirs: Vec<PathBuf> = started.iter().map(|s| s.dir.clone()).collect();
    let mut shown = vec![ctx.loadgen_bin.display().to_string(), "merge".to_owned()];
    shown.extend(dirs.iter().map(|d| d.display().to_string()));
    shown.extend(["--out".into(), dir.display().to_string()]);
    append(&dir.join("cmd.txt"), &format!("{}\n", quote_cmd(&shown)))?;
    let parts = match dirs
        .iter()
        .map(|d| read_run_dir(d))
        .collect::<anyhow::Result<Vec<_>>>()
    {
        Ok(p) => p,
        Err(e) => return Ok(Some(format!("cannot read a shard's run folder: {e:#}"))),
    };
    let merged = match merge_records(&parts) {
        Ok(m) => m,
        Err(e) => return Ok(Some(format!("merging the shards failed: {e:#}"))),
    };
    write_run_dir(dir, &merged)?;
    let s = &merged.summary;
    let line = format!(
        "{}: {} shards merged: {} connections, {:.0} msgs/s, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs\n",
        ctx.label(&case.name),
        parts.len(),
        s.connections_established,
        s.throughput_msgs_per_s,
        s.latency.p50_us,
        s.latency.p99_us,
        s.latency.max_us
    );
    crate::safe_fs::write(&dir.join("loadgen.out"), line)?;
    Ok(None)
}
