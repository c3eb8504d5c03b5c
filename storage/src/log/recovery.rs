//! Recovery: what [`Log::open`](super::Log::open) does with the segment files it finds.
//!
//! It verifies every record (magic, checksum, contiguous seqno, chain link) and every
//! segment header and link, then tells a torn tail from corruption:
//!
//! ```text
//!   valid records ... | first bad bytes | no valid record anywhere after  => torn tail:
//!                                                                            zeroed, reported
//!   valid records ... | first bad bytes | a valid record somewhere after  => corruption:
//!                                                                            error, nothing
//!                                                                            touched
//! ```
//!
//! "Anywhere after" means every 8-byte aligned offset in the rest of that segment and every
//! later segment file. A torn tail is what a crash leaves while records are being written;
//! valid bytes after bad ones are not, so the log refuses to open rather than drop them,
//! and the member repairs from its peers. Recovery never drops a record at or below the
//! persisted commit point (`must_keep`), and changes nothing on disk until it has decided.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use super::format::{
    parse_segment_file_name, RecordHeader, SegmentHeader, RECORD_ALIGN, RECORD_HEADER_SIZE,
    SEGMENT_HEADER_SIZE, SEGMENT_SIZE_MAX,
};
use super::segment::{map_file, sync_dir, ScannedRecords, Segment, TRUNCATION_TMP_SUFFIX};
use super::{io_error, LogError, RecoveryReport, TornTail};
use crate::Seqno;

/// Where the scan of a segment's records stopped before the end of the file.
struct Stop {
    /// Offset of the first bytes that are not the next valid record.
    offset: usize,
    /// Why those bytes are not the next record.
    reason: &'static str,
}

/// A segment file whose header was accepted, mapped, with its records scanned.
struct Opened {
    path: PathBuf,
    file: File,
    map: MmapMut,
    header: SegmentHeader,
}

/// What recovery decided to remove: the bytes after the last valid record in the segment
/// that keeps it, and any later files, which hold no valid record.
struct TornPlan {
    /// Index in `segments` of the segment to zero, and the range to zero in it.
    cut: Option<(usize, usize, usize)>,
    /// Later files to delete, highest first.
    remove: Vec<PathBuf>,
    /// What the report says about it.
    report: TornTail,
}

/// The segment files in `dir`, in log order, with the first seqno their names carry.
/// Leftovers of an interrupted truncation are deleted: the rename that would have made
/// them a segment never happened, so the segment they copy is still complete.
fn list_segment_files(dir: &Path) -> Result<Vec<(Seqno, PathBuf)>, LogError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("listing", dir))? {
        let entry = entry.map_err(io_error("listing", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seqno) = parse_segment_file_name(name) {
            files.push((seqno, entry.path()));
        } else if name
            .strip_suffix(TRUNCATION_TMP_SUFFIX)
            .and_then(parse_segment_file_name)
            .is_some()
        {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_error("deleting leftover", &path))?;
        }
    }
    files.sort();
    Ok(files)
}

/// The offset of the first record at or after `from` whose header and payload checksum
/// verify, whatever its seqno or chain link.
fn find_valid_record(bytes: &[u8], from: usize) -> Option<usize> {
    let mut pos = from.next_multiple_of(RECORD_ALIGN);
    while pos + RECORD_HEADER_SIZE <= bytes.len() {
        if let Some(header) = RecordHeader::decode(&bytes[pos..]) {
            let payload_start = pos + RECORD_HEADER_SIZE;
            let payload = bytes.get(payload_start..payload_start + header.payload_len as usize);
            if header.invalid().is_none() && payload.is_some_and(|p| header.verifies(p)) {
                return Some(pos);
            }
        }
        pos += RECORD_ALIGN;
    }
    None
}

/// Opens a segment file for reading and writing (recovery may zero a torn tail) and
/// returns it with its length.
fn open_segment_file(path: &Path) -> Result<(File, u64), LogError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_error("opening segment", path))?;
    let len = file
        .metadata()
        .map_err(io_error("reading size of", path))?
        .len();
    Ok((file, len))
}

/// Whether the file at `path` holds any record that verifies, wherever it is.
fn file_has_valid_record(path: &Path) -> Result<bool, LogError> {
    let (file, len) = open_segment_file(path)?;
    if len < RECORD_HEADER_SIZE as u64 {
        return Ok(false);
    }
    let len = usize::try_from(len.min(SEGMENT_SIZE_MAX)).unwrap_or(usize::MAX);
    let map = map_file(&file, path, len)?;
    Ok(find_valid_record(&map, 0).is_some())
}

/// Opens and maps a segment file and checks its header, or says why the header is bad.
fn open_segment(path: &Path, named: Seqno) -> Result<Result<Opened, &'static str>, LogError> {
    let (file, len) = open_segment_file(path)?;
    if len < SEGMENT_HEADER_SIZE as u64 {
        return Ok(Err("segment file shorter than its header"));
    }
    if len > SEGMENT_SIZE_MAX {
        return Ok(Err("segment file larger than SEGMENT_SIZE_MAX"));
    }
    let map = map_file(&file, path, len as usize)?;
    let header = SegmentHeader::decode(&map).expect("the file holds a whole header");
    if let Some(reason) = header.invalid() {
        return Ok(Err(reason));
    }
    if header.first_seqno != named {
        return Ok(Err("segment header first seqno differs from the file name"));
    }
    if header.segment_size != len {
        return Ok(Err("segment file size differs from its header"));
    }
    Ok(Ok(Opened {
        path: path.to_path_buf(),
        file,
        map,
        header,
    }))
}

/// Verifies records from the segment's first one on, chained to the header's link; stops
/// at the first bytes that are not the next valid record, unless the rest is all zero.
fn scan_records(bytes: &[u8], header: &SegmentHeader) -> (ScannedRecords, Option<Stop>) {
    let mut scanned = ScannedRecords {
        offsets: Vec::new(),
        write_pos: SEGMENT_HEADER_SIZE,
        last_checksum: header.prev_checksum,
        last_view: None,
    };
    let mut expected = header.first_seqno;
    let reason = loop {
        let pos = scanned.write_pos;
        if pos == bytes.len() {
            return (scanned, None);
        }
        let Some(record) = RecordHeader::decode(&bytes[pos..]) else {
            break "record header cut short by the end of the segment";
        };
        if let Some(reason) = record.invalid() {
            break reason;
        }
        let payload_start = pos + RECORD_HEADER_SIZE;
        let Some(payload) = bytes.get(payload_start..payload_start + record.payload_len as usize)
        else {
            break "record runs past the end of the segment";
        };
        if !record.verifies(payload) {
            break "record checksum mismatch";
        }
        if record.seqno != expected {
            break "record seqno does not follow the previous record";
        }
        if record.prev_checksum != scanned.last_checksum {
            break "record does not chain to the previous record";
        }
        scanned.offsets.push(pos as u32);
        scanned.write_pos = pos + record.record_size().min(bytes.len() - pos);
        scanned.last_checksum = record.checksum;
        scanned.last_view = Some(record.view);
        expected = expected.next();
    };
    let pos = scanned.write_pos;
    if bytes[pos..].iter().all(|&b| b == 0) {
        return (scanned, None);
    }
    (
        scanned,
        Some(Stop {
            offset: pos,
            reason,
        }),
    )
}

/// How many records the torn bytes at `from` looked like: headers with the right magic
/// and a bounded length, one after another. Torn bytes cannot be counted exactly; this is
/// the count the report gives.
fn count_torn_records(bytes: &[u8], from: usize, end: usize) -> u64 {
    let mut count = 0;
    let mut pos = from;
    while pos < end {
        match RecordHeader::decode(&bytes[pos..]) {
            Some(header) if header.invalid().is_none() => {
                count += 1;
                pos += header.record_size();
            }
            _ => break,
        }
    }
    count.max(1)
}

/// Reads every segment in `dir` and decides what survives. Changes nothing on disk unless
/// the result is a log, and then only to zero or delete a torn tail.
pub(crate) fn recover(
    dir: &Path,
    dir_file: &File,
    must_keep: Option<Seqno>,
) -> Result<(Vec<Segment>, RecoveryReport), LogError> {
    let files = list_segment_files(dir)?;
    let mut segments: Vec<Segment> = Vec::new();
    let mut plan = None;
    for (index, (named, path)) in files.iter().enumerate() {
        let later = &files[index + 1..];
        let opened = match open_segment(path, *named)? {
            Ok(opened) => opened,
            Err(reason) => {
                if file_has_valid_record(path)? || any_valid_record(later)? {
                    return Err(corrupt(path, 0, reason));
                }
                plan = Some(torn_files(&files[index..], reason));
                break;
            }
        };
        check_follows(segments.last(), &opened)?;
        let (scanned, stop) = scan_records(&opened.map, &opened.header);
        if let Some(stop) = stop {
            if find_valid_record(&opened.map, stop.offset).is_some() || any_valid_record(later)? {
                return Err(corrupt(path, stop.offset, stop.reason));
            }
            plan = Some(torn_tail(segments.len(), &opened, &stop, later));
            segments.push(into_segment(opened, scanned));
            break;
        }
        segments.push(into_segment(opened, scanned));
    }
    let last = segments
        .iter()
        .rev()
        .find_map(Segment::last_seqno)
        .unwrap_or(Seqno::ZERO);
    if let Some(must_keep) = must_keep.filter(|&keep| last < keep) {
        return Err(LogError::WouldLoseCommitted {
            must_keep,
            recovered_through: last,
        });
    }
    let torn_tail = match plan {
        Some(plan) => Some(apply(plan, &mut segments, dir, dir_file)?),
        None => None,
    };
    if last == Seqno::ZERO {
        // A log without records starts wherever its first append says: drop empty segments.
        for segment in segments.drain(..).rev() {
            segment.delete(dir, dir_file)?;
        }
    }
    for segment in &mut segments {
        segment.sync_file()?;
    }
    let report = RecoveryReport {
        segments: segments.len(),
        first_seqno: segments
            .first()
            .and_then(|s| s.last_seqno().map(|_| s.first_seqno())),
        last_seqno: last,
        torn_tail,
    };
    Ok((segments, report))
}

fn corrupt(path: &Path, offset: usize, reason: &'static str) -> LogError {
    LogError::Corrupt {
        segment: path.to_path_buf(),
        offset: offset as u64,
        reason,
    }
}

fn any_valid_record(files: &[(Seqno, PathBuf)]) -> Result<bool, LogError> {
    for (_, path) in files {
        if file_has_valid_record(path)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A segment must start right after the previous one ends and carry its last checksum;
/// otherwise a segment is missing, or a file from another log was put here.
fn check_follows(previous: Option<&Segment>, opened: &Opened) -> Result<(), LogError> {
    let Some(previous) = previous else {
        return Ok(());
    };
    if opened.header.first_seqno != previous.next_seqno() {
        return Err(corrupt(
            &opened.path,
            0,
            "segment does not start where the previous one ends (a segment is missing)",
        ));
    }
    if opened.header.prev_checksum != previous.last_checksum() {
        return Err(corrupt(
            &opened.path,
            0,
            "segment does not chain to the previous segment's last record",
        ));
    }
    Ok(())
}

fn into_segment(opened: Opened, scanned: ScannedRecords) -> Segment {
    Segment::from_recovery(opened.path, opened.file, opened.map, opened.header, scanned)
}

fn torn_files(files: &[(Seqno, PathBuf)], reason: &'static str) -> TornPlan {
    let remove: Vec<PathBuf> = files.iter().rev().map(|(_, path)| path.clone()).collect();
    let report = TornTail {
        segment: files[0].1.clone(),
        offset: 0,
        reason,
        bytes_dropped: 0,
        records_dropped: 0,
        segments_removed: remove.clone(),
    };
    TornPlan {
        cut: None,
        remove,
        report,
    }
}

fn torn_tail(index: usize, opened: &Opened, stop: &Stop, later: &[(Seqno, PathBuf)]) -> TornPlan {
    let bytes = &opened.map[..];
    let end = bytes
        .iter()
        .rposition(|&b| b != 0)
        .map_or(stop.offset, |last| last + 1);
    let remove: Vec<PathBuf> = later.iter().rev().map(|(_, path)| path.clone()).collect();
    let report = TornTail {
        segment: opened.path.clone(),
        offset: stop.offset as u64,
        reason: stop.reason,
        bytes_dropped: (end - stop.offset) as u64,
        records_dropped: count_torn_records(bytes, stop.offset, end),
        segments_removed: remove.clone(),
    };
    TornPlan {
        cut: Some((index, stop.offset, end)),
        remove,
        report,
    }
}

/// Removes a torn tail: later files first, highest first, each deletion durable before
/// the next, so a crash in between leaves a shorter torn tail, never a hole; then the
/// torn bytes, zeroed so they cannot resurface as the bytes of a later record.
fn apply(
    plan: TornPlan,
    segments: &mut [Segment],
    dir: &Path,
    dir_file: &File,
) -> Result<TornTail, LogError> {
    for path in &plan.remove {
        fs::remove_file(path).map_err(io_error("deleting torn segment", path))?;
        sync_dir(dir_file, dir)?;
    }
    if let Some((index, start, end)) = plan.cut {
        segments[index].zero_and_sync(start, end)?;
    }
    Ok(plan.report)
}
