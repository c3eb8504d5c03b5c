//! The errors of the embedding API, one enum per boundary.

use std::time::Duration;

use thiserror::Error;
use tutti_storage::Seqno;

use crate::applier::ApplierError;
use crate::certifier::{AbortReason, IndexConfigError, KeyHash};
use crate::group::{GroupError, ProposeFailure};
use crate::local::TooManyInFlight;

/// Why a member did not start.
#[derive(Debug, Error)]
pub enum MemberError {
    /// The group core did not start.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// The appliers did not start.
    #[error(transparent)]
    Applier(#[from] ApplierError),
    /// The certifier's index geometry is invalid.
    #[error(transparent)]
    Index(#[from] IndexConfigError),
    /// A background thread could not be started.
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        /// The thread.
        name: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// Why a read-write transaction did not commit. The outcome is exact: every variant but
/// [`TxnError::OutcomeUnknown`] means the transaction is not and will never be applied.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TxnError {
    /// Certification (or the origin's exact early check) found a key written after this
    /// transaction observed it: first committer wins.
    #[error("key hash {key} was written at seqno {winner} after this transaction read it")]
    Conflict {
        /// The first conflicting key's hash.
        key: KeyHash,
        /// The seqno of the write that won.
        winner: Seqno,
    },
    /// Certification aborted it for another reason.
    #[error("aborted by certification: {0}")]
    Aborted(AbortReason),
    /// The transaction is larger than `transaction_size_limit`; it was not proposed.
    #[error("transaction of {bytes} bytes is over transaction_size_limit ({limit} bytes)")]
    TooLarge {
        /// Its size (keys and values written).
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Too many of this member's transactions are in flight; it was not proposed.
    #[error(transparent)]
    Busy(#[from] TooManyInFlight),
    /// The group refused the proposal (not ONLINE, queue full); it was not proposed.
    #[error("not proposed: {0}")]
    NotProposed(ProposeFailure),
    /// This member may not write now (a secondary in single-primary mode, a member newer
    /// than the group's lowest version, a group without a settled mode); it was not
    /// proposed. `primary` is where writes go, when the group has a primary.
    #[error("{reason}")]
    ReadOnly {
        /// Why, for a client.
        reason: String,
        /// The primary, in single-primary mode.
        primary: Option<u128>,
    },
    /// A wait of the consistency level ended before what it waited for: the transaction
    /// was not run.
    #[error("consistency level {level}: no {what} within {wait:?}; the transaction was not run")]
    ConsistencyWait {
        /// The level.
        level: crate::consistency::Consistency,
        /// What it waited for.
        what: &'static str,
        /// How long.
        wait: Duration,
    },
    /// Consistency AFTER: the transaction committed and is applied here, but not every
    /// member acknowledged applying it within the wait. It is not rolled back.
    #[error(
        "committed at seqno {seqno}; not yet applied everywhere within {wait:?} \
         (consistency AFTER waits for every member of the group)"
    )]
    NotAppliedEverywhere {
        /// Where it committed.
        seqno: Seqno,
        /// How long it waited.
        wait: Duration,
    },
    /// The member lost the group (or the wait ended) before it learned the verdict: the
    /// transaction may or may not commit.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
}

impl TxnError {
    /// The error for a certification abort.
    pub fn from_abort(reason: AbortReason) -> TxnError {
        match reason {
            AbortReason::Conflict { key, winner_seqno } => TxnError::Conflict {
                key,
                winner: winner_seqno,
            },
            other => TxnError::Aborted(other),
        }
    }

    /// Whether running the transaction again may succeed (a command-style transaction is
    /// retried on these, up to `autocommit_retries`).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            TxnError::Conflict { .. }
                | TxnError::Aborted(
                    AbortReason::DependencyAborted { .. }
                        | AbortReason::DependencyNotCertified { .. }
                        | AbortReason::DependencyForgotten { .. }
                        | AbortReason::SnapshotTooOld { .. }
                )
        )
    }

    /// The error for a wait that ended.
    pub(crate) fn wait_ended(what: &str, wait: Duration) -> TxnError {
        TxnError::OutcomeUnknown(format!("no {what} within {wait:?}"))
    }
}
