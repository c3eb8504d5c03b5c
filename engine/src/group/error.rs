//! Typed errors at the boundaries of the group core: starting it, and proposing to it.

use std::path::PathBuf;

use thiserror::Error;
use tutti_net::gcs::MemberState;

/// Why the group core could not start, or why it stopped.
#[derive(Debug, Error)]
pub enum GroupError {
    /// A file in the data directory could not be read or written.
    #[error(
        "data directory file `{path}`: {source} (check the data_dir permissions and free space)"
    )]
    DataDir {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A file in the data directory holds something this member cannot use.
    #[error("data directory file `{path}` is invalid: {reason}")]
    DataDirContent {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// The data directory belongs to another group.
    #[error(
        "data directory `{path}` belongs to group {stored}, but group_name is {configured}: \
         use the same group_name or another data_dir"
    )]
    WrongGroup {
        /// The data directory.
        path: PathBuf,
        /// The group stored there.
        stored: String,
        /// The group configured.
        configured: String,
    },
    /// The log could not be opened, appended to or truncated.
    #[error("log: {0}")]
    Log(#[from] tutti_storage::log::LogError),
    /// The metadata file could not be read or stored.
    #[error("metadata: {0}")]
    Meta(#[from] tutti_storage::meta::MetaError),
    /// The log holds an entry this build cannot decode.
    #[error("log record {seqno} does not decode ({reason}); the log is damaged: repair this member from its peers")]
    LogRecord {
        /// The record's seqno.
        seqno: u64,
        /// The decoder's reason.
        reason: String,
    },
    /// The io runtime could not be built.
    #[error("io runtime: {0}")]
    Runtime(#[from] tutti_net::transport::RuntimeError),
    /// The peer transport did not start.
    #[error("peer transport: {0}")]
    Transport(#[from] tutti_net::transport::TransportError),
    /// The gcs settings are inconsistent.
    #[error("group communication settings: {0}")]
    Config(#[from] tutti_net::gcs::ConfigError),
    /// An option is out of its range.
    #[error("{name} = {value} is invalid: {allowed}")]
    Option {
        /// The option.
        name: &'static str,
        /// The value given.
        value: String,
        /// The allowed values.
        allowed: &'static str,
    },
    /// The group core thread could not be started or ended unexpectedly.
    #[error("group core thread: {0}")]
    Thread(String),
}

/// Why a proposal was not delivered.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProposeFailure {
    /// The core refused it (queue full, payload too large, not a member).
    #[error("{0}")]
    Refused(#[from] tutti_net::gcs::ProposeError),
    /// Too many proposals are waiting to be handed to the group core.
    #[error("{0} proposals are waiting for the group core; retry after some are delivered")]
    QueueFull(usize),
    /// This member is not in a group yet (waiting for a seed) or any more.
    #[error("this member is not in a group (state {0:?}); wait until it is ONLINE")]
    NotInGroup(MemberState),
    /// The proposal was not delivered within the wait; it may still be delivered later.
    #[error("not delivered within {0:?}; the outcome is unknown (it may still be delivered)")]
    Timeout(std::time::Duration),
    /// The member stopped (left, expelled, shut down) before the proposal was delivered;
    /// the outcome is unknown: the group may still deliver it.
    #[error("this member stopped before the proposal was delivered; the outcome is unknown")]
    Stopped,
}
