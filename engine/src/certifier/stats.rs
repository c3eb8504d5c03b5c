//! The certifier's part of GR's `replication_group_member_stats`, as counters any thread
//! can read while the certifier runs.
//!
//! The certifier thread is the only writer; readers (the `GROUP STATS` command, the
//! metrics endpoint) load each counter independently, so a [`StatsSnapshot`] is a set of
//! recent values, not one instant (as GR's table is). This module must never decide
//! anything: counters describe verdicts, they never feed back into them.

use std::sync::atomic::{AtomicU64, Ordering};

use tutti_storage::Seqno;

/// Live counters, shared with readers through an `Arc`.
#[derive(Debug, Default)]
pub struct CertifierStats {
    transactions_checked: AtomicU64,
    conflicts_detected: AtomicU64,
    dependency_aborts: AtomicU64,
    snapshot_too_old_aborts: AtomicU64,
    index_full_aborts: AtomicU64,
    not_writable_aborts: AtomicU64,
    rows_validating: AtomicU64,
    last_conflict_free_seqno: AtomicU64,
    gc_seqno: AtomicU64,
}

/// One reading of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// `COUNT_TRANSACTIONS_CHECKED`: transactions certified, whatever the verdict.
    pub transactions_checked: u64,
    /// `COUNT_CONFLICTS_DETECTED`: transactions aborted by a write-set conflict.
    pub conflicts_detected: u64,
    /// Transactions aborted because a local dependency aborted, was not certified, or
    /// was older than the verdict window.
    pub dependency_aborts: u64,
    /// Transactions aborted because their snapshot was older than the gc seqno.
    pub snapshot_too_old_aborts: u64,
    /// Transactions aborted because an index shard was full, or their key sets too large.
    pub index_full_aborts: u64,
    /// Transactions aborted because their origin was not writable at their seqno.
    pub not_writable_aborts: u64,
    /// `COUNT_TRANSACTIONS_ROWS_VALIDATING`: entries the index holds. Like GR's count it
    /// includes dead entries until reclamation removes them; it equals the live entries
    /// once reclamation has caught up with the gc seqno.
    pub rows_validating: u64,
    /// `LAST_CONFLICT_FREE_TRANSACTION`: the seqno of the last transaction that committed.
    pub last_conflict_free_seqno: Seqno,
    /// The certifier's gc seqno (GR's stable set).
    pub gc_seqno: Seqno,
}

/// Why a transaction was refused, for counting.
#[derive(Clone, Copy, Debug)]
pub(crate) enum AbortKind {
    Conflict,
    Dependency,
    SnapshotTooOld,
    Capacity,
    NotWritable,
}

impl CertifierStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            transactions_checked: self.transactions_checked.load(Ordering::Relaxed),
            conflicts_detected: self.conflicts_detected.load(Ordering::Relaxed),
            dependency_aborts: self.dependency_aborts.load(Ordering::Relaxed),
            snapshot_too_old_aborts: self.snapshot_too_old_aborts.load(Ordering::Relaxed),
            index_full_aborts: self.index_full_aborts.load(Ordering::Relaxed),
            not_writable_aborts: self.not_writable_aborts.load(Ordering::Relaxed),
            rows_validating: self.rows_validating.load(Ordering::Relaxed),
            last_conflict_free_seqno: Seqno(self.last_conflict_free_seqno.load(Ordering::Relaxed)),
            gc_seqno: Seqno(self.gc_seqno.load(Ordering::Relaxed)),
        }
    }

    // The writer is the only thread that stores, so a load and a store replace a
    // read-modify-write (cheaper on the certifier's hot path).
    fn bump(counter: &AtomicU64) {
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    pub(crate) fn on_commit(&self, seqno: Seqno, rows_validating: u64) {
        Self::bump(&self.transactions_checked);
        self.last_conflict_free_seqno
            .store(seqno.0, Ordering::Relaxed);
        self.rows_validating
            .store(rows_validating, Ordering::Relaxed);
    }

    pub(crate) fn on_abort(&self, kind: AbortKind) {
        Self::bump(&self.transactions_checked);
        Self::bump(match kind {
            AbortKind::Conflict => &self.conflicts_detected,
            AbortKind::Dependency => &self.dependency_aborts,
            AbortKind::SnapshotTooOld => &self.snapshot_too_old_aborts,
            AbortKind::Capacity => &self.index_full_aborts,
            AbortKind::NotWritable => &self.not_writable_aborts,
        });
    }

    pub(crate) fn set_index_state(&self, rows_validating: u64, gc_seqno: Seqno) {
        self.rows_validating
            .store(rows_validating, Ordering::Relaxed);
        self.gc_seqno.store(gc_seqno.0, Ordering::Relaxed);
    }
}
