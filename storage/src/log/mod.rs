//! The log: a segmented, memory-mapped, hash-chained sequence of records
//! `(seqno, view, payload)` (DESIGN.md section 11).
//!
//! It owns the segment files in one directory (and the directory's lock) and decides when
//! they are synced, rolled over, truncated and purged. It must never drop a record silently:
//! recovery truncates only a torn tail and reports it, refuses to open on corruption, and
//! refuses to end before the persisted commit point; [`Log::truncate_after`] leaves nothing
//! a crash could bring back. It never interprets payloads.
//!
//! ```text
//!  append_batch ──copy──> active segment map ──(sync policy)──> msync ──> durable_through
//!        │ ahead of the copy: zero-fill (if syncing) and prefault the next chunk
//!        │ full?
//!        └──> seal (sync) old segment, create + preallocate + fsync dir for the next one
//!
//!  dir/00000000000000000001.log  00000000000000004711.log  ...   (named by first seqno)
//!      [header|rec|rec|...|0000]  [header(prev checksum)|rec|...|0000]
//! ```
//!
//! The byte layouts are documented in [`format`]; recovery's rules in `recovery.rs`.

pub mod format;
mod recovery;
mod segment;

use std::fmt;
use std::fs::{self, File};
use std::ops::{Bound, RangeBounds};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use format::{
    record_size, SegmentHeader, RECORD_HEADER_SIZE, RECORD_PAYLOAD_MAX, SEGMENT_HEADER_SIZE,
    SEGMENT_SIZE_ALIGN, SEGMENT_SIZE_DEFAULT, SEGMENT_SIZE_MAX, SEGMENT_SIZE_MIN,
};
use segment::Segment;

use crate::{Seqno, ViewNumber};

/// When appended records are made durable (`log_sync` in the configuration).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncPolicy {
    /// One msync per appended batch (per segment it touched), before the append returns.
    /// The only policy under which acknowledged records survive a machine crash.
    #[default]
    Batch,
    /// Sync when this long has passed since the last sync: at an append, or when the
    /// owner calls [`Log::sync_if_due`] from a timer.
    Interval(Duration),
    /// Never sync records; the operating system writes them back when it likes.
    None,
}

/// The largest `interval:<ms>` accepted, in milliseconds: longer is `none` in disguise.
pub const SYNC_INTERVAL_MS_MAX: u64 = 60_000;

/// A `log_sync` value that is not one of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid log_sync value `{value}`: expected `batch`, `none` or `interval:<ms>` with \
     1 <= ms <= {SYNC_INTERVAL_MS_MAX} (for example `interval:10`)"
)]
pub struct SyncPolicyParseError {
    /// The value as given.
    pub value: String,
}

impl FromStr for SyncPolicy {
    type Err = SyncPolicyParseError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let error = || SyncPolicyParseError {
            value: value.to_string(),
        };
        match value {
            "batch" => Ok(SyncPolicy::Batch),
            "none" => Ok(SyncPolicy::None),
            _ => {
                let ms = value.strip_prefix("interval:").ok_or_else(error)?;
                let ms: u64 = ms.parse().map_err(|_| error())?;
                if ms == 0 || ms > SYNC_INTERVAL_MS_MAX {
                    return Err(error());
                }
                Ok(SyncPolicy::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

impl fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncPolicy::Batch => f.write_str("batch"),
            SyncPolicy::Interval(interval) => write!(f, "interval:{}", interval.as_millis()),
            SyncPolicy::None => f.write_str("none"),
        }
    }
}

/// How a log is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// Size of each new segment file in bytes, a multiple of 4096 between
    /// [`SEGMENT_SIZE_MIN`] and [`SEGMENT_SIZE_MAX`]. Existing segments keep their size.
    pub segment_size: u64,
    /// When appends are synced.
    pub sync: SyncPolicy,
    /// The persisted commit point: recovery that would end before it fails instead of
    /// losing committed records.
    pub must_keep: Option<Seqno>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_size: SEGMENT_SIZE_DEFAULT,
            sync: SyncPolicy::Batch,
            must_keep: None,
        }
    }
}

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file system call on the log's files failed.
    #[error("log I/O failed while {action} `{path}`: {source}")]
    Io {
        /// What the log was doing.
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The disk has no room for a new segment; nothing was written to it.
    #[error(
        "disk full: cannot preallocate {bytes} bytes for log segment `{path}`; free space on \
         that file system or lower the segment size"
    )]
    DiskFull {
        /// The segment that could not be created.
        path: PathBuf,
        /// The bytes it needed.
        bytes: u64,
    },
    /// Bytes that are not a valid record are followed by valid records, or a segment does
    /// not follow the previous one: not a crash's torn tail. Nothing was changed.
    #[error(
        "log corrupt in `{segment}` at offset {offset}: {reason}; the log was not changed: \
         repair this member from its peers"
    )]
    Corrupt {
        /// The segment file holding the bad bytes.
        segment: PathBuf,
        /// Byte offset of the bad bytes in that file.
        offset: u64,
        /// What is wrong with them.
        reason: &'static str,
    },
    /// Recovery would end before the persisted commit point: committed records are gone.
    #[error(
        "log recovery ends at seqno {recovered_through}, before the persisted commit point \
         {must_keep}: committed records are missing; repair this member from its peers"
    )]
    WouldLoseCommitted {
        /// The persisted commit point.
        must_keep: Seqno,
        /// The last seqno recovery found.
        recovered_through: Seqno,
    },
    /// Another process (or another `Log`) has the directory open.
    #[error("log directory `{path}` is in use by another log; stop the other process first")]
    Locked {
        /// The locked directory.
        path: PathBuf,
    },
    /// An appended seqno does not follow the last one.
    #[error("append of seqno {got} refused: the log expects seqno {expected} next")]
    NotContiguous {
        /// The seqno the log expected.
        expected: Seqno,
        /// The seqno it was given.
        got: Seqno,
    },
    /// Seqno 0 means "nothing" and cannot be appended.
    #[error("append of seqno 0 refused: the first seqno is 1")]
    SeqnoZero,
    /// A record's payload is over the limit.
    #[error(
        "record {seqno} refused: its payload is {len} bytes, over the {max}-byte limit \
         (RECORD_PAYLOAD_MAX and the segment size)"
    )]
    RecordTooLarge {
        /// The refused record's seqno.
        seqno: Seqno,
        /// Its payload length.
        len: usize,
        /// The largest payload this log accepts.
        max: usize,
    },
    /// The configured segment size is not allowed.
    #[error(
        "log segment size {size} refused: it must be a multiple of {SEGMENT_SIZE_ALIGN} between \
         {SEGMENT_SIZE_MIN} and {SEGMENT_SIZE_MAX} bytes"
    )]
    SegmentSize {
        /// The refused size.
        size: u64,
    },
}

/// What recovery found and did when the log was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files in the log after recovery.
    pub segments: usize,
    /// The first record's seqno, if there is one.
    pub first_seqno: Option<Seqno>,
    /// The last record's seqno ([`Seqno::ZERO`] for an empty log).
    pub last_seqno: Seqno,
    /// The torn tail that was removed, if there was one.
    pub torn_tail: Option<TornTail>,
}

/// A torn tail recovery removed: the bytes a crash left half-written after the last record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment where the torn bytes start.
    pub segment: PathBuf,
    /// Their offset in that segment.
    pub offset: u64,
    /// Why they are not a valid record.
    pub reason: &'static str,
    /// Bytes zeroed, from `offset` to the last non-zero byte of the segment.
    pub bytes_dropped: u64,
    /// Records the torn bytes looked like (headers with the record magic in a row; at
    /// least 1 when bytes were dropped).
    pub records_dropped: u64,
    /// Later segment files deleted because they held no valid record.
    pub segments_removed: Vec<PathBuf>,
}

/// One record, borrowed from the log's map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record's position in the order.
    pub seqno: Seqno,
    /// The view it was written in.
    pub view: ViewNumber,
    /// The bytes appended.
    pub payload: &'a [u8],
}

/// The log of one member: its segment files, the directory lock and the sync state.
pub struct Log {
    /// The directory holding the segments, named in errors.
    dir: PathBuf,
    /// The open directory: fsynced after segment files come and go, and flock'ed so no
    /// second log maps the same files.
    dir_file: File,
    /// Options the log was opened with.
    options: LogOptions,
    /// Segments in seqno order; the last one receives appends. Only the last may be empty.
    segments: Vec<Segment>,
    /// Highest seqno known to be on disk.
    durable_through: Seqno,
    /// When the last sync finished, for [`SyncPolicy::Interval`].
    last_sync: Instant,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .field("first_seqno", &self.first_seqno())
            .field("last_seqno", &self.last_seqno())
            .field("durable_through", &self.durable_through)
            .finish_non_exhaustive()
    }
}

/// Maps an I/O error to [`LogError::Io`] naming what the log was doing and to which path.
pub(crate) fn io_error<'p>(
    action: &'static str,
    path: &'p Path,
) -> impl FnOnce(std::io::Error) -> LogError + 'p {
    move |source| LogError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn lock_dir(dir_file: &File, dir: &Path) -> Result<(), LogError> {
    // SAFETY: the descriptor belongs to `dir_file`, which outlives the call; flock reads no
    // memory of ours. The lock lives as long as the descriptor.
    let rc = unsafe { libc::flock(dir_file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(());
    }
    let source = std::io::Error::last_os_error();
    if source.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Err(LogError::Locked {
            path: dir.to_path_buf(),
        });
    }
    Err(LogError::Io {
        action: "locking",
        path: dir.to_path_buf(),
        source,
    })
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovers it and syncs what it kept.
    pub fn open(dir: &Path, options: LogOptions) -> Result<(Log, RecoveryReport), LogError> {
        let size = options.segment_size;
        if !(SEGMENT_SIZE_MIN..=SEGMENT_SIZE_MAX).contains(&size) || size % SEGMENT_SIZE_ALIGN != 0
        {
            return Err(LogError::SegmentSize { size });
        }
        let io = |action| {
            move |source| LogError::Io {
                action,
                path: dir.to_path_buf(),
                source,
            }
        };
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(io("creating"))?;
            // The new directory's own entry must be durable, or a crash could lose every
            // segment in it at once and the member would restart as if new.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                File::open(parent)
                    .and_then(|parent| parent.sync_all())
                    .map_err(io("syncing the parent of"))?;
            }
        }
        let dir_file = File::open(dir).map_err(io("opening"))?;
        lock_dir(&dir_file, dir)?;
        let (segments, report) = recovery::recover(dir, &dir_file, options.must_keep)?;
        let mut log = Log {
            dir: dir.to_path_buf(),
            dir_file,
            options,
            segments,
            durable_through: report.last_seqno,
            last_sync: Instant::now(),
        };
        assert_eq!(log.last_seqno(), report.last_seqno);
        if log.zero_filled() {
            if let Some(active) = log.segments.last_mut() {
                active.zero_fill_after_records();
            }
        }
        Ok((log, report))
    }

    /// The seqno of the first record, or `None` for an empty log.
    pub fn first_seqno(&self) -> Option<Seqno> {
        let first = self.segments.first()?;
        first.last_seqno().map(|_| first.first_seqno())
    }

    /// The seqno of the last record, or [`Seqno::ZERO`] for an empty log.
    pub fn last_seqno(&self) -> Seqno {
        self.segments
            .iter()
            .rev()
            .find_map(Segment::last_seqno)
            .unwrap_or(Seqno::ZERO)
    }

    /// The view of the last record, or `None` for an empty log.
    pub fn last_view(&self) -> Option<ViewNumber> {
        self.segments.iter().rev().find_map(Segment::last_view)
    }

    /// The highest seqno known to be on disk: every record up to it survives a crash.
    pub fn durable_through(&self) -> Seqno {
        self.durable_through
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The largest payload this log accepts, in bytes.
    pub fn payload_max(&self) -> usize {
        let room = self.options.segment_size as usize - SEGMENT_HEADER_SIZE - RECORD_HEADER_SIZE;
        RECORD_PAYLOAD_MAX.min(room)
    }

    /// Appends records, which must continue the log's seqnos without a gap (an empty log
    /// accepts any first seqno but 0), then syncs as the policy says. Returns the last
    /// seqno. If a record is refused, the records before it stay appended (and are synced
    /// as the policy says) and the error names the refused one.
    pub fn append_batch<'p, I>(&mut self, records: I) -> Result<Seqno, LogError>
    where
        I: IntoIterator<Item = (Seqno, ViewNumber, &'p [u8])>,
    {
        let mut appended = Ok(());
        for (seqno, view, payload) in records {
            appended = self.append_one(seqno, view, payload);
            if appended.is_err() {
                break;
            }
        }
        let synced = match self.options.sync {
            SyncPolicy::Batch => self.sync(),
            SyncPolicy::Interval(_) => self.sync_if_due().map(|_| ()),
            SyncPolicy::None => Ok(()),
        };
        appended?;
        synced?;
        Ok(self.last_seqno())
    }

    fn append_one(
        &mut self,
        seqno: Seqno,
        view: ViewNumber,
        payload: &[u8],
    ) -> Result<(), LogError> {
        if seqno == Seqno::ZERO {
            return Err(LogError::SeqnoZero);
        }
        let last = self.last_seqno();
        if last != Seqno::ZERO && seqno != last.next() {
            return Err(LogError::NotContiguous {
                expected: last.next(),
                got: seqno,
            });
        }
        let max = self.payload_max();
        if payload.len() > max {
            return Err(LogError::RecordTooLarge {
                seqno,
                len: payload.len(),
                max,
            });
        }
        let size = record_size(payload.len());
        if !self.segments.last().is_some_and(|active| active.fits(size)) {
            self.roll_over(seqno)?;
        }
        let active = self
            .segments
            .last_mut()
            .expect("roll_over leaves an active segment");
        active.append(seqno, view, payload)
    }

    /// Starts a new segment whose first record is `seqno`. Unless the policy is `none`, the
    /// old segment is synced first, so a crash never keeps the new segment's records while
    /// losing the end of the old one (which would read as corruption, not a torn tail).
    fn roll_over(&mut self, seqno: Seqno) -> Result<(), LogError> {
        let prev_checksum = match self.segments.last_mut() {
            Some(active) => {
                assert!(
                    active.last_seqno().is_some(),
                    "an empty segment fits any allowed record"
                );
                if self.options.sync != SyncPolicy::None {
                    active.sync()?;
                }
                active.last_checksum()
            }
            None => 0,
        };
        let header = SegmentHeader::new(seqno, self.options.segment_size, prev_checksum);
        let segment = Segment::create(&self.dir, &self.dir_file, header, self.zero_filled())?;
        self.segments.push(segment);
        Ok(())
    }

    /// Whether segments are zero-filled ahead of appends, not only preallocated: worth the
    /// extra writes whenever records are synced, since it keeps each sync from committing
    /// file-system metadata; useless when they never are.
    fn zero_filled(&self) -> bool {
        self.options.sync != SyncPolicy::None
    }

    /// Syncs every record appended so far and waits for the disk.
    pub fn sync(&mut self) -> Result<(), LogError> {
        for segment in self.segments.iter_mut().filter(|s| s.is_dirty()) {
            segment.sync()?;
        }
        self.durable_through = self.last_seqno();
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Syncs if the policy's interval has passed since the last sync (under `batch`, if
    /// anything is unsynced; under `none`, never). Returns whether it synced.
    pub fn sync_if_due(&mut self) -> Result<bool, LogError> {
        let due = match self.options.sync {
            SyncPolicy::Batch => self.durable_through < self.last_seqno(),
            SyncPolicy::Interval(interval) => {
                self.durable_through < self.last_seqno() && self.last_sync.elapsed() >= interval
            }
            SyncPolicy::None => false,
        };
        if due {
            self.sync()?;
        }
        Ok(due)
    }

    /// The record with `seqno`, or `None` if the log does not hold it. The record is
    /// verified against its checksum; bytes changed on disk are [`LogError::Corrupt`].
    pub fn read(&self, seqno: Seqno) -> Result<Option<Record<'_>>, LogError> {
        let index = self.segments.partition_point(|s| s.first_seqno() <= seqno);
        match index.checked_sub(1) {
            Some(index) => self.segments[index].record(seqno),
            None => Ok(None),
        }
    }

    /// The records with seqnos in `range` that the log holds, in order.
    pub fn iter(&self, range: impl RangeBounds<Seqno>) -> LogIter<'_> {
        let first = self.first_seqno().unwrap_or(Seqno(1));
        let start = match range.start_bound() {
            Bound::Included(&s) => s.max(first),
            Bound::Excluded(&s) => s.next().max(first),
            Bound::Unbounded => first,
        };
        let last = self.last_seqno();
        let end = match range.end_bound() {
            Bound::Included(&s) => s.min(last),
            Bound::Excluded(&s) => Seqno(s.0.saturating_sub(1)).min(last),
            Bound::Unbounded => last,
        };
        LogIter {
            log: self,
            next: start,
            end,
        }
    }

    /// Drops every record after `seqno`. Later segments are deleted highest first, each
    /// deletion durable before the next; the segment holding the cut is replaced by a
    /// copy of its kept records (see `Segment::truncate_after`). At every crash point the
    /// log on disk is a prefix of the old one at least as long as the cut, and once this
    /// returns nothing past the cut can reappear. A cut before the first record empties
    /// the log. After an error, drop the log and open it again: recovery finds which of
    /// the two prefixes the disk holds.
    pub fn truncate_after(&mut self, seqno: Seqno) -> Result<(), LogError> {
        if seqno >= self.last_seqno() {
            return Ok(());
        }
        while self
            .segments
            .last()
            .is_some_and(|s| s.first_seqno() > seqno)
        {
            let segment = self.segments.pop().expect("the last segment exists");
            segment.delete(&self.dir, &self.dir_file)?;
        }
        let zero_filled = self.zero_filled();
        if let Some(segment) = self.segments.last_mut() {
            if segment.last_seqno().is_some_and(|last| last > seqno) {
                segment.truncate_after(seqno, &self.dir, &self.dir_file, zero_filled)?;
            }
        }
        self.durable_through = self.durable_through.min(self.last_seqno());
        Ok(())
    }

    /// Deletes the oldest segments all of whose records are below `seqno`. The segment
    /// holding the last record is always kept, so the log's end and chain stay known.
    /// Returns how many segments were deleted.
    pub fn purge_before(&mut self, seqno: Seqno) -> Result<usize, LogError> {
        let mut purged = 0;
        while self.segments.len() > 1
            && self.segments[1].first_seqno() <= seqno
            && self.segments[1].last_seqno().is_some()
        {
            // Oldest first, each deletion durable before the next: a crash never leaves a
            // hole between the remaining segments.
            let segment = self.segments.remove(0);
            segment.delete(&self.dir, &self.dir_file)?;
            purged += 1;
        }
        Ok(purged)
    }

    /// The paths of the segment files, oldest first.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments
            .iter()
            .map(|s| s.path().to_path_buf())
            .collect()
    }
}

/// Iterator over a range of records, borrowed from the log's map.
#[derive(Debug)]
pub struct LogIter<'a> {
    log: &'a Log,
    next: Seqno,
    end: Seqno,
}

impl<'a> Iterator for LogIter<'a> {
    type Item = Result<Record<'a>, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next > self.end {
            return None;
        }
        let seqno = self.next;
        self.next = seqno.next();
        match self.log.read(seqno) {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => {
                self.next = Seqno(self.end.0.saturating_add(1));
                None
            }
            Err(error) => {
                self.next = Seqno(self.end.0.saturating_add(1));
                Some(Err(error))
            }
        }
    }
}
