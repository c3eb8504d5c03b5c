//! The failure detector: heartbeats, suspicion, expel, and loss of the majority.
//!
//! Any message counts as a sign of life. A member silent for `suspicion_timeout` shows
//! UNREACHABLE; after `member_expel_timeout` the sequencer orders its removal. A
//! follower that suspects its sequencer votes for the next view at once. A member that
//! cannot hear a majority of its configuration blocks (the commit point cannot move)
//! and, after `unreachable_majority_timeout` (zero = never), goes to ERROR. This module
//! must never change views or the configuration itself; it asks the modules that do.

use std::collections::BTreeMap;
use std::time::Duration;

use super::entry::ConfigChange;
use super::message::{Heartbeat, Message};
use super::types::{MemberId, MemberState, Time};
use super::{Command, Gcs, Status};

/// Liveness bookkeeping per member.
#[derive(Debug, Default)]
pub(super) struct FailureDetector {
    /// When each member was last heard from.
    last_heard: BTreeMap<MemberId, Time>,
    /// When this member last sent anything to each member (heartbeats fill silences).
    last_sent: BTreeMap<MemberId, Time>,
    /// How each member is shown now (only changes are reported).
    shown: BTreeMap<MemberId, MemberState>,
    /// Since when this member has not heard a majority of its configuration.
    majority_lost_since: Option<Time>,
}

impl FailureDetector {
    pub(super) fn heard(&mut self, member: MemberId, now: Time) {
        let last = self.last_heard.entry(member).or_insert(now);
        if now > *last {
            *last = now;
        }
    }

    pub(super) fn sent(&mut self, member: MemberId, now: Time) {
        self.last_sent.insert(member, now);
    }

    pub(super) fn sent_recently(&self, member: MemberId, now: Time, within: Duration) -> bool {
        self.last_sent
            .get(&member)
            .is_some_and(|at| now < at.plus(within))
    }

    pub(super) fn silent_for(&mut self, member: MemberId, now: Time) -> Duration {
        now.since(*self.last_heard.entry(member).or_insert(now))
    }
}

impl Gcs {
    /// Whether the current sequencer is gone: unknown, removed, or silent too long.
    pub(super) fn sequencer_suspected(&mut self, now: Time) -> bool {
        match self.sequencer {
            None => true,
            Some(sequencer) if sequencer == self.me => false,
            Some(sequencer) => {
                !self.log.config().contains(&sequencer)
                    || now.since(self.sequencer_heard) >= self.config.suspicion_timeout
            }
        }
    }

    pub(super) fn failure_detector_tick(&mut self, now: Time) {
        let config = self.log.config().to_vec();
        let mut reachable = usize::from(config.contains(&self.me));
        let mut expel = Vec::new();
        let me = self.me;
        for member in config.iter().copied().filter(|m| *m != me) {
            let silence = self.failure_detector.silent_for(member, now);
            let state = if silence >= self.config.suspicion_timeout {
                MemberState::Unreachable
            } else {
                reachable += 1;
                MemberState::Online
            };
            if silence >= self.config.member_expel_timeout {
                expel.push(member);
            }
            if self.failure_detector.shown.insert(member, state) != Some(state) {
                self.emit(Command::MemberStateChanged { member, state });
            }
        }
        self.check_majority(now, reachable, config.len());
        if self.status == Status::Stopped {
            return;
        }
        if self.is_sequencer() && reachable > config.len() / 2 {
            for member in expel {
                self.request_reconfiguration(now, ConfigChange::Expel(member));
            }
        }
        if self.status == Status::Normal && !self.is_sequencer() && self.sequencer_suspected(now) {
            self.vote_for_view(now, self.view.next());
        }
    }

    /// Blocks without a majority (nothing to do: the commit point cannot move) and goes
    /// to ERROR after `unreachable_majority_timeout`, if it is not zero.
    fn check_majority(&mut self, now: Time, reachable: usize, members: usize) {
        if members == 0 || reachable > members / 2 {
            self.failure_detector.majority_lost_since = None;
            return;
        }
        let since = *self.failure_detector.majority_lost_since.get_or_insert(now);
        let timeout = self.config.unreachable_majority_timeout;
        if !timeout.is_zero() && now.since(since) >= timeout {
            self.stop(MemberState::Error);
        }
    }

    /// Sends a heartbeat to every member this member sent nothing to for a heartbeat
    /// interval.
    pub(super) fn heartbeat_tick(&mut self, now: Time) {
        let heartbeat = Heartbeat {
            incarnation: self.incarnation,
            view: self.view,
            normal: self.status == Status::Normal,
            commit_seqno: self.commit_seqno,
        };
        for peer in self.peers() {
            if !self
                .failure_detector
                .sent_recently(peer, now, self.config.heartbeat_interval)
            {
                self.send(now, peer, Message::Heartbeat(heartbeat));
            }
        }
    }
}
