//! The `tokio-uring` backend: what the ergonomic io_uring runtime gives you. One
//! tokio-uring runtime (a current-thread tokio runtime + `LocalSet` + one ring, whose fd
//! tokio's epoll watches) per pinned thread; one task per connection that reads into an
//! owned buffer and writes it all back (or, with a protocol, writes every response that
//! read completed, from a second owned buffer), each step one io_uring operation.
//! tokio-uring 0.5 has no multishot and no direct descriptors: one accept per connection,
//! one read operation in flight per connection, each connection an ordinary fd. Shared
//! rules (limits, idle timeout, back-pressure, stopping) are in `tokio_common`.
//!
//! Syscall counters stay 0: `io_uring_enter` is called inside tokio-uring's driver (on
//! every park and when the submission queue is full), and tokio's `epoll_wait` inside
//! tokio, where neither can be counted from here; reads, writes and accepts are ring
//! operations, not syscalls.
//!
//! Pitfall handled here: dropping an in-flight tokio-uring operation does not cancel it,
//! and the operation keeps its fd alive until it completes. A connection closed while its
//! read is pending (idle) is therefore shut down first, which completes the read at once,
//! and only then dropped, so its fd is closed now and not when the runtime ends.

use super::tokio_common::{stop_requested, unless_idle, ConnGuard, End, Shared};
use super::LoopContext;
use crate::conn::ConnState;
use crate::proto::{release_buffer, Session};
use anyhow::Context;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::pin::pin;
use std::rc::Rc;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};

/// Submission queue entries (tokio-uring's default is 256). Each connection has one
/// operation in flight, and a wakeup may bring many; a larger ring means fewer
/// `io_uring_enter` calls forced by a full SQ.
const SQ_ENTRIES: u32 = 1024;

/// Completion queue entries: room for the completions of many connections between two
/// dispatches, so the CQ rarely overflows into the kernel's (slower) overflow list.
const CQ_ENTRIES: u32 = 16384;

pub fn run(ctx: LoopContext) -> anyhow::Result<()> {
    // `tokio_uring::builder().start()` unwraps the setup error; build the runtime
    // ourselves so a failure becomes a setup error with a message.
    let mut builder = tokio_uring::builder();
    builder
        .entries(SQ_ENTRIES)
        .uring_builder(tokio_uring::uring_builder().setup_cqsize(CQ_ENTRIES));
    let rt = match tokio_uring::Runtime::new(&builder).context("starting a tokio-uring runtime") {
        Ok(rt) => rt,
        Err(e) => {
            ctx.report_ready(Err(e));
            return Ok(());
        }
    };
    rt.block_on(serve_loop(ctx));
    // Dropping the runtime drops every connection task; their in-flight operations are
    // cancelled by the driver, which waits for them, and then the fds are closed.
    drop(rt);
    Ok(())
}

/// Hands the listeners to the ring, reports ready, accepts until a stop is requested.
async fn serve_loop(mut ctx: LoopContext) {
    let shared = Shared::new(&ctx);
    // The runtime wedges when an accept fails with EMFILE: refuse before the limit.
    shared.cap_below_fd_limit();
    for l in std::mem::take(&mut ctx.listeners) {
        // The listener comes non-blocking; io_uring never blocks the thread on accept
        // either way, and with O_NONBLOCK some kernels complete an accept on an empty
        // backlog with EAGAIN instead of waiting for a connection.
        if let Err(e) = l.set_nonblocking(false) {
            ctx.report_ready(Err(
                anyhow::Error::new(e).context("making a listener blocking for io_uring")
            ));
            return;
        }
        tokio_uring::spawn(accept_loop(TcpListener::from_std(l), shared.clone()));
    }
    ctx.report_ready(Ok(()));
    stop_requested().await;
}

/// Accepts on one listener forever, one accept operation at a time; every connection
/// gets its own task.
async fn accept_loop(listener: TcpListener, shared: Rc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                // Over --max-conns: the stream is dropped (closed) right here.
                if let Some(guard) = shared.admit() {
                    tokio_uring::spawn(serve(stream, guard));
                }
            }
            Err(e) => {
                if let Some(pause) = shared.accept_failed(&e, listener.as_raw_fd()) {
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

/// Echoes (or answers) one connection until the peer finishes, it idles, or an error;
/// dropping `stream` at the end closes it (no operation is in flight by then).
async fn serve(stream: TcpStream, guard: ConnGuard) {
    let shared = guard.shared();
    let (stats, limits) = (&*shared.stats, &shared.limits);
    // tokio-uring's own echo example: the buffer is owned by each operation in turn.
    let mut buf = vec![0u8; shared.buffer_size()];
    let mut state = ConnState::new(shared.now());
    // Decided once per connection: echo never touches the protocol layer.
    let mut proto = (!shared.protocol.is_echo()).then(|| (Session::default(), Vec::new()));
    let end = loop {
        let mut read = pin!(stream.read(buf));
        let (res, returned) = match unless_idle(shared, &state, read.as_mut()).await {
            Some(done) => done,
            None => {
                // Complete the read now (see the module docs) before the socket goes.
                let _ = stream.shutdown(Shutdown::Both);
                let _ = read.await;
                break End::Idle;
            }
        };
        buf = returned;
        let n = match res {
            Err(_) => break End::Error,
            Ok(0) => {
                state.on_peer_closed();
                // Everything read was written before this read: nothing is pending.
                debug_assert!(state.finished());
                break End::Finished;
            }
            Ok(n) => n,
        };
        stats.recvs.add(1);
        stats.bytes_in.add(n as u64);
        let written = match proto.as_mut() {
            None => {
                // Pause/Resume need no action: see back-pressure in tokio_common.
                let _ = state.on_received(n, shared.now(), limits);
                let (returned, written) = write_all(&stream, buf, n, shared, &mut state).await;
                buf = returned;
                written
            }
            Some((session, out)) => {
                // Answers beyond the protocol's burst bound wait in its backlog: answer
                // them, writing in between, before reading again.
                let mut input = n;
                loop {
                    shared.answer(session, &mut state, &buf[..input], out);
                    let len = out.len();
                    let (returned, written) =
                        write_all(&stream, std::mem::take(out), len, shared, &mut state).await;
                    *out = returned;
                    release_buffer(out);
                    if written.is_err() || !session.has_backlog() {
                        break written;
                    }
                    input = 0;
                }
            }
        };
        if let Err(end) = written {
            break end;
        }
        if state.finished() {
            break End::Finished; // the last response of a protocol connection is sent
        }
    };
    end.count(stats);
    drop(stream);
}

/// Writes `bytes[..len]` (`write_all` by hand, so each partial write feeds `ConnState`
/// and the stats); gives the buffer back whatever happened.
async fn write_all(
    stream: &TcpStream,
    mut bytes: Vec<u8>,
    len: usize,
    shared: &Shared,
    state: &mut ConnState,
) -> (Vec<u8>, Result<(), End>) {
    let (stats, limits) = (&*shared.stats, &shared.limits);
    let mut done = 0;
    while done < len {
        let mut write = pin!(stream.write(bytes.slice(done..len)).submit());
        let (res, slice) = match unless_idle(shared, state, write.as_mut()).await {
            Some(done) => done,
            None => {
                // A blocked write completes with EPIPE once the socket is shut down.
                let _ = stream.shutdown(Shutdown::Both);
                let (_, slice) = write.await;
                return (slice.into_inner(), Err(End::Idle));
            }
        };
        bytes = slice.into_inner();
        match res {
            Ok(0) | Err(_) => return (bytes, Err(End::Error)),
            Ok(k) => {
                done += k;
                stats.sends.add(1);
                stats.bytes_out.add(k as u64);
                let _ = state.on_sent(k, shared.now(), limits);
            }
        }
    }
    (bytes, Ok(()))
}
