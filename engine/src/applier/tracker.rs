//! The done tracker: from what the submitter queued and what each worker finished, the
//! contiguous prefix of applied seqnos, which becomes the watermark.
//!
//! It keeps no state per transaction. Each worker's queue is in seqno order and a worker
//! installs its parts one after the other, so a worker is described by two numbers: the
//! highest seqno it was sent a part of (`sent_through`) and the highest seqno whose part
//! it finished (`done`). Every part of that worker at or below `done` is installed, and
//! when `done >= sent_through` it has nothing pending at all. Hence
//!
//! ```text
//!   watermark = min( submitted,  min over busy workers of done )     busy: done < sent_through
//! ```
//!
//! is a seqno at or below which every part is installed. Each report of a worker and
//! each submission that queues no part recomputes it; the one made after the last change
//! sees every change, because all of them are published under locks (the submitter's
//! and each worker's) that the computation takes in turn.
//!
//! The byte bound lives here too: the submitter waits under the same lock for workers to
//! release the bytes of the parts they installed.
//!
//! Each published seqno travels with the number of committed (and remote committed)
//! transactions at or below it, so the seqno the watermark reaches also gives the exact
//! number of transactions applied, without counting per transaction.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use tutti_storage::Seqno;

use super::latency::ApplyClock;
use super::watermark::Watermark;
use super::ApplierStats;

/// A place in the order and the transactions at or below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Point {
    /// The seqno.
    pub seqno: Seqno,
    /// Committed transactions submitted with a seqno at or below `seqno`.
    pub committed_txns: u64,
    /// The ones among them proposed by another member.
    pub remote_txns: u64,
}

/// The submitter's side, behind the tracker's main lock.
#[derive(Debug)]
struct Submitted {
    /// The highest seqno submitted. Every part of every seqno at or below it is queued.
    point: Point,
    /// Bytes of writes queued and not yet installed.
    queued_bytes: u64,
    /// The submitter sleeps on `Tracker::space`: reports must wake it.
    waiting_for_space: bool,
    /// A worker that stopped by a panic, so the submitter stops waiting for it.
    failed_worker: Option<usize>,
}

/// Where one worker stands. Aligned to its own cache lines: the worker writes it at every
/// report while the others read it.
#[derive(Debug)]
#[repr(align(128))]
struct WorkerProgress {
    /// The highest seqno with a part queued to this worker, stored by the submitter before
    /// it publishes that seqno as submitted.
    sent_through: AtomicU64,
    /// The last part the worker finished (all its earlier parts are finished too).
    done: Mutex<Point>,
}

/// Shared by the submitter, the workers and `stats`.
#[derive(Debug)]
pub(super) struct Tracker {
    /// The submitter's side; also the lock the byte bound waits on.
    submitted: Mutex<Submitted>,
    /// Signalled when workers release bytes (or one fails) while the submitter waits.
    space: Condvar,
    /// One per worker.
    workers: Box<[WorkerProgress]>,
    /// Committed transactions at or below the watermark.
    applied_txns: AtomicU64,
    /// Remote ones among them.
    remote_applied_txns: AtomicU64,
    /// What the tracker advances.
    watermark: Arc<Watermark>,
    /// The byte bound of the queues.
    queue_bytes_max: u64,
    /// Times each committed transaction until the watermark passes it.
    pub apply_clock: ApplyClock,
    /// Held by tests to stop the workers before their next part.
    #[cfg(test)]
    pub stall: Mutex<()>,
}

impl Tracker {
    /// A tracker for `workers` workers, starting at the watermark's current seqno.
    pub fn new(watermark: Arc<Watermark>, workers: usize, queue_bytes_max: u64) -> Tracker {
        let start = Point {
            seqno: watermark.get(),
            committed_txns: 0,
            remote_txns: 0,
        };
        Tracker {
            submitted: Mutex::new(Submitted {
                point: start,
                queued_bytes: 0,
                waiting_for_space: false,
                failed_worker: None,
            }),
            space: Condvar::new(),
            workers: (0..workers)
                .map(|_| WorkerProgress {
                    sent_through: AtomicU64::new(start.seqno.0),
                    done: Mutex::new(start),
                })
                .collect(),
            applied_txns: AtomicU64::new(0),
            remote_applied_txns: AtomicU64::new(0),
            watermark,
            queue_bytes_max,
            apply_clock: ApplyClock::default(),
            #[cfg(test)]
            stall: Mutex::new(()),
        }
    }

    /// Records the submission of `seqno`: a committed transaction (`remote` is `Some`) of
    /// `bytes` bytes whose parts go to the workers in the bit set `involved`, or anything
    /// else (`remote` is `None`). Waits while the queues hold too many bytes. Returns the
    /// point of `seqno`, which the caller puts in each part it then queues.
    pub fn submit(&self, seqno: Seqno, bytes: u64, involved: u64, remote: Option<bool>) -> Point {
        let mut submitted = self.submitted.lock();
        assert_no_failure(&submitted);
        let expected = submitted.point.seqno.next();
        assert!(
            seqno == expected,
            "applier submit of seqno {seqno}, expected {expected}: delivery must be contiguous"
        );
        // The bound holds the queue at or below `queue_bytes_max`, except that a single
        // transaction larger than the bound is let in alone, or it could never be applied.
        while submitted.queued_bytes > 0 && submitted.queued_bytes + bytes > self.queue_bytes_max {
            submitted.waiting_for_space = true;
            self.space.wait(&mut submitted);
            submitted.waiting_for_space = false;
            assert_no_failure(&submitted);
        }
        submitted.queued_bytes += bytes;
        let mut point = Point {
            seqno,
            ..submitted.point
        };
        if let Some(remote) = remote {
            point.committed_txns += 1;
            point.remote_txns += u64::from(remote);
        }
        let mut workers = involved;
        while workers != 0 {
            let worker = workers.trailing_zeros() as usize;
            workers &= workers - 1;
            self.workers[worker]
                .sent_through
                .store(seqno.0, Ordering::Release);
        }
        submitted.point = point;
        point
    }

    /// A worker finished every part up to `done` and installed `released_bytes` bytes
    /// since its last report: publishes it and advances the watermark if it can.
    pub fn report(&self, worker: usize, done: Point, released_bytes: u64) {
        // Bytes first: once the watermark passes these parts, their bytes are released.
        {
            let mut submitted = self.submitted.lock();
            submitted.queued_bytes -= released_bytes;
            if submitted.waiting_for_space {
                self.space.notify_one();
            }
        }
        *self.workers[worker].done.lock() = done;
        self.advance();
    }

    /// Recomputes the applied prefix and moves the watermark and the applied counters to it.
    pub fn advance(&self) {
        let mut applied = self.submitted.lock().point;
        for progress in &*self.workers {
            let sent_through = progress.sent_through.load(Ordering::Acquire);
            let done = *progress.done.lock();
            if done.seqno.0 < sent_through && done.seqno < applied.seqno {
                applied = done;
            }
        }
        // Counters before the watermark: whoever sees the watermark sees them counted.
        self.applied_txns
            .fetch_max(applied.committed_txns, Ordering::AcqRel);
        self.remote_applied_txns
            .fetch_max(applied.remote_txns, Ordering::AcqRel);
        // Samples before the watermark too: whoever sees it sees them recorded.
        self.apply_clock.passed(applied.seqno);
        self.watermark.advance_to(applied.seqno);
    }

    /// A worker stopped by a panic: wakes a submitter waiting for its bytes, which then
    /// reports the failure instead of waiting forever.
    pub fn on_worker_failed(&self, worker: usize) {
        let mut submitted = self.submitted.lock();
        submitted.failed_worker.get_or_insert(worker);
        self.space.notify_all();
    }

    /// The highest seqno submitted.
    pub fn submitted(&self) -> Seqno {
        self.submitted.lock().point.seqno
    }

    /// The counters, with `workers` filled in by the caller.
    pub fn stats(&self) -> ApplierStats {
        // Applied before submitted, so applied never exceeds what it is subtracted from.
        let applied_txns = self.applied_txns.load(Ordering::Acquire);
        let remote_applied_txns = self.remote_applied_txns.load(Ordering::Acquire);
        let submitted = self.submitted.lock();
        ApplierStats {
            queued_txns: submitted.point.committed_txns - applied_txns,
            queued_bytes: submitted.queued_bytes,
            remote_queued_txns: submitted.point.remote_txns - remote_applied_txns,
            applied_txns,
            remote_applied_txns,
            workers: self.workers.len() as u64,
        }
    }
}

/// Panics if a worker died: its parts will never be installed, so the store is incomplete
/// and the watermark stuck; carrying on would hide it.
fn assert_no_failure(submitted: &Submitted) {
    if let Some(worker) = submitted.failed_worker {
        panic!("applier worker {worker} stopped by a panic (see its message above); the store is incomplete");
    }
}
