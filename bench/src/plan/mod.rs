//! Plans as data: what a run will do, derived from the options and a few machine facts
//! by pure functions (no I/O here), so every scale rule has a unit test.

mod limits;
mod make;
pub use limits::*;
pub use make::{plan, Facts, Plan};

/// Ports the servers listen on: `PORT_LO..=PORT_HI`, reserved in sysctl/c1m.conf.
pub const PORT_LO: u16 = 7000;
pub const PORT_HI: u16 = 7199;
/// Bytes per message in every scenario.
pub const MSG_SIZE: u64 = 64;

/// A benchmark scenario, in canonical (run) order: latency uses what pingpong measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Pingpong,
    Latency,
    Hold,
    Churn,
    /// HTTP/1.1 keep-alive against the c1m backends and nginx, with c1m-loadgen and wrk
    /// (opt-in: not in the default list, see `crate::http`).
    Http,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::Pingpong,
        Scenario::Latency,
        Scenario::Hold,
        Scenario::Churn,
        Scenario::Http,
    ];

    /// True for the scenarios of echo messages (every one but http), which need a
    /// c1m-server backend.
    pub fn is_echo(self) -> bool {
        self != Scenario::Http
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Pingpong => "pingpong",
            Scenario::Latency => "latency",
            Scenario::Hold => "hold",
            Scenario::Churn => "churn",
            Scenario::Http => "http",
        }
    }
}

/// A benchmarked server, in canonical order: the c1m-server backends, then the outside
/// references (their own binaries, the same command-line contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Uring,
    /// uring with `--coalesce-us 10|25|50`: a variant compared beside plain uring.
    UringCoalesce10,
    UringCoalesce25,
    UringCoalesce50,
    /// uring with `--plain-sends`: every send posts a completion (the send path before
    /// quick sends), to measure what they change.
    UringPlainSends,
    Epoll,
    TokioUring,
    Tokio,
    /// references/go-net: goroutine per connection on the Go netpoller (opt-in).
    Go,
}

/// The binary of the `go` backend, relative to the repository (scripts/c1m.sh builds it
/// with `go build` when `--backends` names go).
pub const GO_SERVER_BIN: &str = "references/go-net/bin/c1m-go-net";

impl Backend {
    pub const ALL: [Backend; 9] = [
        Backend::Uring,
        Backend::UringCoalesce10,
        Backend::UringCoalesce25,
        Backend::UringCoalesce50,
        Backend::UringPlainSends,
        Backend::Epoll,
        Backend::TokioUring,
        Backend::Tokio,
        Backend::Go,
    ];

    /// The binary that serves this backend: None for c1m-server (the run's
    /// `server_bin`), else the reference's own, relative to the repository. Its argv is
    /// c1m-server's (`--backend NAME --listen .. --cpus .. --stats-json ..`): c1m-go-net
    /// accepts `--backend go`.
    pub fn own_binary(self) -> Option<&'static str> {
        match self {
            Backend::Go => Some(GO_SERVER_BIN),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Uring => "uring",
            Backend::UringCoalesce10 => "uring-coalesce10",
            Backend::UringCoalesce25 => "uring-coalesce25",
            Backend::UringCoalesce50 => "uring-coalesce50",
            Backend::UringPlainSends => "uring-plain-sends",
            Backend::Epoll => "epoll",
            Backend::TokioUring => "tokio-uring",
            Backend::Tokio => "tokio",
            Backend::Go => "go",
        }
    }

    /// True for the backends that need one fd per connection (and so may need several
    /// server processes); uring holds connections as direct descriptors.
    pub fn fd_bound(self) -> bool {
        !self.is_uring()
    }

    /// The uring backend, plain or a coalescing variant.
    pub fn is_uring(self) -> bool {
        matches!(self, Backend::Uring | Backend::UringPlainSends) || self.coalesce_us().is_some()
    }

    /// `--coalesce-us` of the coalescing uring variants.
    pub fn coalesce_us(self) -> Option<u32> {
        match self {
            Backend::UringCoalesce10 => Some(10),
            Backend::UringCoalesce25 => Some(25),
            Backend::UringCoalesce50 => Some(50),
            _ => None,
        }
    }

    /// The server's `--backend NAME` and the flags that make this variant.
    pub fn server_args(self) -> Vec<String> {
        let name = if self.is_uring() {
            "uring"
        } else {
            self.name()
        };
        let mut args = vec!["--backend".to_string(), name.to_string()];
        if let Some(us) = self.coalesce_us() {
            args.extend(["--coalesce-us".to_string(), us.to_string()]);
        }
        if self == Backend::UringPlainSends {
            args.push("--plain-sends".to_string());
        }
        args
    }

    /// Server RSS per held connection in bytes, for the hold's memory model
    /// ([`MemoryModel`]), from hold.json on the reference machine, rounded up:
    /// uring 88 B at 1M held (results/2026-12-03-1835-vm-hold), 135 B at 100k; epoll
    /// 61 B at 1M (results/2026-12-03-1140-vm-hold); tokio ~10 KiB and tokio-uring
    /// ~17 KiB (a task and its buffers per connection); go 7.7 KiB at 100k (a 2 KiB
    /// goroutine stack, the 4 KiB read buffer, net.Conn/netFD and the runtime's share),
    /// rounded up for the GC's heap headroom.
    pub fn server_bytes_per_conn(self) -> u64 {
        match self {
            Backend::Uring
            | Backend::UringCoalesce10
            | Backend::UringCoalesce25
            | Backend::UringCoalesce50
            | Backend::UringPlainSends
            | Backend::Epoll => 256,
            Backend::Tokio => 11 << 10,
            Backend::TokioUring => 18 << 10,
            Backend::Go => 10 << 10,
        }
    }
}

/// The entries of `all` named in the comma list `arg`, in the order of `all` (not of
/// `arg`), each once. An unknown name is an error that names the known ones.
pub fn pick_list<T: Copy + PartialEq>(
    arg: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<Vec<T>, String> {
    let mut want: Vec<&str> = arg.split(',').collect();
    // A trailing comma adds no name (as `read -a` does).
    if want.len() > 1 && want.last() == Some(&"") {
        want.pop();
    }
    for item in &want {
        if !all.iter().any(|&k| name(k) == *item) {
            let known: Vec<&str> = all.iter().map(|&k| name(k)).collect();
            return Err(format!(
                "unknown name \"{item}\" (known: {})",
                known.join(" ")
            ));
        }
    }
    Ok(all
        .iter()
        .copied()
        .filter(|&k| want.contains(&name(k)))
        .collect())
}

/// A number of seconds as the user wrote it (printed and passed on as written) and its
/// value.
#[derive(Debug, Clone, PartialEq)]
pub struct Secs {
    pub text: String,
    pub value: f64,
}

impl Secs {
    /// `5`, `2.5`; not `-1`, `1e3`, `.5` or zero.
    pub fn parse(text: &str) -> Option<Secs> {
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return None;
        }
        let value: f64 = text.parse().ok()?;
        (value > 0.0).then(|| Secs {
            text: text.to_owned(),
            value,
        })
    }

    /// A computed value, printed the way awk prints a number (`2`, `2.5`).
    pub fn of(value: f64) -> Secs {
        let text = if value.fract() == 0.0 {
            format!("{}", value as u64)
        } else {
            format!("{value}")
        };
        Secs { text, value }
    }

    /// Whole seconds (the text before the dot), for estimates.
    pub fn whole(&self) -> u64 {
        self.value.trunc() as u64
    }
}

/// How big each scenario is.
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    pub quick: bool,
    /// Measured seconds per run, and warm-up seconds before it.
    pub dur: Secs,
    pub warm: Secs,
    pub pp_conns: Vec<u64>,
    /// Latency (equal load): connection counts, each at every fraction of the slowest
    /// backend's closed-loop maximum there.
    pub lat_conns: Vec<u64>,
    pub churn_conns: u64,
    /// Connections of every http point (closed loop and open loop).
    pub http_conns: u64,
    /// Connections the hold scenario asks for (before per-backend caps).
    pub hold_n: u64,
    /// Heartbeat period of the hold scenario, seconds.
    pub hb: u64,
    /// How long the hold scenario holds: the run duration, at least one heartbeat.
    pub hold_dur: Secs,
    /// Heartbeats before the hold's measured window ([`HOLD_WARMUP_S`]; `--quick`: the
    /// other scenarios' warm-up).
    pub hold_warm: Secs,
    /// `--rounds` as given (see [`Scale::rounds`]).
    pub rounds_given: Option<u32>,
}

/// Open-loop rates of the latency scenario, as fractions of the slowest backend's
/// closed-loop maximum at the same connection count: cost is compared at equal load.
pub const LAT_FRACTIONS: [f64; 2] = [0.25, 0.5];

impl Scale {
    /// Interleaved rounds of scenario `s`.
    pub fn rounds(&self, s: Scenario) -> u32 {
        rounds_for(s, self.rounds_given, self.quick)
    }

    /// The latency scenario's points: (connections, fraction), in order.
    pub fn lat_points(&self) -> Vec<(u64, f64)> {
        self.lat_conns
            .iter()
            .flat_map(|&c| LAT_FRACTIONS.iter().map(move |&f| (c, f)))
            .collect()
    }
}

/// The name of a latency point: `c1000-r25` (1000 connections, 25% load).
pub fn lat_point_name(conns: u64, fraction: f64) -> String {
    format!("c{conns}-r{}", (fraction * 100.0).round() as u64)
}

/// Connections the hold scenario asks for when not told: the kernel takes ~7.6 KB per
/// loopback connection (both sockets), plus server and loadgen state: budget 16 KiB
/// each and keep a quarter of the available memory free; 1,000 to 1,000,000.
pub fn hold_conns_from_memory(mem_avail_kb: u64) -> u64 {
    (mem_avail_kb * 3 / 4 / 16 / 1000 * 1000).clamp(1000, 1_000_000)
}

/// Seconds of heartbeats before a hold is measured. When the loadgen has seen its last
/// connect complete, the server may still be taking connections from its accept queue
/// (the 1M holds here: 6,000-15,000 in the first second of heartbeats), and a heartbeat
/// to a connection not yet accepted waits for that: the first second of a 1M hold read
/// p99 17-42 ms against ~1 ms after it. The window still holds one heartbeat period.
pub const HOLD_WARMUP_S: f64 = 2.0;

/// One heartbeat per connection every `hb` seconds: about 25k messages/s in all (1M
/// connections: every 40 s), a fifth of what this class of machine echoes, so the hold
/// measures holding, not load.
pub fn heartbeat_s(hold_n: u64) -> u64 {
    hold_n.div_ceil(25_000)
}

pub fn scale(
    quick: bool,
    duration: Option<&Secs>,
    hold_conns: Option<u64>,
    mem_avail_kb: u64,
    rounds_given: Option<u32>,
) -> Scale {
    let (dur, warm, pp_conns, lat_conns, churn_conns, hold_n) = if quick {
        (
            duration.cloned().unwrap_or_else(|| Secs::of(2.0)),
            Secs::of(0.5),
            vec![100, 1000],
            vec![1000],
            50,
            hold_conns.unwrap_or(5000),
        )
    } else {
        (
            duration.cloned().unwrap_or_else(|| Secs::of(5.0)),
            Secs::of(1.0),
            vec![100, 1000, 10_000],
            vec![1000, 10_000],
            100,
            hold_conns.unwrap_or_else(|| hold_conns_from_memory(mem_avail_kb)),
        )
    };
    let hb = heartbeat_s(hold_n);
    let hold_dur = Secs::of(dur.value.max(hb as f64));
    let hold_warm = if quick {
        warm.clone()
    } else {
        Secs::of(HOLD_WARMUP_S)
    };
    Scale {
        quick,
        dur,
        warm,
        pp_conns,
        lat_conns,
        churn_conns,
        // The http points: 1,000 connections (closed and open loop), --quick too: a
        // quick run is shorter (1 round, 2 s), not smaller.
        http_conns: 1000,
        hold_n,
        hb,
        hold_dur,
        hold_warm,
        rounds_given,
    }
}

/// Rounds of scenario `s`: as asked, else 3 for pingpong, latency and http (1 with
/// --quick) and 1 for hold and churn (long, and about capacity rather than small differences).
pub fn rounds_for(s: Scenario, given: Option<u32>, quick: bool) -> u32 {
    match (given, s) {
        (Some(n), _) => n.max(1),
        (None, Scenario::Pingpong | Scenario::Latency | Scenario::Http) if !quick => 3,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_by_scenario() {
        assert_eq!(rounds_for(Scenario::Pingpong, None, false), 3);
        assert_eq!(rounds_for(Scenario::Latency, None, false), 3);
        assert_eq!(rounds_for(Scenario::Latency, None, true), 1);
        assert_eq!(rounds_for(Scenario::Hold, None, false), 1);
        assert_eq!(rounds_for(Scenario::Churn, None, false), 1);
        assert_eq!(rounds_for(Scenario::Http, None, false), 3);
        assert_eq!(rounds_for(Scenario::Http, None, true), 1);
        assert_eq!(rounds_for(Scenario::Hold, Some(2), false), 2);
        assert_eq!(rounds_for(Scenario::Pingpong, Some(0), false), 1);
    }

    fn limits() -> Limits {
        // The reference machine: RLIMIT_NOFILE 20000, tuned port range, 22 GiB free.
        Limits::new(20_000, (1024, 65535), 22 * 1024 * 1024, None)
    }

    #[test]
    fn pick_list_keeps_canonical_order_and_refuses_unknown_names() {
        let got = pick_list("hold,pingpong,hold", &Scenario::ALL, Scenario::name).unwrap();
        assert_eq!(got, vec![Scenario::Pingpong, Scenario::Hold]);
        let got = pick_list("tokio,uring,", &Backend::ALL, Backend::name).unwrap();
        assert_eq!(got, vec![Backend::Uring, Backend::Tokio]);
        let got = pick_list("go,epoll", &Backend::ALL, Backend::name).unwrap();
        assert_eq!(got, vec![Backend::Epoll, Backend::Go]);
        let got = pick_list("epoll,uring-coalesce25,uring", &Backend::ALL, Backend::name).unwrap();
        assert_eq!(
            got,
            vec![Backend::Uring, Backend::UringCoalesce25, Backend::Epoll]
        );
        assert_eq!(
            Backend::UringCoalesce25.server_args(),
            ["--backend", "uring", "--coalesce-us", "25"]
        );
        assert_eq!(Backend::Tokio.server_args(), ["--backend", "tokio"]);
        assert_eq!(
            Backend::UringPlainSends.server_args(),
            ["--backend", "uring", "--plain-sends"]
        );
        assert!(Backend::UringCoalesce50.is_uring() && !Backend::UringCoalesce10.fd_bound());
        assert_eq!(Backend::Go.own_binary(), Some(GO_SERVER_BIN));
        assert_eq!(Backend::Epoll.own_binary(), None);
        let e = pick_list("nonsense", &Scenario::ALL, Scenario::name).unwrap_err();
        assert_eq!(
            e,
            "unknown name \"nonsense\" (known: pingpong latency hold churn http)"
        );
        assert!(Scenario::Hold.is_echo() && !Scenario::Http.is_echo());
        assert!(pick_list("uring,,epoll", &Backend::ALL, Backend::name).is_err());
    }

    #[test]
    fn secs_parse_like_the_shell_did() {
        assert_eq!(Secs::parse("5").unwrap().value, 5.0);
        assert_eq!(Secs::parse("2.5").unwrap().text, "2.5");
        for bad in ["0", "", "-1", "1e3", ".5", "5.", "a"] {
            assert!(Secs::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(Secs::of(40.0).text, "40");
        assert_eq!(Secs::of(2.5).text, "2.5");
        assert_eq!(Secs::of(2.5).whole(), 2);
    }

    #[test]
    fn quick_and_full_scale() {
        let q = scale(true, None, None, 1 << 30, None);
        assert_eq!((q.dur.text.as_str(), q.warm.text.as_str()), ("2", "0.5"));
        assert_eq!(q.pp_conns, vec![100, 1000]);
        assert_eq!(
            (q.lat_conns.clone(), q.churn_conns, q.hold_n),
            (vec![1000], 50, 5000)
        );
        assert_eq!(q.lat_points(), vec![(1000, 0.25), (1000, 0.5)]);
        assert_eq!(q.rounds(Scenario::Pingpong), 1);
        assert_eq!((q.hb, q.hold_dur.text.as_str()), (1, "2"));

        let f = scale(false, None, None, 22 * 1024 * 1024, None);
        assert_eq!((f.dur.text.as_str(), f.warm.text.as_str()), ("5", "1"));
        assert_eq!(f.pp_conns, vec![100, 1000, 10_000]);
        assert_eq!(
            (f.lat_conns.clone(), f.churn_conns),
            (vec![1000, 10_000], 100)
        );
        assert_eq!(f.lat_points().len(), 4);
        assert_eq!(lat_point_name(10_000, 0.25), "c10000-r25");
        assert_eq!(
            (f.rounds(Scenario::Latency), f.rounds(Scenario::Hold)),
            (3, 1)
        );
        assert_eq!(f.hold_n, 1_000_000);
        // 1M connections: one heartbeat every 40 s, held at least that long.
        assert_eq!((f.hb, f.hold_dur.text.as_str()), (40, "40"));

        let d = Secs::parse("7.5").unwrap();
        let g = scale(false, Some(&d), Some(20_000), 0, Some(2));
        assert_eq!(g.rounds(Scenario::Hold), 2);
        assert_eq!(
            (g.hold_n, g.hb, g.hold_dur.text.as_str()),
            (20_000, 1, "7.5")
        );
    }

    #[test]
    fn hold_n_follows_memavailable() {
        // 3/4 of MemAvailable at 16 KiB per connection, in thousands, 1k..1M.
        assert_eq!(hold_conns_from_memory(1_600_000), 75_000);
        assert_eq!(hold_conns_from_memory(10_000), 1000);
        assert_eq!(hold_conns_from_memory(100 << 20), 1_000_000);
        assert_eq!(heartbeat_s(5000), 1);
        assert_eq!(heartbeat_s(25_001), 2);
    }

    #[test]
    fn cpu_split_halves() {
        let two = split_cpus(&[0, 1]);
        assert_eq!((two.server.as_str(), two.loadgen.as_str()), ("0", "1"));
        let five = split_cpus(&[0, 1, 2, 3, 4]);
        assert_eq!(
            (five.server.as_str(), five.loadgen.as_str()),
            ("0,1", "2,3,4")
        );
        let one = split_cpus(&[3]);
        assert!(one.shared);
        assert_eq!((one.server.as_str(), one.loadgen.as_str()), ("3", "3"));
    }

    #[test]
    fn ports_and_fd_caps() {
        let l = limits();
        // 42% of 1024-65535.
        assert_eq!(l.ports_per_pair, 27_095);
        assert_eq!(l.fd_cap, 19_744);
        assert_eq!(l.conns_per_proc, 17_769);
        assert_eq!(l.max_procs, 200);
        let untuned = Limits::new(1024, (32768, 60999), 0, Some(1000));
        assert_eq!(untuned.ports_per_pair, 11_857);
        assert_eq!(untuned.conns_per_proc, 1000);
    }

    #[test]
    fn procs_per_fd_bound_backend() {
        let l = limits();
        assert_eq!(l.procs_for(Backend::Uring, 1_000_000), 1);
        assert_eq!(l.procs_for(Backend::Epoll, 5000), 1);
        assert_eq!(l.procs_for(Backend::Epoll, 17_770), 2);
        // 1M / 17769 = 56.3 -> 57 processes, as in the committed C1M run.
        assert_eq!(l.procs_for(Backend::Tokio, 1_000_000), 57);
        // Go needs one fd per connection too.
        assert_eq!(l.procs_for(Backend::Go, 1_000_000), 57);
        let tiny = Limits::new(20_000, (1024, 65535), 1 << 30, Some(10));
        assert_eq!(tiny.procs_for(Backend::Epoll, 1_000_000), 200);
    }

    #[test]
    fn connection_caps_say_why() {
        let l = limits();
        assert_eq!(l.conns_for(Backend::Uring, 1_000_000), 1_000_000);
        assert_eq!(l.cap_reason(Backend::Uring, 1_000_000), None);
        // tokio-uring: 9,360 + 512 + 18,432 B per connection in 90% of 22 GiB.
        let cap = l.mem_cap(Backend::TokioUring);
        assert_eq!(cap, (22u64 << 30) / 100 * 90 / 28_304 / 1000 * 1000);
        assert_eq!(l.conns_for(Backend::TokioUring, 1_000_000), cap);
        let why = l.cap_reason(Backend::TokioUring, 1_000_000).unwrap();
        assert!(
            why.starts_with(&format!("memory: {cap} connections fit")),
            "{why}"
        );
        assert!(why.contains("90% of MemAvailable (22528 MiB) at ~27.6 KiB each (kernel 9.14 + loadgen 0.50 + this server 18.00"), "{why}");
        assert!(cap < 1_000_000);
        // go: a goroutine, its stack and buffer per connection: capped, and says so.
        let cap = l.mem_cap(Backend::Go);
        assert!(cap < 2_000_000);
        assert_eq!(l.conns_for(Backend::Go, 2_000_000), cap);
        let why = l.cap_reason(Backend::Go, 2_000_000).unwrap();
        assert!(why.contains("at ~19.6 KiB each"), "{why}");
        // fd-bound and out of ports: 200 x 100.
        let few = Limits::new(20_000, (1024, 65535), 22 * 1024 * 1024, Some(100));
        assert_eq!(few.conns_for(Backend::Epoll, 50_000), 20_000);
        assert_eq!(few.conns_for(Backend::Uring, 50_000), 50_000);
        let why = few.cap_reason(Backend::Epoll, 50_000).unwrap();
        assert_eq!(
            why,
            "200 processes (ports 7000-7199) x 100 connections (RLIMIT_NOFILE 20000 less headroom)"
        );
    }

    #[test]
    fn source_address_ranges() {
        let l = limits();
        assert_eq!(l.source_ips_for(27_095, 1), Ok(None));
        assert_eq!(
            l.source_ips_for(1_000_000, 1),
            Ok(Some("127.0.0.2-127.0.0.38".into()))
        );
        // Spread over 57 ports one address per port is enough.
        assert_eq!(l.source_ips_for(1_000_000, 57), Ok(None));
        let small = Limits::new(20_000, (60_000, 60_099), 0, None);
        assert!(small
            .source_ips_for(1_000_000, 1)
            .unwrap_err()
            .contains("need"));
    }

    #[test]
    fn max_conns_per_server_process() {
        let l = limits();
        assert_eq!(l.server_max_conns(5000, 1, None), None);
        assert_eq!(l.server_max_conns(5000, 1, Some(7)), Some(7));
        // 1M over 57: 17544 + 350.
        assert_eq!(l.server_max_conns(1_000_000, 57, None), Some(17_894));
        assert_eq!(l.server_max_conns(100, 2, None), Some(114));
        assert_eq!(l.server_max_conns(10_000_000, 2, None), Some(19_744));
        assert_eq!(uring_hold_max_conns(1_000_000), 1_020_064);
    }

    #[test]
    fn deadlines_and_drain_targets() {
        let q = scale(true, None, None, 0, None);
        assert_eq!(loadgen_deadline_s(1000, false, &q), 60 + 3);
        let f = scale(false, None, Some(1_000_000), 0, None);
        // The hold: its run (40 s), its own warm-up (2 s) and a second.
        assert_eq!(loadgen_deadline_s(1_000_000, true, &f), 60 + 200 + 43);
        assert_eq!(f.hold_warm.text, "2");
        assert_eq!(q.hold_warm.text, q.warm.text);
        assert_eq!(hold_drain_target(10, 1000), 110);
        assert_eq!(hold_drain_target(10, 1_000_000), 40_010);
        assert_eq!(server_stop_grace(100).as_secs(), 15);
        assert_eq!(server_stop_grace(1_000_000).as_secs(), 55);
    }
}
