//! The member stats table, with the columns of GR's
//! `performance_schema.replication_group_member_stats`.

use std::sync::atomic::Ordering;

use super::{Inner, Member};
use crate::metrics::Latencies;

/// One member's row of GR's member stats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberStats {
    /// `COUNT_TRANSACTIONS_IN_QUEUE`: this member's transactions proposed and waiting
    /// for their certification (ordering and delivery included).
    pub count_transactions_in_queue: u64,
    /// `COUNT_TRANSACTIONS_CHECKED`: transactions certified here.
    pub count_transactions_checked: u64,
    /// `COUNT_CONFLICTS_DETECTED`: certification conflicts (first committer wins).
    pub count_conflicts_detected: u64,
    /// `COUNT_TRANSACTIONS_ROWS_VALIDATING`: entries the write-set index holds.
    pub count_transactions_rows_validating: u64,
    /// `TRANSACTIONS_COMMITTED_ALL_MEMBERS`: the stable seqno (every ONLINE member
    /// applied everything at or below it; the certifier's gc seqno).
    pub transactions_committed_all_members: u64,
    /// `LAST_CONFLICT_FREE_TRANSACTION`: the seqno of the last transaction certified
    /// without conflict.
    pub last_conflict_free_transaction: u64,
    /// `COUNT_TRANSACTIONS_REMOTE_IN_APPLIER_QUEUE`: other members' committed
    /// transactions waiting for the appliers.
    pub count_transactions_remote_in_applier_queue: u64,
    /// `COUNT_TRANSACTIONS_REMOTE_APPLIED`: other members' transactions applied here.
    pub count_transactions_remote_applied: u64,
    /// `COUNT_TRANSACTIONS_LOCAL_PROPOSED`: transactions this member proposed.
    pub count_transactions_local_proposed: u64,
    /// `COUNT_TRANSACTIONS_LOCAL_ROLLBACK`: this member's transactions aborted by
    /// certification.
    pub count_transactions_local_rollback: u64,
    /// Not in GR: the local watermark (every seqno at or below it is applied here).
    pub watermark: u64,
    /// Not in GR: this member's transactions whose outcome it could not learn.
    pub count_transactions_outcome_unknown: u64,
}

impl MemberStats {
    /// The columns as (GR's column name, value) pairs, in GR's order.
    pub fn columns(&self) -> Vec<(&'static str, u64)> {
        vec![
            (
                "COUNT_TRANSACTIONS_IN_QUEUE",
                self.count_transactions_in_queue,
            ),
            (
                "COUNT_TRANSACTIONS_CHECKED",
                self.count_transactions_checked,
            ),
            ("COUNT_CONFLICTS_DETECTED", self.count_conflicts_detected),
            (
                "COUNT_TRANSACTIONS_ROWS_VALIDATING",
                self.count_transactions_rows_validating,
            ),
            (
                "TRANSACTIONS_COMMITTED_ALL_MEMBERS",
                self.transactions_committed_all_members,
            ),
            (
                "LAST_CONFLICT_FREE_TRANSACTION",
                self.last_conflict_free_transaction,
            ),
            (
                "COUNT_TRANSACTIONS_REMOTE_IN_APPLIER_QUEUE",
                self.count_transactions_remote_in_applier_queue,
            ),
            (
                "COUNT_TRANSACTIONS_REMOTE_APPLIED",
                self.count_transactions_remote_applied,
            ),
            (
                "COUNT_TRANSACTIONS_LOCAL_PROPOSED",
                self.count_transactions_local_proposed,
            ),
            (
                "COUNT_TRANSACTIONS_LOCAL_ROLLBACK",
                self.count_transactions_local_rollback,
            ),
            ("WATERMARK", self.watermark),
            (
                "COUNT_TRANSACTIONS_OUTCOME_UNKNOWN",
                self.count_transactions_outcome_unknown,
            ),
        ]
    }
}

impl Inner {
    pub(crate) fn stats(&self) -> MemberStats {
        let certifier = self.certifier_stats.snapshot();
        let appliers = self.appliers.stats();
        MemberStats {
            count_transactions_in_queue: self.verdicts.len() as u64,
            count_transactions_checked: certifier.transactions_checked,
            count_conflicts_detected: certifier.conflicts_detected,
            count_transactions_rows_validating: certifier.rows_validating,
            transactions_committed_all_members: certifier.gc_seqno.0,
            last_conflict_free_transaction: certifier.last_conflict_free_seqno.0,
            count_transactions_remote_in_applier_queue: appliers.remote_queued_txns,
            count_transactions_remote_applied: appliers.remote_applied_txns,
            count_transactions_local_proposed: self.local_proposed.load(Ordering::Relaxed),
            count_transactions_local_rollback: self.local_rollback.load(Ordering::Relaxed),
            watermark: self.watermark.get().0,
            count_transactions_outcome_unknown: self.outcome_unknown.load(Ordering::Relaxed),
        }
    }
}

impl Member {
    /// The commit, certification, apply and ordering latency histograms of this member
    /// (see `crate::metrics` for where each starts and ends).
    pub fn latencies(&self) -> Latencies {
        let inner = &self.inner;
        Latencies {
            commit: inner.metrics.commit.snapshot(),
            certification: inner.metrics.certification.snapshot(),
            apply: inner.appliers.apply_latency(),
            ordering: inner.group().ordering_latency(),
        }
    }
}
