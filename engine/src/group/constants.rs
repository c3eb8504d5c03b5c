//! Named limits of the group core's io shell.
//!
//! Every queue and wait of `engine::group` is bounded by a value named here; the protocol
//! limits themselves live in `net::gcs::constants`. This module holds numbers only.

use std::time::Duration;

/// Proposals other threads may have handed to the group core and it has not picked up
/// yet. Beyond it `propose` fails at once with "queue full" instead of blocking.
pub const PROPOSE_QUEUE_MAX: usize = 16 * 1024;

/// Callers waiting for one leave to complete; more are answered at once with the
/// current state.
pub const LEAVE_WAITERS_MAX: usize = 64;

/// Inbound frames handled in one loop turn before the shell runs the core's commands:
/// enough to coalesce a burst into one log append and one sync, few enough that timers
/// and proposals are served while a peer floods.
pub const INBOUND_PER_TURN_MAX: usize = 4096;

/// Proposals taken from the queue in one loop turn.
pub const PROPOSALS_PER_TURN_MAX: usize = 4096;

/// The loop wakes at least this often even when no timer is due, to publish tables,
/// run the interval sync and log that it is still waiting for a seed.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(100);

/// How often a member that reaches no seed says so in the log.
pub const SEED_WAIT_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Prefix digests kept for `GROUP LOG-DIGEST <seqno>` (8 bytes each): older prefixes
/// can no longer be asked for.
pub const DIGEST_HISTORY_MAX: usize = 1 << 20;

/// Longest the group core waits for room in a [`ChannelSink`](super::ChannelSink)'s
/// queue before it drops a delivery for that consumer (the group core must keep
/// answering its peers).
pub const DELIVERY_QUEUE_WAIT_MAX: Duration = Duration::from_millis(100);

/// Longest a blocking `propose` waits for its delivery before it reports a timeout. The
/// proposal may still be delivered later.
pub const PROPOSE_WAIT_MAX: Duration = Duration::from_secs(30);

/// Longest `start` waits for the group core thread to open its storage and transport.
pub const START_WAIT_MAX: Duration = Duration::from_secs(30);

/// Longest `shutdown` waits for the group core thread to end.
pub const SHUTDOWN_WAIT_MAX: Duration = Duration::from_secs(10);

/// `Time` is microseconds since the shell started plus this offset, so a fresh member's
/// clock never reads near zero (the core uses `Time(0)` as "never").
pub const TIME_EPOCH_OFFSET: Duration = Duration::from_secs(86_400);

/// Members in the address directory (well above the gcs's `MEMBERS_MAX`, so members
/// that left and joined again still fit).
pub const DIRECTORY_MEMBERS_MAX: usize = 64;

/// Frame kind of the shell's own address-directory frame (the gcs messages use 1..=15,
/// the transport 0xFF00 and up).
pub const DIRECTORY_KIND: u16 = 0x0100;

/// The member version shown in the members table (`MEMBER_VERSION`).
pub const MEMBER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Largest `member_weight`.
pub const MEMBER_WEIGHT_MAX: u8 = 100;

const _: () = assert!(DIRECTORY_KIND > 15 && DIRECTORY_KIND < 0xFF00);
const _: () = assert!(DIRECTORY_MEMBERS_MAX >= tutti_net::gcs::constants::MEMBERS_MAX);
