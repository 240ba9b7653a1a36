//! The topology of one run, built once after the preflight and torn down in the run's
//! cleanup: where things run ([`Placement`]), the namespaces (netns), the sysctls set
//! inside them, and what every result folder records about it (`topology.json`, a
//! section of run.md, the headline's words). Socket counts are read where the sockets
//! are: `/proc/net` of the root namespace, or of each namespace from a thread inside it.

use super::hosts::remote::{self, Hosts};
use super::netns::{self, Applied, Netns, NetnsPlan, ReadBack};
use super::placement::{addresses_text, Kind, Placement, Site};
use anyhow::{Context as _, Result};
use c1m_platform::procfs::{parse_listening, parse_tcp_inuse};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

/// Which sysctls apply where: kept for the record.
#[derive(Debug, Default)]
struct SysctlRecord {
    /// Per-namespace keys set inside each namespace, by namespace.
    applied: BTreeMap<String, Vec<Applied>>,
    /// Keys applied (and restored) in the root namespace.
    root: Vec<String>,
    /// Optional keys this kernel has nowhere.
    absent: Vec<String>,
    /// False with --no-tune or without root: namespaces keep the kernel's defaults.
    tuned: bool,
}

/// What a topology built, one arm per kind.
#[derive(Debug)]
enum Built {
    /// Nothing: everything runs in the root namespace.
    Loopback,
    Netns {
        ns: Netns,
        /// The links as the kernel has them (None when they could not be read).
        read_back: Option<ReadBack>,
        /// `--link`: each shaped device as the kernel read it back.
        shaped: Vec<netns::link::Applied>,
    },
    Hosts(Hosts),
}

/// The run's topology.
#[derive(Debug)]
pub struct Topology {
    pub placement: Placement,
    built: Built,
    sysctls: SysctlRecord,
}

impl Topology {
    /// Loopback: nothing to build.
    pub fn loopback(placement: Placement) -> Topology {
        Topology {
            placement,
            built: Built::Loopback,
            sysctls: SysctlRecord::default(),
        }
    }

    /// Hosts: nothing built yet (see [`Topology::hosts_mut`]); the teardown undoes
    /// whatever the setup got to.
    pub fn hosts(placement: Placement, hosts: Hosts) -> Topology {
        Topology {
            placement,
            built: Built::Hosts(hosts),
            sysctls: SysctlRecord::default(),
        }
    }

    /// The hosts of a hosts topology, to read.
    pub fn remote_hosts(&self) -> Option<&Hosts> {
        match &self.built {
            Built::Hosts(h) => Some(h),
            _ => None,
        }
    }

    /// The hosts of a hosts topology.
    pub fn hosts_mut(&mut self) -> Option<&mut Hosts> {
        match &mut self.built {
            Built::Hosts(h) => Some(h),
            _ => None,
        }
    }

    /// Hosts: the setup of every host, then the placement points into their run
    /// directories. Returns the sysctl tables the hosts printed.
    pub fn setup_hosts(
        &mut self,
        root: &Path,
        bins: (&Path, &Path),
        entries: &[(String, String)],
    ) -> Result<String> {
        let Built::Hosts(h) = &mut self.built else {
            return Ok(String::new());
        };
        self.sysctls.tuned = !entries.is_empty();
        let tables = h.setup(root, bins, entries)?;
        self.placement.set_remote_dirs(&h.dirs());
        Ok(tables)
    }

    /// Hosts: SIGTERM to the servers (their ssh sessions then end by themselves).
    pub fn stop_remote_servers(&self) -> Result<()> {
        match &self.placement.server.site.remote {
            Some(r) => remote::stop_programs(&r.ssh, &r.target, &r.dir),
            None => Ok(()),
        }
    }

    /// Builds `plan` (its namespaces are listed in `record` first, for the watchdog).
    /// With `--link`, the client side of each veth is shaped and read back; a kernel that
    /// cannot (no netem) stops the run here, the namespaces deleted on the way out.
    pub fn create_netns(plan: NetnsPlan, placement: Placement, record: &Path) -> Result<Topology> {
        let ns = Netns::create(plan, record)?;
        let mut shaped = Vec::new();
        if let Some(spec) = ns.plan().link().shape {
            for (name, dev) in netns::link::client_side(ns.plan()) {
                shaped.push(netns::link::apply(name, dev, &spec)?);
            }
        }
        let read_back = match ns.read_back() {
            Ok(rb) => Some(rb),
            Err(e) => {
                crate::warn(format!("cannot read the links back: {e:#}"));
                None
            }
        };
        Ok(Topology {
            placement,
            built: Built::Netns {
                ns,
                read_back,
                shaped,
            },
            sysctls: SysctlRecord::default(),
        })
    }

    /// The namespaces of a netns topology.
    pub fn netns(&self) -> Option<&Netns> {
        match &self.built {
            Built::Netns { ns, .. } => Some(ns),
            _ => None,
        }
    }

    /// Of `entries`, the keys the root namespace holds (on netns: the machine-wide ones).
    pub fn root_keys(&self, entries: &[(String, String)]) -> Result<Vec<String>> {
        match self.netns() {
            Some(ns) if !entries.is_empty() => Ok(bare_keys(&ns.split_sysctls(entries)?.global)),
            _ => Ok(bare_keys(entries)),
        }
    }

    pub fn kind(&self) -> Kind {
        self.placement.kind
    }

    /// The namespaces this run created (empty on loopback).
    pub fn namespaces(&self) -> Vec<String> {
        self.netns()
            .map(|n| {
                n.plan()
                    .namespaces()
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Splits the settings `entries` (profile then `--set`s, `-key` for optional keys):
    /// on netns the keys each namespace has its own copy of are set inside the server
    /// and every client namespace now; what is left is returned, for the root
    /// namespace's save/apply/restore. Loopback: everything is left to the root.
    pub fn apply_sysctls(&mut self, entries: &[(String, String)]) -> Result<Vec<(String, String)>> {
        self.sysctls.tuned = !entries.is_empty();
        let Built::Netns { ns, .. } = &self.built else {
            self.sysctls.root = bare_keys(entries);
            return Ok(entries.to_vec());
        };
        let split = ns.split_sysctls(entries)?;
        self.sysctls.applied = ns
            .apply_sysctls(&split.per_netns)
            .context("setting the per-namespace sysctls")?;
        self.sysctls.root = bare_keys(&split.global);
        self.sysctls.absent = split.absent.clone();
        Ok(split.global)
    }

    /// Sites whose sockets count: each namespace once.
    fn socket_sites(&self) -> Vec<&Site> {
        let mut seen = BTreeSet::new();
        std::iter::once(&self.placement.server.site)
            .chain(self.placement.clients.iter().map(|c| &c.site))
            .filter(|s| seen.insert(s.netns.clone()))
            .collect()
    }

    /// TCP sockets in use (not TIME_WAIT) wherever server and loadgens run.
    pub fn tcp_inuse(&self) -> u64 {
        self.socket_sites()
            .into_iter()
            .map(|s| {
                read_net(s, "sockstat")
                    .and_then(|t| parse_tcp_inuse(&t))
                    .unwrap_or(0)
            })
            .sum()
    }

    /// `/proc/net/FILE` where server and loadgens run, by site name (None: unreadable).
    pub fn read_proc_net(&self, file: &str) -> Vec<(String, Option<String>)> {
        self.socket_sites()
            .into_iter()
            .map(|s| (s.name.clone(), read_net(s, file)))
            .collect()
    }

    /// Ports something listens on where the server runs.
    pub fn listening_ports(&self) -> BTreeSet<u16> {
        let mut out = BTreeSet::new();
        for f in ["tcp", "tcp6"] {
            if let Some(text) = read_net(&self.placement.server.site, f) {
                parse_listening(&text, &mut out);
            }
        }
        out
    }

    /// Deletes the namespaces (stop the processes inside first), or cleans up every
    /// host. Safe to call twice.
    pub fn teardown(&mut self) -> Result<()> {
        match &mut self.built {
            Built::Loopback => Ok(()),
            Built::Netns { ns, .. } => ns.teardown(),
            Built::Hosts(h) => h.teardown(),
        }
    }

    /// topology.json: enough to build the same topology again.
    pub fn describe(&self) -> Value {
        let sysctls = json!({
            "tuned": self.sysctls.tuned,
            "per_namespace_applied": self.sysctls.applied,
            "root_namespace_keys": self.sysctls.root,
            "absent_optional_keys": self.sysctls.absent,
            "note": match self.kind() {
                Kind::Loopback => "every key is set in the root namespace (saved and restored)",
                Kind::Netns => "per_namespace_applied: set inside the server and every client namespace (values die with them); root_namespace_keys: machine-wide, saved, applied and restored in the root namespace",
                Kind::Hosts => "each host's sysctls_applied (hosts): saved, applied and restored on that host; nothing is set on the machine that runs c1m-bench",
            },
        });
        let (netns, hosts, shaping) = match &self.built {
            Built::Loopback => (Value::Null, Value::Null, Vec::new()),
            Built::Netns {
                ns,
                read_back,
                shaped,
            } => (
                ns.plan().describe(read_back.as_ref()),
                Value::Null,
                shaped.iter().map(netns::link::Applied::describe).collect(),
            ),
            Built::Hosts(h) => (Value::Null, h.describe(), Vec::new()),
        };
        json!({
            "topology": self.kind().name(),
            "kernel": c1m_platform::procfs::kernel_release(),
            "placement": self.placement.describe(),
            "netns": netns,
            "hosts": hosts,
            "sysctls": sysctls,
            "link_shaping": shaping,
        })
    }

    /// Writes topology.json into `dir`.
    pub fn write_json(&self, dir: &Path) -> Result<()> {
        let path = dir.join("topology.json");
        let mut text = serde_json::to_string_pretty(&self.describe())?;
        text.push('\n');
        crate::safe_fs::write(&path, text)
    }

    /// A few words for the headline.
    pub fn headline(&self) -> String {
        let p = &self.placement;
        match &self.built {
            Built::Netns { ns, read_back, .. } => {
                let plan = ns.plan();
                let via = if plan.bridge_ns().is_some() {
                    " through a bridge"
                } else {
                    ""
                };
                let shape = plan
                    .link()
                    .shape
                    .map(|s| format!(", link {s}"))
                    .unwrap_or_default();
                format!(
                    "topology netns (server in {} on {}, {} client namespace(s){via}, veth MTU {}{shape})",
                    plan.server_ns(),
                    p.server.listen,
                    plan.clients().len(),
                    mtu_text(read_back.as_ref())
                )
            }
            Built::Hosts(_) => format!(
                "topology hosts (server on {}, {} client host(s), over ssh)",
                p.server.listen,
                p.clients.len()
            ),
            Built::Loopback => format!("topology loopback (server on {})", p.server.listen),
        }
    }

    /// The topology section of each run.md.
    pub fn run_md(&self) -> String {
        let mut md = format!("## Topology: {}\n\n", self.kind().name());
        md.push_str(&placement_lines(&self.placement));
        if let Built::Hosts(h) = &self.built {
            md.push_str(&h.md_lines());
        }
        if let Built::Netns {
            ns,
            read_back,
            shaped,
        } = &self.built
        {
            let _ = writeln!(md, "- namespaces: {}", ns.plan().namespaces().join(", "));
            for d in read_back.iter().flat_map(|rb| &rb.devices) {
                let onoff = |v: Option<bool>| match v {
                    Some(true) => "on",
                    Some(false) => "off",
                    None => "?",
                };
                let _ = writeln!(
                    md,
                    "- link {} in {}: MTU {}, {}, gro {}, tso {}, {} IPv4 address(es)",
                    d.device,
                    d.namespace,
                    d.mtu,
                    if d.up { "up" } else { "DOWN" },
                    onoff(d.gro),
                    onoff(d.tso),
                    d.ipv4_addresses
                );
            }
            for a in shaped {
                let _ = writeln!(
                    md,
                    "- link shaping on {} in {}: {} (tc netem, read back; commands in topology.json)",
                    a.device, a.namespace, a.spec
                );
            }
            let applied: Vec<String> = self
                .sysctls
                .applied
                .values()
                .next()
                .map(|v| v.iter().map(|a| format!("{}={}", a.key, a.after)).collect())
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "- sysctls inside the server and every client namespace: {}",
                if applied.is_empty() {
                    "none (the kernel's defaults for a new namespace)".into()
                } else {
                    applied.join(", ")
                }
            );
        }
        let _ = writeln!(
            md,
            "- sysctls in the root namespace (saved, applied, restored): {}",
            if self.sysctls.root.is_empty() {
                "none".into()
            } else {
                self.sysctls.root.join(", ")
            }
        );
        md.push_str("- details (what to build to re-run it): topology.json\n\n");
        md
    }
}

/// The MTUs of the links read back, e.g. "1500" or "1500/9000" ("?" when unread).
fn mtu_text(read_back: Option<&ReadBack>) -> String {
    let mtus: BTreeSet<u32> = read_back
        .iter()
        .flat_map(|rb| rb.devices.iter().map(|d| d.mtu))
        .collect();
    let list: Vec<String> = mtus.iter().map(u32::to_string).collect();
    if list.is_empty() {
        "?".into()
    } else {
        list.join("/")
    }
}

fn bare_keys(entries: &[(String, String)]) -> Vec<String> {
    entries
        .iter()
        .map(|(k, _)| k.trim_start_matches('-').to_owned())
        .collect()
}

/// A file of `/proc/net` as seen from `site`'s network namespace.
fn read_net(site: &Site, file: &str) -> Option<String> {
    if let Some(r) = &site.remote {
        return remote::read_file(&r.ssh, &r.target, &format!("/proc/net/{file}"));
    }
    match &site.netns {
        None => std::fs::read_to_string(Path::new("/proc/net").join(file)).ok(),
        Some(ns) => netns::in_netns(ns, || {
            std::fs::read_to_string(Path::new("/proc/thread-self/net").join(file)).ok()
        })
        .ok()
        .flatten(),
    }
}

/// "- server: ..." and one "- loadgen ..." line per client.
fn placement_lines(p: &Placement) -> String {
    let prefix = |s: &Site| {
        if s.prefix.is_empty() {
            String::new()
        } else {
            format!(" (`{}`)", s.prefix.join(" "))
        }
    };
    let mut t = format!(
        "- server: {}{}, listening on {}\n",
        p.server.site.name,
        prefix(&p.server.site),
        p.server.listen
    );
    for (i, c) in p.clients.iter().enumerate() {
        let dedicated = &c.sources[c.sources.len() - c.dedicated..];
        let _ = writeln!(
            t,
            "- loadgen shard {i}: {}{}, CPUs {}, source addresses {}{}",
            c.site.name,
            prefix(&c.site),
            c.cpus,
            if p.kind == Kind::Loopback {
                "127.0.0.1, or 127.0.0.2 and up as the connections need".to_owned()
            } else if c.sources.is_empty() {
                "the host's own address".to_owned()
            } else {
                addresses_text(&c.sources)
            },
            if dedicated.is_empty() {
                String::new()
            } else {
                format!(" ({} kept for churn)", addresses_text(dedicated))
            }
        );
    }
    t
}

/// The topology part of the plan (before anything is built). `entries` are the
/// settings the run will make (empty when it does not tune).
pub fn plan_text(
    placement: &Placement,
    plan: Option<&NetnsPlan>,
    hosts: Option<&super::hosts::HostsPlan>,
    entries: &[(String, String)],
    commands: bool,
) -> String {
    let mut t = format!("topology ({}):\n", placement.kind.name());
    for l in placement_lines(placement).lines() {
        let _ = writeln!(t, "  {}", l.trim_start_matches("- "));
    }
    if let Some(h) = hosts {
        t.push_str(&h.plan_text(entries, commands));
        return t;
    }
    let Some(plan) = plan else {
        return t;
    };
    let _ = writeln!(t, "  namespaces: {}", plan.namespaces().join(", "));
    let link = plan.link();
    let dflt = |v: Option<String>| v.unwrap_or_else(|| "kernel default".into());
    let onoff = |v: Option<bool>| v.map(|b| if b { "on" } else { "off" }.to_owned());
    let _ = writeln!(
        t,
        "  links: veth{}; MTU {}, gro {}, tso {}",
        plan.bridge_ns()
            .map(|b| format!(" into bridge {} in {b}", netns::BRIDGE_DEVICE))
            .unwrap_or_default(),
        dflt(link.mtu.map(|m| m.to_string())),
        dflt(onoff(link.gro)),
        dflt(onoff(link.tso))
    );
    if let Some(shape) = link.shape {
        let _ = writeln!(
            t,
            "  link shaping: {shape} on the client side of each veth (tc netem; delay is the added round trip, loss drops what the clients send)"
        );
    }
    let (maybe_ns, root): (Vec<&str>, Vec<&str>) = entries
        .iter()
        .map(|(k, _)| k.trim_start_matches('-'))
        .partition(|k| k.starts_with("net."));
    if entries.is_empty() {
        t.push_str("  sysctls: none (namespaces keep the kernel's defaults for a new namespace)\n");
    } else {
        let _ = writeln!(
            t,
            "  sysctls: inside the server and every client namespace, the keys a namespace has its own copy of, probed once they exist, among: {}",
            maybe_ns.join(" ")
        );
        let _ = writeln!(
            t,
            "           in the root namespace (saved and restored): the rest ({}), and any net.* key the kernel keeps machine-wide (e.g. tcp_mem, netdev_max_backlog, tcp_max_orphans)",
            root.join(" ")
        );
    }
    if commands {
        t.push_str("  commands that build it (deleted with `ip netns del` at the end):\n");
        for step in plan.setup_commands() {
            for line in step.to_string().lines() {
                let _ = writeln!(t, "    {line}");
            }
        }
    }
    t
}
