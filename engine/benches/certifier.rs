//! Criterion benchmarks of the certifier and its write-set index (DESIGN.md section 14).
//!
//! - `certify/<live>/<reader>`: certification throughput in checked keys per second on
//!   one core, with the index holding `live` live entries (10^4 to 10^7), with and
//!   without a concurrent reader thread doing lookups (the sessions' early checks).
//!   Each transaction rewrites four existing keys, drawn at random over the whole index,
//!   under snapshot isolation (four keys checked, four written), so the index size stays
//!   fixed while it runs. `batch` certifies 256 transactions with `certify_batch` (which
//!   prefetches index slots ahead), `one_by_one` calls `certify` for each.
//! - `index_lookup/<live>/{writer,reader}`: random lookups, by the certifier's own path
//!   and by a reader handle (the seqlock-checked path), one after the other (no prefetch).
//! - `index_update/<live>`: rewriting an existing key's last writer.
//! - `index_insert_fresh`: inserting new keys into an empty index.
//!
//! Each index is built once per size (10^7 entries take seconds) and dropped before the
//! next size, so memory stays at one index (about 270 MB at 10^7).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tutti_engine::certifier::{
    CertificationRequest, Certifier, IndexConfig, IndexReader, IndexWriter, KeyHash, Verdict,
};
use tutti_net::gcs::MemberId;
use tutti_storage::Seqno;

const SIZES: [u64; 4] = [10_000, 100_000, 1_000_000, 10_000_000];
const KEYS_PER_TXN: usize = 4;
const TXNS_PER_ITER: usize = 256;
const LOAD_BATCH_KEYS: usize = 4096;
const LOOKUPS_PER_ITER: u64 = 1024;

/// splitmix64: a fixed, well-spread sequence of key hashes and choices.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The `draw`-th random choice in 0..live (multiply-shift: no division in the timed loop).
fn pick(draw: u64, live: u64) -> u64 {
    ((u128::from(mix(draw)) * u128::from(live)) >> 64) as u64
}

fn key(i: u64) -> KeyHash {
    KeyHash(mix(i))
}

/// A certifier holding `live` live entries (keys 0..live), each loaded by a committed
/// transaction of `LOAD_BATCH_KEYS` keys. Returns it and the next free seqno.
fn loaded(live: u64) -> (Certifier, u64) {
    let mut certifier = Certifier::new(IndexConfig::for_live_entries(live)).expect("geometry");
    let mut seqno = 1;
    let mut next_key = 0;
    while next_key < live {
        let end = (next_key + LOAD_BATCH_KEYS as u64).min(live);
        let written = (next_key..end).map(key).collect();
        let request = CertificationRequest::snapshot(
            Seqno(seqno),
            Seqno(seqno - 1),
            written,
            vec![],
            MemberId(1),
        );
        assert!(
            certifier.certify(&request).is_commit(),
            "loading must commit"
        );
        seqno += 1;
        next_key = end;
    }
    (certifier, seqno)
}

/// A ring of transactions, each rewriting `KEYS_PER_TXN` existing keys; the keys are
/// drawn afresh before each use so that lookups spread over the whole index.
fn workload() -> Vec<CertificationRequest> {
    (0..TXNS_PER_ITER as u64)
        .map(|_| {
            let written = vec![KeyHash(0); KEYS_PER_TXN];
            CertificationRequest::snapshot(Seqno(1), Seqno(0), written, vec![], MemberId(2))
        })
        .collect()
}

/// Rebases the ring to fresh seqnos (each transaction reads at the seqno before it, so
/// each commits) and fresh random keys of the `live` loaded ones.
fn refill(ring: &mut [CertificationRequest], seqno: &mut u64, draw: &mut u64, live: u64) {
    for request in ring.iter_mut() {
        request.seqno = Seqno(*seqno);
        request.snapshot = Seqno(*seqno - 1);
        for (written, checked) in request.written.iter_mut().zip(&mut request.checked) {
            *draw += 1;
            *written = key(pick(*draw, live));
            checked.key = *written;
            checked.observed_at = request.snapshot;
        }
        *seqno += 1;
    }
}

/// Certifies the ring, as one delivered batch or one transaction at a time.
fn certify_ring(
    certifier: &mut Certifier,
    ring: &[CertificationRequest],
    batched: bool,
    out: &mut Vec<Verdict>,
) {
    out.clear();
    if batched {
        certifier.certify_batch(ring, out);
    } else {
        out.extend(ring.iter().map(|request| certifier.certify(request)));
    }
    debug_assert!(out.iter().all(Verdict::is_commit));
    black_box(&out);
}

/// A thread doing lookups of existing keys until dropped.
struct BackgroundReader {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<u64>>,
}

impl BackgroundReader {
    fn start(reader: IndexReader, live: u64) -> BackgroundReader {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let mut lookups = 0u64;
            while !flag.load(Ordering::Relaxed) {
                black_box(reader.last_writer(key(pick(lookups, live))));
                lookups += 1;
            }
            lookups
        });
        BackgroundReader {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for BackgroundReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            black_box(handle.join().expect("reader thread"));
        }
    }
}

fn bench_size(c: &mut Criterion, live: u64) {
    let (mut certifier, mut seqno) = loaded(live);
    let mut ring = workload();
    let mut verdicts = Vec::with_capacity(TXNS_PER_ITER);
    let mut draw = 0;
    let mut group = c.benchmark_group("certify");
    group.throughput(Throughput::Elements((TXNS_PER_ITER * KEYS_PER_TXN) as u64));
    for (name, batched) in [("batch", true), ("one_by_one", false)] {
        group.bench_function(BenchmarkId::new(live.to_string(), name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    refill(&mut ring, &mut seqno, &mut draw, live);
                    let start = Instant::now();
                    certify_ring(&mut certifier, &ring, batched, &mut verdicts);
                    total += start.elapsed();
                }
                total
            });
        });
    }
    {
        let _reader = BackgroundReader::start(certifier.reader(), live);
        group.bench_function(
            BenchmarkId::new(live.to_string(), "batch_with_reader"),
            |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        refill(&mut ring, &mut seqno, &mut draw, live);
                        let start = Instant::now();
                        certify_ring(&mut certifier, &ring, true, &mut verdicts);
                        total += start.elapsed();
                    }
                    total
                });
            },
        );
    }
    group.finish();

    let reader = certifier.reader();
    let mut group = c.benchmark_group("index_lookup");
    group.throughput(Throughput::Elements(LOOKUPS_PER_ITER));
    group.bench_function(BenchmarkId::new(live.to_string(), "writer"), |b| {
        b.iter(|| {
            for _ in 0..LOOKUPS_PER_ITER {
                draw += 1;
                black_box(certifier.last_writer(key(pick(draw, live))));
            }
        });
    });
    group.bench_function(BenchmarkId::new(live.to_string(), "reader"), |b| {
        b.iter(|| {
            for _ in 0..LOOKUPS_PER_ITER {
                draw += 1;
                black_box(reader.last_writer(key(pick(draw, live))));
            }
        });
    });
    group.finish();
    drop(certifier);
    bench_update(c, live);
}

fn bench_update(c: &mut Criterion, live: u64) {
    // A raw index, to time `set` alone (no verdict logic around it).
    let mut index = IndexWriter::new(IndexConfig::for_live_entries(live)).expect("geometry");
    for i in 0..live {
        index.set(key(i), Seqno(1));
    }
    let mut seqno = 2;
    let mut draw = 1 << 40;
    let mut group = c.benchmark_group("index_update");
    group.throughput(Throughput::Elements(LOOKUPS_PER_ITER));
    group.bench_function(live.to_string(), |b| {
        b.iter(|| {
            for _ in 0..LOOKUPS_PER_ITER {
                draw += 1;
                index.set(key(pick(draw, live)), Seqno(seqno));
            }
            seqno += 1;
        });
    });
    group.finish();
}

fn bench_insert_fresh(c: &mut Criterion) {
    const KEYS: u64 = 1 << 16;
    let mut group = c.benchmark_group("index_insert_fresh");
    group.throughput(Throughput::Elements(KEYS));
    group.bench_function("65536_into_1e6_capacity", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut index =
                    IndexWriter::new(IndexConfig::for_live_entries(1_000_000)).expect("geometry");
                let start = Instant::now();
                for i in 0..KEYS {
                    index.set(key(i), Seqno(1));
                }
                total += start.elapsed();
                black_box(&index);
            }
            total
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    for live in SIZES {
        bench_size(c, live);
    }
    bench_insert_fresh(c);
}

criterion_group! {
    name = certifier;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = benches
}
criterion_main!(certifier);
