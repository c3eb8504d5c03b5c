//! A small blocking RESP2 client, used by `tutti status`, `tutti load` and the tests.
//!
//! It writes commands as arrays of bulk strings (many at once for a pipeline) and reads
//! replies with `redis-protocol`'s decoder. Replies are bounded in size; a reply that
//! does not decode closes the client with an error. It must never be used on a monoio
//! thread (it blocks).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::extend_encode;
use redis_protocol::resp2::types::{BytesFrame, OwnedFrame};

/// Largest reply accepted.
const REPLY_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Bytes read per call.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Why a RESP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, reading or writing failed.
    #[error("{addr}: {source}")]
    Io {
        /// The server.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
    /// The server sent bytes that are not RESP2.
    #[error("{addr}: reply is not RESP2: {reason}")]
    Protocol {
        /// The server.
        addr: String,
        /// The decoder's reason.
        reason: String,
    },
    /// The server closed the connection.
    #[error("{addr}: the server closed the connection")]
    Closed {
        /// The server.
        addr: String,
    },
    /// The server answered with an error reply.
    #[error("{addr}: {message}")]
    Server {
        /// The server.
        addr: String,
        /// The error reply.
        message: String,
    },
    /// The reply has an unexpected shape.
    #[error("{addr}: unexpected reply {reply}")]
    Unexpected {
        /// The server.
        addr: String,
        /// The reply, printed.
        reply: String,
    },
}

/// One connection to a RESP server.
pub struct RespClient {
    stream: TcpStream,
    addr: String,
    buffer: Vec<u8>,
}

impl RespClient {
    /// Connects to `addr`, with `timeout` for the connect and for every read and write.
    pub fn connect(addr: &str, timeout: Duration) -> Result<RespClient, ClientError> {
        let io = |source| ClientError::Io {
            addr: addr.to_owned(),
            source,
        };
        let target: SocketAddr = addr.to_socket_addrs().map_err(io)?.next().ok_or_else(|| {
            io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no address",
            ))
        })?;
        let stream = TcpStream::connect_timeout(&target, timeout).map_err(io)?;
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        Ok(RespClient {
            stream,
            addr: addr.to_owned(),
            buffer: Vec::new(),
        })
    }

    /// Sends one command and reads its reply (an error reply is an `Err`).
    pub fn command(&mut self, args: &[&[u8]]) -> Result<OwnedFrame, ClientError> {
        self.send(&[args])?;
        match self.read_reply()? {
            OwnedFrame::Error(message) => Err(ClientError::Server {
                addr: self.addr.clone(),
                message,
            }),
            reply => Ok(reply),
        }
    }

    /// Writes several commands in one write (a pipeline); read their replies in order.
    pub fn send(&mut self, commands: &[&[&[u8]]]) -> Result<(), ClientError> {
        let mut out = bytes::BytesMut::new();
        for args in commands {
            let frame = BytesFrame::Array(
                args.iter()
                    .map(|arg| BytesFrame::BulkString(Bytes::copy_from_slice(arg)))
                    .collect(),
            );
            extend_encode(&mut out, &frame, false).map_err(|error| ClientError::Protocol {
                addr: self.addr.clone(),
                reason: error.to_string(),
            })?;
        }
        self.stream
            .write_all(&out)
            .map_err(|source| ClientError::Io {
                addr: self.addr.clone(),
                source,
            })
    }

    /// Reads the next reply (error replies included, as frames).
    pub fn read_reply(&mut self) -> Result<OwnedFrame, ClientError> {
        loop {
            match decode(&self.buffer) {
                Ok(Some((frame, used))) => {
                    self.buffer.drain(..used);
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(error) => {
                    return Err(ClientError::Protocol {
                        addr: self.addr.clone(),
                        reason: error.to_string(),
                    })
                }
            }
            if self.buffer.len() > REPLY_BYTES_MAX {
                return Err(ClientError::Protocol {
                    addr: self.addr.clone(),
                    reason: format!("reply over {REPLY_BYTES_MAX} bytes"),
                });
            }
            let mut chunk = vec![0u8; READ_CHUNK_BYTES];
            let read = self
                .stream
                .read(&mut chunk)
                .map_err(|source| ClientError::Io {
                    addr: self.addr.clone(),
                    source,
                })?;
            if read == 0 {
                return Err(ClientError::Closed {
                    addr: self.addr.clone(),
                });
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }

    /// Reads a table reply (an array of rows, each a flat array of name, value pairs).
    pub fn table(&mut self, args: &[&[u8]]) -> Result<Vec<Vec<(String, String)>>, ClientError> {
        let reply = self.command(args)?;
        let unexpected = |reply: &OwnedFrame| ClientError::Unexpected {
            addr: self.addr.clone(),
            reply: format!("{reply:?}"),
        };
        let OwnedFrame::Array(rows) = &reply else {
            return Err(unexpected(&reply));
        };
        let mut table = Vec::with_capacity(rows.len());
        for row in rows {
            let OwnedFrame::Array(cells) = row else {
                return Err(unexpected(&reply));
            };
            let texts: Vec<String> = cells.iter().map(frame_text).collect();
            table.push(
                texts
                    .chunks(2)
                    .filter(|pair| pair.len() == 2)
                    .map(|pair| (pair[0].clone(), pair[1].clone()))
                    .collect(),
            );
        }
        Ok(table)
    }

    /// `GROUP LOG-DIGEST [seqno]`: the seqno and the digest of the delivered prefix.
    pub fn log_digest(&mut self, seqno: Option<u64>) -> Result<(u64, String), ClientError> {
        let text = seqno.map(|seqno| seqno.to_string());
        let mut args: Vec<&[u8]> = vec![b"GROUP", b"LOG-DIGEST"];
        if let Some(text) = &text {
            args.push(text.as_bytes());
        }
        let reply = self.command(&args)?;
        if let OwnedFrame::Array(items) = &reply {
            if let [OwnedFrame::Integer(seqno), digest] = items.as_slice() {
                return Ok((u64::try_from(*seqno).unwrap_or(0), frame_text(digest)));
            }
        }
        Err(ClientError::Unexpected {
            addr: self.addr.clone(),
            reply: format!("{reply:?}"),
        })
    }

    /// `GROUP PROPOSE payload`: the seqno it was delivered at.
    pub fn propose(&mut self, payload: &[u8]) -> Result<u64, ClientError> {
        match self.command(&[b"GROUP", b"PROPOSE", payload])? {
            OwnedFrame::Integer(seqno) => Ok(u64::try_from(seqno).unwrap_or(0)),
            reply => Err(ClientError::Unexpected {
                addr: self.addr.clone(),
                reply: format!("{reply:?}"),
            }),
        }
    }
}

/// A frame as text (strings as UTF-8, lossy; integers in decimal).
pub fn frame_text(frame: &OwnedFrame) -> String {
    match frame {
        OwnedFrame::SimpleString(bytes) | OwnedFrame::BulkString(bytes) => {
            String::from_utf8_lossy(bytes).into_owned()
        }
        OwnedFrame::Error(text) => text.clone(),
        OwnedFrame::Integer(value) => value.to_string(),
        OwnedFrame::Null => String::new(),
        OwnedFrame::Array(items) => items.iter().map(frame_text).collect::<Vec<_>>().join(" "),
    }
}
