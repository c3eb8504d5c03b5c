//! Integrity: only proposed entries are delivered, none is ordered twice, and one
//! origin's proposals are ordered in counter order without gaps.

use tutti_net::gcs::{Entry, EntryBody, Seqno};

use super::{Checkers, Failure, StreamId};

pub(super) fn check(
    checkers: &mut Checkers,
    stream: StreamId,
    seqno: Seqno,
    entry: &Entry,
) -> Result<(), Failure> {
    let EntryBody::Proposal(proposal) = &entry.body else {
        return Ok(());
    };
    let fail = |detail: String| {
        Err(Failure {
            property: "integrity",
            detail,
        })
    };
    let id = proposal.id;
    let key = (id.origin, id.incarnation, id.counter);
    match checkers.proposed.get(&key) {
        None => return fail(format!("seqno {seqno}: {id:?} was never proposed")),
        Some(payload) if payload[..] != proposal.payload[..] => {
            return fail(format!(
                "seqno {seqno}: {id:?} was proposed as {payload:?}, delivered as {:?}",
                &proposal.payload[..]
            ));
        }
        Some(_) => {}
    }
    match checkers.ordered_at.get(&key) {
        Some(at) if *at != seqno => {
            return fail(format!(
                "proposal {id:?} ordered twice: seqno {at} and {seqno}"
            ))
        }
        Some(_) => {}
        None => {
            checkers.ordered_at.insert(key, seqno);
        }
    }
    let origins = checkers.stream_origins.entry(stream).or_default();
    let last = origins.entry((id.origin, id.incarnation)).or_insert(0);
    if id.counter != *last + 1 {
        return fail(format!(
            "node {} life {}: proposal {id:?} delivered at seqno {seqno} after counter {last} of its origin",
            stream.0, stream.1
        ));
    }
    *last = id.counter;
    Ok(())
}
