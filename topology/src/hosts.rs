//! `--topology hosts`: the server on one machine, one loadgen shard per client machine,
//! all reached over ssh (pure parts: the hosts as given, their preflight facts, which
//! sysctls go where, the plan as printed).
//!
//! - [`ssh`]: every remote command as data, each word quoted;
//! - [`remote`]: the run on the hosts: preflight, shipping, the per-host watchdog,
//!   sysctls, files fetched back, the teardown.

#[cfg(test)]
mod ready_tests;
pub mod remote;
pub mod ssh;
pub mod transfer;
pub mod unpack;

use self::ssh::{check_host, host_part, quote_words, Ssh};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, ToSocketAddrs as _};

/// Keys only the server's host gets (accept queue, half-open connections).
pub const SERVER_ONLY: [&str; 2] = ["net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog"];
/// Keys only client hosts get (ephemeral ports and their reuse).
pub const CLIENT_ONLY: [&str; 3] = [
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_tw_reuse",
];

/// What a dry run shows for the remote directory `mktemp -d` will make.
pub const DIR_PLACEHOLDER: &str = "/tmp/c1m-host.XXXXXX";

/// One machine of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSpec {
    /// `[user@]host`, as given (what ssh connects to).
    pub target: String,
    /// "server" or "client N".
    pub role: String,
    /// Its address (the server listens on it; a client's default source).
    pub addr: Ipv4Addr,
    /// `--client-sources` of a client (empty: its own address, the kernel picks).
    pub sources: Vec<Ipv4Addr>,
    /// Names its sysctl state file on that host (unique per run and host).
    pub token: String,
}

impl HostSpec {
    pub fn is_server(&self) -> bool {
        self.role == "server"
    }

    /// The program it runs.
    pub fn program(&self) -> &'static str {
        if self.is_server() {
            "c1m-server"
        } else {
            "c1m-loadgen"
        }
    }
}

/// The hosts of a run, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostsPlan {
    pub ssh: Ssh,
    pub server: HostSpec,
    pub clients: Vec<HostSpec>,
}

/// The IPv4 address of `host` (a literal, else the first IPv4 the resolver gives).
/// A host's IPv4 address: the literal, or the first the name resolves to (DNS: done
/// while gathering facts, never inside the plan).
pub fn resolve(host: &str) -> Result<Ipv4Addr, String> {
    if let Ok(a) = host.parse() {
        return Ok(a);
    }
    (host, 22)
        .to_socket_addrs()
        .ok()
        .and_then(|mut it| {
            it.find_map(|a| match a.ip() {
                std::net::IpAddr::V4(v4) => Some(v4),
                std::net::IpAddr::V6(_) => None,
            })
        })
        .ok_or_else(|| {
            format!("host {host}: no IPv4 address (give an address or a name that resolves)")
        })
}

impl HostsPlan {
    /// From `--server-host`, `--client-hosts` (comma list), `--client-sources` (one
    /// address range per client host, in order) and the ssh options. `suffix` makes
    /// the state file names unique.
    pub fn new(
        server: &str,
        clients: &str,
        sources: &[String],
        ssh: Ssh,
        suffix: &str,
        resolve: &dyn Fn(&str) -> Result<Ipv4Addr, String>,
    ) -> Result<HostsPlan, String> {
        check_host(server)?;
        let names: Vec<&str> = clients.split(',').map(str::trim).collect();
        if names.iter().any(|n| n.is_empty()) {
            return Err(format!(
                "--client-hosts '{clients}': want H1,H2,... with no empty name"
            ));
        }
        for n in &names {
            check_host(n)?;
        }
        if sources.len() > names.len() {
            return Err(format!(
                "--client-sources given {} times for {} client host(s)",
                sources.len(),
                names.len()
            ));
        }
        let spec = |target: &str, role: String, srcs: Vec<Ipv4Addr>, i: usize| {
            Ok::<_, String>(HostSpec {
                target: target.to_owned(),
                role,
                addr: resolve(host_part(target))?,
                sources: srcs,
                token: format!("hosts-{suffix}-{i}"),
            })
        };
        let mut cl = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let srcs = match sources.get(i) {
                Some(t) => super::placement::parse_addresses(t)
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| {
                        format!("--client-sources '{t}': not an address range or list")
                    })?,
                None => Vec::new(),
            };
            cl.push(spec(n, format!("client {i}"), srcs, i + 1)?);
        }
        Ok(HostsPlan {
            ssh,
            server: spec(server, "server".into(), Vec::new(), 0)?,
            clients: cl,
        })
    }

    /// The server first, then the clients (the order of setup; teardown is reversed).
    pub fn hosts(&self) -> Vec<&HostSpec> {
        std::iter::once(&self.server).chain(&self.clients).collect()
    }

    /// The settings `entries` (profile then `--set`s) that host `h` gets.
    pub fn role_entries(h: &HostSpec, entries: &[(String, String)]) -> Vec<(String, String)> {
        let skip: &[&str] = if h.is_server() {
            &CLIENT_ONLY
        } else {
            &SERVER_ONLY
        };
        entries
            .iter()
            .filter(|(k, _)| !skip.contains(&k.trim_start_matches('-')))
            .cloned()
            .collect()
    }

    /// The plan's hosts part: what runs where and the ssh commands (a dry run connects
    /// to nothing).
    pub fn plan_text(&self, entries: &[(String, String)], commands: bool) -> String {
        let mut t = format!(
            "  ssh: {} (your ssh config and keys; extra options: {})\n",
            quote_words(&self.ssh.shell("HOST", "...")[..self.ssh.shell("HOST", "...").len() - 2]),
            if self.ssh.extra.is_empty() {
                "none".to_owned()
            } else {
                self.ssh.extra.join(" ")
            }
        );
        for h in self.hosts() {
            let keys: Vec<String> = Self::role_entries(h, entries)
                .iter()
                .map(|(k, v)| format!("{}={v}", k.trim_start_matches('-')))
                .collect();
            let _ = writeln!(
                t,
                "  host {} ({}, {}): runs {}; sysctls (saved, applied, restored there): {}",
                h.target,
                h.role,
                h.addr,
                h.program(),
                if keys.is_empty() {
                    "none".into()
                } else {
                    keys.join(" ")
                }
            );
            if commands {
                for c in remote::setup_commands(&self.ssh, h, entries) {
                    let _ = writeln!(t, "    {c}");
                }
            }
        }
        t
    }
}

/// The preflight of every host (stops naming a host that cannot be reached or used,
/// or that lacks a program of `needs` for its role, before anything is copied), then
/// the CPUs from the hosts' own: on one machine, as on loopback (the server on the
/// first half, the loadgens on the second); on machines of their own, all of each.
/// Runs before the plan is printed, so the plan shows the CPUs used. Returns the
/// hosts' preflight lines.
pub fn preflight(
    topo: &mut super::active::Topology,
    split: &mut crate::cpus::CpuSplit,
    root: &std::path::Path,
    needs: &Needs,
) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let hosts = topo.hosts_mut().context("not a hosts topology")?;
    let text = hosts.preflight(root, needs)?;
    let facts: Vec<Facts> = hosts.facts().into_iter().cloned().collect();
    let (server, clients) = facts.split_first().context("no hosts")?;
    let shared = clients
        .iter()
        .any(|c| c.get("boot_id") == server.get("boot_id"));
    let list = c1m_platform::cpus::format_cpu_list;
    if shared {
        *split = crate::cpus::split_cpus(&server.cpus());
        crate::log("the server and a client host share one kernel (same boot id): CPUs split as on loopback");
    } else {
        split.server = list(&server.cpus());
    }
    let k = topo.placement.clients.len();
    for (i, (c, f)) in topo.placement.clients.iter_mut().zip(clients).enumerate() {
        c.cpus = if shared {
            super::placement::shard_cpus(&split.loadgen, i, k)
        } else {
            list(&f.cpus())
        };
    }
    crate::say!("{text}");
    Ok(text)
}

/// Programs a run needs on its hosts beyond the kit's own, which are shipped (the http
/// scenario: nginx on the server host, wrk on the client hosts, taskset on both).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub server: Vec<&'static str>,
    pub clients: Vec<&'static str>,
    /// What needs them, for the refusal: "the http scenario".
    pub why: &'static str,
}

/// A host's preflight, from `c1m-host.sh preflight`'s KEY=VALUE lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts(pub BTreeMap<String, String>);

impl Facts {
    pub fn parse(text: &str) -> Facts {
        Facts(
            text.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect(),
        )
    }

    pub fn get(&self, k: &str) -> &str {
        self.0.get(k).map_or("?", String::as_str)
    }

    fn number(&self, k: &str) -> Option<u64> {
        match self.get(k) {
            "unlimited" => Some(u64::MAX),
            v => v.parse().ok(),
        }
    }

    pub fn root(&self) -> bool {
        self.get("uid") == "0"
    }

    /// Root, or a user who may `sudo -n`: sysctls can be set.
    pub fn can_tune(&self) -> bool {
        self.root() || self.get("sudo") == "yes"
    }

    /// `RLIMIT_NOFILE` a process there may raise its soft limit to.
    pub fn nofile(&self) -> u64 {
        self.number("nofile_hard").unwrap_or(1024)
    }

    pub fn mem_kb(&self) -> u64 {
        self.number("mem_available_kb").unwrap_or(0)
    }

    pub fn cpus(&self) -> Vec<usize> {
        c1m_platform::cpus::parse_cpu_list(self.get("cpus")).unwrap_or_else(|_| vec![0])
    }

    /// Why the host cannot take part, if it cannot: another architecture than the
    /// binaries, no io_uring for this user, or a CPU list the kit cannot use.
    pub fn problem(&self, local_arch: &str) -> Option<String> {
        if let Err(e) = c1m_platform::cpus::parse_cpu_list(self.get("cpus")) {
            return Some(format!("its online CPU list is not usable: {e}"));
        }
        let arch = self.get("arch");
        if arch != local_arch {
            return Some(format!(
                "it is {arch}, the binaries are built for {local_arch} (every host needs the same architecture)"
            ));
        }
        match self.get("io_uring_disabled") {
            "2" => Some("io_uring is disabled (kernel.io_uring_disabled = 2)".into()),
            "1" if !self.root() => Some(
                "io_uring is disabled for this user (kernel.io_uring_disabled = 1; log in as root)"
                    .into(),
            ),
            _ => None,
        }
    }

    /// Where `program` is on the host (its preflight looks on PATH, /usr/sbin, /sbin).
    pub fn program(&self, program: &str) -> Option<std::path::PathBuf> {
        Some(self.get(program))
            .filter(|p| p.starts_with('/'))
            .map(std::path::PathBuf::from)
    }

    /// Why host `h` cannot run what `needs` asks of its role, if it cannot.
    pub fn lacks(&self, h: &HostSpec, needs: &Needs) -> Option<String> {
        let want = if h.is_server() {
            &needs.server
        } else {
            &needs.clients
        };
        let missing: Vec<&str> = want
            .iter()
            .copied()
            .filter(|p| self.program(p).is_none())
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "host {} ({}) has no {} ({} runs it there; it is not shipped): run `sudo scripts/setup.sh` on {}",
                h.target,
                h.role,
                missing.join(", "),
                needs.why,
                h.target
            )
        })
    }

    /// One preflight line.
    pub fn line(&self, h: &HostSpec) -> String {
        let mib = self.mem_kb() / 1024;
        format!(
            "host {} ({}): {} kernel {} {}, io_uring_disabled {}, RLIMIT_NOFILE {}/{} (hard raisable: {}), MemAvailable {mib} MiB, CPUs {}, {}",
            h.target,
            h.role,
            self.get("hostname"),
            self.get("kernel"),
            self.get("arch"),
            self.get("io_uring_disabled"),
            self.get("nofile_soft"),
            self.get("nofile_hard"),
            self.get("nofile_raise"),
            self.get("cpus"),
            if self.root() {
                "root"
            } else if self.can_tune() {
                "not root, sudo -n works"
            } else {
                "not root, no sudo: sysctls stay as they are"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> HostsPlan {
        HostsPlan::new(
            "root@198.18.0.1",
            "root@198.18.0.2, u@198.18.0.3",
            &["198.18.0.10-198.18.0.12".into()],
            Ssh::new(None, &["-p 2222".into()]),
            "abc123",
            &resolve,
        )
        .expect("valid")
    }

    #[test]
    fn hosts_are_parsed_and_checked() {
        let p = plan();
        assert_eq!(p.server.addr, Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(p.clients.len(), 2);
        assert_eq!(p.clients[0].sources.len(), 3);
        assert!(p.clients[1].sources.is_empty());
        assert_eq!(p.clients[1].token, "hosts-abc123-2");
        let ssh = Ssh::default;
        for (s, c, src, msg) in [
            ("-oX", "h", vec![], "not starting with -"),
            ("h", "a,,b", vec![], "no empty name"),
            ("h", "a", vec!["x".to_string()], "not an address"),
            (
                "h",
                "a",
                vec!["1.1.1.1".into(), "1.1.1.2".into()],
                "2 times",
            ),
        ] {
            let e = HostsPlan::new(s, c, &src, ssh(), "x", &resolve).expect_err(msg);
            assert!(e.contains(msg), "{e}");
        }
    }

    #[test]
    fn server_and_clients_get_their_keys() {
        let entries: Vec<(String, String)> = [
            ("net.core.somaxconn", "65535"),
            ("net.ipv4.ip_local_port_range", "1024 65535"),
            ("net.ipv4.tcp_mem", "1 2 3"),
            ("-net.netfilter.nf_conntrack_max", "9"),
        ]
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
        let p = plan();
        let s = HostsPlan::role_entries(&p.server, &entries);
        let c = HostsPlan::role_entries(&p.clients[0], &entries);
        let keys = |v: &[(String, String)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(
            keys(&s),
            [
                "net.core.somaxconn",
                "net.ipv4.tcp_mem",
                "-net.netfilter.nf_conntrack_max"
            ]
        );
        assert_eq!(
            keys(&c),
            [
                "net.ipv4.ip_local_port_range",
                "net.ipv4.tcp_mem",
                "-net.netfilter.nf_conntrack_max"
            ]
        );
        let text = p.plan_text(&entries, true);
        assert!(
            text.contains("host u@198.18.0.3 (client 1, 198.18.0.3): runs c1m-loadgen"),
            "{text}"
        );
        assert!(text.contains("-- root@198.18.0.1"), "{text}");
        assert!(text.contains("-p 2222"), "{text}");
    }

    #[test]
    fn facts_say_what_a_host_can_do() {
        let f = Facts::parse(
            "kernel=6.1.0\narch=x86_64\nio_uring_disabled=0\nnofile_soft=1024\nnofile_hard=unlimited\n\
             nofile_raise=yes\nmem_available_kb=2048000\ncpus=0-3\nuid=1000\nsudo=no\nhostname=b1\n",
        );
        assert_eq!(f.cpus(), vec![0, 1, 2, 3]);
        assert_eq!(f.nofile(), u64::MAX);
        assert!(!f.can_tune());
        assert_eq!(f.problem("x86_64"), None);
        assert!(f
            .problem("aarch64")
            .is_some_and(|p| p.contains("architecture")));
        let mut g = f.clone();
        g.0.insert("io_uring_disabled".into(), "1".into());
        assert!(g.problem("x86_64").is_some_and(|p| p.contains("root")));
        // A hostile host's CPU list is refused without expanding it.
        let mut h = f.clone();
        h.0.insert("cpus".into(), "0-4294967295".into());
        assert!(h
            .problem("x86_64")
            .is_some_and(|p| p.contains("past the kernel's limit of 8192")));
        assert_eq!(h.cpus(), vec![0]);
        let line = f.line(&plan().server);
        assert!(
            line.contains("kernel 6.1.0") && line.contains("2000 MiB"),
            "{line}"
        );
    }

    #[test]
    fn a_host_without_the_programs_of_its_role_is_refused_by_name() {
        let p = plan();
        let needs = Needs {
            server: vec!["nginx", "taskset"],
            clients: vec!["wrk", "taskset"],
            why: "the http scenario",
        };
        let f = Facts::parse("nginx=/usr/sbin/nginx\nwrk=absent\ntaskset=/usr/bin/taskset\n");
        assert_eq!(f.program("nginx"), Some("/usr/sbin/nginx".into()));
        assert_eq!(f.program("wrk"), None);
        assert_eq!(f.program("curl"), None, "not reported: none");
        assert_eq!(f.lacks(&p.server, &needs), None);
        let why = f.lacks(&p.clients[0], &needs).expect("no wrk");
        assert!(
            why.contains(&p.clients[0].target)
                && why.contains("has no wrk (the http scenario")
                && why.contains("sudo scripts/setup.sh"),
            "{why}"
        );
        // Nothing asked: nothing lacking (an older host-preflight.sh says nothing).
        assert_eq!(Facts::default().lacks(&p.server, &Needs::default()), None);
    }
}
