//! Primitive encoding of frame bodies: fixed-width little-endian integers and
//! length-prefixed byte strings, with every count and length bounded on decode.
//!
//! ```text
//! u8 / u16 / u32 / u64 / u128   little-endian, fixed width
//! bool                          one byte, 0 or 1 (anything else is malformed)
//! bytes                         u32 length, then that many bytes (bounded by the caller)
//! count                         u32 number of items that follow (bounded by the caller)
//! ```
//!
//! A reader never trusts a length it read: it checks it against the bytes that remain and
//! against the limit the caller names before it allocates or slices, so a hostile peer
//! cannot make a member allocate more than the frame it already holds.

use super::WireError;

/// Appends body fields to a caller's buffer.
pub struct BodyWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> BodyWriter<'a> {
    /// Writes into `out`, after whatever it already holds.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        BodyWriter { out }
    }

    /// Appends one byte.
    pub fn u8(&mut self, value: u8) {
        self.out.push(value);
    }

    /// Appends a little-endian u16.
    pub fn u16(&mut self, value: u16) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// Appends a little-endian u32.
    pub fn u32(&mut self, value: u32) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// Appends a little-endian u64.
    pub fn u64(&mut self, value: u64) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// Appends a little-endian u128.
    pub fn u128(&mut self, value: u128) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// Appends a bool as one byte.
    pub fn bool(&mut self, value: bool) {
        self.out.push(u8::from(value));
    }

    /// Appends a u32 length and the bytes. The caller keeps lengths under its own limit
    /// (a frame body is far below 4 GiB), which the assert checks.
    pub fn bytes(&mut self, value: &[u8]) {
        let len = u32::try_from(value.len()).expect("byte string longer than u32::MAX");
        self.u32(len);
        self.out.extend_from_slice(value);
    }

    /// Appends an item count (u32).
    pub fn count(&mut self, count: usize) {
        self.u32(u32::try_from(count).expect("item count longer than u32::MAX"));
    }
}

/// Reads body fields from a verified frame body, with bounds checks on every read.
pub struct BodyReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> BodyReader<'a> {
    /// Reads `bytes` from the start.
    pub fn new(bytes: &'a [u8]) -> Self {
        BodyReader { bytes, at: 0 }
    }

    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        let remaining = self.bytes.len() - self.at;
        if len > remaining {
            return Err(WireError::Truncated { field });
        }
        let slice = &self.bytes[self.at..self.at + len];
        self.at += len;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let mut word = [0u8; N];
        word.copy_from_slice(self.take(N, field)?);
        Ok(word)
    }

    /// Reads one byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, field)?[0])
    }

    /// Reads a little-endian u16.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        self.array(field).map(u16::from_le_bytes)
    }

    /// Reads a little-endian u32.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        self.array(field).map(u32::from_le_bytes)
    }

    /// Reads a little-endian u64.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        self.array(field).map(u64::from_le_bytes)
    }

    /// Reads a little-endian u128.
    pub fn u128(&mut self, field: &'static str) -> Result<u128, WireError> {
        self.array(field).map(u128::from_le_bytes)
    }

    /// Reads a bool; any byte other than 0 or 1 is malformed.
    pub fn bool(&mut self, field: &'static str) -> Result<bool, WireError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Malformed {
                field,
                reason: "a bool must be 0 or 1",
            }),
        }
    }

    /// Reads a length-prefixed byte string of at most `max` bytes, borrowed from the body.
    pub fn bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], WireError> {
        let len = self.u32(field)? as usize;
        if len > max {
            return Err(WireError::FieldTooLong { field, len, max });
        }
        self.take(len, field)
    }

    /// Reads an item count of at most `max`, also refusing a count that could not fit in
    /// the bytes left when each item takes at least `item_bytes_min` bytes.
    pub fn count(
        &mut self,
        field: &'static str,
        max: usize,
        item_bytes_min: usize,
    ) -> Result<usize, WireError> {
        let count = self.u32(field)? as usize;
        if count > max {
            return Err(WireError::FieldTooLong {
                field,
                len: count,
                max,
            });
        }
        if count.saturating_mul(item_bytes_min) > self.remaining() {
            return Err(WireError::Truncated { field });
        }
        Ok(count)
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// Ends decoding: a body with bytes left over is malformed, so two encodings of one
    /// message can never both be accepted.
    pub fn finish(self, message: &'static str) -> Result<(), WireError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(WireError::TrailingBytes {
                message,
                extra: self.remaining(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut out = Vec::new();
        let mut writer = BodyWriter::new(&mut out);
        writer.u8(1);
        writer.u16(2);
        writer.u32(3);
        writer.u64(4);
        writer.u128(5);
        writer.bool(true);
        writer.bytes(b"abc");
        writer.count(2);
        let mut reader = BodyReader::new(&out);
        assert_eq!(reader.u8("a").unwrap(), 1);
        assert_eq!(reader.u16("b").unwrap(), 2);
        assert_eq!(reader.u32("c").unwrap(), 3);
        assert_eq!(reader.u64("d").unwrap(), 4);
        assert_eq!(reader.u128("e").unwrap(), 5);
        assert!(reader.bool("f").unwrap());
        assert_eq!(reader.bytes("g", 3).unwrap(), b"abc");
        assert_eq!(reader.count("h", 2, 0).unwrap(), 2);
        reader.finish("test").unwrap();
    }

    #[test]
    fn hostile_lengths_are_refused_before_allocation() {
        let mut out = Vec::new();
        BodyWriter::new(&mut out).u32(u32::MAX);
        assert!(matches!(
            BodyReader::new(&out).bytes("payload", 1024),
            Err(WireError::FieldTooLong {
                field: "payload",
                ..
            })
        ));
        assert!(matches!(
            BodyReader::new(&out).bytes("payload", usize::MAX),
            Err(WireError::Truncated { field: "payload" })
        ));
        assert!(matches!(
            BodyReader::new(&out).count("entries", usize::MAX, 8),
            Err(WireError::Truncated { field: "entries" })
        ));
    }

    #[test]
    fn bad_bool_and_trailing_bytes_are_malformed() {
        assert!(matches!(
            BodyReader::new(&[2]).bool("flag"),
            Err(WireError::Malformed { .. })
        ));
        let reader = BodyReader::new(&[0, 0]);
        assert!(matches!(
            reader.finish("ping"),
            Err(WireError::TrailingBytes { extra: 2, .. })
        ));
    }
}
