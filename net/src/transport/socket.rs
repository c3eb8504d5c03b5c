//! Socket setup with socket2: the peer listener and the options of every peer stream.
//!
//! The listener sets `SO_REUSEADDR` (a restarted member can bind its port while old
//! connections linger in `TIME_WAIT`) and deliberately not `SO_REUSEPORT`: a second process
//! started on the same peer port must fail loudly, not silently share the port and steal
//! half the connections. Every peer stream gets `TCP_NODELAY` (frames are batched by the
//! writer; Nagle would only add delay) and the configured buffer sizes. This module
//! never reads or writes payload.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use super::constants::LISTEN_BACKLOG;
use super::TransportError;

/// Socket buffer sizes applied to the listener and every peer stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SocketBuffers {
    pub(crate) send_bytes: usize,
    pub(crate) recv_bytes: usize,
}

/// Binds the peer listener on `addr` and turns it into a monoio listener. Must run on a
/// monoio runtime thread (the listener registers with that thread's driver).
pub(crate) fn bind_listener(
    addr: SocketAddr,
    buffers: SocketBuffers,
) -> Result<monoio::net::TcpListener, TransportError> {
    let bind_error = |source: io::Error| TransportError::Bind { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(bind_error)?;
    socket.set_reuse_address(true).map_err(bind_error)?;
    // Accepted sockets inherit these from the listener on Linux; they are set again on
    // each accepted stream so the behaviour does not depend on that.
    socket.set_nodelay(true).map_err(bind_error)?;
    socket
        .set_send_buffer_size(buffers.send_bytes)
        .map_err(bind_error)?;
    socket
        .set_recv_buffer_size(buffers.recv_bytes)
        .map_err(bind_error)?;
    socket.bind(&addr.into()).map_err(bind_error)?;
    socket.listen(LISTEN_BACKLOG).map_err(bind_error)?;
    socket.set_nonblocking(true).map_err(bind_error)?;
    let listener: std::net::TcpListener = socket.into();
    monoio::net::TcpListener::from_std(listener).map_err(bind_error)
}

/// Applies `TCP_NODELAY` and the buffer sizes to a connected peer stream.
pub(crate) fn configure_stream(
    stream: &monoio::net::TcpStream,
    buffers: SocketBuffers,
) -> io::Result<()> {
    // SAFETY: the descriptor belongs to `stream`, which is borrowed for the whole life of
    // `fd` and `socket`, so the descriptor stays open and is not closed through them.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    let socket = SockRef::from(&fd);
    socket.set_nodelay(true)?;
    socket.set_send_buffer_size(buffers.send_bytes)?;
    socket.set_recv_buffer_size(buffers.recv_bytes)?;
    Ok(())
}

/// `count` distinct loopback addresses with free ports, for a local group whose members
/// bind later. Every listener stays open until all the ports are known, so the kernel never
/// hands out the same port twice in one call (it may reuse a port as soon as it is
/// released, which is how two members of one group would otherwise end up on one port).
///
/// # Errors
/// The I/O error of a bind that failed.
pub fn free_loopback_addrs(count: usize) -> io::Result<Vec<SocketAddr>> {
    let listeners = (0..count)
        .map(|_| std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)))
        .collect::<io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(std::net::TcpListener::local_addr)
        .collect()
}
