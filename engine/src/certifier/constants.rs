//! Every limit of the certifier and its index, named, with the relations between them
//! checked at compile time.
//!
//! Limits that decide verdicts (the live-entry load per shard, the verdict window) are part
//! of the group's replicated behaviour: every member must use the same values, or members
//! would decide differently. They are constants, not configuration, for that reason; only
//! the index geometry is configurable, and it is carried in the certifier state.

/// log2 of the slots in one shard when the configuration does not say: 4096 slots of 16
/// bytes are 64 KiB, small enough that a forced sweep of one shard is a few microseconds.
pub const SHARD_SLOT_BITS_DEFAULT: u32 = 12;
/// The smallest shard: 8 slots (tests use tiny shards to reach the full condition).
pub const SHARD_SLOT_BITS_MIN: u32 = 3;
/// The largest shard: 2^20 slots (16 MiB); a larger shard would make a forced sweep long.
pub const SHARD_SLOT_BITS_MAX: u32 = 20;
/// log2 of the largest shard count: 2^16 shards.
pub const SHARD_BITS_MAX: u32 = 16;
/// Upper bound of total slots (2^30, 16 GiB of slots): keeps slot indexes within `u32`
/// arithmetic and a configuration mistake from allocating the machine away.
pub const INDEX_SLOT_BITS_MAX: u32 = 30;

/// A shard accepts a new live entry only while its live entries stay at or below
/// `slots * LIVE_LOAD_NUMERATOR / LIVE_LOAD_DENOMINATOR`. The rest of the slots stay free
/// so that every probe ends at an empty slot within a short distance.
pub const LIVE_LOAD_NUMERATOR: usize = 7;
/// See [`LIVE_LOAD_NUMERATOR`].
pub const LIVE_LOAD_DENOMINATOR: usize = 8;

/// How many recent seqnos' verdicts the certifier remembers to check `local_deps`. A
/// dependency older than `seqno - VERDICT_WINDOW_SEQNOS` is refused (the transaction
/// aborts): a session's in-flight transactions are a few batches old, far inside it.
pub const VERDICT_WINDOW_SEQNOS: u64 = 1 << 16;

/// The most keys one request may check or write; a larger one aborts as too large. It
/// bounds the certifier's scratch space; `transaction_size_limit` refuses such
/// transactions long before they are proposed.
pub const REQUEST_KEYS_MAX: usize = 1 << 20;
/// How many transactions ahead `certify_batch` prefetches index slots: far enough that a
/// cache miss (about 100 ns) completes while the transactions between are decided, near
/// enough that the prefetched lines are still in cache when used.
pub const PREFETCH_AHEAD_TXNS: usize = 4;
/// The most local dependencies one request may list.
pub const LOCAL_DEPS_MAX: usize = 1 << 10;
/// The most online members the low-watermark table tracks.
pub const MEMBERS_MAX: usize = 64;
/// Live entries a snapshot's certifier state may carry (the largest index possible).
pub const STATE_ENTRIES_MAX: u64 = 1 << INDEX_SLOT_BITS_MAX;

const _: () = assert!(SHARD_SLOT_BITS_MIN <= SHARD_SLOT_BITS_DEFAULT);
const _: () = assert!(SHARD_SLOT_BITS_DEFAULT <= SHARD_SLOT_BITS_MAX);
// Slot positions are computed in u32 arithmetic inside one index.
const _: () = assert!(SHARD_SLOT_BITS_MAX <= INDEX_SLOT_BITS_MAX && INDEX_SLOT_BITS_MAX < 32);
const _: () = assert!(SHARD_BITS_MAX <= INDEX_SLOT_BITS_MAX);
// The smallest shard keeps at least one slot free above the live limit, so a probe for an
// absent key always ends at an empty slot.
const _: () = assert!(
    (1 << SHARD_SLOT_BITS_MIN) * LIVE_LOAD_NUMERATOR / LIVE_LOAD_DENOMINATOR
        < (1 << SHARD_SLOT_BITS_MIN)
);
const _: () = assert!(LIVE_LOAD_NUMERATOR < LIVE_LOAD_DENOMINATOR);
const _: () = assert!(VERDICT_WINDOW_SEQNOS.is_power_of_two());
const _: () = assert!(LOCAL_DEPS_MAX <= REQUEST_KEYS_MAX);
