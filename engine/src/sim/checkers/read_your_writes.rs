//! Read your own writes: when a client is acknowledged at its member, the member's store
//! read at its watermark returns, for each key the transaction wrote, the transaction's
//! own value or the value of a later committed transaction.

use std::ops::Bound::{Excluded, Included};

use tutti_storage::store::Store;
use tutti_storage::Seqno;

use crate::txn::TxnMessage;

use super::transactions::TxnRecords;
use super::Failure;

pub(super) fn check(
    records: &TxnRecords,
    node: usize,
    txn: &TxnMessage,
    seqno: u64,
    store: &Store,
    watermark: u64,
) -> Result<(), Failure> {
    if seqno > watermark {
        return Err(Failure {
            property: "read_your_writes",
            detail: format!(
                "node {node}: {} committed at seqno {seqno} was acknowledged at watermark {watermark}, before it was applied",
                txn.id
            ),
        });
    }
    for write in &txn.writes {
        let read = store.get(&write.key, Seqno(watermark));
        if read == write.value {
            continue;
        }
        let overwritten = records
            .certified
            .range((Excluded(seqno), Included(watermark)))
            .filter(|(_, certified)| certified.verdict.is_commit())
            .any(|(_, certified)| {
                certified
                    .txn
                    .writes
                    .iter()
                    .any(|later| later.key == write.key && later.value == read)
            });
        if !overwritten {
            return Err(Failure {
                property: "read_your_writes",
                detail: format!(
                    "node {node}: {} committed at seqno {seqno} wrote {:?} = {:?}, but at watermark {watermark} the member reads {read:?}",
                    txn.id,
                    String::from_utf8_lossy(&write.key),
                    write.value
                ),
            });
        }
    }
    Ok(())
}
