//! Log entries: what the total order orders.
//!
//! An entry is one slot of the replicated log: its seqno, the view in which a sequencer
//! ordered it, and a body. Proposals and ordered control messages (reconfigurations,
//! the view-start marker, and later the engine's watermarks and mode switches) share the
//! one total order, so the body is an enum with room for more kinds. This module owns
//! the entry types only; it must never decide what an entry means for the protocol.

use std::sync::Arc;

use super::types::{MemberId, ProposalId, Seqno, ViewId};

/// Opaque proposal bytes. Shared, so that handing one entry to the log, to every peer
/// and to the deliverer copies a pointer, not the bytes.
pub type Payload = Arc<[u8]>;

/// A proposal as the origin hands it to the sequencer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Who proposed it, in which incarnation, at which counter.
    pub id: ProposalId,
    /// The bytes to order; the core never looks inside.
    pub payload: Payload,
}

/// One slot of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its position in the total order.
    pub seqno: Seqno,
    /// The view in which it was ordered. Together with `seqno` it identifies the entry:
    /// one sequencer orders each seqno at most once per view, so two logs holding the
    /// same (seqno, view) agree on it and on everything before it.
    pub view: ViewId,
    /// What was ordered.
    pub body: EntryBody,
}

/// Why a configuration changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigChange {
    /// The group was created with this one member.
    Bootstrap(MemberId),
    /// A member joined.
    Join(MemberId),
    /// A member asked to leave.
    Leave(MemberId),
    /// The sequencer removed a member it had not heard from for `member_expel_timeout`.
    Expel(MemberId),
}

impl ConfigChange {
    /// Stable number of the variant for the wire and log formats (never reused):
    /// Bootstrap 1, Join 2, Leave 3, Expel 4.
    pub fn kind(&self) -> u8 {
        match self {
            ConfigChange::Bootstrap(_) => 1,
            ConfigChange::Join(_) => 2,
            ConfigChange::Leave(_) => 3,
            ConfigChange::Expel(_) => 4,
        }
    }

    /// The member the change is about.
    pub fn member(&self) -> MemberId {
        match self {
            ConfigChange::Bootstrap(member)
            | ConfigChange::Join(member)
            | ConfigChange::Leave(member)
            | ConfigChange::Expel(member) => *member,
        }
    }
}

/// What an entry carries. Numbered like wire kinds: a number is never reused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryBody {
    /// A member's proposal.
    Proposal(Proposal),
    /// The first entry a new sequencer orders in its view. Committing it commits
    /// everything before it (entries of older views are never committed by counting
    /// acknowledgements of older views), and only after it is committed may the
    /// sequencer order a reconfiguration.
    ViewStart,
    /// A new configuration, effective for quorums as soon as it is appended.
    Reconfigure {
        /// The full member list after the change, sorted by id.
        members: Vec<MemberId>,
        /// What changed.
        change: ConfigChange,
    },
}

/// Stable numbers of entry body kinds, for the wire codec and the log format.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// [`EntryBody::Proposal`].
    Proposal = 1,
    /// [`EntryBody::ViewStart`].
    ViewStart = 2,
    /// [`EntryBody::Reconfigure`].
    Reconfigure = 3,
}

impl EntryBody {
    /// The stable kind number of this body.
    pub fn kind(&self) -> EntryKind {
        match self {
            EntryBody::Proposal(_) => EntryKind::Proposal,
            EntryBody::ViewStart => EntryKind::ViewStart,
            EntryBody::Reconfigure { .. } => EntryKind::Reconfigure,
        }
    }

    /// Bytes this body counts against `batch_bytes_max` (payload bytes plus a fixed
    /// per-entry overhead, an estimate of its encoded size).
    pub fn size_bytes(&self) -> usize {
        const ENTRY_OVERHEAD_BYTES: usize = 48;
        match self {
            EntryBody::Proposal(proposal) => ENTRY_OVERHEAD_BYTES + proposal.payload.len(),
            EntryBody::ViewStart => ENTRY_OVERHEAD_BYTES,
            EntryBody::Reconfigure { members, .. } => ENTRY_OVERHEAD_BYTES + 16 * members.len(),
        }
    }
}
