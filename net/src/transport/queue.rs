//! The outbound queue of one peer: frames wait in one contiguous buffer until the
//! connection's writer takes them all in one write.
//!
//! Two buffers alternate: the writer takes the pending one whole (every frame queued
//! since its last write) and leaves an empty one in its place, so frames queued while a
//! write is in flight gather for the next write, and steady traffic allocates nothing.
//! Queued plus in-flight bytes are bounded: beyond the bound a new frame is dropped and
//! counted, never queued. The queue outlives connections: frames that wait when a
//! connection drops go out on the next one; only the batch being written when it dropped
//! is lost (its frames may have been cut in the middle), and counted as dropped.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use super::constants::WRITE_BUFFER_KEEP_BYTES;
use super::signal::Wakeup;
use super::stats::{BatchTally, PeerCounters};
use crate::wire::{encode_frame, FrameOrigin, WireError};

/// What happened to a frame handed to the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// Queued for the peer; it goes out with the next write.
    Queued,
    /// Dropped: the peer's queue is at its byte bound (a slow or dead peer).
    QueueFull,
    /// Dropped: the peer is not in the peer table.
    UnknownPeer,
}

/// A batch taken by the writer.
pub(crate) struct Batch {
    pub(crate) buffer: Vec<u8>,
    pub(crate) tally: BatchTally,
}

pub(crate) struct OutQueue {
    /// Whole frames, back to back, not yet taken by a writer.
    pending: RefCell<Vec<u8>>,
    pending_tally: Cell<BatchTally>,
    /// The empty buffer that replaces `pending` when the writer takes it.
    spare: RefCell<Vec<u8>>,
    /// Bytes of the batch being written.
    in_flight_bytes: Cell<usize>,
    bytes_max: usize,
    heartbeat_kind: Option<u16>,
    /// Tells the writer that `pending` is not empty.
    pub(crate) ready: Wakeup,
    counters: Arc<PeerCounters>,
}

impl OutQueue {
    pub(crate) fn new(
        bytes_max: usize,
        heartbeat_kind: Option<u16>,
        counters: Arc<PeerCounters>,
    ) -> Self {
        Self {
            pending: RefCell::new(Vec::new()),
            pending_tally: Cell::new(BatchTally::default()),
            spare: RefCell::new(Vec::new()),
            in_flight_bytes: Cell::new(0),
            bytes_max,
            heartbeat_kind,
            ready: Wakeup::default(),
            counters,
        }
    }

    fn queued_bytes(&self) -> usize {
        self.pending.borrow().len() + self.in_flight_bytes.get()
    }

    fn accepted(&self, kind: u16, len: usize) {
        let mut tally = self.pending_tally.get();
        tally.add(len as u64, self.heartbeat_kind == Some(kind));
        self.pending_tally.set(tally);
        self.counters.set_queued_bytes(self.queued_bytes());
        self.ready.notify();
    }

    /// Queues one encoded frame of `kind`.
    pub(crate) fn push_encoded(&self, kind: u16, frame: &[u8]) -> SendOutcome {
        if self.queued_bytes() + frame.len() > self.bytes_max {
            self.counters.on_dropped(1, frame.len() as u64);
            return SendOutcome::QueueFull;
        }
        self.pending.borrow_mut().extend_from_slice(frame);
        self.accepted(kind, frame.len());
        SendOutcome::Queued
    }

    /// Encodes one frame straight into the queue, so the body is written once, in place.
    pub(crate) fn push_with(
        &self,
        kind: u16,
        origin: FrameOrigin,
        write_body: impl FnOnce(&mut Vec<u8>),
    ) -> Result<SendOutcome, WireError> {
        let queued = self.queued_bytes();
        let (len, fits) = {
            let mut pending = self.pending.borrow_mut();
            let start = pending.len();
            let len = encode_frame(&mut pending, kind, origin, write_body)?;
            let fits = queued + len <= self.bytes_max;
            if !fits {
                pending.truncate(start);
            }
            (len, fits)
        };
        if !fits {
            self.counters.on_dropped(1, len as u64);
            return Ok(SendOutcome::QueueFull);
        }
        self.accepted(kind, len);
        Ok(SendOutcome::Queued)
    }

    /// Takes every pending frame for one write, or `None` when nothing is pending.
    /// While a replaced connection's writer still finishes its batch, the new writer
    /// gets `None` and is woken by `finish_batch`: one batch in flight per peer.
    pub(crate) fn take_batch(&self) -> Option<Batch> {
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() || self.in_flight_bytes.get() > 0 {
            return None;
        }
        let buffer = std::mem::replace(&mut *pending, self.spare.take());
        self.in_flight_bytes.set(buffer.len());
        let tally = self.pending_tally.replace(BatchTally::default());
        assert_eq!(
            tally.bytes,
            buffer.len() as u64,
            "tally matches the bytes queued"
        );
        Some(Batch { buffer, tally })
    }

    /// Ends the batch in flight: counts it as sent or dropped and keeps its buffer (if it
    /// came back) for the next batch.
    pub(crate) fn finish_batch(&self, tally: &BatchTally, buffer: Option<Vec<u8>>, written: bool) {
        assert_eq!(self.in_flight_bytes.get() as u64, tally.bytes);
        self.in_flight_bytes.set(0);
        if written {
            self.counters.on_written(tally);
        } else {
            self.counters.on_dropped(tally.frames, tally.bytes);
        }
        if let Some(mut buffer) = buffer {
            if buffer.capacity() <= WRITE_BUFFER_KEEP_BYTES {
                buffer.clear();
                *self.spare.borrow_mut() = buffer;
            }
        }
        self.counters.set_queued_bytes(self.queued_bytes());
        if !self.pending.borrow().is_empty() {
            self.ready.notify();
        }
    }

    /// Drops every pending frame (the peer was removed), counting them.
    pub(crate) fn discard_pending(&self) {
        let tally = self.pending_tally.replace(BatchTally::default());
        self.pending.borrow_mut().clear();
        self.counters.on_dropped(tally.frames, tally.bytes);
        self.counters.set_queued_bytes(self.queued_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::PeerId;
    use crate::wire::frame::FRAME_HEADER_BYTES;

    const ORIGIN: FrameOrigin = FrameOrigin {
        group_name: 1,
        sender: 1,
        incarnation: 1,
    };

    fn queue(bytes_max: usize) -> (OutQueue, Arc<PeerCounters>) {
        let counters = Arc::new(PeerCounters::new(PeerId(2), None));
        (
            OutQueue::new(bytes_max, Some(9), Arc::clone(&counters)),
            counters,
        )
    }

    fn body_of(len: usize) -> impl FnOnce(&mut Vec<u8>) {
        move |body| body.resize(body.len() + len, 1)
    }

    #[test]
    fn frames_beyond_the_bound_are_dropped_and_counted() {
        let frame = FRAME_HEADER_BYTES + 36;
        let (queue, counters) = queue(frame * 3);
        for _ in 0..3 {
            assert_eq!(
                queue.push_with(5, ORIGIN, body_of(36)),
                Ok(SendOutcome::Queued)
            );
        }
        assert_eq!(
            queue.push_with(5, ORIGIN, body_of(36)),
            Ok(SendOutcome::QueueFull)
        );
        let stats = counters.snapshot();
        assert_eq!(stats.messages_dropped, 1);
        assert_eq!(stats.bytes_dropped, frame as u64);
        assert_eq!(stats.queued_bytes, (frame * 3) as u64);

        // The batch in flight still counts against the bound until it is finished.
        let batch = queue.take_batch().expect("three frames pending");
        assert_eq!(batch.buffer.len(), frame * 3);
        assert_eq!(batch.tally.frames, 3);
        assert_eq!(
            queue.push_with(5, ORIGIN, body_of(36)),
            Ok(SendOutcome::QueueFull)
        );
        queue.finish_batch(&batch.tally, Some(batch.buffer), true);
        assert_eq!(
            queue.push_with(9, ORIGIN, body_of(36)),
            Ok(SendOutcome::Queued)
        );
        let stats = counters.snapshot();
        assert_eq!((stats.messages_sent, stats.write_calls), (3, 1));
        assert_eq!(stats.queued_bytes, frame as u64);
    }

    #[test]
    fn one_batch_in_flight_and_a_failed_batch_counts_as_dropped() {
        let (queue, counters) = queue(1 << 20);
        assert_eq!(
            queue.push_with(9, ORIGIN, body_of(8)),
            Ok(SendOutcome::Queued)
        );
        let first = queue.take_batch().expect("one frame pending");
        assert_eq!(
            queue.push_with(5, ORIGIN, body_of(8)),
            Ok(SendOutcome::Queued)
        );
        assert!(
            queue.take_batch().is_none(),
            "a second writer waits for the first batch"
        );
        queue.finish_batch(&first.tally, None, false);
        let second = queue.take_batch().expect("the frame queued meanwhile");
        assert_eq!(second.tally.frames, 1);
        queue.finish_batch(&second.tally, Some(second.buffer), true);
        let stats = counters.snapshot();
        assert_eq!(stats.messages_dropped, 1);
        assert_eq!(stats.messages_sent, 1);
        assert_eq!(
            stats.heartbeats_sent, 0,
            "the heartbeat was in the dropped batch"
        );
        assert_eq!(stats.queued_bytes, 0);
    }
}
