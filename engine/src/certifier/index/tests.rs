//! Unit tests of the index's single-threaded behaviour: probing, dead entries, reuse,
//! backward-shift removal and the full decision. The concurrent protocol is checked by
//! the loom model in `engine/tests/index_loom.rs`.

use super::*;

/// One shard of 8 slots (live limit 7); raw key hashes place keys at chosen homes.
fn tiny() -> IndexWriter {
    IndexWriter::new(IndexConfig {
        shard_bits: 0,
        shard_slot_bits: 3,
    })
    .expect("valid geometry")
}

/// A key whose home slot is `home` (the low 3 bits), distinct per `tag`.
fn key(home: u64, tag: u64) -> KeyHash {
    KeyHash(home | (tag << 8))
}

#[test]
fn set_then_lookup_returns_last_writer_for_writer_and_reader() {
    let mut index = tiny();
    let reader = index.reader();
    index.set(key(1, 1), Seqno(5));
    index.set(key(1, 2), Seqno(6));
    index.set(key(1, 1), Seqno(9));
    assert_eq!(index.last_writer(key(1, 1)), Some(Seqno(9)));
    assert_eq!(reader.last_writer(key(1, 1)), Some(Seqno(9)));
    assert_eq!(reader.last_writer(key(1, 2)), Some(Seqno(6)));
    assert_eq!(reader.last_writer(key(1, 3)), None);
    assert_eq!(index.entries_held(), 2);
}

#[test]
fn key_hash_zero_is_stored_and_found() {
    let mut index = tiny();
    index.set(KeyHash(0), Seqno(3));
    assert_eq!(index.last_writer(KeyHash(0)), Some(Seqno(3)));
    assert_eq!(index.reader().last_writer(KeyHash(0)), Some(Seqno(3)));
}

#[test]
fn entries_at_or_below_gc_are_dead_for_every_lookup() {
    let mut index = tiny();
    let reader = index.reader();
    index.set(key(2, 1), Seqno(4));
    index.set(key(2, 2), Seqno(5));
    index.set_gc_seqno(Seqno(4));
    assert_eq!(index.last_writer(key(2, 1)), None);
    assert_eq!(reader.last_writer(key(2, 1)), None);
    assert_eq!(reader.last_writer(key(2, 2)), Some(Seqno(5)));
    // Still held until reclaimed.
    assert_eq!(index.entries_held(), 2);
}

#[test]
fn insert_reuses_a_dead_slot_without_hiding_a_later_key() {
    let mut index = tiny();
    index.set(key(0, 1), Seqno(1));
    index.set(key(0, 2), Seqno(2));
    index.set_gc_seqno(Seqno(1));
    // key(0,2) sits after the dead key(0,1): writing it again must update it in place,
    // not place a second copy in the dead slot.
    index.set(key(0, 2), Seqno(3));
    assert_eq!(index.entries_held(), 2);
    index.set(key(0, 3), Seqno(4));
    assert_eq!(index.entries_held(), 2, "the dead slot was reused");
    assert_eq!(index.last_writer(key(0, 2)), Some(Seqno(3)));
    assert_eq!(index.last_writer(key(0, 3)), Some(Seqno(4)));
    assert_eq!(index.reader().last_writer(key(0, 3)), Some(Seqno(4)));
}

#[test]
fn reclaim_shifts_cluster_back_and_keeps_every_live_key_findable() {
    let mut index = tiny();
    // A cluster that wraps: homes 6, 6, 7, 6, 0 fill slots 6, 7, 0, 1, 2.
    let keys = [key(6, 1), key(6, 2), key(7, 3), key(6, 4), key(0, 5)];
    for (n, &k) in keys.iter().enumerate() {
        index.set(k, Seqno(n as u64 + 1));
    }
    index.set_gc_seqno(Seqno(2));
    let removed = index.reclaim_step(64);
    assert_eq!(removed, 2);
    assert_eq!(index.entries_held(), 3);
    let reader = index.reader();
    for (n, &k) in keys.iter().enumerate().skip(2) {
        assert_eq!(reader.last_writer(k), Some(Seqno(n as u64 + 1)), "key {n}");
        assert_eq!(index.last_writer(k), Some(Seqno(n as u64 + 1)), "key {n}");
    }
    assert_eq!(reader.last_writer(keys[0]), None);
    // Nothing left to reclaim, and reclaiming again changes nothing.
    assert_eq!(index.reclaim_step(64), 0);
}

#[test]
fn reclaim_step_is_bounded_by_its_slot_budget() {
    let mut index = tiny();
    for tag in 0..6 {
        index.set(key(tag, tag + 1), Seqno(tag + 1));
    }
    index.set_gc_seqno(Seqno(6));
    let first = index.reclaim_step(2);
    assert!(first <= 2, "examined at most 2 slots, removed {first}");
    let mut total = first;
    for _ in 0..16 {
        total += index.reclaim_step(2);
    }
    assert_eq!(total, 6);
    assert_eq!(index.entries_held(), 0);
}

#[test]
fn full_shard_is_a_typed_error_decided_on_live_entries() {
    let mut index = tiny();
    for tag in 0..7 {
        index.ensure_room(0, 1).expect("room below the limit");
        index.set(key(tag, tag + 1), Seqno(tag + 1));
    }
    assert_eq!(
        index.ensure_room(0, 1),
        Err(ShardFull {
            shard: 0,
            live: 7,
            live_max: 7
        })
    );
    // Two entries die: without any reclamation, the shard has room for two.
    index.set_gc_seqno(Seqno(2));
    assert_eq!(index.ensure_room(0, 2), Ok(()));
    assert_eq!(index.entries_held(), 5, "the check swept the dead entries");
    assert!(index.ensure_room(0, 3).is_err());
}

#[test]
fn geometry_limits_are_enforced() {
    let too_small = IndexConfig {
        shard_bits: 0,
        shard_slot_bits: 2,
    };
    assert!(matches!(
        IndexWriter::new(too_small),
        Err(IndexConfigError::ShardSlotBits { .. })
    ));
    let too_many = IndexConfig {
        shard_bits: 17,
        shard_slot_bits: 3,
    };
    assert!(matches!(
        too_many.validate(),
        Err(IndexConfigError::ShardBits { .. })
    ));
    let too_large = IndexConfig {
        shard_bits: 16,
        shard_slot_bits: 20,
    };
    assert!(matches!(
        too_large.validate(),
        Err(IndexConfigError::TooLarge { .. })
    ));
}

#[test]
fn capacity_for_live_entries_leaves_headroom() {
    for live in [1, 10_000, 100_000, 1_000_000, 10_000_000] {
        let config = IndexConfig::for_live_entries(live);
        config.validate().expect("valid");
        let slots = (config.shard_count() * config.shard_slots()) as u64;
        assert!(slots * 5 >= live * 8, "{live} live in {slots} slots");
        assert!(config.live_max() >= live);
    }
}

#[test]
fn set_located_probes_again_when_its_slot_was_reused() {
    let mut index = tiny();
    index.set(key(5, 1), Seqno(1));
    index.set_gc_seqno(Seqno(1));
    let dead = index.locate(key(5, 1));
    assert_eq!(dead.live, None);
    // A new key with the same home takes the dead key's slot.
    index.set(key(5, 2), Seqno(2));
    index.set_located(key(5, 1), dead, Seqno(3));
    assert_eq!(
        index.last_writer(key(5, 2)),
        Some(Seqno(2)),
        "not overwritten"
    );
    assert_eq!(index.last_writer(key(5, 1)), Some(Seqno(3)));
    assert_eq!(index.entries_held(), 2);
    // Located and still in place: written in place.
    let live = index.locate(key(5, 2));
    assert_eq!(live.live, Some(Seqno(2)));
    index.set_located(key(5, 2), live, Seqno(4));
    assert_eq!(index.reader().last_writer(key(5, 2)), Some(Seqno(4)));
    assert_eq!(index.entries_held(), 2);
}
