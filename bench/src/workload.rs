//! Workloads: what each operation of a run does (DESIGN.md section 14).
//!
//! - `write`: a blind write (`SET key value`); blind writes read nothing, so they never
//!   abort at certification.
//! - `rmw`: a read-modify-write increment (`INCR key`); concurrent increments of one key
//!   through different members conflict (first committer wins).
//! - `transfer`: one transaction over `txn_keys` distinct accounts: the first pays
//!   `amount` to each of the others. Money moves and is never made or lost, so the sum
//!   of all accounts after the run equals the sum before: the run checks it.
//! - `mixed`: a read (`GET`) with probability `read_ratio`, else a blind write.
//!
//! Each workload has its own key prefix (`w:`, `c:`, `t:`, `m:`), so runs of different
//! workloads against one long-lived group never read each other's values (an `INCR` on
//! a key that holds a written value would fail).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::keys::KeyChooser;

/// Largest value written, in bytes.
pub const VALUE_SIZE_MAX: usize = 1024 * 1024;
/// Most accounts one transfer touches.
pub const TXN_KEYS_MAX: usize = 64;

/// The kind of operation a run repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Blind single-key writes.
    Write,
    /// Single-key increments.
    Rmw,
    /// Multi-key transfers with a conserved total.
    Transfer,
    /// Reads and blind writes.
    Mixed,
}

impl Workload {
    /// The key prefix of this workload.
    pub fn key_prefix(self) -> &'static str {
        match self {
            Workload::Write => "w:",
            Workload::Rmw => "c:",
            Workload::Transfer => "t:",
            Workload::Mixed => "m:",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Workload::Write => "write",
            Workload::Rmw => "rmw",
            Workload::Transfer => "transfer",
            Workload::Mixed => "mixed",
        })
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(text: &str) -> Result<Workload, String> {
        match text.trim() {
            "write" => Ok(Workload::Write),
            "rmw" => Ok(Workload::Rmw),
            "transfer" => Ok(Workload::Transfer),
            "mixed" => Ok(Workload::Mixed),
            _ => Err(format!(
                "workload {text:?} is invalid: use write, rmw, transfer or mixed"
            )),
        }
    }
}

/// One operation, as a target runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Write `value` at `key` without reading it.
    Write {
        /// The key.
        key: Vec<u8>,
        /// The value (shared: every write of a run writes the same bytes).
        value: Arc<[u8]>,
    },
    /// Add one to the integer at `key` (absent is 0).
    Increment {
        /// The key.
        key: Vec<u8>,
    },
    /// Move `amount` from `from` to each account of `to`, in one transaction.
    Transfer {
        /// The paying account.
        from: Vec<u8>,
        /// The receiving accounts, distinct and without `from`.
        to: Vec<Vec<u8>>,
        /// What each receiver gets.
        amount: i64,
    },
    /// Read `key`.
    Read {
        /// The key.
        key: Vec<u8>,
    },
}

impl Operation {
    /// The number of receivers of a transfer as an amount multiplier (at most
    /// [`TXN_KEYS_MAX`]).
    pub fn receivers(to: &[Vec<u8>]) -> i64 {
        i64::try_from(to.len()).expect("at most TXN_KEYS_MAX receivers")
    }
}

/// Makes a run's operations, one client's sequence from one RNG.
#[derive(Clone, Debug)]
pub struct OperationSource {
    workload: Workload,
    chooser: KeyChooser,
    txn_keys: usize,
    read_ratio: f64,
    value: Arc<[u8]>,
}

impl OperationSource {
    /// A source of `workload` operations over `chooser`'s keys.
    pub fn new(
        workload: Workload,
        chooser: KeyChooser,
        txn_keys: usize,
        value_size: usize,
        read_ratio: f64,
    ) -> OperationSource {
        let value: Vec<u8> = (0..value_size)
            .map(|index| b'a' + (index % 26) as u8)
            .collect();
        OperationSource {
            workload,
            chooser,
            txn_keys: txn_keys.max(2),
            read_ratio,
            value: value.into(),
        }
    }

    /// The name of key `index` of `workload`.
    pub fn key_name(workload: Workload, index: u64) -> Vec<u8> {
        format!("{}{index}", workload.key_prefix()).into_bytes()
    }

    /// Every key this source can name (the accounts a transfer check sums).
    pub fn all_keys(&self) -> Vec<Vec<u8>> {
        (0..self.chooser.key_space())
            .map(|index| Self::key_name(self.workload, index))
            .collect()
    }

    fn key(&self, rng: &mut impl Rng) -> Vec<u8> {
        Self::key_name(self.workload, self.chooser.choose(rng))
    }

    /// The next operation.
    pub fn next_operation(&self, rng: &mut impl Rng) -> Operation {
        match self.workload {
            Workload::Rmw => Operation::Increment { key: self.key(rng) },
            Workload::Mixed if rng.random::<f64>() < self.read_ratio => {
                Operation::Read { key: self.key(rng) }
            }
            Workload::Write | Workload::Mixed => Operation::Write {
                key: self.key(rng),
                value: Arc::clone(&self.value),
            },
            Workload::Transfer => {
                // Distinct accounts: the caller checked that the distribution's support
                // holds at least `txn_keys` keys, so this ends.
                let mut accounts: Vec<u64> = Vec::with_capacity(self.txn_keys);
                while accounts.len() < self.txn_keys {
                    let account = self.chooser.choose(rng);
                    if !accounts.contains(&account) {
                        accounts.push(account);
                    }
                }
                let name = |index: &u64| Self::key_name(Workload::Transfer, *index);
                Operation::Transfer {
                    from: name(&accounts[0]),
                    to: accounts[1..].iter().map(name).collect(),
                    amount: rng.random_range(1..=100),
                }
            }
        }
    }
}

/// Parses an integer value as the targets store it (decimal text); absent is 0.
pub fn parse_integer(value: Option<&[u8]>) -> Result<i64, String> {
    match value {
        None => Ok(0),
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| {
                format!(
                    "value {:?} is not an integer",
                    String::from_utf8_lossy(bytes)
                )
            }),
    }
}
