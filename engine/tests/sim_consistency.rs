//! Consistency levels through the simulator: the bank workload with every request at a
//! level drawn at random (EVENTUAL, `BEFORE_ON_PRIMARY_FAILOVER`, BEFORE, AFTER,
//! `BEFORE_AND_AFTER`), in multi- and single-primary mode, under every fault, judged by
//! the level checkers (`consistency_before`, `consistency_after`, `consistency_failover`)
//! as well as every transactional and total order checker.

use std::time::Duration;

use tutti_engine::sim::{
    assert_seeds_pass, failing_seeds, BankOptions, FaultOptions, SimOptions, SimOutcome,
    Simulation, Workload,
};

fn mixed(members: usize, single_primary: bool, stress: bool) -> SimOptions {
    let mut bank = BankOptions {
        single_primary,
        consistency: None,
        ..BankOptions::default()
    };
    let mut faults = FaultOptions::default();
    if stress {
        faults = FaultOptions::stress();
        bank.clients_per_member = 6;
        bank.apply_lag_max = Duration::from_millis(20);
    }
    SimOptions {
        members,
        faults,
        workload: Workload::Bank(bank),
        ..SimOptions::default()
    }
}

#[test]
fn mixed_levels_multi_primary_seeds() {
    assert_seeds_pass(&mixed(3, false, false), 4000..4030);
    assert_seeds_pass(&mixed(5, false, true), 4100..4110);
}

#[test]
fn mixed_levels_single_primary_seeds() {
    assert_seeds_pass(&mixed(3, true, false), 4200..4230);
    assert_seeds_pass(&mixed(5, true, true), 4300..4310);
}

fn quiet(seed: u64, options: SimOptions) -> SimOutcome {
    let mut options = options;
    options.faults = FaultOptions::none();
    let mut simulation = Simulation::new(seed, options);
    simulation.run_for(Duration::from_secs(6));
    simulation.begin_healing();
    simulation.run_for(Duration::from_secs(10));
    simulation.finish();
    simulation.outcome()
}

#[test]
fn every_level_waits_and_commits_in_a_quiet_group() {
    let outcome = quiet(31, mixed(3, false, false));
    let stats = &outcome.stats;
    assert_eq!(outcome.result, Ok(()), "{stats:?}");
    assert!(stats.txns_committed > 500, "{stats:?}");
    // Two levels in five pass a sync point, two in five wait for every member.
    assert!(stats.sync_points > 300, "{stats:?}");
    assert!(stats.after_commits > 100, "{stats:?}");
    assert_eq!(stats.consistency_refused, 0, "{stats:?}");
}

/// The level checkers can fail: a member that skips the waits of its levels is caught,
/// for BEFORE and for AFTER (`sim_roles.rs` shows the failover checker catching a new
/// primary that skips its hold).
#[test]
fn a_member_that_skips_the_waits_is_caught() {
    let mut options = mixed(3, false, false);
    if let Workload::Bank(bank) = &mut options.workload {
        bank.skip_consistency_waits = true;
    }
    let mut caught = std::collections::BTreeSet::new();
    for failure in failing_seeds(&options, 4400..4410) {
        for property in ["consistency_before", "consistency_after"] {
            if failure.contains(property) {
                caught.insert(property);
            }
        }
    }
    assert_eq!(
        caught.into_iter().collect::<Vec<_>>(),
        vec!["consistency_after", "consistency_before"]
    );
}
