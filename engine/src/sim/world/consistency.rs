//! The bank workload's consistency levels: what a simulated client waits for before
//! its request runs and after it commits, exactly as the member does (DESIGN.md
//! section 7).
//!
//! ```text
//!  request ─ BEFORE ─► propose SyncPoint ─► delivered at q ─► hold until watermark >= q ─┐
//!          ─ primary of a single-primary group, not EVENTUAL,                           │
//!            watermark below the election seqno p ─► hold until watermark >= p ─────────┤
//!          ─ otherwise ─────────────────────────────────────────────────────────────────┴─► attempt
//!  AFTER commit of another origin delivered ─► once the watermark passes it: propose Applied
//!  the replica ends an AFTER wait of an own transaction ─► the client is answered
//! ```
//!
//! This module must never read the wall clock; every choice comes from the seeded rng.

use tutti_storage::Seqno;

use crate::consistency::AfterDone;
use crate::roles::Mode;
use crate::txn::EngineMessage;

use super::super::txn_node::{ClientState, Request};
use super::Simulation;

impl Simulation {
    /// Client `client` of `node` starts `request`: first what its level waits for, then
    /// its first attempt. The caller processes the node's commands afterwards.
    pub(super) fn begin_request(&mut self, node: usize, client: usize, mut request: Request) {
        let skip = self.bank().skip_consistency_waits;
        let state = &mut self.nodes[node];
        let (Some(_), Some(txn_node)) = (state.gcs.as_ref(), state.txn.as_mut()) else {
            return;
        };
        let roles = txn_node.replica.roles();
        if roles.mode() == Some(Mode::SinglePrimary) && roles.primary() == Some(state.id) {
            request.primary_since = Some(roles.primary_since().0);
        }
        if skip {
            self.attempt(node, client, request);
            return;
        }
        if request.level.syncs_before() {
            if let Some(id) = self.propose_message(node, &EngineMessage::SyncPoint) {
                let txn_node = self.nodes[node].txn.as_mut().expect("checked above");
                txn_node.syncs.insert(id.counter, client);
                txn_node.clients[client] = ClientState::Syncing { request };
            } else {
                // The member cannot order now: the request fails before it ran.
                self.stats.consistency_refused += 1;
                self.schedule_client(node, client);
            }
            return;
        }
        if let (true, Some(since)) = (request.level.holds_on_failover(), request.primary_since) {
            if txn_node.watermark < since {
                self.stats.failover_holds += 1;
                txn_node.clients[client] = ClientState::Holding {
                    request,
                    until: since,
                };
                return;
            }
        }
        self.attempt(node, client, request);
    }

    /// `node` delivered its own sync point (gcs counter `counter`) at `seqno`: its client
    /// waits until the watermark passes it.
    pub(super) fn on_sync_point(&mut self, node: usize, counter: u64, seqno: u64) {
        let Some(txn_node) = self.nodes[node].txn.as_mut() else {
            return;
        };
        let Some(client) = txn_node.syncs.remove(&counter) else {
            return;
        };
        let state = std::mem::replace(&mut txn_node.clients[client], ClientState::Idle);
        let ClientState::Syncing { request } = state else {
            unreachable!("client {client} of node {node} waits for a sync point but is {state:?}");
        };
        self.stats.sync_points += 1;
        txn_node.clients[client] = ClientState::Holding {
            request,
            until: seqno,
        };
    }

    /// Runs the requests of `node` whose hold its watermark passed.
    pub(super) fn release_holds(&mut self, node: usize) {
        let Some(txn_node) = self.nodes[node].txn.as_mut() else {
            return;
        };
        let watermark = txn_node.watermark;
        let mut released = Vec::new();
        for client in 0..txn_node.clients.len() {
            if matches!(txn_node.clients[client], ClientState::Holding { until, .. } if until <= watermark)
            {
                let state = std::mem::replace(&mut txn_node.clients[client], ClientState::Idle);
                if let ClientState::Holding { request, .. } = state {
                    released.push((client, request));
                }
            }
        }
        for (client, request) in released {
            self.attempt(node, client, request);
        }
    }

    /// Proposes `node`'s watermark as its acknowledgement once it passed the AFTER
    /// commits due. A refused proposal is tried again at the next watermark move or low
    /// watermark tick.
    pub(super) fn acknowledge_after(&mut self, node: usize) {
        let state = &self.nodes[node];
        let Some(txn_node) = state.txn.as_ref() else {
            return;
        };
        if txn_node.ack_due <= txn_node.acked || txn_node.watermark < txn_node.ack_due {
            return;
        }
        let watermark = txn_node.watermark;
        let message = EngineMessage::Applied {
            member: state.id,
            seqno: Seqno(watermark),
        };
        if self.propose_message(node, &message).is_some() {
            if let Some(txn_node) = self.nodes[node].txn.as_mut() {
                txn_node.acked = watermark;
            }
        }
    }

    /// AFTER waits that ended at `node`: those of its own life's transactions are kept
    /// for their clients.
    pub(super) fn on_after_done(&mut self, node: usize, done: Vec<AfterDone>) {
        let Some(txn_node) = self.nodes[node].txn.as_mut() else {
            return;
        };
        for done in done {
            if done.txn.origin == txn_node.member && done.txn.incarnation == txn_node.incarnation {
                txn_node.applied_everywhere.insert(done.txn, done.acked);
            }
        }
    }
}
