//! Listening sockets: one `SO_REUSEPORT` listener per event loop, all on the same port,
//! so the kernel spreads incoming connections over the loops without a shared accept
//! queue or lock.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener};

/// Listen backlog asked for; the kernel caps it at `net.core.somaxconn`.
pub const LISTEN_BACKLOG: i32 = 65535;

/// Error from [`bind_reuseport_group`], phrased for the person who typed the address.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("address {addr} is already in use: stop the process listening there or pick another --listen port")]
    InUse { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source} (is the address assigned to this machine?)")]
    Other {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

fn listener(addr: SocketAddr, reuseport: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuseport {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// Opens `count` listeners that share one address with `SO_REUSEPORT`, non-blocking.
///
/// Port 0 is resolved once, by the first listener, and the rest join that port. Because
/// `SO_REUSEPORT` would happily join another process's listener on the same port, the
/// address is first probed without it, so "address in use" is reported, not hidden.
pub fn bind_reuseport_group(
    addr: SocketAddr,
    count: usize,
) -> Result<Vec<TcpListener>, ListenError> {
    let fail = |addr: SocketAddr, source: io::Error| {
        if source.kind() == io::ErrorKind::AddrInUse {
            ListenError::InUse { addr }
        } else {
            ListenError::Other { addr, source }
        }
    };
    if addr.port() != 0 {
        let probe = listener(addr, false).map_err(|e| fail(addr, e))?;
        probe.listen(1).map_err(|e| fail(addr, e))?;
        drop(probe);
    }
    let mut resolved = addr;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let socket = listener(resolved, true).map_err(|e| fail(resolved, e))?;
        socket
            .listen(LISTEN_BACKLOG)
            .map_err(|e| fail(resolved, e))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| fail(resolved, e))?;
        if resolved.port() == 0 {
            let local = socket.local_addr().map_err(|e| fail(addr, e))?;
            if let Some(local) = local.as_socket() {
                resolved = local;
            }
        }
        out.push(socket.into());
    }
    Ok(out)
}

/// Opens a client TCP socket for `target`: `TCP_NODELAY` (echo latency, not Nagle's), and,
/// when `source` is given, bound to that address with `IP_BIND_ADDRESS_NO_PORT` so the
/// port is picked at connect time per (source, destination) 4-tuple, not reserved per
/// source address at bind time; that is what lets one source address reach about 64k
/// connections to each server address rather than 64k in all.
///
/// The socket is blocking: io_uring issues its own non-blocking attempts and polls.
pub fn client_socket(target: SocketAddr, source: Option<std::net::IpAddr>) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_tcp_nodelay(true)?;
    if let Some(ip) = source {
        let one: libc::c_int = 1;
        // SAFETY: setsockopt reads exactly `size_of::<c_int>()` bytes from a live local;
        // the fd is owned by `socket` and open for the whole call.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    Ok(socket)
}

/// The symbolic name of an errno value (`ECONNREFUSED`), for counting errors by cause;
/// `E<number>` for values without a name here.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ECONNRESET => "ECONNRESET",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EPIPE => "EPIPE",
        libc::ENOBUFS => "ENOBUFS",
        libc::ENOMEM => "ENOMEM",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::EAGAIN => "EAGAIN",
        libc::EINTR => "EINTR",
        libc::EINVAL => "EINVAL",
        libc::EBADF => "EBADF",
        libc::ECANCELED => "ECANCELED",
        libc::EALREADY => "EALREADY",
        libc::EINPROGRESS => "EINPROGRESS",
        libc::EISCONN => "EISCONN",
        libc::ENOTCONN => "ENOTCONN",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::ENETDOWN => "ENETDOWN",
        libc::EHOSTDOWN => "EHOSTDOWN",
        libc::EPROTO => "EPROTO",
        _ => return format!("E{errno}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_shares_one_resolved_port() {
        let group = bind_reuseport_group("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let ports: Vec<u16> = group
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        assert!(ports[0] != 0);
        assert!(ports.iter().all(|&p| p == ports[0]));
    }

    #[test]
    fn client_socket_binds_source_without_port() {
        let group = bind_reuseport_group("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let target = group[0].local_addr().unwrap();
        let s = client_socket(target, Some("127.0.0.2".parse().unwrap())).unwrap();
        let local = s.local_addr().unwrap().as_socket().unwrap();
        assert_eq!(local.ip().to_string(), "127.0.0.2");
        assert_eq!(local.port(), 0, "IP_BIND_ADDRESS_NO_PORT defers the port");
        s.connect(&target.into()).unwrap();
        assert_ne!(s.local_addr().unwrap().as_socket().unwrap().port(), 0);
        assert!(s.tcp_nodelay().unwrap());
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(libc::ECONNREFUSED), "ECONNREFUSED");
        assert_eq!(errno_name(99999), "E99999");
    }

    #[test]
    fn address_in_use_is_reported() {
        let group = bind_reuseport_group("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let taken = group[0].local_addr().unwrap();
        let err = bind_reuseport_group(taken, 1).unwrap_err();
        assert!(matches!(err, ListenError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("already in use"));
    }
}
