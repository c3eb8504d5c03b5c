//! One segment file of the log: a preallocated file mapped into memory, its in-memory
//! index of record offsets, and the bookkeeping of what is written and what is synced.
//!
//! A segment only ever grows at its end, by copying records into the map, and shrinks
//! only by [`Segment::truncate_after`], which replaces the file atomically. It never
//! decides policy (when to sync, when to roll over): the [`Log`](super::Log) does.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use memmap2::{Advice, MmapMut, MmapOptions};

use super::format::{
    segment_file_name, RecordHeader, SegmentHeader, RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE,
    SEGMENT_SIZE_ALIGN,
};
use super::{io_error, LogError, Record};
use crate::{Seqno, ViewNumber};

/// Suffix of the file a truncation builds before renaming it over the segment.
pub(crate) const TRUNCATION_TMP_SUFFIX: &str = ".tmp";

/// Appends prefault the map this far ahead of the write position, a chunk at a time.
/// A store into a page not yet mapped writable costs a page fault (a trap, a page-cache
/// page zeroed, the file system told the page is dirty): about as much as copying a few
/// pages. Asking the kernel for a whole chunk at once (`MADV_POPULATE_WRITE`) does that work
/// in one call, without a trap per page, and spreads it over appends instead of stalling
/// one append at rollover for a whole segment.
const PREFAULT_CHUNK_BYTES: usize = 1024 * 1024;

const _: () = assert!(PREFAULT_CHUNK_BYTES % SEGMENT_SIZE_ALIGN as usize == 0);

/// Appends zero-fill the file this far ahead of the write position, a chunk at a time
/// (when the log syncs at all; see [`zero_fill`]). A chunk costs one write of zeros and one
/// sync, so the cost is spread over appends rather than stalling the rollover: filling a
/// whole 64 MiB segment at once stalled one append for 200 ms here.
const ZERO_FILL_CHUNK_BYTES: usize = 4 * 1024 * 1024;

const _: () = assert!(ZERO_FILL_CHUNK_BYTES % SEGMENT_SIZE_ALIGN as usize == 0);

/// The records of one segment file, as the log sees them after recovery or appends.
pub(crate) struct Segment {
    /// The file's path, named in every error about it.
    path: PathBuf,
    /// Kept open for fdatasync and so the mapping's file stays the one we checked.
    file: File,
    /// The whole file, mapped shared and writable: appends are copies into it.
    map: MmapMut,
    /// The segment's header, as written at creation.
    header: SegmentHeader,
    /// Offset of each record in the file, indexed by `seqno - first_seqno`: reads are O(1).
    offsets: Vec<u32>,
    /// End of the last record; every byte from here to the end of the file is zero.
    write_pos: usize,
    /// Bytes below this offset are known to be on disk.
    synced_pos: usize,
    /// Bytes below this offset were prefaulted writable (or were written before).
    prefaulted_pos: usize,
    /// Bytes below this offset are written blocks (records, or zeros written and synced),
    /// so syncing records there changes no file-system metadata. The file's size when
    /// the log does not zero-fill.
    zero_filled_pos: usize,
    /// Checksum of the last record, or the header's `prev_checksum` while there is none:
    /// the next record's chain link.
    last_checksum: u64,
    /// View of the last record.
    last_view: Option<ViewNumber>,
}

/// What recovery learned about a segment's records, to build a [`Segment`] from.
pub(crate) struct ScannedRecords {
    /// Offset of each valid record, in seqno order.
    pub(crate) offsets: Vec<u32>,
    /// End of the last valid record.
    pub(crate) write_pos: usize,
    /// Checksum of the last valid record, or the header's `prev_checksum`.
    pub(crate) last_checksum: u64,
    /// View of the last valid record.
    pub(crate) last_view: Option<ViewNumber>,
}

/// Makes `file` exactly `size` bytes of allocated blocks, so stores into the map never
/// need the filesystem to find space (which would raise SIGBUS on a full disk).
fn preallocate(file: &File, path: &Path, size: u64) -> Result<(), LogError> {
    let len = libc::off_t::try_from(size).map_err(|_| LogError::SegmentSize { size })?;
    // SAFETY: the descriptor belongs to `file`, which outlives the call; posix_fallocate
    // reads no memory of ours.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    match rc {
        0 => Ok(()),
        libc::ENOSPC => Err(LogError::DiskFull {
            path: path.to_path_buf(),
            bytes: size,
        }),
        errno => Err(LogError::Io {
            action: "preallocating",
            path: path.to_path_buf(),
            source: std::io::Error::from_raw_os_error(errno),
        }),
    }
}

/// Writes zeros over `from..to` of `file`. `posix_fallocate` leaves *unwritten* extents:
/// the first write to each block then changes file-system metadata, so every fdatasync
/// covering new records also commits the journal (measured here: 1.5 ms instead of 0.2 ms
/// per 4 KiB synced write). Writing the zeros once, and syncing them, makes later syncs of
/// records there pure data writes.
fn zero_fill(file: &File, path: &Path, from: usize, to: usize) -> Result<(), LogError> {
    let zeros = vec![0u8; to - from];
    file.write_all_at(&zeros, from as u64)
        .map_err(io_error("zero-filling", path))
}

/// Maps all of `file` shared and writable.
pub(crate) fn map_file(file: &File, path: &Path, len: usize) -> Result<MmapMut, LogError> {
    // SAFETY: the map stays valid only while no one shrinks the file. The log directory is
    // locked (flock) by the one Log that owns it, and the log itself only replaces files
    // by rename, never shrinks a mapped one.
    unsafe { MmapOptions::new().len(len).map_mut(file) }.map_err(io_error("mapping", path))
}

/// fsyncs a directory, so file creations, renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &File, path: &Path) -> Result<(), LogError> {
    dir.sync_all().map_err(io_error("syncing directory", path))
}

impl Segment {
    /// Creates, preallocates and maps a new segment in `dir`, durable (file, header and
    /// directory entry) before it returns. With `zero_filled`, appends zero-fill it ahead.
    pub(crate) fn create(
        dir: &Path,
        dir_file: &File,
        header: SegmentHeader,
        zero_filled: bool,
    ) -> Result<Segment, LogError> {
        assert!(
            header.invalid().is_none(),
            "a new segment header must be valid"
        );
        let path = dir.join(segment_file_name(header.first_seqno));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_error("creating segment", &path))?;
        let written = Self::initialize(&file, &path, header);
        if let Err(error) = written {
            // The half-made file holds no record; leaving it would only confuse recovery.
            drop(fs::remove_file(&path));
            return Err(error);
        }
        sync_dir(dir_file, dir)?;
        let map = map_file(&file, &path, header.segment_size as usize)?;
        Ok(Segment {
            path,
            file,
            map,
            header,
            offsets: Vec::new(),
            write_pos: SEGMENT_HEADER_SIZE,
            synced_pos: SEGMENT_HEADER_SIZE,
            prefaulted_pos: 0,
            zero_filled_pos: if zero_filled {
                SEGMENT_HEADER_SIZE
            } else {
                header.segment_size as usize
            },
            last_checksum: header.prev_checksum,
            last_view: None,
        })
    }

    fn initialize(file: &File, path: &Path, header: SegmentHeader) -> Result<(), LogError> {
        preallocate(file, path, header.segment_size)?;
        file.write_all_at(&header.encode(), 0)
            .map_err(io_error("writing segment header", path))?;
        // fsync, not fdatasync: the new size and allocation are metadata.
        file.sync_all()
            .map_err(io_error("syncing new segment", path))
    }

    /// A segment recovery has verified. Everything in it is taken as synced: recovery
    /// syncs each file before the log is used. It is not zero-filled ahead unless
    /// [`Self::zero_fill_after_records`] says so.
    pub(crate) fn from_recovery(
        path: PathBuf,
        file: File,
        map: MmapMut,
        header: SegmentHeader,
        scanned: ScannedRecords,
    ) -> Segment {
        assert!(scanned.write_pos <= map.len());
        Segment {
            path,
            file,
            map,
            header,
            offsets: scanned.offsets,
            write_pos: scanned.write_pos,
            synced_pos: scanned.write_pos,
            prefaulted_pos: 0,
            zero_filled_pos: header.segment_size as usize,
            last_checksum: scanned.last_checksum,
            last_view: scanned.last_view,
        }
    }

    /// Makes appends zero-fill ahead from the end of the last record: how far an earlier
    /// process got is unknown, and the bytes there are zero already, so filling them again
    /// costs writes, never data.
    pub(crate) fn zero_fill_after_records(&mut self) {
        self.zero_filled_pos = self.write_pos;
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn first_seqno(&self) -> Seqno {
        self.header.first_seqno
    }

    /// The seqno the next record appended here must carry.
    pub(crate) fn next_seqno(&self) -> Seqno {
        Seqno(self.header.first_seqno.0 + self.offsets.len() as u64)
    }

    pub(crate) fn last_seqno(&self) -> Option<Seqno> {
        (!self.offsets.is_empty()).then(|| Seqno(self.next_seqno().0 - 1))
    }

    pub(crate) fn last_checksum(&self) -> u64 {
        self.last_checksum
    }

    pub(crate) fn last_view(&self) -> Option<ViewNumber> {
        self.last_view
    }

    /// Whether a record of `size` bytes (padding included) fits after the last record.
    pub(crate) fn fits(&self, size: usize) -> bool {
        self.write_pos + size <= self.map.len()
    }

    /// Copies one record into the map. The caller has checked contiguity and room; the only
    /// error is from zero-filling ahead, before anything is copied.
    pub(crate) fn append(
        &mut self,
        seqno: Seqno,
        view: ViewNumber,
        payload: &[u8],
    ) -> Result<(), LogError> {
        assert_eq!(seqno, self.next_seqno(), "appends are contiguous");
        let header = RecordHeader::new(seqno, view, self.last_checksum, payload);
        assert!(
            header.invalid().is_none(),
            "a record must be valid before it is written"
        );
        let size = header.record_size();
        assert!(self.fits(size), "room is checked before appending");
        let start = self.write_pos;
        if start + size > self.zero_filled_pos {
            self.zero_fill_ahead(start + size)?;
        }
        if start + size > self.prefaulted_pos {
            self.prefault(start, start + size);
        }
        let payload_start = start + RECORD_HEADER_SIZE;
        self.map[start..payload_start].copy_from_slice(&header.encode());
        self.map[payload_start..payload_start + payload.len()].copy_from_slice(payload);
        // Padding bytes are already zero: everything past write_pos is.
        let read_back = RecordHeader::decode(&self.map[start..payload_start]);
        assert_eq!(
            read_back,
            Some(header),
            "the record header must read back as written"
        );
        self.offsets.push(start as u32);
        self.write_pos = start + size;
        self.last_checksum = header.checksum;
        self.last_view = Some(view);
        Ok(())
    }

    /// Zero-fills from where the last fill ended to a chunk past `end`, and syncs it.
    fn zero_fill_ahead(&mut self, end: usize) -> Result<(), LogError> {
        let from = self.zero_filled_pos;
        assert!(
            from >= self.write_pos,
            "zero-filling never overwrites records"
        );
        let to = (end + ZERO_FILL_CHUNK_BYTES)
            .next_multiple_of(SEGMENT_SIZE_ALIGN as usize)
            .min(self.map.len());
        zero_fill(&self.file, &self.path, from, to)?;
        self.map
            .flush_range(from, to - from)
            .map_err(io_error("syncing zero-filled range of", &self.path))?;
        self.zero_filled_pos = to;
        Ok(())
    }

    /// Prefaults the map from the page holding `start` to a chunk past `end`. Failure is
    /// harmless (an older kernel without `MADV_POPULATE_WRITE`): the stores then fault
    /// page by page, which is slower, not wrong.
    fn prefault(&mut self, start: usize, end: usize) {
        let page = SEGMENT_SIZE_ALIGN as usize;
        let from = self.prefaulted_pos.max(start / page * page);
        let to = (end + PREFAULT_CHUNK_BYTES)
            .next_multiple_of(page)
            .min(self.map.len());
        if from < to {
            drop(
                self.map
                    .advise_range(Advice::PopulateWrite, from, to - from),
            );
        }
        self.prefaulted_pos = to;
    }

    /// The record with `seqno`, verified, or `None` if this segment does not hold it.
    pub(crate) fn record(&self, seqno: Seqno) -> Result<Option<Record<'_>>, LogError> {
        let Some(index) = seqno.0.checked_sub(self.header.first_seqno.0) else {
            return Ok(None);
        };
        let Some(&offset) = usize::try_from(index)
            .ok()
            .and_then(|i| self.offsets.get(i))
        else {
            return Ok(None);
        };
        let start = offset as usize;
        let corrupt = |reason| LogError::Corrupt {
            segment: self.path.clone(),
            offset: start as u64,
            reason,
        };
        // The map is shared with the file: re-verify, as the bytes may have changed on disk.
        let header = RecordHeader::decode(&self.map[start..]).ok_or(corrupt("record cut short"))?;
        if let Some(reason) = header.invalid() {
            return Err(corrupt(reason));
        }
        if header.seqno != seqno {
            return Err(corrupt("record seqno differs from the index"));
        }
        let payload_start = start + RECORD_HEADER_SIZE;
        let payload = self
            .map
            .get(payload_start..payload_start + header.payload_len as usize)
            .ok_or(corrupt("record runs past the end of the segment"))?;
        if !header.verifies(payload) {
            return Err(corrupt("record checksum mismatch"));
        }
        Ok(Some(Record {
            seqno,
            view: header.view,
            payload,
        }))
    }

    /// Whether some written bytes are not yet known to be on disk.
    pub(crate) fn is_dirty(&self) -> bool {
        self.synced_pos < self.write_pos
    }

    /// Writes the unsynced records to disk (one msync of their range) and waits for it.
    pub(crate) fn sync(&mut self) -> Result<(), LogError> {
        if !self.is_dirty() {
            return Ok(());
        }
        let start = self.synced_pos;
        self.map
            .flush_range(start, self.write_pos - start)
            .map_err(io_error("syncing segment", &self.path))?;
        self.synced_pos = self.write_pos;
        Ok(())
    }

    /// Syncs the whole file, whoever dirtied it (recovery's zeroing, an earlier process).
    pub(crate) fn sync_file(&mut self) -> Result<(), LogError> {
        self.map
            .flush()
            .map_err(io_error("syncing segment", &self.path))?;
        self.synced_pos = self.write_pos;
        Ok(())
    }

    /// Zeroes `start..end` in the map (recovery's torn tail) and syncs that range.
    pub(crate) fn zero_and_sync(&mut self, start: usize, end: usize) -> Result<(), LogError> {
        assert!(self.write_pos <= start && start <= end && end <= self.map.len());
        self.map[start..end].fill(0);
        self.map
            .flush_range(start, end - start)
            .map_err(io_error("syncing zeroed tail of", &self.path))
    }

    /// Drops every record after `seqno`, which this segment holds, by building a copy of the
    /// kept records and renaming it over the file. At every crash point the file on disk is
    /// either the old one or the new one, both a prefix at least as long as the cut:
    /// zeroing in place could not promise that, because the disk may persist the zeroed
    /// pages in any order and leave a hole followed by stale, valid records.
    pub(crate) fn truncate_after(
        &mut self,
        seqno: Seqno,
        dir: &Path,
        dir_file: &File,
        zero_filled: bool,
    ) -> Result<(), LogError> {
        let keep = (seqno.0 - self.header.first_seqno.0 + 1) as usize;
        assert!(
            keep >= 1 && keep < self.offsets.len(),
            "the cut falls inside this segment"
        );
        let end = self.offsets[keep] as usize;
        let mut tmp_name = self.path.clone().into_os_string();
        tmp_name.push(TRUNCATION_TMP_SUFFIX);
        let tmp_path = PathBuf::from(tmp_name);
        let file = match self.write_copy(&tmp_path, end) {
            Ok(file) => file,
            Err(error) => {
                // The copy is not the segment yet; leaving it would only use disk space.
                drop(fs::remove_file(&tmp_path));
                return Err(error);
            }
        };
        fs::rename(&tmp_path, &self.path).map_err(io_error("replacing segment", &self.path))?;
        sync_dir(dir_file, dir)?;
        self.map = map_file(&file, &self.path, self.header.segment_size as usize)?;
        self.file = file;
        self.offsets.truncate(keep);
        self.write_pos = end;
        self.synced_pos = end;
        self.prefaulted_pos = 0;
        self.zero_filled_pos = if zero_filled { end } else { self.map.len() };
        let kept_offset = self.offsets[keep - 1] as usize;
        match RecordHeader::decode(&self.map[kept_offset..]) {
            Some(last) if last.seqno == seqno && last.invalid().is_none() => {
                self.last_checksum = last.checksum;
                self.last_view = Some(last.view);
                Ok(())
            }
            _ => Err(LogError::Corrupt {
                segment: self.path.clone(),
                offset: kept_offset as u64,
                reason: "the record at the cut changed on disk during truncation",
            }),
        }
    }

    /// Writes the first `end` bytes of the segment to a new, preallocated, durable file.
    fn write_copy(&self, path: &Path, end: usize) -> Result<File, LogError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io_error("creating truncated copy", path))?;
        preallocate(&file, path, self.header.segment_size)?;
        file.write_all_at(&self.map[..end], 0)
            .map_err(io_error("writing truncated copy", path))?;
        file.sync_all()
            .map_err(io_error("syncing truncated copy", path))?;
        Ok(file)
    }

    /// Deletes the segment's file and makes the deletion durable.
    pub(crate) fn delete(self, dir: &Path, dir_file: &File) -> Result<(), LogError> {
        let Segment {
            path, map, file, ..
        } = self;
        drop(map);
        drop(file);
        fs::remove_file(&path).map_err(io_error("deleting segment", &path))?;
        sync_dir(dir_file, dir)
    }
}
