//! The low-watermark table and the gc seqno it yields.
//!
//! Each member periodically proposes `LowWatermark{member, seqno}` (the lowest of its
//! watermark and its oldest open snapshot) through the total order; the engine calls
//! [`LowWatermarks::on_low_watermark`] at that message's position in the order, and
//! [`LowWatermarks::set_members`] at each change of the ONLINE set. So every member sees
//! the same calls in the same order, and computes the same gc seqno.
//!
//! Rules (deterministic, and the gc seqno is monotonic):
//! - `gc_seqno = max(gc_seqno, min over ONLINE members of their low watermark)`.
//! - A member that joined the ONLINE set and has not reported yet has low watermark 0:
//!   it holds gc where it is until its first report (a joiner counts from its
//!   `MemberOnline`). A member's reports only raise its own low watermark.
//! - A report from a member that is not ONLINE is ignored (a recovering member reports
//!   again once online); a member that leaves the set is forgotten.
//!
//! This module owns the table only; it must never touch the index (the certifier applies
//! the new gc seqno to it).

use std::collections::BTreeMap;

use thiserror::Error;
use tutti_net::gcs::MemberId;
use tutti_storage::Seqno;

use super::constants::MEMBERS_MAX;

/// The ONLINE set is larger than the table holds.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("{members} online members is over the certifier's limit of {max} (MEMBERS_MAX)")]
pub struct TooManyMembers {
    /// How many members were given.
    pub members: usize,
    /// The limit, `MEMBERS_MAX`.
    pub max: usize,
}

/// ONLINE members' low watermarks and the gc seqno derived from them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LowWatermarks {
    /// Ordered by member id, so encoding and iteration are the same on every member.
    online: BTreeMap<MemberId, Seqno>,
    gc_seqno: Seqno,
}

impl LowWatermarks {
    /// An empty table: no members, gc seqno 0.
    pub fn new() -> LowWatermarks {
        LowWatermarks::default()
    }

    /// Rebuilds a table from decoded state. The caller checked the member limit.
    pub(crate) fn from_parts(online: BTreeMap<MemberId, Seqno>, gc_seqno: Seqno) -> Self {
        assert!(online.len() <= MEMBERS_MAX);
        LowWatermarks { online, gc_seqno }
    }

    /// The current gc seqno: entries at or below it are dead.
    pub fn gc_seqno(&self) -> Seqno {
        self.gc_seqno
    }

    /// Each ONLINE member and its low watermark, in member order.
    pub fn members(&self) -> impl Iterator<Item = (MemberId, Seqno)> + '_ {
        self.online.iter().map(|(&member, &seqno)| (member, seqno))
    }

    /// A member's low watermark was ordered. Returns the gc seqno after it.
    pub fn on_low_watermark(&mut self, member: MemberId, seqno: Seqno) -> Seqno {
        if let Some(low) = self.online.get_mut(&member) {
            *low = (*low).max(seqno);
        }
        self.recompute()
    }

    /// The ONLINE set changed to `online` (duplicates count once). Members that stay keep
    /// their low watermark, new ones start at 0. Returns the gc seqno after it.
    pub fn set_members(&mut self, online: &[MemberId]) -> Result<Seqno, TooManyMembers> {
        let mut next = BTreeMap::new();
        for &member in online {
            let low = self.online.get(&member).copied().unwrap_or(Seqno::ZERO);
            next.insert(member, low);
        }
        if next.len() > MEMBERS_MAX {
            return Err(TooManyMembers {
                members: next.len(),
                max: MEMBERS_MAX,
            });
        }
        self.online = next;
        Ok(self.recompute())
    }

    fn recompute(&mut self) -> Seqno {
        // An empty set has no minimum: gc stays where it is.
        if let Some(min) = self.online.values().min() {
            self.gc_seqno = self.gc_seqno.max(*min);
        }
        self.gc_seqno
    }
}
