//! Reading a snapshot file back: the header and meta at open, then the entries one block
//! at a time, each block verified before any of its entries is handed out, and the end of
//! the file reported only once the trailer has matched everything read.
//!
//! It must never panic on file content, never allocate more than one block (bounded by
//! [`super::BLOCK_PAYLOAD_BYTES_MAX`], and never more than the file actually holds), and never
//! report the end of the entries before a valid trailer.

use super::format::{BlockHeader, Header, Trailer};
use super::writer::io_error;
use super::{
    SnapshotError, BLOCK_HEADER_BYTES, BLOCK_PAYLOAD_TARGET_BYTES, BLOCK_TAG, ENTRY_HEADER_BYTES,
    HEADER_BYTES, KEY_BYTES_MAX, TRAILER_BYTES, TRAILER_TAG, VALUE_BYTES_MAX,
};
use crate::Seqno;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::{xxh3_64, Xxh3Default};

/// One entry of a snapshot file, borrowed from the reader's current block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotEntry<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value at the file's seqno.
    pub value: &'a [u8],
}

/// Where one decoded entry lies in the current block.
struct EntrySpan {
    key: Range<usize>,
    value: Range<usize>,
}

/// Where a reader stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReaderState {
    /// More blocks or the trailer follow.
    Reading,
    /// The trailer matched: every entry was handed out.
    Finished,
    /// An error was returned; nothing more is read.
    Failed,
}

/// Reads one snapshot file. [`SnapshotReader::open`] checks the header and meta;
/// [`SnapshotReader::next_entry`] (or the iterator) yields the entries in key order.
pub struct SnapshotReader {
    /// The file, for error messages.
    path: PathBuf,
    /// The open file.
    input: BufReader<File>,
    /// Bytes read so far: the offset of the next byte.
    offset: u64,
    /// Hash of every byte read before the trailer.
    file_hash: Xxh3Default,
    /// The seqno the file holds.
    seqno: Seqno,
    /// The verified meta blob.
    meta: Vec<u8>,
    /// The payload of the current, verified block.
    block: Vec<u8>,
    /// File offset of the current block's payload, for error offsets.
    block_offset: u64,
    /// Position of the next entry in `block`.
    block_position: usize,
    /// Entries of the current block not yet handed out.
    block_entries_left: u32,
    /// Entries handed out so far.
    entries: u64,
    /// Blocks read so far.
    blocks: u64,
    /// The last key handed out, to check that keys strictly increase.
    last_key: Option<Vec<u8>>,
    /// Where the reader stands.
    state: ReaderState,
}

impl SnapshotReader {
    /// Opens the snapshot at `path` and verifies its header and meta.
    pub fn open(path: &Path) -> Result<SnapshotReader, SnapshotError> {
        let file = File::open(path).map_err(|source| io_error(path, "open", source))?;
        let mut reader = SnapshotReader {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(BLOCK_PAYLOAD_TARGET_BYTES, file),
            offset: 0,
            file_hash: Xxh3Default::new(),
            seqno: Seqno::ZERO,
            meta: Vec::new(),
            block: Vec::new(),
            block_offset: 0,
            block_position: 0,
            block_entries_left: 0,
            entries: 0,
            blocks: 0,
            last_key: None,
            state: ReaderState::Reading,
        };
        let mut bytes = [0_u8; HEADER_BYTES];
        reader.read_exact_hashed(&mut bytes, "the file header")?;
        let header = Header::decode(&bytes);
        if let Some(reason) = header.invalid() {
            return Err(reader.corrupt(0, reason));
        }
        let meta_offset = reader.offset;
        let mut meta = Vec::new();
        reader.read_hashed_into(&mut meta, header.meta_length as usize, "the meta blob")?;
        if xxh3_64(&meta) != header.meta_hash {
            return Err(reader.corrupt(meta_offset, "meta checksum mismatch"));
        }
        reader.seqno = header.seqno;
        reader.meta = meta;
        Ok(reader)
    }

    /// The seqno whose visible state the file holds.
    pub fn seqno(&self) -> Seqno {
        self.seqno
    }

    /// The verified meta blob.
    pub fn meta(&self) -> &[u8] {
        &self.meta
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entries handed out so far.
    pub fn entries_read(&self) -> u64 {
        self.entries
    }

    /// The next entry as (key, value), or `None` once the trailer has verified that every
    /// entry was read. After an error every call returns [`SnapshotError::Stopped`].
    pub fn next_entry(&mut self) -> Result<Option<SnapshotEntry<'_>>, SnapshotError> {
        match self.state {
            ReaderState::Finished => return Ok(None),
            ReaderState::Failed => {
                return Err(SnapshotError::Stopped {
                    path: self.path.clone(),
                })
            }
            ReaderState::Reading => {}
        }
        let span = match self.advance() {
            Ok(Some(span)) => span,
            Ok(None) => {
                self.state = ReaderState::Finished;
                return Ok(None);
            }
            Err(error) => {
                self.state = ReaderState::Failed;
                return Err(error);
            }
        };
        Ok(Some(SnapshotEntry {
            key: &self.block[span.key],
            value: &self.block[span.value],
        }))
    }

    /// Loads blocks until one has an entry left and decodes it, or reads the trailer.
    fn advance(&mut self) -> Result<Option<EntrySpan>, SnapshotError> {
        while self.block_entries_left == 0 {
            if self.block_position != self.block.len() {
                let offset = self.block_offset + self.block_position as u64;
                return Err(self.corrupt(offset, "block has bytes after its last entry"));
            }
            let record_offset = self.offset;
            // The tag is hashed only once it is known to start a block: the trailer's file
            // hash covers every byte before the trailer, its own tag excluded.
            let mut tag = [0_u8; 4];
            self.read_exact_unhashed(&mut tag, "a block or the trailer")?;
            match tag {
                BLOCK_TAG => {
                    self.file_hash.update(&tag);
                    self.read_block(tag, record_offset)?;
                }
                TRAILER_TAG => {
                    self.read_trailer(tag, record_offset)?;
                    return Ok(None);
                }
                _ => {
                    return Err(self.corrupt(
                        record_offset,
                        "unknown record tag (neither block nor trailer)",
                    ))
                }
            }
        }
        self.decode_entry().map(Some)
    }

    /// Reads and verifies the block whose `tag` was just read at `record_offset`.
    fn read_block(&mut self, tag: [u8; 4], record_offset: u64) -> Result<(), SnapshotError> {
        let mut bytes = [0_u8; BLOCK_HEADER_BYTES];
        bytes[..4].copy_from_slice(&tag);
        self.read_exact_hashed(&mut bytes[4..], "the rest of a block header")?;
        let header = BlockHeader::decode(&bytes);
        if let Some(reason) = header.invalid() {
            return Err(self.corrupt(record_offset, reason));
        }
        self.block_offset = self.offset;
        let mut block = std::mem::take(&mut self.block);
        let read = self.read_hashed_into(
            &mut block,
            header.payload_length as usize,
            "a block payload",
        );
        self.block = block;
        read?;
        if xxh3_64(&self.block) != header.payload_hash {
            return Err(self.corrupt(record_offset, "block payload checksum mismatch"));
        }
        self.block_position = 0;
        self.block_entries_left = header.entry_count;
        self.blocks += 1;
        Ok(())
    }

    /// Decodes the entry at the current position of a verified block.
    fn decode_entry(&mut self) -> Result<EntrySpan, SnapshotError> {
        let start = self.block_position;
        let offset = self.block_offset + start as u64;
        let rest = &self.block[start..];
        if rest.len() < ENTRY_HEADER_BYTES {
            return Err(self.corrupt(offset, "entry header runs past the end of its block"));
        }
        let key_length = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let value_length = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        if key_length > KEY_BYTES_MAX || value_length > VALUE_BYTES_MAX {
            return Err(self.corrupt(offset, "entry key or value length over its limit"));
        }
        if rest.len() - ENTRY_HEADER_BYTES < key_length + value_length {
            return Err(self.corrupt(offset, "entry runs past the end of its block"));
        }
        let key = start + ENTRY_HEADER_BYTES..start + ENTRY_HEADER_BYTES + key_length;
        let value = key.end..key.end + value_length;
        let key_bytes = &self.block[key.clone()];
        match &mut self.last_key {
            Some(last) if last.as_slice() >= key_bytes => {
                return Err(self.corrupt(offset, "keys do not strictly increase"));
            }
            Some(last) => {
                last.clear();
                last.extend_from_slice(key_bytes);
            }
            None => self.last_key = Some(key_bytes.to_vec()),
        }
        self.block_position = value.end;
        self.block_entries_left -= 1;
        self.entries += 1;
        Ok(EntrySpan { key, value })
    }

    /// Reads and checks the trailer whose `tag` was just read at `record_offset`, then
    /// checks that nothing follows it.
    fn read_trailer(&mut self, tag: [u8; 4], record_offset: u64) -> Result<(), SnapshotError> {
        let file_hash = self.file_hash.digest();
        let mut bytes = [0_u8; TRAILER_BYTES];
        bytes[..4].copy_from_slice(&tag);
        self.read_exact_hashed(&mut bytes[4..], "the rest of the trailer")?;
        let trailer = Trailer::decode(&bytes);
        if let Some(reason) = trailer.invalid() {
            return Err(self.corrupt(record_offset, reason));
        }
        if trailer.entry_count != self.entries || trailer.block_count != self.blocks {
            return Err(self.corrupt(record_offset, "trailer counts differ from the blocks read"));
        }
        if trailer.file_hash != file_hash {
            return Err(self.corrupt(record_offset, "whole-file checksum mismatch"));
        }
        let mut extra = [0_u8; 1];
        match read_full(&mut self.input, &mut extra) {
            Ok(0) => Ok(()),
            Ok(_) => Err(self.corrupt(self.offset, "bytes follow the trailer")),
            Err(source) => Err(io_error(&self.path, "read", source)),
        }
    }

    /// Reads exactly `bytes.len()` bytes into `bytes` and hashes them.
    fn read_exact_hashed(
        &mut self,
        bytes: &mut [u8],
        expected: &'static str,
    ) -> Result<(), SnapshotError> {
        self.read_exact_unhashed(bytes, expected)?;
        self.file_hash.update(bytes);
        Ok(())
    }

    /// Reads exactly `bytes.len()` bytes into `bytes`; a short read is a truncation.
    fn read_exact_unhashed(
        &mut self,
        bytes: &mut [u8],
        expected: &'static str,
    ) -> Result<(), SnapshotError> {
        let read = read_full(&mut self.input, bytes)
            .map_err(|source| io_error(&self.path, "read", source))?;
        self.offset += read as u64;
        if read < bytes.len() {
            return Err(SnapshotError::Truncated {
                path: self.path.clone(),
                offset: self.offset,
                expected,
            });
        }
        Ok(())
    }

    /// Replaces `buffer` with the next `length` bytes and hashes them. The buffer grows as
    /// bytes arrive, so a damaged length never allocates more than the file holds.
    fn read_hashed_into(
        &mut self,
        buffer: &mut Vec<u8>,
        length: usize,
        expected: &'static str,
    ) -> Result<(), SnapshotError> {
        buffer.clear();
        let read = (&mut self.input)
            .take(length as u64)
            .read_to_end(buffer)
            .map_err(|source| io_error(&self.path, "read", source))?;
        self.offset += read as u64;
        if read < length {
            return Err(SnapshotError::Truncated {
                path: self.path.clone(),
                offset: self.offset,
                expected,
            });
        }
        self.file_hash.update(buffer);
        Ok(())
    }

    /// A corruption error at `offset`.
    fn corrupt(&self, offset: u64, reason: &'static str) -> SnapshotError {
        SnapshotError::Corrupt {
            path: self.path.clone(),
            offset,
            reason,
        }
    }
}

impl fmt::Debug for SnapshotReader {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SnapshotReader")
            .field("path", &self.path)
            .field("seqno", &self.seqno)
            .field("meta_bytes", &self.meta.len())
            .field("offset", &self.offset)
            .field("entries", &self.entries)
            .field("blocks", &self.blocks)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Iterator for SnapshotReader {
    type Item = Result<(Vec<u8>, Vec<u8>), SnapshotError>;

    /// Owned entries; stops after the first error (which it yields).
    fn next(&mut self) -> Option<Self::Item> {
        if self.state == ReaderState::Failed {
            return None;
        }
        match self.next_entry() {
            Ok(Some(entry)) => Some(Ok((entry.key.to_vec(), entry.value.to_vec()))),
            Ok(None) => None,
            Err(error) => Some(Err(error)),
        }
    }
}

/// Reads until `bytes` is full or the file ends; returns how many bytes were read.
fn read_full(input: &mut impl Read, bytes: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < bytes.len() {
        match input.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}
