//! Identities and quantities of the group communication core, as newtypes.
//!
//! Every identity the protocol reasons about gets its own type so that a view number
//! can never be passed where a sequence number is expected. This module owns only plain
//! values; it must never hold protocol state.

use std::fmt;
use std::time::Duration;

/// A member's identity: the server UUID, as a 128-bit number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(pub u128);

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// A position in the total order. Seqno 0 means "nothing": the first entry is 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seqno(pub u64);

impl Seqno {
    /// The position before the first entry.
    pub const ZERO: Seqno = Seqno(0);

    /// The next position.
    #[must_use]
    pub fn next(self) -> Seqno {
        Seqno(self.0 + 1)
    }

    /// The previous position, saturating at zero.
    #[must_use]
    pub fn prev(self) -> Seqno {
        Seqno(self.0.saturating_sub(1))
    }
}

impl fmt::Display for Seqno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A view number. Views only grow; the sequencer of a view is a function of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ViewId(pub u64);

impl ViewId {
    /// The next view.
    #[must_use]
    pub fn next(self) -> ViewId {
        ViewId(self.0 + 1)
    }
}

impl fmt::Display for ViewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A member's restart counter. Persisted by the shell, incremented at each start, and
/// carried by every message so that a message from before a crash is never taken for a
/// current one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Incarnation(pub u64);

impl Incarnation {
    /// The next incarnation.
    #[must_use]
    pub fn next(self) -> Incarnation {
        Incarnation(self.0 + 1)
    }
}

/// The identity of one proposal: who proposed it, in which life, and its place in that
/// life's sequence of proposals. Counters start at 1 in every incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProposalId {
    /// The member that proposed it.
    pub origin: MemberId,
    /// The origin's incarnation when it proposed it.
    pub incarnation: Incarnation,
    /// The per-origin, per-incarnation counter, starting at 1, without gaps.
    pub counter: u64,
}

/// A point in time, in microseconds since an epoch the shell chooses. The core never
/// reads a clock: every input carries `now`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub u64);

impl Time {
    /// `self + duration`, saturating.
    #[must_use]
    pub fn plus(self, duration: Duration) -> Time {
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        Time(self.0.saturating_add(micros))
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    #[must_use]
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

/// How a member shows in the members table, as Group Replication shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemberState {
    /// In the configuration, reachable, caught up.
    Online,
    /// Joining or catching up: not yet counted as a full member by its own judgement.
    Recovering,
    /// Suspected: nothing heard from it within `suspicion_timeout`.
    Unreachable,
    /// Stopped participating after an unrecoverable condition (lost the majority for too
    /// long, expelled).
    Error,
    /// Not part of the group (left, or removed).
    Offline,
}
