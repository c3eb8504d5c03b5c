//! tutti-engine: the replication engine a server process embeds.
//!
//! It will own the `Member` embedding API, the certifier and its write-set index,
//! the parallel appliers, transactions and sessions, consistency levels, modes and primary
//! election, flow control, distributed recovery, statistics, and the deterministic
//! simulator (`sim`) that drives the protocol cores through faults. It builds on
//! tutti-net (the total order) and tutti-storage (the log and the store).
//!
//! The simulator is here today: `sim` runs N members of the real `net::gcs` core over a
//! simulated network, disk and clock, all decided by one seed, injects faults, and checks
//! agreement, total order, integrity, durability and liveness of the total order.
//!
//! So is the io shell of that core: `group` runs one member's `net::gcs` core on a
//! monoio group core thread with the peer transport, the log and the metadata, and
//! offers other threads a `GroupHandle` (propose, members and connection tables, leave).

pub mod applier;
pub mod certifier;
pub mod consistency;
pub mod group;
pub mod local;
pub mod member;
pub mod metrics;
pub mod replica;
pub mod roles;
pub mod sim;
pub mod txn;
