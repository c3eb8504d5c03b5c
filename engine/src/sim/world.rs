//! The simulated world: nodes, network, disk events, faults, workload and checkers.
//!
//! [`Simulation`] is also the scripting API of scenario tests: they build a quiet
//! simulation, inject faults by hand (crash, isolate, partition), and heal. Random
//! runs schedule faults from the seed instead. This module must never read the wall
//! clock or an unseeded random source.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tutti_net::gcs::{
    Command, Gcs, GcsConfig, MemberId, MemberState, Message, RestoredState, Seqno, Status, Time,
};

use super::checkers::{Checkers, Failure, LiveStream};
use super::events::{Event, EventQueue};
use super::network::{Fate, Network};
use super::node::Node;
use super::options::SimOptions;
use super::{SimOutcome, SimStats};

mod consistency;
mod flow;
mod roles;
mod transactions;

/// Events one run may process before it is declared runaway.
const EVENTS_MAX: u64 = 20_000_000;
/// Nodes (initial plus replacements) one run may create, per initial member.
const NODES_PER_MEMBER_MAX: usize = 4;
/// How long a stopped node waits before a fresh node replaces it.
const REPLACE_DELAY: Duration = Duration::from_secs(1);
/// Shortest and longest crash before the restart.
const CRASH_DURATION_MIN: Duration = Duration::from_millis(300);
const CRASH_DURATION_MAX: Duration = Duration::from_secs(8);
/// Shortest and longest random partition.
const PARTITION_DURATION_MIN: Duration = Duration::from_millis(300);
const PARTITION_DURATION_MAX: Duration = Duration::from_secs(5);

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// A deterministic simulation of one group.
pub struct Simulation {
    seed: u64,
    options: SimOptions,
    rng: ChaCha8Rng,
    now: u64,
    queue: EventQueue,
    nodes: Vec<Node>,
    index: BTreeMap<MemberId, usize>,
    network: Network,
    checkers: Checkers,
    stats: SimStats,
    group_name: u128,
    healing: bool,
    workload_until: u64,
    finished: bool,
    /// Client requests started (bank workload), for unique values.
    bank_requests: u64,
    /// Facts (version, weight) nodes announce instead of the build's version and the
    /// default weight (bank workload; election scenarios set them).
    facts: BTreeMap<usize, crate::roles::Facts>,
    /// Print every command (set `TUTTI_SIM_TRACE=1` to debug a seed).
    trace: bool,
}

impl Simulation {
    /// Creates the group: node 0 bootstraps it, the others join through it. The
    /// workload starts at once; no fault is injected unless asked.
    pub fn new(seed: u64, options: SimOptions) -> Simulation {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let group_name = rng.random::<u128>();
        let mut simulation = Simulation {
            seed,
            options,
            rng,
            now: 0,
            queue: EventQueue::default(),
            nodes: Vec::new(),
            index: BTreeMap::new(),
            network: Network::faulty(),
            checkers: Checkers::default(),
            stats: SimStats::default(),
            group_name,
            healing: false,
            workload_until: u64::MAX,
            finished: false,
            bank_requests: 0,
            facts: BTreeMap::new(),
            trace: std::env::var_os("TUTTI_SIM_TRACE").is_some(),
        };
        let ids: Vec<MemberId> = (0..simulation.options.members)
            .map(|_| simulation.fresh_id())
            .collect();
        for (position, id) in ids.iter().copied().enumerate() {
            let config = GcsConfig::new(id, group_name);
            let gcs = if position == 0 {
                Gcs::bootstrap(config, Time(0))
            } else {
                Gcs::join(config, ids.clone(), Time(0))
            };
            simulation.add_node(id, gcs);
        }
        simulation
    }

    fn fresh_id(&mut self) -> MemberId {
        loop {
            let id = MemberId(self.rng.random::<u128>());
            if !self.index.contains_key(&id) {
                return id;
            }
        }
    }

    fn add_node(&mut self, id: MemberId, gcs: Gcs) -> usize {
        let node = self.nodes.len();
        self.nodes.push(Node::new(id, gcs));
        self.index.insert(id, node);
        self.stats.joins += 1;
        if self.options.bank_options().is_some() {
            self.start_txn_node(node);
            self.process(node);
        } else {
            self.process(node);
            let first = self.now + self.proposal_delay();
            self.queue.push(first, Event::Workload { node });
        }
        node
    }

    /// Runs a whole random run: faults for `safety_duration`, then healing.
    pub fn run_random(&mut self) {
        let first_fault = self.fault_delay();
        self.queue.push(first_fault, Event::Fault);
        let safety_end = micros(self.options.safety_duration);
        self.queue.push(safety_end, Event::BeginHealing);
        self.run_until(safety_end);
        let healing = self.options.healing_duration;
        self.run_for(healing);
        self.finish();
    }

    /// Advances simulated time by `duration`.
    pub fn run_for(&mut self, duration: Duration) {
        let until = self.now.saturating_add(micros(duration));
        self.run_until(until);
    }

    fn run_until(&mut self, until: u64) {
        while self.checkers.failure.is_none() {
            let Some((at, event)) = self.queue.pop_until(until) else {
                break;
            };
            self.now = at;
            self.stats.events += 1;
            if self.stats.events > EVENTS_MAX {
                self.checkers.failure = Some(Failure {
                    property: "event_budget",
                    detail: format!("more than {EVENTS_MAX} events: a message or timer storm"),
                });
                return;
            }
            self.handle(event);
        }
        self.now = self.now.max(until);
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Message { to, from, msg } => {
                if self.trace {
                    eprintln!("{:>10} n{to} <- {from} {msg:?}", self.now);
                }
                let retired = self.nodes[to].retired;
                if let Some(gcs) = self.nodes[to].gcs.as_mut().filter(|_| !retired) {
                    gcs.on_message(Time(self.now), from, msg);
                    self.process(to);
                }
            }
            Event::Timer { node, generation } => {
                if self.nodes[node].timer_generation == generation {
                    if let Some(gcs) = self.nodes[node].gcs.as_mut() {
                        gcs.on_timeout(Time(self.now));
                        self.process(node);
                    }
                }
            }
            Event::Fsync { node, life } => self.on_fsync(node, life),
            Event::Workload { node } => self.on_workload(node),
            Event::Fault => self.inject_fault(),
            Event::Restart { node } => self.restart(node),
            Event::HealPartition { generation } => {
                if self.network.generation == generation {
                    self.network.heal();
                }
            }
            Event::Replace { node } => self.replace(node),
            Event::BeginHealing => self.begin_healing(),
            Event::Apply { node, life, seqno } => self.on_apply(node, life, seqno),
            Event::ClientTurn { node, life, client } => self.on_client_turn(node, life, client),
            Event::LowWatermarkTick { node, life } => self.on_low_watermark_tick(node, life),
            Event::FlowTick { node, life } => self.on_flow_tick(node, life),
        }
    }

    fn on_fsync(&mut self, node: usize, life: u64) {
        let state = &mut self.nodes[node];
        if state.life != life || state.gcs.is_none() {
            return;
        }
        let completions = state.disk.fsync();
        if let Some(gcs) = state.gcs.as_mut() {
            for (view, seqno) in completions {
                gcs.on_persisted(Time(self.now), view, seqno);
            }
        }
        self.process(node);
    }

    /// Executes every pending command of `node`, in order.
    fn process(&mut self, node: usize) {
        while let Some(command) = self.nodes[node].gcs.as_mut().and_then(Gcs::poll_command) {
            self.execute(node, command);
        }
    }

    fn execute(&mut self, node: usize, command: Command) {
        if self.trace {
            eprintln!("{:>10} n{node} {command:?}", self.now);
        }
        match command {
            Command::Send { to, msg } => self.send(node, to, &msg),
            Command::PersistEntries { view, entries } => {
                if self.nodes[node].disk.write(view, entries) {
                    let slowest = micros(self.options.faults.fsync_delay_max).max(20);
                    let delay = self.rng.random_range(20..=slowest);
                    let life = self.nodes[node].life;
                    self.queue
                        .push(self.now + delay, Event::Fsync { node, life });
                }
            }
            Command::TruncateLog { after } => self.nodes[node].disk.truncate(after),
            Command::PersistMeta(meta) => self.nodes[node].disk.write_meta(meta),
            Command::Deliver { seqno, entry } => {
                self.stats.entries_delivered += 1;
                let stream = (node, self.nodes[node].life);
                self.checkers.on_deliver(stream, seqno, &entry);
                if self.nodes[node].txn.is_some() {
                    self.on_txn_delivered(node, seqno.0, &entry);
                }
            }
            Command::SetTimer { at } => self.set_timer(node, at.0),
            Command::ViewInstalled { view, .. } => {
                self.stats.view_changes = self.stats.view_changes.max(view.0.saturating_sub(1));
            }
            Command::MemberStateChanged { member, state } => {
                self.nodes[node].shown.insert(member, state);
                let stopped = matches!(state, MemberState::Error | MemberState::Offline);
                if member == self.nodes[node].id && stopped {
                    let delay = if self.healing {
                        0
                    } else {
                        micros(REPLACE_DELAY)
                    };
                    self.queue.push(self.now + delay, Event::Replace { node });
                }
            }
        }
    }

    /// Hands a message to the network, which loses, delays or duplicates it.
    fn send(&mut self, node: usize, to: MemberId, msg: &Message) {
        self.stats.messages_sent += 1;
        let from = self.nodes[node].id;
        let Some(&target) = self.index.get(&to) else {
            self.stats.messages_dropped += 1;
            return;
        };
        match self
            .network
            .fate(&mut self.rng, &self.options.faults, node, target)
        {
            Fate::Dropped => self.stats.messages_dropped += 1,
            Fate::Arrives(delays) => {
                for delay in delays {
                    let event = Event::Message {
                        to: target,
                        from,
                        msg: msg.clone(),
                    };
                    self.queue.push(self.now + delay, event);
                }
            }
        }
    }

    /// Replaces `node`'s timer; while faults are on it fires up to `clock_jitter` early
    /// or late.
    fn set_timer(&mut self, node: usize, at: u64) {
        let state = &mut self.nodes[node];
        state.timer_generation += 1;
        let generation = state.timer_generation;
        let jitter = if self.healing {
            0
        } else {
            micros(self.options.faults.clock_jitter)
        };
        let fire = if jitter == 0 {
            at
        } else {
            let offset = self.rng.random_range(0..=2 * jitter);
            (at + offset).saturating_sub(jitter)
        };
        self.queue
            .push(fire.max(self.now), Event::Timer { node, generation });
    }

    fn proposal_delay(&mut self) -> u64 {
        let mean = micros(self.options.proposal_interval).max(2);
        self.rng.random_range(1..=2 * mean)
    }

    fn fault_delay(&mut self) -> u64 {
        let mean = micros(self.options.faults.fault_interval).max(2);
        self.now + self.rng.random_range(mean / 2..=mean + mean / 2)
    }

    fn on_workload(&mut self, node: usize) {
        if self.now >= self.workload_until || self.nodes[node].retired {
            return;
        }
        let next = self.now + self.proposal_delay();
        self.queue.push(next, Event::Workload { node });
        let seed = self.seed;
        let payload_bytes = self.options.payload_bytes;
        let state = &mut self.nodes[node];
        let Some(gcs) = state
            .gcs
            .as_mut()
            .filter(|gcs| gcs.status() != Status::Stopped)
        else {
            return;
        };
        state.proposals += 1;
        let mut payload = format!(
            "{seed:x}:{}:{}:{}",
            state.id.0 % 1_000_000,
            state.life,
            state.proposals
        )
        .into_bytes();
        payload.resize(payload_bytes.max(payload.len()), b'.');
        if let Ok(id) = gcs.propose(Time(self.now), payload.clone().into()) {
            self.stats.proposals += 1;
            self.checkers
                .on_propose(&payload, id.origin, id.incarnation, id.counter);
        }
        self.process(node);
    }

    /// Members that count for "at most a minority down": running, not retired.
    fn running_nodes(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|node| self.nodes[*node].is_running())
            .collect()
    }

    fn crashed_count(&self) -> usize {
        self.nodes.iter().filter(|node| node.is_crashed()).count()
    }

    fn inject_fault(&mut self) {
        if self.healing {
            return;
        }
        let next = self.fault_delay();
        self.queue.push(next, Event::Fault);
        let faults = self.options.faults.clone();
        match self.rng.random_range(0..100) {
            0..=34 if faults.crashes => {
                let running = self.running_nodes();
                if running.is_empty() || self.crashed_count() + 1 > (self.options.members - 1) / 2 {
                    return;
                }
                let victim = running[self.rng.random_range(0..running.len())];
                self.crash(victim);
                let downtime = self
                    .rng
                    .random_range(micros(CRASH_DURATION_MIN)..=micros(CRASH_DURATION_MAX));
                self.queue
                    .push(self.now + downtime, Event::Restart { node: victim });
            }
            35..=69 if faults.partitions && !self.network.is_partitioned() => {
                self.random_partition();
            }
            70..=79 if faults.membership_changes => {
                let running = self.running_nodes();
                let online: Vec<usize> = running
                    .into_iter()
                    .filter(|n| self.nodes[*n].is_online())
                    .collect();
                if online.len() < self.options.members || online.is_empty() {
                    return;
                }
                let leaver = online[self.rng.random_range(0..online.len())];
                if let Some(gcs) = self.nodes[leaver].gcs.as_mut() {
                    gcs.leave(Time(self.now));
                    self.stats.leaves += 1;
                }
                self.process(leaver);
            }
            _ => {}
        }
    }

    fn random_partition(&mut self) {
        let count = self.nodes.len();
        self.stats.partitions += 1;
        match self.rng.random_range(0..3) {
            0 => {
                let node = self.rng.random_range(0..count);
                self.network.isolate(node, count);
            }
            1 => {
                let from = self.rng.random_range(0..count);
                let to = self.rng.random_range(0..count);
                self.network.block(from, to);
            }
            _ => {
                let side: Vec<bool> = (0..count).map(|_| self.rng.random_bool(0.5)).collect();
                for a in 0..count {
                    for b in 0..count {
                        if side[a] != side[b] {
                            self.network.block(a, b);
                        }
                    }
                }
            }
        }
        let duration = self
            .rng
            .random_range(micros(PARTITION_DURATION_MIN)..=micros(PARTITION_DURATION_MAX));
        let generation = self.network.generation;
        self.queue
            .push(self.now + duration, Event::HealPartition { generation });
    }

    /// Crashes `node`: its unsynced writes are lost, or torn.
    pub fn crash(&mut self, node: usize) {
        let state = &mut self.nodes[node];
        if state.gcs.is_none() || state.retired {
            return;
        }
        state.gcs = None;
        state.life += 1;
        let pending = state.disk.pending_entries();
        let surviving = if self.options.faults.torn_writes && pending > 0 {
            self.rng.random_range(0..=pending)
        } else {
            0
        };
        self.nodes[node].disk.crash(surviving);
        self.stop_txn_node(node);
        self.stats.crashes += 1;
    }

    /// Restarts a crashed `node` from its disk.
    pub fn restart(&mut self, node: usize) {
        if !self.nodes[node].is_crashed() {
            return;
        }
        let seeds: Vec<MemberId> = self
            .nodes
            .iter()
            .filter(|n| !n.retired)
            .map(|n| n.id)
            .collect();
        let state = &mut self.nodes[node];
        let restored = RestoredState {
            meta: state.disk.meta,
            log: state.disk.durable.clone(),
            seeds,
        };
        let config = GcsConfig::new(state.id, self.group_name);
        state.gcs = Some(Gcs::restart(config, restored, Time(self.now)));
        self.stats.restarts += 1;
        if self.options.bank_options().is_some() {
            self.start_txn_node(node);
        }
        self.process(node);
    }

    /// Replaces a stopped `node` (left, expelled, ERROR) with a fresh joiner.
    fn replace(&mut self, node: usize) {
        if !self.nodes[node].is_stopped()
            || self.nodes.len() >= self.options.members * NODES_PER_MEMBER_MAX
        {
            return;
        }
        self.nodes[node].retired = true;
        self.nodes[node].gcs = None;
        self.stop_txn_node(node);
        let seeds: Vec<MemberId> = self
            .nodes
            .iter()
            .filter(|n| !n.retired)
            .map(|n| n.id)
            .collect();
        let id = self.fresh_id();
        let gcs = Gcs::join(GcsConfig::new(id, self.group_name), seeds, Time(self.now));
        self.add_node(id, gcs);
    }

    /// Blocks every link to and from `node`.
    pub fn isolate(&mut self, node: usize) {
        self.stats.partitions += 1;
        self.network.isolate(node, self.nodes.len());
    }

    /// Splits the nodes into `side` and the rest, both ways.
    pub fn partition(&mut self, side: &[usize]) {
        self.stats.partitions += 1;
        for a in 0..self.nodes.len() {
            for b in 0..self.nodes.len() {
                if side.contains(&a) != side.contains(&b) {
                    self.network.block(a, b);
                }
            }
        }
    }

    /// Heals every partition.
    pub fn heal(&mut self) {
        self.network.heal();
    }

    /// Ends the fault phase: heals partitions, stops loss, duplication and clock jitter,
    /// restarts crashed nodes, replaces stopped ones, and lets the workload run for
    /// `healing_workload` more.
    pub fn begin_healing(&mut self) {
        self.healing = true;
        self.network.heal();
        self.network.faulty = false;
        self.workload_until = self.now + micros(self.options.healing_workload);
        for node in 0..self.nodes.len() {
            if self.nodes[node].is_crashed() {
                self.restart(node);
            } else if self.nodes[node].is_stopped() {
                self.queue.push(self.now, Event::Replace { node });
            }
        }
    }

    /// Runs the end-of-run checkers (durability, liveness).
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let live: Vec<LiveStream> = (0..self.nodes.len())
            .filter(|node| !self.nodes[*node].retired && self.nodes[*node].gcs.is_some())
            .filter_map(|node| {
                let state = &self.nodes[node];
                let gcs = state.gcs.as_ref()?;
                Some(LiveStream {
                    node,
                    member: state.id,
                    incarnation: gcs.incarnation(),
                    online: state.is_online(),
                    state: format!(
                        "{:?} {:?} view {} seqno {} delivered {} members {}",
                        gcs.status(),
                        gcs.own_state(),
                        gcs.view(),
                        gcs.last_seqno(),
                        gcs.delivered_seqno(),
                        gcs.members().len()
                    ),
                    delivered: gcs.delivered_seqno(),
                    life: state.life,
                })
            })
            .collect();
        self.stats.final_seqno = live
            .iter()
            .map(|stream| stream.delivered.0)
            .max()
            .unwrap_or(0);
        self.checkers.at_end(&live);
        if self.options.bank_options().is_some() {
            self.finish_txns();
        }
    }

    /// The outcome so far (call after [`Simulation::finish`] for the full checks).
    pub fn outcome(&self) -> SimOutcome {
        SimOutcome {
            seed: self.seed,
            stats: self.stats.clone(),
            result: self.checkers.failure.clone().map_or(Ok(()), Err),
        }
    }

    /// The node that is sequencer in the highest view, if any.
    pub fn sequencer(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter(|node| self.nodes[*node].is_running())
            .filter_map(|node| {
                let gcs = self.nodes[node].gcs.as_ref()?;
                (gcs.sequencer() == Some(gcs.member())).then_some((gcs.view(), node))
            })
            .max()
            .map(|(_, node)| node)
    }

    /// Seqno delivered by `node`'s current life (zero if crashed).
    pub fn delivered(&self, node: usize) -> Seqno {
        self.nodes[node]
            .gcs
            .as_ref()
            .map_or(Seqno::ZERO, Gcs::delivered_seqno)
    }

    /// Whether `node` is in normal status and ONLINE.
    pub fn is_online(&self, node: usize) -> bool {
        self.nodes[node].is_online()
    }

    /// `node`'s own state as its core shows it (`None` while crashed).
    pub fn own_state(&self, node: usize) -> Option<MemberState> {
        self.nodes[node].gcs.as_ref().map(Gcs::own_state)
    }

    /// How `node` last showed `other` (its `MemberStateChanged` reports).
    pub fn shown_state(&self, node: usize, other: usize) -> Option<MemberState> {
        self.nodes[node].shown.get(&self.nodes[other].id).copied()
    }

    /// Log entries `node` wrote that its simulated disk has not synced yet.
    pub fn pending_writes(&self, node: usize) -> usize {
        self.nodes[node].disk.pending_entries()
    }

    /// Bank workload: `node`'s clients with a transaction in flight (0 while crashed).
    pub fn busy_clients(&self, node: usize) -> usize {
        self.nodes[node]
            .txn
            .as_ref()
            .map_or(0, super::txn_node::TxnNode::busy_clients)
    }

    /// The view `node` is in (`None` while crashed).
    pub fn view(&self, node: usize) -> Option<u64> {
        self.nodes[node].gcs.as_ref().map(|gcs| gcs.view().0)
    }

    /// Whether `node` is crashed.
    pub fn is_crashed(&self, node: usize) -> bool {
        self.nodes[node].is_crashed()
    }

    /// Number of nodes created so far (replacements included).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Simulated time now.
    pub fn now(&self) -> Duration {
        Duration::from_micros(self.now)
    }
}
