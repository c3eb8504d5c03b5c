//! The log's on-disk format: the segment header and the record header, their encoding,
//! their checksums and the reasons a header is rejected.
//!
//! This module owns bytes only: it never touches a file and never decides what to do with
//! a rejected header (recovery does). Every integer is little-endian.
//!
//! # Segment file
//!
//! A segment is one preallocated file named `<first seqno, 20 decimal digits>.log`, so the
//! names sort in log order. It starts with a [`SEGMENT_HEADER_SIZE`]-byte header, followed
//! by records packed back to back, each starting at an 8-byte aligned offset. The bytes
//! after the last record are zero up to the end of the file.
//!
//! ```text
//! offset size field            meaning
//!      0    8 magic            SEGMENT_MAGIC, b"tuttiLOG"
//!      8    4 version          SEGMENT_FORMAT_VERSION
//!     12    4 reserved         zero
//!     16    8 first_seqno      seqno of the segment's first record (also in the file name)
//!     24    8 segment_size     the file's size in bytes, header included
//!     32    8 prev_checksum    checksum of the previous segment's last record (the chain
//!                              link that lets the chain verify after older segments are
//!                              purged); 0 for the first segment of a log
//!     40    8 header_checksum  xxh3-64 of bytes 0..40
//! ```
//!
//! # Record
//!
//! ```text
//! offset size field            meaning
//!      0    4 magic            RECORD_MAGIC, b"tREC"
//!      4    4 payload_len      payload bytes, at most RECORD_PAYLOAD_MAX
//!      8    8 seqno            the record's position in the order
//!     16    8 view             the view the record was written in
//!     24    8 prev_checksum    checksum of the previous record (the hash chain)
//!     32    8 checksum         xxh3-64 of the payload, seeded with the xxh3-64 of bytes
//!                              0..32: it covers every header field and the payload
//!     40    n payload
//!   40+n    p zero padding so the next record starts 8-byte aligned (p < 8)
//! ```

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::{Seqno, ViewNumber};

/// Alignment of every record in a segment, in bytes.
pub const RECORD_ALIGN: usize = 8;
/// Size of the fixed record header, in bytes.
pub const RECORD_HEADER_SIZE: usize = 40;
/// Identifies a record header: `b"tREC"` read as a little-endian u32.
pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"tREC");
/// The largest payload a record may carry, in bytes. A batch of ordered entries is one
/// record, so this bounds one Prepare's entry; larger entries are refused before they are
/// written. The segment size bounds it further (a record never spans two segments).
pub const RECORD_PAYLOAD_MAX: usize = 16 * 1024 * 1024;

/// Size of the fixed segment header, in bytes. Records start right after it.
pub const SEGMENT_HEADER_SIZE: usize = 48;
/// Identifies a segment file: `b"tuttiLOG"` read as a little-endian u64.
pub const SEGMENT_MAGIC: u64 = u64::from_le_bytes(*b"tuttiLOG");
/// The segment format this code writes and reads.
pub const SEGMENT_FORMAT_VERSION: u32 = 1;
/// Segment sizes are multiples of this (the page size), so maps and syncs cover whole pages.
pub const SEGMENT_SIZE_ALIGN: u64 = 4096;
/// The smallest segment size accepted, in bytes.
pub const SEGMENT_SIZE_MIN: u64 = 64 * 1024;
/// The largest segment size accepted, in bytes: offsets in a segment's index are u32.
pub const SEGMENT_SIZE_MAX: u64 = 1024 * 1024 * 1024;
/// The segment size used unless the options say otherwise.
pub const SEGMENT_SIZE_DEFAULT: u64 = 64 * 1024 * 1024;

const _: () = assert!(RECORD_HEADER_SIZE % RECORD_ALIGN == 0);
const _: () = assert!(SEGMENT_HEADER_SIZE % RECORD_ALIGN == 0);
const _: () = assert!(SEGMENT_SIZE_MIN % SEGMENT_SIZE_ALIGN == 0);
const _: () = assert!(SEGMENT_SIZE_DEFAULT % SEGMENT_SIZE_ALIGN == 0);
const _: () = assert!(SEGMENT_SIZE_MIN <= SEGMENT_SIZE_DEFAULT);
const _: () = assert!(SEGMENT_SIZE_DEFAULT <= SEGMENT_SIZE_MAX);
const _: () = assert!(SEGMENT_SIZE_MAX <= u32::MAX as u64);
const _: () = assert!(RECORD_PAYLOAD_MAX <= u32::MAX as usize);
// The largest record must fit in the default segment, or the default would refuse it.
const _: () = assert!(
    (SEGMENT_HEADER_SIZE + RECORD_HEADER_SIZE + RECORD_PAYLOAD_MAX) as u64 <= SEGMENT_SIZE_DEFAULT
);

/// The bytes a record with `payload_len` payload bytes occupies in a segment, padding
/// included.
pub const fn record_size(payload_len: usize) -> usize {
    (RECORD_HEADER_SIZE + payload_len).next_multiple_of(RECORD_ALIGN)
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(word)
}

/// The fixed header in front of every record's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Must be [`RECORD_MAGIC`]; zero where nothing was ever written.
    pub magic: u32,
    /// Payload bytes following the header.
    pub payload_len: u32,
    /// The record's position in the order.
    pub seqno: Seqno,
    /// The view the record was written in, kept so view changes can compare logs.
    pub view: ViewNumber,
    /// The previous record's checksum: the hash chain that fences stale records.
    pub prev_checksum: u64,
    /// Checksum of the header fields above and the payload.
    pub checksum: u64,
}

impl RecordHeader {
    /// The header of a new record, with its checksum computed over `payload`.
    pub fn new(seqno: Seqno, view: ViewNumber, prev_checksum: u64, payload: &[u8]) -> Self {
        assert!(
            payload.len() <= RECORD_PAYLOAD_MAX,
            "payload bound is checked by the caller"
        );
        let mut header = RecordHeader {
            magic: RECORD_MAGIC,
            payload_len: payload.len() as u32,
            seqno,
            view,
            prev_checksum,
            checksum: 0,
        };
        header.checksum = header.compute_checksum(payload);
        header
    }

    /// The header's bytes, in the layout documented in the module doc.
    pub fn encode(&self) -> [u8; RECORD_HEADER_SIZE] {
        let mut bytes = [0u8; RECORD_HEADER_SIZE];
        bytes[0..4].copy_from_slice(&self.magic.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.payload_len.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.seqno.0.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.view.0.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.prev_checksum.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.checksum.to_le_bytes());
        bytes
    }

    /// Reads a header from the first [`RECORD_HEADER_SIZE`] bytes of `bytes`, or `None`
    /// when there are fewer. Decoding never fails on content: [`Self::invalid`] judges it.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < RECORD_HEADER_SIZE {
            return None;
        }
        Some(RecordHeader {
            magic: u32_at(bytes, 0),
            payload_len: u32_at(bytes, 4),
            seqno: Seqno(u64_at(bytes, 8)),
            view: ViewNumber(u64_at(bytes, 16)),
            prev_checksum: u64_at(bytes, 24),
            checksum: u64_at(bytes, 32),
        })
    }

    /// Why this header cannot start a record, judged on the header alone; `None` if it can.
    pub fn invalid(&self) -> Option<&'static str> {
        if self.magic != RECORD_MAGIC {
            return Some("bad record magic");
        }
        if self.payload_len as usize > RECORD_PAYLOAD_MAX {
            return Some("record payload length over RECORD_PAYLOAD_MAX");
        }
        if self.seqno == Seqno::ZERO {
            return Some("record seqno is zero");
        }
        None
    }

    /// The bytes this record occupies in a segment, padding included.
    pub fn record_size(&self) -> usize {
        record_size(self.payload_len as usize)
    }

    /// The checksum this header and `payload` should carry.
    pub fn compute_checksum(&self, payload: &[u8]) -> u64 {
        let bytes = self.encode();
        xxh3_64_with_seed(payload, xxh3_64(&bytes[..32]))
    }

    /// Whether `payload` and this header's fields match the stored checksum.
    pub fn verifies(&self, payload: &[u8]) -> bool {
        payload.len() == self.payload_len as usize
            && self.compute_checksum(payload) == self.checksum
    }
}

/// The fixed header at the start of every segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Must be [`SEGMENT_MAGIC`].
    pub magic: u64,
    /// Must be [`SEGMENT_FORMAT_VERSION`]; a later version is refused, never guessed at.
    pub version: u32,
    /// Must be zero; room for flags without a version change.
    pub reserved: u32,
    /// Seqno of the segment's first record; the file name repeats it.
    pub first_seqno: Seqno,
    /// The file's size; a file of another size was cut or extended behind the log's back.
    pub segment_size: u64,
    /// Checksum of the previous segment's last record, so the chain verifies from here.
    pub prev_checksum: u64,
    /// xxh3-64 of the header bytes before it.
    pub header_checksum: u64,
}

impl SegmentHeader {
    /// The header of a new segment, with its checksum computed.
    pub fn new(first_seqno: Seqno, segment_size: u64, prev_checksum: u64) -> Self {
        let mut header = SegmentHeader {
            magic: SEGMENT_MAGIC,
            version: SEGMENT_FORMAT_VERSION,
            reserved: 0,
            first_seqno,
            segment_size,
            prev_checksum,
            header_checksum: 0,
        };
        header.header_checksum = xxh3_64(&header.encode()[..40]);
        header
    }

    /// The header's bytes, in the layout documented in the module doc.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_SIZE] {
        let mut bytes = [0u8; SEGMENT_HEADER_SIZE];
        bytes[0..8].copy_from_slice(&self.magic.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.version.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.reserved.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.first_seqno.0.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.segment_size.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.prev_checksum.to_le_bytes());
        bytes[40..48].copy_from_slice(&self.header_checksum.to_le_bytes());
        bytes
    }

    /// Reads a header from the first [`SEGMENT_HEADER_SIZE`] bytes of `bytes`, or `None`
    /// when there are fewer.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < SEGMENT_HEADER_SIZE {
            return None;
        }
        Some(SegmentHeader {
            magic: u64_at(bytes, 0),
            version: u32_at(bytes, 8),
            reserved: u32_at(bytes, 12),
            first_seqno: Seqno(u64_at(bytes, 16)),
            segment_size: u64_at(bytes, 24),
            prev_checksum: u64_at(bytes, 32),
            header_checksum: u64_at(bytes, 40),
        })
    }

    /// Why this header cannot start a segment; `None` if it can.
    pub fn invalid(&self) -> Option<&'static str> {
        if self.magic != SEGMENT_MAGIC {
            return Some("bad segment magic");
        }
        if self.header_checksum != xxh3_64(&self.encode()[..40]) {
            return Some("segment header checksum mismatch");
        }
        if self.version != SEGMENT_FORMAT_VERSION {
            return Some("unknown segment format version");
        }
        if self.reserved != 0 {
            return Some("segment header reserved field is not zero");
        }
        if self.first_seqno == Seqno::ZERO {
            return Some("segment first seqno is zero");
        }
        if !(SEGMENT_SIZE_MIN..=SEGMENT_SIZE_MAX).contains(&self.segment_size)
            || self.segment_size % SEGMENT_SIZE_ALIGN != 0
        {
            return Some("segment size out of range");
        }
        None
    }
}

/// The file name of the segment whose first record is `first_seqno`.
pub fn segment_file_name(first_seqno: Seqno) -> String {
    format!("{:020}.log", first_seqno.0)
}

/// The first seqno named by a segment file name, or `None` if `name` is not one.
pub fn parse_segment_file_name(name: &str) -> Option<Seqno> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Seqno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_header_round_trips_and_verifies() {
        let header = RecordHeader::new(Seqno(7), ViewNumber(3), 99, b"payload");
        let decoded = RecordHeader::decode(&header.encode()).expect("40 bytes");
        assert_eq!(decoded, header);
        assert_eq!(decoded.invalid(), None);
        assert!(decoded.verifies(b"payload"));
        assert!(!decoded.verifies(b"Payload"));
        let mut moved = decoded;
        moved.seqno = Seqno(8);
        assert!(
            !moved.verifies(b"payload"),
            "the checksum covers the header fields"
        );
    }

    #[test]
    fn zeroed_bytes_are_not_a_record_or_a_segment() {
        let zeros = [0u8; SEGMENT_HEADER_SIZE];
        assert_eq!(
            RecordHeader::decode(&zeros).and_then(|h| h.invalid()),
            Some("bad record magic")
        );
        assert_eq!(
            SegmentHeader::decode(&zeros).and_then(|h| h.invalid()),
            Some("bad segment magic")
        );
    }

    #[test]
    fn segment_header_detects_any_flipped_bit() {
        let bytes = SegmentHeader::new(Seqno(1), SEGMENT_SIZE_MIN, 5).encode();
        for bit in 0..SEGMENT_HEADER_SIZE * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            let header = SegmentHeader::decode(&flipped).expect("48 bytes");
            assert!(
                header.invalid().is_some(),
                "bit {bit} flipped went unnoticed"
            );
        }
    }

    #[test]
    fn segment_names_sort_and_parse() {
        assert_eq!(segment_file_name(Seqno(1)), "00000000000000000001.log");
        assert_eq!(
            parse_segment_file_name("00000000000000000042.log"),
            Some(Seqno(42))
        );
        assert_eq!(parse_segment_file_name("42.log"), None);
        assert_eq!(parse_segment_file_name("0000000000000000004x.log"), None);
        assert_eq!(parse_segment_file_name("99999999999999999999.log"), None);
        assert!(segment_file_name(Seqno(9)) < segment_file_name(Seqno(10)));
    }
}
