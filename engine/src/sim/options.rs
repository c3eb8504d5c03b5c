//! Simulator options: group size, durations, workload and fault knobs.
//!
//! This module owns the knobs and their validation; it must never run anything.

use std::time::Duration;

/// Members a simulated group starts with, at least.
pub const SIM_MEMBERS_MIN: usize = 3;
/// Members a simulated group starts with, at most.
pub const SIM_MEMBERS_MAX: usize = 7;

/// Which faults the simulator injects during the safety phase, and how often.
// Each flag switches one independent kind of fault on or off; `tutti vopr` maps them
// to command-line switches one to one.
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone, Debug, PartialEq)]
pub struct FaultOptions {
    /// Probability that a message is lost.
    pub loss_probability: f64,
    /// Probability that a message is delivered twice.
    pub duplicate_probability: f64,
    /// Shortest one-way message delay.
    pub delay_min: Duration,
    /// Longest one-way message delay (delays are uniform in between, so messages
    /// reorder).
    pub delay_max: Duration,
    /// Longest time from a log write to its simulated fsync completion.
    pub fsync_delay_max: Duration,
    /// Mean time between injected faults (crash, restart, partition, leave).
    pub fault_interval: Duration,
    /// Whether members crash (and restart later).
    pub crashes: bool,
    /// Whether a crash may leave a torn prefix of the unsynced writes behind.
    pub torn_writes: bool,
    /// Whether the network partitions (one-way, two-way, isolations).
    pub partitions: bool,
    /// Whether members leave (and fresh members join in their place).
    pub membership_changes: bool,
    /// Timers fire up to this much early or late.
    pub clock_jitter: Duration,
}

impl FaultOptions {
    /// No random faults at all (scripted scenarios inject their own).
    pub fn none() -> FaultOptions {
        FaultOptions {
            loss_probability: 0.0,
            duplicate_probability: 0.0,
            delay_min: Duration::from_micros(200),
            delay_max: Duration::from_micros(1500),
            fsync_delay_max: Duration::from_millis(2),
            fault_interval: Duration::from_secs(1),
            crashes: false,
            torn_writes: false,
            partitions: false,
            membership_changes: false,
            clock_jitter: Duration::ZERO,
        }
    }
}

impl Default for FaultOptions {
    fn default() -> FaultOptions {
        FaultOptions {
            loss_probability: 0.02,
            duplicate_probability: 0.01,
            delay_min: Duration::from_micros(100),
            delay_max: Duration::from_millis(8),
            fsync_delay_max: Duration::from_millis(3),
            fault_interval: Duration::from_millis(1500),
            crashes: true,
            torn_writes: true,
            partitions: true,
            membership_changes: true,
            clock_jitter: Duration::from_millis(20),
        }
    }
}

/// Everything that shapes a run besides the seed.
#[derive(Clone, Debug, PartialEq)]
pub struct SimOptions {
    /// Members the group starts with (3 to 7).
    pub members: usize,
    /// Length of the phase with faults.
    pub safety_duration: Duration,
    /// Length of the phase without faults that must converge.
    pub healing_duration: Duration,
    /// How long into healing members keep proposing; the rest of healing must deliver
    /// everything.
    pub healing_workload: Duration,
    /// Mean time between two proposals of one member.
    pub proposal_interval: Duration,
    /// Bytes per proposal payload (at least 16, to hold a unique tag).
    pub payload_bytes: usize,
    /// Fault knobs.
    pub faults: FaultOptions,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            members: 3,
            safety_duration: Duration::from_secs(20),
            healing_duration: Duration::from_secs(25),
            healing_workload: Duration::from_secs(3),
            proposal_interval: Duration::from_millis(40),
            payload_bytes: 24,
            faults: FaultOptions::default(),
        }
    }
}

impl SimOptions {
    /// Options for scripted scenarios: no random faults.
    pub fn quiet(members: usize) -> SimOptions {
        SimOptions {
            members,
            faults: FaultOptions::none(),
            ..SimOptions::default()
        }
    }

    /// Checks the knobs; the error names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        if !(SIM_MEMBERS_MIN..=SIM_MEMBERS_MAX).contains(&self.members) {
            return Err(format!(
                "members = {} is outside {SIM_MEMBERS_MIN}..={SIM_MEMBERS_MAX}",
                self.members
            ));
        }
        if self.payload_bytes < 16 {
            return Err(format!(
                "payload_bytes = {} is below 16",
                self.payload_bytes
            ));
        }
        let probabilities = [
            self.faults.loss_probability,
            self.faults.duplicate_probability,
        ];
        if probabilities.iter().any(|p| !(0.0..1.0).contains(p)) {
            return Err("loss and duplicate probabilities must be in 0.0..1.0".to_string());
        }
        if self.faults.delay_min > self.faults.delay_max || self.proposal_interval.is_zero() {
            return Err(
                "delay_min must not exceed delay_max, and proposal_interval must be positive"
                    .to_string(),
            );
        }
        if self.faults.fault_interval.is_zero() || self.healing_workload > self.healing_duration {
            return Err(
                "fault_interval must be positive and healing_workload within healing_duration"
                    .to_string(),
            );
        }
        Ok(())
    }
}
