//! Checkers: one per property of the total order, each named after it.
//!
//! Deliveries are recorded per *stream*: one life of one node (a restart starts a new
//! stream, which delivers from seqno 1 again). The safety checkers (agreement, total
//! order, integrity) run at every delivery; durability and liveness run at the end of
//! the healing phase. A checker never changes the run; it only reports the first
//! violation it sees.

mod agreement;
mod durability;
mod integrity;
mod liveness;
mod total_order;

use std::collections::BTreeMap;

use tutti_net::gcs::{Entry, Incarnation, MemberId, Seqno};

pub(super) use liveness::LiveStream;

/// A violated property and what shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The property's name: `agreement`, `total_order`, `integrity`,
    /// `durability`, `liveness` (or `event_budget` for a runaway run, `options` for bad
    /// options).
    pub property: &'static str,
    /// What was seen.
    pub detail: String,
}

/// Identity of one delivery stream: (node index, life).
pub(super) type StreamId = (usize, u64);

/// What every checker needs, recorded as the run goes.
#[derive(Default)]
pub(super) struct Checkers {
    /// The first entry delivered at each seqno, anywhere.
    pub(super) decided: BTreeMap<Seqno, Entry>,
    /// Last delivered seqno per stream.
    pub(super) stream_position: BTreeMap<StreamId, Seqno>,
    /// Per stream: the last counter delivered per origin incarnation.
    pub(super) stream_origins: BTreeMap<StreamId, BTreeMap<(MemberId, Incarnation), u64>>,
    /// Every proposal made: payload -> (origin, incarnation, counter).
    pub(super) proposed: BTreeMap<Vec<u8>, (MemberId, Incarnation, u64)>,
    /// The seqno each payload was decided at.
    pub(super) payload_seqno: BTreeMap<Vec<u8>, Seqno>,
    /// The first violation.
    pub(super) failure: Option<Failure>,
}

impl Checkers {
    pub(super) fn on_propose(
        &mut self,
        payload: &[u8],
        origin: MemberId,
        incarnation: Incarnation,
        counter: u64,
    ) {
        self.proposed
            .insert(payload.to_vec(), (origin, incarnation, counter));
    }

    /// Runs the safety checkers on one delivery.
    pub(super) fn on_deliver(&mut self, stream: StreamId, seqno: Seqno, entry: &Entry) {
        if self.failure.is_some() {
            return;
        }
        let result = total_order::check(self, stream, seqno)
            .and_then(|()| agreement::check(self, seqno, entry))
            .and_then(|()| integrity::check(self, stream, seqno, entry));
        if let Err(failure) = result {
            self.failure = Some(failure);
        }
    }

    /// Runs durability and liveness at the end of healing.
    pub(super) fn at_end(&mut self, live: &[LiveStream]) {
        if self.failure.is_some() {
            return;
        }
        let result = durability::check(self, live).and_then(|()| liveness::check(self, live));
        if let Err(failure) = result {
            self.failure = Some(failure);
        }
    }
}
