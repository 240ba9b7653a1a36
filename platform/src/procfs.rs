//! Readers for what the kernel says about this process and the machine: CPU time,
//! memory, kernel slab, sysctls, versions. Missing files give `None`, never a panic.

use serde::Serialize;
use std::collections::BTreeMap;
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
    let line = text.lines().next()?;
    let nums: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = nums.iter().sum();
    let idle = nums.get(3).copied().unwrap_or(0) + nums.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
