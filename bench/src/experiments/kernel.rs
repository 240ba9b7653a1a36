//! What the kernel counted during one case: /proc/net/netstat, /proc/net/snmp,
//! /proc/net/sockstat (in every namespace or host where server and loadgens run) and
//! /proc/net/softnet_stat (per machine: read where the server runs), read before and
//! after the loadgen's run; the deltas go to the case folder's kernel.json.

use crate::topology::active::Topology;
use c1m_platform::procfs::{parse_net_counters, parse_sockstat, parse_softnet_stat, Softnet};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The counters the experiment table shows (the rest of the deltas stay in kernel.json).
pub const SHOWN: [&str; 9] = [
    "TcpExt.ListenOverflows",
    "TcpExt.ListenDrops",
    "TcpExt.TCPTimeouts",
    "TcpExt.TCPSynRetrans",
    "TcpExt.SyncookiesSent",
    "TcpExt.TCPMemoryPressures",
    "TcpExt.TCPAbortOnMemory",
    "TcpExt.TCPBacklogDrop",
    "Tcp.RetransSegs",
];

/// One site's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteCounters {
    pub site: String,
    /// netstat and snmp, `Prefix.Name`.
    pub counters: BTreeMap<String, i64>,
    /// sockstat, `Proto.field`.
    pub sockstat: BTreeMap<String, i64>,
}

/// Every site's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub sites: Vec<SiteCounters>,
    pub softnet: Option<Softnet>,
}

impl Snapshot {
    /// Reads the counters where `topo` runs server and loadgens (unreadable files stay
    /// empty: the report shows a dash).
    pub fn take(topo: &Topology) -> Snapshot {
        let mut sites: Vec<SiteCounters> = Vec::new();
        for file in ["netstat", "snmp", "sockstat"] {
            for (site, text) in topo.read_proc_net(file) {
                let idx = match sites.iter().position(|s| s.site == site) {
                    Some(i) => i,
                    None => {
                        sites.push(SiteCounters {
                            site,
                            ..SiteCounters::default()
                        });
                        sites.len() - 1
                    }
                };
                let Some(text) = text else { continue };
                let s = &mut sites[idx];
                match file {
                    "sockstat" => s.sockstat = parse_sockstat(&text),
                    _ => s.counters.extend(parse_net_counters(&text)),
                }
            }
        }
        let softnet = topo
            .read_proc_net("softnet_stat")
            .into_iter()
            .next()
            .and_then(|(_, t)| parse_softnet_stat(&t?));
        Snapshot { sites, softnet }
    }

    /// Writes kernel.json in `dir`: what changed from `self` to `after`.
    pub fn write(&self, after: &Snapshot, dir: &Path) -> anyhow::Result<()> {
        let v = kernel_json(self, after);
        crate::safe_fs::write(&dir.join(KERNEL_FILE), format!("{v:#}\n"))
    }
}

pub const KERNEL_FILE: &str = "kernel.json";

/// kernel.json: per site the counters that changed and sockstat before and after;
/// `totals`: the [`SHOWN`] counters summed over the sites and the softnet deltas.
pub fn kernel_json(before: &Snapshot, after: &Snapshot) -> Value {
    let mut totals: BTreeMap<String, i64> = SHOWN.iter().map(|k| (k.to_string(), 0)).collect();
    let mut sites = Vec::new();
    for a in &after.sites {
        let b = before.sites.iter().find(|b| b.site == a.site);
        let mut changed = Map::new();
        for (k, v) in &a.counters {
            let d = v - b.and_then(|b| b.counters.get(k)).copied().unwrap_or(*v);
            if d != 0 {
                changed.insert(k.clone(), json!(d));
            }
            if let Some(t) = totals.get_mut(k) {
                *t += d;
            }
        }
        sites.push(json!({
            "site": a.site,
            "changed": changed,
            "sockstat_before": b.map(|b| b.sockstat.clone()).unwrap_or_default(),
            "sockstat_after": a.sockstat,
        }));
    }
    let mut totals: Map<String, Value> = totals.into_iter().map(|(k, v)| (k, json!(v))).collect();
    if let (Some(b), Some(a)) = (before.softnet, after.softnet) {
        totals.insert(
            "softnet.dropped".into(),
            json!(a.dropped.saturating_sub(b.dropped)),
        );
        totals.insert(
            "softnet.time_squeeze".into(),
            json!(a.time_squeeze.saturating_sub(b.time_squeeze)),
        );
    }
    json!({
        "window": "from just before the loadgen starts (servers listening) to just after it ends",
        "totals": totals,
        "sites": sites,
    })
}
