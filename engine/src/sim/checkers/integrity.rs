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
    let payload = proposal.payload.to_vec();
    let id = proposal.id;
    match checkers.proposed.get(&payload) {
        None => {
            return fail(format!(
                "seqno {seqno}: payload never proposed: {payload:?}"
            ))
        }
        Some(&(origin, incarnation, counter))
            if (origin, incarnation, counter) != (id.origin, id.incarnation, id.counter) =>
        {
            return fail(format!("seqno {seqno}: payload proposed as {origin}/{incarnation:?}/{counter}, delivered as {id:?}"));
        }
        Some(_) => {}
    }
    match checkers.payload_seqno.get(&payload) {
        Some(at) if *at != seqno => {
            return fail(format!(
                "proposal {id:?} ordered twice: seqno {at} and {seqno}"
            ))
        }
        Some(_) => {}
        None => {
            checkers.payload_seqno.insert(payload, seqno);
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
