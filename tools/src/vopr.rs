//! `tutti vopr`: runs the deterministic simulator over many seeds.
//!
//! Each seed drives a whole simulated group (network faults, partitions, crashes with
//! torn writes, restarts, leaves and joins) through a safety phase and a healing phase,
//! then checks agreement, total order, integrity, durability and liveness. A failing seed
//! is printed with the property it broke; running `tutti vopr --seed S` replays it
//! exactly. Seeds run on every core at once; the printed results do not depend on how
//! many cores there are.
//!
//! `--workload bank` runs transactions instead of opaque messages: clients on every
//! member transfer money between a few accounts, increment counters and set keys, so
//! members really conflict. It adds the transactional checkers (certification
//! determinism, parallel apply equals serial apply, conserved bank total, no lost update,
//! read your own writes, convergence of the stores, acknowledged commits present, no
//! reported abort committed) and reports commits, aborts and the conflict rate.
//! `--single-primary` runs it in single-primary mode: every member's clients still
//! propose, so certification must refuse every secondary's transaction, and the role
//! checkers (every member agrees on the primary after every seqno; no origin commits where
//! it was not writable) judge the primary changes that crashes and expels cause.
//! `--consistency LEVEL` runs every bank request at one consistency level, `mixed` draws
//! one of the five per request; the level checkers (BEFORE sees every earlier commit,
//! AFTER is seen by every later transaction, a new primary reads nothing stale) judge it.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use clap::{Args, ValueEnum};
use tutti_engine::consistency::Consistency;
use tutti_engine::sim::{run_seed, BankOptions, SimOptions, SimOutcome, SimStats, Workload};

/// What the simulated members propose.
#[derive(ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WorkloadArg {
    /// Unique opaque payloads: the total order alone.
    #[default]
    Messages,
    /// Bank transactions with contention: certification, apply and their checkers too.
    Bank,
}

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
    /// What the members propose: opaque messages, or bank transactions.
    #[arg(long, value_enum, default_value_t = WorkloadArg::Messages)]
    pub workload: WorkloadArg,
    /// Bank workload in single-primary mode.
    #[arg(long)]
    pub single_primary: bool,
    /// Bank workload: the consistency level of every request, or `mixed` (one of the
    /// five drawn per request).
    #[arg(long, default_value = "EVENTUAL")]
    pub consistency: String,
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
        t.txns_committed += s.txns_committed;
        t.txns_aborted += s.txns_aborted;
        t.txns_refused += s.txns_refused;
        t.txns_unknown += s.txns_unknown;
        t.txns_read_only += s.txns_read_only;
        t.txn_retries += s.txn_retries;
        t.txns_certified += s.txns_certified;
        t.certification_aborts += s.certification_aborts;
        t.conflict_aborts += s.conflict_aborts;
        t.not_writable_aborts += s.not_writable_aborts;
        t.dependency_aborts += s.dependency_aborts;
        t.snapshot_too_old_aborts += s.snapshot_too_old_aborts;
        t.chained_commits += s.chained_commits;
        t.sync_points += s.sync_points;
        t.failover_holds += s.failover_holds;
        t.after_commits += s.after_commits;
        t.consistency_refused += s.consistency_refused;
        t.hand_overs += s.hand_overs;
    }
}

/// Runs the seeds and prints failures and a summary; exits non-zero on any failure.
pub fn run(args: &VoprArgs) -> ExitCode {
    let consistency = if args.consistency.eq_ignore_ascii_case("mixed") {
        None
    } else {
        match args.consistency.parse::<Consistency>() {
            Ok(level) => Some(level),
            Err(problem) => {
                eprintln!("vopr: --consistency: {problem}, or mixed");
                return ExitCode::from(2);
            }
        }
    };
    let bank_only = args.single_primary || consistency != Some(Consistency::Eventual);
    let workload = match (args.workload, bank_only) {
        (WorkloadArg::Messages, true) => {
            eprintln!("vopr: --single-primary and --consistency need --workload bank");
            return ExitCode::from(2);
        }
        (WorkloadArg::Messages, false) => Workload::Messages,
        (WorkloadArg::Bank, _) => Workload::Bank(BankOptions {
            single_primary: args.single_primary,
            consistency,
            ..BankOptions::default()
        }),
    };
    let options = SimOptions {
        members: args.members,
        workload,
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
    if args.workload == WorkloadArg::Bank {
        print_bank_summary(&totals.stats);
    }
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

fn print_bank_summary(s: &SimStats) {
    println!(
        "vopr: bank: {} transactions certified, {} certification aborts ({} conflicts, {} aborted local \
         dependencies, {} snapshots too old, {} origins not writable; conflict rate {:.3}), {} chained commits; clients: {} committed, {} aborted after retries, {} refused, {} unknown, \
         {} read-only, {} retries; consistency: {} sync points, {} failover holds, {} AFTER commits, {} refused; \
         {} sequencer hand-overs to the primary",
        s.txns_certified,
        s.certification_aborts,
        s.conflict_aborts,
        s.dependency_aborts,
        s.snapshot_too_old_aborts,
        s.not_writable_aborts,
        s.conflict_rate(),
        s.chained_commits,
        s.txns_committed,
        s.txns_aborted,
        s.txns_refused,
        s.txns_unknown,
        s.txns_read_only,
        s.txn_retries,
        s.sync_points,
        s.failover_holds,
        s.after_commits,
        s.consistency_refused,
        s.hand_overs,
    );
}
