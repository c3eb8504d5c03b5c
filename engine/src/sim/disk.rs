//! A simulated disk: log writes stay pending until a simulated fsync completes.
//!
//! `PersistEntries` appends to a pending list; an fsync event later makes all pending
//! writes durable and reports each with `on_persisted`. `TruncateLog` and `PersistMeta`
//! are synchronous and durable, and make every earlier pending write durable first (the
//! order the gcs core requires of a shell). At a crash, pending writes are lost, except
//! that a torn write may leave a prefix of them behind. This module must never decide
//! when a crash happens; the world does.

use tutti_net::gcs::{Entry, PersistentMeta, Seqno, ViewId};

/// One member's durable state and its unsynced writes.
#[derive(Debug, Default)]
pub(super) struct Disk {
    pub(super) meta: PersistentMeta,
    pub(super) durable: Vec<Entry>,
    pending: Vec<(ViewId, Vec<Entry>)>,
    /// Whether an fsync event is already scheduled.
    pub(super) fsync_scheduled: bool,
}

impl Disk {
    /// Queues a log write; returns whether an fsync must be scheduled.
    pub(super) fn write(&mut self, view: ViewId, entries: Vec<Entry>) -> bool {
        self.pending.push((view, entries));
        !std::mem::replace(&mut self.fsync_scheduled, true)
    }

    /// Makes every pending write durable; returns the completions to report.
    pub(super) fn fsync(&mut self) -> Vec<(ViewId, Seqno)> {
        self.fsync_scheduled = false;
        let mut completions = Vec::new();
        for (view, entries) in self.pending.drain(..) {
            if let Some(last) = entries.last() {
                completions.push((view, last.seqno));
            }
            self.durable.extend(entries);
        }
        completions
    }

    /// Truncates the durable log after `after`, syncing pending writes first.
    pub(super) fn truncate(&mut self, after: Seqno) {
        self.fsync();
        let keep = usize::try_from(after.0)
            .unwrap_or(usize::MAX)
            .min(self.durable.len());
        self.durable.truncate(keep);
    }

    /// Writes meta state, syncing pending writes first.
    pub(super) fn write_meta(&mut self, meta: PersistentMeta) {
        self.fsync();
        self.meta = meta;
    }

    /// A crash: pending writes are lost, except the first `surviving` entries of them
    /// (a torn write). Returns how many pending entries existed.
    pub(super) fn crash(&mut self, surviving: usize) -> usize {
        let pending: Vec<Entry> = self
            .pending
            .drain(..)
            .flat_map(|(_, entries)| entries)
            .collect();
        let total = pending.len();
        self.durable.extend(pending.into_iter().take(surviving));
        self.fsync_scheduled = false;
        total
    }

    /// Entries pending now.
    pub(super) fn pending_entries(&self) -> usize {
        self.pending.iter().map(|(_, entries)| entries.len()).sum()
    }
}
