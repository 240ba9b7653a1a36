//! The orchestrator's files about a server: `server.json` of several server processes
//! summed into one, and the hold scenario's `hold.json`, beside their reader
//! ([`super::casedir`]). Both are rendered with serde_json (keys in alphabetical order);
//! the orchestrator writes them where it keeps its results.

use anyhow::bail;
use serde_json::{Map, Number, Value as Json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// server.json keys that are per process, not additive.
const NOT_SUMMED: &[&str] = &[
    "pid",
    "nofile_soft",
    "nofile_hard",
    "fixed_slots_per_loop",
    "wall_s",
    "cpu_us_per_recv",
    "syscalls_per_recv",
    "rss_per_peak_conn_bytes",
    // The Go reference server's own per-process values.
    "gomaxprocs",
    "go_buffer_bytes_per_conn",
    "go_gc_cpu_fraction",
];

fn int(v: i64) -> Json {
    Json::from(v)
}

/// A float (null when not finite).
fn float(v: f64) -> Json {
    Number::from_f64(v).map_or(Json::Null, Json::Number)
}

fn set(obj: &mut Json, key: &str, value: Json) {
    if let Json::Object(m) = obj {
        m.insert(key.to_owned(), value);
    }
}

/// A file's JSON object, None when missing, unreadable or not an object.
fn load_obj(path: &Path) -> Option<Json> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice::<Json>(&bytes)
        .ok()
        .filter(Json::is_object)
}

fn pretty(v: &Json) -> String {
    let mut out = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".into());
    out.push('\n');
    out
}

/// Sum of numbers: an integer while every part is one, else a float.
fn sum(values: &[&Json]) -> Json {
    let nums: Vec<&serde_json::Number> = values
        .iter()
        .filter_map(|v| match v {
            Json::Number(n) => Some(n),
            _ => None,
        })
        .collect();
    if nums.iter().all(|n| n.is_i64() || n.is_u64()) {
        let total: i128 = nums
            .iter()
            .map(|n| {
                n.as_i64()
                    .map_or(n.as_u64().unwrap_or(0) as i128, i128::from)
            })
            .sum();
        i64::try_from(total).map_or(float(total as f64), int)
    } else {
        float(nums.iter().filter_map(|n| n.as_f64()).sum())
    }
}

/// The sum of the server.json files `paths` (one per c1m-server process): counters
/// summed, per-process values from the first, `wall_s` the longest, ratios recomputed
/// from the sums. Fails when none is readable.
pub fn merged_server(paths: &[PathBuf]) -> anyhow::Result<String> {
    let docs: Vec<Json> = paths.iter().filter_map(|p| load_obj(p)).collect();
    let Some(first) = docs.first() else {
        bail!(
            "merge-server: none of {} server.json files is readable",
            paths.len()
        );
    };
    let mut merged = first.clone();
    let zero = int(0);
    if let Json::Object(entries) = first {
        for (key, value) in entries {
            if NOT_SUMMED.contains(&key.as_str()) || !matches!(value, Json::Number(_)) {
                continue;
            }
            let parts: Vec<&Json> = docs.iter().map(|d| d.get(key).unwrap_or(&zero)).collect();
            set(&mut merged, key, sum(&parts));
        }
    }
    let wall = docs
        .iter()
        .map(|d| d.get("wall_s").cloned().unwrap_or(int(0)))
        .max_by(|a, b| {
            a.as_f64()
                .unwrap_or(0.0)
                .total_cmp(&b.as_f64().unwrap_or(0.0))
        })
        .unwrap_or(int(0));
    set(&mut merged, "wall_s", wall);
    let listen: Vec<Json> = docs
        .iter()
        .flat_map(|d| match d.get("listen") {
            Some(Json::Array(a)) => a.clone(),
            _ => Vec::new(),
        })
        .collect();
    set(&mut merged, "listen", Json::Array(listen));
    let pids = docs
        .iter()
        .map(|d| d.get("pid").cloned().unwrap_or(Json::Null))
        .collect();
    set(&mut merged, "pids", Json::Array(pids));
    set(&mut merged, "processes", int(docs.len() as i64));
    let names = paths
        .iter()
        .map(|p| {
            Json::String(
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        })
        .collect();
    set(&mut merged, "merged_from", Json::Array(names));
    let mut note = format!(
        "sum of {} c1m-server processes (one port each); peak_connections and rss_* are sums of per-process values",
        docs.len()
    );
    let n = |k: &str| merged.get(k).and_then(Json::as_f64).unwrap_or(0.0);
    let recvs = n("recvs");
    let cpu = n("cpu_user_s") + n("cpu_sys_s");
    let per_recv = |v: f64| {
        if recvs != 0.0 {
            float(v / recvs)
        } else {
            Json::Null
        }
    };
    let cpu_per_recv = per_recv(cpu * 1e6);
    let counted = !matches!(merged.get("syscalls"), None | Some(Json::Null));
    let sys_per_recv = if counted {
        per_recv(n("syscalls"))
    } else {
        Json::Null
    };
    let peak = n("peak_connections");
    let grown = n("rss_peak_bytes") - n("rss_baseline_bytes");
    let rss_per_conn = if peak != 0.0 {
        float(grown / peak)
    } else {
        Json::Null
    };
    set(&mut merged, "cpu_us_per_recv", cpu_per_recv);
    set(&mut merged, "syscalls_per_recv", sys_per_recv);
    set(&mut merged, "rss_per_peak_conn_bytes", rss_per_conn);
    if docs.len() < paths.len() {
        note.push_str(&format!(
            "; {} server.json missing",
            paths.len() - docs.len()
        ));
    }
    set(&mut merged, "note", Json::String(note));
    Ok(pretty(&merged))
}

/// What the hold scenario measured around one run (the first keys of hold.json).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HoldFacts {
    pub slab_before_kb: u64,
    pub slab_peak_kb: u64,
    /// 0 when /proc/slabinfo was not readable.
    pub slabinfo_before_bytes: u64,
    pub slabinfo_peak_bytes: u64,
    pub tcp_inuse_before: u64,
    pub tcp_inuse_peak: u64,
    pub teardown_s: u64,
    pub server_processes: u64,
    pub connections_asked: u64,
    pub heartbeat_s: u64,
}

fn read_slab(path: &Path) -> Option<BTreeMap<String, i64>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() == 2 {
            *out.entry(parts[0].to_owned()).or_insert(0) += parts[1].parse::<i64>().ok()?;
        }
    }
    Some(out)
}

/// Per-connection growth of the caches that grew most (at most 8), from
/// slab-before.txt and slab-peak.txt.
fn slab_breakdown(run_dir: &Path, est: f64) -> Option<Json> {
    let before = read_slab(&run_dir.join("slab-before.txt")).filter(|m| !m.is_empty())?;
    let peak = read_slab(&run_dir.join("slab-peak.txt")).filter(|m| !m.is_empty())?;
    let mut grown: Vec<(String, i64)> = peak
        .keys()
        .chain(before.keys())
        .map(|k| {
            (
                k.clone(),
                peak.get(k).unwrap_or(&0) - before.get(k).unwrap_or(&0),
            )
        })
        .collect();
    grown.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    grown.dedup_by(|a, b| a.0 == b.0);
    let best = grown
        .into_iter()
        .take(8)
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| (k, float((v as f64 / est * 10.0).round() / 10.0)))
        .collect::<Map<String, Json>>();
    Some(Json::Object(best))
}

/// `run_dir`'s hold.json: the facts, slab per connection (from /proc/slabinfo and from
/// meminfo), other processes' sockets, and what summary.json and server.json say about
/// the hold.
pub fn hold_json(run_dir: &Path, f: &HoldFacts) -> String {
    let empty = || Json::Object(Map::new());
    let summary = load_obj(&run_dir.join("summary.json")).unwrap_or_else(empty);
    let server = load_obj(&run_dir.join("server.json")).unwrap_or_else(empty);
    let uint = |v: u64| int(i64::try_from(v).unwrap_or(i64::MAX));
    let mut info = Json::Object(Map::from_iter([
        ("slab_before_kb".into(), uint(f.slab_before_kb)),
        ("slab_peak_kb".into(), uint(f.slab_peak_kb)),
        (
            "slabinfo_before_bytes".into(),
            uint(f.slabinfo_before_bytes),
        ),
        ("slabinfo_peak_bytes".into(), uint(f.slabinfo_peak_bytes)),
        ("tcp_inuse_before".into(), uint(f.tcp_inuse_before)),
        ("tcp_inuse_peak".into(), uint(f.tcp_inuse_peak)),
        ("teardown_s".into(), uint(f.teardown_s)),
        ("server_processes".into(), uint(f.server_processes)),
        ("connections_asked".into(), uint(f.connections_asked)),
        ("heartbeat_s".into(), uint(f.heartbeat_s)),
    ]));
    let est_json = summary
        .get("connections_established")
        .cloned()
        .unwrap_or(Json::Null);
    let est = est_json.as_f64().unwrap_or(0.0);
    if est != 0.0 {
        let grown_kb = f.slab_peak_kb as f64 - f.slab_before_kb as f64;
        set(
            &mut info,
            "meminfo_slab_per_connection_bytes",
            float(grown_kb * 1024.0 / est),
        );
        if f.slabinfo_before_bytes > 0 {
            let grown = f.slabinfo_peak_bytes as f64 - f.slabinfo_before_bytes as f64;
            set(
                &mut info,
                "slabinfo_per_connection_bytes",
                float(grown / est),
            );
            if let Some(caches) = slab_breakdown(run_dir, est)
                .filter(|c| c.as_object().is_some_and(|m| !m.is_empty()))
            {
                set(&mut info, "slabinfo_per_connection_by_cache", caches);
            }
        }
        // Sockets of other processes opened or closed meanwhile distort the slab numbers.
        let (b, pk) = (f.tcp_inuse_before as i64, f.tcp_inuse_peak as i64);
        let extra = pk - b - 2 * est as i64;
        set(&mut info, "other_tcp_sockets_at_peak", int(extra));
        if (extra.abs() as f64) > (200f64).max(0.1 * 2.0 * est) {
            let warning = format!(
                "TCP sockets in use rose by {} during the hold, {extra} more than this run's 2 x {}: other processes were busy, slab per connection is off",
                pk - b,
                est as i64
            );
            set(&mut info, "warning", Json::String(warning));
        }
    }
    let headline = info
        .get("slabinfo_per_connection_bytes")
        .or_else(|| info.get("meminfo_slab_per_connection_bytes"))
        .cloned()
        .unwrap_or(Json::Null);
    set(&mut info, "slab_per_connection_bytes", headline);
    let from = |j: &Json, k: &str| j.get(k).cloned().unwrap_or(Json::Null);
    set(&mut info, "connections_established", est_json);
    set(
        &mut info,
        "connections_failed",
        from(&summary, "connections_failed"),
    );
    set(
        &mut info,
        "connect_errors",
        from(&summary, "connect_errors"),
    );
    set(&mut info, "ramp_s", from(&summary, "ramp_s"));
    set(&mut info, "heartbeat_latency_us", from(&summary, "latency"));
    set(
        &mut info,
        "server_rss_peak_bytes",
        from(&server, "rss_peak_bytes"),
    );
    set(
        &mut info,
        "server_rss_per_peak_conn_bytes",
        from(&server, "rss_per_peak_conn_bytes"),
    );
    set(
        &mut info,
        "server_peak_connections",
        from(&server, "peak_connections"),
    );
    pretty(&info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::rundir::tests::TempDir;

    /// As the orchestrator does: the merged server.json written to `out`.
    fn merge_server(out: &Path, paths: &[PathBuf]) -> anyhow::Result<()> {
        Ok(std::fs::write(out, merged_server(paths)?)?)
    }

    /// As the orchestrator does: hold.json written into the run folder.
    fn write_hold(run_dir: &Path, f: &HoldFacts) {
        std::fs::write(run_dir.join("hold.json"), hold_json(run_dir, f)).unwrap();
    }

    const SRV: &str = r#"{"backend": "epoll", "listen": ["127.0.0.1:7000"], "pid": 10,
        "nofile_soft": 20000, "wall_s": 6.5, "cpu_user_s": 0.5, "cpu_sys_s": 1.5,
        "cpu_us_per_recv": 9.9, "syscalls": 3000, "peak_connections": 100,
        "rss_baseline_bytes": 1000, "rss_peak_bytes": 3000, "rss_per_peak_conn_bytes": 20.0,
        "recvs": 1000, "bytes_in": 64000}"#;

    #[test]
    fn merges_server_processes() {
        let t = TempDir::new("server-files");
        let (a, b) = (t.0.join("000.json"), t.0.join("001.json"));
        std::fs::write(&a, SRV).unwrap();
        let other = SRV
            .replace("7000", "7001")
            .replace("\"pid\": 10", "\"pid\": 11")
            .replace("6.5", "7.25");
        std::fs::write(&b, other).unwrap();
        let out = t.0.join("server.json");
        let missing = t.0.join("002.json");
        merge_server(&out, &[a, b, missing]).unwrap();
        let m = load_obj(&out).unwrap();
        assert_eq!(m.get("backend"), Some(&Json::from("epoll")));
        assert_eq!(m.get("pid"), Some(&int(10)));
        assert_eq!(m.get("nofile_soft"), Some(&int(20000)));
        assert_eq!(m.get("syscalls"), Some(&int(6000)));
        assert_eq!(m.get("cpu_user_s").and_then(Json::as_f64), Some(1.0));
        assert_eq!(m.get("wall_s").and_then(Json::as_f64), Some(7.25));
        assert_eq!(
            m.get("cpu_us_per_recv").and_then(Json::as_f64),
            Some(4.0 * 1e6 / 2000.0)
        );
        assert_eq!(m.get("syscalls_per_recv").and_then(Json::as_f64), Some(3.0));
        assert_eq!(
            m.get("rss_per_peak_conn_bytes").and_then(Json::as_f64),
            Some(4000.0 / 200.0)
        );
        assert_eq!(m.get("processes").and_then(Json::as_f64), Some(2.0));
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.contains("\"listen\": [\n    \"127.0.0.1:7000\",\n    \"127.0.0.1:7001\"\n  ]"),
            "{text}"
        );
        assert!(text.contains(
            "\"merged_from\": [\n    \"000.json\",\n    \"001.json\",\n    \"002.json\"\n  ]"
        ));
        assert!(text.contains("values; 1 server.json missing\""), "{text}");
        assert!(merge_server(&out, &[t.0.join("none.json")]).is_err());
    }

    #[test]
    fn writes_hold_json() {
        let t = TempDir::new("server-files");
        std::fs::write(
            t.0.join("summary.json"),
            r#"{"connections_established": 1000, "connections_failed": 0, "connect_errors": {},
                "ramp_s": 1.5, "latency": {"p50_us": 60.0, "max_us": 900.0}}"#,
        )
        .unwrap();
        std::fs::write(t.0.join("server.json"), SRV).unwrap();
        std::fs::write(
            t.0.join("slab-before.txt"),
            "TCP 1000\ndentry 500\nfilp 10\n",
        )
        .unwrap();
        std::fs::write(
            t.0.join("slab-peak.txt"),
            "TCP 4737100\ndentry 384600\nfilp 5\nnew 1000\n",
        )
        .unwrap();
        let f = HoldFacts {
            slab_before_kb: 100,
            slab_peak_kb: 10_100,
            slabinfo_before_bytes: 1510,
            slabinfo_peak_bytes: 5_122_705,
            tcp_inuse_before: 5,
            tcp_inuse_peak: 2505,
            teardown_s: 3,
            server_processes: 1,
            connections_asked: 1000,
            heartbeat_s: 1,
        };
        write_hold(&t.0, &f);
        let h = load_obj(&t.0.join("hold.json")).unwrap();
        assert_eq!(
            h.get("meminfo_slab_per_connection_bytes")
                .and_then(Json::as_f64),
            Some(10_240.0)
        );
        assert_eq!(
            h.get("slabinfo_per_connection_bytes")
                .and_then(Json::as_f64),
            Some(5121.195)
        );
        assert_eq!(
            h.get("slab_per_connection_bytes").and_then(Json::as_f64),
            Some(5121.195)
        );
        let caches = h.get("slabinfo_per_connection_by_cache").unwrap();
        assert_eq!(
            caches,
            &Json::Object(Map::from_iter([
                ("TCP".into(), float(4736.1)),
                ("dentry".into(), float(384.1)),
                ("new".into(), float(1.0)),
            ]))
        );
        assert_eq!(
            h.get("other_tcp_sockets_at_peak").and_then(Json::as_f64),
            Some(500.0)
        );
        assert!(h.get("warning").is_some(), "500 > max(200, 200)");
        assert_eq!(h["heartbeat_latency_us"]["p50_us"].as_f64(), Some(60.0));
        assert_eq!(
            h.get("server_peak_connections").and_then(Json::as_f64),
            Some(100.0)
        );
        let text = std::fs::read_to_string(t.0.join("hold.json")).unwrap();
        // Two-space indent, one key a line, a newline at the end.
        assert!(
            text.contains("\n  \"slab_before_kb\": 100,\n  \"slab_peak_kb\": 10100,")
                && text.ends_with("}\n"),
            "{text}"
        );

        // No summary: nothing per connection, nulls from the run.
        let bare = TempDir::new("server-files");
        write_hold(&bare.0, &HoldFacts::default());
        let h = load_obj(&bare.0.join("hold.json")).unwrap();
        assert_eq!(h.get("slab_per_connection_bytes"), Some(&Json::Null));
        assert_eq!(h.get("connections_established"), Some(&Json::Null));
    }
}
