//! Certification determinism: every member life that certified a seqno reached the same
//! verdict for it (commit with the same `depends_on`, or abort for the same reason).

use std::sync::Arc;

use crate::certifier::Verdict;
use crate::txn::TxnMessage;

use super::transactions::{Certified, TxnRecords};
use super::{Failure, StreamId};

pub(super) fn check(
    records: &mut TxnRecords,
    stream: StreamId,
    seqno: u64,
    txn: &Arc<TxnMessage>,
    verdict: Verdict,
) -> Result<(), Failure> {
    if let Some(first) = records.certified.get(&seqno) {
        if first.txn.id != txn.id || first.verdict != verdict {
            return Err(Failure {
                property: "certification_determinism",
                detail: format!(
                    "seqno {seqno}: node {} life {} certified {} as {verdict:?}, another member life certified {} as {:?}",
                    stream.0, stream.1, txn.id, first.txn.id, first.verdict
                ),
            });
        }
        return Ok(());
    }
    if verdict.is_commit() {
        records.committed.insert(txn.id, seqno);
    }
    records.certified.insert(
        seqno,
        Certified {
            txn: Arc::clone(txn),
            verdict,
        },
    );
    Ok(())
}
