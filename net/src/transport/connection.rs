//! One peer connection: exactly one reader task and one writer task.
//!
//! The writer takes everything queued for the peer and writes it in one call (many
//! frames per submission), then waits for more. The reader reads into an owned buffer
//! (monoio's owned-buffer IO: the kernel writes straight into it), decodes every complete
//! frame in place and hands each to the inbox as a slice of that same buffer, so a frame
//! is never copied after the kernel wrote it. A frame that fails decoding, claims another
//! group, sender or incarnation, or uses a transport-reserved kind closes this connection
//! with an error naming the peer, its address and the problem; nothing else is affected.
//! Neither task ever panics on what the network sends.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use bytes::BytesMut;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::tcp::{TcpOwnedReadHalf, TcpOwnedWriteHalf};

use super::constants::{READ_BUFFER_BYTES, READ_SPARE_BYTES_MIN};
use super::handshake::TRANSPORT_KINDS_FIRST;
use super::inbox::InboundFrame;
use super::peers::Core;
use super::queue::{Batch, OutQueue};
use super::signal::{unless_set, Latch};
use super::stats::PeerCounters;
use super::PeerId;
use crate::wire::frame::FRAME_HEADER_BYTES;
use crate::wire::{decode_frame, FrameHeader};

/// How a connection ended.
pub(crate) enum Ending {
    /// This member closed it (replaced, peer removed, transport stopping).
    Closed,
    /// The network or the peer ended it: end of stream, reset, a failed read or write.
    Lost(String),
    /// The peer broke the protocol: bytes that are not a frame, or a frame that does
    /// not belong on this connection. Logged as an error.
    Violation(String),
}

/// A connection that completed its handshake.
pub(crate) struct Connection {
    /// Unique within the transport, so a late close of a replaced connection is told
    /// apart from the current one.
    pub(crate) id: u64,
    pub(crate) peer: PeerId,
    pub(crate) incarnation: u64,
    /// Which member dialed it (the tie-break between two connections needs it).
    pub(crate) dialed_by: PeerId,
    pub(crate) remote: SocketAddr,
    /// Set to end both tasks.
    pub(crate) closed: Latch,
}

impl Connection {
    /// Why a verified frame does not belong on this connection, if it does not.
    fn foreign(&self, header: &FrameHeader, group_name: u128) -> Option<String> {
        if header.origin.group_name != group_name {
            return Some(format!(
                "a frame of group {:032x}, but this connection is in group {group_name:032x}",
                header.origin.group_name
            ));
        }
        if header.origin.sender != self.peer.0 {
            return Some(format!(
                "a frame from member {}",
                PeerId(header.origin.sender)
            ));
        }
        if header.origin.incarnation != self.incarnation {
            return Some(format!(
                "a frame of incarnation {}, but the connection's handshake named incarnation {}",
                header.origin.incarnation, self.incarnation
            ));
        }
        if header.kind >= TRANSPORT_KINDS_FIRST || header.kind == 0 {
            return Some(format!(
                "a frame of kind {:#06x}, which is not a message kind",
                header.kind
            ));
        }
        None
    }
}

/// The whole length the frame at the start of `buffer` claims, once its header is there
/// (the `body_len` field at offset 8 plus the header). `decode_frame` bounds the claim.
pub(crate) fn frame_len_at_start(buffer: &[u8]) -> Option<usize> {
    if buffer.len() < FRAME_HEADER_BYTES {
        return None;
    }
    let mut word = [0u8; 4];
    word.copy_from_slice(&buffer[8..12]);
    Some(FRAME_HEADER_BYTES + u32::from_le_bytes(word) as usize)
}

/// Makes room for the next read: at least `READ_SPARE_BYTES_MIN`, and the whole of a
/// large frame whose start is already buffered, so it arrives in few reads.
fn make_room(buffer: &mut BytesMut) {
    let missing = frame_len_at_start(buffer).map_or(0, |len| len.saturating_sub(buffer.len()));
    let spare = buffer.capacity() - buffer.len();
    if spare < READ_SPARE_BYTES_MIN.max(missing) {
        buffer.reserve(READ_BUFFER_BYTES.max(missing));
    }
}

/// The reader task of `connection`.
pub(crate) async fn run_reader(
    core: Rc<Core>,
    connection: Rc<Connection>,
    counters: Arc<PeerCounters>,
    mut half: TcpOwnedReadHalf,
    leftover: BytesMut,
) {
    let ending = read_frames(&core, &connection, &counters, &mut half, leftover).await;
    core.connection_closed(&connection, ending);
}

/// Hands every complete frame at the start of `buffer` to the inbox; `Some` when the
/// connection must end (it was closed meanwhile, or the peer broke the protocol).
async fn deliver_frames(
    core: &Core,
    connection: &Connection,
    counters: &PeerCounters,
    buffer: &mut BytesMut,
) -> Option<Ending> {
    loop {
        let (header, len) = match decode_frame(buffer) {
            Ok(Some((frame, len))) => (frame.header, len),
            Ok(None) => return None,
            Err(error) => {
                return Some(Ending::Violation(format!(
                    "member {} at {} sent bytes that are not a valid frame ({error}); closing the connection",
                    connection.peer, connection.remote
                )))
            }
        };
        if let Some(problem) = connection.foreign(&header, core.origin.group_name) {
            return Some(Ending::Violation(format!(
                "member {} at {} sent {problem}; closing the connection",
                connection.peer, connection.remote
            )));
        }
        let bytes = buffer.split_to(len).freeze();
        counters.on_received(len as u64, core.config.heartbeat_kind == Some(header.kind));
        let frame = InboundFrame {
            peer: connection.peer,
            header,
            bytes,
        };
        if unless_set(&connection.closed, core.inbox.push_frame(frame))
            .await
            .is_none()
        {
            return Some(Ending::Closed);
        }
    }
}

/// Reads and delivers frames until the connection ends.
async fn read_frames(
    core: &Core,
    connection: &Connection,
    counters: &PeerCounters,
    half: &mut TcpOwnedReadHalf,
    mut buffer: BytesMut,
) -> Ending {
    loop {
        if let Some(ending) = deliver_frames(core, connection, counters, &mut buffer).await {
            return ending;
        }
        make_room(&mut buffer);
        let (len, capacity) = (buffer.len(), buffer.capacity());
        let read = half.read(buffer.slice_mut(len..capacity));
        let Some((result, slice)) = unless_set(&connection.closed, read).await else {
            return Ending::Closed;
        };
        buffer = slice.into_inner();
        match result {
            Ok(0) => {
                return Ending::Lost(format!(
                    "member {} at {} closed the connection",
                    connection.peer, connection.remote
                ))
            }
            Ok(_) => {}
            Err(error) => {
                return Ending::Lost(format!(
                    "reading from member {} at {} failed: {error}",
                    connection.peer, connection.remote
                ))
            }
        }
    }
}

/// The writer task of `connection`.
pub(crate) async fn run_writer(
    core: Rc<Core>,
    connection: Rc<Connection>,
    queue: Rc<OutQueue>,
    mut half: TcpOwnedWriteHalf,
) {
    let ending = write_batches(&connection, &queue, &mut half).await;
    core.connection_closed(&connection, ending);
}

/// Writes batches until the connection ends.
async fn write_batches(
    connection: &Connection,
    queue: &OutQueue,
    half: &mut TcpOwnedWriteHalf,
) -> Ending {
    loop {
        let Some(Batch { buffer, tally }) = queue.take_batch() else {
            if unless_set(&connection.closed, queue.ready.wait())
                .await
                .is_none()
            {
                return Ending::Closed;
            }
            continue;
        };
        // One call writes every frame of the batch: monoio submits the whole buffer and
        // only loops on a short write.
        match unless_set(&connection.closed, half.write_all(buffer)).await {
            None => {
                // Closed mid-write: the buffer went with the cancelled operation.
                queue.finish_batch(&tally, None, false);
                return Ending::Closed;
            }
            Some((Ok(_), buffer)) => queue.finish_batch(&tally, Some(buffer), true),
            Some((Err(error), buffer)) => {
                queue.finish_batch(&tally, Some(buffer), false);
                return Ending::Lost(format!(
                    "writing to member {} at {} failed: {error}",
                    connection.peer, connection.remote
                ));
            }
        }
    }
}
