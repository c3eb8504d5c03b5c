//! Identities and quantities shared by the log, the snapshot files and the store.

use std::fmt;

/// The position of an entry in the group's total order, and the version tag of every value
/// the entry's transaction wrote. Seqno 0 means "nothing": the first entry is seqno 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seqno(pub u64);

impl Seqno {
    /// The seqno before the first entry: an empty log's last seqno, an empty store's snapshot.
    pub const ZERO: Seqno = Seqno(0);

    /// The seqno that follows this one.
    #[must_use]
    pub fn next(self) -> Seqno {
        Seqno(self.0 + 1)
    }
}

impl fmt::Display for Seqno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The view (configuration epoch) in which an entry was written to the log. The log keeps
/// it so that a view change can compare logs by (last view, last seqno).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ViewNumber(pub u64);

impl fmt::Display for ViewNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
