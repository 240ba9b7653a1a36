//! What one machine allows (file descriptors, ports, memory, CPUs) and the bounds a
//! case runs under (deadlines, grace, drain).

use super::{Backend, Scale, PORT_HI, PORT_LO};

pub use c1m_topology::cpus::{split_cpus, CpuSplit};

/// The hold's memory model: what one held loopback connection costs on this machine,
/// both ends, in one place with the figures it came from.
pub struct MemoryModel;

impl MemoryModel {
    /// Kernel: `Slab` of /proc/meminfo grew 9.14 KiB per connection at 1,000,000 held
    /// (uring, idle connections parked; results/2026-12-03-1835-vm-hold, every variant
    /// 9.13-9.15 KiB). Slab pages, not only objects: slabinfo's objects were 8.56 KiB.
    pub const KERNEL_BYTES: u64 = 9_360;
    /// The loadgen: its RSS grew ~190 B per connection holding 100,000 (22 MB to 41 MB
    /// VmHWM); 512 B leaves room for what the measurement did not see.
    pub const LOADGEN_BYTES: u64 = 512;
    /// The share of MemAvailable a hold may plan to fill: the rest is for page tables,
    /// the processes' fixed memory and whatever else the machine runs.
    pub const SHARE_PCT: u64 = 90;

    /// Bytes per connection: kernel, loadgen and `b`'s server.
    pub fn bytes_per_conn(b: Backend) -> u64 {
        Self::KERNEL_BYTES + Self::LOADGEN_BYTES + b.server_bytes_per_conn()
    }
}

fn kib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}

/// What one machine allows, after tuning and raising ulimits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub nofile_soft: u64,
    /// Connections per (source address, server port) pair.
    pub ports_per_pair: u64,
    /// fds a server process may use for connections: RLIMIT_NOFILE less 256.
    pub fd_cap: u64,
    /// Connections one fd-per-connection server process is given.
    pub conns_per_proc: u64,
    /// Server processes at most: one port each in PORT_LO..=PORT_HI.
    pub max_procs: u64,
    pub mem_avail_kb: u64,
}

impl Limits {
    /// `port_range` is `net.ipv4.ip_local_port_range`. connect() looks for a free port
    /// among those of one parity first (half the range) and scans all of them before it
    /// tries the other half, so past about half the range every connect() walks ~30k
    /// ports and the ramp crawls: stay at 42% of the range (about 27k when tuned).
    /// `conns_per_proc` overrides the 90% of the fd cap (C1M_CONNS_PER_PROC, for tests).
    pub fn new(
        nofile_soft: u64,
        port_range: (u64, u64),
        mem_avail_kb: u64,
        conns_per_proc: Option<u64>,
    ) -> Limits {
        let (lo, hi) = port_range;
        let fd_cap = nofile_soft.saturating_sub(256);
        Limits {
            nofile_soft,
            ports_per_pair: (hi.saturating_sub(lo) + 1) * 42 / 100,
            fd_cap,
            conns_per_proc: conns_per_proc.unwrap_or(fd_cap * 9 / 10).max(1),
            max_procs: u64::from(PORT_HI - PORT_LO + 1),
            mem_avail_kb,
        }
    }

    /// Server processes needed for `n` connections.
    pub fn procs_for(&self, b: Backend, n: u64) -> u64 {
        if !b.fd_bound() {
            return 1;
        }
        n.div_ceil(self.conns_per_proc).clamp(1, self.max_procs)
    }

    /// Connections that fit in [`MemoryModel::SHARE_PCT`] of the available memory at
    /// [`MemoryModel::bytes_per_conn`] each.
    pub fn mem_cap(&self, b: Backend) -> u64 {
        let budget = self.mem_avail_kb * 1024 / 100 * MemoryModel::SHARE_PCT;
        budget / MemoryModel::bytes_per_conn(b) / 1000 * 1000
    }

    /// `n`, or less: what fits in memory, and for fd-bound backends what `max_procs`
    /// processes hold.
    pub fn conns_for(&self, b: Backend, n: u64) -> u64 {
        let mut n = n.min(self.mem_cap(b));
        if b.fd_bound() {
            n = n.min(self.max_procs * self.conns_per_proc);
        }
        n
    }

    /// Why [`Limits::conns_for`] capped `b` at `n`, if it did.
    pub fn cap_reason(&self, b: Backend, n: u64) -> Option<String> {
        let cap = self.mem_cap(b);
        if n > cap {
            Some(format!(
                "memory: {cap} connections fit in {}% of MemAvailable ({} MiB) at ~{:.1} KiB each (kernel {:.2} + loadgen {:.2} + this server {:.2}, as measured: see MemoryModel)",
                MemoryModel::SHARE_PCT,
                self.mem_avail_kb / 1024,
                kib(MemoryModel::bytes_per_conn(b)),
                kib(MemoryModel::KERNEL_BYTES),
                kib(MemoryModel::LOADGEN_BYTES),
                kib(b.server_bytes_per_conn())
            ))
        } else if b.fd_bound() && n > self.max_procs * self.conns_per_proc {
            Some(format!(
                "{} processes (ports {PORT_LO}-{PORT_HI}) x {} connections (RLIMIT_NOFILE {} less headroom)",
                self.max_procs, self.conns_per_proc, self.nofile_soft
            ))
        } else {
            None
        }
    }

    /// The loadgen's `--source-ips` for `n` connections over `targets` server ports, or
    /// None when one address will do.
    pub fn source_ips_for(&self, n: u64, targets: u64) -> Result<Option<String>, String> {
        let per_target = n.div_ceil(targets.max(1));
        let k = per_target.div_ceil(self.ports_per_pair.max(1));
        if k <= 1 {
            return Ok(None);
        }
        if k > 250 {
            return Err(format!(
                "{n} connections need {k} source addresses; more than 127.0.0.2-127.0.0.251"
            ));
        }
        Ok(Some(format!("127.0.0.2-127.0.0.{}", k + 1)))
    }

    /// `--max-conns` of each server process of a case: the given one (uring hold) or an
    /// equal share when several processes run, plus 2% (at least 64) headroom, at most
    /// the fd cap.
    pub fn server_max_conns(&self, conns: u64, procs: u64, given: Option<u64>) -> Option<u64> {
        if procs <= 1 {
            return given;
        }
        let share = given.unwrap_or_else(|| conns.div_ceil(procs));
        Some((share + (share / 50).max(64)).min(self.fd_cap))
    }
}

/// `--max-conns` for the uring server in the hold scenario: it adds rings past one
/// table's RLIMIT_NOFILE slots itself when told how many connections to expect.
pub fn uring_hold_max_conns(n: u64) -> u64 {
    n + n / 50 + 64
}

/// Seconds a loadgen may run before it is stopped: the run, warm-up and a second, plus
/// a ramp allowance (1M connects take 20-60 s here; the previous teardown may still be
/// eating CPU).
pub fn loadgen_deadline_s(conns: u64, hold: bool, scale: &Scale) -> u64 {
    let (run, warm) = if hold {
        (&scale.hold_dur, &scale.hold_warm)
    } else {
        (&scale.dur, &scale.warm)
    };
    60 + conns / 5000 + (run.value + warm.value + 1.0).trunc() as u64
}

/// How long the servers of a case get to exit after SIGTERM before SIGKILL: 15 s, plus
/// a second per 25,000 connections (the kernel tears down about 40-170k sockets a second
/// here, and fd-bound servers close theirs before they exit).
pub fn server_stop_grace(conns: u64) -> std::time::Duration {
    std::time::Duration::from_secs(15 + conns / 25_000)
}

/// TCP sockets in use below which a hold run's teardown is done: 98% of its 2 x conns
/// sockets are gone.
pub fn hold_drain_target(inuse_before: u64, conns: u64) -> u64 {
    inuse_before + (conns / 25).max(100)
}
