//! The handshake that ties a new TCP connection to a peer.
//!
//! The dialer (the member with the lower id) sends a `Hello`; the acceptor checks it and
//! answers with a `Welcome`, or logs why it refuses and closes the connection. Both are
//! ordinary frames (so the frame header already carries group name, member id and
//! incarnation, checksummed) with kinds from the range reserved for the transport, which
//! never reaches the owner:
//!
//! ```text
//! kind 0xFF00 Hello    dialer -> acceptor
//! kind 0xFF01 Welcome  acceptor -> dialer
//! kinds 1..0xFF00      messages of the layers above, moved but never read here
//!
//! body (36 bytes, little-endian)
//! offset size field        meaning
//!      0   16 target       the member the sender believes it talks to: in a Hello the
//!                          acceptor (a mismatch means a stale or wrong address); in a
//!                          Welcome the dialer
//!     16    1 family       4 or 6: the IP version of listen_ip
//!     17    1 reserved     0
//!     18    2 listen_port  the sender's peer listener port
//!     20   16 listen_ip    the sender's listener IP; IPv4 in the low 32 bits
//! ```
//!
//! A handshake from another group, for another member, from this member itself or not
//! a handshake at all is refused; the reason names the remote address. This module
//! owns the format and the one-frame exchange, never the peer table.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bytes::BytesMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::connection::frame_len_at_start;
use super::constants::READ_BUFFER_BYTES;
use super::PeerId;
use crate::wire::body::{BodyReader, BodyWriter};
use crate::wire::frame::FRAME_HEADER_BYTES;
use crate::wire::{decode_frame, encode_frame, FrameHeader, FrameOrigin, WireError};

/// First frame kind reserved for the transport's own frames; message kinds stay below.
pub const TRANSPORT_KINDS_FIRST: u16 = 0xFF00;
/// Kind of the dialer's handshake frame.
pub const HELLO_KIND: u16 = 0xFF00;
/// Kind of the acceptor's answer.
pub const WELCOME_KIND: u16 = 0xFF01;
/// Size of a handshake body.
pub const HANDSHAKE_BODY_BYTES: usize = 36;
/// The `target` of a Hello sent to a seed address whose member id the dialer does not
/// know yet (a joiner dialing its seeds): any member of the group may accept it, and the
/// Welcome tells the dialer whom it reached. Member id 0 is never a member.
pub const ANY_MEMBER: PeerId = PeerId(0);

const _: () = assert!(HELLO_KIND >= TRANSPORT_KINDS_FIRST && WELCOME_KIND >= TRANSPORT_KINDS_FIRST);
const _: () = assert!(HELLO_KIND != WELCOME_KIND);
const _: () = assert!(
    READ_BUFFER_BYTES >= FRAME_HEADER_BYTES + HANDSHAKE_BODY_BYTES,
    "a handshake fits the first receive buffer"
);

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Reading or writing the socket failed.
    #[error("i/o error during the handshake: {0}")]
    Io(#[from] std::io::Error),
    /// The other side sent no complete handshake in time.
    #[error("no handshake within {0:?}")]
    Timeout(Duration),
    /// The other side closed the connection before its handshake was complete.
    #[error("the connection was closed during the handshake (the other side refused it, or is not a tutti member)")]
    Closed,
    /// The bytes received are not a valid frame.
    #[error("not a tutti peer frame: {0}")]
    Wire(#[from] WireError),
    /// The first frame's header claims a body length no handshake has.
    #[error("the first frame claims a {body_len}-byte body; a handshake body is {HANDSHAKE_BODY_BYTES} bytes")]
    BadLength {
        /// The claimed body length.
        body_len: usize,
    },
    /// A valid frame, but not the expected handshake.
    #[error("expected a handshake frame of kind {expected:#06x}, got kind {found:#06x}")]
    UnexpectedKind {
        /// The kind expected.
        expected: u16,
        /// The kind received.
        found: u16,
    },
    /// The other side belongs to another group.
    #[error("handshake from group {theirs:032x}, but this member is in group {ours:032x}: check group_name on both members")]
    WrongGroup {
        /// This member's group.
        ours: u128,
        /// The group in the frame.
        theirs: u128,
    },
    /// The handshake names another member than the one it reached.
    #[error("the handshake is meant for member {target}, but it reached member {actual}: a peer address points at the wrong member")]
    WrongTarget {
        /// The member the sender meant.
        target: PeerId,
        /// The member it reached.
        actual: PeerId,
    },
    /// The other side claims to be this very member.
    #[error("the remote claims to be this member ({0}): two members share a member id, or a member dialed itself")]
    SelfConnection(PeerId),
    /// The other side is an older incarnation of the peer than the one connected now.
    #[error(
        "incarnation {offered} of member {peer} is older than the connected incarnation {current}"
    )]
    StaleIncarnation {
        /// The peer.
        peer: PeerId,
        /// The incarnation offered.
        offered: u64,
        /// The incarnation already connected.
        current: u64,
    },
    /// A connection to the same incarnation, preferred by the tie-break, is up already.
    #[error("member {0} is already connected through a connection the tie-break keeps")]
    Duplicate(PeerId),
    /// The peer table is full.
    #[error("the peer table is full")]
    TooManyPeers,
    /// The transport is stopping.
    #[error("the transport is stopping")]
    Stopping,
}

/// A decoded handshake body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Handshake {
    /// Whom the sender believes it talks to.
    pub(crate) target: PeerId,
    /// The sender's peer listener.
    pub(crate) listen_addr: SocketAddr,
}

/// Appends a handshake frame of `kind` to `out`.
pub(crate) fn encode_handshake(
    out: &mut Vec<u8>,
    kind: u16,
    origin: FrameOrigin,
    handshake: Handshake,
) -> Result<usize, WireError> {
    assert!(kind == HELLO_KIND || kind == WELCOME_KIND);
    let (family, ip) = match handshake.listen_addr.ip() {
        IpAddr::V4(ip) => (4u8, u128::from(ip.to_bits())),
        IpAddr::V6(ip) => (6u8, ip.to_bits()),
    };
    encode_frame(out, kind, origin, |body| {
        let mut writer = BodyWriter::new(body);
        writer.u128(handshake.target.0);
        writer.u8(family);
        writer.u8(0);
        writer.u16(handshake.listen_addr.port());
        writer.u128(ip);
    })
}

/// Decodes a handshake body.
pub(crate) fn decode_handshake(body: &[u8]) -> Result<Handshake, WireError> {
    let mut reader = BodyReader::new(body);
    let target = PeerId(reader.u128("target")?);
    let family = reader.u8("family")?;
    if reader.u8("reserved")? != 0 {
        return Err(WireError::Malformed {
            field: "reserved",
            reason: "must be 0",
        });
    }
    let port = reader.u16("listen_port")?;
    let ip = reader.u128("listen_ip")?;
    reader.finish("Handshake")?;
    let ip = match family {
        4 => match u32::try_from(ip) {
            Ok(bits) => IpAddr::V4(Ipv4Addr::from_bits(bits)),
            Err(_) => {
                return Err(WireError::Malformed {
                    field: "listen_ip",
                    reason: "an IPv4 address with bits above the low 32",
                })
            }
        },
        6 => IpAddr::V6(Ipv6Addr::from_bits(ip)),
        _ => {
            return Err(WireError::Malformed {
                field: "family",
                reason: "neither 4 nor 6",
            })
        }
    };
    Ok(Handshake {
        target,
        listen_addr: SocketAddr::new(ip, port),
    })
}

/// Checks a received handshake's header against this member: the right kind, this
/// group, not this member itself, and (in the body) meant for this member.
pub(crate) fn check_handshake(
    header: &FrameHeader,
    body: &[u8],
    expected_kind: u16,
    local: FrameOrigin,
) -> Result<Handshake, HandshakeError> {
    if header.kind != expected_kind {
        return Err(HandshakeError::UnexpectedKind {
            expected: expected_kind,
            found: header.kind,
        });
    }
    if header.origin.group_name != local.group_name {
        return Err(HandshakeError::WrongGroup {
            ours: local.group_name,
            theirs: header.origin.group_name,
        });
    }
    if header.origin.sender == local.sender {
        return Err(HandshakeError::SelfConnection(PeerId(local.sender)));
    }
    let handshake = decode_handshake(body)?;
    let seed_hello = expected_kind == HELLO_KIND && handshake.target == ANY_MEMBER;
    if handshake.target.0 != local.sender && !seed_hello {
        return Err(HandshakeError::WrongTarget {
            target: handshake.target,
            actual: PeerId(local.sender),
        });
    }
    Ok(handshake)
}

/// Writes one encoded handshake frame.
pub(crate) async fn write_handshake(
    stream: &mut TcpStream,
    frame: Vec<u8>,
) -> Result<(), HandshakeError> {
    let (result, _) = stream.write_all(frame).await;
    result?;
    Ok(())
}

/// Reads until one whole frame has arrived, within `timeout`. Returns its header, its
/// body, and the receive buffer holding whatever followed it (frames the other side sent
/// right after its handshake), which the connection's reader continues from.
pub(crate) async fn read_first_frame(
    stream: &mut TcpStream,
    timeout: Duration,
) -> Result<(FrameHeader, Vec<u8>, BytesMut), HandshakeError> {
    match monoio::time::timeout(timeout, read_one_frame(stream)).await {
        Ok(result) => result,
        Err(_) => Err(HandshakeError::Timeout(timeout)),
    }
}

async fn read_one_frame(
    stream: &mut TcpStream,
) -> Result<(FrameHeader, Vec<u8>, BytesMut), HandshakeError> {
    let mut buffer = BytesMut::with_capacity(READ_BUFFER_BYTES);
    loop {
        if let Some((frame, used)) = decode_frame(&buffer)? {
            let header = frame.header;
            let body = frame.body.to_vec();
            let _ = buffer.split_to(used);
            return Ok((header, body, buffer));
        }
        // A handshake body has a fixed, small size: a header that claims more is refused
        // at once, so a stranger cannot make this member buffer a large body.
        if let Some(frame_len) = frame_len_at_start(&buffer) {
            let body_len = frame_len - FRAME_HEADER_BYTES;
            if body_len != HANDSHAKE_BODY_BYTES {
                return Err(HandshakeError::BadLength { body_len });
            }
        }
        let len = buffer.len();
        let capacity = buffer.capacity();
        let (result, slice) = stream
            .read(monoio::buf::IoBufMut::slice_mut(buffer, len..capacity))
            .await;
        buffer = slice.into_inner();
        if result? == 0 {
            return Err(HandshakeError::Closed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: FrameOrigin = FrameOrigin {
        group_name: 0x6a,
        sender: 2,
        incarnation: 7,
    };

    fn round_trip(addr: SocketAddr) {
        let mut out = Vec::new();
        let handshake = Handshake {
            target: PeerId(5),
            listen_addr: addr,
        };
        encode_handshake(&mut out, HELLO_KIND, ORIGIN, handshake).expect("encodes");
        let (frame, used) = decode_frame(&out).expect("valid").expect("complete");
        assert_eq!(used, out.len());
        assert_eq!(frame.body.len(), HANDSHAKE_BODY_BYTES);
        assert_eq!(decode_handshake(frame.body).expect("decodes"), handshake);
        let local = FrameOrigin {
            group_name: 0x6a,
            sender: 5,
            incarnation: 1,
        };
        assert_eq!(
            check_handshake(&frame.header, frame.body, HELLO_KIND, local).ok(),
            Some(handshake)
        );
        let other_group = FrameOrigin {
            group_name: 0x6b,
            ..local
        };
        assert!(matches!(
            check_handshake(&frame.header, frame.body, HELLO_KIND, other_group),
            Err(HandshakeError::WrongGroup {
                ours: 0x6b,
                theirs: 0x6a
            })
        ));
        let other_member = FrameOrigin { sender: 9, ..local };
        assert!(matches!(
            check_handshake(&frame.header, frame.body, HELLO_KIND, other_member),
            Err(HandshakeError::WrongTarget { .. })
        ));
        assert!(matches!(
            check_handshake(&frame.header, frame.body, WELCOME_KIND, local),
            Err(HandshakeError::UnexpectedKind { .. })
        ));
    }

    #[test]
    fn a_seed_hello_reaches_any_member_of_the_group_but_a_seed_welcome_does_not() {
        let seed_hello = Handshake {
            target: ANY_MEMBER,
            listen_addr: "127.0.0.1:4567".parse().expect("address"),
        };
        let local = FrameOrigin {
            group_name: 0x6a,
            sender: 5,
            incarnation: 1,
        };
        for (kind, accepted) in [(HELLO_KIND, true), (WELCOME_KIND, false)] {
            let mut out = Vec::new();
            encode_handshake(&mut out, kind, ORIGIN, seed_hello).expect("encodes");
            let (frame, _) = decode_frame(&out).expect("valid").expect("complete");
            let checked = check_handshake(&frame.header, frame.body, kind, local);
            assert_eq!(checked.is_ok(), accepted, "kind {kind:#06x}: {checked:?}");
            let foreign = FrameOrigin {
                group_name: 0x6b,
                ..local
            };
            assert!(check_handshake(&frame.header, frame.body, kind, foreign).is_err());
        }
    }

    #[test]
    fn handshake_round_trips_for_both_ip_versions() {
        round_trip("127.0.0.1:4567".parse().expect("address"));
        round_trip("[::1]:33061".parse().expect("address"));
    }

    #[test]
    fn malformed_handshake_bodies_are_named() {
        let mut body = vec![0u8; HANDSHAKE_BODY_BYTES];
        body[16] = 5;
        assert!(matches!(
            decode_handshake(&body),
            Err(WireError::Malformed {
                field: "family",
                ..
            })
        ));
        body[16] = 4;
        body[35] = 1;
        assert!(matches!(
            decode_handshake(&body),
            Err(WireError::Malformed {
                field: "listen_ip",
                ..
            })
        ));
        assert!(matches!(
            decode_handshake(&body[..20]),
            Err(WireError::Truncated { .. })
        ));
    }
}
