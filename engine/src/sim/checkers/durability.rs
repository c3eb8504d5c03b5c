//! Durability: an entry delivered anywhere is never lost. After healing, the members'
//! common sequence must reach every seqno ever delivered (agreement already made the
//! entries equal).

use tutti_net::gcs::Seqno;

use super::{Checkers, Failure, LiveStream};

pub(super) fn check(checkers: &Checkers, live: &[LiveStream]) -> Result<(), Failure> {
    let highest_decided = checkers
        .decided
        .keys()
        .next_back()
        .copied()
        .unwrap_or(Seqno::ZERO);
    let final_length = live
        .iter()
        .map(|stream| stream.delivered)
        .max()
        .unwrap_or(Seqno::ZERO);
    if final_length < highest_decided {
        return Err(Failure {
            property: "durability",
            detail: format!("seqno {highest_decided} was delivered, but the healed group only reached {final_length}"),
        });
    }
    Ok(())
}
