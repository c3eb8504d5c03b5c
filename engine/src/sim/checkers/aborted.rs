//! No transaction reported aborted is ever committed: a client told "aborted" (after its
//! retries, or because the group refused the proposal) must never find it in the final
//! order as committed. A transaction whose outcome was reported unknown may go either way.

use super::transactions::TxnRecords;
use super::Failure;

pub(super) fn check(records: &TxnRecords) -> Result<(), Failure> {
    for id in &records.reported_aborted {
        if let Some(seqno) = records.committed.get(id) {
            return Err(Failure {
                property: "reported_abort",
                detail: format!("{id} was reported aborted, but it committed at seqno {seqno}"),
            });
        }
    }
    Ok(())
}
