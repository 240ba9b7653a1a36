//! One case: server process(es) and a loadgen, from free ports to a run folder with
//! cmd.txt, summary.json, server.json (merged from server-procs/*.json when several
//! servers ran), hold.json for the hold scenario, or FAILED with the reason.

use crate::interrupt;
use crate::plan::{self, Backend, CpuSplit, Limits, Scale, Scenario, PORT_HI, PORT_LO};
use crate::procs::Procs;
use crate::report;
use crate::topology::active::Topology;
use crate::topology::case_sysctls::CaseSysctls;

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a whole run shares between its cases.
pub struct Ctx<'a> {
    pub server_bin: PathBuf,
    pub loadgen_bin: PathBuf,
    pub split: CpuSplit,
    pub scale: Scale,
    pub limits: Limits,
    pub tag: Option<String>,
    /// The private temporary folder of this run.
    pub tmp: PathBuf,
    /// TCP sockets in use when the run started.
    pub start_inuse: u64,
    pub procs: &'a mut Procs,
    /// Where the server and the loadgen shards run.
    pub topo: &'a Topology,
    /// "name (scenario folder): reason" of every failed run.
    pub failures: Vec<String>,
    /// What the echo scenarios' servers and loadgens speak.
    pub wire: crate::wire::Wire,
    /// Where a variant's sysctls are applied for its cases.
    pub sysctl: crate::sysctl::Sysctl,
}

impl Ctx<'_> {
    /// The loadgen label of run `name` (the rounds of one run share it).
    pub fn label(&self, name: &str) -> String {
        let name = crate::rounds::label_of(name);
        match &self.tag {
            Some(t) => format!("{name}-{t}"),
            None => name.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plain,
    /// Samples slab and sockets while holding, measures the teardown, writes hold.json.
    Hold,
}

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

/// TCP sockets in use (not TIME_WAIT) in a /proc/net/sockstat text.
pub fn parse_tcp_inuse(text: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| l.split_whitespace().nth(2).and_then(|v| v.parse().ok()))
}

/// TCP sockets in use (not TIME_WAIT) in this namespace, from /proc/net/sockstat.
pub fn tcp_inuse() -> u64 {
    fs::read_to_string("/proc/net/sockstat")
        .ok()
        .and_then(|t| parse_tcp_inuse(&t))
        .unwrap_or(0)
}

/// Adds the ports something listens on in a /proc/net/tcp or tcp6 text to `out`.
pub fn parse_listening(text: &str, out: &mut BTreeSet<u16>) {
    for l in text.lines().skip(1) {
        let c: Vec<&str> = l.split_whitespace().collect();
        if c.get(3) == Some(&"0A") {
            if let Some(port) = c.get(1).and_then(|a| a.rsplit(':').next()) {
                if let Ok(p) = u16::from_str_radix(port, 16) {
                    out.insert(p);
                }
            }
        }
    }
}

/// Ports something listens on in this namespace (TCP, v4 and v6).
pub fn listening_ports() -> BTreeSet<u16> {
    let mut out = BTreeSet::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = fs::read_to_string(f) {
            parse_listening(&text, &mut out);
        }
    }
    out
}

/// Kernel slab in use, "name active_bytes" per cache from /proc/slabinfo (objects in
/// use, so freed objects cached in partial slabs do not count), written to `out`.
/// Returns the total; None when /proc/slabinfo is not readable (not root).
pub fn slab_snapshot(out: &Path) -> Option<u64> {
    let text = fs::read_to_string("/proc/slabinfo").ok()?;
    let mut total = 0u64;
    let mut lines = String::new();
    for l in text.lines().skip(2) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (Some(a), Some(s)) = (f.get(1), f.get(3)) else {
            continue;
        };
        let b = a.parse::<u64>().unwrap_or(0) * s.parse::<u64>().unwrap_or(0);
        total += b;
        if b > 0 {
            lines.push_str(&format!("{} {b}\n", f[0]));
        }
    }
    crate::safe_fs::write(out, lines).ok()?;
    Some(total)
}

/// Until the sockets of earlier runs are gone: TCP sockets in use where the topology
/// runs down to `target`, or not falling for 3 s (other users' sockets), or `timeout`
/// (warned about).
pub fn wait_drained(topo: &Topology, timeout: Duration, target: u64) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut low = topo.tcp_inuse();
    let mut since = Instant::now();
    loop {
        let inuse = topo.tcp_inuse();
        if inuse <= target {
            return Ok(());
        }
        if inuse + 100 < low {
            low = inuse;
            since = Instant::now();
        } else if since.elapsed() >= Duration::from_secs(3) {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            crate::warn(format!(
                "{inuse} TCP sockets still in use after {}s (waiting for {target}); going on",
                timeout.as_secs()
            ));
            return Ok(());
        }
        interrupt::sleep(Duration::from_millis(500))?;
    }
}

/// One word as bash's `printf %q` writes it.
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || "_./:,=+-@%^".contains(c);
    s.chars()
        .map(|c| {
            if safe(c) {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

pub fn quote_cmd(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    crate::safe_fs::append(path, text)
}

/// The last `n` lines of a file matching `keep`, each followed by a space.
pub(crate) fn tail_words(path: &Path, n: usize, keep: impl Fn(&str) -> bool) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| keep(l)).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("{l} "))
        .collect()
}

/// Copies what a log file gains to stderr (the loadgen's progress on a terminal).
pub(crate) struct Follower {
    path: PathBuf,
    pos: u64,
}

impl Follower {
    pub(crate) fn new(path: PathBuf) -> Follower {
        Follower { path, pos: 0 }
    }

    pub(crate) fn pump(&mut self) {
        let Ok(mut f) = fs::File::open(&self.path) else {
            return;
        };
        if f.seek(SeekFrom::Start(self.pos)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if let Ok(n) = f.read_to_end(&mut buf) {
            self.pos += n as u64;
            let _ = std::io::stderr().write_all(&buf);
        }
    }
}

pub(crate) fn stderr_is_tty() -> bool {
    // SAFETY: isatty takes an fd number only.
    unsafe { libc::isatty(2) == 1 }
}

/// Slab and socket counts around a hold run.
#[derive(Default)]
pub(crate) struct HoldSampler {
    slab_before_kb: u64,
    slab_peak_kb: u64,
    inuse_before: u64,
    inuse_peak: u64,
    sl_before: u64,
    sl_peak: u64,
}

impl HoldSampler {
    /// One sample; `inuse` is the topology's TCP sockets in use now.
    pub(crate) fn sample(&mut self, dir: &Path, tmp: &Path, inuse: u64) {
        self.slab_peak_kb = self.slab_peak_kb.max(crate::preflight::meminfo_kb("Slab"));
        self.inuse_peak = self.inuse_peak.max(inuse);
        if self.sl_before > 0 {
            let now = tmp.join("slab-now.txt");
            if let Some(sl) = slab_snapshot(&now).filter(|&sl| sl > self.sl_peak) {
                self.sl_peak = sl;
                let _ = fs::rename(&now, dir.join("slab-peak.txt"));
            }
        }
    }
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
    let ports = plan::pick_ports(procs, &ctx.topo.listening_ports());
    let mut reason = ports
        .is_none()
        .then(|| format!("no {procs} free ports in {PORT_LO}-{PORT_HI}"));
    crate::safe_fs::write(&dir.join("cmd.txt"), "")?;
    let sysctls = CaseSysctls::apply(ctx.topo, &ctx.sysctl, &case.variant.sysctls)?;
    write_case_json(&dir, case, ctx.wire, &sysctls)?;
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
            reason = crate::shards::run_loadgen(ctx, &dir, &case.job(ctx.wire), ports, &mut s)?;
            t0 = Instant::now();
        }
    }
    if !servers.is_empty() {
        let grace = plan::server_stop_grace(case.conns);
        reason = stop_servers(ctx, &dir, &servers, grace, reason)?;
    }
    sysctls.undo(&ctx.sysctl)?;
    finish(ctx, sdir, &dir, case, procs, reason, &s, t0)
}

/// case.json: which variant, scenario, point and round this folder is (what the
/// reports read first), and the sysctls the variant set for it, as read back;
/// sysctls.txt the same for a reader.
fn write_case_json(
    dir: &Path,
    case: &Case,
    wire: crate::wire::Wire,
    sysctls: &CaseSysctls,
) -> anyhow::Result<()> {
    let about = serde_json::json!({
        "variant": case.variant.name,
        "server": case.variant.backend.name(),
        "server_flags": case.variant.server_flags,
        "client": "c1m-loadgen",
        "scenario": case.scenario.name(),
        "point": case.point,
        "connections": case.conns,
        "round": case.round,
        "protocol": wire.name(),
        "sysctls": sysctls.read_back,
    });
    crate::safe_fs::write(&dir.join("case.json"), format!("{about:#}\n"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statedir::tests::TempDir;

    #[test]
    fn quoting_like_printf_q() {
        assert_eq!(shell_quote("127.0.0.1:7000"), "127.0.0.1:7000");
        assert_eq!(shell_quote("a b"), "a\\ b");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(
            quote_cmd(&["x".into(), "--label".into(), "it's".into()]),
            "x --label it\\'s"
        );
    }

    #[test]
    fn proc_readers() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(listening_ports().contains(&port));
        assert!(tcp_inuse() >= 1);
        let t = TempDir::new();
        let p = t.0.join("slab.txt");
        if let Some(total) = slab_snapshot(&p) {
            assert!(total > 0);
            assert!(fs::read_to_string(&p)
                .unwrap()
                .lines()
                .all(|l| l.split(' ').count() == 2));
        }
        assert_eq!(tail_words(&t.0.join("none"), 2, |_| true), "");
        fs::write(t.0.join("log"), "a\n[progress]\nb\nc\n").unwrap();
        assert_eq!(
            tail_words(&t.0.join("log"), 2, |l| !l.starts_with('[')),
            "b c "
        );
    }
}
