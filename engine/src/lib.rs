//! tutti-engine: the replication engine a server process embeds.
//!
//! - `member`: the embedding API (`Member`): interactive and command-style transactions,
//!   outcomes, member stats, role operations and consistency levels;
//! - `group`: the io shell that runs one member's `net::gcs` core on a monoio thread
//!   with the peer transport, the log and the metadata (`GroupHandle`);
//! - `replica`: the deterministic consumer of delivered entries (decode, roles,
//!   certification); `certifier`: write-set certification and its lock-free index;
//!   `roles`: modes, the primary and its election; `consistency`: the consistency levels;
//!   `flow_control`: Group Replication's QUOTA flow control;
//! - `applier`: the parallel appliers and the watermark; `local`: a member's in-flight
//!   transactions and their overlay; `txn`: the engine messages and their byte format;
//!   `metrics`: latency histograms;
//! - `sim`: the deterministic simulator that drives the real cores through faults and
//!   checks the total order, the transactions and the roles.
//!
//! Distributed recovery (state transfer) is not built yet. It builds on
//! tutti-net (the total order) and tutti-storage (the log and the store).

pub mod applier;
pub mod certifier;
pub mod consistency;
pub mod flow_control;
pub mod group;
pub mod local;
pub mod member;
pub mod metrics;
pub mod replica;
pub mod roles;
pub mod sim;
pub mod txn;
