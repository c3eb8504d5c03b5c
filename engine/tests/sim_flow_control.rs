//! Flow control in the simulator: one member applies slowly (one transaction at a time,
//! 4 ms each), every member's clients write as fast as they can. With QUOTA the slow
//! member's applier queue stays near the threshold while the group's commit rate falls to
//! what it applies; with DISABLED the same run lets the queue grow. Every checker of the
//! bank workload judges both runs.

use std::time::Duration;

use tutti_engine::flow_control::{FlowMode, FlowOptions};
use tutti_engine::sim::{BankOptions, FaultOptions, SimOptions, SimOutcome, Simulation, Workload};

const THRESHOLD: u64 = 200;
const SLOW: usize = 2;

struct Run {
    max_late: usize,
    outcome: SimOutcome,
}

fn run(mode: FlowMode) -> Run {
    let options = SimOptions {
        members: 3,
        faults: FaultOptions::none(),
        workload: Workload::Bank(BankOptions {
            clients_per_member: 32,
            think_time: Duration::from_millis(1),
            // Many keys: few conflicts, so the group commits far faster than the slow
            // member applies.
            accounts: 1000,
            counters: 1000,
            blind_keys: 1000,
            flow: Some(FlowOptions {
                mode,
                period: Duration::from_millis(250),
                applier_threshold: THRESHOLD,
                certifier_threshold: THRESHOLD,
                ..FlowOptions::default()
            }),
            slow_applier: Some((SLOW, Duration::from_millis(4))),
            ..BankOptions::default()
        }),
        ..SimOptions::default()
    };
    let mut simulation = Simulation::new(81, options);
    let mut max_late = 0;
    for step in 0..80 {
        simulation.run_for(Duration::from_millis(100));
        if step >= 40 {
            max_late = max_late.max(simulation.applier_queue(SLOW));
        }
    }
    simulation.begin_healing();
    simulation.run_for(Duration::from_secs(120));
    simulation.finish();
    Run {
        max_late,
        outcome: simulation.outcome(),
    }
}

#[test]
fn quota_bounds_a_slow_appliers_queue_and_disabled_lets_it_grow() {
    let quota = run(FlowMode::Quota);
    let disabled = run(FlowMode::Disabled);
    eprintln!(
        "slow member's queue in the second half: QUOTA {} (threshold {THRESHOLD}), DISABLED {}; committed: QUOTA {}, DISABLED {}; QUOTA throttled {} client turns in {} periods",
        quota.max_late,
        disabled.max_late,
        quota.outcome.stats.txns_committed,
        disabled.outcome.stats.txns_committed,
        quota.outcome.stats.flow_throttled_waits,
        quota.outcome.stats.flow_throttled_periods,
    );
    let (q, d) = (&quota.outcome.stats, &disabled.outcome.stats);
    assert_eq!(quota.outcome.result, Ok(()), "{q:?}");
    assert_eq!(disabled.outcome.result, Ok(()), "{d:?}");
    let bound = usize::try_from(5 * THRESHOLD).unwrap();
    assert!(
        quota.max_late < bound,
        "QUOTA: the slow member's queue reached {} in the second half",
        quota.max_late
    );
    assert!(
        disabled.max_late > 5 * quota.max_late.max(1),
        "DISABLED: the queue reached {} only, against {} with QUOTA",
        disabled.max_late,
        quota.max_late
    );
    assert!(
        q.flow_throttled_waits > 0 && q.flow_throttled_periods > 0,
        "{q:?}"
    );
    assert_eq!(
        (d.flow_throttled_waits, d.flow_throttled_periods),
        (0, 0),
        "{d:?}"
    );
    assert!(q.txns_committed < d.txns_committed, "{q:?} {d:?}");
}

/// Flow control under every fault: reports through view changes, crashes and
/// partitions, a quota that holds clients back, and every checker of the bank workload.
#[test]
fn flow_control_seeds_under_faults() {
    let options = SimOptions {
        members: 3,
        workload: Workload::Bank(BankOptions {
            clients_per_member: 6,
            flow: Some(FlowOptions {
                period: Duration::from_millis(200),
                applier_threshold: 20,
                certifier_threshold: 20,
                ..FlowOptions::default()
            }),
            slow_applier: Some((SLOW, Duration::from_millis(3))),
            consistency: None,
            ..BankOptions::default()
        }),
        ..SimOptions::default()
    };
    tutti_engine::sim::assert_seeds_pass(&options, 5000..5020);
}
