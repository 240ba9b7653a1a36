//! Readers for what the kernel says about this process and the machine: CPU time,
//! memory, kernel slab, sysctls, versions. Missing files give `None`, never a panic.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;

/// User and system CPU seconds of this process (all threads), from getrusage.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct CpuTimes {
    pub user_s: f64,
    pub sys_s: f64,
}

pub fn process_cpu_times() -> CpuTimes {
    let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    match nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF) {
        Ok(r) => CpuTimes {
            user_s: tv(r.user_time()),
            sys_s: tv(r.system_time()),
        },
        Err(_) => CpuTimes::default(),
    }
}

/// CPU seconds (user, sys) of any process, from `/proc/<pid>/stat` (clock ticks).
pub fn pid_cpu_times(pid: u32) -> Option<CpuTimes> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 (comm) may contain spaces; everything after the last ')' is fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = ticks_per_second();
    let user = fields.get(11)?.parse::<f64>().ok()? / ticks;
    let sys = fields.get(12)?.parse::<f64>().ok()? / ticks;
    Some(CpuTimes {
        user_s: user,
        sys_s: sys,
    })
}

fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

/// A `kB` field of `/proc/self/status` (e.g. `VmRSS`, `VmHWM`) in bytes.
pub fn self_status_bytes(field: &str) -> Option<u64> {
    status_bytes("/proc/self/status", field)
}

/// A `kB` field of `/proc/<pid>/status` in bytes.
pub fn pid_status_bytes(pid: u32, field: &str) -> Option<u64> {
    status_bytes(&format!("/proc/{pid}/status"), field)
}

fn status_bytes(path: &str, field: &str) -> Option<u64> {
    kb_field(&fs::read_to_string(path).ok()?, field)
}

fn kb_field(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name.trim() != field {
            return None;
        }
        let kb = value.split_whitespace().next()?.parse::<u64>().ok()?;
        Some(kb * 1024)
    })
}

/// A field of `/proc/meminfo` (e.g. `MemAvailable`, `Slab`) in bytes.
pub fn meminfo_bytes(field: &str) -> Option<u64> {
    kb_field(&fs::read_to_string("/proc/meminfo").ok()?, field)
}

/// Reads a sysctl by its dotted name (`net.core.somaxconn`), trimmed; tabs become spaces.
pub fn read_sysctl(name: &str) -> Option<String> {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    let text = fs::read_to_string(path).ok()?;
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The sysctls that decide how many connections fit and how fast they open.
pub const TUNING_SYSCTLS: &[&str] = &[
    "fs.file-max",
    "fs.nr_open",
    "kernel.io_uring_disabled",
    "net.core.somaxconn",
    "net.core.netdev_max_backlog",
    "net.core.rmem_max",
    "net.core.wmem_max",
    "net.core.busy_poll",
    "net.core.busy_read",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_max_orphans",
    "net.ipv4.tcp_max_tw_buckets",
    "net.ipv4.tcp_mem",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_timestamps",
];

/// A snapshot of [`TUNING_SYSCTLS`] (absent ones are left out).
pub fn tuning_snapshot() -> BTreeMap<String, String> {
    TUNING_SYSCTLS
        .iter()
        .filter_map(|name| Some((name.to_string(), read_sysctl(name)?)))
        .collect()
}

/// Kernel slab bytes in use by the caches that grow with sockets (TCP, sock_inode_cache,
/// dentry, filp, ...) from `/proc/slabinfo` (root only), keyed by cache name.
pub fn socket_slab_bytes() -> Option<BTreeMap<String, u64>> {
    let text = fs::read_to_string("/proc/slabinfo").ok()?;
    let wanted = [
        "TCP",
        "TCPv6",
        "request_sock_TCP",
        "tw_sock_TCP",
        "sock_inode_cache",
        "dentry",
        "filp",
        "skbuff_head_cache",
        "eventpoll_epi",
        "eventpoll_pwq",
    ];
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || !wanted.contains(&f[0]) {
            continue;
        }
        // name active_objs num_objs objsize ...
        let (Ok(active), Ok(size)) = (f[1].parse::<u64>(), f[3].parse::<u64>()) else {
            continue;
        };
        out.insert(f[0].to_string(), active * size);
    }
    Some(out)
}

/// `uname -r`.
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Host name, for result folder names and reports.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// The CPU model line of `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Total CPU ticks (busy, total) across the machine from `/proc/stat`, to tell how busy
/// other processes kept the machine during a run.
pub fn machine_cpu_ticks() -> Option<(u64, u64)> {
    let text = fs::read_to_string("/proc/stat").ok()?;
    let all = parse_stat_line(text.lines().next()?)?.1;
    Some((all.busy(), all.total()))
}

/// Clock ticks of one CPU (or of all: the `cpu` line) from `/proc/stat`. Guest time is
/// already inside `user`, so it is not added again.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTicks {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTicks {
    pub fn total(&self) -> u64 {
        self.busy() + self.idle + self.iowait
    }

    /// Everything but idle and iowait (steal included: the CPU was not ours to use).
    pub fn busy(&self) -> u64 {
        self.user + self.nice + self.system + self.irq + self.softirq + self.steal
    }
}

/// `cpuN a b c ...` as (N, ticks); `cpu ...` (all CPUs) as (usize::MAX, ticks).
fn parse_stat_line(line: &str) -> Option<(usize, CpuTicks)> {
    let mut f = line.split_whitespace();
    let name = f.next()?.strip_prefix("cpu")?;
    let cpu = if name.is_empty() {
        usize::MAX
    } else {
        name.parse().ok()?
    };
    let mut n = [0u64; 8];
    for v in n.iter_mut() {
        *v = f.next().map_or(Some(0), |t| t.parse().ok())?;
    }
    let [user, nice, system, idle, iowait, irq, softirq, steal] = n;
    Some((
        cpu,
        CpuTicks {
            user,
            nice,
            system,
            idle,
            iowait,
            irq,
            softirq,
            steal,
        },
    ))
}

/// Ticks of every online CPU, by CPU number, from `/proc/stat`.
pub fn per_cpu_ticks() -> Option<BTreeMap<usize, CpuTicks>> {
    Some(parse_per_cpu(&fs::read_to_string("/proc/stat").ok()?))
}

fn parse_per_cpu(text: &str) -> BTreeMap<usize, CpuTicks> {
    text.lines()
        .filter_map(parse_stat_line)
        .filter(|(cpu, _)| *cpu != usize::MAX)
        .collect()
}

/// What one CPU did over a window (two [`per_cpu_ticks`] samples), in % of the window.
/// `busy_pct` is everything but idle and iowait: user, system, irq, softirq and steal.
/// Softirq shows here only where the kernel accounts IRQ time (`CONFIG_IRQ_TIME_ACCOUNTING`);
/// elsewhere it is charged to whatever task ran, as user or system time.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CpuBusy {
    pub cpu: usize,
    pub busy_pct: f64,
    pub user_pct: f64,
    pub system_pct: f64,
    pub irq_pct: f64,
    pub softirq_pct: f64,
    pub steal_pct: f64,
}

/// Busy share of each CPU present in both samples over the window from `a` to `b`;
/// CPUs with no ticks in between (offline) are left out.
pub fn cpu_window(a: &BTreeMap<usize, CpuTicks>, b: &BTreeMap<usize, CpuTicks>) -> Vec<CpuBusy> {
    let mut out = Vec::new();
    for (&cpu, t1) in b {
        let Some(t0) = a.get(&cpu) else { continue };
        let d = |x1: u64, x0: u64| x1.saturating_sub(x0) as f64;
        let total = d(t1.total(), t0.total());
        if total <= 0.0 {
            continue;
        }
        let pct = |v: f64| v / total * 100.0;
        out.push(CpuBusy {
            cpu,
            busy_pct: pct(d(t1.busy(), t0.busy())),
            user_pct: pct(d(t1.user + t1.nice, t0.user + t0.nice)),
            system_pct: pct(d(t1.system, t0.system)),
            irq_pct: pct(d(t1.irq, t0.irq)),
            softirq_pct: pct(d(t1.softirq, t0.softirq)),
            steal_pct: pct(d(t1.steal, t0.steal)),
        });
    }
    out
}

/// Mean busy % of `cpus` in `window`; None when none of them is in it.
pub fn mean_busy_pct(window: &[CpuBusy], cpus: &[usize]) -> Option<f64> {
    let v: Vec<f64> = window
        .iter()
        .filter(|c| cpus.contains(&c.cpu))
        .map(|c| c.busy_pct)
        .collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// TCP sockets in use (not TIME_WAIT) in a /proc/net/sockstat text.
pub fn parse_tcp_inuse(text: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| l.split_whitespace().nth(2).and_then(|v| v.parse().ok()))
}

/// TCP sockets in use (not TIME_WAIT) in this namespace, from /proc/net/sockstat.
pub fn tcp_inuse() -> u64 {
    fs::read_to_string("/proc/net/sockstat")
        .ok()
        .and_then(|t| parse_tcp_inuse(&t))
        .unwrap_or(0)
}

/// The counters of a /proc/net/netstat or /proc/net/snmp text: each section is a line
/// of names and a line of values with the same `Prefix:`; keys are `Prefix.Name`
/// (`TcpExt.ListenOverflows`, `Tcp.RetransSegs`). Values that are not integers are
/// left out.
pub fn parse_net_counters(text: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        let (Some((p1, names)), Some((p2, values))) =
            (names.split_once(':'), values.split_once(':'))
        else {
            continue;
        };
        if p1 != p2 {
            continue;
        }
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            if let Ok(v) = v.parse::<i64>() {
                out.insert(format!("{p1}.{n}"), v);
            }
        }
    }
    out
}

/// Totals over every CPU of /proc/net/softnet_stat (hex columns): packets processed,
/// dropped (the input backlog was full: `net.core.netdev_max_backlog`) and time squeezes
/// (the softirq ran out of budget).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Softnet {
    pub processed: u64,
    pub dropped: u64,
    pub time_squeeze: u64,
}

/// [`Softnet`] of a /proc/net/softnet_stat text; None when no line parses.
pub fn parse_softnet_stat(text: &str) -> Option<Softnet> {
    let mut total = Softnet::default();
    let mut any = false;
    for l in text.lines() {
        let col: Vec<u64> = l
            .split_whitespace()
            .take(3)
            .filter_map(|c| u64::from_str_radix(c, 16).ok())
            .collect();
        if let [p, d, t] = col[..] {
            total.processed += p;
            total.dropped += d;
            total.time_squeeze += t;
            any = true;
        }
    }
    any.then_some(total)
}

/// The numbers of a /proc/net/sockstat text as `Proto.field` (`TCP.inuse`, `TCP.mem`
/// in pages, `sockets.used`).
pub fn parse_sockstat(text: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for l in text.lines() {
        let Some((proto, rest)) = l.split_once(':') else {
            continue;
        };
        let w: Vec<&str> = rest.split_whitespace().collect();
        for kv in w.chunks(2) {
            if let [k, v] = kv {
                if let Ok(v) = v.parse::<i64>() {
                    out.insert(format!("{proto}.{k}"), v);
                }
            }
        }
    }
    out
}

/// Adds the ports something listens on in a /proc/net/tcp or tcp6 text to `out`.
pub fn parse_listening(text: &str, out: &mut BTreeSet<u16>) {
    for l in text.lines().skip(1) {
        let c: Vec<&str> = l.split_whitespace().collect();
        if c.get(3) == Some(&"0A") {
            if let Some(port) = c.get(1).and_then(|a| a.rsplit(':').next()) {
                if let Ok(p) = u16::from_str_radix(port, 16) {
                    out.insert(p);
                }
            }
        }
    }
}

/// Ports something listens on in this namespace (TCP, v4 and v6).
pub fn listening_ports() -> BTreeSet<u16> {
    let mut out = BTreeSet::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = fs::read_to_string(f) {
            parse_listening(&text, &mut out);
        }
    }
    out
}

/// Kernel slab in use from /proc/slabinfo: the total bytes of objects in use (freed
/// objects cached in partial slabs do not count) and a "name bytes" line per cache in
/// use. None when /proc/slabinfo is not readable (not root).
pub fn slab_in_use() -> Option<(u64, String)> {
    let text = fs::read_to_string("/proc/slabinfo").ok()?;
    let mut total = 0u64;
    let mut lines = String::new();
    for l in text.lines().skip(2) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (Some(a), Some(s)) = (f.get(1), f.get(3)) else {
            continue;
        };
        let b = a.parse::<u64>().unwrap_or(0) * s.parse::<u64>().unwrap_or(0);
        total += b;
        if b > 0 {
            lines.push_str(&format!("{} {b}\n", f[0]));
        }
    }
    Some((total, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_readers() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(listening_ports().contains(&port));
        assert!(tcp_inuse() >= 1);
        assert_eq!(
            parse_tcp_inuse("sockets: used 5\nTCP: inuse 7 orphan 0 tw 2 alloc 9 mem 1\n"),
            Some(7)
        );
        if let Some((total, lines)) = slab_in_use() {
            assert!(total > 0);
            assert!(lines.lines().all(|l| l.split(' ').count() == 2));
        }
    }

    #[test]
    fn net_counter_readers() {
        let netstat =
            "TcpExt: SyncookiesSent ListenOverflows\nTcpExt: 3 17\nIpExt: InOctets\nIpExt: 99\n";
        let c = parse_net_counters(netstat);
        assert_eq!(c["TcpExt.ListenOverflows"], 17);
        assert_eq!(c["TcpExt.SyncookiesSent"], 3);
        assert_eq!(c["IpExt.InOctets"], 99);
        // snmp has negative values (Tcp: MaxConn -1) and the same layout.
        let snmp = parse_net_counters("Tcp: RtoAlgorithm MaxConn\nTcp: 1 -1\n");
        assert_eq!(snmp["Tcp.MaxConn"], -1);
        assert!(parse_net_counters("TcpExt: A\nIpExt: 1\n").is_empty());
        let s = parse_softnet_stat(
            "0000000a 00000001 00000002 00000000\n000000f0 00000000 00000010 00000000\n",
        )
        .unwrap();
        assert_eq!(
            s,
            Softnet {
                processed: 250,
                dropped: 1,
                time_squeeze: 18
            }
        );
        assert_eq!(parse_softnet_stat(""), None);
        let so = parse_sockstat("sockets: used 5\nTCP: inuse 7 orphan 0 tw 2 alloc 9 mem 11\n");
        assert_eq!(
            (so["TCP.mem"], so["sockets.used"], so["TCP.tw"]),
            (11, 5, 2)
        );
        // This machine's own files parse.
        for f in ["netstat", "snmp"] {
            let text = fs::read_to_string(format!("/proc/net/{f}")).unwrap();
            assert!(!parse_net_counters(&text).is_empty(), "{f}");
        }
        let text = fs::read_to_string("/proc/net/sockstat").unwrap();
        assert!(parse_sockstat(&text).contains_key("TCP.inuse"));
    }

    #[test]
    fn reads_own_process() {
        assert!(self_status_bytes("VmRSS").unwrap() > 0);
        assert!(pid_cpu_times(std::process::id()).is_some());
        assert!(meminfo_bytes("MemTotal").unwrap() > 0);
        assert!(read_sysctl("net.core.somaxconn").is_some());
        assert_ne!(kernel_release(), "unknown");
    }

    #[test]
    fn kb_field_parses_status_lines() {
        let text = "Name:\tx\nVmRSS:\t  1234 kB\nVmHWM:\t 99 kB\n";
        assert_eq!(kb_field(text, "VmRSS"), Some(1234 * 1024));
        assert_eq!(kb_field(text, "VmHWM"), Some(99 * 1024));
        assert_eq!(kb_field(text, "VmSwap"), None);
    }

    #[test]
    fn per_cpu_window_arithmetic() {
        let a = parse_per_cpu(
            "cpu  200 0 100 700 0 0 0 0 0 0\ncpu0 100 0 50 350 0 0 0 0\ncpu1 100 0 50 350 0 0 0 0 0 0\nintr 1 2\n",
        );
        // Over the window cpu0 gets 100 ticks: 60 user, 10 system, 5 irq, 20 softirq,
        // 5 idle; cpu1 gets 100 ticks: 10 user, 80 idle, 10 iowait.
        let b = parse_per_cpu(
            "cpu  0 0 0 0 0 0 0 0 0 0\ncpu0 160 0 60 355 0 5 20 0\ncpu1 110 0 50 430 10 0 0 0 0 0\n",
        );
        assert_eq!(a.len(), 2, "the all-CPU line is not a CPU");
        let w = cpu_window(&a, &b);
        assert_eq!(w.len(), 2);
        let close = |x: f64, y: f64| (x - y).abs() < 1e-9;
        assert_eq!(w[0].cpu, 0);
        assert!(close(w[0].busy_pct, 95.0), "{:?}", w[0]);
        assert!(close(w[0].user_pct, 60.0) && close(w[0].system_pct, 10.0));
        assert!(close(w[0].irq_pct, 5.0) && close(w[0].softirq_pct, 20.0));
        assert!(close(w[1].busy_pct, 10.0), "iowait is not busy: {:?}", w[1]);
        assert!(close(mean_busy_pct(&w, &[0, 1]).unwrap(), 52.5));
        assert_eq!(mean_busy_pct(&w, &[7]), None);
        // A CPU missing from one sample, or with no ticks in between, is left out.
        let mut c = b.clone();
        c.remove(&1);
        assert_eq!(cpu_window(&a, &c).len(), 1);
        assert!(cpu_window(&b, &b).is_empty());
    }

    #[test]
    fn reads_this_machine_per_cpu() {
        let t = per_cpu_ticks().expect("/proc/stat");
        assert!(!t.is_empty());
        let (busy, total) = machine_cpu_ticks().expect("/proc/stat");
        assert!(busy <= total && total > 0);
    }
}
