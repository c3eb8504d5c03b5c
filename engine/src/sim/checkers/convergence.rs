//! Convergence: after healing, every ONLINE member applied everything it delivered,
//! answered every client, and holds the same store (equal digests at the common final
//! seqno).

use tutti_storage::Seqno;

use super::transactions::TxnMember;
use super::Failure;

pub(super) fn check(members: &[TxnMember<'_>]) -> Result<(), Failure> {
    let fail = |detail: String| {
        Err(Failure {
            property: "convergence",
            detail,
        })
    };
    let online: Vec<&TxnMember<'_>> = members.iter().filter(|member| member.online).collect();
    for member in &online {
        if member.watermark != member.delivered {
            return fail(format!(
                "node {}: watermark {} behind its delivered seqno {} after healing",
                member.node, member.watermark, member.delivered
            ));
        }
        if member.busy_clients > 0 {
            return fail(format!(
                "node {}: {} clients still wait for an answer after healing",
                member.node, member.busy_clients
            ));
        }
    }
    let Some(common) = online.iter().map(|member| member.watermark).min() else {
        return Ok(());
    };
    let first = online[0];
    let digest = first.store.digest(Seqno(common));
    for member in &online[1..] {
        let other = member.store.digest(Seqno(common));
        if other != digest {
            return fail(format!(
                "at seqno {common}: node {} has digest {digest:016x}, node {} has {other:016x}",
                first.node, member.node
            ));
        }
    }
    Ok(())
}
