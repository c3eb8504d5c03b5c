//! Every limit of the peer transport, in one place, with the relations between them
//! checked at compile time.
//!
//! A limit here is a default or a hard bound; the ones a deployment may want to change
//! (queue sizes, socket buffers, backoff) are copied into
//! [`TransportConfig`](super::TransportConfig), which asserts its own values against the
//! hard bounds when a transport starts.

use std::time::Duration;

use crate::wire::frame::{FRAME_BODY_MAX, FRAME_HEADER_BYTES};

/// The largest frame a peer may send: a header and the largest body.
pub const FRAME_BYTES_MAX: usize = FRAME_HEADER_BYTES + FRAME_BODY_MAX;

/// Default bound on the bytes queued for one peer (waiting to be written plus being
/// written). Beyond it new frames to that peer are dropped and counted: a slow or dead
/// peer costs at most this much memory, and the protocol above retransmits.
pub const PEER_QUEUE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Default bound on the bytes of received frames waiting for the owner's `recv`. When it
/// is reached the readers stop reading, so TCP flow control slows the senders down
/// instead of memory growing.
pub const INBOX_BYTES_MAX: usize = 64 * 1024 * 1024;

/// How many outbound frames other threads may have handed over and the transport thread
/// has not yet picked up. Beyond it the hand-over is refused and counted.
pub const HANDOFF_FRAMES_MAX: usize = 16 * 1024;

/// How many peers one transport serves. Groups are small (MySQL Group Replication allows
/// 9 members); the bound keeps the peer table and its per-peer queues finite.
pub const PEERS_MAX: usize = 64;

/// A write buffer that grew beyond this during a burst is released after use rather than
/// kept for the next batch, so an idle peer does not pin a burst's worth of memory.
pub const WRITE_BUFFER_KEEP_BYTES: usize = 4 * 1024 * 1024;

/// Capacity of a connection's receive buffer before the first frame needs more.
pub const READ_BUFFER_BYTES: usize = 256 * 1024;

/// A read is only issued with at least this much free space in the receive buffer, so a
/// busy connection never degenerates into many tiny reads.
pub const READ_SPARE_BYTES_MIN: usize = 16 * 1024;

/// Default `SO_SNDBUF` / `SO_RCVBUF` of a peer socket. Large enough that a batch of
/// frames leaves in one submission on a fast link.
pub const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Largest socket buffer size a configuration may ask for.
pub const SOCKET_BUFFER_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Backlog of the peer listener: groups are small, a few pending connects at most.
pub const LISTEN_BACKLOG: i32 = 128;

/// First wait before redialing a peer after a failed attempt or a lost connection.
pub const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(50);

/// Longest wait between two dial attempts to one peer; the backoff doubles up to it.
pub const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// How long a TCP connect to a peer may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long either side of a new connection waits for the other's handshake frame.
/// It also bounds how long a silent stranger can hold an accepted socket.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// How many accepted connections may be in their handshake at once; more are closed at
/// once, so a flood of connects cannot exhaust memory or file descriptors.
pub const HANDSHAKES_IN_PROGRESS_MAX: usize = 64;

/// How many of the most recent refused connections the stats keep (address and reason).
pub const REJECTIONS_KEPT: usize = 16;

/// How long `shutdown` waits for the transport's tasks to finish.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// Submission queue entries of an io_uring runtime.
pub const URING_ENTRIES: u32 = 1024;

/// Pause after a failed `accept` (for example out of file descriptors) before the next,
/// so the accept loop does not spin.
pub const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

const _: () = assert!(
    PEER_QUEUE_BYTES_MAX >= FRAME_BYTES_MAX,
    "a peer queue must hold at least one frame of the largest size"
);
const _: () = assert!(
    INBOX_BYTES_MAX >= FRAME_BYTES_MAX,
    "the inbox must hold at least one frame of the largest size"
);
const _: () = assert!(READ_BUFFER_BYTES >= FRAME_HEADER_BYTES);
const _: () = assert!(READ_SPARE_BYTES_MIN <= READ_BUFFER_BYTES);
const _: () = assert!(SOCKET_BUFFER_BYTES <= SOCKET_BUFFER_BYTES_MAX);
const _: () = assert!(
    SOCKET_BUFFER_BYTES_MAX <= i32::MAX as usize,
    "setsockopt takes an int"
);
const _: () = assert!(RECONNECT_BACKOFF_MIN.as_nanos() > 0);
const _: () = assert!(RECONNECT_BACKOFF_MIN.as_nanos() <= RECONNECT_BACKOFF_MAX.as_nanos());
const _: () = assert!(
    RECONNECT_BACKOFF_MAX.as_nanos() <= 60 * 1_000_000_000,
    "a lost peer is retried at least once a minute"
);
const _: () = assert!(
    HANDSHAKES_IN_PROGRESS_MAX >= PEERS_MAX,
    "all peers may reconnect at once"
);
const _: () = assert!(REJECTIONS_KEPT > 0);
