//! The send path under pressure, on every backend and on uring with and without
//! coalescing and quick sends (`send_path_tests!`): many connections streaming large
//! amounts to readers with small windows that start late and stall now and then, so sends
//! come back short, would block and resume, in every protocol; every byte checked. And on
//! uring: a lone message costs one `io_uring_enter` (the quick send leaves in the enter
//! that then sleeps until the next message).

#[macro_use]
mod common;

use common::*;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

send_path_tests!(
    slow_readers_echo_streams,
    slow_readers_frame_streams,
    slow_readers_http_streams,
    one_fast_echo_stream,
    one_fast_frame_stream,
    one_fast_http_stream,
);

/// Connections per test, as in the experiment that found a stall.
const CONNS: usize = 20;
/// Receive buffer of each reader: the server's sends back up after a few KiB.
const RCVBUF: usize = 8 << 10;

/// How a stream's reader reads.
#[derive(Clone, Copy)]
enum Reader {
    /// A small window; starts half a second late, reads small pieces, stalls now and then.
    Slow,
    /// As fast as it can: a send that waits on nothing but the loop shows as a stall.
    Fast,
}

/// One connection per entry of `requests`: each writes its requests in random chunks
/// while a reader on the same socket reads and checks the bytes against `answers`. Both
/// sides bounded in time.
fn streams(
    backend: &str,
    flags: &[&str],
    requests: Vec<Vec<u8>>,
    answers: Vec<Vec<u8>>,
    how: Reader,
) {
    let server = Server::start(backend, flags);
    let mut threads = Vec::new();
    for (i, (request, answer)) in requests.into_iter().zip(answers).enumerate() {
        let mut writer = match how {
            Reader::Slow => connect_small_window(server.addr, RCVBUF),
            Reader::Fast => server.connect(),
        };
        let mut reader = writer.try_clone().expect("cloning a socket");
        threads.push(spawn_bounded("writer", move || {
            let mut rng = Rng::new(i as u64);
            let mut at = 0;
            while at < request.len() {
                let n = rng.size(32 << 10).min(request.len() - at);
                writer
                    .write_all(&request[at..at + n])
                    .map_err(|e| format!("conn {i}: write at {at}: {e}"))?;
                at += n;
            }
            Ok::<_, String>(())
        }));
        threads.push(spawn_bounded("reader", move || {
            read_checked(&mut reader, &answer, 1000 + i as u64, how)
                .map_err(|e| format!("conn {i}: {e}"))
        }));
    }
    for t in threads {
        let result = t.join(Duration::from_secs(60));
        assert_eq!(
            result,
            Ok(()),
            "{backend} {flags:?}; stderr:\n{}",
            server.stderr()
        );
    }
}

/// Reads `expected.len()` bytes as `how` says; they must equal `expected`.
fn read_checked(
    stream: &mut TcpStream,
    expected: &[u8],
    seed: u64,
    how: Reader,
) -> Result<(), String> {
    let slow = matches!(how, Reader::Slow);
    let mut rng = Rng::new(seed);
    let mut buf = vec![0u8; if slow { 16 << 10 } else { 256 << 10 }];
    let mut got = 0;
    if slow {
        std::thread::sleep(Duration::from_millis(500));
    }
    while got < expected.len() {
        if slow && rng.range(0, 15) == 0 {
            std::thread::sleep(Duration::from_millis(rng.range(2, 10) as u64));
        }
        let want = if slow { rng.size(buf.len()) } else { buf.len() };
        let want = want.min(expected.len() - got);
        let n = match stream.read(&mut buf[..want]) {
            Ok(0) => return Err(format!("EOF after {got} of {} bytes", expected.len())),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read after {got} bytes: {e}")),
        };
        if buf[..n] != expected[got..got + n] {
            let at = (0..n).find(|&k| buf[k] != expected[got + k]).unwrap_or(0);
            return Err(format!("wrong byte at offset {}", got + at));
        }
        got += n;
    }
    Ok(())
}

fn pattern_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    Pattern::new(seed).fill(&mut v);
    v
}

fn echo(backend: &str, flags: &[&str], conns: usize, bytes: usize, how: Reader) {
    let data: Vec<_> = (0..conns).map(|i| pattern_bytes(i as u64, bytes)).collect();
    streams(backend, flags, data.clone(), data, how);
}

/// Frames of 0 to 16 KiB payload, about `bytes` per connection, echoed.
fn frames(backend: &str, flags: &[&str], conns: usize, bytes: usize, how: Reader) {
    let mut flags = flags.to_vec();
    flags.extend(["--protocol", "frame"]);
    let data: Vec<_> = (0..conns)
        .map(|i| {
            let mut rng = Rng::new(50 + i as u64);
            let mut stream = Vec::new();
            let mut k = 0;
            while stream.len() < bytes {
                let len = rng.range(0, 16 << 10);
                stream.extend((len as u32).to_be_bytes());
                stream.extend(pattern_bytes(k, len));
                k += 1;
            }
            stream
        })
        .collect();
    streams(backend, &flags, data.clone(), data, how);
}

/// `gets` pipelined GETs per connection, each answered with a 4,000-byte body.
fn gets(backend: &str, flags: &[&str], conns: usize, gets: usize, how: Reader) {
    const BODY: usize = 4000;
    let mut flags = flags.to_vec();
    flags.extend(["--protocol", "http", "--body-size", "4000"]);
    let get = b"GET /s HTTP/1.1\r\nHost: c1m\r\n\r\n".repeat(gets);
    let mut answer = format!(
        "HTTP/1.1 200 OK\r\nServer: c1m\r\nContent-Type: text/plain\r\nContent-Length: {BODY}\r\n\r\n"
    )
    .into_bytes();
    answer.extend(b"0123456789abcdef".iter().cycle().take(BODY));
    let answers = vec![answer.repeat(gets); conns];
    streams(backend, &flags, vec![get; conns], answers, how);
}

/// 1 MiB each way per connection.
fn slow_readers_echo_streams(backend: &str, flags: &[&str]) {
    echo(backend, flags, CONNS, 1 << 20, Reader::Slow);
}

fn slow_readers_frame_streams(backend: &str, flags: &[&str]) {
    frames(backend, flags, CONNS, 512 << 10, Reader::Slow);
}

/// 300 GETs per connection: 1.2 MB of answers.
fn slow_readers_http_streams(backend: &str, flags: &[&str]) {
    gets(backend, flags, CONNS, 300, Reader::Slow);
}

/// One connection, 16 MiB, a reader as fast as the writer: the loop must go on sending
/// without waiting for an unrelated wakeup (a send that finished without a completion
/// still holds up the next one).
fn one_fast_echo_stream(backend: &str, flags: &[&str]) {
    echo(backend, flags, 1, 16 << 20, Reader::Fast);
}

fn one_fast_frame_stream(backend: &str, flags: &[&str]) {
    frames(backend, flags, 1, 16 << 20, Reader::Fast);
}

/// 4,000 GETs: 16 MB of answers.
fn one_fast_http_stream(backend: &str, flags: &[&str]) {
    gets(backend, flags, 1, 4000, Reader::Fast);
}

// ---------------------------------------------------------------------------------------
// io_uring_enter per message

/// Lone messages, one at a time on one connection.
const LONE: u64 = 2000;

/// `LONE` request/answer round trips on one connection against uring with `flags`; the
/// server's `io_uring_enter` count (from --stats-json) must stay within 1.05 per message,
/// plus its 100 ms wait timeouts for the time taken and a few for start and stop. Plain
/// sends take two per message, so this fails without quick sends.
fn lone_messages(protocol: &str, flags: &[&str]) {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "sendpath-lone-{protocol}-{}-{}.json",
        flags.len(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let path_arg = path.to_string_lossy().into_owned();
    let mut args = vec!["--protocol", protocol, "--stats-json", &path_arg];
    args.extend_from_slice(flags);
    let mut server = Server::start("uring", &args);
    let mut s = server.connect();
    let (request, answer): (Vec<u8>, Vec<u8>) = match protocol {
        "echo" => (vec![7u8; 64], vec![7u8; 64]),
        "frame" => {
            let mut f = 16u32.to_be_bytes().to_vec();
            f.extend([9u8; 16]);
            (f.clone(), f)
        }
        _ => {
            let mut a = b"HTTP/1.1 200 OK\r\nServer: c1m\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n\r\n".to_vec();
            a.extend(b"0123456789abcdef");
            (b"GET / HTTP/1.1\r\nHost: c1m\r\n\r\n".to_vec(), a)
        }
    };
    let started = Instant::now();
    let mut got = vec![0u8; answer.len()];
    for i in 0..LONE {
        s.write_all(&request)
            .unwrap_or_else(|e| panic!("{protocol}: write {i}: {e}"));
        s.read_exact(&mut got)
            .unwrap_or_else(|e| panic!("{protocol}: answer {i}: {e}"));
        assert_eq!(got, answer, "{protocol}: answer {i}");
    }
    let elapsed = started.elapsed();
    drop(s);
    let status = server.terminate(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "{protocol}: exit {status:?}; stderr:\n{}",
        server.stderr()
    );
    let text = std::fs::read_to_string(&path).expect("reading --stats-json");
    let _ = std::fs::remove_file(&path);
    let stats: serde_json::Value = serde_json::from_str(&text).expect("--stats-json is JSON");
    let enters = stats["sys_io_uring_enter"]
        .as_u64()
        .expect("sys_io_uring_enter");
    let recvs = stats["recvs"].as_u64().expect("recvs");
    assert!(
        recvs >= LONE,
        "{protocol}: {recvs} receives for {LONE} messages"
    );
    let timeouts = elapsed.as_millis() as u64 / 100 + 1;
    let allowed = LONE * 105 / 100 + timeouts + 20;
    assert!(
        enters <= allowed,
        "{protocol} {flags:?}: {enters} io_uring_enter for {LONE} lone messages in {elapsed:?} \
         (allowed {allowed})"
    );
}

#[test]
fn lone_echo_messages_one_enter_each() {
    lone_messages("echo", &[]);
}

#[test]
fn lone_frame_messages_one_enter_each() {
    lone_messages("frame", &[]);
}

#[test]
fn lone_http_messages_one_enter_each() {
    lone_messages("http", &[]);
}

#[test]
fn lone_messages_one_enter_each_with_coalescing() {
    for protocol in ["echo", "frame", "http"] {
        lone_messages(protocol, &["--coalesce-us", "50"]);
    }
}
