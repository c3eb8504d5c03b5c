//! Configuration of one member's group communication core.
//!
//! Names and defaults follow Group Replication where it has one. This module owns the
//! settings and their validation; it must never hold runtime state.

use std::time::Duration;

use super::constants::{
    BATCH_BYTES_DEFAULT, BATCH_BYTES_LIMIT, BATCH_ENTRIES_DEFAULT, BATCH_ENTRIES_LIMIT,
    HEARTBEAT_INTERVAL_DEFAULT, JOIN_RETRY_INTERVAL_DEFAULT, MEMBER_EXPEL_TIMEOUT_DEFAULT,
    PAYLOAD_BYTES_DEFAULT, PAYLOAD_BYTES_LIMIT, PIPELINE_DEFAULT, PIPELINE_LIMIT,
    PROPOSALS_PENDING_DEFAULT, PROPOSALS_PENDING_LIMIT, RETRANSMIT_INTERVAL_DEFAULT,
    SUSPICION_TIMEOUT_DEFAULT, VIEW_CHANGE_TIMEOUT_DEFAULT,
};
use super::error::ConfigError;
use super::types::MemberId;

/// Settings of one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcsConfig {
    /// This member's id.
    pub member: MemberId,
    /// The group's name (a UUID); joins for another group are refused.
    pub group_name: u128,
    /// This member's protocol version; a joiner older than the sequencer is refused.
    pub version: u32,
    /// Send something to every member at least this often.
    pub heartbeat_interval: Duration,
    /// Nothing heard from a member for this long => UNREACHABLE.
    pub suspicion_timeout: Duration,
    /// UNREACHABLE for this long => the sequencer orders its removal.
    pub member_expel_timeout: Duration,
    /// Without a majority for this long => ERROR. Zero waits forever.
    pub unreachable_majority_timeout: Duration,
    /// A view change that has not completed after this long moves on to the next view.
    pub view_change_timeout: Duration,
    /// How often lagging members, unordered proposals and view-change messages are
    /// resent.
    pub retransmit_interval: Duration,
    /// How often a joiner repeats its join request.
    pub join_retry_interval: Duration,
    /// Most entries in one Prepare.
    pub batch_entries_max: usize,
    /// Most entry bytes in one Prepare.
    pub batch_bytes_max: usize,
    /// Most Prepares the sequencer has in flight (not yet committed).
    pub pipeline_max: usize,
    /// Most proposals of this member proposed and not yet delivered.
    pub proposals_pending_max: usize,
    /// Largest payload accepted by `propose`.
    pub payload_bytes_max: usize,
    /// Whether acknowledged entries survive a crash (`log_sync = batch`). A member
    /// restarted without it is amnesiac: it neither votes nor acknowledges until it has
    /// caught up with the sequencer of a view at least as new as its own.
    pub durable_acks: bool,
}

impl GcsConfig {
    /// Defaults for `member` in group `group_name`.
    pub fn new(member: MemberId, group_name: u128) -> GcsConfig {
        GcsConfig {
            member,
            group_name,
            version: 1,
            heartbeat_interval: HEARTBEAT_INTERVAL_DEFAULT,
            suspicion_timeout: SUSPICION_TIMEOUT_DEFAULT,
            member_expel_timeout: MEMBER_EXPEL_TIMEOUT_DEFAULT,
            unreachable_majority_timeout: Duration::ZERO,
            view_change_timeout: VIEW_CHANGE_TIMEOUT_DEFAULT,
            retransmit_interval: RETRANSMIT_INTERVAL_DEFAULT,
            join_retry_interval: JOIN_RETRY_INTERVAL_DEFAULT,
            batch_entries_max: BATCH_ENTRIES_DEFAULT,
            batch_bytes_max: BATCH_BYTES_DEFAULT,
            pipeline_max: PIPELINE_DEFAULT,
            proposals_pending_max: PROPOSALS_PENDING_DEFAULT,
            payload_bytes_max: PAYLOAD_BYTES_DEFAULT,
            durable_acks: true,
        }
    }

    /// Checks every limit against its ceiling and the timeouts against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ranges = [
            (
                "batch_entries_max",
                self.batch_entries_max,
                BATCH_ENTRIES_LIMIT,
            ),
            ("batch_bytes_max", self.batch_bytes_max, BATCH_BYTES_LIMIT),
            ("pipeline_max", self.pipeline_max, PIPELINE_LIMIT),
            (
                "proposals_pending_max",
                self.proposals_pending_max,
                PROPOSALS_PENDING_LIMIT,
            ),
            (
                "payload_bytes_max",
                self.payload_bytes_max,
                PAYLOAD_BYTES_LIMIT,
            ),
        ];
        for (name, value, limit) in ranges {
            if value == 0 || value > limit {
                return Err(ConfigError::OutOfRange { name, value, limit });
            }
        }
        if self.payload_bytes_max >= self.batch_bytes_max {
            return Err(ConfigError::OutOfRange {
                name: "payload_bytes_max",
                value: self.payload_bytes_max,
                limit: self.batch_bytes_max - 1,
            });
        }
        let ordered = self.heartbeat_interval < self.suspicion_timeout
            && self.suspicion_timeout < self.member_expel_timeout
            && !self.retransmit_interval.is_zero()
            && !self.heartbeat_interval.is_zero()
            && !self.view_change_timeout.is_zero()
            && !self.join_retry_interval.is_zero();
        if !ordered {
            return Err(ConfigError::TimeoutOrder);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(GcsConfig::new(MemberId(1), 7).validate(), Ok(()));
    }

    #[test]
    fn zero_pipeline_is_refused() {
        let mut config = GcsConfig::new(MemberId(1), 7);
        config.pipeline_max = 0;
        assert_eq!(
            config.validate(),
            Err(ConfigError::OutOfRange {
                name: "pipeline_max",
                value: 0,
                limit: PIPELINE_LIMIT
            })
        );
    }

    #[test]
    fn expel_before_suspicion_is_refused() {
        let mut config = GcsConfig::new(MemberId(1), 7);
        config.member_expel_timeout = Duration::from_millis(500);
        assert_eq!(config.validate(), Err(ConfigError::TimeoutOrder));
    }
}
