//! The server side of a case, any server: c1m-server (one process per port, each with
//! the variant's flags; the Go reference from its own binary) or nginx (its nginx.conf
//! in a private folder). Ready once every process says "listening on" (nginx: at once)
//! and, for the http scenario, answers a request with the contract's body; stopped
//! with SIGTERM (nginx: SIGQUIT first), a host's result files fetched back.

use crate::case::{Case, Server};
use crate::http::{nginx, HttpEnv, SiteTools};
use crate::interrupt;
use crate::observe::metrics;
use crate::procs::kill_group;
use crate::runner::{append, quote_cmd, tail_words, Ctx};
use crate::safe_fs;
use crate::topology::hosts::remote;
use crate::topology::placement::Site;
use anyhow::Context as _;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The servers of a case that were started.
pub(crate) struct Started {
    pub(crate) pids: Vec<i32>,
    /// nginx: its private folder.
    nginx_dir: Option<PathBuf>,
}

/// The files of server process `i` of `procs` (without extension).
fn server_stem(dir: &Path, procs: u64, i: u64) -> PathBuf {
    if procs > 1 {
        dir.join("server-procs").join(format!("{i:03}"))
    } else {
        dir.join("server")
    }
}

/// Starts one server per port and waits until each is ready. Returns what started
/// and why it is not ready, if it is not.
pub(crate) fn start(
    ctx: &mut Ctx,
    dir: &Path,
    case: &Case,
    ports: &[u16],
    maxc: Option<u64>,
) -> anyhow::Result<(Started, Option<String>)> {
    let procs = ports.len() as u64;
    let site = ctx.topo.placement.server.site.clone();
    let mut started = Started {
        pids: Vec::new(),
        nginx_dir: None,
    };
    for (i, &port) in ports.iter().enumerate() {
        let stem = server_stem(dir, procs, i as u64);
        let argv = match &case.server {
            Server::C1m(v) => {
                let bin = v
                    .backend
                    .own_binary()
                    .map_or_else(|| ctx.server_bin.clone(), PathBuf::from);
                let mut argv: Vec<String> = vec![
                    site.program(&bin),
                    "--listen".into(),
                    ctx.topo.placement.listen(port),
                    "--cpus".into(),
                    ctx.split.server.clone(),
                    "--stats-interval".into(),
                    "1".into(),
                    "--stats-json".into(),
                    site.file(&stem.with_extension("json")),
                ];
                argv.extend(v.server_args());
                if ctx.observe.metrics && v.backend.own_binary().is_none() {
                    argv.extend(metrics::listen_args(ctx.topo.placement.server.listen));
                }
                if let Some(m) = maxc {
                    argv.extend(["--max-conns".into(), m.to_string()]);
                }
                argv.extend(case.wire.args());
                argv
            }
            Server::Nginx => {
                let env = http_env(ctx)?;
                let at = env.at(&site)?;
                let listen = ctx.topo.placement.listen(port);
                let ndir = write_nginx_conf(ctx, &site, at, dir, case, &listen)?;
                let argv =
                    nginx::argv(&at.tools.taskset, &at.tools.nginx, &ctx.split.server, &ndir);
                started.nginx_dir = Some(ndir);
                argv
            }
        };
        let argv = site.command(argv);
        append(&dir.join("cmd.txt"), &format!("{}\n", quote_cmd(&argv)))?;
        let (out, log) = (stem.with_extension("out"), stem.with_extension("log"));
        started.pids.push(ctx.procs.spawn(&argv, &out, &log)?);
    }
    let why = ready(ctx, &site, dir, case, ports, &started.pids)?;
    if ctx.observe.metrics && why.is_none() {
        watch_metrics(&site, dir, case, procs)?;
    }
    Ok((started, why))
}

/// `--metrics`: the servers' scrape addresses (printed before they listen) into the
/// case's metrics.txt; nginx and the Go reference have none.
fn watch_metrics(site: &Site, dir: &Path, case: &Case, procs: u64) -> anyhow::Result<()> {
    let mut w = metrics::Watch::default();
    match &case.server {
        Server::C1m(v) if v.backend.own_binary().is_none() => {
            for i in 0..procs {
                let who = if procs > 1 {
                    format!("server process {i}")
                } else {
                    "server".into()
                };
                let log = server_stem(dir, procs, i).with_extension("log");
                w.add(who, log, site.netns.clone());
            }
        }
        Server::C1m(v) => w.none(
            "server",
            &format!("{} has no metrics endpoint", v.backend.name()),
        ),
        Server::Nginx => w.none("server", "nginx has no metrics endpoint"),
    }
    w.finish(&case.name, dir)
}

/// nginx and wrk of the http scenario.
pub(crate) fn http_env(ctx: &Ctx) -> anyhow::Result<HttpEnv> {
    ctx.http
        .clone()
        .context("nginx and wrk were not looked for (the http scenario finds them)")
}

/// Until every server is ready: "listening on" in its output (nginx: at once) and, in
/// the http scenario, the contract's answer to a request. Returns why not, if not.
fn ready(
    ctx: &mut Ctx,
    site: &Site,
    dir: &Path,
    case: &Case,
    ports: &[u16],
    pids: &[i32],
) -> anyhow::Result<Option<String>> {
    let procs = ports.len() as u64;
    let body = crate::http::body(case.body_size().unwrap_or(0));
    let deadline = Instant::now() + Duration::from_secs(20);
    for (i, (&pid, &port)) in pids.iter().zip(ports).enumerate() {
        let stem = server_stem(dir, procs, i as u64);
        let addr: SocketAddr = ctx
            .topo
            .placement
            .listen(port)
            .parse()
            .context("the server's address")?;
        let mut last = String::from("no answer yet");
        loop {
            // c1m-server says so; nginx is tried at once.
            let listening = case.server == Server::Nginx
                || fs::read_to_string(stem.with_extension("out"))
                    .is_ok_and(|t| t.lines().any(|l| l.starts_with("listening on")));
            if listening {
                if !case.is_http() {
                    break;
                }
                match probe_at(site, addr, &body) {
                    Ok(()) => break,
                    Err(e) => last = e,
                }
            }
            if !ctx.procs.alive(pid) {
                let why = tail_words(&stem.with_extension("log"), 3, |_| true);
                return Ok(Some(format!("server did not start: {why}")));
            }
            if Instant::now() >= deadline {
                return Ok(Some(if case.is_http() {
                    format!("server did not answer HTTP within 20 s: {last}")
                } else {
                    "server not listening after 20 s".into()
                }));
            }
            interrupt::sleep(Duration::from_millis(50))?;
        }
    }
    Ok(None)
}

/// Renders nginx.conf into a fresh private folder (and a copy into the run folder).
/// Here: `mkdtemp` in the run's private folder. On a host: `nginx/` in the run folder's
/// place there (inside the run's private directory), the file copied over ssh.
fn write_nginx_conf(
    ctx: &Ctx,
    site: &Site,
    at: &SiteTools,
    dir: &Path,
    case: &Case,
    listen: &str,
) -> anyhow::Result<PathBuf> {
    let ndir = match &site.remote {
        None => nginx::private_dir(&ctx.tmp)?,
        Some(r) => PathBuf::from(r.file(&dir.join("nginx"))),
    };
    let cpus = c1m_platform::cpus::parse_cpu_list(&ctx.split.server)
        .map_err(|e| anyhow::anyhow!("server CPUs {}: {e}", ctx.split.server))?;
    let hard = at
        .nofile_hard
        .unwrap_or_else(|| crate::preflight::nofile().1);
    let (worker_connections, rlimit_nofile) = nginx::sizing(case.conns, hard);
    let body = crate::http::body(case.body_size().unwrap_or(0));
    let conf = nginx::render(&nginx::NginxConf {
        dir: &ndir,
        listen,
        cpus: &cpus,
        worker_connections,
        rlimit_nofile,
        body: &body,
        temp_paths: &at.temp_paths,
    })?;
    let copy = dir.join("nginx.conf");
    safe_fs::write(&copy, &conf)?;
    let path = ndir.join("nginx.conf");
    match &site.remote {
        None => fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .with_context(|| format!("cannot write {}", path.display()))?,
        Some(r) => remote::put_file(&r.ssh, &r.target, &copy, &path.to_string_lossy())?,
    }
    Ok(ndir)
}

/// [`probe`] from where the server runs (its namespace has the address); a host's
/// server from here, at the address this machine reaches it by.
fn probe_at(site: &Site, addr: SocketAddr, body: &str) -> Result<(), String> {
    match &site.netns {
        None => probe(addr, body),
        Some(ns) => crate::topology::netns::in_netns(ns, || probe(addr, body))
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

/// Stops the servers: nginx first with SIGQUIT (graceful), bounded; then SIGTERM (on a
/// host: there first, then their ssh sessions end by themselves), then SIGKILL after
/// the grace. nginx's folder is copied (error log) and removed; a host's result files
/// are fetched back. A lost host fails the run. Returns `reason`, or why the stop went
/// wrong.
pub(crate) fn stop(
    ctx: &mut Ctx,
    dir: &Path,
    case: &Case,
    s: &Started,
    mut reason: Option<String>,
) -> anyhow::Result<Option<String>> {
    let remote = ctx.topo.placement.server.site.remote.clone();
    if s.nginx_dir.is_some() && remote.is_none() {
        for &pid in s.pids.iter().filter(|&&p| ctx.procs.alive(p)) {
            kill_group(pid, libc::SIGQUIT);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.pids.iter().any(|&p| ctx.procs.alive(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let grace = match s.nginx_dir {
        Some(_) => Duration::from_secs(5),
        None => crate::plan::server_stop_grace(case.conns),
    };
    if remote.is_some() {
        let stopped = ctx.topo.stop_remote_servers();
        let deadline = Instant::now() + grace;
        while stopped.is_ok()
            && s.pids.iter().any(|&p| ctx.procs.alive(p))
            && Instant::now() < deadline
        {
            interrupt::sleep(Duration::from_millis(100))?;
        }
        stopped?;
    }
    for rc in ctx.procs.stop(libc::SIGTERM, grace, &s.pids) {
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
        if let Err(e) = remote::fetch_dir(&r.ssh, &r.target, &r.file(dir), dir) {
            reason.get_or_insert_with(|| format!("{e:#}"));
        }
    }
    // Here: nginx's own folder; from a host: its copy, fetched with the run folder.
    let nginx_dir = match &remote {
        None => s.nginx_dir.clone(),
        Some(_) => s.nginx_dir.as_ref().map(|_| dir.join("nginx")),
    };
    if let Some(nd) = nginx_dir.filter(|d| d.is_dir()) {
        if let Ok(log) = fs::read(nd.join("error.log")) {
            let _ = safe_fs::write(&dir.join("nginx-error.log"), log);
        }
        if let Err(e) = fs::remove_dir_all(&nd) {
            crate::warn(format!("cannot remove {}: {e}", nd.display()));
        }
    }
    Ok(reason)
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
