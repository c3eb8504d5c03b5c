//! Per-peer connection statistics, the rows of the connection status table (messages and
//! bytes sent and received, message lengths, heartbeats, connects, the last error).
//!
//! The counters are written only by the transport's thread and read by anyone (a session
//! core answering `GROUP CONNECTIONS`, the metrics endpoint), so they are relaxed atomics
//! updated with a plain load and store: no locked instruction on the data path, and a
//! reader sees each counter whole. A snapshot is a set of plain structs. This module
//! never decides anything; it only records.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;

use super::constants::REJECTIONS_KEPT;
use super::runtime::IoBackend;
use super::PeerId;

/// Where a peer connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// No connection, and this member waits for the peer to dial (the lower id dials).
    Waiting,
    /// A connect or handshake to the peer is in progress.
    Connecting,
    /// The last attempt failed; the next one starts when the backoff expires.
    BackingOff,
    /// The handshake completed; frames flow both ways.
    Connected,
}

impl ConnectionState {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Connecting,
            2 => Self::BackingOff,
            3 => Self::Connected,
            _ => Self::Waiting,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Self::Waiting => 0,
            Self::Connecting => 1,
            Self::BackingOff => 2,
            Self::Connected => 3,
        }
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Waiting => "waiting",
            Self::Connecting => "connecting",
            Self::BackingOff => "backing off",
            Self::Connected => "connected",
        })
    }
}

/// An error and when it happened (wall clock, for people reading the table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastError {
    /// What went wrong, naming the remote address.
    pub text: String,
    /// When it was recorded.
    pub at: SystemTime,
}

/// One peer's connection status, as a plain value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStats {
    /// The peer.
    pub peer: PeerId,
    /// The address this member dials, or the listen address the peer announced.
    pub address: Option<SocketAddr>,
    /// The peer's incarnation on the current or last connection.
    pub remote_incarnation: Option<u64>,
    /// Where the connection stands now.
    pub state: ConnectionState,
    /// Frames written to the peer's socket.
    pub messages_sent: u64,
    /// Bytes of those frames, headers included.
    pub bytes_sent: u64,
    /// Frames received from the peer and handed to the owner.
    pub messages_received: u64,
    /// Bytes of those frames, headers included.
    pub bytes_received: u64,
    /// Shortest frame sent or received, in bytes (`None` before the first).
    pub message_bytes_min: Option<u64>,
    /// Longest frame sent or received, in bytes (`None` before the first).
    pub message_bytes_max: Option<u64>,
    /// Heartbeat frames sent (frames of the configured heartbeat kind).
    pub heartbeats_sent: u64,
    /// Heartbeat frames received.
    pub heartbeats_received: u64,
    /// Write submissions made; fewer than `messages_sent` when frames are batched.
    pub write_calls: u64,
    /// Frames dropped for this peer: its queue was full, or its connection failed while
    /// they were being written.
    pub messages_dropped: u64,
    /// Bytes of the dropped frames.
    pub bytes_dropped: u64,
    /// Bytes queued for the peer right now (waiting plus being written).
    pub queued_bytes: u64,
    /// Connections established (handshake completed), in either direction.
    pub connects: u64,
    /// Established connections that ended.
    pub disconnects: u64,
    /// The last error on this peer's connections.
    pub last_error: Option<LastError>,
}

/// A connection that was refused before it was tied to a peer: garbage bytes on the peer
/// port, a handshake from another group, a stale incarnation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Where the connection came from.
    pub remote: SocketAddr,
    /// The member the remote claimed to be, when its handshake got that far.
    pub claimed_peer: Option<PeerId>,
    /// Why it was refused.
    pub text: String,
    /// When.
    pub at: SystemTime,
}

/// Everything the transport can tell about itself, as plain values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportSnapshot {
    /// This member.
    pub member: PeerId,
    /// The address the peer listener is bound to.
    pub listen_addr: SocketAddr,
    /// The io backend the transport runs on.
    pub io_backend: IoBackend,
    /// One row per peer, ordered by peer id.
    pub peers: Vec<PeerStats>,
    /// Connections refused before the handshake tied them to a peer, since start.
    pub rejected_connections: u64,
    /// The most recent of those, oldest first (at most `REJECTIONS_KEPT`).
    pub recent_rejections: Vec<Rejection>,
    /// Frames other threads handed over that were refused because the hand-over queue was
    /// full or the transport had stopped.
    pub handoff_dropped: u64,
}

/// Adds `amount` to a counter only the transport thread writes: a load and a store, so
/// no locked read-modify-write is paid on the data path.
fn bump(counter: &AtomicU64, amount: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(amount),
        Ordering::Relaxed,
    );
}

/// The live counters of one peer.
pub(crate) struct PeerCounters {
    peer: PeerId,
    address: Mutex<Option<SocketAddr>>,
    /// `u64::MAX` until a connection told the incarnation.
    remote_incarnation: AtomicU64,
    state: AtomicU8,
    messages_sent: AtomicU64,
    bytes_sent: AtomicU64,
    messages_received: AtomicU64,
    bytes_received: AtomicU64,
    /// `u64::MAX` until the first frame.
    message_bytes_min: AtomicU64,
    message_bytes_max: AtomicU64,
    heartbeats_sent: AtomicU64,
    heartbeats_received: AtomicU64,
    write_calls: AtomicU64,
    messages_dropped: AtomicU64,
    bytes_dropped: AtomicU64,
    queued_bytes: AtomicU64,
    connects: AtomicU64,
    disconnects: AtomicU64,
    last_error: Mutex<Option<LastError>>,
}

/// What one completed write carried, for the counters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BatchTally {
    pub(crate) frames: u64,
    pub(crate) bytes: u64,
    pub(crate) heartbeats: u64,
    pub(crate) frame_bytes_min: u64,
    pub(crate) frame_bytes_max: u64,
}

impl BatchTally {
    /// Counts one more frame of `len` bytes.
    pub(crate) fn add(&mut self, len: u64, heartbeat: bool) {
        if self.frames == 0 || len < self.frame_bytes_min {
            self.frame_bytes_min = len;
        }
        self.frame_bytes_max = self.frame_bytes_max.max(len);
        self.frames += 1;
        self.bytes += len;
        self.heartbeats += u64::from(heartbeat);
    }
}

impl PeerCounters {
    pub(crate) fn new(peer: PeerId, address: Option<SocketAddr>) -> Self {
        Self {
            peer,
            address: Mutex::new(address),
            remote_incarnation: AtomicU64::new(u64::MAX),
            state: AtomicU8::new(ConnectionState::Waiting.as_u8()),
            messages_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            message_bytes_min: AtomicU64::new(u64::MAX),
            message_bytes_max: AtomicU64::new(0),
            heartbeats_sent: AtomicU64::new(0),
            heartbeats_received: AtomicU64::new(0),
            write_calls: AtomicU64::new(0),
            messages_dropped: AtomicU64::new(0),
            bytes_dropped: AtomicU64::new(0),
            queued_bytes: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    fn note_length(&self, min: u64, max: u64) {
        if min < self.message_bytes_min.load(Ordering::Relaxed) {
            self.message_bytes_min.store(min, Ordering::Relaxed);
        }
        if max > self.message_bytes_max.load(Ordering::Relaxed) {
            self.message_bytes_max.store(max, Ordering::Relaxed);
        }
    }

    pub(crate) fn set_state(&self, state: ConnectionState) {
        self.state.store(state.as_u8(), Ordering::Relaxed);
    }

    pub(crate) fn state(&self) -> ConnectionState {
        ConnectionState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub(crate) fn set_address(&self, address: SocketAddr) {
        *self.address.lock() = Some(address);
    }

    pub(crate) fn on_written(&self, batch: &BatchTally) {
        bump(&self.write_calls, 1);
        bump(&self.messages_sent, batch.frames);
        bump(&self.bytes_sent, batch.bytes);
        bump(&self.heartbeats_sent, batch.heartbeats);
        if batch.frames > 0 {
            self.note_length(batch.frame_bytes_min, batch.frame_bytes_max);
        }
    }

    pub(crate) fn on_received(&self, len: u64, heartbeat: bool) {
        bump(&self.messages_received, 1);
        bump(&self.bytes_received, len);
        bump(&self.heartbeats_received, u64::from(heartbeat));
        self.note_length(len, len);
    }

    pub(crate) fn on_dropped(&self, frames: u64, bytes: u64) {
        bump(&self.messages_dropped, frames);
        bump(&self.bytes_dropped, bytes);
    }

    pub(crate) fn set_queued_bytes(&self, bytes: usize) {
        self.queued_bytes.store(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn on_connected(&self, incarnation: u64) {
        bump(&self.connects, 1);
        self.remote_incarnation
            .store(incarnation, Ordering::Relaxed);
        self.set_state(ConnectionState::Connected);
    }

    pub(crate) fn on_disconnected(&self) {
        bump(&self.disconnects, 1);
    }

    pub(crate) fn record_error(&self, text: String) {
        *self.last_error.lock() = Some(LastError {
            text,
            at: SystemTime::now(),
        });
    }

    pub(crate) fn snapshot(&self) -> PeerStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let incarnation = load(&self.remote_incarnation);
        let min = load(&self.message_bytes_min);
        PeerStats {
            peer: self.peer,
            address: *self.address.lock(),
            remote_incarnation: (incarnation != u64::MAX).then_some(incarnation),
            state: self.state(),
            messages_sent: load(&self.messages_sent),
            bytes_sent: load(&self.bytes_sent),
            messages_received: load(&self.messages_received),
            bytes_received: load(&self.bytes_received),
            message_bytes_min: (min != u64::MAX).then_some(min),
            message_bytes_max: (min != u64::MAX).then(|| load(&self.message_bytes_max)),
            heartbeats_sent: load(&self.heartbeats_sent),
            heartbeats_received: load(&self.heartbeats_received),
            write_calls: load(&self.write_calls),
            messages_dropped: load(&self.messages_dropped),
            bytes_dropped: load(&self.bytes_dropped),
            queued_bytes: load(&self.queued_bytes),
            connects: load(&self.connects),
            disconnects: load(&self.disconnects),
            last_error: self.last_error.lock().clone(),
        }
    }
}

/// The stats of one transport, shared with every [`TransportHandle`](super::TransportHandle).
pub(crate) struct StatsRegistry {
    member: PeerId,
    listen_addr: SocketAddr,
    io_backend: IoBackend,
    /// Changed only when membership changes, so the lock is never on the data path.
    peers: Mutex<BTreeMap<PeerId, Arc<PeerCounters>>>,
    rejections: Mutex<VecDeque<Rejection>>,
    rejected_total: AtomicU64,
    pub(crate) handoff_dropped: AtomicU64,
}

impl StatsRegistry {
    pub(crate) fn new(member: PeerId, listen_addr: SocketAddr, io_backend: IoBackend) -> Self {
        Self {
            member,
            listen_addr,
            io_backend,
            peers: Mutex::new(BTreeMap::new()),
            rejections: Mutex::new(VecDeque::with_capacity(REJECTIONS_KEPT)),
            rejected_total: AtomicU64::new(0),
            handoff_dropped: AtomicU64::new(0),
        }
    }

    pub(crate) fn insert_peer(&self, counters: Arc<PeerCounters>) {
        self.peers.lock().insert(counters.peer, counters);
    }

    pub(crate) fn remove_peer(&self, peer: PeerId) {
        self.peers.lock().remove(&peer);
    }

    pub(crate) fn record_rejection(
        &self,
        remote: SocketAddr,
        claimed_peer: Option<PeerId>,
        text: String,
    ) {
        self.rejected_total.fetch_add(1, Ordering::Relaxed);
        let mut rejections = self.rejections.lock();
        if rejections.len() == REJECTIONS_KEPT {
            rejections.pop_front();
        }
        rejections.push_back(Rejection {
            remote,
            claimed_peer,
            text,
            at: SystemTime::now(),
        });
    }

    pub(crate) fn snapshot(&self) -> TransportSnapshot {
        let peers = self.peers.lock().values().map(|c| c.snapshot()).collect();
        TransportSnapshot {
            member: self.member,
            listen_addr: self.listen_addr,
            io_backend: self.io_backend,
            peers,
            rejected_connections: self.rejected_total.load(Ordering::Relaxed),
            recent_rejections: self.rejections.lock().iter().cloned().collect(),
            handoff_dropped: self.handoff_dropped.load(Ordering::Relaxed),
        }
    }
}
