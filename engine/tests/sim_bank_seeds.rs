//! The bank workload through the simulator: transactions with real contention under
//! every fault, judged by the transactional checkers (certification determinism,
//! parallel apply equals serial apply, conserved total, no lost update, read your own
//! writes, convergence, acknowledged commits present, no reported abort committed) as
//! well as the total order's.

use std::time::Duration;

use tutti_engine::sim::{
    assert_seeds_pass, run_seed, BankOptions, FaultOptions, SimOptions, SimOutcome, Simulation,
    Workload,
};

/// Default faults and the default bank, or harsher ones: more loss and duplication,
/// longer delays, a fault every half second, more clients per member and a slower apply.
fn options(members: usize, stress: bool) -> SimOptions {
    let mut options = SimOptions {
        members,
        workload: Workload::bank(),
        ..SimOptions::default()
    };
    if stress {
        options.faults = FaultOptions::stress();
        options.workload = Workload::Bank(BankOptions {
            clients_per_member: 6,
            apply_lag_max: Duration::from_millis(20),
            low_watermark_interval: Duration::from_millis(40),
            ..BankOptions::default()
        });
    }
    options
}

#[test]
fn bank_seeds_three_members() {
    assert_seeds_pass(&options(3, false), 0..80);
}

#[test]
fn bank_seeds_five_members() {
    assert_seeds_pass(&options(5, false), 1000..1040);
}

/// Single-primary mode: every member's clients propose, the secondaries' transactions
/// must all abort at certification, the primary changes as members crash and return,
/// and every member agrees on the primary after every seqno.
fn single_primary(members: usize, stress: bool) -> SimOptions {
    let mut options = options(members, stress);
    if let Workload::Bank(bank) = &mut options.workload {
        bank.single_primary = true;
    }
    options
}

#[test]
fn bank_seeds_single_primary() {
    assert_seeds_pass(&single_primary(3, false), 2000..2040);
    assert_seeds_pass(&single_primary(5, true), 3000..3015);
}

#[test]
fn single_primary_commits_only_on_the_primary() {
    let outcome = quiet_run(21, single_primary(3, false));
    let stats = &outcome.stats;
    assert_eq!(outcome.result, Ok(()), "{stats:?}");
    // One member in three takes writes: about a third of the requests commit, the
    // secondaries' are refused by certification (and counted) after their retries.
    assert!(stats.txns_committed > 300, "{stats:?}");
    assert!(stats.not_writable_aborts > 300, "{stats:?}");
}

/// A quiet group running the bank for 6 seconds, then healing.
fn quiet_bank_run(seed: u64, members: usize, chaining: bool) -> SimOutcome {
    let mut options = options(members, false);
    options.workload = Workload::Bank(BankOptions {
        chaining,
        ..BankOptions::default()
    });
    quiet_run(seed, options)
}

/// `options` without faults: the bank for 6 seconds, then healing.
fn quiet_run(seed: u64, mut options: SimOptions) -> SimOutcome {
    options.faults = FaultOptions::none();
    let mut simulation = Simulation::new(seed, options);
    simulation.run_for(Duration::from_secs(6));
    simulation.begin_healing();
    simulation.run_for(Duration::from_secs(10));
    simulation.finish();
    simulation.outcome()
}

#[test]
fn quiet_bank_commits_conflicts_and_chains() {
    let outcome = quiet_bank_run(11, 3, true);
    let stats = &outcome.stats;
    assert_eq!(outcome.result, Ok(()), "{stats:?}");
    // Nine clients for 9 seconds of workload: thousands of requests, nearly all
    // answered as committed after their retries.
    assert!(stats.txns_committed > 1000, "{stats:?}");
    assert!(stats.txns_committed > 10 * stats.txns_aborted, "{stats:?}");
    // The hot set makes members conflict, and one member's clients chain.
    assert!(stats.conflict_aborts > 100, "{stats:?}");
    assert!(stats.chained_commits > 20, "{stats:?}");
    // Low watermarks are ordered, so certification collects its garbage.
    assert!(stats.gc_seqno > stats.final_seqno / 2, "{stats:?}");
    // Without faults every request is answered, and nothing is refused.
    assert_eq!(
        (stats.txns_unknown, stats.txns_refused),
        (0, 0),
        "{stats:?}"
    );
    assert_eq!(
        stats.certification_aborts,
        stats.conflict_aborts + stats.dependency_aborts,
        "{stats:?}"
    );
}

#[test]
fn quiet_bank_without_chaining_never_chains() {
    let outcome = quiet_bank_run(11, 3, false);
    let stats = &outcome.stats;
    assert_eq!(outcome.result, Ok(()), "{stats:?}");
    assert!(stats.txns_committed > 1000, "{stats:?}");
    assert_eq!(
        (stats.chained_commits, stats.dependency_aborts),
        (0, 0),
        "{stats:?}"
    );
}

#[test]
fn origin_crash_mid_flight_leaves_unknown_outcomes_and_the_checks_hold() {
    let mut options = options(3, false);
    options.faults = FaultOptions::none();
    let mut simulation = Simulation::new(21, options);
    simulation.run_for(Duration::from_secs(3));
    let victim = simulation.sequencer().expect("the group has a sequencer");
    // Crash it while its clients wait for outcomes.
    for _ in 0..1000 {
        if simulation.busy_clients(victim) > 0 {
            break;
        }
        simulation.run_for(Duration::from_millis(1));
    }
    assert!(
        simulation.busy_clients(victim) > 0,
        "the victim's clients stay idle"
    );
    simulation.crash(victim);
    simulation.run_for(Duration::from_secs(2));
    // The survivors' clients keep committing while the sequencer is down.
    simulation.restart(victim);
    simulation.run_for(Duration::from_secs(2));
    simulation.begin_healing();
    simulation.run_for(Duration::from_secs(20));
    simulation.finish();
    let outcome = simulation.outcome();
    let stats = &outcome.stats;
    assert_eq!(outcome.result, Ok(()), "{stats:?}");
    assert!(stats.txns_unknown > 0, "{stats:?}");
    // One view change for the crash, a second when the next view's hashed sequencer is
    // the silent member (skipped at once).
    assert!((1..=2).contains(&stats.view_changes), "{stats:?}");
    assert!(stats.txns_committed > 500, "{stats:?}");
}

#[test]
fn bank_runs_are_deterministic() {
    let options = options(3, false);
    let first = run_seed(5, &options);
    assert_eq!(first, run_seed(5, &options));
    assert!(first.stats.txns_committed > 0, "{:?}", first.stats);
}

/// Many seeds, chosen by the environment: `TUTTI_SIM_SEEDS=1000 TUTTI_SIM_MEMBERS=5
/// TUTTI_SIM_FIRST=0 cargo test --release -p tutti-engine --test sim_bank_seeds --
/// --ignored` (add `TUTTI_SIM_STRESS=1` for harsher faults and more clients).
#[test]
#[ignore = "long: run by hand with --release"]
fn bank_seeds_from_environment() {
    let read = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let count = read("TUTTI_SIM_SEEDS", 1000);
    let first = read("TUTTI_SIM_FIRST", 0);
    let members = usize::try_from(read("TUTTI_SIM_MEMBERS", 3)).unwrap_or(3);
    let stress = std::env::var_os("TUTTI_SIM_STRESS").is_some();
    assert_seeds_pass(&options(members, stress), first..first + count);
}
