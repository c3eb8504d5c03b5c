//! Replies, independent of the protocol version, and their encoding as RESP2 or RESP3.
//!
//! A command builds one [`Frame`]; the connection's writer encodes it in the protocol the
//! connection speaks at that point of its command stream (`HELLO 3` switches to RESP3,
//! `HELLO 2` back). The two encodings differ only where RESP3 has a type RESP2 lacks:
//!
//! | frame | RESP2 | RESP3 |
//! |---|---|---|
//! | `Null` (a missing value) | `$-1` | `_` |
//! | `NullArray` (EXEC after a WATCH conflict) | `*-1` | `_` |
//! | `Map` (HELLO, CONFIG GET, ...) | a flat array of key, value, ... | `%` |
//! | `Verbatim` (INFO, CLIENT INFO / LIST) | a bulk string | `=` with format `txt` |
//!
//! Everything else is encoded the same way in both. The encoder is checked against
//! `redis-protocol`'s decoders in the tests below.

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// RESP2, the default of every new connection.
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

impl Protocol {
    /// The version number HELLO names.
    pub(crate) fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// One reply.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Frame {
    /// `+text`.
    SimpleString(Bytes),
    /// `-CODE message`; the text must not contain CR or LF.
    Error(String),
    /// `:n`.
    Integer(i64),
    /// `$len` bytes.
    BulkString(Bytes),
    /// A missing value.
    Null,
    /// A missing array (Redis's reply to an EXEC whose watched keys changed).
    NullArray,
    /// `*n` frames.
    Array(Vec<Frame>),
    /// Key, value pairs.
    Map(Vec<(Frame, Frame)>),
    /// Text meant to be shown as it is.
    Verbatim(String),
}

impl Frame {
    /// `+OK`.
    pub(crate) fn ok() -> Frame {
        Frame::SimpleString(Bytes::from_static(b"OK"))
    }

    /// A bulk string of `text`.
    pub(crate) fn bulk(text: impl Into<Bytes>) -> Frame {
        Frame::BulkString(text.into())
    }

    /// An error reply. Line breaks become spaces: an error is one line.
    pub(crate) fn error(text: impl Into<String>) -> Frame {
        let text: String = text.into();
        if text.contains(['\r', '\n']) {
            Frame::Error(text.replace(['\r', '\n'], " "))
        } else {
            Frame::Error(text)
        }
    }

    /// A non-negative count as an integer (saturating).
    pub(crate) fn count(value: u64) -> Frame {
        Frame::Integer(i64::try_from(value).unwrap_or(i64::MAX))
    }

    /// A map from text keys.
    pub(crate) fn map<K: Into<Bytes>>(pairs: impl IntoIterator<Item = (K, Frame)>) -> Frame {
        Frame::Map(
            pairs
                .into_iter()
                .map(|(key, value)| (Frame::bulk(key), value))
                .collect(),
        )
    }

    /// Appends the frame's encoding in `protocol` to `output`.
    pub(crate) fn encode(&self, protocol: Protocol, output: &mut BytesMut) {
        let resp3 = protocol == Protocol::Resp3;
        match self {
            Frame::SimpleString(text) => line(output, b'+', text),
            Frame::Error(text) => line(output, b'-', text.as_bytes()),
            Frame::Integer(value) => header(output, b':', *value),
            Frame::BulkString(bytes) => blob(output, b'$', bytes),
            Frame::Null | Frame::NullArray if resp3 => output.put_slice(b"_\r\n"),
            Frame::Null => output.put_slice(b"$-1\r\n"),
            Frame::NullArray => output.put_slice(b"*-1\r\n"),
            Frame::Array(items) => {
                header(output, b'*', len(items.len()));
                for item in items {
                    item.encode(protocol, output);
                }
            }
            Frame::Map(pairs) => {
                if resp3 {
                    header(output, b'%', len(pairs.len()));
                } else {
                    header(output, b'*', len(pairs.len() * 2));
                }
                for (key, value) in pairs {
                    key.encode(protocol, output);
                    value.encode(protocol, output);
                }
            }
            Frame::Verbatim(text) if resp3 => {
                header(output, b'=', len(text.len() + 4));
                output.put_slice(b"txt:");
                output.put_slice(text.as_bytes());
                output.put_slice(b"\r\n");
            }
            Frame::Verbatim(text) => blob(output, b'$', text.as_bytes()),
        }
    }
}

fn len(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn line(output: &mut BytesMut, kind: u8, text: &[u8]) {
    output.put_u8(kind);
    output.put_slice(text);
    output.put_slice(b"\r\n");
}

fn header(output: &mut BytesMut, kind: u8, value: i64) {
    output.put_u8(kind);
    output.put_slice(value.to_string().as_bytes());
    output.put_slice(b"\r\n");
}

fn blob(output: &mut BytesMut, kind: u8, bytes: &[u8]) {
    header(output, kind, len(bytes.len()));
    output.put_slice(bytes);
    output.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis_protocol::resp2::types::OwnedFrame as Resp2;
    use redis_protocol::resp3::types::OwnedFrame as Resp3;

    fn encoded(frame: &Frame, protocol: Protocol) -> Vec<u8> {
        let mut output = BytesMut::new();
        frame.encode(protocol, &mut output);
        output.to_vec()
    }

    fn sample() -> Frame {
        Frame::Array(vec![
            Frame::ok(),
            Frame::error("ERR bad\r\nthing"),
            Frame::Integer(-7),
            Frame::bulk("value"),
            Frame::Null,
            Frame::map([("proto", Frame::Integer(3))]),
            Frame::Verbatim("# Server\r\nx:1\r\n".to_owned()),
        ])
    }

    #[test]
    fn resp2_encoding_decodes_with_redis_protocol() {
        let bytes = encoded(&sample(), Protocol::Resp2);
        let (decoded, used) = redis_protocol::resp2::decode::decode(&bytes)
            .expect("valid")
            .expect("complete");
        assert_eq!(used, bytes.len());
        let Resp2::Array(items) = decoded else {
            panic!("an array: {decoded:?}")
        };
        assert_eq!(items[0], Resp2::SimpleString(b"OK".to_vec()));
        assert_eq!(items[1], Resp2::Error("ERR bad  thing".into()));
        assert_eq!(items[2], Resp2::Integer(-7));
        assert_eq!(items[4], Resp2::Null);
        assert_eq!(
            items[5],
            Resp2::Array(vec![
                Resp2::BulkString(b"proto".to_vec()),
                Resp2::Integer(3)
            ])
        );
        assert_eq!(items[6], Resp2::BulkString(b"# Server\r\nx:1\r\n".to_vec()));
        assert_eq!(encoded(&Frame::NullArray, Protocol::Resp2), b"*-1\r\n");
    }

    #[test]
    fn resp3_encoding_decodes_with_redis_protocol() {
        let bytes = encoded(&sample(), Protocol::Resp3);
        let (decoded, used) = redis_protocol::resp3::decode::complete::decode(&bytes)
            .expect("valid")
            .expect("complete");
        assert_eq!(used, bytes.len());
        let Resp3::Array { data: items, .. } = decoded else {
            panic!("an array: {decoded:?}")
        };
        assert_eq!(items[4], Resp3::Null);
        assert!(matches!(&items[5], Resp3::Map { data, .. } if data.len() == 1));
        assert!(
            matches!(&items[6], Resp3::VerbatimString { data, .. } if data == b"# Server\r\nx:1\r\n")
        );
        assert_eq!(encoded(&Frame::NullArray, Protocol::Resp3), b"_\r\n");
    }
}
