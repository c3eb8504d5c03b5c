//! The peer transport: moves frames between the members of a group over TCP, on a
//! monoio runtime (io_uring or epoll), one runtime per pinned core.
//!
//! It owns the peer listener, one TCP connection per peer (the lower member id dials;
//! a handshake ties each connection to a member, its group and its incarnation; a
//! joiner also dials its seeds' addresses before it knows who listens there, see
//! [`Transport::add_seed`]), the
//! per-peer outbound queues, reconnection with backoff, and the connection stats. It
//! moves *frames* (`wire::encode_frame` / `wire::decode_frame`) and never reads a
//! message body; its only frames of its own are the handshake's (`handshake.rs`). It
//! must never block its thread, never let a peer grow memory without bound, and never
//! panic on anything the network sends: a bad peer costs that peer's connection, nothing
//! else.
//!
//! ```text
//!  other threads                transport thread (one monoio runtime, pinned)
//!  ─────────────                ───────────────────────────────────────────────────────
//!  TransportHandle::send ──▶ [ArrayQueue + wakeup] ──▶ pump task ──┐
//!                                                                  ▼
//!  owner (group core loop) ── Transport::send ──────────▶ per-peer OutQueue (bytes ≤ bound,
//!        ▲                                                 frames beyond it dropped+counted)
//!        │                                                         │ take everything pending
//!        │                                                         ▼
//!        │                                                writer task ── one write_all per batch ──▶ TCP
//!        │
//!  Transport::recv ◀── Inbox (bytes ≤ bound) ◀── reader task ◀── owned buffer ◀── TCP
//!                       + PeerUp/PeerDown        (decode_frame, one per connection)
//!
//!  listener task ── accept ──▶ handshake task (Hello ▶ check ▶ Welcome) ──┐
//!  dialer task (one per peer this member dials, backoff) ─────────────────┴──▶ peer table
//!                                                        (install: spawn reader + writer)
//! ```
//!
//! The owner lives on the transport's thread and calls [`Transport::recv`] in its loop
//! next to its timers; other threads use a [`TransportHandle`]. Files: `runtime.rs`
//! (backend choice, core pinning), `socket.rs` (socket2 options), `handshake.rs` (the
//! handshake frames), `peers.rs` (the table and its rules), `dial.rs`, `accept.rs`,
//! `connection.rs` (reader and writer), `queue.rs`, `inbox.rs`, `handoff.rs`,
//! `stats.rs`, `signal.rs`, `constants.rs`.

mod accept;
mod connection;
pub mod constants;
mod dial;
mod handoff;
pub mod handshake;
mod inbox;
mod peers;
mod queue;
pub mod runtime;
mod signal;
mod socket;
mod stats;

use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use self::constants::{
    CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT, INBOX_BYTES_MAX, PEER_QUEUE_BYTES_MAX,
    RECONNECT_BACKOFF_MAX, RECONNECT_BACKOFF_MIN, SHUTDOWN_WAIT, SOCKET_BUFFER_BYTES,
    SOCKET_BUFFER_BYTES_MAX,
};
use self::handoff::{run_pump, Handoff};
use self::handshake::TRANSPORT_KINDS_FIRST;
use self::peers::Core;
use self::socket::{bind_listener, SocketBuffers};
use self::stats::StatsRegistry;
use crate::wire::frame::{FRAME_HEADER_BYTES, FRAME_MAGIC};
use crate::wire::WireError;

pub use self::handoff::{HandoffError, TransportHandle};
pub use self::inbox::{Inbound, InboundFrame};
pub use self::queue::SendOutcome;
pub use self::runtime::{
    block_on_core, build_core_runtime, choose_backend, probe_uring, spawn_on_core, BackendChoice,
    IoBackend, RuntimeError,
};
pub use self::socket::free_loopback_addrs;
pub use self::stats::{ConnectionState, LastError, PeerStats, Rejection, TransportSnapshot};

/// A member as the transport knows it: the `MemberId` (a UUID as u128) carried in the
/// `sender` field of every frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub u128);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Smallest per-peer queue bound a configuration may set.
const PEER_QUEUE_BYTES_MIN: usize = 64 * 1024;

/// How a transport is set up. [`TransportConfig::new`] fills in the defaults of
/// `constants.rs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportConfig {
    /// The group; connections and frames from other groups are refused.
    pub group_name: u128,
    /// This member.
    pub member: PeerId,
    /// This member's incarnation (restart counter), announced in every frame.
    pub incarnation: u64,
    /// Where the peer listener binds; port 0 picks a free port (see
    /// [`Transport::listen_addr`]).
    pub listen_addr: SocketAddr,
    /// Bytes queued per peer before new frames to it are dropped.
    pub peer_queue_bytes_max: usize,
    /// Bytes of received frames waiting for `recv` before readers pause.
    pub inbox_bytes_max: usize,
    /// `SO_SNDBUF` of peer sockets.
    pub socket_send_buffer_bytes: usize,
    /// `SO_RCVBUF` of peer sockets.
    pub socket_recv_buffer_bytes: usize,
    /// First reconnect backoff.
    pub reconnect_backoff_min: Duration,
    /// Largest reconnect backoff.
    pub reconnect_backoff_max: Duration,
    /// Limit on one TCP connect.
    pub connect_timeout: Duration,
    /// Limit on waiting for the other side's handshake.
    pub handshake_timeout: Duration,
    /// The message kind the layer above uses for heartbeats, counted apart in the stats.
    pub heartbeat_kind: Option<u16>,
}

impl TransportConfig {
    /// A configuration with the default limits.
    pub fn new(
        group_name: u128,
        member: PeerId,
        incarnation: u64,
        listen_addr: SocketAddr,
    ) -> Self {
        Self {
            group_name,
            member,
            incarnation,
            listen_addr,
            peer_queue_bytes_max: PEER_QUEUE_BYTES_MAX,
            inbox_bytes_max: INBOX_BYTES_MAX,
            socket_send_buffer_bytes: SOCKET_BUFFER_BYTES,
            socket_recv_buffer_bytes: SOCKET_BUFFER_BYTES,
            reconnect_backoff_min: RECONNECT_BACKOFF_MIN,
            reconnect_backoff_max: RECONNECT_BACKOFF_MAX,
            connect_timeout: CONNECT_TIMEOUT,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            heartbeat_kind: None,
        }
    }

    /// Why this configuration is refused, if it is.
    fn invalid(&self) -> Option<(&'static str, String)> {
        if self.peer_queue_bytes_max < PEER_QUEUE_BYTES_MIN {
            return Some((
                "peer_queue_bytes_max",
                format!("must be at least {PEER_QUEUE_BYTES_MIN}"),
            ));
        }
        if self.inbox_bytes_max == 0 {
            return Some(("inbox_bytes_max", "must be positive".to_owned()));
        }
        for (field, value) in [
            ("socket_send_buffer_bytes", self.socket_send_buffer_bytes),
            ("socket_recv_buffer_bytes", self.socket_recv_buffer_bytes),
        ] {
            if value == 0 || value > SOCKET_BUFFER_BYTES_MAX {
                return Some((
                    field,
                    format!("must be between 1 and {SOCKET_BUFFER_BYTES_MAX}"),
                ));
            }
        }
        if self.reconnect_backoff_min.is_zero()
            || self.reconnect_backoff_min > self.reconnect_backoff_max
        {
            return Some((
                "reconnect_backoff_min",
                "must be positive and at most reconnect_backoff_max".to_owned(),
            ));
        }
        if self.connect_timeout.is_zero() || self.handshake_timeout.is_zero() {
            return Some((
                "connect_timeout / handshake_timeout",
                "must be positive".to_owned(),
            ));
        }
        if self
            .heartbeat_kind
            .is_some_and(|kind| kind == 0 || kind >= TRANSPORT_KINDS_FIRST)
        {
            return Some((
                "heartbeat_kind",
                format!("must be a message kind, 1..{TRANSPORT_KINDS_FIRST:#06x}"),
            ));
        }
        None
    }
}

/// Why the transport refused to start or to change its peer table.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The peer listener could not bind its address.
    #[error(
        "cannot bind the peer listener to {addr}: {source} (is another process or another member \
         already using this port? choose a free port or stop the other process)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error from the operating system.
        source: std::io::Error,
    },
    /// A configuration value is out of range.
    #[error("invalid transport configuration: {field} {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is wrong and the allowed range.
        reason: String,
    },
    /// The peer table is full.
    #[error("cannot add another peer: the transport serves at most {max} peers")]
    TooManyPeers {
        /// The limit.
        max: usize,
    },
    /// A member cannot be its own peer.
    #[error("member {0} cannot be added as a peer of itself")]
    SelfPeer(PeerId),
}

/// The kind of the single frame in `frame`. Panics when `frame` is not one whole frame
/// with a message kind: frames handed to the transport come from this process's own
/// encoder, so that is a bug in the caller.
pub(crate) fn frame_kind(frame: &[u8]) -> u16 {
    assert!(
        frame.len() >= FRAME_HEADER_BYTES,
        "a frame is at least its header"
    );
    let word = |at: usize| [frame[at], frame[at + 1], frame[at + 2], frame[at + 3]];
    assert_eq!(
        u32::from_le_bytes(word(0)),
        FRAME_MAGIC,
        "not an encoded frame"
    );
    let body_len = u32::from_le_bytes(word(8)) as usize;
    assert_eq!(
        frame.len(),
        FRAME_HEADER_BYTES + body_len,
        "exactly one frame"
    );
    let kind = u16::from_le_bytes([frame[6], frame[7]]);
    assert!(
        kind != 0 && kind < TRANSPORT_KINDS_FIRST,
        "kind {kind:#06x} is not a message kind"
    );
    kind
}

/// The peer transport of one member. Lives on one monoio runtime thread (it is not
/// `Send`); other threads use [`Transport::handle`].
pub struct Transport {
    core: Rc<Core>,
    handoff: Arc<Handoff>,
}

impl Transport {
    /// Binds the peer listener and starts the transport's tasks. Must be called on a
    /// monoio runtime thread (see [`block_on_core`]).
    pub fn start(config: TransportConfig) -> Result<Self, TransportError> {
        if let Some((field, reason)) = config.invalid() {
            return Err(TransportError::InvalidConfig { field, reason });
        }
        let buffers = SocketBuffers {
            send_bytes: config.socket_send_buffer_bytes,
            recv_bytes: config.socket_recv_buffer_bytes,
        };
        let listener = bind_listener(config.listen_addr, buffers)?;
        let listen_addr = listener
            .local_addr()
            .map_err(|source| TransportError::Bind {
                addr: config.listen_addr,
                source,
            })?;
        let backend = runtime::current_backend();
        let stats = Arc::new(StatsRegistry::new(config.member, listen_addr, backend));
        let handoff = Arc::new(Handoff::new(Arc::clone(&stats)));
        let core = Rc::new(Core::new(config, listen_addr, stats));
        core.spawn(accept::run_acceptor(Rc::clone(&core), listener));
        core.spawn(run_pump(Rc::clone(&core), Arc::clone(&handoff)));
        tracing::info!(member = %core.config.member, %listen_addr, %backend, "peer transport started");
        Ok(Self { core, handoff })
    }

    /// The address the peer listener is bound to.
    pub fn listen_addr(&self) -> SocketAddr {
        self.core.listen_addr
    }

    /// This member.
    pub fn member(&self) -> PeerId {
        self.core.config.member
    }

    /// Adds a peer at `addr` (or updates its address). When this member has the lower id
    /// it dials the peer, and redials with backoff whenever the connection is lost;
    /// otherwise it waits for the peer to dial.
    pub fn add_peer(&self, peer: PeerId, addr: SocketAddr) -> Result<(), TransportError> {
        self.core.add_peer(peer, addr)
    }

    /// Dials a seed: an address of some member of the group whose member id this member
    /// does not know yet (a joiner knows only its seeds' addresses). The dial ignores the
    /// lower-id-dials rule; once a handshake names the member, it becomes an ordinary peer
    /// at `addr` and shows up as [`Inbound::PeerUp`]. Retries with backoff until then.
    pub fn add_seed(&self, addr: SocketAddr) {
        if !self.core.stopping.is_set() {
            self.core
                .spawn(dial::run_seed_dialer(Rc::clone(&self.core), addr));
        }
    }

    /// Removes a peer: closes its connection, stops dialing it, drops its queued frames.
    /// Returns whether it was in the table.
    pub fn remove_peer(&self, peer: PeerId) -> bool {
        self.core.remove_peer(peer)
    }

    /// The peers in the table (added, or connected to this member).
    pub fn peers(&self) -> Vec<PeerId> {
        self.core.peer_ids()
    }

    /// Queues one encoded frame for `peer`. Panics if `frame` is not exactly one frame
    /// with a message kind (a bug in the caller).
    pub fn send(&self, peer: PeerId, frame: &[u8]) -> SendOutcome {
        self.core.send_encoded(peer, frame_kind(frame), frame)
    }

    /// Encodes one frame of `kind` from this member straight into `peer`'s queue: the
    /// body is written once, in place. Panics if `kind` is not a message kind.
    pub fn send_with(
        &self,
        peer: PeerId,
        kind: u16,
        write_body: impl FnOnce(&mut Vec<u8>),
    ) -> Result<SendOutcome, WireError> {
        assert!(
            kind != 0 && kind < TRANSPORT_KINDS_FIRST,
            "kind {kind:#06x} is not a message kind"
        );
        self.core.send_with(peer, kind, write_body)
    }

    /// Queues one encoded frame for every peer; returns how many peers queued it (the
    /// others' queues were full).
    pub fn broadcast(&self, frame: &[u8]) -> usize {
        self.core.broadcast_encoded(frame_kind(frame), frame)
    }

    /// Waits for the next frame or connection event. One caller at a time.
    ///
    /// A group core loop waits for input and for its next timer together; dropping the
    /// `recv` future when the timer wins loses nothing:
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use tutti_net::transport::{Inbound, Transport};
    ///
    /// async fn group_core(transport: Transport, tick: Duration) {
    ///     loop {
    ///         match monoio::time::timeout(tick, transport.recv()).await {
    ///             Ok(Inbound::Frame(frame)) => { /* decode frame.body(), feed the gcs core */ }
    ///             Ok(Inbound::PeerUp { .. } | Inbound::PeerDown { .. }) => { /* failure detector */ }
    ///             Err(_elapsed) => { /* timers: heartbeats, suspicion */ }
    ///         }
    ///         // Everything else that arrived meanwhile, without waiting.
    ///         while let Some(_inbound) = transport.try_recv() { /* same as above */ }
    ///     }
    /// }
    /// ```
    pub async fn recv(&self) -> Inbound {
        self.core.inbox.pop().await
    }

    /// The next frame or connection event, if one is waiting.
    pub fn try_recv(&self) -> Option<Inbound> {
        self.core.inbox.try_pop()
    }

    /// A handle for other threads: hand frames over, read stats.
    pub fn handle(&self) -> TransportHandle {
        TransportHandle {
            handoff: Arc::clone(&self.handoff),
        }
    }

    /// The connection stats.
    pub fn snapshot(&self) -> TransportSnapshot {
        self.core.stats.snapshot()
    }

    /// Stops the transport: closes the listener and every connection, stops the dialers,
    /// and waits (at most `SHUTDOWN_WAIT`) for its tasks to end. Returns whether they all
    /// ended in time.
    pub async fn shutdown(self) -> bool {
        self.core.stop();
        self.handoff.stop();
        let core = Rc::clone(&self.core);
        let all_ended = async {
            while core.task_count() > 0 {
                core.tasks_done.wait().await;
            }
        };
        let ended = monoio::time::timeout(SHUTDOWN_WAIT, all_ended)
            .await
            .is_ok();
        if !ended {
            tracing::warn!(member = %core.config.member, tasks = core.task_count(),
                "transport tasks still running after shutdown wait");
        }
        ended
    }
}

impl Drop for Transport {
    /// A transport dropped without `shutdown` still tells its tasks to end.
    fn drop(&mut self) {
        self.core.stop();
        self.handoff.stop();
    }
}
