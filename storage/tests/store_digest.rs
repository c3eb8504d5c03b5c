//! Digests, scans and counts of the state visible at a snapshot: the same visible state
//! gives the same digest however it was reached, and any visible difference changes it.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::ops::Bound;
use tutti_storage::store::{Store, Value};
use tutti_storage::Seqno;

/// (key, seqno, value or delete)
type Write = (Vec<u8>, Seqno, Option<Vec<u8>>);

fn random_writes(seed: u64) -> Vec<Write> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut writes: Vec<Write> = (1..=2000_u64)
        .map(|seqno| {
            let key = format!("k{}", rng.random_range(0..300)).into_bytes();
            let value =
                (!rng.random_bool(0.25)).then(|| vec![rng.random::<u8>(); rng.random_range(0..20)]);
            (key, Seqno(seqno), value)
        })
        .collect();
    writes.shuffle(&mut rng);
    writes
}

fn store_of(writes: &[Write]) -> Store {
    let store = Store::new();
    for (key, seqno, value) in writes {
        store.install(key, *seqno, value.as_deref().map(Value::from));
    }
    store
}

/// A store holding only the state `store` shows at `snapshot`, each key written once at
/// seqno 1.
fn flattened(store: &Store, snapshot: Seqno) -> Store {
    let flat = Store::new();
    for entry in store.scan(snapshot) {
        flat.install(entry.key(), Seqno(1), Some(entry.value().clone()));
    }
    flat
}

#[test]
fn equal_visible_state_has_equal_digests_whatever_the_install_order_or_reclaim() {
    let writes = random_writes(1);
    let mut reversed = writes.clone();
    reversed.reverse();
    let mut sorted = writes.clone();
    sorted.sort_by_key(|(_, seqno, _)| *seqno);
    let shuffled = store_of(&writes);
    let backwards = store_of(&reversed);
    let in_order = store_of(&sorted);
    let reclaimed = store_of(&writes);
    assert!(reclaimed.reclaim(Seqno(1000)).versions_dropped() > 0);
    for snapshot in [0, 1, 500, 999, 1000, 1001, 1500, 2000, 5000] {
        let snapshot = Seqno(snapshot);
        let digest = shuffled.digest(snapshot);
        assert_eq!(backwards.digest(snapshot), digest, "snapshot {snapshot}");
        assert_eq!(in_order.digest(snapshot), digest, "snapshot {snapshot}");
        assert_eq!(
            flattened(&shuffled, snapshot).digest(Seqno(1)),
            digest,
            "snapshot {snapshot}"
        );
        if snapshot >= Seqno(1000) {
            assert_eq!(reclaimed.digest(snapshot), digest, "snapshot {snapshot}");
        }
    }
    // The history changes the visible state, so digests at different snapshots differ.
    assert_ne!(shuffled.digest(Seqno(1000)), shuffled.digest(Seqno(2000)));
    assert_eq!(Store::new().digest(Seqno(5)), Store::new().digest(Seqno(9)));
}

#[test]
fn any_visible_difference_changes_the_digest() {
    let base = || {
        let store = Store::new();
        store.install(b"a", Seqno(1), Some(Value::from(&b"1"[..])));
        store.install(b"b", Seqno(1), Some(Value::from(&b"22"[..])));
        store.install(b"c", Seqno(1), Some(Value::from(&b""[..])));
        store
    };
    let digest = base().digest(Seqno(1));
    let changed_value = base();
    changed_value.install(b"b", Seqno(2), Some(Value::from(&b"23"[..])));
    let deleted = base();
    deleted.install(b"c", Seqno(2), None);
    let added = base();
    added.install(b"d", Seqno(2), Some(Value::from(&b"4"[..])));
    // Moving a byte between a key and its value keeps the concatenation but not the state.
    let shifted = Store::new();
    shifted.install(b"a", Seqno(1), Some(Value::from(&b"1"[..])));
    shifted.install(b"b2", Seqno(1), Some(Value::from(&b"2"[..])));
    shifted.install(b"c", Seqno(1), Some(Value::from(&b""[..])));
    for (name, store) in [
        ("changed value", changed_value),
        ("deleted key", deleted),
        ("added key", added),
    ] {
        assert_eq!(store.digest(Seqno(1)), digest, "{name}: invisible at 1");
        assert_ne!(store.digest(Seqno(2)), digest, "{name}: visible at 2");
    }
    assert_ne!(shifted.digest(Seqno(1)), digest);
}

#[test]
fn scans_are_ordered_skip_deleted_keys_and_resume_from_a_bound() {
    let writes = random_writes(2);
    let store = store_of(&writes);
    let snapshot = Seqno(1500);
    let keys: Vec<Vec<u8>> = store
        .scan(snapshot)
        .map(|entry| entry.key().to_vec())
        .collect();
    assert!(
        keys.windows(2).all(|pair| pair[0] < pair[1]),
        "keys strictly increase"
    );
    assert_eq!(keys.len() as u64, store.len_at(snapshot));
    for entry in store.scan(snapshot) {
        assert_eq!(
            store.get(entry.key(), snapshot).as_ref(),
            Some(entry.value())
        );
    }
    let deleted = store.stats().keys - store.len_at(snapshot);
    assert!(
        deleted > 0,
        "the history leaves some keys deleted or not yet written at 1500"
    );
    let middle = &keys[keys.len() / 2];
    let after: Vec<Vec<u8>> = store
        .scan_from(snapshot, Bound::Excluded(middle))
        .map(|entry| entry.key().to_vec())
        .collect();
    assert_eq!(after, keys[keys.len() / 2 + 1..]);
    let from: Vec<Vec<u8>> = store
        .scan_from(snapshot, Bound::Included(middle))
        .map(|entry| entry.key().to_vec())
        .collect();
    assert_eq!(from, keys[keys.len() / 2..]);
}
