//! An outside client drives `--protocol http`: wrk (from the distribution, installed by
//! `scripts/setup.sh`) runs 2 seconds of keep-alive load on every backend, and must see
//! only 200s, no socket errors, and as many requests as the server says it answered.
//!
//! Without wrk the tests say so and pass, unless `C1M_REQUIRE_WRK=1` (scripts/test.sh sets
//! it, after setup.sh installed wrk), where a missing wrk fails them.

#[macro_use]
mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

backend_tests!(wrk_keep_alive_load);

/// The wrk binary, or why the test cannot run.
fn wrk() -> Result<&'static str, String> {
    match Command::new("wrk").arg("--version").output() {
        Ok(_) => Ok("wrk"),
        Err(e) => Err(format!(
            "wrk is not installed ({e}); sudo scripts/setup.sh installs it"
        )),
    }
}

/// A number after `label` in wrk's output ("Requests/sec:  1234.5", "12345 requests in").
fn number_after(text: &str, label: &str) -> Option<f64> {
    let rest = &text[text.find(label)? + label.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

fn wrk_keep_alive_load(backend: &str) {
    let wrk = match wrk() {
        Ok(w) => w,
        Err(why) if std::env::var_os("C1M_REQUIRE_WRK").is_none() => {
            return eprintln!("skipping wrk_keep_alive_load::{backend}: {why}");
        }
        Err(why) => panic!("{why} (C1M_REQUIRE_WRK is set)"),
    };
    let stats = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("wrk-{backend}-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&stats);
    let stats_arg = stats.to_string_lossy().into_owned();
    let mut server = Server::start(
        backend,
        &[
            "--protocol",
            "http",
            "--body-size",
            "100",
            "--stats-json",
            &stats_arg,
        ],
    );
    let url = format!("http://{}/", server.addr);
    let run = spawn_bounded("wrk", move || {
        Command::new(wrk)
            .args(["-t", "1", "-c", "16", "-d", "2s", "--timeout", "2s", &url])
            .output()
            .map_err(|e| e.to_string())
    });
    let out = run
        .join(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("running wrk: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("Socket errors"),
        "socket errors under wrk:\n{text}"
    );
    assert!(
        !text.contains("Non-2xx"),
        "non-200 answers under wrk:\n{text}"
    );
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"));
    assert!(
        requests >= 100.0,
        "only {requests} requests in 2 s:\n{text}"
    );
    let per_sec = number_after(&text, "Requests/sec:").unwrap_or(0.0);
    assert!(per_sec > 0.0, "no Requests/sec in:\n{text}");
    server.assert_running();
    assert!(server
        .terminate(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&stats).unwrap_or_else(|e| panic!("reading {stats:?}: {e}")),
    )
    .unwrap_or_else(|e| panic!("parsing {stats:?}: {e}"));
    let answered = json["requests"].as_f64().unwrap_or(0.0);
    // wrk counts the responses it completed; the server may have answered a few more that
    // wrk stopped reading at the deadline (at most one per connection).
    assert!(
        answered >= requests && answered <= requests + 16.0,
        "server answered {answered}, wrk counted {requests}"
    );
    assert_eq!(json["proto_errors"].as_f64(), Some(0.0), "{json}");
    let _ = std::fs::remove_file(&stats);
}
