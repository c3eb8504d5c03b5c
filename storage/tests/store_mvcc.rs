//! MVCC reads: a read at snapshot S sees exactly the newest version <= S of each key, with
//! versions installed out of order from several threads, replayed, and read concurrently.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use tutti_storage::store::{Store, Value};
use tutti_storage::Seqno;

/// One write of a transaction: `None` is a delete.
#[derive(Clone, Debug)]
struct Write {
    key: Vec<u8>,
    seqno: Seqno,
    value: Option<Vec<u8>>,
}

/// The reference model: per key, every version by seqno.
#[derive(Default)]
struct Model {
    keys: BTreeMap<Vec<u8>, BTreeMap<Seqno, Option<Vec<u8>>>>,
}

impl Model {
    fn get(&self, key: &[u8], snapshot: Seqno) -> Option<Vec<u8>> {
        let versions = self.keys.get(key)?;
        versions
            .range(..=snapshot)
            .next_back()
            .and_then(|(_, value)| value.clone())
    }
}

/// A value that names its key and seqno, so a reader can tell which version it got.
fn value_of(key: &[u8], seqno: Seqno) -> Vec<u8> {
    let mut value = format!("{seqno}:").into_bytes();
    value.extend_from_slice(key);
    value
}

/// The seqno a value from `value_of` was written at.
fn seqno_in(value: &[u8]) -> Seqno {
    let text = std::str::from_utf8(value).expect("test values are text");
    let (seqno, _) = text.split_once(':').expect("test values hold their seqno");
    Seqno(seqno.parse().expect("test values start with a seqno"))
}

/// A random history of `transactions` transactions over `key_count` keys: transaction n
/// has seqno n and writes 1 to 4 distinct keys, deleting about one write in five.
fn history(rng: &mut ChaCha8Rng, transactions: u64, key_count: u32) -> Vec<Vec<Write>> {
    (1..=transactions)
        .map(|seqno| {
            let mut keys: Vec<u32> = (0..rng.random_range(1..=4))
                .map(|_| rng.random_range(0..key_count))
                .collect();
            keys.sort_unstable();
            keys.dedup();
            keys.into_iter()
                .map(|key| {
                    let key = format!("key-{key:05}").into_bytes();
                    let value = (!rng.random_bool(0.2)).then(|| value_of(&key, Seqno(seqno)));
                    Write {
                        key,
                        seqno: Seqno(seqno),
                        value,
                    }
                })
                .collect()
        })
        .collect()
}

fn model_of(transactions: &[Vec<Write>]) -> Model {
    let mut model = Model::default();
    for write in transactions.iter().flatten() {
        model
            .keys
            .entry(write.key.clone())
            .or_default()
            .insert(write.seqno, write.value.clone());
    }
    model
}

fn install(store: &Store, write: &Write) {
    store.install(
        &write.key,
        write.seqno,
        write.value.as_deref().map(Value::from),
    );
}

/// Installs `writes` from `threads` threads, each taking every `threads`-th write.
fn install_from_threads(store: &Store, writes: &[Write], threads: usize) {
    thread::scope(|scope| {
        for first in 0..threads {
            scope.spawn(move || {
                for write in writes.iter().skip(first).step_by(threads) {
                    install(store, write);
                }
            });
        }
    });
}

fn assert_store_matches_model(store: &Store, model: &Model, last: Seqno) {
    let mut keys: Vec<Vec<u8>> = model.keys.keys().cloned().collect();
    keys.push(b"never-written".to_vec());
    for key in &keys {
        for snapshot in 0..=last.0 + 1 {
            let snapshot = Seqno(snapshot);
            let got = store.get(key, snapshot).map(|value| value.to_vec());
            assert_eq!(
                got,
                model.get(key, snapshot),
                "key {key:?} at snapshot {snapshot}"
            );
        }
    }
}

#[test]
fn reads_at_every_snapshot_see_exactly_the_versions_at_or_below_it_after_shuffled_installs_from_three_threads(
) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let transactions = history(&mut rng, 600, 80);
    let model = model_of(&transactions);
    let mut writes: Vec<Write> = transactions.iter().flatten().cloned().collect();
    writes.shuffle(&mut rng);
    let store = Store::new();
    install_from_threads(&store, &writes, 3);
    assert_store_matches_model(&store, &model, Seqno(600));

    let versions: u64 = model
        .keys
        .values()
        .map(|versions| versions.len() as u64)
        .sum();
    let stats = store.stats();
    assert_eq!(stats.versions, versions);
    assert_eq!(stats.keys, model.keys.len() as u64);
    assert!(stats.bytes > 0);

    // A replay of every write, in another order, changes nothing.
    writes.shuffle(&mut rng);
    install_from_threads(&store, &writes, 3);
    assert_eq!(store.stats(), stats);
    assert_store_matches_model(&store, &model, Seqno(600));
}

#[test]
#[should_panic(expected = "two different versions")]
fn two_different_values_at_one_seqno_are_a_programmer_error() {
    let store = Store::new();
    store.install(b"k", Seqno(3), Some(Value::from(&b"one"[..])));
    store.install(b"k", Seqno(3), Some(Value::from(&b"two"[..])));
}

#[test]
#[should_panic(expected = "two different versions")]
fn a_delete_and_a_write_at_one_seqno_are_a_programmer_error() {
    let store = Store::new();
    store.install(b"k", Seqno(3), None);
    store.install(b"k", Seqno(3), Some(Value::from(&b"two"[..])));
}

/// Appliers install whole transactions in a locally shuffled order and advance a watermark
/// over the contiguous prefix of finished ones, as the engine does.
struct Appliers {
    next: AtomicUsize,
    finished: parking_lot::Mutex<(Seqno, Vec<bool>)>,
    watermark: AtomicU64,
}

impl Appliers {
    fn finish(&self, seqno: Seqno) {
        let mut finished = self.finished.lock();
        let (watermark, done) = &mut *finished;
        done[seqno.0 as usize] = true;
        while done.get(watermark.next().0 as usize) == Some(&true) {
            *watermark = watermark.next();
        }
        self.watermark.store(watermark.0, Ordering::Release);
    }
}

#[test]
fn concurrent_readers_see_the_model_at_the_watermark_and_never_a_version_above_their_snapshot() {
    const TRANSACTIONS: u64 = 4000;
    const MIN_READS: u64 = 500;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let transactions = history(&mut rng, TRANSACTIONS, 64);
    let model = model_of(&transactions);
    // Shuffle within windows, so installs run out of order but the watermark still moves.
    let mut order: Vec<usize> = (0..transactions.len()).collect();
    for window in order.chunks_mut(32) {
        window.shuffle(&mut rng);
    }
    let store = Store::new();
    let appliers = Appliers {
        next: AtomicUsize::new(0),
        finished: parking_lot::Mutex::new((Seqno::ZERO, vec![false; TRANSACTIONS as usize + 1])),
        watermark: AtomicU64::new(0),
    };
    let installing = AtomicBool::new(true);
    let reads = AtomicU64::new(0);
    let keys: Vec<Vec<u8>> = model.keys.keys().cloned().collect();
    thread::scope(|scope| {
        let appliers_done: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| loop {
                    let index = appliers.next.fetch_add(1, Ordering::Relaxed);
                    let Some(&transaction) = order.get(index) else {
                        break;
                    };
                    for write in &transactions[transaction] {
                        install(&store, write);
                    }
                    appliers.finish(Seqno(transaction as u64 + 1));
                })
            })
            .collect();
        for reader in 0..2_u64 {
            let (store, model, keys, appliers, installing, reads) =
                (&store, &model, &keys, &appliers, &installing, &reads);
            scope.spawn(move || {
                let mut rng = ChaCha8Rng::seed_from_u64(100 + reader);
                // A reader may be scheduled late on a busy machine: it still reads a
                // minimum number of times, racing whatever installs are left.
                let mut own_reads = 0_u64;
                while installing.load(Ordering::Acquire) || own_reads < MIN_READS {
                    let key = &keys[rng.random_range(0..keys.len())];
                    // At or below the watermark: exactly the model.
                    let watermark = Seqno(appliers.watermark.load(Ordering::Acquire));
                    let snapshot = Seqno(rng.random_range(0..=watermark.0));
                    let got = store.get(key, snapshot).map(|value| value.to_vec());
                    assert_eq!(
                        got,
                        model.get(key, snapshot),
                        "key {key:?} at snapshot {snapshot}"
                    );
                    // Anywhere, even above the watermark while installs race: never newer.
                    let snapshot = Seqno(rng.random_range(0..=TRANSACTIONS));
                    if let Some(value) = store.get(key, snapshot) {
                        assert!(
                            seqno_in(&value) <= snapshot,
                            "a read at {snapshot} saw {value:?}"
                        );
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                    own_reads += 1;
                }
            });
        }
        for applier in appliers_done {
            applier.join().expect("an applier panicked");
        }
        installing.store(false, Ordering::Release);
    });
    assert_eq!(appliers.watermark.load(Ordering::Acquire), TRANSACTIONS);
    assert!(reads.load(Ordering::Relaxed) >= 2 * MIN_READS);
    assert_store_matches_model(&store, &model, Seqno(TRANSACTIONS));
}

#[test]
fn a_deleted_key_reads_as_absent_and_a_later_write_brings_it_back() {
    let store = Store::new();
    let value = |text: &str| Some(Value::from(text.as_bytes()));
    store.install(b"k", Seqno(1), value("a"));
    store.install(b"k", Seqno(3), value("c"));
    store.install(b"k", Seqno(2), None);
    let read = |snapshot| store.get(b"k", Seqno(snapshot)).map(|value| value.to_vec());
    let expected: HashMap<u64, Option<Vec<u8>>> = [
        (0, None),
        (1, Some(b"a".to_vec())),
        (2, None),
        (3, Some(b"c".to_vec())),
        (9, Some(b"c".to_vec())),
    ]
    .into();
    for (snapshot, value) in expected {
        assert_eq!(read(snapshot), value, "snapshot {snapshot}");
    }
    assert_eq!(store.len_at(Seqno(2)), 0);
    assert_eq!(store.len_at(Seqno(3)), 1);
}
