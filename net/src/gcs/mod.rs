//! gcs: the sans-IO group communication core (DESIGN.md section 4).
//!
//! One [`Gcs`] per member: a synchronous state machine implementing a sequencer-based
//! atomic broadcast in the family of Viewstamped Replication Revisited, with membership
//! as ordered `Reconfigure` entries and a heartbeat failure detector. It owns the
//! protocol state of one member: its view, its in-memory log, the commit point, the
//! sequencer's batching and pipeline, the view-change votes and the proposals it
//! originated. It must never do IO, read a clock or draw a random number: inputs carry
//! `now`, and every effect is a [`Command`] the shell executes in order.
//!
//! ```text
//!  origin            sequencer                 every member (sequencer included)
//!    |  Propose          |                              |
//!    |------------------>| order: assign seqnos         |
//!    |                   | PersistEntries (own log)     |
//!    |                   |--- Prepare{view, first_seqno, entries, commit_seqno} -->|
//!    |                   |                              | append if contiguous,
//!    |                   |                              | PersistEntries
//!    |                   |                              | on_persisted =>
//!    |<------------------+----- PrepareOk{view, seqno} to every member ------------|
//!    |  commit point = highest seqno durable on a majority of the configuration,    |
//!    |  computed by every member from the PrepareOks it sees => Deliver in order    |
//!
//!  view change (sequencer suspected):
//!    StartViewChange{v+1, committed: false} (a vote) --majority--> persist view v+1,
//!    StartViewChange{v+1, committed: true} + DoViewChange --> new sequencer
//!    new sequencer: majority of DoViewChange -> best log = max(last view, last seqno)
//!      -> LogRequest/LogChunk fetches what it lacks -> ViewStart entry
//!      -> StartView (a Prepare) to every member, resent from each one's matching point
//!
//!  hand-over (voluntary, `Gcs::hand_over(to)`, called by the sequencer):
//!    first view w > v whose hashed sequencer is `to` --> persist w,
//!    StartViewChange{w, committed: true} + DoViewChange --> `to`, then as above
//! ```
//!
//! Decisions written down here:
//! - Logs are compared by (view of the last entry, last seqno), and every entry carries
//!   the view that ordered it. With the consistency check of every Prepare (the entry
//!   before the batch must match), this gives Raft's log matching property, lets
//!   `StartView` and catch-up be sent in bounded chunks, and lets a member keep an
//!   unverified stale suffix without it ever being mistaken for a newer log. Entries of
//!   older views are committed only indirectly, by committing the new sequencer's
//!   `ViewStart` entry (Raft's rule for the same reason).
//! - The sequencer of view `v` is a deterministic function of `v` and a configuration:
//!   the member with the highest hash score for `v` (rendezvous hashing,
//!   [`sequencer_of`]). The configuration is the latest in the log the new sequencer
//!   adopts for `v`. Members send `DoViewChange` to the sequencer their own latest
//!   configuration names (rendezvous hashing makes configurations that differ by one
//!   uncommitted change name the same member almost always); a member becomes sequencer
//!   only if, after adopting the best log, that log's latest configuration names it and
//!   a majority of that configuration sent it `DoViewChange`. Each member sends one
//!   `DoViewChange` per view, and single-member changes keep any two majorities
//!   overlapping, so a view has at most one sequencer. Configuration changes inside a
//!   view do not move the sequencer; if the sequencer itself is removed, the remaining
//!   members start a view change as soon as its removal is committed.
//! - A restarted member comes back between views, in the view it had persisted, and
//!   never sends `DoViewChange` for that view nor leads it: before the crash it may have
//!   been that view's sequencer and ordered entries its disk then lost.
//! - The new sequencer gets every entry it needs by fetching it: it asks the member
//!   whose log is best for entries from its own commit point on (everything at or below
//!   a commit point is identical everywhere) before it sends `StartView`, and it
//!   decides only when its log is at least as good as every `DoViewChange` it holds and
//!   those come from a majority of the configuration its (possibly just fetched) log
//!   names; a better log reported meanwhile is fetched too.
//! - A member told it is not in the configuration (its join was lost in a view change,
//!   or it was expelled while away) asks to join again with its id and log, as Group
//!   Replication's auto-rejoin does. A notice of a view older than the receiver's is
//!   ignored: its sender is behind (a follower that has not received the join, or a
//!   sequencer cut off from the majority that moved on), and nobody answers a member
//!   that is ahead of them. A removed member that is ahead asks to join again once its
//!   view change times out; once it is back in the configuration, its votes for a view
//!   beyond the group's next one move the group up to its view.
//!
//! Limits of this version, each a deliberate bound:
//! - The whole log is kept in memory (see `log.rs`): memory grows with the history.
//!   State transfer (DESIGN.md section 10) will replace the prefix with a snapshot.
//! - Delivery starts at seqno 1 in every incarnation: a restarted member delivers its
//!   log again as the commit point becomes known, and a joiner delivers the whole
//!   history. The engine replays those; snapshots will move the starting point.
//! - An amnesiac member (`durable_acks = false`) waits for a sequencer to catch it up;
//!   a group in which a majority restarts amnesiac cannot elect one and waits.

mod command;
mod config;
mod entry;
mod error;
mod failure_detector;
mod log;
mod membership;
mod message;
mod proposals;
mod replica;
mod sequencer;
mod types;
mod view_change;

pub mod constants;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};

pub use command::{Command, PersistentMeta, RestoredState};
pub use config::GcsConfig;
pub use entry::{ConfigChange, Entry, EntryBody, EntryKind, Payload, Proposal};
pub use error::{ConfigError, ProposeError};
pub use message::{
    Commit, DoViewChange, Heartbeat, JoinRefusal, JoinRefused, JoinRequest, LeaveRequest, LogChunk,
    LogRequest, Message, MessageKind, NotMember, Prepare, PrepareNack, PrepareOk, Propose,
    StartViewChange,
};
pub use types::{Incarnation, MemberId, MemberState, ProposalId, Seqno, Time, ViewId};
pub use view_change::sequencer_of;

use failure_detector::FailureDetector;
use log::Log;
use proposals::OriginState;
use sequencer::SequencerState;
use view_change::ViewChangeState;

/// Where a member stands in the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Working in a view with a known sequencer.
    Normal,
    /// Between views: not accepting entries of older views.
    ViewChange,
    /// Waiting to be let into a group.
    Joining,
    /// Left, expelled, or in ERROR: ignores every input.
    Stopped,
}

/// The group communication core of one member. See the module documentation.
#[derive(Debug)]
pub struct Gcs {
    config: GcsConfig,
    me: MemberId,
    incarnation: Incarnation,
    status: Status,
    /// This member's own state as shown in the members table.
    own_state: MemberState,
    view: ViewId,
    last_normal_view: ViewId,
    /// The sequencer of `view` (known in normal status).
    sequencer: Option<MemberId>,
    log: Log,
    /// Highest seqno such that the log up to it is durable.
    persisted_seqno: Seqno,
    /// Highest seqno such that the log up to it equals the sequencer's log of `view`.
    matched_seqno: Seqno,
    /// Highest commit point heard of (may exceed what this member holds).
    commit_known: Seqno,
    /// `min(commit_known, matched_seqno)`: committed and held here.
    commit_seqno: Seqno,
    delivered_seqno: Seqno,
    /// Seqno of the first entry of `view` in the log; only seqnos at or after it are
    /// committed by counting acknowledgements of `view`.
    view_start_seqno: Option<Seqno>,
    /// `PrepareOk` seqnos of `view`, per member (this member's own included).
    acks: BTreeMap<MemberId, Seqno>,
    /// The last acknowledgement this member sent in `view`.
    ack_sent: Seqno,
    /// Amnesiac after a restart without durable acknowledgements: no votes, no acks.
    amnesiac: bool,
    /// While amnesiac: the commit point to reach before voting again.
    amnesia_target: Option<Seqno>,
    /// Highest incarnation seen per member; older ones are ignored.
    incarnations: HashMap<MemberId, Incarnation>,
    /// Members to ask to join through (while joining).
    seeds: Vec<MemberId>,
    /// The view this member restarted in: it never sends `DoViewChange` for it nor
    /// leads it (before the crash it may have done both).
    restart_view: Option<ViewId>,
    /// The member this one backs as sequencer of a view: the one it sent
    /// `DoViewChange` to, or the one whose `StartView` it followed. A member backs one
    /// sequencer per view, and counts itself toward leading a view only if it backs no
    /// other: its `DoViewChange` is its vote, and a member in both majorities of two
    /// overlapping configurations must not vote for two sequencers of the same view.
    backed: Option<(ViewId, MemberId)>,
    /// Whether this member asked to leave.
    leaving: bool,
    /// Whether this member was told it is not a member and asks to join again (while
    /// still taking part in view changes of the configuration its log names).
    rejoining: bool,
    /// When the last join request went out (rate limit).
    join_requested: Time,
    sequencer_state: SequencerState,
    view_change: ViewChangeState,
    failure_detector: FailureDetector,
    origin: OriginState,
    next_tick: Time,
    /// When the sequencer of `view` last showed itself working as sequencer (a
    /// Prepare, Commit or normal Heartbeat of `view`). Other messages from it do not
    /// count: a restarted former sequencer talks, but no longer orders.
    sequencer_heard: Time,
    /// Last time this member reported a gap to the sequencer (rate limit).
    last_nack: Time,
    commands: VecDeque<Command>,
}

impl Gcs {
    fn blank(config: GcsConfig, incarnation: Incarnation, now: Time) -> Gcs {
        assert!(
            config.validate().is_ok(),
            "invalid gcs configuration: {:?}",
            config.validate()
        );
        Gcs {
            me: config.member,
            config,
            incarnation,
            status: Status::Joining,
            own_state: MemberState::Recovering,
            view: ViewId(0),
            last_normal_view: ViewId(0),
            sequencer: None,
            log: Log::default(),
            persisted_seqno: Seqno::ZERO,
            matched_seqno: Seqno::ZERO,
            commit_known: Seqno::ZERO,
            commit_seqno: Seqno::ZERO,
            delivered_seqno: Seqno::ZERO,
            view_start_seqno: None,
            acks: BTreeMap::new(),
            ack_sent: Seqno::ZERO,
            amnesiac: false,
            amnesia_target: None,
            incarnations: HashMap::new(),
            seeds: Vec::new(),
            restart_view: None,
            backed: None,
            leaving: false,
            rejoining: false,
            join_requested: now,
            sequencer_state: SequencerState::default(),
            view_change: ViewChangeState::new(now),
            failure_detector: FailureDetector::default(),
            origin: OriginState::default(),
            next_tick: now,
            sequencer_heard: now,
            last_nack: Time(0),
            commands: VecDeque::new(),
        }
    }

    /// Creates a new group with this member as its only member and sequencer. Exactly
    /// one member of a group is ever bootstrapped.
    pub fn bootstrap(config: GcsConfig, now: Time) -> Gcs {
        let mut gcs = Gcs::blank(config, Incarnation(1), now);
        let me = gcs.me;
        gcs.view = ViewId(1);
        gcs.last_normal_view = ViewId(1);
        gcs.persist_meta();
        let entry = Entry {
            seqno: Seqno(1),
            view: ViewId(1),
            body: EntryBody::Reconfigure {
                members: vec![me],
                change: ConfigChange::Bootstrap(me),
            },
        };
        gcs.become_normal(now, me);
        gcs.append_as_sequencer(vec![entry]);
        gcs.view_start_seqno = Some(Seqno(1));
        gcs.set_own_state(MemberState::Online);
        gcs.schedule_tick(now);
        gcs
    }

    /// Starts a member that asks `seeds` to let it into their group. It never forms a
    /// group of its own: with no reachable seed it keeps asking.
    pub fn join(config: GcsConfig, seeds: Vec<MemberId>, now: Time) -> Gcs {
        let mut gcs = Gcs::blank(config, Incarnation(1), now);
        gcs.seeds = seeds;
        gcs.seeds.retain(|seed| *seed != gcs.me);
        gcs.persist_meta();
        gcs.set_own_state(MemberState::Recovering);
        gcs.send_join_requests();
        gcs.schedule_tick(now);
        gcs
    }

    /// Restarts a member from its persisted meta state and log. It comes back between
    /// views (it may have promised a new view before the crash) and resumes when it
    /// hears a sequencer of its view or a newer one, or when a majority agrees on a
    /// new view.
    pub fn restart(config: GcsConfig, restored: RestoredState, now: Time) -> Gcs {
        let incarnation = restored.meta.incarnation.next();
        let mut gcs = Gcs::blank(config, incarnation, now);
        let restored_len = restored.log.len() as u64;
        gcs.log = Log::from_entries(restored.log);
        gcs.view = restored.meta.view.max(gcs.log.last_view());
        gcs.last_normal_view = restored.meta.last_normal_view;
        gcs.persisted_seqno = gcs.log.last_seqno();
        gcs.seeds = restored.seeds;
        gcs.amnesiac = !gcs.config.durable_acks;
        gcs.restart_view = Some(gcs.view);
        if gcs.log.last_seqno().0 < restored_len {
            gcs.emit(Command::TruncateLog {
                after: gcs.log.last_seqno(),
            });
        }
        gcs.persist_meta();
        if gcs.log.config().is_empty() {
            gcs.status = Status::Joining;
            gcs.set_own_state(MemberState::Recovering);
            gcs.send_join_requests();
        } else {
            gcs.status = Status::ViewChange;
            gcs.view_change = ViewChangeState::new(now);
            gcs.set_own_state(MemberState::Recovering);
            for member in gcs.log.config().to_vec() {
                gcs.failure_detector.heard(member, now);
            }
        }
        gcs.schedule_tick(now);
        gcs
    }

    /// Handles a message from `from`.
    pub fn on_message(&mut self, now: Time, from: MemberId, msg: Message) {
        if self.status == Status::Stopped || from == self.me {
            return;
        }
        if !self.accept_incarnation(from, msg.incarnation()) {
            return;
        }
        self.failure_detector.heard(from, now);
        if self.reply_if_removed(now, from, &msg) {
            return;
        }
        match msg {
            Message::Propose(m) => self.on_propose(now, from, m),
            Message::Prepare(m) | Message::StartView(m) => self.on_prepare(now, from, &m),
            Message::PrepareOk(m) => self.on_prepare_ok(now, from, m),
            Message::PrepareNack(m) => self.on_prepare_nack(now, from, m),
            Message::Commit(m) => {
                self.heard_sequencer(now, from, m.view);
                self.on_commit(now, from, m.view, m.commit_seqno);
            }
            Message::Heartbeat(m) => {
                if m.normal {
                    self.heard_sequencer(now, from, m.view);
                }
                self.on_commit(now, from, m.view, m.commit_seqno);
            }
            Message::StartViewChange(m) => self.on_start_view_change(now, from, m),
            Message::DoViewChange(m) => self.on_do_view_change(now, from, m),
            Message::LogRequest(m) => self.on_log_request(from, m),
            Message::LogChunk(m) => self.on_log_chunk(now, from, &m),
            Message::JoinRequest(m) => self.on_join_request(now, from, m),
            Message::JoinRefused(m) => self.on_join_refused(m),
            Message::LeaveRequest(_) => self.on_leave_request(now, from),
            Message::NotMember(m) => self.on_not_member(from, m),
        }
    }

    /// Handles the timer set by the last [`Command::SetTimer`]. Early calls are harmless.
    pub fn on_timeout(&mut self, now: Time) {
        if self.status == Status::Stopped {
            return;
        }
        if now >= self.next_tick {
            self.tick(now);
            self.schedule_tick(now);
        } else {
            // A timer that fired early: ask again for the same deadline.
            self.emit(Command::SetTimer { at: self.next_tick });
        }
    }

    /// Reports that every `PersistEntries` issued in `view` up to `seqno` is durable.
    /// A completion from an older view is ignored: the log may have changed since.
    pub fn on_persisted(&mut self, now: Time, view: ViewId, seqno: Seqno) {
        if self.status == Status::Stopped || view != self.view {
            return;
        }
        let durable = seqno.min(self.log.last_seqno());
        if durable > self.persisted_seqno {
            self.persisted_seqno = durable;
            self.acknowledge(now);
        }
    }

    /// Asks the group to remove this member. It goes OFFLINE once its removal is
    /// committed.
    pub fn leave(&mut self, now: Time) {
        match self.status {
            Status::Stopped => {}
            Status::Joining => self.stop(MemberState::Offline),
            Status::Normal | Status::ViewChange => {
                self.leaving = true;
                self.send_leave_request(now);
            }
        }
    }

    /// The next command to execute, in order.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// Every pending command, in order.
    pub fn drain_commands(&mut self) -> std::collections::vec_deque::Drain<'_, Command> {
        self.commands.drain(..)
    }

    /// This member's id.
    pub fn member(&self) -> MemberId {
        self.me
    }

    /// This member's incarnation.
    pub fn incarnation(&self) -> Incarnation {
        self.incarnation
    }

    /// The current view.
    pub fn view(&self) -> ViewId {
        self.view
    }

    /// Where this member stands.
    pub fn status(&self) -> Status {
        self.status
    }

    /// This member's own state, as the members table shows it.
    pub fn own_state(&self) -> MemberState {
        self.own_state
    }

    /// The sequencer of the current view, when known.
    pub fn sequencer(&self) -> Option<MemberId> {
        if self.status == Status::Normal {
            self.sequencer
        } else {
            None
        }
    }

    /// The latest configuration in this member's log.
    pub fn members(&self) -> &[MemberId] {
        self.log.config()
    }

    /// The commit point this member holds.
    pub fn commit_seqno(&self) -> Seqno {
        self.commit_seqno
    }

    /// The last delivered seqno.
    pub fn delivered_seqno(&self) -> Seqno {
        self.delivered_seqno
    }

    /// The last seqno of the in-memory log.
    pub fn last_seqno(&self) -> Seqno {
        self.log.last_seqno()
    }

    /// Proposals of this member not yet delivered.
    pub fn proposals_pending(&self) -> usize {
        self.origin.pending.len()
    }

    fn emit(&mut self, command: Command) {
        self.commands.push_back(command);
    }

    fn send(&mut self, now: Time, to: MemberId, msg: Message) {
        if to == self.me {
            return;
        }
        self.failure_detector.sent(to, now);
        self.emit(Command::Send { to, msg });
    }

    /// Members this member talks to: the latest configuration and the one before it
    /// (so a member being removed hears its removal committed), without itself.
    fn peers(&self) -> Vec<MemberId> {
        let mut peers: Vec<MemberId> = self.log.config().to_vec();
        for member in self.log.previous_config() {
            if !peers.contains(member) {
                peers.push(*member);
            }
        }
        if let Some(sequencer) = self.sequencer {
            if !peers.contains(&sequencer) {
                peers.push(sequencer);
            }
        }
        peers.retain(|member| *member != self.me);
        peers
    }

    fn broadcast(&mut self, now: Time, msg: &Message) {
        for peer in self.peers() {
            self.send(now, peer, msg.clone());
        }
    }

    fn persist_meta(&mut self) {
        self.emit(Command::PersistMeta(PersistentMeta {
            incarnation: self.incarnation,
            view: self.view,
            last_normal_view: self.last_normal_view,
        }));
        // The shell makes every earlier log write durable before it writes meta.
        self.persisted_seqno = self.log.last_seqno();
    }

    fn schedule_tick(&mut self, now: Time) {
        self.next_tick = now.plus(self.config.retransmit_interval);
        self.emit(Command::SetTimer { at: self.next_tick });
    }

    fn set_own_state(&mut self, state: MemberState) {
        if self.own_state != state || state == MemberState::Recovering {
            self.own_state = state;
            self.emit(Command::MemberStateChanged {
                member: self.me,
                state,
            });
        }
    }

    fn stop(&mut self, state: MemberState) {
        self.status = Status::Stopped;
        self.sequencer = None;
        self.set_own_state(state);
    }

    /// Records `incarnation` for `from`; false if it is older than one already seen.
    fn accept_incarnation(&mut self, from: MemberId, incarnation: Incarnation) -> bool {
        match self.incarnations.get(&from).copied() {
            Some(known) if incarnation < known => false,
            Some(known) if incarnation == known => true,
            known => {
                self.incarnations.insert(from, incarnation);
                if known.is_some() {
                    self.on_peer_restarted(from);
                }
                true
            }
        }
    }

    /// A member restarted: what it acknowledged may be gone (a torn or amnesiac log),
    /// so its acknowledgement and resend point start over.
    fn on_peer_restarted(&mut self, member: MemberId) {
        if self.sequencer == Some(member) {
            // A restarted sequencer comes back between views: it orders nothing more.
            self.sequencer_heard = Time(0);
        }
        self.acks.remove(&member);
        self.sequencer_state.next.remove(&member);
        self.sequencer_state.progress.remove(&member);
        self.view_change.dvcs.remove(&member);
        self.view_change.votes.remove(&member);
    }

    fn heard_sequencer(&mut self, now: Time, from: MemberId, view: ViewId) {
        if self.status == Status::Normal && self.sequencer == Some(from) && view == self.view {
            self.sequencer_heard = now;
        }
    }

    fn join_tick(&mut self, now: Time) {
        if now >= self.join_requested.plus(self.config.join_retry_interval) {
            self.join_requested = now;
            self.send_join_requests();
        }
    }

    fn tick(&mut self, now: Time) {
        match self.status {
            Status::Stopped => {}
            Status::Joining => self.join_tick(now),
            Status::Normal | Status::ViewChange => {
                self.failure_detector_tick(now);
                if self.status == Status::Stopped {
                    return;
                }
                self.view_change_tick(now);
                self.sequencer_tick(now);
                self.origin_tick(now);
                if self.leaving {
                    self.send_leave_request(now);
                }
                if self.rejoining {
                    self.join_tick(now);
                }
                self.heartbeat_tick(now);
            }
        }
    }
}
