//! The replica: what every member does, deterministically, with each delivered entry
//! before anything is applied (DESIGN.md sections 3 and 5).
//!
//! ```text
//!  delivered Entry ─┬─ Proposal ─► decode_message ─┬─ Txn ─► local deps -> seqnos ─► certify ─► Outcome::Txn
//!   (seqno order)   │                              │             (AFTER commit: open a wait)
//!                   │                              ├─ LowWatermark ─► certifier gc ──────────► Outcome::Control
//!                   │                              ├─ Applied ─► AFTER waits ───────────────► Outcome::Control
//!                   │                              ├─ Role / SyncPoint / FlowReport ────────► Outcome::Control
//!                   │                              └─ Opaque / undecodable ──────────────────► Outcome::Control
//!                   ├─ Reconfigure ─► certifier.set_members, roles, AFTER waits ─────────────► Outcome::Control
//!                   └─ ViewStart ────────────────────────────────────────────────────────────► Outcome::Control
//! ```
//!
//! The caller (the member's delivery sink, or the simulator) hands every outcome to the
//! appliers in seqno order: a committed transaction is applied, anything else only lets
//! the watermark pass its seqno. The replica must never read a clock, draw a random
//! number or do IO, so every member that is handed the same entries returns the same
//! outcomes; and it must handle redelivery: a restarted or rejoined member is handed its
//! log again from seqno 1, and the entries it already handled are skipped.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tutti_net::gcs::{Entry, EntryBody, MemberId};
use tutti_storage::Seqno;

use crate::certifier::constants::VERDICT_WINDOW_SEQNOS;
use crate::certifier::{
    AbortReason, Certifier, CertifierStats, IndexConfig, IndexConfigError, IndexReader, KeyHash,
    StatsSnapshot, Verdict,
};
use crate::consistency::{AfterDone, AfterWaits};
use crate::flow_control::FlowReport;
use crate::roles::{RoleEvent, Roles};
use crate::txn::{decode_message, EngineMessage, MessageError, TxnMessage};

/// Slots the index reclaim examines per call of [`Replica::reclaim_step`].
pub const RECLAIM_SLOTS_PER_STEP: usize = 4096;

/// What one delivered entry meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A transaction and its verdict (the same on every member).
    Txn {
        /// The transaction, shared with the appliers.
        txn: Arc<TxnMessage>,
        /// Commit or abort.
        verdict: Verdict,
        /// The hashes of its written keys, in write order, as certification computed
        /// them: the appliers shard by them instead of hashing every key again.
        written: Vec<KeyHash>,
    },
    /// An entry that changes nothing in the store: a low watermark, a reconfiguration,
    /// a view start, or a payload that is not a transaction.
    Control(Control),
}

/// The kinds of entries that are not transactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// A member's low watermark was taken into the gc seqno.
    LowWatermark,
    /// A new configuration: the certifier's ONLINE set follows it, and the roles (a
    /// primary that left is replaced).
    Reconfigure(Vec<RoleEvent>),
    /// An ordered role operation and what it changed.
    Role(Vec<RoleEvent>),
    /// A sync point (consistency level BEFORE).
    SyncPoint,
    /// A member's flow control report.
    FlowReport(FlowReport),
    /// A member's acknowledgement of AFTER transactions (its applied watermark).
    Applied,
    /// A new sequencer's first entry.
    ViewStart,
    /// Bytes ordered for someone else (`GROUP PROPOSE`).
    Opaque,
    /// A payload that is not a valid engine message: skipped on every member alike.
    Undecodable(MessageError),
}

/// The seqnos of one origin incarnation's recent transactions, by transaction number,
/// so that `local_deps` (numbers) become the seqnos the certifier knows.
#[derive(Default)]
struct RecentTxns {
    /// (number, seqno), numbers ascending (one origin's proposals keep their order).
    delivered: VecDeque<(u64, Seqno)>,
}

/// The deterministic consumer of one member's delivered entries.
pub struct Replica {
    certifier: Certifier,
    /// Modes and roles, as of the last seqno handled.
    roles: Roles,
    /// The highest seqno handled: redeliveries at or below it are skipped.
    last_seqno: Seqno,
    /// Recent transactions of every origin incarnation, for `local_deps`.
    recent: HashMap<(MemberId, u64), RecentTxns>,
    /// Entries whose payload was not an engine message.
    undecodable: u64,
    /// The open waits of AFTER transactions.
    after: AfterWaits,
    /// AFTER waits that ended and were not yet taken.
    after_done: Vec<AfterDone>,
}

impl Replica {
    /// A replica with an empty certifier index of the given geometry. Every member of a
    /// group must use the same geometry (a full shard is a verdict).
    pub fn new(index: IndexConfig) -> Result<Replica, IndexConfigError> {
        Ok(Replica {
            certifier: Certifier::new(index)?,
            roles: Roles::new(),
            last_seqno: Seqno::ZERO,
            recent: HashMap::new(),
            undecodable: 0,
            after: AfterWaits::new(),
            after_done: Vec::new(),
        })
    }

    /// The highest seqno handled.
    pub fn last_seqno(&self) -> Seqno {
        self.last_seqno
    }

    /// Handles the entry delivered at `seqno`. Returns `None` for a redelivery of a seqno
    /// already handled.
    ///
    /// # Panics
    /// If `seqno` skips ahead of the next seqno (the total order delivers without gaps).
    pub fn on_delivered(&mut self, seqno: Seqno, entry: &Entry) -> Option<Outcome> {
        if seqno <= self.last_seqno {
            return None;
        }
        assert_eq!(
            seqno,
            self.last_seqno.next(),
            "delivery skipped from {} to {seqno}",
            self.last_seqno
        );
        self.last_seqno = seqno;
        let outcome = match &entry.body {
            EntryBody::Proposal(proposal) => match decode_message(&proposal.payload) {
                Ok(EngineMessage::Txn(txn)) => self.on_txn(seqno, txn),
                Ok(EngineMessage::LowWatermark { member, seqno: low }) => {
                    self.certifier.on_low_watermark(member, low);
                    Outcome::Control(Control::LowWatermark)
                }
                Ok(EngineMessage::Opaque(_)) => Outcome::Control(Control::Opaque),
                Ok(EngineMessage::Role(op)) => {
                    Outcome::Control(Control::Role(self.roles.on_op(seqno, op)))
                }
                Ok(EngineMessage::SyncPoint) => Outcome::Control(Control::SyncPoint),
                Ok(EngineMessage::FlowReport(report)) => {
                    Outcome::Control(Control::FlowReport(report))
                }
                Ok(EngineMessage::Applied { member, seqno }) => {
                    let done = self.after.on_applied(member, seqno);
                    self.after_done.extend(done);
                    Outcome::Control(Control::Applied)
                }
                Err(error) => {
                    self.undecodable += 1;
                    Outcome::Control(Control::Undecodable(error))
                }
            },
            EntryBody::Reconfigure { members, .. } => {
                if let Err(error) = self.certifier.set_members(members) {
                    // Every member refuses alike, so the gc seqno stays deterministic.
                    tracing::warn!(%error, "the certifier keeps its previous ONLINE set");
                }
                let done = self.after.on_members(members);
                self.after_done.extend(done);
                Outcome::Control(Control::Reconfigure(
                    self.roles.on_reconfigure(seqno, members),
                ))
            }
            EntryBody::ViewStart => Outcome::Control(Control::ViewStart),
        };
        self.forget_old(seqno);
        Some(outcome)
    }

    fn on_txn(&mut self, seqno: Seqno, txn: TxnMessage) -> Outcome {
        let recent = self
            .recent
            .entry((txn.id.origin, txn.id.incarnation))
            .or_default();
        // A dependency never delivered is passed as seqno 0: the certifier aborts it.
        let local_deps = txn
            .local_deps
            .iter()
            .map(|&number| {
                recent
                    .delivered
                    .binary_search_by_key(&number, |&(n, _)| n)
                    .map_or(Seqno::ZERO, |at| recent.delivered[at].1)
            })
            .collect();
        if recent
            .delivered
            .back()
            .is_none_or(|&(last, _)| last < txn.id.number)
        {
            recent.delivered.push_back((txn.id.number, seqno));
        }
        let request = txn.certification_request(seqno, local_deps);
        let verdict = if self.roles.writable(txn.id.origin) {
            self.certifier.certify(&request)
        } else {
            self.certifier.refuse(seqno, AbortReason::NotWritable)
        };
        if txn.after && verdict.is_commit() {
            let members = self.roles.members().iter().copied();
            let done = self.after.on_commit(seqno, txn.id, members);
            self.after_done.extend(done);
        }
        Outcome::Txn {
            txn: Arc::new(txn),
            verdict,
            written: request.written,
        }
    }

    /// Drops number-to-seqno entries older than the certifier's verdict window: a
    /// dependency that old is refused by the certifier anyway.
    fn forget_old(&mut self, seqno: Seqno) {
        let Some(oldest) = seqno.0.checked_sub(VERDICT_WINDOW_SEQNOS) else {
            return;
        };
        // Amortised: only every 1024th seqno walks the origins.
        if seqno.0 % 1024 != 0 {
            return;
        }
        self.recent.retain(|_, recent| {
            while recent
                .delivered
                .front()
                .is_some_and(|&(_, at)| at.0 < oldest)
            {
                recent.delivered.pop_front();
            }
            !recent.delivered.is_empty()
        });
    }

    /// Physically removes some dead index entries; call it between batches.
    pub fn reclaim_step(&mut self) -> usize {
        self.certifier.reclaim_step(RECLAIM_SLOTS_PER_STEP)
    }

    /// A handle for sessions' early conflict checks.
    pub fn index_reader(&self) -> IndexReader {
        self.certifier.reader()
    }

    /// The certifier's counters, shared with other threads.
    pub fn stats_handle(&self) -> Arc<CertifierStats> {
        self.certifier.stats_handle()
    }

    /// One reading of the certifier's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.certifier.stats()
    }

    /// Entries whose payload was not an engine message.
    pub fn undecodable(&self) -> u64 {
        self.undecodable
    }

    /// The AFTER waits that ended since the last call (in the order they ended).
    pub fn take_after_done(&mut self) -> Vec<AfterDone> {
        std::mem::take(&mut self.after_done)
    }

    /// Modes and roles, as of the last seqno handled.
    pub fn roles(&self) -> &Roles {
        &self.roles
    }

    /// The certifier's gc seqno.
    pub fn gc_seqno(&self) -> Seqno {
        self.certifier.gc_seqno()
    }
}
