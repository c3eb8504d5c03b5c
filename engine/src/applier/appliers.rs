//! The handle of the applier workers: starting them, submitting every delivered seqno,
//! shutting them down.

use std::any::Any;
use std::iter;
use std::panic;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use tutti_storage::store::Store;
use tutti_storage::Seqno;

use super::constants::{APPLIER_QUEUE_PARTS_MAX, APPLIER_WORKERS_MAX};
use super::tracker::Tracker;
use super::watermark::Watermark;
use super::worker::{shard_of, Part, Worker, FIRST_WRITES};
use super::{ApplierError, ApplierOptions, ApplierStats, ApplyJob};
use crate::metrics::HistogramSnapshot;

/// The running applier workers. Dropping it stops them as [`Appliers::shutdown`] does,
/// except that a worker's panic is not propagated.
#[derive(Debug)]
pub struct Appliers {
    /// The done tracker shared with the workers.
    tracker: Arc<Tracker>,
    /// One bounded queue per worker, in shard order; emptied at shutdown to close them.
    queues: Vec<flume::Sender<Part>>,
    /// The worker threads, in shard order.
    threads: Vec<JoinHandle<()>>,
}

impl Appliers {
    /// Starts `workers` key-sharded worker threads (named "tutti-applier-N") installing
    /// into `store` and advancing `watermark`. The first seqno to submit is the one after
    /// the watermark.
    pub fn start(
        store: Arc<Store>,
        watermark: Arc<Watermark>,
        options: ApplierOptions,
    ) -> Result<Appliers, ApplierError> {
        let workers = options.workers;
        if !(1..=APPLIER_WORKERS_MAX).contains(&workers) {
            return Err(ApplierError::WorkersOutOfRange {
                workers,
                max: APPLIER_WORKERS_MAX,
            });
        }
        if options.queue_bytes_max == 0 {
            return Err(ApplierError::QueueBytesZero);
        }
        let tracker = Arc::new(Tracker::new(
            watermark,
            workers,
            options.queue_bytes_max as u64,
        ));
        let mut appliers = Appliers {
            tracker: Arc::clone(&tracker),
            queues: Vec::with_capacity(workers),
            threads: Vec::with_capacity(workers),
        };
        for (index, store) in iter::repeat_n(store, workers).enumerate() {
            let (sender, receiver) = flume::bounded(APPLIER_QUEUE_PARTS_MAX);
            let worker = Worker {
                index,
                workers,
                store,
                tracker: Arc::clone(&tracker),
                queue: receiver,
                delay: options.delay_per_txn,
            };
            let spawned = thread::Builder::new()
                .name(format!("tutti-applier-{index}"))
                .spawn(move || worker.run());
            match spawned {
                Ok(thread) => {
                    appliers.queues.push(sender);
                    appliers.threads.push(thread);
                }
                // Dropping `appliers` stops the workers already started.
                Err(source) => return Err(ApplierError::Spawn { index, source }),
            }
        }
        Ok(appliers)
    }

    /// Hands the appliers the delivered `seqno`: `Some(job)` for a committed transaction,
    /// `None` for anything else (an aborted transaction, a control entry), which the
    /// watermark passes as soon as everything before it is applied.
    ///
    /// Call it for every delivered seqno, in increasing order, each exactly once, the
    /// first being the watermark's seqno at start plus one; any other seqno panics (a
    /// programmer error). It blocks while the queues hold more than `queue_bytes_max`
    /// bytes of writes; a transaction larger than the bound alone waits for empty queues.
    /// It panics if a worker died, since the store can then never be complete.
    pub fn submit(&self, seqno: Seqno, job: Option<ApplyJob>) {
        let Some(job) = job else {
            self.tracker.submit(seqno, 0, 0, None);
            self.tracker.advance();
            return;
        };
        // Timed from here, the byte bound's wait included.
        self.tracker.apply_clock.started(seqno);
        let workers = self.queues.len();
        let mut bytes_by_worker = [0_u64; APPLIER_WORKERS_MAX];
        let mut first_writes_by_worker = [0_u64; APPLIER_WORKERS_MAX];
        let mut involved = 0_u64;
        assert_eq!(
            job.written.len(),
            job.txn.writes.len(),
            "an apply job carries one key hash per write"
        );
        for (position, (write, hash)) in job.txn.writes.iter().zip(&job.written).enumerate() {
            let worker = shard_of(*hash, workers);
            bytes_by_worker[worker] += write.size_bytes() as u64;
            involved |= 1 << worker;
            if position < FIRST_WRITES {
                first_writes_by_worker[worker] |= 1 << position;
            }
        }
        let bytes = bytes_by_worker[..workers].iter().sum();
        let point = self
            .tracker
            .submit(seqno, bytes, involved, Some(job.remote));
        if involved == 0 {
            // A transaction that writes nothing has no part: nothing will report it.
            self.tracker.advance();
            return;
        }
        let mut remaining = involved;
        while remaining != 0 {
            let worker = remaining.trailing_zeros() as usize;
            remaining &= remaining - 1;
            let part = Part {
                txn: Arc::clone(&job.txn),
                point,
                bytes: bytes_by_worker[worker],
                first_writes: first_writes_by_worker[worker],
            };
            assert!(
                self.queues[worker].send(part).is_ok(),
                "applier worker {worker} stopped by a panic (see its message above); the store is incomplete"
            );
        }
    }

    /// The highest seqno submitted.
    pub fn submitted(&self) -> Seqno {
        self.tracker.submitted()
    }

    /// Queue and apply counters. A transaction counts as applied once the watermark has
    /// passed it (its writes are visible), and as queued until then.
    pub fn stats(&self) -> ApplierStats {
        self.tracker.stats()
    }

    /// Committed transactions from [`submit`](Self::submit) to the watermark passing
    /// them (the apply latency).
    pub fn apply_latency(&self) -> HistogramSnapshot {
        self.tracker.apply_clock.histogram().snapshot()
    }

    /// The done tracker, for tests that stall the workers.
    #[cfg(test)]
    pub(super) fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Stops the workers once they have applied everything submitted, and joins them.
    /// A worker's panic is propagated here.
    pub fn shutdown(mut self) {
        if let Some(payload) = self.stop() {
            panic::resume_unwind(payload);
        }
    }

    /// Closes the queues and joins the workers; returns the first worker's panic, if any.
    fn stop(&mut self) -> Option<Box<dyn Any + Send>> {
        // A closed queue still delivers what it holds before it reports the end.
        self.queues.clear();
        let mut failure = None;
        for thread in self.threads.drain(..) {
            if let Err(payload) = thread.join() {
                failure.get_or_insert(payload);
            }
        }
        failure
    }
}

impl Drop for Appliers {
    fn drop(&mut self) {
        if self.stop().is_some() {
            tracing::error!("an applier worker stopped by a panic; the store is incomplete");
        }
    }
}
