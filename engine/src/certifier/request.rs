//! What the certifier is asked: one delivered transaction's keys, snapshot and
//! dependencies, as the certification input types.
//!
//! The session at the origin builds a [`CertificationRequest`] from the `TxnMessage` it
//! proposes; every member rebuilds the same request from the delivered entry. This module
//! owns only plain values and the rules that build the checked set for each isolation
//! level; it must never decide a verdict.

use std::fmt;

use tutti_net::gcs::MemberId;
use tutti_storage::Seqno;
use xxhash_rust::xxh3::xxh3_64;

/// The 64-bit xxh3 hash of a key: what write sets and the index hold instead of keys.
///
/// Two keys with the same hash are one key for certification: a collision can only cause
/// a spurious conflict, never a missed one (GR's write-set hashes have the same property).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyHash(pub u64);

impl KeyHash {
    /// The hash of `key`'s bytes.
    #[must_use]
    pub fn of(key: &[u8]) -> KeyHash {
        KeyHash(xxh3_64(key))
    }
}

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The isolation level a transaction asked for: it decides which keys are checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Isolation {
    /// GR's semantics and the embedding API's default: the written keys are checked at the
    /// snapshot, so of two concurrent writers of one key the first ordered wins.
    #[default]
    Snapshot,
    /// Read validation: the read keys are checked; blind writes never conflict.
    Serializable,
    /// A RESP command: it brings its own checked set (the keys the command read plus the
    /// `WATCH`ed keys, each observed when it was read or watched).
    Command,
}

/// One key certification checks, with the seqno the transaction observed it at: the
/// transaction saw every write of this key up to `observed_at` and none after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CheckedKey {
    /// The key's hash.
    pub key: KeyHash,
    /// The snapshot the key was read (or `WATCH`ed) at.
    pub observed_at: Seqno,
}

/// A delivered transaction, as certification sees it.
///
/// The certifier checks exactly `checked` and writes exactly `written`; `isolation` says
/// how `checked` was built and is kept for statistics and diagnostics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificationRequest {
    /// The transaction's position in the total order: the index records it for the keys
    /// written, and it names the transaction in later requests' `local_deps`.
    pub seqno: Seqno,
    /// The snapshot S the transaction read at: every seqno <= S was applied.
    pub snapshot: Seqno,
    /// How `checked` was built.
    pub isolation: Isolation,
    /// The keys whose last writer must not be later than their observation.
    pub checked: Vec<CheckedKey>,
    /// The keys the transaction writes (the write set).
    pub written: Vec<KeyHash>,
    /// Earlier transactions of the same origin this one read or overwrote through the
    /// origin's local overlay; each was ordered before this one.
    pub local_deps: Vec<Seqno>,
    /// The member that proposed the transaction.
    pub origin: MemberId,
}

impl CertificationRequest {
    /// A snapshot-isolation transaction: the written keys are checked, observed at the
    /// snapshot (first committer wins).
    #[must_use]
    pub fn snapshot(
        seqno: Seqno,
        snapshot: Seqno,
        written: Vec<KeyHash>,
        local_deps: Vec<Seqno>,
        origin: MemberId,
    ) -> CertificationRequest {
        let checked = observed_at(&written, snapshot);
        CertificationRequest {
            seqno,
            snapshot,
            isolation: Isolation::Snapshot,
            checked,
            written,
            local_deps,
            origin,
        }
    }

    /// A serializable transaction: the keys it read are checked, observed at the snapshot;
    /// the written keys are not (a blind write never conflicts).
    #[must_use]
    pub fn serializable(
        seqno: Seqno,
        snapshot: Seqno,
        read: &[KeyHash],
        written: Vec<KeyHash>,
        local_deps: Vec<Seqno>,
        origin: MemberId,
    ) -> CertificationRequest {
        CertificationRequest {
            seqno,
            snapshot,
            isolation: Isolation::Serializable,
            checked: observed_at(read, snapshot),
            written,
            local_deps,
            origin,
        }
    }

    /// A RESP command: the caller passes the checked set it built (read keys observed at
    /// the snapshot, `WATCH`ed keys observed at `WATCH` time).
    #[must_use]
    pub fn command(
        seqno: Seqno,
        snapshot: Seqno,
        checked: Vec<CheckedKey>,
        written: Vec<KeyHash>,
        local_deps: Vec<Seqno>,
        origin: MemberId,
    ) -> CertificationRequest {
        CertificationRequest {
            seqno,
            snapshot,
            isolation: Isolation::Command,
            checked,
            written,
            local_deps,
            origin,
        }
    }
}

fn observed_at(keys: &[KeyHash], snapshot: Seqno) -> Vec<CheckedKey> {
    keys.iter()
        .map(|&key| CheckedKey {
            key,
            observed_at: snapshot,
        })
        .collect()
}
