//! The MVCC key-value store (DESIGN.md section 6): an in-memory ordered map from key to
//! the versions of that key, each tagged with the seqno of the transaction that wrote it.
//!
//! ```text
//!   appliers (many threads, any seqno order) --install(key, seqno, value)--+
//!                                                                          v
//!   SkipMap<key, KeyVersions>   key -> RwLock<[ (seqno, value | tombstone) ... oldest first ]>
//!                                                                          ^
//!   sessions --get(key, snapshot)-------------------------------------------+
//!   reclaim_step(horizon, cursor) walks a bounded number of keys per call
//! ```
//!
//! It owns the versions and their lifetime: installing them, reading the newest one at or
//! below a snapshot, reclaiming the ones no open snapshot can see, an ordered scan and a
//! digest of the state visible at a snapshot, and cheap statistics. [`OpenSnapshots`]
//! tracks the snapshots readers hold, so the engine can compute a safe reclaim horizon.
//!
//! Readers never wait for writers of other keys: the map is a lock-free skip list, and each
//! key's versions sit behind their own short lock, held for a binary search or a `Vec`
//! insert, never across I/O or an allocation of the map.
//!
//! It must never decide *which* seqnos are visible: the engine reads only at snapshots at
//! or below its watermark (every seqno at or below it fully installed), so installs that
//! arrive out of order above the watermark are never observed half done. It must never
//! install a version at or below a horizon it has already reclaimed (that version could be
//! the one reclaim dropped; asserted), and it never reads files: snapshot files live in
//! [`crate::snapshot`].

mod open_snapshots;
mod reclaim;
mod scan;
mod versions;

pub use open_snapshots::{OpenSnapshots, SnapshotHold, SnapshotTooOld};
pub use reclaim::ReclaimCursor;
pub use scan::{Scan, ScanEntry};

use crate::Seqno;
use crossbeam_skiplist::SkipMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use versions::{InsertOutcome, KeyVersions, KEY_OVERHEAD_BYTES};

/// A value as the store holds it: shared, so a read hands out a reference count, not a
/// copy, and a snapshot writer or a scan never duplicates the store.
pub type Value = Arc<[u8]>;

/// How many keys [`Store::reclaim`] visits per step: small enough that one step holds no
/// key lock for long and yields between steps, large enough to amortise the cursor seek.
pub const RECLAIM_STEP_KEYS: usize = 1024;

/// Cheap counters of what the store holds, for monitoring (GROUP STATS, metrics).
///
/// They are updated with relaxed atomics beside the changes they count, so a reader racing
/// with installs may see them a few operations apart; they are exact when quiescent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Keys holding at least one version (a key whose newest version is a tombstone counts
    /// until reclaim removes it).
    pub keys: u64,
    /// Versions held over all keys, tombstones included.
    pub versions: u64,
    /// Approximate heap bytes: keys, values and a fixed overhead per key and per version.
    pub bytes: u64,
}

/// The counters behind [`StoreStats`].
#[derive(Debug, Default)]
struct Counters {
    keys: AtomicU64,
    versions: AtomicU64,
    bytes: AtomicU64,
}

/// The in-memory MVCC key-value map. Share it between threads behind an `Arc`: every
/// method takes `&self`.
#[derive(Debug, Default)]
pub struct Store {
    /// Keys in byte order, so scans, digests and snapshot files are deterministic.
    map: SkipMap<Box<[u8]>, KeyVersions>,
    /// Monitoring counters.
    counters: Counters,
    /// The highest horizon reclaim was asked to use. Versions at or below it may have been
    /// dropped, so installing one there is a programmer error that would resurrect state.
    reclaimed_horizon: AtomicU64,
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        Store::default()
    }

    /// The value of `key` visible at `snapshot`: the newest version with seqno <= snapshot,
    /// or `None` when there is none or it is a tombstone.
    ///
    /// The caller reads only at snapshots at or below the watermark and at or above the
    /// reclaim horizon (hold a [`SnapshotHold`] for as long as the snapshot is read).
    pub fn get(&self, key: &[u8], snapshot: Seqno) -> Option<Value> {
        let entry = self.map.get(key)?;
        // A dead list is empty, so a key being removed reads as absent, which is what
        // every snapshot at or above the horizon saw in it.
        let list = entry.value().list.read();
        list.visible_value(snapshot)
    }

    /// Installs the version of `key` written by the transaction at `seqno`: `Some(value)`
    /// for a write, `None` for a delete. Safe from many threads at once and in any seqno
    /// order. Installing the same version twice changes nothing (replays after a restart);
    /// a different value at the same (key, seqno) is a programmer error and panics.
    pub fn install(&self, key: &[u8], seqno: Seqno, value: Option<Value>) {
        assert!(
            seqno > Seqno::ZERO,
            "install at seqno 0, which no entry has"
        );
        let reclaimed = Seqno(self.reclaimed_horizon.load(Ordering::Acquire));
        assert!(
            seqno > reclaimed,
            "install of key {key:?} at seqno {seqno}, at or below the reclaimed horizon {reclaimed}",
        );
        loop {
            let entry = match self.map.get(key) {
                Some(entry) => entry,
                None => self
                    .map
                    .get_or_insert_with(Box::from(key), KeyVersions::default),
            };
            let mut list = entry.value().list.write();
            if list.dead {
                // Reclaim emptied this key and is taking it out of the map. Help remove it
                // (harmless if reclaim already did), then install into a fresh entry.
                drop(list);
                entry.remove();
                continue;
            }
            let was_empty = list.is_empty();
            let outcome = list.insert(key, seqno, value);
            drop(list);
            if let InsertOutcome::Added { bytes } = outcome {
                self.counters.versions.fetch_add(1, Ordering::Relaxed);
                let mut bytes = bytes;
                if was_empty {
                    self.counters.keys.fetch_add(1, Ordering::Relaxed);
                    bytes += key.len() as u64 + KEY_OVERHEAD_BYTES;
                }
                self.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            return;
        }
    }

    /// The monitoring counters.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            keys: self.counters.keys.load(Ordering::Relaxed),
            versions: self.counters.versions.load(Ordering::Relaxed),
            bytes: self.counters.bytes.load(Ordering::Relaxed),
        }
    }

    /// The highest horizon reclaim has been given: reads below it may miss versions, and
    /// installs at or below it are refused.
    pub fn reclaimed_horizon(&self) -> Seqno {
        Seqno(self.reclaimed_horizon.load(Ordering::Acquire))
    }
}
