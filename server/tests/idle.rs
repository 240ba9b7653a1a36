//! Connections that go idle and then talk again, in every protocol, on every backend. On
//! uring with `--idle-after-ms` the quiet ones have their recv replaced by a poll
//! ("parked", README "Idle connections"), and the message after the quiet spell comes in
//! through the poll and a re-armed recv; messages that arrive right around the idle time
//! race the cancel of the recv. Every answer must be byte-exact, nothing may come twice
//! (no double recv: the server's received byte count equals what was written), and on
//! uring the parking must really have happened.

#[macro_use]
mod common;

use common::*;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

backend_tests!(
    idle_then_send_echo,
    idle_then_send_frame,
    idle_then_send_http,
    idle_then_send_on_many_rings,
    idle_then_send_started_parked
);

/// uring's idle time in these tests; the quiet spell is several times longer.
const IDLE_AFTER_MS: u64 = 40;
const CONNS: usize = 12;
/// Messages per connection sent at gaps around the idle time (racing the cancel).
const RACING: usize = 16;
const BODY: usize = 64;

#[derive(Clone, Copy)]
enum Proto {
    Echo,
    Frame,
    Http,
}

impl Proto {
    fn flag(self) -> &'static str {
        match self {
            Proto::Echo => "echo",
            Proto::Frame => "frame",
            Proto::Http => "http",
        }
    }

    /// Request `seed` and the exact answer to it.
    fn exchange(self, seed: u64) -> (Vec<u8>, Vec<u8>) {
        let mut rng = Rng::new(seed);
        let mut payload = vec![0u8; rng.range(1, 3000)];
        Pattern::new(seed).fill(&mut payload);
        match self {
            Proto::Echo => (payload.clone(), payload),
            Proto::Frame => {
                let mut f = (payload.len() as u32).to_be_bytes().to_vec();
                f.extend_from_slice(&payload);
                (f.clone(), f)
            }
            Proto::Http => {
                let mut answer = format!(
                    "HTTP/1.1 200 OK\r\nServer: c1m\r\nContent-Type: text/plain\r\n\
                     Content-Length: {BODY}\r\n\r\n"
                )
                .into_bytes();
                answer.extend(b"0123456789abcdef".iter().cycle().take(BODY));
                (b"GET /idle HTTP/1.1\r\nHost: c1m\r\n\r\n".to_vec(), answer)
            }
        }
    }
}

/// Writes `request` in two pieces a moment apart (the second may land on a re-armed
/// recv) and reads exactly the answer.
fn send_and_check(stream: &mut TcpStream, request: &[u8], answer: &[u8]) -> Result<(), String> {
    let cut = request.len() / 2;
    stream
        .write_all(&request[..cut])
        .map_err(|e| format!("write: {e}"))?;
    std::thread::sleep(Duration::from_millis(2));
    stream
        .write_all(&request[cut..])
        .map_err(|e| format!("write: {e}"))?;
    let mut got = vec![0u8; answer.len()];
    stream
        .read_exact(&mut got)
        .map_err(|e| format!("reading {} bytes: {e}", answer.len()))?;
    if got != answer {
        let at = got.iter().zip(answer).position(|(a, b)| a != b);
        return Err(format!("answer differs at byte {at:?} of {}", answer.len()));
    }
    Ok(())
}

/// One connection: a message, a quiet spell (parked on uring), a message, then messages
/// at gaps around the idle time; finally nothing more may arrive. Returns bytes written.
fn one_connection(mut stream: TcpStream, proto: Proto, id: u64) -> Result<u64, String> {
    let mut written = 0u64;
    let mut rng = Rng::new(id + 1000);
    for round in 0..2 + RACING {
        let (request, answer) = proto.exchange(id * 100 + round as u64);
        send_and_check(&mut stream, &request, &answer)
            .map_err(|e| format!("round {round}: {e}"))?;
        written += request.len() as u64;
        let quiet = match round {
            0 => IDLE_AFTER_MS * 5,
            _ => rng.range(IDLE_AFTER_MS as usize - 10, IDLE_AFTER_MS as usize + 20) as u64,
        };
        std::thread::sleep(Duration::from_millis(quiet));
    }
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    let mut extra = [0u8; 64];
    match stream.read(&mut extra) {
        Ok(0) => Err("closed by the server".into()),
        Ok(n) => Err(format!("{n} bytes more than the answers")),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(written)
        }
        Err(e) => Err(format!("reading after the last answer: {e}")),
    }
}

/// How the server is set up besides its protocol.
#[derive(Clone, Copy, PartialEq)]
enum Setup {
    Plain,
    /// The server's one loop drives that many rings of 8 slots (uring), each parking its
    /// own connections in steps.
    Rings(usize),
    /// Every connection starts parked (uring), its first message read through the poll.
    StartedParked,
}

fn idle_then_send(backend: &str, proto: Proto, setup: Setup) {
    let rings = match setup {
        Setup::Rings(r) => Some(r),
        _ => None,
    };
    let label = match setup {
        Setup::Rings(r) => format!("{}-{r}-rings", proto.flag()),
        Setup::StartedParked => format!("{}-started-parked", proto.flag()),
        Setup::Plain => proto.flag().to_string(),
    };
    let path = stats_path("idle", backend, &label);
    let path_arg = path.to_str().expect("utf-8 path").to_string();
    let idle = IDLE_AFTER_MS.to_string();
    let body = BODY.to_string();
    let max_conns = rings.map(|r| (8 * r).to_string());
    let mut flags = vec!["--protocol", proto.flag(), "--body-size", &body];
    if let Some(max) = &max_conns {
        flags.extend(["--max-conns", max]);
    }
    let uring = backend == "uring";
    if uring {
        flags.extend(["--idle-after-ms", &idle, "--stats-json", &path_arg]);
        match setup {
            Setup::Rings(_) => flags.extend(["--ring-slots", "8"]),
            Setup::StartedParked => flags.extend(["--start-parked-from", "0"]),
            Setup::Plain => {}
        }
    }
    let mut server = Server::start(backend, &flags);
    let clients: Vec<_> = (0..CONNS)
        .map(|i| {
            let stream = server.connect();
            spawn_bounded("idle client", move || {
                one_connection(stream, proto, i as u64)
            })
        })
        .collect();
    let mut written = 0;
    for (i, c) in clients.into_iter().enumerate() {
        match c.join(Duration::from_secs(60)) {
            Ok(n) => written += n,
            Err(e) => panic!(
                "{backend}: connection {i}: {e}; stderr:\n{}",
                server.stderr()
            ),
        }
    }
    server.assert_running();
    if !uring {
        return;
    }
    let stats = stop_and_read_stats(&mut server, &path);
    let get = |k: &str| {
        stats[k]
            .as_u64()
            .unwrap_or_else(|| panic!("no {k} in {stats}"))
    };
    assert_eq!(
        get("bytes_in"),
        written,
        "the server received other than what was written (a double recv?)"
    );
    // Every connection was parked at least in its long quiet spell, and woke from it.
    assert!(get("parked") >= CONNS as u64, "parked {}", get("parked"));
    assert!(get("woken") >= CONNS as u64, "woken {}", get("woken"));
    // The first piece after each quiet spell is read while the connection stays parked.
    assert!(
        get("woken_parked") >= CONNS as u64,
        "woken_parked {}",
        get("woken_parked")
    );
    assert_eq!(get("conn_errors"), 0);
    if let Some(rings) = rings {
        // The sizing leaves room for an uneven spread: at least that many rings.
        assert_eq!(get("loops"), 1, "{stats}");
        assert!(get("rings") >= rings as u64, "{stats}");
    }
}

fn idle_then_send_echo(backend: &str) {
    idle_then_send(backend, Proto::Echo, Setup::Plain);
}

fn idle_then_send_frame(backend: &str) {
    idle_then_send(backend, Proto::Frame, Setup::Plain);
}

fn idle_then_send_http(backend: &str) {
    idle_then_send(backend, Proto::Http, Setup::Plain);
}

/// 12 connections over 6 rings of 8 slots on one thread (room for a hash that puts many on
/// one ring): every ring's sweep parks its own.
fn idle_then_send_on_many_rings(backend: &str) {
    idle_then_send(backend, Proto::Echo, Setup::Rings(6));
}

/// Every connection starts parked: its first message comes in through the poll.
fn idle_then_send_started_parked(backend: &str) {
    idle_then_send(backend, Proto::Frame, Setup::StartedParked);
}
