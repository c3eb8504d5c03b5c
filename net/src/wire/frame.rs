//! The frame: the unit that crosses a peer connection.
//!
//! Every peer message travels in one frame: a fixed 64-byte header followed by a body of
//! `body_len` bytes. The header names the group and the sender, so a receiver rejects a
//! frame from another group (or from a member's earlier incarnation) before it decodes the
//! body, and carries an xxh3-64 checksum of the header and the body, so a torn or damaged
//! frame is never taken for a message.
//!
//! ```text
//! offset size field        meaning
//!      0    4 magic        b"TUTF" (0x4654_5554 little-endian): a tutti peer frame
//!      4    2 version      wire format version; this build speaks WIRE_VERSION only
//!      6    2 kind         message kind number (see `message::MessageKind`); never reused
//!      8    4 body_len     body length in bytes, at most FRAME_BODY_MAX
//!     12    4 flags        reserved, must be 0 (a non-zero value is rejected, so a future
//!                          flag is never silently ignored by an old member)
//!     16   16 group_name   the sender's group (UUID as u128)
//!     32   16 sender       the sender's MemberId (UUID as u128)
//!     48    8 incarnation  the sender's incarnation (restart counter)
//!     56    8 checksum     xxh3-64 of bytes 0..56 of the header followed by the body
//!     64    … body         body_len bytes, encoded by `body::BodyWriter`
//! ```
//!
//! All integers are little-endian. Decoding never panics and never allocates for a frame
//! that fails its checks: the header is validated before the body is awaited, so a bad
//! length is rejected at once rather than after buffering up to the claimed size.

use xxhash_rust::xxh3::Xxh3;

use super::WireError;

/// The four bytes every frame starts with.
pub const FRAME_MAGIC: u32 = u32::from_le_bytes(*b"TUTF");
/// The wire format version this build writes and accepts.
pub const WIRE_VERSION: u16 = 1;
/// Size of the fixed frame header in bytes.
pub const FRAME_HEADER_BYTES: usize = 64;
/// Largest body a frame may carry. Larger messages are refused by the sender (and
/// fragmented above this layer once `communication_max_message_size` is configurable);
/// a receiver rejects a larger `body_len` before reading the body.
pub const FRAME_BODY_MAX: usize = 16 * 1024 * 1024;

const _: () = assert!(FRAME_BODY_MAX <= u32::MAX as usize, "body_len is a u32");
const _: () = assert!(FRAME_HEADER_BYTES % 8 == 0, "header keeps 8-byte alignment");

/// Who sent a frame and for which group: the header fields that identify the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameOrigin {
    /// The group the sender belongs to; a frame from another group is rejected.
    pub group_name: u128,
    /// The sending member.
    pub sender: u128,
    /// The sender's incarnation, so a frame from before a restart is recognised.
    pub incarnation: u64,
}

/// The decoded, verified header of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Message kind number.
    pub kind: u16,
    /// Body length in bytes.
    pub body_len: u32,
    /// Sender identity.
    pub origin: FrameOrigin,
    /// Checksum of header bytes 0..56 and the body.
    pub checksum: u64,
}

/// A whole frame, borrowed from the receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The verified header.
    pub header: FrameHeader,
    /// The body, whose checksum has been verified.
    pub body: &'a [u8],
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

fn read_u128(bytes: &[u8], at: usize) -> u128 {
    let mut word = [0u8; 16];
    word.copy_from_slice(&bytes[at..at + 16]);
    u128::from_le_bytes(word)
}

fn frame_checksum(header_prefix: &[u8], body: &[u8]) -> u64 {
    let mut hasher = Xxh3::new();
    hasher.update(header_prefix);
    hasher.update(body);
    hasher.digest()
}

impl FrameHeader {
    /// Parses the first [`FRAME_HEADER_BYTES`] of `bytes` without judging them.
    fn parse(bytes: &[u8]) -> (u32, u16, u32, FrameHeader) {
        debug_assert!(bytes.len() >= FRAME_HEADER_BYTES);
        let header = FrameHeader {
            kind: read_u16(bytes, 6),
            body_len: read_u32(bytes, 8),
            origin: FrameOrigin {
                group_name: read_u128(bytes, 16),
                sender: read_u128(bytes, 32),
                incarnation: read_u64(bytes, 48),
            },
            checksum: read_u64(bytes, 56),
        };
        (
            read_u32(bytes, 0),
            read_u16(bytes, 4),
            read_u32(bytes, 12),
            header,
        )
    }

    /// Why a header with these raw fields is rejected, if it is.
    fn invalid(magic: u32, version: u16, flags: u32, body_len: u32) -> Result<(), WireError> {
        if magic != FRAME_MAGIC {
            return Err(WireError::BadMagic { found: magic });
        }
        if version != WIRE_VERSION {
            return Err(WireError::UnsupportedVersion {
                found: version,
                supported: WIRE_VERSION,
            });
        }
        if flags != 0 {
            return Err(WireError::UnknownFlags { flags });
        }
        if body_len as usize > FRAME_BODY_MAX {
            return Err(WireError::BodyTooLong {
                len: u64::from(body_len),
                max: FRAME_BODY_MAX,
            });
        }
        Ok(())
    }
}

/// Appends one frame (header and body) to `out`; the body is written by `write_body`
/// directly into `out`, so encoding copies nothing twice.
///
/// Returns the frame's total length. A body over [`FRAME_BODY_MAX`] is refused and `out` is
/// left as it was.
pub fn encode_frame(
    out: &mut Vec<u8>,
    kind: u16,
    origin: FrameOrigin,
    write_body: impl FnOnce(&mut Vec<u8>),
) -> Result<usize, WireError> {
    let start = out.len();
    out.extend_from_slice(&FRAME_MAGIC.to_le_bytes());
    out.extend_from_slice(&WIRE_VERSION.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // body_len, patched below
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    out.extend_from_slice(&origin.group_name.to_le_bytes());
    out.extend_from_slice(&origin.sender.to_le_bytes());
    out.extend_from_slice(&origin.incarnation.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // checksum, patched below
    debug_assert_eq!(out.len() - start, FRAME_HEADER_BYTES);

    write_body(out);
    let body_len = out.len() - start - FRAME_HEADER_BYTES;
    if body_len > FRAME_BODY_MAX {
        out.truncate(start);
        return Err(WireError::BodyTooLong {
            len: body_len as u64,
            max: FRAME_BODY_MAX,
        });
    }
    out[start + 8..start + 12].copy_from_slice(&(body_len as u32).to_le_bytes());
    let (header, body) = out[start..].split_at(FRAME_HEADER_BYTES);
    let checksum = frame_checksum(&header[..56], body);
    out[start + 56..start + 64].copy_from_slice(&checksum.to_le_bytes());
    Ok(FRAME_HEADER_BYTES + body_len)
}

/// Decodes the frame at the start of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold the whole frame (read more and call
/// again), `Ok(Some((frame, consumed)))` for a verified frame, and an error naming the
/// problem for bytes that can never become a valid frame. The header is checked before
/// the body is awaited.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, WireError> {
    if buf.len() < FRAME_HEADER_BYTES {
        // Reject a wrong magic as soon as it is visible, so garbage on a peer port is
        // reported at once rather than after 64 bytes of it arrived.
        if buf.len() >= 4 && read_u32(buf, 0) != FRAME_MAGIC {
            return Err(WireError::BadMagic {
                found: read_u32(buf, 0),
            });
        }
        return Ok(None);
    }
    let (magic, version, flags, header) = FrameHeader::parse(buf);
    FrameHeader::invalid(magic, version, flags, header.body_len)?;
    let total = FRAME_HEADER_BYTES + header.body_len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let body = &buf[FRAME_HEADER_BYTES..total];
    let computed = frame_checksum(&buf[..56], body);
    if computed != header.checksum {
        return Err(WireError::Checksum {
            stored: header.checksum,
            computed,
        });
    }
    Ok(Some((Frame { header, body }, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: FrameOrigin = FrameOrigin {
        group_name: 0xAAAA,
        sender: 7,
        incarnation: 3,
    };

    fn one_frame(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let len = encode_frame(&mut out, 9, ORIGIN, |b| b.extend_from_slice(body)).unwrap();
        assert_eq!(len, out.len());
        out
    }

    #[test]
    fn round_trip_and_partial_input() {
        let bytes = one_frame(b"hello");
        for cut in 0..bytes.len() {
            assert_eq!(decode_frame(&bytes[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (frame, used) = decode_frame(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(frame.body, b"hello");
        assert_eq!(frame.header.kind, 9);
        assert_eq!(frame.header.origin, ORIGIN);
    }

    #[test]
    fn frames_back_to_back_decode_one_at_a_time() {
        let mut bytes = one_frame(b"a");
        bytes.extend_from_slice(&one_frame(b"bcd"));
        let (first, used) = decode_frame(&bytes).unwrap().unwrap();
        assert_eq!(first.body, b"a");
        let (second, rest) = decode_frame(&bytes[used..]).unwrap().unwrap();
        assert_eq!(second.body, b"bcd");
        assert_eq!(used + rest, bytes.len());
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let bytes = one_frame(b"payload bytes");
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[byte] ^= 1 << bit;
                match decode_frame(&damaged) {
                    Err(_) | Ok(None) => {}
                    Ok(Some((frame, _))) => panic!("damaged byte {byte} bit {bit} gave {frame:?}"),
                }
            }
        }
    }

    #[test]
    fn bad_header_fields_are_named() {
        let good = one_frame(b"x");
        let mut wrong_magic = good.clone();
        wrong_magic[0] = b'X';
        assert!(matches!(
            decode_frame(&wrong_magic[..4]),
            Err(WireError::BadMagic { .. })
        ));

        let mut wrong_version = good.clone();
        wrong_version[4] = 99;
        assert!(matches!(
            decode_frame(&wrong_version),
            Err(WireError::UnsupportedVersion { found: 99, .. })
        ));

        let mut huge = good.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        // Rejected from the header alone, without waiting for 4 GiB of body.
        assert!(matches!(
            decode_frame(&huge[..FRAME_HEADER_BYTES]),
            Err(WireError::BodyTooLong { .. })
        ));

        let mut flags = good;
        flags[12] = 1;
        assert!(matches!(
            decode_frame(&flags),
            Err(WireError::UnknownFlags { flags: 1 })
        ));
    }

    #[test]
    fn oversized_body_is_refused_and_leaves_buffer_untouched() {
        let mut out = vec![1, 2, 3];
        let result = encode_frame(&mut out, 1, ORIGIN, |b| {
            b.resize(b.len() + FRAME_BODY_MAX + 1, 0);
        });
        assert!(matches!(result, Err(WireError::BodyTooLong { .. })));
        assert_eq!(out, vec![1, 2, 3]);
    }
}
