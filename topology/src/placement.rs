//! Placement: where the server and each loadgen shard run, as data (no I/O here).
//!
//! A [`Placement`] says where the server runs (a [`Site`]: the argv prefix that starts
//! a program there and the namespace whose sockets to count) and on which address it
//! listens, and for every client where its loadgen shard runs, which source addresses
//! it may bind and which CPUs it gets. [`Placement::shards`] turns one case's typed load
//! ([`ShardLoad`]: connections, rate, own source addresses) and server ports into one
//! [`Shard`] per client: its share of the connections (and of the rate), its
//! `--source-ips`, its run folder.
//!
//! - `loopback`: one site, the caller's namespace; the server on 127.0.0.1, one shard
//!   with sources from 127.0.0.2-127.0.0.251 when one address is not enough.
//! - `netns`: the server in its namespace on 198.18.0.1, one shard per client namespace
//!   with sources from that client's 198.18.N.0/24 (see [`super::netns`]).
//! - `hosts`: the server on its host's address, one shard per client host with
//!   that host's own address (or its `--client-sources`); every program started over
//!   ssh in the run's private directory there (see [`super::hosts`]).

use super::hosts::ssh::Ssh;
use super::hosts::{HostsPlan, DIR_PLACEHOLDER};
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::path::Path;

/// A topology's name on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Loopback,
    Netns,
    Hosts,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Loopback => "loopback",
            Kind::Netns => "netns",
            Kind::Hosts => "hosts",
        }
    }

    /// `--topology` as given; an unknown or not yet built topology says so.
    pub fn parse(s: &str) -> Result<Kind, String> {
        match s {
            "loopback" => Ok(Kind::Loopback),
            "netns" => Ok(Kind::Netns),
            "hosts" => Ok(Kind::Hosts),
            other => Err(format!(
                "unknown topology \"{other}\" (known: loopback netns hosts)"
            )),
        }
    }
}

/// Where one program runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// For people: "root namespace", "namespace c1m-srv-abc123".
    pub name: String,
    /// The argv prefix that starts a program there (empty: right here).
    pub prefix: Vec<String>,
    /// The network namespace whose `/proc/net` shows the sockets there (None: ours).
    pub netns: Option<String>,
    /// Another machine, reached over ssh (hosts).
    pub remote: Option<RemoteSite>,
}

/// A host of the hosts topology: how to reach it, and the run's directory there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSite {
    pub ssh: Ssh,
    /// `[user@]host`.
    pub target: String,
    /// The run's private directory there (a placeholder until it exists).
    pub dir: String,
}

impl RemoteSite {
    /// Where a local path of the run's results lives on the host.
    pub fn file(&self, local: &Path) -> String {
        let rel = local.to_string_lossy();
        format!("{}/f/{}", self.dir, rel.trim_start_matches('/'))
    }
}

impl Site {
    /// The caller's own network namespace.
    pub fn here() -> Site {
        Site {
            name: "root namespace".into(),
            prefix: Vec::new(),
            netns: None,
            remote: None,
        }
    }

    /// Inside network namespace `ns`, started through `ip netns exec NS`.
    pub fn netns(ns: &str) -> Site {
        Site {
            name: format!("namespace {ns}"),
            prefix: super::netns::exec_prefix(ns),
            netns: Some(ns.to_owned()),
            remote: None,
        }
    }

    /// On host `target`, over ssh, in the run's directory there.
    pub fn host(ssh: &Ssh, target: &str, role: &str) -> Site {
        Site {
            name: format!("host {target} ({role})"),
            prefix: ssh.shell(target, "..."),
            netns: None,
            remote: Some(RemoteSite {
                ssh: ssh.clone(),
                target: target.to_owned(),
                dir: DIR_PLACEHOLDER.to_owned(),
            }),
        }
    }

    /// How `bin` (a local binary) is named where this site runs it.
    pub fn program(&self, bin: &Path) -> String {
        match &self.remote {
            None => bin.display().to_string(),
            Some(_) => format!(
                "./{}",
                bin.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            ),
        }
    }

    /// How the local path `p` (a result file or folder) is named where this site runs.
    pub fn file(&self, p: &Path) -> String {
        match &self.remote {
            None => p.display().to_string(),
            Some(r) => r.file(p),
        }
    }

    /// `argv` with this site's prefix in front. On a host: ssh into the run's
    /// directory, make the result folders its arguments name, and start it with
    /// `c1m-host.sh run` (which stops it when this ssh ends).
    pub fn command(&self, argv: Vec<String>) -> Vec<String> {
        if let Some(r) = &self.remote {
            let files = format!("{}/f/", r.dir);
            let dirs: Vec<String> = argv
                .iter()
                .filter(|a| a.starts_with(&files))
                .filter_map(|a| a.rsplit_once('/').map(|(d, _)| d.to_owned()))
                .collect();
            let mut line = format!("cd {}", super::hosts::ssh::quote(&r.dir));
            if !dirs.is_empty() {
                line.push_str(&format!(
                    " && mkdir -p -- {}",
                    super::hosts::ssh::quote_words(&dirs)
                ));
            }
            let mut words = vec!["./c1m-host.sh".to_owned(), "run".to_owned()];
            words.extend(argv);
            line.push_str(&format!(
                " && exec {}",
                super::hosts::ssh::quote_words(&words)
            ));
            return r.ssh.shell(&r.target, &line);
        }
        let mut all = self.prefix.clone();
        all.extend(argv);
        all
    }
}

/// Where the server runs and the address it listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerPlace {
    pub site: Site,
    pub listen: Ipv4Addr,
}

/// Where one loadgen shard runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientPlace {
    pub site: Site,
    /// Source addresses its shard may bind, in order of use.
    pub sources: Vec<Ipv4Addr>,
    /// How many addresses at the end of `sources` are kept for cases that ask for
    /// addresses of their own (churn, whose TIME_WAITs must not take a hold's ports).
    pub dedicated: usize,
    /// `--cpus` of its shard.
    pub cpus: String,
}

/// Where everything of one run goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub kind: Kind,
    pub server: ServerPlace,
    pub clients: Vec<ClientPlace>,
    /// Connections one (source, server port) pair may carry (see `plan::Limits`).
    pub ports_per_pair: u64,
}

/// Loopback sources: 127.0.0.2 ..= 127.0.0.251.
pub const LOOPBACK_SOURCES: usize = 250;
/// Addresses kept per netns client for cases that want their own (churn uses 4).
pub const DEDICATED_SOURCES: usize = 4;

/// One loadgen process of a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Index into [`Placement::clients`].
    pub client: usize,
    /// Its share of the case's connections.
    pub conns: u64,
    /// Its `--source-ips` (empty: the kernel picks, as on loopback with one address).
    pub sources: Vec<Ipv4Addr>,
    /// Its run folder below the case folder; None: the case folder itself (one shard).
    pub subdir: Option<String>,
    /// `--connections`, `--rate` and `--source-ips` of this shard.
    pub args: Vec<String>,
}

/// What a case asks of its loadgen shards, typed: they share it out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardLoad {
    pub conns: u64,
    /// Open loop: messages/s of the whole case.
    pub rate: Option<u64>,
    /// Source addresses of the case's own (churn), kept where a client has them.
    pub sources: Option<Vec<Ipv4Addr>>,
}

impl ShardLoad {
    /// `conns` closed-loop connections from the clients' general addresses.
    pub fn closed(conns: u64) -> ShardLoad {
        ShardLoad {
            conns,
            ..ShardLoad::default()
        }
    }
}

/// `total` in `parts` shares that differ by at most one, larger first; they sum to
/// `total`.
pub fn split_even(total: u64, parts: usize) -> Vec<u64> {
    let parts = parts.max(1) as u64;
    (0..parts)
        .map(|i| total / parts + u64::from(i < total % parts))
        .collect()
}

/// Source addresses one shard needs for `conns` connections spread round-robin over
/// `targets` server ports, at most `ports_per_pair` per (source, port) pair.
pub fn sources_needed(conns: u64, targets: u64, ports_per_pair: u64) -> u64 {
    conns
        .div_ceil(targets.max(1))
        .div_ceil(ports_per_pair.max(1))
        .max(1)
}

/// `a` for one address, `first-last` for a contiguous run, else a comma list.
pub fn addresses_text(addrs: &[Ipv4Addr]) -> String {
    let contiguous = addrs
        .windows(2)
        .all(|w| u32::from(w[1]) == u32::from(w[0]).wrapping_add(1));
    match addrs {
        [] => String::new(),
        [one] => one.to_string(),
        [first, .., last] if contiguous => format!("{first}-{last}"),
        _ => addrs
            .iter()
            .map(Ipv4Addr::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// The addresses of a `--source-ips` value (`a-b` ranges in the last octet, commas);
/// None if it is not that.
pub fn parse_addresses(text: &str) -> Option<Vec<Ipv4Addr>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (Ipv4Addr, Ipv4Addr) = (a.parse().ok()?, b.parse().ok()?);
                let (a, b) = (u32::from(a), u32::from(b));
                if b < a || b - a > 65_535 {
                    return None;
                }
                out.extend((a..=b).map(Ipv4Addr::from));
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// The CPUs of shard `i` of `shards` out of the loadgen's comma list: every
/// `shards`-th CPU when there are enough, else all of them (shared).
pub fn shard_cpus(loadgen: &str, i: usize, shards: usize) -> String {
    let all: Vec<&str> = loadgen.split(',').filter(|c| !c.is_empty()).collect();
    if shards <= 1 || all.len() < shards {
        return loadgen.to_owned();
    }
    all.iter()
        .skip(i)
        .step_by(shards)
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

/// `rate` (per second, over all shards) scaled to `share` of `total` connections, as
/// the loadgen's `--rate` takes it: three decimals at most, whole numbers bare.
pub fn rate_share(rate: u64, share: u64, total: u64) -> String {
    let y = rate as f64 * share as f64 / total.max(1) as f64;
    let y = (y * 1000.0).round() / 1000.0;
    if y.fract() == 0.0 {
        format!("{}", y as u64)
    } else {
        format!("{y}")
    }
}

impl Placement {
    /// Both ends in this namespace over loopback: the server on 127.0.0.1, one shard on
    /// the loadgen CPUs.
    pub fn loopback(loadgen_cpus: &str, ports_per_pair: u64) -> Placement {
        Placement {
            kind: Kind::Loopback,
            server: ServerPlace {
                site: Site::here(),
                listen: Ipv4Addr::LOCALHOST,
            },
            clients: vec![ClientPlace {
                site: Site::here(),
                sources: (2..2 + LOOPBACK_SOURCES)
                    .map(|i| Ipv4Addr::new(127, 0, 0, i as u8))
                    .collect(),
                dedicated: 0,
                cpus: loadgen_cpus.to_owned(),
            }],
            ports_per_pair,
        }
    }

    /// The server in `plan`'s server namespace, one shard per client namespace, the
    /// last [`DEDICATED_SOURCES`] of each client's addresses kept for cases that want
    /// their own.
    pub fn netns(
        plan: &super::netns::NetnsPlan,
        loadgen_cpus: &str,
        ports_per_pair: u64,
    ) -> Placement {
        let k = plan.clients().len();
        Placement {
            kind: Kind::Netns,
            server: ServerPlace {
                site: Site::netns(plan.server_ns()),
                listen: plan.server_addr(),
            },
            clients: plan
                .clients()
                .iter()
                .enumerate()
                .map(|(i, c)| ClientPlace {
                    site: Site::netns(&c.namespace),
                    sources: c.addresses.clone(),
                    dedicated: DEDICATED_SOURCES.min(c.addresses.len().saturating_sub(1)),
                    cpus: shard_cpus(loadgen_cpus, i, k),
                })
                .collect(),
            ports_per_pair,
        }
    }

    /// The server on `plan`'s server host, one shard per client host (its
    /// `--client-sources`, or none: the host's own address).
    pub fn hosts(plan: &HostsPlan, loadgen_cpus: &str, ports_per_pair: u64) -> Placement {
        let k = plan.clients.len();
        Placement {
            kind: Kind::Hosts,
            server: ServerPlace {
                site: Site::host(&plan.ssh, &plan.server.target, "server"),
                listen: plan.server.addr,
            },
            clients: plan
                .clients
                .iter()
                .enumerate()
                .map(|(i, c)| ClientPlace {
                    site: Site::host(&plan.ssh, &c.target, &c.role),
                    sources: c.sources.clone(),
                    dedicated: DEDICATED_SOURCES.min(c.sources.len().saturating_sub(1)),
                    cpus: shard_cpus(loadgen_cpus, i, k),
                })
                .collect(),
            ports_per_pair,
        }
    }

    /// Every site's run directory set to the ones made on the hosts (server, clients).
    pub fn set_remote_dirs(&mut self, dirs: &[String]) {
        let sites = std::iter::once(&mut self.server.site)
            .chain(self.clients.iter_mut().map(|c| &mut c.site));
        for (site, d) in sites.zip(dirs) {
            if let Some(r) = site.remote.as_mut() {
                r.dir = d.clone();
            }
        }
    }

    /// Source addresses each of `clients` netns clients needs so that every case of
    /// `cases` ((connections, server ports)) fits, plus the dedicated ones.
    pub fn netns_sources(
        cases: impl IntoIterator<Item = (u64, u64)>,
        clients: usize,
        ports_per_pair: u64,
    ) -> usize {
        let most = cases
            .into_iter()
            .map(|(conns, targets)| {
                let share = split_even(conns, clients)[0];
                sources_needed(share, targets, ports_per_pair)
            })
            .max()
            .unwrap_or(1);
        usize::try_from(most)
            .unwrap_or(usize::MAX)
            .saturating_add(DEDICATED_SOURCES)
    }

    /// The server's `--listen` for `port`.
    pub fn listen(&self, port: u16) -> String {
        format!("{}:{port}", self.server.listen)
    }

    /// True if `client` may use `a` as a source (loopback: all of 127.0.0.0/8).
    fn owns(&self, client: &ClientPlace, a: Ipv4Addr) -> bool {
        match self.kind {
            Kind::Loopback => a.is_loopback(),
            Kind::Netns | Kind::Hosts => client.sources.contains(&a),
        }
    }

    /// One shard per client with connections: its share of the connections (and of the
    /// rate), its sources for `targets` server ports (a case's own `--source-ips` are kept where the client has
    /// them, else replaced by as many of the client's dedicated addresses), its folder.
    pub fn shards(&self, load: &ShardLoad, targets: u64) -> Result<Vec<Shard>, String> {
        let (conns, wanted) = (load.conns, &load.sources);
        let shares = split_even(conns, self.clients.len());
        let many = shares.iter().filter(|&&s| s > 0).count() > 1;
        let mut shards = Vec::new();
        for (i, (client, &share)) in self.clients.iter().zip(&shares).enumerate() {
            if share == 0 {
                continue;
            }
            let general = client.sources.len() - client.dedicated;
            let sources = match wanted {
                Some(w) if w.iter().all(|&a| self.owns(client, a)) => w.clone(),
                // A host without --client-sources: its own address.
                Some(_) if self.kind == Kind::Hosts && client.sources.is_empty() => Vec::new(),
                Some(w) if w.len() <= client.dedicated => {
                    client.sources[client.sources.len() - w.len()..].to_vec()
                }
                Some(w) => {
                    return Err(format!(
                        "a case wants {} source addresses of its own; {} has {} set aside",
                        w.len(),
                        client.site.name,
                        client.dedicated
                    ))
                }
                None => {
                    let k = sources_needed(share, targets, self.ports_per_pair);
                    if k > general as u64
                        && !(self.kind == Kind::Hosts && client.sources.is_empty() && k <= 1)
                    {
                        return Err(self.too_few(client, share, k, general));
                    }
                    let own_address = self.kind == Kind::Hosts && client.sources.is_empty();
                    if (self.kind == Kind::Loopback || own_address) && k <= 1 {
                        Vec::new()
                    } else {
                        client.sources[..k as usize].to_vec()
                    }
                }
            };
            let mut a = vec!["--connections".to_owned(), share.to_string()];
            if let Some(r) = load.rate {
                a.extend(["--rate".into(), rate_share(r, share, conns)]);
            }
            if !sources.is_empty() {
                a.extend(["--source-ips".into(), addresses_text(&sources)]);
            }
            shards.push(Shard {
                client: i,
                conns: share,
                sources,
                subdir: many.then(|| format!("shard-{i}")),
                args: a,
            });
        }
        Ok(shards)
    }

    fn too_few(&self, client: &ClientPlace, share: u64, k: u64, have: usize) -> String {
        match self.kind {
            Kind::Loopback => format!(
                "{share} connections need {k} source addresses; more than 127.0.0.2-127.0.0.251"
            ),
            Kind::Netns => format!(
                "{share} connections need {k} source addresses in {}, which has {have}: \
                 use more client namespaces (--clients)",
                client.site.name
            ),
            Kind::Hosts => format!(
                "{share} connections need {k} source addresses on {}, which has {have}: \
                 give it more with --client-sources, or use more client hosts",
                client.site.name
            ),
        }
    }

    /// What topology.json says about where things run.
    pub fn describe(&self) -> Value {
        let site = |s: &Site| {
            json!({
                "where": s.name,
                "command_prefix": s.prefix.join(" "),
                "network_namespace": s.netns,
            })
        };
        json!({
            "topology": self.kind.name(),
            "server": {
                "site": site(&self.server.site),
                "listen_address": self.server.listen.to_string(),
            },
            "loadgen_shards": self.clients.iter().map(|c| json!({
                "site": site(&c.site),
                "source_addresses": addresses_text(&c.sources),
                "dedicated_source_addresses": addresses_text(&c.sources[c.sources.len() - c.dedicated..]),
                "cpus": c.cpus,
            })).collect::<Vec<_>>(),
            "ports_per_source_and_server_port": self.ports_per_pair,
        })
    }
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
