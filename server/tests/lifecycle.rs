//! Process lifecycle of every backend: graceful exit on SIGTERM with the final stats, and
//! a clean refusal (exit 2, a message that says what is wrong) of bad flags.

#[macro_use]
mod common;

use common::*;
use std::time::{Duration, Instant};

backend_tests!(
    sigterm_exits_cleanly_with_stats_json,
    bad_flags_exit_2_with_message
);

/// SIGTERM with connections open: exit status 0 within 5 s, and `--stats-json` holds the
/// backend name and the connections accepted.
fn sigterm_exits_cleanly_with_stats_json(backend: &str) {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "server-{backend}-{}-{:?}.json",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&path);
    let path_arg = path.to_str().expect("UTF-8 temp path");
    let mut server = Server::start(backend, &["--stats-json", path_arg]);
    let mut conns: Vec<_> = (0..3).map(|_| server.connect()).collect();
    for (i, s) in conns.iter_mut().enumerate() {
        echo(s, b"before the signal").unwrap_or_else(|e| panic!("{backend}: conn {i}: {e}"));
    }

    let started = Instant::now();
    let status = server.terminate(Duration::from_secs(5));
    let Some(status) = status else {
        panic!(
            "{backend}: still running 5 s after SIGTERM; stderr:\n{}",
            server.stderr()
        );
    };
    assert!(
        status.success(),
        "{backend}: exit {status} after SIGTERM ({:?}); stderr:\n{}",
        started.elapsed(),
        server.stderr()
    );
    // Exited cleanly, so the connections were closed from its side.
    for (i, s) in conns.iter_mut().enumerate() {
        if let Err(e) = expect_closed(s, Duration::from_secs(2)) {
            panic!("{backend}: conn {i} after exit: {e}");
        }
    }

    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{backend}: --stats-json {}: {e}", path.display()));
    let _ = std::fs::remove_file(&path);
    let json: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{backend}: --stats-json is not JSON ({e}):\n{text}"));
    assert_eq!(json["backend"], backend, "{text}");
    let accepted = json["accepted"].as_u64();
    assert!(
        accepted.is_some_and(|n| n >= 3),
        "{backend}: accepted = {accepted:?}, want >= 3:\n{text}"
    );
}

/// Bad flags: exit status 2 before serving, with stderr naming the problem.
fn bad_flags_exit_2_with_message(backend: &str) {
    // Taken without SO_REUSEPORT, so the server cannot join it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a port");
    let taken_addr = taken.local_addr().expect("local addr").to_string();
    let b = ["--backend", backend];
    let cases: [(Vec<&str>, &[&str]); 5] = [
        ([&b[..], &["--no-such-flag"]].concat(), &["--no-such-flag"]),
        // The one case without this backend: the value itself is what is wrong.
        (vec!["--backend", "carrier-pigeon"], &["carrier-pigeon"]),
        ([&b[..], &["--cpus", "999"]].concat(), &["999", "online"]),
        ([&b[..], &["--max-conns", "0"]].concat(), &["--max-conns"]),
        (
            [&b[..], &["--listen", &taken_addr]].concat(),
            &["already in use", &taken_addr],
        ),
    ];
    for (extra, expected) in cases {
        // Never the default port; --cpus 0 unless the case is about --cpus.
        let mut args = vec![];
        if !extra.contains(&"--listen") {
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        if !extra.contains(&"--cpus") {
            args.extend(["--cpus", "0"]);
        }
        args.extend(extra);
        let (status, stderr) = run_to_exit(backend, &args, Duration::from_secs(15));
        assert_eq!(
            status.code(),
            Some(2),
            "{backend}: c1m-server {args:?}: want exit 2, got {status}; stderr:\n{stderr}"
        );
        for word in expected {
            assert!(
                stderr.contains(word),
                "{backend}: c1m-server {args:?}: stderr should mention {word:?}:\n{stderr}"
            );
        }
    }
    drop(taken);
}
