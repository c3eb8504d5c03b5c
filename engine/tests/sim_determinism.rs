//! Same seed and options => the identical run: equal stats and equal result.

use tutti_engine::sim::{run_seed, SimOptions};

#[test]
fn same_seed_same_run() {
    for members in [3, 5] {
        let options = SimOptions {
            members,
            ..SimOptions::default()
        };
        let first = run_seed(42, &options);
        let second = run_seed(42, &options);
        assert_eq!(first, second);
        assert!(
            first.stats.events > 10_000,
            "the run did something: {:?}",
            first.stats
        );
        assert!(
            first.stats.crashes + first.stats.partitions > 0,
            "faults were injected: {:?}",
            first.stats
        );
    }
}

#[test]
fn different_seeds_differ() {
    let options = SimOptions::default();
    assert_ne!(run_seed(1, &options).stats, run_seed(2, &options).stats);
}

#[test]
fn invalid_options_are_reported_not_run() {
    let options = SimOptions {
        members: 9,
        ..SimOptions::default()
    };
    let outcome = run_seed(1, &options);
    assert_eq!(
        outcome.result.map_err(|failure| failure.property),
        Err("options")
    );
}
