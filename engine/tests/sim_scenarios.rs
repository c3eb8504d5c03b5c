//! Scripted scenarios: named faults injected by hand into a quiet simulation (no random
//! faults; the workload runs), then healing and every checker.

use std::time::Duration;

use tutti_engine::sim::{SimOptions, SimOutcome, Simulation};
use tutti_net::gcs::MemberState;

/// A quiet group of `members` that formed and ran a little.
fn formed_group(seed: u64, members: usize) -> Simulation {
    let mut simulation = Simulation::new(seed, SimOptions::quiet(members));
    simulation.run_for(Duration::from_secs(3));
    for node in 0..members {
        assert!(
            simulation.is_online(node),
            "node {node} did not come ONLINE: {:?}",
            simulation.own_state(node)
        );
    }
    simulation
}

/// Heals, lets the group converge, and checks every property.
fn heal_and_check(mut simulation: Simulation) -> SimOutcome {
    simulation.begin_healing();
    simulation.run_for(Duration::from_secs(20));
    simulation.finish();
    let outcome = simulation.outcome();
    assert_eq!(
        outcome.result,
        Ok(()),
        "seed {}: {:?}",
        outcome.seed,
        outcome.stats
    );
    outcome
}

fn sequencer(simulation: &Simulation) -> usize {
    simulation.sequencer().expect("the group has a sequencer")
}

#[test]
fn quiet_group_orders_everything() {
    let simulation = formed_group(1, 3);
    let outcome = heal_and_check(simulation);
    // Three members proposing every 40 ms on average for about 6 seconds.
    assert!(outcome.stats.final_seqno > 300, "{:?}", outcome.stats);
    assert_eq!(
        outcome.stats.final_seqno,
        outcome.stats.proposals + 3,
        "every proposal and the 3 configurations"
    );
    assert_eq!(outcome.stats.view_changes, 0);
}

#[test]
fn sequencer_crash_mid_batch() {
    let mut simulation = formed_group(2, 3);
    let old = sequencer(&simulation);
    // Step until the sequencer has a batch written but not yet synced, and crash it.
    let mut steps = 0;
    while simulation.pending_writes(old) == 0 {
        simulation.run_for(Duration::from_micros(100));
        steps += 1;
        assert!(steps < 100_000, "the sequencer never had a batch in flight");
    }
    simulation.crash(old);
    let delivered_at_crash: Vec<_> = (0..3).map(|node| simulation.delivered(node)).collect();
    simulation.run_for(Duration::from_secs(4));
    let new = sequencer(&simulation);
    assert_ne!(new, old, "another member took over");
    assert!(simulation.view(new) > Some(1), "in a newer view");
    for node in (0..3).filter(|node| *node != old) {
        assert!(
            simulation.delivered(node) > delivered_at_crash[node],
            "node {node} kept delivering"
        );
    }
    simulation.restart(old);
    let outcome = heal_and_check(simulation);
    assert!(outcome.stats.view_changes >= 1);
}

#[test]
fn partition_isolating_sequencer_then_heals() {
    let mut simulation = formed_group(3, 5);
    let old = sequencer(&simulation);
    simulation.isolate(old);
    simulation.run_for(Duration::from_millis(200));
    let stuck = simulation.delivered(old);
    simulation.run_for(Duration::from_secs(3));
    // The majority moved on under a new sequencer; the isolated one delivered nothing
    // more and shows the others UNREACHABLE.
    let new = sequencer(&simulation);
    assert_ne!(new, old);
    assert!(simulation.delivered(new) > stuck);
    assert_eq!(
        simulation.delivered(old),
        stuck,
        "an isolated sequencer cannot commit"
    );
    let other = (0..5).find(|node| *node != old).expect("five nodes");
    assert_eq!(
        simulation.shown_state(old, other),
        Some(MemberState::Unreachable)
    );
    simulation.heal();
    simulation.run_for(Duration::from_secs(2));
    // It follows the new view once it hears it.
    assert_eq!(simulation.view(old), simulation.view(new));
    assert!(simulation.is_online(old));
    heal_and_check(simulation);
}

#[test]
fn minority_partition_blocks_while_majority_continues() {
    let mut simulation = formed_group(4, 5);
    let leader = sequencer(&simulation);
    let minority: Vec<usize> = (0..5).filter(|node| *node != leader).take(2).collect();
    simulation.partition(&minority);
    simulation.run_for(Duration::from_millis(200));
    let before: Vec<_> = (0..5).map(|node| simulation.delivered(node)).collect();
    simulation.run_for(Duration::from_secs(4));
    for (node, before) in before.into_iter().enumerate() {
        if minority.contains(&node) {
            assert_eq!(
                simulation.delivered(node),
                before,
                "minority node {node} delivered without a majority"
            );
            assert_eq!(
                simulation.shown_state(node, leader),
                Some(MemberState::Unreachable)
            );
        } else {
            assert!(
                simulation.delivered(node) > before,
                "majority node {node} kept delivering"
            );
        }
    }
    simulation.heal();
    heal_and_check(simulation);
}

#[test]
fn member_rejoins_after_restart() {
    let mut simulation = formed_group(5, 3);
    let follower = (0..3)
        .find(|node| Some(*node) != simulation.sequencer())
        .expect("a follower");
    simulation.crash(follower);
    simulation.run_for(Duration::from_secs(2));
    simulation.restart(follower);
    simulation.run_for(Duration::from_secs(3));
    assert!(
        simulation.is_online(follower),
        "{:?}",
        simulation.own_state(follower)
    );
    let outcome = heal_and_check(simulation);
    assert_eq!(outcome.stats.restarts, 1);
}

#[test]
fn expelled_member_rejoins_after_restart() {
    let mut simulation = formed_group(6, 3);
    let follower = (0..3)
        .find(|node| Some(*node) != simulation.sequencer())
        .expect("a follower");
    simulation.crash(follower);
    // Longer than member_expel_timeout: the group removes it and goes on with two.
    simulation.run_for(Duration::from_secs(8));
    let other = (0..3)
        .find(|node| *node != follower)
        .expect("another member");
    assert_eq!(
        simulation.shown_state(other, follower),
        Some(MemberState::Offline)
    );
    simulation.restart(follower);
    // Told it is no longer a member, it asks to join again (auto-rejoin) with the same
    // id and its log, and comes back ONLINE: no replacement node was needed.
    simulation.run_for(Duration::from_secs(3));
    assert!(
        simulation.is_online(follower),
        "{:?}",
        simulation.own_state(follower)
    );
    assert_eq!(
        simulation.shown_state(other, follower),
        Some(MemberState::Online)
    );
    assert_eq!(simulation.node_count(), 3);
    heal_and_check(simulation);
}

#[test]
fn whole_group_restart_resumes() {
    let mut simulation = formed_group(7, 3);
    let delivered = simulation.delivered(0);
    for node in 0..3 {
        simulation.crash(node);
    }
    simulation.run_for(Duration::from_secs(1));
    for node in 0..3 {
        simulation.restart(node);
    }
    simulation.run_for(Duration::from_secs(6));
    // A majority of the last configuration is back: a new view forms and ordering
    // resumes past everything delivered before the stop.
    assert!(simulation.sequencer().is_some());
    for node in 0..3 {
        assert!(
            simulation.is_online(node),
            "node {node}: {:?}",
            simulation.own_state(node)
        );
        assert!(simulation.delivered(node) > delivered);
    }
    heal_and_check(simulation);
}
