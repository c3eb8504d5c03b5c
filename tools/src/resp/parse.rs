//! Command decoding: the bytes a client sent, split into commands (arrays of arguments).
//!
//! A command is what Redis servers accept: a multibulk `*<n>\r\n` followed by `n` bulk
//! strings `$<len>\r\n<bytes>\r\n`, or an inline command (one line of words separated
//! by spaces, as typed into telnet). Parsing is incremental and resumable: arguments
//! are taken out of the buffer as soon as each is complete (zero-copy), so a large
//! command arriving in many reads is never parsed twice, and every limit is checked
//! from the headers, before the bytes it announces are buffered:
//!
//! | limit | on violation |
//! |---|---|
//! | [`ARGS_MAX`] arguments per command | protocol error, connection closed |
//! | [`BULK_BYTES_MAX`] bytes per argument | protocol error, connection closed |
//! | [`LINE_BYTES_MAX`] bytes per header or inline line | protocol error, connection closed |
//! | [`COMMAND_BYTES_MAX`] bytes of arguments per command | protocol error, connection closed |
//!
//! A protocol error is final for the connection (Redis closes it too: after a bad
//! header the stream cannot be resynchronised). This module is sans-IO: no socket, no
//! clock; the tests feed it arbitrary bytes.

use bytes::{Buf, Bytes, BytesMut};

use tutti_engine::txn::{KEY_BYTES_MAX, VALUE_BYTES_MAX};

/// Arguments one command may have (Redis's multibulk limit).
pub const ARGS_MAX: usize = 1024 * 1024;
/// Bytes one argument may have: the largest value the store takes (Redis's
/// `proto-max-bulk-len` default, 512 MB, is far above what one transaction may write).
pub const BULK_BYTES_MAX: usize = VALUE_BYTES_MAX;
/// Bytes of all the arguments of one command.
pub const COMMAND_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Bytes of one header line (`*<n>`, `$<len>`) or one inline command.
pub const LINE_BYTES_MAX: usize = 64 * 1024;

const _: () = assert!(KEY_BYTES_MAX <= BULK_BYTES_MAX);
const _: () = assert!(BULK_BYTES_MAX <= COMMAND_BYTES_MAX);

/// Why the bytes are not a command; the connection closes after the error reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProtocolError {
    /// The multibulk count is not a number or is over [`ARGS_MAX`].
    #[error("invalid multibulk length (at most {ARGS_MAX} arguments)")]
    MultibulkLength,
    /// An argument's length is not a number or is over [`BULK_BYTES_MAX`].
    #[error("invalid bulk length (at most {BULK_BYTES_MAX} bytes per argument)")]
    BulkLength,
    /// An element of a multibulk is not a bulk string.
    #[error("expected '$', got '{0}'")]
    ExpectedBulk(char),
    /// The arguments of one command add up to more than [`COMMAND_BYTES_MAX`].
    #[error("command too large (over {COMMAND_BYTES_MAX} bytes of arguments)")]
    CommandTooLarge,
    /// A bulk string is not followed by CRLF.
    #[error("a bulk string must end with CRLF")]
    BulkTerminator,
    /// A header or inline line is longer than [`LINE_BYTES_MAX`].
    #[error("too big {0} (over {LINE_BYTES_MAX} bytes without a line end)")]
    LineTooLong(&'static str),
    /// An inline command has an unbalanced quote.
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
}

/// The state of the command being received.
#[derive(Debug, Default)]
pub(crate) struct CommandParser {
    /// Arguments still to come in the current multibulk (0: between commands).
    remaining: usize,
    /// The current multibulk's arguments so far.
    args: Vec<Bytes>,
    /// Their bytes.
    args_bytes: usize,
}

impl CommandParser {
    /// Takes the next complete command out of `input`: `Ok(None)` when more bytes are
    /// needed (everything usable so far was consumed or is kept for the next call).
    pub(crate) fn next_command(
        &mut self,
        input: &mut BytesMut,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.remaining == 0 {
                let Some(first) = input.first().copied() else {
                    return Ok(None);
                };
                if first != b'*' {
                    match inline(input)? {
                        None => return Ok(None),
                        Some(args) if args.is_empty() => continue,
                        Some(args) => return Ok(Some(args)),
                    }
                }
                let Some(count) = header_line(input, "mbulk count string")? else {
                    return Ok(None);
                };
                let count = number(&count[1..]).ok_or(ProtocolError::MultibulkLength)?;
                if usize::try_from(count).is_ok_and(|count| count > ARGS_MAX) {
                    return Err(ProtocolError::MultibulkLength);
                }
                // `*0` and `*-1` are empty commands: Redis skips them.
                let Ok(count @ 1..) = usize::try_from(count) else {
                    continue;
                };
                self.remaining = count;
                self.args = Vec::with_capacity(count.min(1024));
                self.args_bytes = 0;
            }
            while self.remaining > 0 {
                let Some(arg) = bulk(input, COMMAND_BYTES_MAX - self.args_bytes)? else {
                    return Ok(None);
                };
                self.args_bytes += arg.len();
                self.args.push(arg);
                self.remaining -= 1;
            }
            return Ok(Some(std::mem::take(&mut self.args)));
        }
    }
}

/// The first line of `input` (without its CRLF) when complete; it is consumed.
fn header_line(input: &mut BytesMut, what: &'static str) -> Result<Option<Bytes>, ProtocolError> {
    let window = &input[..input.len().min(LINE_BYTES_MAX + 2)];
    match window.windows(2).position(|pair| pair == b"\r\n") {
        Some(end) => {
            let line = input.split_to(end).freeze();
            input.advance(2);
            Ok(Some(line))
        }
        None if input.len() > LINE_BYTES_MAX => Err(ProtocolError::LineTooLong(what)),
        None => Ok(None),
    }
}

/// One bulk string (of at most `room` bytes) when it is complete in `input`; nothing
/// is consumed otherwise.
fn bulk(input: &mut BytesMut, room: usize) -> Result<Option<Bytes>, ProtocolError> {
    let Some(&first) = input.first() else {
        return Ok(None);
    };
    if first != b'$' {
        return Err(ProtocolError::ExpectedBulk(char::from(first)));
    }
    let window = &input[..input.len().min(LINE_BYTES_MAX + 2)];
    let Some(end) = window.windows(2).position(|pair| pair == b"\r\n") else {
        return if input.len() > LINE_BYTES_MAX {
            Err(ProtocolError::LineTooLong("bulk count string"))
        } else {
            Ok(None)
        };
    };
    let length = number(&input[1..end])
        .and_then(|length| usize::try_from(length).ok())
        .filter(|&length| length <= BULK_BYTES_MAX)
        .ok_or(ProtocolError::BulkLength)?;
    if length > room {
        return Err(ProtocolError::CommandTooLarge);
    }
    let start = end + 2;
    if input.len() < start + length + 2 {
        // Room for the whole argument now, so the reads that bring it never regrow.
        input.reserve(start + length + 2 - input.len());
        return Ok(None);
    }
    if &input[start + length..start + length + 2] != b"\r\n" {
        return Err(ProtocolError::BulkTerminator);
    }
    input.advance(start);
    let arg = input.split_to(length).freeze();
    input.advance(2);
    Ok(Some(arg))
}

/// A decimal number as Redis writes headers (optional `-`, digits only).
fn number(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// One inline command line (words separated by spaces, optionally quoted), consumed.
fn inline(input: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let window = &input[..input.len().min(LINE_BYTES_MAX + 1)];
    let Some(end) = window.iter().position(|&byte| byte == b'\n') else {
        return if input.len() > LINE_BYTES_MAX {
            Err(ProtocolError::LineTooLong("inline request"))
        } else {
            Ok(None)
        };
    };
    let line = input.split_to(end + 1);
    let line = line.strip_suffix(b"\n").unwrap_or(&line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    split_words(line).map(Some)
}

/// Splits an inline line into words; `"..."` and `'...'` group words with spaces.
fn split_words(line: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
    let mut words = Vec::new();
    let mut current = Vec::new();
    let mut in_word = false;
    let mut quote = None;
    for &byte in line {
        match quote {
            Some(open) if byte == open => quote = None,
            Some(_) => current.push(byte),
            None if byte == b'"' || byte == b'\'' => {
                quote = Some(byte);
                in_word = true;
            }
            None if byte.is_ascii_whitespace() => {
                if in_word {
                    words.push(Bytes::from(std::mem::take(&mut current)));
                    in_word = false;
                }
            }
            None => {
                current.push(byte);
                in_word = true;
            }
        }
        if words.len() > ARGS_MAX {
            return Err(ProtocolError::MultibulkLength);
        }
    }
    if quote.is_some() {
        return Err(ProtocolError::UnbalancedQuotes);
    }
    if in_word {
        words.push(Bytes::from(current));
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(args: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// Feeds `bytes` in chunks of `chunk` and collects what the parser returns.
    fn feed(bytes: &[u8], chunk: usize) -> (Vec<Vec<Bytes>>, Option<ProtocolError>) {
        let mut parser = CommandParser::default();
        let mut input = BytesMut::new();
        let mut commands = Vec::new();
        for piece in bytes.chunks(chunk.max(1)) {
            input.extend_from_slice(piece);
            loop {
                let before = input.len();
                match parser.next_command(&mut input) {
                    Ok(Some(command)) => commands.push(command),
                    Ok(None) => {
                        assert!(input.len() <= before, "parsing never adds bytes");
                        break;
                    }
                    Err(error) => return (commands, Some(error)),
                }
            }
        }
        (commands, None)
    }

    #[test]
    fn pipelined_multibulk_and_inline_commands() {
        let mut bytes = encode(&[b"SET".to_vec(), b"k".to_vec(), b"v\r\n".to_vec()]);
        bytes.extend_from_slice(b"*0\r\nPING \"a b\" c\r\n\r\n");
        bytes.extend_from_slice(&encode(&[b"GET".to_vec(), Vec::new()]));
        for chunk in [1, 3, 1000] {
            let (commands, error) = feed(&bytes, chunk);
            assert_eq!(error, None);
            assert_eq!(commands.len(), 3, "chunk {chunk}");
            assert_eq!(commands[0][2], Bytes::from_static(b"v\r\n"));
            assert_eq!(commands[1], vec!["PING", "a b", "c"]);
            assert_eq!(commands[2][1], Bytes::new());
        }
    }

    #[test]
    fn limits_are_checked_from_the_headers() {
        let too_many = format!("*{}\r\n", ARGS_MAX + 1);
        assert_eq!(
            feed(too_many.as_bytes(), 100).1,
            Some(ProtocolError::MultibulkLength)
        );
        let too_big = format!("*1\r\n${}\r\n", BULK_BYTES_MAX + 1);
        assert_eq!(
            feed(too_big.as_bytes(), 100).1,
            Some(ProtocolError::BulkLength)
        );
        assert_eq!(
            feed(b"*1\r\n*1\r\n", 100).1,
            Some(ProtocolError::ExpectedBulk('*'))
        );
        assert_eq!(
            feed(b"*1\r\n$1\r\nab\r\n", 100).1,
            Some(ProtocolError::BulkTerminator)
        );
        let long_line = vec![b'a'; LINE_BYTES_MAX + 2];
        assert!(matches!(
            feed(&long_line, 4096).1,
            Some(ProtocolError::LineTooLong(_))
        ));
        let mut long_header = b"*".to_vec();
        long_header.extend(std::iter::repeat_n(b'1', LINE_BYTES_MAX + 2));
        assert!(matches!(
            feed(&long_header, 4096).1,
            Some(ProtocolError::LineTooLong(_))
        ));
    }

    fn arg() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..40)
    }

    fn command() -> impl Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::vec(arg(), 1..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn valid_commands_round_trip_in_any_chunking(
            commands in proptest::collection::vec(command(), 1..8),
            chunk in 1usize..64,
        ) {
            let bytes: Vec<u8> = commands.iter().flat_map(|c| encode(c)).collect();
            let (parsed, error) = feed(&bytes, chunk);
            prop_assert_eq!(error, None);
            let parsed: Vec<Vec<Vec<u8>>> = parsed
                .into_iter()
                .map(|c| c.into_iter().map(|a| a.to_vec()).collect())
                .collect();
            prop_assert_eq!(parsed, commands);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), chunk in 1usize..64) {
            let _ = feed(&bytes, chunk);
        }

        #[test]
        fn mutated_commands_never_panic(
            commands in proptest::collection::vec(command(), 1..4),
            mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
            chunk in 1usize..64,
        ) {
            let mut bytes: Vec<u8> = commands.iter().flat_map(|c| encode(c)).collect();
            for (at, byte, kind) in mutations {
                if bytes.is_empty() {
                    break;
                }
                let at = at.index(bytes.len());
                match kind {
                    0 => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ => { bytes.remove(at); }
                }
            }
            let (parsed, _) = feed(&bytes, chunk);
            for command in parsed {
                prop_assert!(command.len() <= ARGS_MAX);
                prop_assert!(command.iter().all(|arg| arg.len() <= BULK_BYTES_MAX.max(LINE_BYTES_MAX)));
            }
        }
    }
}
