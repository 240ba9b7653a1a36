//! `--protocol frame` and `--protocol http` on every backend: framing across reads,
//! pipelining, bounds and malformed input (that connection closed, the others served), and
//! the limits of echo mode (idle timeout, --max-conns, SIGTERM) in protocol mode.

#[macro_use]
mod common;

use common::*;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

backend_tests!(
    frame_split_at_every_byte_boundary,
    frame_fifty_in_one_write,
    frame_oversized_length_closes_only_that_connection,
    frame_zero_length,
    frame_reply_size,
    frame_back_pressure_then_drain,
    frame_big_replies_stay_bounded,
    http_three_pipelined_in_one_write,
    http_garbage_gets_400_then_close,
    http_huge_headers_431_or_reset_others_served,
    http_request_split_byte_by_byte,
    http_ten_thousand_keep_alive_requests,
    http_connection_close_honoured,
    http_post_body_discarded_by_content_length,
    http_chunked_gets_501,
    idle_timeout_in_protocol_mode,
    max_conns_in_protocol_mode,
    sigterm_in_protocol_mode_with_counters,
);

/// A request (or echoed response) frame: `[u32 BE length][payload]`.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// A payload of `len` bytes that differs from frame to frame (`seed`).
fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    Pattern::new(seed).fill(&mut p);
    p
}

/// Writes `request` and reads exactly `expected.len()` bytes, which must equal `expected`.
fn exchange(stream: &mut TcpStream, request: &[u8], expected: &[u8]) -> Result<(), String> {
    stream
        .write_all(request)
        .map_err(|e| format!("write: {e}"))?;
    expect_bytes(stream, expected)
}

/// Reads exactly `expected.len()` bytes, which must equal `expected`.
fn expect_bytes(stream: &mut TcpStream, expected: &[u8]) -> Result<(), String> {
    let mut got = vec![0u8; expected.len()];
    stream
        .read_exact(&mut got)
        .map_err(|e| format!("reading {} bytes: {e}", expected.len()))?;
    if got != expected {
        return Err(format!(
            "got {:?}, want {:?}",
            String::from_utf8_lossy(&got[..got.len().min(200)]),
            String::from_utf8_lossy(&expected[..expected.len().min(200)])
        ));
    }
    Ok(())
}

/// Everything the server sends until it closes, and how it closed: `Ok` for EOF, `Err`
/// with the error for a reset. Panics if it does not close within `timeout`.
fn read_until_closed(stream: &mut TcpStream, timeout: Duration) -> (Vec<u8>, io::Result<()>) {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 64 << 10];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "not closed within {timeout:?}; got {} bytes: {:?}",
            got.len(),
            String::from_utf8_lossy(&got[..got.len().min(300)])
        );
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_closed_error(&e) => return (got, Err(e)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("reading until closed: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// frame

/// A stream of three frames (one of them empty) written in two pieces, cut at every byte
/// boundary in turn, on one connection; then the same stream one byte per write. Every
/// frame comes back whole and in order.
fn frame_split_at_every_byte_boundary(backend: &str) {
    let server = Server::start(backend, &["--protocol", "frame"]);
    let mut s = server.connect();
    let mut stream = frame(b"hello, frames");
    stream.extend(frame(b""));
    stream.extend(frame(&payload(1, 300)));
    for cut in 0..=stream.len() {
        s.write_all(&stream[..cut]).expect("first piece");
        // Give the server time to read the first piece on its own.
        std::thread::sleep(Duration::from_millis(1));
        exchange(&mut s, &stream[cut..], &stream)
            .unwrap_or_else(|e| panic!("{backend}: cut at {cut}: {e}"));
    }
    for b in &stream {
        s.write_all(std::slice::from_ref(b)).expect("one byte");
        std::thread::sleep(Duration::from_micros(200));
    }
    expect_bytes(&mut s, &stream).unwrap_or_else(|e| panic!("{backend}: byte by byte: {e}"));
}

/// Fifty frames of different sizes (0 to 49 * 101 bytes) in one write: fifty responses,
/// in order.
fn frame_fifty_in_one_write(backend: &str) {
    let server = Server::start(backend, &["--protocol", "frame"]);
    let mut s = server.connect();
    let stream: Vec<u8> = (0..50u64)
        .flat_map(|i| frame(&payload(i, i as usize * 101)))
        .collect();
    for round in 0..3 {
        exchange(&mut s, &stream, &stream)
            .unwrap_or_else(|e| panic!("{backend}: round {round}: {e}"));
    }
}

/// A length over `--max-frame` closes that connection (after answering the frame before
/// it) and counts one protocol error; another connection is served before and after.
fn frame_oversized_length_closes_only_that_connection(backend: &str) {
    let path = stats_path("protocols", backend, "oversized");
    let path_arg = path.to_str().expect("UTF-8 temp path");
    let mut server = Server::start(
        backend,
        &[
            "--protocol",
            "frame",
            "--max-frame",
            "1024",
            "--stats-json",
            path_arg,
        ],
    );
    let mut other = server.connect();
    let ok = frame(&payload(2, 1024));
    exchange(&mut other, &ok, &ok).unwrap_or_else(|e| panic!("{backend}: other: {e}"));

    let mut bad = server.connect();
    let mut request = frame(b"fine");
    request.extend_from_slice(&1025u32.to_be_bytes());
    request.extend_from_slice(&[0u8; 100]);
    bad.write_all(&request)
        .expect("writing the oversized frame");
    let (got, _how) = read_until_closed(&mut bad, Duration::from_secs(5));
    // The frame before the bad one is answered (unless a reset beat it to the reader).
    assert!(
        got.is_empty() || got == frame(b"fine"),
        "{backend}: got {got:?} before the close"
    );

    for round in 0..3 {
        exchange(&mut other, &ok, &ok)
            .unwrap_or_else(|e| panic!("{backend}: other after the close, {round}: {e}"));
    }
    drop((other, bad));
    let json = stop_and_read_stats(&mut server, &path);
    assert_eq!(json["protocol"], "frame", "{json}");
    assert_eq!(json["proto_errors"], 1, "{backend}: {json}");
    assert_eq!(json["requests"], 5, "{backend}: {json}");
}

/// A zero-length frame is a whole request: a zero-length frame comes back, alone or
/// between others, and split inside its header.
fn frame_zero_length(backend: &str) {
    let server = Server::start(backend, &["--protocol", "frame"]);
    let mut s = server.connect();
    exchange(&mut s, &frame(b""), &frame(b"")).unwrap_or_else(|e| panic!("{backend}: {e}"));
    let mut stream = frame(b"a");
    stream.extend(frame(b""));
    stream.extend(frame(b""));
    stream.extend(frame(b"b"));
    exchange(&mut s, &stream, &stream).unwrap_or_else(|e| panic!("{backend}: {e}"));
    s.write_all(&[0, 0]).expect("half a header");
    std::thread::sleep(Duration::from_millis(20));
    exchange(&mut s, &[0, 0], &frame(b"")).unwrap_or_else(|e| panic!("{backend}: split: {e}"));
}

/// `--reply-size 300`: every request, whatever its size, gets a 300-byte payload whose
/// byte `i` is `i % 251`.
fn frame_reply_size(backend: &str) {
    let server = Server::start(backend, &["--protocol", "frame", "--reply-size", "300"]);
    let reply = frame(&(0..300u32).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    let mut s = server.connect();
    for len in [0, 1, 16, 299, 300, 5000, 65536] {
        exchange(&mut s, &frame(&payload(len as u64, len)), &reply)
            .unwrap_or_else(|e| panic!("{backend}: request of {len} bytes: {e}"));
    }
    let mut three = frame(b"x");
    three.extend(frame(b""));
    three.extend(frame(&payload(5, 2000)));
    exchange(&mut s, &three, &reply.repeat(3)).unwrap_or_else(|e| panic!("{backend}: {e}"));
}

/// A client that pipelines 48 MiB of frames without reading: the server stops reading it
/// (the writer stalls) instead of buffering the responses; once the client reads, every
/// response comes back in order.
fn frame_back_pressure_then_drain(backend: &str) {
    const CHUNKS: usize = 768;
    let mut server = Server::start(backend, &["--protocol", "frame"]);
    // 64 KiB of frames (63 of 1020 payload bytes, one of 1512), the same every time.
    let mut chunk: Vec<u8> = (0..63u64).flat_map(|i| frame(&payload(i, 1020))).collect();
    chunk.extend(frame(&payload(99, 64 * 1024 - chunk.len() - 4)));
    assert_eq!(chunk.len(), 64 << 10);
    let mut writer = server.connect();
    let mut reader = writer.try_clone().expect("cloning a socket");
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let written = progress.clone();
    let data = chunk.clone();
    let w = spawn_bounded("writer", move || {
        for i in 0..CHUNKS {
            writer
                .write_all(&data)
                .map_err(|e| format!("write of chunk {i}: {e}"))?;
            written.store(i + 1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok::<_, String>(())
    });
    // Wait until the writer has made no progress for a while.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = (usize::MAX, Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = progress.load(std::sync::atomic::Ordering::Relaxed);
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
    let stalled_at = progress.load(std::sync::atomic::Ordering::Relaxed);
    server.assert_running();
    assert!(
        stalled_at < CHUNKS,
        "{backend}: the server took all {CHUNKS} chunks without the client reading"
    );
    let r = spawn_bounded("reader", move || {
        for i in 0..CHUNKS {
            expect_bytes(&mut reader, &chunk).map_err(|e| format!("chunk {i}: {e}"))?;
        }
        Ok::<_, String>(())
    });
    let (w, r) = (
        w.join(Duration::from_secs(90)),
        r.join(Duration::from_secs(90)),
    );
    assert_eq!(
        (w, r),
        (Ok(()), Ok(())),
        "{backend} (stalled at chunk {stalled_at})"
    );
}

/// 4,096 empty frames in one write, each answered with 64 KiB (256 MiB of answers), while
/// the client does not read: the server answers as the client drains, so its memory grows
/// by far less than the answers; then every answer arrives, whole and in order.
fn frame_big_replies_stay_bounded(backend: &str) {
    const FRAMES: usize = 4096;
    const REPLY: usize = 64 << 10;
    let mut server = Server::start(backend, &["--protocol", "frame", "--reply-size", "65536"]);
    let before = server.rss();
    let mut s = server.connect();
    s.write_all(&frame(b"").repeat(FRAMES))
        .unwrap_or_else(|e| panic!("{backend}: write: {e}"));
    std::thread::sleep(Duration::from_millis(500));
    server.assert_running();
    let grown = server.rss().saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "{backend}: the server grew by {} MiB for answers the client has not read",
        grown >> 20
    );
    let reply = frame(
        &(0..REPLY as u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    );
    for i in 0..FRAMES {
        expect_bytes(&mut s, &reply).unwrap_or_else(|e| panic!("{backend}: answer {i}: {e}"));
    }
}

// ---------------------------------------------------------------------------------------
// http

const GET: &[u8] = b"GET /x HTTP/1.1\r\nHost: c1m\r\n\r\n";

/// The exact answer the contract fixes for a 200 with a `body`-byte body.
fn ok_response(body: usize, close: bool) -> Vec<u8> {
    let connection = if close { "Connection: close\r\n" } else { "" };
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nServer: c1m\r\nContent-Type: text/plain\r\nContent-Length: {body}\r\n{connection}\r\n"
    )
    .into_bytes();
    r.extend(b"0123456789abcdef".iter().cycle().take(body));
    r
}

/// Checks that `got` is one error answer with `status` that closes the connection.
fn assert_error_answer(backend: &str, got: &[u8], status: &str) {
    let text = String::from_utf8_lossy(got);
    assert!(
        text.starts_with(&format!("HTTP/1.1 {status}")),
        "{backend}: want {status}, got {text:?}"
    );
    assert!(
        text.contains("Content-Length: 0\r\n"),
        "{backend}: {text:?}"
    );
    assert!(
        text.contains("Connection: close\r\n"),
        "{backend}: {text:?}"
    );
    assert!(text.ends_with("\r\n\r\n"), "{backend}: {text:?}");
}

/// Three requests in one write: three answers, in order, byte-exact.
fn http_three_pipelined_in_one_write(backend: &str) {
    let server = Server::start(backend, &["--protocol", "http"]);
    let mut s = server.connect();
    for round in 0..3 {
        exchange(&mut s, &GET.repeat(3), &ok_response(16, false).repeat(3))
            .unwrap_or_else(|e| panic!("{backend}: round {round}: {e}"));
    }
    // --body-size changes the body.
    let server = Server::start(backend, &["--protocol", "http", "--body-size", "100"]);
    let mut s = server.connect();
    exchange(&mut s, &GET.repeat(3), &ok_response(100, false).repeat(3))
        .unwrap_or_else(|e| panic!("{backend}: --body-size 100: {e}"));
}

/// Garbage after a good request: the good one is answered, then 400, then the connection
/// closes; the server keeps serving.
fn http_garbage_gets_400_then_close(backend: &str) {
    let server = Server::start(backend, &["--protocol", "http"]);
    let mut s = server.connect();
    exchange(&mut s, GET, &ok_response(16, false)).unwrap_or_else(|e| panic!("{backend}: {e}"));
    s.write_all(b"\x00\x01 this is not http \xff\r\n\r\n")
        .expect("writing garbage");
    let (got, how) = read_until_closed(&mut s, Duration::from_secs(5));
    assert_error_answer(backend, &got, "400");
    assert!(how.is_ok(), "{backend}: reset instead of FIN: {how:?}");
    let mut fresh = server.connect();
    exchange(&mut fresh, GET, &ok_response(16, false))
        .unwrap_or_else(|e| panic!("{backend}: after the 400: {e}"));
}

/// 200 kB of headers: 431 (or a reset, since the server closes with the rest of the head
/// unread), then the connection is closed; another connection is served all along.
fn http_huge_headers_431_or_reset_others_served(backend: &str) {
    let server = Server::start(backend, &["--protocol", "http"]);
    let mut other = server.connect();
    exchange(&mut other, GET, &ok_response(16, false)).unwrap_or_else(|e| panic!("{backend}: {e}"));
    let mut big = b"GET / HTTP/1.1\r\n".to_vec();
    while big.len() < 200_000 {
        big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    big.extend_from_slice(b"\r\n");
    let mut huge = server.connect();
    let mut writer = huge.try_clone().expect("cloning a socket");
    // The server stops reading part way: the write may block, then fail on the reset.
    let w = spawn_bounded("writer", move || {
        writer.write_all(&big).map_err(|e| e.kind())
    });
    let (got, _how) = read_until_closed(&mut huge, Duration::from_secs(10));
    if !got.is_empty() {
        assert_error_answer(backend, &got, "431");
    }
    let _ = w.join(Duration::from_secs(25));
    for round in 0..3 {
        exchange(&mut other, GET, &ok_response(16, false))
            .unwrap_or_else(|e| panic!("{backend}: other connection, round {round}: {e}"));
    }
    let mut fresh = server.connect();
    exchange(&mut fresh, GET, &ok_response(16, false))
        .unwrap_or_else(|e| panic!("{backend}: fresh connection: {e}"));
}

/// A request written one byte per write gets one answer; twice on one connection.
fn http_request_split_byte_by_byte(backend: &str) {
    let server = Server::start(backend, &["--protocol", "http"]);
    let mut s = server.connect();
    for round in 0..2 {
        for b in GET {
            s.write_all(std::slice::from_ref(b)).expect("one byte");
            std::thread::sleep(Duration::from_micros(500));
        }
        expect_bytes(&mut s, &ok_response(16, false))
            .unwrap_or_else(|e| panic!("{backend}: round {round}: {e}"));
    }
}

/// 10,000 requests one after the other on one keep-alive connection.
fn http_ten_thousand_keep_alive_requests(backend: &str) {
    let server = Server::start(backend, &["--protocol", "http"]);
    let mut s = server.connect();
    let ok = ok_response(16, false);
    for i in 0..10_000 {
        exchange(&mut s, GET, &ok).unwrap_or_else(|e| panic!("{backend}: request {i}: {e}"));
    }
}

/// `Connection: close` and HTTP/1.0 without keep-alive: the answer says
/// `Connection: close` and the server closes after it (with FIN); requests pipelined
/// behind it are not answered.
fn http_connection_close_honoured(backend: &str) {
    let server = Server::start(backend, &["--protocol", "http"]);
    for request in [
        &b"GET / HTTP/1.1\r\nHost: c1m\r\nConnection: close\r\n\r\n"[..],
        b"GET / HTTP/1.0\r\n\r\n",
    ] {
        let mut s = server.connect();
        exchange(&mut s, GET, &ok_response(16, false)).unwrap_or_else(|e| panic!("{backend}: {e}"));
        s.write_all(request).expect("writing the last request");
        let (got, how) = read_until_closed(&mut s, Duration::from_secs(5));
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&ok_response(16, true)),
            "{backend}"
        );
        assert!(how.is_ok(), "{backend}: reset instead of FIN: {how:?}");
    }
    // HTTP/1.0 with keep-alive keeps the connection.
    let mut s = server.connect();
    let keep = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    for _ in 0..2 {
        exchange(&mut s, keep, &ok_response(16, false))
            .unwrap_or_else(|e| panic!("{backend}: {e}"));
    }
}

/// A POST body is read and discarded by Content-Length, in one write with the next
/// request and split across writes.
fn http_post_body_discarded_by_content_length(backend: &str) {
    let server = Server::start(backend, &["--protocol", "http"]);
    let mut s = server.connect();
    let body = payload(3, 5000);
    let mut stream = format!(
        "POST /x HTTP/1.1\r\nHost: c1m\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    stream.extend_from_slice(&body);
    stream.extend_from_slice(GET);
    let two = ok_response(16, false).repeat(2);
    exchange(&mut s, &stream, &two).unwrap_or_else(|e| panic!("{backend}: one write: {e}"));
    for cut in [10, 60, 100, 2000, stream.len() - 5] {
        s.write_all(&stream[..cut]).expect("first piece");
        std::thread::sleep(Duration::from_millis(5));
        exchange(&mut s, &stream[cut..], &two)
            .unwrap_or_else(|e| panic!("{backend}: cut at {cut}: {e}"));
    }
}

/// `Transfer-Encoding: chunked` gets 501 and the connection closes.
fn http_chunked_gets_501(backend: &str) {
    let server = Server::start(backend, &["--protocol", "http"]);
    let mut s = server.connect();
    s.write_all(b"POST / HTTP/1.1\r\nHost: c1m\r\nTransfer-Encoding: chunked\r\n\r\n")
        .expect("writing the request");
    let (got, _how) = read_until_closed(&mut s, Duration::from_secs(5));
    assert_error_answer(backend, &got, "501");
}

// ---------------------------------------------------------------------------------------
// echo-mode limits in protocol mode

/// `--idle-timeout 1`: a silent connection (one of them holding half a request) is closed
/// within a few seconds; one that sends a request every 200 ms stays open.
fn idle_timeout_in_protocol_mode(backend: &str) {
    let server = Server::start(backend, &["--protocol", "http", "--idle-timeout", "1"]);
    let mut idle = server.connect();
    exchange(&mut idle, GET, &ok_response(16, false)).unwrap_or_else(|e| panic!("{backend}: {e}"));
    let mut half = server.connect();
    half.write_all(&GET[..10]).expect("half a request");
    let mut active = server.connect();
    let a = spawn_bounded("active", move || {
        let until = Instant::now() + Duration::from_millis(2500);
        let mut n = 0;
        while Instant::now() < until {
            exchange(&mut active, GET, &ok_response(16, false))
                .map_err(|e| format!("request {n}: {e}"))?;
            n += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok::<_, String>(n)
    });
    let started = Instant::now();
    for (name, s) in [("idle", &mut idle), ("half a request", &mut half)] {
        if let Err(e) = expect_closed(s, Duration::from_secs(5)) {
            panic!("{backend}: {name} connection not closed: {e}");
        }
        // Both fell silent just before `started`.
        let after = started.elapsed();
        assert!(
            after >= Duration::from_millis(700),
            "{backend}: {name} connection closed after only {after:?}"
        );
    }
    match a.join(Duration::from_secs(10)) {
        Ok(n) => assert!(n >= 5, "{backend}: only {n} requests"),
        Err(e) => panic!("{backend}: the active connection was disturbed: {e}"),
    }
}

/// `--max-conns 3` with frames: the fourth connection is closed at once, the three keep
/// being served, and a newcomer is served once one of them closes.
fn max_conns_in_protocol_mode(backend: &str) {
    let server = Server::start(backend, &["--protocol", "frame", "--max-conns", "3"]);
    let ping = frame(b"ping");
    let mut open: Vec<_> = (0..3)
        .map(|i| {
            let mut s = server.connect();
            exchange(&mut s, &ping, &ping)
                .unwrap_or_else(|e| panic!("{backend}: connection {i} of 3: {e}"));
            s
        })
        .collect();
    let mut fourth = server.connect();
    if let Err(e) = expect_closed(&mut fourth, Duration::from_secs(3)) {
        panic!("{backend}: the fourth connection was not closed: {e}");
    }
    for (i, s) in open.iter_mut().enumerate() {
        exchange(s, &ping, &ping).unwrap_or_else(|e| panic!("{backend}: connection {i}: {e}"));
    }
    drop(open.remove(0));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = server.connect();
        match exchange(&mut s, &ping, &ping) {
            Ok(()) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "{backend}: no new connection served after one of three closed: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM with protocol connections open (one holding half a request): exit 0, every
/// connection closed, and `--stats-json` counts the requests answered.
fn sigterm_in_protocol_mode_with_counters(backend: &str) {
    let path = stats_path("protocols", backend, "sigterm");
    let path_arg = path.to_str().expect("UTF-8 temp path");
    let mut server = Server::start(backend, &["--protocol", "http", "--stats-json", path_arg]);
    let mut conns: Vec<_> = (0..3).map(|_| server.connect()).collect();
    for (i, s) in conns.iter_mut().enumerate() {
        exchange(s, &GET.repeat(i + 1), &ok_response(16, false).repeat(i + 1))
            .unwrap_or_else(|e| panic!("{backend}: conn {i}: {e}"));
    }
    conns[0].write_all(&GET[..7]).expect("half a request");
    std::thread::sleep(Duration::from_millis(50));
    let json = stop_and_read_stats(&mut server, &path);
    for (i, s) in conns.iter_mut().enumerate() {
        if let Err(e) = expect_closed(s, Duration::from_secs(2)) {
            panic!("{backend}: conn {i} after exit: {e}");
        }
    }
    assert_eq!(json["protocol"], "http", "{json}");
    assert_eq!(json["requests"], 6, "{backend}: {json}");
    assert_eq!(json["proto_errors"], 0, "{backend}: {json}");
}
