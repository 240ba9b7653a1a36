//! Faults: the server killed mid-run, the loadgen killed mid-run, a server at capacity.
//! The loadgen must tell loss from corruption and stop when nothing is left to measure.

#[macro_use]
mod common;

use common::*;
use std::time::{Duration, Instant};

backend_tests!(
    server_killed_mid_run_stops_the_run,
    server_at_capacity_is_not_corruption,
    loadgen_killed_mid_run_frees_the_server,
);

/// SIGKILL the server 2 s into an 8 s run: the loadgen stops within seconds, exits
/// non-zero naming the cause, and still writes its report, with no verify errors.
fn server_killed_mid_run_stops_the_run(backend: &str) {
    let _turn = light();
    let mut server = Server::start(backend, &[]);
    let dir = TempDir::new("killed-server");
    let started = Instant::now();
    let lg = Loadgen::start(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "100",
        "--duration",
        "8",
        "--cpus",
        "1",
        "--out",
        &dir.arg("run"),
    ]);
    std::thread::sleep(Duration::from_secs(2));
    server.kill();
    let out = lg.finish(RUN_TIMEOUT);
    let took = started.elapsed();
    assert_eq!(out.code, Some(3), "{backend}: {out}");
    assert!(
        took < Duration::from_secs(8),
        "{backend}: ran {took:?} after the server died: {out}"
    );
    assert!(out.stderr.contains("stopped early"), "{backend}: {out}");
    let s = read_run(&dir.join("run")).summary;
    assert_eq!(s.verify_errors, 0, "{backend}: {out}");
    assert_eq!(
        s.connection_losses.total(),
        100,
        "{backend}: {:?}",
        s.connection_losses
    );
    assert!(s.stopped_early.is_some(), "{backend}: {out}");
}

/// A server that holds about 50 connections (RLIMIT_NOFILE 64) and 150 heartbeat
/// connections: the extra ones are closed at connect time; the loadgen says so, exits 3,
/// and reports no verify error.
fn server_at_capacity_is_not_corruption(backend: &str) {
    let _turn = light();
    let server = Server::start_limited(backend, &[], Some(64));
    let dir = TempDir::new("capacity");
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "150",
        "--heartbeat",
        "0.2",
        "--duration",
        "2",
        "--cpus",
        "1",
        "--out",
        &dir.arg("run"),
    ]);
    assert_eq!(out.code, Some(3), "{backend}: {out}");
    assert!(out.stderr.contains("at capacity"), "{backend}: {out}");
    assert!(
        !out.stderr.contains("corrupt or out of order"),
        "{backend}: {out}"
    );
    let s = read_run(&dir.join("run")).summary;
    assert_eq!(s.verify_errors, 0, "{backend}: {out}");
    assert!(
        s.connection_losses.before_first_echo >= 50,
        "{backend}: {:?}",
        s.connection_losses
    );
}

/// SIGKILL the loadgen mid-run with 300 connections busy: the server frees every
/// connection (its final report says none open), its RSS falls back near the baseline,
/// and it serves the next run cleanly.
fn loadgen_killed_mid_run_frees_the_server(backend: &str) {
    let _turn = heavy();
    let server = Server::start(backend, &[]);
    let rss = |pid: u32| c1m_platform::procfs::pid_status_bytes(pid, "VmRSS").unwrap_or(0);
    let baseline = rss(server.pid());
    let mut lg = Loadgen::start(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "300",
        "--pipeline",
        "4",
        "--duration",
        "20",
        "--cpus",
        "1",
    ]);
    std::thread::sleep(Duration::from_secs(3));
    lg.signal(libc::SIGKILL);
    let _ = lg.finish(Duration::from_secs(10));
    // Every slot and buffer back: RSS near the baseline within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    while rss(server.pid()) > baseline + (16 << 20) {
        assert!(
            Instant::now() < deadline,
            "{backend}: RSS {} KiB stays far above the baseline {} KiB",
            rss(server.pid()) >> 10,
            baseline >> 10
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every connection closed on the server's side too: none left established or
    // waiting for the server to close (CLOSE_WAIT) on its port.
    let port = server.addr.port();
    while server_side_sockets(port) > 0 {
        assert!(
            Instant::now() < deadline,
            "{backend}: {} connections still open on the server's port {port}",
            server_side_sockets(port)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "50",
        "--duration",
        "1",
        "--cpus",
        "1",
    ]);
    out.assert_success();
}

/// TCP sockets whose local port is `port` and that are ESTABLISHED or in CLOSE_WAIT
/// (the peer closed, the server has not yet): the server's open connections.
fn server_side_sockets(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = f
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            local_port == Some(port) && matches!(f.get(3), Some(&"01") | Some(&"08"))
        })
        .count()
}

backend_tests!(accept_storm_fails_no_connect);

/// Churn at full speed with 2000 connections connecting at once: every connect the
/// server could serve succeeds, every echo verifies.
fn accept_storm_fails_no_connect(backend: &str) {
    let _turn = heavy();
    let server = Server::start(backend, &[]);
    let dir = TempDir::new("storm");
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "2000",
        "--churn",
        "--duration",
        "2",
        "--cpus",
        "1",
        "--out",
        &dir.arg("run"),
    ]);
    out.assert_success();
    let s = read_run(&dir.join("run")).summary;
    assert!(
        s.connect_errors.is_empty(),
        "{backend}: {:?}",
        s.connect_errors
    );
    assert_eq!(s.verify_errors, 0, "{backend}: {out}");
}

/// The uring server with a 16-entry completion queue (it overflows under this burst:
/// multishots end and are re-armed): not one byte is lost or reordered.
#[test]
fn tiny_completion_queue_loses_no_byte() {
    let _turn = light();
    let server = Server::start("uring", &["--cq-entries", "16"]);
    let dir = TempDir::new("tiny-cq");
    let out = loadgen(&[
        "run",
        "--target",
        &server.target(),
        "--connections",
        "200",
        "--pipeline",
        "8",
        "--duration",
        "2",
        "--cpus",
        "1",
        "--out",
        &dir.arg("run"),
    ]);
    out.assert_success();
    let s = read_run(&dir.join("run")).summary;
    assert_eq!(
        (s.verify_errors, s.lost_echoes, s.unanswered_echoes),
        (0, 0, 0),
        "{out}"
    );
    assert!(s.messages_received > 1000, "{out}");
}
