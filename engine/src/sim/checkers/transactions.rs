//! What the transactional checkers record as the run goes: the first verdict certified
//! at each seqno anywhere, and what clients were told.
//!
//! Certification determinism makes the first verdict at a seqno the verdict of every
//! member, and agreement makes the entry the same, so these records are the final order's
//! transactions. This module records only; the checkers beside it judge.

use std::collections::BTreeMap;
use std::sync::Arc;

use tutti_storage::store::Store;

use crate::certifier::{AbortReason, Verdict};
use crate::txn::{TxnId, TxnMessage};

/// A transaction certified at one seqno.
pub(in crate::sim) struct Certified {
    /// The transaction.
    pub(in crate::sim) txn: Arc<TxnMessage>,
    /// Its verdict.
    pub(in crate::sim) verdict: Verdict,
}

/// The transactional part of the run, for the checkers.
#[derive(Default)]
pub(in crate::sim) struct TxnRecords {
    /// The first certification at each seqno, anywhere.
    pub(in crate::sim) certified: BTreeMap<u64, Certified>,
    /// The seqno of every committed transaction.
    pub(in crate::sim) committed: BTreeMap<TxnId, u64>,
    /// Commits acknowledged to clients: (transaction, seqno).
    pub(in crate::sim) acknowledged: Vec<(TxnId, u64)>,
    /// Transactions whose client was told "aborted" (every attempt of a request that
    /// aborted after its retries, and every proposal the group refused).
    pub(in crate::sim) reported_aborted: Vec<TxnId>,
}

/// Totals over the final order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(in crate::sim) struct CertificationTotals {
    /// Transactions certified.
    pub(in crate::sim) certified: u64,
    /// Of which aborted.
    pub(in crate::sim) aborted: u64,
    /// Of which aborted because a checked key was written by another member's
    /// transaction.
    pub(in crate::sim) conflicts: u64,
    /// Of which aborted because a local dependency aborted, was never certified, or is
    /// forgotten.
    pub(in crate::sim) dependency_aborts: u64,
    /// Of which aborted because the snapshot was older than the gc seqno.
    pub(in crate::sim) snapshot_too_old: u64,
    /// Of which aborted because their origin was not writable at their seqno.
    pub(in crate::sim) not_writable: u64,
    /// Committed transactions chained to an in-flight local transaction.
    pub(in crate::sim) chained_commits: u64,
}

impl TxnRecords {
    /// Totals over every seqno certified.
    pub(in crate::sim) fn totals(&self) -> CertificationTotals {
        let mut totals = CertificationTotals::default();
        for certified in self.certified.values() {
            totals.certified += 1;
            match certified.verdict {
                Verdict::Commit { .. } => {
                    if !certified.txn.local_deps.is_empty() {
                        totals.chained_commits += 1;
                    }
                }
                Verdict::Abort(reason) => {
                    totals.aborted += 1;
                    match reason {
                        AbortReason::Conflict { .. } => totals.conflicts += 1,
                        AbortReason::DependencyAborted { .. }
                        | AbortReason::DependencyNotCertified { .. }
                        | AbortReason::DependencyForgotten { .. } => totals.dependency_aborts += 1,
                        AbortReason::SnapshotTooOld { .. } => totals.snapshot_too_old += 1,
                        AbortReason::IndexFull { .. } | AbortReason::TooLarge => {}
                        AbortReason::NotWritable => totals.not_writable += 1,
                    }
                }
            }
        }
        totals
    }
}

/// One live member's transactional state at the end of healing.
pub(in crate::sim) struct TxnMember<'a> {
    /// Node index.
    pub(in crate::sim) node: usize,
    /// Whether it is in normal status and ONLINE.
    pub(in crate::sim) online: bool,
    /// Its store (lagging apply).
    pub(in crate::sim) store: &'a Store,
    /// Its watermark.
    pub(in crate::sim) watermark: u64,
    /// Its delivered seqno.
    pub(in crate::sim) delivered: u64,
    /// Its clients with a transaction in flight.
    pub(in crate::sim) busy_clients: usize,
}
