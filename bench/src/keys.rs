//! Key choice: which of the workload's `keys` an operation touches.
//!
//! Three distributions, each parsed from the text the command line takes:
//!
//! - `uniform`: every key equally likely.
//! - `zipf:<theta>`: key of rank r (1-based) with probability proportional to
//!   `1 / r^theta`, drawn exactly from a precomputed cumulative table (binary search), so
//!   any theta >= 0 works, including 1 (YCSB's closed-form generator does not).
//! - `hotset:<keys>:<probability>`: with `probability` a key of the first `<keys>` (the
//!   hot set), uniformly; otherwise one of the others, uniformly. With probability 1
//!   every operation lands on the hot set, whatever the size of the key space.
//!
//! Randomness is an input: a chooser draws from the RNG it is handed (seeded per client
//! from the run's seed), so a run's sequence of keys is reproducible.

use std::fmt;
use std::str::FromStr;

use rand::Rng;

/// Most keys a run may address (the zipf table holds one `f64` per key).
pub const KEYS_MAX: u64 = 10_000_000;

/// How keys are chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// Rank r with probability proportional to `1 / r^theta`.
    Zipf {
        /// The skew: 0 is uniform, 0.99 is YCSB's default.
        theta: f64,
    },
    /// A hot set of the first `keys` keys, hit with `probability`.
    HotSet {
        /// Size of the hot set.
        keys: u64,
        /// Probability that an operation's key is in the hot set.
        probability: f64,
    },
}

impl Distribution {
    /// Keys this distribution can return out of `keys`: the support a transaction's
    /// distinct keys are drawn from.
    pub fn support(&self, keys: u64) -> u64 {
        match *self {
            Distribution::HotSet {
                keys: hot,
                probability,
            } if probability >= 1.0 => hot,
            Distribution::HotSet { keys: hot, .. } => keys.max(hot),
            _ => keys,
        }
    }

    /// The key space actually addressed: a hot set larger than `keys` widens it.
    pub fn key_space(&self, keys: u64) -> u64 {
        match *self {
            Distribution::HotSet { keys: hot, .. } => keys.max(hot),
            _ => keys,
        }
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distribution::Uniform => f.write_str("uniform"),
            Distribution::Zipf { theta } => write!(f, "zipf:{theta}"),
            Distribution::HotSet { keys, probability } => write!(f, "hotset:{keys}:{probability}"),
        }
    }
}

impl FromStr for Distribution {
    type Err = String;

    fn from_str(text: &str) -> Result<Distribution, String> {
        let allowed = "use uniform, zipf:<theta> (theta >= 0, e.g. zipf:0.99) or \
                       hotset:<keys>:<probability> (e.g. hotset:100:0.9)";
        let parts: Vec<&str> = text.trim().split(':').collect();
        let invalid = || format!("distribution {text:?} is invalid: {allowed}");
        match parts.as_slice() {
            ["uniform"] => Ok(Distribution::Uniform),
            ["zipf", theta] => {
                let theta: f64 = theta.parse().map_err(|_| invalid())?;
                if !(theta.is_finite() && (0.0..=10.0).contains(&theta)) {
                    return Err(invalid());
                }
                Ok(Distribution::Zipf { theta })
            }
            ["hotset", keys, probability] => {
                let keys: u64 = keys.parse().map_err(|_| invalid())?;
                let probability: f64 = probability.parse().map_err(|_| invalid())?;
                if keys == 0 || keys > KEYS_MAX || !(0.0..=1.0).contains(&probability) {
                    return Err(invalid());
                }
                Ok(Distribution::HotSet { keys, probability })
            }
            _ => Err(invalid()),
        }
    }
}

/// Draws key indexes in `0..key_space` following a [`Distribution`].
#[derive(Clone, Debug)]
pub struct KeyChooser {
    key_space: u64,
    kind: Chooser,
}

#[derive(Clone, Debug)]
enum Chooser {
    Uniform,
    /// Cumulative weights of ranks 1..=n; the last is the total.
    Zipf(std::sync::Arc<[f64]>),
    HotSet {
        hot: u64,
        probability: f64,
    },
}

impl KeyChooser {
    /// A chooser over `keys` keys (widened to a larger hot set).
    pub fn new(distribution: Distribution, keys: u64) -> Result<KeyChooser, String> {
        let key_space = distribution.key_space(keys);
        if key_space == 0 || key_space > KEYS_MAX {
            return Err(format!("--keys {keys} is out of range: use 1..={KEYS_MAX}"));
        }
        let kind = match distribution {
            Distribution::Uniform => Chooser::Uniform,
            Distribution::Zipf { theta } => {
                let mut total = 0.0;
                let table: Vec<f64> = (1..=key_space)
                    .map(|rank| {
                        #[allow(clippy::cast_precision_loss)] // ranks below 2^24
                        let weight = 1.0 / (rank as f64).powf(theta);
                        total += weight;
                        total
                    })
                    .collect();
                Chooser::Zipf(table.into())
            }
            Distribution::HotSet {
                keys: hot,
                probability,
            } => Chooser::HotSet { hot, probability },
        };
        Ok(KeyChooser { key_space, kind })
    }

    /// Keys addressed.
    pub fn key_space(&self) -> u64 {
        self.key_space
    }

    /// One key index.
    pub fn choose(&self, rng: &mut impl Rng) -> u64 {
        match &self.kind {
            Chooser::Uniform => rng.random_range(0..self.key_space),
            Chooser::Zipf(table) => {
                let total = table[table.len() - 1];
                let point = rng.random::<f64>() * total;
                let rank = table.partition_point(|&cumulative| cumulative <= point);
                (rank as u64).min(self.key_space - 1)
            }
            Chooser::HotSet { hot, probability } => {
                let cold = self.key_space - hot;
                if cold == 0 || rng.random::<f64>() < *probability {
                    rng.random_range(0..*hot)
                } else {
                    hot + rng.random_range(0..cold)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_parse_and_print_back() {
        for text in ["uniform", "zipf:0.99", "hotset:100:0.9", "hotset:10:1"] {
            let parsed: Distribution = text.parse().expect(text);
            assert_eq!(parsed.to_string(), text);
        }
        for bad in [
            "",
            "zipf",
            "zipf:-1",
            "hotset:0:1",
            "hotset:10:1.5",
            "gauss",
        ] {
            assert!(bad.parse::<Distribution>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_hot_set_larger_than_the_keys_widens_the_key_space() {
        let hot = Distribution::HotSet {
            keys: 1000,
            probability: 1.0,
        };
        assert_eq!(hot.key_space(10), 1000);
        assert_eq!(hot.support(1_000_000), 1000);
    }
}
