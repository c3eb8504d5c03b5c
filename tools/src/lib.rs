//! tutti (the command's library): the faces of a member process.
//!
//! - [`server`]: one member as a process (`tutti server`), configured by [`config`],
//!   serving RESP clients through [`resp`].
//! - [`cluster`]: a local N-member group with one command (`tutti cluster`).
//! - [`status`]: a member's tables, asked over RESP (`tutti status`).
//! - [`load`]: proposals at a fixed rate (or a fixed window in flight) through several
//!   members, with latency percentiles beside the loopback baseline (`tutti load`),
//!   also used by the multi-process tests.
//! - [`client`]: the small blocking RESP client the last three use.
//! - [`vopr`]: the deterministic simulator over many seeds (`tutti vopr`).
//! - [`bench_cmd`]: the benchmark subcommands (`tutti bench run`, `sweep`, `compare`,
//!   `hot-key`, `baseline`).
//! - [`metrics`]: the server's Prometheus `/metrics` and `/health` endpoint.
//!
//! It builds on `tutti_engine::member` (the embedding API) and `tutti_engine::group`
//! (the group core's tables); it must never reach into the protocol cores itself.

pub mod bench_cmd;
pub mod client;
pub mod cluster;
pub mod config;
pub mod load;
pub mod metrics;
pub mod resp;
pub mod server;
pub mod status;
pub mod vopr;
