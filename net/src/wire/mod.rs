//! The peer wire codec: how gcs messages are laid out as bytes between members.
//!
//! ```text
//!  gcs::Message ──encode──▶ [ 64-byte frame header | body ] ──TCP──▶ decode ──▶ gcs::Message
//!                            frame.rs                 body.rs
//! ```
//!
//! [`frame`] owns the fixed, checksummed header every frame starts with; [`body`] owns the
//! bounded primitives a message body is made of; [`message`] lays out each gcs message
//! and each log entry body with them. Encoding appends to a caller's buffer,
//! so a batch of frames is one contiguous buffer handed to one write. Decoding returns
//! `Ok(None)` for input that is not complete yet and a [`WireError`] naming the problem
//! for input that can never become a valid frame. This module never panics on bytes from
//! the network and never decodes a frame that fails its own checks.

pub mod body;
pub mod frame;
pub mod message;

pub use frame::{decode_frame, encode_frame, Frame, FrameHeader, FrameOrigin};
pub use message::{decode_entry_body, decode_message, encode_entry, encode_message};

/// Why bytes from a peer were rejected. Every variant names what was wrong; the transport
/// logs it with the peer's address and closes that connection, and nothing else is affected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The frame does not start with the tutti frame magic: not a tutti peer, or the
    /// stream lost its framing.
    #[error("bad frame magic {found:#010x}: the peer port received bytes that are not a tutti peer frame")]
    BadMagic {
        /// The four bytes found, little-endian.
        found: u32,
    },
    /// The frame uses a wire format version this build does not speak.
    #[error("unsupported wire version {found} (this member speaks version {supported}); upgrade or downgrade the peer")]
    UnsupportedVersion {
        /// The version in the frame.
        found: u16,
        /// The version this build speaks.
        supported: u16,
    },
    /// The header has reserved flag bits set that this build does not know.
    #[error("unknown frame flags {flags:#x}: the peer is a newer version that uses features this member lacks")]
    UnknownFlags {
        /// The flags found.
        flags: u32,
    },
    /// The body is longer than a frame may be.
    #[error("frame body of {len} bytes is over the limit of {max} bytes")]
    BodyTooLong {
        /// The claimed or attempted length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The frame's checksum does not match its bytes: damaged in transit or not a frame.
    #[error("frame checksum mismatch (stored {stored:#018x}, computed {computed:#018x}): the frame was damaged")]
    Checksum {
        /// The checksum in the header.
        stored: u64,
        /// The checksum of the bytes received.
        computed: u64,
    },
    /// The message kind number is not one this build knows.
    #[error("unknown message kind {kind}")]
    UnknownKind {
        /// The kind number found.
        kind: u16,
    },
    /// The body ended in the middle of a field.
    #[error("message body ends inside field `{field}`")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A length or count is over the limit for its field.
    #[error("field `{field}` has length {len}, over its limit of {max}")]
    FieldTooLong {
        /// The field being read.
        field: &'static str,
        /// The length or count found.
        len: usize,
        /// The limit for the field.
        max: usize,
    },
    /// A field holds a value that no valid message has.
    #[error("field `{field}` is malformed: {reason}")]
    Malformed {
        /// The field being read.
        field: &'static str,
        /// Why the value is rejected.
        reason: &'static str,
    },
    /// Bytes remain after the last field of a message.
    #[error("{extra} trailing bytes after a complete `{message}` message")]
    TrailingBytes {
        /// The message kind being decoded.
        message: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
}
