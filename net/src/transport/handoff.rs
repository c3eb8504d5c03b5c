//! How other threads hand outbound frames to the transport's thread.
//!
//! A session core that wants a frame sent (or any thread that is not the transport's)
//! pushes it into a bounded lock-free queue and wakes the transport thread; a pump task
//! there moves the frames into the peers' outbound queues. A full queue refuses the
//! frame and counts it, so a stalled transport thread never makes other threads block or
//! memory grow. Frames keep their order per handing thread.

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use crossbeam_queue::ArrayQueue;

use super::constants::HANDOFF_FRAMES_MAX;
use super::peers::Core;
use super::signal::{unless_set, CrossThreadWakeup};
use super::stats::{StatsRegistry, TransportSnapshot};
use super::{frame_kind, PeerId};

/// A frame handed over, with where it goes.
enum Handed {
    /// To one peer.
    To(PeerId, Vec<u8>),
    /// To every peer.
    All(Vec<u8>),
}

/// Why a hand-over was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandoffError {
    /// The hand-over queue is full: the transport thread is not keeping up.
    #[error("the transport's hand-over queue is full ({HANDOFF_FRAMES_MAX} frames); the frame was dropped")]
    Full,
    /// The transport has stopped.
    #[error("the transport has stopped; the frame was dropped")]
    Stopped,
}

pub(crate) struct Handoff {
    queue: ArrayQueue<Handed>,
    wakeup: CrossThreadWakeup,
    stats: Arc<StatsRegistry>,
    stopped: AtomicBool,
}

impl Handoff {
    pub(crate) fn new(stats: Arc<StatsRegistry>) -> Self {
        Self {
            queue: ArrayQueue::new(HANDOFF_FRAMES_MAX),
            wakeup: CrossThreadWakeup::default(),
            stats,
            stopped: AtomicBool::new(false),
        }
    }

    fn push(&self, handed: Handed) -> Result<(), HandoffError> {
        let refused = if self.stopped.load(Ordering::Acquire) {
            Some(HandoffError::Stopped)
        } else if self.queue.push(handed).is_err() {
            Some(HandoffError::Full)
        } else {
            None
        };
        if let Some(error) = refused {
            self.stats.handoff_dropped.fetch_add(1, Ordering::Relaxed);
            return Err(error);
        }
        self.wakeup.notify();
        Ok(())
    }

    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.wakeup.notify();
    }
}

/// A `Send + Sync` handle other threads use to hand frames to the transport and to read
/// its stats.
#[derive(Clone)]
pub struct TransportHandle {
    pub(crate) handoff: Arc<Handoff>,
}

impl TransportHandle {
    /// Hands one encoded frame (from `wire::encode_frame`) for `peer` to the transport
    /// thread. Panics if `frame` is not exactly one frame with a message kind: that is a
    /// bug in the caller, not something the network can cause.
    pub fn send(&self, peer: PeerId, frame: Vec<u8>) -> Result<(), HandoffError> {
        frame_kind(&frame);
        self.handoff.push(Handed::To(peer, frame))
    }

    /// Hands one encoded frame for every peer to the transport thread; see [`send`](Self::send).
    pub fn broadcast(&self, frame: Vec<u8>) -> Result<(), HandoffError> {
        frame_kind(&frame);
        self.handoff.push(Handed::All(frame))
    }

    /// The transport's stats, readable from any thread.
    pub fn snapshot(&self) -> TransportSnapshot {
        self.handoff.stats.snapshot()
    }
}

/// Yields once to the other tasks of this thread.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

/// The pump task: moves handed-over frames into the peers' queues.
pub(crate) async fn run_pump(core: Rc<Core>, handoff: Arc<Handoff>) {
    loop {
        if unless_set(&core.stopping, handoff.wakeup.wait())
            .await
            .is_none()
        {
            return;
        }
        // At most one queue's worth per round, then let readers and writers run: a
        // thread that keeps handing frames over cannot starve them.
        for _ in 0..HANDOFF_FRAMES_MAX {
            let Some(handed) = handoff.queue.pop() else {
                break;
            };
            match handed {
                Handed::To(peer, frame) => {
                    core.send_encoded(peer, frame_kind(&frame), &frame);
                }
                Handed::All(frame) => {
                    core.broadcast_encoded(frame_kind(&frame), &frame);
                }
            }
        }
        if !handoff.queue.is_empty() {
            handoff.wakeup.notify();
            yield_now().await;
        }
    }
}
