//! Consistency levels (DESIGN.md section 7), as Group Replication names them.
//!
//! A level says what a transaction waits for before it runs and after it commits:
//!
//! | level | waits |
//! |---|---|
//! | `EVENTUAL` | nothing |
//! | `BEFORE_ON_PRIMARY_FAILOVER` | on a newly elected primary, until everything ordered before the election is applied here |
//! | `BEFORE` | a sync point through the order, then until everything up to it is applied here |
//! | `AFTER` | a committed read-write transaction returns once every member of the configuration applied it |
//! | `BEFORE_AND_AFTER` | both |
//!
//! Every level but `EVENTUAL` includes `BEFORE_ON_PRIMARY_FAILOVER`'s guarantee. The waits
//! themselves live with the member (`member`); this module owns the names and
//! [`AfterWaits`], the deterministic bookkeeping of AFTER's acknowledgements:
//!
//! ```text
//!  Txn (flag `after`) committed at s ─► wait s: every member of the configuration but the origin
//!  Applied { member, seqno: w }     ─► member leaves every wait at or below w
//!  Reconfigure                      ─► members that left leave every wait (dropped, not acked);
//!                                      waits whose origin left end
//!  a wait with nobody left          ─► AfterDone (the origin's session returns)
//! ```
//!
//! Acknowledgements are ordered entries (`EngineMessage::Applied`, a member's applied
//! watermark), so every member computes the same waits at the same seqnos; the origin's
//! session is the one that waits. A member acknowledges with its watermark, so one
//! acknowledgement covers every AFTER transaction up to it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use tutti_net::gcs::MemberId;
use tutti_storage::Seqno;

use crate::txn::TxnId;

/// A consistency level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Consistency {
    /// No wait.
    Eventual,
    /// A newly elected primary holds transactions until it has applied the backlog of
    /// the old one (Group Replication's default since 8.0.14).
    #[default]
    BeforeOnPrimaryFailover,
    /// Every transaction first waits until everything ordered before it is applied here.
    Before,
    /// A committed read-write transaction returns once every member applied it.
    After,
    /// [`Consistency::Before`] and [`Consistency::After`].
    BeforeAndAfter,
}

impl Consistency {
    /// Whether a newly elected primary holds this level's transactions.
    pub fn holds_on_failover(self) -> bool {
        !matches!(self, Consistency::Eventual)
    }

    /// Whether a transaction first passes a sync point.
    pub fn syncs_before(self) -> bool {
        matches!(self, Consistency::Before | Consistency::BeforeAndAfter)
    }

    /// Whether a committed read-write transaction waits until every member applied it.
    pub fn waits_after(self) -> bool {
        matches!(self, Consistency::After | Consistency::BeforeAndAfter)
    }

    /// Every level, weakest first.
    pub const ALL: [Consistency; 5] = [
        Consistency::Eventual,
        Consistency::BeforeOnPrimaryFailover,
        Consistency::Before,
        Consistency::After,
        Consistency::BeforeAndAfter,
    ];
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Consistency::Eventual => "EVENTUAL",
            Consistency::BeforeOnPrimaryFailover => "BEFORE_ON_PRIMARY_FAILOVER",
            Consistency::Before => "BEFORE",
            Consistency::After => "AFTER",
            Consistency::BeforeAndAfter => "BEFORE_AND_AFTER",
        })
    }
}

impl FromStr for Consistency {
    type Err = String;

    fn from_str(text: &str) -> Result<Consistency, String> {
        match text.trim().to_ascii_uppercase().as_str() {
            "EVENTUAL" => Ok(Consistency::Eventual),
            "BEFORE_ON_PRIMARY_FAILOVER" => Ok(Consistency::BeforeOnPrimaryFailover),
            "BEFORE" => Ok(Consistency::Before),
            "AFTER" => Ok(Consistency::After),
            "BEFORE_AND_AFTER" => Ok(Consistency::BeforeAndAfter),
            _ => Err(format!(
                "{text:?} is not a consistency level (one of {})",
                Consistency::ALL.map(|level| level.to_string()).join(", ")
            )),
        }
    }
}

/// An AFTER transaction whose wait ended: every member it waited for acknowledged it,
/// left the configuration, or its origin left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfterDone {
    /// Where it committed.
    pub seqno: Seqno,
    /// The transaction.
    pub txn: TxnId,
    /// Members that acknowledged it.
    pub acked: Vec<MemberId>,
    /// Members dropped from the wait because they left before acknowledging.
    pub dropped: Vec<MemberId>,
}

#[derive(Clone, Debug)]
struct AfterWait {
    txn: TxnId,
    waiting: BTreeSet<MemberId>,
    acked: Vec<MemberId>,
    dropped: Vec<MemberId>,
}

impl AfterWait {
    fn done(self, seqno: Seqno) -> AfterDone {
        AfterDone {
            seqno,
            txn: self.txn,
            acked: self.acked,
            dropped: self.dropped,
        }
    }
}

/// The open waits of AFTER transactions, by commit seqno. Driven by delivered entries
/// only, so it is the same on every member at every seqno.
#[derive(Clone, Debug, Default)]
pub struct AfterWaits {
    waits: BTreeMap<Seqno, AfterWait>,
}

impl AfterWaits {
    /// No open wait.
    pub fn new() -> AfterWaits {
        AfterWaits::default()
    }

    /// The AFTER transaction `txn` committed at `seqno` while `members` formed the
    /// configuration: it waits for every one of them but its origin. A wait with nobody
    /// to wait for ends at once.
    pub fn on_commit(
        &mut self,
        seqno: Seqno,
        txn: TxnId,
        members: impl IntoIterator<Item = MemberId>,
    ) -> Option<AfterDone> {
        let wait = AfterWait {
            txn,
            waiting: members
                .into_iter()
                .filter(|&member| member != txn.origin)
                .collect(),
            acked: Vec::new(),
            dropped: Vec::new(),
        };
        if wait.waiting.is_empty() {
            return Some(wait.done(seqno));
        }
        self.waits.insert(seqno, wait);
        None
    }

    /// `member` applied everything up to `applied`: it leaves every wait at or below.
    pub fn on_applied(&mut self, member: MemberId, applied: Seqno) -> Vec<AfterDone> {
        let mut done = Vec::new();
        let covered: Vec<Seqno> = self.waits.range(..=applied).map(|(&at, _)| at).collect();
        for seqno in covered {
            let wait = self.waits.get_mut(&seqno).expect("collected above");
            if wait.waiting.remove(&member) {
                wait.acked.push(member);
            }
            if wait.waiting.is_empty() {
                let wait = self.waits.remove(&seqno).expect("collected above");
                done.push(wait.done(seqno));
            }
        }
        done
    }

    /// The configuration is now `members`: those that left are dropped from every wait,
    /// and the waits of transactions whose origin left end (nobody returns them).
    pub fn on_members(&mut self, members: &[MemberId]) -> Vec<AfterDone> {
        let present: BTreeSet<MemberId> = members.iter().copied().collect();
        let mut done = Vec::new();
        let seqnos: Vec<Seqno> = self.waits.keys().copied().collect();
        for seqno in seqnos {
            let wait = self.waits.get_mut(&seqno).expect("listed above");
            let left: Vec<MemberId> = wait.waiting.difference(&present).copied().collect();
            for member in left {
                wait.waiting.remove(&member);
                wait.dropped.push(member);
            }
            if wait.waiting.is_empty() || !present.contains(&wait.txn.origin) {
                let wait = self.waits.remove(&seqno).expect("listed above");
                done.push(wait.done(seqno));
            }
        }
        done
    }

    /// Open waits.
    pub fn len(&self) -> usize {
        self.waits.len()
    }

    /// Whether no wait is open.
    pub fn is_empty(&self) -> bool {
        self.waits.is_empty()
    }

    /// The members the wait of the transaction at `seqno` still waits for.
    pub fn waiting_for(&self, seqno: Seqno) -> Vec<MemberId> {
        self.waits
            .get(&seqno)
            .map(|wait| wait.waiting.iter().copied().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_in_any_case_and_round_trip() {
        for level in Consistency::ALL {
            assert_eq!(level.to_string().parse::<Consistency>(), Ok(level));
            assert_eq!(
                level.to_string().to_lowercase().parse::<Consistency>(),
                Ok(level)
            );
        }
        assert_eq!(Consistency::default(), Consistency::BeforeOnPrimaryFailover);
    }

    #[test]
    fn unknown_levels_are_refused_by_name() {
        let error = "SOMETIMES".parse::<Consistency>().unwrap_err();
        assert!(
            error.contains("SOMETIMES") && error.contains("BEFORE_AND_AFTER"),
            "{error}"
        );
        assert!(
            error.contains("EVENTUAL, BEFORE_ON_PRIMARY_FAILOVER, BEFORE, AFTER, BEFORE_AND_AFTER"),
            "{error}"
        );
    }

    #[test]
    fn what_each_level_waits_for() {
        let waits: Vec<(bool, bool, bool)> = Consistency::ALL
            .iter()
            .map(|level| {
                (
                    level.holds_on_failover(),
                    level.syncs_before(),
                    level.waits_after(),
                )
            })
            .collect();
        assert_eq!(
            waits,
            vec![
                (false, false, false),
                (true, false, false),
                (true, true, false),
                (true, false, true),
                (true, true, true),
            ]
        );
    }

    fn txn(origin: u128, number: u64) -> TxnId {
        TxnId {
            origin: MemberId(origin),
            incarnation: 1,
            number,
        }
    }

    const M: [MemberId; 3] = [MemberId(1), MemberId(2), MemberId(3)];

    #[test]
    fn an_after_wait_ends_once_every_other_member_acknowledged() {
        let mut waits = AfterWaits::new();
        assert_eq!(waits.on_commit(Seqno(5), txn(1, 1), M), None);
        assert_eq!(waits.on_commit(Seqno(7), txn(1, 2), M), None);
        assert_eq!(waits.waiting_for(Seqno(5)), vec![MemberId(2), MemberId(3)]);
        // An acknowledgement below a wait does not count for it.
        assert!(waits.on_applied(MemberId(2), Seqno(4)).is_empty());
        assert!(waits.on_applied(MemberId(2), Seqno(6)).is_empty());
        let done = waits.on_applied(MemberId(3), Seqno(9));
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].seqno, Seqno(5));
        assert_eq!(done[0].acked, vec![MemberId(2), MemberId(3)]);
        assert!(done[0].dropped.is_empty());
        assert_eq!(waits.waiting_for(Seqno(7)), vec![MemberId(2)]);
        let done = waits.on_applied(MemberId(2), Seqno(7));
        assert_eq!(done[0].seqno, Seqno(7));
        assert!(waits.is_empty());
    }

    #[test]
    fn members_that_leave_are_dropped_and_an_origin_alone_does_not_wait() {
        let mut waits = AfterWaits::new();
        let alone = waits.on_commit(Seqno(3), txn(1, 1), [MemberId(1)]).unwrap();
        assert!(alone.acked.is_empty() && alone.dropped.is_empty());
        assert_eq!(waits.on_commit(Seqno(4), txn(1, 2), M), None);
        assert!(waits.on_applied(MemberId(2), Seqno(4)).is_empty());
        let done = waits.on_members(&[MemberId(1), MemberId(2)]);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].acked, vec![MemberId(2)]);
        assert_eq!(done[0].dropped, vec![MemberId(3)]);
        // The wait of an origin that left ends: nobody is there to return it.
        assert_eq!(waits.on_commit(Seqno(6), txn(2, 1), M), None);
        let done = waits.on_members(&[MemberId(1), MemberId(3)]);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].txn, txn(2, 1));
        assert_eq!(waits.len(), 0);
    }
}
