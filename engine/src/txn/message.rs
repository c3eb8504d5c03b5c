//! The byte format of engine messages inside a gcs proposal payload.
//!
//! The payload is already covered by the frame's and the log record's checksums, so it
//! carries no checksum of its own; it carries a magic and a version so that a payload of
//! another kind (a `GROUP PROPOSE` test payload, a newer member's message) is recognised
//! and never misread. All integers little-endian.
//!
//! ```text
//! header (4 bytes)
//!   0  magic    u16  0x7478 ("xt" on disk)
//!   2  version  u8   1
//!   3  kind     u8   1 = Txn, 2 = LowWatermark, 3 = Opaque, 4 = Role, 5 = SyncPoint,
//!                    6 = FlowReport, 7 = Applied (numbers are never reused)
//! Txn
//!   4  origin        u128
//!  20  incarnation   u64
//!  28  number        u64
//!  36  snapshot      u64
//!  44  isolation     u8   low 7 bits: 0 = snapshot, 1 = serializable, 2 = command;
//!                         high bit: consistency AFTER (members acknowledge it applied)
//!  45  checked_count u32
//!  49  deps_count    u32
//!  53  writes_count  u32
//!  57  checked_count x (key_hash u64, observed_at u64)
//!      deps_count    x number u64
//!      writes_count  x (key_len u32, has_value u8 (0 delete, 1 value), value_len u32,
//!                       key bytes, value bytes)
//! LowWatermark
//!   4  member  u128
//!  20  seqno   u64
//! Opaque
//!   4  bytes to the end of the payload (not looked at by the engine)
//! Role
//!   4  op      u8   1 = Announce, 2 = SetPrimary, 3 = SwitchToSingle, 4 = SwitchToMulti
//!   Announce:       member u128, incarnation u64, config_seqno u64,
//!                   major u16, minor u16, patch u16,
//!                   weight u8 (<= 100), single_primary u8 (0 or 1)
//!   SetPrimary:     member u128
//!   SwitchToSingle: named u8 (0 or 1), then member u128 when named = 1
//!   SwitchToMulti:  nothing
//! SyncPoint
//!   nothing after the header (a position in the order that BEFORE waits for)
//! FlowReport
//!   4  member  u128, then certifier_queue u64, applier_queue u64, applied u64,
//!      proposed u64
//! Applied
//!   4  member  u128
//!  20  seqno   u64   every seqno at or below it is applied there (AFTER's acknowledgement)
//! ```
//!
//! Decoding never panics on any input: every count and length is checked against the
//! limits below and against the bytes that remain, and a payload must be consumed
//! exactly.

use thiserror::Error;
use tutti_net::gcs::MemberId;
use tutti_storage::Seqno;

use super::{TxnId, TxnMessage, Write};
use crate::certifier::constants::{LOCAL_DEPS_MAX, REQUEST_KEYS_MAX};
use crate::certifier::{CheckedKey, Isolation, KeyHash};
use crate::flow_control::FlowReport;
use crate::group::constants::MEMBER_WEIGHT_MAX;
use crate::roles::{Facts, RoleOp, Version};

/// First two bytes of every engine message.
pub const MESSAGE_MAGIC: u16 = 0x7478;
/// The format version this build writes and reads.
pub const MESSAGE_VERSION: u8 = 1;
/// Largest key, in bytes.
pub const KEY_BYTES_MAX: usize = 64 * 1024;
/// Largest value, in bytes (a proposal payload is bounded more tightly by the group's
/// `payload_bytes_max`).
pub const VALUE_BYTES_MAX: usize = 8 * 1024 * 1024;

const HEADER_BYTES: usize = 4;
const KIND_TXN: u8 = 1;
const KIND_LOW_WATERMARK: u8 = 2;
const KIND_OPAQUE: u8 = 3;
const KIND_ROLE: u8 = 4;
const KIND_SYNC_POINT: u8 = 5;
const KIND_FLOW_REPORT: u8 = 6;
const KIND_APPLIED: u8 = 7;
/// The high bit of the isolation byte: the transaction's origin waits for every member's
/// acknowledgement (consistency AFTER).
const TXN_FLAG_AFTER: u8 = 0x80;
const ROLE_ANNOUNCE: u8 = 1;
const ROLE_SET_PRIMARY: u8 = 2;
const ROLE_SWITCH_TO_SINGLE: u8 = 3;
const ROLE_SWITCH_TO_MULTI: u8 = 4;

/// What a proposal payload carries for the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineMessage {
    /// A read-write transaction to certify and apply.
    Txn(TxnMessage),
    /// A member's low watermark (the lowest of its watermark and its oldest open
    /// snapshot), for the certifier's garbage collection.
    LowWatermark {
        /// The member reporting.
        member: MemberId,
        /// Its low watermark.
        seqno: Seqno,
    },
    /// Bytes ordered for someone else (`GROUP PROPOSE`, the load tool): delivered and
    /// counted, never certified or applied.
    Opaque(Vec<u8>),
    /// An ordered change of modes and roles (`engine::roles`).
    Role(RoleOp),
    /// A position in the order and nothing else: consistency level BEFORE waits until
    /// everything up to it is applied.
    SyncPoint,
    /// A member's queues and counters for flow control (`engine::flow_control`).
    FlowReport(FlowReport),
    /// A member applied everything up to `seqno`: its acknowledgement of the AFTER
    /// transactions at or below it (`engine::consistency`).
    Applied {
        /// The member acknowledging.
        member: MemberId,
        /// Its watermark.
        seqno: Seqno,
    },
}

/// Why a payload is not an engine message.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum MessageError {
    /// Fewer bytes than the field being read needs.
    #[error("engine message truncated: {field} needs {needed} bytes, {left} left")]
    Truncated {
        /// The field.
        field: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left.
        left: usize,
    },
    /// The payload does not start with the engine's magic.
    #[error("not an engine message: magic {found:#06x}, expected {MESSAGE_MAGIC:#06x}")]
    BadMagic {
        /// The first two bytes.
        found: u16,
    },
    /// A version this build does not read.
    #[error(
        "engine message version {found} is not supported (this build reads {MESSAGE_VERSION})"
    )]
    BadVersion {
        /// The version byte.
        found: u8,
    },
    /// An unknown kind or enum value.
    #[error("engine message has an unknown {field} {found}")]
    BadKind {
        /// Which field.
        field: &'static str,
        /// The value found.
        found: u8,
    },
    /// A count or length over its limit.
    #[error("engine message {field} is {found}, over the limit of {max}")]
    OverLimit {
        /// Which field.
        field: &'static str,
        /// The value found.
        found: usize,
        /// The limit.
        max: usize,
    },
    /// Bytes after the end of the message.
    #[error("engine message has {0} bytes after its end")]
    TrailingBytes(usize),
}

/// Appends the encoding of `message` to `out`.
///
/// # Panics
/// If the message breaks a limit of the format (a programmer error: sessions check
/// sizes before they propose).
pub fn encode_message(message: &EngineMessage, out: &mut Vec<u8>) {
    let kind = match message {
        EngineMessage::Txn(_) => KIND_TXN,
        EngineMessage::LowWatermark { .. } => KIND_LOW_WATERMARK,
        EngineMessage::Opaque(_) => KIND_OPAQUE,
        EngineMessage::Role(_) => KIND_ROLE,
        EngineMessage::SyncPoint => KIND_SYNC_POINT,
        EngineMessage::FlowReport(_) => KIND_FLOW_REPORT,
        EngineMessage::Applied { .. } => KIND_APPLIED,
    };
    out.extend_from_slice(&MESSAGE_MAGIC.to_le_bytes());
    out.push(MESSAGE_VERSION);
    out.push(kind);
    match message {
        EngineMessage::Txn(txn) => encode_txn(txn, out),
        EngineMessage::LowWatermark { member, seqno }
        | EngineMessage::Applied { member, seqno } => {
            out.extend_from_slice(&member.0.to_le_bytes());
            out.extend_from_slice(&seqno.0.to_le_bytes());
        }
        EngineMessage::Opaque(bytes) => out.extend_from_slice(bytes),
        EngineMessage::Role(op) => encode_role(*op, out),
        EngineMessage::SyncPoint => {}
        EngineMessage::FlowReport(report) => {
            out.extend_from_slice(&report.member.0.to_le_bytes());
            for count in [
                report.certifier_queue,
                report.applier_queue,
                report.applied,
                report.proposed,
            ] {
                out.extend_from_slice(&count.to_le_bytes());
            }
        }
    }
}

fn encode_role(op: RoleOp, out: &mut Vec<u8>) {
    match op {
        RoleOp::Announce {
            member,
            incarnation,
            config_seqno,
            facts,
            single_primary,
        } => {
            out.push(ROLE_ANNOUNCE);
            out.extend_from_slice(&member.0.to_le_bytes());
            out.extend_from_slice(&incarnation.to_le_bytes());
            out.extend_from_slice(&config_seqno.0.to_le_bytes());
            for part in [
                facts.version.major,
                facts.version.minor,
                facts.version.patch,
            ] {
                out.extend_from_slice(&part.to_le_bytes());
            }
            out.push(facts.weight);
            out.push(u8::from(single_primary));
        }
        RoleOp::SetPrimary(member) => {
            out.push(ROLE_SET_PRIMARY);
            out.extend_from_slice(&member.0.to_le_bytes());
        }
        RoleOp::SwitchToSingle(member) => {
            out.push(ROLE_SWITCH_TO_SINGLE);
            out.push(u8::from(member.is_some()));
            if let Some(member) = member {
                out.extend_from_slice(&member.0.to_le_bytes());
            }
        }
        RoleOp::SwitchToMulti => out.push(ROLE_SWITCH_TO_MULTI),
    }
}

fn decode_role(reader: &mut Reader<'_>) -> Result<RoleOp, MessageError> {
    let member = |reader: &mut Reader<'_>| reader.u128("member").map(MemberId);
    Ok(match reader.u8("role op")? {
        ROLE_ANNOUNCE => RoleOp::Announce {
            member: member(reader)?,
            incarnation: reader.u64("incarnation")?,
            config_seqno: Seqno(reader.u64("config_seqno")?),
            facts: Facts {
                version: Version {
                    major: reader.u16("major")?,
                    minor: reader.u16("minor")?,
                    patch: reader.u16("patch")?,
                },
                weight: match reader.u8("weight")? {
                    weight @ 0..=MEMBER_WEIGHT_MAX => weight,
                    found => {
                        return Err(MessageError::OverLimit {
                            field: "weight",
                            found: usize::from(found),
                            max: usize::from(MEMBER_WEIGHT_MAX),
                        })
                    }
                },
            },
            single_primary: reader.flag("single_primary")?,
        },
        ROLE_SET_PRIMARY => RoleOp::SetPrimary(member(reader)?),
        ROLE_SWITCH_TO_SINGLE => RoleOp::SwitchToSingle(if reader.flag("named")? {
            Some(member(reader)?)
        } else {
            None
        }),
        ROLE_SWITCH_TO_MULTI => RoleOp::SwitchToMulti,
        found => {
            return Err(MessageError::BadKind {
                field: "role op",
                found,
            })
        }
    })
}

fn encode_txn(txn: &TxnMessage, out: &mut Vec<u8>) {
    assert!(
        txn.checked.len() <= REQUEST_KEYS_MAX,
        "too many checked keys"
    );
    assert!(txn.writes.len() <= REQUEST_KEYS_MAX, "too many writes");
    assert!(
        txn.local_deps.len() <= LOCAL_DEPS_MAX,
        "too many local deps"
    );
    out.reserve(57 + txn.checked.len() * 16 + txn.local_deps.len() * 8 + txn.writes_bytes());
    out.extend_from_slice(&txn.id.origin.0.to_le_bytes());
    out.extend_from_slice(&txn.id.incarnation.to_le_bytes());
    out.extend_from_slice(&txn.id.number.to_le_bytes());
    out.extend_from_slice(&txn.snapshot.0.to_le_bytes());
    let after = if txn.after { TXN_FLAG_AFTER } else { 0 };
    out.push(isolation_code(txn.isolation) | after);
    for count in [txn.checked.len(), txn.local_deps.len(), txn.writes.len()] {
        out.extend_from_slice(&(count as u32).to_le_bytes());
    }
    for checked in &txn.checked {
        out.extend_from_slice(&checked.key.0.to_le_bytes());
        out.extend_from_slice(&checked.observed_at.0.to_le_bytes());
    }
    for dep in &txn.local_deps {
        out.extend_from_slice(&dep.to_le_bytes());
    }
    for write in &txn.writes {
        assert!(write.key.len() <= KEY_BYTES_MAX, "key over KEY_BYTES_MAX");
        out.extend_from_slice(&(write.key.len() as u32).to_le_bytes());
        if let Some(value) = &write.value {
            assert!(value.len() <= VALUE_BYTES_MAX, "value over VALUE_BYTES_MAX");
            out.push(1);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            out.push(0);
            out.extend_from_slice(&0_u32.to_le_bytes());
        }
        out.extend_from_slice(&write.key);
        if let Some(value) = &write.value {
            out.extend_from_slice(value);
        }
    }
}

fn isolation_code(isolation: Isolation) -> u8 {
    match isolation {
        Isolation::Snapshot => 0,
        Isolation::Serializable => 1,
        Isolation::Command => 2,
    }
}

/// Decodes one engine message from a whole payload.
pub fn decode_message(payload: &[u8]) -> Result<EngineMessage, MessageError> {
    let mut reader = Reader { bytes: payload };
    let magic = reader.u16("magic")?;
    if magic != MESSAGE_MAGIC {
        return Err(MessageError::BadMagic { found: magic });
    }
    let version = reader.u8("version")?;
    if version != MESSAGE_VERSION {
        return Err(MessageError::BadVersion { found: version });
    }
    debug_assert_eq!(payload.len() - reader.bytes.len(), HEADER_BYTES - 1);
    let message = match reader.u8("kind")? {
        KIND_TXN => EngineMessage::Txn(decode_txn(&mut reader)?),
        KIND_LOW_WATERMARK => EngineMessage::LowWatermark {
            member: MemberId(reader.u128("member")?),
            seqno: Seqno(reader.u64("seqno")?),
        },
        KIND_OPAQUE => {
            EngineMessage::Opaque(reader.take("opaque bytes", reader.bytes.len())?.to_vec())
        }
        KIND_ROLE => EngineMessage::Role(decode_role(&mut reader)?),
        KIND_SYNC_POINT => EngineMessage::SyncPoint,
        KIND_FLOW_REPORT => EngineMessage::FlowReport(FlowReport {
            member: MemberId(reader.u128("member")?),
            certifier_queue: reader.u64("certifier_queue")?,
            applier_queue: reader.u64("applier_queue")?,
            applied: reader.u64("applied")?,
            proposed: reader.u64("proposed")?,
        }),
        KIND_APPLIED => EngineMessage::Applied {
            member: MemberId(reader.u128("member")?),
            seqno: Seqno(reader.u64("seqno")?),
        },
        found => {
            return Err(MessageError::BadKind {
                field: "kind",
                found,
            })
        }
    };
    if !reader.bytes.is_empty() {
        return Err(MessageError::TrailingBytes(reader.bytes.len()));
    }
    Ok(message)
}

fn decode_txn(reader: &mut Reader<'_>) -> Result<TxnMessage, MessageError> {
    let id = TxnId {
        origin: MemberId(reader.u128("origin")?),
        incarnation: reader.u64("incarnation")?,
        number: reader.u64("number")?,
    };
    let snapshot = Seqno(reader.u64("snapshot")?);
    let isolation_byte = reader.u8("isolation")?;
    let after = isolation_byte & TXN_FLAG_AFTER != 0;
    let isolation = match isolation_byte & !TXN_FLAG_AFTER {
        0 => Isolation::Snapshot,
        1 => Isolation::Serializable,
        2 => Isolation::Command,
        found => {
            return Err(MessageError::BadKind {
                field: "isolation",
                found,
            })
        }
    };
    let checked_count = reader.count("checked_count", REQUEST_KEYS_MAX, 16)?;
    let deps_count = reader.count("deps_count", LOCAL_DEPS_MAX, 8)?;
    let writes_count = reader.count("writes_count", REQUEST_KEYS_MAX, 9)?;
    let mut checked = Vec::with_capacity(checked_count);
    for _ in 0..checked_count {
        checked.push(CheckedKey {
            key: KeyHash(reader.u64("checked key")?),
            observed_at: Seqno(reader.u64("checked observed_at")?),
        });
    }
    let mut local_deps = Vec::with_capacity(deps_count);
    for _ in 0..deps_count {
        local_deps.push(reader.u64("local dep")?);
    }
    let mut writes = Vec::with_capacity(writes_count);
    for _ in 0..writes_count {
        let key_len = reader.u32("key_len")? as usize;
        if key_len > KEY_BYTES_MAX {
            return Err(MessageError::OverLimit {
                field: "key_len",
                found: key_len,
                max: KEY_BYTES_MAX,
            });
        }
        let has_value = reader.u8("has_value")?;
        let value_len = reader.u32("value_len")? as usize;
        if value_len > VALUE_BYTES_MAX {
            return Err(MessageError::OverLimit {
                field: "value_len",
                found: value_len,
                max: VALUE_BYTES_MAX,
            });
        }
        let key: Box<[u8]> = reader.take("key", key_len)?.into();
        let value = match has_value {
            0 if value_len == 0 => None,
            0 => {
                return Err(MessageError::OverLimit {
                    field: "value_len of a delete",
                    found: value_len,
                    max: 0,
                })
            }
            1 => Some(reader.take("value", value_len)?.into()),
            found => {
                return Err(MessageError::BadKind {
                    field: "has_value",
                    found,
                })
            }
        };
        writes.push(Write { key, value });
    }
    Ok(TxnMessage {
        id,
        snapshot,
        isolation,
        checked,
        writes,
        local_deps,
        after,
    })
}

/// A cursor over the payload that never reads past its end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, needed: usize) -> Result<&'a [u8], MessageError> {
        if self.bytes.len() < needed {
            return Err(MessageError::Truncated {
                field,
                needed,
                left: self.bytes.len(),
            });
        }
        let (taken, rest) = self.bytes.split_at(needed);
        self.bytes = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], MessageError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(field, N)?);
        Ok(array)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, MessageError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn flag(&mut self, field: &'static str) -> Result<bool, MessageError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            found => Err(MessageError::BadKind { field, found }),
        }
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, MessageError> {
        self.array(field).map(u16::from_le_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, MessageError> {
        self.array(field).map(u32::from_le_bytes)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, MessageError> {
        self.array(field).map(u64::from_le_bytes)
    }

    fn u128(&mut self, field: &'static str) -> Result<u128, MessageError> {
        self.array(field).map(u128::from_le_bytes)
    }

    /// A count of items of at least `item_bytes` each: over `max`, or more than the
    /// remaining bytes could hold, is refused before anything is allocated for it.
    fn count(
        &mut self,
        field: &'static str,
        max: usize,
        item_bytes: usize,
    ) -> Result<usize, MessageError> {
        let count = self.u32(field)? as usize;
        if count > max {
            return Err(MessageError::OverLimit {
                field,
                found: count,
                max,
            });
        }
        if count.saturating_mul(item_bytes) > self.bytes.len() {
            return Err(MessageError::Truncated {
                field,
                needed: count * item_bytes,
                left: self.bytes.len(),
            });
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn() -> TxnMessage {
        TxnMessage {
            id: TxnId {
                origin: MemberId(0xabcd),
                incarnation: 3,
                number: 42,
            },
            snapshot: Seqno(17),
            isolation: Isolation::Command,
            checked: vec![CheckedKey {
                key: KeyHash::of(b"a"),
                observed_at: Seqno(16),
            }],
            writes: vec![
                Write {
                    key: b"a".to_vec().into(),
                    value: Some(b"1".to_vec().into()),
                },
                Write {
                    key: b"b".to_vec().into(),
                    value: None,
                },
            ],
            local_deps: vec![40, 41],
            after: false,
        }
    }

    #[test]
    fn every_kind_round_trips() {
        for message in [
            EngineMessage::Txn(txn()),
            EngineMessage::Txn(TxnMessage {
                after: true,
                isolation: Isolation::Serializable,
                ..txn()
            }),
            EngineMessage::Applied {
                member: MemberId(8),
                seqno: Seqno(u64::MAX),
            },
            EngineMessage::LowWatermark {
                member: MemberId(7),
                seqno: Seqno(99),
            },
            EngineMessage::Opaque(b"hello".to_vec()),
            EngineMessage::Role(RoleOp::Announce {
                member: MemberId(u128::MAX - 3),
                incarnation: 5,
                config_seqno: Seqno(77),
                facts: Facts {
                    version: Version {
                        major: 1,
                        minor: 65535,
                        patch: 7,
                    },
                    weight: 100,
                },
                single_primary: true,
            }),
            EngineMessage::Role(RoleOp::SetPrimary(MemberId(9))),
            EngineMessage::Role(RoleOp::SwitchToSingle(Some(MemberId(10)))),
            EngineMessage::Role(RoleOp::SwitchToSingle(None)),
            EngineMessage::Role(RoleOp::SwitchToMulti),
            EngineMessage::SyncPoint,
            EngineMessage::FlowReport(FlowReport {
                member: MemberId(3),
                certifier_queue: 1,
                applier_queue: 2,
                applied: u64::MAX,
                proposed: 4,
            }),
        ] {
            let mut bytes = Vec::new();
            encode_message(&message, &mut bytes);
            assert_eq!(decode_message(&bytes), Ok(message.clone()));
            // Every cut is an error, but of an opaque payload (any bytes are its body).
            let whole = if matches!(message, EngineMessage::Opaque(_)) {
                HEADER_BYTES
            } else {
                bytes.len()
            };
            for end in 0..whole {
                assert!(
                    decode_message(&bytes[..end]).is_err(),
                    "{message:?} cut at {end}"
                );
            }
        }
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let mut bytes = Vec::new();
        encode_message(&EngineMessage::Txn(txn()), &mut bytes);
        for end in 0..bytes.len() {
            assert!(
                decode_message(&bytes[..end]).is_err(),
                "prefix of {end} bytes"
            );
        }
        bytes.push(0);
        assert_eq!(decode_message(&bytes), Err(MessageError::TrailingBytes(1)));
    }

    #[test]
    fn a_foreign_payload_is_named_not_misread() {
        assert_eq!(
            decode_message(b"hello world"),
            Err(MessageError::BadMagic {
                found: u16::from_le_bytes(*b"he")
            })
        );
        let mut bytes = Vec::new();
        encode_message(&EngineMessage::Opaque(Vec::new()), &mut bytes);
        bytes[2] = 9;
        assert_eq!(
            decode_message(&bytes),
            Err(MessageError::BadVersion { found: 9 })
        );
        bytes[2] = MESSAGE_VERSION;
        bytes[3] = 200;
        assert_eq!(
            decode_message(&bytes),
            Err(MessageError::BadKind {
                field: "kind",
                found: 200
            })
        );
    }

    #[test]
    fn bad_role_fields_are_named() {
        let mut bytes = Vec::new();
        encode_message(
            &EngineMessage::Role(RoleOp::Announce {
                member: MemberId(1),
                incarnation: 1,
                config_seqno: Seqno(2),
                facts: Facts {
                    version: Version::of_build(),
                    weight: 50,
                },
                single_primary: false,
            }),
            &mut bytes,
        );
        let weight_at = 4 + 1 + 16 + 8 + 8 + 6;
        bytes[weight_at] = 101;
        assert_eq!(
            decode_message(&bytes),
            Err(MessageError::OverLimit {
                field: "weight",
                found: 101,
                max: 100
            })
        );
        bytes[weight_at] = 50;
        bytes[weight_at + 1] = 2;
        assert_eq!(
            decode_message(&bytes),
            Err(MessageError::BadKind {
                field: "single_primary",
                found: 2
            })
        );
        bytes[4] = 77;
        assert_eq!(
            decode_message(&bytes),
            Err(MessageError::BadKind {
                field: "role op",
                found: 77
            })
        );
    }

    #[test]
    fn a_huge_count_is_refused_before_allocating() {
        let mut bytes = Vec::new();
        encode_message(&EngineMessage::Txn(txn()), &mut bytes);
        // checked_count at offset 45.
        bytes[45..49].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_message(&bytes),
            Err(MessageError::OverLimit {
                field: "checked_count",
                ..
            })
        ));
        bytes[45..49].copy_from_slice(&1000_u32.to_le_bytes());
        assert!(matches!(
            decode_message(&bytes),
            Err(MessageError::Truncated {
                field: "checked_count",
                ..
            })
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = decode_message(&bytes);
        }

        #[test]
        fn arbitrary_bytes_after_a_valid_header_never_panic(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let mut bytes = vec![0x78, 0x74, MESSAGE_VERSION, KIND_TXN];
            bytes.extend_from_slice(&tail);
            let _ = decode_message(&bytes);
        }
    }
}
