//! The measuring loop: one blocking TCP connection, one message in flight.

use crate::args::{Args, Mode};
use crate::clock::{now_ns, wait_until, Schedule};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Longest wait for one echo before the run fails.
const ECHO_TIMEOUT: Duration = Duration::from_secs(5);

/// What one run collected: nanosecond samples of the measured phase.
#[derive(Debug, Default)]
pub struct Samples {
    pub latency_ns: Vec<u64>,
    /// Open loop: how late each measured send left after its intended time.
    pub send_lag_ns: Vec<u64>,
    pub verify_errors: u64,
}

/// Message `seq`: every byte depends on the sequence number and its position, so a
/// reordered, repeated, shifted or corrupted echo does not match.
pub fn fill_message(seq: u64, buf: &mut [u8]) {
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    for b in buf.iter_mut() {
        // xorshift64: cheap and different for every position.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

/// Connects with TCP_NODELAY and a read timeout.
pub fn connect(args: &Args) -> io::Result<TcpStream> {
    let s = TcpStream::connect(args.target)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(ECHO_TIMEOUT))?;
    Ok(s)
}

/// Runs the warm-up and the measured phase on `stream`.
pub fn run(args: &Args, stream: &mut TcpStream) -> io::Result<Samples> {
    let mut sent = vec![0u8; args.size];
    let mut echo = vec![0u8; args.size];
    let start = now_ns();
    let measure_from = start + (args.warmup_s * 1e9) as u64;
    let end = measure_from + (args.duration_s * 1e9) as u64;
    let expected = match args.mode {
        Mode::Closed => (args.duration_s * 50_000.0) as usize,
        Mode::Open(rate) => (args.duration_s * rate) as usize + 1,
    };
    let mut out = Samples {
        latency_ns: Vec::with_capacity(expected.min(1 << 26)),
        ..Samples::default()
    };
    let schedule = match args.mode {
        Mode::Open(rate) => Some(Schedule {
            start_ns: start,
            rate,
        }),
        Mode::Closed => None,
    };
    let mut seq: u64 = 0;
    loop {
        let intended = match schedule {
            Some(s) => {
                let due = s.due_ns(seq);
                if due >= end {
                    break;
                }
                wait_until(due);
                due
            }
            None => now_ns(),
        };
        if schedule.is_none() && intended >= end {
            break;
        }
        fill_message(seq, &mut sent);
        let t_send = now_ns();
        stream.write_all(&sent)?;
        read_echo(stream, &mut echo)?;
        let t_done = now_ns();
        if intended >= measure_from {
            out.latency_ns.push(t_done - intended);
            if schedule.is_some() {
                out.send_lag_ns.push(t_send.saturating_sub(intended));
            }
            if echo != sent {
                out.verify_errors += 1;
            }
        } else if echo != sent {
            // A wrong echo in the warm-up is still wrong.
            out.verify_errors += 1;
        }
        seq += 1;
    }
    Ok(out)
}

/// Reads exactly one message's worth, however the kernel splits it.
fn read_echo(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<()> {
    stream.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => io::Error::new(
            e.kind(),
            "the server closed the connection before echoing a whole message",
        ),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no whole echo within {ECHO_TIMEOUT:?}"),
        ),
        _ => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Args;
    use std::net::TcpListener;

    #[test]
    fn messages_differ_by_sequence_and_position() {
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        fill_message(1, &mut a);
        fill_message(2, &mut b);
        assert_ne!(a, b);
        let mut again = [0u8; 64];
        fill_message(1, &mut again);
        assert_eq!(a, again);
        // Not a repeating byte: a shift by one position would not match.
        assert_ne!(a[..63], a[1..]);
    }

    /// An echo server on a thread that corrupts the `bad`-th message (0-based), if any.
    fn echo_server(bad: Option<usize>, size: usize) -> std::net::SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        std::thread::spawn(move || {
            let Ok((mut s, _)) = l.accept() else { return };
            // Without it the second half waits for the client's delayed ACK (Nagle).
            let _ = s.set_nodelay(true);
            let mut buf = vec![0u8; size];
            let mut n = 0;
            while s.read_exact(&mut buf).is_ok() {
                if Some(n) == bad {
                    buf[0] ^= 0xff;
                }
                n += 1;
                // Echo in two writes so the client reassembles.
                let (x, y) = buf.split_at(size / 2);
                if s.write_all(x).and_then(|_| s.write_all(y)).is_err() {
                    return;
                }
            }
        });
        addr
    }

    fn args(target: std::net::SocketAddr, mode: Mode) -> Args {
        Args {
            target,
            mode,
            duration_s: 0.2,
            warmup_s: 0.05,
            size: 32,
            cpu: None,
        }
    }

    #[test]
    fn closed_and_open_loop_against_an_echo_server() {
        let a = args(echo_server(None, 32), Mode::Closed);
        let mut s = connect(&a).expect("connect");
        let r = run(&a, &mut s).expect("run");
        assert_eq!(r.verify_errors, 0);
        assert!(r.latency_ns.len() > 10);
        assert!(r.send_lag_ns.is_empty());

        let a = args(echo_server(None, 32), Mode::Open(1000.0));
        let mut s = connect(&a).expect("connect");
        let r = run(&a, &mut s).expect("run");
        assert_eq!(r.verify_errors, 0);
        // 0.2 s at 1000/s after the warm-up: about 200 sends.
        assert!(
            (190..=210).contains(&r.latency_ns.len()),
            "{}",
            r.latency_ns.len()
        );
        assert_eq!(r.send_lag_ns.len(), r.latency_ns.len());
    }

    #[test]
    fn a_wrong_echo_is_counted() {
        let a = args(echo_server(Some(3), 32), Mode::Open(1000.0));
        let mut s = connect(&a).expect("connect");
        let r = run(&a, &mut s).expect("run");
        assert_eq!(r.verify_errors, 1);
    }
}
