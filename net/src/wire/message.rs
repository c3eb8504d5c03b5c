//! Bodies of gcs messages and of log entries, field by field.
//!
//! A message travels as one frame whose `kind` is the message's [`MessageKind`] number
//! and whose body is the message's fields in declaration order, encoded with the
//! primitives of [`super::body`]. The sender's incarnation is in the frame header *and*
//! in the message (the core reads it from the message); decoding checks that the two
//! agree, so a frame can never carry a message of another life of its sender.
//!
//! ```text
//! newtypes      MemberId u128 · Seqno u64 · ViewId u64 · Incarnation u64
//! ProposalId    origin u128 · incarnation u64 · counter u64                  (32 bytes)
//! Proposal      ProposalId · payload bytes (u32 length, <= PAYLOAD_BYTES_LIMIT)
//! Entry         seqno u64 · view u64 · EntryBody
//! EntryBody     kind u8 (EntryKind), then
//!                 1 Proposal     Proposal
//!                 2 ViewStart    nothing
//!                 3 Reconfigure  change u8 (1 Bootstrap, 2 Join, 3 Leave, 4 Expel) ·
//!                                changed member u128 · count u32 (<= MEMBERS_MAX) · members u128…
//!
//! kind  message           body fields after `incarnation u64`
//!    1  Propose           count u32 · Proposal…
//!    2  Prepare           view · first_seqno · prev_view · count u32 · Entry… · commit_seqno
//!    3  PrepareOk         view · seqno
//!    4  PrepareNack       view · match_seqno
//!    5  Commit            view · commit_seqno
//!    6  Heartbeat         view · normal bool · commit_seqno
//!    7  StartViewChange   view · committed bool
//!    8  DoViewChange      view · last_view · last_seqno · commit_seqno
//!    9  StartView         as Prepare
//!   10  LogRequest        view · from
//!   11  LogChunk          view · first_seqno · prev_view · count u32 · Entry… · last_view · last_seqno
//!   12  JoinRequest       joiner u128 · joiner_incarnation u64 · group_name u128 · version u32
//!   13  JoinRefused       reason u8 (1 WrongGroup, 2 IncompatibleVersion, 3 GroupFull)
//!   14  LeaveRequest      nothing
//!   15  NotMember         view
//! ```
//!
//! A log record's payload is an `EntryBody` alone: the log header already holds the
//! seqno and the view. Every count and length is bounded on decode by the gcs limits,
//! and a body with bytes left over is rejected.

use std::sync::Arc;

use crate::gcs::constants::{BATCH_ENTRIES_LIMIT, MEMBERS_MAX, PAYLOAD_BYTES_LIMIT};
use crate::gcs::{
    Commit, DoViewChange, Heartbeat, JoinRefusal, JoinRefused, JoinRequest, LeaveRequest, LogChunk,
    LogRequest, NotMember, Prepare, PrepareNack, PrepareOk, Propose, StartViewChange,
};
use crate::gcs::{
    ConfigChange, Entry, EntryBody, EntryKind, Incarnation, MemberId, Message, MessageKind,
    Proposal, ProposalId, Seqno, ViewId,
};

use super::body::{BodyReader, BodyWriter};
use super::frame::{encode_frame, Frame, FrameOrigin};
use super::WireError;

/// Smallest encoded proposal: a 32-byte id and a 4-byte payload length.
const PROPOSAL_BYTES_MIN: usize = 36;
/// Smallest encoded entry: seqno, view and a body kind byte.
const ENTRY_BYTES_MIN: usize = 17;

/// Appends `message` as one frame to `out`. The frame's incarnation is the message's.
pub fn encode_message(
    out: &mut Vec<u8>,
    origin: FrameOrigin,
    message: &Message,
) -> Result<usize, WireError> {
    debug_assert_eq!(origin.incarnation, message.incarnation().0);
    encode_frame(out, message.kind() as u16, origin, |out| {
        write_message(&mut BodyWriter::new(out), message);
    })
}

/// Decodes the message a verified frame carries.
pub fn decode_message(frame: &Frame<'_>) -> Result<Message, WireError> {
    let mut reader = BodyReader::new(frame.body);
    let kind = frame.header.kind;
    let incarnation = Incarnation(reader.u64("incarnation")?);
    if incarnation.0 != frame.header.origin.incarnation {
        return Err(WireError::Malformed {
            field: "incarnation",
            reason: "the message's incarnation differs from its frame header's",
        });
    }
    let message = read_message(&mut reader, kind, incarnation)?;
    reader.finish(kind_name(message.kind()))?;
    Ok(message)
}

/// Appends the encoding of a log entry's body (the payload of one log record).
pub fn encode_entry(out: &mut Vec<u8>, body: &EntryBody) {
    write_entry_body(&mut BodyWriter::new(out), body);
}

/// Decodes a log record's payload back into an entry body.
pub fn decode_entry_body(bytes: &[u8]) -> Result<EntryBody, WireError> {
    let mut reader = BodyReader::new(bytes);
    let body = read_entry_body(&mut reader)?;
    reader.finish("entry")?;
    Ok(body)
}

fn kind_name(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Propose => "Propose",
        MessageKind::Prepare => "Prepare",
        MessageKind::PrepareOk => "PrepareOk",
        MessageKind::PrepareNack => "PrepareNack",
        MessageKind::Commit => "Commit",
        MessageKind::Heartbeat => "Heartbeat",
        MessageKind::StartViewChange => "StartViewChange",
        MessageKind::DoViewChange => "DoViewChange",
        MessageKind::StartView => "StartView",
        MessageKind::LogRequest => "LogRequest",
        MessageKind::LogChunk => "LogChunk",
        MessageKind::JoinRequest => "JoinRequest",
        MessageKind::JoinRefused => "JoinRefused",
        MessageKind::LeaveRequest => "LeaveRequest",
        MessageKind::NotMember => "NotMember",
    }
}

fn write_message(w: &mut BodyWriter<'_>, message: &Message) {
    w.u64(message.incarnation().0);
    match message {
        Message::Propose(m) => {
            w.count(m.proposals.len());
            for proposal in &m.proposals {
                write_proposal(w, proposal);
            }
        }
        Message::Prepare(m) | Message::StartView(m) => write_prepare(w, m),
        Message::PrepareOk(m) => {
            w.u64(m.view.0);
            w.u64(m.seqno.0);
        }
        Message::PrepareNack(m) => {
            w.u64(m.view.0);
            w.u64(m.match_seqno.0);
        }
        Message::Commit(m) => {
            w.u64(m.view.0);
            w.u64(m.commit_seqno.0);
        }
        Message::Heartbeat(m) => {
            w.u64(m.view.0);
            w.bool(m.normal);
            w.u64(m.commit_seqno.0);
        }
        Message::StartViewChange(m) => {
            w.u64(m.view.0);
            w.bool(m.committed);
        }
        Message::DoViewChange(m) => {
            w.u64(m.view.0);
            w.u64(m.last_view.0);
            w.u64(m.last_seqno.0);
            w.u64(m.commit_seqno.0);
        }
        Message::LogRequest(m) => {
            w.u64(m.view.0);
            w.u64(m.from.0);
        }
        Message::LogChunk(m) => write_log_chunk(w, m),
        Message::JoinRequest(m) => {
            w.u128(m.joiner.0);
            w.u64(m.joiner_incarnation.0);
            w.u128(m.group_name);
            w.u32(m.version);
        }
        Message::JoinRefused(m) => w.u8(m.reason as u8),
        Message::LeaveRequest(_) => {}
        Message::NotMember(m) => w.u64(m.view.0),
    }
}

fn write_prepare(w: &mut BodyWriter<'_>, m: &Prepare) {
    w.u64(m.view.0);
    w.u64(m.first_seqno.0);
    w.u64(m.prev_view.0);
    write_entries(w, &m.entries);
    w.u64(m.commit_seqno.0);
}

fn write_log_chunk(w: &mut BodyWriter<'_>, m: &LogChunk) {
    w.u64(m.view.0);
    w.u64(m.first_seqno.0);
    w.u64(m.prev_view.0);
    write_entries(w, &m.entries);
    w.u64(m.last_view.0);
    w.u64(m.last_seqno.0);
}

fn write_entries(w: &mut BodyWriter<'_>, entries: &[Entry]) {
    w.count(entries.len());
    for entry in entries {
        w.u64(entry.seqno.0);
        w.u64(entry.view.0);
        write_entry_body(w, &entry.body);
    }
}

fn write_proposal(w: &mut BodyWriter<'_>, proposal: &Proposal) {
    w.u128(proposal.id.origin.0);
    w.u64(proposal.id.incarnation.0);
    w.u64(proposal.id.counter);
    w.bytes(&proposal.payload);
}

fn write_entry_body(w: &mut BodyWriter<'_>, body: &EntryBody) {
    w.u8(body.kind() as u8);
    match body {
        EntryBody::Proposal(proposal) => write_proposal(w, proposal),
        EntryBody::ViewStart => {}
        EntryBody::Reconfigure { members, change } => {
            let (tag, member) = match *change {
                ConfigChange::Bootstrap(m) => (1, m),
                ConfigChange::Join(m) => (2, m),
                ConfigChange::Leave(m) => (3, m),
                ConfigChange::Expel(m) => (4, m),
            };
            w.u8(tag);
            w.u128(member.0);
            w.count(members.len());
            for member in members {
                w.u128(member.0);
            }
        }
    }
}

fn read_message(
    r: &mut BodyReader<'_>,
    kind: u16,
    incarnation: Incarnation,
) -> Result<Message, WireError> {
    let message = match kind {
        1 => Message::Propose(Propose {
            incarnation,
            proposals: read_proposals(r)?,
        }),
        2 => Message::Prepare(read_prepare(r, incarnation)?),
        3 => Message::PrepareOk(PrepareOk {
            incarnation,
            view: view(r, "view")?,
            seqno: seqno(r, "seqno")?,
        }),
        4 => Message::PrepareNack(PrepareNack {
            incarnation,
            view: view(r, "view")?,
            match_seqno: seqno(r, "match_seqno")?,
        }),
        5 => Message::Commit(Commit {
            incarnation,
            view: view(r, "view")?,
            commit_seqno: seqno(r, "commit_seqno")?,
        }),
        6 => Message::Heartbeat(Heartbeat {
            incarnation,
            view: view(r, "view")?,
            normal: r.bool("normal")?,
            commit_seqno: seqno(r, "commit_seqno")?,
        }),
        7 => Message::StartViewChange(StartViewChange {
            incarnation,
            view: view(r, "view")?,
            committed: r.bool("committed")?,
        }),
        8 => Message::DoViewChange(DoViewChange {
            incarnation,
            view: view(r, "view")?,
            last_view: view(r, "last_view")?,
            last_seqno: seqno(r, "last_seqno")?,
            commit_seqno: seqno(r, "commit_seqno")?,
        }),
        9 => Message::StartView(read_prepare(r, incarnation)?),
        _ => read_membership_message(r, kind, incarnation)?,
    };
    Ok(message)
}

/// The kinds of the view-change catch-up and membership messages (10 and up).
fn read_membership_message(
    r: &mut BodyReader<'_>,
    kind: u16,
    incarnation: Incarnation,
) -> Result<Message, WireError> {
    Ok(match kind {
        10 => Message::LogRequest(LogRequest {
            incarnation,
            view: view(r, "view")?,
            from: seqno(r, "from")?,
        }),
        11 => Message::LogChunk(LogChunk {
            incarnation,
            view: view(r, "view")?,
            first_seqno: seqno(r, "first_seqno")?,
            prev_view: view(r, "prev_view")?,
            entries: read_entries(r)?,
            last_view: view(r, "last_view")?,
            last_seqno: seqno(r, "last_seqno")?,
        }),
        12 => Message::JoinRequest(JoinRequest {
            incarnation,
            joiner: MemberId(r.u128("joiner")?),
            joiner_incarnation: Incarnation(r.u64("joiner_incarnation")?),
            group_name: r.u128("group_name")?,
            version: r.u32("version")?,
        }),
        13 => Message::JoinRefused(JoinRefused {
            incarnation,
            reason: match r.u8("reason")? {
                1 => JoinRefusal::WrongGroup,
                2 => JoinRefusal::IncompatibleVersion,
                3 => JoinRefusal::GroupFull,
                _ => {
                    return Err(WireError::Malformed {
                        field: "reason",
                        reason: "unknown join refusal reason",
                    })
                }
            },
        }),
        14 => Message::LeaveRequest(LeaveRequest { incarnation }),
        15 => Message::NotMember(NotMember {
            incarnation,
            view: view(r, "view")?,
        }),
        _ => return Err(WireError::UnknownKind { kind }),
    })
}

fn view(r: &mut BodyReader<'_>, field: &'static str) -> Result<ViewId, WireError> {
    r.u64(field).map(ViewId)
}

fn seqno(r: &mut BodyReader<'_>, field: &'static str) -> Result<Seqno, WireError> {
    r.u64(field).map(Seqno)
}

fn read_prepare(r: &mut BodyReader<'_>, incarnation: Incarnation) -> Result<Prepare, WireError> {
    Ok(Prepare {
        incarnation,
        view: view(r, "view")?,
        first_seqno: seqno(r, "first_seqno")?,
        prev_view: view(r, "prev_view")?,
        entries: read_entries(r)?,
        commit_seqno: seqno(r, "commit_seqno")?,
    })
}

fn read_proposals(r: &mut BodyReader<'_>) -> Result<Vec<Proposal>, WireError> {
    let count = r.count("proposals", BATCH_ENTRIES_LIMIT, PROPOSAL_BYTES_MIN)?;
    let mut proposals = Vec::with_capacity(count);
    for _ in 0..count {
        proposals.push(read_proposal(r)?);
    }
    Ok(proposals)
}

fn read_proposal(r: &mut BodyReader<'_>) -> Result<Proposal, WireError> {
    let id = ProposalId {
        origin: MemberId(r.u128("origin")?),
        incarnation: Incarnation(r.u64("proposal incarnation")?),
        counter: r.u64("counter")?,
    };
    let payload: Arc<[u8]> = Arc::from(r.bytes("payload", PAYLOAD_BYTES_LIMIT)?);
    Ok(Proposal { id, payload })
}

fn read_entries(r: &mut BodyReader<'_>) -> Result<Vec<Entry>, WireError> {
    let count = r.count("entries", BATCH_ENTRIES_LIMIT, ENTRY_BYTES_MIN)?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        entries.push(Entry {
            seqno: seqno(r, "entry seqno")?,
            view: view(r, "entry view")?,
            body: read_entry_body(r)?,
        });
    }
    Ok(entries)
}

fn read_entry_body(r: &mut BodyReader<'_>) -> Result<EntryBody, WireError> {
    let kind = r.u8("entry kind")?;
    if kind == EntryKind::Proposal as u8 {
        return Ok(EntryBody::Proposal(read_proposal(r)?));
    }
    if kind == EntryKind::ViewStart as u8 {
        return Ok(EntryBody::ViewStart);
    }
    if kind != EntryKind::Reconfigure as u8 {
        return Err(WireError::Malformed {
            field: "entry kind",
            reason: "unknown entry kind",
        });
    }
    let tag = r.u8("config change")?;
    let member = MemberId(r.u128("changed member")?);
    let change = match tag {
        1 => ConfigChange::Bootstrap(member),
        2 => ConfigChange::Join(member),
        3 => ConfigChange::Leave(member),
        4 => ConfigChange::Expel(member),
        _ => {
            return Err(WireError::Malformed {
                field: "config change",
                reason: "unknown configuration change",
            })
        }
    };
    let count = r.count("members", MEMBERS_MAX, 16)?;
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        members.push(MemberId(r.u128("member")?));
    }
    Ok(EntryBody::Reconfigure { members, change })
}
