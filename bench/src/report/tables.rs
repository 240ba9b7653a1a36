//! The markdown the compare table has no columns for (hold, churn), and the headline of
//! a whole run.

use super::folder::{num, read_all, run_dirs, RunFolder as Run};
use super::spread::{rows_rounds, throughput_note};
use crate::plan::Scenario;
use c1m_loadgen::report::fmt::{bytes_or_dash, fixed, plain_table, us_or_dash};
use c1m_loadgen::report::stats::ROUNDS_NOTE;
use std::path::{Path, PathBuf};

fn failed_mark(r: &Run) -> &'static str {
    if r.failed {
        " FAILED"
    } else {
        ""
    }
}

/// The hold table of a hold scenario's compare.md, and its notes.
pub fn section_hold(dirs: &[PathBuf]) -> String {
    let (runs, notes) = read_all(dirs);
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let h = &r.hold;
            let others = match num(h, "other_tcp_sockets_at_peak") {
                Some(v) => format!(
                    "{:+}{}",
                    v.trunc() as i64,
                    if h.get("warning").is_some() {
                        " ⚠"
                    } else {
                        ""
                    }
                ),
                None => "-".into(),
            };
            vec![
                r.name.clone(),
                fixed(r.get(|s| s.workload.connections as f64), 0),
                fixed(r.get(|s| s.connections_established as f64), 0),
                fixed(r.get(|s| s.connections_failed as f64), 0),
                fixed(r.get(|s| s.ramp_s), 1),
                us_or_dash(r.get(|s| s.latency.p50_us)),
                us_or_dash(r.get(|s| s.latency.p99_us)),
                us_or_dash(r.get(|s| s.latency.max_us)),
                bytes_or_dash(r.server.as_ref().and_then(|s| s.rss_peak_bytes)),
                bytes_or_dash(r.server.as_ref().and_then(|s| s.rss_per_conn_bytes)),
                bytes_or_dash(num(h, "slabinfo_per_connection_bytes")),
                bytes_or_dash(num(h, "meminfo_slab_per_connection_bytes")),
                fixed(num(h, "teardown_s"), 1),
                fixed(num(h, "server_processes"), 0),
                others,
            ]
        })
        .collect();
    let header = [
        "run",
        "asked",
        "established",
        "failed",
        "ramp s",
        "hb p50 µs",
        "hb p99 µs",
        "hb max µs",
        "srv RSS peak",
        "srv RSS/conn",
        "slab/conn",
        "meminfo/conn",
        "teardown s",
        "srv procs",
        "others' sockets",
    ];
    let mut out = plain_table(&header, &rows);
    out.push_str("\n\n");
    out.push_str(&left_out(&notes));
    out.push_str("- slab/conn: kernel slab objects in use (/proc/slabinfo, active objects × size) at the peak of the hold minus before the server started, / established connections: both sockets of a loopback connection, and whatever else the machine allocated meanwhile. meminfo/conn: the same from Slab in /proc/meminfo (whole slab pages, freed objects still cached included: noisy on a shared machine). Per-cache breakdown in each hold.json.\n");
    out.push_str("- others' sockets: TCP sockets in use at the peak (/proc/net/sockstat) minus before, minus this run's 2 per connection; ⚠ when large: other processes were opening sockets and slab/conn is off.\n");
    out.push_str("- hb: heartbeat round trip (each connection sends one message every heartbeat interval); ramp s: first connect to last established.\n");
    out
}

/// The churn table of a churn scenario's compare.md, and its note.
pub fn section_churn(dirs: &[PathBuf]) -> String {
    let (runs, notes) = read_all(dirs);
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                fixed(r.get(|s| s.workload.connections as f64), 0),
                fixed(r.summary.as_ref().and_then(|s| s.connects_per_s), 0),
                us_or_dash(r.get(|s| s.connect_latency.p50_us)),
                us_or_dash(r.get(|s| s.connect_latency.p99_us)),
                us_or_dash(r.get(|s| s.connect_latency.p999_us)),
                us_or_dash(r.get(|s| s.connect_latency.max_us)),
                us_or_dash(r.get(|s| s.latency.p99_us)),
                fixed(r.errors(), 0),
                fixed(r.cpu_us_per_msg(), 2),
            ]
        })
        .collect();
    let header = [
        "run",
        "conns",
        "connects/s",
        "connect p50 µs",
        "connect p99 µs",
        "connect p99.9 µs",
        "connect max µs",
        "exchange p99 µs",
        "errors",
        "srv CPU µs/cycle",
    ];
    let mut out = plain_table(&header, &rows);
    out.push_str("\n\n");
    out.push_str(&left_out(&notes));
    out.push_str("- one cycle = connect, one 64-byte exchange, close; srv CPU µs/cycle is the server's user+sys CPU over its life / messages it echoed.\n");
    out
}

/// The notes of folders left out of a table, one line each.
fn left_out(notes: &[String]) -> String {
    notes.iter().map(|n| format!("{n}\n")).collect()
}

fn rows_hold(runs: &[Run]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                fixed(r.get(|s| s.connections_established as f64), 0),
                fixed(r.get(|s| s.connections_failed as f64), 0),
                fixed(r.get(|s| s.ramp_s), 1),
                us_or_dash(r.get(|s| s.latency.p99_us)),
                bytes_or_dash(r.server.as_ref().and_then(|s| s.rss_per_conn_bytes)),
                bytes_or_dash(num(&r.hold, "slab_per_connection_bytes")),
                fixed(num(&r.hold, "server_processes"), 0) + failed_mark(r),
            ]
        })
        .collect();
    let header = [
        "run",
        "established",
        "failed",
        "ramp s",
        "hb p99 µs",
        "srv RSS/conn",
        "slab/conn",
        "srv procs",
    ];
    plain_table(&header, &rows)
}

fn rows_churn(runs: &[Run]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                fixed(r.summary.as_ref().and_then(|s| s.connects_per_s), 0),
                us_or_dash(r.get(|s| s.connect_latency.p50_us)),
                us_or_dash(r.get(|s| s.connect_latency.p99_us)),
                fixed(r.cpu_us_per_msg(), 2),
                fixed(r.errors(), 0) + failed_mark(r),
            ]
        })
        .collect();
    let header = [
        "run",
        "connects/s",
        "connect p50 µs",
        "connect p99 µs",
        "srv CPU µs/cycle",
        "errors",
    ];
    plain_table(&header, &rows)
}

/// The headline tables of scenario folders (`<stamp>-<host>-<scenario>`), one section
/// per folder that has runs, equal load (latency) first: cost at the same offered load
/// is the primary comparison, closed-loop maximum throughput the second. Ends with a
/// newline.
pub fn headline(scenario_dirs: &[PathBuf]) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut ordered: Vec<&PathBuf> = scenario_dirs.iter().collect();
    ordered.sort_by_key(|d| scenario_of(&base_name(d)).map(|s| s.0) != Some(Scenario::Latency));
    for sdir in ordered {
        let base = base_name(sdir);
        let (runs, notes) = read_all(&run_dirs(sdir));
        if runs.is_empty() && notes.is_empty() {
            continue;
        }
        let Some((scenario, protocol)) = scenario_of(&base) else {
            lines.push(format!("### {base}: not a scenario folder, no table\n"));
            continue;
        };
        match protocol {
            Some(p) => lines.push(format!("### {}, {p} protocol ({base})", scenario.name())),
            None => lines.push(format!("### {} ({base})", scenario.name())),
        }
        lines.push(String::new());
        lines.push(section(scenario, sdir, &runs));
        lines.extend(notes);
        lines.push(String::new());
    }
    let mut out = lines.join("\n").trim_end().to_owned();
    out.push('\n');
    out
}

/// The headline table of one scenario folder: adding a scenario adds an arm here.
fn section(scenario: Scenario, sdir: &Path, runs: &[Run]) -> String {
    match scenario {
        Scenario::Pingpong | Scenario::Latency => {
            let mut parts = vec![rows_rounds(runs, scenario == Scenario::Latency)];
            if scenario == Scenario::Pingpong {
                parts.push(throughput_note(runs));
            }
            parts.push(ROUNDS_NOTE.into());
            parts.push(c1m_loadgen::report::bound::NOTE.into());
            parts.join("\n\n")
        }
        Scenario::Hold => rows_hold(runs),
        Scenario::Churn => rows_churn(runs),
        Scenario::Http => crate::http::report::headline_section(sdir),
    }
}

/// The scenario of a folder `<stamp>-<host>-<scenario>[-frame|-http]`, and its
/// `--protocol` when not echo; None when the name ends in no scenario.
fn scenario_of(base: &str) -> Option<(Scenario, Option<&str>)> {
    let find = |w: &str| Scenario::ALL.into_iter().find(|s| s.name() == w);
    let mut words = base.rsplit('-');
    let last = words.next().unwrap_or(base);
    match (last, words.next().and_then(find)) {
        ("frame" | "http", Some(s)) => Some((s, Some(last))),
        _ => find(last).map(|s| (s, None)),
    }
}

fn base_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use c1m_machine::tempdir::TempDir;

    fn run(dir: &Path, name: &str, summary: &str, server: &str) -> PathBuf {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("summary.json"), summary).unwrap();
        if !server.is_empty() {
            std::fs::write(d.join("server.json"), server).unwrap();
        }
        d
    }

    const PP: &str = r#"{"workload": {"connections": 100, "size": 64, "rate_msgs_per_s": null},
        "throughput_msgs_per_s": 50000.4, "verify_errors": 1, "connections_failed": 2,
        "connections_established": 98, "ramp_s": 1.5,
        "connection_errors": {"ECONNRESET": 3},
        "latency": {"p50_us": 55.5, "p99_us": 120.0, "p999_us": 1234.5, "max_us": 5000.0},
        "connects_per_s": 4321.0, "connect_latency": {"p50_us": 30.0, "p99_us": 99.0, "p999_us": 150.0, "max_us": 2000.0}}"#;
    const SRV: &str = r#"{"cpu_user_s": 1.0, "cpu_sys_s": 3.0, "bytes_in": 64000000, "rss_per_peak_conn_bytes": 84.0}"#;

    #[test]
    fn scenario_and_protocol_from_the_folder_name() {
        assert_eq!(
            scenario_of("2026-01-01-1200-vm-pingpong"),
            Some((Scenario::Pingpong, None))
        );
        assert_eq!(
            scenario_of("2026-01-01-1200-vm-pingpong-frame"),
            Some((Scenario::Pingpong, Some("frame")))
        );
        assert_eq!(
            scenario_of("2026-01-01-1200-vm-hold-http"),
            Some((Scenario::Hold, Some("http")))
        );
        assert_eq!(
            scenario_of("2026-01-01-1200-vm-http"),
            Some((Scenario::Http, None))
        );
        assert_eq!(scenario_of("2026-01-01-1200-vm-notes"), None);
    }

    #[test]
    fn headline_leads_with_equal_load() {
        let t = TempDir::new();
        let sdir = t.0.join("2026-01-01-1200-my-host-pingpong");
        let a = run(&sdir, "uring-c100", PP, SRV);
        let b = run(&sdir, "epoll-c100", &PP.replace("50000.4", "30000"), "");
        std::fs::create_dir_all(sdir.join("tokio-c100")).unwrap();
        std::fs::write(sdir.join("tokio-c100/FAILED"), "server did not start\n").unwrap();
        std::fs::write(sdir.join("runs.txt"), "epoll-c100\nuring-c100\n").unwrap();
        assert_eq!(
            run_dirs(&sdir),
            vec![b.clone(), a.clone(), sdir.join("tokio-c100")]
        );
        let lat = t.0.join("2026-01-01-1200-my-host-latency");
        run(&lat, "uring-c100-r25", &PP.replace("null", "12500"), SRV);

        let h = headline(&[sdir.clone(), lat.clone(), t.0.join("x-hold")]);
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines[0], "### latency (2026-01-01-1200-my-host-latency)");
        assert_eq!(
            lines[2],
            "| point | backend | rounds | rate msgs/s | bound | srv CPU µs/msg | CPU ratio | p50 µs | p99 µs | p99.9 µs | errors |"
        );
        assert_eq!(
            lines[4],
            "| c100-r25 | uring | 1 | 12,500 | – | 4.00 | 1 | 55.5 | 120 | 1,234 | 6 |"
        );
        let pp = lines
            .iter()
            .position(|l| *l == "### pingpong (2026-01-01-1200-my-host-pingpong)")
            .expect("pingpong section");
        // Canonical backend order whatever the run order; 4 s of CPU for 1M messages;
        // no CPU figure for epoll, so no ratio.
        assert_eq!(
            lines[pp + 4],
            "| c100 | uring | 1 | 50,000 | – | 4.00 | 1 | 55.5 | 120 | 1,234 | 6 |"
        );
        assert_eq!(
            lines[pp + 5],
            "| c100 | epoll | 1 | 30,000 | – | - | - | 55.5 | 120 | 1,234 | 6 |"
        );
        assert_eq!(
            lines[pp + 6],
            "| c100 | tokio | 1 | - | – | - | - | - | - | - | 0 FAILED |"
        );
    }

    #[test]
    fn hold_and_churn_sections() {
        let t = TempDir::new();
        let d = run(&t.0, "uring", PP, SRV);
        std::fs::write(
            d.join("hold.json"),
            r#"{"teardown_s": 3, "server_processes": 1, "other_tcp_sockets_at_peak": -5,
               "slabinfo_per_connection_bytes": 9293.2, "meminfo_slab_per_connection_bytes": 9701.5}"#,
        )
        .unwrap();
        let s = section_hold(std::slice::from_ref(&d));
        let row = s.lines().nth(2).unwrap();
        assert_eq!(row, "| uring | 100 | 98 | 2 | 1.5 | 55.5 | 120 | 5,000 | - | 84 B | 9.08 KiB | 9.47 KiB | 3.0 | 1 | -5 |");
        assert!(s.contains("\n\n- slab/conn: kernel slab"));
        let c = section_churn(&[d]);
        let row = c.lines().nth(2).unwrap();
        assert_eq!(
            row,
            "| uring | 100 | 4,321 | 30 | 99 | 150 | 2,000 | 120 | 6 | 4.00 |"
        );
        assert!(c.ends_with("messages it echoed.\n"));
    }
}
