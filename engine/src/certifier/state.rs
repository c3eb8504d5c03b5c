//! The certifier state a snapshot carries (DESIGN.md section 10): a member that starts
//! from a snapshot at seqno S must certify every later entry exactly as the members that
//! certified up to S themselves.
//!
//! It owns the byte format and its validation. The encoding depends only on the logical
//! state: live entries are sorted by key and dead ones left out, so two members that
//! reclaimed at different moments encode the same bytes. Decoding never panics on bad
//! bytes: every defect is a [`StateError`] naming what is wrong.
//!
//! # Format (version 1, all integers little-endian)
//!
//! ```text
//!  offset      size     field
//!  0           4        magic "TCST"
//!  4           2        format version = 1
//!  6           1        index shard_bits
//!  7           1        index shard_slot_bits
//!  8           8        gc seqno
//!  16          8        top: the highest seqno certified
//!  24          4        verdict window length W (must equal VERDICT_WINDOW_SEQNOS)
//!  28          4        member count M (<= MEMBERS_MAX)
//!  32          24 * M   ONLINE members, ascending by id: member id u128, low watermark u64
//!  32+24M      W        verdicts of seqnos max(1, top-W+1) ..= top, one byte each
//!                       (0 unknown, 1 committed, 2 aborted), zero-padded to W bytes
//!  32+24M+W    8        live entry count E (<= STATE_ENTRIES_MAX)
//!  40+24M+W    16 * E   live entries, ascending by key: key hash u64, last writer u64
//!  end-8       8        xxh3-64 of every byte before it
//! ```

use std::collections::BTreeMap;

use thiserror::Error;
use tutti_net::gcs::MemberId;
use tutti_storage::Seqno;
use xxhash_rust::xxh3::xxh3_64;

use super::constants::{MEMBERS_MAX, STATE_ENTRIES_MAX, VERDICT_WINDOW_SEQNOS};
use super::{
    Certifier, IndexConfig, IndexConfigError, IndexWriter, KeyHash, LowWatermarks, VerdictWindow,
};

/// The first bytes of an encoded certifier state.
pub const STATE_MAGIC: [u8; 4] = *b"TCST";
/// The format this module writes and the only one it reads.
pub const STATE_FORMAT_VERSION: u16 = 1;
/// The fixed header before the member table.
const HEADER_BYTES: usize = 32;
/// One member in the table.
const MEMBER_BYTES: usize = 24;
/// One live entry.
const ENTRY_BYTES: usize = 16;
// A member is its id (u128) and its low watermark (u64); an entry two u64.
const _: () = assert!(MEMBER_BYTES == 16 + 8 && ENTRY_BYTES == 8 + 8);
/// The trailing checksum.
const CHECKSUM_BYTES: usize = 8;

/// Why encoded certifier state is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum StateError {
    /// The bytes end before the field that needs them.
    #[error("certifier state truncated: {field} needs {needed} bytes, {available} remain")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// Not certifier state.
    #[error("certifier state has magic {found:?}, expected {STATE_MAGIC:?}")]
    Magic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// Written by another format version.
    #[error("certifier state version {found} is not the supported version {STATE_FORMAT_VERSION}")]
    Version {
        /// The version found.
        found: u16,
    },
    /// The checksum does not match: the bytes were damaged.
    #[error("certifier state checksum mismatch: stored {stored:#018x}, computed {computed:#018x}")]
    Checksum {
        /// The stored checksum.
        stored: u64,
        /// The checksum of the bytes.
        computed: u64,
    },
    /// The index geometry is invalid.
    #[error("certifier state index geometry: {0}")]
    Geometry(#[from] IndexConfigError),
    /// The verdict window length differs from this build's.
    #[error(
        "certifier state verdict window {found} differs from VERDICT_WINDOW_SEQNOS {expected}"
    )]
    WindowLength {
        /// The length found.
        found: u32,
        /// This build's window.
        expected: u64,
    },
    /// A verdict byte is not 0, 1 or 2, or a verdict is recorded past the top seqno.
    #[error("certifier state verdict window holds an invalid outcome")]
    Verdicts,
    /// Too many members.
    #[error("certifier state lists {count} members, over MEMBERS_MAX {max}")]
    Members {
        /// The count found.
        count: u32,
        /// The limit.
        max: usize,
    },
    /// Members are not in strictly ascending id order.
    #[error("certifier state member {position} is out of order")]
    MemberOrder {
        /// The member's position in the table.
        position: usize,
    },
    /// Too many live entries.
    #[error("certifier state holds {count} entries, over STATE_ENTRIES_MAX {max}")]
    EntryCount {
        /// The count found.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// An entry is out of key order, has key 0, or has a last writer outside (gc, top].
    #[error("certifier state entry {position} is invalid: {reason}")]
    Entry {
        /// The entry's position.
        position: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The entries do not fit the index geometry they came with.
    #[error("certifier state entries overflow index shard {shard}")]
    ShardFull {
        /// The shard.
        shard: u32,
    },
    /// Bytes remain after the last field.
    #[error("certifier state has {extra} bytes after its last field")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
}

impl Certifier {
    /// Appends the certifier state to `out`, in the format of this module's doc.
    pub fn encode_state(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let config = self.index.config();
        out.extend_from_slice(&STATE_MAGIC);
        out.extend_from_slice(&STATE_FORMAT_VERSION.to_le_bytes());
        out.push(config.shard_bits as u8);
        out.push(config.shard_slot_bits as u8);
        out.extend_from_slice(&self.gc_seqno().0.to_le_bytes());
        out.extend_from_slice(&self.verdicts.top().0.to_le_bytes());
        out.extend_from_slice(&(VERDICT_WINDOW_SEQNOS as u32).to_le_bytes());
        let members: Vec<_> = self.low_watermarks.members().collect();
        out.extend_from_slice(&(members.len() as u32).to_le_bytes());
        for (member, low) in members {
            out.extend_from_slice(&member.0.to_le_bytes());
            out.extend_from_slice(&low.0.to_le_bytes());
        }
        self.verdicts.encode(out);
        let mut entries = Vec::new();
        self.index
            .for_each_live(|key, seqno| entries.push((key.0, seqno.0)));
        entries.sort_unstable();
        out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        for (key, seqno) in entries {
            out.extend_from_slice(&key.to_le_bytes());
            out.extend_from_slice(&seqno.to_le_bytes());
        }
        let checksum = xxh3_64(&out[start..]);
        out.extend_from_slice(&checksum.to_le_bytes());
    }

    /// Rebuilds a certifier from [`Certifier::encode_state`]'s bytes.
    pub fn decode_state(bytes: &[u8]) -> Result<Certifier, StateError> {
        let body = verify_checksum(bytes)?;
        let mut reader = Reader { bytes: body };
        let header = decode_header(&mut reader)?;
        let low_watermarks = decode_members(&mut reader, header.gc_seqno)?;
        let window = reader.take("verdict window", VERDICT_WINDOW_SEQNOS as usize)?;
        let verdicts = VerdictWindow::decode(header.top, window).ok_or(StateError::Verdicts)?;
        let mut index = IndexWriter::new(header.config)?;
        index.set_gc_seqno(header.gc_seqno);
        decode_entries(&mut reader, &mut index, &header)?;
        if !reader.bytes.is_empty() {
            return Err(StateError::TrailingBytes {
                extra: reader.bytes.len(),
            });
        }
        Ok(Certifier::from_parts(index, low_watermarks, verdicts))
    }
}

/// The fixed header's fields.
struct Header {
    config: IndexConfig,
    gc_seqno: Seqno,
    top: Seqno,
}

/// A cursor over bytes whose every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, needed: usize) -> Result<&'a [u8], StateError> {
        if self.bytes.len() < needed {
            return Err(StateError::Truncated {
                field,
                needed,
                available: self.bytes.len(),
            });
        }
        let (head, rest) = self.bytes.split_at(needed);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], StateError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(field, N)?);
        Ok(array)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, StateError> {
        self.array(field).map(u64::from_le_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, StateError> {
        self.array(field).map(u32::from_le_bytes)
    }
}

fn verify_checksum(bytes: &[u8]) -> Result<&[u8], StateError> {
    if bytes.len() < HEADER_BYTES + CHECKSUM_BYTES {
        return Err(StateError::Truncated {
            field: "header and checksum",
            needed: HEADER_BYTES + CHECKSUM_BYTES,
            available: bytes.len(),
        });
    }
    let (body, tail) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
    let mut stored = [0; CHECKSUM_BYTES];
    stored.copy_from_slice(tail);
    let stored = u64::from_le_bytes(stored);
    let computed = xxh3_64(body);
    // The magic and version are checked first, so that foreign bytes are named as such
    // rather than as damaged ones.
    let mut magic = [0; 4];
    magic.copy_from_slice(&body[..4]);
    if magic != STATE_MAGIC {
        return Err(StateError::Magic { found: magic });
    }
    let version = u16::from_le_bytes([body[4], body[5]]);
    if version != STATE_FORMAT_VERSION {
        return Err(StateError::Version { found: version });
    }
    if stored != computed {
        return Err(StateError::Checksum { stored, computed });
    }
    Ok(body)
}

fn decode_header(reader: &mut Reader<'_>) -> Result<Header, StateError> {
    reader.take("magic and version", 6)?;
    let [shard_bits, shard_slot_bits] = reader.array("geometry")?;
    let config = IndexConfig {
        shard_bits: u32::from(shard_bits),
        shard_slot_bits: u32::from(shard_slot_bits),
    };
    config.validate()?;
    let gc_seqno = Seqno(reader.u64("gc seqno")?);
    let top = Seqno(reader.u64("top seqno")?);
    let window = reader.u32("verdict window length")?;
    if u64::from(window) != VERDICT_WINDOW_SEQNOS {
        return Err(StateError::WindowLength {
            found: window,
            expected: VERDICT_WINDOW_SEQNOS,
        });
    }
    Ok(Header {
        config,
        gc_seqno,
        top,
    })
}

fn decode_members(reader: &mut Reader<'_>, gc_seqno: Seqno) -> Result<LowWatermarks, StateError> {
    let count = reader.u32("member count")?;
    if count as usize > MEMBERS_MAX {
        return Err(StateError::Members {
            count,
            max: MEMBERS_MAX,
        });
    }
    let mut online = BTreeMap::new();
    let mut previous: Option<MemberId> = None;
    for position in 0..count as usize {
        let member = MemberId(u128::from_le_bytes(reader.array("member id")?));
        let low = Seqno(reader.u64("member low watermark")?);
        if previous.is_some_and(|p| p >= member) {
            return Err(StateError::MemberOrder { position });
        }
        previous = Some(member);
        online.insert(member, low);
    }
    Ok(LowWatermarks::from_parts(online, gc_seqno))
}

fn decode_entries(
    reader: &mut Reader<'_>,
    index: &mut IndexWriter,
    header: &Header,
) -> Result<(), StateError> {
    let count = reader.u64("entry count")?;
    if count > STATE_ENTRIES_MAX {
        return Err(StateError::EntryCount {
            count,
            max: STATE_ENTRIES_MAX,
        });
    }
    let available = reader.bytes.len();
    let needed = count as usize * ENTRY_BYTES;
    let mut entries = reader
        .take("entries", needed)
        .map_err(|_| StateError::Truncated {
            field: "entries",
            needed,
            available,
        })?;
    let mut previous = 0;
    for position in 0..count {
        let (entry, rest) = entries.split_at(ENTRY_BYTES);
        entries = rest;
        let mut key = [0; 8];
        key.copy_from_slice(&entry[..8]);
        let mut seqno = [0; 8];
        seqno.copy_from_slice(&entry[8..]);
        let (key, seqno) = (u64::from_le_bytes(key), Seqno(u64::from_le_bytes(seqno)));
        let reason = if key <= previous {
            Some("keys not strictly ascending, or key 0")
        } else if seqno <= header.gc_seqno || seqno > header.top {
            Some("last writer not in (gc seqno, top]")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(StateError::Entry { position, reason });
        }
        previous = key;
        let shard = header.config.shard_of(KeyHash(key));
        index
            .ensure_room(shard, 1)
            .map_err(|full| StateError::ShardFull { shard: full.shard })?;
        index.set(KeyHash(key), seqno);
    }
    Ok(())
}
