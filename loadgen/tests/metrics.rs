//! `--metrics-listen` on the server and the loadgen at once: both endpoints are scraped
//! while the run goes on and parsed with a Prometheus parser (prometheus-parse); the
//! loadgen's latency histogram agrees with its counters in every scrape and, at the end,
//! with the run folder it wrote.

#[macro_use]
mod common;

use common::*;
use prometheus_parse::{Scrape, Value};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

backend_tests!(both_endpoints_scraped_during_a_run);

/// A child whose stdout and stderr lines are kept as they come; SIGTERM, then SIGKILL,
/// on drop.
struct Watched {
    child: Child,
    lines: Arc<Mutex<String>>,
}

impl Watched {
    fn spawn(bin: std::path::PathBuf, args: &[&str]) -> Watched {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("spawning");
        let lines = Arc::new(Mutex::new(String::new()));
        let pipes: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("stdout")),
            Box::new(child.stderr.take().expect("stderr")),
        ];
        for pipe in pipes {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(mut all) = lines.lock() {
                        all.push_str(&line);
                        all.push('\n');
                    }
                }
            });
        }
        Watched { child, lines }
    }

    fn output(&self) -> String {
        self.lines.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The rest of the first line that starts with `prefix` (bounded wait).
    fn line_after(&self, prefix: &str) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let out = self.output();
            if let Some(rest) = out.lines().find_map(|l| l.strip_prefix(prefix)) {
                return rest.trim().to_string();
            }
            assert!(Instant::now() < deadline, "no {prefix:?} line in:\n{out}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn metrics_addr(&self) -> SocketAddr {
        let url = self.line_after("metrics: http://");
        let addr = url.trim_end_matches("/metrics");
        addr.parse()
            .unwrap_or_else(|e| panic!("bad metrics address {addr:?}: {e}"))
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        signal(&mut self.child, libc::SIGTERM);
        wait_bounded(&mut self.child, Duration::from_secs(10));
    }
}

fn parsed(addr: SocketAddr) -> Scrape {
    let (status, body) =
        c1m_platform::metrics::scrape(addr, Duration::from_secs(5)).expect("scraping /metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text")
}

fn get(s: &Scrape, name: &str) -> f64 {
    s.samples
        .iter()
        .find(|x| x.metric == name)
        .and_then(|x| match x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{name} missing"))
}

/// The histogram's buckets: cumulative, ending at +Inf = `_count`.
fn check_histogram(s: &Scrape, name: &str) -> f64 {
    let count = get(s, &format!("{name}_count"));
    let buckets = s
        .samples
        .iter()
        .find_map(|x| match (&x.value, x.metric == name) {
            (Value::Histogram(b), true) => Some(b.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{name} buckets missing"));
    for w in buckets.windows(2) {
        assert!(
            w[0].less_than < w[1].less_than && w[0].count <= w[1].count,
            "{buckets:?}"
        );
    }
    let last = buckets.last().expect("buckets");
    assert!(
        last.less_than.is_infinite() && last.count == count,
        "{buckets:?}"
    );
    count
}

fn counters_only_grow(earlier: &Scrape, later: &Scrape) {
    for e in &earlier.samples {
        let Value::Counter(before) = e.value else {
            continue;
        };
        let after = later
            .samples
            .iter()
            .find(|l| l.metric == e.metric && l.labels == e.labels);
        assert!(
            matches!(after.map(|a| &a.value), Some(Value::Counter(a)) if *a >= before),
            "{} {:?} went from {before} to {after:?}",
            e.metric,
            e.labels
        );
    }
}

fn both_endpoints_scraped_during_a_run(backend: &str) {
    let _turn = light();
    let server = Watched::spawn(
        server_bin(),
        &[
            "--backend",
            backend,
            "--listen",
            "127.0.0.1:0",
            "--cpus",
            "0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let target = server.line_after("listening on ");
    let server_metrics = server.metrics_addr();
    let dir = TempDir::new("metrics");
    let mut loadgen = Watched::spawn(
        loadgen_bin(),
        &[
            "run",
            "--target",
            &target,
            "--connections",
            "20",
            "--rate",
            "2000",
            "--duration",
            "3",
            "--cpus",
            "1",
            "--out",
            &dir.arg("run"),
            "--metrics-listen",
            "127.0.0.1:0",
            "--metrics-linger",
            "60",
        ],
    );
    let loadgen_metrics = loadgen.metrics_addr();

    // Scrape both until the loadgen says its values are final.
    let deadline = Instant::now() + RUN_TIMEOUT;
    let (mut lg, mut sv): (Vec<Scrape>, Vec<Scrape>) = (Vec::new(), Vec::new());
    loop {
        assert!(Instant::now() < deadline, "{}", loadgen.output());
        lg.push(parsed(loadgen_metrics));
        sv.push(parsed(server_metrics));
        let s = lg.last().expect("a scrape");
        // In every scrape the histogram and the counters describe the same instant.
        let answered = check_histogram(s, "c1m_loadgen_latency_seconds");
        assert_eq!(answered, get(s, "c1m_loadgen_received_total"));
        assert_eq!(get(s, "c1m_loadgen_verify_errors_total"), 0.0);
        if get(s, "c1m_loadgen_running") == 0.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    for w in lg.windows(2).chain(sv.windows(2)) {
        counters_only_grow(&w[0], &w[1]);
    }
    // Scraped during the run, not only after it.
    let during = lg
        .iter()
        .zip(&sv)
        .find(|(l, _)| {
            get(l, "c1m_loadgen_running") == 1.0 && get(l, "c1m_loadgen_received_total") > 0.0
        })
        .unwrap_or_else(|| panic!("no scrape while messages flowed; {} scrapes", lg.len()));
    assert_eq!(get(during.0, "c1m_loadgen_open_connections"), 20.0);
    assert_eq!(get(during.1, "c1m_server_open_connections"), 20.0);
    assert!(get(during.1, "c1m_server_bytes_in_total") > 0.0);

    // The final values agree with the run folder (written, then the result line, then
    // the linger).
    loadgen.line_after("rate-20c: ");
    let last = lg.last().expect("a scrape");
    let rec = c1m_loadgen::report::read_run_dir(&dir.join("run")).expect("run folder");
    let in_log: u64 = rec.intervals.iter().map(|i| i.hist.len()).sum();
    let s = &rec.summary;
    assert_eq!(
        get(last, "c1m_loadgen_latency_seconds_count"),
        in_log as f64
    );
    assert_eq!(get(last, "c1m_loadgen_received_total"), in_log as f64);
    assert!(s.messages_received > 0 && s.messages_received <= in_log);
    assert!(get(last, "c1m_loadgen_sent_total") >= s.messages_sent as f64);
    assert_eq!(
        get(last, "c1m_loadgen_connections_established_total"),
        s.connections_established as f64
    );
    assert_eq!(
        get(last, "c1m_loadgen_verify_errors_total"),
        s.verify_errors as f64
    );
    let lag = check_histogram(last, "c1m_loadgen_send_lag_seconds");
    assert!(
        lag > 0.0 && lag <= get(last, "c1m_loadgen_sent_total"),
        "{lag}"
    );
    let bytes_in = get(sv.last().expect("a scrape"), "c1m_server_bytes_in_total");
    assert!(bytes_in >= s.messages_sent as f64 * s.workload.request_bytes as f64);

    // A signal ends the linger; the run's own exit status follows.
    loadgen.signal_term();
    let status = wait_bounded(&mut loadgen.child, Duration::from_secs(10));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{}",
        loadgen.output()
    );
}

impl Watched {
    fn signal_term(&mut self) {
        signal(&mut self.child, libc::SIGTERM);
    }
}
