//! Random seeds through the simulator: every one must keep every property.

use tutti_engine::sim::{assert_seeds_pass, FaultOptions, SimOptions};

fn run_many(members: usize, seeds: std::ops::Range<u64>) {
    let stress = std::env::var_os("TUTTI_SIM_STRESS").is_some();
    assert_seeds_pass(&options(members, stress), seeds);
}

/// Default options, or harsher ones: more loss and duplication, longer delays, a fault
/// every half second.
fn options(members: usize, stress: bool) -> SimOptions {
    let mut options = SimOptions {
        members,
        ..SimOptions::default()
    };
    if stress {
        options.faults = FaultOptions::stress();
    }
    options
}

#[test]
fn seeds_three_members() {
    run_many(3, 0..200);
}

#[test]
fn seeds_five_members() {
    run_many(5, 1000..1200);
}

/// Every (members, seed) that ever failed while the core was built. Each found a real
/// bug: a commit point taken from a newer view, a restarted sequencer still taken for
/// alive, lost acknowledgements never repeated, members stuck in a view the group never
/// reached, joins lost in a view change, and view changes split between two candidates.
const REGRESSIONS: &[(usize, u64)] = &[
    (3, 7),
    (3, 13),
    (3, 14),
    (3, 15),
    (3, 27),
    (3, 28),
    (3, 29),
    (3, 45),
    (3, 53),
    (3, 61),
    (3, 65),
    (3, 91),
    (5, 1003),
    (5, 1007),
    (5, 1021),
    (5, 1028),
    (5, 1033),
    (5, 1040),
    (5, 1044),
    (5, 1047),
    (5, 1058),
    (5, 1059),
    (5, 1060),
    (5, 1064),
    (5, 1065),
    (5, 1067),
    (5, 1068),
    (5, 1070),
    (5, 1078),
    (5, 1079),
    (5, 1085),
    (5, 1088),
    (5, 1093),
    (5, 20_018),
    (3, 300_310),
    (3, 300_312),
    (3, 300_918),
    (5, 500_646),
    (5, 500_785),
    (5, 1087),
    (3, 3_001_729),
    (7, 7_000_657),
    (7, 7_001_622),
    (3, 100_190),
    (3, 200_546),
];

/// Seeds that once failed with the harsher options of `TUTTI_SIM_STRESS`.
const STRESS_REGRESSIONS: &[(usize, u64)] = &[
    (3, 60_000_186),
    (3, 60_000_763),
    (3, 120_000_235),
    (3, 120_000_777),
    (3, 120_000_840),
    (7, 700_000_917),
    (3, 210_000_217),
    (3, 285_000_113),
    (3, 285_000_584),
    (3, 285_000_604),
    (3, 285_000_508),
];

#[test]
fn stress_seeds_that_once_failed() {
    for &(members, seed) in STRESS_REGRESSIONS {
        assert_seeds_pass(&options(members, true), seed..seed + 1);
    }
}

#[test]
fn seeds_that_once_failed() {
    for &(members, seed) in REGRESSIONS {
        run_many(members, seed..seed + 1);
    }
}

/// Many seeds, chosen by the environment: `TUTTI_SIM_SEEDS=1000 TUTTI_SIM_MEMBERS=5
/// TUTTI_SIM_FIRST=0 cargo test --release -p tutti-engine --test sim_seeds -- --ignored`
/// (add `TUTTI_SIM_STRESS=1` for harsher faults, `TUTTI_SIM_TRACE=1` to print every
/// command of a single failing seed).
#[test]
#[ignore = "long: run by hand with --release"]
fn seeds_from_environment() {
    let read = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let count = read("TUTTI_SIM_SEEDS", 1000);
    let first = read("TUTTI_SIM_FIRST", 0);
    let members = usize::try_from(read("TUTTI_SIM_MEMBERS", 3)).unwrap_or(3);
    run_many(members, first..first + count);
}
