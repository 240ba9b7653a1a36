//! `--metrics-listen`: the endpoint is scraped while connections are open and traffic
//! flows, and the text is read with a Prometheus parser (prometheus-parse).

#[macro_use]
mod common;

use c1m_platform::metrics::scrape;
use common::*;
use prometheus_parse::{Scrape, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

backend_tests!(
    metrics_count_traffic_while_it_flows,
    bad_metrics_address_is_a_setup_error
);

const CONNS: usize = 10;
const MSGS: usize = 100;
const SIZE: usize = 100;

/// The address from the server's `metrics: http://ADDR/metrics` line (printed before
/// "listening on", but stderr is read by another thread: wait for it, bounded).
fn metrics_addr(server: &Server) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stderr = server.stderr();
        // Only a whole line: stderr may be read while the line is half written.
        if let Some(addr) = stderr
            .lines()
            .find_map(|l| l.strip_prefix("metrics: http://")?.strip_suffix("/metrics"))
        {
            return addr
                .parse()
                .unwrap_or_else(|e| panic!("bad metrics address {addr:?}: {e}"));
        }
        assert!(
            Instant::now() < deadline,
            "no `metrics: http://` line on stderr:\n{stderr}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn parsed(addr: SocketAddr) -> Scrape {
    let (status, body) = scrape(addr, Duration::from_secs(5)).expect("scraping /metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text")
}

/// The value of `name` with label `label` (or none), as a number.
fn value(s: &Scrape, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == name && label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
        .map(|x| match x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

fn get(s: &Scrape, name: &str) -> f64 {
    value(s, name, None).unwrap_or_else(|| panic!("{name} missing"))
}

/// Scrapes until `done` holds (bounded); the last scrape either way.
fn scrape_until(addr: SocketAddr, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = parsed(addr);
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every counter in `later` is at least what it was in `earlier`.
fn counters_only_grow(earlier: &Scrape, later: &Scrape) {
    for e in &earlier.samples {
        if let Value::Counter(before) = e.value {
            let after = later
                .samples
                .iter()
                .find(|l| l.metric == e.metric && l.labels == e.labels)
                .map(|l| match l.value {
                    Value::Counter(v) => v,
                    _ => f64::NAN,
                });
            assert!(
                after.is_some_and(|a| a >= before),
                "{} {:?} went from {before} to {after:?}",
                e.metric,
                e.labels
            );
        }
    }
}

fn metrics_count_traffic_while_it_flows(backend: &str) {
    if backend == "go" {
        eprintln!("skipping: the Go reference server has no metrics endpoint");
        return;
    }
    let server = Server::start(backend, &["--metrics-listen", "127.0.0.1:0"]);
    let addr = metrics_addr(&server);
    let idle = parsed(addr);
    assert_eq!(get(&idle, "c1m_server_open_connections"), 0.0);

    let mut conns: Vec<_> = (0..CONNS).map(|_| server.connect()).collect();
    let msg = [7u8; SIZE];
    for c in &mut conns {
        for _ in 0..MSGS {
            echo(c, &msg).expect("echo");
        }
    }
    let bytes = (CONNS * MSGS * SIZE) as f64;
    // Scraped with the connections open; a send is counted when its completion is seen,
    // which may be just after the client read the echo.
    let busy = scrape_until(addr, |s| get(s, "c1m_server_bytes_out_total") >= bytes);
    assert_eq!(get(&busy, "c1m_server_open_connections"), CONNS as f64);
    assert_eq!(get(&busy, "c1m_server_peak_connections"), CONNS as f64);
    assert_eq!(get(&busy, "c1m_server_accepted_total"), CONNS as f64);
    assert_eq!(get(&busy, "c1m_server_bytes_in_total"), bytes);
    assert_eq!(get(&busy, "c1m_server_bytes_out_total"), bytes);
    assert!(get(&busy, "c1m_server_recvs_total") >= (CONNS * MSGS) as f64 / 2.0);
    for reason in ["max_conns", "fd_limit", "fixed_table"] {
        let refused = value(&busy, "c1m_server_refused_total", Some(("reason", reason)));
        assert_eq!(refused, Some(0.0), "refused {reason}");
    }
    assert_eq!(get(&busy, "c1m_server_proto_errors_total"), 0.0);
    counters_only_grow(&idle, &busy);

    let per_loop = |s: &Scrape, name: &str| value(s, name, Some(("loop", "0")));
    if matches!(backend, "uring" | "epoll") {
        let enters = per_loop(&busy, "c1m_server_loop_enters_total").expect("enters");
        let completions = per_loop(&busy, "c1m_server_loop_completions_total").expect("cqes");
        assert!(enters > 0.0 && completions >= (CONNS * MSGS) as f64 / 2.0);
    }
    if backend == "uring" {
        assert_eq!(
            per_loop(&busy, "c1m_server_loop_cq_overflows_total"),
            Some(0.0)
        );
        assert!(per_loop(&busy, "c1m_server_loop_cq_overflow_batches_total").is_some());
        let in_use = per_loop(&busy, "c1m_server_loop_buffers_in_use").expect("buffers");
        assert!((0.0..=1024.0).contains(&in_use), "{in_use}");
    }

    drop(conns);
    let after = scrape_until(addr, |s| get(s, "c1m_server_open_connections") == 0.0);
    assert_eq!(get(&after, "c1m_server_open_connections"), 0.0);
    assert_eq!(get(&after, "c1m_server_closed_total"), CONNS as f64);
    counters_only_grow(&busy, &after);
}

fn bad_metrics_address_is_a_setup_error(backend: &str) {
    if backend == "go" {
        eprintln!("skipping: the Go reference server has no metrics endpoint");
        return;
    }
    let args = [
        "--backend",
        backend,
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "localhost",
    ];
    let (status, stderr) = run_to_exit(backend, &args, Duration::from_secs(10));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--metrics-listen localhost"), "{stderr}");
    assert!(stderr.contains("127.0.0.1:9100"), "{stderr}");
}
