//! `tutti bench`: the benchmark suite's subcommands (DESIGN.md section 14).
//!
//! - `tutti bench baseline`: the loopback TCP round trip and streaming throughput of this
//!   machine (`tutti_bench::baseline`), as a small table and optionally as JSON.
//! - `tutti bench hot-key`: clients incrementing one counter through an in-process group
//!   (`tutti_bench::hot_key`), with local chaining on and then off in the same run, and
//!   the ratio of their commit rates.
//!
//! This module only parses options and prints; the measurements live in `tutti_bench`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use tutti_bench::baseline::{self, BaselineOptions};
use tutti_bench::hot_key::{self, HotKeyOptions, HotKeyResult};
use tutti_storage::log::SyncPolicy;

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
    /// One counter incremented by many clients, local chaining on versus off.
    HotKey(HotKeyArgs),
}

/// `tutti bench hot-key` options.
#[derive(Args, Debug)]
pub struct HotKeyArgs {
    /// Members of the in-process group.
    #[arg(long, default_value_t = 1)]
    pub members: usize,
    /// Client threads.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// How long each run lasts, for example 5s.
    #[arg(long, default_value = "5s")]
    pub duration: String,
    /// The members' `log_sync`: `batch`, `interval:<ms>` or `none`.
    #[arg(long, default_value = "none")]
    pub log_sync: String,
    /// Send through every member instead of the first only.
    #[arg(long)]
    pub through_all: bool,
    /// Skip the run without chaining.
    #[arg(long)]
    pub chaining_only: bool,
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
        BenchCommand::HotKey(args) => run_hot_key(args),
    }
}

fn run_hot_key(args: &HotKeyArgs) -> i32 {
    let duration = match crate::config::parse_duration("duration", &args.duration) {
        Ok(duration) => duration,
        Err(error) => {
            eprintln!("tutti bench hot-key: {error}");
            return 2;
        }
    };
    let Ok(log_sync) = args.log_sync.parse::<SyncPolicy>() else {
        eprintln!(
            "tutti bench hot-key: --log-sync {:?} is invalid: use batch, interval:<ms> or none",
            args.log_sync
        );
        return 2;
    };
    let mut results: Vec<HotKeyResult> = Vec::new();
    let variants: &[bool] = if args.chaining_only {
        &[true]
    } else {
        &[true, false]
    };
    for &chaining in variants {
        let options = HotKeyOptions {
            members: args.members,
            clients: args.clients,
            duration,
            log_sync,
            through_all: args.through_all,
            chaining,
        };
        match hot_key::run(&options) {
            Ok(result) => results.push(result),
            Err(error) => {
                eprintln!("tutti bench hot-key: {error}");
                return 1;
            }
        }
    }
    println!(
        "hot key: {} clients through {} of {} member(s), log_sync {}, {:?} per run",
        args.clients,
        if args.through_all { "all" } else { "one" },
        args.members,
        args.log_sync,
        duration
    );
    println!(
        "chaining  commits/s  conflicts  retries  failures  p50_us  p99_us  max_us  counter  lost"
    );
    for result in &results {
        println!(
            "{:<8}  {:>9.0}  {:>9}  {:>7}  {:>8}  {:>6}  {:>6}  {:>6}  {:>7}  {}",
            if result.options.chaining { "on" } else { "off" },
            result.commits_per_second(),
            result.conflicts,
            result.retries,
            result.failures,
            result.latency_us[0],
            result.latency_us[1],
            result.latency_us[2],
            result.counter,
            if result.lost_nothing() {
                "none"
            } else {
                "LOST"
            },
        );
    }
    if let [on, off] = results.as_slice() {
        println!(
            "chaining on / off: {:.1}x commits/s",
            on.commits_per_second() / off.commits_per_second().max(1e-9)
        );
    }
    i32::from(!results.iter().all(HotKeyResult::lost_nothing))
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
