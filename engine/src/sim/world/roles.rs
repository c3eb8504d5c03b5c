//! The bank workload's roles: each member life announces its facts (version, weight)
//! once per configuration that lacks them, and scenarios propose ordered role operations
//! (`SET-PRIMARY`, `SWITCH-MODE`) and read the primary, as a shell would.

use std::sync::Arc;

use tutti_net::gcs::{MemberId, Time};

use crate::group::MEMBER_WEIGHT_DEFAULT;
use crate::roles::{Facts, Mode, RoleOp, Version};
use crate::txn::{encode_message, EngineMessage};

use super::Simulation;

impl Simulation {
    /// The facts `node` announces.
    fn facts_of(&self, node: usize) -> Facts {
        self.facts.get(&node).copied().unwrap_or(Facts {
            version: Version::of_build(),
            weight: MEMBER_WEIGHT_DEFAULT,
        })
    }

    /// Makes `node` announce `facts` (bank workload; call it before the node's first
    /// configuration is delivered, right after [`Simulation::new`] for the first
    /// members).
    pub fn set_facts(&mut self, node: usize, facts: Facts) {
        self.facts.insert(node, facts);
    }

    /// `node` announces its facts when the configuration does not hold them (a new
    /// member, one expelled and back, a restart with other facts), once per
    /// configuration. The caller processes the node's commands afterwards.
    pub(super) fn announce(&mut self, node: usize) {
        let single_primary = self.bank().single_primary;
        let facts = self.facts_of(node);
        let now = Time(self.now);
        let state = &mut self.nodes[node];
        let (Some(gcs), Some(txn_node)) = (state.gcs.as_mut(), state.txn.as_mut()) else {
            return;
        };
        let roles = txn_node.replica.roles();
        let config_seqno = roles.config_seqno();
        if !roles.is_member(state.id)
            || roles.facts(state.id) == Some(facts)
            || txn_node.announced_in == Some(config_seqno)
        {
            return;
        }
        let mut bytes = Vec::new();
        let op = RoleOp::Announce {
            member: state.id,
            incarnation: txn_node.incarnation,
            config_seqno,
            facts,
            single_primary,
        };
        encode_message(&EngineMessage::Role(op), &mut bytes);
        let payload: Arc<[u8]> = bytes.into();
        if let Ok(id) = gcs.propose(now, Arc::clone(&payload)) {
            txn_node.announced_in = Some(config_seqno);
            self.stats.proposals += 1;
            self.checkers
                .on_propose(&payload, id.origin, id.incarnation, id.counter);
        }
    }

    /// Proposes the ordered role operation `op` through `node` (bank workload); returns
    /// whether the node could propose it.
    pub fn propose_role_op(&mut self, node: usize, op: RoleOp) -> bool {
        let now = Time(self.now);
        let Some(gcs) = self.nodes[node].gcs.as_mut() else {
            return false;
        };
        let mut bytes = Vec::new();
        encode_message(&EngineMessage::Role(op), &mut bytes);
        let payload: Arc<[u8]> = bytes.into();
        let Ok(id) = gcs.propose(now, Arc::clone(&payload)) else {
            return false;
        };
        self.stats.proposals += 1;
        self.checkers
            .on_propose(&payload, id.origin, id.incarnation, id.counter);
        self.process(node);
        true
    }

    /// The group's mode and primary node as `node`'s replica holds them (bank workload;
    /// `None` while it is crashed or knows no mode).
    pub fn roles_at(&self, node: usize) -> Option<(Mode, Option<usize>)> {
        let roles = self.nodes[node].txn.as_ref()?.replica.roles();
        let primary = roles
            .primary()
            .and_then(|member| self.index.get(&member).copied());
        Some((roles.mode()?, primary))
    }

    /// `node`'s member id.
    pub fn member_id(&self, node: usize) -> MemberId {
        self.nodes[node].id
    }
}
