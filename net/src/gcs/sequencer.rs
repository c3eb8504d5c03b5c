//! The sequencer's side of the normal case: accepting proposals in per-origin order,
//! ordering them into batches, pipelining Prepares, and resending to members that lag.
//!
//! The sequencer orders each origin's proposals in counter order without gaps: a
//! proposal is accepted only if it is the next one of its origin (a later one is held,
//! bounded, until the gap fills), and duplicates are dropped. The per-origin position
//! is derived from the log (VR's client table), so a new sequencer rebuilds it from the
//! log it adopts. This module must never deliver or count acknowledgements; that is the
//! replica's job, which the sequencer also plays.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::constants::{
    HELD_PROPOSALS_PER_ORIGIN_MAX, RETRANSMIT_PREPARES_MAX, SEQUENCER_QUEUE_MAX,
};
use super::entry::{ConfigChange, Entry, EntryBody, Proposal};
use super::message::{Commit, Message, Prepare, PrepareNack, Propose};
use super::types::{Incarnation, MemberId, Seqno, Time, ViewId};
use super::{Command, Gcs, Status};

/// State only the sequencer of the current view uses. Reset at every view.
#[derive(Debug, Default)]
pub(super) struct SequencerState {
    /// Next seqno to send to each member.
    pub(super) next: BTreeMap<MemberId, Seqno>,
    /// Each member's acknowledgement when it last changed, and when: a member that
    /// makes no progress for `retransmit_interval` is resent from its acknowledgement.
    pub(super) progress: BTreeMap<MemberId, (Seqno, Time)>,
    /// Last seqno of every Prepare not yet committed (at most `pipeline_max`).
    pub(super) inflight: VecDeque<Seqno>,
    /// Proposals accepted in order and not yet ordered.
    pub(super) queue: VecDeque<Proposal>,
    /// Highest accepted (incarnation, counter) per origin: ordered or queued.
    pub(super) accepted: HashMap<MemberId, (Incarnation, u64)>,
    /// Proposals that arrived ahead of a gap, per origin, keyed by counter.
    pub(super) held: HashMap<MemberId, (Incarnation, BTreeMap<u64, Proposal>)>,
    /// Membership changes waiting for the previous one to commit.
    pub(super) reconfigurations: VecDeque<ConfigChange>,
    /// When a `NotMember` notice last went to each non-member (rate limit; bounded by
    /// `PENDING_RECONFIGURATIONS_MAX`, cleared when full).
    pub(super) not_member_sent: BTreeMap<MemberId, Time>,
    /// Last gap report acted on per member, to ignore repeats of it.
    pub(super) last_nack: BTreeMap<MemberId, (Seqno, Time)>,
}

impl Gcs {
    pub(super) fn is_sequencer(&self) -> bool {
        self.status == Status::Normal && self.sequencer == Some(self.me)
    }

    /// Enters normal status in the current view with `sequencer`.
    pub(super) fn become_normal(&mut self, now: Time, sequencer: super::MemberId) {
        self.status = Status::Normal;
        self.sequencer = Some(sequencer);
        self.backed = Some((self.view, sequencer));
        self.last_normal_view = self.view;
        self.persist_meta();
        self.acks.clear();
        self.ack_sent = Seqno::ZERO;
        self.sequencer_state = SequencerState::default();
        self.view_change.reset(now);
        self.view_start_seqno = self.first_seqno_of_view();
        // Silence is not forgiven by a new view: a member that died with the old
        // sequencer is expelled `member_expel_timeout` after it fell silent, not that long
        // after the view change (which would delay the election of single-primary mode).
        self.failure_detector.heard(sequencer, now);
        self.sequencer_heard = now;
        self.origin.resend_due = true;
        self.emit(Command::ViewInstalled {
            view: self.view,
            members: self.log.config().to_vec(),
            sequencer,
        });
    }

    fn first_seqno_of_view(&self) -> Option<Seqno> {
        let mut seqno = self.log.last_seqno();
        let mut first = None;
        while seqno > Seqno::ZERO && self.log.view_at(seqno) == Some(self.view) {
            first = Some(seqno);
            seqno = seqno.prev();
        }
        first
    }

    /// Takes over as sequencer of the current view with the log this member now holds:
    /// orders a `ViewStart` entry and sends `StartView` to every member.
    pub(super) fn become_sequencer(&mut self, now: Time) {
        let me = self.me;
        let dvcs = std::mem::take(&mut self.view_change.dvcs);
        self.become_normal(now, me);
        self.matched_seqno = self.log.last_seqno();
        self.commit_seqno = self.commit_known.min(self.matched_seqno);
        let uncommitted_end = self.log.last_seqno();
        let start = Entry {
            seqno: uncommitted_end.next(),
            view: self.view,
            body: EntryBody::ViewStart,
        };
        self.append_as_sequencer(vec![start]);
        self.view_start_seqno = Some(uncommitted_end.next());
        self.sequencer_state.accepted = self.log.origins().clone();
        for peer in self.peers() {
            // Everything at or below a member's commit point matches this log.
            let hint = dvcs
                .get(&peer)
                .map_or(self.commit_seqno, |dvc| dvc.commit_seqno)
                .min(self.log.last_seqno());
            self.sequencer_state.next.insert(peer, hint.next());
            self.sequencer_state
                .progress
                .insert(peer, (Seqno::ZERO, now));
            self.send_prepares(now, peer, true);
        }
        // Commit points heard earlier may cover entries this log now holds.
        self.deliver(now);
    }

    /// Appends entries this member ordered as sequencer and persists them.
    pub(super) fn append_as_sequencer(&mut self, entries: Vec<Entry>) {
        for entry in &entries {
            self.log.append(entry.clone());
        }
        self.matched_seqno = self.log.last_seqno();
        self.sequencer_state
            .inflight
            .push_back(self.log.last_seqno());
        self.emit(Command::PersistEntries {
            view: self.view,
            entries,
        });
    }

    /// Handles proposals sent to this member as sequencer.
    pub(super) fn on_propose(&mut self, now: Time, from: MemberId, propose: Propose) {
        if !self.is_sequencer() || !self.log.config().contains(&from) {
            return;
        }
        for proposal in propose.proposals {
            if proposal.id.origin == from {
                self.accept_proposal(proposal);
            }
        }
        self.order_pending(now);
    }

    /// Accepts a proposal if it is the next of its origin; holds a later one; drops a
    /// duplicate or one of an older incarnation.
    pub(super) fn accept_proposal(&mut self, proposal: Proposal) {
        let origin = proposal.id.origin;
        let state = &mut self.sequencer_state;
        if state.queue.len() >= SEQUENCER_QUEUE_MAX {
            return;
        }
        let (mut incarnation, mut counter) = state
            .accepted
            .get(&origin)
            .copied()
            .unwrap_or((Incarnation(0), 0));
        if proposal.id.incarnation < incarnation {
            return;
        }
        if proposal.id.incarnation > incarnation {
            // A new life of the origin starts a fresh counter space at 1.
            incarnation = proposal.id.incarnation;
            counter = 0;
        }
        if proposal.id.counter <= counter {
            return;
        }
        if proposal.id.counter > counter + 1 {
            let held = state
                .held
                .entry(origin)
                .or_insert_with(|| (incarnation, BTreeMap::new()));
            if held.0 != incarnation {
                *held = (incarnation, BTreeMap::new());
            }
            if held.1.len() < HELD_PROPOSALS_PER_ORIGIN_MAX {
                held.1.insert(proposal.id.counter, proposal);
            }
            return;
        }
        let mut next = proposal.id.counter + 1;
        state
            .accepted
            .insert(origin, (incarnation, proposal.id.counter));
        state.queue.push_back(proposal);
        // The gap is filled: release what was held behind it.
        while let Some(held) = state
            .held
            .get_mut(&origin)
            .filter(|(held_incarnation, _)| *held_incarnation == incarnation)
            .and_then(|(_, held)| held.remove(&next))
        {
            state.accepted.insert(origin, (incarnation, next));
            state.queue.push_back(held);
            next += 1;
        }
    }

    /// Orders everything pending into Prepares while the pipeline has room.
    pub(super) fn order_pending(&mut self, now: Time) {
        if !self.is_sequencer() {
            return;
        }
        while self.sequencer_state.inflight.len() < self.config.pipeline_max {
            let entries = self.next_batch(now);
            if entries.is_empty() {
                return;
            }
            let first = entries[0].seqno;
            let prev_view = self.log.view_at(first.prev()).unwrap_or(ViewId(0));
            self.append_as_sequencer(entries.clone());
            let last = self.log.last_seqno();
            for peer in self.peers() {
                if self
                    .sequencer_state
                    .next
                    .get(&peer)
                    .copied()
                    .unwrap_or(first)
                    != first
                {
                    continue;
                }
                let prepare = Prepare {
                    incarnation: self.incarnation,
                    view: self.view,
                    first_seqno: first,
                    prev_view,
                    entries: entries.clone(),
                    commit_seqno: self.commit_seqno,
                };
                self.sequencer_state.next.insert(peer, last.next());
                self.send(now, peer, Message::Prepare(prepare));
            }
            // With one member the batch commits on its own persistence.
        }
    }

    /// The next batch: at most one reconfiguration, then queued proposals, bounded by
    /// `batch_entries_max` and `batch_bytes_max`.
    fn next_batch(&mut self, now: Time) -> Vec<Entry> {
        let mut entries = Vec::new();
        let mut seqno = self.log.last_seqno();
        let mut bytes = 0;
        if let Some(body) = self.next_reconfiguration(now) {
            seqno = seqno.next();
            bytes += body.size_bytes();
            entries.push(Entry {
                seqno,
                view: self.view,
                body,
            });
        }
        while entries.len() < self.config.batch_entries_max {
            let Some(front) = self.sequencer_state.queue.front() else {
                break;
            };
            let size = EntryBody::size_bytes_of_payload(front.payload.len());
            if !entries.is_empty() && bytes + size > self.config.batch_bytes_max {
                break;
            }
            let Some(proposal) = self.sequencer_state.queue.pop_front() else {
                break;
            };
            bytes += size;
            seqno = seqno.next();
            entries.push(Entry {
                seqno,
                view: self.view,
                body: EntryBody::Proposal(proposal),
            });
        }
        entries
    }

    /// Sends `member` Prepares from its resend point, at most `RETRANSMIT_PREPARES_MAX`.
    /// With `start_view` the first one is a `StartView`.
    pub(super) fn send_prepares(&mut self, now: Time, member: MemberId, start_view: bool) {
        let last = self.log.last_seqno();
        let mut first_message = start_view;
        for _ in 0..RETRANSMIT_PREPARES_MAX {
            let from = self
                .sequencer_state
                .next
                .get(&member)
                .copied()
                .unwrap_or(last.next());
            if from > last && !first_message {
                return;
            }
            let entries = self.log.slice(
                from,
                self.config.batch_entries_max,
                self.config.batch_bytes_max,
            );
            let prepare = Prepare {
                incarnation: self.incarnation,
                view: self.view,
                first_seqno: from,
                prev_view: self.log.view_at(from.prev()).unwrap_or(ViewId(0)),
                commit_seqno: self.commit_seqno,
                entries,
            };
            let sent_to = Seqno(from.0 + prepare.entries.len() as u64);
            self.sequencer_state.next.insert(member, sent_to);
            let msg = if first_message {
                Message::StartView(prepare)
            } else {
                Message::Prepare(prepare)
            };
            first_message = false;
            self.send(now, member, msg);
        }
    }

    /// A member reported a gap or a mismatch: resend from where it matches.
    pub(super) fn on_prepare_nack(&mut self, now: Time, from: MemberId, nack: PrepareNack) {
        if !self.is_sequencer() || nack.view != self.view || !self.peers().contains(&from) {
            return;
        }
        let repeat = self
            .sequencer_state
            .last_nack
            .get(&from)
            .is_some_and(|(seqno, at)| {
                *seqno == nack.match_seqno && now < at.plus(self.config.retransmit_interval)
            });
        if repeat || nack.match_seqno >= self.log.last_seqno() {
            return;
        }
        self.sequencer_state
            .last_nack
            .insert(from, (nack.match_seqno, now));
        self.sequencer_state
            .next
            .insert(from, nack.match_seqno.next());
        self.send_prepares(now, from, false);
    }

    /// Called after an acknowledgement from `member`: keeps a catching-up member fed.
    pub(super) fn on_member_progress(&mut self, now: Time, member: MemberId, ack: Seqno) {
        let previous = self
            .sequencer_state
            .progress
            .get(&member)
            .map_or(Seqno::ZERO, |(seqno, _)| *seqno);
        if ack > previous {
            self.sequencer_state.progress.insert(member, (ack, now));
        }
        let next = self
            .sequencer_state
            .next
            .get(&member)
            .copied()
            .unwrap_or(ack.next());
        if next <= ack {
            self.sequencer_state.next.insert(member, ack.next());
        }
        if ack.next() >= next && next <= self.log.last_seqno() {
            self.send_prepares(now, member, false);
        }
    }

    /// After the commit point moved: free pipeline slots, order more, and tell members
    /// the new commit point at once if no Prepare carried it.
    pub(super) fn on_sequencer_commit(&mut self, now: Time, previous_commit: Seqno) {
        while self
            .sequencer_state
            .inflight
            .front()
            .is_some_and(|last| *last <= self.commit_seqno)
        {
            self.sequencer_state.inflight.pop_front();
        }
        let sent_before = self.commands.len();
        self.order_pending(now);
        let sent_prepare = self
            .commands
            .range(sent_before..)
            .any(|c| matches!(c, Command::Send { .. }));
        if !sent_prepare && self.commit_seqno > previous_commit {
            let commit = Message::Commit(Commit {
                incarnation: self.incarnation,
                view: self.view,
                commit_seqno: self.commit_seqno,
            });
            self.broadcast(now, &commit);
        }
    }

    /// Retransmission: members that made no progress for `retransmit_interval` are
    /// resent from their acknowledgement.
    pub(super) fn sequencer_tick(&mut self, now: Time) {
        if !self.is_sequencer() {
            return;
        }
        let last = self.log.last_seqno();
        for peer in self.peers() {
            let ack = self.acks.get(&peer).copied().unwrap_or(Seqno::ZERO);
            if ack >= last {
                continue;
            }
            let since = self
                .sequencer_state
                .progress
                .get(&peer)
                .map_or(Time(0), |(_, at)| *at);
            if now >= since.plus(self.config.retransmit_interval) {
                self.sequencer_state.progress.insert(peer, (ack, now));
                self.sequencer_state.next.insert(peer, ack.next());
                self.send_prepares(now, peer, ack == Seqno::ZERO);
            }
        }
        self.order_pending(now);
    }
}

impl EntryBody {
    /// Size a proposal entry with a payload of `payload_len` bytes counts.
    pub(super) fn size_bytes_of_payload(payload_len: usize) -> usize {
        EntryBody::ViewStart.size_bytes() + payload_len
    }
}
