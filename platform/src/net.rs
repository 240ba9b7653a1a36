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
    fn address_in_use_is_reported() {
        let group = bind_reuseport_group("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let taken = group[0].local_addr().unwrap();
        let err = bind_reuseport_group(taken, 1).unwrap_err();
        assert!(matches!(err, ListenError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("already in use"));
    }
}
