//! Micro-benchmarks of the MVCC store, single-threaded: `get` hits at a snapshot on a store
//! of about a million keys, installing new versions of existing keys, and installing new
//! keys. Each measured iteration does `BATCH` operations, reported as elements per second.

// `criterion_group!` generates public functions without docs.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;
use std::time::{Duration, Instant};
use tutti_storage::store::{Store, Value};
use tutti_storage::Seqno;

/// Keys in the pre-filled store.
const KEYS: u64 = 1_000_000;
/// Operations per measured iteration.
const BATCH: u64 = 1024;
/// New versions installed between two untimed reclaim passes, to keep memory flat.
const VERSIONS_BETWEEN_RECLAIMS: u64 = 2_000_000;

/// Key `index` as stored: a fixed-width 16-byte key, as a typical short Redis key.
fn key(index: u64) -> [u8; 16] {
    let mut key = *b"key-000000000000";
    key[4..].copy_from_slice(format!("{index:012}").as_bytes());
    key
}

/// A store of `KEYS` keys, each with one 32-byte version at seqno 1.
fn filled_store() -> Store {
    let store = Store::new();
    let value = Value::from(vec![0xab_u8; 32]);
    for index in 0..KEYS {
        store.install(&key(index), Seqno(1), Some(value.clone()));
    }
    store
}

/// `BATCH` random existing keys.
fn random_keys(rng: &mut ChaCha8Rng) -> Vec<[u8; 16]> {
    (0..BATCH).map(|_| key(rng.random_range(0..KEYS))).collect()
}

fn get_hit(criterion: &mut Criterion, store: &Store) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut group = criterion.benchmark_group("store");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("get_hit_1m_keys", |bencher| {
        bencher.iter_batched_ref(
            || random_keys(&mut rng),
            |keys| {
                for key in keys.iter() {
                    black_box(store.get(key, Seqno(1)));
                }
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn install_existing(criterion: &mut Criterion, store: &Store) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let value = Value::from(vec![0xcd_u8; 32]);
    let mut seqno = Seqno(1);
    let mut since_reclaim = 0;
    let mut group = criterion.benchmark_group("store");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("install_existing_key_1m_keys", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut measured = Duration::ZERO;
            for _ in 0..iterations {
                let keys = random_keys(&mut rng);
                let start = Instant::now();
                for key in &keys {
                    seqno = seqno.next();
                    store.install(key, seqno, Some(value.clone()));
                }
                measured += start.elapsed();
                since_reclaim += BATCH;
                if since_reclaim >= VERSIONS_BETWEEN_RECLAIMS {
                    store.reclaim(seqno);
                    since_reclaim = 0;
                }
            }
            measured
        });
    });
    group.finish();
}

fn install_new(criterion: &mut Criterion) {
    let value = Value::from(vec![0xef_u8; 32]);
    let mut group = criterion.benchmark_group("store");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("install_new_key", |bencher| {
        bencher.iter_custom(|iterations| {
            let store = Store::new();
            let mut counter = 0_u64;
            let start = Instant::now();
            for _ in 0..iterations {
                for _ in 0..BATCH {
                    counter += 1;
                    // Scattered keys, so inserts land all over the skip list.
                    let key = counter.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes();
                    store.install(&key, Seqno(counter), Some(value.clone()));
                }
            }
            let measured = start.elapsed();
            drop(store);
            measured
        });
    });
    group.finish();
}

fn store_benches(criterion: &mut Criterion) {
    let store = filled_store();
    get_hit(criterion, &store);
    install_existing(criterion, &store);
    install_new(criterion);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = store_benches
}
criterion_main!(benches);
