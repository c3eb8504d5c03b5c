//! Agreement: no two members deliver different entries at the same seqno.

use tutti_net::gcs::{Entry, Seqno};

use super::{Checkers, Failure};

pub(super) fn check(checkers: &mut Checkers, seqno: Seqno, entry: &Entry) -> Result<(), Failure> {
    match checkers.decided.get(&seqno) {
        Some(decided) if decided != entry => Err(Failure {
            property: "agreement",
            detail: format!(
                "seqno {seqno}: delivered {:?} here but {:?} elsewhere",
                entry.body, decided.body
            ),
        }),
        Some(_) => Ok(()),
        None => {
            checkers.decided.insert(seqno, entry.clone());
            Ok(())
        }
    }
}
