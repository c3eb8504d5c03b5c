//! The origin's side: proposals this member made and has not seen delivered.
//!
//! A proposal stays pending until it is delivered. The ones the log does not show as
//! ordered are resent, in counter order, to the current sequencer when ordering makes
//! no progress for `retransmit_interval` and at once after a new view is installed.
//! The sequencer drops duplicates and holds gaps, so resending never orders twice and
//! never reorders one origin's proposals. This module must never order anything.

use std::collections::VecDeque;

use super::constants::RESEND_PROPOSALS_MAX;
use super::entry::{Payload, Proposal};
use super::error::ProposeError;
use super::message::{Message, Propose};
use super::types::{MemberState, ProposalId, Time};
use super::{Gcs, Status};

/// Proposals this member originated.
#[derive(Debug)]
pub(super) struct OriginState {
    /// Counter of the next proposal (starts at 1 in every incarnation).
    pub(super) next_counter: u64,
    /// Proposed and not yet delivered, in counter order.
    pub(super) pending: VecDeque<Proposal>,
    /// Resend unordered proposals at the next opportunity (a new view).
    pub(super) resend_due: bool,
    /// Highest own counter the log showed ordered at the last resend check.
    pub(super) ordered_seen: u64,
}

impl Default for OriginState {
    fn default() -> OriginState {
        OriginState {
            next_counter: 1,
            pending: VecDeque::new(),
            resend_due: false,
            ordered_seen: 0,
        }
    }
}

impl Gcs {
    /// Hands a payload to the total order. Returns its identity; it is delivered later
    /// (to every member, this one included) unless this member crashes first.
    pub fn propose(&mut self, now: Time, payload: Payload) -> Result<ProposalId, ProposeError> {
        if self.status == Status::Stopped {
            return Err(ProposeError::NotMember {
                state: self.own_state,
            });
        }
        if self.own_state == MemberState::Error || self.own_state == MemberState::Offline {
            return Err(ProposeError::NotMember {
                state: self.own_state,
            });
        }
        if payload.len() > self.config.payload_bytes_max {
            return Err(ProposeError::PayloadTooLarge {
                size: payload.len(),
                limit: self.config.payload_bytes_max,
            });
        }
        let pending = self.origin.pending.len();
        if pending >= self.config.proposals_pending_max {
            return Err(ProposeError::QueueFull {
                pending,
                limit: self.config.proposals_pending_max,
            });
        }
        let id = ProposalId {
            origin: self.me,
            incarnation: self.incarnation,
            counter: self.origin.next_counter,
        };
        self.origin.next_counter += 1;
        let proposal = Proposal { id, payload };
        self.origin.pending.push_back(proposal.clone());
        if self.is_sequencer() {
            self.accept_proposal(proposal);
            self.order_pending(now);
        } else if let (Status::Normal, Some(sequencer)) = (self.status, self.sequencer) {
            let msg = Message::Propose(Propose {
                incarnation: self.incarnation,
                proposals: vec![proposal],
            });
            self.send(now, sequencer, msg);
        }
        Ok(id)
    }

    /// One of this member's proposals was delivered: drop it and those before it.
    pub(super) fn on_own_delivered(&mut self, counter: u64) {
        while self
            .origin
            .pending
            .front()
            .is_some_and(|front| front.id.counter <= counter)
        {
            self.origin.pending.pop_front();
        }
    }

    /// The highest own counter this member's log shows ordered in this incarnation.
    fn ordered_counter(&self) -> u64 {
        match self.log.origin_position(self.me) {
            Some((incarnation, counter)) if incarnation == self.incarnation => counter,
            _ => 0,
        }
    }

    /// Resends unordered proposals after a new view, or when ordering stalled.
    pub(super) fn origin_tick(&mut self, now: Time) {
        let ordered = self.ordered_counter();
        let stalled = ordered == self.origin.ordered_seen;
        self.origin.ordered_seen = ordered;
        if self.origin.resend_due || stalled {
            self.resend_unordered(now);
        }
    }

    /// Sends every pending proposal the log does not show as ordered, in order,
    /// bounded by `RESEND_PROPOSALS_MAX` and the batch byte limit.
    pub(super) fn resend_unordered(&mut self, now: Time) {
        let (Status::Normal, Some(sequencer)) = (self.status, self.sequencer) else {
            return;
        };
        self.origin.resend_due = false;
        let ordered = self.ordered_counter();
        let mut bytes = 0;
        let mut proposals = Vec::new();
        for proposal in self
            .origin
            .pending
            .iter()
            .filter(|p| p.id.counter > ordered)
        {
            if proposals.len() >= RESEND_PROPOSALS_MAX
                || bytes + proposal.payload.len() > self.config.batch_bytes_max
            {
                break;
            }
            bytes += proposal.payload.len();
            proposals.push(proposal.clone());
        }
        if proposals.is_empty() {
            return;
        }
        if sequencer == self.me {
            for proposal in proposals {
                self.accept_proposal(proposal);
            }
            self.order_pending(now);
        } else {
            let msg = Message::Propose(Propose {
                incarnation: self.incarnation,
                proposals,
            });
            self.send(now, sequencer, msg);
        }
    }
}
