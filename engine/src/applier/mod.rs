//! The appliers (DESIGN.md section 6): they install every committed transaction's writes
//! into the store, in parallel, and move the watermark over the contiguous prefix of
//! applied seqnos.
//!
//! ```text
//!   delivery, in seqno order, every seqno once
//!     |  submit(seqno, Some(job) | None)        blocks while > queue_bytes_max bytes queued
//!     v
//!   split by xxh3(key) % workers ----> part ----> [queue 0] -> worker "tutti-applier-0" --+
//!     (one part per worker involved:   part ----> [queue 1] -> worker "tutti-applier-1" --+
//!      the Arc<TxnMessage> + counts)   ...                     store.install(key, seqno)  |
//!     |                                                                                    |
//!     | seqno submitted                                   report: last part done, bytes    |
//!     v                                                                                    v
//!   done tracker: watermark = min(submitted, each busy worker's last done part) ----> Watermark
//!                                                          get / wait_until / reached (sessions,
//!                                                          commits, consistency levels)
//! ```
//!
//! It owns the worker threads, their bounded queues, the byte bound on queued writes, the
//! done tracker and the [`Watermark`]'s waiters, and the queue and apply counters (GR's
//! `COUNT_TRANSACTIONS_REMOTE_IN_APPLIER_QUEUE` and `COUNT_TRANSACTIONS_REMOTE_APPLIED`).
//!
//! Because every version carries its seqno, transactions are installed fully in parallel,
//! with no ordering between workers: all versions of one key go to one worker (keeping a
//! key's version list on one core), and a transaction is applied when every worker it
//! involves has installed its part. [`apply_serial`] is the reference a parallel apply
//! must equal, which the simulator checks by comparing store digests.
//!
//! It must never move the watermark past a seqno with a write not yet installed (readers
//! at the watermark would see half a transaction), never apply a seqno twice or out of the
//! delivered set (aborted transactions are submitted as `None`), never hold unbounded
//! memory (the queues are bounded in bytes of writes and in parts), and never let a
//! worker die silently (the next submit or the shutdown panics with it).

mod appliers;
pub mod constants;
mod latency;
mod tracker;
mod watermark;
mod worker;

#[cfg(test)]
mod tests;

use std::io;
use std::sync::Arc;

use tutti_storage::store::Store;
use tutti_storage::Seqno;

pub use appliers::Appliers;
pub use watermark::{Watermark, WatermarkReached};

use crate::certifier::KeyHash;
use crate::txn::TxnMessage;
use constants::{APPLIER_QUEUE_BYTES_DEFAULT, APPLIER_WORKERS_DEFAULT};

/// How the appliers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplierOptions {
    /// Worker threads, 1 to [`constants::APPLIER_WORKERS_MAX`]; each owns the keys that
    /// hash to it.
    pub workers: usize,
    /// Bytes of writes (keys and values) queued to the workers before `submit` blocks:
    /// what bounds the appliers' memory, whatever the size of transactions.
    pub queue_bytes_max: usize,
    /// For tests only: each worker sleeps this long before each transaction part it
    /// installs, to make one member a slow applier (flow control's tests).
    pub delay_per_txn: std::time::Duration,
}

impl Default for ApplierOptions {
    fn default() -> ApplierOptions {
        ApplierOptions {
            workers: APPLIER_WORKERS_DEFAULT,
            queue_bytes_max: APPLIER_QUEUE_BYTES_DEFAULT,
            delay_per_txn: std::time::Duration::ZERO,
        }
    }
}

/// A committed transaction to apply.
#[derive(Clone, Debug)]
pub struct ApplyJob {
    /// The transaction as delivered; shared with the workers, never copied.
    pub txn: Arc<TxnMessage>,
    /// Proposed by another member: counted apart, as GR's member stats do.
    pub remote: bool,
    /// `KeyHash::of` of each write's key, in write order (certification computed them
    /// already): a write's worker is its hash modulo the workers.
    pub written: Vec<KeyHash>,
}

impl ApplyJob {
    /// A job for `txn`, hashing its keys (when certification's hashes are not at hand).
    pub fn new(txn: Arc<TxnMessage>, remote: bool) -> ApplyJob {
        let written = txn.written();
        ApplyJob {
            txn,
            remote,
            written,
        }
    }
}

/// Queue and apply counters, exact whenever the appliers are idle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplierStats {
    /// Committed transactions submitted that the watermark has not passed yet.
    pub queued_txns: u64,
    /// Bytes of writes queued to the workers and not installed yet.
    pub queued_bytes: u64,
    /// Remote transactions among `queued_txns` (GR's `COUNT_TRANSACTIONS_REMOTE_IN_APPLIER_QUEUE`).
    pub remote_queued_txns: u64,
    /// Committed transactions the watermark has passed since start.
    pub applied_txns: u64,
    /// Remote transactions among `applied_txns` (GR's `COUNT_TRANSACTIONS_REMOTE_APPLIED`).
    pub remote_applied_txns: u64,
    /// Worker threads.
    pub workers: u64,
}

/// Why the appliers could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApplierError {
    /// The configured worker count is outside the supported range.
    #[error("applier workers = {workers} is out of range: set 1 to {max} (one per core is a good start)")]
    WorkersOutOfRange {
        /// The configured count.
        workers: usize,
        /// The most workers supported.
        max: usize,
    },
    /// A zero byte bound would admit nothing but lone transactions.
    #[error("applier queue_bytes_max = 0: set a positive bound (default 64 MiB)")]
    QueueBytesZero,
    /// The operating system refused a thread.
    #[error(
        "cannot start applier worker thread {index}: {source} (check the process's thread limit)"
    )]
    Spawn {
        /// The worker that did not start.
        index: usize,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// Installs every write of `txn` at `seqno`, on the calling thread: the reference that
/// parallel apply must equal, and what a one-member embedding or a test may call directly.
pub fn apply_serial(store: &Store, seqno: Seqno, txn: &TxnMessage) {
    for write in &txn.writes {
        store.install(&write.key, seqno, write.value.clone());
    }
}
