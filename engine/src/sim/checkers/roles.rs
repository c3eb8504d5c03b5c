//! Roles: every member life that handled a seqno left the group in the same mode with
//! the same primary there (the election needs no messages, so members must agree by
//! computation alone), and no transaction commits at a seqno where its origin was not
//! writable: in single-primary mode only the primary of the seqno before it commits, so
//! a secondary or a deposed primary never does.

use std::collections::BTreeMap;

use tutti_net::gcs::MemberId;

use crate::roles::{Mode, Roles};
use crate::txn::TxnMessage;

use super::{Failure, StreamId};

/// (mode, primary) after each seqno, as the first member life to handle it saw them.
pub(super) type RoleHistory = BTreeMap<u64, (Option<Mode>, Option<MemberId>)>;

/// Records the roles `stream` holds after `seqno`.
pub(super) fn check_agreement(
    history: &mut RoleHistory,
    stream: StreamId,
    seqno: u64,
    roles: &Roles,
) -> Result<(), Failure> {
    let now = (roles.mode(), roles.primary());
    match history.get(&seqno) {
        Some(first) if *first != now => Err(Failure {
            property: "role_agreement",
            detail: format!(
                "after seqno {seqno}: node {} life {} holds mode {:?} primary {:?}, another member life held {first:?}",
                stream.0, stream.1, now.0, now.1
            ),
        }),
        Some(_) => Ok(()),
        None => {
            history.insert(seqno, now);
            Ok(())
        }
    }
}

/// A commit at `seqno` by an origin the roles before it did not let write.
pub(super) fn check_commit(
    history: &RoleHistory,
    seqno: u64,
    txn: &TxnMessage,
) -> Result<(), Failure> {
    let before = history
        .range(..seqno)
        .next_back()
        .map_or((None, None), |(_, roles)| *roles);
    let origin = txn.id.origin;
    let allowed = match before {
        (Some(Mode::SinglePrimary), primary) => primary == Some(origin),
        (Some(Mode::MultiPrimary), _) => true,
        (None, _) => false,
    };
    if allowed {
        return Ok(());
    }
    Err(Failure {
        property: "single_primary_writes",
        detail: format!(
            "seqno {seqno}: {} committed, but the roles before it were {before:?}",
            txn.id
        ),
    })
}
