//! Total order: every stream delivers seqnos 1, 2, 3, ... without gaps or repeats, so
//! with agreement every stream is a prefix of one sequence.

use tutti_net::gcs::Seqno;

use super::{Checkers, Failure, StreamId};

pub(super) fn check(
    checkers: &mut Checkers,
    stream: StreamId,
    seqno: Seqno,
) -> Result<(), Failure> {
    let last = checkers
        .stream_position
        .entry(stream)
        .or_insert(Seqno::ZERO);
    if seqno != last.next() {
        return Err(Failure {
            property: "total_order",
            detail: format!(
                "node {} life {} delivered seqno {seqno} after {last}",
                stream.0, stream.1
            ),
        });
    }
    *last = seqno;
    Ok(())
}
