//! The bank workload's roles: each member life announces its facts (version, weight)
//! once per configuration that lacks them, and scenarios propose ordered role operations
//! (`SET-PRIMARY`, `SWITCH-MODE`) and read the primary, as a shell would.

use tutti_net::gcs::{MemberId, Time};

use crate::group::MEMBER_WEIGHT_DEFAULT;
use crate::roles::{Facts, Mode, RoleOp, Version};
use crate::txn::EngineMessage;

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
        let state = &self.nodes[node];
        let (Some(_), Some(txn_node)) = (state.gcs.as_ref(), state.txn.as_ref()) else {
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
        let op = RoleOp::Announce {
            member: state.id,
            incarnation: txn_node.incarnation,
            config_seqno,
            facts,
            single_primary,
        };
        if self
            .propose_message(node, &EngineMessage::Role(op))
            .is_some()
        {
            if let Some(txn_node) = self.nodes[node].txn.as_mut() {
                txn_node.announced_in = Some(config_seqno);
            }
        }
    }

    /// In single-primary mode the sequencer follows the primary: `node` asks its core to
    /// hand the sequencer role to the primary, as the shell does (`Gcs::hand_over`
    /// decides whether it may). The caller processes the node's commands afterwards.
    pub(super) fn follow_primary(&mut self, node: usize) {
        let now = Time(self.now);
        let state = &mut self.nodes[node];
        let (Some(gcs), Some(txn_node)) = (state.gcs.as_mut(), state.txn.as_ref()) else {
            return;
        };
        let roles = txn_node.replica.roles();
        let Some(primary) = roles
            .primary()
            .filter(|_| roles.mode() == Some(Mode::SinglePrimary))
        else {
            return;
        };
        if gcs.hand_over(now, primary) {
            self.stats.hand_overs += 1;
        }
    }

    /// Proposes the ordered role operation `op` through `node` (bank workload); returns
    /// whether the node could propose it.
    pub fn propose_role_op(&mut self, node: usize, op: RoleOp) -> bool {
        let proposed = self
            .propose_message(node, &EngineMessage::Role(op))
            .is_some();
        self.process(node);
        proposed
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
