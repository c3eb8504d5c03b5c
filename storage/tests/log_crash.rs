//! Property tests of recovery: random batches (payloads from empty to half a segment, in
//! small segments so they roll over often), then the damage a crash leaves (the tail of
//! the last segment lost, or its last records overwritten with garbage) or damage a crash
//! cannot leave (a changed byte with valid records after it).
//!
//! The tests place records with their own model of the format (8-byte aligned records
//! after a 48-byte segment header, rolling over when a record does not fit), so they know
//! exactly which records must survive: the longest valid prefix, no more and no less.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tutti_storage::log::format::{SEGMENT_HEADER_SIZE, SEGMENT_SIZE_MIN};
use tutti_storage::log::{Log, LogError, LogOptions, SyncPolicy};
use tutti_storage::{Seqno, ViewNumber};

const RECORD_HEADER: usize = 40;

fn options() -> LogOptions {
    LogOptions {
        segment_size: SEGMENT_SIZE_MIN,
        sync: SyncPolicy::None,
        must_keep: None,
    }
}

fn payload(seqno: u64, len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(31).wrapping_add(seqno * 7) as u8 ^ salt)
        .collect()
}

/// Where the model says a record is.
#[derive(Clone, Copy, Debug)]
struct Placed {
    seqno: u64,
    segment: usize,
    offset: usize,
    len: usize,
}

impl Placed {
    fn end(&self) -> usize {
        self.offset + RECORD_HEADER + self.len
    }
}

fn place(lens: &[usize]) -> Vec<Placed> {
    let size = SEGMENT_SIZE_MIN as usize;
    let (mut segment, mut pos) = (0, SEGMENT_HEADER_SIZE);
    let mut placed = Vec::new();
    for (i, &len) in lens.iter().enumerate() {
        let record = (RECORD_HEADER + len).next_multiple_of(8);
        if pos + record > size {
            segment += 1;
            pos = SEGMENT_HEADER_SIZE;
        }
        placed.push(Placed {
            seqno: i as u64 + 1,
            segment,
            offset: pos,
            len,
        });
        pos += record;
    }
    placed
}

/// Appends `batches` of payload lengths to a new log in `dir`; returns the record layout
/// and the segment paths.
fn write_log(dir: &Path, batches: &[Vec<usize>]) -> (Vec<Placed>, Vec<PathBuf>) {
    let (mut log, _) = Log::open(dir, options()).expect("open");
    let mut seqno = 0u64;
    for batch in batches {
        let records: Vec<(u64, Vec<u8>)> = batch
            .iter()
            .map(|&len| {
                seqno += 1;
                (seqno, payload(seqno, len, 0))
            })
            .collect();
        log.append_batch(
            records
                .iter()
                .map(|(s, p)| (Seqno(*s), ViewNumber(1), p.as_slice())),
        )
        .expect("append");
    }
    let lens: Vec<usize> = batches.iter().flatten().copied().collect();
    let placed = place(&lens);
    let paths = log.segment_paths();
    assert_eq!(
        paths.len(),
        placed.last().map_or(0, |p| p.segment + 1),
        "model and log agree"
    );
    (placed, paths)
}

/// The log holds exactly the first `through` records written, and nothing after them.
fn verify_prefix(log: &Log, placed: &[Placed], through: u64) {
    assert_eq!(log.last_seqno(), Seqno(through));
    verify_records(log, &placed[..through as usize]);
    assert_eq!(log.read(Seqno(through + 1)).expect("read"), None);
}

fn verify_records(log: &Log, placed: &[Placed]) {
    for record in placed {
        let read = log
            .read(Seqno(record.seqno))
            .expect("read")
            .expect("present");
        assert_eq!(
            read.payload,
            payload(record.seqno, record.len, 0).as_slice()
        );
        assert_eq!(read.view, ViewNumber(1));
    }
}

/// After recovery: append more records with other payloads, reopen, and check it all.
fn append_and_reopen(dir: &Path, placed: &[Placed], through: u64, extra: &[usize]) {
    let (mut log, _) = Log::open(dir, options()).expect("open again");
    let records: Vec<(u64, Vec<u8>)> = extra
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            (
                through + 1 + i as u64,
                payload(through + 1 + i as u64, len, 0xA5),
            )
        })
        .collect();
    log.append_batch(
        records
            .iter()
            .map(|(s, p)| (Seqno(*s), ViewNumber(2), p.as_slice())),
    )
    .expect("append after recovery");
    drop(log);
    let (log, report) = Log::open(dir, options()).expect("reopen after appends");
    assert_eq!(report.torn_tail, None);
    assert_eq!(log.last_seqno(), Seqno(through + extra.len() as u64));
    verify_records(&log, &placed[..through as usize]);
    for (seqno, bytes) in &records {
        let read = log.read(Seqno(*seqno)).expect("read").expect("present");
        assert_eq!(read.payload, bytes.as_slice());
        assert_eq!(read.view, ViewNumber(2));
    }
}

fn last_nonzero_end(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)
}

#[derive(Clone, Debug)]
enum Damage {
    /// Everything from this point of the last segment's written bytes on is lost.
    Cut(prop::sample::Index),
    /// From a point inside the `back`-th last record of the last segment to its end, every
    /// byte is changed (XOR with a non-zero byte from the seed).
    Overwrite {
        back: usize,
        within: prop::sample::Index,
        seed: u64,
    },
}

fn payload_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        1..200usize,
        200..5000usize,
        20_000..30_000usize
    ]
}

fn batches() -> impl Strategy<Value = Vec<Vec<usize>>> {
    prop::collection::vec(prop::collection::vec(payload_len(), 1..8), 1..10)
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Damage::Cut),
        (0..4usize, any::<prop::sample::Index>(), any::<u64>())
            .prop_map(|(back, within, seed)| Damage::Overwrite { back, within, seed }),
    ]
}

/// Applies `damage` to the last segment; returns the first damaged offset and how many
/// records survive it.
fn apply_damage(placed: &[Placed], paths: &[PathBuf], damage: &Damage) -> (usize, u64) {
    let last_segment = placed.last().expect("records").segment;
    let in_last: Vec<&Placed> = placed
        .iter()
        .filter(|p| p.segment == last_segment)
        .collect();
    let path = &paths[last_segment];
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    let written = in_last.last().expect("records").end();
    let file_len = SEGMENT_SIZE_MIN as usize;
    match *damage {
        Damage::Cut(point) => {
            let at = point.index(written + 1);
            file.write_all_at(&vec![0u8; file_len - at], at as u64)
                .expect("cut");
            let survivors = if at < SEGMENT_HEADER_SIZE {
                in_last[0].seqno - 1
            } else {
                in_last
                    .iter()
                    .filter(|p| p.end() <= at)
                    .map(|p| p.seqno)
                    .max()
                    .unwrap_or(in_last[0].seqno - 1)
            };
            (at, survivors)
        }
        Damage::Overwrite { back, within, seed } => {
            let target = in_last[in_last.len() - 1 - back.min(in_last.len() - 1)];
            let start = target.offset + within.index(target.end() - target.offset);
            let mut bytes = vec![0u8; written.next_multiple_of(8) - start];
            file.read_exact_at(&mut bytes, start as u64).expect("read");
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for byte in &mut bytes {
                *byte ^= rng.random_range(1..=255u8);
            }
            file.write_all_at(&bytes, start as u64).expect("overwrite");
            (start, target.seqno - 1)
        }
    }
}

fn check_torn_tail(dir: &Path, batches: &[Vec<usize>], damage: &Damage, extra: &[usize]) {
    let (placed, paths) = write_log(dir, batches);
    let (_, survivors) = apply_damage(&placed, &paths, damage);
    let last_segment = placed.last().expect("records").segment;
    let path = &paths[last_segment];
    let bytes = fs::read(path).expect("read");
    // The first record lost in the last segment, if its header survived the damage.
    let first_lost = placed
        .get(survivors as usize)
        .filter(|p| p.segment == last_segment);
    let header_ok = damage_spares_header(damage, &placed, last_segment);
    let (log, report) = Log::open(dir, options()).expect("a torn tail recovers");
    verify_prefix(&log, &placed, survivors);
    assert_eq!(report.last_seqno, Seqno(survivors));
    let lost = placed.len() as u64 - survivors;
    if !header_ok {
        let torn = report.torn_tail.expect("a torn segment header is reported");
        assert_eq!(torn.segments_removed, vec![path.clone()]);
    } else if let Some(first_lost) = first_lost {
        let tail_end = last_nonzero_end(&bytes);
        if tail_end > first_lost.offset {
            let torn = report
                .torn_tail
                .expect("non-zero bytes after the prefix are a torn tail");
            assert_eq!(torn.segment, *path);
            assert_eq!(torn.offset, first_lost.offset as u64);
            assert_eq!(torn.bytes_dropped, (tail_end - first_lost.offset) as u64);
            assert!((1..=lost).contains(&torn.records_dropped), "{torn:?}");
            if survivors == 0 {
                assert!(
                    !path.exists(),
                    "a log left without records drops its segments"
                );
            } else {
                let after = fs::read(path).expect("read");
                assert!(
                    after[first_lost.offset..].iter().all(|&b| b == 0),
                    "torn bytes zeroed"
                );
            }
        } else {
            assert_eq!(report.torn_tail, None, "a clean cut at a record boundary");
        }
    }
    drop(log);
    append_and_reopen(dir, &placed, survivors, extra);
}

/// Whether the damage leaves the last segment's header intact.
fn damage_spares_header(damage: &Damage, placed: &[Placed], last_segment: usize) -> bool {
    let written = placed
        .iter()
        .filter(|p| p.segment == last_segment)
        .map(Placed::end)
        .max()
        .unwrap_or(0);
    match *damage {
        Damage::Cut(point) => point.index(written + 1) >= SEGMENT_HEADER_SIZE,
        Damage::Overwrite { .. } => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn recovery_keeps_exactly_the_longest_valid_prefix(
        batches in batches(),
        damage in damage(),
        extra in prop::collection::vec(payload_len(), 1..6),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        check_torn_tail(dir.path(), &batches, &damage, &extra);
    }

    #[test]
    fn damage_followed_by_valid_records_is_corruption_and_nothing_is_dropped(
        batches in batches(),
        pick in any::<prop::sample::Index>(),
        within in any::<prop::sample::Index>(),
        flip in 1..=255u8,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (placed, paths) = write_log(dir.path(), &batches);
        prop_assume!(placed.len() >= 2);
        let target = placed[pick.index(placed.len() - 1)];
        let at = target.offset + within.index(target.end() - target.offset);
        let path = &paths[target.segment];
        let file = OpenOptions::new().read(true).write(true).open(path).expect("open");
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, at as u64).expect("read");
        file.write_all_at(&[byte[0] ^ flip], at as u64).expect("flip");
        let before: Vec<Vec<u8>> = paths.iter().map(|p| fs::read(p).expect("read")).collect();
        match Log::open(dir.path(), options()) {
            Err(LogError::Corrupt { segment, offset, .. }) => {
                prop_assert_eq!(&segment, path);
                prop_assert_eq!(offset, target.offset as u64);
            }
            other => prop_assert!(false, "expected Corrupt, got {:?}", other.map(|(_, r)| r)),
        }
        let after: Vec<Vec<u8>> = paths.iter().map(|p| fs::read(p).expect("read")).collect();
        prop_assert!(before == after, "a refused recovery changes no file");
    }
}
