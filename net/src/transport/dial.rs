//! Dialing a peer and keeping it dialed: one dialer task per peer this member dials
//! (the lower id dials), reconnecting with exponential backoff.
//!
//! The backoff doubles from `reconnect_backoff_min` up to `reconnect_backoff_max` while
//! attempts fail, and starts over once a connection has stayed up for a full
//! `reconnect_backoff_max`, so a peer that accepts and at once drops connections is not
//! hammered. The first failure of a series is logged as a warning and later ones at
//! debug level, so a peer that is down for an hour does not flood the log; every failure
//! is recorded in the peer's stats. The dialer ends when the peer is removed or the
//! transport stops.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use super::handshake::{
    check_handshake, encode_handshake, read_first_frame, write_handshake, Handshake,
    HandshakeError, ANY_MEMBER, HELLO_KIND, WELCOME_KIND,
};
use super::peers::{Core, Link};
use super::signal::{unless_set, Latch, Wakeup};
use super::socket::configure_stream;
use super::stats::{ConnectionState, PeerCounters};
use super::PeerId;

/// Connects to `addr`, exchanges the handshake and installs the connection. `peer` is
/// the member expected there, or [`ANY_MEMBER`] for a seed address; returns the member
/// the connection reached.
async fn dial_once(
    core: &Rc<Core>,
    peer: PeerId,
    addr: SocketAddr,
) -> Result<PeerId, HandshakeError> {
    let connect_timeout = core.config.connect_timeout;
    let mut stream =
        match monoio::time::timeout(connect_timeout, TcpStream::connect_addr(addr)).await {
            Ok(connected) => connected?,
            Err(_) => {
                return Err(HandshakeError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connect timed out after {connect_timeout:?}"),
                )))
            }
        };
    configure_stream(&stream, core.buffers)?;
    let mut hello = Vec::new();
    let handshake = Handshake {
        target: peer,
        listen_addr: core.listen_addr,
    };
    encode_handshake(&mut hello, HELLO_KIND, core.origin, handshake)?;
    write_handshake(&mut stream, hello).await?;
    let (header, body, leftover) =
        read_first_frame(&mut stream, core.config.handshake_timeout).await?;
    let welcome = check_handshake(&header, &body, WELCOME_KIND, core.origin)?;
    let reached = PeerId(header.origin.sender);
    if peer != ANY_MEMBER && reached != peer {
        return Err(HandshakeError::WrongTarget {
            target: peer,
            actual: reached,
        });
    }
    let link = Link {
        peer: reached,
        incarnation: header.origin.incarnation,
        remote: addr,
        listen_addr: welcome.listen_addr,
        dialed_by: core.config.member,
        leftover,
    };
    core.install(stream, link)?;
    Ok(reached)
}

/// The dialer task of a seed: an address whose member is not known yet. It dials until a
/// handshake tells which member listens there, then adds that member as an ordinary peer
/// at `addr` (whose own rules keep the connection up) and ends. A seed that turns out to
/// be connected already ends it too. It also ends when the transport stops.
pub(crate) async fn run_seed_dialer(core: Rc<Core>, addr: SocketAddr) {
    let backoff_max = core.config.reconnect_backoff_max;
    let mut backoff = core.config.reconnect_backoff_min;
    let mut failures = 0u32;
    loop {
        let reached = match unless_set(&core.stopping, dial_once(&core, ANY_MEMBER, addr)).await {
            None => return,
            // A seed already connected (through a dial of its own) counts as reached.
            Some(Ok(reached) | Err(HandshakeError::Duplicate(reached))) => Some(reached),
            Some(Err(error)) => {
                let text = format!("dialing seed {addr} failed: {error}");
                if failures == 0 {
                    tracing::warn!(member = %core.config.member, %addr, "{text}");
                } else {
                    tracing::debug!(member = %core.config.member, %addr, failures, "{text}");
                }
                failures = failures.saturating_add(1);
                None
            }
        };
        if let Some(reached) = reached {
            tracing::info!(member = %core.config.member, %addr, peer = %reached, "seed reached");
            if let Err(error) = core.add_peer(reached, addr) {
                tracing::warn!(member = %core.config.member, %addr, %error, "cannot add the seed as a peer");
            }
            return;
        }
        if unless_set(&core.stopping, monoio::time::sleep(backoff))
            .await
            .is_none()
        {
            return;
        }
        backoff = backoff.saturating_mul(2).min(backoff_max);
    }
}

/// The dialer task of one peer.
pub(crate) async fn run_dialer(
    core: Rc<Core>,
    peer: PeerId,
    removed: Rc<Latch>,
    link_down: Rc<Wakeup>,
    counters: Arc<PeerCounters>,
) {
    let backoff_min = core.config.reconnect_backoff_min;
    let backoff_max = core.config.reconnect_backoff_max;
    let mut backoff = backoff_min;
    let mut failures = 0u32;
    let mut connected_at: Option<Instant> = None;
    loop {
        if core.is_connected(peer) {
            if unless_set(&removed, link_down.wait()).await.is_none() {
                return;
            }
            if connected_at.is_some_and(|at| at.elapsed() >= backoff_max) {
                backoff = backoff_min;
            }
            // A lost connection is redialed after a pause too, so a peer that drops every
            // connection right after the handshake is retried at the backoff's pace.
            if !pause(&removed, &counters, &mut backoff, backoff_max).await {
                return;
            }
            continue;
        }
        let Some(addr) = core.dial_addr(peer) else {
            return;
        };
        counters.set_state(ConnectionState::Connecting);
        match unless_set(&removed, dial_once(&core, peer, addr)).await {
            None => return,
            Some(Ok(_)) => {
                failures = 0;
                connected_at = Some(Instant::now());
            }
            Some(Err(error)) => {
                let text = format!("dialing member {peer} at {addr} failed: {error}");
                if failures == 0 {
                    tracing::warn!(member = %core.config.member, %peer, "{text}");
                } else {
                    tracing::debug!(member = %core.config.member, %peer, failures, "{text}");
                }
                failures = failures.saturating_add(1);
                counters.record_error(text);
                if !pause(&removed, &counters, &mut backoff, backoff_max).await {
                    return;
                }
            }
        }
    }
}

/// Sleeps for the current backoff and doubles it; `false` when the peer was removed or
/// the transport stopped meanwhile.
async fn pause(
    removed: &Latch,
    counters: &PeerCounters,
    backoff: &mut Duration,
    backoff_max: Duration,
) -> bool {
    counters.set_state(ConnectionState::BackingOff);
    let slept = unless_set(removed, monoio::time::sleep(*backoff))
        .await
        .is_some();
    *backoff = backoff.saturating_mul(2).min(backoff_max);
    slept
}
