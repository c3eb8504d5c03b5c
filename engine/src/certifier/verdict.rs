//! Verdicts, and the bounded memory of recent verdicts that `local_deps` are checked
//! against.
//!
//! The window remembers the outcome of each of the last [`VERDICT_WINDOW_SEQNOS`] seqnos
//! (committed, aborted, or nothing certified there: a seqno that carried a non-transaction
//! entry). A dependency inside the window is answered exactly, even below the gc seqno: an
//! entry below gc may have aborted, and treating it as committed would let a transaction
//! commit a value it read from an aborted one. A dependency older than the window is
//! refused ([`AbortReason::DependencyForgotten`]); the window is measured in seqnos, so
//! the refusal is the same on every member. This module must never look at keys.

use std::fmt;

use tutti_storage::Seqno;

use super::constants::VERDICT_WINDOW_SEQNOS;
use super::request::KeyHash;

/// The certifier's decision for one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The transaction commits; its writes are now the keys' last writers.
    Commit {
        /// The latest earlier transaction it must be applied after: the highest previous
        /// last writer of its written and checked keys, never below the gc seqno (GR's
        /// `last_committed` under WRITESET dependency tracking).
        depends_on: Seqno,
    },
    /// The transaction aborts, for this reason.
    Abort(AbortReason),
}

impl Verdict {
    /// Whether the verdict is a commit.
    pub fn is_commit(&self) -> bool {
        matches!(self, Verdict::Commit { .. })
    }
}

/// Why a transaction aborts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AbortReason {
    /// The snapshot, or a checked key's observation, is older than the gc seqno: writes
    /// after it may already be forgotten, so it cannot be validated.
    SnapshotTooOld {
        /// The oldest of the snapshot and the observations.
        observed_at: Seqno,
        /// The gc seqno at certification.
        gc_seqno: Seqno,
    },
    /// A local dependency aborted, so what this transaction read from it never happened.
    DependencyAborted {
        /// The dependency.
        dependency: Seqno,
    },
    /// A local dependency was never certified as a transaction before this one.
    DependencyNotCertified {
        /// The dependency.
        dependency: Seqno,
    },
    /// A local dependency is older than the verdict window, so its verdict is forgotten.
    DependencyForgotten {
        /// The dependency.
        dependency: Seqno,
    },
    /// A checked key was written after the transaction observed it, by a transaction that
    /// is not one of its committed local dependencies: the first committer won.
    Conflict {
        /// The first conflicting key, in the order of the checked keys.
        key: KeyHash,
        /// The key's last writer, the transaction that won.
        winner_seqno: Seqno,
    },
    /// An index shard has no room for the transaction's new entries.
    IndexFull {
        /// The lowest-numbered shard without room (shards are checked in ascending
        /// order, so every member names the same one).
        shard: u32,
    },
    /// The request checks or writes more keys, or lists more dependencies, than the
    /// certifier's limits (`REQUEST_KEYS_MAX`, `LOCAL_DEPS_MAX`).
    TooLarge,
    /// The origin was not writable at the transaction's seqno (a secondary in
    /// single-primary mode, a deposed primary, a member newer than the group's lowest
    /// version in multi-primary mode): decided by `engine::roles`, before any key.
    NotWritable,
}

impl fmt::Display for AbortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbortReason::SnapshotTooOld {
                observed_at,
                gc_seqno,
            } => {
                write!(
                    f,
                    "snapshot {observed_at} is older than gc seqno {gc_seqno}"
                )
            }
            AbortReason::DependencyAborted { dependency } => {
                write!(f, "local dependency {dependency} aborted")
            }
            AbortReason::DependencyNotCertified { dependency } => {
                write!(f, "local dependency {dependency} was not certified")
            }
            AbortReason::DependencyForgotten { dependency } => {
                write!(
                    f,
                    "local dependency {dependency} is older than the verdict window"
                )
            }
            AbortReason::Conflict { key, winner_seqno } => {
                write!(
                    f,
                    "key {key} was written by {winner_seqno} after it was read"
                )
            }
            AbortReason::IndexFull { shard } => write!(f, "index shard {shard} is full"),
            AbortReason::TooLarge => write!(f, "too many keys or dependencies"),
            AbortReason::NotWritable => {
                write!(
                    f,
                    "its origin was not writable at its position in the order"
                )
            }
        }
    }
}

/// What the window remembers of one seqno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remembered {
    /// No transaction was certified at this seqno (yet), or it is beyond the window.
    Unknown = 0,
    /// The transaction at this seqno committed.
    Committed = 1,
    /// The transaction at this seqno aborted.
    Aborted = 2,
}

impl Remembered {
    pub(crate) fn from_byte(byte: u8) -> Option<Remembered> {
        match byte {
            0 => Some(Remembered::Unknown),
            1 => Some(Remembered::Committed),
            2 => Some(Remembered::Aborted),
            _ => None,
        }
    }
}

/// The last [`VERDICT_WINDOW_SEQNOS`] seqnos' outcomes, in a ring indexed by seqno.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerdictWindow {
    ring: Box<[Remembered]>,
    /// The highest seqno certified: the ring holds (top - window, top].
    top: Seqno,
}

impl Default for VerdictWindow {
    fn default() -> Self {
        VerdictWindow::new()
    }
}

impl VerdictWindow {
    /// An empty window.
    pub fn new() -> VerdictWindow {
        VerdictWindow {
            ring: vec![Remembered::Unknown; VERDICT_WINDOW_SEQNOS as usize].into_boxed_slice(),
            top: Seqno::ZERO,
        }
    }

    /// The highest seqno certified.
    pub fn top(&self) -> Seqno {
        self.top
    }

    /// Whether `dependency` is too old for the window, seen from transaction `seqno`.
    pub fn forgotten(seqno: Seqno, dependency: Seqno) -> bool {
        dependency.0 + VERDICT_WINDOW_SEQNOS <= seqno.0
    }

    /// The outcome of `seqno`, if the window still holds it.
    pub fn get(&self, seqno: Seqno) -> Remembered {
        if seqno.0 == 0 || seqno > self.top || seqno.0 + VERDICT_WINDOW_SEQNOS <= self.top.0 {
            return Remembered::Unknown;
        }
        self.ring[Self::position(seqno)]
    }

    /// Records the outcome of `seqno`, which is above every seqno recorded before. The
    /// seqnos skipped since the last one are cleared: nothing was certified there.
    pub fn record(&mut self, seqno: Seqno, outcome: Remembered) {
        assert!(seqno > self.top, "verdicts are recorded in seqno order");
        let gap = (seqno.0 - self.top.0 - 1).min(VERDICT_WINDOW_SEQNOS);
        for skipped in 1..=gap {
            self.ring[Self::position(Seqno(self.top.0 + skipped))] = Remembered::Unknown;
        }
        self.ring[Self::position(seqno)] = outcome;
        self.top = seqno;
    }

    /// The window as bytes: one per seqno, for seqnos (top - window, top] in order.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let first = self.top.0.saturating_sub(VERDICT_WINDOW_SEQNOS - 1).max(1);
        out.extend((first..=self.top.0).map(|s| self.get(Seqno(s)) as u8));
        // Pad so the encoding always has the window's length.
        let written = self.top.0 + 1 - first;
        out.extend(std::iter::repeat_n(
            0,
            (VERDICT_WINDOW_SEQNOS - written) as usize,
        ));
    }

    /// The inverse of [`VerdictWindow::encode`]; `None` if a byte is not an outcome.
    pub(crate) fn decode(top: Seqno, bytes: &[u8]) -> Option<VerdictWindow> {
        assert_eq!(bytes.len() as u64, VERDICT_WINDOW_SEQNOS);
        let mut window = VerdictWindow::new();
        window.top = top;
        let first = top.0.saturating_sub(VERDICT_WINDOW_SEQNOS - 1).max(1);
        for (offset, &byte) in bytes.iter().enumerate() {
            let outcome = Remembered::from_byte(byte)?;
            let seqno = first + offset as u64;
            if seqno <= top.0 {
                window.ring[Self::position(Seqno(seqno))] = outcome;
            } else if outcome != Remembered::Unknown {
                return None;
            }
        }
        Some(window)
    }

    fn position(seqno: Seqno) -> usize {
        (seqno.0 & (VERDICT_WINDOW_SEQNOS - 1)) as usize
    }
}
