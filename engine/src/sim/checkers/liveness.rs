//! Liveness: after healing, every live member is in normal status, all of them reached
//! the same seqno, and every proposal a live member made in its current life is
//! delivered.

use tutti_net::gcs::{Incarnation, MemberId, Seqno};

use super::{Checkers, Failure};

/// The state of one live member at the end of healing.
pub(in crate::sim) struct LiveStream {
    /// Node index.
    pub(in crate::sim) node: usize,
    /// Its member id and current incarnation.
    pub(in crate::sim) member: MemberId,
    pub(in crate::sim) incarnation: Incarnation,
    /// Whether it is in normal status and ONLINE.
    pub(in crate::sim) online: bool,
    /// Its status and state, for the report.
    pub(in crate::sim) state: String,
    /// Its delivered seqno.
    pub(in crate::sim) delivered: Seqno,
    /// Its life (delivery stream) number.
    pub(in crate::sim) life: u64,
}

pub(super) fn check(checkers: &Checkers, live: &[LiveStream]) -> Result<(), Failure> {
    let fail = |detail: String| {
        Err(Failure {
            property: "liveness",
            detail,
        })
    };
    if live.is_empty() {
        return fail("no live member at the end of healing".to_string());
    }
    for stream in live {
        if !stream.online {
            return fail(format!(
                "node {} ({}) is not ONLINE in normal status after healing: {}",
                stream.node, stream.member, stream.state
            ));
        }
    }
    let length = live[0].delivered;
    if let Some(other) = live.iter().find(|stream| stream.delivered != length) {
        return fail(format!(
            "members did not converge: node {} delivered {length}, node {} delivered {}",
            live[0].node, other.node, other.delivered
        ));
    }
    for &(origin, incarnation, counter) in checkers.proposed.keys() {
        let Some(owner) = live
            .iter()
            .find(|stream| stream.member == origin && stream.incarnation == incarnation)
        else {
            continue;
        };
        if !checkers
            .ordered_at
            .contains_key(&(origin, incarnation, counter))
        {
            return fail(format!(
                "proposal {counter} of node {} (life {}) was never delivered",
                owner.node, owner.life
            ));
        }
    }
    Ok(())
}
