//! Scenario tests of the appliers: parallel apply equals serial apply, the watermark
//! never runs ahead of the installs, the byte bound holds, counters are exact, and a
//! worker's panic is never silent.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tutti_net::gcs::MemberId;
use tutti_storage::store::{Store, Value};
use tutti_storage::Seqno;

use super::*;
use crate::certifier::Isolation;
use crate::txn::{TxnId, Write};

const WAIT: Duration = Duration::from_secs(30);
const HOT_KEYS: u64 = 24;

fn key(index: u64) -> Box<[u8]> {
    format!("key-{index:012}").into_bytes().into_boxed_slice()
}

fn value(bytes: &[u8]) -> Value {
    Value::from(bytes)
}

fn txn(number: u64, writes: Vec<Write>) -> Arc<TxnMessage> {
    Arc::new(TxnMessage {
        id: TxnId {
            origin: MemberId(1),
            incarnation: 1,
            number,
        },
        snapshot: Seqno::ZERO,
        isolation: Isolation::Snapshot,
        checked: Vec::new(),
        writes,
        local_deps: Vec::new(),
        after: false,
    })
}

fn job(txn: Arc<TxnMessage>, remote: bool) -> ApplyJob {
    ApplyJob::new(txn, remote)
}

/// A delivered history: for each seqno from 1, a committed transaction writing 1 to 5
/// distinct keys of a small hot set (a fifth of them deletes), or `None` (about one
/// seqno in six: aborted transactions and control entries).
fn history(seed: u64, seqnos: u64) -> Vec<Option<ApplyJob>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (1..=seqnos)
        .map(|number| {
            if rng.random_range(0..6) == 0 {
                return None;
            }
            let mut keys: Vec<u64> = Vec::new();
            for _ in 0..rng.random_range(1..=5) {
                let index = rng.random_range(0..HOT_KEYS);
                if !keys.contains(&index) {
                    keys.push(index);
                }
            }
            let writes = keys
                .into_iter()
                .map(|index| {
                    let deleted = rng.random_range(0..5) == 0;
                    let bytes: Vec<u8> =
                        (0..rng.random_range(1..40)).map(|_| rng.random()).collect();
                    Write {
                        key: key(index),
                        value: (!deleted).then(|| value(&bytes)),
                    }
                })
                .collect();
            Some(job(txn(number, writes), rng.random_range(0..3) != 0))
        })
        .collect()
}

/// The store serial apply gives for `history`.
fn serial(history: &[Option<ApplyJob>]) -> Store {
    let store = Store::new();
    for (seqno, job) in (1..).map(Seqno).zip(history) {
        if let Some(job) = job {
            apply_serial(&store, seqno, &job.txn);
        }
    }
    store
}

fn start(workers: usize, queue_bytes_max: usize) -> (Arc<Store>, Arc<Watermark>, Appliers) {
    let store = Arc::new(Store::new());
    let watermark = Arc::new(Watermark::new());
    let options = ApplierOptions {
        workers,
        queue_bytes_max,
        ..ApplierOptions::default()
    };
    let appliers = Appliers::start(Arc::clone(&store), Arc::clone(&watermark), options)
        .expect("appliers start");
    (store, watermark, appliers)
}

fn last_seqno(history: &[Option<ApplyJob>]) -> Seqno {
    Seqno(history.len() as u64)
}

#[test]
fn parallel_apply_equals_serial_apply_at_every_seqno() {
    for workers in [1, 2, 4] {
        let history = history(7 + workers as u64, 3000);
        let expected = serial(&history);
        let (store, watermark, appliers) = start(workers, 1 << 20);
        for (seqno, job) in (1..).map(Seqno).zip(history.iter().cloned()) {
            appliers.submit(seqno, job);
            // Intermediate snapshots, compared while later seqnos are being installed.
            if seqno.0 % 500 == 0 {
                let behind = Seqno(seqno.0 - 100);
                assert!(
                    watermark.wait_until(behind, WAIT),
                    "watermark stuck below {behind}"
                );
                assert_eq!(
                    store.digest(behind),
                    expected.digest(behind),
                    "{workers} workers: digest differs at seqno {behind}"
                );
            }
        }
        assert_eq!(appliers.submitted(), last_seqno(&history));
        assert!(watermark.wait_until(last_seqno(&history), WAIT));
        appliers.shutdown();
        assert_eq!(watermark.get(), last_seqno(&history));
        for seqno in 0..=history.len() as u64 {
            assert_eq!(
                store.digest(Seqno(seqno)),
                expected.digest(Seqno(seqno)),
                "{workers} workers: digest differs at seqno {seqno}"
            );
        }
    }
}

#[test]
fn a_transaction_of_more_writes_than_the_submitter_marks_is_applied_whole() {
    // Writes past the first 64 are sharded by the workers themselves.
    let writes: Vec<Write> = (0..200)
        .map(|index| Write {
            key: key(index),
            value: Some(value(&index.to_le_bytes())),
        })
        .collect();
    let history = vec![Some(job(txn(1, writes), true))];
    let expected = serial(&history);
    for workers in [1, 2, 3] {
        let (store, watermark, appliers) = start(workers, 1 << 20);
        appliers.submit(Seqno(1), history[0].clone());
        assert!(watermark.wait_until(Seqno(1), WAIT));
        appliers.shutdown();
        assert_eq!(store.len_at(Seqno(1)), 200, "{workers} workers");
        assert_eq!(store.digest(Seqno(1)), expected.digest(Seqno(1)));
    }
}

#[test]
fn watermark_never_passes_a_write_not_yet_visible() {
    let history = history(11, 20_000);
    let expected = Arc::new(serial(&history));
    let (store, watermark, appliers) = start(4, 1 << 20);
    let finished = AtomicBool::new(false);
    let checks = AtomicU64::new(0);
    thread::scope(|scope| {
        scope.spawn(|| {
            while !finished.load(Ordering::Acquire) {
                let at = watermark.get();
                for index in 0..HOT_KEYS {
                    let key = key(index);
                    assert_eq!(
                        store.get(&key, at),
                        expected.get(&key, at),
                        "key {index} read at the watermark {at} differs from serial apply"
                    );
                }
                checks.fetch_add(1, Ordering::Relaxed);
            }
        });
        for (seqno, job) in (1..).map(Seqno).zip(history.iter().cloned()) {
            appliers.submit(seqno, job);
        }
        assert!(watermark.wait_until(last_seqno(&history), WAIT));
        finished.store(true, Ordering::Release);
    });
    appliers.shutdown();
    assert!(checks.load(Ordering::Relaxed) > 0, "the reader never ran");
}

#[test]
fn submit_blocks_while_queued_bytes_exceed_the_bound() {
    // Each transaction writes 16 key bytes + 84 value bytes = 100 bytes.
    let hundred = |number: u64| {
        txn(
            number,
            vec![Write {
                key: key(number),
                value: Some(value(&[7; 84])),
            }],
        )
    };
    let (_store, watermark, appliers) = start(2, 300);
    let stall = appliers.tracker().stall.lock();
    for number in 1..=3 {
        appliers.submit(Seqno(number), Some(job(hundred(number), false)));
    }
    assert_eq!(appliers.stats().queued_bytes, 300);
    thread::scope(|scope| {
        let blocked = scope.spawn(|| appliers.submit(Seqno(4), Some(job(hundred(4), false))));
        thread::sleep(Duration::from_millis(100));
        assert!(!blocked.is_finished(), "submit went past a full queue");
        assert_eq!(appliers.submitted(), Seqno(3));
        assert_eq!(appliers.stats().queued_bytes, 300);
        drop(stall);
        blocked.join().expect("blocked submit");
    });
    assert!(watermark.wait_until(Seqno(4), WAIT));
    assert_eq!(appliers.stats().queued_bytes, 0);

    // A transaction larger than the bound waits for empty queues, then goes alone.
    let stall = appliers.tracker().stall.lock();
    appliers.submit(Seqno(5), Some(job(hundred(5), false)));
    let large = txn(
        6,
        vec![Write {
            key: key(6),
            value: Some(value(&[1; 984])),
        }],
    );
    thread::scope(|scope| {
        let blocked = scope.spawn(|| appliers.submit(Seqno(6), Some(job(large, true))));
        thread::sleep(Duration::from_millis(100));
        assert!(
            !blocked.is_finished(),
            "a large transaction joined a non-empty queue"
        );
        drop(stall);
        blocked.join().expect("large submit");
    });
    assert!(appliers.stats().queued_bytes <= 1000);
    assert!(watermark.wait_until(Seqno(6), WAIT));
    appliers.shutdown();
}

#[test]
fn queued_bytes_stay_within_the_bound_plus_one_transaction() {
    let history = history(23, 5000);
    let largest = history
        .iter()
        .flatten()
        .map(|job| job.txn.writes_bytes() as u64)
        .max()
        .unwrap_or(0);
    let bound = 256;
    let (store, watermark, appliers) = start(2, bound);
    let finished = AtomicBool::new(false);
    let highest = AtomicU64::new(0);
    thread::scope(|scope| {
        scope.spawn(|| {
            while !finished.load(Ordering::Acquire) {
                highest.fetch_max(appliers.stats().queued_bytes, Ordering::Relaxed);
            }
        });
        for (seqno, job) in (1..).map(Seqno).zip(history.iter().cloned()) {
            appliers.submit(seqno, job);
            highest.fetch_max(appliers.stats().queued_bytes, Ordering::Relaxed);
        }
        assert!(watermark.wait_until(last_seqno(&history), WAIT));
        finished.store(true, Ordering::Release);
    });
    let highest = highest.into_inner();
    assert!(
        highest <= bound as u64 + largest,
        "queued {highest} bytes, bound {bound} + largest transaction {largest}"
    );
    assert!(highest > 0, "nothing was ever queued");
    appliers.shutdown();
    let expected = serial(&history);
    assert_eq!(
        store.digest(last_seqno(&history)),
        expected.digest(last_seqno(&history))
    );
}

#[test]
fn stats_count_queued_and_applied_transactions_exactly() {
    let (_store, watermark, appliers) = start(2, 1 << 20);
    assert_eq!(
        appliers.stats(),
        ApplierStats {
            workers: 2,
            ..ApplierStats::default()
        }
    );
    let stall = appliers.tracker().stall.lock();
    let mut bytes = 0;
    let mut seqno = Seqno::ZERO;
    for number in 0..10_u64 {
        seqno = seqno.next();
        if number % 4 == 3 {
            appliers.submit(seqno, None);
            continue;
        }
        let writes = vec![
            Write {
                key: key(number),
                value: Some(value(&[3; 10])),
            },
            Write {
                key: key(number + 100),
                value: None,
            },
        ];
        let txn = txn(number, writes);
        bytes += txn.writes_bytes() as u64;
        appliers.submit(seqno, Some(job(txn, number % 2 == 0)));
    }
    // Seqnos 4 and 8 are `None`: 8 committed, the even-numbered ones remote.
    let remote = (0..10_u64).filter(|n| n % 4 != 3 && n % 2 == 0).count() as u64;
    assert_eq!(
        appliers.stats(),
        ApplierStats {
            queued_txns: 8,
            queued_bytes: bytes,
            remote_queued_txns: remote,
            applied_txns: 0,
            remote_applied_txns: 0,
            workers: 2,
        }
    );
    assert_eq!(
        watermark.get(),
        Seqno::ZERO,
        "the watermark passed stalled writes"
    );
    drop(stall);
    assert!(watermark.wait_until(seqno, WAIT));
    assert_eq!(
        appliers.stats(),
        ApplierStats {
            queued_txns: 0,
            queued_bytes: 0,
            remote_queued_txns: 0,
            applied_txns: 8,
            remote_applied_txns: remote,
            workers: 2,
        }
    );
    appliers.shutdown();
}

#[test]
fn none_seqnos_and_empty_transactions_pass_at_once_when_idle() {
    let (_store, watermark, appliers) = start(3, 1 << 20);
    appliers.submit(Seqno(1), None);
    assert_eq!(watermark.get(), Seqno(1));
    appliers.submit(Seqno(2), Some(job(txn(1, Vec::new()), true)));
    assert_eq!(watermark.get(), Seqno(2));
    assert_eq!(appliers.stats().applied_txns, 1);
    assert_eq!(appliers.stats().remote_applied_txns, 1);
    appliers.shutdown();
}

#[test]
fn appliers_start_at_a_recovered_watermark() {
    let store = Arc::new(Store::new());
    let watermark = Arc::new(Watermark::at(Seqno(41)));
    let appliers = Appliers::start(store.clone(), watermark.clone(), ApplierOptions::default())
        .expect("start");
    let write = Write {
        key: key(1),
        value: Some(value(b"v")),
    };
    appliers.submit(Seqno(42), Some(job(txn(1, vec![write]), false)));
    assert!(watermark.wait_until(Seqno(42), WAIT));
    assert_eq!(store.get(&key(1), Seqno(42)).as_deref(), Some(&b"v"[..]));
    appliers.shutdown();
}

#[test]
#[should_panic(expected = "expected 2")]
fn submit_panics_on_a_seqno_that_is_not_the_next() {
    let (_store, _watermark, appliers) = start(1, 1 << 20);
    appliers.submit(Seqno(1), None);
    appliers.submit(Seqno(3), None);
}

#[test]
fn start_refuses_options_out_of_range() {
    let store = Arc::new(Store::new());
    let watermark = Arc::new(Watermark::new());
    let refused = |workers, queue_bytes_max| {
        let options = ApplierOptions {
            workers,
            queue_bytes_max,
            ..ApplierOptions::default()
        };
        Appliers::start(store.clone(), watermark.clone(), options).err()
    };
    assert!(matches!(
        refused(0, 1),
        Some(ApplierError::WorkersOutOfRange { workers: 0, .. })
    ));
    assert!(matches!(
        refused(constants::APPLIER_WORKERS_MAX + 1, 1),
        Some(ApplierError::WorkersOutOfRange { .. })
    ));
    assert!(matches!(refused(1, 0), Some(ApplierError::QueueBytesZero)));
    assert!(refused(constants::APPLIER_WORKERS_MAX, 1).is_none());
}

#[test]
fn a_worker_panic_is_reported_by_the_next_submit_and_by_shutdown() {
    let (store, _watermark, appliers) = start(2, 1 << 20);
    // Installing at or below a reclaimed horizon is a programmer error the store asserts.
    store.reclaim(Seqno(100));
    let write = Write {
        key: key(1),
        value: Some(value(b"v")),
    };
    appliers.submit(Seqno(1), Some(job(txn(1, vec![write]), false)));
    let deadline = Instant::now() + WAIT;
    let mut seqno = Seqno(1);
    let reported = loop {
        seqno = seqno.next();
        let submit = panic::catch_unwind(AssertUnwindSafe(|| appliers.submit(seqno, None)));
        if submit.is_err() {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        thread::sleep(Duration::from_millis(1));
    };
    assert!(reported, "submit went on after a worker died");
    let shutdown = panic::catch_unwind(AssertUnwindSafe(|| appliers.shutdown()));
    assert!(shutdown.is_err(), "shutdown hid a worker's panic");
}

#[test]
fn every_committed_transaction_gives_one_apply_latency_sample() {
    let (_store, watermark, appliers) = start(2, 1 << 20);
    let jobs = history(7, 300);
    let committed = jobs.iter().filter(|job| job.is_some()).count() as u64;
    for (seqno, job) in (1..).map(Seqno).zip(jobs) {
        appliers.submit(seqno, job);
    }
    assert!(watermark.wait_until(Seqno(300), WAIT));
    assert_eq!(appliers.apply_latency().count(), committed);
    appliers.shutdown();
}
