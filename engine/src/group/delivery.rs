//! What the group core does with a delivered entry: count it, extend the running digest
//! of the delivered prefix, answer the local proposer, and hand the entry to the
//! delivery sink (the engine's consumer).
//!
//! The digest of the prefix up to seqno `n` is a chain: `d(0) = 0` and
//! `d(n) = xxh3_64_with_seed(seqno_le · view_le · encoded entry body, d(n-1))`, so two
//! members with the same digest at `n` delivered the same entries 1..=n (up to a hash
//! collision). The last [`DIGEST_HISTORY_MAX`] prefix digests are kept, so any recent
//! prefix can be compared across members. This module must never reorder or skip a
//! delivery.

use std::collections::VecDeque;

use tutti_net::gcs::Entry;
use tutti_net::wire::encode_entry;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::constants::{DELIVERY_QUEUE_WAIT_MAX, DIGEST_HISTORY_MAX};

/// Receives every delivered entry, in seqno order, on the group core thread. It must
/// return quickly: the group core waits for it.
///
/// To ensure correctness: an implementation must not assume it sees seqno 1 only once
/// per process; a restarted member delivers its log again from seqno 1, and one that
/// rejoins after being removed may too.
pub trait DeliverySink: Send + 'static {
    /// One delivered entry.
    fn deliver(&mut self, seqno: u64, entry: &Entry);

    /// The member that should be the sequencer, as the delivered entries say (in
    /// single-primary mode, the primary: the sequencer follows it). The shell hands the
    /// sequencer role over when this member holds it. `None`: no preference.
    fn wanted_sequencer(&self) -> Option<u128> {
        None
    }
}

/// A sink that keeps nothing (the digest and counters are kept anyway).
pub struct DiscardSink;

impl DeliverySink for DiscardSink {
    fn deliver(&mut self, _seqno: u64, _entry: &Entry) {}
}

/// One delivered entry, as a [`ChannelSink`] hands it to another thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// Its position in the total order.
    pub seqno: u64,
    /// The entry.
    pub entry: Entry,
}

/// A sink that hands every delivery to a consumer on another thread through a bounded
/// queue. The group core waits at most [`DELIVERY_QUEUE_WAIT_MAX`] for room; a consumer
/// that falls further behind loses the deliveries that did not fit (counted in
/// [`ChannelSink::overflowed`] and logged) and must read them from the log instead.
pub struct ChannelSink {
    queue: flume::Sender<Delivered>,
    overflowed: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl ChannelSink {
    /// A sink and the receiving end of its queue of `capacity` deliveries.
    pub fn new(capacity: usize) -> (ChannelSink, flume::Receiver<Delivered>) {
        let (queue, receiver) = flume::bounded(capacity.max(1));
        let overflowed = std::sync::Arc::default();
        (ChannelSink { queue, overflowed }, receiver)
    }

    /// A counter of the deliveries that did not fit the queue, readable anywhere.
    pub fn overflowed(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        std::sync::Arc::clone(&self.overflowed)
    }
}

impl DeliverySink for ChannelSink {
    fn deliver(&mut self, seqno: u64, entry: &Entry) {
        let delivered = Delivered {
            seqno,
            entry: entry.clone(),
        };
        if self
            .queue
            .send_timeout(delivered, DELIVERY_QUEUE_WAIT_MAX)
            .is_err()
        {
            let lost = self
                .overflowed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1;
            tracing::error!(
                seqno,
                lost,
                "the delivery consumer is not keeping up (or is gone); a delivery was not queued"
            );
        }
    }
}

/// The digests of recent delivered prefixes.
#[derive(Clone, Debug, Default)]
pub struct DigestHistory {
    /// The seqno of `digests[0]`.
    first: u64,
    digests: VecDeque<u64>,
}

impl DigestHistory {
    /// The last delivered seqno and the digest of the prefix up to it.
    pub fn last(&self) -> (u64, u64) {
        match self.digests.back() {
            Some(digest) => (self.first + self.digests.len() as u64 - 1, *digest),
            None => (0, 0),
        }
    }

    /// The digest of the prefix up to `seqno`, if it is delivered and still kept
    /// (seqno 0, the empty prefix, has digest 0).
    pub fn at(&self, seqno: u64) -> Option<u64> {
        if seqno == 0 {
            return Some(0);
        }
        let index = seqno.checked_sub(self.first)?;
        self.digests.get(usize::try_from(index).ok()?).copied()
    }

    /// Extends the chain with the entry delivered at `seqno`. A delivery of seqno 1
    /// starts a new chain (a restart delivers the log again).
    pub fn push(&mut self, seqno: u64, entry: &Entry, scratch: &mut Vec<u8>) -> u64 {
        let previous = if seqno == 1 {
            self.digests.clear();
            self.first = 1;
            0
        } else {
            let (last, digest) = self.last();
            assert_eq!(seqno, last + 1, "deliveries are contiguous");
            digest
        };
        scratch.clear();
        scratch.extend_from_slice(&seqno.to_le_bytes());
        scratch.extend_from_slice(&entry.view.0.to_le_bytes());
        encode_entry(scratch, &entry.body);
        let digest = xxh3_64_with_seed(scratch, previous);
        if self.digests.len() == DIGEST_HISTORY_MAX {
            self.digests.pop_front();
            self.first += 1;
        }
        self.digests.push_back(digest);
        digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutti_net::gcs::{EntryBody, Seqno, ViewId};

    fn entry(seqno: u64, view: u64) -> Entry {
        Entry {
            seqno: Seqno(seqno),
            view: ViewId(view),
            body: EntryBody::ViewStart,
        }
    }

    #[test]
    fn channel_sink_hands_deliveries_over_and_counts_what_did_not_fit() {
        let (mut sink, receiver) = ChannelSink::new(1);
        let overflowed = sink.overflowed();
        sink.deliver(1, &entry(1, 1));
        sink.deliver(2, &entry(2, 1));
        assert_eq!(
            receiver.try_recv().ok(),
            Some(Delivered {
                seqno: 1,
                entry: entry(1, 1)
            })
        );
        assert!(receiver.try_recv().is_err());
        assert_eq!(overflowed.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn digest_depends_on_the_whole_prefix() {
        let mut scratch = Vec::new();
        let mut a = DigestHistory::default();
        let mut b = DigestHistory::default();
        for seqno in 1..=3 {
            a.push(seqno, &entry(seqno, 1), &mut scratch);
            b.push(
                seqno,
                &entry(seqno, if seqno == 1 { 2 } else { 1 }),
                &mut scratch,
            );
        }
        assert_eq!(a.last().0, 3);
        assert_ne!(a.at(3), b.at(3));
        assert_ne!(a.at(2), a.at(3));
        assert_eq!(a.at(0), Some(0));
        assert_eq!(a.at(4), None);
        let first = a.at(3);
        a.push(1, &entry(1, 1), &mut scratch);
        a.push(2, &entry(2, 1), &mut scratch);
        a.push(3, &entry(3, 1), &mut scratch);
        assert_eq!(
            a.at(3),
            first,
            "a redelivery from seqno 1 rebuilds the same chain"
        );
    }
}
