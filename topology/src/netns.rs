//! `--topology netns`: the server in one network namespace, the load generator in K
//! client namespaces, joined by veth. Nothing is created in the root namespace and
//! nothing there changes: every command runs with `ip -n NS` or `ip netns exec NS`.
//!
//! ```text
//! K = 1:   [c1m-srv-XXXXXX] c1m0 <--veth--> c1m0 [c1m-cli0-XXXXXX]
//!
//! K > 1:   [c1m-srv-XXXXXX]  c1m0 <--veth--> c1m-srv  \
//!          [c1m-cli0-XXXXXX] c1m0 <--veth--> c1m-cli0  |- bridge c1m-br [c1m-br-XXXXXX]
//!          [c1m-cli1-XXXXXX] c1m0 <--veth--> c1m-cli1 /
//! ```
//!
//! # Address scheme
//! Only 198.18.0.0/15 (RFC 2544, set aside for network benchmarks), one on-link /15
//! segment: every address is added as `A/15`.
//! - server: `198.18.0.1`;
//! - client i (0-based, i < 254): source s (0-based, s < 254) is `198.18.(i+1).(s+1)`;
//!   s = 0 is the client's primary address. A client's sources are one contiguous range,
//!   given to the loadgen as `--source-ips 198.18.(i+1).1-198.18.(i+1).S`.
//! - `198.19.0.0/16` is unused (room for more server addresses later).
//!
//! With S > 1 the server also routes each client's `198.18.(i+1).0/24` via that client's
//! primary address. The packets still go straight over the segment, but the server's
//! neighbour (ARP) table then holds one entry per client instead of one per source
//! address: that table's `gc_thresh3` (1024 by default) counts the entries of every
//! namespace together, and K x S reaches 64,516.
//!
//! # Pieces
//! - [`NetnsPlan`]: the namespaces, devices, addresses and the exact commands, as data
//!   (unit-tested without root);
//! - [`Netns`]: the guard that creates a plan and tears it down (on drop too), with a
//!   record file for [`teardown_recorded`] after a SIGKILL;
//! - [`split_keys`] / [`apply_in`]: which sysctls of a profile belong to a network
//!   namespace, and setting them inside one;
//! - [`exec_prefix`]: the argv prefix that starts a program inside a namespace.

mod guard;
pub mod link;
pub(crate) mod sysctl;

pub use guard::{
    clean_stale_records, exec_prefix, record_path, teardown_recorded, DeviceState, Netns, ReadBack,
};
pub use sysctl::{apply_in, in_netns, split_keys, Applied, SysctlSplit};

use serde::Serialize;
use serde_json::{json, Value};
use std::fmt;
use std::io::Read as _;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

/// The benchmark range every address comes from: 198.18.0.0/15.
pub const NETWORK: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
/// Prefix length of [`NETWORK`]; every address is on-link within it.
pub const PREFIX_LEN: u8 = 15;
/// The server's address.
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Most client namespaces: one `198.18.N.0/24` each, N = 1..=254.
pub const MAX_CLIENTS: usize = 254;
/// Most source addresses per client: `198.18.N.1` ..= `198.18.N.254`.
pub const MAX_SOURCES: usize = 254;
/// MTUs a veth accepts (`ETH_MIN_MTU` ..= `ETH_MAX_MTU`).
pub const MTU_RANGE: RangeInclusive<u32> = 68..=65535;
/// The veth device inside the server and every client namespace.
pub const DEVICE: &str = "c1m0";
/// The bridge device inside the bridge namespace (K > 1).
pub const BRIDGE_DEVICE: &str = "c1m-br";
/// Length of the random namespace-name suffix (`[a-z0-9]`).
pub const SUFFIX_LEN: usize = 6;

/// A plan that cannot be built, and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("--clients 0: the netns topology needs at least one client namespace")]
    NoClients,
    #[error(
        "--clients {0} is more than {MAX_CLIENTS}: each client gets its own 198.18.N.0/24 \
         (N = 1..=254); use fewer client namespaces, each with more source addresses"
    )]
    TooManyClients(usize),
    #[error("0 source addresses per client: each client namespace needs at least one")]
    NoSources,
    #[error(
        "{0} source addresses per client is more than {MAX_SOURCES} (198.18.N.1-198.18.N.254); \
         use more client namespaces (--clients) instead"
    )]
    TooManySources(usize),
    #[error("MTU {0} is outside {min}..={max}, the range a veth accepts", min = MTU_RANGE.start(), max = MTU_RANGE.end())]
    Mtu(u32),
    #[error("namespace suffix {0:?} must be {SUFFIX_LEN} characters from a-z and 0-9")]
    Suffix(String),
}

/// Settings of every veth in the topology; `None` leaves the kernel's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkOptions {
    pub mtu: Option<u32>,
    /// Generic receive offload (`ethtool -K DEV gro on|off`).
    pub gro: Option<bool>,
    /// TCP segmentation offload (`ethtool -K DEV tso on|off`).
    pub tso: Option<bool>,
    /// `--link`: delay, loss, rate on the client side of each veth (tc netem).
    pub shape: Option<link::LinkSpec>,
}

impl LinkOptions {
    /// GRO and TSO can only be switched with `ethtool -K`: iproute2's `ip link set` has
    /// `gro_max_size`/`gso_max_size` but no on/off.
    pub fn needs_ethtool(&self) -> bool {
        self.gro.is_some() || self.tso.is_some()
    }
}

/// A namespace with one veth end and its addresses (the server or one client).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub namespace: String,
    pub device: String,
    /// The first is the primary address; all are `/15`.
    pub addresses: Vec<Ipv4Addr>,
    /// The peer of `device` in the bridge namespace (K > 1).
    pub bridge_port: Option<String>,
}

/// One command of a plan: an argv, and what goes to its stdin (`ip -batch -`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub argv: Vec<String>,
    pub stdin: Option<String>,
}

impl Step {
    fn new<S: AsRef<str>>(argv: &[S]) -> Step {
        Step {
            argv: argv.iter().map(|s| s.as_ref().to_owned()).collect(),
            stdin: None,
        }
    }

    /// The namespace this step creates, if it is an `ip netns add`.
    pub fn creates_namespace(&self) -> Option<&str> {
        match self.argv.as_slice() {
            [ip, netns, add, name] if ip == "ip" && netns == "netns" && add == "add" => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for Step {
    /// As a shell line (for logs and the plan text).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.argv.join(" "))?;
        if let Some(input) = &self.stdin {
            write!(f, " <<EOF\n{input}EOF")?;
        }
        Ok(())
    }
}

/// The whole topology as data: namespaces, devices, addresses and commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetnsPlan {
    suffix: String,
    sources: usize,
    link: LinkOptions,
    server: Endpoint,
    clients: Vec<Endpoint>,
    /// The bridge's namespace, K > 1 only.
    bridge_ns: Option<String>,
}

impl NetnsPlan {
    /// `clients` client namespaces with `sources` addresses each, every veth set to
    /// `link`, namespace names ending in `-<suffix>` (see [`random_suffix`]).
    pub fn new(
        clients: usize,
        sources: usize,
        link: LinkOptions,
        suffix: &str,
    ) -> Result<NetnsPlan, PlanError> {
        if clients == 0 {
            return Err(PlanError::NoClients);
        }
        if clients > MAX_CLIENTS {
            return Err(PlanError::TooManyClients(clients));
        }
        if sources == 0 {
            return Err(PlanError::NoSources);
        }
        if sources > MAX_SOURCES {
            return Err(PlanError::TooManySources(sources));
        }
        if let Some(mtu) = link.mtu {
            if !MTU_RANGE.contains(&mtu) {
                return Err(PlanError::Mtu(mtu));
            }
        }
        if !is_suffix(suffix) {
            return Err(PlanError::Suffix(suffix.to_owned()));
        }
        let bridged = clients > 1;
        let endpoint = |role: &str, addresses: Vec<Ipv4Addr>| Endpoint {
            namespace: format!("c1m-{role}-{suffix}"),
            device: DEVICE.to_owned(),
            addresses,
            bridge_port: bridged.then(|| format!("c1m-{role}")),
        };
        let server = endpoint("srv", vec![SERVER_ADDR]);
        let clients = (0..clients)
            .map(|i| endpoint(&format!("cli{i}"), client_addresses(i, sources)))
            .collect();
        Ok(NetnsPlan {
            suffix: suffix.to_owned(),
            sources,
            link,
            server,
            clients,
            bridge_ns: bridged.then(|| format!("c1m-br-{suffix}")),
        })
    }

    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    pub fn link(&self) -> LinkOptions {
        self.link
    }

    pub fn sources_per_client(&self) -> usize {
        self.sources
    }

    pub fn server(&self) -> &Endpoint {
        &self.server
    }

    /// The address the server listens on.
    pub fn server_addr(&self) -> Ipv4Addr {
        self.server.addresses[0]
    }

    pub fn server_ns(&self) -> &str {
        &self.server.namespace
    }

    pub fn clients(&self) -> &[Endpoint] {
        &self.clients
    }

    /// The namespace of client `i`, if there is one.
    pub fn client_ns(&self, i: usize) -> Option<&str> {
        self.clients.get(i).map(|c| c.namespace.as_str())
    }

    /// The source addresses of client `i` (primary first).
    pub fn client_sources(&self, i: usize) -> Option<&[Ipv4Addr]> {
        self.clients.get(i).map(|c| c.addresses.as_slice())
    }

    /// Client `i`'s sources as `c1m-loadgen --source-ips` takes them (`first-last`).
    pub fn source_ips_arg(&self, i: usize) -> Option<String> {
        self.client_sources(i).map(range_text)
    }

    /// The bridge's namespace (K > 1).
    pub fn bridge_ns(&self) -> Option<&str> {
        self.bridge_ns.as_deref()
    }

    /// Every namespace, in the order they are created.
    pub fn namespaces(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self.bridge_ns.iter().map(String::as_str).collect();
        all.extend(self.endpoints().map(|e| e.namespace.as_str()));
        all
    }

    /// The server, then every client.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        std::iter::once(&self.server).chain(self.clients.iter())
    }

    /// Every veth end as (namespace, device): each endpoint's, then the bridge ports.
    pub fn veth_devices(&self) -> Vec<(&str, &str)> {
        let mut all: Vec<(&str, &str)> = self
            .endpoints()
            .map(|e| (e.namespace.as_str(), e.device.as_str()))
            .collect();
        if let Some(br) = &self.bridge_ns {
            all.extend(
                self.endpoints()
                    .filter_map(|e| e.bridge_port.as_deref())
                    .map(|port| (br.as_str(), port)),
            );
        }
        all
    }

    /// The commands that build the topology, in order: namespaces, `lo` up, links,
    /// offloads, addresses, links up, routes. Every one names its namespace.
    pub fn setup_commands(&self) -> Vec<Step> {
        let mut steps: Vec<Step> = Vec::new();
        for ns in self.namespaces() {
            steps.push(Step::new(&["ip", "netns", "add", ns]));
        }
        for ns in self.namespaces() {
            steps.push(Step::new(&["ip", "-n", ns, "link", "set", "lo", "up"]));
        }
        steps.extend(self.link_steps());
        steps.extend(self.offload_steps());
        for e in self.endpoints() {
            steps.extend(address_steps(e));
        }
        for (ns, dev) in self.veth_devices() {
            steps.push(Step::new(&["ip", "-n", ns, "link", "set", dev, "up"]));
        }
        if let Some(br) = &self.bridge_ns {
            steps.push(Step::new(&[
                "ip",
                "-n",
                br,
                "link",
                "set",
                BRIDGE_DEVICE,
                "up",
            ]));
        }
        if self.sources > 1 {
            steps.extend(self.route_steps());
        }
        steps
    }

    /// The commands that remove the topology: every namespace, clients first. Deleting
    /// a namespace deletes its devices and with them their veth peers.
    pub fn teardown_commands(&self) -> Vec<Step> {
        self.namespaces()
            .into_iter()
            .rev()
            .map(|ns| Step::new(&["ip", "netns", "del", ns]))
            .collect()
    }

    fn link_steps(&self) -> Vec<Step> {
        let mtu: Vec<String> = match self.link.mtu {
            Some(m) => vec!["mtu".into(), m.to_string()],
            None => Vec::new(),
        };
        let veth = |ns: &str, name: &str, peer_ns: &str| {
            let mut argv: Vec<String> = ["ip", "-n", ns, "link", "add", name]
                .iter()
                .map(|s| s.to_string())
                .collect();
            argv.extend(mtu.iter().cloned());
            argv.extend(["type", "veth", "peer", "name", DEVICE].map(String::from));
            argv.extend(mtu.iter().cloned());
            argv.extend(["netns".to_owned(), peer_ns.to_owned()]);
            Step::new(&argv)
        };
        let Some(br) = &self.bridge_ns else {
            // K = 1: one pair straight from the server to the client.
            let client = &self.clients[0].namespace;
            return vec![veth(&self.server.namespace, DEVICE, client)];
        };
        // The bridge takes its MTU from its ports (the smallest), so it is not set here.
        let mut steps = vec![Step::new(&[
            "ip",
            "-n",
            br,
            "link",
            "add",
            BRIDGE_DEVICE,
            "type",
            "bridge",
        ])];
        for e in self.endpoints() {
            let port = e.bridge_port.as_deref().unwrap_or(DEVICE);
            steps.push(veth(br, port, &e.namespace));
            steps.push(Step::new(&[
                "ip",
                "-n",
                br,
                "link",
                "set",
                port,
                "master",
                BRIDGE_DEVICE,
            ]));
        }
        steps
    }

    fn offload_steps(&self) -> Vec<Step> {
        if !self.link.needs_ethtool() {
            return Vec::new();
        }
        let on_off = |b: bool| if b { "on" } else { "off" };
        let mut features: Vec<&str> = Vec::new();
        if let Some(gro) = self.link.gro {
            features.extend(["gro", on_off(gro)]);
        }
        if let Some(tso) = self.link.tso {
            features.extend(["tso", on_off(tso)]);
        }
        self.veth_devices()
            .into_iter()
            .map(|(ns, dev)| {
                let mut argv = exec_prefix(ns);
                argv.extend(["ethtool", "-K", dev].map(String::from));
                argv.extend(features.iter().map(|s| s.to_string()));
                Step::new(&argv)
            })
            .collect()
    }

    /// Server routes: each client's /24 via its primary (see the module notes).
    fn route_steps(&self) -> Vec<Step> {
        let ns = &self.server.namespace;
        self.clients
            .iter()
            .map(|c| {
                let primary = c.addresses[0];
                let [a, b, n, _] = primary.octets();
                let net = format!("{a}.{b}.{n}.0/24");
                Step::new(&[
                    "ip",
                    "-n",
                    ns,
                    "route",
                    "add",
                    &net,
                    "via",
                    &primary.to_string(),
                    "dev",
                    DEVICE,
                ])
            })
            .collect()
    }

    /// What a results folder records about the topology. `read_back` is what the kernel
    /// reports for the devices once they exist ([`Netns::read_back`]); `None` for a plan
    /// not built (yet).
    pub fn describe(&self, read_back: Option<&ReadBack>) -> Value {
        let client = |c: &Endpoint| {
            json!({
                "namespace": c.namespace,
                "device": c.device,
                "addresses": range_text(&c.addresses),
                "address_count": c.addresses.len(),
                "bridge_port": c.bridge_port,
            })
        };
        json!({
            "topology": "netns",
            "clients": self.clients.len(),
            "sources_per_client": self.sources,
            "network": format!("{NETWORK}/{PREFIX_LEN}"),
            "suffix": self.suffix,
            "namespaces": {
                "server": self.server.namespace,
                "bridge": self.bridge_ns,
                "clients": self.clients.iter().map(|c| &c.namespace).collect::<Vec<_>>(),
            },
            "server": {
                "namespace": self.server.namespace,
                "device": self.server.device,
                "address": self.server_addr().to_string(),
                "bridge_port": self.server.bridge_port,
            },
            "client_endpoints": self.clients.iter().map(client).collect::<Vec<_>>(),
            "bridge": self.bridge_ns.as_ref().map(|ns| json!({"namespace": ns, "device": BRIDGE_DEVICE})),
            "link": {
                "requested": self.link,
                "read_back": read_back,
            },
        })
    }
}

/// `ip -n NS address add` for each of an endpoint's addresses: the primary as one
/// command, the rest as one `ip -batch -` (250 addresses in one process, not 250).
fn address_steps(e: &Endpoint) -> Vec<Step> {
    let add = |a: &Ipv4Addr| format!("{a}/{PREFIX_LEN}");
    let mut steps = vec![Step::new(&[
        "ip",
        "-n",
        &e.namespace,
        "address",
        "add",
        &add(&e.addresses[0]),
        "dev",
        &e.device,
    ])];
    if e.addresses.len() > 1 {
        let input: String = e.addresses[1..]
            .iter()
            .map(|a| format!("address add {} dev {}\n", add(a), e.device))
            .collect();
        steps.push(Step {
            argv: ["ip", "-n", &e.namespace, "-batch", "-"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            stdin: Some(input),
        });
    }
    steps
}

/// Client `i`'s addresses: `198.18.(i+1).1` ..= `198.18.(i+1).sources`.
fn client_addresses(i: usize, sources: usize) -> Vec<Ipv4Addr> {
    // Both are at most 254 (checked by `NetnsPlan::new`), so the casts are exact.
    (1..=sources)
        .map(|s| Ipv4Addr::new(198, 18, (i + 1) as u8, s as u8))
        .collect()
}

/// `a` for one address, `first-last` for a contiguous run.
fn range_text(addrs: &[Ipv4Addr]) -> String {
    match addrs {
        [] => String::new(),
        [one] => one.to_string(),
        [first, .., last] => format!("{first}-{last}"),
    }
}

fn is_suffix(s: &str) -> bool {
    s.len() == SUFFIX_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A fresh random suffix for namespace names, like the kernel's net selftests use.
pub fn random_suffix() -> std::io::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; SUFFIX_LEN];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

/// If `name` is a namespace this kit creates (`c1m-srv-X`, `c1m-br-X`, `c1m-cliN-X`
/// with N < [`MAX_CLIENTS`] and X a [`SUFFIX_LEN`]-character suffix), its suffix.
pub fn kit_namespace_suffix(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("c1m-")?;
    let (role, suffix) = rest.split_once('-')?;
    let role_ok = match role {
        "srv" | "br" => true,
        _ => role.strip_prefix("cli").is_some_and(|n| {
            !n.is_empty()
                && n.len() <= 3
                && n.bytes().all(|b| b.is_ascii_digit())
                && (n == "0" || !n.starts_with('0'))
                && n.parse::<usize>().is_ok_and(|i| i < MAX_CLIENTS)
        }),
    };
    (role_ok && is_suffix(suffix)).then_some(suffix)
}

#[cfg(test)]
mod plan_tests;
