//! The version list of one key: every version the store still holds for it, oldest first.
//!
//! It owns the ordering and the reclaim rule of one key's versions. It never touches the
//! map or the store's counters: the callers in `store` do, from the counts it returns.

use crate::store::Value;
use crate::Seqno;
use parking_lot::RwLock;

/// Approximate heap bytes one version costs beyond its value: the list slot and the
/// reference count of the shared value. Only the `bytes` statistic uses it.
pub(crate) const VERSION_OVERHEAD_BYTES: u64 = 32;

/// Approximate bytes one key costs beyond its own bytes: the skip-list node, its tower
/// and the lock. Only the `bytes` statistic uses it.
pub(crate) const KEY_OVERHEAD_BYTES: u64 = 96;

/// One version of a key: the value written by the transaction at `seqno`, or `None` when
/// that transaction deleted the key (a tombstone).
#[derive(Clone, Debug)]
pub(crate) struct Version {
    /// The seqno of the transaction that wrote this version; reads compare it to their
    /// snapshot.
    pub(crate) seqno: Seqno,
    /// The value, or `None` for a delete, which must hide older versions from newer reads.
    pub(crate) value: Option<Value>,
}

impl Version {
    /// Approximate bytes of this version for the `bytes` statistic.
    pub(crate) fn approximate_bytes(&self) -> u64 {
        VERSION_OVERHEAD_BYTES + self.value.as_ref().map_or(0, |value| value.len() as u64)
    }
}

/// The map's value for one key: the versions behind a short lock. Readers take the lock
/// shared and writers of this key take it exclusively, for a binary search and at most a
/// `Vec` insert; no I/O and no allocation of other keys ever happens under it.
#[derive(Debug, Default)]
pub(crate) struct KeyVersions {
    pub(crate) list: RwLock<VersionList>,
}

/// What `VersionList::insert` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InsertOutcome {
    /// A new version was added; it costs this many approximate bytes.
    Added { bytes: u64 },
    /// The same version was already present (a replay); nothing changed.
    AlreadyPresent,
}

/// What `VersionList::reclaim` dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Dropped {
    /// Versions removed from the list.
    pub(crate) versions: u64,
    /// Their approximate bytes.
    pub(crate) bytes: u64,
}

/// The versions of one key, sorted by strictly increasing seqno.
#[derive(Debug, Default)]
pub(crate) struct VersionList {
    /// Set, under the lock, when reclaim has emptied the list and is removing the key from
    /// the map. An installer that finds a dead list must not install into it (the key is
    /// leaving the map, and the install would be lost with it): it retries on the map.
    pub(crate) dead: bool,
    /// Oldest first. Installs mostly arrive in seqno order, so the common insert is a push.
    pub(crate) versions: Vec<Version>,
}

impl VersionList {
    /// The newest version at or below `snapshot`, if any.
    pub(crate) fn visible(&self, snapshot: Seqno) -> Option<&Version> {
        let newer_start = self
            .versions
            .partition_point(|version| version.seqno <= snapshot);
        newer_start
            .checked_sub(1)
            .map(|index| &self.versions[index])
    }

    /// The value a read at `snapshot` returns: `None` when there is no version at or below
    /// it, or when the newest such version is a tombstone.
    pub(crate) fn visible_value(&self, snapshot: Seqno) -> Option<Value> {
        self.visible(snapshot)
            .and_then(|version| version.value.clone())
    }

    /// Adds the version written at `seqno`. Installing the version a list already holds is
    /// a replay and changes nothing; a different value at the same seqno means two
    /// transactions claimed one seqno, a programmer error.
    pub(crate) fn insert(
        &mut self,
        key: &[u8],
        seqno: Seqno,
        value: Option<Value>,
    ) -> InsertOutcome {
        assert!(!self.dead, "insert into a reclaimed key");
        let position = match self.versions.last() {
            // The common case: versions of a key arrive in seqno order.
            Some(last) if last.seqno < seqno => self.versions.len(),
            None => 0,
            Some(_) => match self
                .versions
                .binary_search_by_key(&seqno, |version| version.seqno)
            {
                Ok(index) => {
                    let present = self.versions[index].value.as_deref();
                    assert!(
                        present == value.as_deref(),
                        "two different versions of key {key:?} at seqno {seqno}",
                    );
                    return InsertOutcome::AlreadyPresent;
                }
                Err(index) => index,
            },
        };
        let version = Version { seqno, value };
        let bytes = version.approximate_bytes();
        self.versions.insert(position, version);
        InsertOutcome::Added { bytes }
    }

    /// Drops every version that no read at a snapshot >= `horizon` can see: all versions
    /// older than the newest one <= `horizon`, and that newest one too when it is a
    /// tombstone (with nothing <= `horizon` left below it, a read at or above the horizon
    /// finds "absent" either way). An emptied list means the key can leave the map.
    pub(crate) fn reclaim(&mut self, horizon: Seqno) -> Dropped {
        let newer_start = self
            .versions
            .partition_point(|version| version.seqno <= horizon);
        let Some(newest_visible) = newer_start.checked_sub(1) else {
            return Dropped::default();
        };
        let drop_end = if self.versions[newest_visible].value.is_none() {
            newer_start
        } else {
            newest_visible
        };
        let mut dropped = Dropped::default();
        for version in self.versions.drain(..drop_end) {
            dropped.versions += 1;
            dropped.bytes += version.approximate_bytes();
        }
        dropped
    }

    /// True when no version is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(byte: u8) -> Option<Value> {
        let bytes: Value = Value::from(vec![byte]);
        (byte != 0).then_some(bytes)
    }

    fn seqnos(list: &VersionList) -> Vec<u64> {
        list.versions
            .iter()
            .map(|version| version.seqno.0)
            .collect()
    }

    #[test]
    fn out_of_order_inserts_stay_sorted_and_replays_are_idempotent() {
        let mut list = VersionList::default();
        for seqno in [5, 2, 9, 7] {
            let outcome = list.insert(b"k", Seqno(seqno), value(seqno as u8));
            assert!(matches!(outcome, InsertOutcome::Added { .. }));
        }
        assert_eq!(
            list.insert(b"k", Seqno(7), value(7)),
            InsertOutcome::AlreadyPresent
        );
        assert_eq!(seqnos(&list), [2, 5, 7, 9]);
        assert_eq!(
            list.visible(Seqno(6)).map(|version| version.seqno),
            Some(Seqno(5))
        );
        assert!(list.visible(Seqno(1)).is_none());
    }

    #[test]
    #[should_panic(expected = "two different versions")]
    fn a_second_value_at_one_seqno_is_a_programmer_error() {
        let mut list = VersionList::default();
        list.insert(b"k", Seqno(3), value(1));
        list.insert(b"k", Seqno(3), value(2));
    }

    #[test]
    fn reclaim_keeps_the_newest_value_at_the_horizon_and_drops_a_tombstone_there() {
        let mut list = VersionList::default();
        list.insert(b"k", Seqno(1), value(1));
        list.insert(b"k", Seqno(3), value(3));
        list.insert(b"k", Seqno(5), None);
        list.insert(b"k", Seqno(8), value(8));
        assert_eq!(list.reclaim(Seqno(4)).versions, 1);
        assert_eq!(seqnos(&list), [3, 5, 8]);
        assert_eq!(list.reclaim(Seqno(6)).versions, 2);
        assert_eq!(seqnos(&list), [8]);
        assert_eq!(list.reclaim(Seqno(100)).versions, 0);
        list.insert(b"k", Seqno(101), None);
        assert_eq!(list.reclaim(Seqno(101)).versions, 2);
        assert!(list.is_empty());
    }
}
