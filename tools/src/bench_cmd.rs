//! `tutti bench`: the benchmark suite's subcommands (DESIGN.md section 14).
//!
//! - `tutti bench baseline`: the loopback TCP round trip and streaming throughput of this
//!   machine (`tutti_bench::baseline`), as a small table and optionally as JSON.
//!
//! This module only parses options and prints; the measurements live in `tutti_bench`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use tutti_bench::baseline::{self, BaselineOptions};

/// `tutti bench` options.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Which benchmark.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Loopback TCP round trip and streaming throughput (the physical floor).
    Baseline(BaselineArgs),
}

/// `tutti bench baseline` options.
#[derive(Args, Debug)]
pub struct BaselineArgs {
    /// Ping-pongs timed for the round trip.
    #[arg(long, default_value_t = 20_000)]
    pub round_trips: usize,
    /// Size of each ping, in bytes.
    #[arg(long, default_value_t = 16)]
    pub ping_bytes: usize,
    /// How long to stream, for example 2s (0 skips streaming).
    #[arg(long, default_value = "2s")]
    pub stream_duration: String,
    /// Size of a streamed message, in bytes (the messages/s figure counts these).
    #[arg(long, default_value_t = 100)]
    pub message_bytes: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs `tutti bench`; returns the exit code.
pub fn run(args: &BenchArgs) -> i32 {
    match &args.command {
        BenchCommand::Baseline(args) => run_baseline(args),
    }
}

fn run_baseline(args: &BaselineArgs) -> i32 {
    let stream_duration =
        match crate::config::parse_duration("stream-duration", &args.stream_duration) {
            Ok(duration) => duration,
            Err(error) => {
                eprintln!("tutti bench baseline: {error}");
                return 2;
            }
        };
    let options = BaselineOptions {
        round_trips: args.round_trips,
        ping_bytes: args.ping_bytes,
        stream_duration,
        message_bytes: args.message_bytes,
    };
    let measured = match baseline::measure(&options) {
        Ok(measured) => measured,
        Err(error) => {
            eprintln!("tutti bench baseline: {error}");
            return 1;
        }
    };
    print!("{}", measured.table());
    if let Some(path) = &args.json {
        if let Err(error) = std::fs::write(path, measured.to_json() + "\n") {
            eprintln!(
                "tutti bench baseline: cannot write {}: {error}",
                path.display()
            );
            return 1;
        }
    }
    0
}
