//! The plan as printed before a run and kept in every run.md, and the estimate of how
//! long the run takes.

use crate::plan::{Backend, CpuSplit, Limits, Scale, Scenario, LAT_FRACTIONS, MSG_SIZE};
use std::fmt::Write as _;

/// Everything the plan text shows.
pub struct Plan<'a> {
    pub split: &'a CpuSplit,
    pub backends: &'a [Backend],
    /// What the echo scenarios' rounds interleave (one per backend unless `--variants`).
    pub variants: &'a [crate::variants::Variant],
    pub scenarios: &'a [Scenario],
    pub scale: &'a Scale,
    pub limits: &'a Limits,
    /// `--rate` as given.
    pub rate: Option<&'a str>,
    /// The sysctl-apply arguments when tuning, e.g. "/x/sysctl/c1m.conf --set k=v".
    pub tuning: Option<&'a str>,
    /// `<out>/<stamp>-<host>`.
    pub results_prefix: String,
    /// Loadgen and server share this namespace (the 127.0.0.x source line applies).
    pub loopback: bool,
    /// `--body-size` of the http scenario.
    pub body_size: u64,
    /// What the echo scenarios speak.
    pub wire: crate::wire::Wire,
    /// `--arrivals` of the latency scenario.
    pub arrivals: &'a str,
}

/// Estimated seconds of the whole run.
pub fn estimate_s(p: &Plan) -> u64 {
    let nb = p.variants.len() as u64;
    let s = p.scale;
    let mut est = 0;
    let mut runs_per_backend = 0;
    for &sc in p.scenarios {
        let r = u64::from(s.rounds(sc));
        match sc {
            Scenario::Pingpong => runs_per_backend += r * s.pp_conns.len() as u64,
            Scenario::Latency => runs_per_backend += r * s.lat_points().len() as u64,
            Scenario::Churn => runs_per_backend += r,
            Scenario::Hold => {
                est += r * nb * (s.hold_n / 20_000 + s.hold_dur.whole() + s.hold_warm.whole() + 4)
            }
            Scenario::Http => est += crate::http::estimate_s(p.backends, s),
        }
    }
    est + runs_per_backend * nb * (s.dur.whole() + 3)
}

/// The plan, as printed before a run and kept in every run.md.
pub fn plan_text(p: &Plan) -> String {
    let s = p.scale;
    let mut t = String::new();
    let names: Vec<&str> = p.backends.iter().map(|b| b.name()).collect();
    let names = if names.is_empty() {
        vec!["none (the http scenario runs nginx)"]
    } else {
        names
    };
    // Writing to a String cannot fail; results are ignored on purpose.
    let _ = writeln!(t, "plan ({}):", if s.quick { "quick" } else { "full" });
    let _ = writeln!(
        t,
        "  CPUs              server {}, loadgen {} (of {} online)",
        p.split.server, p.split.loadgen, p.split.online
    );
    if p.variants.iter().all(crate::variants::Variant::is_plain) {
        let _ = writeln!(t, "  backends          {}", names.join(" "));
    } else {
        let _ = writeln!(t, "  variants          {} (each case sets its own variant's sysctls and puts them back after)", p.variants.len());
        for v in p.variants {
            let _ = writeln!(t, "    {}", v.describe());
        }
    }
    if p.wire != crate::wire::Wire::Echo && p.scenarios.iter().any(|s| s.is_echo()) {
        let _ = writeln!(
            t,
            "  protocol          {} in pingpong, latency, hold and churn (`{}` to server and loadgen)",
            p.wire.name(),
            p.wire.args().join(" ")
        );
    }
    let has = |x: Scenario| p.scenarios.contains(&x);
    let (dur, warm) = (&s.dur.text, &s.warm.text);
    let rounds = |sc: Scenario| match s.rounds(sc) {
        1 => "1 round".to_string(),
        n => format!("{n} interleaved rounds, shuffled order"),
    };
    if has(Scenario::Pingpong) {
        let conns: Vec<String> = s.pp_conns.iter().map(u64::to_string).collect();
        let _ = writeln!(t, "  pingpong          closed loop, {MSG_SIZE} B, 1 in flight, {} conns; {dur} s (+{warm} s warm-up) per run; {}", conns.join(" "), rounds(Scenario::Pingpong));
    }
    if has(Scenario::Latency) {
        let conns: Vec<String> = s.lat_conns.iter().map(u64::to_string).collect();
        let rate = match p.rate {
            Some(r) => format!("{r} msgs/s"),
            None => {
                let pct: Vec<String> = LAT_FRACTIONS
                    .iter()
                    .map(|f| format!("{:.0}%", f * 100.0))
                    .collect();
                format!("{} of the slowest backend's pingpong msgs/s at the same conns (median over rounds; 20000 and 40000 if pingpong did not run there)", pct.join(" and "))
            }
        };
        let _ = writeln!(
            t,
            "  latency           equal load: open loop at {rate}, {}; {} conns; {dur} s (+{warm} s warm-up); {}",
            crate::options::arrivals_text(p.arrivals),
            conns.join(" "),
            rounds(Scenario::Latency)
        );
    }
    if has(Scenario::Hold) {
        let mut line = String::new();
        for v in p.variants {
            let c = p.limits.conns_for(v.backend, s.hold_n);
            let _ = write!(line, " {}:{c}/{}", v.name, p.limits.procs_for(v.backend, c));
        }
        let _ = writeln!(t, "  hold              {} conns, heartbeat every {} s, held {} s (+{} s warm-up); {}; conns/server processes:{line}", s.hold_n, s.hb, s.hold_dur.text, s.hold_warm.text, rounds(Scenario::Hold));
        let _ = writeln!(t, "                    (RLIMIT_NOFILE {}: up to {} conns per fd-per-connection process; uring: direct descriptors, --max-conns)", p.limits.nofile_soft, p.limits.conns_per_proc);
        if let (true, Ok(Some(src))) = (p.loopback, p.limits.source_ips_for(s.hold_n, 1)) {
            let _ = writeln!(
                t,
                "                    loadgen source addresses for one server port: {src}"
            );
        }
    }
    if has(Scenario::Churn) {
        let _ = writeln!(t, "  churn             {} concurrent connect/exchange/close loops; {dur} s (+{warm} s warm-up); {}", s.churn_conns, rounds(Scenario::Churn));
    }
    if has(Scenario::Http) {
        t.push_str(&crate::http::plan_line(
            p.backends,
            s,
            p.body_size,
            &rounds(Scenario::Http),
        ));
    }
    let tuning = match p.tuning {
        Some(args) => format!("{args} (restored at exit)"),
        None => "none".into(),
    };
    let _ = writeln!(t, "  tuning            {tuning}");
    let _ = writeln!(t, "  estimated time    about {} s", estimate_s(p));
    t.push_str(&results_line(p));
    t
}

/// Where the scenario folders go: `  results  PREFIX-{pingpong,...}`.
fn results_line(p: &Plan) -> String {
    let suffix = p.wire.folder_suffix();
    let scen: Vec<String> = p
        .scenarios
        .iter()
        .map(|s| match s.is_echo() {
            true => format!("{}{suffix}", s.name()),
            false => s.name().to_string(),
        })
        .collect();
    format!(
        "  results           {}-{{{}}}\n",
        p.results_prefix,
        scen.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{scale, split_cpus};

    fn limits() -> Limits {
        // The reference machine: RLIMIT_NOFILE 20000, tuned port range, 22 GiB free.
        Limits::new(20_000, (1024, 65535), 22 * 1024 * 1024, None)
    }

    #[test]
    fn plan_text_and_estimate() {
        let l = limits();
        let s = scale(true, None, None, 0, None);
        let split = split_cpus(&[0, 1]);
        let backends = [Backend::Uring, Backend::Epoll];
        let scenarios = [
            Scenario::Pingpong,
            Scenario::Latency,
            Scenario::Hold,
            Scenario::Churn,
        ];
        let p = Plan {
            split: &split,
            backends: &backends,
            variants: &crate::variants::from_backends(&backends),
            scenarios: &scenarios,
            scale: &s,
            limits: &l,
            rate: None,
            tuning: Some("/r/sysctl/c1m.conf"),
            results_prefix: "/out/2026-01-01-1200-vm".into(),
            loopback: true,
            body_size: 64,
            wire: crate::wire::Wire::Echo,
            arrivals: "poisson",
        };
        // hold: 2 x (0 + 2 + 4); per backend 2 pingpong, 2 latency, 1 churn runs:
        // 5 x 2 x (2 + 3).
        assert_eq!(estimate_s(&p), 12 + 50);
        let t = plan_text(&p);
        assert!(
            t.starts_with("plan (quick):\n  CPUs              server 0, loadgen 1 (of 2 online)\n"),
            "{t}"
        );
        assert!(t.contains("  pingpong          closed loop, 64 B, 1 in flight, 100 1000 conns; 2 s (+0.5 s warm-up) per run; 1 round\n"), "{t}");
        assert!(
            t.contains("conns/server processes: uring:5000/1 epoll:5000/1\n"),
            "{t}"
        );
        assert!(
            t.contains("  latency           equal load: open loop at 25% and 50% of the slowest backend's pingpong msgs/s at the same conns (median over rounds; 20000 and 40000 if pingpong did not run there), Poisson arrivals"),
            "{t}"
        );
        assert!(
            t.contains("  tuning            /r/sysctl/c1m.conf (restored at exit)\n"),
            "{t}"
        );
        assert!(
            t.ends_with(
                "  results           /out/2026-01-01-1200-vm-{pingpong,latency,hold,churn}\n"
            ),
            "{t}"
        );
        assert!(!t.contains("source addresses"), "{t}");
        assert!(!t.contains("  http "), "{t}");
    }

    #[test]
    fn a_frame_plan_names_the_protocol_and_its_folders() {
        let l = limits();
        let s = scale(true, None, None, 0, None);
        let split = split_cpus(&[0, 1]);
        let p = Plan {
            split: &split,
            backends: &[Backend::Uring],
            variants: &crate::variants::from_backends(&[Backend::Uring]),
            scenarios: &[Scenario::Pingpong, Scenario::Http],
            scale: &s,
            limits: &l,
            rate: None,
            tuning: None,
            results_prefix: "/out/x".into(),
            loopback: true,
            body_size: 16,
            wire: crate::wire::Wire::Frame,
            arrivals: "poisson",
        };
        let t = plan_text(&p);
        assert!(t.contains("  protocol          frame in pingpong, latency, hold and churn (`--protocol frame` to server and loadgen)\n"), "{t}");
        assert!(
            t.ends_with("  results           /out/x-{pingpong-frame,http}\n"),
            "{t}"
        );
    }

    #[test]
    fn the_http_plan() {
        let l = limits();
        let s = scale(true, None, None, 0, None);
        let split = split_cpus(&[0, 1]);
        let p = Plan {
            split: &split,
            backends: &[],
            variants: &[],
            scenarios: &[Scenario::Http],
            scale: &s,
            limits: &l,
            rate: None,
            tuning: None,
            results_prefix: "/out/x".into(),
            loopback: true,
            body_size: 16,
            wire: crate::wire::Wire::Frame,
            arrivals: "poisson",
        };
        let t = plan_text(&p);
        // --protocol is for the echo scenarios: the http scenario is always http.
        assert!(!t.contains("  protocol "), "{t}");
        assert!(
            t.contains("  backends          none (the http scenario runs nginx)\n"),
            "{t}"
        );
        assert!(t.contains("  http              HTTP/1.1 keep-alive, 16 B body; servers nginx; clients c1m-loadgen and wrk"), "{t}");
        // nginx alone, quick: loadgen 6 + wrk 6 + open 6.
        assert_eq!(estimate_s(&p), 18);
        assert!(t.ends_with("  results           /out/x-{http}\n"), "{t}");
    }
}
