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

mod checkers;
mod disk;
mod events;
mod network;
mod node;
mod options;
mod world;

pub use checkers::Failure;
pub use options::{FaultOptions, SimOptions};
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
