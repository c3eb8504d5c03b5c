//! Commands: the outputs of the group communication core.
//!
//! The shell drains them in order and must honour that order: `TruncateLog` and
//! `PersistMeta` are executed synchronously and durably (always fsynced, whatever
//! `log_sync` says) before any later command, and only after every earlier
//! `PersistEntries` is durable (the core counts everything issued before them as
//! persisted). `PersistEntries` is asynchronous and batchable; the shell reports its
//! completion with `on_persisted(view, last seqno)`. This module owns the command types;
//! it must never execute one.

use super::entry::Entry;
use super::message::Message;
use super::types::{Incarnation, MemberId, MemberState, Seqno, Time, ViewId};

/// The state a member persists besides its log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistentMeta {
    /// This member's current incarnation.
    pub incarnation: Incarnation,
    /// The highest view this member entered; it never works in an older one again.
    pub view: ViewId,
    /// The last view in which this member was in normal status.
    pub last_normal_view: ViewId,
}

/// What a restarted member hands back to [`Gcs::restart`](super::Gcs::restart).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoredState {
    /// The last `PersistMeta` that completed.
    pub meta: PersistentMeta,
    /// The durable log, from seqno 1, in order. A torn tail must already be cut off; a
    /// log that is not contiguous is cut at the first gap.
    pub log: Vec<Entry>,
    /// Members to contact to rejoin if the log holds no configuration (a joiner that
    /// crashed before receiving anything).
    pub seeds: Vec<super::types::MemberId>,
}

/// One output of the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Send `msg` to member `to`. Best effort: the core retransmits what matters.
    Send {
        /// Receiver.
        to: MemberId,
        /// The message.
        msg: Message,
    },
    /// Append `entries` to the durable log; report with `on_persisted(view, last seqno)`.
    PersistEntries {
        /// The view the write was issued in; a completion from an older view is ignored.
        view: ViewId,
        /// Contiguous entries following the log's current end.
        entries: Vec<Entry>,
    },
    /// Remove every entry after `after` from the durable log, synchronously.
    TruncateLog {
        /// The last seqno kept.
        after: Seqno,
    },
    /// Write the meta state, synchronously and durably.
    PersistMeta(PersistentMeta),
    /// Hand a committed entry to the engine. Strictly in seqno order, from 1.
    Deliver {
        /// The entry's seqno.
        seqno: Seqno,
        /// The entry.
        entry: Entry,
    },
    /// Call `on_timeout` at (or after) `at`. Replaces any earlier timer.
    SetTimer {
        /// When.
        at: Time,
    },
    /// This member entered normal status in a view, or its view's membership changed.
    ViewInstalled {
        /// The view.
        view: ViewId,
        /// The configuration (latest in this member's log), sorted.
        members: Vec<MemberId>,
        /// The view's sequencer.
        sequencer: MemberId,
    },
    /// How a member shows changed (this member's own state included).
    MemberStateChanged {
        /// Which member.
        member: MemberId,
        /// Its new state.
        state: MemberState,
    },
}
