//! One case of the http scenario: a server (c1m-server or nginx) on a free port, ready
//! once it answers a request with the contract's body, its process group sampled for
//! CPU while the client (c1m-loadgen, or wrk after a warm-up run of its own) runs, then
//! stopped; the run folder gets case.json, cmd.txt, summary.json, server_cpu.json, the
//! logs (and nginx.conf), or FAILED with the reason.

use super::cpu::{self, Sampler, WindowCpu};
use super::{nginx, wrk, Client, HttpCase, Server, Tools};
use crate::interrupt;
use crate::plan::{self, PORT_HI, PORT_LO};
use crate::procs::kill_group;
use crate::report::folder::{CaseRecord, CASE_FILE};
use crate::runner::{append, quote_cmd, tail_words, wait_drained, Ctx, HoldSampler, Kind};
use crate::safe_fs;
use crate::shards::{run_loadgen, Job};
use crate::topology::placement::Site;
use crate::wire::Wire;
use anyhow::Context as _;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What every case of one http scenario shares.
pub(crate) struct HttpEnv {
    pub(crate) tools: Tools,
    pub(crate) body_size: u64,
    /// The `*_temp_path` directives of this nginx.
    pub(crate) temp_paths: Vec<&'static str>,
}

/// A server that was started.
struct Started {
    pid: i32,
    /// nginx: its private folder.
    nginx_dir: Option<PathBuf>,
}

/// What the client measured: its window (seconds since the epoch), the requests answered
/// in it, and where the window came from.
struct Measured {
    window: (f64, f64),
    requests: u64,
    from: &'static str,
}

/// Runs `case` into `sdir/<folder>` (`round-R/<name>` with several rounds). Fails only
/// on a signal or when the run cannot go on; the case's own failure is its FAILED file.
pub(crate) fn run_case(
    ctx: &mut Ctx,
    env: &HttpEnv,
    sdir: &Path,
    case: &HttpCase,
    folder: &str,
    round: Option<u32>,
) -> anyhow::Result<()> {
    let dir = safe_fs::create_dir_new_below(sdir, Path::new(folder))?;
    append(&sdir.join("runs.txt"), &format!("{folder}\n"))?;
    safe_fs::write(&dir.join("cmd.txt"), "")?;
    let record = CaseRecord {
        variant: Some(case.server.name().into()),
        server: Some(case.server.name().into()),
        client: Some(case.client.name().into()),
        scenario: Some(crate::plan::Scenario::Http.name().into()),
        point: case.point(),
        connections: Some(case.conns),
        rate_req_per_s: case.rate.map(|r| r as f64),
        round: round.map(u64::from),
        body_size: Some(env.body_size),
        protocol: Some("http".into()),
        ..CaseRecord::default()
    };
    let about = serde_json::to_value(&record)?;
    safe_fs::write(&dir.join(CASE_FILE), format!("{about:#}\n"))?;
    wait_drained(ctx.topo, Duration::from_secs(30), ctx.start_inuse + 1000)?;
    let port =
        crate::free::pick_ports(1, &ctx.topo.listening_ports()).and_then(|p| p.first().copied());
    let Some(port) = port else {
        let why = format!("no free port in {PORT_LO}-{PORT_HI}");
        return finish(ctx, sdir, &dir, folder, Some(why));
    };
    let listen = ctx.topo.placement.listen(port);
    let (started, mut reason) = start_server(ctx, env, &dir, case, &listen)?;
    let mut window = None;
    if let (Some(s), None) = (&started, &reason) {
        let sampler = Sampler::start(s.pid);
        let measured = run_client(ctx, env, &dir, case, folder, round, port)?;
        let samples = sampler.finish();
        match measured {
            Ok(m) => window = Some((m, samples)),
            Err(why) => reason = Some(why),
        }
    }
    if let Some(s) = started {
        let why = stop_server(ctx, &dir, case, s);
        reason = reason.or(why);
    }
    if let (None, Some((m, samples))) = (&reason, window) {
        match WindowCpu::of(&samples.samples, m.window.0, m.window.1, m.requests) {
            Ok(w) => safe_fs::write(
                &dir.join("server_cpu.json"),
                format!("{:#}\n", w.to_json(&samples, m.from)),
            )?,
            Err(why) => reason = Some(why),
        }
    }
    finish(ctx, sdir, &dir, folder, reason)
}

/// Starts the server and waits until it answers. Returns it (when a process started)
/// and why it is not ready, if it is not.
fn start_server(
    ctx: &mut Ctx,
    env: &HttpEnv,
    dir: &Path,
    case: &HttpCase,
    listen: &str,
) -> anyhow::Result<(Option<Started>, Option<String>)> {
    let site = ctx.topo.placement.server.site.clone();
    let (argv, nginx_dir) = match case.server {
        Server::C1m(b) => {
            let bin = b
                .own_binary()
                .map_or_else(|| ctx.server_bin.clone(), PathBuf::from);
            let mut argv = vec![
                site.program(&bin),
                "--listen".into(),
                listen.into(),
                "--cpus".into(),
                ctx.split.server.clone(),
                "--stats-interval".into(),
                "1".into(),
                "--stats-json".into(),
                site.file(&dir.join("server.json")),
            ];
            argv.extend(b.server_args());
            argv.extend(
                Wire::Http {
                    body: env.body_size,
                }
                .args(),
            );
            (argv, None)
        }
        Server::Nginx => {
            let ndir = write_nginx_conf(ctx, env, dir, case, listen)?;
            let argv = nginx::argv(
                &env.tools.taskset,
                &env.tools.nginx,
                &ctx.split.server,
                &ndir,
            );
            (argv, Some(ndir))
        }
    };
    let argv = site.command(argv);
    append(&dir.join("cmd.txt"), &format!("{}\n", quote_cmd(&argv)))?;
    let (out, log) = (dir.join("server.out"), dir.join("server.log"));
    let pid = ctx.procs.spawn(&argv, &out, &log)?;
    let started = Started { pid, nginx_dir };
    let listening = || {
        // c1m-server says so; nginx is tried at once.
        case.server == Server::Nginx
            || fs::read_to_string(&out)
                .is_ok_and(|t| t.lines().any(|l| l.starts_with("listening on")))
    };
    let body = super::body(env.body_size);
    let addr: SocketAddr = listen.parse().context("the server's address")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::from("no answer yet");
    loop {
        if listening() {
            match probe_at(&site, addr, &body) {
                Ok(()) => return Ok((Some(started), None)),
                Err(e) => last = e,
            }
        }
        if !ctx.procs.alive(pid) {
            let why = format!("server did not start: {}", tail_words(&log, 3, |_| true));
            return Ok((Some(started), Some(why)));
        }
        if Instant::now() >= deadline {
            let why = format!("server did not answer HTTP within 20 s: {last}");
            return Ok((Some(started), Some(why)));
        }
        interrupt::sleep(Duration::from_millis(50))?;
    }
}

/// Renders nginx.conf into a fresh private folder (and a copy into the run folder).
fn write_nginx_conf(
    ctx: &Ctx,
    env: &HttpEnv,
    dir: &Path,
    case: &HttpCase,
    listen: &str,
) -> anyhow::Result<PathBuf> {
    let ndir = nginx::private_dir(&ctx.tmp)?;
    let cpus = c1m_platform::cpus::parse_cpu_list(&ctx.split.server)
        .map_err(|e| anyhow::anyhow!("server CPUs {}: {e}", ctx.split.server))?;
    let (worker_connections, rlimit_nofile) =
        nginx::sizing(case.conns, crate::preflight::nofile().1);
    let body = super::body(env.body_size);
    let conf = nginx::render(&nginx::NginxConf {
        dir: &ndir,
        listen,
        cpus: &cpus,
        worker_connections,
        rlimit_nofile,
        body: &body,
        temp_paths: &env.temp_paths,
    })?;
    let path = ndir.join("nginx.conf");
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| f.write_all(conf.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    safe_fs::write(&dir.join("nginx.conf"), &conf)?;
    Ok(ndir)
}

/// [`probe`] from where the server runs (its namespace has the address).
fn probe_at(site: &Site, addr: SocketAddr, body: &str) -> Result<(), String> {
    match &site.netns {
        None => probe(addr, body),
        Some(ns) => crate::topology::netns::sysctl::in_netns(ns, || probe(addr, body))
            .unwrap_or_else(|e| Err(format!("{e:#}"))),
    }
}

/// One `GET /` on a fresh connection: Ok when the answer is a 200 with exactly `body`.
pub(crate) fn probe(addr: SocketAddr, body: &str) -> Result<(), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .and_then(|()| s.write_all(b"GET / HTTP/1.1\r\nHost: c1m\r\n\r\n"))
        .map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(result) = check_response(&got, body) {
            return result;
        }
        match s.read(&mut buf) {
            Ok(0) => return Err(format!("connection closed after {} bytes", got.len())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// None while `got` is not a whole response yet; else whether it is a 200 with exactly
/// `body` (by Content-Length).
pub(crate) fn check_response(got: &[u8], body: &str) -> Option<Result<(), String>> {
    let end = got.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&got[..end]);
    let status = head.lines().next().unwrap_or_default().to_owned();
    if !status.starts_with("HTTP/1.1 200") {
        return Some(Err(format!("answered \"{status}\"")));
    }
    let len = head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    let Some(len) = len else {
        return Some(Err("no Content-Length in the answer".into()));
    };
    let rest = &got[end + 4..];
    if rest.len() < len {
        return None;
    }
    Some(if &rest[..len] == body.as_bytes() {
        Ok(())
    } else {
        Err(format!(
            "the body is not the contract's {} bytes: {:?}",
            body.len(),
            String::from_utf8_lossy(&rest[..len])
        ))
    })
}

/// Runs the case's client. Err: why the run failed.
fn run_client(
    ctx: &mut Ctx,
    env: &HttpEnv,
    dir: &Path,
    case: &HttpCase,
    folder: &str,
    round: Option<u32>,
    port: u16,
) -> anyhow::Result<Result<Measured, String>> {
    match case.client {
        Client::Loadgen => run_loadgen_client(ctx, env, dir, case, folder, round, port),
        Client::Wrk => run_wrk(ctx, env, dir, case, folder, round, port),
    }
}

fn run_loadgen_client(
    ctx: &mut Ctx,
    env: &HttpEnv,
    dir: &Path,
    case: &HttpCase,
    folder: &str,
    round: Option<u32>,
    port: u16,
) -> anyhow::Result<Result<Measured, String>> {
    let s = &ctx.scale;
    let mut args = Wire::Http {
        body: env.body_size,
    }
    .args();
    args.extend([
        "--connections".into(),
        case.conns.to_string(),
        "--duration".into(),
        s.dur.text.clone(),
        "--warmup".into(),
        s.warm.text.clone(),
    ]);
    if let Some(r) = case.rate {
        args.extend(["--rate".into(), r.to_string()]);
    }
    if let Some(r) = round {
        args.extend(["--round".into(), r.to_string()]);
    }
    let job = Job {
        name: folder,
        conns: case.conns,
        kind: Kind::Plain,
        args: &args,
        size: None,
        protocol: Vec::new(),
    };
    if let Some(why) = run_loadgen(ctx, dir, &job, &[port], &mut HoldSampler::default())? {
        return Ok(Err(why));
    }
    let window = match cpu::loadgen_window(&dir.join("latency.hlog")) {
        Ok(w) => w,
        Err(e) => return Ok(Err(format!("{e:#}"))),
    };
    let requests = c1m_loadgen::report::read_summary(dir).map_or(0, |s| s.messages_received);
    Ok(Ok(Measured {
        window,
        requests,
        from: "c1m-loadgen's measured phase (latency.hlog: StartTime + the Tag=measured interval)",
    }))
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
    env: &HttpEnv,
    dir: &Path,
    case: &HttpCase,
    folder: &str,
    round: Option<u32>,
    port: u16,
) -> anyhow::Result<Result<Measured, String>> {
    let url = format!("http://{}/", ctx.topo.placement.listen(port));
    let (warm, secs) = (
        wrk::whole_secs(ctx.scale.warm.value),
        wrk::whole_secs(ctx.scale.dur.value),
    );
    let t = &env.tools;
    let cpus = ctx.split.loadgen.clone();
    // wrk is one process: it runs where the first loadgen shard would.
    let site = ctx
        .topo
        .placement
        .clients
        .first()
        .map_or_else(Site::here, |c| c.site.clone());
    let warm_argv = site.command(wrk::argv(&t.taskset, &t.wrk, &cpus, case.conns, warm, &url));
    let (rc, _, _) = wrk_once(
        ctx,
        dir,
        "wrk-warmup",
        &warm_argv,
        Duration::from_secs(warm + 30),
    )?;
    if rc != 0 {
        let why = tail_words(&dir.join("wrk-warmup.log"), 2, |_| true);
        return Ok(Err(format!("wrk (warm-up) exit status {rc}: {why}")));
    }
    let argv = site.command(wrk::argv(&t.taskset, &t.wrk, &cpus, case.conns, secs, &url));
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
    let label = ctx.label(folder);
    let meta = wrk::Meta {
        label: &label,
        round,
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

/// Stops the server: c1m-server with SIGTERM; nginx with SIGQUIT (graceful), then
/// SIGTERM, then SIGKILL, each bounded. nginx's folder is copied (error log) and removed.
/// Returns why the stop went wrong, if it did.
fn stop_server(ctx: &mut Ctx, dir: &Path, case: &HttpCase, s: Started) -> Option<String> {
    if s.nginx_dir.is_some() && ctx.procs.alive(s.pid) {
        kill_group(s.pid, libc::SIGQUIT);
        let deadline = Instant::now() + Duration::from_secs(10);
        while ctx.procs.alive(s.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let grace = match s.nginx_dir {
        Some(_) => Duration::from_secs(5),
        None => plan::server_stop_grace(case.conns),
    };
    let rc = ctx.procs.stop(libc::SIGTERM, grace, &[s.pid]);
    if let Some(nd) = &s.nginx_dir {
        if let Ok(log) = fs::read(nd.join("error.log")) {
            let _ = safe_fs::write(&dir.join("nginx-error.log"), log);
        }
        if let Err(e) = fs::remove_dir_all(nd) {
            crate::warn(format!("cannot remove {}: {e}", nd.display()));
        }
    }
    match rc.first().copied().unwrap_or(0) {
        0 => None,
        rc => Some(format!("server exit status {rc}")),
    }
}

/// FAILED and a line in the failures, or the client's result line.
fn finish(
    ctx: &mut Ctx,
    sdir: &Path,
    dir: &Path,
    folder: &str,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let scenario = sdir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match reason {
        Some(why) => {
            safe_fs::write(&dir.join("FAILED"), format!("{why}\n"))?;
            ctx.failures.push(format!("{folder} ({scenario}): {why}"));
            crate::warn(format!("{folder} FAILED: {why}"));
        }
        None => {
            let needle = format!("{}: ", ctx.label(folder));
            let text = fs::read_to_string(dir.join("loadgen.out")).unwrap_or_default();
            let line = text
                .lines()
                .rfind(|l| l.contains(&needle))
                .unwrap_or_default();
            let cpu = crate::report::RunFolder::read(dir)
                .ok()
                .and_then(|r| r.window_cpu_us_per_req);
            let cpu = cpu.map_or_else(|| "-".into(), |c| format!("{c:.2}"));
            crate::log(line.chars().take(240).collect::<String>());
            crate::log(format!(
                "{folder}: server CPU {cpu} µs/request over the measured window"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked_against_the_contract() {
        let ok = b"HTTP/1.1 200 OK\r\nServer: c1m\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n01234";
        assert_eq!(check_response(ok, "01234"), Some(Ok(())));
        assert_eq!(check_response(&ok[..ok.len() - 1], "01234"), None);
        assert_eq!(check_response(&ok[..20], "01234"), None);
        let e = check_response(ok, "0123x").unwrap().unwrap_err();
        assert!(e.contains("not the contract's 5 bytes"), "{e}");
        let nginx = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\ncontent-length: 0\r\nConnection: keep-alive\r\n\r\n";
        assert_eq!(check_response(nginx, ""), Some(Ok(())));
        let bad = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert!(check_response(bad, "")
            .unwrap()
            .unwrap_err()
            .contains("404"));
        let none = b"HTTP/1.1 200 OK\r\n\r\n";
        assert!(check_response(none, "")
            .unwrap()
            .unwrap_err()
            .contains("Content-Length"));
    }

    #[test]
    fn probes_a_real_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0u8; 256];
            let _ = c.read(&mut buf).unwrap();
            c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n012")
                .unwrap();
        });
        assert_eq!(probe(addr, "012"), Ok(()));
        t.join().unwrap();
        // Nothing listens there any more.
        assert!(probe(addr, "012").is_err());
    }
}
