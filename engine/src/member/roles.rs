//! The member's side of modes, roles and consistency levels: the replica's role state as
//! sessions see it, the write admission (READONLY), the waits of the consistency levels,
//! ordered role operations, and this member's announcement of its own facts.
//!
//! The delivery sink publishes a copy of the replica's [`Roles`] after every entry that
//! can change them (a configuration or a role operation); sessions read that copy. The
//! copy may run ahead of the local watermark, never behind the certifier: a write that
//! passes the admission here is still refused at certification if its origin is no
//! longer writable at its seqno, so the admission is a courtesy to clients, not the rule.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tutti_net::gcs::MemberId;
use tutti_storage::Seqno;

use super::error::TxnError;
use super::{Inner, Member};
use crate::consistency::Consistency;
use crate::group::{parse_uuid, MemberRole, MemberRow, ProposeFailure};
use crate::roles::{Facts, Mode, RoleEvent, RoleOp, Roles};
use crate::txn::{encode_message, EngineMessage};

/// Role events kept for [`Member::role_op`] to find its own (seqno, events).
const ROLE_EVENTS_KEPT: usize = 64;

/// How often a transaction checks whether the roles settled while it waits for them.
const SETTLE_POLL: Duration = Duration::from_millis(1);

/// The role state sessions read, and the recent role events.
pub(crate) struct SharedRoles {
    roles: RwLock<Arc<Roles>>,
    events: Mutex<VecDeque<(Seqno, Vec<RoleEvent>)>>,
    /// Wakes the background thread when the roles change (it may have to announce).
    changed: (flume::Sender<()>, flume::Receiver<()>),
}

impl Default for SharedRoles {
    fn default() -> SharedRoles {
        SharedRoles {
            roles: RwLock::default(),
            events: Mutex::default(),
            changed: flume::bounded(1),
        }
    }
}

impl SharedRoles {
    /// Publishes the replica's state after the entry at `seqno` and what it changed.
    pub(crate) fn publish(&self, seqno: Seqno, roles: &Roles, events: Vec<RoleEvent>) {
        *self.roles.write() = Arc::new(roles.clone());
        let mut kept = self.events.lock();
        if kept.len() == ROLE_EVENTS_KEPT {
            kept.pop_front();
        }
        kept.push_back((seqno, events));
        // A wake-up already pending is enough.
        let _ = self.changed.0.try_send(());
    }

    /// Sleeps until the roles change or `wait` passes.
    pub(crate) fn wait_change(&self, wait: Duration) {
        let _ = self.changed.1.recv_timeout(wait);
    }

    pub(crate) fn get(&self) -> Arc<Roles> {
        Arc::clone(&self.roles.read())
    }

    fn events_at(&self, seqno: Seqno) -> Option<Vec<RoleEvent>> {
        self.events
            .lock()
            .iter()
            .find(|(at, _)| *at == seqno)
            .map(|(_, events)| events.clone())
    }
}

/// Why an ordered role operation did not take effect.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoleOpError {
    /// The group did not order it.
    #[error("not ordered: {0}")]
    NotProposed(ProposeFailure),
    /// It was not delivered and applied here in time.
    #[error("the operation was not applied here within {0:?}")]
    Timeout(Duration),
    /// Every member refused it alike.
    #[error("{0}")]
    Refused(String),
}

impl Inner {
    fn me(&self) -> Option<MemberId> {
        self.identity.get().map(|&(member, _)| member)
    }

    /// This member's facts, as it announces them.
    pub(crate) fn own_facts(&self) -> Facts {
        Facts {
            version: self.options.version,
            weight: self.options.group.member_weight,
        }
    }

    /// Whether this member knows the group's mode and its own announced facts: until
    /// then a write is neither allowed nor refused for a reason a client can act on.
    fn roles_settled(&self) -> bool {
        let roles = self.roles.get();
        roles.mode().is_some() && self.me().is_some_and(|me| roles.facts(me).is_some())
    }

    /// Waits (bounded by `commit_wait`) until the roles settled: a member that just
    /// started or joined takes a few milliseconds to learn them.
    pub(crate) async fn settle_roles(&self) {
        let deadline = Instant::now() + self.options.commit_wait;
        while !self.roles_settled() && Instant::now() < deadline {
            monoio::time::sleep(SETTLE_POLL).await;
        }
    }

    /// [`Inner::settle_roles`], blocking the calling thread.
    pub(crate) fn settle_roles_blocking(&self) {
        let deadline = Instant::now() + self.options.commit_wait;
        while !self.roles_settled() && Instant::now() < deadline {
            std::thread::sleep(SETTLE_POLL);
        }
    }

    /// Refuses a write when this member may not write now.
    pub(crate) fn admit_write(&self) -> Result<(), TxnError> {
        let roles = self.roles.get();
        let me = self.me().unwrap_or(MemberId(0));
        match roles.read_only_reason(me) {
            None => Ok(()),
            Some(reason) => Err(TxnError::ReadOnly {
                reason,
                primary: roles.primary().map(|primary| primary.0),
            }),
        }
    }

    /// The seqno a transaction at `level` waits for before it runs, and what it is:
    /// the election point on a new primary, or a fresh sync point.
    async fn before_point(
        &self,
        level: Consistency,
    ) -> Result<Option<(Seqno, &'static str)>, TxnError> {
        if level.syncs_before() {
            let ticket = self.submit_sync_point()?;
            let wait = self.options.commit_wait;
            let delivered = monoio::time::timeout(wait, ticket.delivered()).await;
            return sync_point(level, wait, delivered.ok().and_then(Result::ok));
        }
        Ok(self.failover_point(level))
    }

    fn before_point_blocking(
        &self,
        level: Consistency,
    ) -> Result<Option<(Seqno, &'static str)>, TxnError> {
        if level.syncs_before() {
            let ticket = self.submit_sync_point()?;
            let wait = self.options.commit_wait;
            return sync_point(level, wait, ticket.wait(wait).ok());
        }
        Ok(self.failover_point(level))
    }

    fn submit_sync_point(&self) -> Result<crate::group::ProposalTicket, TxnError> {
        let mut payload = Vec::new();
        encode_message(&EngineMessage::SyncPoint, &mut payload);
        self.group()
            .submit(payload.into())
            .map_err(TxnError::NotProposed)
    }

    /// On a primary elected (or appointed) at a seqno not yet applied here: that seqno.
    fn failover_point(&self, level: Consistency) -> Option<(Seqno, &'static str)> {
        if !level.holds_on_failover() {
            return None;
        }
        let roles = self.roles.get();
        let me = self.me()?;
        (roles.primary() == Some(me) && self.watermark.get() < roles.primary_since()).then(|| {
            (
                roles.primary_since(),
                "backlog of the previous primary applied",
            )
        })
    }

    /// Waits, before a transaction at `level` runs, for what the level asks.
    pub(crate) async fn wait_before(&self, level: Consistency) -> Result<(), TxnError> {
        self.settle_roles().await;
        let Some((seqno, what)) = self.before_point(level).await? else {
            return Ok(());
        };
        let wait = self.options.commit_wait;
        monoio::time::timeout(wait, self.watermark.reached(seqno))
            .await
            .map_err(|_| TxnError::ConsistencyWait { level, what, wait })
    }

    /// [`Inner::wait_before`], blocking the calling thread.
    pub(crate) fn wait_before_blocking(&self, level: Consistency) -> Result<(), TxnError> {
        self.settle_roles_blocking();
        let Some((seqno, what)) = self.before_point_blocking(level)? else {
            return Ok(());
        };
        let wait = self.options.commit_wait;
        if self.watermark.wait_until(seqno, wait) {
            Ok(())
        } else {
            Err(TxnError::ConsistencyWait { level, what, wait })
        }
    }

    /// Whether the group refused this member's version.
    pub(crate) fn version_refused(&self) -> bool {
        self.me()
            .is_some_and(|me| self.roles.get().is_incompatible(me))
    }

    /// Announces this member's facts when it is in the configuration and the group's
    /// record of them differs (a new member, a restart with another version or weight),
    /// once per configuration (`announced` holds the configuration's seqno it last
    /// announced in). Returns whether it proposed.
    pub(crate) fn announce_if_needed(&self, announced: &mut Option<Seqno>) -> bool {
        let Some(me) = self.me() else {
            return false;
        };
        let roles = self.roles.get();
        let facts = self.own_facts();
        if !roles.is_member(me)
            || roles.facts(me) == Some(facts)
            || *announced == Some(roles.config_seqno())
        {
            return false;
        }
        let op = RoleOp::Announce {
            member: me,
            incarnation: self
                .identity
                .get()
                .map_or(0, |&(_, incarnation)| incarnation),
            config_seqno: roles.config_seqno(),
            facts,
            single_primary: self.options.single_primary_mode,
        };
        let mut payload = Vec::new();
        encode_message(&EngineMessage::Role(op), &mut payload);
        let proposed = self.group().submit(payload.into()).is_ok();
        if proposed {
            *announced = Some(roles.config_seqno());
        }
        proposed
    }
}

/// The wait point of a delivered sync point, or the error of one not delivered in time.
fn sync_point(
    level: Consistency,
    wait: Duration,
    delivered: Option<u64>,
) -> Result<Option<(Seqno, &'static str)>, TxnError> {
    match delivered {
        Some(seqno) => Ok(Some((Seqno(seqno), "sync point applied"))),
        None => Err(TxnError::ConsistencyWait {
            level,
            what: "sync point delivered",
            wait,
        }),
    }
}

impl Member {
    /// The members table (`GROUP MEMBERS`), with each member's role and announced
    /// version as the ordered role state gives them: PRIMARY for a member that may write.
    pub fn members(&self) -> Vec<MemberRow> {
        let roles = self.roles();
        let mut rows = self.group().members();
        for row in &mut rows {
            let Some(id) = parse_uuid(&row.member_id).map(MemberId) else {
                continue;
            };
            row.member_role = if roles.writable(id) {
                MemberRole::Primary
            } else {
                MemberRole::Secondary
            };
            if let Some(facts) = roles.facts(id) {
                row.member_version = facts.version.to_string();
            }
        }
        rows
    }

    /// The group's mode as clients read it: `single-primary`, `multi-primary`, or
    /// `pending` before the first member announced itself.
    pub fn mode_name(&self) -> &'static str {
        match self.roles().mode() {
            Some(Mode::SinglePrimary) => "single-primary",
            Some(Mode::MultiPrimary) => "multi-primary",
            None => "pending",
        }
    }

    /// The group's modes and roles as this member last learned them.
    pub fn roles(&self) -> Arc<Roles> {
        self.inner.roles.get()
    }

    /// The consistency level of transactions that do not name one.
    pub fn consistency(&self) -> Consistency {
        *self.inner.consistency.read()
    }

    /// Changes the default consistency level while the member runs.
    pub fn set_consistency(&self, level: Consistency) {
        *self.inner.consistency.write() = level;
    }

    /// Orders a role operation (`SET-PRIMARY`, `SWITCH-MODE`) and returns what it
    /// changed once this member applied it, or why every member refused it.
    pub fn role_op(&self, op: RoleOp, wait: Duration) -> Result<Vec<RoleEvent>, RoleOpError> {
        let mut payload = Vec::new();
        encode_message(&EngineMessage::Role(op), &mut payload);
        let ticket = self
            .group()
            .submit(payload.into())
            .map_err(RoleOpError::NotProposed)?;
        let seqno = Seqno(ticket.wait(wait).map_err(|_| RoleOpError::Timeout(wait))?);
        if !self.inner.watermark.wait_until(seqno, wait) {
            return Err(RoleOpError::Timeout(wait));
        }
        let events = self.inner.roles.events_at(seqno).unwrap_or_default();
        match events.iter().find_map(|event| match event {
            RoleEvent::Refused { reason, .. } => Some(reason.clone()),
            _ => None,
        }) {
            Some(reason) => Err(RoleOpError::Refused(reason)),
            None => Ok(events),
        }
    }
}
