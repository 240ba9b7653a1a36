//! wrk, the outside reference client of the http scenario: its command line, its output
//! ([`parse`]) and that output as the run folder's summary.json ([`summary_json`]), in
//! the keys of c1m-loadgen's summary.json so that every report reads both alike.
//!
//! wrk is closed loop only (each connection sends its next request when the answer
//! came), and `--latency` prints the 50/75/90/99th percentiles, no 99.9th; its latency
//! is not corrected for coordinated omission.

use anyhow::{bail, Context as _};
use serde_json::{json, Map, Value};
use std::path::Path;

/// Whole seconds for wrk's `-d` (it takes integers only): `s` rounded up, at least 1.
pub fn whole_secs(s: f64) -> u64 {
    (s.ceil() as u64).max(1)
}

/// `taskset -c CPUS wrk -t T -c C -d Ds --latency URL`: T = one thread per client CPU.
pub fn argv(
    taskset: &Path,
    wrk: &Path,
    cpus: &str,
    conns: u64,
    secs: u64,
    url: &str,
) -> Vec<String> {
    let threads = cpus.split(',').filter(|c| !c.is_empty()).count().max(1) as u64;
    vec![
        taskset.display().to_string(),
        "-c".into(),
        cpus.into(),
        wrk.display().to_string(),
        "-t".into(),
        threads.min(conns.max(1)).to_string(),
        "-c".into(),
        conns.to_string(),
        "-d".into(),
        format!("{secs}s"),
        "--latency".into(),
        url.into(),
    ]
}

/// wrk's "Socket errors" line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SocketErrors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    /// Requests without an answer within wrk's `--timeout` (2 s by default).
    pub timeout: u64,
}

/// What one wrk run printed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub threads: u64,
    pub connections: u64,
    pub requests: u64,
    /// The run's length as wrk measured it (connects included).
    pub duration_s: f64,
    pub requests_per_s: f64,
    pub latency_avg_us: f64,
    pub latency_stdev_us: f64,
    pub latency_max_us: f64,
    /// (percentile, µs) from `--latency`: 50, 75, 90, 99.
    pub percentiles: Vec<(f64, f64)>,
    pub socket_errors: SocketErrors,
    /// Answers with a status of 400 or more ("Non-2xx or 3xx responses").
    pub non_2xx_3xx: u64,
}

impl Report {
    pub fn percentile(&self, p: f64) -> Option<f64> {
        self.percentiles
            .iter()
            .find(|(q, _)| *q == p)
            .map(|(_, v)| *v)
    }
}

/// A wrk time ("812.00us", "6.35ms", "1.02s", "1.50m", "2.00h") in microseconds.
pub fn time_us(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(v * scale)
}

/// The number after `key` in `line` ("connect 0, read 3" with key "read" -> 3).
fn count_after(line: &str, key: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == key)
        .and_then(|w| w[1].trim_end_matches(',').parse().ok())
        .unwrap_or(0)
}

/// Parses wrk's output (what it prints on stdout with `--latency`). An output without
/// its "N requests in" line (wrk could not connect, or was stopped) is an error that
/// quotes it.
pub fn parse(text: &str) -> anyhow::Result<Report> {
    let mut r = Report::default();
    let mut seen_total = false;
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            [t, "threads", "and", c, "connections"] => {
                r.threads = t.parse().unwrap_or(0);
                r.connections = c.parse().unwrap_or(0);
            }
            ["Latency", avg, stdev, max, _] => {
                r.latency_avg_us = time_us(avg).context("wrk's Latency line")?;
                r.latency_stdev_us = time_us(stdev).context("wrk's Latency line")?;
                r.latency_max_us = time_us(max).context("wrk's Latency line")?;
            }
            [p, v] if p.ends_with('%') && !p.starts_with('+') => {
                let q: f64 = p
                    .trim_end_matches('%')
                    .parse()
                    .context("wrk's percentile")?;
                r.percentiles
                    .push((q, time_us(v).context("wrk's percentile")?));
            }
            [n, "requests", "in", d, ..] => {
                r.requests = n.parse().context("wrk's request count")?;
                r.duration_s = time_us(d.trim_end_matches(',')).context("wrk's duration")? / 1e6;
                seen_total = true;
            }
            ["Socket", "errors:", ..] => {
                r.socket_errors = SocketErrors {
                    connect: count_after(line, "connect"),
                    read: count_after(line, "read"),
                    write: count_after(line, "write"),
                    timeout: count_after(line, "timeout"),
                };
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => r.non_2xx_3xx = n.parse().unwrap_or(0),
            ["Requests/sec:", v] => r.requests_per_s = v.parse().context("wrk's Requests/sec")?,
            _ => {}
        }
    }
    if !seen_total {
        let head: String = text.lines().take(3).collect::<Vec<_>>().join(" / ");
        bail!("wrk printed no result (\"N requests in\" line): {head}");
    }
    Ok(r)
}

/// Where a wrk run belongs, for its summary.json.
pub struct Meta<'a> {
    pub label: &'a str,
    pub round: Option<u32>,
    pub start_time: &'a str,
    pub command_line: &'a [String],
    pub url: &'a str,
    pub warmup_s: u64,
    pub loadgen_cpus: &'a str,
}

/// The run folder's summary.json for a wrk run: c1m-loadgen's keys where wrk has the
/// number (throughput, latency percentiles, errors), absent where it has not (p99.9,
/// connections established). Errors map as c1m-loadgen counts them: connect errors are
/// failed connects, read/write errors and timeouts connection errors, answers with a
/// status of 400 or more verify errors.
pub fn summary_json(r: &Report, m: &Meta) -> Value {
    let mut latency = Map::new();
    latency.insert("mean_us".into(), json!(r.latency_avg_us));
    for (q, v) in &r.percentiles {
        let key = format!("p{}_us", q.to_string().replace('.', ""));
        latency.insert(key, json!(v));
    }
    latency.insert("max_us".into(), json!(r.latency_max_us));
    let e = &r.socket_errors;
    let mut conn_errors = Map::new();
    for (k, v) in [
        ("read error", e.read),
        ("write error", e.write),
        ("timeout (no answer within 2 s)", e.timeout),
    ] {
        if v > 0 {
            conn_errors.insert(k.into(), json!(v));
        }
    }
    let cpus: Vec<u64> = m
        .loadgen_cpus
        .split(',')
        .filter_map(|c| c.parse().ok())
        .collect();
    json!({
        "label": m.label,
        "client": "wrk",
        "start_time": m.start_time,
        "environment": {"command_line": m.command_line, "loadgen_cpus": cpus},
        "workload": {
            "kind": "closed", "protocol": "http", "targets": [m.url],
            "connections": r.connections, "threads": r.threads, "pipeline": 1,
            "duration_s": r.duration_s, "warmup_s": m.warmup_s,
        },
        "connections_failed": e.connect,
        "connection_errors": conn_errors,
        "messages_received": r.requests,
        "verify_errors": r.non_2xx_3xx,
        "measured_s": r.duration_s,
        "throughput_msgs_per_s": r.requests_per_s,
        "latency": latency,
        "latency_stdev_us": r.latency_stdev_us,
        "coordinated_omission_corrected": false,
        "round": m.round,
        "warnings": ["wrk: closed loop only; latency percentiles 50/75/90/99 (no 99.9), not corrected for coordinated omission; the warm-up is a separate wrk run just before this one"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "Running 3s test @ http://127.0.0.1:7150/
  1 threads and 1000 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     8.70ms    7.78ms  64.05ms   85.66%
    Req/Sec    89.36k    42.46k  157.66k    62.07%
  Latency Distribution
     50%    5.86ms
     75%   11.97ms
     90%   19.12ms
     99%   36.74ms
  262555 requests in 3.05s, 41.06MB read
Requests/sec:  86065.43
Transfer/sec:     13.46MB
";

    #[test]
    fn times_in_every_unit() {
        assert_eq!(time_us("812.00us"), Some(812.0));
        assert_eq!(time_us("6.35ms"), Some(6350.0));
        assert_eq!(time_us("1.02s"), Some(1_020_000.0));
        assert_eq!(time_us("1.50m"), Some(90e6));
        assert_eq!(time_us("2.00h"), Some(7200e6));
        assert_eq!(time_us("5"), None);
        assert_eq!(time_us("5xs"), None);
    }

    #[test]
    fn parses_a_clean_run() {
        let r = parse(OUT).unwrap();
        assert_eq!((r.threads, r.connections, r.requests), (1, 1000, 262_555));
        assert!((r.duration_s - 3.05).abs() < 1e-9);
        assert_eq!(r.requests_per_s, 86065.43);
        assert_eq!(
            (r.latency_avg_us, r.latency_stdev_us, r.latency_max_us),
            (8700.0, 7780.0, 64050.0)
        );
        assert_eq!(
            r.percentiles,
            vec![
                (50.0, 5860.0),
                (75.0, 11970.0),
                (90.0, 19120.0),
                (99.0, 36740.0)
            ]
        );
        assert_eq!(r.percentile(99.0), Some(36740.0));
        assert_eq!(r.percentile(99.9), None);
        assert_eq!(
            (r.socket_errors.clone(), r.non_2xx_3xx),
            (SocketErrors::default(), 0)
        );
    }

    #[test]
    fn parses_errors_and_refuses_no_result() {
        let text = OUT.replace(
            "Requests/sec:",
            "  Socket errors: connect 3, read 1, write 0, timeout 12\n  Non-2xx or 3xx responses: 5\nRequests/sec:",
        );
        let r = parse(&text).unwrap();
        assert_eq!(
            r.socket_errors,
            SocketErrors {
                connect: 3,
                read: 1,
                write: 0,
                timeout: 12
            }
        );
        assert_eq!(r.non_2xx_3xx, 5);
        let e = parse("unable to connect to 127.0.0.1:7150 Connection refused\n").unwrap_err();
        assert!(e.to_string().contains("Connection refused"), "{e}");
        assert!(parse(&OUT.replace("8.70ms", "8.70xx")).is_err());
    }

    #[test]
    fn summary_in_the_loadgen_keys() {
        let text = OUT.replace(
            "Requests/sec:",
            "  Socket errors: connect 3, read 1, write 0, timeout 12\n  Non-2xx or 3xx responses: 5\nRequests/sec:",
        );
        let r = parse(&text).unwrap();
        let argv = vec!["wrk".to_string()];
        let s = summary_json(
            &r,
            &Meta {
                label: "nginx-wrk-c1000",
                round: Some(2),
                start_time: "2026-11-30T18:00:00Z",
                command_line: &argv,
                url: "http://127.0.0.1:7150/",
                warmup_s: 1,
                loadgen_cpus: "1",
            },
        );
        assert_eq!(s["throughput_msgs_per_s"], json!(86065.43));
        assert_eq!(s["latency"]["p50_us"], json!(5860.0));
        assert_eq!(s["latency"]["p99_us"], json!(36740.0));
        assert_eq!(s["latency"]["p75_us"], json!(11970.0));
        assert!(s["latency"].get("p999_us").is_none());
        assert_eq!(s["verify_errors"], json!(5));
        assert_eq!(s["connections_failed"], json!(3));
        assert_eq!(s["connection_errors"]["read error"], json!(1));
        assert!(s["connection_errors"].get("write error").is_none());
        assert_eq!(s["round"], json!(2));
        assert_eq!(s["workload"]["connections"], json!(1000));
        assert_eq!(s["environment"]["loadgen_cpus"], json!([1]));
        // The kit's readers take it like a loadgen's summary.json.
        let t = c1m_machine::tempdir::TempDir::new();
        std::fs::write(t.0.join("summary.json"), s.to_string()).unwrap();
        let run = c1m_loadgen::report::casedir::RunFolder::read(&t.0).expect("reads");
        assert_eq!(run.errors(), Some(5.0 + 3.0 + 1.0 + 12.0));
        assert_eq!(run.get(|s| s.latency.p90_us), Some(19120.0));
    }

    #[test]
    fn the_command_line() {
        let a = argv(
            Path::new("/usr/bin/taskset"),
            Path::new("/usr/bin/wrk"),
            "1",
            1000,
            5,
            "http://127.0.0.1:7000/",
        );
        assert_eq!(
            a.join(" "),
            "/usr/bin/taskset -c 1 /usr/bin/wrk -t 1 -c 1000 -d 5s --latency http://127.0.0.1:7000/"
        );
        let a = argv(Path::new("t"), Path::new("w"), "2,3", 1000, 5, "u");
        assert_eq!(a[5], "2");
        assert_eq!(
            (whole_secs(2.0), whole_secs(2.5), whole_secs(0.5)),
            (2, 3, 1)
        );
    }
}
