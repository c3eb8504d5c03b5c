//! Writing a snapshot file: entries are pushed one at a time in key order, packed into
//! blocks of about [`BLOCK_PAYLOAD_TARGET_BYTES`], and each block is written as soon as it
//! is full, so memory stays at one block whatever the size of the store.
//!
//! The file is written under a temporary name beside the final one, fsynced, renamed, and
//! the directory is fsynced: a crash leaves either the previous file or the complete new
//! one under the final name. A writer dropped before [`SnapshotWriter::finish`] removes
//! its temporary file. It must never rename a file whose trailer is not written and synced.

use super::format::{BlockHeader, Header, Trailer};
use super::{
    SnapshotError, BLOCK_PAYLOAD_TARGET_BYTES, ENTRY_HEADER_BYTES, KEY_BYTES_MAX, META_BYTES_MAX,
    TEMPORARY_SUFFIX, VALUE_BYTES_MAX,
};
use crate::Seqno;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3Default;

/// What a finished snapshot file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotSummary {
    /// The seqno whose visible state the file holds.
    pub seqno: Seqno,
    /// Entries written.
    pub entries: u64,
    /// Blocks written.
    pub blocks: u64,
    /// Size of the file.
    pub file_bytes: u64,
}

/// Writes one snapshot file. Push entries in strictly increasing key order, then call
/// [`SnapshotWriter::finish`].
pub struct SnapshotWriter {
    /// The name the file gets once complete.
    final_path: PathBuf,
    /// The name it is written under until then.
    temporary_path: PathBuf,
    /// The open temporary file.
    output: BufWriter<File>,
    /// Hash of every byte written so far, for the trailer's file hash.
    file_hash: Xxh3Default,
    /// Bytes written so far.
    file_bytes: u64,
    /// The seqno the file holds.
    seqno: Seqno,
    /// The payload of the block being filled.
    block: Vec<u8>,
    /// Entries in the block being filled.
    block_entries: u32,
    /// Entries pushed so far.
    entries: u64,
    /// Blocks written so far.
    blocks: u64,
    /// The last key pushed, to enforce strictly increasing keys.
    last_key: Option<Vec<u8>>,
    /// Set once the file is renamed into place, so drop leaves it alone.
    finished: bool,
    /// Set when a write failed: the file is damaged, and every later call fails.
    write_failed: bool,
}

impl SnapshotWriter {
    /// Starts the snapshot at `seqno` that will be named `path`, carrying `meta` (at most
    /// [`META_BYTES_MAX`] bytes). The file is written as `<path>.tmp` until
    /// [`SnapshotWriter::finish`]; a stale temporary file from a crashed writer is replaced.
    /// `seqno` is at least 1 (seqno 0 is before the first entry, and there is nothing to
    /// snapshot there); a snapshot at 0 is a programmer error and panics.
    pub fn create(path: &Path, seqno: Seqno, meta: &[u8]) -> Result<SnapshotWriter, SnapshotError> {
        if meta.len() > META_BYTES_MAX {
            return Err(SnapshotError::MetaTooLarge { bytes: meta.len() });
        }
        assert!(
            seqno > Seqno::ZERO,
            "a snapshot holds the state at a seqno >= 1"
        );
        let Some(file_name) = path.file_name() else {
            return Err(io_error(
                path,
                "name the file",
                io::ErrorKind::InvalidInput.into(),
            ));
        };
        let mut temporary_name = OsString::from(file_name);
        temporary_name.push(TEMPORARY_SUFFIX);
        let temporary_path = path.with_file_name(temporary_name);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary_path)
            .map_err(|source| io_error(&temporary_path, "create", source))?;
        let mut writer = SnapshotWriter {
            final_path: path.to_path_buf(),
            temporary_path,
            output: BufWriter::with_capacity(BLOCK_PAYLOAD_TARGET_BYTES, file),
            file_hash: Xxh3Default::new(),
            file_bytes: 0,
            seqno,
            block: Vec::with_capacity(BLOCK_PAYLOAD_TARGET_BYTES + ENTRY_HEADER_BYTES),
            block_entries: 0,
            entries: 0,
            blocks: 0,
            last_key: None,
            finished: false,
            write_failed: false,
        };
        writer.write_hashed(&Header::new(seqno, meta).encode())?;
        writer.write_hashed(meta)?;
        Ok(writer)
    }

    /// Adds one entry. Keys must strictly increase (the store's scan order); keys and values
    /// must be within [`KEY_BYTES_MAX`] and [`VALUE_BYTES_MAX`].
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> Result<(), SnapshotError> {
        if key.len() > KEY_BYTES_MAX || value.len() > VALUE_BYTES_MAX {
            return Err(SnapshotError::EntryTooLarge {
                key_bytes: key.len(),
                value_bytes: value.len(),
            });
        }
        match &mut self.last_key {
            Some(last) if last.as_slice() >= key => {
                return Err(SnapshotError::KeyOrder {
                    path: self.final_path.clone(),
                    key: key.to_vec(),
                });
            }
            Some(last) => {
                last.clear();
                last.extend_from_slice(key);
            }
            None => self.last_key = Some(key.to_vec()),
        }
        let entry_bytes = ENTRY_HEADER_BYTES + key.len() + value.len();
        if self.block_entries > 0 && self.block.len() + entry_bytes > BLOCK_PAYLOAD_TARGET_BYTES {
            self.write_block()?;
        }
        self.block
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.block
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.block.extend_from_slice(key);
        self.block.extend_from_slice(value);
        self.block_entries += 1;
        self.entries += 1;
        Ok(())
    }

    /// Writes the last block and the trailer, syncs the file, renames it to its final name
    /// and syncs the directory. Only after this returns is the snapshot durable.
    pub fn finish(mut self) -> Result<SnapshotSummary, SnapshotError> {
        if self.block_entries > 0 {
            self.write_block()?;
        }
        let trailer = Trailer::new(self.entries, self.blocks, self.file_hash.digest());
        self.write_hashed(&trailer.encode())?;
        self.output
            .flush()
            .map_err(|source| io_error(&self.temporary_path, "write", source))?;
        self.output
            .get_ref()
            .sync_all()
            .map_err(|source| io_error(&self.temporary_path, "fsync", source))?;
        fs::rename(&self.temporary_path, &self.final_path)
            .map_err(|source| io_error(&self.final_path, "rename into place", source))?;
        self.finished = true;
        sync_directory_of(&self.final_path)?;
        Ok(SnapshotSummary {
            seqno: self.seqno,
            entries: self.entries,
            blocks: self.blocks,
            file_bytes: self.file_bytes,
        })
    }

    /// Writes the block being filled, with its header, and starts an empty one.
    fn write_block(&mut self) -> Result<(), SnapshotError> {
        assert!(self.block_entries > 0, "an empty block is never written");
        let header = BlockHeader::new(&self.block, self.block_entries);
        // Check the record before it is written, as the reader will after reading it.
        assert_eq!(
            header.invalid(),
            None,
            "the writer built an invalid block header"
        );
        let block = std::mem::take(&mut self.block);
        let written = self
            .write_hashed(&header.encode())
            .and_then(|()| self.write_hashed(&block));
        self.block = block;
        written?;
        self.block.clear();
        self.block_entries = 0;
        self.blocks += 1;
        Ok(())
    }

    /// Writes `bytes` and adds them to the file hash.
    fn write_hashed(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        if self.write_failed {
            return Err(SnapshotError::Stopped {
                path: self.temporary_path.clone(),
            });
        }
        if let Err(source) = self.output.write_all(bytes) {
            // Part of `bytes` may be in the file: nothing written after it could be read.
            self.write_failed = true;
            return Err(io_error(&self.temporary_path, "write", source));
        }
        self.file_hash.update(bytes);
        self.file_bytes += bytes.len() as u64;
        Ok(())
    }
}

impl fmt::Debug for SnapshotWriter {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SnapshotWriter")
            .field("path", &self.final_path)
            .field("seqno", &self.seqno)
            .field("entries", &self.entries)
            .field("blocks", &self.blocks)
            .field("file_bytes", &self.file_bytes)
            .finish_non_exhaustive()
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if !self.finished {
            // Best effort: an abandoned temporary file is only wasted space, and the next
            // writer of the same name truncates it anyway.
            let _ = fs::remove_file(&self.temporary_path);
        }
    }
}

/// Syncs the directory holding `path`, so the rename that put the file there is durable.
fn sync_directory_of(path: &Path) -> Result<(), SnapshotError> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory)
        .and_then(|handle| handle.sync_all())
        .map_err(|source| io_error(directory, "fsync of the directory", source))
}

/// An I/O error on `path`.
pub(super) fn io_error(path: &Path, operation: &'static str, source: io::Error) -> SnapshotError {
    SnapshotError::Io {
        path: path.to_path_buf(),
        operation,
        source,
    }
}
