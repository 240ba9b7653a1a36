//! Refusing at capacity: a connection the server cannot serve is closed at once (not
//! left in the backlog), counted by reason, and a line on stderr names the limit.

#[macro_use]
mod common;

use common::*;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

backend_tests!(
    fd_limit_refuses_at_once_and_says_which_limit,
    many_rings_on_one_thread_serve_every_connection,
    many_rings_on_one_thread_count_refusals,
);

/// RLIMIT_NOFILE 64 (a fixed-file table of 64 slots for uring), 120 clients: every
/// client is either served or closed within seconds, none waits unanswered; the server
/// says which limit filled, counts the refusals in server.json, and serves newcomers once
/// the first clients leave.
fn fd_limit_refuses_at_once_and_says_which_limit(backend: &str) {
    const CLIENTS: usize = 120;
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("refusals-{backend}-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let path_arg = path.to_str().expect("UTF-8 temp path");
    let mut server = Server::start_limited(backend, &["--stats-json", path_arg], Some(64));
    let (mut served, refused) = connect_served_or_closed(&server, CLIENTS);
    eprintln!("{backend}: {} served, {refused} refused", served.len());
    assert!(
        served.len() >= 20,
        "{backend}: only {} served",
        served.len()
    );
    assert!(refused >= 20, "{backend}: only {refused} refused");

    let (limit, reason) = if backend == "uring" {
        ("fixed-file table is full (64 slots", "fixed_table")
    } else {
        ("RLIMIT_NOFILE 64", "fd_limit")
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.stderr().contains(limit) {
        assert!(
            Instant::now() < deadline,
            "{backend}: no line naming `{limit}` on stderr:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let err = server.stderr();
    assert!(err.contains("refused so far"), "{backend}: {err}");
    assert!(
        err.contains("--max-conns") || err.contains("ulimit -n"),
        "{backend}: no fix named: {err}"
    );

    // The clients that were served leave; a newcomer is served again.
    let had = served.len();
    served.clear();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = server.connect();
        match echo(&mut s, b"after the others left") {
            Ok(()) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "{backend}: no newcomer served after {had} clients left: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let status = server.terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{backend}: {status:?}");
    let text = std::fs::read_to_string(&path).expect("server.json written");
    let _ = std::fs::remove_file(&path);
    let json: serde_json::Value = serde_json::from_str(&text).expect("server.json is JSON");
    let counted = json["refused"][reason].as_u64().unwrap_or(0);
    assert!(
        counted >= refused as u64,
        "{backend}: server.json counts {counted} refusals by {reason}, the clients saw {refused}:\n{text}"
    );
}

/// uring: tables of 16 slots (`--ring-slots`, tests only) for `--max-conns 400` make 29
/// rings, all driven by the one loop thread of `--cpus 0`. 150 clients (a few per ring):
/// every one is served, twice, byte-exact, and server.json says 1 loop, 29 rings, nothing
/// refused. The other backends serve the same clients without the flags.
fn many_rings_on_one_thread_serve_every_connection(backend: &str) {
    const CLIENTS: usize = 150;
    let path = stats_path("refusals", backend, "many-rings");
    let path_arg = path.to_str().expect("UTF-8 temp path").to_string();
    let uring = backend == "uring";
    let flags: Vec<&str> = if uring {
        vec![
            "--ring-slots",
            "16",
            "--max-conns",
            "400",
            "--stats-json",
            &path_arg,
        ]
    } else {
        vec![]
    };
    let mut server = Server::start(backend, &flags);
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| server.connect()).collect();
    for round in 0..2 {
        for (i, s) in clients.iter_mut().enumerate() {
            let msg = format!("round {round} client {i}");
            if let Err(e) = echo(s, msg.as_bytes()) {
                panic!(
                    "{backend}: client {i}, round {round}: {e}; stderr:\n{}",
                    server.stderr()
                );
            }
        }
    }
    if !uring {
        return;
    }
    drop(clients);
    let json = stop_and_read_stats(&mut server, &path);
    assert_eq!(json["loops"], 1, "{json}");
    assert_eq!(json["rings"], 29, "{json}");
    assert_eq!(json["accepted"], CLIENTS as u64, "{json}");
    assert_eq!(json["conn_errors"], 0, "{json}");
    let refused = &json["refused"];
    assert_eq!(
        (
            refused["max_conns"].as_u64(),
            refused["fixed_table"].as_u64()
        ),
        (Some(0), Some(0)),
        "{json}"
    );
}

/// Past the real limit with several rings per thread: `--max-conns 20` (uring: tables of
/// 4 slots, 6 rings on one thread) and 40 clients. At most 20 are served at once, every
/// other one is closed at once, and (uring) server.json counts each refusal, by the limit
/// that was full (--max-conns, or a ring's table when the hash filled one first).
fn many_rings_on_one_thread_count_refusals(backend: &str) {
    const CLIENTS: usize = 40;
    let path = stats_path("refusals", backend, "many-rings-refused");
    let path_arg = path.to_str().expect("UTF-8 temp path").to_string();
    let uring = backend == "uring";
    let mut flags = vec!["--max-conns", "20"];
    if uring {
        flags.extend(["--ring-slots", "4", "--stats-json", &path_arg]);
    }
    let mut server = Server::start(backend, &flags);
    let (clients, refused) = connect_served_or_closed(&server, CLIENTS);
    let (served, refused) = (clients.len() as u64, refused as u64);
    assert!(
        served <= 20,
        "{backend}: {served} served past --max-conns 20"
    );
    assert!(served >= 10, "{backend}: only {served} served");
    assert_eq!(served + refused, CLIENTS as u64);
    if !uring {
        return;
    }
    drop(clients);
    let json = stop_and_read_stats(&mut server, &path);
    assert_eq!(
        (json["loops"].as_u64(), json["rings"].as_u64()),
        (Some(1), Some(6)),
        "{json}"
    );
    let r = &json["refused"];
    let counted = r["max_conns"].as_u64().unwrap_or(0) + r["fixed_table"].as_u64().unwrap_or(0);
    assert_eq!(
        counted, refused,
        "{backend}: refusals counted vs seen:\n{json}"
    );
}

/// Connects `n` clients, then has each echo once: the ones served, and how many the
/// server closed instead. Panics on a client that is neither (within 5 s).
fn connect_served_or_closed(server: &Server, n: usize) -> (Vec<std::net::TcpStream>, usize) {
    let clients: Vec<_> = (0..n).map(|_| server.connect()).collect();
    let (mut served, mut refused) = (Vec::new(), 0usize);
    for (i, mut s) in clients.into_iter().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        match served_or_closed(&mut s) {
            Ok(true) => served.push(s),
            Ok(false) => refused += 1,
            Err(e) => panic!(
                "{}: client {i} was neither served nor closed: {e}; stderr:\n{}",
                server.backend,
                server.stderr()
            ),
        }
    }
    (served, refused)
}

/// `Ok(true)`: the echo came back; `Ok(false)`: the server closed the connection.
fn served_or_closed(s: &mut std::net::TcpStream) -> io::Result<bool> {
    let msg = b"hello";
    if let Err(e) = s.write_all(msg) {
        return if is_closed_error(&e) {
            Ok(false)
        } else {
            Err(e)
        };
    }
    let mut back = [0u8; 5];
    let mut got = 0;
    while got < back.len() {
        match s.read(&mut back[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if is_closed_error(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(&back == msg)
}
