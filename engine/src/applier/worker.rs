//! One applier worker thread: it drains its queue of parts in seqno order, installs the
//! writes of its shard of each part into the store, and reports its progress to the done
//! tracker every few parts and whenever its queue runs dry.
//!
//! A worker never reorders its parts (the tracker depends on it) and never blocks on
//! anything but its own empty queue and the short locks of a report.

use std::sync::Arc;
use std::thread;

use crate::certifier::KeyHash;
use tutti_storage::store::Store;
use tutti_storage::Seqno;

use super::constants::APPLIER_REPORT_PARTS;
use super::tracker::{Point, Tracker};
use crate::txn::TxnMessage;

/// One committed transaction's share of one worker: the writes whose key hashes to it.
#[derive(Debug)]
pub(super) struct Part {
    /// The whole transaction; the worker picks its shard's writes out of it, so queueing a
    /// part allocates nothing.
    pub txn: Arc<TxnMessage>,
    /// The transaction's seqno, with the committed counts at or below it.
    pub point: Point,
    /// Bytes of this worker's writes, released when they are installed.
    pub bytes: u64,
    /// Which of the transaction's first [`FIRST_WRITES`] writes are this worker's (bit i
    /// for write i), so that a worker does not hash every key again; later writes of a
    /// larger transaction are hashed by the worker.
    pub first_writes: u64,
}

/// Writes whose worker the submitter hands over in a part's bitmask.
pub(super) const FIRST_WRITES: usize = u64::BITS as usize;

/// The worker a key belongs to, out of `workers`, by the key's hash.
pub(super) fn shard_of(hash: KeyHash, workers: usize) -> usize {
    (hash.0 % workers as u64) as usize
}

/// What a worker thread needs.
pub(super) struct Worker {
    /// This worker's index, its shard.
    pub index: usize,
    /// How many workers share the keys.
    pub workers: usize,
    /// Where it installs.
    pub store: Arc<Store>,
    /// Where it reports.
    pub tracker: Arc<Tracker>,
    /// Its queue; closed by the submitter at shutdown.
    pub queue: flume::Receiver<Part>,
    /// Test-only sleep before each part (`ApplierOptions::delay_per_txn`).
    pub delay: std::time::Duration,
}

impl Worker {
    /// Runs until the queue is closed and empty.
    pub fn run(self) {
        let _failure = FailureGuard {
            tracker: &self.tracker,
            worker: self.index,
        };
        let mut batch = Vec::new();
        while let Ok(first) = self.queue.recv() {
            // Take everything queued in one lock of the channel.
            batch.push(first);
            batch.extend(self.queue.drain());
            let mut since_report = Progress::default();
            for (position, part) in batch.drain(..).enumerate() {
                if !self.delay.is_zero() {
                    std::thread::sleep(self.delay);
                }
                self.install(&part);
                since_report.add(&part);
                if (position + 1) % APPLIER_REPORT_PARTS == 0 {
                    since_report.report(&self.tracker, self.index);
                }
            }
            since_report.report(&self.tracker, self.index);
        }
    }

    /// Installs the writes of this worker's shard of `part`.
    fn install(&self, part: &Part) {
        #[cfg(test)]
        drop(self.tracker.stall.lock());
        let seqno: Seqno = part.point.seqno;
        let writes = &part.txn.writes;
        let mut mine = part.first_writes;
        while mine != 0 {
            let write = &writes[mine.trailing_zeros() as usize];
            mine &= mine - 1;
            self.store.install(&write.key, seqno, write.value.clone());
        }
        for write in writes.iter().skip(FIRST_WRITES) {
            if shard_of(KeyHash::of(&write.key), self.workers) == self.index {
                self.store.install(&write.key, seqno, write.value.clone());
            }
        }
    }
}

/// Parts installed since the last report.
#[derive(Default)]
struct Progress {
    /// The last part installed, if any since the last report.
    done: Option<Point>,
    /// Their bytes.
    bytes: u64,
}

impl Progress {
    fn add(&mut self, part: &Part) {
        self.done = Some(part.point);
        self.bytes += part.bytes;
    }

    fn report(&mut self, tracker: &Tracker, worker: usize) {
        if let Some(done) = self.done.take() {
            tracker.report(worker, done, std::mem::take(&mut self.bytes));
        }
    }
}

/// Tells the tracker when the worker thread unwinds, so that a submitter waiting for this
/// worker's bytes panics instead of waiting forever.
struct FailureGuard<'a> {
    tracker: &'a Tracker,
    worker: usize,
}

impl Drop for FailureGuard<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.tracker.on_worker_failed(self.worker);
        }
    }
}
