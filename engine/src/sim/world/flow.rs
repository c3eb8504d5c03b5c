//! The bank workload's flow control: every member life runs the real
//! `engine::flow_control` on simulated time, reports its queues through the order once
//! per period, and throttles its clients when its quota is used up; one node may be a
//! slow applier.
//!
//! ```text
//!  FlowTick (every period) ─► FlowControl::tick ─► propose FlowReport { applier queue, applied, proposed }
//!  FlowReport delivered    ─► FlowControl::on_report (every member)
//!  ClientTurn              ─► FlowControl::check: over quota ─► the turn comes back when the period ends
//!  commit on the slow node ─► applied one at a time, each taking its fixed time
//! ```
//!
//! This module must never read the wall clock.

use std::time::Duration;

use rand::Rng;

use crate::flow_control::{FlowMode, FlowReport};
use crate::txn::EngineMessage;

use super::super::events::Event;
use super::super::options::BankOptions;
use super::{micros, Simulation};

impl Simulation {
    /// When `node` applies the commit it just delivered: a random lag, or, on the slow
    /// applier, the end of its queue plus its fixed time.
    pub(super) fn apply_at(&mut self, node: usize, bank: &BankOptions) -> u64 {
        match bank.slow_applier {
            Some((slow, each)) if slow == node => {
                let Some(txn_node) = self.nodes[node].txn.as_mut() else {
                    return self.now;
                };
                let at = txn_node.apply_free_at.max(self.now) + micros(each).max(1);
                txn_node.apply_free_at = at;
                at
            }
            _ => self.now + self.rng.random_range(1..=micros(bank.apply_lag_max).max(1)),
        }
    }

    /// Whether `node`'s quota holds client `client` back now: its turn then comes back
    /// when the period ends (counted as a throttled wait).
    pub(super) fn flow_throttles(&mut self, node: usize, client: usize) -> bool {
        let now = Duration::from_micros(self.now);
        let life = self.nodes[node].life;
        let Some(txn_node) = self.nodes[node].txn.as_mut() else {
            return false;
        };
        let Err(wait) = txn_node.flow.check(now) else {
            return false;
        };
        txn_node.flow.on_waited(wait);
        self.stats.flow_throttled_waits += 1;
        self.queue.push(
            self.now + micros(wait).max(1),
            Event::ClientTurn { node, life, client },
        );
        true
    }

    /// `node` ends its flow control period and reports its queues through the order.
    pub(super) fn on_flow_tick(&mut self, node: usize, life: u64) {
        let Some(flow) = self.bank().flow else {
            return;
        };
        let state = &self.nodes[node];
        if state.life != life || state.retired || self.now >= self.workload_until {
            return;
        }
        self.queue.push(
            self.now + micros(flow.period),
            Event::FlowTick { node, life },
        );
        let state = &mut self.nodes[node];
        let (Some(_), Some(txn_node)) = (state.gcs.as_ref(), state.txn.as_mut()) else {
            return;
        };
        txn_node
            .flow
            .tick(Duration::from_micros(self.now), state.id);
        if txn_node.flow.stats().quota.is_some() {
            self.stats.flow_throttled_periods += 1;
        }
        if flow.mode == FlowMode::Disabled {
            return;
        }
        let report = FlowReport {
            member: state.id,
            certifier_queue: 0,
            applier_queue: u64::try_from(txn_node.applier_queue()).unwrap_or(u64::MAX),
            applied: txn_node.applied,
            proposed: txn_node.proposed,
        };
        self.propose_message(node, &EngineMessage::FlowReport(report));
        self.process(node);
    }

    /// Bank workload: `node`'s committed transactions delivered and not applied yet (0
    /// while crashed).
    pub fn applier_queue(&self, node: usize) -> usize {
        self.nodes[node]
            .txn
            .as_ref()
            .map_or(0, super::super::txn_node::TxnNode::applier_queue)
    }
}
