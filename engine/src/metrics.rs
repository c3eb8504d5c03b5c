//! Latency histograms for the metrics endpoint: lock-free, fixed buckets, shaped the way
//! Prometheus wants them (cumulative `le` buckets, a sum and a count).
//!
//! ```text
//!   record(d) ─► bucket i = first bound >= d (in whole microseconds, rounded up)
//!                counts[i] += 1, sum_nanos += d          (two relaxed atomic adds)
//!   snapshot() ─► counts per bucket, sum; count = the sum of the counts
//! ```
//!
//! A member records four latencies (see `member`, `group`, `applier`):
//!
//! | histogram | from | to |
//! |---|---|---|
//! | commit | a local transaction handed to the group core (`GroupHandle::submit`) | its outcome known here (committed and applied here, aborted, or unknown) |
//! | certification | a delivered transaction entering `Replica::on_delivered` | its verdict |
//! | apply | a committed transaction handed to the appliers | the watermark passing its seqno |
//! | ordering | a local proposal handed to the group core | its delivery on this member |
//!
//! The count is not kept apart: a snapshot derives it from the buckets, so the `+Inf`
//! bucket and `_count` always agree even when a snapshot races with recordings (the sum
//! may then miss a sample the buckets show, which Prometheus tolerates). Recording never
//! locks, allocates or fails; this module must never be more than that on a hot path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Upper bounds of the buckets, in microseconds: 10 µs to 60 s in 1-2.5-5 steps (the
/// usual Prometheus layout), so `le` values read as round numbers of seconds. A sample
/// above the last bound lands in the overflow bucket, which only `+Inf` contains.
pub const BUCKET_BOUNDS_US: [u64; 21] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 60_000_000,
];

/// Buckets, the overflow bucket included.
const BUCKETS: usize = BUCKET_BOUNDS_US.len() + 1;

// Bounds must be strictly increasing for `le` to be meaningful.
const _: () = {
    let mut index = 1;
    while index < BUCKET_BOUNDS_US.len() {
        assert!(BUCKET_BOUNDS_US[index - 1] < BUCKET_BOUNDS_US[index]);
        index += 1;
    }
};

/// A latency histogram that any thread records into without locking.
#[derive(Debug)]
pub struct LatencyHistogram {
    /// Samples per bucket (not cumulative); the last is the overflow bucket.
    counts: [AtomicU64; BUCKETS],
    /// Sum of every sample, in nanoseconds (u64 holds 584 years of summed latency).
    sum_nanos: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> LatencyHistogram {
        LatencyHistogram::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub const fn new() -> LatencyHistogram {
        LatencyHistogram {
            counts: [const { AtomicU64::new(0) }; BUCKETS],
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one sample.
    pub fn record(&self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        // Rounded up, so a sample is never counted below a bound it exceeds.
        let micros = nanos.div_ceil(1_000);
        let bucket = BUCKET_BOUNDS_US.partition_point(|&bound| bound < micros);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Records the time elapsed since `started`.
    pub fn record_since(&self, started: Instant) {
        self.record(started.elapsed());
    }

    /// The histogram now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut counts = [0; BUCKETS];
        for (count, atomic) in counts.iter_mut().zip(&self.counts) {
            *count = atomic.load(Ordering::Relaxed);
        }
        HistogramSnapshot {
            counts,
            sum_nanos: self.sum_nanos.load(Ordering::Relaxed),
        }
    }
}

/// A histogram's values at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Samples per bucket (not cumulative), in the order of [`BUCKET_BOUNDS_US`], then
    /// the overflow bucket.
    counts: [u64; BUCKETS],
    /// Sum of the samples, in nanoseconds.
    sum_nanos: u64,
}

impl HistogramSnapshot {
    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of the samples.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_nanos)
    }

    /// Cumulative counts as Prometheus buckets: `(upper bound in microseconds, samples at
    /// or below it)` for each bound in [`BUCKET_BOUNDS_US`], then `(None, count)` for
    /// `+Inf`. The counts never decrease along the list.
    pub fn cumulative(&self) -> Vec<(Option<u64>, u64)> {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(BUCKETS);
        for (index, count) in self.counts.iter().enumerate() {
            total += count;
            buckets.push((BUCKET_BOUNDS_US.get(index).copied(), total));
        }
        buckets
    }
}

/// The histograms a member records into itself; the group core keeps the ordering one
/// and the appliers the apply one, next to what they measure.
#[derive(Debug, Default)]
pub struct MemberHistograms {
    /// A local transaction from its proposal to its outcome here.
    pub commit: LatencyHistogram,
    /// A delivered transaction's certification.
    pub certification: LatencyHistogram,
}

/// The four latency histograms of a member, read together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latencies {
    /// A local transaction from its proposal to its outcome here.
    pub commit: HistogramSnapshot,
    /// A delivered transaction's certification.
    pub certification: HistogramSnapshot,
    /// A committed transaction from its hand-over to the appliers to the watermark
    /// passing it.
    pub apply: HistogramSnapshot,
    /// A local proposal from its hand-over to the group core to its delivery here.
    pub ordering: HistogramSnapshot,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_the_first_bucket_whose_bound_is_not_below_them() {
        let histogram = LatencyHistogram::new();
        histogram.record(Duration::from_micros(10)); // exactly on the 10 µs bound
        histogram.record(Duration::from_nanos(10_001)); // just above: the 25 µs bucket
        histogram.record(Duration::ZERO); // the first bucket
        histogram.record(Duration::from_millis(3)); // the 5 ms bucket
        let snapshot = histogram.snapshot();
        let cumulative = snapshot.cumulative();
        assert_eq!(cumulative[0], (Some(10), 2));
        assert_eq!(cumulative[1], (Some(25), 3));
        let five_ms = cumulative
            .iter()
            .position(|&(bound, _)| bound == Some(5_000))
            .expect("a 5 ms bound");
        assert_eq!(
            cumulative[five_ms - 1].1,
            3,
            "3 ms is above the 2.5 ms bound"
        );
        assert_eq!(cumulative[five_ms].1, 4);
        assert_eq!(snapshot.count(), 4);
        assert_eq!(
            snapshot.sum(),
            Duration::from_nanos(10_000 + 10_001 + 3_000_000)
        );
    }

    #[test]
    fn samples_above_the_last_bound_are_only_in_inf() {
        let histogram = LatencyHistogram::new();
        histogram.record(Duration::from_secs(61));
        histogram.record(Duration::from_secs(u64::MAX));
        let cumulative = histogram.snapshot().cumulative();
        assert_eq!(cumulative.len(), BUCKET_BOUNDS_US.len() + 1);
        let last_bound = cumulative[cumulative.len() - 2];
        assert_eq!(last_bound, (Some(60_000_000), 0));
        assert_eq!(cumulative.last(), Some(&(None, 2)));
    }

    #[test]
    fn cumulative_counts_never_decrease_and_end_at_the_count() {
        let histogram = LatencyHistogram::new();
        for micros in (0..200_000).step_by(997) {
            histogram.record(Duration::from_micros(micros));
        }
        let snapshot = histogram.snapshot();
        let cumulative = snapshot.cumulative();
        assert!(cumulative.windows(2).all(|pair| pair[0].1 <= pair[1].1));
        assert_eq!(
            cumulative.last().map(|&(_, count)| count),
            Some(snapshot.count())
        );
        assert_eq!(snapshot.count(), 201);
    }

    #[test]
    fn concurrent_recordings_are_all_counted() {
        let histogram = LatencyHistogram::new();
        std::thread::scope(|scope| {
            for thread in 0..4_u64 {
                let histogram = &histogram;
                scope.spawn(move || {
                    for sample in 0..10_000_u64 {
                        histogram.record(Duration::from_micros((sample * 7 + thread) % 5_000));
                    }
                });
            }
        });
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count(), 40_000);
        let expected: u64 = (0..4_u64)
            .flat_map(|thread| (0..10_000_u64).map(move |sample| (sample * 7 + thread) % 5_000))
            .sum::<u64>()
            * 1_000;
        assert_eq!(snapshot.sum(), Duration::from_nanos(expected));
    }

    #[test]
    fn an_empty_histogram_has_zero_everywhere() {
        let snapshot = LatencyHistogram::default().snapshot();
        assert_eq!(snapshot.count(), 0);
        assert_eq!(snapshot.sum(), Duration::ZERO);
        assert!(snapshot.cumulative().iter().all(|&(_, count)| count == 0));
    }
}
