//! `tutti vopr`: runs the deterministic simulator over many seeds.
//!
//! Each seed drives a whole simulated group (network faults, partitions, crashes with
//! torn writes, restarts, leaves and joins) through a safety phase and a healing phase,
//! then checks agreement, total order, integrity, durability and liveness. A failing seed
//! is printed with the property it broke; running `tutti vopr --seed S` replays it
//! exactly. Seeds run on every core at once; the printed results do not depend on how
//! many cores there are.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use clap::Args;
use tutti_engine::sim::{run_seed, SimOptions, SimOutcome, SimStats};

/// Options of `tutti vopr`.
#[derive(Args, Debug, Clone)]
pub struct VoprArgs {
    /// How many seeds to run, starting at --start.
    #[arg(long, default_value_t = 100)]
    pub seeds: u64,
    /// The first seed of the range (pick a new one for long soaks).
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    /// Run exactly this seed (replays a reported failure); overrides --seeds and --start.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Members in the simulated group (3 to 7).
    #[arg(long, default_value_t = 3)]
    pub members: usize,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Totals over all seeds, for the summary line.
#[derive(Default)]
struct Totals {
    passed: u64,
    failed: u64,
    stats: SimStats,
}

impl Totals {
    fn add(&mut self, outcome: &SimOutcome) {
        if outcome.result.is_ok() {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        let s = &outcome.stats;
        let t = &mut self.stats;
        t.view_changes += s.view_changes;
        t.crashes += s.crashes;
        t.restarts += s.restarts;
        t.partitions += s.partitions;
        t.leaves += s.leaves;
        t.joins += s.joins;
        t.messages_sent += s.messages_sent;
        t.messages_dropped += s.messages_dropped;
        t.entries_delivered += s.entries_delivered;
        t.proposals += s.proposals;
        t.events += s.events;
    }
}

/// Runs the seeds and prints failures and a summary; exits non-zero on any failure.
pub fn run(args: &VoprArgs) -> ExitCode {
    let options = SimOptions {
        members: args.members,
        ..SimOptions::default()
    };
    if let Err(problem) = options.validate() {
        eprintln!("vopr: {problem}");
        return ExitCode::from(2);
    }
    let (first, count) = match args.seed {
        Some(seed) => (seed, 1),
        None => (args.start, args.seeds),
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let outcomes = Mutex::new(Vec::with_capacity(usize::try_from(count).unwrap_or(0)));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    break;
                }
                let outcome = run_seed(first.wrapping_add(index), &options);
                if let Err(failure) = &outcome.result {
                    println!(
                        "vopr: seed {} FAILED {}: {}",
                        outcome.seed, failure.property, failure.detail
                    );
                }
                outcomes
                    .lock()
                    .expect("no worker panics while holding it")
                    .push(outcome);
            });
        }
    });
    let mut outcomes = outcomes.into_inner().expect("workers finished");
    // Sum in seed order, so the summary is the same whatever the thread count.
    outcomes.sort_by_key(|outcome| outcome.seed);
    let mut totals = Totals::default();
    for outcome in &outcomes {
        totals.add(outcome);
    }
    print_summary(
        count,
        &totals,
        args.members,
        started.elapsed().as_secs_f64(),
    );
    if totals.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_summary(count: u64, totals: &Totals, members: usize, seconds: f64) {
    let s = &totals.stats;
    println!(
        "vopr: {count} seeds, {} passed, {} failed ({members} members; {} view changes, {} crashes, \
         {} restarts, {} partitions, {} leaves, {} messages sent, {} dropped, {} entries delivered; {seconds:.1} s)",
        totals.passed,
        totals.failed,
        s.view_changes,
        s.crashes,
        s.restarts,
        s.partitions,
        s.leaves,
        s.messages_sent,
        s.messages_dropped,
        s.entries_delivered,
    );
}
