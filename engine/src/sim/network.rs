//! The simulated network: loss, delay (hence reordering), duplication and partitions.
//!
//! Partitions are a set of blocked directed links between node indexes, so one-way and
//! two-way partitions are the same mechanism. This module decides the fate of one
//! message; it must never deliver it (the world schedules the arrival).

use std::collections::BTreeSet;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::options::FaultOptions;

/// The links and how they misbehave.
#[derive(Default)]
pub(super) struct Network {
    /// Blocked directed links (from, to).
    blocked: BTreeSet<(usize, usize)>,
    /// Bumped at every heal so that a stale heal event does nothing.
    pub(super) generation: u64,
    /// Whether random loss and duplication apply (off while healing).
    pub(super) faulty: bool,
}

/// What happens to one message.
pub(super) enum Fate {
    /// Lost.
    Dropped,
    /// Arrives after each of these delays, in microseconds (two for a duplicate).
    Arrives(Vec<u64>),
}

impl Network {
    /// A network with random loss and duplication on, and no partition.
    pub(super) fn faulty() -> Network {
        Network {
            faulty: true,
            ..Network::default()
        }
    }

    pub(super) fn fate(
        &self,
        rng: &mut ChaCha8Rng,
        faults: &FaultOptions,
        from: usize,
        to: usize,
    ) -> Fate {
        if self.blocked.contains(&(from, to)) {
            return Fate::Dropped;
        }
        if self.faulty && rng.random_bool(faults.loss_probability) {
            return Fate::Dropped;
        }
        let min = faults.delay_min.as_micros() as u64;
        let max = faults.delay_max.as_micros() as u64;
        let mut delays = vec![rng.random_range(min..=max)];
        if self.faulty && rng.random_bool(faults.duplicate_probability) {
            delays.push(rng.random_range(min..=max));
        }
        Fate::Arrives(delays)
    }

    pub(super) fn block(&mut self, from: usize, to: usize) {
        if from != to {
            self.blocked.insert((from, to));
        }
    }

    /// Blocks every link between `node` and the others, both ways.
    pub(super) fn isolate(&mut self, node: usize, nodes: usize) {
        for other in 0..nodes {
            self.block(node, other);
            self.block(other, node);
        }
    }

    pub(super) fn heal(&mut self) {
        self.blocked.clear();
        self.generation += 1;
    }

    pub(super) fn is_partitioned(&self) -> bool {
        !self.blocked.is_empty()
    }
}
