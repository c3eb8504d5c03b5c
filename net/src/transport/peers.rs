//! The peer table: who the peers are, which connection serves each, and the rules that
//! pick one connection when two meet.
//!
//! Everything here runs on the transport's thread, behind one `RefCell` that is never
//! held across an `.await`. A peer's outbound queue and counters live as long as the
//! peer is in the table; connections come and go under it. The rules:
//!
//! - The member with the lower id dials (`dial.rs`); the other waits to be dialed. An
//!   accepted connection from any member of the group is taken, so a member this one does
//!   not know yet (a joiner) can still reach it.
//! - At most one connection per peer. A new one replaces the current one when it comes
//!   from a newer incarnation (a restarted peer), or from the same incarnation and the
//!   same dialer (the dialer saw the old one die first). A stale incarnation is refused.
//!   When the two were dialed by different members, the one the lower id dialed is kept,
//!   so both sides settle on the same connection.
//!
//! This module never performs IO itself; it hands streams to the reader and writer tasks
//! of `connection.rs`.

use std::cell::{Cell, RefCell};
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use bytes::BytesMut;
use monoio::io::Splitable;
use monoio::net::TcpStream;

use super::connection::{run_reader, run_writer, Connection, Ending};
use super::constants::PEERS_MAX;
use super::dial::run_dialer;
use super::handshake::HandshakeError;
use super::inbox::{Inbound, Inbox};
use super::queue::{OutQueue, SendOutcome};
use super::signal::{Latch, Wakeup};
use super::socket::SocketBuffers;
use super::stats::{ConnectionState, PeerCounters, StatsRegistry};
use super::{PeerId, TransportConfig, TransportError};
use crate::wire::{FrameOrigin, WireError};

/// One peer in the table.
struct Peer {
    /// Where to dial it; `None` for a peer that dialed this member and was never added.
    dial_addr: Option<SocketAddr>,
    queue: Rc<OutQueue>,
    counters: Arc<PeerCounters>,
    connection: Option<Rc<Connection>>,
    /// Set when the peer leaves the table (or the transport stops): stops its dialer.
    removed: Rc<Latch>,
    /// Tells the dialer that the connection went down.
    link_down: Rc<Wakeup>,
}

/// A connection that completed its handshake, about to be installed.
pub(crate) struct Link {
    pub(crate) peer: PeerId,
    pub(crate) incarnation: u64,
    pub(crate) remote: SocketAddr,
    pub(crate) listen_addr: SocketAddr,
    pub(crate) dialed_by: PeerId,
    /// Bytes that arrived after the handshake frame, already read.
    pub(crate) leftover: BytesMut,
}

/// The state shared by the tasks of one transport.
pub(crate) struct Core {
    pub(crate) config: TransportConfig,
    pub(crate) origin: FrameOrigin,
    pub(crate) listen_addr: SocketAddr,
    pub(crate) buffers: SocketBuffers,
    peers: RefCell<BTreeMap<PeerId, Peer>>,
    pub(crate) inbox: Inbox,
    pub(crate) stats: Arc<StatsRegistry>,
    pub(crate) stopping: Latch,
    next_connection_id: Cell<u64>,
    tasks: Cell<usize>,
    pub(crate) tasks_done: Wakeup,
    pub(crate) handshakes: Cell<usize>,
}

/// Decrements the task count when a spawned task ends or is dropped.
struct TaskGuard(Rc<Core>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let left = self.0.tasks.get() - 1;
        self.0.tasks.set(left);
        if left == 0 {
            self.0.tasks_done.notify();
        }
    }
}

impl Core {
    pub(crate) fn new(
        config: TransportConfig,
        listen_addr: SocketAddr,
        stats: Arc<StatsRegistry>,
    ) -> Self {
        Self {
            origin: FrameOrigin {
                group_name: config.group_name,
                sender: config.member.0,
                incarnation: config.incarnation,
            },
            buffers: SocketBuffers {
                send_bytes: config.socket_send_buffer_bytes,
                recv_bytes: config.socket_recv_buffer_bytes,
            },
            inbox: Inbox::new(config.inbox_bytes_max),
            config,
            listen_addr,
            peers: RefCell::new(BTreeMap::new()),
            stats,
            stopping: Latch::default(),
            next_connection_id: Cell::new(1),
            tasks: Cell::new(0),
            tasks_done: Wakeup::default(),
            handshakes: Cell::new(0),
        }
    }

    /// Spawns a task on this thread and counts it until it ends, so `shutdown` can wait.
    pub(crate) fn spawn(self: &Rc<Self>, task: impl Future<Output = ()> + 'static) {
        self.tasks.set(self.tasks.get() + 1);
        let guard = TaskGuard(Rc::clone(self));
        monoio::spawn(async move {
            let _guard = guard;
            task.await;
        });
    }

    pub(crate) fn task_count(&self) -> usize {
        self.tasks.get()
    }

    /// Whether this member dials `peer` (the lower id dials).
    pub(crate) fn dials(&self, peer: PeerId) -> bool {
        self.config.member < peer
    }

    fn new_peer(&self, peer: PeerId, dial_addr: Option<SocketAddr>) -> Peer {
        let counters = Arc::new(PeerCounters::new(peer, dial_addr));
        self.stats.insert_peer(Arc::clone(&counters));
        Peer {
            dial_addr,
            queue: Rc::new(OutQueue::new(
                self.config.peer_queue_bytes_max,
                self.config.heartbeat_kind,
                Arc::clone(&counters),
            )),
            counters,
            connection: None,
            removed: Rc::new(Latch::default()),
            link_down: Rc::new(Wakeup::default()),
        }
    }

    /// Adds a peer (or updates its address) and, when this member dials it, starts its
    /// dialer.
    pub(crate) fn add_peer(
        self: &Rc<Self>,
        peer: PeerId,
        addr: SocketAddr,
    ) -> Result<(), TransportError> {
        if peer == self.config.member {
            return Err(TransportError::SelfPeer(peer));
        }
        let mut peers = self.peers.borrow_mut();
        let table_full = peers.len() >= PEERS_MAX;
        let (slot, start_dialer) = match peers.entry(peer) {
            Entry::Occupied(entry) => {
                let slot = entry.into_mut();
                // A peer that dialed this member first is now known by address too.
                let had_address = slot.dial_addr.replace(addr).is_some();
                slot.counters.set_address(addr);
                (slot, !had_address && self.dials(peer))
            }
            Entry::Vacant(_) if table_full => {
                return Err(TransportError::TooManyPeers { max: PEERS_MAX });
            }
            Entry::Vacant(entry) => (
                entry.insert(self.new_peer(peer, Some(addr))),
                self.dials(peer),
            ),
        };
        if start_dialer && !self.stopping.is_set() {
            let dialer = run_dialer(
                Rc::clone(self),
                peer,
                Rc::clone(&slot.removed),
                Rc::clone(&slot.link_down),
                Arc::clone(&slot.counters),
            );
            drop(peers);
            self.spawn(dialer);
        }
        Ok(())
    }

    /// Removes a peer: closes its connection, stops its dialer, drops what was queued.
    pub(crate) fn remove_peer(&self, peer: PeerId) -> bool {
        let Some(slot) = self.peers.borrow_mut().remove(&peer) else {
            return false;
        };
        slot.removed.set();
        if let Some(connection) = &slot.connection {
            connection.closed.set();
        }
        slot.queue.discard_pending();
        self.stats.remove_peer(peer);
        tracing::info!(member = %self.config.member, %peer, "peer removed");
        true
    }

    /// The peers in the table.
    pub(crate) fn peer_ids(&self) -> Vec<PeerId> {
        self.peers.borrow().keys().copied().collect()
    }

    pub(crate) fn dial_addr(&self, peer: PeerId) -> Option<SocketAddr> {
        self.peers
            .borrow()
            .get(&peer)
            .and_then(|slot| slot.dial_addr)
    }

    pub(crate) fn is_connected(&self, peer: PeerId) -> bool {
        self.peers
            .borrow()
            .get(&peer)
            .is_some_and(|slot| slot.connection.is_some())
    }

    /// Queues an encoded frame for `peer`.
    pub(crate) fn send_encoded(&self, peer: PeerId, kind: u16, frame: &[u8]) -> SendOutcome {
        match self.peers.borrow().get(&peer) {
            Some(slot) => slot.queue.push_encoded(kind, frame),
            None => SendOutcome::UnknownPeer,
        }
    }

    /// Encodes a frame straight into `peer`'s queue.
    pub(crate) fn send_with(
        &self,
        peer: PeerId,
        kind: u16,
        write_body: impl FnOnce(&mut Vec<u8>),
    ) -> Result<SendOutcome, WireError> {
        match self.peers.borrow().get(&peer) {
            Some(slot) => slot.queue.push_with(kind, self.origin, write_body),
            None => Ok(SendOutcome::UnknownPeer),
        }
    }

    /// Queues an encoded frame for every peer; returns how many queued it.
    pub(crate) fn broadcast_encoded(&self, kind: u16, frame: &[u8]) -> usize {
        self.peers
            .borrow()
            .values()
            .filter(|slot| slot.queue.push_encoded(kind, frame) == SendOutcome::Queued)
            .count()
    }

    /// Whether a connection for `link` may replace `current`; see the module doc.
    fn may_replace(current: &Connection, link: &Link) -> Result<(), HandshakeError> {
        if link.incarnation < current.incarnation {
            return Err(HandshakeError::StaleIncarnation {
                peer: link.peer,
                offered: link.incarnation,
                current: current.incarnation,
            });
        }
        if link.incarnation > current.incarnation || link.dialed_by == current.dialed_by {
            return Ok(());
        }
        if link.dialed_by < current.dialed_by {
            Ok(())
        } else {
            Err(HandshakeError::Duplicate(link.peer))
        }
    }

    /// Checks, before answering a handshake, that a connection for `link` would be taken.
    pub(crate) fn admissible(&self, link: &Link) -> Result<(), HandshakeError> {
        if self.stopping.is_set() {
            return Err(HandshakeError::Stopping);
        }
        let peers = self.peers.borrow();
        match peers.get(&link.peer) {
            Some(slot) => match &slot.connection {
                Some(current) => Self::may_replace(current, link),
                None => Ok(()),
            },
            None if peers.len() >= PEERS_MAX => Err(HandshakeError::TooManyPeers),
            None => Ok(()),
        }
    }

    /// Makes `stream` the connection of `link.peer` and starts its reader and writer.
    pub(crate) fn install(
        self: &Rc<Self>,
        stream: TcpStream,
        link: Link,
    ) -> Result<(), HandshakeError> {
        self.admissible(&link)?;
        let connection = Rc::new(Connection {
            id: self
                .next_connection_id
                .replace(self.next_connection_id.get() + 1),
            peer: link.peer,
            incarnation: link.incarnation,
            dialed_by: link.dialed_by,
            remote: link.remote,
            closed: Latch::default(),
        });
        let (queue, counters) = {
            let mut peers = self.peers.borrow_mut();
            let slot = peers
                .entry(link.peer)
                .or_insert_with(|| self.new_peer(link.peer, None));
            if let Some(replaced) = slot.connection.replace(Rc::clone(&connection)) {
                replaced.closed.set();
                slot.counters.on_disconnected();
                tracing::info!(member = %self.config.member, peer = %link.peer,
                    old_incarnation = replaced.incarnation, new_incarnation = link.incarnation,
                    "a new connection replaces the current one");
            }
            if slot.dial_addr.is_none() {
                slot.counters.set_address(link.listen_addr);
            }
            slot.counters.on_connected(link.incarnation);
            (Rc::clone(&slot.queue), Arc::clone(&slot.counters))
        };
        let (reader, writer) = stream.into_split();
        self.spawn(run_reader(
            Rc::clone(self),
            Rc::clone(&connection),
            Arc::clone(&counters),
            reader,
            link.leftover,
        ));
        self.spawn(run_writer(
            Rc::clone(self),
            Rc::clone(&connection),
            Rc::clone(&queue),
            writer,
        ));
        tracing::info!(member = %self.config.member, peer = %link.peer, remote = %link.remote,
            incarnation = link.incarnation, "peer connected");
        self.inbox.push_event(Inbound::PeerUp {
            peer: link.peer,
            incarnation: link.incarnation,
            listen_addr: link.listen_addr,
        });
        // Frames queued while the peer was unreachable go out on this connection.
        queue.ready.notify();
        Ok(())
    }

    /// Called by the reader and the writer of `connection` when they end; the first call
    /// tears the connection down, later ones find it gone and do nothing.
    pub(crate) fn connection_closed(&self, connection: &Connection, ending: Ending) {
        connection.closed.set();
        let violation = matches!(ending, Ending::Violation(_));
        let error = match ending {
            Ending::Closed => None,
            Ending::Lost(text) | Ending::Violation(text) => Some(text),
        };
        let link_down = {
            let mut peers = self.peers.borrow_mut();
            let Some(slot) = peers.get_mut(&connection.peer) else {
                return;
            };
            if slot
                .connection
                .as_ref()
                .is_none_or(|current| current.id != connection.id)
            {
                return;
            }
            slot.connection = None;
            slot.counters.on_disconnected();
            slot.counters.set_state(if self.dials(connection.peer) {
                ConnectionState::BackingOff
            } else {
                ConnectionState::Waiting
            });
            if let Some(text) = &error {
                slot.counters.record_error(text.clone());
            }
            Rc::clone(&slot.link_down)
        };
        let (member, peer) = (self.config.member, connection.peer);
        match &error {
            Some(text) if violation => tracing::error!(%member, %peer, "{text}"),
            Some(text) => tracing::warn!(%member, %peer, "{text}"),
            None => tracing::info!(%member, %peer, "peer connection closed"),
        }
        link_down.notify();
        self.inbox.push_event(Inbound::PeerDown {
            peer: connection.peer,
            incarnation: connection.incarnation,
            error,
        });
    }

    /// Records a connection refused before it was tied to a peer.
    pub(crate) fn reject(&self, remote: SocketAddr, claimed_peer: Option<PeerId>, text: String) {
        tracing::error!(member = %self.config.member, %remote, claimed_peer = ?claimed_peer,
            "refused a peer connection: {text}");
        self.stats.record_rejection(remote, claimed_peer, text);
    }

    /// Starts stopping: no new connections, every dialer and connection told to end.
    pub(crate) fn stop(&self) {
        self.stopping.set();
        for slot in self.peers.borrow().values() {
            slot.removed.set();
            if let Some(connection) = &slot.connection {
                connection.closed.set();
            }
        }
    }
}
