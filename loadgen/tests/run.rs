//! `c1m-loadgen run` end to end against `c1m-server` (every workload, on every backend
//! the tests cover), against misbehaving echo servers written here, and with bad input.

#[macro_use]
mod common;

use common::*;
use std::time::{Duration, Instant};

backend_tests!(
    closed_loop,
    pipelined,
    open_loop_rate,
    open_loop_poisson,
    heartbeat,
    heartbeat_with_idle_connections,
    churn,
    warmup_is_excluded,
    procs_are_merged,
    thirty_thousand_connections_past_the_fd_limit,
);

/// The run-folder checks every successful run shares.
fn check_clean(rec: &c1m_loadgen::report::RunRecord, conns: u64) {
    let s = &rec.summary;
    assert_eq!(s.verify_errors, 0, "{s:#?}");
    assert!(s.connect_errors.is_empty(), "{:?}", s.connect_errors);
    assert!(s.connection_errors.is_empty(), "{:?}", s.connection_errors);
    assert!(s.connections_established >= conns, "{s:#?}");
    assert!(s.messages_received > 0, "{s:#?}");
    assert_eq!(rec.latency.len(), s.messages_received);
    assert!(s.latency.p50_us > 0.0 && s.latency.p99_us >= s.latency.p50_us);
    assert!(!rec.intervals.is_empty());
    assert!(s.connect_latency.count >= conns);
    assert!(!s.environment.kernel.is_empty());
    assert!(!s.environment.sysctls.is_empty());
    assert!(s.environment.loadgen_cpu_us_per_msg.is_some(), "{s:#?}");
}

fn closed_loop(backend: &str) {
    let _turn = light();
    let server = Server::start(backend, &[]);
    let dir = TempDir::new("closed");
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "20",
        "--duration",
        "1",
        "--cpus",
        "1",
        "--out",
        &dir.arg("run"),
    ]);
    out.assert_success();
    let rec = read_run(&dir.join("run"));
    check_clean(&rec, 20);
    let s = &rec.summary;
    assert_eq!(s.workload.kind, "closed");
    assert_eq!(s.connections_established, 20);
    assert!(!s.coordinated_omission_corrected);
    assert!(s.max_send_lag_us.is_none());
    assert!(s.send_lag_p99_us.is_none());
    assert_eq!(s.workload.batch_waits, "auto");
    assert_eq!(s.round, None);
    assert!(out.stdout.contains("verify errors 0"), "{out}");
}

fn pipelined(backend: &str) {
    let _turn = light();
    let server = Server::start(backend, &[]);
    let dir = TempDir::new("pipeline");
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "10",
        "--duration",
        "1",
        "--pipeline",
        "4",
        "--size",
        "100",
        "--batch-waits",
        "off",
        "--cpus",
        "1",
        "--out",
        &dir.arg("run"),
    ]);
    out.assert_success();
    let rec = read_run(&dir.join("run"));
    check_clean(&rec, 10);
    assert_eq!(rec.summary.workload.batch_waits, "off");
    assert_eq!(rec.summary.workload.pipeline, 4);
    assert_eq!(rec.summary.workload.size, 100);
}

fn open_loop_rate(backend: &str) {
    let _turn = light();
    let server = Server::start(backend, &[]);
    let dir = TempDir::new("rate");
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "10",
        "--duration",
        "2",
        "--rate",
        "2000",
        "--cpus",
        "1",
        "--server-cpus",
        "0",
        "--out",
        &dir.arg("run"),
    ]);
    out.assert_success();
    let rec = read_run(&dir.join("run"));
    check_clean(&rec, 10);
    let s = &rec.summary;
    assert!(s.coordinated_omission_corrected);
    // Both sides' CPUs are known, so the run is judged; spin is part of the CPU used.
    let env = &s.environment;
    assert_eq!(env.server_cpus, vec![0]);
    let window: Vec<usize> = env.cpu_window.iter().map(|c| c.cpu).collect();
    assert!(window.contains(&0) && window.contains(&1), "{window:?}");
    let (cpu, spin) = (
        env.loadgen_cpu_pct.expect("cpu"),
        env.loadgen_spin_pct.expect("spin"),
    );
    assert!(spin >= 0.0 && spin <= cpu + 1.0, "spin {spin} of cpu {cpu}");
    assert!(s.bound.is_some(), "{s:#?}");
    assert_eq!(s.workload.arrivals.as_deref(), Some("uniform"));
    let (p50, p99, max) = (
        s.send_lag_p50_us.expect("lag p50"),
        s.send_lag_p99_us.expect("lag p99"),
        s.max_send_lag_us.expect("max lag"),
    );
    assert!(p50 <= p99 && p99 <= max, "lag {p50} {p99} {max}");
    // 2000/s for 2 s, give or take the edges of the window.
    assert!(
        (3400..=4400).contains(&s.messages_sent),
        "sent {} at 2000/s over 2 s",
        s.messages_sent
    );
    assert!(
        (1700.0..2300.0).contains(&s.throughput_msgs_per_s),
        "{s:#?}"
    );
    assert!(out.stderr.contains("[1s] conns 10 msgs/s"), "{out}");
}

/// Poisson arrivals: the same mean rate, seeded, recorded with the round.
fn open_loop_poisson(backend: &str) {
    let _turn = light();
    let server = Server::start(backend, &[]);
    let dir = TempDir::new("poisson");
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "10",
        "--duration",
        "2",
        "--rate",
        "2000",
        "--arrivals",
        "poisson",
        "--seed",
        "7",
        "--round",
        "3",
        "--cpus",
        "1",
        "--out",
        &dir.arg("run"),
    ]);
    out.assert_success();
    let rec = read_run(&dir.join("run"));
    check_clean(&rec, 10);
    let s = &rec.summary;
    assert_eq!(s.workload.arrivals.as_deref(), Some("poisson"));
    assert_eq!(s.workload.seed, Some(7));
    assert_eq!(s.round, Some(3));
    assert!(s.send_lag_p99_us.is_some());
    // 4000 exponential gaps: the count is within a few percent of 2000/s.
    assert!(
        (1600.0..2400.0).contains(&s.throughput_msgs_per_s),
        "{s:#?}"
    );
}

fn heartbeat(backend: &str) {
    let _turn = light();
    let server = Server::start(backend, &[]);
    let dir = TempDir::new("heartbeat");
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "20",
        "--duration",
        "2",
        "--heartbeat",
        "0.25",
        "--cpus",
        "1",
        "--out",
        &dir.arg("run"),
    ]);
    out.assert_success();
    let rec = read_run(&dir.join("run"));
    check_clean(&rec, 20);
    let s = &rec.summary;
    assert!(s.coordinated_omission_corrected);
    // 20 connections, one beat each every 0.25 s, for 2 s: 160.
    assert!((140..=180).contains(&s.messages_received), "{s:#?}");
}

/// The hold with both ends parking quiet connections (`--idle-after-ms 50` on the loadgen,
/// and on the server where it is uring), beats every 0.3 s so that every connection is
/// parked between beats, in every protocol: every beat answered and verified, no error,
/// and the parking happened (the loadgen's stderr line; uring: the server's counters).
fn heartbeat_with_idle_connections(backend: &str) {
    let _turn = light();
    for protocol in ["echo", "frame", "http"] {
        let dir = TempDir::new("heartbeat-idle");
        let stats = dir.arg("server.json");
        let mut flags = vec!["--protocol", protocol];
        if backend == "uring" {
            flags.extend(["--idle-after-ms", "50", "--stats-json", &stats]);
        }
        let server = Server::start(backend, &flags);
        let out = loadgen(&[
            "run",
            "--target",
            &server.target(),
            "--protocol",
            protocol,
            "--connections",
            "20",
            "--duration",
            "1.5",
            "--heartbeat",
            "0.3",
            "--idle-after-ms",
            "50",
            "--cpus",
            "1",
            "--out",
            &dir.arg("run"),
        ]);
        out.assert_success();
        let rec = read_run(&dir.join("run"));
        check_clean(&rec, 20);
        // 20 connections, one beat each every 0.3 s, for 1.5 s: 100.
        let s = &rec.summary;
        assert!(
            (80..=120).contains(&s.messages_received),
            "{protocol}: {s:#?}"
        );
        let parked = out
            .stderr
            .lines()
            .find_map(|l| l.split("idle connections: ").nth(1))
            .and_then(|rest| rest.split(' ').next()?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{protocol}: no parking line on stderr:\n{out}"));
        assert!(parked >= 20, "{protocol}: loadgen parked {parked}");
        drop(server);
        if backend == "uring" {
            let text = std::fs::read_to_string(dir.join("server.json")).expect("server.json");
            let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            assert!(json["parked"].as_u64() >= Some(20), "{protocol}: {text}");
            assert_eq!(json["conn_errors"], 0, "{protocol}: {text}");
        }
    }
}

fn churn(backend: &str) {
    let _turn = light();
    let server = Server::start(backend, &[]);
    let dir = TempDir::new("churn");
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "10",
        "--duration",
        "1",
        "--churn",
        "--cpus",
        "1",
        "--out",
        &dir.arg("run"),
    ]);
    out.assert_success();
    let rec = read_run(&dir.join("run"));
    check_clean(&rec, 10);
    let s = &rec.summary;
    assert_eq!(s.workload.kind, "churn");
    let cps = s.connects_per_s.expect("churn reports connects/s");
    assert!(cps > 50.0, "{s:#?}");
    // Each cycle connects anew: many more connects than slots, each timed.
    assert!(s.connections_established > 50, "{s:#?}");
    assert_eq!(s.connect_latency.count, s.connections_established);
    assert!(rec.connect_latency.len() > 50);
}

fn warmup_is_excluded(backend: &str) {
    let _turn = light();
    let server = Server::start(backend, &[]);
    let dir = TempDir::new("warmup");
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "5",
        "--duration",
        "1",
        "--warmup",
        "1",
        "--rate",
        "1000",
        "--cpus",
        "1",
        "--out",
        &dir.arg("run"),
    ]);
    out.assert_success();
    let rec = read_run(&dir.join("run"));
    check_clean(&rec, 5);
    let s = &rec.summary;
    assert!((0.95..=1.05).contains(&s.measured_s), "{s:#?}");
    // 1000/s: about 1000 measured, about 2000 in the interval log (warm-up kept there).
    assert!((850..=1150).contains(&s.messages_received), "{s:#?}");
    let logged: u64 = rec.intervals.iter().map(|i| i.hist.len()).sum();
    assert!(logged >= 1800, "interval log holds {logged}");
    assert_eq!(rec.latency.len(), s.messages_received);
    assert!(rec.intervals[0].start_s.abs() < 1e-6);
    assert!(rec.intervals.len() >= 2);
    // The log ends where the measured phase ends (warm-up + measured).
    let last = rec.intervals.last().expect("intervals");
    let end = last.start_s + last.length_s;
    assert!(
        (end - (1.0 + s.measured_s)).abs() < 0.01,
        "log ends at {end}"
    );
}

fn procs_are_merged(backend: &str) {
    let _turn = light();
    let server = Server::start(backend, &[]);
    let dir = TempDir::new("procs");
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "10",
        "--duration",
        "1",
        "--procs",
        "2",
        "--cpus",
        "1",
        "--server-cpus",
        "0",
        "--out",
        &dir.arg("run"),
    ]);
    out.assert_success();
    let merged = read_run(&dir.join("run"));
    check_clean(&merged, 10);
    let w0 = read_run(&dir.join("run/worker-0"));
    let w1 = read_run(&dir.join("run/worker-1"));
    assert_eq!(w0.summary.connections_established, 5);
    assert_eq!(w1.summary.connections_established, 5);
    assert_eq!(
        merged.summary.messages_received,
        w0.summary.messages_received + w1.summary.messages_received
    );
    assert_eq!(merged.summary.workload.connections, 10);
    assert_eq!(merged.summary.workload.procs, 2);
    // The loadgen's work is summed over the workers, and the mark follows from it.
    let work = |r: &c1m_loadgen::report::RunRecord| r.summary.environment.loadgen_work_pct;
    let sum = work(&w0).expect("work") + work(&w1).expect("work");
    assert!((work(&merged).expect("work") - sum).abs() < 1e-6);
    assert!(merged.summary.bound.is_some(), "{:#?}", merged.summary);
}

/// 30,000 connections from one loadgen process whose RLIMIT_NOFILE is 20,000: the
/// sockets live only in io_uring fixed-file tables. Two servers, 15,000 each.
fn thirty_thousand_connections_past_the_fd_limit(backend: &str) {
    let _turn = heavy();
    let a = Server::start(backend, &[]);
    let b = Server::start(backend, &[]);
    let dir = TempDir::new("30k");
    let started = Instant::now();
    let out = loadgen(&[
        "run",
        "--target",
        &a.target(),
        "--target",
        &b.target(),
        "--connections",
        "30000",
        "--duration",
        "1",
        "--heartbeat",
        "2",
        "--out",
        &dir.arg("run"),
    ]);
    out.assert_success();
    let rec = read_run(&dir.join("run"));
    let s = &rec.summary;
    assert_eq!(s.connections_established, 30_000, "{s:#?}");
    assert_eq!(s.connections_failed, 0, "{:?}", s.connect_errors);
    assert!(s.connection_errors.is_empty(), "{:?}", s.connection_errors);
    assert_eq!(s.verify_errors, 0);
    // A beat every 2 s for 1 s: about half the connections speak in the window.
    assert!(s.messages_received > 10_000, "{s:#?}");
    eprintln!("30k connections run took {:?}", started.elapsed());
    if s.environment.nofile_soft < 30_000 {
        assert!(out.stderr.contains("direct descriptors"), "{out}");
    }
}

#[test]
fn corrupted_echo_fails_the_run() {
    let _turn = light();
    let server = TestServer::start(corrupting_echo);
    let dir = TempDir::new("corrupt");
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "4",
        "--duration",
        "1",
        "--cpus",
        "1",
        "--out",
        &dir.arg("run"),
    ]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("failed verification"), "{out}");
    let rec = read_run(&dir.join("run"));
    // One flipped byte per connection: exactly one bad message each.
    assert_eq!(rec.summary.verify_errors, 4, "{:#?}", rec.summary);
    assert!(out.stdout.contains("verify errors 4"), "{out}");
}

#[test]
fn lost_connections_are_counted_by_cause() {
    let _turn = light();
    let server = TestServer::start(closing_echo);
    let dir = TempDir::new("closing");
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "3",
        "--duration",
        "1",
        "--cpus",
        "1",
        "--out",
        &dir.arg("run"),
    ]);
    let rec = read_run(&dir.join("run"));
    let s = &rec.summary;
    assert_eq!(s.connections_established, 3, "{out}");
    assert_eq!(
        s.connection_errors.get("EOF from server"),
        Some(&3),
        "{:?}",
        s.connection_errors
    );
}

#[test]
fn refused_connects_are_counted_not_hidden() {
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let target = format!("127.0.0.1:{port}");
    let out = loadgen(&[
        "run",
        "--target",
        &target,
        "--connections",
        "5",
        "--duration",
        "5",
        "--cpus",
        "1",
    ]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("ECONNREFUSED"), "{out}");
    assert!(out.stdout.contains("0 established, 5 failed"), "{out}");
}

#[test]
fn bad_flags_exit_2_with_advice() {
    let cases: &[(&[&str], &str)] = &[
        (&["--size", "8"], "--size 16"),
        (&["--connections", "0"], "--connections"),
        (&["--duration", "0"], "--duration"),
        (&["--duration=-1"], "--duration"),
        (&["--rate", "0"], "--rate"),
        (&["--cpus", "4096"], "--cpus"),
        (&["--source-ips", "10.0.0.9-10.0.0.1"], "backwards"),
        (&["--procs", "3", "--connections", "2"], "--procs"),
        (&["--arrivals", "poisson"], "--rate"),
        (&["--batch-waits", "sometimes"], "--batch-waits"),
    ];
    for (extra, want) in cases {
        let mut args = vec!["run", "--target", "127.0.0.1:9", "--duration", "1"];
        args.extend_from_slice(extra);
        let out = loadgen(&args);
        assert_eq!(out.code, Some(2), "{args:?}: {out}");
        assert!(
            out.stderr.contains(want),
            "{args:?} should mention {want}: {out}"
        );
    }
    let out = loadgen(&["run", "--target", "0.0.0.0:7000"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("not an address to connect to"), "{out}");
}

#[test]
fn preflight_stops_before_connecting() {
    // More connections than one (source, target) pair has ports.
    let out = loadgen(&[
        "run",
        "--target",
        "127.0.0.1:9",
        "--connections",
        "100000",
        "--duration",
        "1",
        "--heartbeat",
        "10",
    ]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("--source-ips"), "{out}");
    assert!(!out.stderr.contains("ECONNREFUSED"), "{out}");
}

#[test]
fn sigint_ends_the_run_and_still_writes_the_report() {
    let _turn = light();
    let server = Server::start("epoll", &[]);
    let dir = TempDir::new("sigint");
    let mut lg = Loadgen::start(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "5",
        "--duration",
        "60",
        "--rate",
        "500",
        "--cpus",
        "1",
        "--out",
        &dir.arg("run"),
    ]);
    std::thread::sleep(Duration::from_millis(2500));
    let sent = Instant::now();
    lg.signal(libc::SIGINT);
    let out = lg.finish(Duration::from_secs(20));
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "took {:?}",
        sent.elapsed()
    );
    out.assert_success();
    let rec = read_run(&dir.join("run"));
    let s = &rec.summary;
    assert!(s.measured_s > 1.0 && s.measured_s < 5.0, "{s:#?}");
    assert!(s.messages_received > 0);
    assert_eq!(s.verify_errors, 0);
}

#[test]
fn source_addresses_spread_connections() {
    let _turn = light();
    let server = Server::start("epoll", &[]);
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "6",
        "--duration",
        "1",
        "--source-ips",
        "127.0.0.2-127.0.0.4",
        "--cpus",
        "1",
    ]);
    out.assert_success();
    assert!(out.stdout.contains("6 established"), "{out}");
}

#[test]
fn connect_rate_paces_the_ramp() {
    let _turn = light();
    let server = Server::start("epoll", &[]);
    let dir = TempDir::new("connect-rate");
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "40",
        "--connect-rate",
        "100",
        "--duration",
        "0.5",
        "--heartbeat",
        "1",
        "--cpus",
        "1",
        "--out",
        &dir.arg("run"),
    ]);
    out.assert_success();
    let s = read_run(&dir.join("run")).summary;
    assert_eq!(s.connections_established, 40);
    // 40 connects at 100/s: the last starts about 0.39 s after the first.
    assert!((0.3..1.0).contains(&s.ramp_s), "ramp took {} s", s.ramp_s);
    assert_eq!(s.connect_latency.count, 40);
}

#[test]
fn echoes_cut_at_every_offset_verify() {
    let _turn = light();
    let server = TestServer::start(fragmenting_echo);
    let dir = TempDir::new("fragments");
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "4",
        "--pipeline",
        "3",
        "--size",
        "61",
        "--duration",
        "1",
        "--cpus",
        "1",
        "--out",
        &dir.arg("run"),
    ]);
    out.assert_success();
    let rec = read_run(&dir.join("run"));
    check_clean(&rec, 4);
}

#[test]
fn reordered_bytes_fail_the_run() {
    let _turn = light();
    let server = TestServer::start(reordering_echo);
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "2",
        "--duration",
        "1",
        "--cpus",
        "1",
    ]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stdout.contains("verify errors 2"), "{out}");
}
