//! Membership: join, leave and expel as ordered `Reconfigure` entries.
//!
//! One change at a time (the Raft dissertation's single-server change): the sequencer
//! orders a `Reconfigure` only when the previous one is committed and its own view's
//! `ViewStart` entry is committed. A configuration counts for quorums as soon as it is
//! appended. A joiner asks any seed; a member that is not the sequencer forwards the
//! request. The joiner catches up through the sequencer's normal resending from the
//! end of its (empty) log. This module must never count quorums or deliver.

use super::constants::{MEMBERS_MAX, PENDING_RECONFIGURATIONS_MAX};
use super::entry::{ConfigChange, Entry, EntryBody};
use super::message::{JoinRefusal, JoinRefused, JoinRequest, LeaveRequest, Message, NotMember};
use super::types::{MemberId, MemberState, Time};
use super::{Command, Gcs, Status};

/// What the delivery of one entry means for this member, noted before it is handed out.
pub(super) enum DeliveryNote {
    /// Nothing beyond delivery.
    Nothing,
    /// One of this member's own proposals, with its counter.
    OwnProposal(u64),
    /// A new configuration.
    Reconfigure(Vec<MemberId>, ConfigChange),
}

impl Gcs {
    /// Sends a join request to the seeds and to every member of the last two
    /// configurations in the log.
    pub(super) fn ask_to_rejoin(&mut self) {
        let mut targets: Vec<MemberId> = self.seeds.clone();
        targets.extend_from_slice(self.log.config());
        targets.extend_from_slice(self.log.previous_config());
        targets.sort_unstable();
        targets.dedup();
        targets.retain(|target| *target != self.me);
        let seeds = std::mem::replace(&mut self.seeds, targets);
        self.send_join_requests();
        self.seeds = seeds;
    }

    pub(super) fn send_join_requests(&mut self) {
        let request = JoinRequest {
            incarnation: self.incarnation,
            joiner: self.me,
            joiner_incarnation: self.incarnation,
            group_name: self.config.group_name,
            version: self.config.version,
        };
        for seed in self.seeds.clone() {
            self.emit(Command::Send {
                to: seed,
                msg: Message::JoinRequest(request),
            });
        }
    }

    /// A join request, from the joiner or forwarded by a member.
    pub(super) fn on_join_request(&mut self, now: Time, _from: MemberId, request: JoinRequest) {
        let refusal = if request.group_name != self.config.group_name {
            Some(JoinRefusal::WrongGroup)
        } else if request.version < self.config.version {
            Some(JoinRefusal::IncompatibleVersion)
        } else if self.log.config().len() >= MEMBERS_MAX
            && !self.log.config().contains(&request.joiner)
        {
            Some(JoinRefusal::GroupFull)
        } else {
            None
        };
        if let Some(reason) = refusal {
            let refused = Message::JoinRefused(JoinRefused {
                incarnation: self.incarnation,
                reason,
            });
            self.send(now, request.joiner, refused);
            return;
        }
        if self.is_sequencer() && self.log.config().contains(&request.joiner) {
            // Already a member (its join request crossed its join, or it restarted
            // empty): show it the view.
            self.sequencer_state
                .next
                .insert(request.joiner, self.commit_seqno.next());
            self.send_prepares(now, request.joiner, true);
        } else if self.is_sequencer() {
            self.request_reconfiguration(now, ConfigChange::Join(request.joiner));
        } else if let (Status::Normal, Some(sequencer)) = (self.status, self.sequencer) {
            let forwarded = JoinRequest {
                incarnation: self.incarnation,
                ..request
            };
            self.send(now, sequencer, Message::JoinRequest(forwarded));
        }
    }

    /// A joiner refused for its group name or version stops: joining again with the
    /// same settings cannot work. A full group may shrink (an expel, a leave), so a
    /// joiner refused for that keeps asking.
    pub(super) fn on_join_refused(&mut self, refused: JoinRefused) {
        if self.status == Status::Joining && refused.reason != JoinRefusal::GroupFull {
            self.stop(MemberState::Error);
        }
    }

    pub(super) fn send_leave_request(&mut self, now: Time) {
        if self.is_sequencer() {
            self.request_reconfiguration(now, ConfigChange::Leave(self.me));
        } else if let (Status::Normal, Some(sequencer)) = (self.status, self.sequencer) {
            let msg = Message::LeaveRequest(LeaveRequest {
                incarnation: self.incarnation,
            });
            self.send(now, sequencer, msg);
        }
    }

    pub(super) fn on_leave_request(&mut self, now: Time, from: MemberId) {
        if self.is_sequencer() && self.log.config().contains(&from) {
            self.request_reconfiguration(now, ConfigChange::Leave(from));
        }
    }

    /// Queues a membership change (once) and orders it when allowed.
    pub(super) fn request_reconfiguration(&mut self, now: Time, change: ConfigChange) {
        let needed = match change {
            ConfigChange::Join(member) => !self.log.config().contains(&member),
            ConfigChange::Leave(member) | ConfigChange::Expel(member) => {
                self.log.config().contains(&member)
            }
            ConfigChange::Bootstrap(_) => false,
        };
        let queue = &mut self.sequencer_state.reconfigurations;
        if needed && !queue.contains(&change) && queue.len() < PENDING_RECONFIGURATIONS_MAX {
            queue.push_back(change);
        }
        self.order_pending(now);
    }

    /// Whether a reconfiguration may be ordered now: the previous one and this view's
    /// first entry are committed.
    fn may_reconfigure(&self) -> bool {
        let view_started = self
            .view_start_seqno
            .is_some_and(|start| start <= self.commit_seqno);
        view_started && self.log.config_seqno() <= self.commit_seqno
    }

    /// The body of the next reconfiguration to order, if one is due and allowed.
    pub(super) fn next_reconfiguration(&mut self, now: Time) -> Option<EntryBody> {
        if !self.may_reconfigure() {
            return None;
        }
        let mut deferred = Vec::new();
        let mut chosen = None;
        while let Some(change) = self.sequencer_state.reconfigurations.pop_front() {
            let mut members = self.log.config().to_vec();
            match change {
                ConfigChange::Join(member)
                    if !members.contains(&member) && members.len() < MEMBERS_MAX =>
                {
                    members.push(member);
                    members.sort_unstable();
                }
                ConfigChange::Leave(member) | ConfigChange::Expel(member)
                    if members.contains(&member) && members.len() > 1 =>
                {
                    members.retain(|m| *m != member);
                    // A removal must leave a configuration whose majority is reachable
                    // now, or nothing could commit after it (not even the removal).
                    if !self.reachable_majority(&members, now) {
                        deferred.push(change);
                        continue;
                    }
                }
                _ => continue,
            }
            chosen = Some(EntryBody::Reconfigure { members, change });
            break;
        }
        self.sequencer_state.reconfigurations.extend(deferred);
        chosen
    }

    /// Whether a majority of `members` is this member or not suspected.
    fn reachable_majority(&mut self, members: &[MemberId], now: Time) -> bool {
        let mut reachable = 0;
        for member in members {
            let silent = self.failure_detector.silent_for(*member, now);
            if *member == self.me || silent < self.config.suspicion_timeout {
                reachable += 1;
            }
        }
        reachable > members.len() / 2
    }

    pub(super) fn delivery_note(&self, entry: &Entry) -> DeliveryNote {
        match &entry.body {
            EntryBody::Proposal(p)
                if p.id.origin == self.me && p.id.incarnation == self.incarnation =>
            {
                DeliveryNote::OwnProposal(p.id.counter)
            }
            EntryBody::Reconfigure { members, change } => {
                DeliveryNote::Reconfigure(members.clone(), *change)
            }
            _ => DeliveryNote::Nothing,
        }
    }

    pub(super) fn on_delivered(&mut self, now: Time, note: DeliveryNote) {
        match note {
            DeliveryNote::Nothing => {}
            DeliveryNote::OwnProposal(counter) => self.on_own_delivered(counter),
            DeliveryNote::Reconfigure(members, change) => {
                self.on_reconfigured(now, &members, change);
            }
        }
    }

    /// A configuration was delivered: show it, and act if it concerns this member or
    /// removed the sequencer.
    fn on_reconfigured(&mut self, now: Time, members: &[MemberId], change: ConfigChange) {
        let (member, state) = match change {
            ConfigChange::Bootstrap(m) | ConfigChange::Join(m) => (m, MemberState::Online),
            ConfigChange::Leave(m) | ConfigChange::Expel(m) => (m, MemberState::Offline),
        };
        if let Some(sequencer) = self.sequencer {
            self.emit(Command::ViewInstalled {
                view: self.view,
                members: members.to_vec(),
                sequencer,
            });
        }
        if member == self.me {
            // A member that is not ONLINE (restarted, joining, rejoining) is replaying
            // history it was part of: an old removal is not news; `check_online`
            // decides when it is caught up. An ONLINE member acts on its removal.
            let news = self.own_state == MemberState::Online;
            match change {
                ConfigChange::Leave(_) if news || self.leaving => {
                    return self.stop(MemberState::Offline)
                }
                // Expelled while alive: ask to join again, as Group Replication's
                // auto-rejoin does. Views go on without this member until it is back.
                ConfigChange::Expel(_) if news => self.start_rejoin(),
                _ => {}
            }
        } else {
            self.emit(Command::MemberStateChanged { member, state });
            self.failure_detector.heard(member, now);
        }
        let sequencer_removed = self.sequencer.is_some_and(|s| !members.contains(&s));
        if sequencer_removed && self.status == Status::Normal {
            // The sequencer left the configuration: move to the next view at once.
            self.vote_for_view(now, self.view.next());
        }
    }

    /// A member that is not in the sequencer's configuration still talks to it as a member: tell it, so it rejoins. Only the sequencer
    /// answers: its log is the newest of its view, so a member missing from it is not
    /// a member, while a follower may simply not have received a join yet. Returns
    /// whether the message was answered that way (and so is not processed further).
    pub(super) fn reply_if_removed(&mut self, now: Time, from: MemberId, msg: &Message) -> bool {
        if self.status != Status::Normal
            || matches!(
                msg,
                Message::JoinRequest(_) | Message::NotMember(_) | Message::JoinRefused(_)
            )
        {
            return false;
        }
        // A Prepare of this view or a newer one comes from a sequencer (a joiner hears
        // one before its log names anyone): it must get through, so that we follow.
        let newer_prepare =
            matches!(msg, Message::Prepare(p) | Message::StartView(p) if p.view >= self.view);
        if self.log.config().contains(&from) || newer_prepare {
            return false;
        }
        // A sender in a newer view than ours belongs to a majority that moved on without
        // us: a sequencer cut off from it may have removed a member that majority kept
        // (the removal can never commit), and the sender ignores a notice of an older
        // view anyway.
        let sender_not_ahead = msg.view().is_none_or(|view| view <= self.view);
        // A follower answers too (a former member may no longer know the sequencer),
        // but only when its own configuration is committed, it holds every entry it
        // knows to be committed, and the sender is not ahead of it: then the sender is
        // not a member whose join it has yet to receive.
        let follower_sure = !self.log.config().is_empty()
            && self.sequencer != Some(from)
            && self.log.config_seqno() <= self.commit_seqno
            && self.commit_known <= self.commit_seqno
            && msg.view().is_some();
        if !sender_not_ahead || (!self.is_sequencer() && !follower_sure) {
            return false;
        }
        let notices = &mut self.sequencer_state.not_member_sent;
        if notices
            .get(&from)
            .is_some_and(|at| now < at.plus(self.config.heartbeat_interval))
        {
            return true;
        }
        if notices.len() >= PENDING_RECONFIGURATIONS_MAX {
            notices.clear();
        }
        notices.insert(from, now);
        let reply = Message::NotMember(NotMember {
            incarnation: self.incarnation,
            view: self.view,
        });
        self.send(now, from, reply);
        true
    }

    /// A member of some view says we are not in its configuration: our join was lost in
    /// a view change, or we were removed while away. A member that asked to leave goes
    /// OFFLINE. A notice of a view older than ours is ignored: a majority of our
    /// configuration entered our view, so its sender is behind and may lack the entry
    /// that let us in (a sequencer cut off from that majority may even have removed us
    /// without that removal ever committing). Otherwise the member joins again, keeping
    /// its log (the sequencer's resending reconciles it like any stale log).
    pub(super) fn on_not_member(&mut self, from: MemberId, notice: NotMember) {
        if self.status == Status::Joining || (self.is_sequencer() && notice.view <= self.view) {
            return;
        }
        if self.leaving {
            return self.stop(MemberState::Offline);
        }
        if notice.view < self.view {
            return;
        }
        let mut seeds: Vec<MemberId> = self.log.config().to_vec();
        seeds.extend_from_slice(self.log.previous_config());
        seeds.push(from);
        seeds.sort_unstable();
        seeds.dedup();
        seeds.retain(|seed| *seed != self.me);
        self.seeds = seeds;
        // Between views, not joining: if the notice was stale (a follower that had not
        // yet received our join), we are still a member and must keep voting; if it was
        // true, members ignore our votes and the join requests get us back in.
        self.status = Status::ViewChange;
        self.sequencer = None;
        self.start_rejoin();
    }

    /// Asks to be let in again, every `join_retry_interval`, until a configuration
    /// naming this member is delivered.
    fn start_rejoin(&mut self) {
        if self.leaving {
            // It asked to leave: being removed, however, is what it wanted.
            return self.stop(MemberState::Offline);
        }
        if self.seeds.is_empty() {
            self.seeds = self
                .log
                .config()
                .iter()
                .chain(self.log.previous_config())
                .copied()
                .collect();
            self.seeds.sort_unstable();
            self.seeds.dedup();
            self.seeds.retain(|seed| *seed != self.me);
        }
        self.rejoining = true;
        self.set_own_state(MemberState::Recovering);
        self.send_join_requests();
    }
}
