//! `c1m-loadgen run --protocol frame|http` end to end against small servers written here
//! that answer as the wire contract says (or deliberately do not): every workload with
//! every protocol, responses cut into single bytes, wrong lengths counted as verify
//! errors, the protocol in summary.json and in the result line, and `--procs` merges.

#[macro_use]
mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;

/// Largest request frame payload the test server takes (c1m-server's default).
const MAX_FRAME: usize = 65_536;
const BODY_PATTERN: &[u8] = b"0123456789abcdef";

/// How a test server writes its responses.
#[derive(Clone, Copy, PartialEq)]
enum Split {
    /// Each response in one write.
    Whole,
    /// One byte per write (TCP_NODELAY), so responses arrive cut anywhere.
    Bytes,
}

fn send(s: &mut TcpStream, bytes: &[u8], split: Split) -> bool {
    match split {
        Split::Whole => s.write_all(bytes).is_ok(),
        Split::Bytes => bytes.chunks(1).all(|b| s.write_all(b).is_ok()),
    }
}

/// Serves frames: `[u32 BE len][payload]` in, one response frame per request frame out
/// (the request echoed, or `reply` bytes of the `i % 251` pattern). `lie` writes a
/// length one more than the payload it sends (the stream cannot be followed after it).
fn serve_frames(mut s: TcpStream, reply: Option<usize>, split: Split, lie: bool) {
    let _ = s.set_nodelay(true);
    let mut inbuf: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        inbuf.extend_from_slice(&buf[..n]);
        let mut out = Vec::new();
        let mut at = 0;
        while inbuf.len() - at >= 4 {
            let mut len = [0u8; 4];
            len.copy_from_slice(&inbuf[at..at + 4]);
            let len = u32::from_be_bytes(len) as usize;
            if len > MAX_FRAME {
                return;
            }
            if inbuf.len() - at < 4 + len {
                break;
            }
            let payload = &inbuf[at + 4..at + 4 + len];
            let body: Vec<u8> = match reply {
                None => payload.to_vec(),
                Some(r) => (0..r).map(|i| (i % 251) as u8).collect(),
            };
            let said = body.len() + usize::from(lie);
            out.extend_from_slice(&(said as u32).to_be_bytes());
            out.extend_from_slice(&body);
            at += 4 + len;
        }
        inbuf.drain(..at);
        if !out.is_empty() && !send(&mut s, &out, split) {
            return;
        }
    }
}

/// Serves HTTP/1.1 GETs (no request bodies): every request answered in order with the
/// contract's response and a `body`-byte body. `short_first`: the first response of each
/// connection says and sends one byte less (the stream stays readable).
fn serve_http(mut s: TcpStream, body: usize, split: Split, short_first: bool) {
    let _ = s.set_nodelay(true);
    let mut inbuf: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    let mut answered = 0u64;
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        inbuf.extend_from_slice(&buf[..n]);
        let mut out = Vec::new();
        while let Some(end) = inbuf.windows(4).position(|w| w == b"\r\n\r\n") {
            let request: Vec<u8> = inbuf.drain(..end + 4).collect();
            if !request.starts_with(b"GET /")
                || !request.ends_with(b" HTTP/1.1\r\nHost: c1m\r\n\r\n")
            {
                let _ = s.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                return;
            }
            let len = if short_first && answered == 0 {
                body - 1
            } else {
                body
            };
            answered += 1;
            out.extend_from_slice(
                format!("HTTP/1.1 200 OK\r\nServer: c1m\r\nContent-Type: text/plain\r\nContent-Length: {len}\r\n\r\n")
                    .as_bytes(),
            );
            out.extend(BODY_PATTERN.iter().cycle().take(len));
        }
        if inbuf.len() > 16_384 {
            return;
        }
        if !out.is_empty() && !send(&mut s, &out, split) {
            return;
        }
    }
}

fn frame_echo(s: TcpStream) {
    serve_frames(s, None, Split::Whole, false)
}
fn frame_echo_bytes(s: TcpStream) {
    serve_frames(s, None, Split::Bytes, false)
}
fn frame_reply_100_bytes(s: TcpStream) {
    serve_frames(s, Some(100), Split::Bytes, false)
}
fn frame_reply_0(s: TcpStream) {
    serve_frames(s, Some(0), Split::Whole, false)
}
fn frame_lying_length(s: TcpStream) {
    serve_frames(s, None, Split::Whole, true)
}
fn http_16(s: TcpStream) {
    serve_http(s, 16, Split::Whole, false)
}
fn http_16_bytes(s: TcpStream) {
    serve_http(s, 16, Split::Bytes, false)
}
fn http_1000(s: TcpStream) {
    serve_http(s, 1000, Split::Whole, false)
}
fn http_short_first(s: TcpStream) {
    serve_http(s, 16, Split::Whole, true)
}

/// Runs the loadgen against `server` with `extra` flags into a fresh folder; returns the
/// outcome and the summary (the folder must have been written).
fn run(
    server: &TestServer,
    name: &str,
    extra: &[&str],
) -> (Outcome, c1m_loadgen::report::RunRecord) {
    let dir = TempDir::new(name);
    let target = server.target();
    let out_dir = dir.arg("run");
    let mut args = vec![
        "run",
        "--target",
        &target,
        "--cpus",
        "1",
        "--duration",
        "1",
        "--out",
        &out_dir,
    ];
    args.extend_from_slice(extra);
    let out = loadgen(&args);
    let rec = read_run(&dir.join("run"));
    (out, rec)
}

/// A clean run: responses came back, every one verified, nothing lost.
fn check_clean(out: &Outcome, rec: &c1m_loadgen::report::RunRecord, conns: u64) {
    out.assert_success();
    let s = &rec.summary;
    assert_eq!(s.verify_errors, 0, "{out}");
    assert!(s.connection_errors.is_empty(), "{:?}", s.connection_errors);
    assert!(s.connections_established >= conns, "{s:#?}");
    assert!(s.messages_received > 0, "{s:#?}");
    assert_eq!(rec.latency.len(), s.messages_received);
    assert!(s.latency.p50_us > 0.0, "{s:#?}");
}

#[test]
fn frame_echo_closed_loop_pipelined_cut_into_bytes() {
    let _turn = light();
    let server = TestServer::start(frame_echo_bytes);
    let (out, rec) = run(
        &server,
        "frame-closed",
        &[
            "--protocol",
            "frame",
            "--size",
            "23",
            "--connections",
            "4",
            "--pipeline",
            "3",
        ],
    );
    check_clean(&out, &rec, 4);
    let w = &rec.summary.workload;
    assert_eq!(
        (w.protocol.as_str(), w.size, w.request_bytes),
        ("frame", 23, 27)
    );
    assert_eq!((w.reply_size, w.body_size), (None, None));
    assert!(out.stdout.contains("closed frame 4 conns"), "{out}");
}

#[test]
fn frame_reply_size_open_loop() {
    let _turn = light();
    let server = TestServer::start(frame_reply_100_bytes);
    let (out, rec) = run(
        &server,
        "frame-rate",
        &[
            "--protocol",
            "frame",
            "--reply-size",
            "100",
            "--connections",
            "3",
            "--rate",
            "300",
        ],
    );
    check_clean(&out, &rec, 3);
    let s = &rec.summary;
    assert!(s.coordinated_omission_corrected);
    assert!(s.messages_received > 150, "{s:#?}");
    assert_eq!(s.workload.reply_size, Some(100));
    assert_eq!(s.workload.request_bytes, 68);
    assert!(out.stdout.contains("frame (reply 100 B)"), "{out}");
}

#[test]
fn frame_empty_replies_heartbeat() {
    let _turn = light();
    let server = TestServer::start(frame_reply_0);
    let (out, rec) = run(
        &server,
        "frame-hb",
        &[
            "--protocol",
            "frame",
            "--reply-size",
            "0",
            "--connections",
            "5",
            "--heartbeat",
            "0.25",
        ],
    );
    check_clean(&out, &rec, 5);
    // 5 connections, a beat every 0.25 s for 1 s.
    let n = rec.summary.messages_received;
    assert!((15..=25).contains(&n), "{n} heartbeats");
}

#[test]
fn frame_churn() {
    let _turn = light();
    let server = TestServer::start(frame_echo);
    let (out, rec) = run(
        &server,
        "frame-churn",
        &["--protocol", "frame", "--connections", "2", "--churn"],
    );
    check_clean(&out, &rec, 2);
    assert!(
        rec.summary.connects_per_s.is_some_and(|c| c > 10.0),
        "{:#?}",
        rec.summary
    );
}

#[test]
fn frame_with_a_wrong_length_drops_the_connection() {
    let _turn = light();
    let server = TestServer::start(frame_lying_length);
    let (out, rec) = run(
        &server,
        "frame-lie",
        &["--protocol", "frame", "--connections", "3"],
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("responses failed verification"),
        "{out}"
    );
    let s = &rec.summary;
    assert_eq!(s.verify_errors, 3, "{s:#?}");
    assert_eq!(s.messages_received, 0, "{s:#?}");
    let dropped: u64 = s
        .connection_errors
        .iter()
        .filter(|(k, _)| k.contains("frame length"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(dropped, 3, "{:?}", s.connection_errors);
}

#[test]
fn http_closed_loop_pipelined_cut_into_bytes() {
    let _turn = light();
    let server = TestServer::start(http_16_bytes);
    let (out, rec) = run(
        &server,
        "http-closed",
        &[
            "--protocol",
            "http",
            "--connections",
            "4",
            "--pipeline",
            "4",
        ],
    );
    check_clean(&out, &rec, 4);
    let w = &rec.summary.workload;
    assert_eq!(
        (w.protocol.as_str(), w.request_bytes, w.body_size),
        ("http", 61, Some(16))
    );
    assert!(
        out.stdout.contains("closed http (body 16 B) 4 conns"),
        "{out}"
    );
    assert_eq!(rec.summary.label, "closed-http-4c");
}

#[test]
fn http_open_loop_large_bodies() {
    let _turn = light();
    let server = TestServer::start(http_1000);
    let (out, rec) = run(
        &server,
        "http-rate",
        &[
            "--protocol",
            "http",
            "--body-size",
            "1000",
            "--connections",
            "3",
            "--rate",
            "300",
            "--arrivals",
            "poisson",
        ],
    );
    check_clean(&out, &rec, 3);
    assert!(rec.summary.messages_received > 150, "{:#?}", rec.summary);
    assert_eq!(rec.summary.workload.body_size, Some(1000));
}

#[test]
fn http_heartbeat_and_churn() {
    let _turn = light();
    let server = TestServer::start(http_16);
    let (out, rec) = run(
        &server,
        "http-hb",
        &[
            "--protocol",
            "http",
            "--connections",
            "4",
            "--heartbeat",
            "0.25",
        ],
    );
    check_clean(&out, &rec, 4);
    let (out, rec) = run(
        &server,
        "http-churn",
        &["--protocol", "http", "--connections", "2", "--churn"],
    );
    check_clean(&out, &rec, 2);
    assert!(
        rec.summary.connects_per_s.is_some_and(|c| c > 10.0),
        "{:#?}",
        rec.summary
    );
}

#[test]
fn http_wrong_body_length_is_a_verify_error() {
    let _turn = light();
    let server = TestServer::start(http_short_first);
    let (out, rec) = run(
        &server,
        "http-short",
        &["--protocol", "http", "--connections", "3"],
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("failed verification"), "{out}");
    let s = &rec.summary;
    // One short body per connection; the stream goes on after it.
    assert_eq!(s.verify_errors, 3, "{s:#?}");
    assert!(s.connection_errors.is_empty(), "{:?}", s.connection_errors);
    assert!(s.messages_received > 3, "{s:#?}");
}

#[test]
fn http_procs_are_merged_with_their_protocol() {
    let _turn = light();
    let server = TestServer::start(http_16);
    let (out, rec) = run(
        &server,
        "http-procs",
        &["--protocol", "http", "--connections", "4", "--procs", "2"],
    );
    check_clean(&out, &rec, 4);
    let w = &rec.summary.workload;
    assert_eq!(
        (w.protocol.as_str(), w.body_size, w.procs),
        ("http", Some(16), 2)
    );
}

#[test]
fn protocol_flags_exit_2_with_advice() {
    let cases: &[(&[&str], &str)] = &[
        (&["--protocol", "frame", "--size", "8"], "--size 16"),
        (&["--reply-size", "10"], "--protocol frame"),
        (&["--protocol", "http", "--reply-size", "10"], "--body-size"),
        (&["--body-size", "10"], "--protocol http"),
        (&["--protocol", "http", "--size", "64"], "drop --size"),
        (&["--protocol", "gopher"], "--protocol"),
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
}
