//! Scenario tests of the log's operations: appends across many segments, reads, purge,
//! truncation, sync policies, refused input, and recovery from damaged segment files.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tutti_storage::log::format::{SEGMENT_HEADER_SIZE, SEGMENT_SIZE_MIN};
use tutti_storage::log::{Log, LogError, LogOptions, SyncPolicy};
use tutti_storage::{Seqno, ViewNumber};

fn options(sync: SyncPolicy) -> LogOptions {
    LogOptions {
        segment_size: SEGMENT_SIZE_MIN,
        sync,
        must_keep: None,
    }
}

/// A payload that differs by seqno and by `salt`, of a length that varies with the seqno.
fn payload(seqno: u64, salt: u8) -> Vec<u8> {
    let len = (seqno * 997 % 9000) as usize;
    (0..len).map(|i| (i as u64 ^ seqno) as u8 ^ salt).collect()
}

fn append_range(log: &mut Log, seqnos: std::ops::RangeInclusive<u64>, view: u64, salt: u8) {
    let payloads: Vec<(u64, Vec<u8>)> = seqnos.map(|s| (s, payload(s, salt))).collect();
    for chunk in payloads.chunks(7) {
        log.append_batch(
            chunk
                .iter()
                .map(|(s, p)| (Seqno(*s), ViewNumber(view), p.as_slice())),
        )
        .expect("append");
    }
}

fn assert_holds(log: &Log, seqnos: std::ops::RangeInclusive<u64>, view: u64, salt: u8) {
    for seqno in seqnos.clone() {
        let record = log
            .read(Seqno(seqno))
            .expect("read")
            .expect("record present");
        assert_eq!(record.seqno, Seqno(seqno));
        assert_eq!(record.view, ViewNumber(view));
        assert_eq!(
            record.payload,
            payload(seqno, salt).as_slice(),
            "seqno {seqno}"
        );
    }
    let iterated: Vec<u64> = log
        .iter(Seqno(*seqnos.start())..=Seqno(*seqnos.end()))
        .map(|r| r.expect("iter").seqno.0)
        .collect();
    assert_eq!(iterated, seqnos.collect::<Vec<_>>());
}

fn reopen(dir: &Path, sync: SyncPolicy) -> Log {
    let (log, report) = Log::open(dir, options(sync)).expect("reopen");
    assert_eq!(report.torn_tail, None, "a clean log has no torn tail");
    log
}

fn files_content(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).expect("read file");
            (p, bytes)
        })
        .collect()
}

#[test]
fn appends_roll_over_across_many_segments_and_read_back_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, report) = Log::open(dir.path(), options(SyncPolicy::Batch)).expect("open");
    assert_eq!(report.last_seqno, Seqno::ZERO);
    assert_eq!(log.first_seqno(), None);
    append_range(&mut log, 1..=600, 4, 0);
    assert!(log.segment_count() > 20, "{} segments", log.segment_count());
    assert_eq!(log.last_seqno(), Seqno(600));
    assert_eq!(log.durable_through(), Seqno(600));
    assert_eq!(log.last_view(), Some(ViewNumber(4)));
    assert_holds(&log, 1..=600, 4, 0);
    assert_eq!(log.read(Seqno(601)).expect("read"), None);
    assert_eq!(log.read(Seqno::ZERO).expect("read"), None);
    let segments = log.segment_count();
    drop(log);
    let log = reopen(dir.path(), SyncPolicy::Batch);
    assert_eq!(log.segment_count(), segments);
    assert_eq!(log.first_seqno(), Some(Seqno(1)));
    assert_eq!(log.last_seqno(), Seqno(600));
    assert_holds(&log, 1..=600, 4, 0);
    assert_eq!(log.iter(Seqno(590)..).count(), 11);
    assert_eq!(log.iter(..Seqno(3)).count(), 2);
}

#[test]
fn an_empty_log_starts_at_any_seqno_then_requires_contiguity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = Log::open(dir.path(), options(SyncPolicy::None)).expect("open");
    assert!(matches!(
        log.append_batch([(Seqno::ZERO, ViewNumber(1), &b"x"[..])]),
        Err(LogError::SeqnoZero)
    ));
    append_range(&mut log, 1000..=1010, 1, 0);
    let refused = log.append_batch([
        (Seqno(1011), ViewNumber(1), &b"kept"[..]),
        (Seqno(1013), ViewNumber(1), &b"gap"[..]),
    ]);
    assert!(matches!(
        refused,
        Err(LogError::NotContiguous {
            expected: Seqno(1012),
            got: Seqno(1013)
        })
    ));
    assert_eq!(
        log.last_seqno(),
        Seqno(1011),
        "records before the refused one stay"
    );
    let too_large = vec![0u8; log.payload_max() + 1];
    assert!(matches!(
        log.append_batch([(Seqno(1012), ViewNumber(1), too_large.as_slice())]),
        Err(LogError::RecordTooLarge {
            seqno: Seqno(1012),
            ..
        })
    ));
    let largest = vec![7u8; log.payload_max()];
    log.append_batch([(Seqno(1012), ViewNumber(1), largest.as_slice())])
        .expect("the largest payload fits a segment of its own");
    drop(log);
    let log = reopen(dir.path(), SyncPolicy::None);
    assert_eq!(log.first_seqno(), Some(Seqno(1000)));
    assert_eq!(
        log.read(Seqno(1012))
            .expect("read")
            .expect("present")
            .payload,
        largest
    );
}

#[test]
fn sync_policies_set_durable_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = Log::open(dir.path(), options(SyncPolicy::None)).expect("open");
    append_range(&mut log, 1..=50, 1, 0);
    assert_eq!(
        log.durable_through(),
        Seqno::ZERO,
        "none never syncs appends"
    );
    assert!(!log.sync_if_due().expect("sync_if_due"));
    log.sync().expect("sync");
    assert_eq!(log.durable_through(), Seqno(50));
    drop(log);

    let interval = SyncPolicy::Interval(Duration::from_millis(20));
    let (mut log, report) = Log::open(dir.path(), options(interval)).expect("open");
    assert_eq!(
        log.durable_through(),
        report.last_seqno,
        "open syncs what it recovered"
    );
    append_range(&mut log, 51..=51, 1, 0);
    assert_eq!(
        log.durable_through(),
        Seqno(50),
        "the interval has not passed"
    );
    assert!(!log.sync_if_due().expect("sync_if_due"));
    std::thread::sleep(Duration::from_millis(25));
    assert!(log.sync_if_due().expect("sync_if_due"));
    assert_eq!(log.durable_through(), Seqno(51));
    drop(log);

    let (mut log, _) = Log::open(dir.path(), options(SyncPolicy::Batch)).expect("open");
    append_range(&mut log, 52..=60, 1, 0);
    assert_eq!(
        log.durable_through(),
        Seqno(60),
        "batch syncs before returning"
    );
}

#[test]
fn sync_policy_parses_the_documented_forms_only() {
    assert_eq!("batch".parse(), Ok(SyncPolicy::Batch));
    assert_eq!("none".parse(), Ok(SyncPolicy::None));
    assert_eq!(
        "interval:15".parse(),
        Ok(SyncPolicy::Interval(Duration::from_millis(15)))
    );
    for bad in [
        "",
        "Batch",
        "interval",
        "interval:",
        "interval:0",
        "interval:-3",
        "always",
    ] {
        let error = bad.parse::<SyncPolicy>().expect_err(bad);
        let message = error.to_string();
        assert!(message.contains(&format!("`{bad}`")), "{message}");
        assert!(message.contains("interval:<ms>"), "{message}");
    }
    for policy in [
        SyncPolicy::Batch,
        SyncPolicy::None,
        SyncPolicy::Interval(Duration::from_millis(7)),
    ] {
        assert_eq!(policy.to_string().parse(), Ok(policy));
    }
}

#[test]
fn a_second_log_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_log, _) = Log::open(dir.path(), options(SyncPolicy::None)).expect("open");
    assert!(matches!(
        Log::open(dir.path(), options(SyncPolicy::None)),
        Err(LogError::Locked { .. })
    ));
}

#[test]
fn segment_size_out_of_range_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    for size in [0, SEGMENT_SIZE_MIN - 4096, SEGMENT_SIZE_MIN + 8, 1 << 40] {
        let options = LogOptions {
            segment_size: size,
            ..LogOptions::default()
        };
        assert!(matches!(
            Log::open(dir.path(), options),
            Err(LogError::SegmentSize { size: s }) if s == size
        ));
    }
}

#[test]
fn purge_before_deletes_whole_old_segments_and_the_chain_still_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = Log::open(dir.path(), options(SyncPolicy::Batch)).expect("open");
    append_range(&mut log, 1..=300, 2, 0);
    let before = log.segment_count();
    assert_eq!(log.purge_before(Seqno(1)).expect("purge"), 0);
    let purged = log.purge_before(Seqno(150)).expect("purge");
    assert!(purged > 0);
    assert_eq!(log.segment_count(), before - purged);
    let first = log.first_seqno().expect("records remain");
    assert!(first <= Seqno(150), "the segment holding 150 is kept");
    assert_eq!(log.read(Seqno(first.0 - 1)).expect("read"), None);
    drop(log);
    let (mut log, report) = Log::open(dir.path(), options(SyncPolicy::Batch)).expect("reopen");
    assert_eq!(report.first_seqno, Some(first));
    assert_holds(&log, first.0..=300, 2, 0);
    // Purging past the end keeps the segment holding the last record.
    log.purge_before(Seqno(10_000)).expect("purge");
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.last_seqno(), Seqno(300));
    append_range(&mut log, 301..=320, 2, 0);
    drop(log);
    let log = reopen(dir.path(), SyncPolicy::Batch);
    assert_holds(&log, log.first_seqno().expect("first").0..=320, 2, 0);
}

#[test]
fn truncated_records_never_come_back_and_new_ones_replace_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = Log::open(dir.path(), options(SyncPolicy::Batch)).expect("open");
    append_range(&mut log, 1..=400, 1, 0);
    let segments = log.segment_count();
    // A cut in the middle of an earlier segment: later segments go, the cut one shrinks.
    log.truncate_after(Seqno(123)).expect("truncate");
    assert!(log.segment_count() < segments);
    assert_eq!(log.last_seqno(), Seqno(123));
    assert_eq!(log.last_view(), Some(ViewNumber(1)));
    assert_eq!(log.read(Seqno(124)).expect("read"), None);
    // A crash right after: no further sync, the process goes away.
    drop(log);
    let (mut log, report) = Log::open(dir.path(), options(SyncPolicy::Batch)).expect("reopen");
    assert_eq!(report.torn_tail, None);
    assert_eq!(report.last_seqno, Seqno(123));
    assert_holds(&log, 1..=123, 1, 0);
    append_range(&mut log, 124..=300, 2, 0x5A);
    drop(log);
    let mut log = reopen(dir.path(), SyncPolicy::Batch);
    assert_holds(&log, 1..=123, 1, 0);
    assert_holds(&log, 124..=300, 2, 0x5A);
    // A cut at a segment's last record, and one before the first record.
    log.truncate_after(Seqno(300))
        .expect("truncate at the end is a no-op");
    assert_eq!(log.last_seqno(), Seqno(300));
    log.truncate_after(Seqno::ZERO)
        .expect("truncate everything");
    assert_eq!(log.last_seqno(), Seqno::ZERO);
    assert_eq!(log.segment_count(), 0);
    drop(log);
    let (mut log, report) = Log::open(dir.path(), options(SyncPolicy::Batch)).expect("reopen");
    assert_eq!(report.last_seqno, Seqno::ZERO);
    append_range(&mut log, 1..=5, 3, 9);
    assert_holds(&log, 1..=5, 3, 9);
}

#[test]
fn truncation_at_every_cut_point_of_a_segment_keeps_exactly_the_prefix() {
    let dir = tempfile::tempdir().expect("tempdir");
    for cut in [1u64, 2, 7, 8, 9] {
        let sub = dir.path().join(cut.to_string());
        let (mut log, _) = Log::open(&sub, options(SyncPolicy::None)).expect("open");
        append_range(&mut log, 1..=9, 1, 0);
        assert_eq!(log.segment_count(), 1);
        log.truncate_after(Seqno(cut)).expect("truncate");
        // One new record, so stale ones (if any were left) would follow it on disk.
        append_range(&mut log, cut + 1..=cut + 1, 5, 1);
        drop(log);
        let mut log = reopen(&sub, SyncPolicy::None);
        assert_eq!(log.last_seqno(), Seqno(cut + 1));
        assert_holds(&log, 1..=cut, 1, 0);
        append_range(&mut log, cut + 2..=12, 5, 1);
        drop(log);
        let log = reopen(&sub, SyncPolicy::None);
        assert_holds(&log, 1..=cut, 1, 0);
        assert_holds(&log, cut + 1..=12, 5, 1);
    }
}

#[test]
fn leftover_of_an_interrupted_truncation_is_ignored_and_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = Log::open(dir.path(), options(SyncPolicy::Batch)).expect("open");
    append_range(&mut log, 1..=20, 1, 0);
    let segment = log.segment_paths()[0].clone();
    drop(log);
    let mut tmp = segment.clone().into_os_string();
    tmp.push(".tmp");
    fs::write(&tmp, b"half a copy").expect("write leftover");
    let log = reopen(dir.path(), SyncPolicy::Batch);
    assert_holds(&log, 1..=20, 1, 0);
    assert!(!Path::new(&tmp).exists());
}

/// Flips one byte of the first record, which has valid records after it: recovery must
/// refuse with the segment and offset, and change nothing.
#[test]
fn damage_before_valid_records_is_corruption_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = Log::open(dir.path(), options(SyncPolicy::Batch)).expect("open");
    append_range(&mut log, 1..=10, 1, 0);
    let segment = log.segment_paths()[0].clone();
    drop(log);
    let file = OpenOptions::new().write(true).open(&segment).expect("open");
    file.write_all_at(&[0xEE], SEGMENT_HEADER_SIZE as u64 + 45)
        .expect("flip");
    let before = files_content(dir.path());
    match Log::open(dir.path(), options(SyncPolicy::Batch)) {
        Err(LogError::Corrupt {
            segment: s, offset, ..
        }) => {
            assert_eq!(s, segment);
            assert_eq!(offset, SEGMENT_HEADER_SIZE as u64);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(files_content(dir.path()), before);
}

#[test]
fn a_missing_middle_segment_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = Log::open(dir.path(), options(SyncPolicy::Batch)).expect("open");
    append_range(&mut log, 1..=200, 1, 0);
    let paths = log.segment_paths();
    assert!(paths.len() >= 3);
    drop(log);
    fs::remove_file(&paths[1]).expect("remove");
    match Log::open(dir.path(), options(SyncPolicy::Batch)) {
        Err(LogError::Corrupt {
            segment, offset: 0, ..
        }) => assert_eq!(segment, paths[2]),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_segment_renamed_out_of_place_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = Log::open(dir.path(), options(SyncPolicy::Batch)).expect("open");
    append_range(&mut log, 1..=200, 1, 0);
    let paths = log.segment_paths();
    drop(log);
    let renamed = dir.path().join("00000000000000099999.log");
    fs::rename(&paths[1], &renamed).expect("rename");
    assert!(matches!(
        Log::open(dir.path(), options(SyncPolicy::Batch)),
        Err(LogError::Corrupt { .. })
    ));
}

/// A crash while a segment is being created can leave it short or with a torn header;
/// it holds no record, so it is a torn tail. Before a valid segment it is corruption.
#[test]
fn garbage_segment_files_are_torn_at_the_end_and_corrupt_in_the_middle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = Log::open(dir.path(), options(SyncPolicy::Batch)).expect("open");
    append_range(&mut log, 1..=30, 1, 0);
    drop(log);
    for garbage in [
        vec![],
        vec![0u8; 10],
        vec![0u8; SEGMENT_SIZE_MIN as usize],
        vec![0x77; 100],
    ] {
        let path = dir.path().join("00000000000000000031.log");
        fs::write(&path, &garbage).expect("write");
        let (log, report) = Log::open(dir.path(), options(SyncPolicy::Batch)).expect("open");
        let torn = report.torn_tail.expect("reported");
        assert_eq!(torn.segments_removed, vec![path.clone()]);
        assert!(!path.exists());
        assert_eq!(log.last_seqno(), Seqno(30));
        drop(log);
    }
    let path = dir.path().join("00000000000000000001.log");
    let saved = fs::read(&path).expect("read");
    fs::write(&path, [0u8; 10]).expect("write");
    assert!(matches!(
        Log::open(dir.path(), options(SyncPolicy::Batch)),
        Err(LogError::Corrupt { offset: 0, .. })
    ));
    fs::write(&path, saved).expect("restore");
    let log = reopen(dir.path(), SyncPolicy::Batch);
    assert_holds(&log, 1..=30, 1, 0);
}

#[test]
fn must_keep_refuses_a_torn_tail_that_drops_committed_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = Log::open(dir.path(), options(SyncPolicy::Batch)).expect("open");
    append_range(&mut log, 1..=10, 1, 0);
    let segment = log.segment_paths()[0].clone();
    drop(log);
    // Zero everything from the middle of record 8 on: a torn tail dropping 8, 9 and 10.
    let bytes = fs::read(&segment).expect("read");
    let mut offset = SEGMENT_HEADER_SIZE;
    for seqno in 1..8 {
        offset += (40 + payload(seqno, 0).len()).next_multiple_of(8);
    }
    let file = OpenOptions::new().write(true).open(&segment).expect("open");
    let zeros = vec![0u8; bytes.len() - offset - 41];
    file.write_all_at(&zeros, offset as u64 + 41).expect("tear");
    let before = files_content(dir.path());
    let keep = |seqno| LogOptions {
        must_keep: Some(Seqno(seqno)),
        ..options(SyncPolicy::Batch)
    };
    match Log::open(dir.path(), keep(8)) {
        Err(LogError::WouldLoseCommitted {
            must_keep,
            recovered_through,
        }) => {
            assert_eq!((must_keep, recovered_through), (Seqno(8), Seqno(7)));
        }
        other => panic!("expected WouldLoseCommitted, got {other:?}"),
    }
    assert_eq!(
        files_content(dir.path()),
        before,
        "a refused recovery changes nothing"
    );
    let (log, report) = Log::open(dir.path(), keep(7)).expect("commit point 7 survives");
    assert_eq!(report.last_seqno, Seqno(7));
    assert_eq!(report.torn_tail.expect("torn").offset, offset as u64);
    drop(log);
    // An empty directory cannot satisfy a commit point either.
    let empty = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        Log::open(empty.path(), keep(1)),
        Err(LogError::WouldLoseCommitted {
            recovered_through: Seqno::ZERO,
            ..
        })
    ));
}

/// A torn tail at the end of the second-to-last segment, and a last segment holding no
/// valid record (its records never reached the disk): the tail is zeroed and the empty
/// segment deleted. With a valid record in the last segment, the same damage is corruption.
#[test]
fn a_torn_tail_spans_later_segments_only_when_they_hold_no_valid_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = Log::open(dir.path(), options(SyncPolicy::Batch)).expect("open");
    append_range(&mut log, 1..=60, 1, 0);
    let paths = log.segment_paths();
    assert!(paths.len() >= 3);
    let last = paths[paths.len() - 1].clone();
    let torn = paths[paths.len() - 2].clone();
    // The first seqno of the last segment, from its name: the records before it end the
    // second-to-last segment.
    let last_first: u64 = last
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("segment name");
    drop(log);
    let torn_bytes = fs::read(&torn).expect("read");
    let last_bytes = fs::read(&last).expect("read");
    // The damage: garbage over the seqno field of the second-to-last segment's last record.
    let last_record_offset = record_offset(&torn_bytes, last_first - 1);
    let damage = |path: &Path, offset: usize, bytes: &[u8]| {
        let file = OpenOptions::new().write(true).open(path).expect("open");
        file.write_all_at(bytes, offset as u64).expect("write");
    };
    // With valid records in the last segment, this is corruption.
    damage(&torn, last_record_offset + 8, &[0xAB; 8]);
    match Log::open(dir.path(), options(SyncPolicy::Batch)) {
        Err(LogError::Corrupt {
            segment, offset, ..
        }) => {
            assert_eq!(segment, torn);
            assert_eq!(offset, last_record_offset as u64);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(fs::read(&last).expect("read"), last_bytes);
    // Without them (only the header reached the disk), it is a torn tail.
    damage(
        &last,
        SEGMENT_HEADER_SIZE,
        &vec![0u8; last_bytes.len() - SEGMENT_HEADER_SIZE],
    );
    let (log, report) = Log::open(dir.path(), options(SyncPolicy::Batch)).expect("open");
    let tail = report.torn_tail.expect("torn tail reported");
    assert_eq!(tail.segment, torn);
    assert_eq!(tail.offset, last_record_offset as u64);
    assert_eq!(tail.segments_removed, vec![last.clone()]);
    assert!(!last.exists());
    assert_eq!(log.last_seqno(), Seqno(last_first - 2));
    assert_holds(&log, 1..=last_first - 2, 1, 0);
}

/// The offset of record `seqno` in a segment's bytes, found by walking its headers.
fn record_offset(segment: &[u8], seqno: u64) -> usize {
    let mut offset = SEGMENT_HEADER_SIZE;
    loop {
        let field = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&segment[at..at + 8]);
            u64::from_le_bytes(word)
        };
        let len = field(offset) >> 32;
        if field(offset + 8) == seqno {
            return offset;
        }
        offset += (40 + len as usize).next_multiple_of(8);
    }
}
