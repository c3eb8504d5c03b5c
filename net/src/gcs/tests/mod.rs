//! Handler tests of the gcs core: each drives members by hand and asserts the exact
//! commands one input produces.
//!
//! The harness is a tiny perfect network: it hands every `Send` to its receiver, and
//! completes every `PersistEntries` at once, until nothing is left to do. A member can
//! be cut off (its messages, both ways, are dropped) to simulate a crash.

mod join_expel;
mod normal_case;
mod view_change;

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use super::{
    Command, Gcs, GcsConfig, Incarnation, MemberId, Message, PersistentMeta, RestoredState, Seqno,
    Time, ViewId,
};

pub(super) const GROUP: u128 = 0x7u128;

pub(super) fn id(n: u128) -> MemberId {
    MemberId(n)
}

pub(super) fn config(n: u128) -> GcsConfig {
    GcsConfig::new(id(n), GROUP)
}

/// Members at positions 1..=n (ids 1..=n unless chosen) and a perfect network
/// between the connected ones.
pub(super) struct Cluster {
    pub(super) members: Vec<Gcs>,
    /// The id of the member at each position.
    pub(super) ids: Vec<u128>,
    pub(super) cut: BTreeSet<MemberId>,
    pub(super) now: Time,
    inflight: VecDeque<(MemberId, MemberId, Message)>,
    /// Commands returned by `handle`, executed at the next `settle`.
    deferred: Vec<(u128, Command)>,
}

impl Cluster {
    /// Member 1 bootstraps; the others join through it, one at a time.
    pub(super) fn formed(n: u128) -> Cluster {
        Cluster::formed_with(&(1..=n).collect::<Vec<_>>())
    }

    /// Like `formed`, with the member at position p having id `ids[p - 1]`.
    pub(super) fn formed_with(ids: &[u128]) -> Cluster {
        let mut cluster = Cluster {
            members: vec![Gcs::bootstrap(config(ids[0]), Time(0))],
            ids: ids.to_vec(),
            cut: BTreeSet::new(),
            now: Time(0),
            inflight: VecDeque::new(),
            deferred: Vec::new(),
        };
        cluster.settle();
        for joiner in &ids[1..] {
            cluster
                .members
                .push(Gcs::join(config(*joiner), vec![id(ids[0])], cluster.now));
            cluster.settle();
        }
        let last = cluster.member(1).last_seqno();
        for member in &cluster.members {
            assert_eq!(
                member.delivered_seqno(),
                last,
                "the group formed completely"
            );
        }
        cluster
    }

    pub(super) fn member(&mut self, n: u128) -> &mut Gcs {
        let index = usize::try_from(n - 1).expect("small id");
        &mut self.members[index]
    }

    /// What member `n` would find on its disk after a crash in view 1 of incarnation 1:
    /// its whole log, to restart from with `seeds`.
    pub(super) fn restored_in_view_1(&mut self, n: u128, seeds: Vec<MemberId>) -> RestoredState {
        let log = self.member(n).log.slice(Seqno(1), usize::MAX, usize::MAX);
        RestoredState {
            meta: PersistentMeta {
                incarnation: Incarnation(1),
                view: view(1),
                last_normal_view: view(1),
            },
            log,
            seeds,
        }
    }

    /// Executes the commands of member `n` (sends, persistence), dropping the rest.
    fn run_commands(&mut self, n: u128) {
        let commands: Vec<Command> = self.member(n).drain_commands().collect();
        self.execute(n, commands);
    }

    /// The id of the member at position `n` (positions added later are their ids).
    pub(super) fn id(&self, n: u128) -> MemberId {
        let index = usize::try_from(n - 1).expect("small position");
        id(self.ids.get(index).copied().unwrap_or(n))
    }

    fn position(&self, member: MemberId) -> u128 {
        self.ids
            .iter()
            .position(|i| *i == member.0)
            .map_or(member.0, |index| index as u128 + 1)
    }

    fn execute(&mut self, n: u128, commands: Vec<Command>) {
        let me = self.id(n);
        for command in commands {
            match command {
                Command::Send { to, msg } => self.inflight.push_back((me, to, msg)),
                Command::PersistEntries { view, entries } => {
                    let last = entries.last().map_or(Seqno::ZERO, |e| e.seqno);
                    let now = self.now;
                    self.member(n).on_persisted(now, view, last);
                }
                _ => {}
            }
        }
    }

    /// Runs every member's commands and delivers every message until quiet.
    pub(super) fn settle(&mut self) {
        for (n, command) in std::mem::take(&mut self.deferred) {
            self.execute(n, vec![command]);
        }
        loop {
            for n in 1..=self.members.len() as u128 {
                self.run_commands(n);
            }
            let Some((from, to, msg)) = self.inflight.pop_front() else {
                if self.members.iter().all(|m| m.commands.is_empty()) {
                    return;
                }
                continue;
            };
            if self.cut.contains(&from) || self.cut.contains(&to) {
                continue;
            }
            let now = self.now;
            let position = self.position(to);
            self.member(position).on_message(now, from, msg);
        }
    }

    /// Advances time by `step` and fires every connected member's timer.
    pub(super) fn advance(&mut self, step: Duration) {
        self.now = self.now.plus(step);
        let now = self.now;
        for member in &mut self.members {
            if !self.cut.contains(&member.member()) {
                member.on_timeout(now);
            }
        }
        self.settle();
    }

    /// Delivers one message to member `to` and returns exactly what it emitted.
    pub(super) fn handle(&mut self, from: u128, to: u128, msg: Message) -> Vec<Command> {
        let now = self.now;
        let from = self.id(from);
        let member = self.member(to);
        member.on_message(now, from, msg);
        let out: Vec<Command> = member.drain_commands().collect();
        self.deferred
            .extend(out.iter().cloned().map(|command| (to, command)));
        out
    }
}

/// The messages in `commands`, by receiver, ignoring everything else.
pub(super) fn sends(commands: &[Command]) -> Vec<(MemberId, Message)> {
    commands
        .iter()
        .filter_map(|command| match command {
            Command::Send { to, msg } => Some((*to, msg.clone())),
            _ => None,
        })
        .collect()
}

pub(super) fn view(n: u64) -> ViewId {
    ViewId(n)
}
