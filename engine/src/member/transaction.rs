//! Interactive transactions: begin at snapshot = watermark, read and write, commit.
//!
//! Reads see the transaction's own writes, else the store at the snapshot (MVCC: no
//! locks, no interference from later commits). `commit` builds the checked set of the
//! isolation level (snapshot: the written keys; serializable: the read keys), runs the
//! exact early check against the certifier's index (a hit is a sure abort, so it is
//! returned without proposing), proposes, and waits for the verdict and the local apply.
//! A transaction that wrote nothing commits without touching the group.

use std::sync::Arc;

use tutti_storage::store::{SnapshotHold, Value};
use tutti_storage::Seqno;

use super::error::TxnError;
use super::pending::Proposed;
use super::Inner;
use crate::certifier::{CheckedKey, Isolation, KeyHash};
use crate::consistency::Consistency;
use crate::txn::{own_write, record_write, Write};

/// An interactive transaction. Dropping it without committing rolls it back (nothing
/// was proposed).
pub struct Transaction {
    inner: Arc<Inner>,
    isolation: Isolation,
    snapshot: Seqno,
    /// Keeps the snapshot readable until the transaction ends.
    hold: Option<SnapshotHold>,
    read: Vec<KeyHash>,
    writes: Vec<Write>,
}

impl Transaction {
    pub(crate) fn begin(inner: Arc<Inner>, isolation: Isolation) -> Transaction {
        inner.settle_roles_blocking();
        let snapshot = inner.watermark.get();
        let hold = inner.snapshots.open(snapshot).ok();
        Transaction {
            inner,
            isolation,
            snapshot,
            hold,
            read: Vec::new(),
            writes: Vec::new(),
        }
    }

    /// The snapshot this transaction reads at.
    pub fn snapshot(&self) -> Seqno {
        self.snapshot
    }

    /// Reads `key`: this transaction's own write, else the store at the snapshot.
    pub fn get(&mut self, key: &[u8]) -> Option<Value> {
        if let Some(write) = own_write(&self.writes, key) {
            return write.value.clone();
        }
        let hash = KeyHash::of(key);
        if !self.read.contains(&hash) {
            self.read.push(hash);
        }
        self.inner.store.get(key, self.snapshot)
    }

    /// Writes `value` at `key`.
    pub fn put(&mut self, key: &[u8], value: impl Into<Value>) {
        record_write(&mut self.writes, key, Some(value.into()));
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: &[u8]) {
        record_write(&mut self.writes, key, None);
    }

    /// Commits asynchronously (on a monoio runtime with timers). Returns the commit's
    /// seqno (the snapshot for a transaction that wrote nothing) once the local
    /// watermark passed it.
    pub async fn commit(self) -> Result<Seqno, TxnError> {
        let inner = Arc::clone(&self.inner);
        match self.propose()? {
            Ok(proposed) => proposed.outcome(&inner).await,
            Err(snapshot) => Ok(snapshot),
        }
    }

    /// [`Transaction::commit`], blocking the calling thread (not a monoio thread).
    pub fn commit_blocking(self) -> Result<Seqno, TxnError> {
        let inner = Arc::clone(&self.inner);
        match self.propose()? {
            Ok(proposed) => proposed.outcome_blocking(&inner),
            Err(snapshot) => Ok(snapshot),
        }
    }

    /// Proposes the transaction: `Ok(Err(snapshot))` when it wrote nothing.
    fn propose(self) -> Result<Result<Proposed, Seqno>, TxnError> {
        if self.writes.is_empty() {
            return Ok(Err(self.snapshot));
        }
        let observed = |keys: &[KeyHash]| -> Vec<CheckedKey> {
            keys.iter()
                .map(|&key| CheckedKey {
                    key,
                    observed_at: self.snapshot,
                })
                .collect()
        };
        let checked = match self.isolation {
            Isolation::Serializable => observed(&self.read),
            Isolation::Snapshot | Isolation::Command => {
                let written: Vec<KeyHash> = self
                    .writes
                    .iter()
                    .map(|write| KeyHash::of(&write.key))
                    .collect();
                observed(&written)
            }
        };
        if let Some(reason) = self.inner.index.early_conflict(&checked, &[]) {
            return Err(TxnError::from_abort(reason));
        }
        let inner = Arc::clone(&self.inner);
        let mut local = inner.local.lock();
        let txn = local.propose_interactive(self.snapshot, self.isolation, checked, self.writes)?;
        // An interactive transaction does not wait for a consistency level.
        inner
            .propose(&mut local, txn, self.hold, Consistency::Eventual)
            .map(Ok)
    }
}
