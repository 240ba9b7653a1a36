//! The plan of a run as a pure function of the options and the machine's facts: what
//! the preflight read ([`Facts`]) goes in; CPUs, scale, limits, placement and the plan
//! text come out. Nothing here reads or writes the machine, so the plan of any
//! topology, variant set and scenario list has a unit test.

use super::{scale, split_cpus, CpuSplit, Limits, Scale};
use crate::options::Options;
use crate::topology::hosts::HostsPlan;
use crate::topology::netns::NetnsPlan;
use crate::topology::placement::{Kind, Placement};
use crate::topology::{active, setup};
use crate::UsageError;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// What the plan needs to know about the machine, read once before it is made
/// (`crate::facts::gather`).
#[derive(Debug, Clone)]
pub struct Facts {
    pub cpus: Vec<usize>,
    pub mem_avail_kb: u64,
    /// RLIMIT_NOFILE, soft, after raising it.
    pub nofile_soft: u64,
    /// `net.ipv4.ip_local_port_range` as the loadgens will have it.
    pub port_range: (u64, u64),
    /// `C1M_CONNS_PER_PROC` (tests make servers split early with it).
    pub conns_per_proc: Option<u64>,
    /// This machine's short host name (in the result folder names).
    pub host: String,
    /// The results folder, resolved (relative to the repository when inside it).
    pub out: PathBuf,
    /// The results folder did not exist before this run.
    pub out_is_new: bool,
    /// The first stamp none of whose result names is taken in `out`.
    pub stamp: String,
    /// Random: names the namespaces and the hosts' state files.
    pub suffix: String,
    /// The sysctl-apply arguments when tuning, e.g. "/x/sysctl/c1m.conf --set k=v".
    pub tuning: Option<String>,
    /// The sysctls the run sets, for the topology's part of the plan text.
    pub settings: Vec<(String, String)>,
    /// hosts: each host name's IPv4 address, or why it has none.
    pub addresses: BTreeMap<String, Result<Ipv4Addr, String>>,
}

/// What a run will do, before anything is built.
#[derive(Debug, Clone)]
pub struct Plan {
    pub split: CpuSplit,
    pub scale: Scale,
    pub limits: Limits,
    pub out: PathBuf,
    pub out_is_new: bool,
    pub stamp: String,
    pub host: String,
    pub placement: Placement,
    pub netns: Option<NetnsPlan>,
    pub hosts: Option<HostsPlan>,
}

/// The plan of `o` on a machine with facts `f`.
pub fn plan(o: &Options, f: &Facts) -> Result<Plan, UsageError> {
    let split = split_cpus(&f.cpus);
    let scale = scale(
        o.quick,
        o.duration.as_ref(),
        o.hold_conns,
        f.mem_avail_kb,
        o.rounds,
    );
    let limits = Limits::new(
        f.nofile_soft,
        f.port_range,
        f.mem_avail_kb,
        f.conns_per_proc,
    );
    let cases = setup::cases(&o.scenarios, &o.variants, &scale, &limits);
    let resolve = |h: &str| {
        f.addresses
            .get(h)
            .cloned()
            .unwrap_or_else(|| Err(format!("host {h}: its address was not looked up")))
    };
    let (placement, netns, hosts) =
        setup::placement(&o.topo, &split, &limits, &cases, &f.suffix, &resolve)?;
    Ok(Plan {
        split,
        scale,
        limits,
        out: f.out.clone(),
        out_is_new: f.out_is_new,
        stamp: f.stamp.clone(),
        host: f.host.clone(),
        placement,
        netns,
        hosts,
    })
}

impl Plan {
    /// The plan as printed before the run and kept in every run.md. `commands`: list
    /// the commands that build the topology (a dry run shows them).
    pub fn text(&self, o: &Options, f: &Facts, commands: bool) -> String {
        let mut text = crate::plantext::plan_text(&crate::plantext::Plan {
            split: &self.split,
            backends: &o.backends,
            variants: &o.variants,
            scenarios: &o.scenarios,
            scale: &self.scale,
            limits: &self.limits,
            rate: o.rate.as_deref(),
            tuning: f.tuning.as_deref(),
            results_prefix: format!("{}/{}-{}", self.out.display(), self.stamp, self.host),
            loopback: o.topo.kind == Kind::Loopback,
            body_size: o.body_size,
            wire: o.wire,
            arrivals: &o.arrivals,
        });
        text.push_str(&active::plan_text(
            &self.placement,
            self.netns.as_ref(),
            self.hosts.as_ref(),
            &f.settings,
            commands,
        ));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::tests::options;

    /// A 4-CPU machine with 24 GiB available and this machine's RLIMIT_NOFILE.
    fn facts() -> Facts {
        Facts {
            cpus: vec![0, 1, 2, 3],
            mem_avail_kb: 24 << 20,
            nofile_soft: 20_000,
            port_range: (1024, 65535),
            conns_per_proc: None,
            host: "box".into(),
            out: PathBuf::from("results"),
            out_is_new: false,
            stamp: "2026-01-01-1200".into(),
            suffix: "abc123".into(),
            tuning: None,
            settings: Vec::new(),
            addresses: [
                ("198.18.0.1".to_owned(), Ok(Ipv4Addr::new(198, 18, 0, 1))),
                ("db1".to_owned(), Ok(Ipv4Addr::new(198, 18, 0, 7))),
                (
                    "nowhere".to_owned(),
                    Err("host nowhere: no IPv4 address".into()),
                ),
            ]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn each_topology_places_the_server_and_its_shards() {
        let f = facts();
        let lo = plan(&options(&["--scenarios", "pingpong"]), &f).expect("loopback");
        assert_eq!(lo.placement.kind, Kind::Loopback);
        assert!(lo.netns.is_none() && lo.hosts.is_none());
        assert_eq!(
            (lo.split.server.as_str(), lo.split.loadgen.as_str()),
            ("0,1", "2,3")
        );
        let ns = plan(
            &options(&[
                "--topology",
                "netns",
                "--clients",
                "2",
                "--scenarios",
                "hold",
            ]),
            &f,
        )
        .expect("netns");
        assert_eq!(ns.placement.kind, Kind::Netns);
        assert_eq!(ns.placement.clients.len(), 2);
        let names = ns
            .netns
            .as_ref()
            .expect("a netns plan")
            .namespaces()
            .join(" ");
        assert!(names.contains("c1m-srv-abc123"), "{names}");
        let ho = plan(
            &options(&[
                "--topology",
                "hosts",
                "--server-host",
                "db1",
                "--client-hosts",
                "198.18.0.1",
            ]),
            &f,
        )
        .expect("hosts");
        let hosts = ho.hosts.as_ref().expect("a hosts plan");
        assert_eq!(hosts.server.addr, Ipv4Addr::new(198, 18, 0, 7));
        assert_eq!(ho.placement.clients.len(), 1);
    }

    #[test]
    fn a_host_without_an_address_is_refused_with_the_reason() {
        let o = options(&[
            "--topology",
            "hosts",
            "--server-host",
            "nowhere",
            "--client-hosts",
            "db1",
        ]);
        let e = plan(&o, &facts()).expect_err("no address");
        assert!(e.0.contains("no IPv4 address"), "{}", e.0);
    }

    #[test]
    fn the_plan_depends_on_the_facts_alone() {
        let o = options(&["--scenarios", "hold", "--backends", "uring,epoll"]);
        let (a, b) = (plan(&o, &facts()).unwrap(), plan(&o, &facts()).unwrap());
        assert_eq!(a.text(&o, &facts(), false), b.text(&o, &facts(), false));
        // Less memory: fewer connections held, and the text says so.
        let small = Facts {
            mem_avail_kb: 2 << 20,
            ..facts()
        };
        let c = plan(&o, &small).unwrap();
        assert!(
            c.scale.hold_n < a.scale.hold_n,
            "{} vs {}",
            c.scale.hold_n,
            a.scale.hold_n
        );
        assert_ne!(c.text(&o, &small, false), a.text(&o, &facts(), false));
        // Two fd-bound processes' worth when RLIMIT_NOFILE is small.
        let few_fds = Facts {
            nofile_soft: 1_256,
            ..facts()
        };
        let d = plan(&o, &few_fds).unwrap();
        assert_eq!(d.limits.conns_per_proc, 900);
    }

    #[test]
    fn variants_and_scenarios_are_all_in_the_text() {
        let o = options(&[
            "--scenarios",
            "pingpong,latency,hold",
            "--backends",
            "uring,epoll,tokio",
        ]);
        let f = facts();
        let p = plan(&o, &f).unwrap();
        let text = p.text(&o, &f, false);
        for want in [
            "backends          uring epoll tokio",
            "pingpong",
            "latency",
            "hold",
            "results/2026-01-01-1200-box-{pingpong,latency,hold}",
        ] {
            assert!(text.contains(want), "'{want}' missing from:\n{text}");
        }
        // The commands that build a topology only with `commands`.
        let o = options(&["--topology", "netns", "--scenarios", "pingpong"]);
        let p = plan(&o, &f).unwrap();
        assert!(!p.text(&o, &f, false).contains("ip netns add"));
        assert!(p.text(&o, &f, true).contains("ip netns add c1m-srv-abc123"));
    }
}
