//! The bank workload's side of the world: members' transactional state, their clients,
//! the lagging apply and the low watermark proposals.
//!
//! ```text
//!  ClientTurn ─► LocalTxns::execute at the watermark ─► encode ─► gcs.propose
//!                                                          └─ refused: withdraw, "aborted"
//!  Deliver ─► TxnNode::deliver (certify) ─┬─ committed ─► Apply event after a random lag
//!                                         └─ own transaction: on_verdict
//!                                              abort: run again (autocommit_retries), then "aborted"
//!  watermark passes a committed own seqno ─► the client is acknowledged ("committed")
//!  crash or retirement before that ─► "unknown"
//! ```
//!
//! Every choice (which transaction, think time, apply lag) comes from the seeded rng, so
//! a seed replays exactly. This module must never read the wall clock.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tutti_net::gcs::{Entry, EntryBody, ProposalId, Status, Time};
use tutti_storage::Seqno;

use crate::certifier::Verdict;
use crate::consistency::Consistency;
use crate::replica::{Control, Outcome};
use crate::txn::{encode_message, EngineMessage, TxnMessage};

use super::super::bank::BankOp;
use super::super::checkers::{Execution, StreamId, TxnMember};
use super::super::events::Event;
use super::super::options::BankOptions;
use super::super::txn_node::{ClientState, Request, TxnNode};
use super::{micros, Simulation};

fn count(items: usize) -> u64 {
    u64::try_from(items).unwrap_or(u64::MAX)
}

impl Simulation {
    pub(super) fn bank(&self) -> BankOptions {
        *self
            .options
            .bank_options()
            .expect("only the bank workload has transactional state")
    }

    /// Creates `node`'s transactional state for its current life (its gcs core must
    /// exist), and schedules its clients and its low watermark proposals.
    pub(super) fn start_txn_node(&mut self, node: usize) {
        let bank = self.bank();
        let now = Duration::from_micros(self.now);
        let state = &mut self.nodes[node];
        let Some(gcs) = state.gcs.as_ref() else {
            return;
        };
        state.txn = Some(TxnNode::new(state.id, gcs.incarnation().0, &bank, now));
        let life = state.life;
        self.checkers
            .consistency
            .on_life_started((node, life), self.now);
        for client in 0..bank.clients_per_member {
            let at = self.now + self.random_delay(bank.think_time);
            self.queue
                .push(at, Event::ClientTurn { node, life, client });
        }
        let at = self.now + self.random_delay(bank.low_watermark_interval);
        self.queue.push(at, Event::LowWatermarkTick { node, life });
        if let Some(flow) = bank.flow {
            self.queue.push(
                self.now + micros(flow.period),
                Event::FlowTick { node, life },
            );
        }
    }

    /// Ends `node`'s transactional state (a crash or a retirement): clients still
    /// waiting never learn their outcome.
    pub(super) fn stop_txn_node(&mut self, node: usize) {
        if let Some(txn_node) = self.nodes[node].txn.take() {
            self.stats.txns_unknown += count(txn_node.busy_clients());
        }
    }

    /// Uniform in 1 ..= twice `mean`, in microseconds.
    fn random_delay(&mut self, mean: std::time::Duration) -> u64 {
        let mean = micros(mean).max(1);
        self.rng.random_range(1..=2 * mean)
    }

    pub(super) fn schedule_client(&mut self, node: usize, client: usize) {
        let think_time = self.bank().think_time;
        let life = self.nodes[node].life;
        let at = self.now + self.random_delay(think_time);
        self.queue
            .push(at, Event::ClientTurn { node, life, client });
    }

    /// The entry delivered at `seqno` reaches `node`'s replica.
    pub(super) fn on_txn_delivered(&mut self, node: usize, seqno: u64, entry: &Entry) {
        let bank = self.bank();
        let (member, life) = (self.nodes[node].id, self.nodes[node].life);
        let Some(txn_node) = self.nodes[node].txn.as_mut() else {
            return;
        };
        let Some(outcome) = txn_node.deliver(seqno, entry) else {
            return;
        };
        self.checkers
            .on_roles((node, life), seqno, txn_node.replica.roles());
        let after_done = txn_node.replica.take_after_done();
        let incarnation = txn_node.incarnation;
        self.on_after_done(node, after_done);
        match outcome {
            Outcome::Txn { txn, verdict, .. } => {
                self.checkers
                    .on_certified((node, life), seqno, &txn, verdict);
                if verdict.is_commit() {
                    let at = self.apply_at(node, &bank);
                    self.queue.push(at, Event::Apply { node, life, seqno });
                }
                let own = txn.id.origin == member && txn.id.incarnation == incarnation;
                if own {
                    self.on_own_verdict(node, seqno, txn.id.number, verdict);
                }
            }
            Outcome::Control(Control::SyncPoint) => {
                if let EntryBody::Proposal(proposal) = &entry.body {
                    if proposal.id.origin == member && proposal.id.incarnation.0 == incarnation {
                        self.on_sync_point(node, proposal.id.counter, seqno);
                    }
                }
            }
            Outcome::Control(Control::FlowReport(report)) => {
                if let Some(txn_node) = self.nodes[node].txn.as_mut() {
                    txn_node.flow.on_report(report);
                }
            }
            Outcome::Control(Control::Reconfigure(_)) => {
                if let Some(txn_node) = self.nodes[node].txn.as_mut() {
                    let members = txn_node.replica.roles().members().to_vec();
                    txn_node.flow.retain_members(&members);
                }
            }
            Outcome::Control(_) => {}
        }
        self.announce(node);
        self.follow_primary(node);
        self.after_apply(node);
    }

    /// `node` learns the verdict of its own transaction `number`, certified at `seqno`.
    fn on_own_verdict(&mut self, node: usize, seqno: u64, number: u64, verdict: Verdict) {
        let retries = self.bank().autocommit_retries;
        let committed = verdict.is_commit();
        let stream = (node, self.nodes[node].life);
        let Some(txn_node) = self.nodes[node].txn.as_mut() else {
            return;
        };
        txn_node.local.on_verdict(number, Seqno(seqno), committed);
        let Some(client) = txn_node.waiting.remove(&number) else {
            return;
        };
        let state = std::mem::replace(&mut txn_node.clients[client], ClientState::Idle);
        let ClientState::Proposed { request, txn } = state else {
            unreachable!("client {client} of node {node} waits for {number} but is {state:?}");
        };
        self.checkers
            .on_own_verdict(stream, request.level, request.primary_since, verdict);
        if committed {
            txn_node.clients[client] = ClientState::Committed {
                request,
                txn,
                seqno,
            };
        } else if request.attempts.len() <= usize::try_from(retries).unwrap_or(usize::MAX) {
            self.stats.txn_retries += 1;
            self.attempt(node, client, request);
        } else {
            self.checkers.on_reported_aborted(&request.attempts);
            self.stats.txns_aborted += 1;
            self.schedule_client(node, client);
        }
    }

    /// Runs one attempt of `request` on `node` and proposes it; a client that got its
    /// answer at once (read-only, refused) is scheduled again. The caller processes the
    /// node's commands afterwards.
    pub(super) fn attempt(&mut self, node: usize, client: usize, request: Request) {
        if self.propose_attempt(node, client, request) {
            self.schedule_client(node, client);
        }
    }

    /// The body of [`Simulation::attempt`]; returns whether the client is answered.
    fn propose_attempt(&mut self, node: usize, client: usize, mut request: Request) -> bool {
        let state = &mut self.nodes[node];
        let (Some(_), Some(txn_node)) = (state.gcs.as_ref(), state.txn.as_mut()) else {
            return false;
        };
        let watermark = Seqno(txn_node.watermark);
        self.checkers.on_execute(&Execution {
            stream: (node, state.life),
            level: request.level,
            must_see: request.must_see,
            primary_since: request.primary_since,
            snapshot: watermark.0,
        });
        let op = &request.op;
        let executed = txn_node
            .local
            .execute(&txn_node.store, watermark, |txn| op.run(txn));
        let message = match executed {
            Ok(((), Some(message))) => message,
            Ok(((), None)) => {
                self.stats.txns_read_only += 1;
                return true;
            }
            Err(_) => {
                self.stats.txns_refused += 1;
                self.checkers.on_reported_aborted(&request.attempts);
                return true;
            }
        };
        let message = EngineMessage::Txn(TxnMessage {
            after: request.level.waits_after(),
            ..message
        });
        let proposed = self.propose_message(node, &message).is_some();
        let EngineMessage::Txn(message) = message else {
            unreachable!("built as a transaction above");
        };
        request.attempts.push(message.id);
        let txn_node = self.nodes[node].txn.as_mut().expect("checked above");
        if proposed {
            txn_node.waiting.insert(message.id.number, client);
            txn_node.flow.take();
            txn_node.proposed += 1;
            request.proposed_at = self.now;
            txn_node.clients[client] = ClientState::Proposed {
                request,
                txn: Arc::new(message),
            };
            false
        } else {
            txn_node.local.withdraw(message.id.number);
            self.stats.txns_refused += 1;
            self.checkers.on_reported_aborted(&request.attempts);
            true
        }
    }

    /// Client `client` of `node` starts its next request.
    pub(super) fn on_client_turn(&mut self, node: usize, life: u64, client: usize) {
        let state = &self.nodes[node];
        if state.life != life || state.retired || self.now >= self.workload_until {
            return;
        }
        if state
            .txn
            .as_ref()
            .is_none_or(|txn_node| txn_node.clients[client].is_busy())
        {
            return;
        }
        let bank = self.bank();
        if self.flow_throttles(node, client) {
            return;
        }
        self.bank_requests += 1;
        let tag = format!("{}.{}", self.seed, self.bank_requests);
        let op = BankOp::random(&mut self.rng, &bank, &tag);
        let level = bank
            .consistency
            .unwrap_or_else(|| Consistency::ALL[self.rng.random_range(0..Consistency::ALL.len())]);
        let request = Request {
            op,
            attempts: Vec::new(),
            level,
            must_see: self.checkers.consistency.max_acknowledged(),
            primary_since: None,
            proposed_at: 0,
        };
        self.begin_request(node, client, request);
        self.process(node);
    }

    /// `node` applies the committed transaction at `seqno`.
    pub(super) fn on_apply(&mut self, node: usize, life: u64, seqno: u64) {
        if self.nodes[node].life != life {
            return;
        }
        if let Some(txn_node) = self.nodes[node].txn.as_mut() {
            txn_node.apply(seqno);
            self.after_apply(node);
            self.process(node);
        }
    }

    /// Moves `node`'s watermark; checks the store there, releases the clients it held
    /// and acknowledges AFTER commits it passed; then answers the clients whose commit is
    /// done. The caller processes the node's commands afterwards.
    pub(super) fn after_apply(&mut self, node: usize) {
        let bank = self.bank();
        let life = self.nodes[node].life;
        let Some(txn_node) = self.nodes[node].txn.as_mut() else {
            return;
        };
        if txn_node.advance_watermark() {
            self.checkers.on_watermark(
                &bank,
                (node, life),
                txn_node.watermark,
                &txn_node.store,
                &txn_node.serial,
            );
            self.release_holds(node);
            self.acknowledge_after(node);
        }
        self.answer_committed(node);
    }

    /// Acknowledges the clients whose commit the watermark passed (and, at AFTER, that
    /// every member applied).
    pub(super) fn answer_committed(&mut self, node: usize) {
        let skip = self.bank().skip_consistency_waits;
        let life = self.nodes[node].life;
        let Some(txn_node) = self.nodes[node].txn.as_mut() else {
            return;
        };
        let watermark = txn_node.watermark;
        let mut done = Vec::new();
        for client in 0..txn_node.clients.len() {
            let ClientState::Committed {
                request,
                txn,
                seqno,
            } = &txn_node.clients[client]
            else {
                continue;
            };
            if *seqno > watermark {
                continue;
            }
            let everywhere = if request.level.waits_after() && skip {
                Some(txn_node.replica.roles().members().to_vec())
            } else if request.level.waits_after() {
                match txn_node.applied_everywhere.remove(&txn.id) {
                    Some(acked) => Some(acked),
                    None => continue,
                }
            } else {
                None
            };
            let state = std::mem::replace(&mut txn_node.clients[client], ClientState::Idle);
            let ClientState::Committed {
                request,
                txn,
                seqno,
            } = state
            else {
                unreachable!("matched above");
            };
            done.push((client, request, txn, seqno, everywhere));
        }
        for (client, request, txn, seqno, everywhere) in done {
            let txn_node = self.nodes[node].txn.as_ref().expect("checked above");
            self.checkers
                .on_acknowledged(node, &txn, seqno, &txn_node.store, watermark);
            self.stats.txns_committed += 1;
            if let Some(acked) = everywhere {
                let mut lives: Vec<StreamId> = acked
                    .iter()
                    .filter_map(|member| self.index.get(member))
                    .map(|&other| (other, self.nodes[other].life))
                    .collect();
                lives.push((node, life));
                self.checkers
                    .consistency
                    .on_after_returned(seqno, request.proposed_at, &lives);
                self.stats.after_commits += 1;
            }
            self.schedule_client(node, client);
        }
    }

    /// `node` proposes its watermark as its low watermark (when it is higher than any it
    /// proposed before), and reclaims some dead index entries.
    pub(super) fn on_low_watermark_tick(&mut self, node: usize, life: u64) {
        let state = &self.nodes[node];
        if state.life != life || state.retired || self.now >= self.workload_until {
            return;
        }
        let interval = self.bank().low_watermark_interval;
        let at = self.now + self.random_delay(interval);
        self.queue.push(at, Event::LowWatermarkTick { node, life });
        // A member whose proposal failed (not in normal status) announces and
        // acknowledges here later.
        self.announce(node);
        self.acknowledge_after(node);
        self.process(node);
        let state = &mut self.nodes[node];
        let Some(txn_node) = state.txn.as_mut() else {
            return;
        };
        txn_node.replica.reclaim_step();
        let watermark = txn_node.watermark;
        let stopped = state
            .gcs
            .as_ref()
            .is_none_or(|gcs| gcs.status() == Status::Stopped);
        if watermark <= state.low_watermark_proposed || stopped {
            return;
        }
        let message = EngineMessage::LowWatermark {
            member: state.id,
            seqno: Seqno(watermark),
        };
        if self.propose_message(node, &message).is_some() {
            self.nodes[node].low_watermark_proposed = watermark;
        }
        self.process(node);
    }

    /// Proposes `message` through `node`'s core and records it for the checkers; `None`
    /// when the node is down or its core refused (not in normal status, queue full).
    /// The caller processes the node's commands afterwards.
    pub(super) fn propose_message(
        &mut self,
        node: usize,
        message: &EngineMessage,
    ) -> Option<ProposalId> {
        let now = Time(self.now);
        let gcs = self.nodes[node].gcs.as_mut()?;
        let mut bytes = Vec::new();
        encode_message(message, &mut bytes);
        let payload: Arc<[u8]> = bytes.into();
        let id = gcs.propose(now, Arc::clone(&payload)).ok()?;
        self.stats.proposals += 1;
        self.checkers
            .on_propose(&payload, id.origin, id.incarnation, id.counter);
        Some(id)
    }

    /// The transactional checkers at the end of the run, and the totals.
    pub(super) fn finish_txns(&mut self) {
        let bank = self.bank();
        let members: Vec<TxnMember<'_>> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, state)| !state.retired && state.gcs.is_some())
            .filter_map(|(node, state)| {
                let txn_node = state.txn.as_ref()?;
                Some(TxnMember {
                    node,
                    online: state.is_online(),
                    store: &txn_node.store,
                    watermark: txn_node.watermark,
                    delivered: txn_node.delivered(),
                    busy_clients: txn_node.busy_clients(),
                })
            })
            .collect();
        self.checkers.at_end_txns(&bank, &members);
        self.stats.gc_seqno = self
            .nodes
            .iter()
            .filter_map(|state| state.txn.as_ref())
            .map(|txn_node| txn_node.replica.gc_seqno().0)
            .max()
            .unwrap_or(0);
        self.stats.txns_unknown += members
            .iter()
            .filter(|member| !member.online)
            .map(|member| count(member.busy_clients))
            .sum::<u64>();
        let totals = self.checkers.certification_totals();
        self.stats.txns_certified = totals.certified;
        self.stats.certification_aborts = totals.aborted;
        self.stats.conflict_aborts = totals.conflicts;
        self.stats.not_writable_aborts = totals.not_writable;
        self.stats.dependency_aborts = totals.dependency_aborts;
        self.stats.snapshot_too_old_aborts = totals.snapshot_too_old;
        self.stats.chained_commits = totals.chained_commits;
    }
}
