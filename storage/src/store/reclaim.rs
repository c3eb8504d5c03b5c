//! Incremental reclaim of versions no open snapshot can see (DESIGN.md section 6).
//!
//! Reclaim walks the keys in order, a bounded number per call, remembering where it
//! stopped in a [`ReclaimCursor`]. It never sweeps the whole map under one lock: each key's
//! lock is held only while its version list is trimmed, so readers and appliers of other
//! keys never wait for it, and the engine can interleave steps with other work.
//!
//! Removing an emptied key races with installs into it. The protocol that keeps every
//! install: reclaim marks the key's list dead *under the key's lock* before removing the
//! entry from the map; an installer checks the mark under the same lock and, finding it
//! set, helps remove the entry and retries on the map, where it finds or creates a live
//! entry. So an install lands either before the mark (and reclaim then sees a non-empty
//! list and keeps the key) or in a new entry.
//!
//! It must never be given a horizon above the oldest snapshot a reader may still use:
//! [`super::OpenSnapshots::horizon`] computes a safe one.

use super::versions::{KeyVersions, KEY_OVERHEAD_BYTES};
use super::{Store, RECLAIM_STEP_KEYS};
use crate::Seqno;
use crossbeam_skiplist::map::Entry;
use std::ops::Bound;
use std::sync::atomic::Ordering;

/// Where an incremental reclaim pass stands, and what it has dropped so far.
#[derive(Clone, Debug, Default)]
pub struct ReclaimCursor {
    /// The first key the next step visits; `None` before the first step.
    next_key: Option<Box<[u8]>>,
    /// Set when a step reached the end of the map.
    finished: bool,
    /// Versions dropped by this pass so far.
    versions_dropped: u64,
    /// Keys removed from the map by this pass so far.
    keys_removed: u64,
}

impl ReclaimCursor {
    /// A cursor at the start of a new pass.
    pub fn new() -> ReclaimCursor {
        ReclaimCursor::default()
    }

    /// True once the pass has visited every key.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Versions this pass has dropped so far.
    pub fn versions_dropped(&self) -> u64 {
        self.versions_dropped
    }

    /// Keys this pass has removed from the map so far.
    pub fn keys_removed(&self) -> u64 {
        self.keys_removed
    }
}

impl Store {
    /// Reclaims up to `keys_max` keys from where `cursor` stands, with `horizon`: for each
    /// key it keeps the newest version <= horizon and everything newer, drops older ones,
    /// drops that newest one too when it is a tombstone, and removes keys left with no
    /// version. Reads at snapshots >= horizon are unchanged. A finished cursor does
    /// nothing; start a new pass with a new cursor.
    pub fn reclaim_step(&self, horizon: Seqno, cursor: &mut ReclaimCursor, keys_max: usize) {
        assert!(keys_max > 0, "a reclaim step must visit at least one key");
        if cursor.finished {
            return;
        }
        // Raise the recorded horizon before touching any key, so an install that races with
        // this step at or below the horizon is caught by the assert in `install`.
        self.reclaimed_horizon
            .fetch_max(horizon.0, Ordering::AcqRel);
        let mut next = match &cursor.next_key {
            None => self.map.front(),
            Some(key) => self.map.lower_bound(Bound::Included(&key[..])),
        };
        for _ in 0..keys_max {
            let Some(entry) = next else { break };
            self.reclaim_key(&entry, horizon, cursor);
            next = entry.next();
        }
        cursor.next_key = next.map(|entry| entry.key().clone());
        cursor.finished = cursor.next_key.is_none();
    }

    /// A whole reclaim pass with `horizon`, in steps of [`RECLAIM_STEP_KEYS`] keys. Each
    /// step takes each key's lock only briefly, so concurrent readers and installers keep
    /// running; the returned cursor says what was dropped.
    pub fn reclaim(&self, horizon: Seqno) -> ReclaimCursor {
        let mut cursor = ReclaimCursor::new();
        while !cursor.is_finished() {
            self.reclaim_step(horizon, &mut cursor, RECLAIM_STEP_KEYS);
        }
        cursor
    }

    /// Trims one key's versions, and removes the key when none is left.
    fn reclaim_key(
        &self,
        entry: &Entry<'_, Box<[u8]>, KeyVersions>,
        horizon: Seqno,
        cursor: &mut ReclaimCursor,
    ) {
        let mut list = entry.value().list.write();
        // An empty live list belongs to an installer that created the entry and is about to
        // lock it: leave it alone, its version is on the way.
        if list.dead || list.is_empty() {
            return;
        }
        let dropped = list.reclaim(horizon);
        let removed = list.is_empty();
        if removed {
            list.dead = true;
        }
        drop(list);
        let mut bytes = dropped.bytes;
        if removed {
            // Marked dead under the lock above, so no install can land in this entry any
            // more; an installer that saw the mark may have removed it already.
            entry.remove();
            bytes += entry.key().len() as u64 + KEY_OVERHEAD_BYTES;
            self.counters.keys.fetch_sub(1, Ordering::Relaxed);
            cursor.keys_removed += 1;
        }
        self.counters
            .versions
            .fetch_sub(dropped.versions, Ordering::Relaxed);
        self.counters.bytes.fetch_sub(bytes, Ordering::Relaxed);
        cursor.versions_dropped += dropped.versions;
    }
}
