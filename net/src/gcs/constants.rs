//! Named limits and defaults of the group communication core.
//!
//! Every queue, batch, pipeline and retry in `gcs` is bounded by a value named here or
//! by a configuration field whose ceiling is named here. Relations between limits are
//! checked at compile time. This module owns numbers only; it must never hold state.

use std::time::Duration;

/// Largest configuration (members in one view). Quorums, tables and per-member state
/// are sized by it.
pub const MEMBERS_MAX: usize = 9;

/// Ceiling for `batch_entries_max`: entries in one Prepare.
pub const BATCH_ENTRIES_LIMIT: usize = 65_536;

/// Ceiling for `batch_bytes_max`: bytes of entries in one Prepare (below the wire's
/// frame limit, so a batch always fits one message).
pub const BATCH_BYTES_LIMIT: usize = 16 * 1024 * 1024;

/// Ceiling for `pipeline_max`: unacknowledged Prepares in flight.
pub const PIPELINE_LIMIT: usize = 1024;

/// Ceiling for `proposals_pending_max`: proposals of one origin not yet delivered.
pub const PROPOSALS_PENDING_LIMIT: usize = 1 << 20;

/// Largest payload of one proposal, in bytes.
pub const PAYLOAD_BYTES_LIMIT: usize = 8 * 1024 * 1024;

/// Prepares the sequencer resends to one lagging member per retransmission.
pub const RETRANSMIT_PREPARES_MAX: usize = 8;

/// Proposals an origin resends to the sequencer per retransmission.
pub const RESEND_PROPOSALS_MAX: usize = 4096;

/// Out-of-order proposals the sequencer holds per origin while waiting for the gap to
/// fill; more are dropped (the origin resends them).
pub const HELD_PROPOSALS_PER_ORIGIN_MAX: usize = 4096;

/// Proposals the sequencer accepts but has not ordered yet, over all origins; more are
/// dropped (their origins resend them).
pub const SEQUENCER_QUEUE_MAX: usize = 1 << 20;

/// Views a hand-over looks ahead for one whose hashed sequencer is the member asked for
/// (each view names a given member with probability 1 / members, so 64 views miss it
/// with probability below 1e-8 in a group of 9).
pub const HAND_OVER_VIEWS_MAX: u64 = 256;

/// Entries in one [`LogChunk`](super::message::`LogChunk`) sent to a new sequencer.
pub const LOG_CHUNK_ENTRIES_MAX: usize = 4096;

/// Joins and leaves the sequencer remembers while one reconfiguration is in progress.
pub const PENDING_RECONFIGURATIONS_MAX: usize = 64;

/// Default `heartbeat_interval` (GR: 100 ms between liveness messages).
pub const HEARTBEAT_INTERVAL_DEFAULT: Duration = Duration::from_millis(100);

/// Default `suspicion_timeout` (1 s without a message => UNREACHABLE).
pub const SUSPICION_TIMEOUT_DEFAULT: Duration = Duration::from_secs(1);

/// Default `member_expel_timeout` (GR: 5 s of suspicion before expel).
pub const MEMBER_EXPEL_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// Default `view_change_timeout`: how long a view change may take before the next view
/// is tried.
pub const VIEW_CHANGE_TIMEOUT_DEFAULT: Duration = Duration::from_millis(1500);

/// Default `retransmit_interval`: how often lagging members and unordered proposals are
/// retried.
pub const RETRANSMIT_INTERVAL_DEFAULT: Duration = Duration::from_millis(50);

/// Default `join_retry_interval`.
pub const JOIN_RETRY_INTERVAL_DEFAULT: Duration = Duration::from_millis(500);

/// Default `batch_entries_max`.
pub const BATCH_ENTRIES_DEFAULT: usize = 1024;

/// Default `batch_bytes_max`.
pub const BATCH_BYTES_DEFAULT: usize = 4 * 1024 * 1024;

/// Default `pipeline_max` (GR's write concurrency is 10 by default).
pub const PIPELINE_DEFAULT: usize = 16;

/// Default `proposals_pending_max`.
pub const PROPOSALS_PENDING_DEFAULT: usize = 65_536;

/// Default `payload_bytes_max`.
pub const PAYLOAD_BYTES_DEFAULT: usize = 1024 * 1024;

const _: () = assert!(BATCH_ENTRIES_DEFAULT <= BATCH_ENTRIES_LIMIT);
const _: () = assert!(BATCH_BYTES_DEFAULT <= BATCH_BYTES_LIMIT);
const _: () = assert!(PIPELINE_DEFAULT <= PIPELINE_LIMIT);
const _: () = assert!(PROPOSALS_PENDING_DEFAULT <= PROPOSALS_PENDING_LIMIT);
const _: () = assert!(PAYLOAD_BYTES_DEFAULT <= PAYLOAD_BYTES_LIMIT);
// One proposal must always fit one batch, or it could never be ordered.
const _: () = assert!(PAYLOAD_BYTES_LIMIT < BATCH_BYTES_LIMIT);
const _: () = assert!(PAYLOAD_BYTES_DEFAULT < BATCH_BYTES_DEFAULT);
// Suspicion needs several missed heartbeats, and expel comes after suspicion.
const _: () =
    assert!(HEARTBEAT_INTERVAL_DEFAULT.as_micros() * 5 <= SUSPICION_TIMEOUT_DEFAULT.as_micros());
const _: () =
    assert!(SUSPICION_TIMEOUT_DEFAULT.as_micros() < MEMBER_EXPEL_TIMEOUT_DEFAULT.as_micros());
const _: () =
    assert!(RETRANSMIT_INTERVAL_DEFAULT.as_micros() <= HEARTBEAT_INTERVAL_DEFAULT.as_micros());
const _: () = assert!(MEMBERS_MAX % 2 == 1);
