//! tutti-bench: the benchmark suite behind `tutti bench` (DESIGN.md section 14).
//!
//! ```text
//!  keys (uniform | zipf | hot set) ─> workload (write | rmw | transfer | mixed)
//!        │                                   │ operations, one RNG per client
//!        v                                   v
//!  driver: client threads, closed or open loop ──> Target ──> Session::execute
//!        │  latency from the intended start          ├─ in_process: Members on loopback TCP
//!        v                                           └─ resp_target: servers over RESP
//!  suite: a run (stats before/after, transfer check) -> report (JSON, table, .hgrm) -> plot (SVG)
//! ```
//!
//! - [`baseline`]: the loopback TCP round trip and streaming throughput that every
//!   group result is printed beside.
//! - [`keys`], [`workload`]: what each operation touches and does.
//! - [`target`]: what a run drives; [`in_process`] and [`resp_target`] are the two
//!   targets that ship.
//! - [`driver`]: the client threads and the latency histograms.
//! - [`suite`]: one run from start to report, and contention sweeps.
//! - [`report`], [`plot`]: the outputs.
//! - [`hot_key`]: many clients incrementing one counter, local chaining on and off.
//!
//! This crate measures; it never changes what it measures. It binds loopback only
//! for in-process groups and reaches other hosts only through `--connect`.

pub mod baseline;
pub mod driver;
pub mod hot_key;
pub mod in_process;
pub mod keys;
pub mod plot;
pub mod report;
pub mod resp_target;
pub mod suite;
pub mod target;
pub mod workload;
