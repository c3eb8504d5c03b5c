//! tutti-net: how members talk to each other.
//!
//! It will own the peer wire codec (`wire`: fixed, checksummed, little-endian frames), the
//! sans-IO group communication core (`gcs`: membership, the sequencer-based atomic
//! broadcast and the failure detector of DESIGN.md section 4) and the io_uring TCP
//! transport that moves its frames (`transport`). It never imports the storage crate or
//! the engine: persistence is a command it emits, not a call it makes.
//!
//! The `gcs` module is here today: a synchronous state machine per member that takes
//! `now` and inputs (messages, timeouts, proposals, persistence completions) and returns
//! commands (sends, log writes, deliveries, timers). It reads no clock and draws no
//! random numbers, so the io_uring shell and the deterministic simulator drive the same
//! code.

pub mod gcs;
pub mod transport;
pub mod wire;
