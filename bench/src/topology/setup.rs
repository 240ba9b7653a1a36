//! From the command line to a topology plan: `--topology`, `--clients`, `--mtu`,
//! `--gro`, `--tso` checked, and the placement sized for the run's cases (pure, apart
//! from reading a random suffix).

use super::hosts::ssh::{Ssh, OPTIONS_ENV};
use super::hosts::HostsPlan;
use super::netns::{self, LinkOptions, NetnsPlan, MTU_RANGE};
use super::placement::{Kind, Placement};
use crate::cli::RunArgs;
use crate::plan::{CpuSplit, Limits, Scale, Scenario};
use crate::UsageError;

/// A new network namespace's `net.ipv4.ip_local_port_range` (the kernel's default,
/// whatever the root namespace has).
pub const NETNS_PORT_RANGE: &str = "32768 60999";

/// The topology options, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyOpts {
    pub kind: Kind,
    /// Client namespaces (netns).
    pub clients: usize,
    pub link: LinkOptions,
    /// hosts: `--server-host`, `--client-hosts`, `--client-sources`, ssh options.
    pub server_host: Option<String>,
    pub client_hosts: Option<String>,
    pub client_sources: Vec<String>,
    pub ssh: Ssh,
}

fn on_off(v: Option<&str>) -> Option<bool> {
    v.map(|v| v == "on")
}

impl TopologyOpts {
    /// Mistakes are [`UsageError`]s (exit 2): an unknown topology, a netns option
    /// without `--topology netns`, a count or MTU out of range.
    pub fn from_args(a: &RunArgs) -> Result<TopologyOpts, UsageError> {
        let kind = Kind::parse(&a.topology).map_err(UsageError)?;
        let netns_only = [
            ("--clients", a.clients.is_some()),
            ("--mtu", a.mtu.is_some()),
            ("--gro", a.gro.is_some()),
            ("--tso", a.tso.is_some()),
            ("--link", a.link.is_some()),
        ];
        let given: Vec<&str> = netns_only
            .iter()
            .filter(|(_, g)| *g)
            .map(|(n, _)| *n)
            .collect();
        if kind != Kind::Netns && !given.is_empty() {
            return Err(UsageError(format!(
                "{} only work with --topology netns (this run is {})",
                given.join(", "),
                kind.name()
            )));
        }
        let hosts_only = [
            ("--server-host", a.server_host.is_some()),
            ("--client-hosts", a.client_hosts.is_some()),
            ("--client-sources", !a.client_sources.is_empty()),
            ("--ssh-option", !a.ssh_option.is_empty()),
        ];
        let given: Vec<&str> = hosts_only
            .iter()
            .filter(|(_, g)| *g)
            .map(|(n, _)| *n)
            .collect();
        if kind != Kind::Hosts && !given.is_empty() {
            return Err(UsageError(format!(
                "{} only work with --topology hosts (this run is {})",
                given.join(", "),
                kind.name()
            )));
        }
        if kind == Kind::Hosts && (a.server_host.is_none() || a.client_hosts.is_none()) {
            return Err(UsageError(
                "--topology hosts needs --server-host HOST and --client-hosts H1,H2,...".into(),
            ));
        }
        let number = |name: &str, v: &Option<String>| -> Result<Option<u64>, UsageError> {
            v.as_deref()
                .map(|t| {
                    t.parse::<u64>()
                        .ok()
                        .filter(|_| t.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| {
                            UsageError(format!("{name} wants a positive integer, got '{t}'"))
                        })
                })
                .transpose()
        };
        let clients = number("--clients", &a.clients)?.unwrap_or(1);
        if clients == 0 || clients > netns::MAX_CLIENTS as u64 {
            return Err(UsageError(format!(
                "--clients {clients}: between 1 and {} client namespaces",
                netns::MAX_CLIENTS
            )));
        }
        let mtu = number("--mtu", &a.mtu)?
            .map(|m| u32::try_from(m).unwrap_or(u32::MAX))
            .filter(|m| MTU_RANGE.contains(m));
        if a.mtu.is_some() && mtu.is_none() {
            return Err(UsageError(format!(
                "--mtu wants {}..={} (what a veth accepts)",
                MTU_RANGE.start(),
                MTU_RANGE.end()
            )));
        }
        Ok(TopologyOpts {
            kind,
            clients: clients as usize,
            link: LinkOptions {
                mtu,
                gro: on_off(a.gro.as_deref()),
                tso: on_off(a.tso.as_deref()),
                shape: a
                    .link
                    .as_deref()
                    .map(super::netns::link::LinkSpec::parse)
                    .transpose()
                    .map_err(|e| UsageError(e.to_string()))?,
            },
            server_host: a.server_host.clone(),
            client_hosts: a.client_hosts.clone(),
            client_sources: a.client_sources.clone(),
            ssh: Ssh::new(std::env::var(OPTIONS_ENV).ok().as_deref(), &a.ssh_option),
        })
    }

    /// The error to give when `--gro`/`--tso` are asked for and `ethtool` is missing.
    pub fn ethtool_missing(&self) -> Option<String> {
        (self.link.needs_ethtool() && crate::tools::find_program("ethtool").is_none()).then(|| {
            "--gro/--tso need ethtool (`ethtool -K`), which is not installed: run \
             scripts/setup.sh as root (it installs the distribution packages the kit needs), \
             or leave gro/tso at the kernel's default"
                .to_owned()
        })
    }
}

/// The (connections, server ports) of every case the run will make.
pub fn cases(
    scenarios: &[Scenario],
    variants: &[crate::variants::Variant],
    scale: &Scale,
    limits: &Limits,
) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for b in variants.iter().map(|v| v.backend) {
        let mut conns: Vec<u64> = Vec::new();
        for s in scenarios {
            match s {
                Scenario::Pingpong => conns.extend(&scale.pp_conns),
                Scenario::Latency => conns.extend(scale.lat_conns.iter().copied()),
                Scenario::Hold => conns.push(limits.conns_for(b, scale.hold_n)),
                Scenario::Churn => conns.push(scale.churn_conns),
                Scenario::Http => conns.push(scale.http_conns),
            }
        }
        out.extend(conns.into_iter().map(|c| (c, limits.procs_for(b, c))));
    }
    out
}

/// The placement of a run, and the netns or hosts plan behind it. `suffix` names the
/// namespaces (and the hosts' state files); `resolve` gives a host's address.
pub fn placement(
    opts: &TopologyOpts,
    split: &CpuSplit,
    limits: &Limits,
    cases: &[(u64, u64)],
    suffix: &str,
    resolve: &dyn Fn(&str) -> Result<std::net::Ipv4Addr, String>,
) -> Result<(Placement, Option<NetnsPlan>, Option<HostsPlan>), UsageError> {
    match opts.kind {
        Kind::Loopback => Ok((
            Placement::loopback(&split.loadgen, limits.ports_per_pair),
            None,
            None,
        )),
        Kind::Hosts => {
            let plan = HostsPlan::new(
                opts.server_host.as_deref().unwrap_or_default(),
                opts.client_hosts.as_deref().unwrap_or_default(),
                &opts.client_sources,
                opts.ssh.clone(),
                suffix,
                resolve,
            )
            .map_err(UsageError)?;
            let p = Placement::hosts(&plan, &split.loadgen, limits.ports_per_pair);
            Ok((p, None, Some(plan)))
        }
        Kind::Netns => {
            let sources = Placement::netns_sources(
                cases.iter().copied(),
                opts.clients,
                limits.ports_per_pair,
            );
            let plan = NetnsPlan::new(opts.clients, sources, opts.link, suffix)
                .map_err(|e| UsageError(e.to_string()))?;
            let p = Placement::netns(&plan, &split.loadgen, limits.ports_per_pair);
            Ok((p, Some(plan), None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::placement::ShardLoad;
    use clap::Parser as _;

    fn opts(extra: &[&str]) -> Result<TopologyOpts, UsageError> {
        let mut v = vec!["c1m-bench", "run"];
        v.extend_from_slice(extra);
        match crate::cli::Cli::parse_from(v).cmd {
            crate::cli::Cmd::Run(a) => TopologyOpts::from_args(&a),
            crate::cli::Cmd::Watchdog(_) => unreachable!("a run"),
        }
    }

    #[test]
    fn options_are_checked() {
        let d = opts(&[]).expect("default");
        assert_eq!((d.kind, d.clients), (Kind::Loopback, 1));
        let n = opts(&[
            "--topology",
            "netns",
            "--clients",
            "3",
            "--mtu",
            "9000",
            "--gro",
            "off",
        ])
        .expect("netns");
        assert_eq!((n.kind, n.clients), (Kind::Netns, 3));
        assert_eq!(
            n.link,
            LinkOptions {
                mtu: Some(9000),
                gro: Some(false),
                tso: None,
                shape: None,
            }
        );
        for (bad, msg) in [
            (vec!["--clients", "2"], "only work with --topology netns"),
            (vec!["--tso", "on"], "--tso only work"),
            (vec!["--topology", "hosts"], "needs --server-host"),
            (
                vec!["--server-host", "h"],
                "only work with --topology hosts",
            ),
            (vec!["--topology", "mars"], "unknown topology"),
            (
                vec!["--topology", "netns", "--clients", "0"],
                "between 1 and 254",
            ),
            (
                vec!["--topology", "netns", "--clients", "255"],
                "between 1 and 254",
            ),
            (
                vec!["--topology", "netns", "--clients", "-1"],
                "positive integer",
            ),
            (
                vec!["--topology", "netns", "--mtu", "67"],
                "--mtu wants 68..=65535",
            ),
            (
                vec!["--topology", "netns", "--mtu", "99999999999"],
                "--mtu wants",
            ),
        ] {
            let e = opts(&bad).expect_err(&bad.join(" "));
            assert!(e.0.contains(msg), "{bad:?}: {}", e.0);
        }
        assert!(crate::cli::Cli::try_parse_from(["c1m-bench", "run", "--gro", "maybe"]).is_err());
    }

    #[test]
    fn netns_placement_is_sized_for_the_biggest_case() {
        let limits = Limits::new(20_000, (1024, 65535), 22 * 1024 * 1024, None);
        let scale = crate::plan::scale(false, None, Some(1_000_000), 22 * 1024 * 1024, None);
        let split = crate::plan::split_cpus(&[0, 1]);
        let all = cases(
            &Scenario::ALL,
            &crate::variants::from_backends(&[
                crate::plan::Backend::Uring,
                crate::plan::Backend::Epoll,
            ]),
            &scale,
            &limits,
        );
        assert!(all.contains(&(1_000_000, 1)) && all.contains(&(1_000_000, 57)));
        let o = TopologyOpts {
            kind: Kind::Netns,
            clients: 2,
            link: LinkOptions::default(),
            server_host: None,
            client_hosts: None,
            client_sources: Vec::new(),
            ssh: Ssh::default(),
        };
        let (p, plan, _) = placement(
            &o,
            &split,
            &limits,
            &all,
            "abc123",
            &crate::topology::hosts::resolve,
        )
        .expect("fits");
        let plan = plan.expect("a netns plan");
        assert_eq!(plan.sources_per_client(), 23);
        for (conns, targets) in all {
            let shards = p.shards(&ShardLoad::closed(conns), targets);
            assert!(shards.is_ok(), "{conns}/{targets}: {shards:?}");
        }
        // One client cannot take 1M on one port: 37 + 4 addresses are fine, but more
        // than 254 would not be.
        let one = TopologyOpts {
            clients: 1,
            ..o.clone()
        };
        assert!(placement(
            &one,
            &split,
            &limits,
            &[(1_000_000, 1)],
            "abc123",
            &crate::topology::hosts::resolve
        )
        .is_ok());
        let tiny = Limits::new(20_000, (60_000, 60_099), 0, None);
        let e = placement(
            &one,
            &split,
            &tiny,
            &[(1_000_000, 1)],
            "abc123",
            &crate::topology::hosts::resolve,
        )
        .expect_err("too many");
        assert!(e.0.contains("--clients"), "{}", e.0);
        let (lp, none, _) = placement(
            &TopologyOpts {
                kind: Kind::Loopback,
                ..o
            },
            &split,
            &limits,
            &[],
            "abc123",
            &crate::topology::hosts::resolve,
        )
        .expect("loopback");
        assert!(none.is_none());
        assert_eq!(lp.listen(7000), "127.0.0.1:7000");
    }
}
