//! Refusing at capacity: a connection the server cannot serve is closed at once (not
//! left in the backlog), counted by reason, and a line on stderr names the limit.

#[macro_use]
mod common;

use common::*;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

backend_tests!(fd_limit_refuses_at_once_and_says_which_limit);

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
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| server.connect()).collect();
    let (mut served, mut refused) = (Vec::new(), 0usize);
    for (i, mut s) in clients.drain(..).enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        match served_or_closed(&mut s) {
            Ok(true) => served.push(s),
            Ok(false) => refused += 1,
            Err(e) => panic!(
                "{backend}: client {i} was neither served nor closed: {e}; stderr:\n{}",
                server.stderr()
            ),
        }
    }
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
