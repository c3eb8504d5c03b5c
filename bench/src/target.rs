//! What a benchmark runs against: a [`Target`] hands each client a [`Session`] that runs
//! operations one at a time and says how each ended.
//!
//! Two targets ship: [`crate::in_process::InProcessTarget`] (a group of members in this
//! process, over real loopback TCP) and [`crate::resp_target::RespTarget`] (running
//! servers over RESP: a tutti group or a Redis server, measured the same way). Tests
//! implement their own (a target that sleeps, a bank that loses money).
//!
//! # To ensure correctness
//!
//! - `execute` returns [`Outcome::Committed`] only for an operation whose effect is
//!   durable in the target's sense, and [`Outcome::Aborted`] only when it is known not to
//!   have happened (a conflict). Anything else is [`Outcome::Failed`].
//! - `sums` reads every given key on every member the target can read from (one sum per
//!   member), each at a point where that member's state is consistent or, when it cannot
//!   be, such that repeating the call converges: the caller repeats it until two calls
//!   agree on every member.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::workload::Operation;

/// How one operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It committed (a read-only operation counts as committed), after `retries` runs
    /// that conflicted inside the target.
    Committed {
        /// Runs after the first.
        retries: u32,
    },
    /// It conflicted and gave up (after the target's own retries): not applied.
    Aborted {
        /// Runs after the first.
        retries: u32,
    },
    /// Anything else (an error reply, a lost connection, an unknown outcome).
    Failed(String),
}

/// A client's connection to the target.
pub trait Session {
    /// Runs one operation and waits for its outcome.
    fn execute(&mut self, operation: &Operation) -> Outcome;
}

/// What a benchmark runs against.
pub trait Target: Sync {
    /// A short description for reports ("in-process group of 3", "127.0.0.1:6379,...").
    fn describe(&self) -> String;

    /// Client `client`'s session.
    fn session(&self, client: usize) -> Result<Box<dyn Session + '_>, BenchError>;

    /// Every member's stats (GR member stats), empty when the target has none.
    fn member_stats(&self) -> Vec<MemberStatsRow> {
        Vec::new()
    }

    /// Waits until the members applied what was committed (best effort, bounded).
    fn settle(&self) -> Result<(), BenchError> {
        Ok(())
    }

    /// The sum of the integers at `keys` (absent is 0), one sum per member.
    fn sums(&self, keys: &[Vec<u8>]) -> Result<Vec<i64>, BenchError>;
}

/// One member's row of GR's member stats.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatsRow {
    /// The member (its id, or the address it was read from).
    pub member: String,
    /// (column, value), in GR's order.
    pub columns: Vec<(String, u64)>,
}

impl MemberStatsRow {
    /// The value of `column`, when present.
    pub fn get(&self, column: &str) -> Option<u64> {
        self.columns
            .iter()
            .find(|(name, _)| name == column)
            .map(|(_, value)| *value)
    }
}

/// Why a benchmark could not run.
#[derive(Debug, Error)]
pub enum BenchError {
    /// An option is out of range or options contradict each other.
    #[error("{0}")]
    Options(String),
    /// A member did not start.
    #[error("member {index} did not start: {source}")]
    Start {
        /// Which.
        index: usize,
        /// Why.
        source: tutti_engine::member::MemberError,
    },
    /// A temporary directory, a port or a file could not be had.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The group did not form, or did not converge, in time.
    #[error("{0}")]
    Settle(String),
    /// A server could not be reached or answered something unexpected.
    #[error("{address}: {message}")]
    Connect {
        /// The server.
        address: String,
        /// What went wrong.
        message: String,
    },
    /// The loopback baseline failed.
    #[error("baseline: {0}")]
    Baseline(#[from] crate::baseline::BaselineError),
    /// A report could not be read or written.
    #[error("{0}")]
    Report(String),
}
