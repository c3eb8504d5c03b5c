//! Typed errors at the boundaries of the group communication core.
//!
//! Only the local caller can cause these (a proposal it hands in, a configuration it
//! builds). Messages from peers never produce an error: a malformed or unexpected message
//! is ignored.

use thiserror::Error;

/// Why [`Gcs::propose`](super::Gcs::propose) refused a proposal.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum ProposeError {
    /// Too many proposals of this member are not delivered yet; retry after deliveries.
    #[error("{pending} proposals are pending delivery (limit proposals_pending_max = {limit}); wait for deliveries before proposing more")]
    QueueFull {
        /// Proposals pending now.
        pending: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The payload is larger than `payload_bytes_max`.
    #[error(
        "payload of {size} bytes exceeds payload_bytes_max = {limit}; split it or raise the limit"
    )]
    PayloadTooLarge {
        /// The payload's size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// This member is not (or no longer) a member of a group: it left, was expelled, or
    /// is in ERROR. Restart or rejoin it.
    #[error("this member is not part of a group (state {state:?}); rejoin before proposing")]
    NotMember {
        /// The member's own state.
        state: super::types::MemberState,
    },
}

/// Why a [`GcsConfig`](super::`GcsConfig`) was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A limit is zero or above its ceiling.
    #[error("{name} = {value} is out of range 1..={limit}")]
    OutOfRange {
        /// The field.
        name: &'static str,
        /// The value given.
        value: usize,
        /// The ceiling.
        limit: usize,
    },
    /// Timeouts are not in the order heartbeat < suspicion < expel.
    #[error("timeouts must satisfy heartbeat_interval < suspicion_timeout < member_expel_timeout and retransmit_interval > 0")]
    TimeoutOrder,
}
