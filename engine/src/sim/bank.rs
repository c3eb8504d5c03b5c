//! The bank workload's transactions: what one simulated client asks its member to run.
//!
//! Keys and values are decimal text, as a RESP client would write them:
//!
//! ```text
//!   account:<i>   a balance; absent reads as INITIAL_BALANCE. Transfers read two
//!                 accounts and write both, so the sum over accounts never changes.
//!   counter:<i>   a count; absent reads as 0. Increments read it and write it plus one,
//!                 so its value is the number of committed increments (no lost update).
//!   blind:<i>     the unique tag of its last writer. Sets write it without reading it,
//!                 so they never conflict: the total order alone orders them.
//! ```
//!
//! The key space is small on purpose: every member's clients hit the same few keys, so
//! certification really aborts, and one member's clients chain to each other's
//! in-flight writes. This module owns the key space and the transaction bodies; it must
//! never propose, certify or apply (the world and the member state do).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tutti_storage::store::Value;

use crate::local::CommandTxn;

use super::options::BankOptions;

/// The balance of an account no transaction wrote yet.
pub(super) const INITIAL_BALANCE: i64 = 1000;
/// Largest amount one transfer moves.
const TRANSFER_AMOUNT_MAX: i64 = 50;

/// One transaction a client asks for. It is decided before it runs and run again, as
/// it is, on every retry: the body reads the latest local state each time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum BankOp {
    /// Moves `amount` from one account to another, if the first holds enough.
    Transfer { from: usize, to: usize, amount: i64 },
    /// Adds one to a counter (INCR).
    Increment { counter: usize },
    /// Sets a blind key to a value no other transaction writes (SET).
    Set { key: usize, value: String },
}

/// The key of account `index`.
pub(super) fn account_key(index: usize) -> Vec<u8> {
    format!("account:{index}").into_bytes()
}

/// The key of counter `index`.
pub(super) fn counter_key(index: usize) -> Vec<u8> {
    format!("counter:{index}").into_bytes()
}

/// The key of blind key `index`.
fn blind_key(index: usize) -> Vec<u8> {
    format!("blind:{index}").into_bytes()
}

/// Reads a decimal value; `absent` when there is none, `None` when it is not a number.
pub(super) fn number(value: Option<&[u8]>, absent: i64) -> Option<i64> {
    match value {
        None => Some(absent),
        Some(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
    }
}

fn decimal(number: i64) -> Value {
    Value::from(number.to_string().as_bytes())
}

impl BankOp {
    /// Draws a transaction: transfers 45%, increments 35%, sets 20%. `tag` makes a
    /// set's value unique in the run.
    pub(super) fn random(rng: &mut ChaCha8Rng, options: &BankOptions, tag: &str) -> BankOp {
        match rng.random_range(0..100) {
            0..45 => {
                let from = rng.random_range(0..options.accounts);
                let offset = rng.random_range(1..options.accounts);
                BankOp::Transfer {
                    from,
                    to: (from + offset) % options.accounts,
                    amount: rng.random_range(1..=TRANSFER_AMOUNT_MAX),
                }
            }
            45..80 => BankOp::Increment {
                counter: rng.random_range(0..options.counters),
            },
            _ => BankOp::Set {
                key: rng.random_range(0..options.blind_keys),
                value: format!("set:{tag}"),
            },
        }
    }

    /// The body: runs against the member's latest local state. A transfer from an
    /// account that holds too little (or holds garbage, which the bank checker reports)
    /// writes nothing and is read-only.
    pub(super) fn run(&self, txn: &mut CommandTxn<'_>) {
        match self {
            BankOp::Transfer { from, to, amount } => {
                let (from, to) = (account_key(*from), account_key(*to));
                let from_balance = number(txn.get(&from).as_deref(), INITIAL_BALANCE);
                let to_balance = number(txn.get(&to).as_deref(), INITIAL_BALANCE);
                if let (Some(from_balance), Some(to_balance)) = (from_balance, to_balance) {
                    if from_balance >= *amount {
                        txn.put(&from, decimal(from_balance - amount));
                        txn.put(&to, decimal(to_balance + amount));
                    }
                }
            }
            BankOp::Increment { counter } => {
                let key = counter_key(*counter);
                if let Some(count) = number(txn.get(&key).as_deref(), 0) {
                    txn.put(&key, decimal(count + 1));
                }
            }
            BankOp::Set { key, value } => {
                txn.put(&blind_key(*key), Value::from(value.as_bytes()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::LocalTxns;
    use rand::SeedableRng;
    use tutti_net::gcs::MemberId;
    use tutti_storage::store::Store;
    use tutti_storage::Seqno;

    #[test]
    fn a_transfer_conserves_the_total_and_an_overdraft_writes_nothing() {
        let store = Store::new();
        let mut local = LocalTxns::new(MemberId(1), 1, 8);
        let transfer = BankOp::Transfer {
            from: 0,
            to: 1,
            amount: 30,
        };
        let ((), message) = local
            .execute(&store, Seqno::ZERO, |txn| transfer.run(txn))
            .unwrap();
        let writes = message.unwrap().writes;
        let values: Vec<i64> = writes
            .iter()
            .map(|write| number(write.value.as_deref(), 0).unwrap())
            .collect();
        assert_eq!(values, vec![INITIAL_BALANCE - 30, INITIAL_BALANCE + 30]);
        let overdraft = BankOp::Transfer {
            from: 2,
            to: 3,
            amount: INITIAL_BALANCE + 1,
        };
        let ((), message) = local
            .execute(&store, Seqno::ZERO, |txn| overdraft.run(txn))
            .unwrap();
        assert!(message.is_none());
    }

    #[test]
    fn random_transactions_stay_inside_the_key_space() {
        let options = BankOptions::default();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for round in 0..1000 {
            match BankOp::random(&mut rng, &options, &round.to_string()) {
                BankOp::Transfer { from, to, amount } => {
                    assert!(from != to && from < options.accounts && to < options.accounts);
                    assert!((1..=TRANSFER_AMOUNT_MAX).contains(&amount));
                }
                BankOp::Increment { counter } => assert!(counter < options.counters),
                BankOp::Set { key, value } => {
                    assert!(key < options.blind_keys);
                    assert_eq!(value, format!("set:{round}"));
                }
            }
        }
    }
}
