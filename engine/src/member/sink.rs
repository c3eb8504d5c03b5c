//! The member's delivery sink: on the group core thread, every delivered entry goes
//! through the replica (certification), its verdict goes to the local transaction that
//! waits for it, and its seqno goes to the appliers (with the writes of a commit).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tutti_net::gcs::Entry;
use tutti_storage::Seqno;

use super::pending::Decided;
use super::Inner;
use crate::applier::ApplyJob;
use crate::group::format_uuid;
use crate::group::DeliverySink;
use crate::replica::{Control, Outcome, Replica};
use crate::roles::{Mode, RoleEvent};

/// Deliveries between two steps of the certifier index's physical reclaim.
const RECLAIM_EVERY_DELIVERIES: u64 = 256;

/// Consumes one member's deliveries.
pub(crate) struct EngineSink {
    replica: Replica,
    inner: Arc<Inner>,
    deliveries: u64,
}

impl EngineSink {
    pub(crate) fn new(replica: Replica, inner: Arc<Inner>) -> EngineSink {
        EngineSink {
            replica,
            inner,
            deliveries: 0,
        }
    }
}

impl DeliverySink for EngineSink {
    fn deliver(&mut self, seqno: u64, entry: &Entry) {
        let seqno = Seqno(seqno);
        let certifying = Instant::now();
        let Some(outcome) = self.replica.on_delivered(seqno, entry) else {
            return;
        };
        if matches!(outcome, Outcome::Txn { .. }) {
            self.inner.metrics.certification.record_since(certifying);
        }
        let job = match outcome {
            Outcome::Txn {
                txn,
                verdict,
                written,
            } => {
                let local = self
                    .inner
                    .identity
                    .get()
                    .is_some_and(|&(member, incarnation)| {
                        txn.id.origin == member && txn.id.incarnation == incarnation
                    });
                if local {
                    let committed = verdict.is_commit();
                    if !committed {
                        self.inner.local_rollback.fetch_add(1, Ordering::Relaxed);
                    }
                    // The overlay learns the verdict before the appliers see the seqno, so
                    // the watermark never passes a writer the overlay still shows.
                    self.inner
                        .local
                        .lock()
                        .on_verdict(txn.id.number, seqno, committed);
                    self.inner
                        .verdicts
                        .decide(txn.id.number, Decided { seqno, verdict });
                }
                if txn.after && !local && verdict.is_commit() {
                    self.inner.ack_due.note(seqno);
                }
                verdict.is_commit().then_some(ApplyJob {
                    txn,
                    remote: !local,
                    written,
                })
            }
            Outcome::Control(Control::Undecodable(error)) => {
                tracing::warn!(%seqno, %error, "a delivered payload is not an engine message; skipped");
                None
            }
            Outcome::Control(Control::FlowReport(report)) => {
                self.inner.flow.lock().on_report(report);
                None
            }
            Outcome::Control(Control::Reconfigure(events) | Control::Role(events)) => {
                self.inner
                    .flow
                    .lock()
                    .retain_members(self.replica.roles().members());
                for event in &events {
                    log_role_event(seqno, event);
                }
                self.inner
                    .roles
                    .publish(seqno, self.replica.roles(), events);
                None
            }
            Outcome::Control(_) => None,
        };
        self.inner.appliers.submit(seqno, job);
        let after_done = self.replica.take_after_done();
        if !after_done.is_empty() {
            self.inner.after_done(after_done);
        }
        self.deliveries += 1;
        if self.deliveries % RECLAIM_EVERY_DELIVERIES == 0 {
            self.replica.reclaim_step();
        }
    }

    /// In single-primary mode, the primary: the sequencer follows it (DESIGN.md
    /// section 8).
    fn wanted_sequencer(&self) -> Option<u128> {
        let roles = self.replica.roles();
        if roles.mode() == Some(Mode::SinglePrimary) {
            roles.primary().map(|primary| primary.0)
        } else {
            None
        }
    }
}

fn log_role_event(seqno: Seqno, event: &RoleEvent) {
    match event {
        RoleEvent::Mode(mode) => tracing::info!(%seqno, %mode, "group mode set"),
        RoleEvent::Primary { member, why } => {
            tracing::info!(%seqno, primary = %format_uuid(member.0), ?why, "new primary");
        }
        RoleEvent::NoPrimary => {
            tracing::warn!(%seqno, "single-primary mode and no member can be primary");
        }
        RoleEvent::Incompatible {
            member,
            version,
            lowest,
        } => tracing::warn!(
            %seqno,
            member = %format_uuid(member.0),
            %version,
            %lowest,
            "a member's version is below the group's lowest: refused"
        ),
        RoleEvent::Refused { op, reason } => {
            tracing::warn!(%seqno, ?op, %reason, "role operation refused");
        }
    }
}
