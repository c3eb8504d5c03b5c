//! Every acknowledged commit is present: each (transaction, seqno) a client was told
//! committed is a committed transaction at that seqno in the final order, on every ONLINE
//! member.

use super::transactions::{TxnMember, TxnRecords};
use super::Failure;

pub(super) fn check(records: &TxnRecords, members: &[TxnMember<'_>]) -> Result<(), Failure> {
    let fail = |detail: String| {
        Err(Failure {
            property: "acknowledged_commit",
            detail,
        })
    };
    for &(id, seqno) in &records.acknowledged {
        match records.certified.get(&seqno) {
            Some(certified) if certified.txn.id == id && certified.verdict.is_commit() => {}
            Some(certified) => {
                return fail(format!(
                "{id} was acknowledged committed at seqno {seqno}, where the order holds {} ({:?})",
                certified.txn.id, certified.verdict
            ))
            }
            None => {
                return fail(format!(
                "{id} was acknowledged committed at seqno {seqno}, which certified no transaction"
            ))
            }
        }
        // Every ONLINE member certified the seqno (certification determinism compared
        // its verdict) and applied it.
        if let Some(member) = members
            .iter()
            .find(|member| member.online && member.watermark < seqno)
        {
            return fail(format!(
                "{id} was acknowledged committed at seqno {seqno}, but node {} only applied up to {}",
                member.node, member.watermark
            ));
        }
    }
    Ok(())
}
