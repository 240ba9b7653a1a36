//! One case: server process(es) and a loadgen, from free ports to a run folder with
//! cmd.txt, summary.json, server.json (merged from server-procs/*.json when several
//! servers ran), hold.json for the hold scenario, or FAILED with the reason.

use crate::interrupt;
use crate::plan::{self, Backend, Scenario, PORT_HI, PORT_LO};
use crate::report;
use crate::report::folder::{CaseRecord, CASE_FILE};
use crate::runner::{
    append, quote_cmd, slab_snapshot, tail_words, wait_drained, Ctx, HoldSampler, Kind,
};
use crate::topology::case_sysctls::CaseSysctls;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One run of one variant.
#[derive(Debug, Clone)]
pub struct Case {
    /// The run folder's name (`round-R/` first with several rounds).
    pub name: String,
    pub variant: crate::variants::Variant,
    pub scenario: Scenario,
    /// The point's name (`c1000`, `c1000-r50`).
    pub point: String,
    /// With several rounds, this run's round.
    pub round: Option<u32>,
    pub conns: u64,
    /// `--max-conns` for the server (uring hold), else derived.
    pub max_conns: Option<u64>,
    pub kind: Kind,
    pub loadgen_args: Vec<String>,
}

impl Case {
    /// What its loadgen is asked for: messages of [`plan::MSG_SIZE`] bytes (http requests
    /// have their own size) in the protocol `wire`.
    pub(crate) fn job(&self, wire: crate::wire::Wire) -> crate::shards::Job<'_> {
        crate::shards::Job {
            name: &self.name,
            conns: self.conns,
            kind: self.kind,
            args: &self.loadgen_args,
            size: wire.size(plan::MSG_SIZE),
            protocol: wire.args(),
        }
    }
}

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

/// The files of server process `i` of `procs` (without extension).
fn server_stem(dir: &Path, procs: u64, i: u64) -> PathBuf {
    if procs > 1 {
        dir.join("server-procs").join(format!("{i:03}"))
    } else {
        dir.join("server")
    }
}

/// Starts the servers and waits until each says "listening on". Returns their pids and
/// why they failed, if they did.
fn start_servers(
    ctx: &mut Ctx,
    dir: &Path,
    case: &Case,
    ports: &[u16],
    maxc: Option<u64>,
) -> anyhow::Result<(Vec<i32>, Option<String>)> {
    let procs = ports.len() as u64;
    let mut pids = Vec::new();
    let site = &ctx.topo.placement.server.site;
    for (i, port) in ports.iter().enumerate() {
        let stem = server_stem(dir, procs, i as u64);
        let bin = case
            .variant
            .backend
            .own_binary()
            .map_or_else(|| ctx.server_bin.clone(), PathBuf::from);
        let mut argv: Vec<String> = vec![
            site.program(&bin),
            "--listen".into(),
            ctx.topo.placement.listen(*port),
            "--cpus".into(),
            ctx.split.server.clone(),
            "--stats-interval".into(),
            "1".into(),
            "--stats-json".into(),
            site.file(&stem.with_extension("json")),
        ];
        argv.extend(case.variant.server_args());
        if let Some(m) = maxc {
            argv.extend(["--max-conns".into(), m.to_string()]);
        }
        argv.extend(ctx.wire.args());
        let argv = site.command(argv);
        append(&dir.join("cmd.txt"), &format!("{}\n", quote_cmd(&argv)))?;
        let out = stem.with_extension("out");
        pids.push(ctx.procs.spawn(&argv, &out, &stem.with_extension("log"))?);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for (i, &pid) in pids.iter().enumerate() {
        let stem = server_stem(dir, procs, i as u64);
        loop {
            let out = fs::read_to_string(stem.with_extension("out")).unwrap_or_default();
            if out.lines().any(|l| l.starts_with("listening on")) {
                break;
            }
            if !ctx.procs.alive(pid) {
                let why = tail_words(&stem.with_extension("log"), 3, |_| true);
                return Ok((pids, Some(format!("server did not start: {why}"))));
            }
            if Instant::now() >= deadline {
                return Ok((pids, Some("server not listening after 20 s".into())));
            }
            interrupt::sleep(Duration::from_millis(50))?;
        }
    }
    Ok((pids, None))
}

/// Runs one case into `sdir/<name>`. Never fails for the case's own failure (that
/// leaves FAILED in its folder and a line in `ctx.failures`); fails on a signal or when
/// the run cannot go on.
pub fn run_case(ctx: &mut Ctx, sdir: &Path, case: &Case) -> anyhow::Result<()> {
    let dir = crate::safe_fs::create_dir_new_below(sdir, Path::new(&case.name))?;
    append(&sdir.join("runs.txt"), &format!("{}\n", case.name))?;
    let mut t0 = Instant::now();
    let procs = ctx.limits.procs_for(case.variant.backend, case.conns);
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
    let sysctls = CaseSysctls::apply(ctx.topo, &ctx.sysctl, &case.variant.sysctls)?;
    let link = crate::topology::case_link::CaseLink::apply(ctx.topo, case.variant.link.as_ref())?;
    write_case_json(&dir, case, ctx.wire, &sysctls, link.record())?;
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
    let mut servers = Vec::new();
    if let (None, Some(ports)) = (&reason, &ports) {
        let (pids, why) = start_servers(ctx, &dir, case, ports, maxc)?;
        servers = pids;
        reason = why;
        if reason.is_none() {
            let k0 = crate::experiments::Snapshot::take(ctx.topo);
            reason = crate::shards::run_loadgen(ctx, &dir, &case.job(ctx.wire), ports, &mut s)?;
            k0.write(&crate::experiments::Snapshot::take(ctx.topo), &dir)?;
            t0 = Instant::now();
        }
    }
    if !servers.is_empty() {
        let grace = plan::server_stop_grace(case.conns);
        reason = stop_servers(ctx, &dir, &servers, grace, reason)?;
    }
    link.undo()?;
    sysctls.undo(&ctx.sysctl)?;
    finish(ctx, sdir, &dir, case, procs, reason, &s, t0)
}

/// case.json: which variant, scenario, point and round this folder is (what the
/// reports read first), the sysctls the variant set for it, as read back, and its link;
/// sysctls.txt the same for a reader.
fn write_case_json(
    dir: &Path,
    case: &Case,
    wire: crate::wire::Wire,
    sysctls: &CaseSysctls,
    link: Option<serde_json::Value>,
) -> anyhow::Result<()> {
    let record = CaseRecord {
        variant: Some(case.variant.name.clone()),
        server: Some(case.variant.backend.name().into()),
        client: Some("c1m-loadgen".into()),
        scenario: Some(case.scenario.name().into()),
        point: case.point.clone(),
        connections: Some(case.conns),
        round: case.round.map(u64::from),
        server_flags: case.variant.server_flags.clone(),
        protocol: Some(wire.name().into()),
        sysctls: sysctls.read_back.clone(),
        link,
        ..CaseRecord::default()
    };
    let about = serde_json::to_value(&record)?;
    crate::safe_fs::write(&dir.join(CASE_FILE), format!("{about:#}\n"))?;
    if !sysctls.read_back.is_empty() {
        crate::safe_fs::write(&dir.join("sysctls.txt"), sysctls.text())?;
    }
    Ok(())
}

/// Stops the servers (on a host: SIGTERM there first, then their ssh sessions end by
/// themselves) and fetches a host's result files back. A lost host fails the run.
fn stop_servers(
    ctx: &mut Ctx,
    dir: &Path,
    servers: &[i32],
    grace: Duration,
    mut reason: Option<String>,
) -> anyhow::Result<Option<String>> {
    let remote = ctx.topo.placement.server.site.remote.clone();
    if remote.is_some() {
        let stopped = ctx.topo.stop_remote_servers();
        let deadline = Instant::now() + grace;
        while stopped.is_ok()
            && servers.iter().any(|&p| ctx.procs.alive(p))
            && Instant::now() < deadline
        {
            interrupt::sleep(Duration::from_millis(100))?;
        }
        stopped?;
    }
    for rc in ctx.procs.stop(libc::SIGTERM, grace, servers) {
        if let (Some(r), crate::topology::hosts::ssh::SSH_FAILED) = (&remote, rc) {
            anyhow::bail!(
                "server host {}: the ssh connection failed or was lost (ssh exit 255); see {}",
                r.target,
                dir.join("server.log").display()
            );
        }
        if rc != 0 && reason.is_none() {
            reason = Some(format!("server exit status {rc}"));
        }
    }
    if let Some(r) = &remote {
        if let Err(e) =
            crate::topology::hosts::remote::fetch_dir(&r.ssh, &r.target, &r.file(dir), dir)
        {
            reason.get_or_insert_with(|| format!("{e:#}"));
        }
    }
    Ok(reason)
}

/// After the processes stopped: server.json, hold.json, FAILED or the result line.
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
    if reason.is_none() && !has_server_json {
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
        }
    }
    Ok(())
}
