//! Parallel apply equals serial apply: the store that committed transactions reach out of
//! order, after a lag, shows at the watermark exactly what applying them in seqno order
//! shows.

use tutti_storage::store::Store;
use tutti_storage::Seqno;

use super::Failure;

pub(super) fn check(
    node: usize,
    life: u64,
    watermark: u64,
    store: &Store,
    serial: &Store,
) -> Result<(), Failure> {
    let (parallel_digest, serial_digest) = (
        store.digest(Seqno(watermark)),
        serial.digest(Seqno(watermark)),
    );
    if parallel_digest != serial_digest {
        return Err(Failure {
            property: "parallel_apply",
            detail: format!(
                "node {node} life {life} at watermark {watermark}: digest {parallel_digest:016x} after lagging apply, {serial_digest:016x} after serial apply"
            ),
        });
    }
    Ok(())
}
