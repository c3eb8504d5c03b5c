//! Bank invariants: the total over the accounts is conserved, and no update is lost.
//!
//! At every watermark of every member the accounts visible at the watermark sum to the
//! initial total (transfers conserve it, so a partial or lost transfer shows). At the end,
//! on every ONLINE member, each counter's value equals the number of committed
//! increments of it in the final order: two increments that read the same value and both
//! committed would leave it one short.

use tutti_storage::store::Store;
use tutti_storage::Seqno;

use super::super::bank::{account_key, counter_key, number, INITIAL_BALANCE};
use super::super::options::BankOptions;
use super::transactions::{TxnMember, TxnRecords};
use super::Failure;

fn fail(detail: String) -> Result<(), Failure> {
    Err(Failure {
        property: "bank_conservation",
        detail,
    })
}

/// The accounts visible at `watermark` sum to the initial total.
pub(super) fn check_total(
    options: &BankOptions,
    node: usize,
    store: &Store,
    watermark: u64,
) -> Result<(), Failure> {
    let mut total = 0;
    for account in 0..options.accounts {
        let key = account_key(account);
        let value = store.get(&key, Seqno(watermark));
        let Some(balance) = number(value.as_deref(), INITIAL_BALANCE) else {
            return fail(format!(
                "node {node} at watermark {watermark}: account {account} holds {value:?}, not a number"
            ));
        };
        total += balance;
    }
    let expected = INITIAL_BALANCE * i64::try_from(options.accounts).unwrap_or(i64::MAX);
    if total != expected {
        return fail(format!(
            "node {node} at watermark {watermark}: the accounts sum to {total}, not {expected}"
        ));
    }
    Ok(())
}

/// Totals and counters on every ONLINE member at the end.
pub(super) fn check_end(
    records: &TxnRecords,
    options: &BankOptions,
    members: &[TxnMember<'_>],
) -> Result<(), Failure> {
    for member in members.iter().filter(|member| member.online) {
        check_total(options, member.node, member.store, member.watermark)?;
        for counter in 0..options.counters {
            let key = counter_key(counter);
            let increments = records
                .certified
                .range(..=member.watermark)
                .filter(|(_, certified)| certified.verdict.is_commit())
                .filter(|(_, certified)| {
                    certified.txn.writes.iter().any(|write| *write.key == *key)
                })
                .count();
            let value = member.store.get(&key, Seqno(member.watermark));
            let count = number(value.as_deref(), 0);
            if count != i64::try_from(increments).ok() {
                return Err(Failure {
                    property: "no_lost_update",
                    detail: format!(
                        "node {} at watermark {}: counter {counter} holds {value:?} after {increments} committed increments",
                        member.node, member.watermark
                    ),
                });
            }
        }
    }
    Ok(())
}
