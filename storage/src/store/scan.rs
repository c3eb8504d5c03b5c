//! Ordered reads of the whole state visible at one snapshot: the scan that snapshot files
//! and state transfer stream from, the digest that the simulator compares between members,
//! and the visible key count (DBSIZE).
//!
//! A scan walks the live skip list; it never copies the store and never holds a key's lock
//! longer than one lookup. It must never be used at a snapshot that reclaim may pass while
//! the scan runs: hold a [`super::SnapshotHold`] on it.

use super::versions::KeyVersions;
use super::{Store, Value};
use crate::Seqno;
use crossbeam_skiplist::map::Entry;
use std::ops::Bound;
use xxhash_rust::xxh3::Xxh3Default;

/// An iterator over the keys visible at one snapshot, in increasing byte order, skipping
/// keys that are absent or deleted there.
pub struct Scan<'a> {
    /// The next map entry to look at; `None` once the map is exhausted.
    next: Option<Entry<'a, Box<[u8]>, KeyVersions>>,
    /// The snapshot every key is read at.
    snapshot: Seqno,
}

/// One key visible at a scan's snapshot and its value there. It keeps the map node alive,
/// so the key is borrowed, not copied.
pub struct ScanEntry<'a> {
    entry: Entry<'a, Box<[u8]>, KeyVersions>,
    value: Value,
}

impl ScanEntry<'_> {
    /// The key.
    pub fn key(&self) -> &[u8] {
        self.entry.key()
    }

    /// The value visible at the scan's snapshot.
    pub fn value(&self) -> &Value {
        &self.value
    }
}

impl<'a> Iterator for Scan<'a> {
    type Item = ScanEntry<'a>;

    fn next(&mut self) -> Option<ScanEntry<'a>> {
        loop {
            let entry = self.next.take()?;
            // `Entry::next` copes with an entry that reclaim removed meanwhile: it searches
            // again from the key, so the scan neither stops nor repeats a key.
            self.next = entry.next();
            let value = entry.value().list.read().visible_value(self.snapshot);
            if let Some(value) = value {
                return Some(ScanEntry { entry, value });
            }
        }
    }
}

impl Store {
    /// Every key visible at `snapshot` with its value, in increasing key order.
    pub fn scan(&self, snapshot: Seqno) -> Scan<'_> {
        Scan {
            next: self.map.front(),
            snapshot,
        }
    }

    /// Like [`Store::scan`], starting at `start` (for example `Bound::Excluded(last_key)` to
    /// resume a transfer after the last key sent).
    pub fn scan_from(&self, snapshot: Seqno, start: Bound<&[u8]>) -> Scan<'_> {
        Scan {
            next: self.map.lower_bound(start),
            snapshot,
        }
    }

    /// A deterministic xxh3-64 hash of the state visible at `snapshot`: for each visible
    /// key in increasing order, its length (u64 little-endian), its bytes, the value's
    /// length (u64 little-endian) and its bytes. Two stores holding the same visible state
    /// have the same digest however they got there (install order, reclaim).
    pub fn digest(&self, snapshot: Seqno) -> u64 {
        let mut hasher = Xxh3Default::new();
        for entry in self.scan(snapshot) {
            hasher.update(&(entry.key().len() as u64).to_le_bytes());
            hasher.update(entry.key());
            hasher.update(&(entry.value().len() as u64).to_le_bytes());
            hasher.update(entry.value());
        }
        hasher.digest()
    }

    /// How many keys are visible (present and not deleted) at `snapshot`. It walks the
    /// map: O(keys), for DBSIZE and tests, not for a hot path.
    pub fn len_at(&self, snapshot: Seqno) -> u64 {
        self.scan(snapshot).count() as u64
    }
}
