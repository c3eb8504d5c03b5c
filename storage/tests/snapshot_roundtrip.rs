//! Snapshot files round trip: store -> file -> new store gives the same visible state, for
//! small, empty and large stores, with the meta blob intact; the writer enforces its limits
//! and a writer that does not finish leaves nothing under the final name.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fs;
use std::path::Path;
use tutti_storage::snapshot::{
    SnapshotError, SnapshotReader, SnapshotWriter, BLOCK_PAYLOAD_TARGET_BYTES, KEY_BYTES_MAX,
    META_BYTES_MAX,
};
use tutti_storage::store::{Store, Value};
use tutti_storage::Seqno;

fn random_store(seed: u64, writes: u64) -> Store {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let store = Store::new();
    for seqno in 1..=writes {
        let key = format!("key-{}", rng.random_range(0..writes / 2)).into_bytes();
        let value = (!rng.random_bool(0.2)).then(|| {
            let length = rng.random_range(0..200);
            Value::from((0..length).map(|_| rng.random::<u8>()).collect::<Vec<u8>>())
        });
        store.install(&key, Seqno(seqno), value);
    }
    store
}

/// Every (key, value) of a file.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

fn read_all(path: &Path) -> Result<Entries, SnapshotError> {
    SnapshotReader::open(path)?.collect()
}

#[test]
fn a_store_round_trips_through_a_file_at_a_past_snapshot() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("snapshot-700");
    let store = random_store(1, 1000);
    // Versions above the snapshot exist in the store but must not reach the file.
    let summary = store
        .write_snapshot(Seqno(700), &path, b"certifier state")
        .expect("write");
    assert_eq!(summary.seqno, Seqno(700));
    assert_eq!(summary.entries, store.len_at(Seqno(700)));
    assert_eq!(
        summary.file_bytes,
        fs::metadata(&path).expect("the file exists").len()
    );
    assert!(!directory.path().join("snapshot-700.tmp").exists());

    let mut reader = SnapshotReader::open(&path).expect("open");
    assert_eq!(reader.seqno(), Seqno(700));
    assert_eq!(reader.meta(), b"certifier state");
    let loaded = Store::from_snapshot(&mut reader).expect("load");
    assert_eq!(reader.entries_read(), summary.entries);
    assert_eq!(loaded.digest(Seqno(700)), store.digest(Seqno(700)));
    assert_ne!(loaded.digest(Seqno(700)), store.digest(Seqno(1000)));
    assert_eq!(loaded.stats().versions, summary.entries);
    // Below S the loaded store holds nothing: every entry is a version at S.
    assert_eq!(loaded.len_at(Seqno(699)), 0);
    // The end stays the end.
    assert!(matches!(reader.next_entry(), Ok(None)));
}

#[test]
fn a_large_store_streams_through_many_blocks() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("large");
    let store = Store::new();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for index in 0..200_000_u32 {
        let value: Vec<u8> = (0..rng.random_range(16..100))
            .map(|_| rng.random())
            .collect();
        store.install(
            &index.to_be_bytes(),
            Seqno(1 + u64::from(index % 7)),
            Some(Value::from(value)),
        );
    }
    let summary = store.write_snapshot(Seqno(7), &path, &[]).expect("write");
    assert_eq!(summary.entries, 200_000);
    assert!(summary.blocks > 100, "{} blocks", summary.blocks);
    let mut reader = SnapshotReader::open(&path).expect("open");
    assert!(reader.meta().is_empty());
    let loaded = Store::from_snapshot(&mut reader).expect("load");
    assert_eq!(loaded.digest(Seqno(7)), store.digest(Seqno(7)));
    assert_eq!(loaded.len_at(Seqno(7)), 200_000);
}

#[test]
fn an_empty_store_gives_a_file_with_no_blocks() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("empty");
    let summary = Store::new()
        .write_snapshot(Seqno(3), &path, b"m")
        .expect("write");
    assert_eq!((summary.entries, summary.blocks), (0, 0));
    let mut reader = SnapshotReader::open(&path).expect("open");
    assert_eq!(reader.meta(), b"m");
    assert!(matches!(reader.next_entry(), Ok(None)));
}

#[test]
fn meta_blobs_round_trip_up_to_the_limit_and_larger_ones_are_refused() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    for length in [0, 1, 4096, 1 << 20, META_BYTES_MAX] {
        let path = directory.path().join(format!("meta-{length}"));
        let meta: Vec<u8> = (0..length).map(|index| (index % 251) as u8).collect();
        let mut writer = SnapshotWriter::create(&path, Seqno(9), &meta).expect("create");
        writer.push(b"key", b"value").expect("push");
        writer.finish().expect("finish");
        let reader = SnapshotReader::open(&path).expect("open");
        assert_eq!(reader.meta(), &meta[..], "meta of {length} bytes");
        fs::remove_file(&path).expect("remove");
    }
    let path = directory.path().join("too-much-meta");
    let meta = vec![0_u8; META_BYTES_MAX + 1];
    let error = SnapshotWriter::create(&path, Seqno(9), &meta).expect_err("refused");
    assert!(matches!(error, SnapshotError::MetaTooLarge { bytes } if bytes == META_BYTES_MAX + 1));
    assert!(error.to_string().contains("META_BYTES_MAX"), "{error}");
    assert!(
        fs::read_dir(directory.path())
            .expect("list")
            .next()
            .is_none(),
        "nothing was created"
    );
}

#[test]
fn entries_larger_than_a_block_get_a_block_of_their_own() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("big-values");
    let big = vec![7_u8; 3 * BLOCK_PAYLOAD_TARGET_BYTES];
    let mut writer = SnapshotWriter::create(&path, Seqno(1), &[]).expect("create");
    writer.push(b"a", b"small").expect("push");
    writer.push(b"b", &big).expect("push");
    writer.push(b"c", b"small").expect("push");
    let summary = writer.finish().expect("finish");
    assert_eq!(summary.blocks, 3);
    let entries = read_all(&path).expect("read");
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[1], (b"b".to_vec(), big));
}

#[test]
fn the_writer_refuses_keys_out_of_order_and_entries_over_the_limits() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("refusals");
    let mut writer = SnapshotWriter::create(&path, Seqno(1), &[]).expect("create");
    writer.push(b"b", b"").expect("push");
    assert!(matches!(
        writer.push(b"b", b""),
        Err(SnapshotError::KeyOrder { .. })
    ));
    assert!(matches!(
        writer.push(b"a", b""),
        Err(SnapshotError::KeyOrder { .. })
    ));
    let long_key = vec![b'z'; KEY_BYTES_MAX + 1];
    assert!(matches!(
        writer.push(&long_key, b""),
        Err(SnapshotError::EntryTooLarge { .. })
    ));
    writer
        .push(b"c", b"")
        .expect("a later key is still accepted");
    writer.finish().expect("finish");
    assert_eq!(read_all(&path).expect("read").len(), 2);
}

#[test]
fn a_writer_that_does_not_finish_leaves_the_previous_file_in_place() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("snapshot");
    let store = random_store(4, 300);
    store
        .write_snapshot(Seqno(300), &path, b"first")
        .expect("write");
    let before = fs::read(&path).expect("read");
    {
        let mut writer = SnapshotWriter::create(&path, Seqno(400), b"second").expect("create");
        for index in 0..10_000_u32 {
            writer.push(&index.to_be_bytes(), b"value").expect("push");
        }
        // Dropped without finish, as a crash or an error would.
    }
    assert_eq!(fs::read(&path).expect("read"), before);
    assert!(
        !directory.path().join("snapshot.tmp").exists(),
        "the temporary file is removed"
    );
    let mut reader = SnapshotReader::open(&path).expect("open");
    assert_eq!(reader.meta(), b"first");
    assert_eq!(
        Store::from_snapshot(&mut reader)
            .expect("load")
            .digest(Seqno(300)),
        store.digest(Seqno(300))
    );
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("absent");
    let error = SnapshotReader::open(&path).expect_err("no such file");
    assert!(matches!(error, SnapshotError::Io { .. }));
    assert!(error.to_string().contains("absent"), "{error}");
}
