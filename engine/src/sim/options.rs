//! Simulator options: group size, durations, workload and fault knobs.
//!
//! This module owns the knobs and their validation; it must never run anything.

use std::time::Duration;

use crate::consistency::Consistency;
use crate::flow_control::FlowOptions;

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
    /// The stress profile of the long soak tests: the default faults with 10% loss, 5%
    /// duplication, delays up to 20 ms and a fault every 0.5 s.
    pub fn stress() -> FaultOptions {
        FaultOptions {
            loss_probability: 0.10,
            duplicate_probability: 0.05,
            delay_max: Duration::from_millis(20),
            fault_interval: Duration::from_millis(500),
            ..FaultOptions::default()
        }
    }

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

/// What the simulated members propose.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Workload {
    /// Unique opaque payloads at random times: exercises the total order alone.
    #[default]
    Messages,
    /// Transactions of a small bank through certification and apply (see
    /// [`BankOptions`]).
    Bank(BankOptions),
}

/// The bank workload: simulated clients on every member run command-style transactions
/// on a small hot set of keys, so that members really conflict.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BankOptions {
    /// Clients per member; each has one transaction in flight at a time.
    pub clients_per_member: usize,
    /// Accounts transfers move money between.
    pub accounts: usize,
    /// Counters incremented by read-modify-write transactions.
    pub counters: usize,
    /// Keys blind writes set to unique values.
    pub blind_keys: usize,
    /// Mean time a client waits between two transactions.
    pub think_time: Duration,
    /// Times a transaction aborted by certification is run again before its client is
    /// told it aborted (Galera's `wsrep_retry_autocommit`).
    pub autocommit_retries: u32,
    /// Longest time from a committed transaction's delivery to its apply. Each apply
    /// draws its own lag, so applies finish out of order within this window.
    pub apply_lag_max: Duration,
    /// Mean time between two low watermark proposals of one member.
    pub low_watermark_interval: Duration,
    /// Whether command-style transactions read their member's in-flight writes and
    /// chain to them (off: every local conflict aborts).
    pub chaining: bool,
    /// The mode members announce (the first announcement sets the group's). In
    /// single-primary mode every member's clients still propose, so certification must
    /// refuse the secondaries' transactions.
    pub single_primary: bool,
    /// The consistency level of every request; `None`: each request draws one of the
    /// five at random, so one run exercises and checks them all side by side.
    pub consistency: Option<Consistency>,
    /// A deliberately broken member, to show that the level checkers catch it: requests
    /// keep their level but skip its waits (no sync point, no failover hold, an AFTER
    /// commit returns without the acknowledgements and claims every member of the
    /// configuration acknowledged it).
    pub skip_consistency_waits: bool,
    /// Flow control (`None`: members neither report nor throttle). Its period runs on
    /// simulated time.
    pub flow: Option<FlowOptions>,
    /// One slow applier: that node applies its committed transactions one at a time,
    /// each taking the given time (instead of every apply lagging on its own), so its
    /// queue grows when the group commits faster.
    pub slow_applier: Option<(usize, Duration)>,
}

impl Default for BankOptions {
    fn default() -> BankOptions {
        BankOptions {
            clients_per_member: 3,
            accounts: 6,
            counters: 3,
            blind_keys: 4,
            think_time: Duration::from_millis(25),
            autocommit_retries: 3,
            apply_lag_max: Duration::from_millis(3),
            low_watermark_interval: Duration::from_millis(150),
            chaining: true,
            single_primary: false,
            consistency: Some(Consistency::Eventual),
            skip_consistency_waits: false,
            flow: None,
            slow_applier: None,
        }
    }
}

impl Workload {
    /// The bank workload with its default knobs.
    pub fn bank() -> Workload {
        Workload::Bank(BankOptions::default())
    }
}

impl BankOptions {
    fn validate(&self) -> Result<(), String> {
        if self.accounts < 2 || self.counters == 0 || self.blind_keys == 0 {
            return Err(format!(
                "the bank needs at least 2 accounts, 1 counter and 1 blind key (got {}, {}, {})",
                self.accounts, self.counters, self.blind_keys
            ));
        }
        if !(1..=BANK_CLIENTS_PER_MEMBER_MAX).contains(&self.clients_per_member) {
            return Err(format!(
                "clients_per_member = {} is outside 1..={BANK_CLIENTS_PER_MEMBER_MAX}",
                self.clients_per_member
            ));
        }
        if self.think_time.is_zero() || self.low_watermark_interval.is_zero() {
            return Err("think_time and low_watermark_interval must be positive".to_string());
        }
        Ok(())
    }
}

/// Clients one member serves at most in the bank workload.
pub const BANK_CLIENTS_PER_MEMBER_MAX: usize = 64;

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
    /// What the members propose.
    pub workload: Workload,
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
            workload: Workload::Messages,
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
        if let Workload::Bank(bank) = &self.workload {
            bank.validate()?;
        }
        Ok(())
    }

    /// The bank workload's options, if it runs.
    pub(super) fn bank_options(&self) -> Option<&BankOptions> {
        match &self.workload {
            Workload::Bank(bank) => Some(bank),
            Workload::Messages => None,
        }
    }
}
