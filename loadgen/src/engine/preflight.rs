//! Before the first connect: does the request fit this machine? Ports per (source,
//! target) pair, fixed-file slots and rings against `RLIMIT_NOFILE`, memory against
//! `MemAvailable`, socket memory against `net.ipv4.tcp_mem`. A request that cannot fit
//! stops here with what to change (exit status 2), not half-way through a ramp.

use super::plan::{Mode, Plan};
use super::proto::{http_response::ResponseReader, Response, FRAME_HEADER};
use crate::cli::Protocol;
use anyhow::bail;
use c1m_platform::procfs;

/// Kernel memory per connection, measured here (MACHINE.md): one socket ~3.8 KB; on
/// loopback both ends live on this machine.
const KERNEL_BYTES_PER_SOCKET: u64 = 3_800;
/// What the kernel charges per queued skb beyond its data (truesize overhead).
const SKB_OVERHEAD: u64 = 768;
const PAGE: u64 = 4096;
/// One probe of a candidate port in connect() once the even ports are taken (measured
/// here: about 180 connects/s with 32k ports to probe each).
const SECONDS_PER_PORT_PROBE: f64 = 150e-9;
/// c1m-server's default `--max-frame` (the wire contract).
const SERVER_MAX_FRAME: usize = 65_536;
/// Refuse a ramp that would spend longer than this probing ports.
const MAX_PORT_SCAN_S: f64 = 30.0;

/// "--source-ips A-B (N addresses)" for `n` addresses from 127.0.0.2 on loopback.
fn suggest_sources(n: u64, loopback: bool) -> String {
    let n = n.max(2);
    if loopback {
        let first = u32::from(std::net::Ipv4Addr::new(127, 0, 0, 2));
        let last = std::net::Ipv4Addr::from(first + n as u32 - 1);
        format!("--source-ips 127.0.0.2-{last} ({n} addresses or more)")
    } else {
        format!("--source-ips with {n} or more local addresses")
    }
}

/// The local port range (`net.ipv4.ip_local_port_range`) as (low, high).
pub fn port_range() -> (u32, u32) {
    procfs::read_sysctl("net.ipv4.ip_local_port_range")
        .and_then(|v| {
            let mut it = v.split_whitespace().filter_map(|x| x.parse::<u32>().ok());
            Some((it.next()?, it.next()?))
        })
        .unwrap_or((32768, 60999))
}

/// Checks `plan` against the machine. Ok: notes worth printing; Err: what to change.
pub fn check(plan: &Plan, nofile_soft: u64) -> anyhow::Result<Vec<String>> {
    check_with_ports(plan, nofile_soft, port_range())
}

fn check_with_ports(
    plan: &Plan,
    nofile_soft: u64,
    (lo, hi): (u32, u32),
) -> anyhow::Result<Vec<String>> {
    let mut notes = Vec::new();
    let total = plan.total_connections() as u64;

    // Ports: one (source address, server address:port) pair reaches at most the local
    // port range; and connect() gets slow well before that: it tries the even ports of
    // the range first (odd ones are left for bind()) and, once those are taken for the
    // pair, scans all of them again for every further connection.
    let ports = u64::from(hi.saturating_sub(lo)) + 1;
    let sources = plan.sources.len().max(1) as u64;
    let targets = plan.targets.len() as u64;
    let pairs = sources * targets;
    let per_pair = total.div_ceil(pairs);
    let fast = ports / 2;
    let loopback = plan.targets.iter().all(|t| t.ip().is_loopback());
    if per_pair > ports {
        bail!(
            "{total} connections over {pairs} (source, target) pair(s) is {per_pair} per pair, but \
             net.ipv4.ip_local_port_range ({lo}-{hi}) gives only {ports} ports per pair: add {}, \
             more --target ports, or widen the range (sysctl -w \
             net.ipv4.ip_local_port_range='1024 65535')",
            suggest_sources(total.div_ceil(fast * targets), loopback)
        );
    }
    if per_pair > fast {
        let scans = pairs * (per_pair - fast) * fast;
        let secs = scans as f64 * SECONDS_PER_PORT_PROBE;
        let advice = format!(
            "{per_pair} connections per (source, target) pair is more than half of the {ports} \
             local ports ({lo}-{hi}); past that point connect() probes about {fast} ports for \
             every new connection (the kernel keeps odd ports for bind()), about {secs:.0} s of \
             CPU for this ramp: add {}",
            suggest_sources(total.div_ceil(fast * targets), loopback)
        );
        if secs > MAX_PORT_SCAN_S {
            bail!("{advice}");
        }
        notes.push(advice);
    }
    if plan.wire.protocol() == Protocol::Frame
        && plan.wire.request_len() - FRAME_HEADER > SERVER_MAX_FRAME
    {
        notes.push(format!(
            "frame payloads of {} bytes exceed c1m-server's default --max-frame {SERVER_MAX_FRAME}: \
             start the server with --max-frame {} or more, or it closes every connection",
            plan.wire.request_len() - FRAME_HEADER,
            plan.wire.request_len() - FRAME_HEADER
        ));
    }
    if plan.mode == Mode::Churn && plan.sources.is_empty() {
        notes.push(
            "churn leaves sockets in TIME_WAIT on the loadgen side; if connects fail with \
             EADDRNOTAVAIL, add --source-ips or set net.ipv4.tcp_tw_reuse=1"
                .into(),
        );
    }

    // Descriptors: sockets live in fixed-file tables (direct descriptors), one ring per
    // loop, each with at most RLIMIT_NOFILE slots; only the rings themselves are fds.
    let loops = plan.loops as u64;
    if loops + 64 > nofile_soft {
        bail!(
            "{total} connections need {loops} rings of {} fixed-file slots, and each ring is an \
             open file: RLIMIT_NOFILE {nofile_soft} is too low; raise it (ulimit -n) or use --procs",
            plan.slots_per_ring
        );
    }
    if plan.connections as u64 + 64 > nofile_soft {
        notes.push(format!(
            "{} connections exceed RLIMIT_NOFILE {nofile_soft}: using direct descriptors \
             ({loops} io_uring rings of up to {} fixed-file slots; a few ordinary fds at a time)",
            plan.connections, plan.slots_per_ring
        ));
    }

    // Memory: kernel sockets, queued data, and the loadgen's own per-connection state.
    let sockets_here = if loopback { 2 } else { 1 };
    let kernel = total * sockets_here * KERNEL_BYTES_PER_SOCKET;
    let in_flight = match plan.mode {
        Mode::Closed => plan.pipeline as u64,
        Mode::Rate(_) => plan.inflight_cap as u64,
        Mode::Heartbeat(_) | Mode::Churn => 1,
    };
    // Bytes of one exchange queued in a socket: the larger of request and response.
    let exchange = plan.wire.request_len().max(plan.wire.response_len()) as u64;
    let queued = match plan.mode {
        Mode::Closed | Mode::Rate(_) => total * (in_flight * exchange + SKB_OVERHEAD),
        Mode::Heartbeat(_) | Mode::Churn => 0,
    };
    let reader = match plan.wire.response() {
        Response::Http { .. } => std::mem::size_of::<ResponseReader>() as u64,
        _ => 0,
    };
    let own_per_conn = 96 + reader + (plan.inflight_cap * plan.wire.request_len()) as u64;
    let own = total * own_per_conn + loops * (8 << 20);
    let need = kernel + queued + own;
    if let Some(avail) = procfs::meminfo_bytes("MemAvailable") {
        if need > avail / 10 * 9 {
            bail!(
                "{total} connections need about {:.1} GiB ({:.1} kernel sockets{}, {:.1} queued \
                 data, {:.1} loadgen) but MemAvailable is {:.1} GiB: lower --connections, \
                 --pipeline or --size, or free memory",
                gib(need),
                gib(kernel),
                if loopback { " on both ends" } else { "" },
                gib(queued),
                gib(own),
                gib(avail)
            );
        }
    }

    // tcp_mem: every socket holding data is charged at least a page; past the middle
    // value the kernel enters memory pressure and throttles every socket.
    if let Some((_, pressure, high)) = tcp_mem() {
        let per_socket_pages = (in_flight * exchange + SKB_OVERHEAD).div_ceil(PAGE).max(1);
        let pages = match plan.mode {
            Mode::Closed => total * per_socket_pages,
            _ => 0,
        };
        if pages > pressure {
            bail!(
                "{total} connections with data in flight need about {pages} pages of socket \
                 memory, beyond net.ipv4.tcp_mem pressure ({pressure}; max {high}): raise it, \
                 e.g. sysctl -w net.ipv4.tcp_mem='{} {} {}', or use fewer connections",
                pages * 2,
                pages * 3,
                pages * 4
            );
        }
    }
    Ok(notes)
}

fn tcp_mem() -> Option<(u64, u64, u64)> {
    let v = procfs::read_sysctl("net.ipv4.tcp_mem")?;
    let mut it = v.split_whitespace().filter_map(|x| x.parse::<u64>().ok());
    Some((it.next()?, it.next()?, it.next()?))
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn plan(extra: &[&str]) -> Plan {
        let mut argv = vec!["c1m-loadgen", "run", "--target", "127.0.0.1:7000"];
        argv.extend_from_slice(extra);
        let Command::Run(a) = Cli::parse_from(argv).command else {
            unreachable!()
        };
        Plan::from_args(&a, 20000).unwrap()
    }

    #[test]
    fn too_many_per_pair_suggests_source_ips() {
        let (lo, hi) = port_range();
        let n = (hi - lo + 2).to_string();
        let err = check(&plan(&["--connections", &n, "--heartbeat", "10"]), 20000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--source-ips"), "{err}");
        let ok = check(
            &plan(&[
                "--connections",
                &n,
                "--heartbeat",
                "10",
                "--source-ips",
                "127.0.0.2-127.0.0.3",
            ]),
            20000,
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn more_than_half_the_ports_per_pair_is_refused_when_slow() {
        // 90% of a wide range on one pair: minutes of port probing.
        let err = check_with_ports(
            &plan(&["--connections", "58000", "--heartbeat", "10"]),
            20000,
            (1024, 65535),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("half"), "{err}");
        assert!(err.contains("--source-ips 127.0.0.2-"), "{err}");
    }

    #[test]
    fn suggested_sources_cross_octets() {
        assert!(suggest_sources(300, true).contains("127.0.1.45"));
    }

    #[test]
    fn memory_beyond_available_is_refused() {
        // Twice what fits: two loopback sockets of ~3.8 KB per connection.
        let avail = procfs::meminfo_bytes("MemAvailable").unwrap();
        let conns = avail / KERNEL_BYTES_PER_SOCKET + 1;
        // Enough sources that ports are not what stops it (5000 per pair).
        let last = std::net::Ipv4Addr::from(
            u32::from(std::net::Ipv4Addr::new(127, 0, 0, 2)) + (conns / 5000) as u32,
        );
        let err = check_with_ports(
            &plan(&[
                "--connections",
                &conns.to_string(),
                "--heartbeat",
                "10",
                "--source-ips",
                &format!("127.0.0.2-{last}"),
            ]),
            20000,
            (1024, 65535),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("MemAvailable"), "{err}");
    }

    #[test]
    fn frames_over_the_servers_default_bound_are_noted() {
        let notes = check(&plan(&["--protocol", "frame", "--size", "70000"]), 20000).unwrap();
        assert!(
            notes.iter().any(|n| n.contains("--max-frame 70000")),
            "{notes:?}"
        );
        let notes = check(&plan(&["--protocol", "frame", "--size", "65536"]), 20000).unwrap();
        assert!(
            !notes.iter().any(|n| n.contains("--max-frame")),
            "{notes:?}"
        );
    }

    #[test]
    fn direct_descriptors_are_noted() {
        let notes = check(&plan(&["--connections", "25000"]), 20000).unwrap();
        assert!(
            notes.iter().any(|n| n.contains("direct descriptors")),
            "{notes:?}"
        );
    }
}
