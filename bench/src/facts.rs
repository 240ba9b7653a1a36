//! What the plan needs from the machine, read once: CPUs, memory, RLIMIT_NOFILE (raised
//! first), the port range the loadgens will have, the results folder and its first free
//! stamp, a random suffix, and the hosts' addresses. The only I/O before the plan;
//! `plan::plan` itself is pure.

use crate::options::Options;
use crate::plan::Facts;
use crate::preflight;
use crate::sysctl;
use crate::topology::hosts::ssh::{check_host, host_part};
use crate::topology::placement::Kind;
use crate::topology::setup::NETNS_PORT_RANGE;
use crate::tuning::Tuning;
use anyhow::Context as _;
use std::collections::BTreeMap;
use std::path::Path;

/// Reads the facts of this machine for `o` (tuned as `t` says). `tuned_now`: the
/// tuning is already applied, so the port range is read as it is. Creates the results
/// folder unless this is a dry run (which writes nothing).
pub fn gather(o: &Options, t: &Tuning, tuned_now: bool) -> anyhow::Result<Facts> {
    crate::log(preflight::raise_ulimits());
    let host = c1m_platform::procfs::hostname()
        .split('.')
        .next()
        .unwrap_or("unknown")
        .to_owned();
    let out_is_new = !o.dry_run && !o.out.exists();
    if !o.dry_run {
        std::fs::create_dir_all(&o.out)
            .with_context(|| format!("cannot create {}", o.out.display()))?;
        if preflight::is_root() {
            let sudo_uid = crate::owner::sudo_owner().map(|(uid, _)| uid);
            crate::safe_fs::check_out_dir(&o.out, sudo_uid)?;
        }
    }
    let out = std::fs::canonicalize(&o.out)
        .or_else(|_| std::path::absolute(&o.out))
        .with_context(|| format!("cannot resolve {}", o.out.display()))?;
    // Inside the repository (results/ by default): relative to it.
    let out = std::env::current_dir()
        .ok()
        .and_then(|cwd| out.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(out);
    let stamp = free_stamp(o, &out, &host, &crate::timefmt::local_stamp())?;
    Ok(Facts {
        cpus: preflight::online_cpus(),
        mem_avail_kb: preflight::meminfo_kb("MemAvailable"),
        nofile_soft: preflight::nofile().0,
        port_range: port_range(o, t, tuned_now),
        conns_per_proc: std::env::var("C1M_CONNS_PER_PROC")
            .ok()
            .and_then(|v| v.parse().ok()),
        host,
        out,
        out_is_new,
        stamp,
        suffix: crate::topology::netns::random_suffix()
            .context("reading /dev/urandom for the namespace names")?,
        tuning: t.active().then(|| t.args_text(None)),
        settings: settings(o, t)?,
        addresses: addresses(o),
    })
}

/// `net.ipv4.ip_local_port_range` as the loadgens will have it. A dry run changes
/// nothing: the range is the one tuning would set.
fn port_range(o: &Options, t: &Tuning, tuned_now: bool) -> (u64, u64) {
    let key = "net.ipv4.ip_local_port_range";
    let range = if matches!(o.topo.kind, Kind::Netns | Kind::Hosts) {
        // The loadgens run in new namespaces, with the run's settings or the defaults.
        Some(t.netns_value(key, NETNS_PORT_RANGE))
    } else if tuned_now || !t.active() {
        sysctl::get(key)
    } else {
        sysctl::projected(
            key,
            if t.profile.is_some() { &t.entries } else { &[] },
            &t.sets,
        )
    };
    let mut r = range
        .as_deref()
        .unwrap_or("32768 60999")
        .split_whitespace()
        .map(|v| v.parse::<u64>().unwrap_or(0));
    (r.next().unwrap_or(32768), r.next().unwrap_or(60999))
}

/// The settings a run makes: on hosts the profile's (unless --no-tune) and the
/// `--set`s whether or not this machine's user is root (the hosts decide); else the
/// tuning's.
pub fn settings(o: &Options, t: &Tuning) -> anyhow::Result<Vec<(String, String)>> {
    if o.topo.kind != Kind::Hosts {
        return Ok(t.settings());
    }
    // A profile key a host's kernel lacks (tcp_mem inside a network namespace, conntrack
    // without its module) is skipped there, as on this machine: it goes as `-KEY`. Only
    // the user's own `--set` keys must exist.
    let mut all = if o.tune {
        sysctl::profile_entries(&o.profile)?
            .into_iter()
            .map(|(k, v)| match k.starts_with('-') {
                true => (k, v),
                false => (format!("-{k}"), v),
            })
            .collect()
    } else {
        Vec::new()
    };
    all.extend(o.sets.iter().filter_map(|s| {
        let (k, v) = s.split_once('=')?;
        Some((sysctl::normalize(k), sysctl::normalize(v)))
    }));
    Ok(all)
}

/// hosts: the address of every well-formed host name (DNS here, not in the plan; a
/// malformed name is refused by the plan with its own message).
fn addresses(o: &Options) -> BTreeMap<String, Result<std::net::Ipv4Addr, String>> {
    let topo = &o.topo;
    let clients = topo.client_hosts.as_deref().unwrap_or_default();
    std::iter::once(topo.server_host.as_deref().unwrap_or_default())
        .chain(clients.split(',').map(str::trim))
        .filter(|h| !h.is_empty() && check_host(h).is_ok())
        .map(|h| host_part(h).to_owned())
        .map(|h| {
            let a = crate::topology::hosts::resolve(&h);
            (h, a)
        })
        .collect()
}

/// The first stamp from `base` none of whose names exists in `out` (as anything: a
/// symlink planted at a name counts, and is never followed).
fn free_stamp(o: &Options, out: &Path, host: &str, base: &str) -> anyhow::Result<String> {
    crate::free::pick_stamp(base, |st| {
        result_names(o, st, host)
            .iter()
            .any(|n| out.join(n).symlink_metadata().is_ok())
    })
    .with_context(|| {
        format!(
            "every folder name of this minute is taken in {}: wait a minute",
            out.display()
        )
    })
}

/// The names a run creates in the results folder: each scenario's folder, the headline.
pub fn result_names(o: &Options, stamp: &str, host: &str) -> Vec<String> {
    let mut v: Vec<String> = o
        .scenarios
        .iter()
        .map(|&s| crate::scenarios::scenario_folder(stamp, host, s, o.wire))
        .collect();
    v.push(crate::scenarios::headline_file(stamp, host));
    v
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plan::Scenario;
    use clap::Parser as _;
    use std::path::Path;

    pub(crate) fn options(extra: &[&str]) -> Options {
        let mut v = vec!["c1m-bench", "run"];
        v.extend_from_slice(extra);
        let crate::cli::Cmd::Run(a) = crate::cli::Cli::parse_from(v).cmd else {
            panic!("not a run");
        };
        Options::from_args(&a, &Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).unwrap()
    }

    #[test]
    fn a_link_planted_at_the_next_runs_name_is_passed_over() {
        let t = c1m_machine::tempdir::TempDir::new();
        let elsewhere = t.0.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let out = t.0.join("results");
        std::fs::create_dir(&out).unwrap();
        let o = options(&["--scenarios", "pingpong,hold", "--protocol", "frame"]);
        let base = "2026-01-01-1200";
        // The names carry the protocol suffix, as the folders the run makes do.
        assert_eq!(
            result_names(&o, base, "h"),
            [
                "2026-01-01-1200-h-pingpong-frame",
                "2026-01-01-1200-h-hold-frame",
                "2026-01-01-1200-h-headline.md"
            ]
        );
        // A dangling link and a link to a folder, at two of the names.
        std::os::unix::fs::symlink(
            t.0.join("nowhere"),
            out.join("2026-01-01-1200-h-hold-frame"),
        )
        .unwrap();
        std::os::unix::fs::symlink(&elsewhere, out.join("2026-01-01-1200-2-h-headline.md"))
            .unwrap();
        let stamp = free_stamp(&o, &out, "h", base).unwrap();
        assert_eq!(stamp, "2026-01-01-1200-3");
        // And the folder is made new: a link at its name is an error, not followed.
        let name = crate::scenarios::scenario_folder(base, "h", Scenario::Hold, o.wire);
        assert!(crate::safe_fs::create_dir_new(&out.join(name)).is_err());
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        assert!(!t.0.join("nowhere").exists());
    }
}
