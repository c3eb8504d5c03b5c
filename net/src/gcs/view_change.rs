//! View change, in the style of Viewstamped Replication Revisited.
//!
//! ```text
//!  suspect sequencer --> StartViewChange{v+1, committed: false}  (a vote; still in v)
//!  votes of a majority --> persist view v+1, stop accepting view v,
//!                          StartViewChange{v+1, committed: true} to all,
//!                          DoViewChange{v+1, last view, last seqno, commit} --> S(v+1)
//!  S(v+1): DoViewChange from a majority --> best log = max (last view, last seqno)
//!          LogRequest/LogChunk: fetch the best log from own commit point on
//!          --> ViewStart entry --> StartView to everyone
//! ```
//!
//! A vote is ignored while its receiver is in normal status and heard its sequencer
//! within `suspicion_timeout` (Raft's `PreVote` lesson): one badly connected member
//! cannot move the group. A committed `StartViewChange` is proof that a majority voted,
//! so it moves its receiver regardless. The view number is persisted before a member
//! answers with `DoViewChange`. An amnesiac member neither votes nor sends `DoViewChange`.
//! This module must never append entries of the normal case.

use std::collections::{BTreeMap, BTreeSet};

use super::constants::{HAND_OVER_VIEWS_MAX, LOG_CHUNK_ENTRIES_MAX};
use super::message::{DoViewChange, LogChunk, LogRequest, Message, StartViewChange};
use super::types::{MemberId, Seqno, Time, ViewId};
use super::{Gcs, Status};

/// The log the new sequencer is fetching: from whom, and what it must end up equal to.
#[derive(Clone, Copy, Debug)]
pub(super) struct Fetch {
    from: MemberId,
    last_view: ViewId,
    last_seqno: Seqno,
}

/// Votes and view-change progress.
#[derive(Debug)]
pub(super) struct ViewChangeState {
    /// The view the votes are for.
    pub(super) vote_view: ViewId,
    /// Members that voted for `vote_view` (bounded by the configuration).
    pub(super) votes: BTreeSet<MemberId>,
    /// When this member entered view-change status (or started joining).
    pub(super) started_at: Time,
    /// `DoViewChange` messages received for the current view.
    pub(super) dvcs: BTreeMap<MemberId, DoViewChange>,
    /// A fetch of the best log in progress.
    fetch: Option<Fetch>,
}

impl ViewChangeState {
    pub(super) fn new(now: Time) -> ViewChangeState {
        ViewChangeState {
            vote_view: ViewId(0),
            votes: BTreeSet::new(),
            started_at: now,
            dvcs: BTreeMap::new(),
            fetch: None,
        }
    }

    pub(super) fn reset(&mut self, now: Time) {
        *self = ViewChangeState::new(now);
    }
}

/// The sequencer of `view` under `members`: the member with the highest
/// `score(view, member)` (rendezvous hashing).
///
/// Members whose latest configurations differ by one uncommitted change (one member
/// added or removed) name the same sequencer unless that very member wins, so a view
/// change rarely splits its `DoViewChange` messages between two candidates; plain round
/// robin over differently sized lists would split them for most views. A different
/// view gives a different winner, so a dead sequencer is skipped by the next view.
pub fn sequencer_of(view: ViewId, members: &[MemberId]) -> Option<MemberId> {
    members
        .iter()
        .copied()
        .max_by_key(|member| (score(view, *member), *member))
}

/// A well-mixed 64-bit function of (view, member): splitmix64 finalizers.
fn score(view: ViewId, member: MemberId) -> u64 {
    fn mix(mut x: u64) -> u64 {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
    let member_bits = mix(member.0 as u64) ^ mix((member.0 >> 64) as u64 ^ 0x5555_5555_5555_5555);
    mix(view.0 ^ mix(member_bits))
}

fn majority_of(members: &[MemberId], voters: impl Iterator<Item = MemberId>) -> bool {
    let count = voters.filter(|voter| members.contains(voter)).count();
    !members.is_empty() && count > members.len() / 2
}

impl Gcs {
    fn start_view_change_message(&self, view: ViewId, committed: bool) -> Message {
        Message::StartViewChange(StartViewChange {
            incarnation: self.incarnation,
            view,
            committed,
        })
    }

    /// Votes for `view` (this member wants it) and moves if a majority agrees.
    pub(super) fn vote_for_view(&mut self, now: Time, view: ViewId) {
        if self.amnesiac || view <= self.view {
            return;
        }
        if view > self.view_change.vote_view {
            self.view_change.vote_view = view;
            self.view_change.votes.clear();
        }
        self.view_change.votes.insert(self.me);
        let vote = self.start_view_change_message(view, false);
        self.broadcast(now, &vote);
        self.check_votes(now);
    }

    fn check_votes(&mut self, now: Time) {
        let votes = self.view_change.votes.iter().copied();
        if majority_of(self.log.config(), votes) {
            self.start_view_change(now, self.view_change.vote_view);
        }
    }

    pub(super) fn on_start_view_change(&mut self, now: Time, from: MemberId, svc: StartViewChange) {
        if self.status == Status::Joining {
            self.on_start_view_change_while_joining(now, from, svc);
            return;
        }
        if !self.log.config().contains(&from) || svc.view < self.view {
            return;
        }
        if svc.view == self.view {
            if self.status == Status::ViewChange && !svc.committed {
                let reply = self.start_view_change_message(self.view, true);
                self.send(now, from, reply);
            }
            return;
        }
        if svc.committed {
            self.start_view_change(now, svc.view);
            return;
        }
        // A vote for a view beyond the next one shows that a majority already entered a
        // view newer than ours (votes are only for the view after the voter's own, and
        // echoes carry them on): ours is over even if its sequencer still works, as a
        // sequencer cut off from that majority does until it learns so.
        let view_passed = svc.view > self.view.next();
        if self.status == Status::Normal && !view_passed && !self.sequencer_suspected(now) {
            return;
        }
        if svc.view > self.view_change.vote_view {
            self.view_change.vote_view = svc.view;
            self.view_change.votes.clear();
        }
        if svc.view == self.view_change.vote_view {
            self.view_change.votes.insert(from);
            if self.view_change.votes.contains(&self.me) || self.amnesiac {
                self.check_votes(now);
            } else {
                self.vote_for_view(now, svc.view);
            }
        }
    }

    /// Whether the current view is one this member may have entered before its last
    /// restart. It may have sent `DoViewChange` for it, or even been its sequencer and
    /// ordered entries that its disk lost; so it neither sends `DoViewChange` for it
    /// nor leads it again. It follows a sequencer of it, or moves to a newer view.
    fn view_used_before_restart(&self) -> bool {
        self.restart_view
            .is_some_and(|restart_view| self.view <= restart_view)
    }

    /// A member whose log is empty may already be in the configuration (its join was
    /// appended, and it crashed before persisting anything). It cannot count votes, but
    /// members that list it may need its vote: it echoes a vote to its sender, and
    /// answers a committed view change with `DoViewChange` (an empty log) to its sender,
    /// once per view, after persisting the view. It never acknowledged anything, so its
    /// empty log is the truth, and the receiver counts it only if its configuration
    /// names this member.
    fn on_start_view_change_while_joining(
        &mut self,
        now: Time,
        from: MemberId,
        svc: StartViewChange,
    ) {
        if !self.log.config().is_empty() || svc.view <= self.view {
            return;
        }
        if !svc.committed {
            let vote = self.start_view_change_message(svc.view, false);
            self.send(now, from, vote);
            return;
        }
        self.view = svc.view;
        self.persist_meta();
        let dvc = self.own_do_view_change();
        self.send(now, from, Message::DoViewChange(dvc));
    }

    /// Moves to `view`: persists it, announces it and sends `DoViewChange`.
    pub(super) fn start_view_change(&mut self, now: Time, view: ViewId) {
        self.status = Status::ViewChange;
        self.view = view;
        self.sequencer = None;
        self.acks.clear();
        self.view_change.reset(now);
        self.persist_meta();
        let announce = self.start_view_change_message(view, true);
        self.broadcast(now, &announce);
        self.send_do_view_change(now);
    }

    fn own_do_view_change(&self) -> DoViewChange {
        DoViewChange {
            incarnation: self.incarnation,
            view: self.view,
            last_view: self.log.last_view(),
            last_seqno: self.log.last_seqno(),
            commit_seqno: self.commit_seqno,
        }
    }

    fn send_do_view_change(&mut self, now: Time) {
        if self.amnesiac || self.view_used_before_restart() {
            return;
        }
        let Some(target) = self.view_candidate() else {
            return;
        };
        if target == self.me {
            self.try_complete_view_change(now);
        } else {
            self.backed = Some((self.view, target));
            let dvc = self.own_do_view_change();
            self.send(now, target, Message::DoViewChange(dvc));
        }
    }

    pub(super) fn on_do_view_change(&mut self, now: Time, from: MemberId, dvc: DoViewChange) {
        // A member whose log names no configuration (a joiner not caught up) cannot
        // judge a majority, and one from outside our configuration cannot count.
        let config = self.log.config();
        if self.amnesiac
            || self.status == Status::Joining
            || dvc.view < self.view
            || !config.contains(&from)
        {
            return;
        }
        if dvc.view > self.view || self.status == Status::Normal {
            if dvc.view == self.view {
                return;
            }
            // The sender already moved: a majority voted for that view.
            self.start_view_change(now, dvc.view);
        }
        self.view_change.dvcs.insert(from, dvc);
        self.try_complete_view_change(now);
    }

    /// With `DoViewChange` from a majority: fetch the best log if this member lacks it,
    /// then take over.
    fn try_complete_view_change(&mut self, now: Time) {
        if self.status != Status::ViewChange
            || self.view_change.fetch.is_some()
            || self.view_used_before_restart()
            || self.backs_another()
        {
            return;
        }
        let voters = self
            .view_change
            .dvcs
            .keys()
            .copied()
            .chain(std::iter::once(self.me));
        if !majority_of(self.log.config(), voters) {
            return;
        }
        let own = (self.log.last_view(), self.log.last_seqno());
        let best = self
            .view_change
            .dvcs
            .iter()
            .map(|(member, dvc)| ((dvc.last_view, dvc.last_seqno), *member))
            .max();
        if let Some((key, member)) = best.filter(|(key, _)| *key > own) {
            self.view_change.fetch = Some(Fetch {
                from: member,
                last_view: key.0,
                last_seqno: key.1,
            });
            self.request_log(now);
            return;
        }
        self.finish_view_change(now);
    }

    fn request_log(&mut self, now: Time) {
        let Some(fetch) = self.view_change.fetch else {
            return;
        };
        let from = self.commit_seqno.min(self.log.last_seqno()).next();
        let request = LogRequest {
            incarnation: self.incarnation,
            view: self.view,
            from,
        };
        self.send(now, fetch.from, Message::LogRequest(request));
    }

    /// Whether this member backs another member as sequencer of the current view (it
    /// sent it `DoViewChange`, or followed its `StartView`): then it never leads it.
    fn backs_another(&self) -> bool {
        self.backed
            .is_some_and(|(view, backed)| view == self.view && backed != self.me)
    }

    /// Becomes sequencer if the adopted log's configuration names this member for the
    /// view, a majority of that configuration sent `DoViewChange`, and this member did
    /// not send its own `DoViewChange` for the view to another member.
    fn finish_view_change(&mut self, now: Time) {
        let config = self.log.config();
        if self.backs_another() || sequencer_of(self.view, config) != Some(self.me) {
            return;
        }
        let voters = self
            .view_change
            .dvcs
            .keys()
            .copied()
            .chain(std::iter::once(self.me));
        if majority_of(config, voters) {
            self.become_sequencer(now);
        }
    }

    /// Serves a new sequencer's fetch, only while this log is frozen in that view.
    pub(super) fn on_log_request(&mut self, from: MemberId, request: LogRequest) {
        if self.status != Status::ViewChange
            || request.view != self.view
            || request.from == Seqno::ZERO
        {
            return;
        }
        let chunk = LogChunk {
            incarnation: self.incarnation,
            view: self.view,
            first_seqno: request.from,
            prev_view: self.log.view_at(request.from.prev()).unwrap_or(ViewId(0)),
            entries: self.log.slice(
                request.from,
                LOG_CHUNK_ENTRIES_MAX,
                self.config.batch_bytes_max,
            ),
            last_view: self.log.last_view(),
            last_seqno: self.log.last_seqno(),
        };
        if request.from > self.log.last_seqno().next() {
            return;
        }
        self.emit(super::Command::Send {
            to: from,
            msg: Message::LogChunk(chunk),
        });
    }

    pub(super) fn on_log_chunk(&mut self, now: Time, from: MemberId, chunk: &LogChunk) {
        let Some(fetch) = self.view_change.fetch else {
            return;
        };
        if self.status != Status::ViewChange || chunk.view != self.view || fetch.from != from {
            return;
        }
        if (chunk.last_view, chunk.last_seqno) != (fetch.last_view, fetch.last_seqno) {
            // That log changed since its DoViewChange: choose again.
            self.view_change.fetch = None;
            self.view_change.dvcs.remove(&from);
            return;
        }
        let prev = chunk.first_seqno.prev();
        let matches = prev <= self.commit_seqno || self.log.view_at(prev) == Some(chunk.prev_view);
        if chunk.first_seqno == Seqno::ZERO || !matches || !chunk_is_well_formed(chunk) {
            return;
        }
        if !self.merge_entries(&chunk.entries) {
            return;
        }
        let end = Seqno(prev.0 + chunk.entries.len() as u64);
        if end >= fetch.last_seqno {
            if self.log.last_seqno() > fetch.last_seqno {
                self.truncate_log(fetch.last_seqno);
            }
            self.view_change.fetch = None;
            // Choose again: the adopted log may name a larger configuration, whose
            // majority includes `DoViewChange` messages that arrived during the fetch,
            // and one of them may report a better log still.
            self.try_complete_view_change(now);
        } else if !chunk.entries.is_empty() {
            let request = LogRequest {
                incarnation: self.incarnation,
                view: self.view,
                from: end.next(),
            };
            self.send(now, from, Message::LogRequest(request));
        }
    }

    /// Retries and timeouts of the view change; a suspicion-driven vote in normal status
    /// is the failure detector's.
    pub(super) fn view_change_tick(&mut self, now: Time) {
        if self.status != Status::ViewChange {
            return;
        }
        // Members still working in an older view learn that a majority moved on.
        let announce = self.start_view_change_message(self.view, true);
        self.broadcast(now, &announce);
        if now
            >= self
                .view_change
                .started_at
                .plus(self.config.view_change_timeout)
        {
            // The group may have moved on without us (and removed us): whoever is
            // sequencer now answers a join request with `StartView` (or adds us back).
            if now >= self.join_requested.plus(self.config.view_change_timeout) {
                self.join_requested = now;
                self.ask_to_rejoin();
            }
            self.vote_for_view(now, self.view.next());
            return;
        }
        if self.candidate_is_silent(now) {
            // The view's sequencer is a member silent for a suspicion timeout (the one
            // that died, named again by the hash): the next view names another at once,
            // instead of waiting for the view change to time out.
            self.vote_for_view(now, self.view.next());
            return;
        }
        if self.view_change.fetch.is_some() {
            self.request_log(now);
        } else if self.backs_another()
            || sequencer_of(self.view, self.log.config()) != Some(self.me)
        {
            self.send_do_view_change(now);
        }
    }
}

impl Gcs {
    /// Hands the sequencer role to `to` with a voluntary view change (single-primary
    /// mode: the sequencer follows the primary, so the primary's writes save a hop).
    /// Only the sequencer of the current view, in normal status, hands over: it stops
    /// ordering, enters the first later view whose hashed sequencer is `to` and announces
    /// it as a committed view change; the members then send `DoViewChange` to `to`,
    /// which starts the view as after any view change (a log it lacks is fetched, nothing
    /// committed is lost; proposals not yet ordered are proposed again by their origins).
    /// It hands over only once it delivered every committed entry: the caller decides
    /// `to` from what was delivered (the primary), and a new sequencer that has not yet
    /// delivered the entry naming a new primary would hand the role back. A member
    /// silent for `suspicion_timeout` is not handed the role (it could not take it, and
    /// the view change would stall ordering until it times out). Returns whether it
    /// started the view change; the caller may ask at every turn.
    pub fn hand_over(&mut self, now: Time, to: MemberId) -> bool {
        if self.status != Status::Normal
            || self.sequencer != Some(self.me)
            || to == self.me
            || self.amnesiac
            || self.delivered_seqno() < self.commit_seqno()
            || !self.log.config().contains(&to)
            || self.failure_detector.silent_for(to, now) >= self.config.suspicion_timeout
        {
            return false;
        }
        let config = self.log.config();
        let mut view = self.view.next();
        for _ in 0..HAND_OVER_VIEWS_MAX {
            if sequencer_of(view, config) == Some(to) {
                self.start_view_change(now, view);
                return true;
            }
            view = view.next();
        }
        false
    }

    /// The sequencer this member backs for the current view: once it backs one, its vote
    /// stays there even if its log (fetched as a candidate) names another; before, the one
    /// the hash names.
    fn view_candidate(&self) -> Option<MemberId> {
        match self.backed {
            Some((view, backed)) if view == self.view => Some(backed),
            _ => sequencer_of(self.view, self.log.config()),
        }
    }

    /// Whether the view's candidate is another member silent for `suspicion_timeout`.
    fn candidate_is_silent(&mut self, now: Time) -> bool {
        self.view_candidate().is_some_and(|candidate| {
            candidate != self.me
                && self.failure_detector.silent_for(candidate, now) >= self.config.suspicion_timeout
        })
    }
}

fn chunk_is_well_formed(chunk: &LogChunk) -> bool {
    let mut view = chunk.prev_view;
    for (offset, entry) in chunk.entries.iter().enumerate() {
        if entry.seqno.0 != chunk.first_seqno.0 + offset as u64
            || entry.view < view
            || entry.view > chunk.last_view
        {
            return false;
        }
        view = entry.view;
    }
    true
}
