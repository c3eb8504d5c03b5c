//! Criterion benchmark of the parallel appliers (DESIGN.md section 14).
//!
//! - `apply_non_conflicting/workers/<n>`: throughput in transactions per second of
//!   submitting 20,000 committed transactions, each writing 4 distinct 16-byte keys with
//!   100-byte values (every key written once, so each install adds a key to the store),
//!   and waiting until the watermark has passed the last one, with `n` worker threads.
//!   The jobs carry their key hashes, as the member's certification computed them; they
//!   are built before the clock starts.
//!   The submitting thread is the benchmark's own and competes with the workers for the
//!   cores. Each iteration starts from an empty store; starting the workers, shutting them
//!   down and dropping the store are not timed.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tutti_engine::applier::{ApplierOptions, Appliers, ApplyJob, Watermark};
use tutti_engine::certifier::Isolation;
use tutti_engine::txn::{TxnId, TxnMessage, Write};
use tutti_net::gcs::MemberId;
use tutti_storage::store::{Store, Value};
use tutti_storage::Seqno;

const TXNS: u64 = 20_000;
const KEYS_PER_TXN: u64 = 4;
const VALUE_BYTES: usize = 100;
const WORKERS: [usize; 2] = [1, 2];
const WAIT: Duration = Duration::from_secs(60);

/// splitmix64: well-spread, distinct key bytes.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A 16-byte key, distinct for each `index`.
fn key(index: u64) -> Box<[u8]> {
    let mut key = [0_u8; 16];
    key[..8].copy_from_slice(&mix(index).to_be_bytes());
    key[8..].copy_from_slice(&index.to_le_bytes());
    Box::from(key)
}

/// `TXNS` transactions writing `KEYS_PER_TXN` keys each, no key twice, each value its own
/// allocation (as delivered transactions are).
fn workload() -> Vec<Arc<TxnMessage>> {
    (0..TXNS)
        .map(|number| {
            let writes = (0..KEYS_PER_TXN)
                .map(|k| {
                    let index = number * KEYS_PER_TXN + k;
                    Write {
                        key: key(index),
                        value: Some(Value::from(vec![index as u8; VALUE_BYTES])),
                    }
                })
                .collect();
            Arc::new(TxnMessage {
                id: TxnId {
                    origin: MemberId(2),
                    incarnation: 1,
                    number: number + 1,
                },
                snapshot: Seqno(number),
                isolation: Isolation::Snapshot,
                checked: Vec::new(),
                writes,
                local_deps: Vec::new(),
                after: false,
            })
        })
        .collect()
}

/// Applies the whole workload into a fresh store with `workers` workers; returns the time
/// from the first submit to the watermark passing the last transaction.
fn apply_all(workload: &[Arc<TxnMessage>], workers: usize) -> Duration {
    let store = Arc::new(Store::new());
    let watermark = Arc::new(Watermark::new());
    let options = ApplierOptions {
        workers,
        ..ApplierOptions::default()
    };
    let appliers =
        Appliers::start(Arc::clone(&store), Arc::clone(&watermark), options).expect("start");
    let last = Seqno(workload.len() as u64);
    // The jobs as the member's sink hands them over: certification already hashed the
    // written keys, so building them (and those hashes) is not the appliers' time.
    let jobs: Vec<ApplyJob> = workload
        .iter()
        .map(|txn| ApplyJob::new(Arc::clone(txn), true))
        .collect();
    let start = Instant::now();
    for (seqno, job) in (1..).map(Seqno).zip(jobs) {
        appliers.submit(seqno, Some(job));
    }
    assert!(watermark.wait_until(last, WAIT), "the watermark stalled");
    let elapsed = start.elapsed();
    black_box(appliers.stats());
    appliers.shutdown();
    drop(black_box(store));
    elapsed
}

fn bench_apply(c: &mut Criterion) {
    let workload = workload();
    let mut group = c.benchmark_group("apply_non_conflicting");
    group.throughput(Throughput::Elements(TXNS));
    for workers in WORKERS {
        group.bench_function(BenchmarkId::new("workers", workers), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| apply_all(&workload, workers)).sum());
        });
    }
    group.finish();
}

criterion_group! {
    name = applier;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10);
    targets = bench_apply
}
criterion_main!(applier);
