//! Transactions as the group orders them: the `TxnMessage` a member proposes for each
//! read-write transaction, the other engine messages that share the total order
//! (`LowWatermark`), and their byte format inside a gcs proposal payload.
//!
//! This module owns plain values and their codec only; it must never decide a verdict
//! (the certifier does) nor touch the store (the appliers do).

mod message;

pub use message::{
    decode_message, encode_message, EngineMessage, MessageError, KEY_BYTES_MAX, VALUE_BYTES_MAX,
};

use std::fmt;

use tutti_net::gcs::MemberId;
use tutti_storage::store::Value;
use tutti_storage::Seqno;

use crate::certifier::{CertificationRequest, CheckedKey, Isolation, KeyHash};

/// Names one transaction of one member's life: the origin, its incarnation, and a
/// per-incarnation number that starts at 1 and grows by one per proposed transaction.
/// Local dependencies name earlier transactions of the same origin and incarnation by
/// their number, because the origin proposes a chained transaction before its dependency
/// has a seqno.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxnId {
    /// The member that executed and proposed the transaction.
    pub origin: MemberId,
    /// The origin's incarnation when it proposed it.
    pub incarnation: u64,
    /// The origin's transaction number in that incarnation (1, 2, ...).
    pub number: u64,
}

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:032x}:{}:{}",
            self.origin.0, self.incarnation, self.number
        )
    }
}

/// One written key: a new value, or a delete (`value` is `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The key's bytes.
    pub key: Box<[u8]>,
    /// The value written, or `None` for a delete.
    pub value: Option<Value>,
}

impl Write {
    /// Bytes of key and value, what the appliers' memory bound counts.
    pub fn size_bytes(&self) -> usize {
        self.key.len() + self.value.as_ref().map_or(0, |value| value.len())
    }
}

/// The write of `key` among a transaction's `writes`, if it wrote the key.
pub(crate) fn own_write<'w>(writes: &'w [Write], key: &[u8]) -> Option<&'w Write> {
    writes.iter().find(|write| &*write.key == key)
}

/// Records a write of `key` (a delete when `value` is `None`), replacing an earlier write
/// of the same key: a transaction writes each key once.
pub(crate) fn record_write(writes: &mut Vec<Write>, key: &[u8], value: Option<Value>) {
    match writes.iter_mut().find(|write| &*write.key == key) {
        Some(write) => write.value = value,
        None => writes.push(Write {
            key: key.into(),
            value,
        }),
    }
}

/// A read-write transaction as its origin proposes it (DESIGN.md section 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnMessage {
    /// Who proposed it.
    pub id: TxnId,
    /// The snapshot S it read at: every seqno <= S was applied at the origin.
    pub snapshot: Seqno,
    /// How `checked` was built.
    pub isolation: Isolation,
    /// The keys certification checks, each with the seqno it was observed at.
    pub checked: Vec<CheckedKey>,
    /// What it writes, each key once, in the order the transaction wrote them.
    pub writes: Vec<Write>,
    /// Numbers of earlier transactions of the same origin and incarnation that this one
    /// read or overwrote through the origin's local overlay (ascending, no duplicates).
    pub local_deps: Vec<u64>,
    /// Consistency AFTER: its origin returns the commit once every member applied it, so
    /// every member acknowledges it (`EngineMessage::Applied`) once applied.
    pub after: bool,
}

impl TxnMessage {
    /// The write set: the hashes of the written keys.
    pub fn written(&self) -> Vec<KeyHash> {
        self.writes
            .iter()
            .map(|write| KeyHash::of(&write.key))
            .collect()
    }

    /// Bytes of keys and values written.
    pub fn writes_bytes(&self) -> usize {
        self.writes.iter().map(Write::size_bytes).sum()
    }

    /// The certification request for this transaction delivered at `seqno`, with its
    /// local dependencies already translated to seqnos (0 for one never delivered).
    pub fn certification_request(
        &self,
        seqno: Seqno,
        local_deps: Vec<Seqno>,
    ) -> CertificationRequest {
        CertificationRequest {
            seqno,
            snapshot: self.snapshot,
            isolation: self.isolation,
            checked: self.checked.clone(),
            written: self.written(),
            local_deps,
            origin: self.id.origin,
        }
    }
}
