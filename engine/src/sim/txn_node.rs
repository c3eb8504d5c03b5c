//! One simulated member's transactional state in the bank workload: its replica
//! (certifier), its store, its local transactions, its lagging apply and watermark, and
//! its clients. All of it is in memory, so it lives for one life of the member: a crash
//! drops it, and the restarted member rebuilds it from its log, delivered again from
//! seqno 1.
//!
//! ```text
//!  Deliver(seqno) ─► Replica::on_delivered ─► Outcome::Txn committed ─► serial store (now)
//!                                          │                        └─► unapplied ──Apply event (lag)──► store
//!                                          └─ anything else: nothing to apply
//!  watermark = the highest seqno with every seqno at or below it applied to `store`
//! ```
//!
//! Committed transactions reach `store` some simulated microseconds after delivery,
//! each with its own lag, so they finish out of order, as parallel appliers would; the
//! watermark only passes a contiguous applied prefix. `serial` gets the same writes in
//! seqno order at delivery: what serial apply gives, for the parallel-apply checker.
//! This module must never schedule events or touch the gcs core (the world does).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tutti_net::gcs::{Entry, MemberId};
use tutti_storage::store::Store;
use tutti_storage::Seqno;

use crate::certifier::IndexConfig;
use crate::consistency::Consistency;
use crate::flow_control::FlowControl;
use crate::local::LocalTxns;
use crate::replica::{Outcome, Replica};
use crate::txn::{TxnId, TxnMessage};

use super::bank::BankOp;
use super::options::BankOptions;

/// Live certification index entries the simulated members size their index for (the
/// bank's key space is a few dozen keys).
const INDEX_LIVE_ENTRIES: u64 = 4096;

/// One client request: the transaction asked for, its consistency level, and the
/// attempts made for it.
#[derive(Clone, Debug)]
pub(super) struct Request {
    /// What the client asked for; every attempt runs it again.
    pub(super) op: BankOp,
    /// Every attempt's transaction id, the current one last.
    pub(super) attempts: Vec<TxnId>,
    /// Its consistency level.
    pub(super) level: Consistency,
    /// The highest seqno acknowledged to any client anywhere when it started: at BEFORE
    /// it must see at least that.
    pub(super) must_see: u64,
    /// The seqno of the election that made its member primary, when it started on a
    /// primary of a single-primary group.
    pub(super) primary_since: Option<u64>,
    /// When its current attempt was proposed.
    pub(super) proposed_at: u64,
}

/// Where one client is.
#[derive(Clone, Debug)]
pub(super) enum ClientState {
    /// No transaction in flight; the next one is scheduled.
    Idle,
    /// BEFORE: its sync point was proposed and is not delivered yet.
    Syncing { request: Request },
    /// Its level holds it until the watermark passes `until` (a sync point, or the
    /// election of a new primary).
    Holding { request: Request, until: u64 },
    /// Its transaction was proposed; the origin has not certified it yet.
    Proposed {
        request: Request,
        txn: Arc<TxnMessage>,
    },
    /// Its transaction committed at `seqno`; it is acknowledged once the watermark
    /// passes `seqno` (and, at AFTER, every member acknowledged applying it).
    Committed {
        request: Request,
        txn: Arc<TxnMessage>,
        seqno: u64,
    },
}

impl ClientState {
    /// Whether a transaction is in flight.
    pub(super) fn is_busy(&self) -> bool {
        !matches!(self, ClientState::Idle)
    }
}

/// A member's transactional state for one life.
pub(super) struct TxnNode {
    /// The member this state belongs to.
    pub(super) member: MemberId,
    /// The deterministic certifier of delivered entries.
    pub(super) replica: Replica,
    /// The store the lagging, out-of-order apply installs into; reads happen at the
    /// watermark.
    pub(super) store: Store,
    /// The same writes, installed in seqno order at delivery.
    pub(super) serial: Store,
    /// This life's own transactions (overlay, chaining, numbering).
    pub(super) local: LocalTxns,
    /// The gcs incarnation of this life: the `TxnId` incarnation of its transactions.
    pub(super) incarnation: u64,
    /// Every seqno at or below it is applied to `store`.
    pub(super) watermark: u64,
    /// The highest seqno delivered in this life.
    delivered: u64,
    /// Committed transactions delivered and not yet applied, by seqno.
    unapplied: BTreeMap<u64, Arc<TxnMessage>>,
    /// The clients of this member.
    pub(super) clients: Vec<ClientState>,
    /// Which client waits for each proposed local transaction, by number.
    pub(super) waiting: BTreeMap<u64, usize>,
    /// The configuration (its seqno) this life last announced its facts in.
    pub(super) announced_in: Option<Seqno>,
    /// BEFORE: which client waits for each of this life's sync points, by gcs counter.
    pub(super) syncs: BTreeMap<u64, usize>,
    /// AFTER: the highest AFTER commit of another origin delivered in this life.
    pub(super) ack_due: u64,
    /// AFTER: the highest watermark this life proposed as its acknowledgement.
    pub(super) acked: u64,
    /// AFTER: this life's own transactions whose wait ended, with the members that
    /// acknowledged them.
    pub(super) applied_everywhere: BTreeMap<TxnId, Vec<MemberId>>,
    /// Flow control: the reports of every member and this life's quota.
    pub(super) flow: FlowControl,
    /// Transactions this life proposed (flow control reports).
    pub(super) proposed: u64,
    /// Committed transactions this life applied (flow control reports).
    pub(super) applied: u64,
    /// A slow applier: when it is free to apply the next transaction.
    pub(super) apply_free_at: u64,
}

impl TxnNode {
    pub(super) fn new(
        member: MemberId,
        incarnation: u64,
        options: &BankOptions,
        now: Duration,
    ) -> TxnNode {
        let replica = Replica::new(IndexConfig::for_live_entries(INDEX_LIVE_ENTRIES))
            .expect("the simulator's index geometry is valid");
        let mut local = LocalTxns::new(member, incarnation, options.clients_per_member);
        local.set_chaining(options.chaining);
        TxnNode {
            member,
            replica,
            store: Store::new(),
            serial: Store::new(),
            local,
            incarnation,
            watermark: 0,
            delivered: 0,
            unapplied: BTreeMap::new(),
            clients: vec![ClientState::Idle; options.clients_per_member],
            waiting: BTreeMap::new(),
            announced_in: None,
            syncs: BTreeMap::new(),
            ack_due: 0,
            acked: 0,
            applied_everywhere: BTreeMap::new(),
            flow: FlowControl::new(options.flow.unwrap_or_default(), now),
            proposed: 0,
            applied: 0,
            apply_free_at: 0,
        }
    }

    /// Hands the entry delivered at `seqno` to the replica; a committed transaction is
    /// installed in the serial store now and waits for its apply. `None` for an entry
    /// this life already handled.
    pub(super) fn deliver(&mut self, seqno: u64, entry: &Entry) -> Option<Outcome> {
        let outcome = self.replica.on_delivered(Seqno(seqno), entry)?;
        self.delivered = seqno;
        if let Outcome::Txn { txn, verdict, .. } = &outcome {
            if txn.after && verdict.is_commit() && txn.id.origin != self.member {
                self.ack_due = self.ack_due.max(seqno);
            }
            if verdict.is_commit() {
                for write in &txn.writes {
                    self.serial
                        .install(&write.key, Seqno(seqno), write.value.clone());
                }
                self.unapplied.insert(seqno, Arc::clone(txn));
            }
        }
        Some(outcome)
    }

    /// Applies the committed transaction at `seqno` (if it still waits).
    pub(super) fn apply(&mut self, seqno: u64) {
        if let Some(txn) = self.unapplied.remove(&seqno) {
            self.applied += 1;
            for write in &txn.writes {
                self.store
                    .install(&write.key, Seqno(seqno), write.value.clone());
            }
        }
    }

    /// Moves the watermark over the applied prefix; returns whether it moved.
    pub(super) fn advance_watermark(&mut self) -> bool {
        let watermark = self
            .unapplied
            .keys()
            .next()
            .map_or(self.delivered, |&first| first - 1);
        if watermark <= self.watermark {
            return false;
        }
        self.watermark = watermark;
        self.local.on_applied(Seqno(watermark));
        true
    }

    /// Committed transactions delivered and not applied yet.
    pub(super) fn applier_queue(&self) -> usize {
        self.unapplied.len()
    }

    /// The highest seqno delivered in this life.
    pub(super) fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Clients with a transaction in flight.
    pub(super) fn busy_clients(&self) -> usize {
        self.clients
            .iter()
            .filter(|client| client.is_busy())
            .count()
    }
}
