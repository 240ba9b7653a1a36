//! The `http` scenario: HTTP/1.1 keep-alive requests (the wire contract of
//! `--protocol http`: a fixed 200 body of `--body-size` bytes) against every selected
//! c1m-server backend and against nginx, the outside reference server, driven by
//! c1m-loadgen and by wrk, the outside reference client.
//!
//! Points: 1,000 connections closed loop under both clients, then one open-loop rate
//! (c1m-loadgen only: wrk cannot hold a constant rate). Every (server, client) case runs
//! once per round in a freshly shuffled order. Server CPU is measured the same way for
//! every server under every client ([`cpu`]): user+sys CPU of the server's whole
//! process group from /proc over the client's measured window, divided by the requests
//! answered in that window.
//!
//! Its cases are [`Case`]s like every scenario's, run by [`crate::runcase::run_case`]
//! (nginx is an arm of [`crate::server`], wrk one of [`crate::client`]).
//!
//! - [`nginx`]: nginx.conf as data (rendered, unit-tested), its private folder;
//! - [`wrk`]: wrk's command line and its output parsed into the run folder's
//!   summary.json;
//! - [`cpu`]: the process-group CPU sampler and the measured windows;
//! - `scenario`: its phases and compare.md; [`report`]: the tables.

pub mod cpu;
pub mod report;
mod scenario;

pub use c1m_outside::{nginx, wrk};

pub use scenario::compare_body;

use crate::case::{self, Case, Kind};
use crate::plan::{Backend, Scale, Scenario};
use crate::topology::hosts::{Facts, HostSpec, Needs};
use crate::topology::placement::Site;
use crate::variants::Variant;
use crate::wire::Wire;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Response body bytes when `--body-size` is not given.
pub const DEFAULT_BODY_SIZE: u64 = 64;
/// The largest `--body-size`: nginx takes the body as one token of nginx.conf, and its
/// configuration parser reads tokens through a 4 KiB buffer.
pub const MAX_BODY_SIZE: u64 = 2048;
/// The open-loop point's rate: this fraction of the slowest server's median closed-loop
/// requests/s under c1m-loadgen in the same run.
pub const OPEN_FRACTION: f64 = 0.5;
/// The open-loop rate when no closed-loop run measured anything.
pub const DEFAULT_OPEN_RATE: u64 = 20_000;

/// The response body of the contract: the first `n` bytes of `0123456789abcdef`
/// repeated.
pub fn body(n: u64) -> String {
    const PATTERN: &[u8] = b"0123456789abcdef";
    (0..n as usize)
        .map(|i| char::from(PATTERN[i % PATTERN.len()]))
        .collect()
}

/// A server of the http scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// `c1m-server --backend B --protocol http` (go: `c1m-go-net`, the same flags).
    C1m(Backend),
    /// nginx with the nginx.conf of [`nginx::render`].
    Nginx,
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Server::C1m(b) => b.name(),
            Server::Nginx => "nginx",
        }
    }

    /// Position in the tables: the c1m backends in canonical order, then nginx.
    pub fn rank(self) -> usize {
        match self {
            Server::C1m(b) => Backend::ALL.iter().position(|&x| x == b).unwrap_or(0),
            Server::Nginx => Backend::ALL.len(),
        }
    }

    pub fn from_name(name: &str) -> Option<Server> {
        if name == "nginx" {
            return Some(Server::Nginx);
        }
        Backend::ALL
            .iter()
            .find(|b| b.name() == name)
            .map(|&b| Server::C1m(b))
    }
}

pub use crate::case::Client;

/// `c1000`, or `c1000-r50` for the open-loop point at [`OPEN_FRACTION`].
pub fn point_name(conns: u64, open: bool) -> String {
    if open {
        format!("c{conns}-r{}", (OPEN_FRACTION * 100.0).round() as u64)
    } else {
        format!("c{conns}")
    }
}

/// The servers of the http scenario: every selected backend (c1m-server's, and the Go
/// reference server when named: same flags, same wire format), then nginx, always.
pub fn servers(backends: &[Backend]) -> Vec<Server> {
    backends
        .iter()
        .map(|&b| Server::C1m(b))
        .chain([Server::Nginx])
        .collect()
}

/// One case of the http scenario: `<server>-<client>-<point>`; `args` are the loadgen's
/// other options (duration, warm-up).
fn case_of(
    server: Server,
    client: Client,
    conns: u64,
    rate: Option<u64>,
    body: u64,
    args: &[String],
) -> Case {
    let point = point_name(conns, rate.is_some());
    Case {
        name: format!("{}-{}-{point}", server.name(), client.short()),
        scenario: Scenario::Http,
        point,
        round: None,
        server: match server {
            Server::C1m(b) => case::Server::C1m(Variant::of_backend(b)),
            Server::Nginx => case::Server::Nginx,
        },
        client,
        wire: Wire::Http { body },
        conns,
        rate,
        sources: None,
        max_conns: None,
        kind: Kind::Plain,
        loadgen_args: args.to_vec(),
    }
}

/// The closed-loop phase: every server under both clients at `conns` connections.
pub fn closed_cases(servers: &[Server], conns: u64, body: u64, args: &[String]) -> Vec<Case> {
    let mut out = Vec::new();
    for &server in servers {
        for client in Client::BOTH {
            out.push(case_of(server, client, conns, None, body, args));
        }
    }
    out
}

/// The open-loop phase: every server under c1m-loadgen at `rate` requests/s.
pub fn open_cases(
    servers: &[Server],
    conns: u64,
    rate: u64,
    body: u64,
    args: &[String],
) -> Vec<Case> {
    servers
        .iter()
        .map(|&server| case_of(server, Client::Loadgen, conns, Some(rate), body, args))
        .collect()
}

/// Seconds of one case: the loadgen's warm-up and run, or wrk's (whole seconds each), plus
/// start, readiness and stop.
fn case_s(client: Client, scale: &Scale) -> u64 {
    match client {
        Client::Loadgen => (scale.dur.value + scale.warm.value).ceil() as u64 + 3,
        Client::Wrk => wrk::whole_secs(scale.dur.value) + wrk::whole_secs(scale.warm.value) + 3,
    }
}

/// Estimated seconds of the http scenario.
pub fn estimate_s(backends: &[Backend], scale: &Scale) -> u64 {
    let rounds = u64::from(scale.rounds(Scenario::Http));
    let per_server: u64 = Client::BOTH.iter().map(|&c| case_s(c, scale)).sum::<u64>()
        + case_s(Client::Loadgen, scale);
    rounds * servers(backends).len() as u64 * per_server
}

/// The plan line of the http scenario.
pub fn plan_line(backends: &[Backend], scale: &Scale, body_size: u64, rounds: &str) -> String {
    let names: Vec<&str> = servers(backends).iter().map(|s| s.name()).collect();
    format!(
        "  http              HTTP/1.1 keep-alive, {body_size} B body; servers {}; \
         clients c1m-loadgen and wrk, closed loop, {} conns; then open loop at {:.0}% of the \
         slowest server's c1m-loadgen req/s (c1m-loadgen only: wrk cannot hold a rate); \
         {} s (+{} s warm-up) per run; {rounds}\n",
        names.join(" "),
        scale.http_conns,
        OPEN_FRACTION * 100.0,
        scale.dur.text,
        scale.warm.text,
    )
}

/// The outside programs of the http scenario.
#[derive(Debug, Clone)]
pub struct Tools {
    pub nginx: PathBuf,
    pub wrk: PathBuf,
    pub taskset: PathBuf,
}

impl Tools {
    /// nginx, wrk and taskset, or what is missing and how to get it.
    pub fn find() -> Result<Tools, String> {
        let (nginx, wrk, taskset) = (
            crate::tools::find_program("nginx"),
            crate::tools::find_program("wrk"),
            crate::tools::find_program("taskset"),
        );
        match (nginx, wrk, taskset) {
            (Some(nginx), Some(wrk), Some(taskset)) => Ok(Tools {
                nginx,
                wrk,
                taskset,
            }),
            (n, w, t) => {
                let missing: Vec<&str> = [
                    ("nginx", n.is_none()),
                    ("wrk", w.is_none()),
                    ("taskset", t.is_none()),
                ]
                .iter()
                .filter(|(_, m)| *m)
                .map(|(name, _)| *name)
                .collect();
                Err(format!(
                    "the http scenario needs {} (not found on PATH, /usr/sbin or /sbin): run \
                     scripts/setup.sh as root, it installs nginx, wrk and util-linux",
                    missing.join(", ")
                ))
            }
        }
    }
}

/// The outside programs of one site, and the `*_temp_path` directives of its nginx.
#[derive(Debug, Clone)]
pub struct SiteTools {
    pub tools: Tools,
    pub temp_paths: Vec<&'static str>,
    /// A host's hard `RLIMIT_NOFILE` (nginx's limit there); None: this process's.
    pub nofile_hard: Option<u64>,
}

/// What every case of one http scenario shares: the outside programs here (loopback,
/// netns), or on each host by its `[user@]host` (hosts, from their preflight).
#[derive(Debug, Clone, Default)]
pub struct HttpEnv {
    pub here: Option<SiteTools>,
    pub hosts: BTreeMap<String, SiteTools>,
}

impl HttpEnv {
    /// The programs where `site` runs.
    pub fn at(&self, site: &Site) -> anyhow::Result<&SiteTools> {
        let found = match &site.remote {
            None => self.here.as_ref(),
            Some(r) => self.hosts.get(&r.target),
        };
        found.ok_or_else(|| anyhow::anyhow!("no nginx/wrk/taskset known for {}", site.name))
    }
}

impl HttpEnv {
    /// nginx, wrk and taskset of this machine (loopback, netns).
    pub fn here() -> anyhow::Result<HttpEnv> {
        let tools = Tools::find().map_err(anyhow::Error::msg)?;
        let temp_paths = nginx::temp_path_directives(&nginx::version_text(&tools.nginx)?);
        Ok(HttpEnv {
            here: Some(SiteTools {
                tools,
                temp_paths,
                nofile_hard: None,
            }),
            ..HttpEnv::default()
        })
    }

    /// Each host's, from its preflight (which checked that its role has them, see
    /// [`host_needs`]).
    pub fn of_hosts(hosts: &[(&HostSpec, &Facts)]) -> HttpEnv {
        let hosts = hosts
            .iter()
            .map(|(h, f)| {
                let at = |p: &str| f.program(p).unwrap_or_default();
                let tools = Tools {
                    nginx: at("nginx"),
                    wrk: at("wrk"),
                    taskset: at("taskset"),
                };
                let temp_paths = nginx::temp_path_directives(f.get("nginx_build"));
                let site = SiteTools {
                    tools,
                    temp_paths,
                    nofile_hard: Some(f.nofile()),
                };
                (h.target.clone(), site)
            })
            .collect();
        HttpEnv { here: None, hosts }
    }
}

/// What the http scenario needs on hosts, when the run has it: nginx and taskset on the
/// server host, wrk and taskset on the client hosts (none is shipped).
pub fn host_needs(scenarios: &[Scenario]) -> Needs {
    if !scenarios.contains(&Scenario::Http) {
        return Needs::default();
    }
    Needs {
        server: vec!["nginx", "taskset"],
        clients: vec!["wrk", "taskset"],
        why: "the http scenario",
    }
}

/// When the run has the http scenario: its tools, or an error saying how to install
/// them (on a dry run a warning, and None).
pub fn check_tools(scenarios: &[Scenario], dry_run: bool) -> anyhow::Result<Option<Tools>> {
    if !scenarios.contains(&Scenario::Http) {
        return Ok(None);
    }
    match Tools::find() {
        Ok(t) => Ok(Some(t)),
        Err(why) if dry_run => {
            crate::warn(why);
            Ok(None)
        }
        Err(why) => anyhow::bail!("{why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::scale;

    #[test]
    fn body_follows_the_contract() {
        assert_eq!(body(0), "");
        assert_eq!(body(5), "01234");
        assert_eq!(body(20), "0123456789abcdef0123");
        assert_eq!(body(64).len(), 64);
    }

    #[test]
    fn servers_are_the_c1m_backends_then_nginx() {
        let s = servers(&[Backend::Uring, Backend::Epoll, Backend::Go]);
        assert_eq!(
            s,
            vec![
                Server::C1m(Backend::Uring),
                Server::C1m(Backend::Epoll),
                Server::C1m(Backend::Go),
                Server::Nginx
            ]
        );
        assert_eq!(servers(&[]), vec![Server::Nginx]);
        assert_eq!(
            Server::from_name("tokio-uring"),
            Some(Server::C1m(Backend::TokioUring))
        );
        assert_eq!(Server::from_name("nginx"), Some(Server::Nginx));
        assert!(Server::Nginx.rank() > Server::C1m(Backend::Go).rank());
        assert_eq!(Client::from_name("wrk"), Some(Client::Wrk));
    }

    #[test]
    fn hosts_bring_their_own_nginx_and_wrk() {
        assert_eq!(host_needs(&[Scenario::Pingpong]), Needs::default());
        let needs = host_needs(&[Scenario::Pingpong, Scenario::Http]);
        assert_eq!(needs.server, ["nginx", "taskset"]);
        assert_eq!(needs.clients, ["wrk", "taskset"]);
        let plan = crate::topology::hosts::HostsPlan::new(
            "root@198.18.0.1",
            "root@198.18.0.2",
            &[],
            crate::topology::hosts::ssh::Ssh::default(),
            "t",
            &crate::topology::hosts::resolve,
        )
        .expect("valid");
        let srv = Facts::parse(
            "nginx=/opt/nginx\ntaskset=/usr/bin/taskset\nwrk=absent\n\
             nginx_build=nginx version: x configure arguments: --without-http_scgi_module\n",
        );
        let cli = Facts::parse("nginx=absent\ntaskset=/usr/bin/taskset\nwrk=/usr/bin/wrk\n");
        let env = HttpEnv::of_hosts(&[(&plan.server, &srv), (&plan.clients[0], &cli)]);
        let p = crate::topology::placement::Placement::hosts(&plan, "1", 1000);
        let at = env.at(&p.server.site).expect("the server host");
        assert_eq!(at.tools.nginx, PathBuf::from("/opt/nginx"));
        assert!(
            !at.temp_paths.contains(&"scgi_temp_path"),
            "{:?}",
            at.temp_paths
        );
        assert!(at.temp_paths.contains(&"client_body_temp_path"));
        assert_eq!(at.nofile_hard, Some(1024), "not reported: the default");
        let at = env.at(&p.clients[0].site).expect("the client host");
        assert_eq!(at.tools.wrk, PathBuf::from("/usr/bin/wrk"));
        // Not a host of the run: no programs known (here is not looked at on hosts).
        assert!(env.at(&Site::here()).is_err());
    }

    #[test]
    fn the_plan_of_the_http_scenario() {
        let s = servers(&[Backend::Uring, Backend::Epoll]);
        let args = vec!["--duration".to_string(), "2".into()];
        let closed = closed_cases(&s, 1000, 64, &args);
        let names: Vec<&str> = closed.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "uring-loadgen-c1000",
                "uring-wrk-c1000",
                "epoll-loadgen-c1000",
                "epoll-wrk-c1000",
                "nginx-loadgen-c1000",
                "nginx-wrk-c1000"
            ]
        );
        assert!(closed
            .iter()
            .all(|c| c.rate.is_none() && c.point == "c1000" && c.loadgen_args == args));
        assert_eq!(
            closed[1].server,
            case::Server::C1m(Variant::of_backend(Backend::Uring))
        );
        assert_eq!(closed[5].server, case::Server::Nginx);
        assert!(closed
            .iter()
            .all(|c| c.wire == Wire::Http { body: 64 } && c.scenario == Scenario::Http));
        let open = open_cases(&s, 1000, 30_000, 64, &args);
        let names: Vec<&str> = open.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "uring-loadgen-c1000-r50",
                "epoll-loadgen-c1000-r50",
                "nginx-loadgen-c1000-r50"
            ]
        );
        // wrk cannot hold a rate: the open-loop point is c1m-loadgen's alone.
        assert!(open
            .iter()
            .all(|c| c.client == Client::Loadgen && c.rate == Some(30_000)));

        let q = scale(true, None, None, 0, None);
        assert_eq!(q.http_conns, 1000);
        // quick: 1 round; per server: loadgen 2+0.5 -> 3+3, wrk 2+1+3, open 6.
        assert_eq!(estimate_s(&[Backend::Uring], &q), 2 * (6 + 6 + 6));
        let f = scale(false, None, None, 0, None);
        // 3 rounds x 3 servers x (5+1+3, 5+1+3, 9)
        assert_eq!(
            estimate_s(&[Backend::Uring, Backend::Epoll], &f),
            3 * 3 * 27
        );
        let line = plan_line(&[Backend::Uring, Backend::Go], &q, 64, "1 round");
        assert!(line.starts_with("  http              HTTP/1.1 keep-alive, 64 B body; servers uring go nginx; clients"), "{line}");
        assert!(
            line.contains("c1m-loadgen only: wrk cannot hold a rate"),
            "{line}"
        );
        assert!(
            line.ends_with("2 s (+0.5 s warm-up) per run; 1 round\n"),
            "{line}"
        );
    }
}
