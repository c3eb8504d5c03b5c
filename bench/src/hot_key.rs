//! The hot-key benchmark: many clients incrementing one counter through an in-process
//! group (real loopback TCP between its members), the case that local chaining exists
//! for (DESIGN.md section 5, "Local conflicts").
//!
//! Every client is a thread running command-style INCR transactions back to back
//! (`Member::execute_blocking`), through one member or spread over all of them. A run
//! reports commits per second, the commands that still ended in a conflict after the
//! member's retries, the retries themselves, commit latency percentiles (hdrhistogram,
//! measured per command, retries included), and whether the final counter, read on every
//! member once they applied the same prefix, equals the number of commits (no lost
//! increment). Members are started on temporary data directories and stopped at the end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use thiserror::Error;
use tutti_engine::member::{Member, MemberError, TxnError, AUTOCOMMIT_RETRIES_DEFAULT};
use tutti_net::transport::runtime::IoBackend;
use tutti_storage::log::SyncPolicy;
use tutti_storage::store::Value;

use crate::in_process::{GroupSpec, InProcessGroup};
use crate::target::BenchError;

/// The counter's key.
const HOT_KEY: &[u8] = b"hot";
/// Longest wait for the group to form and for the members to converge.
const SETTLE_WAIT: Duration = Duration::from_secs(30);
/// Largest latency recorded, microseconds.
const LATENCY_US_MAX: u64 = 60_000_000;

/// What to run.
#[derive(Clone, Debug)]
pub struct HotKeyOptions {
    /// Members of the in-process group.
    pub members: usize,
    /// Client threads.
    pub clients: usize,
    /// How long the clients run.
    pub duration: Duration,
    /// The members' `log_sync`.
    pub log_sync: SyncPolicy,
    /// Clients send through every member (true) or through the first only.
    pub through_all: bool,
    /// Local chaining on (the engine's behaviour) or off (the baseline).
    pub chaining: bool,
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct HotKeyResult {
    /// The options of the run.
    pub options: HotKeyOptions,
    /// Increments committed.
    pub commits: u64,
    /// Commands that ended in a conflict after the member's retries.
    pub conflicts: u64,
    /// Retries inside the members (certification aborts that were run again).
    pub retries: u64,
    /// Other failures (outcome unknown, refused).
    pub failures: u64,
    /// How long the clients ran.
    pub elapsed: Duration,
    /// Commit latency percentiles, microseconds: p50, p99, max.
    pub latency_us: [u64; 3],
    /// The counter every member holds at the end.
    pub counter: i64,
}

impl HotKeyResult {
    /// Commits per second.
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    pub fn commits_per_second(&self) -> f64 {
        self.commits as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// No increment lost: the counter equals the commits.
    pub fn lost_nothing(&self) -> bool {
        u64::try_from(self.counter).is_ok_and(|counter| counter == self.commits)
    }
}

/// Why the benchmark could not run.
#[derive(Debug, Error)]
pub enum HotKeyError {
    /// A member did not start.
    #[error("member {index} did not start: {source}")]
    Start {
        /// Which.
        index: usize,
        /// Why.
        source: MemberError,
    },
    /// A temporary directory or port could not be had.
    #[error("cannot prepare the members: {0}")]
    Io(#[from] std::io::Error),
    /// The group did not form, or the members did not converge, in time.
    #[error("{0}")]
    Settle(String),
    /// Options out of range.
    #[error("{0}")]
    Options(String),
}

/// Runs one hot-key benchmark.
pub fn run(options: &HotKeyOptions) -> Result<HotKeyResult, HotKeyError> {
    if options.members == 0 || options.clients == 0 {
        return Err(HotKeyError::Options(
            "members and clients must be at least 1".to_owned(),
        ));
    }
    let group = InProcessGroup::start(&GroupSpec {
        members: options.members,
        log_sync: options.log_sync,
        io_backend: IoBackend::Auto,
        chaining: options.chaining,
        autocommit_retries: AUTOCOMMIT_RETRIES_DEFAULT,
        single_primary: false,
        consistency: tutti_engine::consistency::Consistency::default(),
    })
    .map_err(|error| match error {
        BenchError::Start { index, source } => HotKeyError::Start { index, source },
        BenchError::Io(error) => HotKeyError::Io(error),
        other => HotKeyError::Settle(other.to_string()),
    })?;
    drive(options, group.members())
    // Dropping the group stops the members and removes their directories.
}

fn increment(txn: &mut tutti_engine::local::CommandTxn<'_>) -> i64 {
    let current = txn
        .get(HOT_KEY)
        .and_then(|value| std::str::from_utf8(&value).ok()?.parse::<i64>().ok())
        .unwrap_or(0);
    txn.put(HOT_KEY, Value::from((current + 1).to_string().as_bytes()));
    current + 1
}

fn drive(options: &HotKeyOptions, members: &[Member]) -> Result<HotKeyResult, HotKeyError> {
    let stop = AtomicBool::new(false);
    let (commits, conflicts, retries, failures) = (
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
    );
    let started = Instant::now();
    let histograms: Vec<Histogram<u64>> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..options.clients)
            .map(|client| {
                let member = if options.through_all {
                    &members[client % members.len()]
                } else {
                    &members[0]
                };
                let (stop, commits, conflicts, retries, failures) =
                    (&stop, &commits, &conflicts, &retries, &failures);
                scope.spawn(move || {
                    let mut histogram =
                        Histogram::<u64>::new_with_bounds(1, LATENCY_US_MAX, 3).expect("bounds");
                    while !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        match member.execute_blocking(increment) {
                            Ok(executed) => {
                                commits.fetch_add(1, Ordering::Relaxed);
                                retries.fetch_add(u64::from(executed.retries), Ordering::Relaxed);
                                let micros = u64::try_from(sent.elapsed().as_micros())
                                    .unwrap_or(LATENCY_US_MAX);
                                histogram.saturating_record(micros.clamp(1, LATENCY_US_MAX));
                            }
                            Err(error) if error.is_retryable() => {
                                conflicts.fetch_add(1, Ordering::Relaxed);
                                retries.fetch_add(
                                    u64::from(member_retries(member)),
                                    Ordering::Relaxed,
                                );
                            }
                            Err(TxnError::Busy(_)) => std::thread::yield_now(),
                            Err(_) => {
                                failures.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    histogram
                })
            })
            .collect();
        std::thread::sleep(options.duration);
        stop.store(true, Ordering::Relaxed);
        clients
            .into_iter()
            .map(|client| client.join().expect("a client thread panicked"))
            .collect()
    });
    let elapsed = started.elapsed();
    let mut latency = Histogram::<u64>::new_with_bounds(1, LATENCY_US_MAX, 3).expect("bounds");
    for histogram in &histograms {
        latency.add(histogram).expect("same bounds");
    }
    let counter = converged_counter(members)?;
    Ok(HotKeyResult {
        options: options.clone(),
        commits: commits.load(Ordering::Relaxed),
        conflicts: conflicts.load(Ordering::Relaxed),
        retries: retries.load(Ordering::Relaxed),
        failures: failures.load(Ordering::Relaxed),
        elapsed,
        latency_us: [
            latency.value_at_quantile(0.5),
            latency.value_at_quantile(0.99),
            latency.max(),
        ],
        counter,
    })
}

/// The retries of a command that gave up: the member's limit.
fn member_retries(member: &Member) -> u32 {
    member.autocommit_retries()
}

/// Waits until every member applied the same prefix and reads the counter there.
fn converged_counter(members: &[Member]) -> Result<i64, HotKeyError> {
    let deadline = Instant::now() + SETTLE_WAIT;
    loop {
        let watermarks: Vec<_> = members.iter().map(Member::watermark).collect();
        let last = members[0].group().stats().last_delivered;
        if watermarks
            .iter()
            .all(|w| w.0 == last && *w == watermarks[0])
        {
            let values: Vec<Option<i64>> = members
                .iter()
                .map(|member| {
                    member
                        .store()
                        .get(HOT_KEY, member.watermark())
                        .and_then(|value| std::str::from_utf8(&value).ok()?.parse().ok())
                })
                .collect();
            if values.iter().all(|value| *value == values[0]) {
                return Ok(values[0].unwrap_or(0));
            }
        }
        if Instant::now() > deadline {
            return Err(HotKeyError::Settle(format!(
                "the members did not converge within {SETTLE_WAIT:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
