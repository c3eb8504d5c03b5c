//! Accepting peer connections: the listener task, and one short-lived task per accepted
//! connection that runs the acceptor's side of the handshake.
//!
//! A connection that is not a tutti peer (garbage bytes, a silent client, a handshake
//! from another group, a member id that is not the one it claims to reach) is refused:
//! the reason, naming the remote address, goes to the error log and to the transport's
//! rejection stats, and the socket is closed. Nothing else is affected. The number of
//! handshakes in progress is bounded, and each is bounded in time.

use std::net::SocketAddr;
use std::rc::Rc;

use monoio::net::{TcpListener, TcpStream};

use super::constants::{ACCEPT_ERROR_PAUSE, HANDSHAKES_IN_PROGRESS_MAX};
use super::handshake::{
    check_handshake, encode_handshake, read_first_frame, write_handshake, Handshake,
    HandshakeError, HELLO_KIND, WELCOME_KIND,
};
use super::peers::{Core, Link};
use super::signal::unless_set;
use super::socket::configure_stream;
use super::PeerId;

/// The listener task.
pub(crate) async fn run_acceptor(core: Rc<Core>, listener: TcpListener) {
    loop {
        let Some(accepted) = unless_set(&core.stopping, listener.accept()).await else {
            return;
        };
        match accepted {
            Ok((stream, remote)) => {
                if core.handshakes.get() >= HANDSHAKES_IN_PROGRESS_MAX {
                    core.reject(
                        remote,
                        None,
                        format!("{HANDSHAKES_IN_PROGRESS_MAX} handshakes are already in progress"),
                    );
                    continue;
                }
                core.handshakes.set(core.handshakes.get() + 1);
                let task_core = Rc::clone(&core);
                core.spawn(async move {
                    handle_accepted(&task_core, stream, remote).await;
                    task_core.handshakes.set(task_core.handshakes.get() - 1);
                });
            }
            Err(error) => {
                tracing::warn!(member = %core.config.member, %error, "accepting a peer connection failed");
                let pause = monoio::time::sleep(ACCEPT_ERROR_PAUSE);
                if unless_set(&core.stopping, pause).await.is_none() {
                    return;
                }
            }
        }
    }
}

async fn handle_accepted(core: &Rc<Core>, stream: TcpStream, remote: SocketAddr) {
    match unless_set(&core.stopping, accept_handshake(core, stream, remote)).await {
        None | Some(Ok(())) => {}
        Some(Err((claimed_peer, error))) => core.reject(remote, claimed_peer, error.to_string()),
    }
}

/// The acceptor's side of the handshake. The error carries the member the remote claimed
/// to be, when it got that far.
async fn accept_handshake(
    core: &Rc<Core>,
    mut stream: TcpStream,
    remote: SocketAddr,
) -> Result<(), (Option<PeerId>, HandshakeError)> {
    configure_stream(&stream, core.buffers).map_err(|error| (None, error.into()))?;
    let (header, body, leftover) = read_first_frame(&mut stream, core.config.handshake_timeout)
        .await
        .map_err(|error| (None, error))?;
    let peer = PeerId(header.origin.sender);
    let with_peer = |error: HandshakeError| (Some(peer), error);
    let hello = check_handshake(&header, &body, HELLO_KIND, core.origin).map_err(with_peer)?;
    let link = Link {
        peer,
        incarnation: header.origin.incarnation,
        remote,
        listen_addr: hello.listen_addr,
        dialed_by: peer,
        leftover,
    };
    // Refuse before welcoming, so a dialer never believes a refused connection is up.
    core.admissible(&link).map_err(with_peer)?;
    let mut welcome = Vec::new();
    let handshake = Handshake {
        target: peer,
        listen_addr: core.listen_addr,
    };
    encode_handshake(&mut welcome, WELCOME_KIND, core.origin, handshake)
        .map_err(|error| with_peer(error.into()))?;
    write_handshake(&mut stream, welcome)
        .await
        .map_err(with_peer)?;
    core.install(stream, link).map_err(with_peer)
}
