//! tutti-bench: the benchmark suite behind `tutti bench`.
//!
//! It will own workload generators (blind writes, read-modify-write, transfers with a
//! conserved total, read/write mixes over uniform, zipfian or hot-set key choice), closed
//! and open loop drivers that measure latency from the intended start time, hdrhistogram
//! recording, and reports (tables, `.hgrm`, JSON, SVG plots) of DESIGN.md section 14.
//!
//! Built so far: [`baseline`], the loopback TCP round trip and streaming throughput that
//! every group result is printed beside, and [`hot_key`], many clients incrementing one
//! counter through an in-process group, with local chaining on and off.

pub mod baseline;
pub mod hot_key;
