//! The apply latency: from a committed transaction's hand-over to the appliers
//! ([`Appliers::submit`](super::Appliers::submit)) until the watermark passes its seqno,
//! that is until its writes are visible here.
//!
//! The submitter notes (seqno, now) in a bounded queue, in seqno order; whoever advances
//! the watermark takes the notes at or below it and records one sample each. The queue
//! holds only committed transactions the watermark has not passed yet, which the
//! appliers' own bounds already limit; when it is full anyway a sample is skipped rather
//! than memory grown. This module must never hold its lock while waking a waiter.

use std::collections::VecDeque;
use std::time::Instant;

use parking_lot::Mutex;
use tutti_storage::Seqno;

use super::constants::APPLY_LATENCY_PENDING_MAX;
use crate::metrics::LatencyHistogram;

/// Start times of the committed transactions the watermark has not passed yet.
#[derive(Debug, Default)]
pub(super) struct ApplyClock {
    /// (seqno, submitted at), in increasing seqno order.
    pending: Mutex<VecDeque<(Seqno, Instant)>>,
    /// Where the samples go.
    histogram: LatencyHistogram,
}

impl ApplyClock {
    /// A committed transaction at `seqno` is being handed to the appliers.
    pub fn started(&self, seqno: Seqno) {
        let now = Instant::now();
        let mut pending = self.pending.lock();
        if pending.len() < APPLY_LATENCY_PENDING_MAX {
            pending.push_back((seqno, now));
        }
    }

    /// The watermark reached `watermark`: one sample per transaction it passed.
    pub fn passed(&self, watermark: Seqno) {
        let mut pending = self.pending.lock();
        if pending.front().is_none_or(|&(seqno, _)| seqno > watermark) {
            return;
        }
        let now = Instant::now();
        while let Some(&(seqno, started)) = pending.front() {
            if seqno > watermark {
                break;
            }
            self.histogram
                .record(now.saturating_duration_since(started));
            pending.pop_front();
        }
    }

    /// The histogram the samples go to.
    pub fn histogram(&self) -> &LatencyHistogram {
        &self.histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_recorded_once_the_watermark_passes_its_seqno() {
        let clock = ApplyClock::default();
        clock.started(Seqno(2));
        clock.started(Seqno(5));
        clock.passed(Seqno(1));
        assert_eq!(clock.histogram().snapshot().count(), 0);
        clock.passed(Seqno(4));
        assert_eq!(clock.histogram().snapshot().count(), 1);
        clock.passed(Seqno(4));
        assert_eq!(clock.histogram().snapshot().count(), 1, "never twice");
        clock.passed(Seqno(9));
        assert_eq!(clock.histogram().snapshot().count(), 2);
    }

    #[test]
    fn a_full_queue_skips_samples_instead_of_growing() {
        let clock = ApplyClock::default();
        for seqno in 1..=(APPLY_LATENCY_PENDING_MAX as u64 + 10) {
            clock.started(Seqno(seqno));
        }
        assert_eq!(clock.pending.lock().len(), APPLY_LATENCY_PENDING_MAX);
        clock.passed(Seqno(u64::MAX));
        assert_eq!(
            clock.histogram().snapshot().count(),
            APPLY_LATENCY_PENDING_MAX as u64
        );
    }
}
