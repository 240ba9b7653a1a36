//! Limits every backend enforces: back-pressure on a client that does not read,
//! `--max-conns`, `--idle-timeout`.

#[macro_use]
mod common;

use common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

backend_tests!(
    back_pressure_bounds_memory,
    max_conns_rejects_extra_connections,
    idle_timeout_closes_only_idle_connections,
);

/// A client writes 64 MiB without reading. The server must stop reading it once its echo
/// backs up, so the writer blocks and the server's RSS grows by far less than what was
/// written; once the client reads, every byte comes back.
fn back_pressure_bounds_memory(backend: &str) {
    const TOTAL: u64 = 64 << 20;
    const MAX_GROWTH: u64 = 32 << 20;
    let mut server = Server::start(backend, &[]);
    let mut writer = server.connect();
    let mut reader = writer.try_clone().expect("cloning a socket");
    echo(&mut writer, b"warm up").expect("first echo");
    let rss_before = server.rss();

    let progress = Arc::new(AtomicU64::new(0));
    let written = progress.clone();
    let w = spawn_bounded("writer", move || {
        let mut pattern = Pattern::new(11);
        let mut buf = vec![0u8; 64 << 10];
        while written.load(Ordering::Relaxed) < TOTAL {
            pattern.fill(&mut buf);
            // Blocks once the server stops reading; resumes when the reader drains.
            std::io::Write::write_all(&mut writer, &buf).map_err(|e| {
                format!("write after {} bytes: {e}", written.load(Ordering::Relaxed))
            })?;
            written.fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
        Ok::<_, String>(())
    });

    // Wait until the writer has been stuck for a while: every buffer on the way is full.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = (0, Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = progress.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() >= Duration::from_millis(700) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{backend}: the writer never stalled"
        );
    }
    let stalled_at = progress.load(Ordering::Relaxed);
    let growth = server.rss().saturating_sub(rss_before);
    server.assert_running();
    eprintln!(
        "{backend}: writer stalled at {} KiB, server RSS +{} KiB",
        stalled_at >> 10,
        growth >> 10
    );
    assert!(
        stalled_at < TOTAL,
        "{backend}: the server took all {TOTAL} bytes without the client reading"
    );
    assert!(
        growth < MAX_GROWTH,
        "{backend}: server RSS grew by {} MiB while the client wrote {} MiB without reading",
        growth >> 20,
        stalled_at >> 20
    );

    let r = spawn_bounded("reader", move || {
        read_pattern(
            &mut reader,
            Pattern::new(11),
            TOTAL,
            64 << 10,
            &mut Rng::new(12),
        )
    });
    let (w, r) = (
        w.join(Duration::from_secs(60)),
        r.join(Duration::from_secs(60)),
    );
    assert_eq!(
        (w, r),
        (Ok(()), Ok(())),
        "{backend} (stalled at {stalled_at})"
    );
}

/// With `--max-conns 5` the sixth connection is closed at once while the first five keep
/// echoing; when one of them closes, a new connection is served.
fn max_conns_rejects_extra_connections(backend: &str) {
    let server = Server::start(backend, &["--max-conns", "5"]);
    let mut open: Vec<_> = (0..5)
        .map(|i| {
            let mut s = server.connect();
            // Echo before the next connect, so the server has counted this one.
            echo(&mut s, format!("conn {i}").as_bytes())
                .unwrap_or_else(|e| panic!("{backend}: connection {i} of 5: {e}"));
            s
        })
        .collect();

    let mut sixth = server.connect();
    match expect_closed(&mut sixth, Duration::from_secs(3)) {
        Ok(after) => assert!(after < Duration::from_secs(2), "{backend}: closed late"),
        Err(e) => panic!("{backend}: the sixth connection was not closed: {e}"),
    }
    for (i, s) in open.iter_mut().enumerate() {
        echo(s, b"still here").unwrap_or_else(|e| panic!("{backend}: connection {i}: {e}"));
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while !server.stderr().contains("--max-conns 5 reached") {
        assert!(
            Instant::now() < deadline,
            "{backend}: no line saying --max-conns was reached:
{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    drop(open.remove(0));
    // The server sees that close a moment later: retry until a newcomer is served.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = server.connect();
        match echo(&mut s, b"my turn") {
            Ok(()) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "{backend}: no new connection served after one of five closed: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for (i, s) in open.iter_mut().enumerate() {
        echo(s, b"and still").unwrap_or_else(|e| panic!("{backend}: connection {i}: {e}"));
    }
}

/// With `--idle-timeout 1` a silent connection is closed within a few seconds, while one
/// that echoes every 200 ms stays open.
fn idle_timeout_closes_only_idle_connections(backend: &str) {
    let server = Server::start(backend, &["--idle-timeout", "1"]);
    let mut idle = server.connect();
    echo(&mut idle, b"hello, then silence").expect("first echo");
    let mut active = server.connect();
    let a = spawn_bounded("active", move || {
        let until = Instant::now() + Duration::from_millis(2500);
        let mut n = 0;
        while Instant::now() < until {
            echo(&mut active, b"keepalive").map_err(|e| format!("echo {n}: {e}"))?;
            n += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok::<_, String>(n)
    });
    match expect_closed(&mut idle, Duration::from_secs(5)) {
        Ok(after) => assert!(
            after >= Duration::from_millis(800),
            "{backend}: idle connection closed after only {after:?}"
        ),
        Err(e) => panic!("{backend}: idle connection not closed: {e}"),
    }
    match a.join(Duration::from_secs(10)) {
        Ok(n) => assert!(n >= 5, "{backend}: only {n} keepalive echoes"),
        Err(e) => panic!("{backend}: the active connection was disturbed: {e}"),
    }
}
