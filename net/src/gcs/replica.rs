//! Every member's side of the normal case: appending Prepares, acknowledging durable
//! prefixes, computing the commit point from acknowledgements, and delivering.
//!
//! A member appends a batch only if the entry before it matches its log (or lies in
//! the prefix already known to match the sequencer's log of this view). A conflicting
//! stale suffix (entries of an older view that the new sequencer does not have) is
//! truncated at the first conflict. The commit point is the highest seqno durable on a
//! majority of the configuration, counted only from acknowledgements of the current
//! view and only at or after the view's first entry. This module must never order
//! entries; only the sequencer does.

use super::constants::MEMBERS_MAX;
use super::entry::Entry;
use super::message::{Message, Prepare, PrepareNack, PrepareOk};
use super::types::{MemberId, MemberState, Seqno, Time, ViewId};
use super::{Command, Gcs, Status};

/// Whether a batch is well formed: contiguous from `first_seqno` (at least 1), with
/// views that never decrease, start at or after `prev_view` and never exceed `view`.
fn batch_is_well_formed(prepare: &Prepare) -> bool {
    if prepare.first_seqno == Seqno::ZERO || prepare.prev_view > prepare.view {
        return false;
    }
    let mut view = prepare.prev_view;
    for (offset, entry) in prepare.entries.iter().enumerate() {
        if entry.seqno.0 != prepare.first_seqno.0 + offset as u64
            || entry.view < view
            || entry.view > prepare.view
        {
            return false;
        }
        view = entry.view;
    }
    true
}

impl Gcs {
    /// Handles a Prepare or a `StartView` (the first Prepare of a view).
    pub(super) fn on_prepare(&mut self, now: Time, from: MemberId, prepare: &Prepare) {
        if prepare.view < self.view || !batch_is_well_formed(prepare) {
            return;
        }
        let adopt = prepare.view > self.view || self.status != Status::Normal;
        if !adopt && self.sequencer != Some(from) {
            return;
        }
        if adopt {
            self.adopt_view(now, prepare.view, from);
        }
        self.sequencer_heard = now;
        if self.amnesiac && self.amnesia_target.is_none() {
            self.amnesia_target = Some(prepare.commit_seqno);
        }
        let prev = prepare.first_seqno.prev();
        let matches = prev <= self.matched_seqno
            || (prev <= self.log.last_seqno() && self.log.view_at(prev) == Some(prepare.prev_view));
        if !matches {
            self.report_gap(now, from);
            return;
        }
        if !self.merge_entries(&prepare.entries) {
            return;
        }
        let end = Seqno(prev.0 + prepare.entries.len() as u64);
        self.matched_seqno = self.matched_seqno.max(end);
        self.learn_commit(now, prepare.commit_seqno);
        let acked_before = self.ack_sent;
        self.acknowledge(now);
        if self.ack_sent == acked_before && self.ack_sent >= end && !prepare.entries.is_empty() {
            // A resend of what we already acknowledged: our PrepareOk was lost.
            self.reacknowledge(now, from);
        }
    }

    fn reacknowledge(&mut self, now: Time, sequencer: MemberId) {
        if self.status != Status::Normal || self.amnesiac || self.ack_sent == Seqno::ZERO {
            return;
        }
        let ok = PrepareOk {
            incarnation: self.incarnation,
            view: self.view,
            seqno: self.ack_sent,
        };
        self.send(now, sequencer, Message::PrepareOk(ok));
    }

    /// Enters `view` as a follower of `sequencer`, the sender of one of its Prepares.
    /// Only the member that gathered a majority of `DoViewChange` for a view sends
    /// Prepares in it, so the sender is that view's sequencer.
    fn adopt_view(&mut self, now: Time, view: ViewId, sequencer: MemberId) {
        let was_joining = self.status == Status::Joining;
        self.view = view;
        // The committed prefix matches the log of every later view.
        self.matched_seqno = self.commit_seqno;
        self.become_normal(now, sequencer);
        if was_joining {
            self.seeds.clear();
        }
        self.check_online();
    }

    /// Asks the sequencer to resend from the point where this log surely matches.
    fn report_gap(&mut self, now: Time, sequencer: MemberId) {
        if now < self.last_nack.plus(self.config.retransmit_interval) && self.last_nack != Time(0) {
            return;
        }
        self.last_nack = now;
        let nack = PrepareNack {
            incarnation: self.incarnation,
            view: self.view,
            match_seqno: self.matched_seqno,
        };
        self.send(now, sequencer, Message::PrepareNack(nack));
    }

    /// Appends `entries` (already checked to follow a matching entry), truncating a
    /// conflicting suffix first. Returns false, changing nothing, if the batch would
    /// overwrite a committed entry: only a faulty peer sends that.
    pub(super) fn merge_entries(&mut self, entries: &[Entry]) -> bool {
        let conflict = entries.iter().find(|entry| {
            entry.seqno <= self.log.last_seqno()
                && self.log.view_at(entry.seqno) != Some(entry.view)
        });
        if let Some(conflict) = conflict {
            if conflict.seqno <= self.commit_seqno || conflict.seqno <= self.delivered_seqno {
                return false;
            }
            self.truncate_log(conflict.seqno.prev());
        }
        let mut appended = Vec::new();
        for entry in entries {
            if entry.seqno <= self.log.last_seqno() {
                continue;
            }
            if entry.seqno != self.log.last_seqno().next() {
                break;
            }
            self.log.append(entry.clone());
            if self.view_start_seqno.is_none() && entry.view == self.view {
                self.view_start_seqno = Some(entry.seqno);
            }
            appended.push(entry.clone());
        }
        if !appended.is_empty() {
            self.emit(Command::PersistEntries {
                view: self.view,
                entries: appended,
            });
        }
        true
    }

    /// Cuts the log after `after`, durably, before anything else happens.
    pub(super) fn truncate_log(&mut self, after: Seqno) {
        assert!(
            after >= self.delivered_seqno,
            "a delivered entry is never truncated"
        );
        self.emit(Command::TruncateLog { after });
        self.log.truncate_after(after);
        // The shell made every earlier write durable before truncating.
        self.persisted_seqno = after;
        self.matched_seqno = self.matched_seqno.min(after);
        self.commit_seqno = self.commit_seqno.min(after);
        if self.view_start_seqno.is_some_and(|start| start > after) {
            self.view_start_seqno = None;
        }
    }

    /// Sends `PrepareOk` to every member when the durable matching prefix grew.
    pub(super) fn acknowledge(&mut self, now: Time) {
        if self.status != Status::Normal {
            return;
        }
        if self.amnesiac {
            match self.amnesia_target {
                Some(target) if self.matched_seqno >= target && self.persisted_seqno >= target => {
                    self.amnesiac = false;
                }
                _ => return,
            }
        }
        let ack = self.persisted_seqno.min(self.matched_seqno);
        if ack <= self.ack_sent {
            return;
        }
        self.ack_sent = ack;
        self.acks.insert(self.me, ack);
        let ok = Message::PrepareOk(PrepareOk {
            incarnation: self.incarnation,
            view: self.view,
            seqno: ack,
        });
        self.broadcast(now, &ok);
        self.recompute_commit(now);
    }

    /// Records another member's acknowledgement of the current view.
    pub(super) fn on_prepare_ok(&mut self, now: Time, from: MemberId, ok: PrepareOk) {
        if self.status != Status::Normal || ok.view != self.view {
            return;
        }
        let known = self.acks.entry(from).or_insert(Seqno::ZERO);
        if ok.seqno > *known {
            *known = ok.seqno;
        }
        if self.is_sequencer() {
            self.on_member_progress(now, from, ok.seqno);
        }
        self.recompute_commit(now);
    }

    /// A commit point heard from a member (bare Commit or Heartbeat). A commit point of
    /// view `view` is valid here only if `view` is not newer than the view this
    /// member's matching prefix belongs to: entries committed in an older view are in
    /// every later view's log, but a newer view may have replaced what this member
    /// holds beyond its own commit point.
    pub(super) fn on_commit(
        &mut self,
        now: Time,
        from: MemberId,
        view: ViewId,
        commit_seqno: Seqno,
    ) {
        if self.status == Status::Joining
            || !self.log.config().contains(&from)
            || view > self.last_normal_view
        {
            return;
        }
        self.learn_commit(now, commit_seqno);
    }

    /// Commit point = highest seqno acknowledged by a majority of the configuration in
    /// effect at this member's matching prefix, if it is an entry of the current view.
    pub(super) fn recompute_commit(&mut self, now: Time) {
        let Some(view_start) = self.view_start_seqno else {
            return;
        };
        let config = self.log.config_at(self.matched_seqno);
        if config.is_empty() || config.len() > MEMBERS_MAX {
            return;
        }
        let mut acked = [Seqno::ZERO; MEMBERS_MAX];
        for (slot, member) in acked.iter_mut().zip(config) {
            *slot = self.acks.get(member).copied().unwrap_or(Seqno::ZERO);
        }
        let acked = &mut acked[..config.len()];
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = acked[config.len() / 2];
        if candidate >= view_start {
            self.learn_commit(now, candidate);
        }
    }

    /// Raises the known commit point and delivers what became committed here.
    pub(super) fn learn_commit(&mut self, now: Time, commit_seqno: Seqno) {
        if commit_seqno > self.commit_known {
            self.commit_known = commit_seqno;
        }
        let commit = self.commit_known.min(self.matched_seqno);
        if commit <= self.commit_seqno {
            return;
        }
        let previous = self.commit_seqno;
        self.commit_seqno = commit;
        self.deliver(now);
        if self.is_sequencer() {
            self.on_sequencer_commit(now, previous);
        }
    }

    /// Delivers committed entries strictly in seqno order.
    pub(super) fn deliver(&mut self, now: Time) {
        while self.delivered_seqno < self.commit_seqno && self.status != Status::Stopped {
            let seqno = self.delivered_seqno.next();
            let Some(entry) = self.log.get(seqno).cloned() else {
                return;
            };
            self.delivered_seqno = seqno;
            let note = self.delivery_note(&entry);
            self.emit(Command::Deliver { seqno, entry });
            self.on_delivered(now, note);
        }
        self.check_online();
    }

    /// A joining, rejoining or restarted member is ONLINE once it has delivered every
    /// membership change its log holds and the last one names it.
    pub(super) fn check_online(&mut self) {
        // Caught up with every membership change in the log, and named by the last one.
        let caught_up = self.delivered_seqno >= self.log.config_seqno();
        let named = self.log.config_at(self.delivered_seqno).contains(&self.me);
        if self.own_state == MemberState::Recovering
            && self.status == Status::Normal
            && caught_up
            && named
        {
            self.rejoining = false;
            self.set_own_state(MemberState::Online);
        }
    }
}
