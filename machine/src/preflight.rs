//! The facts that decide what a run can do here, printed before every run; the
//! io_uring check; raising ulimits.

use c1m_platform::procfs;
use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
use std::fmt::Write as _;

pub fn is_root() -> bool {
    crate::statedir::euid() == 0
}

/// An rlimit value as `ulimit` prints it.
pub fn fmt_limit(v: u64) -> String {
    if v == RLIM_INFINITY {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

pub use c1m_platform::limits::nofile;

/// True if this process may raise its RLIMIT_NOFILE hard limit (CAP_SYS_RESOURCE).
/// Tried for real and put back (lowering a hard limit is always allowed).
fn can_raise_nofile_hard() -> bool {
    let (soft, hard) = nofile();
    if hard == RLIM_INFINITY {
        return true;
    }
    if setrlimit(Resource::RLIMIT_NOFILE, soft, hard + 1).is_ok() {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, soft, hard);
        return true;
    }
    false
}

/// `/sys/devices/system/cpu/online`, e.g. `0-1`.
pub fn online_text() -> Option<String> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The online CPUs: from sysfs, else this process's affinity.
pub fn online_cpus() -> Vec<usize> {
    online_text()
        .and_then(|t| c1m_platform::cpus::parse_cpu_list(&t).ok())
        .unwrap_or_else(c1m_platform::cpus::online_cpus)
}

/// A `/proc/meminfo` field in KiB (0 if absent).
pub fn meminfo_kb(field: &str) -> u64 {
    procfs::meminfo_bytes(field).unwrap_or(0) / 1024
}

/// The preflight text, as printed and kept in run.md.
pub fn preflight_text() -> String {
    let disabled = procfs::read_sysctl("kernel.io_uring_disabled");
    let root = if is_root() {
        "yes (uid 0)".to_owned()
    } else {
        format!(
            "no (uid {}): kernel tuning will be skipped",
            crate::statedir::euid()
        )
    };
    let (soft, hard) = nofile();
    let raise = if can_raise_nofile_hard() {
        "hard limit can be raised (CAP_SYS_RESOURCE)"
    } else if soft != hard {
        "soft can be raised to the hard limit; hard cannot"
    } else {
        "cannot be raised (no CAP_SYS_RESOURCE): fd-per-connection backends use several processes"
    };
    let memlock = memlock_kib();
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let uring = match disabled.as_deref() {
        Some("0") => "enabled (kernel.io_uring_disabled = 0)".to_owned(),
        Some("1") => {
            "restricted to root / io_uring_group (kernel.io_uring_disabled = 1)".to_owned()
        }
        Some("2") => {
            "DISABLED (kernel.io_uring_disabled = 2): uring backends cannot run".to_owned()
        }
        Some(other) => other.to_owned(),
        None => "absent (io_uring allowed)".to_owned(),
    };
    let mut t = String::from("preflight:\n");
    // Writing to a String cannot fail; results are ignored on purpose.
    let _ = writeln!(t, "  kernel              {}", procfs::kernel_release());
    let _ = writeln!(t, "  io_uring            {uring}");
    let _ = writeln!(t, "  root                {root}");
    let _ = writeln!(
        t,
        "  RLIMIT_NOFILE       soft {}, hard {}: {raise}",
        fmt_limit(soft),
        fmt_limit(hard)
    );
    let _ = writeln!(t, "  RLIMIT_MEMLOCK      {memlock} KiB");
    let _ = writeln!(
        t,
        "  fs.nr_open          {}",
        procfs::read_sysctl("fs.nr_open").unwrap_or_else(|| "?".into())
    );
    let _ = writeln!(
        t,
        "  CPUs online         {} ({})",
        c1m_platform::cpus::online_cpus().len(),
        online_text().unwrap_or_else(|| "?".into())
    );
    let _ = writeln!(
        t,
        "  memory              {} MiB total, {} MiB available",
        meminfo_kb("MemTotal") / 1024,
        meminfo_kb("MemAvailable") / 1024
    );
    let _ = writeln!(t, "  load average        {load} (other processes share the CPUs: compare CPU per message, not msgs/s)");
    t
}

/// Fails when io_uring is not available to this process: the loadgen and the uring
/// backend need it.
pub fn check_uring() -> anyhow::Result<()> {
    let d = procfs::read_sysctl("kernel.io_uring_disabled").unwrap_or_else(|| "0".into());
    if d == "2" || (d == "1" && !is_root()) {
        anyhow::bail!(
            "io_uring is not available to this process (kernel.io_uring_disabled = {d}): the loadgen and the uring backends need it; set it to 0 as root"
        );
    }
    Ok(())
}

/// Raises RLIMIT_NOFILE (hard up to min(fs.nr_open, 1049600) where allowed, soft to the
/// hard limit) and RLIMIT_MEMLOCK (soft to hard). Per process and inherited by the
/// children, so nothing to restore. Returns the log line.
pub fn raise_ulimits() -> String {
    let nr_open = procfs::read_sysctl("fs.nr_open")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1_048_576);
    let want = nr_open.min(1_049_600);
    let (_, hard) = nofile();
    c1m_platform::limits::raise_nofile(want.max(hard));
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_MEMLOCK) {
        let _ = setrlimit(Resource::RLIMIT_MEMLOCK, hard, hard);
    }
    let (soft, hard) = nofile();
    let memlock = memlock_kib();
    format!(
        "ulimit -n now {} (hard {}), memlock {memlock} KiB",
        fmt_limit(soft),
        fmt_limit(hard)
    )
}

/// The soft RLIMIT_MEMLOCK in KiB, as text ("unlimited", "?" when unreadable).
fn memlock_kib() -> String {
    getrlimit(Resource::RLIMIT_MEMLOCK)
        .map(|(s, _)| {
            if s == RLIM_INFINITY {
                "unlimited".into()
            } else {
                (s / 1024).to_string()
            }
        })
        .unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preflight_lists_the_facts() {
        let t = preflight_text();
        for k in [
            "kernel",
            "io_uring",
            "root",
            "RLIMIT_NOFILE",
            "CPUs online",
            "memory",
            "load average",
        ] {
            assert!(t.contains(&format!("  {k}")), "{k} missing:\n{t}");
        }
        assert!(!online_cpus().is_empty());
        assert!(meminfo_kb("MemTotal") > 0);
        assert_eq!(fmt_limit(RLIM_INFINITY), "unlimited");
    }
}
