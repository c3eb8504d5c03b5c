//! The key generators produce the distributions they claim, measured over many draws
//! from a fixed seed: the hot set gets its probability, its keys and the cold keys are
//! hit evenly, and zipf rank frequencies follow `1 / rank^theta`.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tutti_bench::keys::{Distribution, KeyChooser};

const DRAWS: usize = 400_000;

fn counts(distribution: &str, keys: u64, seed: u64) -> Vec<u64> {
    let distribution: Distribution = distribution.parse().expect("a valid distribution");
    let chooser = KeyChooser::new(distribution, keys).expect("a chooser");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut counts = vec![0u64; usize::try_from(chooser.key_space()).expect("small")];
    for _ in 0..DRAWS {
        counts[usize::try_from(chooser.choose(&mut rng)).expect("small")] += 1;
    }
    counts
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn share(counts: &[u64]) -> f64 {
    counts.iter().sum::<u64>() as f64 / DRAWS as f64
}

#[test]
fn the_hot_set_gets_its_probability_and_is_hit_evenly() {
    let counts = counts("hotset:100:0.9", 10_000, 7);
    let hot = share(&counts[..100]);
    assert!((hot - 0.9).abs() < 0.005, "hot share {hot}");
    // Each hot key expects 0.9 * DRAWS / 100 = 3600 hits; each cold one 4.04.
    let (hot_min, hot_max) = (
        counts[..100].iter().min().copied().unwrap_or(0),
        counts[..100].iter().max().copied().unwrap_or(0),
    );
    assert!(
        hot_min > 3300 && hot_max < 3900,
        "hot keys {hot_min}..{hot_max}"
    );
    let cold = share(&counts[100..]);
    assert!((cold - 0.1).abs() < 0.005, "cold share {cold}");
    let cold_hit = counts[100..].iter().filter(|&&count| count > 0).count();
    assert!(
        cold_hit > 9000,
        "only {cold_hit} cold keys were ever chosen"
    );
}

#[test]
fn a_hot_set_with_probability_one_takes_every_operation() {
    let counts = counts("hotset:10:1", 1000, 3);
    assert_eq!(counts.len(), 1000);
    assert!((share(&counts[..10]) - 1.0).abs() < f64::EPSILON);
}

#[test]
#[allow(clippy::cast_precision_loss)] // ranks and counts far below 2^52
fn zipf_rank_frequencies_follow_the_power_law() {
    for theta in [0.5, 0.99, 1.2] {
        let counts = counts(&format!("zipf:{theta}"), 1000, 11);
        let normaliser: f64 = (1..=1000u32)
            .map(|rank| 1.0 / f64::powf(f64::from(rank), theta))
            .sum();
        for rank in [1usize, 2, 3, 5, 10, 50] {
            let expected = DRAWS as f64 / f64::powf(rank as f64, theta) / normaliser;
            let observed = counts[rank - 1] as f64;
            let error = (observed - expected).abs() / expected;
            assert!(
                error < 0.05,
                "theta {theta}, rank {rank}: observed {observed}, expected {expected:.0}"
            );
        }
        // The slope between ranks 1 and 10 in log-log space is -theta.
        let slope = (counts[9] as f64 / counts[0] as f64).ln() / 10f64.ln();
        assert!((slope + theta).abs() < 0.05, "theta {theta}: slope {slope}");
    }
}

#[test]
fn uniform_spreads_evenly() {
    let counts = counts("uniform", 100, 5);
    // 4000 expected per key; a 10% band is more than 6 standard deviations.
    assert!(
        counts.iter().all(|&count| (3600..4400).contains(&count)),
        "{counts:?}"
    );
}

#[test]
fn the_same_seed_draws_the_same_keys() {
    assert_eq!(counts("zipf:0.9", 500, 42), counts("zipf:0.9", 500, 42));
    assert_ne!(counts("zipf:0.9", 500, 42), counts("zipf:0.9", 500, 43));
}
