//! Echo correctness of every backend: fragmented and pipelined streams, many connections,
//! half-close, resets.

#[macro_use]
mod common;

use common::*;
use std::io::{Read, Write};
use std::time::Duration;

backend_tests!(
    random_fragmented_streams,
    thousand_connections,
    pipelined_32mib_stream,
    half_close_echoes_everything_then_eof,
    reset_mid_stream_then_fresh_connection,
);

/// 50 connections at once, each a random stream (1-7 MiB) written in chunks of 1 B to
/// 1 MiB and read back concurrently with reads of random size; byte-exact.
fn random_fragmented_streams(backend: &str) {
    const CONNS: u64 = 50;
    let server = Server::start(backend, &[]);
    let mut threads = Vec::new();
    for i in 0..CONNS {
        let mut rng = Rng::new(i + 1);
        // Every fifth client has a small window, starts reading late and reads slowly,
        // and sends more than the server's socket send buffer holds (up to 4 MiB), so the
        // server's unsent-remainder and pause/resume paths run too.
        let slow = i % 5 == 4;
        let total = if slow {
            rng.range(5 << 20, 7 << 20)
        } else {
            rng.range(1 << 20, 3 << 20)
        } as u64;
        let stream = if slow {
            connect_small_window(server.addr, 16 << 10)
        } else {
            server.connect()
        };
        let mut reader = stream.try_clone().expect("cloning a socket");
        let mut writer = stream;
        let mut wrng = Rng::new(1000 + i);
        threads.push(spawn_bounded(&format!("writer {i}"), move || {
            write_pattern(&mut writer, Pattern::new(i), total, 1 << 20, &mut wrng)
                .map_err(|e| format!("connection {i}: write: {e}"))
        }));
        let mut rrng = Rng::new(2000 + i);
        threads.push(spawn_bounded(&format!("reader {i}"), move || {
            let read = if slow {
                read_pattern_slowly
            } else {
                read_pattern
            };
            read(&mut reader, Pattern::new(i), total, 256 << 10, &mut rrng)
                .map_err(|e| format!("connection {i}: {e}"))
        }));
    }
    let failures: Vec<String> = threads
        .into_iter()
        .filter_map(|t| t.join(Duration::from_secs(60)).err())
        .collect();
    assert!(failures.is_empty(), "{backend}: {failures:#?}");
}

/// 1000 connections open at once, each doing three request/response exchanges; four
/// client threads own 250 sockets each (the machine has two cores).
fn thousand_connections(backend: &str) {
    const CONNS: usize = 1000;
    const THREADS: usize = 4;
    let server = Server::start(backend, &["--cpus", two_cpus()]);
    let mut sockets: Vec<_> = (0..CONNS).map(|_| server.connect()).collect();
    let mut threads = Vec::new();
    for t in 0..THREADS {
        let mine: Vec<_> = sockets.drain(..CONNS / THREADS).collect();
        threads.push(spawn_bounded(&format!("client {t}"), move || {
            let mut mine = mine;
            for round in 0..3u8 {
                let msg = |i: usize| {
                    let mut m = format!("conn {t}/{i} round {round} ").into_bytes();
                    m.resize(100, round);
                    m
                };
                // Every socket has a request in flight before any answer is read.
                for (i, s) in mine.iter_mut().enumerate() {
                    s.write_all(&msg(i))
                        .map_err(|e| format!("conn {t}/{i}: write: {e}"))?;
                }
                for (i, s) in mine.iter_mut().enumerate() {
                    let mut back = [0u8; 100];
                    s.read_exact(&mut back)
                        .map_err(|e| format!("conn {t}/{i} round {round}: read: {e}"))?;
                    if back[..] != msg(i)[..] {
                        return Err(format!("conn {t}/{i} round {round}: wrong echo"));
                    }
                }
            }
            Ok::<_, String>(())
        }));
    }
    for t in threads {
        if let Err(e) = t.join(Duration::from_secs(60)) {
            panic!("{backend}: {e}");
        }
    }
}

/// 32 MiB in one direction as fast as the writer can push it, a reader thread taking the
/// echo at the same time; byte-exact.
fn pipelined_32mib_stream(backend: &str) {
    const TOTAL: u64 = 32 << 20;
    let server = Server::start(backend, &[]);
    let mut writer = server.connect();
    let mut reader = writer.try_clone().expect("cloning a socket");
    let w = spawn_bounded("writer", move || {
        let mut pattern = Pattern::new(7);
        let mut buf = vec![0u8; 64 << 10];
        let mut sent = 0;
        while sent < TOTAL {
            pattern.fill(&mut buf);
            writer.write_all(&buf).map_err(|e| format!("write: {e}"))?;
            sent += buf.len() as u64;
        }
        Ok::<_, String>(())
    });
    let r = spawn_bounded("reader", move || {
        read_pattern(
            &mut reader,
            Pattern::new(7),
            TOTAL,
            64 << 10,
            &mut Rng::new(9),
        )
    });
    let (w, r) = (
        w.join(Duration::from_secs(60)),
        r.join(Duration::from_secs(60)),
    );
    assert_eq!((w, r), (Ok(()), Ok(())), "{backend}");
}

/// The client sends 1 MiB and shuts down its sending side at once; every byte still comes
/// back, then the server closes (EOF).
fn half_close_echoes_everything_then_eof(backend: &str) {
    const TOTAL: u64 = 1 << 20;
    let server = Server::start(backend, &[]);
    let mut writer = server.connect();
    let mut reader = writer.try_clone().expect("cloning a socket");
    let r = spawn_bounded("reader", move || {
        read_pattern(
            &mut reader,
            Pattern::new(3),
            TOTAL,
            32 << 10,
            &mut Rng::new(5),
        )?;
        expect_closed(&mut reader, Duration::from_secs(5))
            .map(drop)
            .map_err(|e| format!("after the whole echo: {e}"))
    });
    write_pattern(
        &mut writer,
        Pattern::new(3),
        TOTAL,
        64 << 10,
        &mut Rng::new(4),
    )
    .expect("writing");
    shutdown_write(&writer);
    if let Err(e) = r.join(Duration::from_secs(30)) {
        panic!("{backend}: {e}");
    }
}

/// Connections reset by the client (SO_LINGER 0, close) while echo data is in flight both
/// ways must not disturb the server: a fresh connection afterwards is served correctly.
fn reset_mid_stream_then_fresh_connection(backend: &str) {
    let mut server = Server::start(backend, &[]);
    for round in 0..5u64 {
        let mut s = server.connect();
        // Enough that the echo is still being written when the reset arrives, not so
        // much that the unread echo blocks this write.
        let mut buf = vec![0u8; 256 << 10];
        Pattern::new(round).fill(&mut buf);
        s.write_all(&buf).expect("writing before the reset");
        s.set_nonblocking(true).expect("non-blocking");
        let _ = s.write(&buf); // more in flight, whatever fits
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER 0");
        drop(s); // RST, with unread echo in our receive queue
    }
    std::thread::sleep(Duration::from_millis(100));
    server.assert_running();
    let mut fresh = server.connect();
    let mut msg = vec![0u8; 100 << 10];
    Pattern::new(99).fill(&mut msg);
    echo(&mut fresh, &msg).unwrap_or_else(|e| panic!("{backend}: fresh connection: {e}"));
    echo(&mut fresh, b"ping").unwrap_or_else(|e| panic!("{backend}: fresh connection: {e}"));
}
