//! The simulator's event queue: events ordered by (time, insertion counter).
//!
//! The counter breaks ties in insertion order, so two runs with the same seed pop the
//! same events in the same order. This module owns ordering only; it must never decide
//! what an event does.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use tutti_net::gcs::{MemberId, Message};

/// Something that happens at a simulated time.
#[derive(Debug)]
pub(super) enum Event {
    /// A message arrives at node `to`.
    Message {
        to: usize,
        from: MemberId,
        msg: Message,
    },
    /// Node `node`'s timer fires, if `generation` is still its latest timer.
    Timer { node: usize, generation: u64 },
    /// Node `node`'s pending log writes complete, if it has not crashed since `life`.
    Fsync { node: usize, life: u64 },
    /// Node `node` proposes.
    Workload { node: usize },
    /// A random fault is injected.
    Fault,
    /// Node `node` restarts after a crash.
    Restart { node: usize },
    /// A partition ends.
    HealPartition { generation: u64 },
    /// A stopped node is replaced by a fresh joiner.
    Replace { node: usize },
    /// The safety phase ends and healing begins.
    BeginHealing,
    /// Node `node` applies the committed transaction at `seqno`, if it has not crashed
    /// since `life` (bank workload).
    Apply { node: usize, life: u64, seqno: u64 },
    /// Client `client` of node `node` starts its next transaction, if the node has not
    /// crashed since `life` (bank workload).
    ClientTurn {
        node: usize,
        life: u64,
        client: usize,
    },
    /// Node `node` proposes its low watermark, if it has not crashed since `life` (bank
    /// workload).
    LowWatermarkTick { node: usize, life: u64 },
    /// Node `node` ends its flow control period and reports, if it has not crashed since
    /// `life` (bank workload with flow control).
    FlowTick { node: usize, life: u64 },
}

struct Scheduled {
    at: u64,
    counter: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.counter) == (other.at, other.counter)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    // Reversed: the heap pops the earliest (time, counter) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.counter).cmp(&(self.at, self.counter))
    }
}

/// Pending events.
#[derive(Default)]
pub(super) struct EventQueue {
    heap: BinaryHeap<Scheduled>,
    counter: u64,
}

impl EventQueue {
    pub(super) fn push(&mut self, at: u64, event: Event) {
        self.counter += 1;
        self.heap.push(Scheduled {
            at,
            counter: self.counter,
            event,
        });
    }

    /// The next event if it is due at or before `until`.
    pub(super) fn pop_until(&mut self, until: u64) -> Option<(u64, Event)> {
        if self.heap.peek()?.at > until {
            return None;
        }
        self.heap
            .pop()
            .map(|scheduled| (scheduled.at, scheduled.event))
    }
}
