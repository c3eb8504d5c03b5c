//! Role scenarios through the simulator, under the bank workload: each election rule
//! (lowest version, then highest weight, then lowest member UUID) when the primary
//! crashes; `SET-PRIMARY` and `SWITCH-MODE` while clients write; a newly appointed
//! primary that holds its requests until it applied the old primary's backlog; and the
//! sequencer, which follows the primary by a voluntary view change. Every
//! checker of the run judges each scenario.

use std::time::Duration;

use tutti_engine::consistency::Consistency;
use tutti_engine::roles::{Facts, Mode, RoleOp, Version};
use tutti_engine::sim::{BankOptions, FaultOptions, SimOptions, Simulation, Workload};

fn bank(bank: BankOptions) -> SimOptions {
    SimOptions {
        members: 3,
        faults: FaultOptions::none(),
        workload: Workload::Bank(BankOptions {
            single_primary: true,
            ..bank
        }),
        ..SimOptions::default()
    }
}

fn facts(minor: u16, weight: u8) -> Facts {
    Facts {
        version: Version {
            major: 1,
            minor,
            patch: 0,
        },
        weight,
    }
}

fn primary(simulation: &Simulation, asked: usize) -> Option<usize> {
    match simulation.roles_at(asked) {
        Some((Mode::SinglePrimary, primary)) => primary,
        _ => None,
    }
}

/// Starts three members with `facts`, lets the bank run, crashes the first primary and
/// returns the primary the survivors elect; the run then heals and must pass every check.
fn elected_after_crash(seed: u64, facts: [Facts; 3]) -> (Simulation, usize) {
    let mut simulation = Simulation::new(seed, bank(BankOptions::default()));
    for (node, facts) in facts.into_iter().enumerate() {
        simulation.set_facts(node, facts);
    }
    simulation.run_for(Duration::from_secs(3));
    assert_eq!(
        primary(&simulation, 1),
        Some(0),
        "the bootstrapping member leads"
    );
    simulation.crash(0);
    simulation.run_for(Duration::from_secs(10));
    let elected = primary(&simulation, 1).expect("the survivors elect a primary");
    assert_eq!(primary(&simulation, 2), Some(elected), "survivors agree");
    assert_eq!(
        simulation.sequencer(),
        Some(elected),
        "the sequencer follows the primary"
    );
    (simulation, elected)
}

fn heal_and_check(mut simulation: Simulation) {
    simulation.begin_healing();
    simulation.run_for(Duration::from_secs(15));
    simulation.finish();
    let outcome = simulation.outcome();
    assert_eq!(outcome.result, Ok(()), "{:?}", outcome.stats);
    assert!(outcome.stats.txns_committed > 200, "{:?}", outcome.stats);
}

#[test]
fn the_lowest_version_wins_over_a_higher_weight() {
    // Member 2 is newer (1.9) and heavier; member 1 shares the group's lowest version.
    let (simulation, elected) =
        elected_after_crash(51, [facts(5, 50), facts(5, 10), facts(9, 100)]);
    assert_eq!(elected, 1);
    heal_and_check(simulation);
}

#[test]
fn the_highest_weight_wins_among_equal_versions() {
    let (simulation, elected) = elected_after_crash(52, [facts(5, 50), facts(5, 10), facts(5, 90)]);
    assert_eq!(elected, 2);
    heal_and_check(simulation);
}

#[test]
fn the_lowest_uuid_wins_among_equal_facts() {
    let (simulation, elected) = elected_after_crash(53, [facts(5, 50), facts(5, 50), facts(5, 50)]);
    let lowest = if simulation.member_id(1) < simulation.member_id(2) {
        1
    } else {
        2
    };
    assert_eq!(elected, lowest);
    heal_and_check(simulation);
}

/// Appoints each member primary in turn while every member's clients write at
/// `BEFORE_ON_PRIMARY_FAILOVER` and applies lag: each new primary holds requests until it
/// applied what the old one committed. With the hold skipped, the checker sees the
/// stale reads.
fn rotate_primary(skip_waits: bool) -> tutti_engine::sim::SimOutcome {
    let options = bank(BankOptions {
        consistency: Some(Consistency::BeforeOnPrimaryFailover),
        apply_lag_max: Duration::from_millis(150),
        clients_per_member: 4,
        skip_consistency_waits: skip_waits,
        ..BankOptions::default()
    });
    let mut simulation = Simulation::new(61, options);
    simulation.run_for(Duration::from_secs(2));
    for round in 0..12 {
        let next = (round + 1) % 3;
        let id = simulation.member_id(next);
        assert!(simulation.propose_role_op(round % 3, RoleOp::SetPrimary(id)));
        simulation.run_for(Duration::from_millis(600));
        if !skip_waits {
            assert_eq!(primary(&simulation, round % 3), Some(next));
            assert_eq!(simulation.sequencer(), Some(next), "the sequencer follows");
        }
    }
    simulation.begin_healing();
    simulation.run_for(Duration::from_secs(10));
    simulation.finish();
    simulation.outcome()
}

#[test]
fn set_primary_under_load_holds_the_new_primary_until_it_caught_up() {
    let outcome = rotate_primary(false);
    let stats = &outcome.stats;
    assert_eq!(outcome.result, Ok(()), "{stats:?}");
    assert!(stats.failover_holds > 0, "{stats:?}");
    assert!(stats.hand_overs >= 12, "{stats:?}");
    assert!(stats.txns_committed > 300, "{stats:?}");
    let broken = rotate_primary(true);
    let failure = broken.result.expect_err("skipping the hold is caught");
    assert_eq!(failure.property, "consistency_failover", "{failure:?}");
}

#[test]
fn switch_mode_under_load_keeps_every_check() {
    let options = bank(BankOptions {
        consistency: None,
        ..BankOptions::default()
    });
    let mut simulation = Simulation::new(71, options);
    simulation.run_for(Duration::from_secs(2));
    assert!(simulation.propose_role_op(1, RoleOp::SwitchToMulti));
    simulation.run_for(Duration::from_secs(2));
    assert_eq!(
        simulation.roles_at(2).map(|(mode, _)| mode),
        Some(Mode::MultiPrimary)
    );
    let named = simulation.member_id(2);
    assert!(simulation.propose_role_op(0, RoleOp::SwitchToSingle(Some(named))));
    simulation.run_for(Duration::from_secs(2));
    assert_eq!(primary(&simulation, 0), Some(2));
    assert!(simulation.propose_role_op(0, RoleOp::SwitchToMulti));
    simulation.run_for(Duration::from_secs(1));
    assert!(simulation.propose_role_op(1, RoleOp::SwitchToSingle(None)));
    simulation.run_for(Duration::from_secs(2));
    assert!(primary(&simulation, 1).is_some());
    heal_and_check(simulation);
}
