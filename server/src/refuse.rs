//! Refusing connections the server cannot serve, at once and with a reason.
//!
//! A connection the server cannot take (no fd left, a full fixed-file table) must not be
//! left in the listen backlog: the kernel completed its handshake, so the client thinks
//! it is connected and waits for echoes that never come. Instead it is accepted and
//! closed at once, so the client sees the close, and counted by why.
//!
//! Out of fds (`EMFILE`/`ENFILE`) an ordinary accept cannot succeed either: each loop
//! keeps one spare descriptor (on `/dev/null`) to close, accept into its number, close
//! and open again (the trick libev and nginx users know; the libuv docs describe it).

use nix::errno::Errno;
use nix::sys::socket::{accept4, SockFlag};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Why a connection was closed without being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-conns` reached.
    MaxConns,
    /// The process or the system is out of file descriptors (`EMFILE`/`ENFILE`).
    FdLimit,
    /// The uring backend's fixed-file table is full.
    FixedTable,
}

/// One reserved descriptor per loop that makes room for an accept when none is left.
#[derive(Debug)]
pub struct SpareFd(Option<OwnedFd>);

impl Default for SpareFd {
    fn default() -> Self {
        Self::new()
    }
}

impl SpareFd {
    pub fn new() -> Self {
        Self(open_spare())
    }

    /// Gives up the spare, so one descriptor is free. False if there is none to give.
    fn release(&mut self) -> bool {
        self.0.take().is_some()
    }

    /// Takes a descriptor back (fails quietly when another thread got the free one
    /// first; the next refusal tries again).
    fn restore(&mut self) {
        if self.0.is_none() {
            self.0 = open_spare();
        }
    }
}

fn open_spare() -> Option<OwnedFd> {
    // SAFETY: a C string literal; open returns a new descriptor or -1.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    // SAFETY: open just returned this descriptor and nothing else owns it.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What [`refuse_pending`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Connections accepted and closed.
    pub refused: u64,
    /// Accepts hit `EMFILE`/`ENFILE` on the way.
    pub out_of_fds: bool,
    /// Connections may still wait in the backlog (no spare, or another error): the
    /// caller should try again a little later.
    pub stuck: bool,
}

/// Accepts every connection waiting on the non-blocking listener `listen_fd` and closes
/// it at once, using `spare` when the process is out of descriptors.
pub fn refuse_pending(listen_fd: RawFd, spare: &mut SpareFd) -> Drained {
    let mut d = Drained::default();
    loop {
        match accept_and_close(listen_fd) {
            Ok(true) => d.refused += 1,
            Ok(false) => return d,
            Err(Errno::ECONNABORTED | Errno::EINTR) => {}
            Err(Errno::EMFILE | Errno::ENFILE) => {
                d.out_of_fds = true;
                if !spare.release() {
                    spare.restore();
                    d.stuck = true;
                    return d;
                }
                let one = accept_and_close(listen_fd);
                spare.restore();
                match one {
                    Ok(true) => d.refused += 1,
                    Ok(false) => return d,
                    Err(Errno::ECONNABORTED | Errno::EINTR) => {}
                    Err(_) => {
                        d.stuck = true;
                        return d;
                    }
                }
            }
            Err(_) => {
                d.stuck = true;
                return d;
            }
        }
    }
}

/// One accept, closed at once: `Ok(true)` refused one, `Ok(false)` the backlog is empty.
fn accept_and_close(listen_fd: RawFd) -> Result<bool, Errno> {
    match accept4(listen_fd, SockFlag::SOCK_CLOEXEC) {
        Ok(fd) => {
            // SAFETY: accept4 just returned this descriptor; dropping it closes it.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
            Ok(true)
        }
        Err(Errno::EAGAIN) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn pending_connections_are_closed_and_counted() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let mut clients: Vec<TcpStream> = (0..3)
            .map(|_| TcpStream::connect(addr).expect("connect"))
            .collect();
        let mut spare = SpareFd::new();
        let d = refuse_pending(listener.as_raw_fd(), &mut spare);
        assert_eq!(d.refused, 3);
        assert!(!d.stuck && !d.out_of_fds);
        for c in &mut clients {
            c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .expect("timeout");
            let mut b = [0u8; 1];
            assert!(matches!(c.read(&mut b), Ok(0) | Err(_)));
        }
        assert_eq!(refuse_pending(listener.as_raw_fd(), &mut spare).refused, 0);
    }
}
