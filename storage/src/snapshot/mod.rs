//! Snapshot files: the state of the store visible at one seqno S, streamed to disk in
//! checksummed blocks and streamed back (DESIGN.md sections 10 and 11). A member restarts
//! from its latest snapshot, and a donor sends one to a joiner whose missing entries the
//! donor's log no longer holds.
//!
//! It owns the file format, the crash-safe creation of a file (temporary name, fsync,
//! rename, fsync of the directory: a crash never leaves half a snapshot under the final
//! name) and the verification of every byte read back. It must never hold a whole store
//! in memory (the writer takes entries one at a time from the store's ordered scan, the
//! reader hands them out one block at a time), and it must never panic on, or silently
//! shorten, a damaged file: every check that fails is a [`SnapshotError`] naming the file
//! and the byte offset.
//!
//! # Format
//!
//! All integers are little-endian. Every hash is xxh3-64 (default secret, no seed).
//!
//! ```text
//! file    = header (40 bytes) | meta (meta_length bytes) | block* | trailer (40 bytes) | EOF
//!
//! header, at offset 0:
//!   0   8  magic            b"TUTTISNP" (MAGIC)
//!   8   4  format_version   FORMAT_VERSION (1); anything else is refused
//!  12   4  meta_length      bytes of meta that follow the header, <= META_BYTES_MAX
//!  16   8  seqno            S: the file holds the store as a read at S sees it; never 0
//!  24   8  meta_hash        hash of the meta bytes
//!  32   8  header_hash      hash of header bytes 0..32
//!
//! meta, at offset 40: an opaque blob for the engine (certifier state at S), possibly empty.
//!
//! block, repeated, each at the offset where the previous record ended:
//!   0   4  tag              b"SBLK" (BLOCK_TAG)
//!   4   4  payload_length   bytes of payload after this 32-byte header,
//!                           1..=BLOCK_PAYLOAD_BYTES_MAX
//!   8   4  entry_count      entries in the payload, >= 1
//!  12   4  reserved         zero
//!  16   8  payload_hash     hash of the payload
//!  24   8  header_hash      hash of block header bytes 0..24
//!  32   .  payload          entry_count entries, back to back, filling it exactly:
//!                             0  4  key_length    <= KEY_BYTES_MAX
//!                             4  4  value_length  <= VALUE_BYTES_MAX
//!                             8  .  key bytes, then value bytes
//!                           keys strictly increase over the whole file (byte order)
//!
//! trailer, once, right after the last block:
//!   0   4  tag              b"STRL" (TRAILER_TAG)
//!   4   4  reserved         zero
//!   8   8  entry_count      entries in all blocks
//!  16   8  block_count      blocks in the file
//!  24   8  file_hash        hash of every byte before the trailer (header, meta, blocks)
//!  32   8  trailer_hash     hash of trailer bytes 0..32
//! ```
//!
//! A writer closes a block once its payload reaches [`BLOCK_PAYLOAD_TARGET_BYTES`]; a single
//! entry larger than that gets a block of its own. The reader verifies a block's header,
//! then its payload hash, before it hands out any of its entries, and only reports the end
//! of the file after the trailer's counts and whole-file hash match and nothing follows
//! it, so a file cut at a block boundary is an error, not a smaller snapshot.

mod format;
mod reader;
mod store_io;
mod writer;

pub use format::{BlockHeader, Header, Trailer};
pub use reader::{SnapshotEntry, SnapshotReader};
pub use writer::{SnapshotSummary, SnapshotWriter};

use std::io;
use std::path::PathBuf;
use thiserror::Error;

/// The suffix of the name a snapshot file is written under until it is complete.
pub const TEMPORARY_SUFFIX: &str = ".tmp";
/// The first bytes of every snapshot file.
pub const MAGIC: [u8; 8] = *b"TUTTISNP";
/// The format this module writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the file header.
pub const HEADER_BYTES: usize = 40;
/// The largest meta blob a snapshot carries. The engine keeps the certifier state at S
/// there (index, gc seqno, low watermarks, per-origin counters, roles); 64 MiB holds an
/// index of millions of entries while keeping a reader's memory bounded.
pub const META_BYTES_MAX: usize = 64 << 20;
/// The tag that starts a block.
pub const BLOCK_TAG: [u8; 4] = *b"SBLK";
/// The tag that starts the trailer.
pub const TRAILER_TAG: [u8; 4] = *b"STRL";
/// Size of a block header.
pub const BLOCK_HEADER_BYTES: usize = 32;
/// Size of the trailer.
pub const TRAILER_BYTES: usize = 40;
/// A writer closes a block once its payload reaches this size: small enough that a
/// reader holds little, large enough that the per-block header and hash are negligible.
pub const BLOCK_PAYLOAD_TARGET_BYTES: usize = 64 << 10;
/// Size of the length prefix of one entry in a block payload.
pub const ENTRY_HEADER_BYTES: usize = 8;
/// The longest key a snapshot holds.
pub const KEY_BYTES_MAX: usize = 64 << 10;
/// The longest value a snapshot holds.
pub const VALUE_BYTES_MAX: usize = 64 << 20;
/// The longest block payload: a full block, or one entry of the largest size alone.
pub const BLOCK_PAYLOAD_BYTES_MAX: usize =
    BLOCK_PAYLOAD_TARGET_BYTES + ENTRY_HEADER_BYTES + KEY_BYTES_MAX + VALUE_BYTES_MAX;

// Lengths are stored as u32.
const _: () = assert!(BLOCK_PAYLOAD_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(META_BYTES_MAX <= u32::MAX as usize);
// A full block always has room for at least one entry of the common small size.
const _: () = assert!(BLOCK_PAYLOAD_TARGET_BYTES > ENTRY_HEADER_BYTES);

/// Why writing or reading a snapshot file failed.
#[derive(Debug, Error)]
pub enum SnapshotError {
    /// The operating system refused an operation on the file or its directory (missing
    /// file, permissions, full disk).
    #[error("snapshot {}: {operation} failed: {source}", .path.display())]
    Io {
        /// The file or directory operated on.
        path: PathBuf,
        /// What was being done, e.g. "fsync".
        operation: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file ends before its trailer: it was cut short (an interrupted copy, a full
    /// disk). Take or fetch a new snapshot; this one cannot be used.
    #[error("snapshot {} is truncated: it ends at byte {offset} where {expected} should be", .path.display())]
    Truncated {
        /// The damaged file.
        path: PathBuf,
        /// Where the file ends.
        offset: u64,
        /// What was expected there.
        expected: &'static str,
    },
    /// A magic, version, length, checksum, count or key-order check failed: the file is
    /// damaged or not a snapshot. Take or fetch a new snapshot; this one cannot be used.
    #[error("snapshot {} is corrupt at byte {offset}: {reason}", .path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// The start of the record (header, meta, block, entry, trailer) that failed.
        offset: u64,
        /// The check that failed.
        reason: &'static str,
    },
    /// The reader or writer already returned an I/O or format error: a damaged file yields
    /// nothing after it, and a file whose write failed is never finished.
    #[error("snapshot {}: stopped at an earlier error; see that error", .path.display())]
    Stopped {
        /// The file.
        path: PathBuf,
    },
    /// The meta blob given to the writer is over the limit.
    #[error("snapshot meta of {bytes} bytes is over the limit of {max} bytes (META_BYTES_MAX)", max = META_BYTES_MAX)]
    MetaTooLarge {
        /// Size of the refused blob.
        bytes: usize,
    },
    /// An entry given to the writer is over the key or value limit.
    #[error("snapshot entry with a {key_bytes}-byte key and a {value_bytes}-byte value is over the limits ({key_max} key bytes, {value_max} value bytes)", key_max = KEY_BYTES_MAX, value_max = VALUE_BYTES_MAX)]
    EntryTooLarge {
        /// Length of the key.
        key_bytes: usize,
        /// Length of the value.
        value_bytes: usize,
    },
    /// The writer was given a key not greater than the one before it; the format requires
    /// strictly increasing keys (the store's scan order).
    #[error("snapshot {}: key {key:?} is not greater than the key pushed before it", .path.display())]
    KeyOrder {
        /// The file being written.
        path: PathBuf,
        /// The out-of-order key.
        key: Vec<u8>,
    },
}
