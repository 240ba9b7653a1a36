//! The validated run: what the command line asked for, checked, and cut into shares per
//! event loop. Everything that is wrong with the input is reported here, before any
//! socket is opened (exit status 2).

use super::proto::{self, Wire};
use crate::cli::{Arrivals, BatchWaits, Protocol, RunArgs};
use anyhow::{bail, Context};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Most source addresses a range may expand to.
const MAX_SOURCES: usize = 65_536;

/// The workload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// `--pipeline` messages in flight per connection, the next sent when one returns.
    Closed,
    /// Open loop: this process's messages per second, in all.
    Rate(f64),
    /// Each connection sends one message every this many seconds.
    Heartbeat(f64),
    /// Connect, one exchange, close; again.
    Churn,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Closed => "closed",
            Mode::Rate(_) => "rate",
            Mode::Heartbeat(_) => "heartbeat",
            Mode::Churn => "churn",
        }
    }

    /// True when messages go out on a schedule and latency counts from the intended time.
    pub fn scheduled(self) -> bool {
        matches!(self, Mode::Rate(_) | Mode::Heartbeat(_))
    }
}

/// This process's part of the run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub targets: Vec<SocketAddr>,
    /// Source addresses (empty: let the kernel pick).
    pub sources: Vec<IpAddr>,
    /// Connections of this process.
    pub connections: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    /// The protocol and its sizes: what a request is, what its response must be.
    pub wire: Wire,
    pub pipeline: usize,
    pub mode: Mode,
    /// Connection attempts per second for this process.
    pub connect_rate: Option<f64>,
    pub cpus: Vec<usize>,
    /// `--server-cpus` (empty: not given).
    pub server_cpus: Vec<usize>,
    /// Event loops (one io_uring each); more than CPUs when one ring's fixed-file table
    /// cannot hold a CPU's share.
    pub loops: usize,
    /// Worker threads, one per CPU (fewer when there are fewer loops); thread `t` drives
    /// loops `t, t + threads, ...`.
    pub threads: usize,
    /// Fixed-file slots one ring may register (`RLIMIT_NOFILE`).
    pub slots_per_ring: usize,
    /// Messages in flight per connection at most (the per-connection send ring).
    pub inflight_cap: usize,
    /// `(index, of)` when this process is one of `--procs` workers.
    pub worker: Option<(usize, usize)>,
    /// Open loop: how send times are spaced, and the seed of a Poisson schedule.
    pub arrivals: Arrivals,
    pub seed: u64,
    /// Closed loop: may a wakeup wait for several echoes.
    pub batch_waits: BatchWaits,
    /// Park the recv of a connection quiet this long (ms); None: never.
    pub idle_after_ms: Option<u32>,
}

/// Parses `--source-ips`: `127.0.0.2-127.0.0.40` or `a,b,c` (ranges inside lists too).
pub fn parse_sources(text: &str) -> anyhow::Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((lo, hi)) = part.split_once('-') {
            let lo: Ipv4Addr = lo.trim().parse().with_context(|| {
                format!("`{part}`: a range is two IPv4 addresses, e.g. 127.0.0.2-127.0.0.40")
            })?;
            let hi: Ipv4Addr = hi.trim().parse().with_context(|| {
                format!("`{part}`: a range is two IPv4 addresses, e.g. 127.0.0.2-127.0.0.40")
            })?;
            let (lo, hi) = (u32::from(lo), u32::from(hi));
            if lo > hi {
                bail!("source range `{part}` runs backwards: write the lower address first");
            }
            if (hi - lo) as usize >= MAX_SOURCES {
                bail!("source range `{part}` holds more than {MAX_SOURCES} addresses");
            }
            out.extend((lo..=hi).map(|a| IpAddr::V4(Ipv4Addr::from(a))));
        } else {
            out.push(part.parse::<IpAddr>().with_context(|| {
                format!("`{part}` is not an IP address (use a range 127.0.0.2-127.0.0.40 or a list a,b,c)")
            })?);
        }
    }
    if out.is_empty() {
        bail!("--source-ips is empty: give a range 127.0.0.2-127.0.0.40 or a list a,b,c");
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `--protocol` with `--size`, `--reply-size` and `--body-size`, checked together.
pub fn wire_from_args(args: &RunArgs) -> anyhow::Result<Wire> {
    let p = args.protocol;
    if args.reply_size.is_some() && p != Protocol::Frame {
        bail!(
            "--reply-size is the payload size of every response frame, for --protocol frame \
             only: add --protocol frame, or drop --reply-size{}",
            if p == Protocol::Http {
                " (http: --body-size sets the response body)"
            } else {
                ""
            }
        );
    }
    if args.body_size.is_some() && p != Protocol::Http {
        bail!(
            "--body-size is the body length of every http response, for --protocol http only: \
             add --protocol http, or drop --body-size{}",
            if p == Protocol::Frame {
                " (frame: --reply-size sets the response payload)"
            } else {
                ""
            }
        );
    }
    if p == Protocol::Http {
        if let Some(size) = args.size {
            bail!(
                "--size {size} does not apply to --protocol http: every request is the same \
                 {}-byte GET; drop --size (--body-size sets the response body)",
                proto::http::REQUEST_LEN
            );
        }
        let body = args.body_size.unwrap_or(proto::DEFAULT_BODY_SIZE);
        if body > proto::MAX_SIZE {
            bail!("--body-size {body} is larger than 1 MiB: use a smaller body");
        }
        return Ok(Wire::http(body));
    }
    let size = args.size.unwrap_or(proto::DEFAULT_SIZE);
    if size < proto::MIN_SIZE {
        match p {
            Protocol::Frame => bail!(
                "--size {size} is too small for --protocol frame: --size is the frame's payload, \
                 which carries a sequence number and a timestamp; use --size {} or more (a \
                 request is 4 + size bytes on the wire)",
                proto::MIN_SIZE
            ),
            _ => bail!(
                "--size {size} is too small: a message carries a sequence number and a \
                 timestamp, use --size {} or more",
                proto::MIN_SIZE
            ),
        }
    }
    if size > proto::MAX_SIZE {
        bail!("--size {size} is larger than 1 MiB: use a smaller message");
    }
    if let Some(n) = args.reply_size {
        if n > proto::MAX_SIZE {
            bail!("--reply-size {n} is larger than 1 MiB: use a smaller reply");
        }
    }
    Ok(match p {
        Protocol::Frame => Wire::frame(size, args.reply_size),
        _ => Wire::echo(size),
    })
}

/// Splits `total` into `parts` shares that differ by at most one.
pub fn share(total: usize, parts: usize, index: usize) -> usize {
    total / parts + usize::from(index < total % parts)
}

impl Plan {
    /// Checks the command line and works out loops and shares. `slots_per_ring` is the
    /// fixed-file table size one ring may have (the soft `RLIMIT_NOFILE`).
    pub fn from_args(args: &RunArgs, slots_per_ring: usize) -> anyhow::Result<Plan> {
        if args.connections == 0 {
            bail!("--connections must be at least 1");
        }
        if !(args.duration > 0.0 && args.duration.is_finite()) {
            bail!("--duration must be a positive number of seconds");
        }
        if !(args.warmup >= 0.0 && args.warmup.is_finite()) {
            bail!("--warmup must be zero or a positive number of seconds");
        }
        let wire = wire_from_args(args)?;
        if args.pipeline == 0 {
            bail!("--pipeline must be at least 1");
        }
        if args.pipeline > 4096 {
            bail!(
                "--pipeline {} is more than 4096 messages in flight per connection",
                args.pipeline
            );
        }
        if args.procs == 0 {
            bail!("--procs must be at least 1");
        }
        if args.procs > args.connections {
            bail!(
                "--procs {} is more than --connections {}: every worker needs a connection",
                args.procs,
                args.connections
            );
        }
        for t in &args.targets {
            if t.ip().is_unspecified() {
                bail!("--target {t}: {} is not an address to connect to; give the server's address, e.g. 127.0.0.1:{}", t.ip(), t.port());
            }
            if t.port() == 0 {
                bail!("--target {t}: port 0 cannot be connected to; give the port the server printed in `listening on`");
            }
        }
        let mode = match (args.rate, args.heartbeat, args.churn) {
            (Some(r), _, _) => {
                if !(r > 0.0 && r.is_finite()) {
                    bail!("--rate must be a positive number of messages per second");
                }
                Mode::Rate(r)
            }
            (_, Some(h), _) => {
                if !(h > 0.0 && h.is_finite()) {
                    bail!("--heartbeat must be a positive number of seconds");
                }
                Mode::Heartbeat(h)
            }
            (_, _, true) => Mode::Churn,
            _ => Mode::Closed,
        };
        if let Some(r) = args.connect_rate {
            if !(r > 0.0 && r.is_finite()) {
                bail!("--connect-rate must be a positive number of connections per second");
            }
        }
        let sources = match &args.source_ips {
            Some(text) => parse_sources(text)?,
            None => Vec::new(),
        };
        for s in &sources {
            if args.targets.iter().any(|t| t.is_ipv4() != s.is_ipv4()) {
                bail!("source address {s} and the targets are of different IP families: use IPv4 sources for IPv4 targets");
            }
        }
        let cpus = c1m_platform::cpus::resolve_cpus(args.cpus.as_deref())
            .map_err(|e| anyhow::anyhow!("--cpus: {e}"))?;
        let server_cpus = match args.server_cpus.as_deref() {
            Some(list) => c1m_platform::cpus::parse_cpu_list(list)
                .map_err(|e| anyhow::anyhow!("--server-cpus: {e}"))?,
            None => Vec::new(),
        };
        let slots_per_ring = slots_per_ring.max(1);
        let loops = cpus
            .len()
            .max(args.connections.div_ceil(slots_per_ring))
            .min(args.connections);
        let inflight_cap = match mode {
            Mode::Closed => args.pipeline,
            // Open loop: room for bursts when the server falls behind, bounded so the
            // send rings of many connections stay within about 256 MiB.
            Mode::Rate(_) => {
                let budget = (256usize << 20) / (args.connections * wire.request_len()).max(1);
                budget.clamp(1, 64).max(args.pipeline)
            }
            // One beat out, one more if the previous echo is late.
            Mode::Heartbeat(_) => 2,
            Mode::Churn => 1,
        };
        let worker = args.worker.map(|i| (i, args.procs.max(1)));
        Ok(Plan {
            threads: cpus.len().min(loops),
            targets: args.targets.clone(),
            sources,
            connections: args.connections,
            duration_s: args.duration,
            warmup_s: args.warmup,
            wire,
            pipeline: args.pipeline,
            mode,
            connect_rate: args.connect_rate,
            cpus,
            server_cpus,
            loops,
            slots_per_ring,
            inflight_cap,
            worker,
            arrivals: args.arrivals,
            // Each worker process its own stream of arrivals.
            seed: args.seed ^ args.worker.unwrap_or(0) as u64,
            batch_waits: args.batch_waits,
            idle_after_ms: Some(args.idle_after_ms).filter(|&ms| ms > 0),
        })
    }

    /// Connections of loop `l`.
    pub fn loop_connections(&self, l: usize) -> usize {
        share(self.connections, self.loops, l)
    }

    /// CPU thread `t` is pinned to.
    pub fn thread_cpu(&self, t: usize) -> usize {
        self.cpus[t % self.cpus.len()]
    }

    /// The loops thread `t` drives (round-robin over the threads).
    pub fn thread_loops(&self, t: usize) -> Vec<usize> {
        (t..self.loops).step_by(self.threads.max(1)).collect()
    }

    /// Connections across all worker processes.
    pub fn total_connections(&self) -> usize {
        match self.worker {
            Some((_, procs)) => self.connections * procs,
            None => self.connections,
        }
    }

    /// Global index of connection `j` of loop `l`: loops take every L-th connection of the
    /// process, processes every P-th of the run, so (source, target) pairs and heartbeat
    /// offsets interleave evenly.
    pub fn global_index(&self, l: usize, j: usize) -> usize {
        let p = j * self.loops + l;
        match self.worker {
            Some((w, procs)) => p * procs + w,
            None => p,
        }
    }

    /// (target, source) of the connection with global index `g`: round-robin over all
    /// (source, target) pairs.
    pub fn endpoints(&self, g: usize) -> (SocketAddr, Option<IpAddr>) {
        let nt = self.targets.len();
        let ns = self.sources.len().max(1);
        let pair = g % (nt * ns);
        let target = self.targets[pair % nt];
        let source = self.sources.get(pair / nt).copied();
        (target, source)
    }

    /// Messages per second loop `l` sends in rate mode.
    pub fn loop_rate(&self, l: usize) -> f64 {
        match self.mode {
            Mode::Rate(r) => r * self.loop_connections(l) as f64 / self.connections as f64,
            _ => 0.0,
        }
    }

    /// Connection attempts per second of loop `l`.
    pub fn loop_connect_rate(&self, l: usize) -> Option<f64> {
        self.connect_rate
            .map(|r| r * self.loop_connections(l) as f64 / self.connections as f64)
    }

    /// Loop `l`'s position among all loops of all processes, 0..1, to stagger schedules.
    pub fn loop_phase(&self, l: usize) -> f64 {
        let (w, procs) = self.worker.unwrap_or((0, 1));
        (l * procs + w) as f64 / (self.loops * procs) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::test_run_args as args;

    #[test]
    fn parses_source_ranges_and_lists() {
        let s = parse_sources("127.0.0.2-127.0.0.4").unwrap();
        assert_eq!(s.len(), 3);
        let s = parse_sources("127.0.0.9, 127.0.0.2-127.0.0.3").unwrap();
        assert_eq!(s.len(), 3);
        assert!(parse_sources("127.0.0.4-127.0.0.2").is_err());
        assert!(parse_sources("nope").is_err());
    }

    #[test]
    fn rejects_bad_input_with_advice() {
        let err = |a: &[&str]| Plan::from_args(&args(a), 20000).unwrap_err().to_string();
        assert!(err(&["--size", "8"]).contains("--size 16"));
        assert!(err(&["--connections", "0"]).contains("at least 1"));
        assert!(err(&["--duration", "0"]).contains("positive"));
        let mut a = args(&[]);
        a.targets = vec!["0.0.0.0:7000".parse().unwrap()];
        assert!(Plan::from_args(&a, 20000)
            .unwrap_err()
            .to_string()
            .contains("not an address to connect to"));
    }

    #[test]
    fn protocol_flags_are_checked_together() {
        let err = |a: &[&str]| Plan::from_args(&args(a), 20000).unwrap_err().to_string();
        let e = err(&["--protocol", "frame", "--size", "8"]);
        assert!(
            e.contains("--protocol frame") && e.contains("--size 16"),
            "{e}"
        );
        let e = err(&["--reply-size", "10"]);
        assert!(e.contains("add --protocol frame"), "{e}");
        let e = err(&["--protocol", "http", "--reply-size", "10"]);
        assert!(e.contains("--body-size"), "{e}");
        let e = err(&["--body-size", "10"]);
        assert!(e.contains("add --protocol http"), "{e}");
        let e = err(&["--protocol", "frame", "--body-size", "10"]);
        assert!(e.contains("--reply-size"), "{e}");
        let e = err(&["--protocol", "http", "--size", "64"]);
        assert!(e.contains("drop --size"), "{e}");
        let e = err(&["--protocol", "http", "--body-size", "2000000"]);
        assert!(e.contains("1 MiB"), "{e}");
        let e = err(&["--protocol", "frame", "--reply-size", "2000000"]);
        assert!(e.contains("1 MiB"), "{e}");

        let p = Plan::from_args(&args(&[]), 20000).unwrap();
        assert_eq!(p.wire, Wire::echo(64));
        let p = Plan::from_args(&args(&["--protocol", "frame", "--size", "16"]), 20000).unwrap();
        assert_eq!((p.wire.request_len(), p.wire.response_len()), (20, 20));
        let a = args(&["--protocol", "frame", "--reply-size", "0"]);
        let p = Plan::from_args(&a, 20000).unwrap();
        assert_eq!((p.wire.request_len(), p.wire.response_len()), (68, 4));
        let p = Plan::from_args(&args(&["--protocol", "http"]), 20000).unwrap();
        assert_eq!(p.wire, Wire::http(16));
        let a = args(&["--protocol", "http", "--body-size", "0"]);
        assert_eq!(Plan::from_args(&a, 20000).unwrap().wire, Wire::http(0));
    }

    #[test]
    fn loops_grow_past_one_ring() {
        let p = Plan::from_args(&args(&["--connections", "30000", "--cpus", "0"]), 20000).unwrap();
        assert_eq!(p.loops, 2);
        assert_eq!(p.loop_connections(0) + p.loop_connections(1), 30000);
        assert_eq!(p.threads, 1);
        assert_eq!(p.thread_loops(0), vec![0, 1]);
        let p =
            Plan::from_args(&args(&["--connections", "50000", "--cpus", "0,1"]), 20000).unwrap();
        assert_eq!((p.loops, p.threads), (3, 2));
        assert_eq!(p.thread_loops(0), vec![0, 2]);
        assert_eq!(p.thread_loops(1), vec![1]);
        assert!(p.loop_connections(0) <= 20000);
    }

    #[test]
    fn pairs_round_robin() {
        let mut a = args(&["--source-ips", "127.0.0.2-127.0.0.3"]);
        a.targets.push("127.0.0.1:7001".parse().unwrap());
        let p = Plan::from_args(&a, 20000).unwrap();
        let pairs: std::collections::BTreeSet<_> = (0..4).map(|g| p.endpoints(g)).collect();
        assert_eq!(pairs.len(), 4);
    }
}
