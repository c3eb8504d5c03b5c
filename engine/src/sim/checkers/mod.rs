//! Checkers: one per property, each named after it.
//!
//! Deliveries are recorded per *stream*: one life of one node (a restart starts a new
//! stream, which delivers from seqno 1 again). The safety checkers of the total order
//! (agreement, total order, integrity) run at every delivery; durability and liveness
//! run at the end of the healing phase.
//!
//! The bank workload adds the transactional properties: certification determinism at
//! every certification; parallel apply equals serial apply and the conserved bank total
//! at every watermark; read your own writes at every acknowledgement; and at the end,
//! convergence of the stores, no lost update, every acknowledged commit present, and no
//! reported abort committed; the roles: every member agrees on the mode and the
//! primary after every seqno, and no origin commits where it was not writable; and the
//! consistency levels at every execution and verdict (`consistency.rs`). A checker
//! never changes the run; it only reports the first violation it sees.

mod aborted;
mod acknowledged;
mod agreement;
mod bank;
mod certification;
mod consistency;
mod convergence;
mod durability;
mod integrity;
mod liveness;
mod parallel_apply;
mod read_your_writes;
mod roles;
mod total_order;
mod transactions;

use std::collections::BTreeMap;
use std::sync::Arc;

use tutti_net::gcs::{Entry, Incarnation, MemberId, Seqno};
use tutti_storage::store::Store;

use crate::certifier::Verdict;
use crate::txn::{TxnId, TxnMessage};

use super::options::BankOptions;

pub(super) use consistency::Execution;
pub(super) use liveness::LiveStream;
pub(super) use transactions::{CertificationTotals, TxnMember};

/// A violated property and what shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The property's name: `agreement`, `total_order`, `integrity`, `durability`,
    /// `liveness`; with the bank workload also `certification_determinism`,
    /// `parallel_apply`, `bank_conservation`, `no_lost_update`, `read_your_writes`,
    /// `convergence`, `acknowledged_commit`, `reported_abort`, `role_agreement`,
    /// `single_primary_writes`, `consistency_before`, `consistency_after`,
    /// `consistency_failover` (or `event_budget` for a
    /// runaway run, `options` for bad options).
    pub property: &'static str,
    /// What was seen.
    pub detail: String,
}

/// Identity of one delivery stream: (node index, life).
pub(super) type StreamId = (usize, u64);

/// What every checker needs, recorded as the run goes.
#[derive(Default)]
pub(super) struct Checkers {
    /// The first entry delivered at each seqno, anywhere.
    pub(super) decided: BTreeMap<Seqno, Entry>,
    /// Last delivered seqno per stream.
    pub(super) stream_position: BTreeMap<StreamId, Seqno>,
    /// Per stream: the last counter delivered per origin incarnation.
    pub(super) stream_origins: BTreeMap<StreamId, BTreeMap<(MemberId, Incarnation), u64>>,
    /// Every proposal made: (origin, incarnation, counter) -> payload. Payloads need
    /// not be unique (two sync points are the same bytes).
    pub(super) proposed: BTreeMap<(MemberId, Incarnation, u64), Vec<u8>>,
    /// The seqno each proposal was decided at.
    pub(super) ordered_at: BTreeMap<(MemberId, Incarnation, u64), Seqno>,
    /// The transactions certified and what clients were told (bank workload).
    pub(super) txns: transactions::TxnRecords,
    /// The mode and primary after each seqno (bank workload).
    pub(super) roles: roles::RoleHistory,
    /// What the consistency checkers remember (bank workload).
    pub(super) consistency: consistency::ConsistencyRecords,
    /// The first violation.
    pub(super) failure: Option<Failure>,
}

impl Checkers {
    pub(super) fn on_propose(
        &mut self,
        payload: &[u8],
        origin: MemberId,
        incarnation: Incarnation,
        counter: u64,
    ) {
        self.proposed
            .insert((origin, incarnation, counter), payload.to_vec());
    }

    /// Runs the safety checkers on one delivery.
    pub(super) fn on_deliver(&mut self, stream: StreamId, seqno: Seqno, entry: &Entry) {
        if self.failure.is_some() {
            return;
        }
        let result = total_order::check(self, stream, seqno)
            .and_then(|()| agreement::check(self, seqno, entry))
            .and_then(|()| integrity::check(self, stream, seqno, entry));
        if let Err(failure) = result {
            self.failure = Some(failure);
        }
    }

    /// Runs durability and liveness at the end of healing.
    pub(super) fn at_end(&mut self, live: &[LiveStream]) {
        if self.failure.is_some() {
            return;
        }
        let result = durability::check(self, live).and_then(|()| liveness::check(self, live));
        if let Err(failure) = result {
            self.failure = Some(failure);
        }
    }

    fn record(&mut self, result: Result<(), Failure>) {
        if let (Err(failure), None) = (result, &self.failure) {
            self.failure = Some(failure);
        }
    }

    /// Certification determinism, at every certification of every stream.
    pub(super) fn on_certified(
        &mut self,
        stream: StreamId,
        seqno: u64,
        txn: &Arc<TxnMessage>,
        verdict: Verdict,
    ) {
        let result =
            certification::check(&mut self.txns, stream, seqno, txn, verdict).and_then(|()| {
                if verdict.is_commit() {
                    roles::check_commit(&self.roles, seqno, txn)
                } else {
                    Ok(())
                }
            });
        self.record(result);
    }

    /// Role agreement, after every entry a member life handles.
    pub(super) fn on_roles(&mut self, stream: StreamId, seqno: u64, roles: &crate::roles::Roles) {
        if self.failure.is_some() {
            return;
        }
        let result = roles::check_agreement(&mut self.roles, stream, seqno, roles);
        self.record(result);
    }

    /// Parallel apply and the bank total, at every watermark a member reaches.
    pub(super) fn on_watermark(
        &mut self,
        options: &BankOptions,
        stream: StreamId,
        watermark: u64,
        store: &Store,
        serial: &Store,
    ) {
        if self.failure.is_some() {
            return;
        }
        let result = parallel_apply::check(stream.0, stream.1, watermark, store, serial)
            .and_then(|()| bank::check_total(options, stream.0, store, watermark));
        self.record(result);
    }

    /// Read your own writes, then records the acknowledged commit.
    pub(super) fn on_acknowledged(
        &mut self,
        node: usize,
        txn: &TxnMessage,
        seqno: u64,
        store: &Store,
        watermark: u64,
    ) {
        let result = read_your_writes::check(&self.txns, node, txn, seqno, store, watermark);
        self.record(result);
        self.txns.acknowledged.push((txn.id, seqno));
        self.consistency.on_acknowledged(seqno);
    }

    /// The consistency levels' checks of one run of a request's body.
    pub(super) fn on_execute(&mut self, run: &Execution) {
        if self.failure.is_some() {
            return;
        }
        let result = consistency::check_execution(&self.consistency, &self.txns, run);
        self.record(result);
    }

    /// The failover check of the verdict of a request that started on a primary.
    pub(super) fn on_own_verdict(
        &mut self,
        stream: StreamId,
        level: crate::consistency::Consistency,
        primary_since: Option<u64>,
        verdict: Verdict,
    ) {
        let result = consistency::check_failover_verdict(stream, level, primary_since, verdict);
        self.record(result);
    }

    /// A client was told its transaction aborted (every attempt in `attempts`).
    pub(super) fn on_reported_aborted(&mut self, attempts: &[TxnId]) {
        self.txns.reported_aborted.extend_from_slice(attempts);
    }

    /// Totals over the final order.
    pub(super) fn certification_totals(&self) -> CertificationTotals {
        self.txns.totals()
    }

    /// Runs the end-of-run transactional checkers.
    pub(super) fn at_end_txns(&mut self, options: &BankOptions, members: &[TxnMember<'_>]) {
        if self.failure.is_some() {
            return;
        }
        let result = convergence::check(members)
            .and_then(|()| bank::check_end(&self.txns, options, members))
            .and_then(|()| acknowledged::check(&self.txns, members))
            .and_then(|()| aborted::check(&self.txns));
        self.record(result);
    }
}
