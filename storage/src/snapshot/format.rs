//! The fixed-size records of a snapshot file (header, block header, trailer): encoding,
//! decoding and validation, byte for byte as documented in the module above.
//!
//! Decoding never fails (every field is fixed-size); validation is `invalid()`, which says
//! why a record is rejected. Nothing here reads or writes files.

use super::{
    BLOCK_HEADER_BYTES, BLOCK_PAYLOAD_BYTES_MAX, BLOCK_TAG, ENTRY_HEADER_BYTES, FORMAT_VERSION,
    HEADER_BYTES, MAGIC, META_BYTES_MAX, TRAILER_BYTES, TRAILER_TAG,
};
use crate::Seqno;
use xxhash_rust::xxh3::xxh3_64;

/// Reads the little-endian u32 at `offset`; the caller's record size guarantees the bytes.
fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut field = [0_u8; 4];
    field.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(field)
}

/// Reads the little-endian u64 at `offset`; the caller's record size guarantees the bytes.
fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut field = [0_u8; 8];
    field.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(field)
}

/// The file header: what the file is, which seqno it holds and how long its meta is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Must be [`MAGIC`]: tells a snapshot apart from any other file.
    pub magic: [u8; 8],
    /// Must be [`FORMAT_VERSION`], so a future layout is refused, not misread.
    pub format_version: u32,
    /// Length of the meta blob after the header; bounds what the reader allocates.
    pub meta_length: u32,
    /// The seqno S whose visible state the file holds; the reader installs at it.
    pub seqno: Seqno,
    /// Hash of the meta blob, checked before the blob is handed out.
    pub meta_hash: u64,
    /// Hash of bytes 0..32 of the encoded header.
    pub header_hash: u64,
}

impl Header {
    /// The header of a snapshot at `seqno` carrying `meta`.
    pub fn new(seqno: Seqno, meta: &[u8]) -> Header {
        assert!(meta.len() <= META_BYTES_MAX, "meta over META_BYTES_MAX");
        let mut header = Header {
            magic: MAGIC,
            format_version: FORMAT_VERSION,
            meta_length: meta.len() as u32,
            seqno,
            meta_hash: xxh3_64(meta),
            header_hash: 0,
        };
        header.header_hash = xxh3_64(&header.encode()[..32]);
        header
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut bytes = [0_u8; HEADER_BYTES];
        bytes[0..8].copy_from_slice(&self.magic);
        bytes[8..12].copy_from_slice(&self.format_version.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.meta_length.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.seqno.0.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.meta_hash.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.header_hash.to_le_bytes());
        bytes
    }

    /// The header in `bytes`, not yet validated.
    pub fn decode(bytes: &[u8; HEADER_BYTES]) -> Header {
        let mut magic = [0_u8; 8];
        magic.copy_from_slice(&bytes[0..8]);
        Header {
            magic,
            format_version: u32_at(bytes, 8),
            meta_length: u32_at(bytes, 12),
            seqno: Seqno(u64_at(bytes, 16)),
            meta_hash: u64_at(bytes, 24),
            header_hash: u64_at(bytes, 32),
        }
    }

    /// Why this header must be rejected, if it must.
    pub fn invalid(&self) -> Option<&'static str> {
        if self.magic != MAGIC {
            return Some("bad magic: not a tutti snapshot file");
        }
        if self.header_hash != xxh3_64(&self.encode()[..32]) {
            return Some("header checksum mismatch");
        }
        if self.format_version != FORMAT_VERSION {
            return Some("unsupported snapshot format version (written by a newer tutti?)");
        }
        if self.meta_length as usize > META_BYTES_MAX {
            return Some("meta length over META_BYTES_MAX");
        }
        if self.seqno == Seqno::ZERO {
            return Some("seqno 0: no snapshot is taken before the first entry");
        }
        None
    }
}

/// The header of one block of entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// Must be [`BLOCK_TAG`]; tells a block from the trailer.
    pub tag: [u8; 4],
    /// Bytes of payload after the header; bounds what the reader allocates.
    pub payload_length: u32,
    /// Entries in the payload; the reader checks the payload holds exactly these.
    pub entry_count: u32,
    /// Zero; keeps the hashes 8-byte aligned and room for a later flag.
    pub reserved: u32,
    /// Hash of the payload, checked before any entry of it is handed out.
    pub payload_hash: u64,
    /// Hash of bytes 0..24 of the encoded block header.
    pub header_hash: u64,
}

impl BlockHeader {
    /// The header of a block holding `entry_count` entries encoded in `payload`.
    pub fn new(payload: &[u8], entry_count: u32) -> BlockHeader {
        assert!(
            payload.len() <= BLOCK_PAYLOAD_BYTES_MAX,
            "block payload over the limit"
        );
        let mut header = BlockHeader {
            tag: BLOCK_TAG,
            payload_length: payload.len() as u32,
            entry_count,
            reserved: 0,
            payload_hash: xxh3_64(payload),
            header_hash: 0,
        };
        header.header_hash = xxh3_64(&header.encode()[..24]);
        header
    }

    /// The block header's bytes.
    pub fn encode(&self) -> [u8; BLOCK_HEADER_BYTES] {
        let mut bytes = [0_u8; BLOCK_HEADER_BYTES];
        bytes[0..4].copy_from_slice(&self.tag);
        bytes[4..8].copy_from_slice(&self.payload_length.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.entry_count.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.reserved.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.payload_hash.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.header_hash.to_le_bytes());
        bytes
    }

    /// The block header in `bytes`, not yet validated.
    pub fn decode(bytes: &[u8; BLOCK_HEADER_BYTES]) -> BlockHeader {
        let mut tag = [0_u8; 4];
        tag.copy_from_slice(&bytes[0..4]);
        BlockHeader {
            tag,
            payload_length: u32_at(bytes, 4),
            entry_count: u32_at(bytes, 8),
            reserved: u32_at(bytes, 12),
            payload_hash: u64_at(bytes, 16),
            header_hash: u64_at(bytes, 24),
        }
    }

    /// Why this block header must be rejected, if it must.
    pub fn invalid(&self) -> Option<&'static str> {
        if self.tag != BLOCK_TAG {
            return Some("bad block tag");
        }
        if self.header_hash != xxh3_64(&self.encode()[..24]) {
            return Some("block header checksum mismatch");
        }
        if self.reserved != 0 {
            return Some("block header reserved field is not zero");
        }
        if self.payload_length == 0 || self.payload_length as usize > BLOCK_PAYLOAD_BYTES_MAX {
            return Some("block payload length is zero or over BLOCK_PAYLOAD_BYTES_MAX");
        }
        if self.entry_count == 0 {
            return Some("block holds no entries");
        }
        if self.entry_count as usize > self.payload_length as usize / ENTRY_HEADER_BYTES {
            return Some("block entry count does not fit its payload length");
        }
        None
    }
}

/// The trailer: proof that the file is complete, and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// Must be [`TRAILER_TAG`].
    pub tag: [u8; 4],
    /// Zero.
    pub reserved: u32,
    /// Entries in all blocks; the reader compares it with the entries it handed out.
    pub entry_count: u64,
    /// Blocks in the file; the reader compares it with the blocks it read.
    pub block_count: u64,
    /// Hash of every byte before the trailer: a last check that nothing was reordered,
    /// dropped or duplicated, which the per-block checks alone would not see.
    pub file_hash: u64,
    /// Hash of bytes 0..32 of the encoded trailer.
    pub trailer_hash: u64,
}

impl Trailer {
    /// The trailer of a file of `block_count` blocks holding `entry_count` entries, whose
    /// bytes before the trailer hash to `file_hash`.
    pub fn new(entry_count: u64, block_count: u64, file_hash: u64) -> Trailer {
        let mut trailer = Trailer {
            tag: TRAILER_TAG,
            reserved: 0,
            entry_count,
            block_count,
            file_hash,
            trailer_hash: 0,
        };
        trailer.trailer_hash = xxh3_64(&trailer.encode()[..32]);
        trailer
    }

    /// The trailer's bytes.
    pub fn encode(&self) -> [u8; TRAILER_BYTES] {
        let mut bytes = [0_u8; TRAILER_BYTES];
        bytes[0..4].copy_from_slice(&self.tag);
        bytes[4..8].copy_from_slice(&self.reserved.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.entry_count.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.block_count.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.file_hash.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.trailer_hash.to_le_bytes());
        bytes
    }

    /// The trailer in `bytes`, not yet validated.
    pub fn decode(bytes: &[u8; TRAILER_BYTES]) -> Trailer {
        let mut tag = [0_u8; 4];
        tag.copy_from_slice(&bytes[0..4]);
        Trailer {
            tag,
            reserved: u32_at(bytes, 4),
            entry_count: u64_at(bytes, 8),
            block_count: u64_at(bytes, 16),
            file_hash: u64_at(bytes, 24),
            trailer_hash: u64_at(bytes, 32),
        }
    }

    /// Why this trailer must be rejected on its own, if it must. The reader then compares
    /// its counts and file hash with what it read.
    pub fn invalid(&self) -> Option<&'static str> {
        if self.tag != TRAILER_TAG {
            return Some("bad trailer tag");
        }
        if self.trailer_hash != xxh3_64(&self.encode()[..32]) {
            return Some("trailer checksum mismatch");
        }
        if self.reserved != 0 {
            return Some("trailer reserved field is not zero");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_every_flipped_bit_is_rejected() {
        let header = Header::new(Seqno(42), b"meta");
        assert_eq!(Header::decode(&header.encode()), header);
        assert_eq!(header.invalid(), None);
        let block = BlockHeader::new(&[1, 0, 0, 0, 1, 0, 0, 0, b'k', b'v'], 1);
        assert_eq!(BlockHeader::decode(&block.encode()), block);
        assert_eq!(block.invalid(), None);
        let trailer = Trailer::new(7, 2, 0xfeed);
        assert_eq!(Trailer::decode(&trailer.encode()), trailer);
        assert_eq!(trailer.invalid(), None);
        for bit in 0..HEADER_BYTES * 8 {
            let mut bytes = header.encode();
            bytes[bit / 8] ^= 1 << (bit % 8);
            assert!(
                Header::decode(&bytes).invalid().is_some(),
                "header bit {bit}"
            );
            let mut bytes = trailer.encode();
            bytes[bit / 8] ^= 1 << (bit % 8);
            assert!(
                Trailer::decode(&bytes).invalid().is_some(),
                "trailer bit {bit}"
            );
        }
        for bit in 0..BLOCK_HEADER_BYTES * 8 {
            let mut bytes = block.encode();
            bytes[bit / 8] ^= 1 << (bit % 8);
            assert!(
                BlockHeader::decode(&bytes).invalid().is_some(),
                "block bit {bit}"
            );
        }
    }

    #[test]
    fn a_header_at_seqno_zero_is_rejected() {
        assert!(Header::new(Seqno::ZERO, b"").invalid().is_some());
    }
}
