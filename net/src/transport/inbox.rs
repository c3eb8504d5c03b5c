//! The inbox: what the transport hands its owner, in arrival order, bounded in bytes.
//!
//! Readers push verified frames; the owner (the group core loop) takes them with
//! `Transport::recv`. When the frames waiting reach the byte bound, readers wait before
//! pushing more and so stop reading their sockets: TCP flow control then slows the
//! senders, and memory stays bounded. Connection events (a peer up or down) are never
//! held back, since they are few (one per handshake or disconnect, and reconnects are
//! paced by the backoff) and the owner must not miss them.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::task::{Poll, Waker};

use bytes::Bytes;

use super::PeerId;
use crate::wire::frame::FRAME_HEADER_BYTES;
use crate::wire::FrameHeader;

/// A verified frame from a peer, owning its bytes (shared with the receive buffer it was
/// read into, not copied out of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundFrame {
    /// The peer connection it arrived on; equals `header.origin.sender`.
    pub peer: PeerId,
    /// The verified header: kind, sender, incarnation.
    pub header: FrameHeader,
    /// The whole frame, header included, as received.
    pub bytes: Bytes,
}

impl InboundFrame {
    /// The frame's body, checksum verified.
    pub fn body(&self) -> &[u8] {
        &self.bytes[FRAME_HEADER_BYTES..]
    }
}

/// What the transport hands its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A frame from a peer; frames from one peer arrive in the order it sent them.
    Frame(InboundFrame),
    /// A connection to a peer completed its handshake. A restarted peer shows up again
    /// with a higher incarnation, possibly without a `PeerDown` for the old connection
    /// when the new one replaced it.
    PeerUp {
        /// The peer.
        peer: PeerId,
        /// Its incarnation on this connection.
        incarnation: u64,
        /// The listen address it announced.
        listen_addr: SocketAddr,
    },
    /// A peer's connection ended; frames queued for it wait for the next connection.
    PeerDown {
        /// The peer.
        peer: PeerId,
        /// The incarnation of the connection that ended.
        incarnation: u64,
        /// Why, when it ended with an error.
        error: Option<String>,
    },
}

/// The bounded, single-thread queue behind `Transport::recv`.
pub(crate) struct Inbox {
    queue: RefCell<VecDeque<Inbound>>,
    /// Bytes of the frames in `queue`.
    frame_bytes: Cell<usize>,
    frame_bytes_max: usize,
    receiver: RefCell<Option<Waker>>,
    /// Readers waiting for room.
    writers: RefCell<Vec<Waker>>,
}

impl Inbox {
    pub(crate) fn new(frame_bytes_max: usize) -> Self {
        Self {
            queue: RefCell::new(VecDeque::new()),
            frame_bytes: Cell::new(0),
            frame_bytes_max,
            receiver: RefCell::new(None),
            writers: RefCell::new(Vec::new()),
        }
    }

    fn push(&self, inbound: Inbound) {
        self.queue.borrow_mut().push_back(inbound);
        if let Some(waker) = self.receiver.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Queues a connection event; never waits.
    pub(crate) fn push_event(&self, event: Inbound) {
        assert!(!matches!(event, Inbound::Frame(_)));
        self.push(event);
    }

    /// Queues a frame, waiting while the inbox is at its byte bound. An empty inbox always
    /// takes a frame, so a frame of the largest size never waits forever.
    pub(crate) async fn push_frame(&self, frame: InboundFrame) {
        let len = frame.bytes.len();
        std::future::poll_fn(|cx| {
            let queued = self.frame_bytes.get();
            if queued == 0 || queued + len <= self.frame_bytes_max {
                return Poll::Ready(());
            }
            let mut writers = self.writers.borrow_mut();
            if !writers.iter().any(|waker| waker.will_wake(cx.waker())) {
                writers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
        self.frame_bytes.set(self.frame_bytes.get() + len);
        self.push(Inbound::Frame(frame));
    }

    /// Takes the oldest entry, if any.
    pub(crate) fn try_pop(&self) -> Option<Inbound> {
        let inbound = self.queue.borrow_mut().pop_front()?;
        if let Inbound::Frame(frame) = &inbound {
            let queued = self.frame_bytes.get();
            assert!(queued >= frame.bytes.len(), "inbox byte count underflow");
            self.frame_bytes.set(queued - frame.bytes.len());
            for waker in self.writers.take() {
                waker.wake();
            }
        }
        Some(inbound)
    }

    /// Waits for and takes the oldest entry. One receiver at a time: a second concurrent
    /// receiver would replace the first one's waker.
    pub(crate) async fn pop(&self) -> Inbound {
        std::future::poll_fn(|cx| {
            if let Some(inbound) = self.try_pop() {
                return Poll::Ready(inbound);
            }
            *self.receiver.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}
