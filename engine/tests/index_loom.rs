//! Loom model of the write-set index's concurrency protocol (see the module doc of
//! `engine::certifier::index`): one writer changing the table, one reader looking up
//! keys, every interleaving and every weak-memory outcome loom can produce.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p tutti-engine --test index_loom --release`
//!
//! Properties checked:
//! - a reader never sees a torn pair: the seqno it returns for a key is one written for
//!   that key, never another key's;
//! - a key present before the reader started and not dead is always found, even while
//!   the writer shifts it back over a reclaimed entry;
//! - a dead key stays absent while its slot is reused for another key.
#![cfg(loom)]

use loom::model::Builder;
use loom::thread;
use tutti_engine::certifier::{IndexConfig, IndexWriter, KeyHash};
use tutti_storage::Seqno;

/// One shard of 8 slots; raw hashes choose the home slot (low 3 bits).
fn tiny() -> IndexWriter {
    IndexWriter::new(IndexConfig {
        shard_bits: 0,
        shard_slot_bits: 3,
    })
    .expect("valid geometry")
}

fn key(home: u64, tag: u64) -> KeyHash {
    KeyHash(home | (tag << 8))
}

/// Explores `test` with at most `preemptions` forced thread switches (`None`: every
/// interleaving). The small models run exhaustively in seconds; the largest is bounded
/// so the whole file stays near a minute.
fn model(preemptions: Option<usize>, test: impl Fn() + Sync + Send + 'static) {
    let mut builder = Builder::new();
    builder.preemption_bound = preemptions;
    builder.check(test);
}

#[test]
fn reader_never_sees_a_torn_pair_during_inserts_and_updates() {
    model(None, || {
        let mut index = tiny();
        let reader = index.reader();
        let looker = thread::spawn(move || {
            let first = reader.last_writer(key(1, 1));
            let second = reader.last_writer(key(1, 2));
            (first, second)
        });
        index.set(key(1, 1), Seqno(5));
        index.set(key(1, 2), Seqno(6));
        index.set(key(1, 1), Seqno(7));
        let (first, second) = looker.join().expect("reader");
        assert!(
            matches!(first, None | Some(Seqno(5 | 7))),
            "key 1 read as {first:?}"
        );
        assert!(
            matches!(second, None | Some(Seqno(6))),
            "key 2 read as {second:?}"
        );
    });
}

#[test]
fn live_key_is_found_while_reclamation_shifts_it_back() {
    model(None, || {
        let mut index = tiny();
        // Same home: the dead key sits in the home slot, the live one right after it.
        index.set(key(2, 1), Seqno(1));
        index.set(key(2, 2), Seqno(5));
        index.set_gc_seqno(Seqno(2));
        let reader = index.reader();
        let looker = thread::spawn(move || reader.last_writer(key(2, 2)));
        assert_eq!(index.reclaim_step(8), 1);
        assert_eq!(looker.join().expect("reader"), Some(Seqno(5)));
        assert_eq!(index.last_writer(key(2, 2)), Some(Seqno(5)));
    });
}

#[test]
fn dead_key_stays_absent_while_its_slot_is_reused() {
    model(None, || {
        let mut index = tiny();
        index.set(key(3, 1), Seqno(1));
        index.set_gc_seqno(Seqno(2));
        let reader = index.reader();
        let looker = thread::spawn(move || {
            let dead = reader.last_writer(key(3, 1));
            let new = reader.last_writer(key(3, 2));
            (dead, new)
        });
        // Same home: the new key takes the dead key's slot, then is written again.
        index.set(key(3, 2), Seqno(9));
        index.set(key(3, 2), Seqno(10));
        assert_eq!(index.entries_held(), 1, "the dead slot was reused");
        let (dead, new) = looker.join().expect("reader");
        assert_eq!(dead, None, "a dead key read as {dead:?}");
        assert!(
            matches!(new, None | Some(Seqno(9 | 10))),
            "new key read as {new:?}"
        );
    });
}

#[test]
fn far_key_is_found_while_a_cluster_shifts_twice_and_is_rewritten() {
    model(Some(3), || {
        let mut index = tiny();
        // Cluster at home 6, wrapping past the shard's end: slots 6, 7, 0, 1 hold
        // dead, live, dead, live.
        index.set(key(6, 1), Seqno(1));
        index.set(key(6, 2), Seqno(6));
        index.set(key(6, 3), Seqno(2));
        index.set(key(6, 4), Seqno(7));
        index.set_gc_seqno(Seqno(2));
        let reader = index.reader();
        let looker = thread::spawn(move || reader.last_writer(key(6, 4)));
        // Reclamation scans from slot 0: removing slot 0 pulls the far key from 1 to 0,
        // removing slot 6 moves it again, from 0 to 7. Then it is written again.
        assert_eq!(index.reclaim_step(16), 2);
        index.set(key(6, 4), Seqno(8));
        let found = looker.join().expect("reader");
        assert!(
            matches!(found, Some(Seqno(7 | 8))),
            "far key read as {found:?}"
        );
        assert_eq!(index.entries_held(), 2);
    });
}
