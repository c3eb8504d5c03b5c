//! Executing the gcs's commands in order, and publishing the tables after each turn.
//!
//! `PersistEntries` is staged, not written at once: every entry issued in one loop turn
//! goes to the log in one append (one sync under `log_sync = batch`), and only then is
//! `on_persisted` called, so `PrepareOk` always follows durability (group commit). A
//! `TruncateLog` or `PersistMeta` first writes what is staged, then runs synchronously.
//! Under `interval` and `none` the append returns before the disk has the entries and
//! the gcs runs with `durable_acks = false` (an amnesiac restart). This module must
//! never reorder the commands it is given.

use tutti_net::gcs::{Command, EntryBody, MemberId, MemberState, Status};

use super::error::GroupError;
use super::shell::Shell;
use super::tables::{member_row, MemberFacts};

impl Shell {
    /// Runs every pending command, then flushes staged entries and reports them
    /// persisted, until the gcs has nothing more to say.
    pub(crate) fn execute_commands(&mut self) -> Result<(), GroupError> {
        loop {
            let Some(gcs) = self.gcs.as_mut() else {
                return Ok(());
            };
            let commands: Vec<Command> = gcs.drain_commands().collect();
            for command in commands {
                self.execute(command)?;
            }
            // Executing commands never calls into the gcs, so only a persistence report
            // can make it say more.
            let Some((view, seqno)) = self.store.flush()? else {
                return Ok(());
            };
            self.log_appends += 1;
            if let Some(gcs) = self.gcs.as_mut() {
                gcs.on_persisted(self.clock.now(), view, seqno);
            }
        }
    }

    fn execute(&mut self, command: Command) -> Result<(), GroupError> {
        match command {
            Command::Send { to, msg } => self.send(to, &msg),
            Command::PersistEntries { view, entries } => self.store.stage(view, &entries),
            Command::TruncateLog { after } => {
                tracing::info!(member = %super::identity::format_uuid(self.me), after = after.0, "truncating the log");
                self.store.truncate_after(after)?;
            }
            Command::PersistMeta(meta) => self.store.store_meta(meta)?,
            Command::Deliver { seqno, entry } => self.deliver(seqno, &entry),
            Command::SetTimer { at } => self.timer_at = Some(at),
            Command::ViewInstalled {
                view,
                members,
                sequencer,
            } => {
                tracing::info!(member = %super::identity::format_uuid(self.me), view = view.0,
                    members = members.len(), sequencer = %super::identity::format_uuid(sequencer.0), "view installed");
                self.shared
                    .view_changes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.tables_dirty = true;
            }
            Command::MemberStateChanged { member, state } => {
                if member.0 != self.me {
                    self.states.insert(member.0, state);
                }
                tracing::info!(member = %super::identity::format_uuid(self.me),
                    about = %super::identity::format_uuid(member.0), ?state, "member state changed");
                self.tables_dirty = true;
            }
        }
        Ok(())
    }

    fn deliver(&mut self, seqno: tutti_net::gcs::Seqno, entry: &tutti_net::gcs::Entry) {
        self.store.delivered(seqno);
        self.delivered_count += 1;
        self.shared
            .digests
            .lock()
            .push(seqno.0, entry, &mut self.scratch);
        if let (EntryBody::Proposal(proposal), Some(gcs)) = (&entry.body, self.gcs.as_ref()) {
            let own = proposal.id.origin == MemberId(self.me)
                && proposal.id.incarnation == gcs.incarnation();
            if own {
                if let Some(reply) = self.waiting.remove(&proposal.id.counter) {
                    let _ = reply.try_send(Ok(seqno.0));
                }
            }
        }
        self.sink.deliver(seqno.0, entry);
    }

    /// After each turn: answer waiters whose outcome is known and publish the tables.
    pub(crate) fn after_turn(&mut self) {
        self.log_seed_wait();
        let own_state = self
            .gcs
            .as_ref()
            .map_or(MemberState::Offline, tutti_net::gcs::Gcs::own_state);
        let stopped = self
            .gcs
            .as_ref()
            .is_some_and(|gcs| gcs.status() == Status::Stopped);
        if stopped
            || matches!(own_state, MemberState::Offline | MemberState::Error) && self.gcs.is_some()
        {
            for waiter in self.leave_waiters.drain(..) {
                let _ = waiter.try_send(own_state);
            }
        }
        if stopped && !self.waiting.is_empty() {
            // Dropping the replies tells the proposers the outcome is unknown.
            self.waiting.clear();
        }
        if self.tables_dirty {
            self.publish_members(own_state);
            self.tables_dirty = false;
        }
        self.publish_stats(own_state);
    }

    fn publish_members(&mut self, own_state: MemberState) {
        let (view, config) = match &self.gcs {
            Some(gcs) => (
                gcs.view().0,
                gcs.members()
                    .iter()
                    .map(|member| member.0)
                    .collect::<Vec<_>>(),
            ),
            None => (0, Vec::new()),
        };
        let alone = matches!(own_state, MemberState::Offline | MemberState::Error)
            || !config.contains(&self.me);
        let mut ids: Vec<u128> = if alone { vec![self.me] } else { config };
        ids.sort_unstable();
        let rows = ids
            .into_iter()
            .map(|member| {
                let state = if member == self.me {
                    own_state
                } else {
                    self.states
                        .get(&member)
                        .copied()
                        .unwrap_or(MemberState::Online)
                };
                let address = self.directory.get(member);
                let facts = MemberFacts {
                    member,
                    state,
                    client_addr: address.map(|record| record.client_addr),
                    weight: address.map_or(0, |record| record.weight),
                };
                member_row(self.config.group_name, view, &facts)
            })
            .collect();
        *self.shared.members.write() = rows;
    }

    fn publish_stats(&mut self, own_state: MemberState) {
        let (last_delivered, digest) = self.shared.digests.lock().last();
        let mut stats = self.shared.stats.write();
        stats.member_id = super::identity::format_uuid(self.me);
        stats.incarnation = self.origin.incarnation;
        stats.state = Some(own_state);
        stats.delivered_count = self.delivered_count;
        stats.last_delivered = last_delivered;
        stats.digest = digest;
        stats.log_last_seqno = self.store.last_seqno();
        stats.log_appends = self.log_appends;
        stats.frames_undecodable = self.frames_undecodable;
        if let Some(gcs) = &self.gcs {
            stats.view = gcs.view().0;
            stats.sequencer = gcs
                .sequencer()
                .map(|member| super::identity::format_uuid(member.0));
            stats.commit_seqno = gcs.commit_seqno().0;
            stats.proposals_pending = gcs.proposals_pending() as u64;
        }
    }
}
