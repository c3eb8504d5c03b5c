//! Log append throughput: records of 128 B and 4 KiB, in batches of 1, 16 and 256, under
//! sync `none` (the cost of copying into the map) and `batch` (one msync per batch).
//!
//! The log lives in a temporary directory under /tmp (on the real disk, not tmpfs, so
//! `batch` measures real syncs). Old segments are purged as the benchmark goes, so the
//! disk use stays bounded; the purge's cost is part of what is measured.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tutti_storage::log::{Log, LogOptions, SyncPolicy};
use tutti_storage::{Seqno, ViewNumber};

/// Segments kept before the oldest are purged.
const SEGMENTS_KEPT_MAX: usize = 3;

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (sync_name, sync) in [("none", SyncPolicy::None), ("batch", SyncPolicy::Batch)] {
        for record_bytes in [128usize, 4096] {
            for batch in [1usize, 16, 256] {
                let dir = tempfile::tempdir_in("/tmp").expect("tempdir in /tmp");
                let options = LogOptions {
                    sync,
                    ..LogOptions::default()
                };
                let (mut log, _) = Log::open(dir.path(), options).expect("open log");
                let payload = vec![0x5Au8; record_bytes];
                let mut next = 1u64;
                group.throughput(Throughput::Bytes((record_bytes * batch) as u64));
                let id = BenchmarkId::new(format!("{sync_name}/{record_bytes}B"), batch);
                group.bench_function(id, |b| {
                    b.iter(|| {
                        let first = next;
                        next += batch as u64;
                        let records =
                            (first..next).map(|s| (Seqno(s), ViewNumber(1), payload.as_slice()));
                        black_box(log.append_batch(records).expect("append"));
                        if log.segment_count() > SEGMENTS_KEPT_MAX {
                            log.purge_before(log.last_seqno()).expect("purge");
                        }
                    });
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
