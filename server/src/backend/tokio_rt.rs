//! The `tokio` backend: what most Rust users would write. One current-thread tokio
//! runtime per pinned thread, a `LocalSet` for `spawn_local` (the same executor shape as
//! tokio-uring, so the two differ only in their I/O driver), one task per connection that
//! reads into its buffer and writes it all back (or, with a protocol, writes every response
//! that read completed). Shared rules (limits, idle timeout,
//! back-pressure, stopping) are in `tokio_common`.
//!
//! Syscall counters: reads and writes go through `readable()`/`writable()` +
//! `try_read`/`try_write`, and accepts through `AsyncFd` + `accept4`, which is what
//! `AsyncReadExt::read`, `write` and `TcpListener::accept` do inside (try the syscall while
//! the socket is marked ready, wait for readiness after `EAGAIN`); written out, every
//! attempt that reaches the socket, `EAGAIN` included, is counted in `sys_read`,
//! `sys_write` or `sys_accept`. The runtime's own `epoll_wait` (and `epoll_ctl` on
//! register/deregister) happen inside tokio where they cannot be counted: `sys_epoll_wait`
//! stays 0 for this backend.

use super::tokio_common::{stop_requested, unless_idle, ConnGuard, End, Shared};
use super::LoopContext;
use crate::conn::ConnState;
use crate::proto::{release_buffer, Session};
use crate::stats::LoopStats;
use anyhow::Context;
use socket2::Socket;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::pin;
use std::rc::Rc;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::task::LocalSet;

pub fn run(ctx: LoopContext) -> anyhow::Result<()> {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")
    {
        Ok(rt) => rt,
        Err(e) => {
            ctx.report_ready(Err(e));
            return Ok(());
        }
    };
    let local = LocalSet::new();
    local.block_on(&rt, serve_loop(ctx));
    // Drop the connection tasks (closing their sockets) while the runtime still exists,
    // so each socket is deregistered from the runtime's epoll before its fd is closed.
    drop(local);
    drop(rt);
    Ok(())
}

/// Registers the listeners, reports ready, accepts until a stop is requested.
async fn serve_loop(mut ctx: LoopContext) {
    let shared = Shared::new(&ctx);
    let mut listeners = Vec::with_capacity(ctx.listeners.len());
    for l in std::mem::take(&mut ctx.listeners) {
        // SAFETY: the `Socket` owns its fd, which stays open and the same until the
        // `AsyncFd` (its only owner) is dropped; the socket is never swapped out.
        match unsafe { AsyncFd::register_with_interest(Socket::from(l), Interest::READABLE) } {
            Ok(l) => listeners.push(l),
            Err(e) => {
                ctx.report_ready(Err(anyhow::Error::new(io::Error::from(e))
                    .context("registering a listener with tokio")));
                return;
            }
        }
    }
    for l in listeners {
        tokio::task::spawn_local(accept_loop(l, shared.clone()));
    }
    ctx.report_ready(Ok(()));
    stop_requested().await;
}

/// Accepts on one listener forever; every connection gets its own task.
async fn accept_loop(listener: AsyncFd<Socket>, shared: Rc<Shared>) {
    loop {
        match accept(&listener, &shared.stats).await {
            Ok(socket) => {
                // Over --max-conns: the socket is dropped (closed) right here, before it
                // costs an epoll registration.
                let Some(guard) = shared.admit() else {
                    continue;
                };
                match TcpStream::from_std(socket.into()) {
                    Ok(stream) => {
                        tokio::task::spawn_local(serve(stream, guard));
                    }
                    // Registration failed (e.g. epoll's max_user_watches): this connection
                    // only; the guard counts it closed.
                    Err(_) => shared.stats.conn_errors.add(1),
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

/// One `accept4`, the way tokio's `TcpListener::accept` does it (non-blocking, close on
/// exec), counting each attempt.
async fn accept(listener: &AsyncFd<Socket>, stats: &LoopStats) -> io::Result<Socket> {
    loop {
        let mut ready = listener.readable().await?;
        // `try_io` clears the readiness on EAGAIN, so the next `readable()` waits.
        match ready.try_io(|l| {
            stats.sys_accept.add(1);
            l.get_ref()
                .accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
        }) {
            Ok(result) => return result.map(|(socket, _peer)| socket),
            Err(_would_block) => continue,
        }
    }
}

/// One read that returned data, EOF or an error (not `EAGAIN`).
async fn read_some(stream: &TcpStream, buf: &mut [u8], stats: &LoopStats) -> io::Result<usize> {
    loop {
        stream.readable().await?;
        stats.sys_read.add(1);
        match stream.try_read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

/// One write that moved at least one byte, or an error (not `EAGAIN`).
async fn write_some(stream: &TcpStream, buf: &[u8], stats: &LoopStats) -> io::Result<usize> {
    loop {
        stream.writable().await?;
        stats.sys_write.add(1);
        match stream.try_write(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            other => return other,
        }
    }
}

/// Echoes (or answers) one connection until the peer finishes, it idles, or an error;
/// dropping `stream` at the end closes it.
async fn serve(stream: TcpStream, guard: ConnGuard) {
    let shared = guard.shared();
    let (stats, limits) = (&*shared.stats, &shared.limits);
    let mut buf = vec![0u8; shared.buffer_size()];
    let mut state = ConnState::new(shared.now());
    // Decided once per connection: echo never touches the protocol layer.
    let mut proto = (!shared.protocol.is_echo()).then(|| (Session::default(), Vec::new()));
    let end = loop {
        let n = match unless_idle(shared, &state, pin!(read_some(&stream, &mut buf, stats))).await {
            None => break End::Idle,
            Some(Err(_)) => break End::Error,
            Some(Ok(0)) => {
                state.on_peer_closed();
                // Everything read was written before this read: nothing is pending.
                debug_assert!(state.finished());
                break End::Finished;
            }
            Some(Ok(n)) => n,
        };
        stats.recvs.add(1);
        stats.bytes_in.add(n as u64);
        let written = match proto.as_mut() {
            None => {
                // Pause/Resume need no action: see back-pressure in tokio_common.
                let _ = state.on_received(n, shared.now(), limits);
                write_all(&stream, &buf[..n], shared, &mut state).await
            }
            Some((session, out)) => {
                // Answers beyond the protocol's burst bound wait in its backlog: answer
                // them, writing in between, before reading again.
                let mut input = &buf[..n];
                loop {
                    shared.answer(session, &mut state, input, out);
                    let written = write_all(&stream, out, shared, &mut state).await;
                    release_buffer(out);
                    if written.is_err() || !session.has_backlog() {
                        break written;
                    }
                    input = &[];
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
    // A clean end closes with FIN (the peer's data was all read); an idle or failed one
    // may have unread bytes, and then the kernel sends RST, which is what they deserve.
    drop(stream);
}

/// Writes all of `bytes`, each partial write feeding `ConnState` and the stats.
async fn write_all(
    stream: &TcpStream,
    bytes: &[u8],
    shared: &Shared,
    state: &mut ConnState,
) -> Result<(), End> {
    let (stats, limits) = (&*shared.stats, &shared.limits);
    let mut done = 0;
    while done < bytes.len() {
        let write = pin!(write_some(stream, &bytes[done..], stats));
        match unless_idle(shared, state, write).await {
            None => return Err(End::Idle),
            Some(Err(_)) => return Err(End::Error),
            Some(Ok(k)) => {
                done += k;
                stats.sends.add(1);
                stats.bytes_out.add(k as u64);
                let _ = state.on_sent(k, shared.now(), limits);
            }
        }
    }
    Ok(())
}
