//! sim: the deterministic simulator (DESIGN.md section 15, `tutti vopr`).
//!
//! N members (3 to 7) each run the real `tutti_net::gcs` core. One seed (`ChaCha8`)
//! decides everything: message loss, delay, duplication and reordering; one-way and
//! two-way partitions; crashes (unsynced log writes lost, the pending tail possibly
//! torn) and restarts; timers firing early or late; leaves and rejoins; and the
//! workload, which proposes unique payloads at random times. A run has a safety phase
//! with faults, then a healing phase (partitions healed, crashed members restarted,
//! stopped members replaced, no more faults) that must converge. Checkers, one per
//! property (agreement, total order, integrity, durability, liveness), report the first
//! violation with the seed that reproduces it.
//!
//! With [`Workload::Bank`] the members run transactions instead of opaque payloads:
//! simulated clients on every member run transfers, increments and blind writes on a
//! small hot set of keys through the real local transactions (overlay, chaining),
//! replica (certification) and store, with an apply that lags delivery and finishes out
//! of order; more checkers (certification determinism, parallel apply equals serial
//! apply, bank conservation, no lost update, read your own writes, convergence,
//! acknowledged commits present, no reported abort committed) judge the run.
//!
//! ```text
//!   EventQueue (time, counter) --pop--> World::handle(event)
//!        ^                                 | Gcs input (message, timeout, persisted, propose)
//!        |                                 v
//!        +---- schedule <---- execute commands (Send -> Network, PersistEntries -> Disk,
//!                             SetTimer -> timer event, Deliver -> Checkers)
//! ```
//!
//! This module owns the simulated world; it must never read the wall clock or an
//! unseeded random source, and never reach into a core's private state: it drives the
//! cores only through their public API, exactly as a shell would.

mod bank;
mod checkers;
mod disk;
mod events;
mod network;
mod node;
mod options;
mod txn_node;
mod world;

pub use checkers::Failure;
pub use options::{BankOptions, FaultOptions, SimOptions, Workload};
pub use world::Simulation;

/// Counters of one run. Two runs with the same seed and options have equal stats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Highest view any member installed, minus the first.
    pub view_changes: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Restarts after crashes.
    pub restarts: u64,
    /// Partitions injected (one-way, two-way, isolations).
    pub partitions: u64,
    /// Members that asked to leave.
    pub leaves: u64,
    /// Fresh members that joined (initial members included).
    pub joins: u64,
    /// Messages handed to the network.
    pub messages_sent: u64,
    /// Messages the network dropped (loss and partitions).
    pub messages_dropped: u64,
    /// Deliver commands executed, over all members.
    pub entries_delivered: u64,
    /// Proposals accepted by `propose`.
    pub proposals: u64,
    /// Length of the healed group's common sequence.
    pub final_seqno: u64,
    /// Simulated events processed.
    pub events: u64,
    /// Bank workload: commits acknowledged to clients.
    pub txns_committed: u64,
    /// Bank workload: requests reported aborted after their retries.
    pub txns_aborted: u64,
    /// Bank workload: requests the group refused to order (reported aborted too).
    pub txns_refused: u64,
    /// Bank workload: requests whose member crashed or stopped before answering.
    pub txns_unknown: u64,
    /// Bank workload: requests that wrote nothing (a transfer without funds).
    pub txns_read_only: u64,
    /// Bank workload: attempts run again after a certification abort.
    pub txn_retries: u64,
    /// Bank workload: transactions certified in the final order.
    pub txns_certified: u64,
    /// Bank workload: of which aborted by certification.
    pub certification_aborts: u64,
    /// Bank workload: of which aborted by a conflict with another member's write.
    pub conflict_aborts: u64,
    /// Bank: of the aborts, those whose origin was not writable at their seqno.
    pub not_writable_aborts: u64,
    /// Bank: sync points delivered to the BEFORE requests that proposed them.
    pub sync_points: u64,
    /// Bank: requests a newly elected primary held until it applied the backlog.
    pub failover_holds: u64,
    /// Bank: AFTER commits returned once every member acknowledged them.
    pub after_commits: u64,
    /// Bank: BEFORE requests whose sync point the member could not propose.
    pub consistency_refused: u64,
    /// Bank with flow control: client turns held back by their member's quota.
    pub flow_throttled_waits: u64,
    /// Bank with flow control: periods members ended under a quota.
    pub flow_throttled_periods: u64,
    /// Bank, single-primary: voluntary view changes that moved the sequencer to the
    /// primary.
    pub hand_overs: u64,
    /// Bank workload: of which aborted because a local dependency aborted (or was never
    /// certified).
    pub dependency_aborts: u64,
    /// Bank workload: of which aborted because their snapshot was older than the gc
    /// seqno.
    pub snapshot_too_old_aborts: u64,
    /// Bank workload: the highest gc seqno a live member's certifier reached (its low
    /// watermarks are ordered and taken into certification).
    pub gc_seqno: u64,
    /// Bank workload: committed transactions chained to an in-flight local one.
    pub chained_commits: u64,
}

impl SimStats {
    /// Certification aborts per certified transaction (0 when none was certified).
    pub fn conflict_rate(&self) -> f64 {
        if self.txns_certified == 0 {
            return 0.0;
        }
        // Counts stay far below 2^52, so the conversion is exact.
        #[allow(clippy::cast_precision_loss)]
        let rate = self.certification_aborts as f64 / self.txns_certified as f64;
        rate
    }
}

/// The result of one seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimOutcome {
    /// The seed that reproduces this run.
    pub seed: u64,
    /// What happened.
    pub stats: SimStats,
    /// Ok, or the first violated property.
    pub result: Result<(), Failure>,
}

/// Runs every seed of `seeds` with `options`; returns one line per failing seed, naming
/// the seed, the members and the violated property.
pub fn failing_seeds(options: &SimOptions, seeds: std::ops::Range<u64>) -> Vec<String> {
    seeds
        .filter_map(|seed| {
            let outcome = run_seed(seed, options);
            outcome.result.err().map(|failure| {
                format!(
                    "seed {seed} ({} members): {}: {}",
                    options.members, failure.property, failure.detail
                )
            })
        })
        .collect()
}

/// Runs `seeds` with `options` and panics naming every failing seed, the property it
/// broke and what showed it: the assertion of the seed tests.
///
/// # Panics
/// When any seed fails.
pub fn assert_seeds_pass(options: &SimOptions, seeds: std::ops::Range<u64>) {
    let failures = failing_seeds(options, seeds);
    assert!(
        failures.is_empty(),
        "failing seeds:\n{}",
        failures.join("\n")
    );
}

/// Runs one seed with `options`: safety phase, healing phase, checks.
pub fn run_seed(seed: u64, options: &SimOptions) -> SimOutcome {
    if let Err(detail) = options.validate() {
        return SimOutcome {
            seed,
            stats: SimStats::default(),
            result: Err(Failure {
                property: "options",
                detail,
            }),
        };
    }
    let mut simulation = Simulation::new(seed, options.clone());
    simulation.run_random();
    simulation.outcome()
}
