//! The registry of open snapshots: which snapshots readers still use, so the engine can
//! compute a reclaim horizon that drops no version a reader may need.
//!
//! It owns one rule: a horizon it has handed out is never passed by a snapshot opened
//! later. [`OpenSnapshots::open`] refuses a snapshot below the highest horizon given so
//! far, under the same lock that computes horizons, so a reader that read the watermark
//! just before reclaim moved past it gets an error to retry with, never a silently
//! incomplete read. It must never read the store or the watermark itself: the engine
//! passes the watermark in.

use crate::Seqno;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use thiserror::Error;

/// A snapshot below a horizon already handed out to reclaim: versions it needs may be gone.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("snapshot {snapshot} is below the reclaim horizon {horizon}: open a snapshot at the current watermark instead")]
pub struct SnapshotTooOld {
    /// The snapshot that was asked for.
    pub snapshot: Seqno,
    /// The horizon reclaim may already have used.
    pub horizon: Seqno,
}

/// The shared state behind [`OpenSnapshots`].
#[derive(Debug, Default)]
struct Registry {
    /// How many holds are open at each snapshot; a multiset, since many sessions share a
    /// watermark.
    open: BTreeMap<Seqno, u64>,
    /// The highest horizon handed out. No snapshot below it may be opened any more.
    horizon: Seqno,
}

/// The set of snapshots readers hold open. Cloning gives another handle to the same set.
#[derive(Clone, Debug, Default)]
pub struct OpenSnapshots {
    registry: Arc<Mutex<Registry>>,
}

/// An open snapshot. While it lives, no horizon computed by its [`OpenSnapshots`] passes
/// its seqno; dropping it closes it.
#[derive(Debug)]
pub struct SnapshotHold {
    registry: Arc<Mutex<Registry>>,
    snapshot: Seqno,
}

impl SnapshotHold {
    /// The snapshot held.
    pub fn snapshot(&self) -> Seqno {
        self.snapshot
    }
}

impl Drop for SnapshotHold {
    fn drop(&mut self) {
        let mut registry = self.registry.lock();
        let count = registry
            .open
            .get_mut(&self.snapshot)
            .expect("an open snapshot hold is registered");
        *count -= 1;
        if *count == 0 {
            registry.open.remove(&self.snapshot);
        }
    }
}

impl OpenSnapshots {
    /// An empty registry.
    pub fn new() -> OpenSnapshots {
        OpenSnapshots::default()
    }

    /// Opens `snapshot`, which must not be below a horizon already handed out.
    pub fn open(&self, snapshot: Seqno) -> Result<SnapshotHold, SnapshotTooOld> {
        let mut registry = self.registry.lock();
        if snapshot < registry.horizon {
            return Err(SnapshotTooOld {
                snapshot,
                horizon: registry.horizon,
            });
        }
        *registry.open.entry(snapshot).or_insert(0) += 1;
        Ok(SnapshotHold {
            registry: Arc::clone(&self.registry),
            snapshot,
        })
    }

    /// The oldest open snapshot, if any.
    pub fn oldest(&self) -> Option<Seqno> {
        self.registry.lock().open.keys().next().copied()
    }

    /// How many holds are open.
    pub fn len(&self) -> u64 {
        self.registry.lock().open.values().sum()
    }

    /// True when no snapshot is open.
    pub fn is_empty(&self) -> bool {
        self.registry.lock().open.is_empty()
    }

    /// The horizon reclaim may use now: the oldest open snapshot, or the `watermark` when
    /// it is lower or nothing is open. It never goes down between calls, and from now on no
    /// snapshot below it can be opened.
    pub fn horizon(&self, watermark: Seqno) -> Seqno {
        let mut registry = self.registry.lock();
        let oldest = registry.open.keys().next().copied().unwrap_or(watermark);
        let horizon = registry.horizon.max(oldest.min(watermark));
        registry.horizon = horizon;
        horizon
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizon_stops_at_the_oldest_open_snapshot_and_refuses_older_opens() {
        let snapshots = OpenSnapshots::new();
        assert_eq!(snapshots.horizon(Seqno(5)), Seqno(5));
        let old = snapshots.open(Seqno(6)).expect("6 is above the horizon");
        let newer = snapshots.open(Seqno(9)).expect("9 is above the horizon");
        let shared = snapshots
            .open(Seqno(6))
            .expect("a snapshot can be held twice");
        assert_eq!(snapshots.len(), 3);
        assert_eq!(snapshots.oldest(), Some(Seqno(6)));
        assert_eq!(snapshots.horizon(Seqno(20)), Seqno(6));
        drop(old);
        assert_eq!(snapshots.horizon(Seqno(20)), Seqno(6));
        drop(shared);
        assert_eq!(snapshots.horizon(Seqno(20)), Seqno(9));
        assert_eq!(
            snapshots.open(Seqno(8)).map(|hold| hold.snapshot()),
            Err(SnapshotTooOld {
                snapshot: Seqno(8),
                horizon: Seqno(9)
            })
        );
        drop(newer);
        assert!(snapshots.is_empty());
        assert_eq!(snapshots.horizon(Seqno(20)), Seqno(20));
        // A lower watermark never lowers a horizon already handed out.
        assert_eq!(snapshots.horizon(Seqno(3)), Seqno(20));
    }
}
