//! Peer messages of the group communication core.
//!
//! `Message` is a plain enum of plain structs, so that the wire codec can encode it
//! field by field. Each variant has a stable number ([`MessageKind`]) that is never
//! reused. Every message carries its sender's incarnation: a receiver ignores a message
//! from an older incarnation of a member. This module owns the message types only; it
//! must never encode bytes (that is `net::wire`) nor act on a message.

use super::entry::{Entry, Proposal};
use super::types::{Incarnation, MemberId, Seqno, ViewId};

/// Stable numbers of message kinds. Never reuse a number.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// [`Message::Propose`].
    Propose = 1,
    /// [`Message::Prepare`].
    Prepare = 2,
    /// [`Message::PrepareOk`].
    PrepareOk = 3,
    /// [`Message::PrepareNack`].
    PrepareNack = 4,
    /// [`Message::Commit`].
    Commit = 5,
    /// [`Message::Heartbeat`].
    Heartbeat = 6,
    /// [`Message::StartViewChange`].
    StartViewChange = 7,
    /// [`Message::DoViewChange`].
    DoViewChange = 8,
    /// [`Message::StartView`].
    StartView = 9,
    /// [`Message::LogRequest`].
    LogRequest = 10,
    /// [`Message::LogChunk`].
    LogChunk = 11,
    /// [`Message::JoinRequest`].
    JoinRequest = 12,
    /// [`Message::JoinRefused`].
    JoinRefused = 13,
    /// [`Message::LeaveRequest`].
    LeaveRequest = 14,
    /// [`Message::NotMember`].
    NotMember = 15,
}

/// Origin -> sequencer: proposals to order, in counter order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Propose {
    /// Sender's incarnation.
    pub incarnation: Incarnation,
    /// Proposals of the sender, in increasing counter order.
    pub proposals: Vec<Proposal>,
}

/// Sequencer -> member: a contiguous run of the log of `view`.
///
/// Also the body of [`Message::StartView`]. The receiver appends `entries` only if its
/// log holds the entry before `first_seqno` with view `prev_view` (or that entry is at or
/// below the receiver's known-matching prefix), so logs stay prefixes of one another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepare {
    /// Sender's incarnation.
    pub incarnation: Incarnation,
    /// The view the sender is sequencer of.
    pub view: ViewId,
    /// Seqno of `entries[0]` (or, with no entries, one past the sender's last entry).
    pub first_seqno: Seqno,
    /// The view of the entry at `first_seqno - 1` in the sender's log (0 if none).
    pub prev_view: ViewId,
    /// The entries, in seqno order; bounded by `batch_entries_max` and `batch_bytes_max`.
    pub entries: Vec<Entry>,
    /// The sender's commit point, so a member learns it without counting.
    pub commit_seqno: Seqno,
}

/// Member -> every member: "my log up to `seqno` is the log of `view` and is durable".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrepareOk {
    /// Sender's incarnation.
    pub incarnation: Incarnation,
    /// The view the acknowledgement is for.
    pub view: ViewId,
    /// The highest seqno of the durable, matching prefix.
    pub seqno: Seqno,
}

/// Member -> sequencer: "I could not append; my log matches yours up to `match_seqno`".
/// A gap report: the sequencer resends from `match_seqno + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrepareNack {
    /// Sender's incarnation.
    pub incarnation: Incarnation,
    /// The view the report is for.
    pub view: ViewId,
    /// A seqno up to which the sender's log surely matches the sequencer's.
    pub match_seqno: Seqno,
}

/// Sequencer -> member: the commit point, sent alone when there is nothing else to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Commit {
    /// Sender's incarnation.
    pub incarnation: Incarnation,
    /// The sender's view.
    pub view: ViewId,
    /// The sender's commit point.
    pub commit_seqno: Seqno,
}

/// Member -> member: "I am alive", sent when nothing else went out for a heartbeat
/// interval. Carries enough state for a lagging receiver to notice it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// Sender's incarnation.
    pub incarnation: Incarnation,
    /// The sender's view.
    pub view: ViewId,
    /// Whether the sender is in normal status in `view` (not changing views).
    pub normal: bool,
    /// The sender's commit point.
    pub commit_seqno: Seqno,
}

/// Member -> every member: "I want view `view`". With `committed` false it is a vote
/// (a pre-vote: the sender still works in its old view); with `committed` true the
/// sender has persisted `view` and stopped working in older views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartViewChange {
    /// Sender's incarnation.
    pub incarnation: Incarnation,
    /// The view asked for.
    pub view: ViewId,
    /// Whether the sender already moved to `view`.
    pub committed: bool,
}

/// Member -> the new sequencer: the summary of the sender's log, to choose the best.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoViewChange {
    /// Sender's incarnation.
    pub incarnation: Incarnation,
    /// The new view.
    pub view: ViewId,
    /// The view of the sender's last log entry.
    pub last_view: ViewId,
    /// The sender's last seqno.
    pub last_seqno: Seqno,
    /// The sender's commit point: its log up to here is committed everywhere.
    pub commit_seqno: Seqno,
}

/// The new sequencer -> the member whose log it chose: "send me your log from `from`".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRequest {
    /// Sender's incarnation.
    pub incarnation: Incarnation,
    /// The view being formed.
    pub view: ViewId,
    /// First seqno wanted.
    pub from: Seqno,
}

/// Reply to a [`LogRequest`]: a bounded run of the sender's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogChunk {
    /// Sender's incarnation.
    pub incarnation: Incarnation,
    /// The view being formed.
    pub view: ViewId,
    /// Seqno of `entries[0]`.
    pub first_seqno: Seqno,
    /// The view of the sender's entry at `first_seqno - 1` (0 if none).
    pub prev_view: ViewId,
    /// The entries.
    pub entries: Vec<Entry>,
    /// The view of the sender's last entry, so the requester can check it is the log
    /// it chose.
    pub last_view: ViewId,
    /// The sender's last seqno.
    pub last_seqno: Seqno,
}

/// Joiner (or a member forwarding for it) -> member: "let me in".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinRequest {
    /// Sender's incarnation.
    pub incarnation: Incarnation,
    /// The member that wants to join.
    pub joiner: MemberId,
    /// The joiner's incarnation.
    pub joiner_incarnation: Incarnation,
    /// The group the joiner wants to join.
    pub group_name: u128,
    /// The joiner's protocol version.
    pub version: u32,
}

/// Why a join was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinRefusal {
    /// The joiner asked for another group.
    WrongGroup = 1,
    /// The joiner's version is older than the group's.
    IncompatibleVersion = 2,
    /// The group is at its maximum size.
    GroupFull = 3,
}

/// Sequencer -> joiner: the join was refused, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinRefused {
    /// Sender's incarnation.
    pub incarnation: Incarnation,
    /// Why.
    pub reason: JoinRefusal,
}

/// Member -> sequencer: "remove me".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaveRequest {
    /// Sender's incarnation.
    pub incarnation: Incarnation,
}

/// Sequencer -> a former member that still talks: "you are not in the configuration".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotMember {
    /// Sender's incarnation.
    pub incarnation: Incarnation,
    /// The sender's view.
    pub view: ViewId,
}

/// A message between members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Proposals to order.
    Propose(Propose),
    /// Entries to append (normal case and retransmission).
    Prepare(Prepare),
    /// Acknowledgement of a durable prefix.
    PrepareOk(PrepareOk),
    /// Gap or mismatch report.
    PrepareNack(PrepareNack),
    /// Bare commit point.
    Commit(Commit),
    /// Liveness and state summary.
    Heartbeat(Heartbeat),
    /// View change vote or announcement.
    StartViewChange(StartViewChange),
    /// Log summary for the new sequencer.
    DoViewChange(DoViewChange),
    /// The new view begins; same body as a Prepare.
    StartView(Prepare),
    /// The new sequencer fetches entries it lacks.
    LogRequest(LogRequest),
    /// Entries for the new sequencer.
    LogChunk(LogChunk),
    /// A join request.
    JoinRequest(JoinRequest),
    /// A join refusal.
    JoinRefused(JoinRefused),
    /// A leave request.
    LeaveRequest(LeaveRequest),
    /// The receiver is not a member.
    NotMember(NotMember),
}

impl Message {
    /// The stable kind number.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Propose(_) => MessageKind::Propose,
            Message::Prepare(_) => MessageKind::Prepare,
            Message::PrepareOk(_) => MessageKind::PrepareOk,
            Message::PrepareNack(_) => MessageKind::PrepareNack,
            Message::Commit(_) => MessageKind::Commit,
            Message::Heartbeat(_) => MessageKind::Heartbeat,
            Message::StartViewChange(_) => MessageKind::StartViewChange,
            Message::DoViewChange(_) => MessageKind::DoViewChange,
            Message::StartView(_) => MessageKind::StartView,
            Message::LogRequest(_) => MessageKind::LogRequest,
            Message::LogChunk(_) => MessageKind::LogChunk,
            Message::JoinRequest(_) => MessageKind::JoinRequest,
            Message::JoinRefused(_) => MessageKind::JoinRefused,
            Message::LeaveRequest(_) => MessageKind::LeaveRequest,
            Message::NotMember(_) => MessageKind::NotMember,
        }
    }

    /// The view the message speaks of, for messages that carry one.
    pub fn view(&self) -> Option<ViewId> {
        match self {
            Message::Prepare(m) | Message::StartView(m) => Some(m.view),
            Message::PrepareOk(m) => Some(m.view),
            Message::PrepareNack(m) => Some(m.view),
            Message::Commit(m) => Some(m.view),
            Message::Heartbeat(m) => Some(m.view),
            Message::StartViewChange(m) => Some(m.view),
            Message::DoViewChange(m) => Some(m.view),
            Message::LogRequest(m) => Some(m.view),
            Message::LogChunk(m) => Some(m.view),
            Message::NotMember(m) => Some(m.view),
            Message::Propose(_)
            | Message::JoinRequest(_)
            | Message::JoinRefused(_)
            | Message::LeaveRequest(_) => None,
        }
    }

    /// The sender's incarnation.
    pub fn incarnation(&self) -> Incarnation {
        match self {
            Message::Propose(m) => m.incarnation,
            Message::Prepare(m) | Message::StartView(m) => m.incarnation,
            Message::PrepareOk(m) => m.incarnation,
            Message::PrepareNack(m) => m.incarnation,
            Message::Commit(m) => m.incarnation,
            Message::Heartbeat(m) => m.incarnation,
            Message::StartViewChange(m) => m.incarnation,
            Message::DoViewChange(m) => m.incarnation,
            Message::LogRequest(m) => m.incarnation,
            Message::LogChunk(m) => m.incarnation,
            Message::JoinRequest(m) => m.incarnation,
            Message::JoinRefused(m) => m.incarnation,
            Message::LeaveRequest(m) => m.incarnation,
            Message::NotMember(m) => m.incarnation,
        }
    }
}
