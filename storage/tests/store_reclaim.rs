//! Reclaim: after `reclaim(h)` every read at a snapshot >= h is unchanged, old versions are
//! really gone, and reclaim running beside installs and reads loses no install.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;
use tutti_storage::store::{OpenSnapshots, ReclaimCursor, Store, Value};
use tutti_storage::Seqno;

type Versions = BTreeMap<Seqno, Option<Vec<u8>>>;

/// The reference model: per key, every version by seqno.
type Model = BTreeMap<Vec<u8>, Versions>;

fn model_get(model: &Model, key: &[u8], snapshot: Seqno) -> Option<Vec<u8>> {
    let versions = model.get(key)?;
    versions
        .range(..=snapshot)
        .next_back()
        .and_then(|(_, value)| value.clone())
}

/// A random model: `writes` writes over `key_count` keys at seqnos 1..=`last`, with a
/// delete in `delete_share` of them.
fn random_model(
    rng: &mut ChaCha8Rng,
    writes: usize,
    key_count: u32,
    last: u64,
    delete_share: f64,
) -> Model {
    let mut model = Model::new();
    for _ in 0..writes {
        let key = format!("key-{:04}", rng.random_range(0..key_count)).into_bytes();
        let seqno = Seqno(rng.random_range(1..=last));
        let value = (!rng.random_bool(delete_share)).then(|| format!("{seqno}").into_bytes());
        model.entry(key).or_default().insert(seqno, value);
    }
    model
}

fn load(model: &Model) -> Store {
    let store = Store::new();
    for (key, versions) in model {
        for (seqno, value) in versions {
            store.install(key, *seqno, value.as_deref().map(Value::from));
        }
    }
    store
}

/// Versions a reclaim at `horizon` must drop from one key: those older than the newest one
/// <= horizon, and that one too when it is a tombstone.
fn droppable(versions: &Versions, horizon: Seqno) -> u64 {
    let at_or_below = versions.range(..=horizon).count() as u64;
    match versions.range(..=horizon).next_back() {
        Some((_, None)) => at_or_below,
        Some((_, Some(_))) => at_or_below - 1,
        None => 0,
    }
}

fn assert_reads_unchanged_from(store: &Store, model: &Model, horizon: Seqno, last: Seqno) {
    for key in model.keys() {
        for snapshot in horizon.0..=last.0 + 1 {
            let snapshot = Seqno(snapshot);
            let got = store.get(key, snapshot).map(|value| value.to_vec());
            assert_eq!(
                got,
                model_get(model, key, snapshot),
                "key {key:?} at snapshot {snapshot}"
            );
        }
    }
}

#[test]
fn reads_at_or_above_the_horizon_are_unchanged_and_the_old_versions_are_gone() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for horizon in [1, 50, 120, 200, 300] {
        let horizon = Seqno(horizon);
        let model = random_model(&mut rng, 2000, 150, 300, 0.3);
        let store = load(&model);
        let before = store.stats();
        let expected_dropped: u64 = model
            .values()
            .map(|versions| droppable(versions, horizon))
            .sum();
        let expected_removed = model
            .values()
            .filter(|versions| droppable(versions, horizon) == versions.len() as u64)
            .count() as u64;
        let cursor = store.reclaim(horizon);
        assert!(cursor.is_finished());
        assert_eq!(
            cursor.versions_dropped(),
            expected_dropped,
            "horizon {horizon}"
        );
        assert_eq!(cursor.keys_removed(), expected_removed, "horizon {horizon}");
        assert!(
            horizon.0 < 120 || expected_dropped > 0,
            "the test must drop something"
        );
        let after = store.stats();
        assert_eq!(after.versions, before.versions - expected_dropped);
        assert_eq!(after.keys, before.keys - expected_removed);
        assert!(after.bytes < before.bytes || expected_dropped == 0);
        assert_eq!(store.reclaimed_horizon(), horizon);
        assert_reads_unchanged_from(&store, &model, horizon, Seqno(300));
        // A second pass at the same horizon finds nothing more.
        assert_eq!(store.reclaim(horizon).versions_dropped(), 0);
    }
}

#[test]
fn a_full_reclaim_leaves_one_version_per_visible_key_and_nothing_else() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let model = random_model(&mut rng, 3000, 200, 400, 0.4);
    let store = load(&model);
    store.reclaim(Seqno(400));
    let visible = store.len_at(Seqno(400));
    assert_eq!(store.stats().versions, visible);
    assert_eq!(store.stats().keys, visible);
    assert_reads_unchanged_from(&store, &model, Seqno(400), Seqno(400));
}

#[test]
fn small_reclaim_steps_interleaved_with_reads_and_installs_cover_every_key() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut model = random_model(&mut rng, 1500, 300, 200, 0.3);
    let store = load(&model);
    let horizon = Seqno(150);
    let expected: u64 = model
        .values()
        .map(|versions| droppable(versions, horizon))
        .sum();
    let mut cursor = ReclaimCursor::new();
    let mut steps = 0;
    let mut next_seqno = 201;
    while !cursor.is_finished() {
        store.reclaim_step(horizon, &mut cursor, 7);
        steps += 1;
        // Between steps, the store serves reads and takes installs of new keys and of
        // keys the pass has already visited or not.
        let key = format!("key-{:04}", rng.random_range(0..400)).into_bytes();
        let value = format!("{next_seqno}").into_bytes();
        store.install(&key, Seqno(next_seqno), Some(Value::from(&value[..])));
        model
            .entry(key)
            .or_default()
            .insert(Seqno(next_seqno), Some(value));
        next_seqno += 1;
        assert_reads_unchanged_from(&store, &model, Seqno(next_seqno - 1), Seqno(next_seqno - 1));
    }
    assert!(steps > 300 / 7, "a step visits at most keys_max keys");
    assert_eq!(cursor.versions_dropped(), expected);
    assert_reads_unchanged_from(&store, &model, horizon, Seqno(next_seqno));
    // A finished cursor does nothing.
    store.reclaim_step(Seqno(next_seqno), &mut cursor, 7);
    assert_eq!(cursor.versions_dropped(), expected);
}

#[test]
#[should_panic(expected = "at or below the reclaimed horizon")]
fn installing_at_or_below_a_reclaimed_horizon_is_a_programmer_error() {
    let store = Store::new();
    store.install(b"k", Seqno(5), Some(Value::from(&b"v"[..])));
    store.reclaim(Seqno(10));
    store.install(b"k", Seqno(10), None);
}

/// Transactions in seqno order, each deleting or writing one key of a tiny key set, so
/// reclaim keeps removing keys that installers are about to write again.
fn hot_history(
    rng: &mut ChaCha8Rng,
    transactions: u64,
    key_count: u32,
) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    (1..=transactions)
        .map(|seqno| {
            let key = format!("hot-{}", rng.random_range(0..key_count)).into_bytes();
            let value = (!rng.random_bool(0.5)).then(|| format!("{seqno}").into_bytes());
            (key, value)
        })
        .collect()
}

#[test]
fn reclaim_racing_with_installs_and_reads_loses_no_install() {
    const TRANSACTIONS: u64 = 30_000;
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let history = hot_history(&mut rng, TRANSACTIONS, 4);
    let mut model = Model::new();
    for (index, (key, value)) in history.iter().enumerate() {
        model
            .entry(key.clone())
            .or_default()
            .insert(Seqno(index as u64 + 1), value.clone());
    }
    let store = Store::new();
    let snapshots = OpenSnapshots::new();
    let next = AtomicUsize::new(0);
    let finished = parking_lot::Mutex::new((Seqno::ZERO, vec![false; TRANSACTIONS as usize + 1]));
    let watermark = AtomicU64::new(0);
    let installing = AtomicBool::new(true);
    let removed = AtomicU64::new(0);
    // Installers start only once the reclaimer runs, so the race happens on a busy machine too.
    let started = std::sync::Barrier::new(3);
    let install_until_done = || loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some((key, value)) = history.get(index) else {
            break;
        };
        let seqno = Seqno(index as u64 + 1);
        store.install(key, seqno, value.as_deref().map(Value::from));
        let mut finished = finished.lock();
        let (mark, done) = &mut *finished;
        done[seqno.0 as usize] = true;
        while done.get(mark.next().0 as usize) == Some(&true) {
            *mark = mark.next();
        }
        watermark.store(mark.0, Ordering::Release);
        drop(finished);
        // Pause now and then, so reclaim catches up with the watermark and
        // empties keys that the next installs then write again.
        if index % 128 == 0 {
            thread::sleep(Duration::from_micros(100));
        }
    };
    thread::scope(|scope| {
        let installers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    started.wait();
                    install_until_done();
                })
            })
            .collect();
        scope.spawn(|| {
            started.wait();
            while installing.load(Ordering::Acquire) {
                let horizon = snapshots.horizon(Seqno(watermark.load(Ordering::Acquire)));
                let cursor = store.reclaim(horizon);
                removed.fetch_add(cursor.keys_removed(), Ordering::Relaxed);
            }
        });
        scope.spawn(|| {
            while installing.load(Ordering::Acquire) {
                let Ok(hold) = snapshots.open(Seqno(watermark.load(Ordering::Acquire))) else {
                    continue;
                };
                for key in model.keys() {
                    let got = store.get(key, hold.snapshot()).map(|value| value.to_vec());
                    assert_eq!(
                        got,
                        model_get(&model, key, hold.snapshot()),
                        "key {key:?} at {}",
                        hold.snapshot()
                    );
                }
                drop(hold);
                thread::yield_now();
            }
        });
        for installer in installers {
            installer.join().expect("an installer panicked");
        }
        installing.store(false, Ordering::Release);
    });
    let last = Seqno(TRANSACTIONS);
    assert!(
        removed.load(Ordering::Relaxed) > 0,
        "the race needs keys removed while installs run"
    );
    for key in model.keys() {
        let got = store.get(key, last).map(|value| value.to_vec());
        assert_eq!(
            got,
            model_get(&model, key, last),
            "key {key:?} lost an install"
        );
    }
    store.reclaim(last);
    let visible = store.len_at(last);
    assert_eq!(store.stats().keys, visible);
    assert_eq!(store.stats().versions, visible);
}
